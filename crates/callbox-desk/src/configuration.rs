//! The agent's configuration as the settings view edits it: the SIP account
//! (`telephony.toml` + the keychain) and the integrations (`integrations/NAME.toml` + the
//! keychain). Secrets go to the keychain only and are never read back: a form says whether
//! one is set, never what it is. Files are rewritten as TOML tables (comments are not kept).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use callbox_core::secret::Secret;
use callbox_core::template::FieldEditor;
use callbox_engine::integrations;
use callbox_engine::secret_store::{SecretKey, SecretStore};
use callbox_engine::setup::Paths;
use serde::{Deserialize, Serialize};

/// A configuration change was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigurationError {
    /// A value is missing or wrong; the words say which.
    #[error("{0}")]
    Invalid(String),
    /// A file could not be read or written.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The integration's template has errors (each with its file:line:column).
    #[error("{0}")]
    Template(String),
    /// The keychain refused.
    #[error("keychain: {0}")]
    Keychain(String),
}

/// The SIP account form. `password` is write-only: empty keeps the stored one.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct PhoneForm {
    /// `host[:port]` of the registrar.
    pub registrar: String,
    /// SIP domain (empty: the registrar's host).
    pub domain: String,
    /// User (extension).
    pub user: String,
    /// Authentication user when it differs (empty: `user`).
    pub auth_user: String,
    /// `udp`, `tcp` or `tls`.
    pub transport: String,
    /// Outbound proxy `host[:port]` (empty: none).
    pub outbound_proxy: String,
    /// The employee's own number (seed 000's mapping).
    pub number: String,
    /// A new password (write-only).
    pub password: String,
    /// Whether a password is stored (shown, never the password).
    pub password_set: bool,
}

/// One field of an integration's template, as the form shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct FieldForm {
    /// The template's variable name.
    pub name: String,
    /// Its label.
    pub title: String,
    /// `text`, `password` or `list`.
    pub kind: String,
    /// The choices of a `list`.
    pub options: Vec<String>,
    /// The value (always empty for a password: write-only).
    pub value: String,
    /// Whether a password is stored.
    pub set: bool,
}

/// One integration, as the settings view shows and saves it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct IntegrationForm {
    /// Its name (the file stem; the key of its secrets and CRM writes).
    pub name: String,
    /// The template: a built-in name or a path.
    pub template: String,
    /// The template's provider label (e.g. "HubSpot").
    pub provider: String,
    /// Enabled.
    pub enabled: bool,
    /// Lookup order (lower first).
    pub order: i32,
    /// `never`, `manual`, `inbound`, `outbound`, `both`.
    pub create_contacts: String,
    /// The template's fields.
    pub fields: Vec<FieldForm>,
    /// Its authentication: `none`, `basic`, `oauth2`, `bearertoken`.
    pub auth: String,
    /// What is missing (secrets), if anything.
    pub missing: Vec<String>,
}

/// Everything the settings view edits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ConfigurationView {
    /// The SIP account (empty form when none).
    pub phone: PhoneForm,
    /// Whether `telephony.toml` exists.
    pub phone_configured: bool,
    /// The integrations, in lookup order.
    pub integrations: Vec<IntegrationForm>,
    /// The built-in templates' names.
    pub templates: Vec<String>,
    /// Files that could not be read, with why.
    pub problems: Vec<String>,
}

/// Reads and writes the configuration under `paths`, secrets in `secrets`.
pub struct Configuration {
    paths: Paths,
    secrets: Arc<dyn SecretStore>,
}

fn file_error(path: &Path, error: impl std::fmt::Display) -> ConfigurationError {
    ConfigurationError::File {
        path: path.display().to_string(),
        reason: error.to_string(),
    }
}

fn read_table(path: &Path) -> Result<toml::Table, ConfigurationError> {
    match std::fs::read_to_string(path) {
        Ok(text) => text.parse::<toml::Table>().map_err(|e| file_error(path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(toml::Table::new()),
        Err(e) => Err(file_error(path, e)),
    }
}

fn write_table(path: &Path, table: &toml::Table) -> Result<(), ConfigurationError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| file_error(dir, e))?;
    }
    let text = toml::to_string_pretty(table).map_err(|e| file_error(path, e))?;
    std::fs::write(path, text).map_err(|e| file_error(path, e))
}

