//! `callbox-cli sip` against real SIP peers on 127.0.0.1: a fresh kamailio (registrar + proxy
//! with digest auth) per test and baresip as the far end, both started here. Audio is checked by
//! tone frequency at each end: Callbox sends 1000 Hz, baresip 440 Hz.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use callbox_sip::lab::{AnswerMode, Baresip, Registrar, Sipp, pcap_audio};
use callbox_sip::media::tone::dominant_frequency;
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Run {
    code: i32,
    events: Vec<Value>,
    stderr: String,
}

impl Run {
    fn kinds(&self) -> Vec<String> {
        self.events
            .iter()
            .map(|e| e["event"].as_str().unwrap_or("").to_owned())
            .collect()
    }

    fn summary(&self) -> &Value {
        self.events
            .last()
            .filter(|e| e["event"] == "summary")
            .expect("summary last")
    }

    fn find(&self, kind: &str) -> Vec<&Value> {
        self.events.iter().filter(|e| e["event"] == kind).collect()
    }
}

fn cli() -> Command {
    Command::new(env!("CARGO_BIN_EXE_callbox-cli"))
}

fn spawn(args: &[&str], account: &Path) -> Child {
    cli()
        .arg("sip")
        .args(args)
        .arg("--account")
        .arg(account)
        .env_remove("CALLBOX_SIP_PASSWORD")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("callbox-cli starts")
}

fn finish(child: Child, limit: Duration) -> Run {
    let pid = child.id();
    let deadline = Instant::now() + limit;
    let watchdog = std::thread::spawn(move || {
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            if !Path::new(&format!("/proc/{pid}")).exists() {
                return;
            }
        }
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    });
    let output = child.wait_with_output().expect("callbox-cli output");
    let _ = watchdog.join();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let events = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    Run {
        code: output.status.code().unwrap_or(-1),
        events,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn run(args: &[&str], account: &Path) -> Run {
    finish(spawn(args, account), Duration::from_secs(90))
}

fn wait_registered(registrar: &Registrar, user: &str) {
    registrar.wait_registered(user, 1);
}

fn near(hz: &Value, expected: f64) -> bool {
    hz.as_f64().is_some_and(|hz| (hz - expected).abs() <= 20.0)
}

#[test]
fn register_with_digest_then_unregister() {
    let registrar = Registrar::start();
    let account = registrar.account_file("1002", "udp");
    let run = run(&["register"], &account);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.kinds(),
        vec!["registering", "registered", "unregistered", "summary"]
    );
    assert_eq!(run.summary()["registered"], true);
    let log = registrar.log();
    // 401 challenge, authenticated REGISTER, then the Expires: 0 one on exit (also challenged).
    assert!(
        log.matches("REQ REGISTER from sip:1002@127.0.0.1").count() >= 3,
        "{log}"
    );
}

#[test]
fn a_wrong_password_fails_with_the_registrars_answer() {
    let registrar = Registrar::start();
    let account = registrar.account_file("1002", "udp");
    let text = std::fs::read_to_string(&account)
        .unwrap()
        .replace("\"secret\"", "\"wrong\"");
    std::fs::write(&account, text).unwrap();
    let run = run(&["register"], &account);
    assert_eq!(run.code, 1);
    let failed = run.find("registration_failed");
    assert_eq!(
        failed.first().map(|e| e["sip_code"].clone()),
        Some(Value::from(401)),
        "{:?}",
        run.events
    );
    assert!(run.stderr.contains("401"), "{}", run.stderr);
}

