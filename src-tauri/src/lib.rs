//! The desktop shell: the Callbox window, the CRM panel's outside windows, the tray,
//! notifications and click-to-call, over [`callbox_desk::Desk`]. Commands are thin (see
//! `commands.rs`); everything the window shows arrives as one typed event, [`DeskChanged`].

pub mod click_to_call;
pub mod commands;
pub mod graphics;
pub mod logging;
pub mod notification;
pub mod panel;
pub mod preferences;
pub mod search;
pub mod session;
pub mod settings;
pub mod tray;

use std::sync::Mutex;
use std::time::Duration;

use callbox_desk::{CallPhase, Desk, DeskEvent, PanelTarget, Presence};
use callbox_engine::setup::Paths;
use notification::{Announce, Announcements};
use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Manager, RunEvent, WindowEvent};
use tauri_specta::Event;

/// When the process started (for the start-up time in the log).
static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// Logs, once, how long the window took to become interactive: its first IPC call (the
/// snapshot it draws itself from) marks the moment.
pub fn window_interactive() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Some(started) = STARTED.get() {
            tracing::info!(
                ms = started.elapsed().as_secs_f64() * 1000.0,
                "window interactive"
            );
        }
    });
}

/// The main window's label (the only one the capabilities grant commands to).
pub const MAIN_WINDOW: &str = "main";

/// Every change the window shows, as one typed event.
#[derive(Clone, Debug, Serialize, Deserialize, specta::Type, tauri_specta::Event)]
pub struct DeskChanged(pub DeskEvent);

/// The app's state.
pub struct Shell {
    desk: Desk,
    agent: Option<callbox_sip::SipAgent>,
    /// Problems found at start (bad settings, keychain, integrations).
    pub problems: Vec<String>,
    /// Each ringing call's notification stage (shown once per call).
    announcements: Mutex<Announcements>,
}

impl Shell {
    /// The desk.
    pub fn desk(&self) -> Desk {
        self.desk.clone()
    }
}

/// The commands and events, for the invoke handler and the TypeScript bindings.
pub fn specta_builder() -> tauri_specta::Builder<tauri::Wry> {
    tauri_specta::Builder::<tauri::Wry>::new()
        .commands(tauri_specta::collect_commands![
            commands::snapshot,
            commands::recent,
            commands::dial,
            commands::answer,
            commands::decline,
            commands::hang_up,
            commands::hold,
            commands::mute,
            commands::send_dtmf,
            commands::transfer,
            commands::choose_contact,
            commands::create_contact,
            commands::create_ticket,
            commands::send_sms,
            commands::retry_hook,
            commands::set_presence,
            commands::clear_missed,
            commands::search_contacts,
            commands::open_outside,
            commands::configuration,
            commands::save_phone,
            commands::add_integration,
            commands::save_integration,
            commands::remove_integration,
            commands::test_integration,
            commands::sign_in,
            commands::associate_user,
            commands::desktop_settings,
            commands::save_desktop_settings,
            commands::audio_devices,
            commands::restart,
        ])
        .events(tauri_specta::collect_events![DeskChanged])
}

/// Shows and focuses the main window.
pub fn show_main(app: &AppHandle) {
    if let Some(window) = app.get_webview_window(MAIN_WINDOW) {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
    }
}

/// Sets availability (tray menu).
pub fn set_presence(app: &AppHandle, presence: Presence) {
    if let Some(shell) = app.try_state::<Shell>() {
        shell.desk().set_presence(presence);
    }
}

/// Signs an integration in again (tray prompt, settings): with the running engine when the
/// integration runs, so what waited for it is sent at once.
pub fn sign_in_again(app: &AppHandle, integration: &str) {
    if let Some(shell) = app.try_state::<Shell>()
        && let Err(error) = shell.desk().sign_in(integration)
    {
        shell
            .desk()
            .notice(format!("Cannot sign in to {integration}: {error}"));
    }
}

/// Unregisters and starts Callbox again (settings changes).
pub fn restart(app: &AppHandle) {
    let agent = app.try_state::<Shell>().and_then(|s| s.agent.clone());
    if let Some(agent) = agent {
        tauri::async_runtime::block_on(agent.shutdown(Duration::from_secs(2)));
    }
    app.restart();
}

