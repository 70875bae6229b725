//! A ringing call's lookup, side by side in one run: from the contacts cache, against a
//! live lookup through the template engine to a fake CRM on 127.0.0.1 (what products that
//! search the CRM on every call do). Both go through `Engine::lookup_in`, with the example
//! helpdesk template, for the same random callers among N contacts.
//!
//! ```sh
//! cargo run --release -p callbox-engine --features test-support --example lookup_bench -- [CONTACTS [CALLS]]
//! ```

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use callbox_contacts::ContactCache;
use callbox_core::call::{Agent, Call, Direction};
use callbox_core::functions::Utc;
use callbox_engine::fake_crm::FakeCrm;
use callbox_engine::hooks::{ActiveIntegration, Engine, EngineSettings, MatchSource};
use callbox_engine::store::Store;
use callbox_engine::tokens::StaticCredentials;
use callbox_engine::{HttpClient, HttpSettings, integrations};
use serde_json::{Map, Value, json};

fn engine(
    dir: &Path,
    crm: &FakeCrm,
    contacts_settings: &str,
) -> Result<(Engine, Arc<ActiveIntegration>), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("desk.toml"),
        format!(
            "template = \"example-helpdesk\"\n[fields]\nbase_url = \"{}\"\npriority = \"normal\"\n[contacts]\ncountry = \"US\"\n{contacts_settings}\n",
            crm.uri()
        ),
    )?;
    let config = integrations::load(&dir.join("desk.toml"))?;
    let secrets: Map<String, Value> = [("api_key".to_string(), json!("k"))].into_iter().collect();
    let active = ActiveIntegration::new(
        config,
        secrets,
        Arc::new(StaticCredentials::new("desk", Vec::new())),
    );
    let engine = Engine::new(
        Store::open_in_memory()?,
        ContactCache::open(&dir.join("contacts.sqlite"))?,
        vec![active],
        HttpClient::new(HttpSettings::default())?,
        Arc::new(Utc),
        EngineSettings::default(),
    );
    let active = engine.integrations()[0].clone();
    Ok((engine, active))
}

fn call(i: usize, number: &str) -> Call {
    Call {
        id: format!("bench-{i}"),
        direction: Direction::Inbound,
        remote_number: number.to_string(),
        remote_name: String::new(),
        agent: Agent {
            extension: "1001".into(),
            ..Agent::default()
        },
        started_at: 1_717_236_000,
        answered_at: None,
        ended_at: None,
        disposition: None,
        recording_url: None,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn number(i: usize) -> String {
    format!("+1 415 {:03} {:04}", 200 + i / 10_000 % 700, i % 10_000)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let contacts: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let calls: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let crm = FakeCrm::start().await;
    for i in 0..contacts {
        crm.seed(
            "contacts",
            &format!("c-{i}"),
            json!({"first_name": "Caller", "last_name": format!("N{i}"), "phone": number(i)}),
        );
    }
    let base = std::env::temp_dir().join(format!("callbox-lookup-bench-{}", std::process::id()));
    let (live, live_active) = engine(
        &base.join("live"),
        &crm,
        "always_query_crm = true\nsynchronize_to_phonebook = false",
    )?;
    let (cached, cached_active) = engine(&base.join("cached"), &crm, "")?;
    // Fill the cache the way calls do: one CRM lookup per contact.
    for i in 0..contacts {
        cached
            .lookup_in(&cached_active, &call(i, &number(i)))
            .await?;
    }
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut pick = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % contacts as u64) as usize
    };
    let (mut live_times, mut cache_times) = (Vec::new(), Vec::new());
    for k in 0..calls {
        let i = pick();
        // National format, as a carrier delivers it.
        let text = number(i).trim_start_matches("+1 ").to_string();
        let t = Instant::now();
        let l = live.lookup_in(&live_active, &call(k, &text)).await?;
        live_times.push(t.elapsed());
        assert_eq!(l.matches.first().map(|m| m.source), Some(MatchSource::Crm));
        let t = Instant::now();
        let c = cached.lookup_in(&cached_active, &call(k, &text)).await?;
        cache_times.push(t.elapsed());
        assert_eq!(
            c.matches.first().map(|m| m.source),
            Some(MatchSource::Cache)
        );
        assert_eq!(c.matches[0].get("ContactsId"), format!("c-{i}"));
        assert_eq!(l.matches[0].get("ContactsId"), format!("c-{i}"));
    }
    live_times.sort();
    cache_times.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let (lp50, lp99) = (percentile(&live_times, 0.5), percentile(&live_times, 0.99));
    let (cp50, cp99) = (
        percentile(&cache_times, 0.5),
        percentile(&cache_times, 0.99),
    );
    println!(
        "{calls} lookups among {contacts} contacts (Engine::lookup_in, example-helpdesk template):"
    );
    println!(
        "  live CRM lookup (fake CRM on 127.0.0.1): p50 {:.0} µs, p99 {:.0} µs",
        us(lp50),
        us(lp99)
    );
    println!(
        "  contacts cache hit:                      p50 {:.0} µs, p99 {:.0} µs",
        us(cp50),
        us(cp99)
    );
    println!(
        "  ratio live/cache: {:.1}x at p50, {:.1}x at p99",
        lp50.as_secs_f64() / cp50.as_secs_f64(),
        lp99.as_secs_f64() / cp99.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&base);
    Ok(())
}
