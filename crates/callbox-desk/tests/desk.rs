//! The desk against a scripted phone and the stateful fake CRM on 127.0.0.1: the lookup and
//! panel when a call rings, the pre-log at answer, the call log at the end, the trigger
//! settings, do-not-disturb, contact creation, and CRMs that refuse to be framed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use callbox_contacts::ContactCache;
use callbox_core::call::Agent;
use callbox_core::functions::Utc;
use callbox_desk::{
    AlwaysFrame, CallPhase, Desk, DeskEvent, DeskSettings, FramingFallback, HttpFraming,
    PanelTarget, PopupTrigger, Presence,
};
use callbox_engine::fake_crm::FakeCrm;
use callbox_engine::hooks::{ActiveIntegration, Engine, EngineSettings};
use callbox_engine::integrations;
use callbox_engine::store::Store;
use callbox_engine::tokens::StaticCredentials;
use callbox_engine::{HttpClient, HttpSettings};
use callbox_sip::fake::{Request, ScriptedTelephony};
use callbox_sip::{RejectReason, Telephony};
use serde_json::{Map, Value, json};
use tokio::sync::broadcast::Receiver;

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("callbox-desk-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn helpdesk(crm: &FakeCrm, dir: &Path) -> ActiveIntegration {
    std::fs::write(
        dir.join("desk.toml"),
        format!(
            "template = \"example-helpdesk\"\ncreate_contacts = \"manual\"\n[fields]\nbase_url = \"{}\"\npriority = \"normal\"\n",
            crm.uri()
        ),
    )
    .unwrap();
    let config = integrations::load(&dir.join("desk.toml")).unwrap();
    let markers = config.integration.auth().token_invalid.clone();
    let secrets: Map<String, Value> = [("api_key".to_string(), json!("hd_live_5ecret_K3y"))]
        .into_iter()
        .collect();
    ActiveIntegration::new(
        config,
        secrets,
        Arc::new(StaticCredentials::new("desk", markers)),
    )
}

fn http() -> HttpClient {
    HttpClient::new(HttpSettings {
        timeout: Duration::from_secs(2),
        ..HttpSettings::default()
    })
    .unwrap()
}

fn engine(crm: &FakeCrm, tag: &str) -> Engine {
    let dir = temp_dir(tag);
    Engine::new(
        Store::open(&dir.join("callbox.db")).unwrap(),
        ContactCache::in_memory().unwrap(),
        vec![helpdesk(crm, &dir)],
        http(),
        Arc::new(Utc),
        EngineSettings {
            backoff_base: Duration::from_millis(200),
            backoff_cap: Duration::from_secs(1),
            ..EngineSettings::default()
        },
    )
}

fn settings(popup: PopupTrigger) -> DeskSettings {
    DeskSettings {
        popup,
        agent: Agent {
            extension: "1004".into(),
            first_name: "Eli".into(),
            last_name: "Ng".into(),
            email: "eli@example.com".into(),
        },
        sip_user: "1004".into(),
        ..DeskSettings::default()
    }
}

async fn next(
    events: &mut Receiver<DeskEvent>,
    what: &str,
    f: impl Fn(&DeskEvent) -> bool,
) -> DeskEvent {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .unwrap_or_else(|_| panic!("no {what} within 10 s"))
            .unwrap();
        if f(&event) {
            return event;
        }
    }
}

