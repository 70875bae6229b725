//! Secrets at rest: the OS keychain (Secret Service on Linux, Keychain on macOS, Credential
//! Manager on Windows), or memory for tests and throwaway runs.
//!
//! A secret is addressed by a [`SecretKey`]: an integration and a name (a `password` field
//! such as `client_secret`, or [`SecretKey::TOKENS`] for an integration's tokens). In the
//! keychain it is the entry with service [`KeychainStore::SERVICE`] (`callbox`) and account
//! `<integration>/<name>`.
//!
//! A missing or locked keychain is an error that says what to do ([`SecretError`]); there is
//! no silent fallback to a file. No secret value ever appears in an error or in `Debug`.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use callbox_core::secret::Secret;

/// Where a secret lives: one integration's field or token.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretKey {
    /// The integration's name (its id in the app's configuration, e.g. `zoho`).
    pub integration: String,
    /// The secret's name: a `password` field's name, or [`SecretKey::TOKENS`].
    pub name: String,
}

impl SecretKey {
    /// The name under which an integration's tokens (one JSON blob) are kept.
    pub const TOKENS: &'static str = "oauth_tokens";

    /// The key of `name` for `integration`.
    pub fn new(integration: &str, name: &str) -> Self {
        SecretKey {
            integration: integration.to_string(),
            name: name.to_string(),
        }
    }

    /// The key of an integration's tokens.
    pub fn tokens(integration: &str) -> Self {
        SecretKey::new(integration, SecretKey::TOKENS)
    }

    /// The keychain account name: `<integration>/<name>`.
    pub fn account(&self) -> String {
        format!("{}/{}", self.integration, self.name)
    }
}

impl fmt::Display for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.integration, self.name)
    }
}

/// Why a secret could not be read, written or deleted. Never contains a secret value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// There is no keychain to talk to (no Secret Service on the session bus, no D-Bus…).
    #[error("the OS keychain is not available: {hint}")]
    Unavailable {
        /// What happened and what to do.
        hint: String,
    },
    /// The keychain exists but is locked (and could not be unlocked without a person).
    #[error("the OS keychain is locked: {hint}")]
    Locked {
        /// What to do.
        hint: String,
    },
    /// The keychain failed in another way.
    #[error("the OS keychain failed: {0}")]
    Platform(String),
    /// The stored value is not UTF-8 text (written by another program?).
    #[error("the keychain entry {key} is not text; delete it and enter the value again")]
    BadEncoding {
        /// `<integration>/<name>`.
        key: String,
    },
    /// The keychain holds several entries that match the key.
    #[error("the keychain holds several entries for {key}; delete the extra ones")]
    Ambiguous {
        /// `<integration>/<name>`.
        key: String,
    },
    /// The keychain refused the key (too long, invalid characters).
    #[error("the keychain refused the entry {key}: {reason}")]
    Invalid {
        /// `<integration>/<name>`.
        key: String,
        /// Why.
        reason: String,
    },
}

/// Somewhere secrets are kept.
pub trait SecretStore: Send + Sync {
    /// The secret under `key`, or `None` when there is none.
    fn get(&self, key: &SecretKey) -> Result<Option<Secret>, SecretError>;
    /// Stores `value` under `key`, replacing any previous value.
    fn set(&self, key: &SecretKey, value: &Secret) -> Result<(), SecretError>;
    /// Removes the secret under `key`; removing a missing secret is not an error.
    fn delete(&self, key: &SecretKey) -> Result<(), SecretError>;
}

/// Secrets in memory only: for tests and for runs that must not touch the keychain.
#[derive(Default)]
pub struct MemoryStore {
    secrets: Mutex<HashMap<SecretKey, Secret>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<SecretKey, Secret>> {
        // A panic while holding the lock cannot leave the map half-updated.
        self.secrets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("secrets", &self.map().len())
            .finish()
    }
}

impl SecretStore for MemoryStore {
    fn get(&self, key: &SecretKey) -> Result<Option<Secret>, SecretError> {
        Ok(self.map().get(key).cloned())
    }

    fn set(&self, key: &SecretKey, value: &Secret) -> Result<(), SecretError> {
        self.map().insert(key.clone(), value.clone());
        Ok(())
    }

