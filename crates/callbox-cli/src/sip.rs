//! `callbox-cli sip`: headless diagnostics of a SIP account with the built-in user agent —
//! register, place a call, answer a call — printing one JSON object per event.

use anyhow::Context as _;
use callbox_sip::{
    Account, CallId, Disposition, GeneratedAudio, RejectReason, SipAgent, Telephony, TelephonyEvent,
};
use clap::{Subcommand, ValueEnum};
use serde_json::json;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::Receiver;
use tokio::time::{Instant, sleep_until, timeout_at};

/// Where a call's audio comes from and goes.
#[derive(clap::Args, Clone, Default)]
pub struct AudioChoice {
    /// Use the OS's audio devices (default: generated audio — the `--tone` or silence as the
    /// microphone, and a capture of what is received, measured in the summary).
    #[arg(long)]
    system_audio: bool,
    /// Microphone by name (`sip devices`); default: the system's.
    #[arg(long, requires = "system_audio")]
    input: Option<String>,
    /// Speaker or headset by name; default: the system's.
    #[arg(long, requires = "system_audio")]
    output: Option<String>,
    /// Device that rings for incoming calls; default: the output.
    #[arg(long, requires = "system_audio")]
    ringing: Option<String>,
}

/// `sip` subcommands.
#[derive(Subcommand)]
pub enum SipCommand {
    /// List the audio devices the OS offers (one JSON object per device).
    Devices,
    /// Register the account, report the outcome, then remove the registration.
    Register {
        /// Account file (JSON or TOML); default: the configured telephony account
        /// (`telephony.toml`, password from the keychain).
        #[arg(long)]
        account: Option<PathBuf>,
        /// Stay registered this many seconds (refreshes and re-registrations are printed).
        #[arg(long, default_value_t = 0.0)]
        stay: f64,
    },
    /// Place a call and report its events.
    Call {
        /// SIP URI or number to call.
        uri: String,
        /// Account file (JSON or TOML); default: the configured telephony account
        /// (`telephony.toml`, password from the keychain).
        #[arg(long)]
        account: Option<PathBuf>,
        /// Send a sine tone of this frequency as the microphone (else silence).
        #[arg(long)]
        tone: Option<f64>,
        /// Hang up this many seconds after the answer (unless the far end does first).
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
        /// Send these DTMF digits (RFC 4733) one second after the answer.
        #[arg(long)]
        dtmf: Option<String>,
        /// Put the call on hold this many seconds after the answer, resume two seconds later.
        #[arg(long)]
        hold_after: Option<f64>,
        /// Hang up this many seconds after dialling if not answered by then (CANCEL).
        #[arg(long)]
        cancel_after: Option<f64>,
        /// Blind-transfer the call to this URI or number one second after the answer.
        #[arg(long)]
        transfer: Option<String>,
        #[command(flatten)]
        audio: AudioChoice,
        /// Register before dialling (needed when the far end calls back or the PBX wants it).
        #[arg(long)]
        register: bool,
    },
    /// Register, wait for a call, answer it (or reject it) and report its events.
    Answer {
        /// Account file (JSON or TOML); default: the configured telephony account
        /// (`telephony.toml`, password from the keychain).
        #[arg(long)]
        account: Option<PathBuf>,
        /// Send a sine tone of this frequency as the microphone (else silence).
        #[arg(long)]
        tone: Option<f64>,
        /// Hang up this many seconds after answering (unless the far end does first).
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
        /// Give up when no call arrives within this many seconds.
        #[arg(long, default_value_t = 30.0)]
        wait: f64,
        /// Reject the call instead of answering it.
        #[arg(long, value_enum)]
        reject: Option<RejectWith>,
        /// Answer this many seconds after it starts ringing.
        #[arg(long, default_value_t = 0.0)]
        answer_after: f64,
        /// Send these DTMF digits one second after answering.
        #[arg(long)]
        dtmf: Option<String>,
        /// Put the call on hold this many seconds after answering, resume two seconds later.
        #[arg(long)]
        hold_after: Option<f64>,
        /// A second call arriving while the first is up is answered after the first ends (call
        /// waiting); without this it is rejected busy.
        #[arg(long)]
        take_waiting: bool,
        #[command(flatten)]
        audio: AudioChoice,
    },
}

