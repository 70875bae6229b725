//! CRM pages outside the panel: a window of Callbox's own (no capability: the page cannot reach
//! the app) or the system browser.

use tauri::{Manager, WebviewUrl, WebviewWindowBuilder};

/// The label of the CRM window. The capabilities grant nothing to it.
pub const CRM_WINDOW: &str = "crm";

/// Opens `url` (http or https only) in the CRM window or the browser.
pub fn open_outside(app: &tauri::AppHandle, url: &str, browser: bool) -> Result<(), String> {
    let parsed: tauri::Url = url.parse().map_err(|e| format!("{url}: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "{url}: only http and https pages open from Callbox"
        ));
    }
    if browser {
        return tauri_plugin_opener::open_url(parsed.as_str(), None::<&str>)
            .map_err(|e| e.to_string());
    }
    if let Some(window) = app.get_webview_window(CRM_WINDOW) {
        window.navigate(parsed).map_err(|e| e.to_string())?;
        let _ = window.show();
        return Ok(());
    }
    WebviewWindowBuilder::new(app, CRM_WINDOW, WebviewUrl::External(parsed))
        .title("Callbox — CRM")
        .inner_size(1100.0, 800.0)
        .build()
        .map(|_| ())
        .map_err(|e| e.to_string())
}