#[test]
fn outbound_call_with_proxy_auth_audio_both_ways_dtmf_and_hold() {
    let registrar = Registrar::start();
    let far = Baresip::start(&registrar, "1001", 440, AnswerMode::Auto);
    let account = registrar.account_file("1002", "udp");
    let run = run(
        &[
            "call",
            "sip:1001@127.0.0.1",
            "--tone",
            "1000",
            "--dtmf",
            "1#9",
            "--hold-after",
            "2",
            "--duration",
            "6",
        ],
        &account,
    );
    assert_eq!(run.code, 0, "{}\n{:?}", run.stderr, run.events);
    assert_eq!(
        run.kinds(),
        vec![
            "dialing", "ringing", "answered", "held", "resumed", "ended", "summary"
        ],
        "{:?}",
        run.events
    );
    let ended = run.find("ended")[0];
    assert_eq!(ended["disposition"], "completed");
    assert_eq!(ended["sip_code"], 200);
    assert!(ended["duration_s"].as_f64().unwrap() >= 5.5);
    // What Callbox heard: baresip's 440 Hz; what baresip heard: Callbox's 1000 Hz.
    assert!(
        near(&run.summary()["received_hz"], 440.0),
        "{}",
        run.summary()
    );
    let heard = far.received_hz();
    assert!(
        heard.is_some_and(|hz| (hz - 1000.0).abs() <= 20.0),
        "baresip heard {heard:?}"
    );
    // The INVITE met kamailio's 407 and was sent again with credentials.
    assert!(
        registrar
            .log()
            .matches("REQ INVITE from sip:1002@127.0.0.1")
            .count()
            >= 2
    );
    // baresip saw the digits (RFC 4733) and the hold.
    let digits: String = far
        .events()
        .iter()
        .filter(|e| e["type"] == "CALL_DTMF_START")
        .filter_map(|e| e["param"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(digits, "1#9", "{:?}", far.event_types());
}

#[test]
fn inbound_call_audio_both_ways_remote_dtmf_and_remote_hold() {
    let registrar = Registrar::start();
    let mut far = Baresip::start(&registrar, "1001", 440, AnswerMode::Auto);
    let account = registrar.account_file("1002", "udp");
    let agent = spawn(&["answer", "--tone", "1000", "--duration", "7"], &account);
    wait_registered(&registrar, "1002");
    far.command("dial", "sip:1002@127.0.0.1");
    far.wait_event(Duration::from_secs(10), |e| e["type"] == "CALL_ESTABLISHED");
    std::thread::sleep(Duration::from_secs(1));
    far.command("sndcode", "4");
    std::thread::sleep(Duration::from_millis(600));
    far.command("hold", "");
    std::thread::sleep(Duration::from_secs(1));
    far.command("resume", "");
    let run = finish(agent, Duration::from_secs(60));
    assert_eq!(run.code, 0, "{}\n{:?}", run.stderr, run.events);
    let incoming = run.find("incoming")[0];
    assert_eq!(incoming["number"], "1001");
    assert_eq!(incoming["waiting"], false);
    assert_eq!(run.summary()["dtmf_received"], "4");
    assert_eq!(run.find("held")[0]["by_remote"], true, "{:?}", run.events);
    assert_eq!(run.find("resumed")[0]["by_remote"], true);
    assert!(
        near(&run.summary()["received_hz"], 440.0),
        "{}",
        run.summary()
    );
    let heard = far.received_hz();
    assert!(
        heard.is_some_and(|hz| (hz - 1000.0).abs() <= 20.0),
        "baresip heard {heard:?}"
    );
}

#[test]
fn the_far_end_hangs_up_either_direction() {
    let registrar = Registrar::start();
    let mut far = Baresip::start(&registrar, "1001", 440, AnswerMode::Auto);
    let account = registrar.account_file("1002", "udp");
    // Outbound: Callbox would stay 30 s; baresip sends BYE after 2.
    let agent = spawn(
        &["call", "sip:1001@127.0.0.1", "--duration", "30"],
        &account,
    );
    far.wait_event(Duration::from_secs(10), |e| e["type"] == "CALL_ESTABLISHED");
    std::thread::sleep(Duration::from_secs(2));
    far.command("hangup", "");
    let run = finish(agent, Duration::from_secs(40));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let ended = run.find("ended")[0];
    assert_eq!(ended["disposition"], "completed");
    assert_eq!(ended["reason"], "hung up by the far end");

    // Inbound: baresip calls and hangs up after 2 s.
    let agent = spawn(&["answer", "--duration", "30"], &account);
    wait_registered(&registrar, "1002");
    let established_before = far.count("CALL_ESTABLISHED");
    far.command("dial", "sip:1002@127.0.0.1");
    far.wait_count(
        "CALL_ESTABLISHED",
        established_before + 1,
        Duration::from_secs(10),
    );
    std::thread::sleep(Duration::from_secs(2));
    far.command("hangup", "");
    let run = finish(agent, Duration::from_secs(40));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.find("ended")[0]["reason"], "hung up by the far end");
}

#[test]
fn cancel_before_answer_both_ways() {
    let registrar = Registrar::start();
    let mut far = Baresip::start(&registrar, "1001", 440, AnswerMode::Manual);
    let account = registrar.account_file("1002", "udp");
    // Callbox calls and gives up after 1.5 s of ringing: CANCEL, 487.
    let run = run(
        &["call", "sip:1001@127.0.0.1", "--cancel-after", "1.5"],
        &account,
    );
    assert_eq!(run.code, 0, "{}\n{:?}", run.stderr, run.events);
    assert_eq!(run.kinds(), vec!["dialing", "ringing", "ended", "summary"]);
    assert_eq!(run.find("ended")[0]["disposition"], "cancelled");
    far.wait_event(Duration::from_secs(5), |e| e["type"] == "CALL_CLOSED");

    // baresip calls and gives up before Callbox answers (it would answer after 10 s).
    let agent = spawn(&["answer", "--answer-after", "10"], &account);
    wait_registered(&registrar, "1002");
    far.command("dial", "sip:1002@127.0.0.1");
    std::thread::sleep(Duration::from_millis(1500));
    far.command("hangup", "");
    let run = finish(agent, Duration::from_secs(40));
    assert_eq!(run.code, 0, "{}\n{:?}", run.stderr, run.events);
    let ended = run.find("ended")[0];
    assert_eq!(ended["disposition"], "missed");
    assert_eq!(ended["sip_code"], 487);
}

#[test]
fn rejecting_busy_reaches_the_caller() {
    let registrar = Registrar::start();
    let mut far = Baresip::start(&registrar, "1001", 440, AnswerMode::Auto);
    let account = registrar.account_file("1002", "udp");
    let agent = spawn(&["answer", "--reject", "busy"], &account);
    wait_registered(&registrar, "1002");
    far.command("dial", "sip:1002@127.0.0.1");
    let run = finish(agent, Duration::from_secs(40));
    assert_eq!(run.code, 0, "{}\n{:?}", run.stderr, run.events);
    let ended = run.find("ended")[0];
    assert_eq!(ended["disposition"], "rejected");
    assert_eq!(ended["sip_code"], 486);
    let closed = far.wait_event(Duration::from_secs(5), |e| e["type"] == "CALL_CLOSED");
    assert!(closed.to_string().contains("486"), "{closed}");
}

#[test]
fn a_second_call_waits_and_is_answered_after_the_first() {
    let registrar = Registrar::start();
    let mut first = Baresip::start(&registrar, "1001", 440, AnswerMode::Auto);
    let mut second = Baresip::start(&registrar, "1003", 440, AnswerMode::Auto);
    let account = registrar.account_file("1002", "udp");
    let agent = spawn(&["answer", "--duration", "4", "--take-waiting"], &account);
    wait_registered(&registrar, "1002");
    first.command("dial", "sip:1002@127.0.0.1");
    first.wait_event(Duration::from_secs(10), |e| e["type"] == "CALL_ESTABLISHED");
    std::thread::sleep(Duration::from_secs(1));
    second.command("dial", "sip:1002@127.0.0.1");
    second.wait_event(Duration::from_secs(20), |e| e["type"] == "CALL_ESTABLISHED");
    let run = finish(agent, Duration::from_secs(60));
    assert_eq!(run.code, 0, "{}\n{:?}", run.stderr, run.events);
    let incoming = run.find("incoming");
    assert_eq!(incoming.len(), 2, "{:?}", run.events);
    assert_eq!(incoming[0]["waiting"], false);
    assert_eq!(incoming[1]["waiting"], true);
    assert_eq!(incoming[1]["number"], "1003");
    assert_eq!(run.summary()["answered"], 2);
    let ended: Vec<_> = run
        .find("ended")
        .iter()
        .map(|e| e["call"].clone())
        .collect();
    assert_eq!(
        ended,
        vec![incoming[0]["call"].clone(), incoming[1]["call"].clone()]
    );
}

#[test]
fn blind_transfer_hands_the_call_to_the_target() {
    let registrar = Registrar::start();
    let far = Baresip::start(&registrar, "1001", 440, AnswerMode::Auto);
    let target = Baresip::start(&registrar, "1003", 440, AnswerMode::Auto);
    let account = registrar.account_file("1002", "udp");
    let run = run(
        &[
            "call",
            "sip:1001@127.0.0.1",
            "--transfer",
            "sip:1003@127.0.0.1",
            "--duration",
            "15",
        ],
        &account,
    );
    assert_eq!(run.code, 0, "{}\n{:?}", run.stderr, run.events);
    // The REFER's 202 and the first NOTIFY (100 Trying) are separate transactions that arrive
    // together: either may be reported first. The target's 200, reported by the last NOTIFY,
    // ends the call.
    let codes: Vec<Value> = run
        .find("transfer")
        .iter()
        .map(|t| t["sip_code"].clone())
        .collect();
    assert!(
        codes.contains(&Value::from(202)),
        "not accepted: {:?}",
        run.events
    );
    assert_eq!(codes.last(), Some(&Value::from(200)), "{:?}", run.events);
    let ended = run.find("ended")[0];
    assert_eq!(ended["disposition"], "transferred");
    // The far end called the transfer target.
    let established =
        target.wait_event(Duration::from_secs(10), |e| e["type"] == "CALL_ESTABLISHED");
    assert!(
        established["peeruri"]
            .as_str()
            .unwrap_or("")
            .contains("1001"),
        "{established}"
    );
    drop(far);
}

#[test]
fn tcp_transport_both_directions() {
    let registrar = Registrar::start();
    let mut far = Baresip::start(&registrar, "1001", 440, AnswerMode::Auto);
    let account = registrar.account_file("1002", "tcp");
    let run = run(
        &[
            "call",
            "sip:1001@127.0.0.1",
            "--tone",
            "1000",
            "--duration",
            "3",
        ],
        &account,
    );
    assert_eq!(run.code, 0, "{}\n{:?}", run.stderr, run.events);
    assert!(
        near(&run.summary()["received_hz"], 440.0),
        "{}",
        run.summary()
    );
    assert!(
        registrar
            .log()
            .contains("REQ INVITE from sip:1002@127.0.0.1")
    );

    let agent = spawn(&["answer", "--tone", "1000", "--duration", "3"], &account);
    wait_registered(&registrar, "1002");
    far.command("dial", "sip:1002@127.0.0.1");
    let run = finish(agent, Duration::from_secs(40));
    assert_eq!(run.code, 0, "{}\n{:?}", run.stderr, run.events);
    assert!(
        near(&run.summary()["received_hz"], 440.0),
        "{}",
        run.summary()
    );
}

#[test]
fn tls_transport_both_directions() {
    let registrar = Registrar::start_tls();
    let mut far = Baresip::start(&registrar, "1001", 440, AnswerMode::Auto);
    let account = registrar.account_file("1002", "tls");
    let run = run(
        &[
            "call",
            "sip:1001@127.0.0.1",
            "--tone",
            "1000",
            "--duration",
            "3",
        ],
        &account,
    );
    assert_eq!(
        run.code,
        0,
        "{}\n{:?}\n{}",
        run.stderr,
        run.events,
        registrar.log()
    );
    assert!(
        near(&run.summary()["received_hz"], 440.0),
        "{}",
        run.summary()
    );

    let agent = spawn(&["answer", "--tone", "1000", "--duration", "3"], &account);
    wait_registered(&registrar, "1002");
    far.command("dial", "sip:1002@127.0.0.1");
    let run = finish(agent, Duration::from_secs(40));
    assert_eq!(run.code, 0, "{}\n{:?}", run.stderr, run.events);
    assert!(
        near(&run.summary()["received_hz"], 440.0),
        "{}",
        run.summary()
    );
}

#[test]
fn re_registers_after_the_registrar_restarts() {
    let mut registrar = Registrar::start();
    let mut far = Baresip::start(&registrar, "1001", 440, AnswerMode::Auto);
    let account = registrar.account_file("1002", "udp");
    let text = std::fs::read_to_string(&account)
        .unwrap()
        .replace("\"transport\"", "\"expires\":4,\"transport\"");
    std::fs::write(&account, text).unwrap();
    let agent = spawn(&["answer", "--wait", "40", "--duration", "2"], &account);
    registrar.wait_registered("1002", 1);
    // The restarted registrar has forgotten every binding.
    let before = registrar.log().len();
    registrar.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    while registrar.log()[before..]
        .matches("REQ REGISTER from sip:1002@")
        .count()
        < 2
    {
        assert!(Instant::now() < deadline, "no REGISTER after the restart");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    // Reachable again: a call through the new registrar finds Callbox.
    far.command("dial", "sip:1002@127.0.0.1");
    let run = finish(agent, Duration::from_secs(60));
    assert_eq!(run.code, 0, "{}\n{:?}", run.stderr, run.events);
    assert_eq!(run.summary()["answered"], 1);
}

/// Sets a key of a JSON account file.
fn set(account: &Path, key: &str, value: Value) {
    let mut json: Value = serde_json::from_str(&std::fs::read_to_string(account).unwrap()).unwrap();
    json[key] = value;
    std::fs::write(account, json.to_string()).unwrap();
}

#[test]
fn sipp_pcap_audio_and_dtmf_reach_the_agent() {
    let registrar = Registrar::start();
    let account = registrar.account_file("1002", "udp");
    let port = callbox_sip::lab::free_port(false);
    set(&account, "local_port", Value::from(port));
    let agent = spawn(&["answer", "--duration", "30"], &account);
    wait_registered(&registrar, "1002");
    let mut sipp = Sipp::uac_pcap(&format!("127.0.0.1:{port}"), "1002");
    assert!(sipp.wait(Duration::from_secs(60)), "{}", sipp.log());
    let run = finish(agent, Duration::from_secs(40));
    assert_eq!(run.code, 0, "{}\n{:?}", run.stderr, run.events);
    assert_eq!(run.find("answered")[0]["codec"], "PCMA");
    assert_eq!(run.summary()["dtmf_received"], "1");
    // What arrived is what the pcap holds: same dominant frequency.
    let sent = pcap_audio(&Path::new(callbox_sip::lab::SIPP_PCAPS).join("g711a.pcap"));
    let expected = dominant_frequency(&sent, 8000).expect("the pcap has audio");
    assert!(
        near(&run.summary()["received_hz"], expected),
        "{} vs {expected}",
        run.summary()
    );
}

const EARLY_MEDIA_UAS: &str = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="183 with early media, then 200">
  <recv request="INVITE" crlf="true"/>
  <send><![CDATA[
SIP/2.0 183 Session Progress
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000

]]></send>
  <nop><action><exec play_pcap_audio="pcap/g711a.pcap"/></action></nop>
  <pause milliseconds="3000"/>
  <send retrans="500"><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=user1 53655765 2353687638 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000

]]></send>
  <recv request="ACK" crlf="true"/>
  <recv request="BYE"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
