//! The IPC commands: each takes the state it needs, calls one desk method and converts the
//! result. Errors reach the UI as `{ kind, message }` with a stable `kind`.

use callbox_desk::{DeskError, DeskSnapshot, Presence, RecentCall};
use serde::Serialize;
use tauri::State;

use callbox_desk::{ConfigurationView, IntegrationForm, PhoneForm};

use crate::Shell;
use crate::preferences::{AudioDevice, ConnectionTest, Preferences};
use crate::settings::DesktopSettings;

/// An error as the UI sees it.
#[derive(Debug, Serialize, specta::Type)]
pub struct CommandError {
    /// Stable name to match on: `unknown_call`, `not_allowed`, `telephony`, `engine`,
    /// `no_integration`, `settings`.
    pub kind: String,
    /// Words for the agent.
    pub message: String,
}

impl From<DeskError> for CommandError {
    fn from(error: DeskError) -> Self {
        CommandError {
            kind: error.kind().to_owned(),
            message: error.to_string(),
        }
    }
}

type Answer<T = ()> = Result<T, CommandError>;

/// Everything the window shows.
#[tauri::command]
#[specta::specta]
pub fn snapshot(shell: State<'_, Shell>) -> DeskSnapshot {
    crate::window_interactive();
    shell.desk().snapshot()
}

/// The latest calls with their CRM writes.
#[tauri::command]
#[specta::specta]
pub fn recent(shell: State<'_, Shell>, limit: u32) -> Answer<Vec<RecentCall>> {
    Ok(shell.desk().recent(limit as usize)?)
}

/// Places a call.
#[tauri::command]
#[specta::specta]
pub fn dial(shell: State<'_, Shell>, target: String) -> Answer {
    Ok(shell.desk().dial(&target)?)
}

/// Answers a ringing call.
#[tauri::command]
#[specta::specta]
pub fn answer(shell: State<'_, Shell>, call_id: String) -> Answer {
    Ok(shell.desk().answer(&call_id)?)
}

/// Declines a ringing call.
#[tauri::command]
#[specta::specta]
pub fn decline(shell: State<'_, Shell>, call_id: String) -> Answer {
    Ok(shell.desk().decline(&call_id)?)
}

/// Hangs up.
#[tauri::command]
#[specta::specta]
pub fn hang_up(shell: State<'_, Shell>, call_id: String) -> Answer {
    Ok(shell.desk().hang_up(&call_id)?)
}

/// Hold on or off.
#[tauri::command]
#[specta::specta]
pub fn hold(shell: State<'_, Shell>, call_id: String, on: bool) -> Answer {
    Ok(shell.desk().hold(&call_id, on)?)
}

/// Mute on or off.
#[tauri::command]
#[specta::specta]
pub fn mute(shell: State<'_, Shell>, call_id: String, on: bool) -> Answer {
    Ok(shell.desk().mute(&call_id, on)?)
}

/// Sends DTMF digits.
#[tauri::command]
#[specta::specta]
pub fn send_dtmf(shell: State<'_, Shell>, call_id: String, digits: String) -> Answer {
    Ok(shell.desk().send_dtmf(&call_id, &digits)?)
}

/// Blind transfer.
#[tauri::command]
#[specta::specta]
pub fn transfer(shell: State<'_, Shell>, call_id: String, target: String) -> Answer {
    Ok(shell.desk().transfer(&call_id, &target)?)
}

/// Picks another of the call's matches.
#[tauri::command]
#[specta::specta]
pub fn choose_contact(shell: State<'_, Shell>, call_id: String, index: u32) -> Answer {
    Ok(shell.desk().choose_contact(&call_id, index)?)
}

/// Creates a contact for the call's number.
#[tauri::command]
#[specta::specta]
pub fn create_contact(shell: State<'_, Shell>, call_id: String, integration: String) -> Answer {
    Ok(shell.desk().create_contact(&call_id, &integration)?)
}

/// Creates a ticket for the call.
#[tauri::command]
#[specta::specta]
pub fn create_ticket(shell: State<'_, Shell>, call_id: String, integration: String) -> Answer {
    Ok(shell.desk().create_ticket(&call_id, &integration)?)
}

/// Sends an SMS (through `integration`, else the first that can); returns its id.
#[tauri::command]
#[specta::specta]
pub fn send_sms(
    shell: State<'_, Shell>,
    number: String,
    text: String,
    integration: Option<String>,
) -> Answer<String> {
    Ok(shell
        .desk()
        .send_sms(&number, &text, integration.as_deref())?)
}

