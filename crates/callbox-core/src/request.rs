//! Building HTTP requests from a template's `<Request>` and the variables of the moment.
//! Requests are plain values; the engine sends them.

use callbox_gotmpl::ExecOptions;
use serde_json::Value;

use crate::diagnostic::Position;
use crate::escape::{ContextSink, OutputContext, url_encode};
use crate::secret::base64;
use crate::template::{AuthType, Integration, Located, ParameterKind, Request};

/// An HTTP request ready to send.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct HttpRequest {
    /// Method, upper case.
    pub method: String,
    /// Absolute http(s) URL.
    pub url: String,
    /// Headers in the order they are sent.
    pub headers: Vec<(String, String)>,
    /// Body, if any.
    pub body: Option<String>,
}

impl HttpRequest {
    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The host the request goes to.
    pub fn host(&self) -> Option<String> {
        url::Url::parse(&self.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
    }
}

/// Rendering a template text failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {message}", if file.is_empty() { String::new() } else { format!("{file}:") }, DisplayPosition(self.position))]
pub struct RenderError {
    /// The template file's name (empty when unknown).
    pub file: String,
    /// File offset of the failing action.
    pub offset: usize,
    /// Its line and column in the template file.
    pub position: Position,
    /// What went wrong.
    pub message: String,
}

struct DisplayPosition(Position);

impl std::fmt::Display for DisplayPosition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.0.line, self.0.column)
    }
}

/// Building a request failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// A template text could not be rendered.
    #[error("request {request}: {source}")]
    Render {
        /// Request name.
        request: String,
        /// The rendering problem.
        source: RenderError,
    },
    /// The rendered URL is not a usable http(s) URL.
    #[error("request {request}: the URL \"{url}\" is not a valid http(s) URL ({reason})")]
    BadUrl {
        /// Request name.
        request: String,
        /// The rendered URL.
        url: String,
        /// Why.
        reason: String,
    },
}

/// Limits applied while rendering.
fn exec_options() -> ExecOptions {
    ExecOptions::default()
}

impl Integration {
    /// Renders one text of this template over `data`, escaping every action for `context`.
    pub fn render(
        &self,
        text: &Located,
        data: &Value,
        context: OutputContext,
    ) -> Result<String, RenderError> {
        let mut out = String::new();
        let Some(template) = self.compiled(text) else {
            return Ok(out);
        };
        let mut sink = ContextSink::new(&mut out, context);
        template
            .execute(data, self.funcs(), &exec_options(), &mut sink)
            .map_err(|e| {
                let offset = text.file_offset(e.offset);
                RenderError {
                    file: self.source_name().to_string(),
                    offset,
                    position: self.position(offset),
                    message: e.message,
                }
            })?;
        Ok(out)
    }

