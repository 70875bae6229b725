//! Token endpoint requests (form-encoded POSTs) and their answers (RFC 6749 §5), with the
//! quirks of real providers: errors in a 200 answer (Zoho), `expires_in` as a string or in
//! `expires_in_sec` (old Zoho), extra values such as `api_domain` and `instance_url`.

use callbox_core::escape::url_encode;
use callbox_core::request::HttpRequest;
use callbox_core::secret::Secret;
use serde_json::{Map, Value};

/// A successful token answer.
pub(crate) struct TokenGrant {
    pub(crate) access_token: Secret,
    pub(crate) refresh_token: Option<Secret>,
    pub(crate) token_type: Option<String>,
    /// Seconds the access token lives, when the answer says.
    pub(crate) expires_in: Option<i64>,
    /// Other values of the answer worth keeping as variables (see [`is_extra_value`]).
    pub(crate) extra: Map<String, Value>,
}

/// Why a token request did not give a token.
#[derive(Debug)]
pub(crate) enum TokenFailure {
    /// The endpoint refused the grant (4xx other than 408/429, or an `error` in a 2xx).
    Rejected {
        status: u16,
        /// `error` (e.g. `invalid_grant`), or empty when the answer has none.
        error: String,
        /// `error_description`, or a snippet of the body.
        description: String,
    },
    /// Worth trying again later: 5xx, 408, 429, no connection, timeout.
    Transient(String),
    /// An answer that is neither a token nor an error (a 2xx without `access_token`, a 3xx).
    Malformed { status: u16, message: String },
}

/// A form POST to `url` with `params`, leaving out every parameter the URL's query already
/// has (templates may put `client_id`, `client_secret` or `grant_type` there), so no parameter
/// is sent twice (RFC 6749 §3.2). Empty values are left out too.
pub(crate) fn form_request(url: &str, params: &[(&str, &str)]) -> HttpRequest {
    let in_url: Vec<String> = url::Url::parse(url)
        .map(|u| u.query_pairs().map(|(k, _)| k.into_owned()).collect())
        .unwrap_or_default();
    let body: Vec<String> = params
        .iter()
        .filter(|(k, v)| !v.is_empty() && !in_url.iter().any(|u| u == k))
        .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
        .collect();
    let mut headers = vec![("Accept".to_string(), "application/json".to_string())];
    let body = if body.is_empty() {
        None
    } else {
        headers.push((
            "Content-Type".to_string(),
            "application/x-www-form-urlencoded".to_string(),
        ));
        Some(body.join("&"))
    };
    HttpRequest {
        method: "POST".into(),
        url: url.to_string(),
        headers,
        body,
    }
}

/// Reads a token endpoint's answer.
pub(crate) fn parse_response(status: u16, body: &str) -> Result<TokenGrant, TokenFailure> {
    if status == 408 || status == 429 || status >= 500 {
        return Err(TokenFailure::Transient(format!(
            "the token endpoint answered {status}{}",
            snippet(body).map(|s| format!(": {s}")).unwrap_or_default()
        )));
    }
    let json: Option<Map<String, Value>> = serde_json::from_str(body).ok();
    let text = |name: &str| {
        json.as_ref()
            .and_then(|j| j.get(name))
            .and_then(scalar_text)
            .filter(|s| !s.is_empty())
    };
    if (200..300).contains(&status) {
        if let Some(access_token) = text("access_token") {
            let expires_in = text("expires_in_sec")
                .or_else(|| text("expires_in"))
                .and_then(|s| s.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s > 0.0)
                .map(|s| s as i64);
            let extra = json
                .iter()
                .flatten()
                .filter(|(k, v)| is_extra_value(k) && !v.is_object() && !v.is_array())
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            return Ok(TokenGrant {
                access_token: Secret::new(access_token),
                refresh_token: text("refresh_token").map(Secret::new),
                token_type: text("token_type"),
                expires_in,
                extra,
            });
        }
        if let Some(error) = text("error") {
            return Err(TokenFailure::Rejected {
                status,
                error,
                description: text("error_description").unwrap_or_default(),
            });
        }
        return Err(TokenFailure::Malformed {
            status,
            message: "the answer has no access_token".into(),
        });
    }
    if (400..500).contains(&status) {
        return Err(TokenFailure::Rejected {
            status,
            error: text("error").unwrap_or_default(),
            description: text("error_description")
                .or_else(|| text("message"))
                .or_else(|| snippet(body))
                .unwrap_or_default(),
        });
    }
    Err(TokenFailure::Malformed {
        status,
        message: format!("unexpected status {status}"),
    })
}

