//! A scripted [`Telephony`] for other crates' tests: it records what it was asked and emits the
//! events a test pushes, with the same checks on call state as the real agent.

use crate::event::{CallId, Disposition, RegistrationState, TelephonyEvent};
use crate::telephony::{RejectReason, Telephony, TelephonyError, validate_digits};
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::broadcast;

/// One request the fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `register`.
    Register,
    /// `unregister`.
    Unregister,
    /// `dial(target)`.
    Dial(String),
    /// `answer`.
    Answer(CallId),
    /// `reject`.
    Reject(CallId, RejectReason),
    /// `hang_up`.
    HangUp(CallId),
    /// `hold`.
    Hold(CallId),
    /// `resume`.
    Resume(CallId),
    /// `mute`.
    Mute(CallId, bool),
    /// `send_dtmf`.
    Dtmf(CallId, String),
    /// `transfer`.
    Transfer(CallId, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FakeState {
    Ringing,
    Up,
}

/// The scripted phone.
#[derive(Debug)]
pub struct ScriptedTelephony {
    events: broadcast::Sender<TelephonyEvent>,
    requests: Mutex<Vec<Request>>,
    calls: Mutex<HashMap<CallId, FakeState>>,
    next: Mutex<u64>,
    registration: Mutex<RegistrationState>,
    /// When set, `dial` answers at once (else the test drives the call with [`Self::emit`]).
    pub auto_answer: bool,
}

impl Default for ScriptedTelephony {
    fn default() -> Self {
        Self {
            events: broadcast::channel(256).0,
            requests: Mutex::new(Vec::new()),
            calls: Mutex::new(HashMap::new()),
            next: Mutex::new(1),
            registration: Mutex::new(RegistrationState::Unregistered),
            auto_answer: false,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ScriptedTelephony {
    /// Everything asked so far.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.requests).clone()
    }

    /// Pushes an event as if the network produced it, keeping the call table in step.
    pub fn emit(&self, event: TelephonyEvent) {
        match &event {
            TelephonyEvent::Incoming { call, .. } => {
                lock(&self.calls).insert(*call, FakeState::Ringing);
            }
            TelephonyEvent::Answered { call, .. } => {
                lock(&self.calls).insert(*call, FakeState::Up);
            }
            TelephonyEvent::Ended { call, .. } => {
                lock(&self.calls).remove(call);
            }
            _ => {}
        }
        if let Some(state) = event.registration_state() {
            *lock(&self.registration) = state;
        }
        let _ = self.events.send(event);
    }

    /// A new incoming call from `number`.
    pub fn ring(&self, number: &str) -> CallId {
        let call = self.next_id();
        let waiting = lock(&self.calls).values().any(|s| *s == FakeState::Up);
        self.emit(TelephonyEvent::Incoming {
            call,
            from: format!("sip:{number}@fake"),
            number: number.to_owned(),
            display_name: None,
            waiting,
        });
        call
    }

    fn next_id(&self) -> CallId {
        let mut next = lock(&self.next);
        let id = CallId(*next);
        *next += 1;
        id
    }

    fn record(&self, request: Request) {
        lock(&self.requests).push(request);
    }

    fn state(&self, call: CallId) -> Result<FakeState, TelephonyError> {
        lock(&self.calls)
            .get(&call)
            .copied()
            .ok_or(TelephonyError::UnknownCall(call))
    }

    fn require_up(&self, call: CallId, action: &'static str) -> Result<(), TelephonyError> {
        match self.state(call)? {
            FakeState::Up => Ok(()),
            FakeState::Ringing => Err(TelephonyError::WrongState {
                call,
                state: "ringing",
                action,
            }),
        }
    }

    fn end(&self, call: CallId, disposition: Disposition, sip_code: u16) {
        self.emit(TelephonyEvent::Ended {
            call,
            disposition,
            sip_code: Some(sip_code),
            reason: "scripted".into(),
            duration_s: 0.0,
        });
    }
}

impl Telephony for ScriptedTelephony {
    fn register(&self) -> Result<(), TelephonyError> {
        self.record(Request::Register);
        self.emit(TelephonyEvent::Registered { expires: 300 });
        Ok(())
    }

    fn unregister(&self) -> Result<(), TelephonyError> {
        self.record(Request::Unregister);
        self.emit(TelephonyEvent::Unregistered);
        Ok(())
    }

    fn registration(&self) -> RegistrationState {
        lock(&self.registration).clone()
    }

    fn dial(&self, target: &str) -> Result<CallId, TelephonyError> {
        if target.trim().is_empty() {
            return Err(TelephonyError::InvalidTarget(target.into()));
        }
        self.record(Request::Dial(target.into()));
        let call = self.next_id();
        lock(&self.calls).insert(call, FakeState::Ringing);
        self.emit(TelephonyEvent::Dialing {
            call,
            to: target.into(),
        });
        if self.auto_answer {
            self.emit(TelephonyEvent::Answered {
                call,
                codec: "PCMU".into(),
            });
        }
        Ok(call)
    }

    fn answer(&self, call: CallId) -> Result<(), TelephonyError> {
        if self.state(call)? != FakeState::Ringing {
            return Err(TelephonyError::WrongState {
                call,
                state: "up",
                action: "answer",
            });
        }
        self.record(Request::Answer(call));
        self.emit(TelephonyEvent::Answered {
            call,
            codec: "PCMU".into(),
        });
        Ok(())
    }

    fn reject(&self, call: CallId, reason: RejectReason) -> Result<(), TelephonyError> {
        if self.state(call)? != FakeState::Ringing {
            return Err(TelephonyError::WrongState {
                call,
                state: "up",
                action: "reject",
            });
        }
        self.record(Request::Reject(call, reason));
        let code = if reason == RejectReason::Busy {
            486
        } else {
            603
        };
        self.end(call, Disposition::Rejected, code);
        Ok(())
    }

    fn hang_up(&self, call: CallId) -> Result<(), TelephonyError> {
        let state = self.state(call)?;
        self.record(Request::HangUp(call));
        match state {
            FakeState::Up => self.end(call, Disposition::Completed, 200),
            FakeState::Ringing => self.end(call, Disposition::Cancelled, 487),
        }
        Ok(())
    }

    fn hold(&self, call: CallId) -> Result<(), TelephonyError> {
        self.require_up(call, "hold")?;
        self.record(Request::Hold(call));
        self.emit(TelephonyEvent::Held {
            call,
            by_remote: false,
        });
        Ok(())
    }

    fn resume(&self, call: CallId) -> Result<(), TelephonyError> {
        self.require_up(call, "resume")?;
        self.record(Request::Resume(call));
        self.emit(TelephonyEvent::Resumed {
            call,
            by_remote: false,
        });
        Ok(())
    }

    fn mute(&self, call: CallId, muted: bool) -> Result<(), TelephonyError> {
        self.state(call)?;
        self.record(Request::Mute(call, muted));
        Ok(())
    }

    fn send_dtmf(&self, call: CallId, digits: &str) -> Result<(), TelephonyError> {
        validate_digits(digits)?;
        self.require_up(call, "send DTMF")?;
        self.record(Request::Dtmf(call, digits.into()));
        Ok(())
    }

    fn transfer(&self, call: CallId, target: &str) -> Result<(), TelephonyError> {
        self.require_up(call, "transfer")?;
        self.record(Request::Transfer(call, target.into()));
        self.emit(TelephonyEvent::Transfer {
            call,
            target: target.into(),
            sip_code: 202,
        });
        self.end(call, Disposition::Transferred, 200);
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<TelephonyEvent> {
        self.events.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enforces_call_states_and_records_requests() {
        let phone = ScriptedTelephony::default();
        let mut events = phone.subscribe();
        let call = phone.ring("+14155550100");
        assert!(matches!(
            phone.hold(call),
            Err(TelephonyError::WrongState { .. })
        ));
        phone.answer(call).expect("answer");
        assert_eq!(
            phone.send_dtmf(call, "12x"),
            Err(TelephonyError::InvalidDigit('x'))
        );
        phone.send_dtmf(call, "12#").expect("dtmf");
        phone.hang_up(call).expect("hang up");
        assert_eq!(phone.hang_up(call), Err(TelephonyError::UnknownCall(call)));
        assert_eq!(
            phone.requests(),
            vec![
                Request::Answer(call),
                Request::Dtmf(call, "12#".into()),
                Request::HangUp(call)
            ]
        );
        let kinds: Vec<_> = std::iter::from_fn(|| events.try_recv().ok())
            .map(|e| serde_json::to_value(&e).expect("json")["event"].clone())
            .collect();
        assert_eq!(kinds, vec!["incoming", "answered", "ended"]);
    }
}
