//! Lookups through the contacts cache against the fake CRM on 127.0.0.1: cache first (the CRM
//! asked once), always-query-CRM with the cache as fallback when the CRM is down, the negative
//! TTL, contacts created from Callbox found at once, stale contacts refreshed in the
//! background, several matches and the agent's choice.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use callbox_contacts::ContactCache;
use callbox_core::call::{Agent, Call, Direction};
use callbox_core::functions::Utc;
use callbox_engine::fake_crm::{Chaos, FakeCrm};
use callbox_engine::hooks::{ActiveIntegration, Engine, EngineSettings, MatchSource};
use callbox_engine::integrations;
use callbox_engine::outbox::Until;
use callbox_engine::store::Store;
use callbox_engine::tokens::StaticCredentials;
use callbox_engine::{HttpClient, HttpSettings};
use serde_json::{Map, Value, json};

const SEARCH: &str = "GET /api/v1/contacts/search";

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("callbox-contacts-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn helpdesk(crm: &FakeCrm, dir: &Path, extra: &str, contacts: &str) -> ActiveIntegration {
    std::fs::write(
        dir.join("desk.toml"),
        format!(
            "template = \"example-helpdesk\"\n{extra}\n[fields]\nbase_url = \"{}\"\npriority = \"normal\"\n[contacts]\ncountry = \"DE\"\n{contacts}\n",
            crm.uri()
        ),
    )
    .unwrap();
    let config = integrations::load(&dir.join("desk.toml")).unwrap();
    let markers = config.integration.auth().token_invalid.clone();
    let secrets: Map<String, Value> = [("api_key".to_string(), json!("hd_live_key"))]
        .into_iter()
        .collect();
    ActiveIntegration::new(
        config,
        secrets,
        Arc::new(StaticCredentials::new("desk", markers)),
    )
}

fn engine(dir: &Path, active: ActiveIntegration) -> Engine {
    let http = HttpClient::new(HttpSettings {
        timeout: Duration::from_secs(2),
        ..HttpSettings::default()
    })
    .unwrap();
    Engine::new(
        Store::open_in_memory().unwrap(),
        ContactCache::open(&dir.join("contacts.sqlite")).unwrap(),
        vec![active],
        http,
        Arc::new(Utc),
        EngineSettings {
            backoff_base: Duration::from_millis(200),
            backoff_cap: Duration::from_millis(500),
            ..EngineSettings::default()
        },
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
            ..Agent::default()
        },
        started_at: 1717236000,
        answered_at: None,
        ended_at: None,
        disposition: None,
        recording_url: None,
    }
}