    fn delete(&self, key: &SecretKey) -> Result<(), SecretError> {
        self.map().remove(key);
        Ok(())
    }
}

/// The OS keychain, through `keyring-core` and the platform's credential store.
pub struct KeychainStore {
    store: Arc<keyring_core::CredentialStore>,
}

impl fmt::Debug for KeychainStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeychainStore")
            .field("service", &KeychainStore::SERVICE)
            .field("store", &self.store.vendor())
            .finish()
    }
}

impl KeychainStore {
    /// The keychain service name of every Callbox secret.
    pub const SERVICE: &'static str = "callbox";

    /// Connects to the platform's keychain: the Secret Service (D-Bus) on Linux and the BSDs,
    /// the login Keychain on macOS, the Credential Manager on Windows.
    pub fn new() -> Result<Self, SecretError> {
        let store = platform_store().map_err(|e| SecretError::Unavailable {
            hint: format!("{} ({})", unavailable_hint(), platform_detail(&e)),
        })?;
        Ok(KeychainStore { store })
    }

    /// A store over any `keyring-core` credential store (e.g. `keyring_core::mock::Store`).
    pub fn with_store(store: Arc<keyring_core::CredentialStore>) -> Self {
        KeychainStore { store }
    }

    fn entry(&self, key: &SecretKey) -> Result<keyring_core::Entry, SecretError> {
        keyring_core::Entry::new_in_store(&self.store, KeychainStore::SERVICE, &key.account())
            .map_err(|e| map_error(e, key))
    }
}

#[cfg(all(
    unix,
    not(any(target_os = "macos", target_os = "ios", target_os = "android"))
))]
fn platform_store() -> keyring_core::Result<Arc<keyring_core::CredentialStore>> {
    let store: Arc<keyring_core::CredentialStore> =
        zbus_secret_service_keyring_store::Store::new()?;
    Ok(store)
}

#[cfg(target_os = "macos")]
fn platform_store() -> keyring_core::Result<Arc<keyring_core::CredentialStore>> {
    let store: Arc<keyring_core::CredentialStore> =
        apple_native_keyring_store::keychain::Store::new()?;
    Ok(store)
}

#[cfg(target_os = "windows")]
fn platform_store() -> keyring_core::Result<Arc<keyring_core::CredentialStore>> {
    let store: Arc<keyring_core::CredentialStore> = windows_native_keyring_store::Store::new()?;
    Ok(store)
}

#[cfg(not(any(
    all(
        unix,
        not(any(target_os = "macos", target_os = "ios", target_os = "android"))
    ),
    target_os = "macos",
    target_os = "windows"
)))]
fn platform_store() -> keyring_core::Result<Arc<keyring_core::CredentialStore>> {
    Err(keyring_core::Error::NotSupportedByStore(
        "no keychain is supported on this platform".into(),
    ))
}

fn unavailable_hint() -> &'static str {
    if cfg!(target_os = "macos") {
        "the login Keychain cannot be opened: log in to a desktop session and check Keychain Access"
    } else if cfg!(target_os = "windows") {
        "the Windows Credential Manager cannot be opened for this user"
    } else {
        "no Secret Service on the session bus: start gnome-keyring-daemon or KeePassXC's Secret \
         Service, or log in to a desktop session (headless: run inside dbus-run-session and unlock \
         with `gnome-keyring-daemon --unlock`)"
    }
}

fn locked_hint() -> &'static str {
    if cfg!(target_os = "macos") {
        "unlock the login Keychain (Keychain Access) and try again"
    } else if cfg!(target_os = "windows") {
        "the Credential Manager refused access; log in as the user again and retry"
    } else {
        "unlock the login keyring (log in to the desktop session, open Passwords and Keys, or run \
         `gnome-keyring-daemon --unlock`) and try again"
    }
}

