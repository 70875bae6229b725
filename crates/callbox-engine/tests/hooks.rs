//! Hooks on call events against a stateful fake CRM on 127.0.0.1: lookups with popup URLs,
//! pre-log at answer then one call log at the end, SMS notes, contacts and tickets, retries,
//! rate limits, permanent refusals, restarts — one log per call and integration.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use callbox_contacts::ContactCache;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use callbox_core::call::{Agent, Call, Direction, Sms};
use callbox_core::functions::Utc;
use callbox_engine::fake_crm::{Chaos, FakeCrm};
use callbox_engine::hooks::{ActiveIntegration, Engine, EngineSettings, NewContact};
use callbox_engine::integrations;
use callbox_engine::outbox::Until;
use callbox_engine::store::{HookState, Store};
use callbox_engine::tokens::StaticCredentials;
use callbox_engine::{HttpClient, HttpSettings};
use serde_json::{Map, Value, json};

const API_KEY: &str = "hd_live_5ecret_K3y";

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("callbox-hooks-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn helpdesk(crm: &FakeCrm, dir: &Path, extra: &str) -> ActiveIntegration {
    std::fs::write(
        dir.join("desk.toml"),
        format!("template = \"example-helpdesk\"\n{extra}\n[fields]\nbase_url = \"{}\"\npriority = \"normal\"\n", crm.uri()),
    )
    .unwrap();
    let config = integrations::load(&dir.join("desk.toml")).unwrap();
    let markers = config.integration.auth().token_invalid.clone();
    let secrets: Map<String, Value> = [("api_key".to_string(), json!(API_KEY))]
        .into_iter()
        .collect();
    ActiveIntegration::new(
        config,
        secrets,
        Arc::new(StaticCredentials::new("desk", markers)),
    )
}

fn engine(store: Store, integrations: Vec<ActiveIntegration>) -> Engine {
    let http = HttpClient::new(HttpSettings {
        timeout: Duration::from_secs(2),
        ..HttpSettings::default()
    })
    .unwrap();
    let settings = EngineSettings {
        backoff_base: Duration::from_secs(1),
        backoff_cap: Duration::from_secs(2),
        ..EngineSettings::default()
    };
    Engine::new(
        store,
        ContactCache::in_memory().unwrap(),
        integrations,
        http,
        Arc::new(Utc),
        settings,
    )
}

fn call(id: &str, remote: &str) -> Call {
    Call {
        id: id.into(),
        direction: Direction::Inbound,
        remote_number: remote.into(),
        remote_name: String::new(),
        agent: Agent {
            extension: "1004".into(),
            first_name: "Eli".into(),
            last_name: "Ng".into(),
            email: "eli@example.com".into(),
        },
        started_at: 1717236000,
        answered_at: None,
        ended_at: None,
        disposition: None,
        recording_url: None,
    }
}

