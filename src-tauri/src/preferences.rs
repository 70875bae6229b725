//! The settings view's commands: the SIP account and integrations (through
//! `callbox_desk::Configuration`), the desktop's own settings, Test Connection, sign-in, user
//! association and audio devices. Changes to the phone or integrations apply when Callbox
//! restarts (the Apply button), so a half-edited setup never runs.

use std::sync::Arc;
use std::time::Duration;

use callbox_desk::{Configuration, ConfigurationView, IntegrationForm, PhoneForm};
use callbox_engine::hooks::{Engine, EngineSettings, now_unix};
use callbox_engine::secret_store::SecretStore;
use callbox_engine::setup::{self, Paths};
use callbox_engine::{HttpClient, HttpSettings, SystemBrowser};
use serde::Serialize;

use crate::commands::CommandError;
use crate::settings::{self, DesktopSettings};

/// What the settings commands need.
pub struct Preferences {
    /// Where the configuration lives.
    pub paths: Paths,
    /// The keychain, when it could be opened.
    pub secrets: Option<Arc<dyn SecretStore>>,
}

fn refused(message: impl std::fmt::Display) -> CommandError {
    CommandError {
        kind: "settings".into(),
        message: message.to_string(),
    }
}

impl Preferences {
    fn configuration(&self) -> Result<Configuration, CommandError> {
        let secrets = self.secrets.clone().ok_or_else(|| {
            refused("the keychain is not available, so secrets cannot be stored (see the log)")
        })?;
        Ok(Configuration::new(self.paths.clone(), secrets))
    }

    /// The SIP account and integrations.
    pub fn view(&self) -> Result<ConfigurationView, CommandError> {
        Ok(self.configuration()?.view())
    }

    /// Saves the SIP account.
    pub fn save_phone(&self, form: &PhoneForm) -> Result<(), CommandError> {
        self.configuration()?.save_phone(form).map_err(refused)
    }

    /// Adds an integration from a template.
    pub fn add_integration(
        &self,
        name: &str,
        template: &str,
    ) -> Result<IntegrationForm, CommandError> {
        self.configuration()?
            .add_integration(name, template)
            .map_err(|e| CommandError {
                kind: match e {
                    callbox_desk::ConfigurationError::Template(_) => "template".into(),
                    _ => "settings".into(),
                },
                message: e.to_string(),
            })
    }

    /// Saves an integration.
    pub fn save_integration(&self, form: &IntegrationForm) -> Result<(), CommandError> {
        self.configuration()?
            .save_integration(form)
            .map_err(refused)
    }

    /// Removes an integration.
    pub fn remove_integration(&self, name: &str) -> Result<(), CommandError> {
        self.configuration()?
            .remove_integration(name)
            .map_err(refused)
    }

    /// The desktop settings file.
    pub fn desktop(&self) -> DesktopSettings {
        settings::load(&settings::file(&self.paths)).unwrap_or_default()
    }

    /// Saves the desktop settings.
    pub fn save_desktop(&self, desktop: &DesktopSettings) -> Result<(), CommandError> {
        settings::save(&settings::file(&self.paths), desktop).map_err(refused)
    }

    /// An engine over the configuration as saved now (not the running session's).
    fn fresh_engine(&self) -> Result<Engine, CommandError> {
        let secrets = self
            .secrets
            .clone()
            .ok_or_else(|| refused("the keychain is not available"))?;
        let http = HttpClient::new(HttpSettings::default()).map_err(refused)?;
        setup::open_engine(&self.paths, secrets, http, EngineSettings::default()).map_err(refused)
    }
}

/// What Test Connection found.
#[derive(Debug, Serialize, specta::Type)]
pub struct ConnectionTest {
    /// The CRM answered the lookup.
    pub ok: bool,
    /// Contacts found for the number ("Jonas Weber · Weber GmbH").
    pub contacts: Vec<String>,
    /// Why not, when not ok.
    pub error: Option<String>,
}

/// Test Connection: authenticates and looks `number` up in the CRM (not the cache).
pub async fn test(
    preferences: &Preferences,
    name: &str,
    number: &str,
) -> Result<ConnectionTest, CommandError> {
    let engine = preferences.fresh_engine()?;
    let lookup = engine.test_lookup(name, number).await.map_err(refused)?;
    Ok(ConnectionTest {
        ok: lookup.errors.is_empty(),
        contacts: lookup
            .matches
            .iter()
            .map(|m| {
                let name = format!("{} {}", m.get("FirstName"), m.get("LastName"));
                let company = m.get("Company");
                if company.is_empty() {
                    name.trim().to_owned()
                } else {
                    format!("{} · {company}", name.trim())
                }
            })
            .collect(),
        error: lookup.errors.first().map(|(_, e)| e.clone()),
    })
}

/// OAuth2 sign-in in the system browser (bearer: fetches a first token).
pub async fn sign_in(preferences: &Preferences, name: &str) -> Result<(), CommandError> {
    let secrets = preferences
        .secrets
        .clone()
        .ok_or_else(|| refused("the keychain is not available"))?;
    let http = HttpClient::new(HttpSettings::default()).map_err(refused)?;
    let config =
        callbox_engine::integrations::load_named(&preferences.paths.integrations_dir, name)
            .map_err(refused)?;
    let loaded = setup::load_active(config, &secrets, &http).map_err(refused)?;
    let Some(credential) = loaded.credential else {
        return Err(refused(format!(
            "{name} needs no sign-in (its template uses no tokens)"
        )));
    };
    credential
        .login(&SystemBrowser, Duration::from_secs(300), now_unix())
        .await
        .map_err(refused)
}

/// Associates the agent (by email) with their CRM user; returns the CRM user's id.
pub async fn associate(
    preferences: &Preferences,
    name: &str,
    extension: &str,
    email: &str,
) -> Result<Option<String>, CommandError> {
    let engine = preferences.fresh_engine()?;
    engine.refresh_users(name).await.map_err(refused)?;
    engine
        .associate_by_email(name, extension, email)
        .map_err(refused)
}

/// An audio device for the settings' choices.
#[derive(Debug, Serialize, specta::Type)]
pub struct AudioDevice {
    /// Its stable id (what the settings store).
    pub id: String,
    /// Its name.
    pub name: String,
    /// It can record.
    pub input: bool,
    /// It can play.
    pub output: bool,
}

/// The machine's audio devices.
pub fn audio_devices() -> Vec<AudioDevice> {
    callbox_sip::audio::system::list_devices()
        .into_iter()
        .map(|d| AudioDevice {
            id: d.id,
            name: d.name,
            input: d.input,
            output: d.output,
        })
        .collect()
}
