//! Sending one request: timeouts, a response-size cap, clear errors.

use std::sync::Once;
use std::time::Duration;

use callbox_core::request::HttpRequest;
use callbox_core::run::HttpResponse;

/// Limits for talking to CRMs.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// Longest wait for a whole request (connect, send, receive).
    pub timeout: Duration,
    /// Longest wait to connect.
    pub connect_timeout: Duration,
    /// Largest response body accepted.
    pub max_response_bytes: usize,
    /// Origins to send elsewhere, `(from, to)`: a request to `https://api.example.com/x` goes
    /// to `http://127.0.0.1:8080/x` with `("https://api.example.com", "http://127.0.0.1:8080")`.
    /// For testing templates against a staging or fake CRM; empty in production.
    pub origin_overrides: Vec<(String, String)>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_response_bytes: 10 * 1024 * 1024,
            origin_overrides: Vec::new(),
        }
    }
}

/// Why a request got no usable response.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// No answer within the timeout.
    #[error("no response from {host} within {seconds} s")]
    Timeout {
        /// Host asked.
        host: String,
        /// The timeout.
        seconds: u64,
    },
    /// Could not connect (DNS, refused, TLS).
    #[error("cannot connect to {host}: {reason}")]
    Connect {
        /// Host asked.
        host: String,
        /// Why.
        reason: String,
    },
    /// The response body is larger than allowed.
    #[error("the response from {host} is larger than {limit} bytes")]
    TooLarge {
        /// Host asked.
        host: String,
        /// The cap.
        limit: usize,
    },
    /// The request could not be built (bad method or header).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// Anything else the HTTP stack reported.
    #[error("HTTP error talking to {host}: {reason}")]
    Other {
        /// Host asked.
        host: String,
        /// Why.
        reason: String,
    },
}

/// An HTTP client for CRM requests (one per app; it pools connections).
#[derive(Clone, Debug)]
pub struct HttpClient {
    client: reqwest::Client,
    settings: HttpSettings,
}

fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Another provider may already be installed by the embedding app; either is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl HttpClient {
    /// A client with `settings`.
    pub fn new(settings: HttpSettings) -> Result<Self, HttpError> {
        install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.connect_timeout)
            .user_agent(concat!("Callbox/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| HttpError::Invalid(e.to_string()))?;
        Ok(HttpClient { client, settings })
    }

    /// The settings in force.
    pub fn settings(&self) -> &HttpSettings {
        &self.settings
    }

    /// Sends `request` and reads the whole response (up to the size cap).
    pub async fn send(&self, request: &HttpRequest) -> Result<HttpResponse, HttpError> {
        let host = request.host().unwrap_or_default();
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| HttpError::Invalid(format!("method {}", request.method)))?;
        let url = self.effective_url(&request.url);
        let mut builder = self.client.request(method, url.as_ref());
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        let classify = |e: reqwest::Error| self.classify(&host, e);
        let mut response = builder.send().await.map_err(classify)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(n, v)| Some((n.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect();
        let limit = self.settings.max_response_bytes;
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(HttpError::TooLarge { host, limit });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            if body.len() + chunk.len() > limit {
                return Err(HttpError::TooLarge { host, limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }

    /// The URL a request is really sent to, after origin overrides.
    pub fn effective_url<'u>(&self, url: &'u str) -> std::borrow::Cow<'u, str> {
        for (from, to) in &self.settings.origin_overrides {
            let from = from.trim_end_matches('/');
            if let Some(rest) = url.strip_prefix(from)
                && (rest.is_empty() || rest.starts_with(['/', '?', '#']))
            {
                return std::borrow::Cow::Owned(format!("{}{rest}", to.trim_end_matches('/')));
            }
        }
        std::borrow::Cow::Borrowed(url)
    }

    fn classify(&self, host: &str, e: reqwest::Error) -> HttpError {
        let host = host.to_string();
        if e.is_timeout() {
            HttpError::Timeout {
                host,
                seconds: self.settings.timeout.as_secs(),
            }
        } else if e.is_connect() {
            HttpError::Connect {
                host,
                reason: source_chain(&e),
            }
        } else if e.is_builder() {
            HttpError::Invalid(source_chain(&e))
        } else {
            HttpError::Other {
                host,
                reason: source_chain(&e),
            }
        }
    }
}

/// The error and its causes, joined ("error sending request: connection refused").
fn source_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}
