//! Callbox telephony.
//!
//! The rest of Callbox depends on the [`Telephony`] trait: register, dial, answer, reject, hang
//! up, hold/resume, mute, DTMF, transfer, and a stream of typed [`TelephonyEvent`]s. The first
//! implementation is [`SipAgent`], a SIP user agent (signalling through rsipstack, media in
//! [`media`]); `fake::ScriptedTelephony` (feature `test-support`) stands in for it in other
//! crates' tests.

pub mod account;
pub mod agent;
pub mod audio;
pub mod event;
#[cfg(any(test, feature = "test-support"))]
pub mod fake;
#[cfg(feature = "test-support")]
pub mod lab;
pub mod media;
pub mod network;
pub mod sdp;
pub mod telephony;

pub use account::{Account, AccountError, Password, Transport};
pub use agent::{AgentError, SipAgent};
pub use audio::{AudioDevices, AudioSink, AudioSource, Capture, GeneratedAudio};
pub use event::{CallDirection, CallId, Disposition, RegistrationState, TelephonyEvent};
pub use network::{NetworkWatch, OsRoute, Route};
pub use telephony::{RejectReason, Telephony, TelephonyError};
