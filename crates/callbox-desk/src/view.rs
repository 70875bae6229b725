//! What the window shows: calls, contacts, hook states, registration — plain data sent to the
//! UI as they change ([`DeskEvent`]) and on request ([`DeskSnapshot`]).

use serde::{Deserialize, Serialize};

/// Where a call is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum CallPhase {
    /// Inbound, ringing here.
    Ringing,
    /// Outbound, sent.
    Dialing,
    /// Outbound, the far end rings (or plays early media).
    RingingOut,
    /// Talking.
    Up,
    /// Over.
    Ended,
}

/// The contact a call is about, as the window shows it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ContactView {
    /// The integration it comes from.
    pub integration: String,
    /// Its index among the call's matches (for choosing another one).
    pub index: u32,
    /// Full name (may be empty).
    pub name: String,
    /// Company (may be empty).
    pub company: String,
    /// The CRM page of the contact, if the template gives one.
    pub url: Option<String>,
    /// Why it matched ("mobile matched exactly").
    pub reason: String,
    /// 0.0–1.0.
    pub confidence: f64,
}

/// One call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct CallView {
    /// The call's id: the key of its CRM hooks and of the UI's actions.
    pub id: String,
    /// `true` when the other party called.
    pub inbound: bool,
    /// The other party's number as signalled (E.164 when it can be read so).
    pub number: String,
    /// The name the network gave, if any.
    pub network_name: Option<String>,
    /// Where the call is.
    pub phase: CallPhase,
    /// Rang while another call was in progress.
    pub waiting: bool,
    /// On hold by the agent.
    pub held: bool,
    /// On hold by the far end.
    pub held_by_remote: bool,
    /// Microphone muted.
    pub muted: bool,
    /// The best contact found (or chosen).
    pub contact: Option<ContactView>,
    /// All matches, best first (the agent may pick another).
    pub matches: Vec<ContactView>,
    /// The policy asks the agent to pick among `matches`.
    pub needs_choice: bool,
    /// The lookup is still running.
    pub looking_up: bool,
    /// Integrations whose lookup failed, with why.
    pub lookup_errors: Vec<String>,
    /// Unix milliseconds when it started ringing or dialing.
    pub started_at_ms: f64,
    /// Unix milliseconds when it was answered.
    pub answered_at_ms: Option<f64>,
    /// Unix milliseconds when it ended.
    pub ended_at_ms: Option<f64>,
    /// How it ended (`completed`, `missed`, `busy`, …).
    pub disposition: Option<String>,
    /// Why it ended, in words.
    pub end_reason: Option<String>,
}

/// The state of one CRM write of a call (its sync log line).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct HookView {
    /// The outbox entry (for retry).
    pub id: f64,
    /// The integration.
    pub integration: String,
    /// `PreCallJournal`, `CallJournal`, `SmsNote`, `CreateNewContact`, …
    pub hook: String,
    /// `pending`, `sending`, `sent`, `failed`.
    pub state: String,
    /// Attempts so far.
    pub attempts: u32,
    /// Why it failed or is being retried (masked: no secrets).
    pub error: Option<String>,
}

/// A finished (or current) call with its CRM hooks, for the recent-calls list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct RecentCall {
    /// The call.
    pub call: CallView,
    /// Its CRM writes.
    pub hooks: Vec<HookView>,
}

/// An SMS the agent sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct SmsView {
    /// Its id (the key of its CRM writes).
    pub id: String,
    /// To whom.
    pub number: String,
    /// What.
    pub text: String,
    /// Through which integration.
    pub integration: String,
    /// Unix milliseconds when the agent sent it.
    pub at_ms: f64,
}

/// An integration that waits for the agent to sign in again (its token cannot be refreshed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct SignInNeeded {
    /// The integration.
    pub integration: String,
    /// Why.
    pub reason: String,
}

/// The agent's registration, for the status line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RegistrationView {
    /// No telephony account is configured.
    NotConfigured {
        /// What to do about it.
        hint: String,
    },
    /// Not registered.
    Unregistered,
    /// Registering.
    Registering,
    /// Registered.
    Registered {
        /// The SIP user.
        user: String,
    },
    /// Registration failed; retried with backoff.
    Failed {
        /// Why.
        reason: String,
    },
}

/// The agent's availability (tray).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// Calls ring.
    #[default]
    Available,
    /// Calls ring; the tray says away.
    Away,
    /// Incoming calls are declined busy (and listed as missed).
    DoNotDisturb,
}

/// Where the CRM panel shows a contact's page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum PanelTarget {
    /// In the window's panel (an iframe).
    Embedded,
    /// The CRM refuses to be framed: in a window of its own.
    Window,
    /// The CRM refuses to be framed: in the system browser.
    Browser,
}

/// Open the CRM panel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct PanelRequest {
    /// The call.
    pub call_id: String,
    /// The page.
    pub url: String,
    /// Where.
    pub target: PanelTarget,
    /// Why not embedded, when not.
    pub reason: Option<String>,
}

/// Everything the window needs to draw itself from scratch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct DeskSnapshot {
    /// Registration.
    pub registration: RegistrationView,
    /// Availability.
    pub presence: Presence,
    /// Calls in progress (ringing, dialing, up).
    pub calls: Vec<CallView>,
    /// Missed calls not yet seen.
    pub missed: u32,
    /// The last panel opened, if its call is still the latest.
    pub panel: Option<PanelRequest>,
    /// Why the agent may not place calls, if they may not.
    pub call_blocked: Option<String>,
    /// Nothing is configured yet: the window guides the agent through setup.
    pub first_run: bool,
    /// Integrations that can send SMS (empty: the window offers no SMS).
    pub sms_senders: Vec<String>,
    /// Integrations waiting for a new sign-in.
    pub sign_in_needed: Vec<SignInNeeded>,
}

/// A change the window should show.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeskEvent {
    /// The registration changed.
    Registration {
        /// Now.
        registration: RegistrationView,
    },
    /// A call started or changed.
    Call {
        /// The call as it is now.
        call: CallView,
    },
    /// A call ended (it moves to the recent calls).
    CallEnded {
        /// The call, ended.
        call: CallView,
    },
    /// The CRM panel should show a page.
    Panel {
        /// What and where.
        panel: PanelRequest,
    },
    /// A call's CRM writes changed state.
    Hooks {
        /// The call.
        call_id: String,
        /// Its writes now.
        hooks: Vec<HookView>,
    },
    /// The agent sent an SMS (its writes follow as [`DeskEvent::Hooks`] under its id).
    Sms {
        /// The SMS.
        sms: SmsView,
    },
    /// The integrations waiting for a new sign-in changed (their writes wait meanwhile).
    SignIn {
        /// Which, now (empty: none).
        needed: Vec<SignInNeeded>,
    },
    /// Availability or missed-call count changed.
    Presence {
        /// Availability.
        presence: Presence,
        /// Missed calls not yet seen.
        missed: u32,
    },
    /// Something the agent should know (network changed, an integration needs sign-in).
    Notice {
        /// What happened.
        text: String,
    },
}
