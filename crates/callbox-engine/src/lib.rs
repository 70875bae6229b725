//! Callbox's effects. For now: sending the requests of an integration template's scenarios
//! over HTTP (with timeouts and a response-size cap), and the machine's time zone for
//! `TimeFormat`. Later: auth flows, hooks on call events, the outbox, the keychain.

#[cfg(feature = "test-support")]
pub mod fake_crm;
pub mod hooks;
pub mod http;
pub mod integrations;
pub mod outbox;
pub mod rate_limit;
pub mod scenario;
pub mod store;
pub mod time_zone;
pub mod tokens;

pub use http::{HttpClient, HttpError, HttpSettings};
pub use scenario::{DryRunRequest, RunReport, dry_run, run_scenario};
pub use time_zone::LocalTimeZone;
