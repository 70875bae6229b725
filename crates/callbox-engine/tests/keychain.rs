//! The OS keychain for real: a gnome-keyring Secret Service on a private D-Bus session.
//!
//! Skipped (passing, with a notice) unless `CALLBOX_KEYCHAIN_TEST` is set; `scripts/test.sh`
//! sets it inside `dbus-run-session` with an unlocked gnome-keyring:
//!
//! ```sh
//! XDG_DATA_HOME=$(mktemp -d) dbus-run-session -- sh -c 'echo -n pw | gnome-keyring-daemon \
//!   --unlock --components=secrets >/dev/null; CALLBOX_KEYCHAIN_TEST=1 cargo test -p callbox-engine --test keychain'
//! ```
//!
//! The tests change the session's keyring (they lock it at the end): never run them with
//! `CALLBOX_KEYCHAIN_TEST` set on a desktop session you care about.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::process::Command;

use callbox_core::secret::Secret;
use callbox_engine::{KeychainStore, SecretError, SecretKey, SecretStore};

fn enabled(test: &str) -> bool {
    let on = std::env::var_os("CALLBOX_KEYCHAIN_TEST").is_some();
    if !on {
        // Straight to stderr, past the test harness's capture, so the skip is visible.
        let _ = writeln!(
            std::io::stderr(),
            "{test}: skipped: set CALLBOX_KEYCHAIN_TEST=1 on a session with a Secret Service \
             (scripts/test.sh runs it inside dbus-run-session with gnome-keyring)"
        );
    }
    on
}

/// What `secret-tool` (libsecret, another Secret Service client) finds under a key: proves
/// the value is in the keychain under service `callbox` and account `<integration>/<name>`.
fn secret_tool_lookup(key: &SecretKey) -> Option<String> {
    let out = Command::new("secret-tool")
        .args(["lookup", "service", "callbox", "username", &key.account()])
        .output()
        .expect("secret-tool (libsecret-tools) is installed");
    out.status
        .success()
        .then(|| String::from_utf8(out.stdout).unwrap())
}

/// Integration names unique to this run, so runs never see each other's secrets.
fn integration(name: &str) -> String {
    format!("test-{}-{name}", std::process::id())
}

#[test]
fn secrets_round_trip_through_the_keychain_and_a_locked_one_says_so() {
    if !enabled("secrets_round_trip_through_the_keychain_and_a_locked_one_says_so") {
        return;
    }
    let store = KeychainStore::new().expect("the Secret Service is running and unlocked");
    let zoho_secret = SecretKey::new(&integration("zoho"), "client_secret");
    let zoho_tokens = SecretKey::tokens(&integration("zoho"));
    let desk_key = SecretKey::new(&integration("desk"), "api_key");

    // Missing: None, and deleting it is fine.
    assert_eq!(store.get(&zoho_secret).unwrap(), None);
    store.delete(&zoho_secret).unwrap();

    // Set, get, and another client sees it where it should be.
    store
        .set(&zoho_secret, &Secret::new("first value"))
        .unwrap();
    assert_eq!(
        store.get(&zoho_secret).unwrap(),
        Some(Secret::new("first value"))
    );
    assert_eq!(
        secret_tool_lookup(&zoho_secret).as_deref(),
        Some("first value")
    );

    // Overwrite with unicode and newlines.
    let tricky = "pässwörd 🔑 秘密\nsecond line\r\n\ttab \"quotes\" \\ end";
    store.set(&zoho_secret, &Secret::new(tricky)).unwrap();
    assert_eq!(store.get(&zoho_secret).unwrap(), Some(Secret::new(tricky)));

    // Several integrations and names side by side.
    let blob = r#"{"access_token":"at","refresh_token":"rt","expires_at":1700003600}"#;
    store.set(&zoho_tokens, &Secret::new(blob)).unwrap();
    store.set(&desk_key, &Secret::new("desk-key")).unwrap();
    assert_eq!(store.get(&zoho_tokens).unwrap(), Some(Secret::new(blob)));
    assert_eq!(store.get(&desk_key).unwrap(), Some(Secret::new("desk-key")));
    assert_eq!(store.get(&zoho_secret).unwrap(), Some(Secret::new(tricky)));

    // A second store (another app start) reads the same values.
    let reopened = KeychainStore::new().unwrap();
    assert_eq!(
        reopened.get(&desk_key).unwrap(),
        Some(Secret::new("desk-key"))
    );

    // Delete one; the others stay.
    store.delete(&zoho_secret).unwrap();
    assert_eq!(store.get(&zoho_secret).unwrap(), None);
    assert_eq!(secret_tool_lookup(&zoho_secret), None);
    store.delete(&zoho_secret).unwrap();
    assert_eq!(store.get(&desk_key).unwrap(), Some(Secret::new("desk-key")));
    store.delete(&desk_key).unwrap();

    // Lock the login keyring (as a screen lock or a timeout would). With no one to type the
    // password (no display for the prompt), reading and writing are a clear error.
    let locked = Command::new("dbus-send")
        .args([
            "--session",
            "--print-reply",
            "--dest=org.freedesktop.secrets",
            "/org/freedesktop/secrets",
            "org.freedesktop.Secret.Service.Lock",
            "array:objpath:/org/freedesktop/secrets/collection/login",
        ])
        .output()
        .expect("dbus-send is installed");
    assert!(
        locked.status.success(),
        "{}",
        String::from_utf8_lossy(&locked.stderr)
    );
    let read = store.get(&zoho_tokens).unwrap_err();
    let write = store
        .set(&SecretKey::new(&integration("x"), "y"), &Secret::new("z"))
        .unwrap_err();
    for e in [&read, &write] {
        println!("locked keychain: {e}");
        assert!(matches!(e, SecretError::Locked { .. }), "{e:?}");
        assert!(e.to_string().contains("unlock"), "{e}");
        assert!(!format!("{e} {e:?}").contains("refresh_token"), "{e:?}");
    }
}

/// Runs in a child process whose session bus address points nowhere.
#[test]
fn no_secret_service_is_a_clear_error() {
    if std::env::var_os("CALLBOX_KEYCHAIN_CHILD").is_some() {
        let e = KeychainStore::new().unwrap_err();
        println!("absent keychain: {e}");
        assert!(matches!(e, SecretError::Unavailable { .. }), "{e:?}");
        assert!(e.to_string().contains("Secret Service"), "{e}");
        assert!(e.to_string().contains("gnome-keyring-daemon"), "{e}");
        println!("CHILD-OK");
        return;
    }
    if !enabled("no_secret_service_is_a_clear_error") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("callbox-no-bus-{}", std::process::id()));
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "no_secret_service_is_a_clear_error",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("CALLBOX_KEYCHAIN_CHILD", "1")
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            format!("unix:path={}", dir.join("bus").display()),
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("CHILD-OK"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
