//! Declares the app's commands so each needs an explicit permission (granted only to the main
//! window in capabilities/main.json).

const COMMANDS: &[&str] = &[
    "snapshot",
    "recent",
    "dial",
    "answer",
    "decline",
    "hang_up",
    "hold",
    "mute",
    "send_dtmf",
    "transfer",
    "choose_contact",
    "create_contact",
    "create_ticket",
    "send_sms",
    "retry_hook",
    "set_presence",
    "clear_missed",
    "search_contacts",
    "open_outside",
    "configuration",
    "save_phone",
    "add_integration",
    "save_integration",
    "remove_integration",
    "test_integration",
    "sign_in",
    "associate_user",
    "desktop_settings",
    "save_desktop_settings",
    "audio_devices",
    "restart",
];

fn main() {
    let attributes = tauri_build::Attributes::new()
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(error) = tauri_build::try_build(attributes) {
        println!("cargo:warning=tauri-build: {error}");
        std::process::exit(1);
    }
}
