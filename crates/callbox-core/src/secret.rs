//! Secrets: values that must never be printed, logged or serialized, and masking of any text
//! that might contain them (rendered requests, CRM error messages).

use std::fmt;

/// A secret value (a password field, an API key, a token). It never prints, logs or
/// serializes its content: `Debug` and `Display` show `****`, and it implements no `Serialize`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that must use it (building a request).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

/// What replaces a secret in masked text.
pub const MASK: &str = "****";

/// Replaces every known secret (and its common encodings) in text with `****`.
#[derive(Clone, Debug, Default)]
pub struct Masker {
    /// Secret spellings to hide, longest first.
    needles: Vec<Secret>,
}

impl Masker {
    /// A masker that hides nothing yet.
    pub fn new() -> Self {
        Masker::default()
    }

    /// Adds a secret: its raw value, percent-encoded, JSON-escaped and base64 forms are hidden.
    /// Very short values (under 3 characters) are not masked, to keep output readable.
    pub fn add(&mut self, secret: &Secret) {
        let value = secret.expose();
        if value.chars().count() < 3 {
            return;
        }
        let mut forms = vec![value.to_string(), crate::escape::url_encode(value)];
        let mut json = String::new();
        crate::escape::json_escape_into(&mut json, value);
        forms.push(json);
        forms.push(base64(value.as_bytes()));
        for form in forms {
            if !self.needles.iter().any(|n| n.expose() == form) {
                self.needles.push(Secret::new(form));
            }
        }
        self.needles
            .sort_by_key(|n| std::cmp::Reverse(n.expose().len()));
    }

    /// `text` with every secret replaced by `****`.
    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_string();
        for needle in &self.needles {
            if out.contains(needle.expose()) {
                out = out.replace(needle.expose(), MASK);
            }
        }
        out
    }

    /// Masks an HTTP header value: `Authorization` and token-like headers are always hidden
    /// after their scheme word.
    pub fn mask_header(&self, name: &str, value: &str) -> String {
        let lower = name.to_ascii_lowercase();
        let sensitive = lower == "authorization"
            || lower == "proxy-authorization"
            || lower.contains("token")
            || lower.contains("api-key")
            || lower.contains("apikey")
            || lower.contains("secret");
        if sensitive {
            match value.split_once(' ') {
                Some((scheme, _))
                    if matches!(
                        scheme.to_ascii_lowercase().as_str(),
                        "basic" | "bearer" | "token" | "zoho-oauthtoken"
                    ) =>
                {
                    format!("{scheme} {MASK}")
                }
                _ => MASK.to_string(),
            }
        } else {
            self.mask(value)
        }
    }
}

/// Standard base64 with padding (for `Authorization: Basic`).
pub fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter22");
        assert_eq!(format!("{s} {s:?}"), "**** Secret(****)");
    }

    #[test]
    fn masks_all_forms() {
        let mut m = Masker::new();
        m.add(&Secret::new("p@ss word"));
        assert_eq!(m.mask("a=p%40ss%20word b=p@ss word"), "a=**** b=****");
        assert_eq!(
            m.mask_header("Authorization", "Basic dXNlcjpwQHNzIHdvcmQ="),
            "Basic ****"
        );
        assert_eq!(m.mask_header("X-Note", "has p@ss word"), "has ****");
    }

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
    }
}
