//! Callbox's effects: hooks on call events ([`hooks::Engine`]), the durable outbox of CRM
//! writes ([`outbox`], [`store`]), credentials and their refresh ([`auth`]), secrets in the OS
//! keychain ([`secret_store`]), HTTP with timeouts and a response-size cap ([`http`]), and
//! running single scenarios for `callbox-cli template run` ([`scenario`]).

pub mod auth;
#[cfg(feature = "test-support")]
pub mod fake_crm;
pub mod hooks;
pub mod http;
pub mod integrations;
pub mod outbox;
pub mod rate_limit;
pub mod scenario;
pub mod secret_store;
pub mod setup;
pub mod store;
pub mod telephony;
pub mod time_zone;
pub mod tokens;

pub use auth::{
    AuthError, BrowserOpener, Credential, CredentialState, SystemBrowser, credential_hosts,
    strip_credentials_if_foreign,
};
pub use http::{HttpClient, HttpError, HttpSettings};
pub use scenario::{DryRunRequest, RunReport, dry_run, run_scenario};
pub use secret_store::{KeychainStore, MemoryStore, SecretError, SecretKey, SecretStore};
pub use time_zone::LocalTimeZone;
