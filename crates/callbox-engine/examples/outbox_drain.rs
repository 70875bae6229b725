//! Outbox drain throughput against a rate-limited fake CRM (default 10 requests per second,
//! burst 5): how close the engine gets to the limit, and how many 429s it meets after the
//! first.
//!
//! ```sh
//! cargo run --release -p callbox-engine --features test-support --example outbox_drain -- [CALLS [RATE [BURST]]]
//! ```

use std::sync::Arc;
use std::time::Duration;

use callbox_core::call::{Agent, Call, Direction};
use callbox_core::functions::Utc;
use callbox_engine::fake_crm::{Chaos, FakeCrm};
use callbox_engine::hooks::{ActiveIntegration, Engine, EngineSettings};
use callbox_engine::outbox::Until;
use callbox_engine::store::Store;
use callbox_engine::tokens::StaticCredentials;
use callbox_engine::{HttpClient, HttpSettings, integrations};
use serde_json::{Map, Value, json};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let calls: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let rate: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let burst: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);

    let crm = FakeCrm::start().await;
    crm.set_chaos(Chaos {
        rate_per_sec: rate,
        burst,
        ..Chaos::default()
    });
    let dir = std::env::temp_dir().join(format!("callbox-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("desk.toml"),
        format!(
            "template = \"example-helpdesk\"\n[fields]\nbase_url = \"{}\"\npriority = \"normal\"\n",
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
    let store = Store::open(&dir.join("callbox.db"))?;
    // GetGlobalInfo is cached by the app after its first run; do so here too.
    store.set_globals(
        "desk",
        &[("DepartmentId".to_string(), json!("d-2"))]
            .into_iter()
            .collect(),
        0,
    )?;
    let engine = Engine::new(
        store,
        callbox_contacts::ContactCache::open(&dir.join("contacts.sqlite"))?,
        vec![active],
        HttpClient::new(HttpSettings::default())?,
        Arc::new(Utc),
        EngineSettings::default(),
    );
    for i in 0..calls {
        let call = Call {
            id: format!("bench-{i}"),
            direction: Direction::Inbound,
            remote_number: "+4930901820".into(),
            remote_name: String::new(),
            agent: Agent::default(),
            started_at: 1717236000,
            answered_at: Some(1717236010),
            ended_at: Some(1717236100),
            disposition: None,
            recording_url: None,
        };
        engine.call_ended(&call)?;
    }
    let started = std::time::Instant::now();
    engine
        .run_outbox(Until::Drained {
            deadline: tokio::time::Instant::now() + Duration::from_secs(3600),
        })
        .await?;
    let elapsed = started.elapsed();
    let accepted = crm.accepted_times();
    let limited = crm.limited_times();
    let late_429 = limited
        .iter()
        .filter(|t| t.duration_since(limited[0]) > Duration::from_millis(100))
        .count();
    // Throughput in steady state: from the first request after the first 429 to the last.
    let steady: Vec<_> = match limited.first() {
        Some(first) => accepted.iter().filter(|t| *t > first).copied().collect(),
        None => accepted.clone(),
    };
    let steady_rate = if steady.len() > 1 {
        (steady.len() - 1) as f64
            / steady[steady.len() - 1]
                .duration_since(steady[0])
                .as_secs_f64()
    } else {
        0.0
    };
    let records = crm.records("calls").len();
    println!(
        "{{\"calls\":{calls},\"limit_per_sec\":{rate},\"burst\":{burst},\"records\":{records},\"seconds\":{:.2},\"steady_requests_per_sec\":{steady_rate:.2},\"ratio_to_limit\":{:.3},\"429_total\":{},\"429_after_first\":{late_429}}}",
        elapsed.as_secs_f64(),
        steady_rate / f64::from(rate),
        limited.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
