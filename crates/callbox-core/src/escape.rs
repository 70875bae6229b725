//! Contextual escaping: call data cannot change a request's meaning.
//!
//! Every `{{…}}` action's output is escaped for the place it lands in, decided by the text
//! rendered so far (like Go's html/template, but for URLs, JSON and headers):
//!
//! | context | rule |
//! |---|---|
//! | URL, at its very start | verbatim: the template's base URL (e.g. `{{.crm_url}}/api`) |
//! | URL host (after `scheme://`) | characters that would end or redirect the host (`/ ? # @ \` and spaces…) are percent-encoded |
//! | URL path, query, fragment | everything but `A–Z a–z 0–9 - . _ ~` is percent-encoded, so a value is one path segment or one query value (a resulting `.`/`..` segment is refused by [`crate::request::check_url`]) |
//! | JSON, inside a string | JSON string escaping (`"` `\` and control characters) |
//! | JSON, outside strings | kept when it is one JSON value (a number, `true`, `"quoted"`…); otherwise written as a JSON string; empty becomes `null` |
//! | form body | as a URL query value |
//! | header value | CR, LF and NUL become spaces |
//! | plain text (Subject, Description) | verbatim |
//! | GJSON path, inside `"…"` | `"` and `\` are backslash-escaped |
//! | GJSON path, elsewhere | every GJSON operator character is backslash-escaped (one key) |
//!
//! An action whose pipeline ends with an escaping function (`UrlEncode`, `urlquery`) keeps its
//! output in URL contexts, so templates that already escape keep working.

use callbox_gotmpl::Sink;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Where rendered text goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputContext {
    /// A request URL or popup URL.
    Url,
    /// A JSON request body.
    Json,
    /// An `application/x-www-form-urlencoded` value.
    Form,
    /// An HTTP header value.
    Header,
    /// Text used as a variable later (Subject, Description) or a non-JSON body.
    Plain,
    /// A GJSON output path with `{{…}}` in it: values cannot change the path's structure.
    Path,
}

/// Renders a template into a `String`, escaping each action for `context`.
pub struct ContextSink<'a> {
    out: &'a mut String,
    state: State,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    UrlStart,
    UrlScheme,
    UrlAuthority,
    UrlPath,
    UrlQuery,
    UrlFragment,
    JsonOutside,
    JsonString,
    JsonStringEscape,
    Form,
    Header,
    Plain,
    PathOutside,
    PathString,
    PathStringEscape,
}

impl<'a> ContextSink<'a> {
    /// Writes into `out`, which should be empty (its content counts as already rendered text).
    pub fn new(out: &'a mut String, context: OutputContext) -> Self {
        let state = match context {
            OutputContext::Url => State::UrlStart,
            OutputContext::Json => State::JsonOutside,
            OutputContext::Form => State::Form,
            OutputContext::Header => State::Header,
            OutputContext::Plain => State::Plain,
            OutputContext::Path => State::PathOutside,
        };
        let mut sink = ContextSink { out, state };
        let existing = std::mem::take(sink.out);
        sink.advance(&existing);
        *sink.out = existing;
        sink
    }

    fn advance(&mut self, text: &str) {
        for &b in text.as_bytes() {
            self.state = match (self.state, b) {
                (State::UrlStart | State::UrlScheme, b':') => State::UrlScheme,
                (State::UrlScheme, b'/') => State::UrlScheme,
                (State::UrlStart, _) => State::UrlStart,
                (State::UrlScheme, _) => State::UrlAuthority,
                (State::UrlAuthority, b'/') => State::UrlPath,
                (State::UrlAuthority | State::UrlPath, b'?') => State::UrlQuery,
                (State::UrlAuthority | State::UrlPath | State::UrlQuery, b'#') => {
                    State::UrlFragment
                }
                (State::JsonOutside, b'"') => State::JsonString,
                (State::JsonString, b'"') => State::JsonOutside,
                (State::JsonString, b'\\') => State::JsonStringEscape,
                (State::JsonStringEscape, _) => State::JsonString,
                (State::PathOutside, b'"') => State::PathString,
                (State::PathString, b'"') => State::PathOutside,
                (State::PathString, b'\\') => State::PathStringEscape,
                (State::PathStringEscape, _) => State::PathString,
                (s, _) => s,
            };
        }
        // A URL that starts with literal text is past its start once any text is written.
        if self.state == State::UrlStart && !text.is_empty() && !text.contains(':') {
            // e.g. "{{.base}}/x": still treat what follows as path once a '/' arrives.
            if text.contains('/') {
                self.state = State::UrlPath;
            }
        }
    }

