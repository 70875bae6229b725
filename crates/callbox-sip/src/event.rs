//! What the telephony layer tells the rest of the app: typed call and registration events.

use serde::Serialize;
use std::fmt;

/// Callbox's handle for one call (not the SIP Call-ID).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct CallId(pub u64);

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call-{}", self.0)
    }
}

/// Which way a call goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CallDirection {
    /// The agent dialled.
    Outbound,
    /// Someone called the agent.
    Inbound,
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// It was answered and later hung up by either side.
    Completed,
    /// Inbound, never answered: the caller gave up (CANCEL) or it timed out.
    Missed,
    /// Inbound, and the agent declined it or was busy.
    Rejected,
    /// Outbound, and the far end was busy (486/600).
    Busy,
    /// Outbound, and the far end declined (603) or did not answer (408/480/487 after timeout).
    NoAnswer,
    /// Outbound, and the agent hung up before the far end answered.
    Cancelled,
    /// It was handed to someone else by transfer.
    Transferred,
    /// A network, authentication or routing failure.
    Failed,
}

/// Whether the agent can receive calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RegistrationState {
    /// Not registered and not trying.
    Unregistered,
    /// A REGISTER is on its way.
    Registering,
    /// Registered for this many seconds (refreshed before they run out).
    Registered {
        /// Lifetime the registrar granted.
        expires: u32,
    },
    /// The last attempt failed; another follows after the backoff.
    Failed {
        /// The registrar's status code, when it answered.
        sip_code: Option<u16>,
        /// What went wrong.
        reason: String,
    },
}

/// An event from the telephony layer. Serialised with an `"event"` key, as `callbox-cli sip`
/// prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TelephonyEvent {
    /// Registration succeeded (also after every refresh that changes the state).
    Registered {
        /// Lifetime granted, in seconds.
        expires: u32,
    },
    /// Registration is being attempted.
    Registering,
    /// Registration failed; it is retried with backoff.
    RegistrationFailed {
        /// The registrar's status code, when it answered.
        sip_code: Option<u16>,
        /// What went wrong.
        reason: String,
    },
    /// The binding was removed (on exit or on request).
    Unregistered,
    /// The local address towards the registrar changed (another network, a VPN, the network
    /// lost or back). Registration follows at once; calls in progress stay up while their
    /// address exists.
    NetworkChanged {
        /// The address before, `None` when there was no network.
        previous: Option<String>,
        /// The address now, `None` when there is no network.
        address: Option<String>,
    },
    /// A call arrived and rings here.
    Incoming {
        /// The call.
        call: CallId,
        /// The caller's URI.
        from: String,
        /// The caller's number (user part of the URI).
        number: String,
        /// The caller's display name.
        display_name: Option<String>,
        /// Another call is in progress (call waiting).
        waiting: bool,
    },
    /// An outbound call was sent.
    Dialing {
        /// The call.
        call: CallId,
        /// Who.
        to: String,
    },
    /// The far end rings (180).
    Ringing {
        /// The call.
        call: CallId,
    },
    /// Session progress (183), possibly with early media.
    Progress {
        /// The call.
        call: CallId,
        /// The status code (183, or another 1xx with a body).
        sip_code: u16,
        /// Whether audio from the far end flows before the answer.
        early_media: bool,
    },
    /// The call is up.
    Answered {
        /// The call.
        call: CallId,
        /// The codec agreed.
        codec: String,
    },
    /// The call was put on hold.
    Held {
        /// The call.
        call: CallId,
        /// The far end put it on hold (else the agent did).
        by_remote: bool,
    },
    /// The call was taken off hold.
    Resumed {
        /// The call.
        call: CallId,
        /// The far end resumed it.
        by_remote: bool,
    },
    /// A DTMF digit arrived (RFC 4733, or SIP INFO).
    Dtmf {
        /// The call.
        call: CallId,
        /// The digit.
        digit: char,
    },
    /// A blind transfer was accepted or answered by the transfer target.
    Transfer {
        /// The call.
        call: CallId,
        /// The target.
        target: String,
        /// The status the far end reported (202 accepted, then the target's final status).
        sip_code: u16,
    },
    /// The call ended.
    Ended {
        /// The call.
        call: CallId,
        /// How.
        disposition: Disposition,
        /// The SIP status that ended it (the final response, or 200 for a BYE).
        sip_code: Option<u16>,
        /// Words for the cause.
        reason: String,
        /// Seconds from answer to end (0 when never answered).
        duration_s: f64,
    },
}

impl TelephonyEvent {
    /// The call the event is about, if any.
    pub fn call(&self) -> Option<CallId> {
        match self {
            TelephonyEvent::Incoming { call, .. }
            | TelephonyEvent::Dialing { call, .. }
            | TelephonyEvent::Ringing { call }
            | TelephonyEvent::Progress { call, .. }
            | TelephonyEvent::Answered { call, .. }
            | TelephonyEvent::Held { call, .. }
            | TelephonyEvent::Resumed { call, .. }
            | TelephonyEvent::Dtmf { call, .. }
            | TelephonyEvent::Transfer { call, .. }
            | TelephonyEvent::Ended { call, .. } => Some(*call),
            _ => None,
        }
    }

    /// The registration state this event puts the agent in, if it is a registration event.
    pub fn registration_state(&self) -> Option<RegistrationState> {
        match self {
            TelephonyEvent::Registered { expires } => {
                Some(RegistrationState::Registered { expires: *expires })
            }
            TelephonyEvent::Registering => Some(RegistrationState::Registering),
            TelephonyEvent::RegistrationFailed { sip_code, reason } => {
                Some(RegistrationState::Failed {
                    sip_code: *sip_code,
                    reason: reason.clone(),
                })
            }
            TelephonyEvent::Unregistered => Some(RegistrationState::Unregistered),
            _ => None,
        }
    }
}
