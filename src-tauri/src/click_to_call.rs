//! Click-to-call: `tel:`, `callto:` and `sip:` links (deep links; a second launch hands its
//! link to the running app) and the global shortcut that dials the number in the current
//! selection or the clipboard.

/// The dial target of a link, or `None` when it is not a call link.
pub fn link_target(link: &str) -> Option<String> {
    let link = link.trim();
    let (scheme, rest) = link.split_once(':')?;
    match scheme.to_ascii_lowercase().as_str() {
        "tel" | "callto" => {
            let rest = rest.trim_start_matches('/');
            // RFC 3966: visual separators go; parameters (;ext=, ;phone-context=) are dropped.
            let number = rest.split(';').next().unwrap_or(rest);
            let number = percent_decode(number);
            callbox_desk::phone_number_in(&number)
        }
        "sip" | "sips" => {
            let rest = rest.trim_start_matches('/');
            (!rest.is_empty())
                .then(|| format!("{}:{}", scheme.to_ascii_lowercase(), percent_decode(rest)))
        }
        _ => None,
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(value) = text
                .get(i + 1..i + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(value);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The text the agent selected (X11/Wayland primary selection), else the clipboard's.
pub fn selected_text() -> Option<String> {
    let mut clipboard = arboard::Clipboard::new().ok()?;
    #[cfg(target_os = "linux")]
    {
        use arboard::{GetExtLinux, LinuxClipboardKind};
        if let Ok(text) = clipboard
            .get()
            .clipboard(LinuxClipboardKind::Primary)
            .text()
            && !text.trim().is_empty()
        {
            return Some(text);
        }
    }
    clipboard.get_text().ok().filter(|t| !t.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_links_become_dial_targets() {
        assert_eq!(
            link_target("tel:+1-415-555-0100").as_deref(),
            Some("+14155550100")
        );
        assert_eq!(
            link_target("tel:+1%20(415)%20555-0100").as_deref(),
            Some("+14155550100")
        );
        assert_eq!(
            link_target("callto://+4930901820").as_deref(),
            Some("+4930901820")
        );
        assert_eq!(
            link_target("TEL:0049 30 1234567").as_deref(),
            Some("+49301234567")
        );
        assert_eq!(
            link_target("tel:7042;phone-context=example.com").as_deref(),
            Some("7042")
        );
        assert_eq!(
            link_target("sip:1001@pbx.example.com").as_deref(),
            Some("sip:1001@pbx.example.com")
        );
        assert_eq!(link_target("https://example.com"), None);
        assert_eq!(link_target("tel:"), None);
        assert_eq!(link_target("nonsense"), None);
    }
}
