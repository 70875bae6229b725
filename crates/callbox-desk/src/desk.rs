//! [`Desk`]: telephony events in, CRM hooks and window state out.
//!
//! One task reads the telephony events in order and keeps the table of calls in progress; each
//! call's CRM lookup runs in a task of its own, so a slow CRM never holds up ringing, answering
//! or the next call. The outbox worker runs beside it for the whole session, and a watcher
//! reports the state of each call's CRM writes as it changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use callbox_core::call::{Agent, Call, Direction, Disposition as LogDisposition, Sms};
use callbox_engine::hooks::{ContactMatch, Engine, Lookup, NewContact};
use callbox_engine::outbox::Until;
use callbox_engine::store::{HookEntry, HookState};
use callbox_sip::{
    CallId, Disposition, RegistrationState, RejectReason, Telephony, TelephonyError, TelephonyEvent,
};
use serde_json::{Map, Value};
use tokio::sync::broadcast;

use crate::framing::Framing;
use crate::view::{
    CallPhase, CallView, ContactView, DeskEvent, DeskSnapshot, HookView, PanelRequest, PanelTarget,
    Presence, RecentCall, RegistrationView, SignInNeeded, SmsView,
};

/// The longest SMS Callbox sends (10 concatenated parts).
pub const MAX_SMS_CHARS: usize = 1600;

/// When the CRM panel opens on a call (seed 003's trigger events).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum PopupTrigger {
    /// As soon as the call rings (or is dialed) and the contact is found.
    #[default]
    Ringing,
    /// When the call is answered.
    Answered,
    /// When the call ends.
    Ended,
    /// Never on its own (the agent opens it from the call).
    Never,
}

/// What to do with a CRM page that refuses to be framed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum FramingFallback {
    /// A Callbox window of its own.
    #[default]
    Window,
    /// The system browser.
    Browser,
}

/// How the desk behaves.
#[derive(Clone, Debug, Default)]
pub struct DeskSettings {
    /// When the CRM panel opens.
    pub popup: PopupTrigger,
    /// Where a page that refuses framing goes.
    pub framing_fallback: FramingFallback,
    /// The agent (extension or own number, name, email) for the call logs.
    pub agent: Agent,
    /// The SIP user shown when registered.
    pub sip_user: String,
    /// Why the agent may not place calls (no mapped number, no Call right), if so.
    pub call_blocked: Option<String>,
    /// No telephony account: why, and what to do.
    pub telephony_missing: Option<String>,
    /// Nothing is configured yet (no telephony account and no integration).
    pub first_run: bool,
}

/// An action could not be done.
#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    /// No call in progress has this id.
    #[error("no call {0} in progress")]
    UnknownCall(String),
    /// The agent may not do this.
    #[error("{0}")]
    NotAllowed(String),
    /// The phone refused.
    #[error(transparent)]
    Telephony(#[from] TelephonyError),
    /// The engine (store, CRM) refused.
    #[error("{0}")]
    Engine(String),
    /// No integration is configured.
    #[error("no integration is configured")]
    NoIntegration,
}

impl DeskError {
    /// A stable name for the UI to match on.
    pub fn kind(&self) -> &'static str {
        match self {
            DeskError::UnknownCall(_) => "unknown_call",
            DeskError::NotAllowed(_) => "not_allowed",
            DeskError::Telephony(_) => "telephony",
            DeskError::Engine(_) => "engine",
            DeskError::NoIntegration => "no_integration",
        }
    }
}

fn engine_error(error: impl std::fmt::Display) -> DeskError {
    DeskError::Engine(error.to_string())
}

/// A call in progress.
struct LiveCall {
    line: CallId,
    view: CallView,
    record: Call,
    lookup_done: bool,
    panel_opened: bool,
    popup_url: Option<String>,
    /// The fields of each match, by index (for choosing another one).
    record_matches: Vec<Map<String, Value>>,
}

#[derive(Default)]
struct Table {
    calls: Vec<LiveCall>,
    missed: u32,
    presence: Presence,
    registration: Option<RegistrationView>,
    panel: Option<PanelRequest>,
    /// Calls whose CRM writes are not all final, with what was last reported.
    watched: HashMap<String, Vec<HookView>>,
}

struct Inner {
    telephony: Arc<dyn Telephony>,
    engine: Option<Engine>,
    framing: Arc<dyn Framing>,
    settings: Mutex<DeskSettings>,
    table: Mutex<Table>,
    events: broadcast::Sender<DeskEvent>,
    runtime: tokio::runtime::Handle,
}

