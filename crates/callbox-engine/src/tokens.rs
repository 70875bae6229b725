//! What the outbox and lookups need from an integration's credentials: the token variables
//! to render requests with, whether a response means "token invalid", and one refresh.

use std::future::Future;
use std::pin::Pin;

use serde_json::{Map, Value};

/// A boxed future (keeps [`TokenSource`] object-safe).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why credentials could not be provided.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    /// A person must sign in again (refresh impossible or rejected).
    #[error("sign in to {integration} again: {reason}")]
    NeedsSignIn {
        /// Integration name.
        integration: String,
        /// Why.
        reason: String,
    },
    /// The token endpoint could not be reached or failed transiently: retry later.
    #[error("cannot renew the {integration} token now: {reason}")]
    Transient {
        /// Integration name.
        integration: String,
        /// Why.
        reason: String,
    },
}

/// Credentials of one integration as the engine uses them.
pub trait TokenSource: Send + Sync {
    /// Variables to render requests with (`AccessToken` and token-response extras), renewing
    /// the token first when it is due. Empty for auth none/basic.
    fn variables(&self, now: i64) -> BoxFuture<'_, Result<Map<String, Value>, AuthFailure>>;
    /// Whether a response says the token is invalid (401, or a `TokenInvalid` marker in an
    /// error body).
    fn is_token_invalid(&self, status: u16, body: &str) -> bool;
    /// Renews the token after a request was refused with `stale` (one renewal at a time;
    /// callers holding an already-replaced token get the current one).
    fn refresh(
        &self,
        stale: Map<String, Value>,
        now: i64,
    ) -> BoxFuture<'_, Result<Map<String, Value>, AuthFailure>>;
    /// Adds the secrets of the moment (tokens) to `masker`.
    fn add_secrets_to(&self, _masker: &mut callbox_core::secret::Masker) {}
    /// Signs in again (OAuth2 in the browser `opener` opens, bearer: a new token). Nothing to
    /// do for credentials that never change.
    fn sign_in<'a>(
        &'a self,
        _opener: &'a dyn crate::auth::BrowserOpener,
        _timeout: std::time::Duration,
        _now: i64,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
}

impl TokenSource for crate::auth::Credential {
    fn variables(&self, now: i64) -> BoxFuture<'_, Result<Map<String, Value>, AuthFailure>> {
        Box::pin(async move {
            self.access_token(now).await.map_err(|e| failure(self, e))?;
            Ok(self.token_variables())
        })
    }

    fn is_token_invalid(&self, status: u16, body: &str) -> bool {
        crate::auth::Credential::is_token_invalid(self, status, body)
    }

    fn refresh(
        &self,
        stale: Map<String, Value>,
        now: i64,
    ) -> BoxFuture<'_, Result<Map<String, Value>, AuthFailure>> {
        Box::pin(async move {
            let stale = stale
                .get("AccessToken")
                .and_then(Value::as_str)
                .map(callbox_core::secret::Secret::new);
            self.refresh_after_failure(stale.as_ref(), now)
                .await
                .map_err(|e| failure(self, e))?;
            Ok(self.token_variables())
        })
    }

    fn add_secrets_to(&self, masker: &mut callbox_core::secret::Masker) {
        crate::auth::Credential::add_secrets_to(self, masker);
    }

    fn sign_in<'a>(
        &'a self,
        opener: &'a dyn crate::auth::BrowserOpener,
        timeout: std::time::Duration,
        now: i64,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.login(opener, timeout, now)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// Maps a credential error to what the outbox does with it: wait for a person, or retry.
fn failure(credential: &crate::auth::Credential, e: crate::auth::AuthError) -> AuthFailure {
    let integration = credential.integration_name().to_string();
    match e {
        crate::auth::AuthError::NeedsSignIn { reason, .. } => AuthFailure::NeedsSignIn {
            integration,
            reason,
        },
        other if other.is_retryable() => AuthFailure::Transient {
            integration,
            reason: other.to_string(),
        },
        other => AuthFailure::NeedsSignIn {
            integration,
            reason: other.to_string(),
        },
    }
}

/// Credentials that never change (auth none and basic, or a token typed into a field): an
/// invalid-token answer means a person must fix the integration's fields.
#[derive(Clone, Debug)]
pub struct StaticCredentials {
    integration: String,
    markers: Vec<String>,
}

impl StaticCredentials {
    /// For `integration`, recognising the template's `TokenInvalid` markers.
    pub fn new(integration: &str, markers: Vec<String>) -> Self {
        StaticCredentials {
            integration: integration.to_string(),
            markers,
        }
    }
}

/// Whether `status`/`body` mean an invalid token given the template's markers.
pub fn token_invalid(markers: &[String], status: u16, body: &str) -> bool {
    status == 401
        || (!(200..300).contains(&status)
            && markers
                .iter()
                .any(|m| !m.is_empty() && body.contains(m.as_str())))
}

impl TokenSource for StaticCredentials {
    fn variables(&self, _now: i64) -> BoxFuture<'_, Result<Map<String, Value>, AuthFailure>> {
        Box::pin(async { Ok(Map::new()) })
    }

    fn is_token_invalid(&self, status: u16, body: &str) -> bool {
        token_invalid(&self.markers, status, body)
    }

    fn refresh(
        &self,
        _stale: Map<String, Value>,
        _now: i64,
    ) -> BoxFuture<'_, Result<Map<String, Value>, AuthFailure>> {
        let integration = self.integration.clone();
        Box::pin(async move {
            Err(AuthFailure::NeedsSignIn {
                integration,
                reason: "the CRM refused the credentials; check the integration's fields (API key, password)".into(),
            })
        })
    }
}
