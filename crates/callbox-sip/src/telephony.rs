//! The `Telephony` trait: what the rest of Callbox asks of a phone. Every method returns at once
//! (it starts the action and checks what can be checked up front); what happens next arrives as
//! [`TelephonyEvent`]s from [`Telephony::subscribe`].

use crate::event::{CallId, RegistrationState, TelephonyEvent};
use thiserror::Error;
use tokio::sync::broadcast;

/// Why a request to the phone was refused up front.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TelephonyError {
    /// No call with that id (it ended, or never existed).
    #[error("no call {0}")]
    UnknownCall(CallId),
    /// The call is not in a state where that works (e.g. hold before answer).
    #[error("{call} is {state}: cannot {action}")]
    WrongState {
        /// The call.
        call: CallId,
        /// Its state.
        state: &'static str,
        /// What was asked.
        action: &'static str,
    },
    /// A target that is not a SIP URI or dialable number.
    #[error("`{0}` is not a SIP URI or phone number")]
    InvalidTarget(String),
    /// A character that is not a DTMF digit.
    #[error("`{0}` is not a DTMF digit (0-9 * # A-D)")]
    InvalidDigit(char),
    /// The phone has shut down.
    #[error("the phone has shut down")]
    Closed,
    /// Anything the SIP stack or the network refused, with its words.
    #[error("{0}")]
    Stack(String),
}

/// How to turn down an incoming call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// 486 Busy Here: the caller's PBX may try voicemail or another agent.
    Busy,
    /// 603 Decline.
    Decline,
}

/// A phone: the built-in SIP user agent, or a scripted fake in tests.
pub trait Telephony: Send + Sync {
    /// Starts registering (and keeps the registration fresh). Idempotent.
    fn register(&self) -> Result<(), TelephonyError>;
    /// Removes the registration.
    fn unregister(&self) -> Result<(), TelephonyError>;
    /// The registration state now.
    fn registration(&self) -> RegistrationState;
    /// Calls a SIP URI or a number (a number becomes `sip:NUMBER@domain`).
    fn dial(&self, target: &str) -> Result<CallId, TelephonyError>;
    /// Answers a ringing incoming call.
    fn answer(&self, call: CallId) -> Result<(), TelephonyError>;
    /// Turns down a ringing incoming call.
    fn reject(&self, call: CallId, reason: RejectReason) -> Result<(), TelephonyError>;
    /// Ends a call in whatever state it is: CANCEL before answer, BYE after, decline if it rings
    /// here.
    fn hang_up(&self, call: CallId) -> Result<(), TelephonyError>;
    /// Puts a call on hold (re-INVITE, `sendonly`).
    fn hold(&self, call: CallId) -> Result<(), TelephonyError>;
    /// Takes a call off hold.
    fn resume(&self, call: CallId) -> Result<(), TelephonyError>;
    /// Mutes or unmutes the microphone of a call (local only; the far end hears silence).
    fn mute(&self, call: CallId, muted: bool) -> Result<(), TelephonyError>;
    /// Sends DTMF digits (RFC 4733), one after another.
    fn send_dtmf(&self, call: CallId, digits: &str) -> Result<(), TelephonyError>;
    /// Blind transfer (REFER) to a URI or number; the call ends when the far end accepts.
    fn transfer(&self, call: CallId, target: &str) -> Result<(), TelephonyError>;
    /// Every event from now on.
    fn subscribe(&self) -> broadcast::Receiver<TelephonyEvent>;
}

/// Checks DTMF digits before they are queued.
pub fn validate_digits(digits: &str) -> Result<(), TelephonyError> {
    match digits
        .chars()
        .find(|c| crate::media::dtmf::event_code(*c).is_none())
    {
        Some(bad) => Err(TelephonyError::InvalidDigit(bad)),
        None => Ok(()),
    }
}