/// Unregisters and exits.
pub fn quit(app: &AppHandle) {
    let agent = app.try_state::<Shell>().and_then(|s| s.agent.clone());
    if let Some(agent) = agent {
        tauri::async_runtime::block_on(agent.shutdown(Duration::from_secs(2)));
    }
    app.exit(0);
}

/// Dials a `tel:`/`callto:`/`sip:` link (deep link or second launch).
fn dial_link(app: &AppHandle, link: &str) {
    let Some(target) = click_to_call::link_target(link) else {
        tracing::info!(link, "not a call link");
        return;
    };
    tracing::info!(%target, "click-to-call link");
    show_main(app);
    if let Some(shell) = app.try_state::<Shell>()
        && let Err(error) = shell.desk().dial(&target)
    {
        shell
            .desk()
            .notice(format!("Cannot call {target}: {error}"));
    }
}

/// Dials the number in the selection or the clipboard (global shortcut).
fn dial_selection(app: &AppHandle) {
    let Some(shell) = app.try_state::<Shell>() else {
        return;
    };
    let desk = shell.desk();
    let text = click_to_call::selected_text().unwrap_or_default();
    match callbox_desk::phone_number_in(&text) {
        Some(number) => {
            tracing::info!(%number, "dialing the selected number");
            show_main(app);
            if let Err(error) = desk.dial(&number) {
                desk.notice(format!("Cannot call {number}: {error}"));
            }
        }
        None => desk.notice("No phone number in the selection or the clipboard.".into()),
    }
}

/// Forwards desk events to the window and acts on them (notification, outside panel, tray).
async fn forward(app: AppHandle, desk: Desk) {
    let mut events = desk.subscribe();
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        match &event {
            DeskEvent::Call { call } if call.inbound && call.phase == CallPhase::Ringing => {
                match announce(&app, |a| a.ringing(&call.id, call.looking_up)) {
                    Some(Announce::Now) => notify(&app, &desk, call.clone()),
                    Some(Announce::AfterWait) => {
                        // The CRM is asked: its name and company are waited for a moment, then
                        // what is known is shown; a slower CRM's answer updates it.
                        let (app, desk, id) = (app.clone(), desk.clone(), call.id.clone());
                        tauri::async_runtime::spawn(async move {
                            tokio::time::sleep(notification::LOOKUP_WAIT).await;
                            if let Some(call) =
                                desk.snapshot().calls.into_iter().find(|c| c.id == id)
                                && call.phase == CallPhase::Ringing
                                && announce(&app, |a| a.waited(&id)) == Some(true)
                            {
                                notify(&app, &desk, call);
                            }
                        });
                    }
                    Some(Announce::Nothing) | None => {}
                }
            }
            DeskEvent::CallEnded { call } => {
                announce(&app, |a| a.ended(&call.id));
            }
            DeskEvent::Panel { panel } if panel.target != PanelTarget::Embedded => {
                let browser = panel.target == PanelTarget::Browser;
                if let Err(error) = panel::open_outside(&app, &panel.url, browser) {
                    tracing::warn!(%error, "cannot open the CRM page outside");
                }
            }
            DeskEvent::SignIn { needed } => {
                if let Some(tray) = tray::of(&app)
                    && let Err(error) = tray.show_sign_in(&app, needed)
                {
                    tracing::warn!(%error, "tray menu");
                }
            }
            DeskEvent::Presence { presence, missed } => {
                if let Some(tray) = tray::of(&app) {
                    tray.show(*presence, *missed);
                }
            }
            _ => {}
        }
        if let Err(error) = DeskChanged(event).emit(&app) {
            tracing::warn!(%error, "cannot reach the window");
        }
    }
}

/// Acts on the calls' notification stages (`None` before the app's state exists).
fn announce<T>(app: &AppHandle, act: impl FnOnce(&mut Announcements) -> T) -> Option<T> {
    let shell = app.try_state::<Shell>()?;
    let mut announcements = shell.announcements.lock().ok()?;
    Some(act(&mut announcements))
}

/// Shows an incoming call's notification (once: [`Announcements`] decided).
fn notify(app: &AppHandle, desk: &Desk, call: callbox_desk::CallView) {
    let (handle, desk) = (app.clone(), desk.clone());
    tauri::async_runtime::spawn(notification::incoming(desk, call, move || {
        show_main(&handle)
    }));
}

