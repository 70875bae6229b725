//! The telephony integration's settings: the agent's SIP account, read from `telephony.toml`
//! beside the integrations directory, with its password in the OS keychain.
//!
//! ```toml
//! registrar = "pbx.example.com:5060"   # host[:port]
//! domain = "example.com"               # optional; the registrar's host by default
//! user = "1002"                        # the extension / SIP user
//! auth_user = "a1b2c3"                 # optional digest user (3CX "Authentication ID")
//! transport = "tls"                    # udp | tcp | tls
//! outbound_proxy = "sbc.example.com"   # optional
//! number = "+14155550102"              # the employee's own number (seed 000)
//! ```

use crate::secret_store::{SecretKey, SecretStore};
use crate::setup::Paths;
use callbox_sip::{Account, AccountError, Password};
use std::path::PathBuf;

/// The name the SIP password is kept under in the keychain: `telephony/password`.
pub const SECRETS: &str = "telephony";

/// Why the telephony settings could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TelephonyError {
    /// `telephony.toml` is unreadable or invalid (the message says where).
    #[error(transparent)]
    Account(#[from] AccountError),
    /// The keychain could not be read.
    #[error("the SIP password could not be read from the keychain: {0}")]
    Keychain(String),
}

/// Where the telephony settings live: `telephony.toml` next to the integrations directory.
pub fn settings_file(paths: &Paths) -> PathBuf {
    paths
        .integrations_dir
        .parent()
        .map(|dir| dir.join("telephony.toml"))
        .unwrap_or_else(|| PathBuf::from("telephony.toml"))
}

/// The keychain key of the SIP password.
pub fn password_key() -> SecretKey {
    SecretKey::new(SECRETS, "password")
}

/// The configured SIP account and its password (the file, else `CALLBOX_SIP_PASSWORD`, else the
/// keychain); `None` when no telephony is configured.
pub fn load_account(
    paths: &Paths,
    secrets: &dyn SecretStore,
) -> Result<Option<(Account, Option<Password>)>, TelephonyError> {
    let file = settings_file(paths);
    if !file.exists() {
        return Ok(None);
    }
    let account = Account::load(&file)?;
    // The file, then an explicit CALLBOX_SIP_PASSWORD, then the keychain.
    let password = match account.password_or_env() {
        Some(password) => Some(password),
        None => match secrets.get(&password_key()) {
            Ok(secret) => secret.map(|secret| Password::new(secret.expose())),
            Err(error) => return Err(TelephonyError::Keychain(error.to_string())),
        },
    };
    Ok(Some((account, password)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret_store::MemoryStore;
    use callbox_core::secret::Secret;

    #[test]
    fn reads_the_account_and_takes_the_password_from_the_keychain() {
        let root = std::env::temp_dir().join(format!("callbox-telephony-{}", std::process::id()));
        let paths = Paths {
            data_dir: root.join("data"),
            integrations_dir: root.join("integrations"),
        };
        let secrets = MemoryStore::new();
        assert!(
            load_account(&paths, &secrets)
                .expect("no file is fine")
                .is_none()
        );
        std::fs::create_dir_all(&root).expect("dir");
        std::fs::write(
            settings_file(&paths),
            "registrar = \"pbx.example.com\"\nuser = \"1002\"\ntransport = \"tls\"\nnumber = \"+14155550102\"\n",
        )
        .expect("write");
        secrets
            .set(&password_key(), &Secret::new("s3cret"))
            .expect("set");
        let (account, password) = load_account(&paths, &secrets)
            .expect("loads")
            .expect("configured");
        assert_eq!(
            account.registrar_host_port(),
            ("pbx.example.com".into(), 5061)
        );
        assert_eq!(account.number.as_deref(), Some("+14155550102"));
        assert_eq!(
            password.map(|p| p.expose().to_owned()).as_deref(),
            Some("s3cret")
        );
        std::fs::write(
            settings_file(&paths),
            "registrar = \"pbx\"\nuser = \"1002\"\ntransprt = \"tls\"\n",
        )
        .expect("write");
        let error = load_account(&paths, &secrets)
            .expect_err("typo")
            .to_string();
        assert!(error.contains("telephony.toml:3:1"), "{error}");
    }
}
