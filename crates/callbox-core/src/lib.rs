//! Callbox's pure core: integration templates (the Yeastar P-Series custom CRM XML format),
//! their validation, Go-template rendering with contextual escaping, GJSON extraction, and
//! request building. No I/O, no async, no clock: the engine does the effects.
//!
//! The usual path: [`template::parse`] a template → [`run::ScenarioRun`] hands out
//! [`request::HttpRequest`]s for a scenario and takes the responses → a
//! [`run::RunOutcome`] with outputs and contacts.

pub mod call;
pub mod diagnostic;
pub mod escape;
pub mod functions;
pub mod request;
pub mod run;
pub mod secret;
pub mod template;
pub mod time_format;
pub mod variables;

pub use callbox_gjson as gjson;
pub use callbox_gotmpl as gotmpl;
