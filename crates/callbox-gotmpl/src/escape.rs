//! Go's `html`, `js` and `urlquery` escapers (text/template funcs.go, net/url).

use std::fmt::Write as _;

use crate::unicode::is_print;

/// Go's `template.HTMLEscapeString`.
pub(crate) fn html_escape(out: &mut String, s: &str) {
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let rep = match c {
            '\0' => "\u{FFFD}",
            '"' => "&#34;",
            '\'' => "&#39;",
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        out.push_str(rep);
        start = i + c.len_utf8();
    }
    out.push_str(&s[start..]);
}

/// Go's `template.JSEscapeString`.
pub(crate) fn js_escape(out: &mut String, s: &str) {
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let rep = match c {
            '\\' => "\\\\",
            '\'' => "\\'",
            '"' => "\\\"",
            '<' => "\\u003C",
            '>' => "\\u003E",
            '&' => "\\u0026",
            '=' => "\\u003D",
            _ if (c as u32) < 0x20 => "",
            _ if c.is_ascii() || is_print(c) => continue,
            _ => "",
        };
        out.push_str(&s[start..i]);
        if rep.is_empty() {
            if (c as u32) < 0x20 {
                let _ = write!(out, "\\u00{:02X}", c as u32);
            } else {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
        } else {
            out.push_str(rep);
        }
        start = i + c.len_utf8();
    }
    out.push_str(&s[start..]);
}

/// Go's `url.QueryEscape`.
pub(crate) fn url_query_escape(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut start = 0;
    for (i, c) in s.char_indices() {
        if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~') {
            continue;
        }
        out.push_str(&s[start..i]);
        if c == ' ' {
            out.push('+');
        } else {
            let mut tmp = [0u8; 4];
            for &b in c.encode_utf8(&mut tmp).as_bytes() {
                out.push('%');
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 15) as usize] as char);
            }
        }
        start = i + c.len_utf8();
    }
    out.push_str(&s[start..]);
}