/// The text of a platform error (never a stored value: those only ride in `BadEncoding` and
/// `BadDataFormat`, whose bytes are dropped here).
fn platform_detail(e: &keyring_core::Error) -> String {
    use keyring_core::Error as E;
    match e {
        E::PlatformFailure(inner) | E::NoStorageAccess(inner) => inner.to_string(),
        E::BadEncoding(_) => "the stored value is not text".into(),
        E::BadDataFormat(_, inner) => format!("the stored value is malformed: {inner}"),
        E::BadStoreFormat(reason) => format!("the store is malformed: {reason}"),
        E::TooLong(name, limit) => format!("{name} is longer than {limit}"),
        E::Invalid(name, reason) => format!("{name} is invalid: {reason}"),
        E::Ambiguous(entries) => format!("{} entries match", entries.len()),
        E::NoEntry => "no such entry".into(),
        E::NoDefaultStore => "no credential store".into(),
        E::NotSupportedByStore(reason) => reason.clone(),
        _ => "unknown keychain error".into(),
    }
}

fn map_error(e: keyring_core::Error, key: &SecretKey) -> SecretError {
    use keyring_core::Error as E;
    let key_text = key.account();
    match &e {
        E::NoStorageAccess(_) => SecretError::Locked {
            hint: format!("{} ({})", locked_hint(), platform_detail(&e)),
        },
        E::PlatformFailure(inner) => {
            let detail = inner.to_string();
            if looks_unavailable(&detail) {
                SecretError::Unavailable {
                    hint: format!("{} ({detail})", unavailable_hint()),
                }
            } else {
                SecretError::Platform(detail)
            }
        }
        E::BadEncoding(_) | E::BadDataFormat(..) => SecretError::BadEncoding { key: key_text },
        E::Ambiguous(_) => SecretError::Ambiguous { key: key_text },
        E::TooLong(..) | E::Invalid(..) => SecretError::Invalid {
            key: key_text,
            reason: platform_detail(&e),
        },
        E::NoDefaultStore => SecretError::Unavailable {
            hint: unavailable_hint().into(),
        },
        _ => SecretError::Platform(platform_detail(&e)),
    }
}

/// Whether a platform failure means the keychain service went away (the bus or daemon died
/// after the store was opened).
fn looks_unavailable(detail: &str) -> bool {
    let lower = detail.to_ascii_lowercase();
    [
        "no secret service",
        "serviceunknown",
        "service unknown",
        "not provided by any .service files",
        "connection refused",
        "no such file or directory",
        "broken pipe",
    ]
    .iter()
    .any(|needle| lower.contains(needle))
}

impl SecretStore for KeychainStore {
    fn get(&self, key: &SecretKey) -> Result<Option<Secret>, SecretError> {
        match self.entry(key)?.get_password() {
            Ok(value) => Ok(Some(Secret::new(value))),
            Err(keyring_core::Error::NoEntry) => Ok(None),
            Err(e) => Err(map_error(e, key)),
        }
    }

    fn set(&self, key: &SecretKey, value: &Secret) -> Result<(), SecretError> {
        self.entry(key)?
            .set_password(value.expose())
            .map_err(|e| map_error(e, key))
    }

