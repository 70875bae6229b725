//! An empty Tauri window (no UI, tray, plugins or phone): the baseline the desktop's idle
//! memory and start-up are compared with (scripts/bench-desktop.sh).
#![allow(missing_docs)]

use tauri::{WebviewUrl, WebviewWindowBuilder};

fn main() {
    let mut context = tauri::generate_context!();
    context.config_mut().app.windows.clear();
    let started = std::time::Instant::now();
    let result = tauri::Builder::default()
        .setup(move |app| {
            let url = "about:blank"
                .parse()
                .map_err(|e| format!("about:blank: {e}"))?;
            WebviewWindowBuilder::new(app, "empty", WebviewUrl::External(url))
                .title("empty")
                .inner_size(1200.0, 780.0)
                .build()?;
            eprintln!(
                "empty window built after {:.1} ms",
                started.elapsed().as_secs_f64() * 1000.0
            );
            Ok(())
        })
        .run(context);
    if let Err(error) = result {
        eprintln!("empty_window: {error}");
    }
}