    fn write_escaped(&mut self, value: &str, escaped_by: Option<&str>) {
        let already_url_escaped = matches!(escaped_by, Some("UrlEncode" | "urlquery"));
        match self.state {
            State::UrlStart => {
                self.out.push_str(value);
                self.advance(value);
                // After a verbatim base URL, what follows is part of its path at the earliest.
                if matches!(self.state, State::UrlStart) && !value.is_empty() {
                    self.state = State::UrlPath;
                }
            }
            State::UrlScheme | State::UrlAuthority => {
                if already_url_escaped {
                    self.out.push_str(value);
                } else {
                    percent_encode_into(self.out, value, AUTHORITY);
                }
                if self.state == State::UrlScheme && !value.is_empty() {
                    self.state = State::UrlAuthority;
                }
            }
            State::UrlPath | State::UrlQuery | State::UrlFragment | State::Form => {
                if already_url_escaped {
                    self.out.push_str(value);
                } else {
                    percent_encode_into(self.out, value, UNRESERVED);
                }
            }
            State::JsonString | State::JsonStringEscape => {
                if self.state == State::JsonStringEscape {
                    // The template wrote a lone backslash just before: finish that escape first.
                    self.out.push('\\');
                    self.state = State::JsonString;
                }
                json_escape_into(self.out, value);
            }
            State::JsonOutside => {
                let trimmed = value.trim();
                if trimmed.is_empty() {
                    self.out.push_str("null");
                } else if is_one_json_value(trimmed) {
                    self.out.push_str(value);
                } else {
                    self.out.push('"');
                    json_escape_into(self.out, value);
                    self.out.push('"');
                }
            }
            State::Header => {
                self.out.extend(value.chars().map(|c| {
                    if matches!(c, '\r' | '\n' | '\0') {
                        ' '
                    } else {
                        c
                    }
                }));
            }
            State::Plain => self.out.push_str(value),
            State::PathString | State::PathStringEscape => {
                // Inside a "…" query value only `"` and `\` are special.
                for c in value.chars() {
                    if matches!(c, '"' | '\\') {
                        self.out.push('\\');
                    }
                    self.out.push(c);
                }
            }
            State::PathOutside => {
                // A key: every GJSON operator character is escaped, so the value is one key.
                for c in value.chars() {
                    if matches!(
                        c,
                        '.' | '|'
                            | '#'
                            | '@'
                            | '*'
                            | '?'
                            | '\\'
                            | '('
                            | ')'
                            | '['
                            | ']'
                            | '{'
                            | '}'
                            | ','
                            | '!'
                            | '"'
                            | '='
                            | '<'
                            | '>'
                            | '%'
                            | ':'
                    ) {
                        self.out.push('\\');
                    }
                    self.out.push(c);
                }
            }
        }
    }
}

impl Sink for ContextSink<'_> {
    fn text(&mut self, text: &str) {
        self.out.push_str(text);
        self.advance(text);
    }

    fn action(&mut self, value: &str, escaped_by: Option<&str>) {
        self.write_escaped(value, escaped_by);
    }
}

/// Everything but RFC 3986 unreserved characters (`A–Z a–z 0–9 - . _ ~`) is encoded.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// In a URL's host part, sub-delimiters, `:` (port), `%` and IPv6 brackets stay.
const AUTHORITY: &AsciiSet = &UNRESERVED
    .remove(b':')
    .remove(b'!')
    .remove(b'$')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b'%')
    .remove(b'[')
    .remove(b']');

/// Percent-encodes everything but unreserved characters (RFC 3986), like `UrlEncode`.
pub fn url_encode(value: &str) -> String {
    utf8_percent_encode(value, UNRESERVED).to_string()
}