    fn delete(&self, key: &SecretKey) -> Result<(), SecretError> {
        match self.entry(key)?.delete_credential() {
            Ok(()) | Err(keyring_core::Error::NoEntry) => Ok(()),
            Err(e) => Err(map_error(e, key)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mock_keychain() -> KeychainStore {
        let store: Arc<keyring_core::CredentialStore> =
            keyring_core::mock::Store::new().expect("mock store");
        KeychainStore::with_store(store)
    }

    fn round_trip(store: &dyn SecretStore) {
        let key = SecretKey::new("zoho", "client_secret");
        assert_eq!(store.get(&key).unwrap(), None);
        store.set(&key, &Secret::new("s3cr3t")).unwrap();
        assert_eq!(store.get(&key).unwrap(), Some(Secret::new("s3cr3t")));
        store.set(&key, &Secret::new("ünïcødé\nline two")).unwrap();
        assert_eq!(
            store.get(&key).unwrap(),
            Some(Secret::new("ünïcødé\nline two"))
        );
        let other = SecretKey::tokens("salesforce");
        store.set(&other, &Secret::new("{\"a\":1}")).unwrap();
        store.delete(&key).unwrap();
        assert_eq!(store.get(&key).unwrap(), None);
        store.delete(&key).unwrap();
        assert_eq!(store.get(&other).unwrap(), Some(Secret::new("{\"a\":1}")));
    }

    #[test]
    fn memory_store_round_trip() {
        round_trip(&MemoryStore::new());
    }

    #[test]
    fn keychain_store_round_trip_on_mock() {
        round_trip(&mock_keychain());
    }

    #[test]
    fn keys_name_keychain_accounts() {
        let key = SecretKey::new("zoho", "client_secret");
        assert_eq!(key.account(), "zoho/client_secret");
        assert_eq!(SecretKey::tokens("zoho").account(), "zoho/oauth_tokens");
    }

    #[test]
    fn platform_errors_become_clear_errors_without_values() {
        let key = SecretKey::new("zoho", "client_secret");
        let store = mock_keychain();
        let entry = store.entry(&key).unwrap();
        entry.set_password("hunter22-value").unwrap();
        let mock: &keyring_core::mock::Cred = entry.as_any().downcast_ref().unwrap();

        mock.set_error(keyring_core::Error::NoStorageAccess(Box::new(
            std::io::Error::other("collection is locked"),
        )));
        let e = store.get(&key).unwrap_err();
        assert!(matches!(e, SecretError::Locked { .. }), "{e:?}");
        assert!(e.to_string().contains("unlock"), "{e}");

        mock.set_error(keyring_core::Error::PlatformFailure(Box::new(
            std::io::Error::other("no secret service provider or dbus session found"),
        )));
        let e = store.set(&key, &Secret::new("x")).unwrap_err();
        assert!(matches!(e, SecretError::Unavailable { .. }), "{e:?}");

        mock.set_error(keyring_core::Error::BadEncoding(b"hunter22-value".to_vec()));
        let e = store.get(&key).unwrap_err();
        assert_eq!(
            e,
            SecretError::BadEncoding {
                key: "zoho/client_secret".into()
            }
        );
        for text in [e.to_string(), format!("{e:?}")] {
            assert!(!text.contains("hunter22"), "{text}");
        }

        mock.set_error(keyring_core::Error::PlatformFailure(Box::new(
            std::io::Error::other("disk on fire"),
        )));
        let e = store.delete(&key).unwrap_err();
        assert_eq!(e, SecretError::Platform("disk on fire".into()));
    }

    #[test]
    fn stores_never_show_values_in_debug() {
        let memory = MemoryStore::new();
        memory
            .set(&SecretKey::new("a", "b"), &Secret::new("hunter22"))
            .unwrap();
        let keychain = mock_keychain();
        keychain
            .set(&SecretKey::new("a", "b"), &Secret::new("hunter22"))
            .unwrap();
        for text in [format!("{memory:?}"), format!("{keychain:?}")] {
            assert!(!text.contains("hunter22"), "{text}");
        }
    }
}

/// The OS keychain, opened on first use: an engine whose integrations need no secret never
/// touches it (and works where there is no keychain); one that does gets the keychain's
/// error, with what to do, at that moment.
#[derive(Default)]
pub struct LazyKeychain {
    store: std::sync::OnceLock<Result<KeychainStore, String>>,
}

impl LazyKeychain {
    /// Not opened yet.
    pub fn new() -> Self {
        LazyKeychain::default()
    }

    fn store(&self) -> Result<&KeychainStore, SecretError> {
        match self
            .store
            .get_or_init(|| KeychainStore::new().map_err(|e| e.to_string()))
        {
            Ok(s) => Ok(s),
            Err(message) => Err(SecretError::Unavailable {
                hint: message.clone(),
            }),
        }
    }
}

impl std::fmt::Debug for LazyKeychain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LazyKeychain")
    }
}

impl SecretStore for LazyKeychain {
    fn get(&self, key: &SecretKey) -> Result<Option<Secret>, SecretError> {
        self.store()?.get(key)
    }

    fn set(&self, key: &SecretKey, value: &Secret) -> Result<(), SecretError> {
        self.store()?.set(key, value)
    }

    fn delete(&self, key: &SecretKey) -> Result<(), SecretError> {
        self.store()?.delete(key)
    }
}