/// The agent's desk: calls in progress, their contacts and CRM writes.
#[derive(Clone)]
pub struct Desk {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Desk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Desk").finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

fn now_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_millis() as f64)
}

impl Desk {
    /// Starts the desk on the current Tokio runtime: follows `telephony`'s events, runs the
    /// outbox of `engine` (when integrations are configured) and reports changes to
    /// [`Desk::subscribe`]rs.
    pub fn start(
        telephony: Arc<dyn Telephony>,
        engine: Option<Engine>,
        framing: Arc<dyn Framing>,
        settings: DeskSettings,
    ) -> Desk {
        let (events, _) = broadcast::channel(512);
        let phone_events = telephony.subscribe();
        let desk = Desk {
            inner: Arc::new(Inner {
                telephony,
                engine,
                framing,
                settings: Mutex::new(settings),
                table: Mutex::new(Table::default()),
                events,
                runtime: tokio::runtime::Handle::current(),
            }),
        };
        tokio::spawn(follow_telephony(desk.clone(), phone_events));
        if let Some(engine) = desk.inner.engine.clone() {
            tokio::spawn(async move {
                if let Err(error) = engine.run_outbox(Until::Forever).await {
                    tracing::error!(%error, "the outbox worker stopped");
                }
            });
            tokio::spawn(watch_hooks(desk.clone()));
        }
        desk
    }

    /// Changes as they happen.
    pub fn subscribe(&self) -> broadcast::Receiver<DeskEvent> {
        self.inner.events.subscribe()
    }

    /// The engine, when integrations are configured.
    pub fn engine(&self) -> Option<&Engine> {
        self.inner.engine.as_ref()
    }

    /// Everything the window shows.
    pub fn snapshot(&self) -> DeskSnapshot {
        let settings = lock(&self.inner.settings).clone();
        let table = lock(&self.inner.table);
        DeskSnapshot {
            registration: table
                .registration
                .clone()
                .unwrap_or_else(|| self.registration_view(&self.inner.telephony.registration())),
            presence: table.presence,
            calls: table.calls.iter().map(|c| c.view.clone()).collect(),
            missed: table.missed,
            panel: table.panel.clone(),
            call_blocked: settings.call_blocked.clone(),
            first_run: settings.first_run,
            sms_senders: self
                .inner
                .engine
                .as_ref()
                .map(Engine::sms_senders)
                .unwrap_or_default(),
            sign_in_needed: self.sign_in_needed(),
        }
    }

