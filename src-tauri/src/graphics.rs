//! How WebKitGTK draws the window: WebKit's default (composited with OpenGL), or, when the
//! admin asks for it with `CALLBOX_GRAPHICS=software`, without hardware acceleration.
//!
//! Without a GPU (virtual desktops, thin clients, remote sessions: common in call centres)
//! WebKitGTK still composites with OpenGL, through Mesa's software renderer: measured under
//! Xvfb, its web process holds about 70 MB more at idle than with hardware acceleration off
//! (docs/design/desktop-footprint.md). It is not the default: in the end-to-end tests, with
//! it on, dunst dropped the incoming-call notification from its screen without a word when
//! the CRM's own window opened, and the cause is not found yet.

/// The variable that chooses: `software` or `accelerated` (the default).
pub const OVERRIDE: &str = "CALLBOX_GRAPHICS";

/// How the window is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Graphics {
    /// WebKit's default: composited with OpenGL.
    Accelerated,
    /// Never hardware-accelerated (no OpenGL compositing in the web process).
    Software,
}

/// Why `choose` decided as it did, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Nothing asked: WebKit's default.
    Default,
    /// `CALLBOX_GRAPHICS` said so.
    Asked,
    /// `CALLBOX_GRAPHICS` had a value that is neither `software` nor `accelerated`.
    NotUnderstood,
}

/// Decides from `CALLBOX_GRAPHICS`'s value, if any.
pub fn choose(asked: Option<&str>) -> (Graphics, Reason) {
    match asked.map(str::trim) {
        None | Some("") => (Graphics::Accelerated, Reason::Default),
        Some("software") => (Graphics::Software, Reason::Asked),
        Some("accelerated") => (Graphics::Accelerated, Reason::Asked),
        Some(_) => (Graphics::Accelerated, Reason::NotUnderstood),
    }
}

/// Chooses from the environment and sets the window's WebKit settings to match.
pub fn apply(window: &tauri::WebviewWindow) {
    let asked = std::env::var(OVERRIDE).ok();
    let (graphics, reason) = choose(asked.as_deref());
    match reason {
        Reason::NotUnderstood => tracing::warn!(
            value = asked.as_deref().unwrap_or_default(),
            "{OVERRIDE} is neither software nor accelerated; WebKit's default is kept"
        ),
        _ => tracing::info!(?graphics, ?reason, "window drawing"),
    }
    #[cfg(target_os = "linux")]
    if graphics == Graphics::Software {
        let result = window.with_webview(|webview| {
            use webkit2gtk::{HardwareAccelerationPolicy, SettingsExt, WebViewExt};
            if let Some(settings) = WebViewExt::settings(&webview.inner()) {
                settings.set_hardware_acceleration_policy(HardwareAccelerationPolicy::Never);
            }
        });
        if let Err(error) = result {
            tracing::warn!(%error, "window drawing unchanged");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webkits_default_unless_asked() {
        assert_eq!(choose(None), (Graphics::Accelerated, Reason::Default));
        assert_eq!(choose(Some("")), (Graphics::Accelerated, Reason::Default));
        assert_eq!(
            choose(Some(" software ")),
            (Graphics::Software, Reason::Asked)
        );
        assert_eq!(
            choose(Some("accelerated")),
            (Graphics::Accelerated, Reason::Asked)
        );
        assert_eq!(
            choose(Some("fast")),
            (Graphics::Accelerated, Reason::NotUnderstood)
        );
    }
}