/// Runs the app.
pub fn run() {
    let _ = STARTED.set(std::time::Instant::now());
    let paths = Paths::default_dirs();
    let _log = logging::start(&paths.data_dir);
    let settings_path = settings::file(&paths);
    let (settings, settings_problem) = match settings::load(&settings_path) {
        Ok(settings) => (settings, None),
        Err(problem) => (settings::DesktopSettings::default(), Some(problem)),
    };
    let shortcut = settings.shortcut.clone();
    let builder = specta_builder();
    let app = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, argv, _cwd| {
            // A second launch: its link (if any) reaches the deep-link handler; show the window.
            tracing::info!(?argv, "second launch");
            show_main(app);
        }))
        .plugin(tauri_plugin_deep_link::init())
        .plugin(tauri_plugin_opener::init())
        .plugin(tauri_plugin_autostart::init(
            tauri_plugin_autostart::MacosLauncher::LaunchAgent,
            None,
        ))
        .plugin(
            tauri_plugin_global_shortcut::Builder::new()
                .with_handler(|app, _shortcut, event| {
                    if event.state == tauri_plugin_global_shortcut::ShortcutState::Pressed {
                        dial_selection(app);
                    }
                })
                .build(),
        )
        .invoke_handler(builder.invoke_handler())
        .setup(move |app| {
            builder.mount_events(app);
            if let Some(window) = app.get_webview_window(MAIN_WINDOW) {
                graphics::apply(&window);
            }
            let session = tauri::async_runtime::block_on(session::open(&paths, &settings));
            let mut problems = session.problems;
            problems.extend(settings_problem);
            for problem in &problems {
                tracing::warn!(%problem, "setup");
            }
            let desk = session.desk.clone();
            app.manage(preferences::Preferences {
                paths: paths.clone(),
                secrets: session.secrets.clone(),
            });
            app.manage(Shell {
                desk: desk.clone(),
                agent: session.agent,
                problems,
                announcements: Mutex::new(Announcements::default()),
            });
            let tray = tray::build(app.handle())?;
            app.manage(tray);
            tauri::async_runtime::spawn(forward(app.handle().clone(), desk.clone()));

            use tauri_plugin_deep_link::DeepLinkExt;
            #[cfg(any(target_os = "linux", windows))]
            if let Err(error) = app.deep_link().register_all() {
                tracing::warn!(%error, "tel:/callto:/sip: links are not registered");
            }
            let handle = app.handle().clone();
            app.deep_link().on_open_url(move |event| {
                for url in event.urls() {
                    dial_link(&handle, url.as_str());
                }
            });
            if let Ok(Some(urls)) = app.deep_link().get_current() {
                for url in urls {
                    dial_link(app.handle(), url.as_str());
                }
            }

            use tauri_plugin_autostart::ManagerExt;
            let autostart = app.autolaunch();
            let change = match (settings.start_at_login, autostart.is_enabled()) {
                (true, Ok(false)) => autostart.enable(),
                (false, Ok(true)) => autostart.disable(),
                _ => Ok(()),
            };
            if let Err(error) = change {
                tracing::warn!(%error, "start at login could not be changed");
            }

            use tauri_plugin_global_shortcut::GlobalShortcutExt;
            if !shortcut.trim().is_empty()
                && let Err(error) = app.global_shortcut().register(shortcut.as_str())
            {
                desk.notice(format!("The shortcut {shortcut} is not available: {error}"));
            }
            Ok(())
        })
        .on_window_event(|window, event| {
            if window.label() == MAIN_WINDOW
                && let WindowEvent::CloseRequested { api, .. } = event
            {
                // Closing keeps Callbox in the tray; Quit is in the tray menu.
                api.prevent_close();
                let _ = window.hide();
            }
        })
        .build(tauri::generate_context!());
    match app {
        Ok(app) => app.run(|_app, event| {
            if let RunEvent::ExitRequested { api, code, .. } = event
                && code.is_none()
            {
                api.prevent_exit();
            }
        }),
        Err(error) => eprintln!("callbox: {error}"),
    }
}
