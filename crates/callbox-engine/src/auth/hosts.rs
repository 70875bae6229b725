//! Credentials go only to the hosts an integration is configured for.

use std::collections::BTreeSet;

use callbox_core::escape::OutputContext;
use callbox_core::request::HttpRequest;
use callbox_core::secret::Masker;
use callbox_core::template::{Integration, Located, ScenarioId};
use serde_json::{Map, Value};

/// The hosts (lower case, without port) that an integration's URLs name once rendered with
/// the integration's `fields` alone: the `URLFormat` of every request, `SyncContactAuto`'s
/// popup `URLFormat`, `AuthEndPoint` and `TokenEndPoint`. Variables other than fields render
/// as empty strings; URLs that do not render to an http(s) URL with a host are skipped.
pub fn credential_hosts(
    integration: &Integration,
    fields: &Map<String, Value>,
) -> BTreeSet<String> {
    let template = integration.template();
    let auth = integration.auth();
    let mut texts: Vec<&Located> = template
        .scenarios
        .iter()
        .flat_map(|s| s.requests.iter().map(|r| &r.url_format))
        .collect();
    if let Some(popup) = template
        .scenario(&ScenarioId::SyncContactAuto)
        .and_then(|s| s.setting("URLFormat"))
    {
        texts.push(&popup.value);
    }
    texts.extend(auth.auth_endpoint.iter());
    texts.extend(auth.token_endpoint.iter());

    let mut hosts = BTreeSet::new();
    for text in texts {
        let Some(compiled) = integration.compiled(text) else {
            continue;
        };
        let mut data = fields.clone();
        for field in compiled.root_fields() {
            data.entry(field.name)
                .or_insert_with(|| Value::String(String::new()));
        }
        let Ok(rendered) = integration.render(text, &Value::Object(data), OutputContext::Url)
        else {
            continue;
        };
        if let Some(host) = url_host(rendered.trim()) {
            hosts.insert(host);
        }
    }
    hosts
}

fn url_host(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return None;
    }
    parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .map(str::to_ascii_lowercase)
}

/// When `request` goes to a host outside `allowed`, removes every header that carries a
/// credential: `Authorization`, `Proxy-Authorization`, `Cookie`, and any header whose value
/// contains a secret known to `secrets` (raw, percent-encoded, JSON-escaped or base64).
/// Returns the names of the removed headers (for a log line; values are never returned).
/// A request whose URL has no host counts as foreign.
pub fn strip_credentials_if_foreign(
    request: &mut HttpRequest,
    allowed: &BTreeSet<String>,
    secrets: &Masker,
) -> Vec<String> {
    let host = url_host(&request.url);
    if host.is_some_and(|h| allowed.contains(&h)) {
        return Vec::new();
    }
    let mut removed = Vec::new();
    request.headers.retain(|(name, value)| {
        let credential = ["authorization", "proxy-authorization", "cookie"]
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n))
            || secrets.mask(value) != *value;
        if credential {
            removed.push(name.clone());
        }
        !credential
    });
    removed
}