fn percent_encode_into(out: &mut String, value: &str, set: &'static AsciiSet) {
    out.extend(utf8_percent_encode(value, set));
}

/// Escapes `value` for the inside of a JSON string.
pub fn json_escape_into(out: &mut String, value: &str) {
    let mut start = 0;
    for (i, c) in value.char_indices() {
        let escape = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            '\u{8}' => Some("\\b"),
            '\u{c}' => Some("\\f"),
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => None,
            _ => continue,
        };
        out.push_str(&value[start..i]);
        match escape {
            Some(e) => out.push_str(e),
            None => {
                use std::fmt::Write as _;
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
        }
        start = i + c.len_utf8();
    }
    out.push_str(&value[start..]);
}

fn is_one_json_value(text: &str) -> bool {
    serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(context: OutputContext, parts: &[(&str, bool)]) -> String {
        let mut out = String::new();
        let mut sink = ContextSink::new(&mut out, context);
        for (s, is_action) in parts {
            if *is_action {
                sink.action(s, None);
            } else {
                sink.text(s);
            }
        }
        out
    }

    #[test]
    fn url_values_cannot_add_segments_or_parameters() {
        let url = render(
            OutputContext::Url,
            &[
                ("https://api.example.com/v1/contacts/", false),
                ("42/../admin?x=1", true),
                ("?q=", false),
                ("a&b=c#d", true),
            ],
        );
        assert_eq!(
            url,
            "https://api.example.com/v1/contacts/42%2F..%2Fadmin%3Fx%3D1?q=a%26b%3Dc%23d"
        );
    }

    #[test]
    fn url_base_at_start_is_verbatim_and_host_is_guarded() {
        assert_eq!(
            render(
                OutputContext::Url,
                &[
                    ("https://x.example.com", true),
                    ("/p/", false),
                    ("a b", true)
                ]
            ),
            "https://x.example.com/p/a%20b"
        );
        assert_eq!(
            render(
                OutputContext::Url,
                &[
                    ("https://", false),
                    ("evil.com/x?", true),
                    (".example.com/", false)
                ]
            ),
            "https://evil.com%2Fx%3F.example.com/"
        );
        assert_eq!(
            render(
                OutputContext::Url,
                &[
                    ("https://", false),
                    ("eu", true),
                    (".api.com:8443/x", false)
                ]
            ),
            "https://eu.api.com:8443/x"
        );
    }

    #[test]
    fn already_escaped_values_are_not_escaped_twice() {
        let mut out = String::new();
        let mut sink = ContextSink::new(&mut out, OutputContext::Url);
        sink.text("https://a.com/s?p=");
        sink.action("%2B1", Some("UrlEncode"));
        assert_eq!(out, "https://a.com/s?p=%2B1");
    }

    #[test]
    fn json_strings_and_values() {
        let body = render(
            OutputContext::Json,
            &[
                ("{\"name\":\"", false),
                ("Bob \"the\" \\ hacker\n", true),
                ("\",\"n\":", false),
                ("301", true),
                (",\"x\":", false),
                ("1,\"admin\":true", true),
                (",\"e\":", false),
                ("", true),
                ("}", false),
            ],
        );
        assert_eq!(
            body,
            r#"{"name":"Bob \"the\" \\ hacker\n","n":301,"x":"1,\"admin\":true","e":null}"#
        );
        serde_json::from_str::<serde_json::Value>(&body).unwrap();
    }

    #[test]
    fn path_values_stay_one_literal_or_one_key() {
        assert_eq!(
            render(
                OutputContext::Path,
                &[
                    ("d.#(phone==\"", false),
                    ("+1\" || x==\"", true),
                    ("\")#.s", false)
                ]
            ),
            r#"d.#(phone=="+1\" || x==\"")#.s"#
        );
        assert_eq!(
            render(
                OutputContext::Path,
                &[("users.", false), ("a.b|c", true), (".id", false)]
            ),
            r"users.a\.b\|c.id"
        );
    }

    #[test]
    fn headers_cannot_be_split() {
        assert_eq!(
            render(
                OutputContext::Header,
                &[("x", true), ("\r\nX-Evil: 1", true)]
            ),
            "x  X-Evil: 1"
        );
    }
}