fn seed_weber(crm: &FakeCrm) {
    crm.seed(
        "contacts",
        "c-1",
        json!({"first_name": "Jonas", "last_name": "Weber", "phone": "+49 30 901820"}),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_answers_repeat_callers_and_the_crm_is_asked_once() {
    let crm = FakeCrm::start().await;
    seed_weber(&crm);
    let dir = temp_dir("cache-first");
    let e = engine(&dir, helpdesk(&crm, &dir, "", ""));
    let first = e.call_started(&call("k-1", "+49 30 901820")).await.unwrap();
    assert_eq!(first.number.as_deref(), Some("+4930901820"));
    assert_eq!(first.matches.len(), 1);
    assert_eq!(first.matches[0].source, MatchSource::Crm);
    assert_eq!(first.matches[0].reason, "business number matched exactly");
    assert_eq!(crm.count(SEARCH), 1);
    // The same person, written another way: from the cache, the CRM not asked.
    for (id, text) in [
        ("k-2", "030 901820"),
        ("k-3", "0049 30 901820"),
        ("k-4", "+49 (0)30 901820"),
    ] {
        let again = e.call_started(&call(id, text)).await.unwrap();
        assert_eq!(again.matches.len(), 1, "{text}");
        assert_eq!(again.matches[0].source, MatchSource::Cache);
        assert_eq!(again.matches[0].get("LastName"), "Weber");
        assert!(
            again
                .popup_url
                .as_deref()
                .unwrap()
                .ends_with("/agent/contacts/c-1")
        );
    }
    assert_eq!(crm.count(SEARCH), 1);
    // Internal calls and withheld numbers are never looked up.
    e.call_started(&call("k-5", "1001")).await.unwrap();
    e.call_started(&call("k-6", "anonymous")).await.unwrap();
    assert_eq!(crm.count(SEARCH), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_numbers_are_not_asked_again_within_the_miss_ttl() {
    let crm = FakeCrm::start().await;
    let dir = temp_dir("miss");
    let e = engine(&dir, helpdesk(&crm, &dir, "", ""));
    for id in ["m-1", "m-2", "m-3"] {
        assert!(
            e.call_started(&call(id, "+49 89 1234567"))
                .await
                .unwrap()
                .matches
                .is_empty()
        );
    }
    assert_eq!(crm.count(SEARCH), 1, "one CRM search for three calls");
    // With a zero miss TTL the CRM is asked every time.
    let dir = temp_dir("miss-0");
    let e = engine(&dir, helpdesk(&crm, &dir, "", "miss_ttl_seconds = 0"));
    for id in ["m-4", "m-5"] {
        e.call_started(&call(id, "+49 89 1234567")).await.unwrap();
    }
    assert_eq!(crm.count(SEARCH), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_query_crm_asks_every_time_and_falls_back_to_the_cache_when_it_is_down() {
    let crm = FakeCrm::start().await;
    seed_weber(&crm);
    let dir = temp_dir("always");
    let e = engine(&dir, helpdesk(&crm, &dir, "", "always_query_crm = true"));
    for id in ["a-1", "a-2"] {
        let l = e.call_started(&call(id, "+4930901820")).await.unwrap();
        assert_eq!(l.matches[0].source, MatchSource::Crm);
    }
    assert_eq!(crm.count(SEARCH), 2);
    // The CRM goes down: the cached contact still pops, and the failure is reported.
    crm.set_chaos(Chaos {
        down: true,
        ..Chaos::default()
    });
    let l = e.call_started(&call("a-3", "+4930901820")).await.unwrap();
    assert_eq!(l.matches.len(), 1);
    assert_eq!(l.matches[0].source, MatchSource::Cache);
    assert_eq!(l.matches[0].get("ContactsId"), "c-1");
    assert!(l.popup_url.is_some());
    assert_eq!(l.errors.len(), 1, "{l:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_created_from_callbox_is_found_at_once_then_replaced_by_the_crm_record() {
    let crm = FakeCrm::start().await;
    let dir = temp_dir("created");
    let e = engine(
        &dir,
        helpdesk(&crm, &dir, "create_contacts = \"inbound\"", ""),
    );
    let mut first = call("n-1", "+49 40 5551234");
    first.remote_name = "Mia Schulz".into();
    let l = e.call_started(&first).await.unwrap();
    assert_eq!(l.creating, vec!["desk".to_string()]);
    // Called back before the outbox even sent the creation: found, by name. The CRM is asked
    // (it may know the number by now) and does not; the placeholder answers.
    let again = e.call_started(&call("n-2", "040 5551234")).await.unwrap();
    assert_eq!(again.matches.len(), 1, "{again:?}");
    assert!(again.matches[0].placeholder);
    assert_eq!(again.matches[0].get("ContactsId"), "created:n-1");
    assert_eq!(again.matches[0].get("LastName"), "Schulz");
    assert_eq!(crm.count(SEARCH), 2);
    // A third call within the miss TTL does not ask the CRM again.
    e.call_started(&call("n-2b", "+49 40 5551234"))
        .await
        .unwrap();
    assert_eq!(crm.count(SEARCH), 2);
    // The CRM creates it: the placeholder takes the CRM's id, and the call it was created
    // on logs to the new contact.
    e.run_outbox(Until::Drained {
        deadline: tokio::time::Instant::now() + Duration::from_secs(10),
    })
    .await
    .unwrap();
    let created = crm.records("contacts");
    assert_eq!(created.len(), 1);
    let later = e.call_started(&call("n-3", "+49405551234")).await.unwrap();
    assert_eq!(later.matches.len(), 1);
    assert_eq!(later.matches[0].get("ContactsId"), created[0].id);
    assert!(!later.matches[0].placeholder);
    first.answered_at = Some(1717236010);
    first.ended_at = Some(1717236070);
    e.call_ended(&first).unwrap();
    e.run_outbox(Until::Drained {
        deadline: tokio::time::Instant::now() + Duration::from_secs(10),
    })
    .await
    .unwrap();
    let calls = crm.records("calls");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].fields["contact_id"], created[0].id.as_str());
    // A refresh fetches the CRM's whole record (its popup URL too).
    assert_eq!(e.refresh_number("desk", "+49 40 5551234").await.unwrap(), 1);
    let fresh = e.call_started(&call("n-4", "+49405551234")).await.unwrap();
    assert!(
        fresh
            .popup_url
            .unwrap()
            .ends_with(&format!("/agent/contacts/{}", created[0].id))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_phonebook_names_callers_no_crm_knows_and_survives_refreshes() {
    let crm = FakeCrm::start().await;
    let dir = temp_dir("phonebook");
    let e = engine(&dir, helpdesk(&crm, &dir, "", ""));
    let rules = callbox_contacts::NumberRules::with_country(Some("DE".parse().unwrap()));
    let book = [
        callbox_contacts::ContactRecord {
            integration: "local".into(),
            id: "p-1".into(),
            first_name: "Pia".into(),
            last_name: "Lang".into(),
            numbers: vec![(
                callbox_contacts::PhoneField::MobileNumber,
                "0170 1234567".into(),
            )],
            ..Default::default()
        },
        callbox_contacts::ContactRecord {
            integration: "desk".into(),
            id: "d-1".into(),
            first_name: "Dora".into(),
            numbers: vec![(
                callbox_contacts::PhoneField::BusinessNumber,
                "089 7654321".into(),
            )],
            ..Default::default()
        },
    ];
    e.contacts()
        .import(book.into_iter().map(Ok), &rules, 1000)
        .unwrap();
    let l = e
        .call_started(&call("p-1", "+49 170 1234567"))
        .await
        .unwrap();
    assert_eq!(l.matches.len(), 1, "{l:?}");
    assert_eq!(l.matches[0].integration, "local");
    assert_eq!(l.matches[0].reason, "mobile matched exactly");
    assert_eq!(crm.count(SEARCH), 1, "the CRM was asked first");
    // An imported contact of an integration answers from the cache; a refresh that the CRM
    // answers with nothing does not remove it.
    let l = e
        .call_started(&call("p-2", "+49 89 7654321"))
        .await
        .unwrap();
    assert_eq!(l.matches[0].get("ContactsId"), "d-1");
    assert_eq!(e.refresh_number("desk", "+49 89 7654321").await.unwrap(), 0);
    assert_eq!(e.contacts().count(Some("desk")).unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_contacts_are_shown_then_refreshed_in_the_background() {
    let crm = FakeCrm::start().await;
    seed_weber(&crm);
    crm.seed(
        "contacts",
        "c-2",
        json!({"first_name": "Lena", "last_name": "Koch", "phone": "+49 221 777000"}),
    );
    let dir = temp_dir("stale");
    // Every cached contact is stale at once.
    let e = engine(&dir, helpdesk(&crm, &dir, "", "ttl_seconds = 0"));
    e.call_started(&call("s-1", "+4930901820")).await.unwrap();
    e.call_started(&call("s-2", "+49221777000")).await.unwrap();
    crm.update("contacts", "c-1", json!({"last_name": "Weber-Brandt"}));
    // The stale copy answers at once; the refresh runs behind it.
    let l = e.call_started(&call("s-3", "+4930901820")).await.unwrap();
    assert_eq!(l.matches[0].source, MatchSource::Cache);
    assert!(!l.matches[0].fresh);
    assert_eq!(l.matches[0].get("LastName"), "Weber");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let hits = e
            .contacts()
            .search(
                "weber-brandt",
                &callbox_contacts::NumberRules::default(),
                None,
                5,
            )
            .unwrap();
        if !hits.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the background refresh never landed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A contact deleted in the CRM leaves the cache on the next sweep.
    crm.delete("contacts", "c-2");
    let asked = e.refresh_stale_contacts(100).await.unwrap();
    assert!(asked >= 1);
    assert_eq!(e.contacts().count(Some("desk")).unwrap(), 1);
    assert!(
        e.contacts()
            .export(Some("desk"))
            .unwrap()
            .iter()
            .all(|r| r.id == "c-1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_matches_let_the_agent_choose_and_the_log_follows_the_choice() {
    let crm = FakeCrm::start().await;
    crm.seed(
        "contacts",
        "c-7",
        json!({"first_name": "Anna", "last_name": "Berg", "phone": "+49 30 555000"}),
    );
    crm.seed(
        "contacts",
        "c-8",
        json!({"first_name": "Ben", "last_name": "Berg", "phone": "+49-30-555000"}),
    );
    let dir = temp_dir("choose");
    let e = engine(&dir, helpdesk(&crm, &dir, "", ""));
    let mut c = call("w-1", "+4930555000");
    let l = e.call_started(&c).await.unwrap();
    assert_eq!(l.matches.len(), 2);
    assert!(l.needs_choice, "policy ask, two exact matches");
    assert_eq!(
        l.matches[0].get("ContactsId"),
        "c-7",
        "the CRM's order until the agent picks"
    );
    let url = e
        .choose_contact("w-1", "desk", &l.matches[1].fields)
        .unwrap();
    assert!(url.unwrap().ends_with("/agent/contacts/c-8"));
    c.answered_at = Some(1717236010);
    e.call_answered(&c).unwrap();
    e.run_outbox(Until::Drained {
        deadline: tokio::time::Instant::now() + Duration::from_secs(10),
    })
    .await
    .unwrap();
    let calls = crm.records("calls");
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].fields["contact_id"], "c-8",
        "the log goes to the chosen contact"
    );
}
