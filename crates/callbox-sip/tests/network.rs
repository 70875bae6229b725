//! Network changes against real peers (kamailio, baresip) on loopback. The whole of 127/8 is
//! local on Linux, so "moving" from 127.0.0.1 to 127.0.0.2 is a real change of source address:
//! new sockets, a new Contact at the registrar, new calls routed to it. Only the answer to
//! "which address reaches the registrar?" is scripted, because the test cannot re-plumb the
//! machine's routes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use callbox_sip::lab::{AnswerMode, Baresip, PASSWORD, Registrar};
use callbox_sip::{
    Account, Disposition, GeneratedAudio, NetworkWatch, Password, Route, SipAgent, Telephony,
    TelephonyEvent,
};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast::Receiver;

/// Routes as the test says: the address towards any target, and which addresses are gone.
#[derive(Default)]
struct ScriptedRoute {
    towards: Mutex<Option<IpAddr>>,
    gone: Mutex<Vec<IpAddr>>,
}

impl ScriptedRoute {
    fn set(&self, address: Option<&str>) {
        *self.towards.lock().unwrap() = address.map(|a| a.parse().unwrap());
    }
}

impl Route for ScriptedRoute {
    fn local_address_towards(&self, _target: SocketAddr) -> std::io::Result<IpAddr> {
        self.towards
            .lock()
            .unwrap()
            .ok_or_else(|| std::io::Error::other("network unreachable"))
    }

    fn is_local(&self, address: IpAddr) -> bool {
        !self.gone.lock().unwrap().contains(&address)
    }
}

fn account(registrar: &Registrar) -> Account {
    serde_json::from_value(serde_json::json!({
        "registrar": registrar.address(), "domain": "127.0.0.1", "user": "1002", "transport": "udp"
    }))
    .unwrap()
}

async fn wait_for(
    events: &mut Receiver<TelephonyEvent>,
    what: &str,
    matches: impl Fn(&TelephonyEvent) -> bool,
) -> TelephonyEvent {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .unwrap_or_else(|_| panic!("no {what} within 20 s"))
            .expect("event stream open");
        if matches(&event) {
            return event;
        }
    }
}

struct Lab {
    registrar: Registrar,
    far: Baresip,
    agent: SipAgent,
    events: Receiver<TelephonyEvent>,
    route: Arc<ScriptedRoute>,
}

async fn lab() -> Lab {
    let registrar = Registrar::start();
    let far = Baresip::start(&registrar, "1001", 440, AnswerMode::Auto);
    let route = Arc::new(ScriptedRoute::default());
    route.set(Some("127.0.0.1"));
    let agent = SipAgent::start_with(
        account(&registrar),
        Some(Password::new(PASSWORD)),
        Arc::new(GeneratedAudio {
            tone_hz: Some(1000.0),
            ..Default::default()
        }),
        NetworkWatch {
            interval: Duration::from_millis(100),
            route: route.clone(),
        },
    )
    .await
    .unwrap();
    let mut events = agent.subscribe();
    agent.register().unwrap();
    wait_for(&mut events, "registered", |e| {
        matches!(e, TelephonyEvent::Registered { .. })
    })
    .await;
    Lab {
        registrar,
        far,
        agent,
        events,
        route,
    }
}

/// baresip calls the agent; the agent answers. Returns the call.
async fn call_in(lab: &mut Lab) -> callbox_sip::CallId {
    lab.far.command("dial", "sip:1002@127.0.0.1");
    let incoming = wait_for(&mut lab.events, "incoming call", |e| {
        matches!(e, TelephonyEvent::Incoming { .. })
    })
    .await;
    let call = incoming.call().unwrap();
    lab.agent.answer(call).unwrap();
    wait_for(
        &mut lab.events,
        "answer",
        |e| matches!(e, TelephonyEvent::Answered { call: c, .. } if *c == call),
    )
    .await;
    call
}

