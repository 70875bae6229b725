//! Integration configuration: one `NAME.toml` per integration in the integrations directory,
//! naming its template (a built-in name or a path), whether it is enabled, its lookup order,
//! its non-secret field values and its contact-creation rule. Secret fields (password editors)
//! never live in these files: they are in the keychain (`callbox-cli secret set`).
//!
//! ```toml
//! template = "zoho-crm"        # or "templates/my-crm.xml" (relative to this file)
//! enabled = true
//! order = 1                    # lookups run in ascending order; ties by name
//! create_contacts = "inbound"  # never | manual | inbound | outbound | both (default manual)
//! create_contact_type = "Leads" # which CreateNewContact request (default: the first)
//!
//! [fields]
//! api_domain = "https://www.zohoapis.com"
//! crm_domain = "https://crm.zoho.com"
//! client_id = "1000.XXXX"
//!
//! [contacts]                   # every key optional; these are the defaults
//! country = "US"               # numbers without + are read as this country's (default: the
//!                              # system locale's country, else none)
//! synchronize_to_phonebook = true  # cache contacts that lookups find (seed 003)
//! always_query_crm = false     # false: the cache answers first, the CRM on a miss
//! match_policy = "ask"         # ask | most_recent | first
//! suffix_digits = 9            # match the last N digits when no exact match (0: never)
//! ttl_seconds = 86400          # a cached contact is fresh this long, then refreshed
//! miss_ttl_seconds = 120       # an unknown number is not asked again this long
//! ```

use std::path::{Path, PathBuf};

use callbox_contacts::{Country, MatchPolicy};
use callbox_core::template::{self, FieldEditor, Integration};
use serde::Deserialize;
use serde_json::{Map, Value};

/// The built-in templates, by name.
pub const BUILT_IN: [(&str, &str); 4] = [
    ("zoho-crm", include_str!("../../../templates/zoho-crm.xml")),
    (
        "salesforce",
        include_str!("../../../templates/salesforce.xml"),
    ),
    ("hubspot", include_str!("../../../templates/hubspot.xml")),
    (
        "example-helpdesk",
        include_str!("../../../templates/example-helpdesk.xml"),
    ),
];

/// When contacts are created automatically for numbers no integration knows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CreateContacts {
    /// Never (not even by hand).
    Never,
    /// Only when the agent asks.
    #[default]
    Manual,
    /// Automatically for unknown inbound callers.
    Inbound,
    /// Automatically for unknown numbers the agent calls.
    Outbound,
    /// Both.
    Both,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    template: String,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    order: Option<i64>,
    #[serde(default)]
    create_contacts: CreateContacts,
    #[serde(default)]
    create_contact_type: Option<String>,
    #[serde(default)]
    fields: toml::Table,
    #[serde(default)]
    contacts: ContactSettings,
}

/// How an integration's contacts are matched and cached (`[contacts]` in its file).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContactSettings {
    /// The country of numbers written without an international prefix.
    pub country: Option<Country>,
    /// Cache the contacts lookups find ("Synchronize to phonebook").
    pub synchronize_to_phonebook: bool,
    /// Ask the CRM on every call, the cache only when the CRM fails ("Always query CRM");
    /// otherwise the cache answers first and the CRM only on a miss.
    pub always_query_crm: bool,
    /// What to do when several contacts match.
    pub match_policy: MatchPolicy,
    /// Match the last this-many digits when no exact match exists (0: never).
    pub suffix_digits: usize,
    /// Seconds a cached contact is fresh; a stale one is still shown, and refreshed.
    pub ttl_seconds: i64,
    /// Seconds an unknown number is not asked again.
    pub miss_ttl_seconds: i64,
}

impl Default for ContactSettings {
    fn default() -> Self {
        ContactSettings {
            country: None,
            synchronize_to_phonebook: true,
            always_query_crm: false,
            match_policy: MatchPolicy::Ask,
            suffix_digits: 9,
            ttl_seconds: 86_400,
            miss_ttl_seconds: 120,
        }
    }
}

fn yes() -> bool {
    true
}

/// One configured integration (its secrets not loaded).
#[derive(Clone, Debug)]
pub struct IntegrationConfig {
    /// The file stem: the integration's name everywhere (outbox, keychain, CLI).
    pub name: String,
    /// The config file.
    pub path: PathBuf,
    /// The template reference as written.
    pub template_ref: String,
    /// The loaded template.
    pub integration: Integration,
    /// Enabled.
    pub enabled: bool,
    /// Lookup order.
    pub order: i64,
    /// Contact creation rule.
    pub create_contacts: CreateContacts,
    /// Which CreateNewContact request creates contacts.
    pub create_contact_type: Option<String>,
    /// Non-secret field values.
    pub fields: Map<String, Value>,
    /// Contact matching and caching.
    pub contacts: ContactSettings,
}

impl IntegrationConfig {
    /// Names of the template's secret (password) fields.
    pub fn secret_fields(&self) -> Vec<String> {
        self.integration
            .auth()
            .fields
            .iter()
            .filter(|f| f.editor == FieldEditor::Password)
            .map(|f| f.name.clone())
            .collect()
    }
}

/// A configuration problem, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The directory or a file cannot be read.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// Path.
        path: String,
        /// Why.
        reason: String,
    },
    /// A file is not valid TOML or has unknown keys.
    #[error("{path}: {reason}")]
    Invalid {
        /// Path.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The template has errors.
    #[error("{path}: template {template} has errors:\n{diagnostics}")]
    Template {
        /// Config path.
        path: String,
        /// Template reference.
        template: String,
        /// Its error diagnostics, one per line.
        diagnostics: String,
    },
    /// No integration of that name.
    #[error("no integration named {0} (see `callbox-cli integration list`)")]
    Unknown(String),
}

