//! End to end: the real `callbox` binary in a real window (Xvfb), driven over WebDriver
//! (tauri-driver + WebKitWebDriver), registered at a real kamailio, called by a real baresip,
//! looking callers up in the fake CRM on 127.0.0.1, with its secrets in a real keychain
//! (gnome-keyring on the session bus), showing notifications through a real notification daemon
//! (dunst) while `dbus-monitor` records what the app asked of it.
//!
//! Runs when `CALLBOX_E2E=1` (scripts/test.sh sets it, inside Xvfb and a private D-Bus session
//! with an unlocked keyring). Screenshots of the main states land in `target/e2e/screenshots/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use callbox_core::secret::Secret;
use callbox_engine::fake_crm::FakeCrm;
use callbox_engine::secret_store::{KeychainStore, SecretKey, SecretStore};
use callbox_sip::lab::{AnswerMode, Baresip, Registrar, free_port};
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

const API_KEY: &str = "hd_e2e_5ecret_K3y";

fn enabled() -> bool {
    if std::env::var_os("CALLBOX_E2E").is_none() {
        eprintln!(
            "skipped: set CALLBOX_E2E=1 inside Xvfb and a D-Bus session (scripts/test.sh does)"
        );
        return false;
    }
    true
}

/// A fresh configuration for one run of the app.
struct Home {
    root: PathBuf,
}

impl Home {
    fn new(tag: &str) -> Home {
        let root = std::env::temp_dir().join(format!("callbox-e2e-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("config/callbox/integrations")).unwrap();
        std::fs::create_dir_all(root.join("data")).unwrap();
        Home { root }
    }

    fn config(&self) -> PathBuf {
        self.root.join("config")
    }

    fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    fn write(&self, relative: &str, text: &str) {
        std::fs::write(self.config().join("callbox").join(relative), text).unwrap();
    }

    /// The helpdesk integration against `crm`, the SIP account 1002 at `registrar`.
    fn configure(&self, crm: &FakeCrm, registrar: &Registrar) {
        self.write(
            "integrations/desk.toml",
            &format!(
                "template = \"example-helpdesk\"\ncreate_contacts = \"manual\"\n[fields]\nbase_url = \"{}\"\npriority = \"normal\"\n",
                crm.uri()
            ),
        );
        self.write(
            "telephony.toml",
            &format!(
                "registrar = \"{}\"\ndomain = \"127.0.0.1\"\nuser = \"1002\"\npassword = \"{}\"\nexpires = 60\n",
                registrar.address(),
                callbox_sip::lab::PASSWORD
            ),
        );
        self.write(
            "desktop.toml",
            "popup = \"ringing\"\nshortcut = \"ctrl+alt+d\"\nfirst_name = \"Eli\"\nlast_name = \"Ng\"\nemail = \"eli@example.com\"\n",
        );
        KeychainStore::new()
            .expect("keychain (run inside scripts/test.sh's D-Bus session)")
            .set(&SecretKey::new("desk", "api_key"), &Secret::new(API_KEY))
            .expect("store the API key");
    }

    /// The app's environment: its own home (start at login writes to `$HOME/.config/autostart`
    /// whatever `XDG_CONFIG_HOME` says) and configuration.
    fn envs(&self) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("HOME", self.root.clone()),
            ("XDG_CONFIG_HOME", self.config()),
            ("XDG_DATA_HOME", self.data()),
        ]
    }

