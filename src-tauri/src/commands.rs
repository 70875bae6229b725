//! The IPC commands: each takes the state it needs, calls one desk method and converts the
//! result. Errors reach the UI as `{ kind, message }` with a stable `kind`.

use callbox_desk::{DeskError, DeskSnapshot, Presence, RecentCall};
use serde::Serialize;
use tauri::State;

use crate::Shell;

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