/// Sends a failed CRM write again.
#[tauri::command]
#[specta::specta]
pub fn retry_hook(shell: State<'_, Shell>, id: f64) -> Answer {
    Ok(shell.desk().retry_hook(id as i64)?)
}

/// Sets availability.
#[tauri::command]
#[specta::specta]
pub fn set_presence(shell: State<'_, Shell>, presence: Presence) {
    shell.desk().set_presence(presence);
}

/// The agent has seen the missed calls.
#[tauri::command]
#[specta::specta]
pub fn clear_missed(shell: State<'_, Shell>) {
    shell.desk().clear_missed();
}

/// Contacts matching a dial-search query (name, company or digits), best first.
#[tauri::command]
#[specta::specta]
pub fn search_contacts(
    shell: State<'_, Shell>,
    query: String,
) -> Answer<Vec<crate::search::SearchHit>> {
    crate::search::search(&shell.desk(), &query).map_err(|message| CommandError {
        kind: "engine".into(),
        message,
    })
}

/// Opens the CRM page of a call in a window of its own or the browser (the panel's "pop out").
#[tauri::command]
#[specta::specta]
pub fn open_outside(app: tauri::AppHandle, url: String, browser: bool) -> Answer {
    crate::panel::open_outside(&app, &url, browser).map_err(|message| CommandError {
        kind: "panel".into(),
        message,
    })
}

/// The SIP account and integrations, for the settings view.
#[tauri::command]
#[specta::specta]
pub fn configuration(preferences: State<'_, Preferences>) -> Answer<ConfigurationView> {
    preferences.view()
}

/// Saves the SIP account (applies after restart).
#[tauri::command]
#[specta::specta]
pub fn save_phone(preferences: State<'_, Preferences>, form: PhoneForm) -> Answer {
    preferences.save_phone(&form)
}

/// Adds an integration from a built-in template or a template file.
#[tauri::command]
#[specta::specta]
pub fn add_integration(
    preferences: State<'_, Preferences>,
    name: String,
    template: String,
) -> Answer<IntegrationForm> {
    preferences.add_integration(&name, &template)
}

/// Saves an integration's settings and fields.
#[tauri::command]
#[specta::specta]
pub fn save_integration(preferences: State<'_, Preferences>, form: IntegrationForm) -> Answer {
    preferences.save_integration(&form)
}

/// Removes an integration and its secrets.
#[tauri::command]
#[specta::specta]
pub fn remove_integration(preferences: State<'_, Preferences>, name: String) -> Answer {
    preferences.remove_integration(&name)
}

/// Test Connection: looks a number up in the integration's CRM, as saved now.
#[tauri::command]
#[specta::specta]
pub async fn test_integration(
    preferences: State<'_, Preferences>,
    name: String,
    number: String,
) -> Answer<ConnectionTest> {
    crate::preferences::test(&preferences, &name, &number).await
}

/// Signs in to an OAuth2 integration in the system browser: the running one (what waited
/// for the sign-in is sent at once), else as configured now.
#[tauri::command]
#[specta::specta]
pub async fn sign_in(
    shell: State<'_, Shell>,
    preferences: State<'_, Preferences>,
    name: String,
) -> Answer {
    let desk = shell.desk();
    let running = desk
        .engine()
        .is_some_and(|e| e.integrations().iter().any(|a| a.name() == name));
    if running {
        return Ok(desk.sign_in(&name)?);
    }
    crate::preferences::sign_in(&preferences, &name).await
}

/// Associates the agent with their CRM user by email; returns the CRM user id.
#[tauri::command]
#[specta::specta]
pub async fn associate_user(
    preferences: State<'_, Preferences>,
    name: String,
    extension: String,
    email: String,
) -> Answer<Option<String>> {
    crate::preferences::associate(&preferences, &name, &extension, &email).await
}

/// The desktop settings (desktop.toml).
#[tauri::command]
#[specta::specta]
pub fn desktop_settings(preferences: State<'_, Preferences>) -> DesktopSettings {
    preferences.desktop()
}

/// Saves the desktop settings (applies after restart).
#[tauri::command]
#[specta::specta]
pub fn save_desktop_settings(
    preferences: State<'_, Preferences>,
    settings: DesktopSettings,
) -> Answer {
    preferences.save_desktop(&settings)
}

/// The machine's audio devices.
#[tauri::command]
#[specta::specta]
pub fn audio_devices() -> Vec<AudioDevice> {
    crate::preferences::audio_devices()
}

/// Restarts Callbox so saved settings take effect (unregisters first).
#[tauri::command]
#[specta::specta]
pub fn restart(app: tauri::AppHandle) {
    crate::restart(&app);
}
