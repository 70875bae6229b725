//! The agent's desk: what the Callbox window shows and does, without the window.
//!
//! [`Desk`] follows the phone ([`callbox_sip::Telephony`] events), runs the CRM hooks of each
//! call through the engine (lookup when it rings, pre-log at answer, call log at the end),
//! decides when and where the CRM panel opens, and reports every change as a typed
//! [`DeskEvent`]. The desktop shell (`src-tauri`) forwards those to the UI and turns the UI's
//! clicks into [`Desk`] calls; everything here is testable without WebKit.

pub mod configuration;
pub mod desk;
pub mod framing;
pub mod no_phone;
pub mod selection;
pub mod view;

pub use configuration::{
    Configuration, ConfigurationError, ConfigurationView, FieldForm, IntegrationForm, PhoneForm,
};
pub use desk::{Desk, DeskError, DeskSettings, FramingFallback, PopupTrigger};
pub use framing::{AlwaysFrame, Framing, HttpFraming, refusal_in};
pub use no_phone::NoPhone;
pub use selection::phone_number_in;
pub use view::{
    CallPhase, CallView, ContactView, DeskEvent, DeskSnapshot, HookView, PanelRequest, PanelTarget,
    Presence, RecentCall, RegistrationView, SignInNeeded, SmsView,
};