</scenario>
"#;

const BUSY_UAS: &str = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="486 Busy Here">
  <recv request="INVITE" crlf="true"/>
  <send><![CDATA[
SIP/2.0 486 Busy Here
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <recv request="ACK"/>
</scenario>
"#;

#[test]
fn early_media_plays_before_the_answer() {
    let mut sipp = Sipp::uas(EARLY_MEDIA_UAS);
    let dir = tempdir();
    let account = dir.join("sipp.json");
    std::fs::write(
        &account,
        format!(r#"{{"registrar":"127.0.0.1:{}","user":"1002"}}"#, sipp.port),
    )
    .unwrap();
    let run = run(
        &["call", "sip:service@127.0.0.1", "--duration", "1"],
        &account,
    );
    assert_eq!(
        run.code,
        0,
        "{}\n{:?}\n{}",
        run.stderr,
        run.events,
        sipp.log()
    );
    assert_eq!(
        run.kinds(),
        vec!["dialing", "progress", "answered", "ended", "summary"],
        "{:?}",
        run.events
    );
    let progress = run.find("progress")[0];
    assert_eq!(progress["sip_code"], 183);
    assert_eq!(progress["early_media"], true);
    // The pcap played only during the 3 s of early media, yet it was heard.
    let sent = pcap_audio(&Path::new(callbox_sip::lab::SIPP_PCAPS).join("g711a.pcap"));
    let expected = dominant_frequency(&sent, 8000).expect("the pcap has audio");
    assert!(
        near(&run.summary()["received_hz"], expected),
        "{} vs {expected}",
        run.summary()
    );
    assert!(sipp.wait(Duration::from_secs(20)), "{}", sipp.log());
}

#[test]
fn a_busy_far_end_is_reported_with_its_cause() {
    let mut sipp = Sipp::uas(BUSY_UAS);
    let dir = tempdir();
    let account = dir.join("sipp.json");
    std::fs::write(
        &account,
        format!(r#"{{"registrar":"127.0.0.1:{}","user":"1002"}}"#, sipp.port),
    )
    .unwrap();
    let run = run(&["call", "sip:service@127.0.0.1"], &account);
    assert_eq!(run.code, 1);
    let ended = run.find("ended")[0];
    assert_eq!(ended["disposition"], "busy");
    assert_eq!(ended["sip_code"], 486);
    assert!(run.stderr.contains("486"), "{}", run.stderr);
    assert!(sipp.wait(Duration::from_secs(10)), "{}", sipp.log());
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "callbox-sip-test-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Messages a broken or hostile peer might send (after RFC 4475's torture tests): none may
/// crash the agent or stop it answering the next real call.
fn torture_messages() -> Vec<Vec<u8>> {
    let mut messages: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"\r\n\r\n".to_vec(),
        b"garbage".to_vec(),
        vec![0xFF; 1400],
        (0..=255u8).collect(),
        b"INVITE sip:1002@127.0.0.1 SIP/2.0\r\n\r\n".to_vec(),
        b"INVITE sip:1002@127.0.0.1 SIP/7.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK1\r\n\r\n".to_vec(),
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKnope\r\nCSeq: 1 INVITE\r\n\r\n".to_vec(),
        b"BYE sip:1002@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK2\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:1002@127.0.0.1>;tag=2\r\nCall-ID: none\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n".to_vec(),
        b"OPTIONS sip:1002@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK3\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:1002@127.0.0.1>\r\nCall-ID: x\r\nCSeq: 99999999999999999999 OPTIONS\r\nContent-Length: -5\r\n\r\n".to_vec(),
        b"INVITE sip:1002@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK4\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:1002@127.0.0.1>\r\nCall-ID: y\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: 9999\r\n\r\nv=0\r\n".to_vec(),
        b"INVITE sip:1002@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK5\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:1002@127.0.0.1>\r\nCall-ID: z\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: 22\r\n\r\nm=audio 99999 RTP/AVP\r\n".to_vec(),
        b"INVITE <sip:1002@127.0.0.1> SIP/2.0\r\nVia: ;;;\r\nFrom: \"\r\nTo: <\r\n\r\n".to_vec(),
        "INVITE sip:1002@127.0.0.1 SIP/2.0\r\nFrom: \u{1F4DE}\u{0}\r\n\r\n".as_bytes().to_vec(),
    ];
    let mut long =
        b"OPTIONS sip:1002@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK6\r\n"
            .to_vec();
    for _ in 0..500 {
        long.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    long.extend_from_slice(b"\r\n");
    messages.push(long);
    messages
}

#[test]
fn malformed_sip_does_not_stop_the_agent() {
    let registrar = Registrar::start();
    let account = registrar.account_file("1002", "udp");
    let port = callbox_sip::lab::free_port(false);
    set(&account, "local_port", Value::from(port));
    let agent = spawn(&["answer", "--duration", "2", "--wait", "60"], &account);
    wait_registered(&registrar, "1002");
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..3 {
        for message in torture_messages() {
            let _ = socket.send_to(&message, ("127.0.0.1", port));
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    // Still alive and still answering.
    let mut far = Baresip::start(&registrar, "1001", 440, AnswerMode::Auto);
    far.command("dial", "sip:1002@127.0.0.1");
    let run = finish(agent, Duration::from_secs(60));
    assert_eq!(run.code, 0, "{}\n{:?}", run.stderr, run.events);
    assert_eq!(run.summary()["answered"], 1);
    let answered_from: Vec<_> = run
        .find("incoming")
        .iter()
        .map(|e| e["number"].clone())
        .collect();
    assert_eq!(answered_from, vec![Value::from("1001")], "{:?}", run.events);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

#[test]
fn the_configured_telephony_account_is_used_without_an_account_file() {
    let registrar = Registrar::start();
    let config = tempdir();
    std::fs::create_dir_all(config.join("integrations")).unwrap();
    std::fs::write(
        config.join("telephony.toml"),
        format!("registrar = \"{}\"\ndomain = \"127.0.0.1\"\nuser = \"1002\"\nnumber = \"+14155550102\"\n", registrar.address()),
    )
    .unwrap();
    // The password comes from the keychain, else CALLBOX_SIP_PASSWORD (used here).
    let output = cli()
        .args(["sip", "register", "--integrations"])
        .arg(config.join("integrations"))
        .env("CALLBOX_SIP_PASSWORD", "secret")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("\"registered\""), "{stdout}");
    // Without any account the message names the file to write.
    let empty = tempdir();
    let output = cli()
        .args(["sip", "register", "--integrations"])
        .arg(empty.join("integrations"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("telephony.toml"));
}

#[test]
fn system_audio_opens_the_os_devices_and_the_call_goes_through() {
    // No sound card on test machines: ALSA's `null` device stands in for a headset.
    let devices = cli().args(["sip", "devices"]).output().unwrap();
    assert_eq!(devices.status.code(), Some(0));
    let listed = String::from_utf8_lossy(&devices.stdout);
    assert!(listed.contains("\"id\":\"alsa:null\""), "{listed}");
    let registrar = Registrar::start();
    let far = Baresip::start(&registrar, "1001", 440, AnswerMode::Auto);
    let account = registrar.account_file("1002", "udp");
    let run = run(
        &[
            "call",
            "sip:1001@127.0.0.1",
            "--system-audio",
            "--input",
            "alsa:null",
            "--output",
            "alsa:null",
            "--duration",
            "2",
        ],
        &account,
    );
    assert_eq!(run.code, 0, "{}\n{:?}", run.stderr, run.events);
    assert_eq!(run.find("ended")[0]["disposition"], "completed");
    // The null microphone records zeros: baresip hears silence, not a tone.
    assert_eq!(far.received_hz(), None);
}

#[test]
fn opus_calls_both_ways_with_a_baresip_that_speaks_only_opus() {
    let registrar = Registrar::start();
    let mut far =
        Baresip::start_with_codecs(&registrar, "1001", 440, AnswerMode::Auto, "opus/48000/2");
    let account = registrar.account_file("1002", "udp");
    let run = run(
        &[
            "call",
            "sip:1001@127.0.0.1",
            "--tone",
            "1000",
            "--dtmf",
            "7",
            "--duration",
            "4",
        ],
        &account,
    );
    assert_eq!(run.code, 0, "{}\n{:?}", run.stderr, run.events);
    assert_eq!(run.find("answered")[0]["codec"], "opus");
    assert!(
        near(&run.summary()["received_hz"], 440.0),
        "{}",
        run.summary()
    );
    let heard = far.received_hz();
    assert!(
        heard.is_some_and(|hz| (hz - 1000.0).abs() <= 20.0),
        "baresip heard {heard:?}"
    );
    let digits: String = far
        .events()
        .iter()
        .filter(|e| e["type"] == "CALL_DTMF_START")
        .filter_map(|e| e["param"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(digits, "7", "{:?}", far.event_types());

    let agent = spawn(&["answer", "--tone", "1000", "--duration", "3"], &account);
    wait_registered(&registrar, "1002");
    far.command("dial", "sip:1002@127.0.0.1");
    let run = finish(agent, Duration::from_secs(40));
    assert_eq!(run.code, 0, "{}\n{:?}", run.stderr, run.events);
    assert_eq!(run.find("answered")[0]["codec"], "opus");
    assert!(
        near(&run.summary()["received_hz"], 440.0),
        "{}",
        run.summary()
    );
}