/// Audio packets received on `call` during half a second.
async fn packets_in_half_a_second(agent: &SipAgent, call: callbox_sip::CallId) -> u64 {
    let before = agent.media_stats(call).expect("call has media").received;
    tokio::time::sleep(Duration::from_millis(500)).await;
    agent.media_stats(call).expect("call has media").received - before
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_and_new_calls_move_to_the_new_address_and_the_call_in_progress_stays_up() {
    let mut lab = lab().await;
    let first = call_in(&mut lab).await;
    assert!(packets_in_half_a_second(&lab.agent, first).await > 10);

    lab.route.set(Some("127.0.0.2"));
    let changed = wait_for(&mut lab.events, "network change", |e| {
        matches!(e, TelephonyEvent::NetworkChanged { .. })
    })
    .await;
    assert_eq!(
        changed,
        TelephonyEvent::NetworkChanged {
            previous: Some("127.0.0.1".into()),
            address: Some("127.0.0.2".into()),
        }
    );
    wait_for(&mut lab.events, "registering", |e| {
        matches!(e, TelephonyEvent::Registering)
    })
    .await;
    wait_for(&mut lab.events, "registered again", |e| {
        matches!(e, TelephonyEvent::Registered { .. })
    })
    .await;
    assert!(
        lab.agent.contact().contains("@127.0.0.2:"),
        "{}",
        lab.agent.contact()
    );
    let log = lab.registrar.log();
    assert!(
        log.lines()
            .any(|l| l.contains("REQ REGISTER from sip:1002@") && l.contains("(127.0.0.2:")),
        "kamailio saw no REGISTER from the new address:\n{log}"
    );
    // The old binding is removed (through the old address, which still exists here).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !lab.registrar.log().lines().any(|l| {
        l.contains("REQ REGISTER from sip:1002@")
            && l.contains("(127.0.0.1:")
            && l.contains("expires=0 ")
    }) {
        assert!(
            std::time::Instant::now() < deadline,
            "the old binding was not removed:\n{}",
            lab.registrar.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The call in progress is still up on the old address: audio flows and the far end's BYE
    // reaches it.
    assert!(packets_in_half_a_second(&lab.agent, first).await > 10);
    lab.far.command("hangup", "");
    let ended = wait_for(
        &mut lab.events,
        "the first call's end",
        |e| matches!(e, TelephonyEvent::Ended { call, .. } if *call == first),
    )
    .await;
    assert!(
        matches!(
            ended,
            TelephonyEvent::Ended {
                disposition: Disposition::Completed,
                sip_code: Some(200),
                ..
            }
        ),
        "{ended:?}"
    );

    // A new call reaches the agent at its new address, with audio both ways.
    let second = call_in(&mut lab).await;
    assert!(packets_in_half_a_second(&lab.agent, second).await > 10);
    let log = lab.registrar.log();
    assert!(
        log.lines()
            .any(|l| l.contains("RPL 200") && l.contains("INVITE") && l.contains("(127.0.0.2:")),
        "the 200 OK for the new call did not come from the new address:\n{log}"
    );
    lab.agent.hang_up(second).unwrap();
    wait_for(
        &mut lab.events,
        "the second call's end",
        |e| matches!(e, TelephonyEvent::Ended { call, .. } if *call == second),
    )
    .await;
    lab.agent.shutdown(Duration::from_secs(3)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_whose_address_is_gone_ends_as_failed_and_losing_the_network_is_reported() {
    let mut lab = lab().await;
    let call = call_in(&mut lab).await;
    let closed = lab.far.count("CALL_CLOSED");

    lab.route
        .gone
        .lock()
        .unwrap()
        .push("127.0.0.1".parse().unwrap());
    lab.route.set(Some("127.0.0.2"));
    let ended = wait_for(
        &mut lab.events,
        "the call's end",
        |e| matches!(e, TelephonyEvent::Ended { call: c, .. } if *c == call),
    )
    .await;
    match &ended {
        TelephonyEvent::Ended {
            disposition,
            reason,
            ..
        } => {
            assert_eq!(*disposition, Disposition::Failed);
            assert!(reason.contains("network changed"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // The far end is told (on loopback the old address can still send).
    lab.far
        .wait_count("CALL_CLOSED", closed + 1, Duration::from_secs(5));
    wait_for(&mut lab.events, "registered at the new address", |e| {
        matches!(e, TelephonyEvent::Registered { .. })
    })
    .await;

    // No network, then the same address back: both reported, and registration goes on.
    lab.route.set(None);
    let lost = wait_for(&mut lab.events, "network lost", |e| {
        matches!(e, TelephonyEvent::NetworkChanged { .. })
    })
    .await;
    assert_eq!(
        lost,
        TelephonyEvent::NetworkChanged {
            previous: Some("127.0.0.2".into()),
            address: None,
        }
    );
    lab.route.set(Some("127.0.0.2"));
    let back = wait_for(&mut lab.events, "network back", |e| {
        matches!(e, TelephonyEvent::NetworkChanged { .. })
    })
    .await;
    assert_eq!(
        back,
        TelephonyEvent::NetworkChanged {
            previous: None,
            address: Some("127.0.0.2".into()),
        }
    );
    let again = call_in(&mut lab).await;
    lab.agent.hang_up(again).unwrap();
    lab.agent.shutdown(Duration::from_secs(3)).await;
}
