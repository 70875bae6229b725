//! How long from "a call rings" to "open this URL in the panel": the telephony event in, the
//! desk's lookup (cache or CRM), the panel request out. Against the fake CRM on 127.0.0.1 with
//! a real SQLite store and contacts cache, release build:
//!
//! ```sh
//! cargo run --release -p callbox-desk --example panel_latency
//! ```
//!
//! Prints p50/p95/max for a cached contact and for a CRM lookup (with the CRM's own time
//! measured separately, so the desk's share is visible).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use callbox_contacts::ContactCache;
use callbox_core::functions::Utc;
use callbox_desk::{AlwaysFrame, Desk, DeskEvent, DeskSettings, PopupTrigger};
use callbox_engine::fake_crm::FakeCrm;
use callbox_engine::hooks::{ActiveIntegration, Engine, EngineSettings};
use callbox_engine::integrations;
use callbox_engine::store::Store;
use callbox_engine::tokens::StaticCredentials;
use callbox_engine::{HttpClient, HttpSettings};
use callbox_sip::fake::ScriptedTelephony;
use serde_json::{Map, Value, json};

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[((values.len() - 1) as f64 * p).round() as usize]
}

fn engine(crm: &FakeCrm, dir: &std::path::Path, always_query_crm: bool) -> Engine {
    std::fs::write(
        dir.join("desk.toml"),
        format!(
            "template = \"example-helpdesk\"\n[fields]\nbase_url = \"{}\"\npriority = \"normal\"\n[contacts]\nalways_query_crm = {always_query_crm}\nttl_seconds = 86400\n",
            crm.uri()
        ),
    )
    .unwrap();
    let config = integrations::load(&dir.join("desk.toml")).unwrap();
    let markers = config.integration.auth().token_invalid.clone();
    let secrets: Map<String, Value> = [("api_key".to_string(), json!("k"))].into_iter().collect();
    Engine::new(
        Store::open(&dir.join("callbox.db")).unwrap(),
        ContactCache::open(&dir.join("contacts.sqlite")).unwrap(),
        vec![ActiveIntegration::new(
            config,
            secrets,
            Arc::new(StaticCredentials::new("desk", markers)),
        )],
        HttpClient::new(HttpSettings::default()).unwrap(),
        Arc::new(Utc),
        EngineSettings::default(),
    )
}

async fn run(label: &str, always_query_crm: bool, rounds: usize) {
    let crm = FakeCrm::start().await;
    for i in 0..200 {
        crm.seed(
            "contacts",
            &format!("c-{i}"),
            json!({"first_name":"Ann","last_name":format!("Lee {i}"),"phone":format!("+49 30 9000{i:04}")}),
        );
    }
    let dir = std::env::temp_dir().join(format!("callbox-panel-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let phone = Arc::new(ScriptedTelephony::default());
    let desk = Desk::start(
        phone.clone(),
        Some(engine(&crm, &dir, always_query_crm)),
        Arc::new(AlwaysFrame),
        DeskSettings {
            popup: PopupTrigger::Ringing,
            ..DeskSettings::default()
        },
    );
    let mut events = desk.subscribe();
    let mut ring_to_panel = Vec::new();
    let http = reqwest_free_crm_time(&crm).await;
    for round in 0..rounds {
        let number = format!("+49309000{:04}", round % 200);
        let started = Instant::now();
        let line = phone.ring(&number);
        loop {
            let event = tokio::time::timeout(Duration::from_secs(10), events.recv())
                .await
                .expect("panel in time")
                .unwrap();
            if matches!(event, DeskEvent::Panel { .. }) {
                break;
            }
        }
        if round >= 200 || always_query_crm {
            ring_to_panel.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        use callbox_sip::Telephony;
        phone
            .reject(line, callbox_sip::RejectReason::Decline)
            .unwrap();
    }
    let mut v = ring_to_panel;
    println!(
        "{label}: ring → panel request p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms over {} calls; the CRM's own search p50 {:.2} ms",
        percentile(&mut v.clone(), 0.5),
        percentile(&mut v.clone(), 0.95),
        percentile(&mut v, 1.0),
        v.len(),
        http
    );
}

/// The fake CRM's answer time for a contact search, measured with a plain HTTP client.
async fn reqwest_free_crm_time(crm: &FakeCrm) -> f64 {
    let http = HttpClient::new(HttpSettings::default()).unwrap();
    let mut times = Vec::new();
    for i in 0..50 {
        let request = callbox_core::request::HttpRequest {
            method: "GET".into(),
            url: format!(
                "{}/api/v1/contacts/search?phone=%2B49309000{:04}&limit=5",
                crm.uri(),
                i
            ),
            headers: vec![("authorization".into(), "Bearer k".into())],
            body: None,
        };
        let started = Instant::now();
        http.send(&request).await.unwrap();
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    percentile(&mut times, 0.5)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // Cached: the first 200 calls fill the cache, the next 300 are measured.
    run("cached contact", false, 500).await;
    // Always asking the CRM first.
    run("CRM lookup", true, 300).await;
}