/// Loads every `*.toml` of `dir`, sorted by lookup order then name. A missing directory is
/// no integrations.
pub fn load_all(dir: &Path) -> Result<Vec<IntegrationConfig>, ConfigError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(ConfigError::Read {
                path: dir.display().to_string(),
                reason: e.to_string(),
            });
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    let mut list = paths
        .iter()
        .map(|p| load(p))
        .collect::<Result<Vec<_>, _>>()?;
    list.sort_by(|a, b| a.order.cmp(&b.order).then_with(|| a.name.cmp(&b.name)));
    Ok(list)
}

/// Loads the integration named `name` from `dir`.
pub fn load_named(dir: &Path, name: &str) -> Result<IntegrationConfig, ConfigError> {
    let path = dir.join(format!("{name}.toml"));
    if !path.exists() {
        return Err(ConfigError::Unknown(name.to_string()));
    }
    load(&path)
}

/// Loads one integration file.
pub fn load(path: &Path) -> Result<IntegrationConfig, ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
        path: shown.clone(),
        reason: e.to_string(),
    })?;
    let file: FileConfig = toml::from_str(&text).map_err(|e| ConfigError::Invalid {
        path: shown.clone(),
        reason: e.to_string(),
    })?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let (source, source_name) = match BUILT_IN.iter().find(|(n, _)| *n == file.template) {
        Some((n, text)) => (text.to_string(), format!("built-in:{n}")),
        None => {
            let template_path = path.parent().unwrap_or(Path::new(".")).join(&file.template);
            let text = std::fs::read_to_string(&template_path).map_err(|e| ConfigError::Read {
                path: template_path.display().to_string(),
                reason: format!(
                    "{e} (template is neither a file nor a built-in: {})",
                    BUILT_IN.map(|(n, _)| n).join(", ")
                ),
            })?;
            (text, template_path.display().to_string())
        }
    };
    let parsed = template::parse(&source);
    let Some(mut integration) = parsed.integration else {
        let diagnostics = parsed
            .diagnostics
            .iter()
            .filter(|d| d.severity == callbox_core::diagnostic::Severity::Error)
            .map(|d| d.display_with_file(&source_name).to_string())
            .collect::<Vec<_>>()
            .join("\n");
        return Err(ConfigError::Template {
            path: shown,
            template: file.template,
            diagnostics,
        });
    };
    integration.set_source_name(&source_name);
    let mut fields = Map::new();
    for (k, v) in file.fields {
        let value = match v {
            toml::Value::String(s) => s,
            other => other.to_string(),
        };
        fields.insert(k, Value::String(value));
    }
    let config = IntegrationConfig {
        name,
        path: path.to_path_buf(),
        template_ref: file.template,
        integration,
        enabled: file.enabled,
        order: file.order.unwrap_or(i64::MAX),
        create_contacts: file.create_contacts,
        create_contact_type: file.create_contact_type,
        fields,
        contacts: file.contacts,
    };
    for secret in config.secret_fields() {
        if config.fields.contains_key(&secret) {
            return Err(ConfigError::Invalid {
                path: shown,
                reason: format!(
                    "field {secret} is a secret (password) field: remove it from the file and store it with `callbox-cli secret set {} {secret}`",
                    config.name
                ),
            });
        }
    }
    let known: Vec<String> = config
        .integration
        .auth()
        .fields
        .iter()
        .map(|f| f.name.clone())
        .collect();
    if let Some(unknown) = config.fields.keys().find(|k| !known.contains(k)) {
        return Err(ConfigError::Invalid {
            path: shown,
            reason: format!(
                "[fields] {unknown} is not a field of template {} (its fields: {})",
                config.template_ref,
                known.join(", ")
            ),
        });
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(files: &[(&str, &str)]) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "callbox-int-{}-{}",
            std::process::id(),
            files.len()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        for (n, t) in files {
            std::fs::write(d.join(n), t).unwrap();
        }
        d
    }

    #[test]
    fn loads_built_ins_in_order_and_refuses_secrets_in_files() {
        let d = dir(&[
            ("b.toml", "template = \"hubspot\"\norder = 2\n"),
            (
                "a.toml",
                "template = \"zoho-crm\"\norder = 5\ncreate_contacts = \"inbound\"\n[fields]\napi_domain = \"https://www.zohoapis.com\"\n",
            ),
        ]);
        let list = load_all(&d).unwrap();
        assert_eq!(
            list.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            vec!["b", "a"]
        );
        assert_eq!(list[1].create_contacts, CreateContacts::Inbound);
        assert_eq!(list[1].secret_fields(), vec!["client_secret"]);
        std::fs::write(
            d.join("c.toml"),
            "template = \"hubspot\"\n[fields]\naccess_token = \"pat-123\"\n",
        )
        .unwrap();
        let err = load_all(&d).unwrap_err().to_string();
        assert!(
            err.contains("access_token is a secret") && !err.contains("pat-123"),
            "{err}"
        );
        std::fs::write(d.join("c.toml"), "template = \"nope\"\n").unwrap();
        assert!(
            load_all(&d)
                .unwrap_err()
                .to_string()
                .contains("neither a file nor a built-in")
        );
        std::fs::write(d.join("c.toml"), "template = \"hubspot\"\ncolour = 1\n").unwrap();
        assert!(
            load_all(&d)
                .unwrap_err()
                .to_string()
                .contains("unknown field")
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
