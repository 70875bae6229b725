//! Credentials that stay valid: one [`Credential`] per integration yields the current access
//! token for the template's auth method and refreshes it.
//!
//! - `none` / `basic`: nothing to refresh (core builds `Authorization: Basic …` itself).
//! - `bearertoken`: a form POST to the rendered `TokenEndPoint` (client credentials), again
//!   every `TokenRefreshInterval` minutes (empty = 25, `0` = never by interval) and whenever
//!   `expires_in` says the token expired.
//! - `oauth2`: authorization code with PKCE (S256) through the system browser and a loopback
//!   redirect on 127.0.0.1 (RFC 8252); refreshed with `grant_type=refresh_token` when
//!   `expires_in` says so.
//!
//! Tokens live only in the [`SecretStore`] (one JSON blob per integration under
//! [`SecretKey::TOKENS`], wrapped in [`Secret`]) and in memory. Refreshes are single-flight:
//! one at a time per credential, and callers that waited share its outcome. A refresh the
//! provider refuses puts the credential in [`CredentialState::NeedsSignIn`], which stops all
//! token requests until [`Credential::login`] succeeds.
//!
//! No function here reads the clock: callers pass `now_unix` (seconds since the Unix epoch).

mod hosts;
mod loopback;
mod pkce;
mod token;

pub use hosts::{credential_hosts, strip_credentials_if_foreign};

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use callbox_core::escape::{OutputContext, url_encode};
use callbox_core::request::{HttpRequest, check_url};
use callbox_core::secret::{Masker, Secret};
use callbox_core::template::{AuthType, Integration, Located};
use serde_json::{Map, Value};

use crate::http::{HttpClient, HttpError};
use crate::secret_store::{SecretError, SecretKey, SecretStore};
use loopback::{Callback, Loopback};
use pkce::{Pkce, random_urlsafe};
use token::{TokenFailure, TokenGrant, form_request, parse_response};

/// A token is refreshed this many seconds before `expires_in` runs out (at most half its
/// lifetime), so a request does not leave with a token that dies on the way.
pub const EXPIRY_MARGIN_SECS: i64 = 60;

/// What the UI or CLI shows about an integration's credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialState {
    /// `none` or `basic`: no token involved.
    NotRequired,
    /// `bearertoken` without a token yet: the first request fetches one.
    NoToken,
    /// A token is at hand.
    Valid {
        /// When it expires (Unix seconds), when the provider said.
        expires_at: Option<i64>,
    },
    /// The person must sign in again ("re-authenticate Zoho"); no token request is made
    /// until [`Credential::login`] succeeds.
    NeedsSignIn {
        /// Why (never signed in, refresh refused…).
        reason: String,
    },
    /// The keychain could not be read, so whether there is a token is unknown.
    SecretsUnavailable {
        /// The keychain's error, with what to do.
        reason: String,
    },
}

/// Why no token could be had.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Refreshing is impossible (no refresh token, refresh refused): the person must sign in.
    #[error("{integration}: sign in again ({reason})")]
    NeedsSignIn {
        /// The integration's name.
        integration: String,
        /// Why.
        reason: String,
    },
    /// The token endpoint refused or answered nonsense (secrets masked).
    #[error("the token endpoint answered {status}: {message}")]
    TokenEndpoint {
        /// HTTP status.
        status: u16,
        /// `error: error_description`, or a snippet of the answer, masked.
        message: String,
    },
    /// The token endpoint could not be reached or answered 5xx/408/429: try again later.
    #[error("the token endpoint is unavailable, try again later: {0}")]
    Transient(String),
    /// The keychain failed.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The browser sign-in failed (refused, timed out, browser not opened).
    #[error("sign-in failed: {0}")]
    Login(String),
    /// The template's auth settings cannot be used (missing or invalid endpoint).
    #[error("the template's authentication settings are unusable: {0}")]
    Configuration(String),
}

impl AuthError {
    /// Whether trying again later may succeed without anyone doing anything.
    pub fn is_retryable(&self) -> bool {
        matches!(self, AuthError::Transient(_))
    }
}

/// Opens a URL in the person's browser. Tests implement it by fetching the URL themselves.
pub trait BrowserOpener: Send + Sync {
    /// Opens `url` (an authorization URL) for the person to sign in.
    fn open(&self, url: &str) -> std::io::Result<()>;
}

/// The system's default browser (`xdg-open` and friends, `open` on macOS, the shell on
/// Windows), through the `webbrowser` crate.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemBrowser;

impl BrowserOpener for SystemBrowser {
    fn open(&self, url: &str) -> std::io::Result<()> {
        webbrowser::open(url)
    }
}

/// Tokens in memory.
#[derive(Clone, Debug)]
struct Tokens {
    access_token: Secret,
    refresh_token: Option<Secret>,
    token_type: Option<String>,
    expires_at: Option<i64>,
    obtained_at: i64,
    extra: Map<String, Value>,
}

