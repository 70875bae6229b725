//! Putting an engine together from the places it lives: the data directory (the SQLite
//! store), the integrations directory (`NAME.toml` files) and the keychain (secrets, tokens).

use std::path::PathBuf;
use std::sync::Arc;

use callbox_contacts::{ContactCache, Country};
use callbox_core::template::AuthType;
use serde_json::{Map, Value};

use crate::auth::Credential;
use crate::hooks::{ActiveIntegration, Engine, EngineSettings};
use crate::http::HttpClient;
use crate::integrations::{self, ConfigError, IntegrationConfig};
use crate::secret_store::{SecretError, SecretKey, SecretStore};
use crate::store::{Store, StoreError};
use crate::time_zone::LocalTimeZone;
use crate::tokens::{StaticCredentials, TokenSource};

/// Where Callbox keeps its state and configuration.
#[derive(Clone, Debug)]
pub struct Paths {
    /// The SQLite store's directory.
    pub data_dir: PathBuf,
    /// The integrations directory.
    pub integrations_dir: PathBuf,
}

impl Paths {
    /// The platform's defaults: `~/.local/share/callbox` and `~/.config/callbox/integrations`
    /// on Linux (XDG variables honoured), the usual places on macOS and Windows.
    pub fn default_dirs() -> Paths {
        match directories::ProjectDirs::from("", "", "callbox") {
            Some(p) => Paths {
                data_dir: p.data_dir().to_path_buf(),
                integrations_dir: p.config_dir().join("integrations"),
            },
            None => Paths {
                data_dir: PathBuf::from(".callbox"),
                integrations_dir: PathBuf::from(".callbox/integrations"),
            },
        }
    }

    /// The store's file.
    pub fn database(&self) -> PathBuf {
        self.data_dir.join("callbox.db")
    }

    /// The contacts cache's file (separate: it can always be rebuilt, the store cannot).
    pub fn contacts_database(&self) -> PathBuf {
        self.data_dir.join("contacts.sqlite")
    }
}

/// Why an engine could not be put together.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// An integration file or template is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The keychain failed.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// HTTP could not be set up.
    #[error(transparent)]
    Http(#[from] crate::http::HttpError),
    /// The contacts cache could not be opened.
    #[error(transparent)]
    Contacts(#[from] callbox_contacts::CacheError),
    /// The engine could not start.
    #[error("{0}")]
    Engine(String),
}

/// An integration ready to run, with what is missing to run it well.
pub struct Loaded {
    /// The integration.
    pub active: ActiveIntegration,
    /// Its credentials (for login and status).
    pub credential: Option<Credential>,
    /// Secret fields with no value in the keychain.
    pub missing_secrets: Vec<String>,
}

/// Loads one configured integration: secrets from `secrets`, credentials for token auth.
pub fn load_active(
    config: IntegrationConfig,
    secrets: &Arc<dyn SecretStore>,
    http: &HttpClient,
) -> Result<Loaded, SetupError> {
    let mut values = Map::new();
    let mut missing = Vec::new();
    for field in config.secret_fields() {
        match secrets.get(&SecretKey::new(&config.name, &field))? {
            Some(v) => {
                values.insert(field, Value::String(v.expose().to_string()));
            }
            None => missing.push(field),
        }
    }
    let auth = config.integration.auth();
    let (tokens, credential): (Arc<dyn TokenSource>, Option<Credential>) = match auth.method {
        AuthType::OAuth2 | AuthType::Bearer => {
            let mut fields = config.fields.clone();
            fields.extend(values.clone());
            let credential = Credential::new(
                &config.name,
                Arc::new(config.integration.clone()),
                fields,
                secrets.clone(),
                http.clone(),
            );
            (Arc::new(credential.clone()), Some(credential))
        }
        AuthType::None | AuthType::Basic => (
            Arc::new(StaticCredentials::new(
                &config.name,
                auth.token_invalid.clone(),
            )),
            None,
        ),
    };
    Ok(Loaded {
        active: ActiveIntegration::new(config, values, tokens),
        credential,
        missing_secrets: missing,
    })
}

/// Opens the store and every enabled integration of `paths`.
pub fn open_engine(
    paths: &Paths,
    secrets: Arc<dyn SecretStore>,
    http: HttpClient,
    settings: EngineSettings,
) -> Result<Engine, SetupError> {
    let store = Store::open(&paths.database())?;
    let contacts = ContactCache::open(&paths.contacts_database())?;
    let mut active = Vec::new();
    for config in integrations::load_all(&paths.integrations_dir)? {
        if config.enabled {
            active.push(load_active(config, &secrets, &http)?.active);
        }
    }
    let engine = Engine::new(
        store,
        contacts,
        active,
        http,
        Arc::new(LocalTimeZone::system()),
        settings,
    );
    engine.apply_number_rules().map_err(|e| match e {
        crate::hooks::EngineError::Contacts(c) => SetupError::Contacts(c),
        other => SetupError::Engine(other.to_string()),
    })?;
    Ok(engine)
}

/// The country of the system locale (`LC_ALL`, `LC_TELEPHONE`, `LANG`: `en_US.UTF-8` is US),
/// the default for reading national numbers when an integration sets none.
pub fn locale_country() -> Option<Country> {
    ["LC_ALL", "LC_TELEPHONE", "LANG"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .find(|v| !v.is_empty())
        .and_then(|v| {
            let region = v.split(['.', '@']).next()?.split('_').nth(1)?.to_string();
            region.parse().ok()
        })
}