    /// The app's log (today's file).
    fn log(&self) -> String {
        let dir = self.data().join("callbox/logs");
        let mut text = String::new();
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                text.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
            }
        }
        text
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        if std::env::var_os("CALLBOX_KEEP_LAB").is_none() {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// The desktop's notification daemon (dunst) and a record of the app's D-Bus traffic with it.
/// Dunst's action menu runs a "dmenu" script that picks the action the test chose, so an
/// Answer from the notification is a real `ActionInvoked` from the daemon.
struct Notifications {
    dir: PathBuf,
    daemon: Child,
    monitor: Child,
}

impl Notifications {
    fn start(home: &Home) -> Notifications {
        let dir = home.root.join("notifications");
        std::fs::create_dir_all(&dir).unwrap();
        let pick = dir.join("pick-action.sh");
        std::fs::write(
            &pick,
            format!(
                "#!/bin/sh\ngrep -m1 -F -- \"$(cat '{}')\"\n",
                dir.join("choice").display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pick, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(
            dir.join("dunstrc"),
            format!("[global]\n    dmenu = {}\n", pick.display()),
        )
        .unwrap();
        let daemon = Command::new("dunst")
            .arg("-config")
            .arg(dir.join("dunstrc"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("dunst.log")).unwrap())
            .spawn()
            .expect("dunst (apt-get install dunst)");
        // Asked without activating anything (dunstctl would start a second dunst by D-Bus
        // activation, racing this one for the name).
        wait_until("dunst on the session bus", 10, || {
            Command::new("dbus-send")
                .args([
                    "--session",
                    "--print-reply=literal",
                    "--dest=org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus.NameHasOwner",
                    "string:org.freedesktop.Notifications",
                ])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("true"))
        });
        let monitor = Command::new("dbus-monitor")
            .args(["--session", "interface='org.freedesktop.Notifications'"])
            .stdout(std::fs::File::create(dir.join("monitor.txt")).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-monitor");
        let log = dir.join("monitor.txt");
        wait_until("dbus-monitor", 10, || {
            std::fs::read_to_string(&log).is_ok_and(|t| t.contains("NameAcquired"))
        });
        Notifications {
            dir,
            daemon,
            monitor,
        }
    }

    /// What went over the bus to and from the daemon, as dbus-monitor prints it.
    fn traffic(&self) -> String {
        std::fs::read_to_string(self.dir.join("monitor.txt")).unwrap_or_default()
    }

    /// The `Notify` calls made so far, each as its printed arguments.
    fn notify_calls(&self) -> Vec<String> {
        self.traffic()
            .split("method call ")
            .filter(|m| m.contains("member=Notify\n"))
            .map(str::to_owned)
            .collect()
    }

    /// Picks `action` in the notification's action menu, as the agent would. Dunst's menu
    /// only lists notifications it already shows, a moment after `Notify`: the menu is opened
    /// again until dunst reports the action invoked.
    fn choose(&self, action: &str) {
        std::fs::write(self.dir.join("choice"), format!(",{action}]")).unwrap();
        let wanted = format!("string \"{action}\"");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            run(Command::new("dunstctl").arg("context"));
            std::thread::sleep(Duration::from_millis(300));
            let traffic = self.traffic();
            let invoked = traffic
                .split("member=ActionInvoked")
                .skip(1)
                .any(|signal| signal.lines().take(3).any(|line| line.trim() == wanted));
            if invoked {
                return;
            }
            if Instant::now() > deadline {
                let count = |what: &str| run(Command::new("dunstctl").args(["count", what]));
                panic!(
                    "dunst never invoked {action} (displayed {}, waiting {}, paused {}; its log: {}): {traffic}",
                    count("displayed").trim(),
                    count("waiting").trim(),
                    run(Command::new("dunstctl").arg("is-paused")).trim(),
                    std::fs::read_to_string(self.dir.join("dunst.log")).unwrap_or_default()
                        + &run(Command::new("dunstctl").arg("history"))
                );
            }
        }
    }
}

impl Drop for Notifications {
    fn drop(&mut self) {
        for child in [&mut self.monitor, &mut self.daemon] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// tauri-driver, and a WebDriver session on the app.
struct Driver {
    process: Child,
    client: Option<Client>,
}

fn tauri_driver() -> PathBuf {
    let home_bin =
        PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cargo/bin/tauri-driver");
    if home_bin.exists() {
        return home_bin;
    }
    PathBuf::from("tauri-driver")
}

impl Driver {
    /// tauri-driver and a session on the app. On a busy machine WebKitWebDriver sometimes never
    /// connects to the app it launched (the app is up, the session request hangs): the whole
    /// driver is then started again, up to three times.
    async fn start(home: &Home) -> Driver {
        let mut attempt = 1;
        loop {
            match Driver::try_start(home).await {
                Ok(driver) => return driver,
                Err(why) if attempt < 3 => {
                    eprintln!("no WebDriver session ({why}); starting the driver again");
                    attempt += 1;
                }
                Err(why) => panic!("no WebDriver session on callbox after {attempt} tries: {why}"),
            }
        }
    }

    async fn try_start(home: &Home) -> Result<Driver, String> {
        let port = free_port(false);
        let native = free_port(false);
        // Its own process group: WebKitWebDriver and the app are killed with it, so a failed
        // test leaves no Callbox behind (single-instance would hand the next one's launch to it).
        use std::os::unix::process::CommandExt;
        let process = Command::new(tauri_driver())
            .args([
                "--port",
                &port.to_string(),
                "--native-port",
                &native.to_string(),
            ])
            .process_group(0)
            .envs(home.envs())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tauri-driver (cargo install tauri-driver --version 2.1.0 --locked)");
        // From here on a failure kills it (Drop), app and all.
        let mut driver = Driver {
            process,
            client: None,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err("tauri-driver did not listen".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // tauri-driver listens before its WebKitWebDriver does: give that a moment.
        while TcpStream::connect(("127.0.0.1", native)).is_err() {
            if Instant::now() > deadline {
                return Err("WebKitWebDriver did not listen".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("wry"));
        capabilities.insert(
            "tauri:options".into(),
            json!({ "application": env!("CARGO_BIN_EXE_callbox") }),
        );
        let mut builder =
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
        builder.capabilities(capabilities);
        let address = format!("http://127.0.0.1:{port}");
        let client =
            match tokio::time::timeout(Duration::from_secs(30), builder.connect(&address)).await {
                Ok(Ok(client)) => client,
                Ok(Err(error)) => return Err(error.to_string()),
                Err(_) => return Err("the session request hung for 30 s".into()),
            };
        driver.client = Some(client);
        Ok(driver)
    }

    fn client(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    async fn stop(mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.close().await;
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.process.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.process.wait();
    }
}

/// Presses `modifier`+`key` in the window, as the agent's keyboard would.
async fn press(client: &Client, modifier: Key, key: char) {
    let keys = KeyActions::new("keyboard".into())
        .then(KeyAction::Down {
            value: modifier.into(),
        })
        .then(KeyAction::Down { value: key })
        .then(KeyAction::Up { value: key })
        .then(KeyAction::Up {
            value: modifier.into(),
        });
    client.perform_actions(keys).await.expect("key presses");
    client.release_actions().await.expect("keys released");
}

async fn wait_css(client: &Client, css: &str, seconds: u64) -> fantoccini::elements::Element {
    client
        .wait()
        .at_most(Duration::from_secs(seconds))
        .every(Duration::from_millis(50))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no `{css}` within {seconds} s: {e}"))
}

async fn wait_text(client: &Client, css: &str, want: &str, seconds: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Ok(element) = client.find(Locator::Css(css)).await
            && let Ok(text) = element.text().await
            && text.contains(want)
        {
            return text;
        }
        assert!(Instant::now() < deadline, "`{css}` never showed {want:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/e2e/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("screenshot");
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

fn wait_until(what: &str, seconds: u64, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {seconds} s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The agent's day: a call rings with the contact's page in the panel (which cannot reach the
/// app), is answered (pre-log), hung up (call log shown as sent); then click-to-call from a
/// `tel:` link and from selected text with the global shortcut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_rings_opens_the_contact_is_logged_and_click_to_call_works() {
    if !enabled() {
        return;
    }
    let crm = FakeCrm::start().await;
    crm.seed(
        "contacts",
        "c-1",
        json!({"first_name":"Jonas","last_name":"Weber","company":{"name":"Weber GmbH"},"phone":"+49 30 901820"}),
    );
    // A slow CRM search: the caller is known 2.5 s after the call starts ringing, later than
    // the notification waits for it (1.5 s).
    crm.set_chaos(callbox_engine::fake_crm::Chaos {
        read_delay: Duration::from_millis(2500),
        ..Default::default()
    });
    let registrar = Registrar::start();
    let mut caller = Baresip::start(&registrar, "+4930901820", 440, AnswerMode::Auto);
    let callee = Baresip::start(&registrar, "+14155550100", 440, AnswerMode::Auto);
    let home = Home::new("day");
    home.configure(&crm, &registrar);
    let notifications = Notifications::start(&home);

    let driver = Driver::start(&home).await;
    let client = driver.client();
    wait_css(
        client,
        "[data-test=registration][data-state=registered]",
        20,
    )
    .await;
    screenshot(client, "1-ready").await;

    // A call rings: the card, the notification, the contact's page in the panel.
    caller.command("dial", "sip:1002@127.0.0.1");
    wait_css(client, "[data-test=call-card][data-phase=ringing]", 15).await;
    wait_text(client, "[data-test=caller-name]", "Jonas Weber", 10).await;
    let frame = wait_css(client, "[data-test=panel-frame]", 10).await;
    assert_eq!(
        frame.attr("src").await.unwrap().as_deref(),
        Some(format!("{}/agent/contacts/c-1", crm.uri()).as_str())
    );
    // The notification: who, their company and number, Answer and Decline.
    // The CRM's search is slow (see above): the notification is shown with the number when
    // the call rings, and the same notification is replaced with the name when it arrives.
    let named = "string \"Incoming call: Jonas Weber\"";
    wait_until("the notification with the caller's name", 10, || {
        notifications
            .notify_calls()
            .iter()
            .any(|notify| notify.contains(named))
    });
    let calls = notifications.notify_calls();
    assert!(
        calls[0].contains("string \"Incoming call: +4930901820\""),
        "{}",
        calls[0]
    );
    let notify = calls
        .into_iter()
        .find(|notify| notify.contains(named))
        .unwrap();
    // Notify's second argument, replaces_id: 0 asks for a new notification; the update names
    // the one already shown.
    let replaces = |notify: &str| {
        let after = notify
            .split("string \"Callbox\"\n")
            .nth(1)
            .unwrap_or_default();
        after.lines().next().unwrap_or_default().trim().to_owned()
    };
    assert_eq!(replaces(&notifications.notify_calls()[0]), "uint32 0");
    assert!(
        replaces(&notify).starts_with("uint32 ") && replaces(&notify) != "uint32 0",
        "{notify}"
    );
    eprintln!("the notification as the daemon received it: {notify}");
    for want in [
        "string \"Incoming call: Jonas Weber\"",
        "Weber GmbH",
        "+4930901820",
        "string \"answer\"\n      string \"Answer\"",
        "string \"decline\"\n      string \"Decline\"",
    ] {
        assert!(notify.contains(want), "no {want:?} in {notify}");
    }

    // The CRM page runs, and everything it tries against the app fails.
    client.enter_frame(0).await.unwrap();
    wait_text(client, "#record-name", "Jonas Weber", 10).await;
    let probe_text = {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = client
                .find(Locator::Css("#probe"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            if text.starts_with('{') {
                break text;
            }
            assert!(Instant::now() < deadline, "the page's probe did not finish");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    client.enter_parent_frame().await.unwrap();
    let probe: Value = serde_json::from_str(&probe_text).unwrap();
    eprintln!("the CRM page's attempts to reach the app: {probe}");
    for attempt in ["snapshot", "dial", "parent", "fetch"] {
        let outcome = probe[attempt].as_str().unwrap_or("");
        assert!(
            outcome.starts_with("blocked") || outcome.starts_with("refused"),
            "the CRM page reached the app with {attempt}: {probe}"
        );
    }
    screenshot(client, "2-ringing").await;

    // Answer: talking, pre-logged in the CRM.
    click(client, "[data-test=answer]").await;
    wait_css(client, "[data-test=call-card][data-phase=up]", 10).await;
    caller.wait_event(Duration::from_secs(10), |e| e["type"] == "CALL_ESTABLISHED");
    wait_until("the notification closed once answered", 10, || {
        let traffic = notifications.traffic();
        traffic.contains("member=CloseNotification")
            && traffic.contains("member=NotificationClosed")
    });
    wait_until("the pre-log", 10, || crm.records("calls").len() == 1);
    wait_css(client, "[data-test=timer]", 5).await;
    screenshot(client, "3-connected").await;

    // Hang up: the call log updates the pre-logged record and shows as sent.
    click(client, "[data-test=hang-up]").await;
    caller.wait_event(Duration::from_secs(10), |e| e["type"] == "CALL_CLOSED");
    wait_css(
        client,
        "[data-test=recent-call] [data-hook=CallJournal][data-state=sent]",
        15,
    )
    .await;
    let logs = crm.records("calls");
    assert_eq!(logs.len(), 1, "one call log: {logs:?}");
    assert_eq!(logs[0].writes, 2, "pre-logged, then completed");
    assert_eq!(
        registrar.log().matches("REQ INVITE from sip:1002@").count(),
        0,
        "the CRM page placed a call"
    );
    screenshot(client, "4-logged").await;

    // An SMS to the caller: sent through the integration, then noted on their contact.
    type_into(client, "[data-test=dial-input]", "+49 30 901820").await;
    click(client, "[data-test=sms]").await;
    type_into(
        client,
        "[data-test=sms-text]",
        "Thanks for your call, Jonas.",
    )
    .await;
    click(client, "[data-test=sms-send]").await;
    wait_css(
        client,
        "[data-test=message] [data-hook=SmsNote][data-state=sent]",
        15,
    )
    .await;
    let sms = crm.records("sms");
    assert_eq!(sms.len(), 1, "{sms:?}");
    assert_eq!(sms[0].fields["to"], "+4930901820");
    assert_eq!(sms[0].fields["text"], "Thanks for your call, Jonas.");
    assert!(
        crm.records("notes")
            .iter()
            .any(|n| n.fields["contact_id"] == "c-1")
    );
    wait_css(client, "[data-test=dial-input]", 5)
        .await
        .clear()
        .await
        .unwrap();

    // Click-to-call: a tel: link opened the way browsers on GNOME open it (GIO reads the
    // handler Callbox registered); the second launch hands the link to the running app.
    let established = callee.count("CALL_ESTABLISHED");
    run(Command::new("gio")
        .arg("open")
        .arg("tel:+1-415-555-0100")
        .envs(home.envs()));
    wait_css(client, "[data-test=call-card][data-phase=up]", 15).await;
    wait_until("the tel: call answered", 10, || {
        callee.count("CALL_ESTABLISHED") > established
    });
    click(client, "[data-test=hang-up]").await;
    wait_until("the tel: call closed", 10, || {
        callee.count("CALL_CLOSED") > 0
    });

    // The global shortcut on selected text, formatted as people write it.
    let mut xclip = Command::new("xclip")
        .args(["-selection", "primary"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("xclip");
    {
        use std::io::Write;
        let mut stdin = xclip.stdin.take().unwrap();
        stdin
            .write_all(b"Call Ann at +1 (415) 555-0100 today")
            .unwrap();
    }
    let _ = xclip.wait();
    let established = callee.count("CALL_ESTABLISHED");
    run(Command::new("xdotool").args(["key", "--clearmodifiers", "ctrl+alt+d"]));
    wait_until("the shortcut's call answered", 15, || {
        callee.count("CALL_ESTABLISHED") > established
    });
    wait_css(client, "[data-test=call-card][data-phase=up]", 10).await;
    click(client, "[data-test=hang-up]").await;
    let invites = registrar.log();
    assert!(
        invites
            .matches("REQ INVITE from sip:1002@127.0.0.1 to sip:+14155550100@")
            .count()
            >= 2,
        "{invites}"
    );
    // The day is in the log, and no secret is.
    let log = home.log();
    assert!(log.contains("incoming-call notification shown"), "{log}");
    assert!(
        log.contains("phone registration registration=Registered { user: \"1002\" }"),
        "{log}"
    );
    assert!(
        !log.contains("REGISTER sip:"),
        "the SIP trace is off unless asked for"
    );
    assert!(
        !log.contains(API_KEY) && !log.contains(callbox_sip::lab::PASSWORD),
        "a secret in the log"
    );
    driver.stop().await;
}

/// A CRM that refuses to be framed opens in a window of its own; the panel says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crm_that_refuses_framing_opens_in_its_own_window() {
    if !enabled() {
        return;
    }
    let crm = FakeCrm::start().await;
    crm.seed(
        "contacts",
        "c-9",
        json!({"first_name":"Ana","last_name":"Silva","phone":"+351 21 000 0001"}),
    );
    crm.set_frame_policy(Some("DENY"));
    let registrar = Registrar::start();
    let mut caller = Baresip::start(&registrar, "+351210000001", 440, AnswerMode::Auto);
    let home = Home::new("framing");
    home.configure(&crm, &registrar);
    home.write(
        "desktop.toml",
        "popup = \"ringing\"\nframing_fallback = \"window\"\nstart_at_login = true\n",
    );
    let notifications = Notifications::start(&home);
    let driver = Driver::start(&home).await;
    let client = driver.client();
    wait_css(
        client,
        "[data-test=registration][data-state=registered]",
        20,
    )
    .await;
    // Start at login: the desktop's autostart entry runs this binary.
    let autostart = std::fs::read_dir(home.root.join(".config/autostart"))
        .expect("an autostart folder")
        .flatten()
        .map(|entry| std::fs::read_to_string(entry.path()).unwrap())
        .collect::<Vec<_>>();
    assert!(
        autostart
            .iter()
            .any(|entry| entry.contains(&format!("Exec={}", env!("CARGO_BIN_EXE_callbox")))),
        "{autostart:?}"
    );
    caller.command("dial", "sip:1002@127.0.0.1");
    wait_css(client, "[data-test=call-card][data-phase=ringing]", 15).await;
    let outside = wait_css(client, "[data-test=panel-outside]", 10).await;
    assert!(
        outside
            .text()
            .await
            .unwrap()
            .contains("X-Frame-Options: DENY")
    );
    assert!(
        client
            .find(Locator::Css("[data-test=panel-frame]"))
            .await
            .is_err()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.windows().await.unwrap().len() < 2 {
        assert!(Instant::now() < deadline, "no CRM window opened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    screenshot(client, "5-framing-refused").await;

    // Answered from the notification (the daemon's Answer), hung up from the keyboard.
    wait_until("the notification", 10, || {
        !notifications.notify_calls().is_empty()
    });
    notifications.choose("answer");
    wait_css(client, "[data-test=call-card][data-phase=up]", 10).await;
    caller.wait_event(Duration::from_secs(10), |e| e["type"] == "CALL_ESTABLISHED");
    assert!(notifications.traffic().contains("member=ActionInvoked"));
    press(client, Key::Control, 'e').await;
    caller.wait_event(Duration::from_secs(10), |e| e["type"] == "CALL_CLOSED");
    wait_css(client, "[data-test=recent-call]", 10).await;
    driver.stop().await;
}

/// Nothing configured: the window guides the agent instead of showing an empty phone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_run_guides_the_agent_through_setup() {
    if !enabled() {
        return;
    }
    let home = Home::new("first");
    let driver = Driver::start(&home).await;
    let client = driver.client();
    wait_css(client, "[data-test=first-run]", 20).await;
    wait_css(
        client,
        "[data-test=registration][data-state=not_configured]",
        5,
    )
    .await;
    let blocked = wait_css(client, "[data-test=call-blocked]", 5).await;
    assert!(blocked.text().await.unwrap().contains("SIP account"));
    assert!(
        wait_css(client, "[data-test=dial]", 5)
            .await
            .attr("disabled")
            .await
            .unwrap()
            .is_some()
    );
    screenshot(client, "0-first-run").await;
    // WebKit's own drawing unless CALLBOX_GRAPHICS asks otherwise.
    let want = "graphics=Accelerated reason=Default";
    let log = home.log();
    assert!(log.contains(want), "no {want:?} in {log}");
    driver.stop().await;
}

/// Scrolls `element` to the middle of the view (the settings view's sticky footer would
/// cover it otherwise).
async fn in_view(client: &Client, element: &fantoccini::elements::Element) {
    let as_arg = serde_json::to_value(element).unwrap();
    client
        .execute(
            "arguments[0].scrollIntoView({block: 'center'});",
            vec![as_arg],
        )
        .await
        .unwrap();
}

/// Clicks an element, scrolled into view first.
async fn click(client: &Client, css: &str) {
    let element = wait_css(client, css, 5).await;
    in_view(client, &element).await;
    element.click().await.unwrap();
}

/// Chooses `value` in a select, scrolled into view first.
async fn choose(client: &Client, css: &str, value: &str) {
    let select = wait_css(client, css, 5).await;
    in_view(client, &select).await;
    if let Err(error) = select.select_by_value(value).await {
        screenshot(client, "failed-choose").await;
        panic!("cannot choose {value:?} in {css}: {error:?}");
    }
}

/// Typed into a field (cleared first).
async fn type_into(client: &Client, css: &str, text: &str) {
    let field = wait_css(client, css, 5).await;
    in_view(client, &field).await;
    let current = field.prop("value").await.unwrap().unwrap_or_default();
    if !current.is_empty() {
        field.clear().await.unwrap();
    }
    if let Err(error) = field.send_keys(text).await {
        screenshot(client, "failed-type").await;
        panic!("cannot type into {css}: {error:?}");
    }
}

/// Setting up from the window: the SIP account and an integration with its secret field,
/// Test Connection, a template with errors refused with its place; after a restart Callbox
/// registers and finds callers with what was saved, and no secret is in any file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_set_up_the_phone_and_an_integration_from_the_window() {
    if !enabled() {
        return;
    }
    let crm = FakeCrm::start().await;
    crm.seed(
        "contacts",
        "c-5",
        json!({"first_name":"Lea","last_name":"Voss","phone":"+49 40 555 1234"}),
    );
    let registrar = Registrar::start();
    let home = Home::new("settings");
    // A sound device that records what it plays: ALSA's file device in this HOME's .asoundrc
    // (it shows in the device lists as "Callbox test tap").
    let tap = home.root.join("tap.raw");
    std::fs::write(
        home.root.join(".asoundrc"),
        format!(
            "pcm.callbox_tap {{\n type file\n slave.pcm \"null\"\n file \"{}\"\n format \"raw\"\n hint {{ show on description \"Callbox test tap\" }}\n}}\n",
            tap.display()
        ),
    )
    .unwrap();
    let driver = Driver::start(&home).await;
    let client = driver.client();
    wait_css(client, "[data-test=first-run-settings]", 20)
        .await
        .click()
        .await
        .unwrap();

    type_into(client, "[data-test=sip-registrar]", &registrar.address()).await;
    type_into(client, "[data-test=sip-user]", "1002").await;
    type_into(
        client,
        "[data-test=sip-password]",
        callbox_sip::lab::PASSWORD,
    )
    .await;
    click(client, "[data-test=save-phone]").await;
    wait_text(
        client,
        "[data-test=phone-settings] [data-test=saved]",
        "saved",
        5,
    )
    .await;

    type_into(client, "[data-test=integration-name]", "desk").await;
    choose(
        client,
        "[data-test=integration-template]",
        "example-helpdesk",
    )
    .await;
    click(client, "[data-test=add-integration]").await;
    let desk = "[data-test=integration][data-name=desk]";
    type_into(
        client,
        &format!("{desk} [data-test=field-base_url]"),
        &crm.uri(),
    )
    .await;
    type_into(
        client,
        &format!("{desk} [data-test=field-api_key]"),
        API_KEY,
    )
    .await;
    click(client, &format!("{desk} [data-test=save-integration]")).await;
    wait_text(client, &format!("{desk} [data-test=saved]"), "Saved", 5).await;
    type_into(
        client,
        &format!("{desk} [data-test=test-number]"),
        "+49 40 555 1234",
    )
    .await;
    click(client, &format!("{desk} [data-test=test-connection]")).await;
    wait_text(
        client,
        &format!("{desk} [data-test=saved]"),
        "Found: Lea Voss",
        10,
    )
    .await;

    // A template with an error: refused, with file:line:column.
    let broken = home.root.join("broken.xml");
    std::fs::write(
        &broken,
        "<Information Provider=\"crm\" Name=\"B\" AuthType=\"nope\">\n<Scenarios/>\n</Information>\n",
    )
    .unwrap();
    type_into(client, "[data-test=integration-name]", "broken").await;
    type_into(
        client,
        "[data-test=integration-file]",
        &broken.display().to_string(),
    )
    .await;
    click(client, "[data-test=add-integration]").await;
    let error = wait_text(
        client,
        "[data-test=integrations] [data-test=settings-error]",
        "broken.xml:1:",
        5,
    )
    .await;
    assert!(error.contains("AuthType"), "{error}");

    // Callbox's own settings: the record opens when the agent answers; calls play on the tap.
    choose(client, "[data-test=popup]", "answered").await;
    choose(client, "[data-test=audio_output]", "alsa:callbox_tap").await;
    click(client, "[data-test=save-desktop]").await;
    wait_text(
        client,
        "[data-test=desktop-settings] [data-test=saved]",
        "Saved",
        5,
    )
    .await;
    screenshot(client, "6-settings").await;

    // No secret in any file; both in the keychain.
    for file in ["telephony.toml", "integrations/desk.toml"] {
        let text = std::fs::read_to_string(home.config().join("callbox").join(file)).unwrap();
        assert!(
            !text.contains(API_KEY) && !text.contains(callbox_sip::lab::PASSWORD),
            "{file}: {text}"
        );
    }
    let keychain = KeychainStore::new().unwrap();
    assert!(
        keychain
            .get(&SecretKey::new("desk", "api_key"))
            .unwrap()
            .is_some()
    );

    // Apply: Callbox starts again by itself (outside this WebDriver session), and the new
    // process registers with the saved account.
    let starts = |log: &str| log.matches("window interactive").count();
    assert_eq!(starts(&home.log()), 1);
    let apply = wait_css(client, "[data-test=apply]", 5).await;
    assert!(apply.attr("disabled").await.unwrap().is_none());
    // The window goes away under the click, so WebDriver may report an error for it.
    let _ = apply.click().await;
    wait_until("Callbox running again after Apply", 30, || {
        starts(&home.log()) >= 2
    });
    registrar.wait_registered("1002", 1);
    driver.stop().await;

    // Callbox started again runs with what was saved: the caller is found, the record waits
    // for the answer, and the call plays on the chosen device.
    let driver = Driver::start(&home).await;
    let client = driver.client();
    wait_css(
        client,
        "[data-test=registration][data-state=registered]",
        20,
    )
    .await;
    let mut caller = Baresip::start(&registrar, "+49405551234", 440, AnswerMode::Auto);
    caller.command("dial", "sip:1002@127.0.0.1");
    wait_text(client, "[data-test=caller-name]", "Lea Voss", 15).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        client
            .find(Locator::Css("[data-test=panel-frame]"))
            .await
            .is_err(),
        "the record opened while ringing; the saved trigger is `answered`"
    );
    click(client, "[data-test=answer]").await;
    let frame = wait_css(client, "[data-test=panel-frame]", 10).await;
    assert_eq!(
        frame.attr("src").await.unwrap().as_deref(),
        Some(format!("{}/agent/contacts/c-5", crm.uri()).as_str())
    );
    caller.wait_event(Duration::from_secs(10), |e| e["type"] == "CALL_ESTABLISHED");
    wait_until("the call heard on the chosen device", 10, || {
        std::fs::read(&tap).is_ok_and(|sound| sound.iter().any(|byte| *byte != 0))
    });
    click(client, "[data-test=hang-up]").await;
    caller.wait_event(Duration::from_secs(10), |e| e["type"] == "CALL_CLOSED");
    driver.stop().await;
}