async fn drain(e: &Engine, secs: u64) {
    e.run_outbox(Until::Drained {
        deadline: tokio::time::Instant::now() + Duration::from_secs(secs),
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_is_looked_up_prelogged_and_logged_once() {
    let crm = FakeCrm::start().await;
    crm.seed("contacts", "c-1", json!({"first_name":"Jonas","last_name":"Weber","phone":"+49 30 901820","email":"j@weber.example"}));
    crm.seed(
        "agents",
        "agent-17",
        json!({"first_name":"Eli","last_name":"Ng","email":"ELI@example.com"}),
    );
    let dir = temp_dir("life");
    let e = engine(
        Store::open(&dir.join("callbox.db")).unwrap(),
        vec![helpdesk(&crm, &dir, "")],
    );

    // The admin refreshes users; the agent is associated by email: {{.CrmId}} in every hook.
    let users = e.refresh_users("desk").await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(
        e.associate_by_email("desk", "1004", "eli@example.com")
            .unwrap()
            .as_deref(),
        Some("agent-17")
    );

    let mut c = call("call-1", "+4930901820");
    let lookup = e.call_started(&c).await.unwrap();
    assert_eq!(lookup.matches.len(), 1, "{lookup:?}");
    let contact = &lookup.matches[0];
    assert_eq!(contact.integration, "desk");
    assert_eq!(contact.get("ContactsId"), "c-1");
    assert_eq!(contact.get("BusinessNumber"), "+49 30 901820");
    assert_eq!(contact.reason, "business number matched exactly");
    assert_eq!(
        lookup.popup_url.as_deref(),
        Some(format!("{}/agent/contacts/c-1", crm.uri()).as_str())
    );

    c.answered_at = Some(1717236010);
    e.call_answered(&c).unwrap();
    drain(&e, 10).await;
    let calls = crm.records("calls");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].fields["status"], "in_progress");
    assert_eq!(calls[0].fields["agent_id"], "agent-17");
    assert_eq!(calls[0].fields["contact_id"], "c-1");

    c.ended_at = Some(1717236110);
    e.call_ended(&c).unwrap();
    e.call_ended(&c).unwrap(); // a repeated event changes nothing
    drain(&e, 10).await;
    let calls = crm.records("calls");
    assert_eq!(
        calls.len(),
        1,
        "the end of the call updates the pre-logged record"
    );
    assert_eq!(calls[0].writes, 2);
    assert_eq!(calls[0].fields["status"], "Completed");
    assert_eq!(calls[0].fields["talk_seconds"], 100);
    let hooks = e.hooks("call-1").unwrap();
    assert_eq!(
        hooks
            .iter()
            .map(|h| (h.hook.as_str(), h.state))
            .collect::<Vec<_>>(),
        vec![
            ("PreCallJournal", HookState::Sent),
            ("CallJournal", HookState::Sent)
        ]
    );
    assert_eq!(hooks[0].outputs["CallLogId"], calls[0].id.as_str());

    // SMS and a ticket for the same contact.
    e.sms(&Sms {
        id: "call-1".into(),
        direction: Direction::Outbound,
        remote_number: "+4930901820".into(),
        text: "Your order ships \"today\"".into(),
        agent: c.agent.clone(),
        at: 1717236200,
    })
    .unwrap();
    e.create_ticket("desk", &c).unwrap();
    drain(&e, 10).await;
    let notes = crm.records("notes");
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].fields["contact_id"], "c-1");
    assert!(
        notes[0].fields["body"]
            .as_str()
            .unwrap()
            .contains("Your order ships \"today\"")
    );
    assert_eq!(crm.records("tickets").len(), 1);

    // No secret reached the database file.
    drop(e);
    for f in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(f.unwrap().path()).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains(API_KEY));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_callers_get_a_contact_only_when_the_rule_says_and_never_for_extensions() {
    let crm = FakeCrm::start().await;
    let dir = temp_dir("create");
    let e = engine(
        Store::open_in_memory().unwrap(),
        vec![helpdesk(&crm, &dir, "create_contacts = \"inbound\"")],
    );
    let lookup = e
        .call_started(&call("call-2", "+33612345678"))
        .await
        .unwrap();
    assert!(lookup.matches.is_empty());
    assert_eq!(lookup.creating, vec!["desk".to_string()]);
    e.call_started(&call("call-3", "1001")).await.unwrap();
    e.call_started(&call("call-4", "anonymous")).await.unwrap();
    let mut outbound = call("call-5", "+33699999999");
    outbound.direction = Direction::Outbound;
    e.call_started(&outbound).await.unwrap();
    drain(&e, 10).await;
    let created = crm.records("contacts");
    assert_eq!(
        created.len(),
        1,
        "only the unknown inbound outside number: {created:?}"
    );
    assert_eq!(created[0].fields["phone"], "+33612345678");
    // By hand, an extension is refused with a reason.
    let err = e
        .create_contact(
            "desk",
            &call("call-6", "1001"),
            &NewContact {
                number: "1001".into(),
                ..NewContact::default()
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("internal extension"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_and_nothing_is_lost() {
    let crm = FakeCrm::start().await;
    let dir = temp_dir("retry");
    let e = engine(
        Store::open_in_memory().unwrap(),
        vec![helpdesk(&crm, &dir, "")],
    );
    crm.set_chaos(Chaos {
        fail_before: 1.0,
        ..Chaos::default()
    });
    let mut c = call("call-7", "+4930901820");
    c.ended_at = Some(1717236060);
    e.call_ended(&c).unwrap();
    drain(&e, 2).await;
    let h = &e.hooks("call-7").unwrap()[0];
    assert_eq!(h.state, HookState::Pending);
    assert!(h.attempts >= 1);
    assert!(
        h.last_error.as_deref().unwrap().contains("HTTP 503"),
        "{h:?}"
    );
    assert!(crm.records("calls").is_empty());
    crm.set_chaos(Chaos::default());
    drain(&e, 10).await;
    assert_eq!(e.hooks("call-7").unwrap()[0].state, HookState::Sent);
    assert_eq!(crm.records("calls").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_refusals_are_kept_with_the_crm_message_and_can_be_retried() {
    let crm = FakeCrm::start().await;
    let dir = temp_dir("perm");
    let e = engine(
        Store::open_in_memory().unwrap(),
        vec![helpdesk(&crm, &dir, "")],
    );
    // A pre-log id the CRM does not know: the update is refused (404) for good.
    let mut c = call("call-8", "+4930901820");
    c.ended_at = Some(1717236060);
    e.store()
        .enqueue("call-8", "desk", "PreCallJournal", &Map::new(), 0)
        .unwrap();
    let pre = e.store().claim_due("desk", 0, 1).unwrap().remove(0);
    e.store()
        .mark_sent(
            pre.id,
            &[("CallLogId".to_string(), json!("nope"))]
                .into_iter()
                .collect(),
            Some(201),
            0,
        )
        .unwrap();
    e.call_ended(&c).unwrap();
    drain(&e, 10).await;
    let h = e.hooks("call-8").unwrap().remove(1);
    assert_eq!(h.state, HookState::Failed);
    assert_eq!(h.last_status, Some(404));
    assert!(
        h.last_error
            .as_deref()
            .unwrap()
            .contains("request FinishCall failed: HTTP 404: no such call"),
        "{h:?}"
    );
    assert_eq!(h.attempts, 1, "a permanent error is not retried");
    assert_eq!(e.store().retry_failed(Some(h.id), 0).unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_are_honoured_and_learned() {
    let crm = FakeCrm::start().await;
    let dir = temp_dir("rate");
    let e = engine(
        Store::open_in_memory().unwrap(),
        vec![helpdesk(&crm, &dir, "")],
    );
    crm.set_chaos(Chaos {
        rate_per_sec: 5,
        burst: 2,
        ..Chaos::default()
    });
    for i in 0..12 {
        let mut c = call(&format!("rl-{i}"), "+4930901820");
        c.ended_at = Some(1717236060);
        e.call_ended(&c).unwrap();
    }
    drain(&e, 30).await;
    assert_eq!(crm.records("calls").len(), 12);
    // Requests already in flight when the first 429 came back may meet one too; after the
    // 1 s pause the engine paces itself under the announced rate, so no 429 comes later
    // (1.5 s leaves room for a loaded CI machine).
    let limited = crm.limited_times();
    assert!(!limited.is_empty(), "the test should hit the limit");
    let late: Vec<u128> = limited
        .iter()
        .map(|t| t.duration_since(limited[0]).as_millis())
        .filter(|ms| *ms > 1500)
        .collect();
    assert!(
        late.is_empty(),
        "429s after the engine learned the rate (ms after the first): {late:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_survive_a_restart() {
    let crm = FakeCrm::start().await;
    let dir = temp_dir("restart");
    let db = dir.join("callbox.db");
    {
        let e = engine(Store::open(&db).unwrap(), vec![helpdesk(&crm, &dir, "")]);
        let mut c = call("call-9", "+4930901820");
        c.ended_at = Some(1717236060);
        e.call_ended(&c).unwrap();
        // Crash while sending: the entry is claimed, never finished.
        e.store().claim_due("desk", i64::MAX / 2, 10).unwrap();
    }
    let e = engine(Store::open(&db).unwrap(), vec![helpdesk(&crm, &dir, "")]);
    drain(&e, 10).await;
    let h = &e.hooks("call-9").unwrap()[0];
    assert_eq!(h.state, HookState::Sent);
    assert_eq!(crm.records("calls").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_integrations_look_up_in_order_and_each_gets_its_log() {
    let desk_crm = FakeCrm::start().await;
    let hub_crm = FakeCrm::start().await;
    hub_crm.seed(
        "contacts",
        "51",
        json!({"firstname":"Carla","lastname":"Rossi","phone":"+14155551077"}),
    );
    let dir = temp_dir("multi");
    let desk = helpdesk(&desk_crm, &dir, "order = 2");
    std::fs::write(dir.join("hub.toml"), "template = \"hubspot\"\norder = 1\n").unwrap();
    let hub_config = integrations::load(&dir.join("hub.toml")).unwrap();
    let secrets: Map<String, Value> = [("access_token".to_string(), json!("pat-na1-secret"))]
        .into_iter()
        .collect();
    let hub = ActiveIntegration::new(
        hub_config,
        secrets,
        Arc::new(StaticCredentials::new("hub", vec![])),
    );
    let http = HttpClient::new(HttpSettings {
        origin_overrides: vec![("https://api.hubapi.com".into(), hub_crm.uri())],
        ..HttpSettings::default()
    })
    .unwrap();
    let e = Engine::new(
        Store::open_in_memory().unwrap(),
        ContactCache::in_memory().unwrap(),
        vec![hub, desk],
        http,
        Arc::new(Utc),
        EngineSettings::default(),
    );
    let mut c = call("multi-1", "+14155551077");
    let lookup = e.call_started(&c).await.unwrap();
    assert_eq!(
        lookup
            .matches
            .iter()
            .map(|m| m.integration.as_str())
            .collect::<Vec<_>>(),
        vec!["hub"]
    );
    assert_eq!(
        lookup.popup_url.as_deref(),
        Some("https://app.hubspot.com/contacts/62515/record/0-1/51")
    );
    c.answered_at = Some(1717236005);
    e.call_answered(&c).unwrap();
    c.ended_at = Some(1717236065);
    e.call_ended(&c).unwrap();
    drain(&e, 10).await;
    // HubSpot: pre-logged at answer, then the same call record completed.
    let hub_calls = hub_crm.records("calls");
    assert_eq!(hub_calls.len(), 1);
    assert_eq!(hub_calls[0].fields["hs_call_status"], "COMPLETED");
    assert_eq!(hub_calls[0].fields["hs_call_duration"], "60000");
    // The helpdesk logged it too, once.
    assert_eq!(desk_crm.records("calls").len(), 1);
    assert!(
        e.hooks("multi-1")
            .unwrap()
            .iter()
            .all(|h| h.state == HookState::Sent)
    );
}