    fn sign_in_needed(&self) -> Vec<SignInNeeded> {
        self.inner
            .engine
            .as_ref()
            .map(|engine| {
                engine
                    .sign_in_needed()
                    .into_iter()
                    .map(|(integration, reason)| SignInNeeded {
                        integration,
                        reason,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Signs an integration in again (OAuth2 in the system browser); what waited for it is
    /// sent at once. The outcome arrives as a notice.
    pub fn sign_in(&self, integration: &str) -> Result<(), DeskError> {
        let engine = self.inner.engine.clone().ok_or(DeskError::NoIntegration)?;
        if !engine
            .integrations()
            .iter()
            .any(|a| a.name() == integration)
        {
            return Err(DeskError::NotAllowed(format!(
                "no running integration named {integration}"
            )));
        }
        let desk = self.clone();
        let name = integration.to_owned();
        self.inner.runtime.spawn(async move {
            let outcome = engine
                .sign_in(
                    &name,
                    &callbox_engine::SystemBrowser,
                    Duration::from_secs(300),
                )
                .await;
            desk.notice(match outcome {
                Ok(()) => format!("Signed in to {name}; waiting CRM writes are being sent."),
                Err(error) => format!("Sign-in to {name} failed: {error}"),
            });
        });
        Ok(())
    }

    fn registration_view(&self, state: &RegistrationState) -> RegistrationView {
        let settings = lock(&self.inner.settings);
        if let Some(hint) = &settings.telephony_missing {
            return RegistrationView::NotConfigured { hint: hint.clone() };
        }
        match state {
            RegistrationState::Unregistered => RegistrationView::Unregistered,
            RegistrationState::Registering => RegistrationView::Registering,
            RegistrationState::Registered { .. } => RegistrationView::Registered {
                user: settings.sip_user.clone(),
            },
            RegistrationState::Failed { reason, .. } => RegistrationView::Failed {
                reason: reason.clone(),
            },
        }
    }

    /// Tells the agent something (shown in the window).
    pub fn notice(&self, text: String) {
        self.emit(DeskEvent::Notice { text });
    }

    fn emit(&self, event: DeskEvent) {
        let _ = self.inner.events.send(event);
    }

    fn line(&self, call_id: &str) -> Result<CallId, DeskError> {
        lock(&self.inner.table)
            .calls
            .iter()
            .find(|c| c.view.id == call_id)
            .map(|c| c.line)
            .ok_or_else(|| DeskError::UnknownCall(call_id.to_owned()))
    }

    /// Places a call to a number, `tel:`/`sip:` URI or extension. Returns at once; the call
    /// appears as a [`DeskEvent::Call`].
    pub fn dial(&self, target: &str) -> Result<(), DeskError> {
        if let Some(why) = lock(&self.inner.settings).call_blocked.clone() {
            return Err(DeskError::NotAllowed(why));
        }
        if let Some(hint) = lock(&self.inner.settings).telephony_missing.clone() {
            return Err(DeskError::NotAllowed(hint));
        }
        self.inner.telephony.dial(target)?;
        Ok(())
    }

    /// Answers a ringing call.
    pub fn answer(&self, call_id: &str) -> Result<(), DeskError> {
        Ok(self.inner.telephony.answer(self.line(call_id)?)?)
    }

    /// Declines a ringing call (603; the caller's PBX may try the next agent).
    pub fn decline(&self, call_id: &str) -> Result<(), DeskError> {
        Ok(self
            .inner
            .telephony
            .reject(self.line(call_id)?, RejectReason::Decline)?)
    }

    /// Hangs up (or cancels) a call.
    pub fn hang_up(&self, call_id: &str) -> Result<(), DeskError> {
        Ok(self.inner.telephony.hang_up(self.line(call_id)?)?)
    }

    /// Puts a call on hold, or takes it off.
    pub fn hold(&self, call_id: &str, on: bool) -> Result<(), DeskError> {
        let line = self.line(call_id)?;
        if on {
            self.inner.telephony.hold(line)?;
        } else {
            self.inner.telephony.resume(line)?;
        }
        Ok(())
    }

    /// Mutes or unmutes the microphone on a call.
    pub fn mute(&self, call_id: &str, on: bool) -> Result<(), DeskError> {
        let line = self.line(call_id)?;
        self.inner.telephony.mute(line, on)?;
        self.update(line, |view| view.muted = on);
        Ok(())
    }

    /// Sends DTMF digits.
    pub fn send_dtmf(&self, call_id: &str, digits: &str) -> Result<(), DeskError> {
        Ok(self
            .inner
            .telephony
            .send_dtmf(self.line(call_id)?, digits)?)
    }

    /// Blind-transfers a call.
    pub fn transfer(&self, call_id: &str, target: &str) -> Result<(), DeskError> {
        Ok(self.inner.telephony.transfer(self.line(call_id)?, target)?)
    }

    /// The agent picked match `index` of a call: later hooks use it and the panel shows it.
    pub fn choose_contact(&self, call_id: &str, index: u32) -> Result<(), DeskError> {
        let engine = self.inner.engine.as_ref().ok_or(DeskError::NoIntegration)?;
        let (integration, fields) = {
            let mut table = lock(&self.inner.table);
            let call = table
                .calls
                .iter_mut()
                .find(|c| c.view.id == call_id)
                .ok_or_else(|| DeskError::UnknownCall(call_id.to_owned()))?;
            let chosen = call
                .view
                .matches
                .iter()
                .find(|m| m.index == index)
                .cloned()
                .ok_or_else(|| DeskError::NotAllowed(format!("no match {index}")))?;
            call.view.contact = Some(chosen.clone());
            call.view.needs_choice = false;
            let fields = self.match_fields(call_id, index);
            (chosen.integration, fields)
        };
        let url = engine
            .choose_contact(call_id, &integration, &fields)
            .map_err(engine_error)?;
        if let Some(call) = self.view(call_id) {
            self.emit(DeskEvent::Call { call });
        }
        if let Some(url) = url {
            self.open_panel(call_id.to_owned(), url);
        }
        Ok(())
    }

    fn match_fields(&self, call_id: &str, index: u32) -> Map<String, Value> {
        lock(&self.inner.table)
            .calls
            .iter()
            .find(|c| c.view.id == call_id)
            .and_then(|c| c.record_matches.get(index as usize).cloned())
            .unwrap_or_default()
    }

    fn view(&self, call_id: &str) -> Option<CallView> {
        lock(&self.inner.table)
            .calls
            .iter()
            .find(|c| c.view.id == call_id)
            .map(|c| c.view.clone())
    }

    /// Creates a contact for the other party of a call (in progress or recent) in
    /// `integration`, named as the network named them. The CRM write goes through the outbox.
    pub fn create_contact(&self, call_id: &str, integration: &str) -> Result<(), DeskError> {
        let engine = self.inner.engine.as_ref().ok_or(DeskError::NoIntegration)?;
        let call = self.record(call_id)?;
        engine
            .create_contact(integration, &call, &NewContact::from_call(&call))
            .map_err(engine_error)?;
        self.watch(call_id);
        Ok(())
    }

    /// Creates a ticket for a call in `integration` (through the outbox).
    pub fn create_ticket(&self, call_id: &str, integration: &str) -> Result<(), DeskError> {
        let engine = self.inner.engine.as_ref().ok_or(DeskError::NoIntegration)?;
        let call = self.record(call_id)?;
        engine
            .create_ticket(integration, &call)
            .map_err(engine_error)?;
        self.watch(call_id);
        Ok(())
    }

    fn record(&self, call_id: &str) -> Result<Call, DeskError> {
        if let Some(call) = lock(&self.inner.table)
            .calls
            .iter()
            .find(|c| c.view.id == call_id)
        {
            return Ok(call.record.clone());
        }
        let engine = self.inner.engine.as_ref().ok_or(DeskError::NoIntegration)?;
        engine
            .store()
            .call(call_id)
            .map_err(engine_error)?
            .ok_or_else(|| DeskError::UnknownCall(call_id.to_owned()))
    }

    /// Sends an SMS to `number` through `integration` (the first that can, when `None`).
    /// Returns its id at once; the sending and the CRM note follow as [`DeskEvent::Hooks`].
    pub fn send_sms(
        &self,
        number: &str,
        text: &str,
        integration: Option<&str>,
    ) -> Result<String, DeskError> {
        let engine = self.inner.engine.clone().ok_or(DeskError::NoIntegration)?;
        let senders = engine.sms_senders();
        let sender = match integration {
            Some(name) if senders.iter().any(|s| s == name) => name.to_owned(),
            Some(name) => {
                return Err(DeskError::NotAllowed(format!("{name} cannot send SMS")));
            }
            None => senders
                .first()
                .cloned()
                .ok_or_else(|| DeskError::NotAllowed("no integration can send SMS".into()))?,
        };
        let text = text.trim();
        if text.is_empty() {
            return Err(DeskError::NotAllowed("the message is empty".into()));
        }
        if text.chars().count() > MAX_SMS_CHARS {
            return Err(DeskError::NotAllowed(format!(
                "the message is longer than {MAX_SMS_CHARS} characters"
            )));
        }
        let number = crate::selection::phone_number_in(number)
            .ok_or_else(|| DeskError::NotAllowed(format!("`{number}` is not a phone number")))?;
        let at = now_ms();
        let sms = Sms {
            id: format!("sms-{}-{}", at as u64, std::process::id()),
            direction: Direction::Outbound,
            remote_number: number.clone(),
            text: text.to_owned(),
            agent: lock(&self.inner.settings).agent.clone(),
            at: (at / 1000.0) as i64,
        };
        let view = SmsView {
            id: sms.id.clone(),
            number,
            text: sms.text.clone(),
            integration: sender.clone(),
            at_ms: at,
        };
        self.emit(DeskEvent::Sms { sms: view });
        self.watch(&sms.id);
        let id = sms.id.clone();
        let desk = self.clone();
        self.inner.runtime.spawn(async move {
            if let Err(error) = engine.send_sms(&sender, &sms).await {
                desk.notice(format!(
                    "The SMS to {} was not sent: {error}",
                    sms.remote_number
                ));
            }
        });
        Ok(id)
    }

    /// Sends a failed CRM write again.
    pub fn retry_hook(&self, id: i64) -> Result<(), DeskError> {
        let engine = self.inner.engine.as_ref().ok_or(DeskError::NoIntegration)?;
        let count = engine.retry_failed(Some(id)).map_err(engine_error)?;
        if count == 0 {
            return Err(DeskError::NotAllowed(format!(
                "write {id} is not failed (it may have been sent already)"
            )));
        }
        let entries = engine.store().hooks(None, 500).map_err(engine_error)?;
        if let Some(entry) = entries.iter().find(|e| e.id == id) {
            self.watch(&entry.call_id);
        }
        Ok(())
    }

    /// The latest calls with their CRM writes, newest first.
    pub fn recent(&self, limit: usize) -> Result<Vec<RecentCall>, DeskError> {
        let Some(engine) = self.inner.engine.as_ref() else {
            return Ok(Vec::new());
        };
        let calls = engine.store().recent_calls(limit).map_err(engine_error)?;
        calls
            .into_iter()
            .map(|call| {
                let hooks = engine
                    .hooks(&call.id)
                    .map_err(engine_error)?
                    .iter()
                    .map(hook_view)
                    .collect();
                Ok(RecentCall {
                    call: history_view(&call),
                    hooks,
                })
            })
            .collect()
    }

    /// Sets the agent's availability.
    pub fn set_presence(&self, presence: Presence) {
        let missed = {
            let mut table = lock(&self.inner.table);
            table.presence = presence;
            table.missed
        };
        self.emit(DeskEvent::Presence { presence, missed });
    }

    /// The agent saw the missed calls.
    pub fn clear_missed(&self) {
        let presence = {
            let mut table = lock(&self.inner.table);
            table.missed = 0;
            table.presence
        };
        self.emit(DeskEvent::Presence {
            presence,
            missed: 0,
        });
    }

    /// Changes the settings (from the settings window).
    pub fn set_settings(&self, settings: DeskSettings) {
        *lock(&self.inner.settings) = settings;
    }

    /// The current settings.
    pub fn settings(&self) -> DeskSettings {
        lock(&self.inner.settings).clone()
    }

    fn update(&self, line: CallId, change: impl FnOnce(&mut CallView)) -> Option<CallView> {
        let view = {
            let mut table = lock(&self.inner.table);
            let call = table.calls.iter_mut().find(|c| c.line == line)?;
            change(&mut call.view);
            call.view.clone()
        };
        self.emit(DeskEvent::Call { call: view.clone() });
        Some(view)
    }

    fn watch(&self, call_id: &str) {
        lock(&self.inner.table)
            .watched
            .entry(call_id.to_owned())
            .or_default();
    }

    fn on_event(&self, event: TelephonyEvent) {
        match event {
            TelephonyEvent::Registering
            | TelephonyEvent::Registered { .. }
            | TelephonyEvent::RegistrationFailed { .. }
            | TelephonyEvent::Unregistered => {
                if let Some(state) = event.registration_state() {
                    let registration = self.registration_view(&state);
                    tracing::info!(?registration, "phone registration");
                    lock(&self.inner.table).registration = Some(registration.clone());
                    self.emit(DeskEvent::Registration { registration });
                }
            }
            TelephonyEvent::NetworkChanged { previous, address } => {
                let text = match (previous, address) {
                    (_, None) => "No network: calls cannot be placed or received.".to_owned(),
                    (None, Some(address)) => format!("Network back ({address})."),
                    (Some(before), Some(now)) => {
                        format!("Network changed ({before} → {now}); registering again.")
                    }
                };
                self.emit(DeskEvent::Notice { text });
            }
            TelephonyEvent::Incoming {
                call,
                number,
                display_name,
                waiting,
                ..
            } => {
                if lock(&self.inner.table).presence == Presence::DoNotDisturb {
                    // Still listed (as missed, below) so the agent can call back.
                    let _ = self.inner.telephony.reject(call, RejectReason::Busy);
                }
                self.begin(
                    call,
                    Direction::Inbound,
                    number,
                    display_name,
                    CallPhase::Ringing,
                    waiting,
                );
            }
            TelephonyEvent::Dialing { call, to } => {
                self.begin(
                    call,
                    Direction::Outbound,
                    user_part(&to),
                    None,
                    CallPhase::Dialing,
                    false,
                );
            }
            TelephonyEvent::Ringing { call } | TelephonyEvent::Progress { call, .. } => {
                self.update(call, |v| v.phase = CallPhase::RingingOut);
            }
            TelephonyEvent::Answered { call, .. } => self.answered(call),
            TelephonyEvent::Held { call, by_remote } => {
                self.update(call, |v| {
                    if by_remote {
                        v.held_by_remote = true;
                    } else {
                        v.held = true;
                    }
                });
            }
            TelephonyEvent::Resumed { call, by_remote } => {
                self.update(call, |v| {
                    if by_remote {
                        v.held_by_remote = false;
                    } else {
                        v.held = false;
                    }
                });
            }
            TelephonyEvent::Ended {
                call,
                disposition,
                reason,
                ..
            } => self.ended(call, disposition, reason),
            TelephonyEvent::Dtmf { .. } | TelephonyEvent::Transfer { .. } => {}
        }
    }

    fn begin(
        &self,
        line: CallId,
        direction: Direction,
        number: String,
        network_name: Option<String>,
        phase: CallPhase,
        waiting: bool,
    ) {
        let started = now_ms();
        let agent = lock(&self.inner.settings).agent.clone();
        let id = format!("cb-{}-{}-{}", started as u64, std::process::id(), line.0);
        let record = Call {
            remote_name: network_name.clone().unwrap_or_default(),
            ..Call::starting(
                id.clone(),
                direction,
                number.clone(),
                agent,
                (started / 1000.0) as i64,
            )
        };
        let view = CallView {
            id: id.clone(),
            inbound: direction == Direction::Inbound,
            number,
            network_name,
            phase,
            waiting,
            held: false,
            held_by_remote: false,
            muted: false,
            contact: None,
            matches: Vec::new(),
            needs_choice: false,
            looking_up: self.inner.engine.is_some(),
            lookup_errors: Vec::new(),
            started_at_ms: started,
            answered_at_ms: None,
            ended_at_ms: None,
            disposition: None,
            end_reason: None,
        };
        lock(&self.inner.table).calls.push(LiveCall {
            line,
            view: view.clone(),
            record: record.clone(),
            lookup_done: false,
            panel_opened: false,
            popup_url: None,
            record_matches: Vec::new(),
        });
        self.emit(DeskEvent::Call { call: view });
        if let Some(engine) = self.inner.engine.clone() {
            let desk = self.clone();
            self.inner.runtime.spawn(async move {
                let lookup = engine.call_started(&record).await;
                desk.looked_up(line, lookup);
            });
        }
    }

    fn looked_up(&self, line: CallId, lookup: Result<Lookup, callbox_engine::hooks::EngineError>) {
        let lookup = match lookup {
            Ok(lookup) => lookup,
            Err(error) => Lookup {
                errors: vec![("engine".into(), error.to_string())],
                ..Lookup::default()
            },
        };
        let open = {
            let mut table = lock(&self.inner.table);
            let Some(call) = table.calls.iter_mut().find(|c| c.line == line) else {
                return;
            };
            call.lookup_done = true;
            call.popup_url = lookup.popup_url.clone();
            call.record_matches = lookup.matches.iter().map(|m| m.fields.clone()).collect();
            call.view.matches = lookup
                .matches
                .iter()
                .enumerate()
                .map(|(i, m)| contact_view(i, m))
                .collect();
            call.view.contact = call.view.matches.first().cloned();
            call.view.needs_choice = lookup.needs_choice;
            call.view.looking_up = false;
            call.view.lookup_errors = lookup
                .errors
                .iter()
                .map(|(integration, error)| format!("{integration}: {error}"))
                .collect();
            if let Some(number) = &lookup.number {
                call.view.number.clone_from(number);
            }
            let trigger = lock(&self.inner.settings).popup;
            let due = match trigger {
                PopupTrigger::Ringing => true,
                PopupTrigger::Answered => call.view.phase == CallPhase::Up,
                PopupTrigger::Ended | PopupTrigger::Never => false,
            };
            let view = call.view.clone();
            let open = (due && !call.panel_opened && !lookup.needs_choice)
                .then(|| call.popup_url.clone())
                .flatten();
            if open.is_some() {
                call.panel_opened = true;
            }
            drop(table);
            self.emit(DeskEvent::Call { call: view.clone() });
            open.map(|url| (view.id, url))
        };
        if let Some((call_id, url)) = open {
            self.open_panel(call_id, url);
        }
    }

    fn answered(&self, line: CallId) {
        let answered = now_ms();
        let (record, open) = {
            let mut table = lock(&self.inner.table);
            let Some(call) = table.calls.iter_mut().find(|c| c.line == line) else {
                return;
            };
            call.view.phase = CallPhase::Up;
            call.view.answered_at_ms = Some(answered);
            call.record.answered_at = Some((answered / 1000.0) as i64);
            let trigger = lock(&self.inner.settings).popup;
            let open = (trigger == PopupTrigger::Answered
                && call.lookup_done
                && !call.panel_opened
                && !call.view.needs_choice)
                .then(|| call.popup_url.clone())
                .flatten();
            if open.is_some() {
                call.panel_opened = true;
            }
            let view = call.view.clone();
            drop(table);
            self.emit(DeskEvent::Call { call: view.clone() });
            (
                call_record(&self.inner.table, line),
                open.map(|u| (view.id, u)),
            )
        };
        if let (Some(engine), Some(record)) = (&self.inner.engine, record) {
            if let Err(error) = engine.call_answered(&record) {
                tracing::error!(%error, call = %record.id, "the pre-log could not be queued");
            }
            self.watch(&record.id);
        }
        if let Some((call_id, url)) = open {
            self.open_panel(call_id, url);
        }
    }

    fn ended(&self, line: CallId, disposition: Disposition, reason: String) {
        let ended = now_ms();
        let Some(mut call) = ({
            let mut table = lock(&self.inner.table);
            let position = table.calls.iter().position(|c| c.line == line);
            position.map(|p| table.calls.remove(p))
        }) else {
            return;
        };
        call.view.phase = CallPhase::Ended;
        call.view.ended_at_ms = Some(ended);
        call.view.disposition = Some(disposition_name(disposition).to_owned());
        call.view.end_reason = Some(reason);
        call.record.ended_at = Some((ended / 1000.0) as i64);
        call.record.disposition = Some(log_disposition(disposition, call.record.direction));
        let missed = call.view.inbound && call.view.answered_at_ms.is_none();
        let presence = {
            let mut table = lock(&self.inner.table);
            if missed {
                table.missed += 1;
            }
            (table.presence, table.missed)
        };
        if missed {
            self.emit(DeskEvent::Presence {
                presence: presence.0,
                missed: presence.1,
            });
        }
        self.emit(DeskEvent::CallEnded {
            call: call.view.clone(),
        });
        if let Some(engine) = &self.inner.engine {
            if let Err(error) = engine.call_ended(&call.record) {
                tracing::error!(%error, call = %call.record.id, "the call log could not be queued");
            }
            self.watch(&call.record.id);
        }
        let trigger = lock(&self.inner.settings).popup;
        if trigger == PopupTrigger::Ended
            && !call.panel_opened
            && let Some(url) = call.popup_url.clone()
        {
            self.open_panel(call.view.id.clone(), url);
        }
    }

    /// Opens a page in the CRM panel: embedded when the CRM allows framing, else in a window
    /// or the browser as the settings say.
    pub fn open_panel(&self, call_id: String, url: String) {
        let desk = self.clone();
        self.inner.runtime.spawn(async move {
            let refusal = desk.inner.framing.refusal(&url).await;
            let fallback = lock(&desk.inner.settings).framing_fallback;
            let target = match (&refusal, fallback) {
                (None, _) => PanelTarget::Embedded,
                (Some(_), FramingFallback::Window) => PanelTarget::Window,
                (Some(_), FramingFallback::Browser) => PanelTarget::Browser,
            };
            let panel = PanelRequest {
                call_id,
                url,
                target,
                reason: refusal,
            };
            lock(&desk.inner.table).panel = Some(panel.clone());
            desk.emit(DeskEvent::Panel { panel });
        });
    }
}

fn call_record(table: &Mutex<Table>, line: CallId) -> Option<Call> {
    lock(table)
        .calls
        .iter()
        .find(|c| c.line == line)
        .map(|c| c.record.clone())
}

async fn follow_telephony(desk: Desk, mut events: broadcast::Receiver<TelephonyEvent>) {
    loop {
        match events.recv().await {
            Ok(event) => desk.on_event(event),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "telephony events were dropped");
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Reports the CRM writes of watched calls when they change; a call stops being watched when
/// all its writes are sent (failed ones stay: a retry may follow).
async fn watch_hooks(desk: Desk) {
    let Some(engine) = desk.inner.engine.clone() else {
        return;
    };
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut waiting_for_sign_in: Vec<SignInNeeded> = Vec::new();
    loop {
        tick.tick().await;
        let needed = desk.sign_in_needed();
        if needed != waiting_for_sign_in {
            waiting_for_sign_in.clone_from(&needed);
            desk.emit(DeskEvent::SignIn { needed });
        }
        let watched: Vec<(String, Vec<HookView>)> = lock(&desk.inner.table)
            .watched
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (call_id, before) in watched {
            let hooks: Vec<HookView> = match engine.hooks(&call_id) {
                Ok(entries) => entries.iter().map(hook_view).collect(),
                Err(error) => {
                    tracing::warn!(%error, "reading the outbox");
                    continue;
                }
            };
            if hooks != before {
                desk.emit(DeskEvent::Hooks {
                    call_id: call_id.clone(),
                    hooks: hooks.clone(),
                });
            }
            let done = !hooks.is_empty() && hooks.iter().all(|h| h.state == "sent");
            let mut table = lock(&desk.inner.table);
            let live = table.calls.iter().any(|c| c.view.id == call_id);
            if done && !live {
                table.watched.remove(&call_id);
            } else {
                table.watched.insert(call_id, hooks);
            }
        }
    }
}

fn user_part(uri: &str) -> String {
    let rest = uri
        .strip_prefix("sips:")
        .or_else(|| uri.strip_prefix("sip:"))
        .or_else(|| uri.strip_prefix("tel:"))
        .unwrap_or(uri);
    rest.split(['@', ';']).next().unwrap_or(rest).to_owned()
}

fn text(fields: &Map<String, Value>, name: &str) -> String {
    fields
        .get(name)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
        .to_owned()
}

fn contact_view(index: usize, m: &ContactMatch) -> ContactView {
    let name = format!(
        "{} {}",
        text(&m.fields, "FirstName"),
        text(&m.fields, "LastName")
    )
    .trim()
    .to_owned();
    let url = text(&m.fields, "ContactUrl");
    ContactView {
        integration: m.integration.clone(),
        index: u32::try_from(index).unwrap_or(u32::MAX),
        name,
        company: text(&m.fields, "Company"),
        url: (!url.is_empty()).then_some(url),
        reason: m.reason.clone(),
        confidence: m.confidence,
    }
}

fn hook_view(entry: &HookEntry) -> HookView {
    HookView {
        id: entry.id as f64,
        integration: entry.integration.clone(),
        hook: entry.hook.clone(),
        state: entry.state.name().to_owned(),
        attempts: entry.attempts,
        error: (entry.state != HookState::Sent)
            .then(|| entry.last_error.clone())
            .flatten(),
    }
}

/// A call of the history as the recent-calls list shows it.
fn history_view(call: &Call) -> CallView {
    let disposition = call.effective_disposition();
    CallView {
        id: call.id.clone(),
        inbound: call.direction == Direction::Inbound,
        number: call.remote_number.clone(),
        network_name: (!call.remote_name.is_empty()).then(|| call.remote_name.clone()),
        phase: if call.ended_at.is_some() {
            CallPhase::Ended
        } else if call.answered_at.is_some() {
            CallPhase::Up
        } else if call.direction == Direction::Inbound {
            CallPhase::Ringing
        } else {
            CallPhase::Dialing
        },
        waiting: false,
        held: false,
        held_by_remote: false,
        muted: false,
        contact: None,
        matches: Vec::new(),
        needs_choice: false,
        looking_up: false,
        lookup_errors: Vec::new(),
        started_at_ms: call.started_at as f64 * 1000.0,
        answered_at_ms: call.answered_at.map(|t| t as f64 * 1000.0),
        ended_at_ms: call.ended_at.map(|t| t as f64 * 1000.0),
        disposition: call
            .ended_at
            .map(|_| disposition.as_template_value().to_ascii_lowercase()),
        end_reason: None,
    }
}

fn disposition_name(disposition: Disposition) -> &'static str {
    match disposition {
        Disposition::Completed => "completed",
        Disposition::Missed => "missed",
        Disposition::Rejected => "rejected",
        Disposition::Busy => "busy",
        Disposition::NoAnswer => "no_answer",
        Disposition::Cancelled => "cancelled",
        Disposition::Transferred => "transferred",
        Disposition::Failed => "failed",
    }
}

/// How a call ended, in the call log's terms.
fn log_disposition(disposition: Disposition, direction: Direction) -> LogDisposition {
    match (disposition, direction) {
        (Disposition::Completed | Disposition::Transferred, _) => LogDisposition::Answered,
        (Disposition::Busy, Direction::Outbound) => LogDisposition::Busy,
        (_, Direction::Inbound) => LogDisposition::Missed,
        (_, Direction::Outbound) => LogDisposition::NoAnswer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_other_party_is_the_user_part_of_the_uri() {
        assert_eq!(user_part("sip:1001@127.0.0.1"), "1001");
        assert_eq!(user_part("sip:+14155550100@pbx;user=phone"), "+14155550100");
        assert_eq!(user_part("tel:+14155550100"), "+14155550100");
        assert_eq!(user_part("1001"), "1001");
    }

    #[test]
    fn dispositions_become_the_call_logs() {
        use Direction::{Inbound, Outbound};
        assert_eq!(
            log_disposition(Disposition::Completed, Inbound),
            LogDisposition::Answered
        );
        assert_eq!(
            log_disposition(Disposition::Rejected, Inbound),
            LogDisposition::Missed
        );
        assert_eq!(
            log_disposition(Disposition::Busy, Outbound),
            LogDisposition::Busy
        );
        assert_eq!(
            log_disposition(Disposition::Cancelled, Outbound),
            LogDisposition::NoAnswer
        );
        assert_eq!(
            log_disposition(Disposition::Transferred, Outbound),
            LogDisposition::Answered
        );
    }
}