fn text(table: &toml::Table, key: &str) -> String {
    table
        .get(key)
        .and_then(toml::Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn set_or_remove(table: &mut toml::Table, key: &str, value: &str) {
    let value = value.trim();
    if value.is_empty() {
        table.remove(key);
    } else {
        table.insert(key.into(), toml::Value::String(value.to_owned()));
    }
}

/// A valid integration name: letters, digits, `-` and `_` (it names a file and keychain entries).
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 40
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl Configuration {
    /// The configuration under `paths`.
    pub fn new(paths: Paths, secrets: Arc<dyn SecretStore>) -> Self {
        Configuration { paths, secrets }
    }

    fn phone_file(&self) -> PathBuf {
        callbox_engine::telephony::settings_file(&self.paths)
    }

    fn secret_set(&self, key: &SecretKey) -> bool {
        matches!(self.secrets.get(key), Ok(Some(_)))
    }

    /// What the settings view shows.
    pub fn view(&self) -> ConfigurationView {
        let mut problems = Vec::new();
        let phone_file = self.phone_file();
        let phone_configured = phone_file.exists();
        let phone = match read_table(&phone_file) {
            Ok(table) => PhoneForm {
                registrar: text(&table, "registrar"),
                domain: text(&table, "domain"),
                user: text(&table, "user"),
                auth_user: text(&table, "auth_user"),
                transport: match text(&table, "transport") {
                    t if t.is_empty() => "udp".into(),
                    t => t,
                },
                outbound_proxy: text(&table, "outbound_proxy"),
                number: text(&table, "number"),
                password: String::new(),
                password_set: table.contains_key("password")
                    || self.secret_set(&callbox_engine::telephony::password_key()),
            },
            Err(error) => {
                problems.push(error.to_string());
                PhoneForm::default()
            }
        };
        let integrations = match integrations::load_all(&self.paths.integrations_dir) {
            Ok(list) => list.iter().map(|c| self.form(c)).collect(),
            Err(error) => {
                problems.push(error.to_string());
                Vec::new()
            }
        };
        ConfigurationView {
            phone,
            phone_configured,
            integrations,
            templates: integrations::BUILT_IN
                .iter()
                .map(|(name, _)| (*name).to_owned())
                .collect(),
            problems,
        }
    }

    fn form(&self, config: &integrations::IntegrationConfig) -> IntegrationForm {
        let auth = config.integration.auth();
        let mut missing = Vec::new();
        let fields = auth
            .fields
            .iter()
            .map(|field| {
                let (kind, value, set) = match field.editor {
                    FieldEditor::Password => {
                        let set = self.secret_set(&SecretKey::new(&config.name, &field.name));
                        if !set {
                            missing.push(field.title.clone());
                        }
                        ("password", String::new(), set)
                    }
                    FieldEditor::List => (
                        "list",
                        config
                            .fields
                            .get(&field.name)
                            .and_then(|v| v.as_str())
                            .filter(|v| !v.is_empty())
                            .or(field.options.first().map(String::as_str))
                            .unwrap_or_default()
                            .to_owned(),
                        false,
                    ),
                    FieldEditor::String => (
                        "text",
                        config
                            .fields
                            .get(&field.name)
                            .and_then(|v| v.as_str())
                            .unwrap_or_default()
                            .to_owned(),
                        false,
                    ),
                };
                FieldForm {
                    name: field.name.clone(),
                    title: if field.title.is_empty() {
                        field.name.clone()
                    } else {
                        field.title.clone()
                    },
                    kind: kind.into(),
                    options: field.options.clone(),
                    value,
                    set,
                }
            })
            .collect();
        IntegrationForm {
            name: config.name.clone(),
            template: config.template_ref.clone(),
            provider: config.integration.template().info.name.clone(),
            enabled: config.enabled,
            order: i32::try_from(config.order).unwrap_or(i32::MAX),
            create_contacts: serde_json::to_value(config.create_contacts)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| "manual".into()),
            fields,
            auth: auth.method.to_string(),
            missing,
        }
    }

    /// Saves the SIP account; a typed password goes to the keychain.
    pub fn save_phone(&self, form: &PhoneForm) -> Result<(), ConfigurationError> {
        if form.registrar.trim().is_empty() || form.user.trim().is_empty() {
            return Err(ConfigurationError::Invalid(
                "the registrar and the user are needed".into(),
            ));
        }
        if !matches!(form.transport.as_str(), "udp" | "tcp" | "tls") {
            return Err(ConfigurationError::Invalid(format!(
                "transport `{}`: use udp, tcp or tls",
                form.transport
            )));
        }
        let path = self.phone_file();
        let mut table = read_table(&path)?;
        set_or_remove(&mut table, "registrar", &form.registrar);
        set_or_remove(&mut table, "domain", &form.domain);
        set_or_remove(&mut table, "user", &form.user);
        set_or_remove(&mut table, "auth_user", &form.auth_user);
        set_or_remove(&mut table, "transport", &form.transport);
        set_or_remove(&mut table, "outbound_proxy", &form.outbound_proxy);
        set_or_remove(&mut table, "number", &form.number);
        if !form.password.is_empty() {
            self.secrets
                .set(
                    &callbox_engine::telephony::password_key(),
                    &Secret::new(form.password.clone()),
                )
                .map_err(|e| ConfigurationError::Keychain(e.to_string()))?;
            // The keychain's copy wins from now on: none in the file.
            table.remove("password");
        }
        write_table(&path, &table)?;
        // Check it reads back as an account (the same errors the app would report).
        callbox_sip::Account::load(&path)
            .map(|_| ())
            .map_err(|e| ConfigurationError::Invalid(e.to_string()))
    }

    /// Adds an integration from a built-in template name or a template file. A template with
    /// errors is refused with the validator's messages (file:line:column).
    pub fn add_integration(
        &self,
        name: &str,
        template: &str,
    ) -> Result<IntegrationForm, ConfigurationError> {
        if !valid_name(name) {
            return Err(ConfigurationError::Invalid(format!(
                "`{name}`: a name is letters, digits, - and _ (it names files and keychain entries)"
            )));
        }
        let path = self.paths.integrations_dir.join(format!("{name}.toml"));
        if path.exists() {
            return Err(ConfigurationError::Invalid(format!(
                "an integration named {name} exists"
            )));
        }
        let template = template.trim();
        let reference = if integrations::BUILT_IN.iter().any(|(n, _)| *n == template) {
            template.to_owned()
        } else {
            let file = Path::new(template);
            if !file.is_absolute() {
                return Err(ConfigurationError::Invalid(format!(
                    "`{template}` is neither a built-in template ({}) nor an absolute path",
                    integrations::BUILT_IN.map(|(n, _)| n).join(", ")
                )));
            }
            file.display().to_string()
        };
        let mut table = toml::Table::new();
        table.insert("template".into(), toml::Value::String(reference));
        write_table(&path, &table)?;
        match integrations::load(&path) {
            Ok(config) => Ok(self.form(&config)),
            Err(error) => {
                let _ = std::fs::remove_file(&path);
                Err(match error {
                    integrations::ConfigError::Template { diagnostics, .. } => {
                        ConfigurationError::Template(diagnostics)
                    }
                    other => ConfigurationError::Invalid(other.to_string()),
                })
            }
        }
    }

    /// Saves an integration's settings and fields; typed passwords go to the keychain.
    pub fn save_integration(&self, form: &IntegrationForm) -> Result<(), ConfigurationError> {
        let path = self
            .paths
            .integrations_dir
            .join(format!("{}.toml", form.name));
        if !valid_name(&form.name) || !path.exists() {
            return Err(ConfigurationError::Invalid(format!(
                "no integration named {}",
                form.name
            )));
        }
        if !matches!(
            form.create_contacts.as_str(),
            "never" | "manual" | "inbound" | "outbound" | "both"
        ) {
            return Err(ConfigurationError::Invalid(format!(
                "create contacts `{}`: use never, manual, inbound, outbound or both",
                form.create_contacts
            )));
        }
        let mut table = read_table(&path)?;
        table.insert("enabled".into(), toml::Value::Boolean(form.enabled));
        table.insert("order".into(), toml::Value::Integer(i64::from(form.order)));
        table.insert(
            "create_contacts".into(),
            toml::Value::String(form.create_contacts.clone()),
        );
        let mut fields = table
            .get("fields")
            .and_then(toml::Value::as_table)
            .cloned()
            .unwrap_or_default();
        for field in &form.fields {
            if field.kind == "password" {
                if !field.value.is_empty() {
                    self.secrets
                        .set(
                            &SecretKey::new(&form.name, &field.name),
                            &Secret::new(field.value.clone()),
                        )
                        .map_err(|e| ConfigurationError::Keychain(e.to_string()))?;
                }
                fields.remove(&field.name);
            } else {
                set_or_remove(&mut fields, &field.name, &field.value);
            }
        }
        table.insert("fields".into(), toml::Value::Table(fields));
        write_table(&path, &table)?;
        integrations::load(&path)
            .map(|_| ())
            .map_err(|e| ConfigurationError::Invalid(e.to_string()))
    }

    /// Removes an integration and its secrets (its CRM writes already queued stay queued).
    pub fn remove_integration(&self, name: &str) -> Result<(), ConfigurationError> {
        let path = self.paths.integrations_dir.join(format!("{name}.toml"));
        let config =
            integrations::load(&path).map_err(|e| ConfigurationError::Invalid(e.to_string()))?;
        for secret in config.secret_fields() {
            let _ = self.secrets.delete(&SecretKey::new(name, &secret));
        }
        std::fs::remove_file(&path).map_err(|e| file_error(&path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use callbox_engine::secret_store::MemoryStore;

    fn configuration(tag: &str) -> (Configuration, Arc<MemoryStore>, PathBuf) {
        let root = std::env::temp_dir().join(format!("callbox-conf-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let paths = Paths {
            data_dir: root.join("data"),
            integrations_dir: root.join("config/integrations"),
        };
        let secrets = Arc::new(MemoryStore::new());
        (Configuration::new(paths, secrets.clone()), secrets, root)
    }

    #[test]
    fn the_phone_account_is_saved_with_its_password_in_the_keychain_only() {
        let (configuration, secrets, root) = configuration("phone");
        let form = PhoneForm {
            registrar: "pbx.example.com".into(),
            user: "1002".into(),
            transport: "tls".into(),
            password: "s3cret-pw".into(),
            ..PhoneForm::default()
        };
        configuration
            .save_phone(&form)
            .unwrap_or_else(|e| panic!("{e}"));
        let file = std::fs::read_to_string(root.join("config/telephony.toml")).unwrap_or_default();
        assert!(file.contains("registrar = \"pbx.example.com\""), "{file}");
        assert!(!file.contains("s3cret-pw"), "{file}");
        let stored = secrets
            .get(&callbox_engine::telephony::password_key())
            .ok()
            .flatten()
            .map(|s| s.expose().to_owned());
        assert_eq!(stored.as_deref(), Some("s3cret-pw"));
        let view = configuration.view();
        assert!(view.phone_configured && view.phone.password_set);
        assert_eq!(view.phone.password, "", "never shown back");
        assert_eq!(view.phone.transport, "tls");
        let bad = PhoneForm {
            transport: "sctp".into(),
            ..form
        };
        assert!(configuration.save_phone(&bad).is_err());
    }

    #[test]
    fn integrations_are_added_from_templates_and_their_secrets_go_to_the_keychain() {
        let (configuration, secrets, root) = configuration("integration");
        let mut form = configuration
            .add_integration("hub", "hubspot")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(form.provider, "HubSpot");
        let secret_field = form
            .fields
            .iter()
            .position(|f| f.kind == "password")
            .unwrap_or_else(|| panic!("hubspot has a secret field: {:?}", form.fields));
        assert!(!form.missing.is_empty());
        form.fields[secret_field].value = "pat-na1-secret".into();
        form.create_contacts = "inbound".into();
        form.order = 2;
        configuration
            .save_integration(&form)
            .unwrap_or_else(|e| panic!("{e}"));
        let file =
            std::fs::read_to_string(root.join("config/integrations/hub.toml")).unwrap_or_default();
        assert!(!file.contains("pat-na1-secret"), "{file}");
        assert!(file.contains("create_contacts = \"inbound\""), "{file}");
        let name = form.fields[secret_field].name.clone();
        assert!(matches!(
            secrets.get(&SecretKey::new("hub", &name)),
            Ok(Some(_))
        ));
        let view = configuration.view();
        assert_eq!(view.integrations.len(), 1);
        assert!(view.integrations[0].missing.is_empty());
        assert!(view.integrations[0].fields[secret_field].set);
        assert_eq!(view.integrations[0].fields[secret_field].value, "");

        assert!(configuration.add_integration("hub", "hubspot").is_err());
        assert!(configuration.add_integration("../x", "hubspot").is_err());
        assert!(configuration.add_integration("y", "nonsense").is_err());

        // A template with errors is refused with its place.
        let broken = root.join("broken.xml");
        std::fs::write(&broken, "<Information Provider=\"crm\" Name=\"B\" AuthType=\"nope\">\n<Scenarios/>\n</Information>\n").unwrap_or_default();
        let error = configuration
            .add_integration("b", &broken.display().to_string())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("broken.xml:1:"), "{error}");
        assert!(!root.join("config/integrations/b.toml").exists());

        configuration
            .remove_integration("hub")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(configuration.view().integrations.is_empty());
        assert!(matches!(
            secrets.get(&SecretKey::new("hub", &name)),
            Ok(None)
        ));
    }
}
