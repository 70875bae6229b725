//! A SIP account: where to register, who as, over which transport. Read from the telephony
//! integration's settings or from a JSON/TOML file (`callbox-cli sip --account FILE`).

use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The environment variable read when an account file has no password.
pub const PASSWORD_ENV: &str = "CALLBOX_SIP_PASSWORD";

/// An account file that cannot be used.
#[derive(Debug, Error)]
pub enum AccountError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid JSON or TOML for an account.
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A value is out of range or missing.
    #[error("{path}: {message}")]
    Invalid {
        /// The file (or `<settings>`).
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// SIP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// UDP (default).
    #[default]
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP (`sips:` not required; `transport=tls`).
    Tls,
}

impl Transport {
    /// The usual port for this transport.
    pub fn default_port(self) -> u16 {
        match self {
            Transport::Udp | Transport::Tcp => 5060,
            Transport::Tls => 5061,
        }
    }

    /// The `transport=` parameter value.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }
}

/// A password that never prints.
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The password itself, for the digest computation only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// One SIP account.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// Registrar (and outbound proxy unless `outbound_proxy` is set): `host[:port]`.
    pub registrar: String,
    /// The SIP domain of the address of record; defaults to the registrar's host.
    #[serde(default)]
    pub domain: Option<String>,
    /// User part of the address of record (often the extension).
    pub user: String,
    /// Digest user name when it differs from `user` (3CX "Authentication ID", Asterisk auth).
    #[serde(default)]
    pub auth_user: Option<String>,
    /// The password; when absent, [`PASSWORD_ENV`] or the keychain supplies it.
    #[serde(default)]
    pub password: Option<Password>,
    /// Transport to the registrar.
    #[serde(default)]
    pub transport: Transport,
    /// Local SIP port; any free port when absent.
    #[serde(default)]
    pub local_port: Option<u16>,
    /// Send every request through this proxy (`host[:port]`) instead of the registrar.
    #[serde(default)]
    pub outbound_proxy: Option<String>,
    /// Display name in From.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Requested registration lifetime in seconds (default 300; refreshed at 75 %).
    #[serde(default)]
    pub expires: Option<u32>,
    /// PEM file of CA certificates to trust for TLS (a private PBX CA); the system roots are
    /// not used when set.
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    /// The employee's own number (seed 000: each employee is mapped to a number); informational.
    #[serde(default)]
    pub number: Option<String>,
}

impl Account {
    /// Reads an account file: JSON when it ends in `.json` or starts with `{`, else TOML.
    pub fn load(path: &Path) -> Result<Self, AccountError> {
        let text = std::fs::read_to_string(path).map_err(|source| AccountError::Read {
            path: path.to_owned(),
            source,
        })?;
        let json =
            path.extension().is_some_and(|e| e == "json") || text.trim_start().starts_with('{');
        let account: Account = if json {
            serde_json::from_str(&text).map_err(|e| AccountError::Syntax {
                path: path.to_owned(),
                line: e.line(),
                column: e.column(),
                message: e.to_string(),
            })?
        } else {
            toml::from_str(&text).map_err(|e| {
                let (line, column) = e
                    .span()
                    .map(|span| line_column(&text, span.start))
                    .unwrap_or((1, 1));
                AccountError::Syntax {
                    path: path.to_owned(),
                    line,
                    column,
                    message: e.message().to_owned(),
                }
            })?
        };
        account.validate(path)?;
        Ok(account)
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self, path: &Path) -> Result<(), AccountError> {
        let invalid = |message: String| AccountError::Invalid {
            path: path.to_owned(),
            message,
        };
        if self.user.trim().is_empty() {
            return Err(invalid("`user` is empty".into()));
        }
        split_host_port(&self.registrar).map_err(|m| invalid(format!("`registrar`: {m}")))?;
        if let Some(proxy) = &self.outbound_proxy {
            split_host_port(proxy).map_err(|m| invalid(format!("`outbound_proxy`: {m}")))?;
        }
        if self.expires == Some(0) {
            return Err(invalid("`expires` must be above 0".into()));
        }
        Ok(())
    }

    /// The password from the file, else from [`PASSWORD_ENV`].
    pub fn password_or_env(&self) -> Option<Password> {
        self.password
            .clone()
            .or_else(|| std::env::var(PASSWORD_ENV).ok().map(Password::new))
    }

