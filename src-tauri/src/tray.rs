//! The tray: availability, missed calls, sign-in prompts for integrations whose token can no
//! longer be refreshed, open and quit. Closing the window keeps Callbox here.

use std::sync::Mutex;

use callbox_desk::{Presence, SignInNeeded};
use tauri::menu::{CheckMenuItem, Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager, Wry};

/// The tray's menu items that change.
pub struct Tray {
    available: CheckMenuItem<Wry>,
    away: CheckMenuItem<Wry>,
    do_not_disturb: CheckMenuItem<Wry>,
    missed: MenuItem<Wry>,
    open: MenuItem<Wry>,
    quit: MenuItem<Wry>,
    sign_in: Mutex<Vec<MenuItem<Wry>>>,
    icon: tauri::tray::TrayIcon<Wry>,
}

/// Builds the tray icon and its menu.
pub fn build(app: &AppHandle) -> tauri::Result<Tray> {
    let available = CheckMenuItem::with_id(
        app,
        "presence:available",
        "Available",
        true,
        true,
        None::<&str>,
    )?;
    let away = CheckMenuItem::with_id(app, "presence:away", "Away", true, false, None::<&str>)?;
    let do_not_disturb = CheckMenuItem::with_id(
        app,
        "presence:dnd",
        "Do not disturb",
        true,
        false,
        None::<&str>,
    )?;
    let missed = MenuItem::with_id(app, "missed", "No missed calls", true, None::<&str>)?;
    let open = MenuItem::with_id(app, "open", "Open Callbox", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit Callbox", true, None::<&str>)?;
    let menu = Menu::with_items(
        app,
        &[
            &available,
            &away,
            &do_not_disturb,
            &PredefinedMenuItem::separator(app)?,
            &missed,
            &open,
            &PredefinedMenuItem::separator(app)?,
            &quit,
        ],
    )?;
    let mut builder = TrayIconBuilder::with_id("callbox")
        .tooltip("Callbox — available")
        .menu(&menu)
        .on_menu_event(|app, event| match event.id().as_ref() {
            "presence:available" => crate::set_presence(app, Presence::Available),
            "presence:away" => crate::set_presence(app, Presence::Away),
            "presence:dnd" => crate::set_presence(app, Presence::DoNotDisturb),
            "missed" | "open" => crate::show_main(app),
            "quit" => crate::quit(app),
            other => {
                if let Some(integration) = other.strip_prefix("sign-in:") {
                    crate::sign_in_again(app, integration);
                }
            }
        });
    if let Some(icon) = app.default_window_icon() {
        builder = builder.icon(icon.clone());
    }
    let icon = builder.build(app)?;
    Ok(Tray {
        available,
        away,
        do_not_disturb,
        missed,
        open,
        quit,
        sign_in: Mutex::new(Vec::new()),
        icon,
    })
}

impl Tray {
    /// Lists the integrations waiting for a new sign-in ("Sign in to hubspot again").
    pub fn show_sign_in(&self, app: &AppHandle, needed: &[SignInNeeded]) -> tauri::Result<()> {
        let items = needed
            .iter()
            .map(|n| {
                MenuItem::with_id(
                    app,
                    format!("sign-in:{}", n.integration),
                    format!("Sign in to {} again…", n.integration),
                    true,
                    None::<&str>,
                )
            })
            .collect::<tauri::Result<Vec<_>>>()?;
        let separator = PredefinedMenuItem::separator(app)?;
        let separator2 = PredefinedMenuItem::separator(app)?;
        let separator3 = PredefinedMenuItem::separator(app)?;
        let mut entries: Vec<&dyn tauri::menu::IsMenuItem<Wry>> = vec![
            &self.available,
            &self.away,
            &self.do_not_disturb,
            &separator,
        ];
        for item in &items {
            entries.push(item);
        }
        if !items.is_empty() {
            entries.push(&separator3);
        }
        entries.extend([
            &self.missed as &dyn tauri::menu::IsMenuItem<Wry>,
            &self.open,
            &separator2,
            &self.quit,
        ]);
        let menu = Menu::with_items(app, &entries)?;
        self.icon.set_menu(Some(menu))?;
        if let Ok(mut kept) = self.sign_in.lock() {
            *kept = items;
        }
        Ok(())
    }

    /// Shows availability and the missed-call count.
    pub fn show(&self, presence: Presence, missed: u32) {
        let _ = self.available.set_checked(presence == Presence::Available);
        let _ = self.away.set_checked(presence == Presence::Away);
        let _ = self
            .do_not_disturb
            .set_checked(presence == Presence::DoNotDisturb);
        let _ = self.missed.set_text(match missed {
            0 => "No missed calls".to_owned(),
            1 => "1 missed call".to_owned(),
            n => format!("{n} missed calls"),
        });
        let status = match presence {
            Presence::Available => "available",
            Presence::Away => "away",
            Presence::DoNotDisturb => "do not disturb",
        };
        let tip = if missed > 0 {
            format!("Callbox — {status}, {missed} missed")
        } else {
            format!("Callbox — {status}")
        };
        let _ = self.icon.set_tooltip(Some(tip));
    }
}

/// The tray of `app`, once built.
pub fn of(app: &AppHandle) -> Option<tauri::State<'_, Tray>> {
    app.try_state::<Tray>()
}