/// Whether a value of a token answer is kept as a variable: everything but the token fields
/// themselves and anything whose name says it is secret (`…token…`, `…secret…`, `…password…`,
/// `…signature…`, `code`). Zoho's `api_domain`, Salesforce's `instance_url`, `id` and
/// `issued_at`, `scope` are kept.
pub(crate) fn is_extra_value(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !matches!(
        lower.as_str(),
        "expires_in" | "expires_in_sec" | "error" | "error_description" | "code"
    ) && !["token", "secret", "password", "signature"]
        .iter()
        .any(|word| lower.contains(word))
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The start of a body, one line, for error messages (callers mask it).
fn snippet(body: &str) -> Option<String> {
    let one_line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.is_empty() {
        return None;
    }
    let mut cut: String = one_line.chars().take(200).collect();
    if cut.len() < one_line.len() {
        cut.push('…');
    }
    Some(cut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_leaves_out_what_the_url_has() {
        let r = form_request(
            "https://x.example/token?client_id=a&grant_type=client_credentials",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "a"),
                ("client_secret", "s p&"),
                ("scope", ""),
            ],
        );
        assert_eq!(r.method, "POST");
        assert_eq!(r.body.as_deref(), Some("client_secret=s%20p%26"));
        assert_eq!(
            r.header("Content-Type"),
            Some("application/x-www-form-urlencoded")
        );
        let r = form_request(
            "https://x.example/token?grant_type=client_credentials&client_secret=s",
            &[("grant_type", "client_credentials"), ("client_secret", "s")],
        );
        assert_eq!(r.body, None);
        assert_eq!(r.header("Content-Type"), None);
    }

    #[test]
    fn reads_tokens_and_extras() {
        let g = parse_response(
            200,
            r#"{"access_token":"at","refresh_token":"rt","expires_in":"3600","token_type":"Bearer","api_domain":"https://www.zohoapis.eu","id_token":"jwt","signature":"sig","instance_url":"https://acme.my.salesforce.com","nested":{"a":1}}"#,
        )
        .ok()
        .unwrap();
        assert_eq!(g.access_token.expose(), "at");
        assert_eq!(g.refresh_token.unwrap().expose(), "rt");
        assert_eq!(g.expires_in, Some(3600));
        assert_eq!(g.token_type.as_deref(), Some("Bearer"));
        let keys: Vec<&str> = g.extra.keys().map(String::as_str).collect();
        assert_eq!(keys, ["api_domain", "instance_url"]);
    }

    #[test]
    fn old_zoho_expiry_in_seconds_wins() {
        let g = parse_response(
            200,
            r#"{"access_token":"at","expires_in_sec":3600,"expires_in":3600000}"#,
        )
        .ok()
        .unwrap();
        assert_eq!(g.expires_in, Some(3600));
    }

    #[test]
    fn classifies_failures() {
        assert!(matches!(
            parse_response(200, r#"{"error":"invalid_code"}"#),
            Err(TokenFailure::Rejected { status: 200, ref error, .. }) if error == "invalid_code"
        ));
        assert!(matches!(
            parse_response(400, r#"{"error":"invalid_grant","error_description":"expired"}"#),
            Err(TokenFailure::Rejected { status: 400, ref error, ref description }) if error == "invalid_grant" && description == "expired"
        ));
        assert!(matches!(
            parse_response(401, "<html>nope</html>"),
            Err(TokenFailure::Rejected { status: 401, ref description, .. }) if description == "<html>nope</html>"
        ));
        for status in [408, 429, 500, 503] {
            assert!(matches!(
                parse_response(status, ""),
                Err(TokenFailure::Transient(_))
            ));
        }
        assert!(matches!(
            parse_response(200, "{}"),
            Err(TokenFailure::Malformed { .. })
        ));
        assert!(matches!(
            parse_response(302, ""),
            Err(TokenFailure::Malformed { .. })
        ));
    }
}
