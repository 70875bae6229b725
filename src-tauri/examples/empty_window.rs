//! An empty Tauri window (an empty page; no UI code, tray, plugins or phone): the baseline the
//! desktop's idle memory and start-up are compared with (scripts/bench-desktop.sh). The page is
//! a real (empty) document, not `about:blank`, which WebKit shows without a web process.
#![allow(missing_docs)]

use tauri::webview::PageLoadEvent;
use tauri::{WebviewUrl, WebviewWindowBuilder};

fn main() {
    let mut context = tauri::generate_context!();
    context.config_mut().app.windows.clear();
    let started = std::time::Instant::now();
    let result = tauri::Builder::default()
        .register_uri_scheme_protocol("blank", |_context, request| {
            // CALLBOX_BASELINE_PAGES: a directory of pages to serve instead, for experiments
            // (what costs what).
            let path = request.uri().path().trim_start_matches('/');
            let path = if path.is_empty() { "index.html" } else { path };
            let page = std::env::var_os("CALLBOX_BASELINE_PAGES")
                .and_then(|dir| std::fs::read(std::path::Path::new(&dir).join(path)).ok())
                .unwrap_or_else(|| b"<!doctype html><html><body></body></html>".to_vec());
            let kind = match path.rsplit('.').next() {
                Some("js") => "text/javascript",
                Some("css") => "text/css",
                _ => "text/html",
            };
            tauri::http::Response::builder()
                .header("Content-Type", kind)
                .body(page)
                .unwrap_or_default()
        })
        .setup(move |app| {
            let url = "blank://localhost/"
                .parse()
                .map_err(|e| format!("empty page: {e}"))?;
            // Ready when its page has loaded (Callbox: when its page first calls the app).
            WebviewWindowBuilder::new(app, "empty", WebviewUrl::External(url))
                .title("empty")
                .inner_size(1200.0, 780.0)
                .on_page_load(move |_window, payload| {
                    if payload.event() == PageLoadEvent::Finished {
                        eprintln!(
                            "empty window loaded after {:.1} ms",
                            started.elapsed().as_secs_f64() * 1000.0
                        );
                    }
                })
                .build()?;
            Ok(())
        })
        .run(context);
    if let Err(error) = result {
        eprintln!("empty_window: {error}");
    }
}
