//! The desktop's own settings: `desktop.toml` beside the integrations directory
//! (`~/.config/callbox/desktop.toml` on Linux). Everything has a default, so the file is
//! optional; a bad value is reported with its place and the defaults are used.

use std::path::{Path, PathBuf};

use callbox_core::diagnostic::{LineIndex, Position};
use callbox_desk::{FramingFallback, PopupTrigger};
use callbox_engine::setup::Paths;
use serde::{Deserialize, Serialize};

/// What the agent (or the admin) set for the app.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, specta::Type)]
#[serde(default, deny_unknown_fields)]
pub struct DesktopSettings {
    /// When the CRM panel opens: `ringing`, `answered`, `ended` or `never`.
    pub popup: PopupTrigger,
    /// Where a CRM page that refuses framing opens: `window` or `browser`.
    pub framing_fallback: FramingFallback,
    /// The global shortcut that dials the selected number (`ctrl+alt+d`); empty: none.
    pub shortcut: String,
    /// Start Callbox when the agent logs in.
    pub start_at_login: bool,
    /// The agent's first name, for call logs.
    pub first_name: String,
    /// The agent's last name.
    pub last_name: String,
    /// The agent's email (associates them with their CRM user).
    pub email: String,
    /// The agent's role has the Call right (seed 000's role permissions).
    pub call_right: bool,
    /// Microphone (device id or name; empty: the system default).
    pub audio_input: String,
    /// Headset or speaker for calls (empty: the system default).
    pub audio_output: String,
    /// Where incoming calls ring (empty: the call output).
    pub audio_ringing: String,
}

impl Default for DesktopSettings {
    fn default() -> Self {
        DesktopSettings {
            popup: PopupTrigger::Ringing,
            framing_fallback: FramingFallback::Window,
            shortcut: "ctrl+alt+d".into(),
            start_at_login: false,
            first_name: String::new(),
            last_name: String::new(),
            email: String::new(),
            call_right: true,
            audio_input: String::new(),
            audio_output: String::new(),
            audio_ringing: String::new(),
        }
    }
}

/// Where the settings live.
pub fn file(paths: &Paths) -> PathBuf {
    paths
        .integrations_dir
        .parent()
        .map(|dir| dir.join("desktop.toml"))
        .unwrap_or_else(|| PathBuf::from("desktop.toml"))
}

/// Reads the settings; a missing file gives the defaults, a bad one an error naming the place.
pub fn load(path: &Path) -> Result<DesktopSettings, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(DesktopSettings::default());
        }
        Err(error) => return Err(format!("{}: {error}", path.display())),
    };
    toml::from_str(&text).map_err(|error| {
        let place = error
            .span()
            .map_or(Position { line: 1, column: 1 }, |span| {
                LineIndex::new(&text).position(&text, span.start)
            });
        format!(
            "{}:{}:{}: {}",
            path.display(),
            place.line,
            place.column,
            error.message()
        )
    })
}

/// Writes the settings (the settings window's Save).
pub fn save(path: &Path, settings: &DesktopSettings) -> Result<(), String> {
    let text = toml::to_string_pretty(settings).map_err(|e| e.to_string())?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_the_defaults_and_a_typo_names_its_place() {
        let dir = std::env::temp_dir().join(format!("callbox-desktop-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_default();
        let path = dir.join("desktop.toml");
        let _ = std::fs::remove_file(&path);
        assert_eq!(load(&path), Ok(DesktopSettings::default()));
        std::fs::write(&path, "popup = \"answered\"\nshortcutt = \"ctrl+d\"\n").unwrap_or_default();
        let error = load(&path).err().unwrap_or_default();
        assert!(error.ends_with("desktop.toml:2:1: unknown field `shortcutt`, expected one of `popup`, `framing_fallback`, `shortcut`, `start_at_login`, `first_name`, `last_name`, `email`, `call_right`, `audio_input`, `audio_output`, `audio_ringing`"), "{error}");
        let saved = DesktopSettings {
            popup: PopupTrigger::Answered,
            ..DesktopSettings::default()
        };
        assert_eq!(save(&path, &saved), Ok(()));
        assert_eq!(load(&path), Ok(saved));
    }
}
