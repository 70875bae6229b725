//! The phone when no telephony account is configured: registration says so, and every call
//! action is refused with what to do about it.

use callbox_sip::{
    CallId, RegistrationState, RejectReason, Telephony, TelephonyError, TelephonyEvent,
};
use tokio::sync::broadcast;

/// A [`Telephony`] that refuses everything with `hint`.
#[derive(Debug)]
pub struct NoPhone {
    hint: String,
    events: broadcast::Sender<TelephonyEvent>,
}

impl NoPhone {
    /// Refuses with `hint` (e.g. "no telephony.toml: add your SIP account in Settings").
    pub fn new(hint: impl Into<String>) -> Self {
        NoPhone {
            hint: hint.into(),
            events: broadcast::channel(1).0,
        }
    }

    fn refuse<T>(&self) -> Result<T, TelephonyError> {
        Err(TelephonyError::Stack(self.hint.clone()))
    }
}

impl Telephony for NoPhone {
    fn register(&self) -> Result<(), TelephonyError> {
        self.refuse()
    }
    fn unregister(&self) -> Result<(), TelephonyError> {
        Ok(())
    }
    fn registration(&self) -> RegistrationState {
        RegistrationState::Unregistered
    }
    fn dial(&self, _target: &str) -> Result<CallId, TelephonyError> {
        self.refuse()
    }
    fn answer(&self, _call: CallId) -> Result<(), TelephonyError> {
        self.refuse()
    }
    fn reject(&self, _call: CallId, _reason: RejectReason) -> Result<(), TelephonyError> {
        self.refuse()
    }
    fn hang_up(&self, _call: CallId) -> Result<(), TelephonyError> {
        self.refuse()
    }
    fn hold(&self, _call: CallId) -> Result<(), TelephonyError> {
        self.refuse()
    }
    fn resume(&self, _call: CallId) -> Result<(), TelephonyError> {
        self.refuse()
    }
    fn mute(&self, _call: CallId, _muted: bool) -> Result<(), TelephonyError> {
        self.refuse()
    }
    fn send_dtmf(&self, _call: CallId, _digits: &str) -> Result<(), TelephonyError> {
        self.refuse()
    }
    fn transfer(&self, _call: CallId, _target: &str) -> Result<(), TelephonyError> {
        self.refuse()
    }
    fn subscribe(&self) -> broadcast::Receiver<TelephonyEvent> {
        self.events.subscribe()
    }
}