fn hooks_sent(event: &DeskEvent, hook: &str) -> bool {
    matches!(event, DeskEvent::Hooks { hooks, .. }
        if hooks.iter().any(|h| h.hook == hook && h.state == "sent"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ringing_call_opens_the_contact_once_and_is_prelogged_and_logged() {
    let crm = FakeCrm::start().await;
    crm.seed(
        "contacts",
        "c-1",
        json!({"first_name":"Jonas","last_name":"Weber","phone":"+49 30 901820","email":"j@weber.example"}),
    );
    let phone = Arc::new(ScriptedTelephony::default());
    let desk = Desk::start(
        phone.clone(),
        Some(engine(&crm, "life")),
        Arc::new(AlwaysFrame),
        settings(PopupTrigger::Ringing),
    );
    let mut events = desk.subscribe();

    phone.ring("+4930901820");
    let found = next(
        &mut events,
        "the contact",
        |e| matches!(e, DeskEvent::Call { call } if call.contact.is_some()),
    )
    .await;
    let DeskEvent::Call { call } = found else {
        unreachable!()
    };
    let contact = call.contact.clone().unwrap();
    assert_eq!(contact.name, "Jonas Weber");
    assert_eq!(contact.reason, "business number matched exactly");
    assert_eq!(call.phase, CallPhase::Ringing);
    let panel = next(&mut events, "the panel", |e| {
        matches!(e, DeskEvent::Panel { .. })
    })
    .await;
    let DeskEvent::Panel { panel } = panel else {
        unreachable!()
    };
    assert_eq!(panel.url, format!("{}/agent/contacts/c-1", crm.uri()));
    assert_eq!(panel.target, PanelTarget::Embedded);
    assert_eq!(panel.call_id, call.id);
    assert_eq!(desk.snapshot().calls.len(), 1);

    desk.answer(&call.id).unwrap();
    next(
        &mut events,
        "the answer",
        |e| matches!(e, DeskEvent::Call { call } if call.phase == CallPhase::Up),
    )
    .await;
    next(&mut events, "the pre-log sent", |e| {
        hooks_sent(e, "PreCallJournal")
    })
    .await;

    desk.hang_up(&call.id).unwrap();
    let ended = next(&mut events, "the end", |e| {
        matches!(e, DeskEvent::CallEnded { .. })
    })
    .await;
    let DeskEvent::CallEnded { call: ended } = ended else {
        unreachable!()
    };
    assert_eq!(ended.disposition.as_deref(), Some("completed"));
    next(&mut events, "the call log sent", |e| {
        hooks_sent(e, "CallJournal")
    })
    .await;

    let logs = crm.records("calls");
    assert_eq!(logs.len(), 1, "one call log: {logs:?}");
    assert_eq!(logs[0].writes, 2, "pre-logged, then updated");
    assert!(desk.snapshot().calls.is_empty());
    let recent = desk.recent(10).unwrap();
    assert_eq!(recent[0].call.id, call.id);
    assert!(
        recent[0].hooks.iter().all(|h| h.state == "sent"),
        "{recent:?}"
    );
    // The panel opened once.
    let mut more = 0;
    while let Ok(event) = events.try_recv() {
        if matches!(event, DeskEvent::Panel { .. }) {
            more += 1;
        }
    }
    assert_eq!(more, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_panel_waits_for_the_trigger_the_agent_chose() {
    let crm = FakeCrm::start().await;
    crm.seed(
        "contacts",
        "c-2",
        json!({"first_name":"Ana","last_name":"Silva","phone":"+351 21 000 0001"}),
    );
    let phone = Arc::new(ScriptedTelephony::default());
    let desk = Desk::start(
        phone.clone(),
        Some(engine(&crm, "trigger")),
        Arc::new(AlwaysFrame),
        settings(PopupTrigger::Answered),
    );
    let mut events = desk.subscribe();
    phone.ring("+351210000001");
    let found = next(
        &mut events,
        "the contact",
        |e| matches!(e, DeskEvent::Call { call } if call.contact.is_some()),
    )
    .await;
    let DeskEvent::Call { call } = found else {
        unreachable!()
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    while let Ok(event) = events.try_recv() {
        assert!(
            !matches!(event, DeskEvent::Panel { .. }),
            "opened before the answer"
        );
    }
    desk.answer(&call.id).unwrap();
    let panel = next(&mut events, "the panel", |e| {
        matches!(e, DeskEvent::Panel { .. })
    })
    .await;
    assert!(
        matches!(panel, DeskEvent::Panel { panel } if panel.url.ends_with("/agent/contacts/c-2"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn do_not_disturb_declines_busy_and_counts_a_missed_call() {
    let crm = FakeCrm::start().await;
    let phone = Arc::new(ScriptedTelephony::default());
    let desk = Desk::start(
        phone.clone(),
        Some(engine(&crm, "dnd")),
        Arc::new(AlwaysFrame),
        settings(PopupTrigger::Ringing),
    );
    let mut events = desk.subscribe();
    desk.set_presence(Presence::DoNotDisturb);
    let line = phone.ring("+4930111222");
    let ended = next(&mut events, "the end", |e| {
        matches!(e, DeskEvent::CallEnded { .. })
    })
    .await;
    assert!(
        matches!(ended, DeskEvent::CallEnded { call } if call.disposition.as_deref() == Some("rejected"))
    );
    assert!(
        phone
            .requests()
            .contains(&Request::Reject(line, RejectReason::Busy))
    );
    assert_eq!(desk.snapshot().missed, 1);
    desk.clear_missed();
    assert_eq!(desk.snapshot().missed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_caller_gets_a_contact_created_with_one_click() {
    let crm = FakeCrm::start().await;
    let phone = Arc::new(ScriptedTelephony::default());
    let desk = Desk::start(
        phone.clone(),
        Some(engine(&crm, "create")),
        Arc::new(AlwaysFrame),
        settings(PopupTrigger::Ringing),
    );
    let mut events = desk.subscribe();
    phone.ring("+4930999888");
    let looked = next(
        &mut events,
        "the lookup",
        |e| matches!(e, DeskEvent::Call { call } if !call.looking_up),
    )
    .await;
    let DeskEvent::Call { call } = looked else {
        unreachable!()
    };
    assert!(call.contact.is_none());
    desk.create_contact(&call.id, "desk").unwrap();
    next(&mut events, "the contact created", |e| {
        hooks_sent(e, "CreateNewContact")
    })
    .await;
    let contacts = crm.records("contacts");
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    assert_eq!(contacts[0].fields["phone"], "+4930999888");
    // Calls are refused when the role does not allow them.
    let mut blocked = settings(PopupTrigger::Ringing);
    blocked.call_blocked = Some("no Call permission".into());
    desk.set_settings(blocked);
    assert_eq!(desk.dial("+4930999888").unwrap_err().kind(), "not_allowed");
    assert!(
        !phone
            .requests()
            .iter()
            .any(|r| matches!(r, Request::Dial(_)))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crm_that_refuses_framing_opens_in_a_window() {
    let crm = FakeCrm::start().await;
    crm.seed(
        "contacts",
        "c-3",
        json!({"first_name":"Kai","last_name":"Berg","phone":"+49 40 123456"}),
    );
    crm.set_frame_policy(Some("DENY"));
    let phone = Arc::new(ScriptedTelephony::default());
    let mut config = settings(PopupTrigger::Ringing);
    config.framing_fallback = FramingFallback::Window;
    let desk = Desk::start(
        phone.clone(),
        Some(engine(&crm, "framing")),
        Arc::new(HttpFraming::new(http())),
        config,
    );
    let mut events = desk.subscribe();
    phone.ring("+4940123456");
    let panel = next(&mut events, "the panel", |e| {
        matches!(e, DeskEvent::Panel { .. })
    })
    .await;
    let DeskEvent::Panel { panel } = panel else {
        unreachable!()
    };
    assert_eq!(panel.target, PanelTarget::Window);
    assert!(panel.reason.unwrap().contains("X-Frame-Options: DENY"));

    crm.set_frame_policy(None);
    let framed = Desk::start(
        phone.clone(),
        None,
        Arc::new(HttpFraming::new(http())),
        settings(PopupTrigger::Ringing),
    );
    let mut events = framed.subscribe();
    framed.open_panel("x".into(), format!("{}/agent/contacts/c-3", crm.uri()));
    let panel = next(&mut events, "the panel", |e| {
        matches!(e, DeskEvent::Panel { .. })
    })
    .await;
    assert!(matches!(panel, DeskEvent::Panel { panel } if panel.target == PanelTarget::Embedded));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sms_is_sent_then_noted_on_the_contact() {
    let crm = FakeCrm::start().await;
    crm.seed(
        "contacts",
        "c-7",
        json!({"first_name":"Mia","last_name":"Roth","phone":"+49 30 555 0007"}),
    );
    let phone = Arc::new(ScriptedTelephony::default());
    let desk = Desk::start(
        phone.clone(),
        Some(engine(&crm, "sms")),
        Arc::new(AlwaysFrame),
        settings(PopupTrigger::Ringing),
    );
    assert_eq!(desk.snapshot().sms_senders, vec!["desk".to_string()]);
    let mut events = desk.subscribe();
    assert_eq!(
        desk.send_sms("+49 30 555 0007", "  ", None)
            .unwrap_err()
            .kind(),
        "not_allowed"
    );
    let id = desk
        .send_sms("+49 (30) 555-0007", "Your ticket #4711 is solved.", None)
        .unwrap();
    let sent = next(&mut events, "the SMS", |e| {
        matches!(e, DeskEvent::Sms { .. })
    })
    .await;
    assert!(
        matches!(&sent, DeskEvent::Sms { sms } if sms.number == "+49305550007" && sms.id == id)
    );
    next(&mut events, "the note", |e| hooks_sent(e, "SmsNote")).await;
    let sms = crm.records("sms");
    assert_eq!(sms.len(), 1, "{sms:?}");
    assert_eq!(sms[0].fields["text"], "Your ticket #4711 is solved.");
    assert_eq!(sms[0].fields["to"], "+49305550007");
    let notes = crm.records("notes");
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0].fields["contact_id"], "c-7");
    assert!(
        notes[0].fields["body"]
            .as_str()
            .unwrap()
            .contains("Your ticket #4711 is solved.")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sms_the_provider_refuses_is_never_noted() {
    let crm = FakeCrm::start().await;
    let phone = Arc::new(ScriptedTelephony::default());
    let desk = Desk::start(
        phone.clone(),
        Some(engine(&crm, "sms-refused")),
        Arc::new(AlwaysFrame),
        settings(PopupTrigger::Ringing),
    );
    let mut events = desk.subscribe();
    crm.set_chaos(callbox_engine::fake_crm::Chaos {
        down: true,
        ..Default::default()
    });
    desk.send_sms("+4930555000", "hello", None).unwrap();
    next(&mut events, "the retry", |e| {
        matches!(e, DeskEvent::Hooks { hooks, .. } if hooks.iter().any(|h| h.hook == "SendSms" && h.attempts >= 1 && h.state != "sent"))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(crm.records("notes").is_empty(), "noted before it was sent");
    crm.set_chaos(callbox_engine::fake_crm::Chaos::default());
    next(&mut events, "the note after the retry", |e| {
        hooks_sent(e, "SmsNote")
    })
    .await;
    assert_eq!(crm.records("sms").len(), 1);
}

/// Credentials that refuse until the agent signs in again (as an OAuth2 integration whose
/// refresh token was revoked).
struct RevokedUntilSignIn {
    signed_in: std::sync::atomic::AtomicBool,
}

impl callbox_engine::tokens::TokenSource for RevokedUntilSignIn {
    fn variables(
        &self,
        _now: i64,
    ) -> callbox_engine::tokens::BoxFuture<
        '_,
        Result<Map<String, Value>, callbox_engine::tokens::AuthFailure>,
    > {
        Box::pin(async move {
            if self.signed_in.load(std::sync::atomic::Ordering::SeqCst) {
                Ok(Map::new())
            } else {
                Err(callbox_engine::tokens::AuthFailure::NeedsSignIn {
                    integration: "desk".into(),
                    reason: "the refresh token was revoked".into(),
                })
            }
        })
    }

    fn is_token_invalid(&self, status: u16, _body: &str) -> bool {
        status == 401
    }

    fn refresh(
        &self,
        stale: Map<String, Value>,
        now: i64,
    ) -> callbox_engine::tokens::BoxFuture<
        '_,
        Result<Map<String, Value>, callbox_engine::tokens::AuthFailure>,
    > {
        let _ = stale;
        self.variables(now)
    }

    fn sign_in<'a>(
        &'a self,
        _opener: &'a dyn callbox_engine::BrowserOpener,
        _timeout: Duration,
        _now: i64,
    ) -> callbox_engine::tokens::BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.signed_in
                .store(true, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_sign_in_is_reported_and_signing_in_again_sends_what_waited() {
    let crm = FakeCrm::start().await;
    let dir = temp_dir("sign-in");
    let configured = helpdesk(&crm, &dir);
    let integration = ActiveIntegration::new(
        configured.config.clone(),
        [("api_key".to_string(), json!("k"))].into_iter().collect(),
        Arc::new(RevokedUntilSignIn {
            signed_in: std::sync::atomic::AtomicBool::new(false),
        }),
    );
    let engine = Engine::new(
        Store::open(&dir.join("callbox.db")).unwrap(),
        ContactCache::in_memory().unwrap(),
        vec![integration],
        http(),
        Arc::new(Utc),
        EngineSettings {
            backoff_base: Duration::from_millis(200),
            backoff_cap: Duration::from_secs(1),
            sign_in_wait: Duration::from_secs(3600),
            ..EngineSettings::default()
        },
    );
    let phone = Arc::new(ScriptedTelephony::default());
    let desk = Desk::start(
        phone.clone(),
        Some(engine),
        Arc::new(AlwaysFrame),
        settings(PopupTrigger::Never),
    );
    let mut events = desk.subscribe();
    let line = phone.ring("+4930777666");
    next(&mut events, "the call", |e| {
        matches!(e, DeskEvent::Call { .. })
    })
    .await;
    phone.answer(line).unwrap();
    phone.hang_up(line).unwrap();
    let needed = next(
        &mut events,
        "the sign-in prompt",
        |e| matches!(e, DeskEvent::SignIn { needed } if !needed.is_empty()),
    )
    .await;
    assert!(
        matches!(&needed, DeskEvent::SignIn { needed } if needed[0].integration == "desk" && needed[0].reason.contains("revoked"))
    );
    assert_eq!(desk.snapshot().sign_in_needed.len(), 1);
    assert!(crm.records("calls").is_empty());

    desk.sign_in("desk").unwrap();
    // Both happen, in either order: the prompt clears and the waiting call log goes out.
    let (mut cleared, mut logged) = (false, false);
    while !(cleared && logged) {
        let event = next(
            &mut events,
            "the prompt cleared and the call log sent",
            |e| {
                matches!(e, DeskEvent::SignIn { needed } if needed.is_empty())
                    || hooks_sent(e, "CallJournal")
            },
        )
        .await;
        cleared |= matches!(event, DeskEvent::SignIn { .. });
        logged |= hooks_sent(&event, "CallJournal");
    }
    assert_eq!(crm.records("calls").len(), 1);
}
