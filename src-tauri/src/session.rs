//! Putting the agent's session together from their configuration: the phone (telephony.toml +
//! keychain), the engine (integrations + store), the desk over both. Nothing here fails the
//! app: what is missing or broken becomes a hint the window shows.

use std::sync::Arc;

use callbox_core::call::Agent;
use callbox_desk::{AlwaysFrame, Desk, DeskSettings, Framing, HttpFraming, NoPhone};
use callbox_engine::hooks::{Engine, EngineSettings};
use callbox_engine::secret_store::{KeychainStore, SecretStore};
use callbox_engine::setup::{self, Paths};
use callbox_engine::{HttpClient, HttpSettings};
use callbox_sip::{Account, SipAgent, Telephony};

use crate::settings::DesktopSettings;

/// The agent's running session.
pub struct Session {
    /// The desk the window drives.
    pub desk: Desk,
    /// The keychain, when it could be opened (the settings view stores secrets there).
    pub secrets: Option<Arc<dyn SecretStore>>,
    /// The SIP agent, when an account is configured (for shutdown).
    pub agent: Option<SipAgent>,
    /// Problems found while starting (shown to the agent).
    pub problems: Vec<String>,
}

/// What the role and the account allow: `Some(why)` when the agent may not place calls.
pub fn call_blocked(account: Option<&Account>, settings: &DesktopSettings) -> Option<String> {
    if !settings.call_right {
        return Some(
            "Your role does not include the Call permission; ask your administrator.".into(),
        );
    }
    match account {
        None => {
            Some("No phone number is mapped to you yet: add your SIP account in Settings.".into())
        }
        Some(_) => None,
    }
}

/// Opens everything configured under `paths`.
pub async fn open(paths: &Paths, settings: &DesktopSettings) -> Session {
    let mut problems = Vec::new();
    let secrets: Option<Arc<dyn SecretStore>> = match KeychainStore::new() {
        Ok(store) => Some(Arc::new(store)),
        Err(error) => {
            problems.push(format!("Keychain: {error}"));
            None
        }
    };
    let http = HttpClient::new(HttpSettings::default()).ok();

    let engine: Option<Engine> = match (&secrets, &http) {
        (Some(secrets), Some(http)) if paths.integrations_dir.is_dir() => {
            match setup::open_engine(
                paths,
                secrets.clone(),
                http.clone(),
                EngineSettings {
                    default_country: setup::locale_country(),
                    ..EngineSettings::default()
                },
            ) {
                Ok(engine) if !engine.integrations().is_empty() => Some(engine),
                Ok(_) => None,
                Err(error) => {
                    problems.push(format!("Integrations: {error}"));
                    None
                }
            }
        }
        _ => None,
    };

    let account = match &secrets {
        Some(secrets) => match callbox_engine::telephony::load_account(paths, secrets.as_ref()) {
            Ok(account) => account,
            Err(error) => {
                problems.push(format!("Telephony: {error}"));
                None
            }
        },
        None => None,
    };
    let telephony_file = callbox_engine::telephony::settings_file(paths);
    let mut agent = None;
    let mut sip_user = String::new();
    let mut extension = String::new();
    let (telephony, telephony_missing): (Arc<dyn Telephony>, Option<String>) = match &account {
        Some((account, password)) => {
            sip_user = account.user.clone();
            extension = account
                .number
                .clone()
                .unwrap_or_else(|| account.user.clone());
            match SipAgent::start(account.clone(), password.clone(), audio(settings)).await {
                Ok(started) => {
                    let _ = started.register();
                    agent = Some(started.clone());
                    (Arc::new(started), None)
                }
                Err(error) => {
                    let hint = format!("The phone could not start: {error}");
                    problems.push(hint.clone());
                    (Arc::new(NoPhone::new(hint.clone())), Some(hint))
                }
            }
        }
        None => {
            let hint = format!(
                "No SIP account: add it in Settings (or write {}).",
                telephony_file.display()
            );
            (Arc::new(NoPhone::new(hint.clone())), Some(hint))
        }
    };
    let framing: Arc<dyn Framing> = match http {
        Some(http) => Arc::new(HttpFraming::new(http)),
        None => Arc::new(AlwaysFrame),
    };
    let first_run = account.is_none() && engine.is_none();
    let desk_settings = DeskSettings {
        popup: settings.popup,
        framing_fallback: settings.framing_fallback,
        agent: Agent {
            extension,
            first_name: settings.first_name.clone(),
            last_name: settings.last_name.clone(),
            email: settings.email.clone(),
        },
        sip_user,
        call_blocked: call_blocked(account.as_ref().map(|(a, _)| a), settings),
        telephony_missing,
        first_run,
    };
    let desk = Desk::start(telephony, engine, framing, desk_settings);
    Session {
        desk,
        secrets,
        agent,
        problems,
    }
}

/// The chosen audio devices (ALSA through cpal); a device that cannot be opened is silence.
fn audio(settings: &DesktopSettings) -> Arc<dyn callbox_sip::AudioDevices> {
    let chosen = |name: &str| (!name.trim().is_empty()).then(|| name.trim().to_owned());
    Arc::new(callbox_sip::audio::system::SystemAudio {
        input: chosen(&settings.audio_input),
        output: chosen(&settings.audio_output),
        ringing: chosen(&settings.audio_ringing),
    })
}
