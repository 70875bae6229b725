//! Whether a CRM page may be shown inside Callbox's panel. Many CRMs forbid being framed by
//! other sites (`X-Frame-Options`, CSP `frame-ancestors`); such a page would show as an empty
//! or error frame, so it goes to a window of its own or the browser instead. The answer is
//! remembered per origin for the session.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use callbox_core::request::HttpRequest;
use callbox_engine::HttpClient;

/// A future returned by [`Framing::refusal`].
pub type RefusalFuture<'a> = Pin<Box<dyn Future<Output = Option<String>> + Send + 'a>>;

/// Tells whether a page refuses to be framed by Callbox.
pub trait Framing: Send + Sync {
    /// Why `url` cannot be framed, or `None` when it can (or when it cannot be told: the
    /// frame then shows whatever the CRM answers).
    fn refusal<'a>(&'a self, url: &'a str) -> RefusalFuture<'a>;
}

/// Asks the CRM: one GET of the page (no credentials), reading the framing headers of the
/// final response.
pub struct HttpFraming {
    http: HttpClient,
    by_origin: Mutex<HashMap<String, Option<String>>>,
}

impl HttpFraming {
    /// Checks with `http` (its timeouts apply).
    pub fn new(http: HttpClient) -> Self {
        HttpFraming {
            http,
            by_origin: Mutex::new(HashMap::new()),
        }
    }
}

fn origin(url: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url[after_scheme..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| after_scheme + i);
    url[..end].to_ascii_lowercase()
}

impl Framing for HttpFraming {
    fn refusal<'a>(&'a self, url: &'a str) -> RefusalFuture<'a> {
        Box::pin(async move {
            let key = origin(url);
            if let Some(known) = self
                .by_origin
                .lock()
                .ok()
                .and_then(|m| m.get(&key).cloned())
            {
                return known;
            }
            let request = HttpRequest {
                method: "GET".into(),
                url: url.to_owned(),
                headers: Vec::new(),
                body: None,
            };
            let answer = match self.http.send(&request).await {
                Ok(response) => refusal_in(&response.headers),
                Err(error) => {
                    tracing::info!(%error, url, "cannot tell whether the CRM allows framing");
                    return None;
                }
            };
            if let Ok(mut known) = self.by_origin.lock() {
                known.insert(key, answer.clone());
            }
            answer
        })
    }
}

/// Never refuses (no CRM panel checks, e.g. in unit tests of other parts).
#[derive(Debug, Default)]
pub struct AlwaysFrame;

impl Framing for AlwaysFrame {
    fn refusal<'a>(&'a self, _url: &'a str) -> RefusalFuture<'a> {
        Box::pin(async { None })
    }
}

/// Why response headers forbid framing by another origin, if they do.
pub fn refusal_in(headers: &[(String, String)]) -> Option<String> {
    for (name, value) in headers {
        let value = value.trim();
        if name.eq_ignore_ascii_case("x-frame-options") {
            let lower = value.to_ascii_lowercase();
            if lower == "deny" || lower == "sameorigin" || lower.starts_with("allow-from") {
                return Some(format!("the CRM sends X-Frame-Options: {value}"));
            }
        }
        if name.eq_ignore_ascii_case("content-security-policy") {
            for directive in value.split(';') {
                let mut words = directive.split_whitespace();
                if !words
                    .next()
                    .is_some_and(|w| w.eq_ignore_ascii_case("frame-ancestors"))
                {
                    continue;
                }
                let sources: Vec<&str> = words.collect();
                let allows_us = sources
                    .iter()
                    .any(|s| *s == "*" || s.starts_with("tauri:") || s.contains("tauri.localhost"));
                if !allows_us {
                    return Some(format!(
                        "the CRM allows framing only by {}",
                        if sources.is_empty() || sources == ["'none'"] {
                            "nobody".to_owned()
                        } else {
                            sources.join(" ")
                        }
                    ));
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn framing_headers_are_read() {
        assert_eq!(refusal_in(&headers(&[("content-type", "text/html")])), None);
        assert!(refusal_in(&headers(&[("X-Frame-Options", "DENY")])).is_some());
        assert!(refusal_in(&headers(&[("x-frame-options", "SAMEORIGIN")])).is_some());
        assert!(
            refusal_in(&headers(&[(
                "content-security-policy",
                "default-src 'self'; frame-ancestors 'none'"
            )]))
            .is_some_and(|r| r.contains("nobody"))
        );
        assert!(
            refusal_in(&headers(&[(
                "content-security-policy",
                "frame-ancestors https://*.salesforce.com"
            )]))
            .is_some()
        );
        assert_eq!(
            refusal_in(&headers(&[(
                "content-security-policy",
                "frame-ancestors *"
            )])),
            None
        );
        assert_eq!(
            refusal_in(&headers(&[(
                "content-security-policy",
                "script-src 'self'"
            )])),
            None
        );
    }

    #[test]
    fn origins_are_scheme_host_and_port() {
        assert_eq!(
            origin("https://CRM.example.com:8443/contacts/1?x=1"),
            "https://crm.example.com:8443"
        );
        assert_eq!(origin("http://127.0.0.1:9000"), "http://127.0.0.1:9000");
    }
}