/// How `sip answer --reject` turns a call down.
#[derive(Clone, Copy, ValueEnum)]
pub enum RejectWith {
    /// 486 Busy Here.
    Busy,
    /// 603 Decline.
    Decline,
}

/// What was seen, for the summary and the exit code.
#[derive(Default)]
struct Outcome {
    registered: bool,
    answered: usize,
    held: bool,
    resumed: bool,
    dtmf_received: String,
    ended: Vec<(Disposition, Option<u16>, String)>,
    failure: Option<String>,
}

fn print(value: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

fn print_event(event: &TelephonyEvent, outcome: &mut Outcome) {
    if let Ok(value) = serde_json::to_value(event) {
        print(&value);
    }
    match event {
        TelephonyEvent::Registered { .. } => outcome.registered = true,
        TelephonyEvent::Answered { .. } => outcome.answered += 1,
        TelephonyEvent::Held { .. } => outcome.held = true,
        TelephonyEvent::Resumed { .. } => outcome.resumed = true,
        TelephonyEvent::Dtmf { digit, .. } => outcome.dtmf_received.push(*digit),
        TelephonyEvent::Ended {
            disposition,
            sip_code,
            reason,
            ..
        } => {
            outcome
                .ended
                .push((*disposition, *sip_code, reason.clone()));
        }
        TelephonyEvent::RegistrationFailed { reason, .. } => outcome.failure = Some(reason.clone()),
        _ => {}
    }
}

/// Runs a `sip` command.
pub fn run(command: SipCommand, places: &crate::live::Places) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    if let SipCommand::Devices = command {
        for device in callbox_sip::audio::system::list_devices() {
            print(&serde_json::to_value(&device)?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    runtime.block_on(async move {
        let account_path = match &command {
            SipCommand::Register { account, .. }
            | SipCommand::Call { account, .. }
            | SipCommand::Answer { account, .. } => account.clone(),
            SipCommand::Devices => None,
        };
        let (account, password) = match account_path {
            Some(path) => {
                let account = Account::load(&path)?;
                let password = account.password_or_env();
                (account, password)
            }
            None => {
                let paths = places.paths();
                let keychain = callbox_engine::secret_store::LazyKeychain::new();
                callbox_engine::telephony::load_account(&paths, &keychain)?.with_context(|| {
                    format!(
                        "no SIP account: give --account FILE or write {}",
                        callbox_engine::telephony::settings_file(&paths).display()
                    )
                })?
            }
        };
        let (tone, choice) = match &command {
            SipCommand::Call { tone, audio, .. } | SipCommand::Answer { tone, audio, .. } => {
                (*tone, audio.clone())
            }
            SipCommand::Register { .. } | SipCommand::Devices => (None, AudioChoice::default()),
        };
        let generated = GeneratedAudio {
            tone_hz: tone,
            ..Default::default()
        };
        let capture = generated.capture.clone();
        let devices: Arc<dyn callbox_sip::AudioDevices> = if choice.system_audio {
            Arc::new(callbox_sip::audio::system::SystemAudio {
                input: choice.input,
                output: choice.output,
                ringing: choice.ringing,
            })
        } else {
            Arc::new(generated)
        };
        let agent = SipAgent::start(account, password, devices).await?;
        let mut events = agent.subscribe();
        let mut outcome = Outcome::default();
        let succeeded = match command {
            SipCommand::Register { stay, .. } => {
                register(&agent, &mut events, &mut outcome, stay).await
            }
            SipCommand::Devices => true,
            SipCommand::Call {
                uri,
                duration,
                dtmf,
                hold_after,
                cancel_after,
                transfer,
                register: also_register,
                ..
            } => {
                if also_register && !register_first(&agent, &mut events, &mut outcome).await {
                    false
                } else {
                    let plan = Plan {
                        duration,
                        dtmf,
                        hold_after,
                        transfer,
                    };
                    call(&agent, &mut events, &mut outcome, &uri, plan, cancel_after).await
                }
            }
            SipCommand::Answer {
                duration,
                wait,
                reject,
                answer_after,
                dtmf,
                hold_after,
                take_waiting,
                ..
            } => {
                let plan = Plan {
                    duration,
                    dtmf,
                    hold_after,
                    transfer: None,
                };
                let options = AnswerOptions {
                    wait,
                    reject,
                    answer_after,
                    take_waiting,
                };
                answer(&agent, &mut events, &mut outcome, plan, options).await
            }
        };
        agent.shutdown(Duration::from_secs(3)).await;
        while let Ok(event) = events.try_recv() {
            print_event(&event, &mut outcome);
        }
        print(&json!({
            "event": "summary",
            "received_hz": capture.dominant_frequency(),
            "dtmf_received": outcome.dtmf_received,
            "answered": outcome.answered,
            "registered": outcome.registered,
        }));
        if succeeded {
            Ok(ExitCode::SUCCESS)
        } else {
            let cause = outcome
                .ended
                .iter()
                .rev()
                .find(|(d, _, _)| !matches!(d, Disposition::Completed | Disposition::Transferred))
                .map(|(d, code, reason)| match code {
                    Some(code) => format!("{code} {reason} ({d:?})"),
                    None => format!("{reason} ({d:?})"),
                })
                .or(outcome.failure.clone())
                .unwrap_or_else(|| "the call did not do what was asked".into());
            eprintln!("callbox-cli: {cause}");
            Ok(ExitCode::from(1))
        }
    })
}

struct Plan {
    duration: f64,
    dtmf: Option<String>,
    hold_after: Option<f64>,
    transfer: Option<String>,
}

struct AnswerOptions {
    wait: f64,
    reject: Option<RejectWith>,
    answer_after: f64,
    take_waiting: bool,
}

fn seconds(value: f64) -> Duration {
    Duration::from_secs_f64(value.clamp(0.0, 86_400.0))
}

/// Waits for the next event until `deadline`; `None` on timeout.
async fn next(
    events: &mut Receiver<TelephonyEvent>,
    outcome: &mut Outcome,
    deadline: Instant,
) -> Option<TelephonyEvent> {
    loop {
        match timeout_at(deadline, events.recv()).await {
            Ok(Ok(event)) => {
                print_event(&event, outcome);
                return Some(event);
            }
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
            Ok(Err(_)) | Err(_) => return None,
        }
    }
}

async fn register_first(
    agent: &SipAgent,
    events: &mut Receiver<TelephonyEvent>,
    outcome: &mut Outcome,
) -> bool {
    if let Err(error) = agent.register() {
        outcome.failure = Some(error.to_string());
        return false;
    }
    let deadline = Instant::now() + Duration::from_secs(40);
    while let Some(event) = next(events, outcome, deadline).await {
        match event {
            TelephonyEvent::Registered { .. } => return true,
            TelephonyEvent::RegistrationFailed { .. } => return false,
            _ => {}
        }
    }
    outcome
        .failure
        .get_or_insert_with(|| "no answer from the registrar".into());
    false
}

async fn register(
    agent: &SipAgent,
    events: &mut Receiver<TelephonyEvent>,
    outcome: &mut Outcome,
    stay: f64,
) -> bool {
    if !register_first(agent, events, outcome).await {
        return false;
    }
    let until = Instant::now() + seconds(stay);
    while next(events, outcome, until).await.is_some() {}
    let _ = agent.unregister();
    let deadline = Instant::now() + Duration::from_secs(6);
    while let Some(event) = next(events, outcome, deadline).await {
        if matches!(event, TelephonyEvent::Unregistered) {
            break;
        }
    }
    true
}

/// Drives an answered call: DTMF, hold/resume, transfer, then hang up after `duration`.
/// Returns whether everything asked happened and the call ended normally.
async fn drive(
    agent: &SipAgent,
    events: &mut Receiver<TelephonyEvent>,
    outcome: &mut Outcome,
    call: CallId,
    plan: &Plan,
) -> bool {
    let answered_at = Instant::now();
    let mut actions: Vec<(Instant, Action)> = Vec::new();
    if let Some(digits) = &plan.dtmf {
        actions.push((
            answered_at + Duration::from_secs(1),
            Action::Dtmf(digits.clone()),
        ));
    }
    if let Some(after) = plan.hold_after {
        actions.push((answered_at + seconds(after), Action::Hold));
        actions.push((answered_at + seconds(after + 2.0), Action::Resume));
    }
    if let Some(target) = &plan.transfer {
        actions.push((
            answered_at + Duration::from_secs(1),
            Action::Transfer(target.clone()),
        ));
    }
    actions.push((answered_at + seconds(plan.duration), Action::HangUp));
    actions.sort_by_key(|(at, _)| *at);
    let mut actions = actions.into_iter().peekable();
    let mut ok = true;
    let hard_stop = answered_at + seconds(plan.duration) + Duration::from_secs(40);
    loop {
        let wake = actions.peek().map(|(at, _)| *at).unwrap_or(hard_stop);
        tokio::select! {
            _ = sleep_until(wake) => {
                let Some((_, action)) = actions.next() else {
                    outcome.failure = Some("the call did not end".into());
                    return false;
                };
                let result = match action {
                    Action::Dtmf(digits) => agent.send_dtmf(call, &digits),
                    Action::Hold => agent.hold(call),
                    Action::Resume => agent.resume(call),
                    Action::Transfer(target) => agent.transfer(call, &target),
                    Action::HangUp => agent.hang_up(call),
                };
                if let Err(error) = result {
                    // The call may have ended a moment ago; the end event says how.
                    if !matches!(error, callbox_sip::TelephonyError::UnknownCall(_)) {
                        outcome.failure = Some(error.to_string());
                        ok = false;
                    }
                }
            }
            event = events.recv() => {
                let Ok(event) = event else { continue };
                print_event(&event, outcome);
                if let TelephonyEvent::Ended { call: ended, disposition, .. } = &event
                    && *ended == call
                {
                    let remaining: Vec<_> = actions.map(|(_, a)| a).collect();
                    let unfinished = remaining.iter().any(|a| !matches!(a, Action::HangUp));
                    if unfinished && plan.transfer.is_none() {
                        outcome.failure = Some("the far end hung up before everything asked was done".into());
                        return false;
                    }
                    return ok && matches!(disposition, Disposition::Completed | Disposition::Transferred)
                        && (plan.hold_after.is_none() || (outcome.held && outcome.resumed));
                }
            }
        }
    }
}

enum Action {
    Dtmf(String),
    Hold,
    Resume,
    Transfer(String),
    HangUp,
}

async fn call(
    agent: &SipAgent,
    events: &mut Receiver<TelephonyEvent>,
    outcome: &mut Outcome,
    uri: &str,
    plan: Plan,
    cancel_after: Option<f64>,
) -> bool {
    let call = match agent.dial(uri) {
        Ok(call) => call,
        Err(error) => {
            outcome.failure = Some(error.to_string());
            return false;
        }
    };
    let dialled = Instant::now();
    let give_up = dialled + Duration::from_secs(120);
    let cancel_at = cancel_after.map(|after| dialled + seconds(after));
    let mut cancelled = false;
    loop {
        let deadline = match cancel_at {
            Some(at) if !cancelled => at.min(give_up),
            _ => give_up,
        };
        match next(events, outcome, deadline).await {
            None if cancel_at.is_some() && !cancelled => {
                cancelled = true;
                let _ = agent.hang_up(call);
            }
            None => {
                let _ = agent.hang_up(call);
                outcome.failure = Some("no answer within 120 s".into());
                return false;
            }
            Some(TelephonyEvent::Answered { call: answered, .. }) if answered == call => {
                if cancelled {
                    return false;
                }
                return drive(agent, events, outcome, call, &plan).await;
            }
            Some(TelephonyEvent::Ended {
                call: ended,
                disposition,
                ..
            }) if ended == call => {
                return cancelled && disposition == Disposition::Cancelled;
            }
            Some(_) => {}
        }
    }
}

async fn answer(
    agent: &SipAgent,
    events: &mut Receiver<TelephonyEvent>,
    outcome: &mut Outcome,
    plan: Plan,
    options: AnswerOptions,
) -> bool {
    if !register_first(agent, events, outcome).await {
        return false;
    }
    let deadline = Instant::now() + seconds(options.wait);
    let mut waiting_call: Option<CallId> = None;
    let mut all_ok = true;
    let mut handled = 0;
    loop {
        let call = match waiting_call.take() {
            Some(call) => call,
            None => loop {
                match next(events, outcome, deadline).await {
                    None => {
                        if handled == 0 {
                            outcome.failure =
                                Some(format!("no call arrived within {} s", options.wait));
                            return false;
                        }
                        return all_ok;
                    }
                    Some(TelephonyEvent::Incoming { call, .. }) => break call,
                    Some(_) => {}
                }
            },
        };
        handled += 1;
        if let Some(reject) = options.reject {
            let reason = match reject {
                RejectWith::Busy => RejectReason::Busy,
                RejectWith::Decline => RejectReason::Decline,
            };
            return agent.reject(call, reason).is_ok();
        }
        if options.answer_after > 0.0 {
            let ring_until = Instant::now() + seconds(options.answer_after);
            while let Some(event) = next(events, outcome, ring_until).await {
                if let TelephonyEvent::Ended { call: ended, .. } = event
                    && ended == call
                {
                    // The caller gave up (CANCEL): that is what the caller asked for.
                    return true;
                }
            }
        }
        if let Err(error) = agent.answer(call) {
            outcome.failure = Some(error.to_string());
            return false;
        }
        let answer_deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match next(events, outcome, answer_deadline).await {
                Some(TelephonyEvent::Answered { call: up, .. }) if up == call => break,
                Some(TelephonyEvent::Ended { call: ended, .. }) if ended == call => return false,
                Some(TelephonyEvent::Incoming { call: second, .. }) => waiting_call = Some(second),
                Some(_) => {}
                None => return false,
            }
        }
        // Calls arriving during this call are call-waiting calls.
        let (done, second) =
            drive_with_waiting(agent, events, outcome, call, &plan, options.take_waiting).await;
        all_ok &= done;
        match second.or(waiting_call.take()) {
            Some(second) if options.take_waiting => waiting_call = Some(second),
            _ => return all_ok,
        }
    }
}

/// `drive`, but an incoming call during it is remembered (call waiting) or rejected busy.
async fn drive_with_waiting(
    agent: &SipAgent,
    events: &mut Receiver<TelephonyEvent>,
    outcome: &mut Outcome,
    call: CallId,
    plan: &Plan,
    take_waiting: bool,
) -> (bool, Option<CallId>) {
    let mut forwarded = agent.subscribe();
    let ok = drive(agent, events, outcome, call, plan).await;
    let mut second = None;
    while let Ok(event) = forwarded.try_recv() {
        if let TelephonyEvent::Incoming {
            call: other,
            waiting: true,
            ..
        } = event
            && other != call
        {
            if take_waiting {
                second = Some(other);
            } else {
                let _ = agent.reject(other, RejectReason::Busy);
            }
        }
    }
    (ok, second)
}
