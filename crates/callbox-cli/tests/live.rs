//! The live commands as admins and scripts use them: real `callbox-cli` processes, a fake CRM
//! on 127.0.0.1, a real SQLite store — `call simulate`, `outbox list|retry|run`,
//! `integration list|test`. The keychain-backed parts (secrets, bearer tokens, the chaos test)
//! run inside a real gnome-keyring session when `CALLBOX_KEYCHAIN_TEST` is set (scripts/test.sh
//! does that); without it they print a notice and pass.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use callbox_engine::fake_crm::{Chaos, FakeCrm};
use serde_json::{Value, json};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

struct Setup {
    dir: PathBuf,
}

impl Setup {
    fn new(tag: &str, files: &[(&str, String)]) -> Setup {
        let dir = std::env::temp_dir().join(format!("callbox-live-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("integrations")).unwrap();
        for (name, text) in files {
            std::fs::write(dir.join("integrations").join(name), text).unwrap();
        }
        Setup { dir }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_callbox-cli"));
        c.args(args)
            .arg("--data-dir")
            .arg(self.dir.join("data"))
            .arg("--integrations")
            .arg(self.dir.join("integrations"))
            .env("CALLBOX_BACKOFF_BASE_MS", "200")
            .env("CALLBOX_BACKOFF_CAP_MS", "1000")
            .env("CALLBOX_HTTP_TIMEOUT_MS", "2000");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let o = self.run(args);
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
            panic!(
                "{args:?}: {e}: {} {}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        })
    }
}

fn desk_config(crm: &FakeCrm, template: &Path, extra: &str) -> String {
    format!(
        "template = \"{}\"\n{extra}\n[fields]\nbase_url = \"{}\"\n",
        template.display(),
        crm.uri()
    )
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_call_goes_through_lookup_prelog_and_log() {
    let crm = FakeCrm::start().await;
    crm.seed(
        "contacts",
        "c-1",
        json!({"first_name": "Ann", "last_name": "Lee", "phone": "+1 415 555 0100"}),
    );
    let setup = Setup::new(
        "sim",
        &[(
            "desk.toml",
            desk_config(&crm, &fixture("acme-desk.xml"), ""),
        )],
    );
    let out = blocking(move || {
        let o = setup.run(&[
            "call",
            "simulate",
            "--from",
            "+14155550100",
            "--to",
            "1001",
            "--answer-after",
            "0",
            "--hangup-after",
            "1",
            "--call-id",
            "c-42",
            "--wait",
            "20",
        ]);
        (o, setup)
    })
    .await;
    let (o, setup) = out;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["call_id"], "c-42");
    assert_eq!(v["contacts"][0]["ContactsId"], "c-1");
    assert_eq!(v["contacts"][0]["integration"], "desk");
    assert_eq!(v["popup_url"], format!("{}/agent/contacts/c-1", crm.uri()));
    let hooks = v["hooks"].as_array().unwrap();
    assert_eq!(hooks.len(), 2);
    assert_eq!(
        (hooks[0]["hook"].as_str(), hooks[0]["state"].as_str()),
        (Some("PreCallJournal"), Some("sent"))
    );
    assert_eq!(
        (hooks[1]["hook"].as_str(), hooks[1]["state"].as_str()),
        (Some("CallJournal"), Some("sent"))
    );
    let calls = crm.records("calls");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].fields["status"], "Completed");
    assert_eq!(calls[0].fields["talk_seconds"], 1);

    // The same call again: nothing new is written.
    let o = setup.run(&[
        "call",
        "simulate",
        "--from",
        "+14155550100",
        "--to",
        "1001",
        "--answer-after",
        "0",
        "--hangup-after",
        "1",
        "--call-id",
        "c-42",
        "--wait",
        "5",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(crm.records("calls").len(), 1);

    let list = setup.json(&["outbox", "list", "--call", "c-42"]);
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[1]["attempts"], 1);

    let integrations = setup.json(&["integration", "list"]);
    assert_eq!(integrations[0]["name"], "desk");
    assert_eq!(integrations[0]["auth"], "none");
    assert_eq!(integrations[0]["credential"]["state"], "not_required");

    let test = setup.json(&["integration", "test", "desk", "--number", "+14155550100"]);
    assert_eq!(test["ok"], true);
    assert_eq!(test["contacts"][0]["FirstName"], "Ann");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_show_in_the_outbox_and_retry_sends_them() {
    let crm = FakeCrm::start().await;
    let setup = Setup::new(
        "retry",
        &[(
            "desk.toml",
            desk_config(&crm, &fixture("acme-desk.xml"), ""),
        )],
    );
    crm.set_chaos(Chaos {
        fail_before: 1.0,
        ..Chaos::default()
    });
    let (o, setup) = blocking(move || {
        let o = setup.run(&[
            "call",
            "simulate",
            "--from",
            "+14155550199",
            "--to",
            "1001",
            "--call-id",
            "c-7",
            "--wait",
            "1",
        ]);
        (o, setup)
    })
    .await;
    assert_eq!(o.status.code(), Some(1), "a pending hook is not success");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["hooks"][0]["hook"], "CallJournal");
    assert_eq!(v["hooks"][0]["state"], "pending");
    assert!(
        v["hooks"][0]["error"]
            .as_str()
            .unwrap()
            .contains("HTTP 503")
    );
    crm.set_chaos(Chaos::default());
    let (o, setup) = blocking(move || (setup.run(&["outbox", "run", "--wait", "10"]), setup)).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v, json!({"unfinished": 0, "failed": 0}));
    assert_eq!(crm.records("calls").len(), 1);
    assert_eq!(crm.records("calls")[0].fields["status"], "Missed");
    let list = setup.json(&["outbox", "list"]);
    assert_eq!(list[0]["state"], "sent");
    assert!(list[0]["attempts"].as_u64().unwrap() >= 2);
    // Nothing failed, so a retry of an id that is not failed is an error.
    let o = setup.run(&["outbox", "retry", "999"]);
    assert_eq!(o.status.code(), Some(2));
}

fn keychain_tests_enabled(name: &str) -> bool {
    if std::env::var_os("CALLBOX_KEYCHAIN_TEST").is_none() {
        eprintln!(
            "{name}: skipped (set CALLBOX_KEYCHAIN_TEST=1 inside a gnome-keyring session; scripts/test.sh does)"
        );
        return false;
    }
    true
}

fn set_secret(setup: &Setup, integration: &str, field: &str, value: &str) {
    use std::io::Write as _;
    let mut child = setup
        .cmd(&["secret", "set", integration, field])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{value}\n").as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
}

/// The chaos test: many calls against a CRM that fails, rate-limits, times out and expires the
/// token, while Callbox processes are killed with SIGKILL and restarted. At the end the CRM
/// holds exactly one call record per call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_every_call_is_logged_exactly_once() {
    if !keychain_tests_enabled("chaos_every_call_is_logged_exactly_once") {
        return;
    }
    let calls: usize = std::env::var("CALLBOX_CHAOS_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let crm = FakeCrm::start().await;
    crm.seed(
        "contacts",
        "c-1",
        json!({"first_name": "Ann", "phone": "+1 415 555 0100"}),
    );
    let setup = Setup::new(
        "chaos",
        &[(
            "desk.toml",
            format!(
                "{}client_id = \"chaos\"\n",
                desk_config(&crm, &fixture("acme-desk-bearer.xml"), "")
            ),
        )],
    );
    set_secret(&setup, "desk", "client_secret", "chaos-client-secret-9f");
    crm.set_chaos(Chaos {
        fail_before: 0.2,
        fail_after: 0.0,
        slow: 0.01,
        slow_delay: Duration::from_secs(4),
        rate_per_sec: 80,
        burst: 10,
        down: false,
        read_delay: Duration::ZERO,
    });
    let crm2 = crm.clone();
    let report = blocking(move || {
        let started = Instant::now();
        let mut kills = 0usize;
        let mut next_call = 0usize;
        let mut simulators: Vec<(usize, Child)> = Vec::new();
        let mut killed_calls: Vec<usize> = Vec::new();
        let spawn_outbox = |setup: &Setup| {
            setup
                .cmd(&["outbox", "run", "--wait", "3600"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        };
        let mut outbox = spawn_outbox(&setup);
        let mut rng: u64 = 0x9E3779B97F4A7C15;
        let mut random = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut token_expired = false;
        while next_call < calls || !simulators.is_empty() {
            while simulators.len() < 3 && next_call < calls {
                let id = next_call;
                next_call += 1;
                let child = setup
                    .cmd(&[
                        "call",
                        "simulate",
                        "--from",
                        "+14155550100",
                        "--to",
                        "1001",
                        "--answer-after",
                        "0",
                        "--hangup-after",
                        "0",
                        "--call-id",
                        &format!("chaos-{id}"),
                        "--wait",
                        "0",
                    ])
                    .stdout(Stdio::null())
                    .stderr(
                        std::fs::OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(setup.dir.join("simulate.err"))
                            .unwrap(),
                    )
                    .spawn()
                    .unwrap();
                simulators.push((id, child));
            }
            std::thread::sleep(Duration::from_millis(5));
            simulators.retain_mut(|(_, c)| c.try_wait().unwrap().is_none());
            // Every ~1/12 of the run, kill something at a random point.
            let due_kills = 12 * next_call / calls.max(1);
            if kills < due_kills {
                kills += 1;
                if random() % 2 == 0 && !simulators.is_empty() {
                    let i = (random() as usize) % simulators.len();
                    let (id, mut child) = simulators.swap_remove(i);
                    child.kill().unwrap();
                    child.wait().unwrap();
                    killed_calls.push(id);
                } else {
                    outbox.kill().unwrap();
                    outbox.wait().unwrap();
                    outbox = spawn_outbox(&setup);
                }
            }
            if !token_expired && next_call > calls / 2 {
                token_expired = true;
                crm2.expire_tokens();
            }
        }
        // A killed phone would report the call again when it comes back: deliver those events.
        for id in &killed_calls {
            let _ = setup.run(&[
                "call",
                "simulate",
                "--from",
                "+14155550100",
                "--to",
                "1001",
                "--answer-after",
                "0",
                "--hangup-after",
                "0",
                "--call-id",
                &format!("chaos-{id}"),
                "--wait",
                "0",
            ]);
        }
        outbox.kill().unwrap();
        outbox.wait().unwrap();
        crm2.set_chaos(Chaos::default());
        let drained = setup.run(&["outbox", "run", "--wait", "600"]);
        (kills, started.elapsed(), drained, setup)
    })
    .await;
    let (kills, elapsed, drained, setup) = report;
    assert!(kills >= 10, "only {kills} kills");
    // A Callbox process that was not killed never failed (no "database is locked", no panic).
    let errors = std::fs::read_to_string(setup.dir.join("simulate.err")).unwrap_or_default();
    assert!(
        !errors.contains("callbox-cli:") && !errors.contains("panicked"),
        "{errors}"
    );
    assert_eq!(
        drained.status.code(),
        Some(0),
        "{} {}",
        String::from_utf8_lossy(&drained.stdout),
        String::from_utf8_lossy(&drained.stderr)
    );
    let records = crm.records("calls");
    let mut per_call = std::collections::BTreeMap::<String, usize>::new();
    for r in &records {
        *per_call
            .entry(r.fields["call_id"].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
        assert!(
            matches!(r.fields["status"].as_str(), Some("Completed")),
            "not completed: {:?}",
            r.fields
        );
    }
    let duplicates: Vec<_> = per_call.iter().filter(|(_, n)| **n > 1).collect();
    assert!(duplicates.is_empty(), "duplicates: {duplicates:?}");
    assert_eq!(per_call.len(), calls, "every call logged");
    assert!(
        crm.count("401") >= 1 && crm.count("token") >= 2,
        "the token expired and was renewed: 401={} tokens={}",
        crm.count("401"),
        crm.count("token")
    );
    assert!(
        crm.count("503") > 0 && crm.count("slow") > 0,
        "the chaos happened"
    );
    // No secret in the store.
    for f in std::fs::read_dir(setup.dir.join("data")).unwrap() {
        let bytes = std::fs::read(f.unwrap().path()).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("chaos-client-secret-9f") && !text.contains("tok-1"));
    }
    eprintln!(
        "chaos: {calls} calls, {kills} SIGKILLs, {} CRM requests ({} 503, {} slow, {} 429, {} 401, {} tokens) in {:.0} s; records {} (duplicates 0)",
        crm.count("requests"),
        crm.count("503"),
        crm.count("slow"),
        crm.count("429"),
        crm.count("401"),
        crm.count("token"),
        elapsed.as_secs_f64(),
        records.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_run_fetches_a_bearer_token_and_refuses_oauth2_without_one() {
    let crm = FakeCrm::start().await;
    crm.seed(
        "contacts",
        "c-9",
        json!({"first_name": "Bo", "phone": "+1 415 555 0199"}),
    );
    let uri = crm.uri();
    let o = blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_callbox-cli"))
            .args(["template", "run"])
            .arg(fixture("acme-desk-bearer.xml"))
            .args([
                "--scenario",
                "SyncContactAuto",
                "--field",
                &format!("base_url={uri}"),
                "--field",
                "client_id=abc",
                "--field",
                "client_secret=s3cret-value",
                "--var",
                "Phone=+14155550199",
            ])
            .output()
            .unwrap()
    })
    .await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["contacts"][0]["ContactsId"], "c-9");
    assert_eq!(crm.count("token"), 1);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(!text.contains("s3cret-value") && !text.contains("tok-1"));
    let o = Command::new(env!("CARGO_BIN_EXE_callbox-cli"))
        .args([
            "template",
            "run",
            "../../templates/zoho-crm.xml",
            "--scenario",
            "SyncContactAuto",
            "--field",
            "api_domain=https://www.zohoapis.com",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("uses OAuth2"));
}