/// The JSON kept in the secret store under [`SecretKey::TOKENS`]. Built only to serialize
/// into a [`Secret`] at once, and read only from one.
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct TokenBlob {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    access_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
    #[serde(default)]
    obtained_at: i64,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    extra: Map<String, Value>,
    /// Set when the provider refused a refresh: survives restarts, so no token request is
    /// made until a new sign-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    needs_sign_in: Option<String>,
}

/// The outcome of the last refresh attempt, shared with the callers that waited for it.
#[derive(Clone, Debug)]
enum Failure {
    Transient(String),
    Endpoint(u16, String),
}

impl Failure {
    fn to_error(&self) -> AuthError {
        match self {
            Failure::Transient(m) => AuthError::Transient(m.clone()),
            Failure::Endpoint(status, message) => AuthError::TokenEndpoint {
                status: *status,
                message: message.clone(),
            },
        }
    }
}

#[derive(Default)]
struct Status {
    /// Whether the store has been read.
    loaded: bool,
    tokens: Option<Tokens>,
    needs_sign_in: Option<String>,
    /// Refresh attempts finished (any outcome) and sign-ins: a caller that waited for the
    /// refresh lock sees it changed and shares the outcome instead of refreshing again.
    attempts: u64,
    last_failure: Option<Failure>,
}

struct Inner {
    name: String,
    integration: Arc<Integration>,
    fields: Map<String, Value>,
    store: Arc<dyn SecretStore>,
    http: HttpClient,
    status: Mutex<Status>,
    /// Held while talking to the token endpoint (and while reading the store the first time).
    refresh: tokio::sync::Mutex<()>,
}

/// Why a refresh is wanted.
enum Trigger {
    /// The token is due (expiry or interval).
    Due,
    /// The CRM refused this token.
    Refused(Option<Secret>),
}

/// One integration's credential, shared by everything that calls its CRM (cheap to clone).
#[derive(Clone)]
pub struct Credential {
    inner: Arc<Inner>,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.status();
        f.debug_struct("Credential")
            .field("integration", &self.inner.name)
            .field("method", &self.method())
            .field("has_token", &status.tokens.is_some())
            .field(
                "expires_at",
                &status.tokens.as_ref().and_then(|t| t.expires_at),
            )
            .field("needs_sign_in", &status.needs_sign_in)
            .finish_non_exhaustive()
    }
}

const NOT_SIGNED_IN: &str = "not signed in yet";