    /// The domain of the address of record.
    pub fn domain(&self) -> String {
        match &self.domain {
            Some(domain) => domain.clone(),
            None => split_host_port(&self.registrar)
                .map(|(host, _)| host)
                .unwrap_or_else(|_| self.registrar.clone()),
        }
    }

    /// Registrar host and port (the transport's default port when none is given).
    pub fn registrar_host_port(&self) -> (String, u16) {
        let (host, port) =
            split_host_port(&self.registrar).unwrap_or((self.registrar.clone(), None));
        (host, port.unwrap_or(self.transport.default_port()))
    }

    /// Where requests go first: the outbound proxy, else the registrar.
    pub fn first_hop(&self) -> (String, u16) {
        match &self.outbound_proxy {
            Some(proxy) => {
                let (host, port) = split_host_port(proxy).unwrap_or((proxy.clone(), None));
                (host, port.unwrap_or(self.transport.default_port()))
            }
            None => self.registrar_host_port(),
        }
    }

    /// Registration lifetime asked for.
    pub fn expires(&self) -> u32 {
        self.expires.unwrap_or(300)
    }
}

/// Splits `host[:port]` (IPv6 in brackets).
pub fn split_host_port(value: &str) -> Result<(String, Option<u16>), String> {
    let value = value.trim();
    let value = value
        .strip_prefix("sip:")
        .or_else(|| value.strip_prefix("sips:"))
        .unwrap_or(value);
    if value.is_empty() {
        return Err("is empty".into());
    }
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("IPv6 address lacks `]`")?;
        (host.to_owned(), after.strip_prefix(':'))
    } else {
        match value.rsplit_once(':') {
            Some((host, port)) => (host.to_owned(), Some(port)),
            None => (value.to_owned(), None),
        }
    };
    if host.is_empty() || host.contains(['/', ' ', ';', '@']) {
        return Err(format!("`{value}` is not host[:port]"));
    }
    let port = port
        .map(|p| {
            p.parse::<u16>()
                .map_err(|_| format!("port `{p}` is not a number from 1 to 65535"))
        })
        .transpose()?;
    if port == Some(0) {
        return Err("port 0 is not a port".into());
    }
    Ok((host, port))
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("callbox-sip-account-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    #[test]
    fn reads_json_and_toml() {
        let json = write(
            "a.json",
            r#"{"registrar":"127.0.0.1:5070","user":"1002","password":"secret","transport":"tcp"}"#,
        );
        let account = Account::load(&json).expect("json");
        assert_eq!(account.registrar_host_port(), ("127.0.0.1".into(), 5070));
        assert_eq!(account.transport, Transport::Tcp);
        assert_eq!(account.domain(), "127.0.0.1");
        assert!(!format!("{account:?}").contains("secret"));
        let toml = write(
            "a.toml",
            "registrar = \"pbx.example.com\"\nuser = \"1002\"\nauth_user = \"a1b2\"\ntransport = \"tls\"\n",
        );
        let account = Account::load(&toml).expect("toml");
        assert_eq!(
            account.registrar_host_port(),
            ("pbx.example.com".into(), 5061)
        );
        assert_eq!(account.auth_user.as_deref(), Some("a1b2"));
    }

    #[test]
    fn errors_say_where() {
        let bad = write(
            "b.toml",
            "registrar = \"x\"\nuser = \"1\"\ntransport = \"carrier-pigeon\"\n",
        );
        let message = Account::load(&bad).expect_err("bad transport").to_string();
        assert!(message.contains("b.toml:3:13"), "{message}");
        let bad = write("b.json", "{\"registrar\": \"x\",\n \"usr\": \"1\"}");
        let message = Account::load(&bad).expect_err("unknown key").to_string();
        assert!(message.contains("b.json:2:"), "{message}");
        let bad = write("c.json", r#"{"registrar":"host:99999","user":"1"}"#);
        assert!(
            Account::load(&bad)
                .expect_err("port")
                .to_string()
                .contains("99999")
        );
    }

    #[test]
    fn host_port_forms() {
        assert_eq!(
            split_host_port("sip:pbx:5080"),
            Ok(("pbx".into(), Some(5080)))
        );
        assert_eq!(
            split_host_port("[::1]:5060"),
            Ok(("::1".into(), Some(5060)))
        );
        assert!(split_host_port("").is_err());
        assert!(split_host_port("a b").is_err());
    }
}
