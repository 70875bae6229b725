//! Callbox's effects. For now: sending the requests of an integration template's scenarios
//! over HTTP (with timeouts and a response-size cap), and the machine's time zone for
//! `TimeFormat`. Later: auth flows, hooks on call events, the outbox, the keychain.

pub mod auth;
pub mod http;
pub mod scenario;
pub mod secret_store;
pub mod time_zone;

pub use auth::{
    AuthError, BrowserOpener, Credential, CredentialState, SystemBrowser, credential_hosts,
    strip_credentials_if_foreign,
};
pub use http::{HttpClient, HttpError, HttpSettings};
pub use scenario::{DryRunRequest, RunReport, dry_run, run_scenario};
pub use secret_store::{KeychainStore, MemoryStore, SecretError, SecretKey, SecretStore};
pub use time_zone::LocalTimeZone;