impl Credential {
    /// The credential of integration `integration_name` (the name its secrets are kept
    /// under), with the integration's `fields` (plain and secret values: `client_id`,
    /// `client_secret`…). Reads nothing yet: the store is read on first use.
    pub fn new(
        integration_name: &str,
        integration: Arc<Integration>,
        fields: Map<String, Value>,
        store: Arc<dyn SecretStore>,
        http: HttpClient,
    ) -> Self {
        Credential {
            inner: Arc::new(Inner {
                name: integration_name.to_string(),
                integration,
                fields,
                store,
                http,
                status: Mutex::new(Status::default()),
                refresh: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The integration's name.
    pub fn integration_name(&self) -> &str {
        &self.inner.name
    }

    /// The current access token, refreshed first when due (single-flight). `None` for
    /// `none`/`basic`. An `oauth2` credential without tokens is [`AuthError::NeedsSignIn`];
    /// a `bearertoken` one fetches its first token.
    pub async fn access_token(&self, now_unix: i64) -> Result<Option<Secret>, AuthError> {
        if !self.uses_tokens() {
            return Ok(None);
        }
        self.ensure_loaded().await?;
        let seen = {
            let status = self.status();
            if let Some(reason) = &status.needs_sign_in {
                return Err(self.needs_sign_in_error(reason));
            }
            match &status.tokens {
                Some(t) if !self.refresh_due(t, now_unix) => {
                    return Ok(Some(t.access_token.clone()));
                }
                None if self.method() == AuthType::OAuth2 => {
                    return Err(self.needs_sign_in_error(NOT_SIGNED_IN));
                }
                _ => status.attempts,
            }
        };
        self.refresh_single_flight(Trigger::Due, seen, now_unix)
            .await
    }

    /// Whether a CRM answer means the token is invalid: a 401, or a non-2xx answer whose body
    /// contains one of the template's `TokenInvalid` markers.
    pub fn is_token_invalid(&self, status: u16, body: &str) -> bool {
        status == 401
            || (!(200..300).contains(&status)
                && self
                    .auth_settings()
                    .token_invalid
                    .iter()
                    .any(|marker| !marker.is_empty() && body.contains(marker.as_str())))
    }

    /// After the CRM refused `stale` ([`Credential::is_token_invalid`]): a new token. One
    /// refresh at a time: callers that saw the same stale token wait for it and get its
    /// token (or its error); a caller whose token was already replaced gets the current one
    /// at once. `None` for `none`/`basic` (nothing to refresh: the failure stands).
    pub async fn refresh_after_failure(
        &self,
        stale: Option<&Secret>,
        now_unix: i64,
    ) -> Result<Option<Secret>, AuthError> {
        if !self.uses_tokens() {
            return Ok(None);
        }
        self.ensure_loaded().await?;
        let seen = {
            let status = self.status();
            if let Some(reason) = &status.needs_sign_in {
                return Err(self.needs_sign_in_error(reason));
            }
            if let Some(t) = &status.tokens
                && Some(&t.access_token) != stale
            {
                return Ok(Some(t.access_token.clone()));
            }
            status.attempts
        };
        self.refresh_single_flight(Trigger::Refused(stale.cloned()), seen, now_unix)
            .await
    }

    /// Signs in. `oauth2`: opens the authorization URL with `opener`, waits up to `timeout`
    /// for the loopback redirect, exchanges the code. `bearertoken`: fetches a first token.
    /// `none`/`basic`: nothing to do. Success clears [`CredentialState::NeedsSignIn`].
    pub async fn login(
        &self,
        opener: &dyn BrowserOpener,
        timeout: Duration,
        now_unix: i64,
    ) -> Result<(), AuthError> {
        match self.method() {
            AuthType::None | AuthType::Basic => Ok(()),
            AuthType::Bearer => {
                let _flight = self.inner.refresh.lock().await;
                let request = self.client_credentials_request()?;
                let outcome = self.call_token_endpoint(&request).await;
                self.finish_login(outcome, now_unix).await
            }
            AuthType::OAuth2 => {
                let loopback = Loopback::bind()
                    .await
                    .map_err(|e| AuthError::Login(format!("cannot listen on 127.0.0.1: {e}")))?;
                let redirect_uri = loopback.redirect_uri();
                let no_randomness =
                    |e: getrandom::Error| AuthError::Login(format!("no random numbers: {e}"));
                let pkce = Pkce::new().map_err(no_randomness)?;
                let state = random_urlsafe(16).map_err(no_randomness)?;
                let url = self.authorization_url(&redirect_uri, &state, &pkce.challenge)?;
                opener.open(&url).map_err(|e| {
                    AuthError::Login(format!(
                        "cannot open the browser ({e}); open this address yourself: {}",
                        self.masker(&[]).mask(&url)
                    ))
                })?;
                let code = match loopback.wait(&state, timeout).await {
                    Some(Callback::Code(code)) => code,
                    Some(Callback::Refused(reason)) => {
                        return Err(AuthError::Login(format!(
                            "the provider refused: {}",
                            self.masker(&[]).mask(&reason)
                        )));
                    }
                    None => {
                        return Err(AuthError::Login(format!(
                            "no answer from the browser within {} s",
                            timeout.as_secs()
                        )));
                    }
                };
                drop(loopback);
                let request = self.code_exchange_request(&code, &redirect_uri, &pkce.verifier)?;
                let outcome = self.call_token_endpoint(&request).await;
                let _flight = self.inner.refresh.lock().await;
                self.finish_login(outcome, now_unix).await
            }
        }
    }

    /// Forgets the tokens (memory and store); the credential then needs a sign-in.
    pub async fn sign_out(&self) -> Result<(), AuthError> {
        let _flight = self.inner.refresh.lock().await;
        {
            let mut status = self.status();
            status.loaded = true;
            status.tokens = None;
            status.needs_sign_in = Some("signed out".into());
            status.attempts += 1;
            status.last_failure = None;
        }
        let key = SecretKey::tokens(&self.inner.name);
        self.store_call(move |s| s.delete(&key)).await?;
        Ok(())
    }

    /// The state to show. Reads the store once if nothing has read it yet (a blocking
    /// keychain call; async callers may call [`Credential::access_token`] first).
    pub fn state(&self) -> CredentialState {
        if !self.uses_tokens() {
            return CredentialState::NotRequired;
        }
        if !self.status().loaded {
            let key = SecretKey::tokens(&self.inner.name);
            match self.inner.store.get(&key) {
                Ok(blob) => self.apply_loaded(blob),
                Err(e) => {
                    return CredentialState::SecretsUnavailable {
                        reason: e.to_string(),
                    };
                }
            }
        }
        let status = self.status();
        if let Some(reason) = &status.needs_sign_in {
            return CredentialState::NeedsSignIn {
                reason: reason.clone(),
            };
        }
        match &status.tokens {
            Some(t) => CredentialState::Valid {
                expires_at: t.expires_at,
            },
            None if self.method() == AuthType::OAuth2 => CredentialState::NeedsSignIn {
                reason: NOT_SIGNED_IN.into(),
            },
            None => CredentialState::NoToken,
        }
    }

    /// Variables for rendering requests: `AccessToken` (the token as a plain string: callers
    /// mask it in any output) and the extra values of the last token answer (Zoho's
    /// `api_domain`, Salesforce's `instance_url`, `id`, `issued_at`, `scope`…; never names
    /// containing token, secret, password or signature). A value whose name is one of the
    /// integration's fields is left out: the field wins. Empty before the first token.
    pub fn token_variables(&self) -> Map<String, Value> {
        let status = self.status();
        let mut vars = Map::new();
        if let Some(t) = &status.tokens {
            for (name, value) in &t.extra {
                let is_field = self.auth_settings().fields.iter().any(|f| &f.name == name)
                    || self.inner.fields.contains_key(name);
                if !is_field {
                    vars.insert(name.clone(), value.clone());
                }
            }
            vars.insert(
                "AccessToken".into(),
                Value::String(t.access_token.expose().to_string()),
            );
        }
        vars
    }

    /// Adds the tokens held in memory to `masker`, so output that might echo them hides them.
    pub fn add_secrets_to(&self, masker: &mut Masker) {
        let status = self.status();
        if let Some(t) = &status.tokens {
            masker.add(&t.access_token);
            if let Some(r) = &t.refresh_token {
                masker.add(r);
            }
        }
    }

    // ----- refreshing -----

    async fn refresh_single_flight(
        &self,
        trigger: Trigger,
        seen_attempts: u64,
        now_unix: i64,
    ) -> Result<Option<Secret>, AuthError> {
        let _flight = self.inner.refresh.lock().await;
        {
            let status = self.status();
            if let Some(reason) = &status.needs_sign_in {
                return Err(self.needs_sign_in_error(reason));
            }
            if status.attempts != seen_attempts {
                // A refresh finished while this caller waited: share its outcome.
                match (&status.last_failure, &status.tokens) {
                    (None, Some(t)) => return Ok(Some(t.access_token.clone())),
                    (Some(_), Some(t))
                        if matches!(trigger, Trigger::Due) && usable(t, now_unix) =>
                    {
                        return Ok(Some(t.access_token.clone()));
                    }
                    (Some(failure), _) => return Err(failure.to_error()),
                    (None, None) => {}
                }
            }
            if let Some(t) = &status.tokens {
                let still_good = match &trigger {
                    Trigger::Due => !self.refresh_due(t, now_unix),
                    Trigger::Refused(stale) => Some(&t.access_token) != stale.as_ref(),
                };
                if still_good {
                    return Ok(Some(t.access_token.clone()));
                }
            }
        }
        self.refresh_now(&trigger, now_unix).await
    }

    /// Talks to the token endpoint; the caller holds the refresh lock.
    async fn refresh_now(
        &self,
        trigger: &Trigger,
        now_unix: i64,
    ) -> Result<Option<Secret>, AuthError> {
        let current = self.status().tokens.clone();
        let request = match self.method() {
            AuthType::OAuth2 => {
                let Some(refresh_token) = current.as_ref().and_then(|t| t.refresh_token.clone())
                else {
                    if let (Trigger::Due, Some(t)) = (trigger, &current)
                        && usable(t, now_unix)
                    {
                        return Ok(Some(t.access_token.clone()));
                    }
                    let reason = match (trigger, &current) {
                        (_, None) => NOT_SIGNED_IN,
                        (Trigger::Due, Some(_)) => {
                            "the access token expired and there is no refresh token"
                        }
                        (Trigger::Refused(_), Some(_)) => {
                            "the CRM refused the access token and there is no refresh token"
                        }
                    };
                    return Err(self.enter_needs_sign_in(reason.to_string()).await);
                };
                self.refresh_token_request(&refresh_token)?
            }
            AuthType::Bearer => self.client_credentials_request()?,
            AuthType::None | AuthType::Basic => return Ok(None),
        };
        match self.call_token_endpoint(&request).await {
            Ok(grant) => self.install(grant, now_unix).await.map(Some),
            Err(TokenFailure::Rejected {
                status,
                error,
                description,
            }) => {
                let what = if self.method() == AuthType::OAuth2 {
                    "the provider refused the refresh token"
                } else {
                    "the token endpoint refused the client credentials"
                };
                let reason = format!(
                    "{what} ({status}{})",
                    self.masked_detail(&error, &description, &[])
                );
                Err(self.enter_needs_sign_in(reason).await)
            }
            Err(failure) => {
                let failure = match failure {
                    TokenFailure::Malformed { status, message } => {
                        Failure::Endpoint(status, self.masker(&[]).mask(&message))
                    }
                    TokenFailure::Transient(message)
                    | TokenFailure::Rejected {
                        description: message,
                        ..
                    } => Failure::Transient(self.masker(&[]).mask(&message)),
                };
                {
                    let mut status = self.status();
                    status.attempts += 1;
                    status.last_failure = Some(failure.clone());
                }
                match (trigger, &current) {
                    (Trigger::Due, Some(t)) if usable(t, now_unix) => {
                        Ok(Some(t.access_token.clone()))
                    }
                    _ => Err(failure.to_error()),
                }
            }
        }
    }

    async fn finish_login(
        &self,
        outcome: Result<TokenGrant, TokenFailure>,
        now_unix: i64,
    ) -> Result<(), AuthError> {
        match outcome {
            Ok(grant) => self.install(grant, now_unix).await.map(|_| ()),
            Err(TokenFailure::Rejected {
                status,
                error,
                description,
            }) => {
                let message = self
                    .masked_detail(&error, &description, &[])
                    .trim_start_matches(": ")
                    .to_string();
                Err(AuthError::TokenEndpoint { status, message })
            }
            Err(TokenFailure::Malformed { status, message }) => Err(AuthError::TokenEndpoint {
                status,
                message: self.masker(&[]).mask(&message),
            }),
            Err(TokenFailure::Transient(message)) => {
                Err(AuthError::Transient(self.masker(&[]).mask(&message)))
            }
        }
    }

    /// Keeps a new grant: memory first (a keychain failure must not lose a token the provider
    /// already rotated), then the store. Returns the access token.
    async fn install(&self, grant: TokenGrant, now_unix: i64) -> Result<Secret, AuthError> {
        let tokens = {
            let mut status = self.status();
            let previous = status.tokens.take();
            let mut extra = previous
                .as_ref()
                .map(|t| t.extra.clone())
                .unwrap_or_default();
            extra.extend(grant.extra);
            let tokens = Tokens {
                access_token: grant.access_token,
                // Providers that do not rotate refresh tokens answer without one.
                refresh_token: grant
                    .refresh_token
                    .or_else(|| previous.and_then(|t| t.refresh_token)),
                token_type: grant.token_type,
                expires_at: grant.expires_in.map(|s| now_unix.saturating_add(s)),
                obtained_at: now_unix,
                extra,
            };
            status.tokens = Some(tokens.clone());
            status.loaded = true;
            status.needs_sign_in = None;
            status.attempts += 1;
            status.last_failure = None;
            tokens
        };
        let blob = TokenBlob {
            access_token: Some(tokens.access_token.expose().to_string()),
            refresh_token: tokens
                .refresh_token
                .as_ref()
                .map(|r| r.expose().to_string()),
            token_type: tokens.token_type.clone(),
            expires_at: tokens.expires_at,
            obtained_at: tokens.obtained_at,
            extra: tokens.extra.clone(),
            needs_sign_in: None,
        };
        self.persist(blob).await?;
        Ok(tokens.access_token)
    }

    /// Enters NeedsSignIn (memory and store) and returns the error to report.
    async fn enter_needs_sign_in(&self, reason: String) -> AuthError {
        {
            let mut status = self.status();
            status.tokens = None;
            status.needs_sign_in = Some(reason.clone());
            status.attempts += 1;
            status.last_failure = None;
        }
        let blob = TokenBlob {
            needs_sign_in: Some(reason.clone()),
            ..TokenBlob::default()
        };
        // The state is known in memory either way; a keychain failure here only means the
        // next start tries the stored tokens once more.
        let _ = self.persist(blob).await;
        self.needs_sign_in_error(&reason)
    }

    fn needs_sign_in_error(&self, reason: &str) -> AuthError {
        AuthError::NeedsSignIn {
            integration: self.inner.name.clone(),
            reason: reason.to_string(),
        }
    }

    fn refresh_due(&self, t: &Tokens, now_unix: i64) -> bool {
        if let Some(expires_at) = t.expires_at {
            let lifetime = expires_at.saturating_sub(t.obtained_at).max(0);
            let margin = (lifetime / 2).min(EXPIRY_MARGIN_SECS);
            if now_unix >= expires_at.saturating_sub(margin) {
                return true;
            }
        }
        if self.method() == AuthType::Bearer
            && let Some(minutes) = self.refresh_interval_minutes()
            && now_unix >= t.obtained_at.saturating_add(i64::from(minutes) * 60)
        {
            return true;
        }
        false
    }

    /// `TokenRefreshInterval` for `bearertoken`: `None` when `0` (never by interval).
    fn refresh_interval_minutes(&self) -> Option<u32> {
        match self.auth_settings().token_refresh_interval {
            None => Some(callbox_core::template::Auth::DEFAULT_TOKEN_REFRESH_MINUTES),
            Some(0) => None,
            Some(m) => Some(m),
        }
    }

    // ----- the token endpoint -----

    async fn call_token_endpoint(&self, request: &HttpRequest) -> Result<TokenGrant, TokenFailure> {
        match self.inner.http.send(request).await {
            Ok(response) => parse_response(response.status, &response.body),
            Err(e @ (HttpError::Invalid(_) | HttpError::TooLarge { .. })) => {
                Err(TokenFailure::Malformed {
                    status: 0,
                    message: e.to_string(),
                })
            }
            Err(e) => Err(TokenFailure::Transient(e.to_string())),
        }
    }

    fn client_credentials_request(&self) -> Result<HttpRequest, AuthError> {
        let url = self.endpoint(
            self.auth_settings().token_endpoint.as_ref(),
            "TokenEndPoint",
            "",
        )?;
        let client_id = self.template_field("client_id");
        let client_secret = self.template_field("client_secret");
        Ok(form_request(
            &url,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", client_id.as_deref().unwrap_or("")),
                ("client_secret", client_secret.as_deref().unwrap_or("")),
            ],
        ))
    }

    fn refresh_token_request(&self, refresh_token: &Secret) -> Result<HttpRequest, AuthError> {
        let url = self.endpoint(
            self.auth_settings().token_endpoint.as_ref(),
            "TokenEndPoint",
            "",
        )?;
        let client_id = self.field("client_id");
        let client_secret = self.field("client_secret");
        Ok(form_request(
            &url,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token.expose()),
                ("client_id", client_id.as_deref().unwrap_or("")),
                ("client_secret", client_secret.as_deref().unwrap_or("")),
            ],
        ))
    }

    fn code_exchange_request(
        &self,
        code: &Secret,
        redirect_uri: &str,
        verifier: &Secret,
    ) -> Result<HttpRequest, AuthError> {
        let url = self.endpoint(
            self.auth_settings().token_endpoint.as_ref(),
            "TokenEndPoint",
            redirect_uri,
        )?;
        let client_id = self.field("client_id");
        let client_secret = self.field("client_secret");
        Ok(form_request(
            &url,
            &[
                ("grant_type", "authorization_code"),
                ("code", code.expose()),
                ("redirect_uri", redirect_uri),
                ("client_id", client_id.as_deref().unwrap_or("")),
                ("client_secret", client_secret.as_deref().unwrap_or("")),
                ("code_verifier", verifier.expose()),
            ],
        ))
    }

    /// The authorization URL: the rendered `AuthEndPoint`, then the rendered
    /// `AdditionalQueryString`, then what OAuth2 needs (see [`authorization_url`]).
    fn authorization_url(
        &self,
        redirect_uri: &str,
        state: &str,
        challenge: &str,
    ) -> Result<String, AuthError> {
        let auth = self.auth_settings();
        let base = self.endpoint(auth.auth_endpoint.as_ref(), "AuthEndPoint", redirect_uri)?;
        let additional = match &auth.additional_query_string {
            Some(text) => self
                .inner
                .integration
                .render(text, &self.data(redirect_uri), OutputContext::Form)
                .map_err(|e| {
                    AuthError::Configuration(format!(
                        "AdditionalQueryString: {}",
                        self.masker(&[]).mask(&e.to_string())
                    ))
                })?,
            None => String::new(),
        };
        Ok(authorization_url(&AuthorizationRequest {
            endpoint: &base,
            additional_query: &additional,
            client_id: self.field("client_id").as_deref(),
            scope: auth.scope.as_deref(),
            redirect_uri,
            state,
            code_challenge: challenge,
        }))
    }

    /// Renders an endpoint with the fields (and `redirect_uri`) and checks it is a URL.
    fn endpoint(
        &self,
        text: Option<&Located>,
        name: &str,
        redirect_uri: &str,
    ) -> Result<String, AuthError> {
        let Some(text) = text else {
            return Err(AuthError::Configuration(format!(
                "the template has no {name}"
            )));
        };
        let url = self
            .inner
            .integration
            .render(text, &self.data(redirect_uri), OutputContext::Url)
            .map_err(|e| {
                AuthError::Configuration(format!(
                    "{name}: {}",
                    self.masker(&[]).mask(&e.to_string())
                ))
            })?
            .trim()
            .to_string();
        check_url(&url).map_err(|reason| {
            AuthError::Configuration(format!(
                "{name} renders to \"{}\", which is not a usable http(s) URL ({reason})",
                self.masker(&[]).mask(&url)
            ))
        })?;
        Ok(url)
    }

    fn data(&self, redirect_uri: &str) -> Value {
        let mut data = self.inner.fields.clone();
        data.insert("redirect_uri".into(), Value::String(redirect_uri.into()));
        Value::Object(data)
    }

    /// A field's value as text; `None` when absent or empty.
    fn field(&self, name: &str) -> Option<String> {
        match self.inner.fields.get(name)? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// A field's value, only when the template declares a field of that name.
    fn template_field(&self, name: &str) -> Option<String> {
        self.auth_settings()
            .fields
            .iter()
            .any(|f| f.name == name)
            .then(|| self.field(name))
            .flatten()
    }

    /// `: error: description`, masked; empty when both are empty.
    fn masked_detail(&self, error: &str, description: &str, extra: &[&Secret]) -> String {
        let text = match (error.is_empty(), description.is_empty()) {
            (true, true) => return String::new(),
            (false, true) => error.to_string(),
            (true, false) => description.to_string(),
            (false, false) => format!("{error}: {description}"),
        };
        format!(": {}", self.masker(extra).mask(&text))
    }

    /// Hides the secret fields, `client_secret` and the tokens in memory.
    fn masker(&self, extra: &[&Secret]) -> Masker {
        let mut masker = Masker::new();
        let auth = self.auth_settings();
        for name in auth.secret_field_names().chain(["client_secret"]) {
            if let Some(value) = self.field(name) {
                masker.add(&Secret::new(value));
            }
        }
        self.add_secrets_to(&mut masker);
        for secret in extra {
            masker.add(secret);
        }
        masker
    }

    // ----- the store -----

    async fn ensure_loaded(&self) -> Result<(), AuthError> {
        if self.status().loaded {
            return Ok(());
        }
        let _flight = self.inner.refresh.lock().await;
        if self.status().loaded {
            return Ok(());
        }
        let key = SecretKey::tokens(&self.inner.name);
        let blob = self.store_call(move |s| s.get(&key)).await?;
        self.apply_loaded(blob);
        Ok(())
    }

    fn apply_loaded(&self, blob: Option<Secret>) {
        let mut status = self.status();
        if status.loaded {
            return;
        }
        status.loaded = true;
        // A blob that does not parse (written by a future version?) counts as no tokens.
        let Some(blob) = blob.and_then(|b| serde_json::from_str::<TokenBlob>(b.expose()).ok())
        else {
            return;
        };
        status.needs_sign_in = blob.needs_sign_in;
        status.tokens = blob
            .access_token
            .filter(|a| !a.is_empty())
            .map(|access| Tokens {
                access_token: Secret::new(access),
                refresh_token: blob.refresh_token.map(Secret::new),
                token_type: blob.token_type,
                expires_at: blob.expires_at,
                obtained_at: blob.obtained_at,
                extra: blob.extra,
            });
    }

    async fn persist(&self, blob: TokenBlob) -> Result<(), AuthError> {
        let json = serde_json::to_string(&blob)
            .map_err(|e| SecretError::Platform(format!("cannot encode the tokens: {e}")))?;
        let secret = Secret::new(json);
        let key = SecretKey::tokens(&self.inner.name);
        self.store_call(move |s| s.set(&key, &secret)).await?;
        Ok(())
    }

    /// Runs a (blocking) store call off the async threads.
    async fn store_call<T: Send + 'static>(
        &self,
        call: impl FnOnce(&dyn SecretStore) -> Result<T, SecretError> + Send + 'static,
    ) -> Result<T, SecretError> {
        let store = self.inner.store.clone();
        tokio::task::spawn_blocking(move || call(store.as_ref()))
            .await
            .map_err(|e| SecretError::Platform(format!("the keychain call did not finish: {e}")))?
    }

    // ----- small things -----

    fn status(&self) -> MutexGuard<'_, Status> {
        // Nothing panics while holding the lock; recover rather than poison every caller.
        self.inner
            .status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn auth_settings(&self) -> &callbox_core::template::Auth {
        self.inner.integration.auth()
    }

    fn method(&self) -> AuthType {
        self.auth_settings().method
    }

    fn uses_tokens(&self) -> bool {
        matches!(self.method(), AuthType::OAuth2 | AuthType::Bearer)
    }
}

/// Whether a token has not expired yet (as far as the provider said).
fn usable(t: &Tokens, now_unix: i64) -> bool {
    t.expires_at.is_none_or(|e| now_unix < e)
}

/// The parts of an OAuth2 authorization URL.
#[derive(Clone, Copy, Debug)]
pub struct AuthorizationRequest<'a> {
    /// The rendered `AuthEndPoint` (may already carry `response_type`, `client_id`…).
    pub endpoint: &'a str,
    /// The rendered `AdditionalQueryString` (`a=1&b=2`; a leading `?` or `&` is ignored).
    pub additional_query: &'a str,
    /// The `client_id` field.
    pub client_id: Option<&'a str>,
    /// The template's `Scope`, sent as written (commas kept).
    pub scope: Option<&'a str>,
    /// The loopback redirect URI.
    pub redirect_uri: &'a str,
    /// The anti-forgery `state`.
    pub state: &'a str,
    /// The PKCE S256 challenge.
    pub code_challenge: &'a str,
}