    /// Builds `request` with `data` (an object of variables). `None` when the URL renders
    /// empty: the template asked to skip the request (e.g. `{{if .RecordPath}}https://…{{end}}`).
    pub fn build_request(
        &self,
        request: &Request,
        data: &Value,
    ) -> Result<Option<HttpRequest>, RequestError> {
        let render_err = |source| RequestError::Render {
            request: request.name.clone(),
            source,
        };
        let mut url = self
            .render(&request.url_format, data, OutputContext::Url)
            .map_err(render_err)?
            .trim()
            .to_string();
        if url.is_empty() {
            return Ok(None);
        }
        let mut headers: Vec<(String, String)> = Vec::new();
        let set_header = |headers: &mut Vec<(String, String)>, name: &str, value: String| {
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            headers.push((name.to_string(), value));
        };
        for h in &self.auth().headers {
            let value = self
                .render(&h.value, data, OutputContext::Header)
                .map_err(render_err)?;
            set_header(&mut headers, &h.name, value);
        }
        let mut query = Vec::new();
        let mut bodies = Vec::new();
        for p in &request.parameters {
            let Some(kind) = p.request_kind() else {
                continue;
            };
            let text = p.template();
            match kind {
                ParameterKind::Header => {
                    let value = self
                        .render(text, data, OutputContext::Header)
                        .map_err(render_err)?;
                    set_header(&mut headers, &p.name, value);
                }
                ParameterKind::Md5 => {
                    use md5::Digest as _;
                    let value = self
                        .render(text, data, OutputContext::Plain)
                        .map_err(render_err)?;
                    let digest = md5::Md5::digest(value.as_bytes());
                    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
                    set_header(&mut headers, &p.name, hex);
                }
                ParameterKind::Query => {
                    let value = self
                        .render(text, data, OutputContext::Plain)
                        .map_err(render_err)?;
                    query.push(format!("{}={}", url_encode(&p.name), url_encode(&value)));
                }
                ParameterKind::Path => {
                    let value = self
                        .render(text, data, OutputContext::Plain)
                        .map_err(render_err)?;
                    url = url.replace(&format!("{{{}}}", p.name), &url_encode(&value));
                }
                ParameterKind::Body => bodies.push(p),
            }
        }
        if !query.is_empty() {
            let (base, fragment) = match url.split_once('#') {
                Some((b, f)) => (b.to_string(), Some(f.to_string())),
                None => (url.clone(), None),
            };
            let separator = if !base.contains('?') {
                "?"
            } else if base.ends_with('?') || base.ends_with('&') {
                ""
            } else {
                "&"
            };
            url = format!("{base}{separator}{}", query.join("&"));
            if let Some(f) = fragment {
                url.push('#');
                url.push_str(&f);
            }
        }
        check_url(&url).map_err(|reason| RequestError::BadUrl {
            request: request.name.clone(),
            url: url.clone(),
            reason,
        })?;

        let mut body = None;
        if request.is_form_encoded() {
            if !bodies.is_empty() {
                let mut pairs = Vec::new();
                for p in &bodies {
                    let value = self
                        .render(p.template(), data, OutputContext::Form)
                        .map_err(render_err)?;
                    pairs.push(format!("{}={}", url_encode(&p.name), value));
                }
                body = Some(pairs.join("&"));
                if !headers
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
                {
                    headers.push((
                        "Content-Type".into(),
                        "application/x-www-form-urlencoded".into(),
                    ));
                }
            }
        } else if let Some(p) = bodies.first() {
            let text = p.template();
            let declared_json = headers.iter().any(|(n, v)| {
                n.eq_ignore_ascii_case("content-type") && v.to_ascii_lowercase().contains("json")
            });
            let looks_json = text.text.trim_start().starts_with(['{', '[']);
            let context = if declared_json || looks_json {
                OutputContext::Json
            } else {
                OutputContext::Plain
            };
            body = Some(self.render(text, data, context).map_err(render_err)?);
            if context == OutputContext::Json
                && !headers
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
            {
                headers.push(("Content-Type".into(), "application/json".into()));
            }
        }

        if !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("authorization"))
            && let Some(value) = self.authorization(data).map_err(render_err)?
        {
            headers.push(("Authorization".into(), value));
        }
        Ok(Some(HttpRequest {
            method: request.method.clone(),
            url,
            headers,
            body,
        }))
    }

    /// The `Authorization` header the template's auth method adds to every request, if any:
    /// basic from `Base64EncodedCredential`, bearer/oauth2 from `AccessToken`.
    pub fn authorization(&self, data: &Value) -> Result<Option<String>, RenderError> {
        let auth = self.auth();
        match auth.method {
            AuthType::None => Ok(None),
            AuthType::Basic => {
                let Some(credential) = &auth.base64_encoded_credential else {
                    return Ok(None);
                };
                let plain = self.render(credential, data, OutputContext::Plain)?;
                Ok(Some(format!("Basic {}", base64(plain.as_bytes()))))
            }
            AuthType::OAuth2 | AuthType::Bearer => {
                let token = data
                    .get("AccessToken")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if token.is_empty() {
                    return Ok(None);
                }
                let scheme = auth
                    .token_type
                    .as_deref()
                    .filter(|t| !t.trim().is_empty())
                    .unwrap_or("Bearer");
                Ok(Some(format!("{scheme} {token}")))
            }
        }
    }
}

/// Checks a rendered URL is absolute http(s) with a host, and that its path has no `.` or
/// `..` segment (URL parsers resolve those, so a value like `..` would change the path).
pub fn check_url(url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| e.to_string())?;
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_scheme
        .find('/')
        .map_or("", |i| &after_scheme[i..])
        .split(['?', '#'])
        .next()
        .unwrap_or("");
    for segment in path.split('/') {
        let lower = segment.to_ascii_lowercase().replace("%2e", ".");
        if lower == "." || lower == ".." {
            return Err(format!(
                "its path has a \"{segment}\" segment, which would change the path"
            ));
        }
    }
    match parsed.scheme() {
        "http" | "https" => {}
        other => return Err(format!("scheme {other} is not http or https")),
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("no host".into());
    }
    Ok(())
}