/// Builds an authorization URL. Parameters already in the endpoint's query are kept as the
/// template wrote them; `AdditionalQueryString` parameters follow unless the endpoint has
/// them; `response_type=code`, `client_id` and `scope` are added when neither has them; and
/// `redirect_uri`, `state`, `code_challenge`, `code_challenge_method=S256` are always
/// Callbox's own (any the template set are replaced: the loopback listener is where the
/// browser must come back to).
pub fn authorization_url(request: &AuthorizationRequest<'_>) -> String {
    const OURS: [&str; 4] = [
        "redirect_uri",
        "state",
        "code_challenge",
        "code_challenge_method",
    ];
    fn key(pair: &str) -> String {
        let raw = pair.split('=').next().unwrap_or("");
        url::form_urlencoded::parse(raw.as_bytes())
            .next()
            .map(|(k, _)| k.into_owned())
            .unwrap_or_default()
    }
    let (without_fragment, fragment) = match request.endpoint.split_once('#') {
        Some((u, f)) => (u, Some(f)),
        None => (request.endpoint, None),
    };
    let (base, query) = without_fragment
        .split_once('?')
        .unwrap_or((without_fragment, ""));
    let mut pairs: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty() && !OURS.contains(&key(p).as_str()))
        .map(str::to_string)
        .collect();
    for pair in request
        .additional_query
        .trim()
        .trim_start_matches(['?', '&'])
        .split('&')
    {
        let k = key(pair);
        if !pair.is_empty() && !OURS.contains(&k.as_str()) && !pairs.iter().any(|p| key(p) == k) {
            pairs.push(pair.to_string());
        }
    }
    let has = |pairs: &[String], k: &str| pairs.iter().any(|p| key(p) == k);
    if !has(&pairs, "response_type") {
        pairs.push("response_type=code".into());
    }
    if let Some(client_id) = request.client_id.filter(|c| !c.is_empty())
        && !has(&pairs, "client_id")
    {
        pairs.push(format!("client_id={}", url_encode(client_id)));
    }
    if let Some(scope) = request.scope.map(str::trim).filter(|s| !s.is_empty())
        && !has(&pairs, "scope")
    {
        pairs.push(format!("scope={}", url_encode(scope)));
    }
    pairs.push(format!("redirect_uri={}", url_encode(request.redirect_uri)));
    pairs.push(format!("state={}", url_encode(request.state)));
    pairs.push(format!(
        "code_challenge={}",
        url_encode(request.code_challenge)
    ));
    pairs.push("code_challenge_method=S256".into());
    let mut url = format!("{base}?{}", pairs.join("&"));
    if let Some(f) = fragment {
        url.push('#');
        url.push_str(f);
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(endpoint: &'a str, additional: &'a str) -> AuthorizationRequest<'a> {
        AuthorizationRequest {
            endpoint,
            additional_query: additional,
            client_id: Some("cid 1"),
            scope: Some("ZohoCRM.modules.ALL,ZohoCRM.users.READ"),
            redirect_uri: "http://127.0.0.1:5000/callback",
            state: "st",
            code_challenge: "ch",
        }
    }

    #[test]
    fn authorization_url_adds_what_is_missing() {
        assert_eq!(
            authorization_url(&request("https://a.example/auth", "")),
            "https://a.example/auth?response_type=code&client_id=cid%201&scope=ZohoCRM.modules.ALL%2CZohoCRM.users.READ&redirect_uri=http%3A%2F%2F127.0.0.1%3A5000%2Fcallback&state=st&code_challenge=ch&code_challenge_method=S256"
        );
    }

    #[test]
    fn authorization_url_keeps_the_templates_parameters_and_replaces_the_redirect() {
        let url = authorization_url(&request(
            "https://accounts.zoho.com/oauth/v2/auth?response_type=code&access_type=offline&client_id=abc&redirect_uri=https%3A%2F%2Fpbx.example%2Fcb",
            "&prompt=consent&access_type=online&state=theirs&redirect_uri=x",
        ));
        assert_eq!(
            url,
            "https://accounts.zoho.com/oauth/v2/auth?response_type=code&access_type=offline&client_id=abc&prompt=consent&scope=ZohoCRM.modules.ALL%2CZohoCRM.users.READ&redirect_uri=http%3A%2F%2F127.0.0.1%3A5000%2Fcallback&state=st&code_challenge=ch&code_challenge_method=S256"
        );
    }

    #[test]
    fn authorization_url_keeps_a_fragment_last() {
        let url = authorization_url(&AuthorizationRequest {
            client_id: None,
            scope: None,
            ..request("https://a.example/auth?x=1#frag", "")
        });
        assert!(url.starts_with("https://a.example/auth?x=1&response_type=code&redirect_uri="));
        assert!(url.ends_with("&code_challenge_method=S256#frag"), "{url}");
    }

    #[test]
    fn blobs_round_trip_without_secrets_in_debug() {
        let t = Tokens {
            access_token: Secret::new("at-hunter22"),
            refresh_token: Some(Secret::new("rt-hunter22")),
            token_type: Some("Bearer".into()),
            expires_at: Some(10),
            obtained_at: 1,
            extra: Map::new(),
        };
        assert!(!format!("{t:?}").contains("hunter22"));
        let e = AuthError::NeedsSignIn {
            integration: "zoho".into(),
            reason: NOT_SIGNED_IN.into(),
        };
        assert_eq!(e.to_string(), "zoho: sign in again (not signed in yet)");
        assert!(!e.is_retryable());
        assert!(AuthError::Transient("x".into()).is_retryable());
    }
}
