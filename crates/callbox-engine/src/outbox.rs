//! The outbox worker: sends every committed CRM write, in order per call and integration,
//! with each integration's concurrency limit and pacing; retries transient failures with
//! capped exponential backoff and jitter; honours 429s; refreshes an invalid token once;
//! keeps permanent refusals with the CRM's message. Also the shared `execute` used by lookups.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use callbox_core::run::{HttpResponse, RunError, RunInput, RunOutcome, ScenarioRun};
use callbox_core::template::ScenarioId;
use serde_json::{Map, Value};
use tokio::task::JoinSet;

use crate::hooks::{ActiveIntegration, Inner, now_unix};
use crate::rate_limit::{announced_rate, retry_after};
use crate::store::{HookEntry, StoreError};
use crate::tokens::AuthFailure;

/// Why a scenario run did not complete.
#[derive(Clone, Debug)]
pub enum Failure {
    /// Worth retrying later (5xx, timeout, connection refused, token endpoint down).
    Transient {
        /// What happened (masked).
        message: String,
        /// HTTP status, if any.
        status: Option<u16>,
    },
    /// Rate limited: retry after the wait (not counted as an attempt).
    RateLimited {
        /// How long to wait.
        wait: Duration,
        /// What happened.
        message: String,
    },
    /// The CRM refused it (400/403/404/422…) or the template cannot render it: a person must act.
    Permanent {
        /// What happened (masked), with the CRM's message.
        message: String,
        /// HTTP status, if any.
        status: Option<u16>,
    },
    /// The credentials need a person to sign in again.
    NeedsSignIn {
        /// Why.
        message: String,
    },
}

impl Failure {
    /// The message, for history and CLI output.
    pub fn message(&self) -> &str {
        match self {
            Failure::Transient { message, .. }
            | Failure::RateLimited { message, .. }
            | Failure::Permanent { message, .. }
            | Failure::NeedsSignIn { message } => message,
        }
    }
}

/// What `execute` reports besides the outcome: progress of a multi-request scenario.
pub struct Execution {
    /// The run's result (complete on success, partial on failure).
    pub outcome: RunOutcome,
    /// Requests of the scenario completed, and their outputs (to persist for a retry).
    pub progress: (Vec<String>, Map<String, Value>),
    /// Last HTTP status seen.
    pub status: Option<u16>,
    /// The failure, if the run did not complete.
    pub failure: Option<Failure>,
}

fn is_permanent_status(status: u16) -> bool {
    (400..500).contains(&status) && !matches!(status, 408 | 425 | 429)
}

/// Runs `scenario` of `active` with `input` over HTTP: token variables added, an invalid
/// token refreshed and the request sent once more, every response classified.
pub async fn execute(
    inner: &Inner,
    active: &ActiveIntegration,
    scenario: &ScenarioId,
    mut input: RunInput,
) -> Execution {
    let now = now_unix();
    let mut token_vars = match active.tokens.variables(now).await {
        Ok(v) => v,
        Err(e) => return failed(&active.current_masker(), e),
    };
    input.fields.extend(token_vars.clone());
    let mut run = match ScenarioRun::new(&active.config.integration, scenario, input) {
        Ok(r) => r,
        Err(e) => {
            return Execution {
                outcome: RunOutcome::default(),
                progress: (Vec::new(), Map::new()),
                status: None,
                failure: Some(Failure::Permanent {
                    message: active.current_masker().mask(&e.to_string()),
                    status: None,
                }),
            };
        }
    };
    let mut last_status = None;
    let mut refreshed = false;
    let failure = loop {
        let mut request = match run.next_request() {
            Ok(Some(r)) => r,
            Ok(None) => match run.finish() {
                Ok(()) => break None,
                Err(e) => break Some(permanent(&active.current_masker(), &e)),
            },
            Err(e) => break Some(permanent(&active.current_masker(), &e)),
        };
        let response = loop {
            active.strip_foreign_credentials(&mut request);
            let wait = active.pacer.reserve();
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            let response = match inner.http.send(&request).await {
                Ok(r) => r,
                Err(e) => {
                    let name = run
                        .outcome()
                        .requests
                        .last()
                        .map(|r| r.name.clone())
                        .unwrap_or_default();
                    break Err(Failure::Transient {
                        message: active
                            .current_masker()
                            .mask(&format!("request {name}: {e}")),
                        status: None,
                    });
                }
            };
            last_status = Some(response.status);
            if let Some(rate) = announced_rate(&response.headers) {
                active.pacer.learn(rate);
            }
            if !refreshed
                && active
                    .tokens
                    .is_token_invalid(response.status, &response.body)
            {
                refreshed = true;
                match active.tokens.refresh(token_vars.clone(), now_unix()).await {
                    Ok(vars) => {
                        token_vars = vars.clone();
                        match run.rebuild_pending(vars) {
                            Ok(r) => {
                                request = r;
                                continue;
                            }
                            Err(e) => break Err(permanent(&active.current_masker(), &e)),
                        }
                    }
                    Err(e) => break Err(auth_failure(&active.current_masker(), e)),
                }
            }
            break Ok(response);
        };
        let response = match response {
            Ok(r) => r,
            Err(f) => break Some(f),
        };
        if let Some(f) = classify(active, &response, &run) {
            break Some(f);
        }
        if let Err(e) = run.handle_response(&response) {
            break Some(permanent(&active.current_masker(), &e));
        }
    };
    let progress = run.progress();
    Execution {
        outcome: run.into_outcome(),
        progress,
        status: last_status,
        failure,
    }
}

fn classify(
    active: &ActiveIntegration,
    response: &HttpResponse,
    run: &ScenarioRun<'_>,
) -> Option<Failure> {
    let status = response.status;
    if (200..300).contains(&status) {
        return None;
    }
    let name = run
        .outcome()
        .requests
        .last()
        .map(|r| r.name.clone())
        .unwrap_or_default();
    let crm = callbox_core::run::crm_error_message(&response.body);
    let message = active.current_masker().mask(&format!(
        "request {name} failed: HTTP {status}{}",
        if crm.is_empty() {
            String::new()
        } else {
            format!(": {crm}")
        }
    ));
    if status == 429 {
        let wait = retry_after(&response.headers, now_unix()).unwrap_or(Duration::from_secs(5));
        active
            .pacer
            .throttled(wait, announced_rate(&response.headers));
        return Some(Failure::RateLimited { wait, message });
    }
    if active.tokens.is_token_invalid(status, &response.body) {
        return Some(Failure::NeedsSignIn { message });
    }
    if is_permanent_status(status) {
        return Some(Failure::Permanent {
            message,
            status: Some(status),
        });
    }
    Some(Failure::Transient {
        message,
        status: Some(status),
    })
}

fn permanent(masker: &callbox_core::secret::Masker, e: &RunError) -> Failure {
    Failure::Permanent {
        message: masker.mask(&e.to_string()),
        status: None,
    }
}

fn auth_failure(masker: &callbox_core::secret::Masker, e: AuthFailure) -> Failure {
    match e {
        AuthFailure::NeedsSignIn { .. } => Failure::NeedsSignIn {
            message: masker.mask(&e.to_string()),
        },
        AuthFailure::Transient { .. } => Failure::Transient {
            message: masker.mask(&e.to_string()),
            status: None,
        },
    }
}

fn failed(masker: &callbox_core::secret::Masker, e: AuthFailure) -> Execution {
    Execution {
        outcome: RunOutcome::default(),
        progress: (Vec::new(), Map::new()),
        status: None,
        failure: Some(auth_failure(masker, e)),
    }
}

/// Backoff before attempt `attempts + 1`: base·2^(attempts−1), capped, with jitter in
/// [½, 1] of that.
pub fn backoff(attempts: u32, base: Duration, cap: Duration) -> Duration {
    let exp = base.saturating_mul(1u32 << attempts.saturating_sub(1).min(20));
    let d = exp.min(cap);
    let jitter: f64 = rand::random_range(0.5..=1.0);
    d.mul_f64(jitter)
}

/// The CRM created the contact: the cached placeholder takes the CRM's id, and the call it
/// was created on is matched to it (later hooks of the call log to it).
fn adopt_created_contact(
    inner: &Inner,
    entry: &HookEntry,
    outputs: &Map<String, Value>,
    now: i64,
) -> Result<(), StoreError> {
    let Some(id) = outputs
        .get("ContactId")
        .or_else(|| outputs.get("ContactsId"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    else {
        return Ok(());
    };
    // The cache is an optimisation: its failure must not fail a delivered write.
    let _ = inner.contacts.rekey(
        &entry.integration,
        &crate::hooks::created_contact_id(&entry.call_id),
        id,
        now,
    );
    if inner
        .store
        .call_contact(&entry.call_id, &entry.integration)?
        .is_none()
    {
        let mut contact = Map::new();
        contact.insert("ContactsId".into(), Value::String(id.to_string()));
        if let Some(t) = entry.variables.get("ContactSyncType") {
            contact.insert("ContactSyncType".into(), t.clone());
        }
        inner
            .store
            .set_call_contact(&entry.call_id, &entry.integration, &contact)?;
    }
    Ok(())
}

/// Sends one claimed entry and records the result.
async fn deliver(
    inner: Arc<Inner>,
    active: Arc<ActiveIntegration>,
    entry: HookEntry,
) -> Result<(), StoreError> {
    let store = &inner.store;
    let scenario = ScenarioId::parse(&entry.hook);
    let mut vars = entry.variables.clone();
    vars.extend(store.earlier_outputs(&entry.call_id, &entry.integration, entry.id)?);
    let globals = store.globals(&entry.integration)?;
    let only_request = if scenario == ScenarioId::CreateNewContact {
        vars.get("ContactSyncType")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    } else {
        None
    };
    let input = RunInput {
        only_request,
        fields: active.fields.clone(),
        vars,
        globals: globals.clone(),
        completed: entry.completed.clone(),
        earlier: entry.earlier.clone(),
    };
    let execution = execute(&inner, &active, &scenario, input).await;
    let now = now_unix();
    if globals.is_none() && !execution.outcome.globals.is_empty() {
        store.set_globals(&entry.integration, &execution.outcome.globals, now)?;
    }
    let (completed, earlier) = &execution.progress;
    if completed.len() > entry.completed.len() {
        store.save_progress(entry.id, completed, earlier, now)?;
    }
    match execution.failure {
        None => {
            let outputs: Map<String, Value> = execution
                .outcome
                .outputs
                .iter()
                .map(|(k, v)| {
                    let first = match v {
                        Value::Array(a) => {
                            a.first().cloned().unwrap_or(Value::String(String::new()))
                        }
                        other => other.clone(),
                    };
                    (k.clone(), first)
                })
                .collect();
            store.mark_sent(entry.id, &outputs, execution.status, now)?;
            active.signed_in();
            if scenario == ScenarioId::CreateNewContact {
                adopt_created_contact(&inner, &entry, &outputs, now)?;
            }
            if scenario == ScenarioId::SendSms
                && let Some(sms) = entry
                    .variables
                    .get(crate::hooks::SMS_RECORD)
                    .and_then(|v| serde_json::from_value::<callbox_core::call::Sms>(v.clone()).ok())
                && let Err(crate::hooks::EngineError::Store(error)) = inner.log_sent_sms(&sms)
            {
                return Err(error);
            }
        }
        Some(Failure::RateLimited { wait, .. }) => {
            let at = now + i64::try_from(wait.as_secs_f64().ceil() as u64).unwrap_or(3600);
            store.release(entry.id, at, now)?;
        }
        Some(Failure::Transient { message, status }) => {
            let wait = backoff(
                entry.attempts,
                inner.settings.backoff_base,
                inner.settings.backoff_cap,
            );
            let at = now + i64::try_from(wait.as_secs()).unwrap_or(3600).max(1);
            store.mark_retry(entry.id, at, &message, status, now)?;
        }
        Some(Failure::NeedsSignIn { message }) => {
            // Not a stream of failures: the entry waits, the integration stops sending until
            // someone signs in again (then `outbox retry` or the next login wakes it).
            active.needs_sign_in(&message);
            store.mark_retry(
                entry.id,
                now + inner.settings.sign_in_wait.as_secs() as i64,
                &message,
                None,
                now,
            )?;
        }
        Some(Failure::Permanent { message, status }) => {
            store.mark_failed(entry.id, &message, status, now)?;
        }
    }
    Ok(())
}

/// When [`run`] stops.
#[derive(Clone, Copy, Debug)]
pub enum Until {
    /// When nothing is pending or being sent, or at the deadline.
    Drained {
        /// Give up waiting at this instant.
        deadline: tokio::time::Instant,
    },
    /// Never on its own (the app's background worker); stop by dropping the future.
    Forever,
}

/// Runs the outbox worker.
pub async fn run(inner: Arc<Inner>, until: Until) -> Result<(), StoreError> {
    // One sender per store: another process (the app, another CLI run) may be sending; then
    // wait for it to drain the outbox, or for the role to become free.
    let _sender = loop {
        if let Some(lock) = inner.store.try_become_sender(now_unix())? {
            break lock;
        }
        if let Until::Drained { deadline } = until
            && (inner.store.unfinished()? == 0 || tokio::time::Instant::now() >= deadline)
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut tasks: JoinSet<Result<(), StoreError>> = JoinSet::new();
    loop {
        let now = now_unix();
        for active in &inner.integrations {
            if active.blocked() {
                continue;
            }
            let limit = active
                .max_concurrent()
                .saturating_sub(active.in_flight.load(Ordering::SeqCst));
            if limit == 0 {
                continue;
            }
            for entry in inner.store.claim_due(&active.config.name, now, limit)? {
                active.in_flight.fetch_add(1, Ordering::SeqCst);
                let inner2 = inner.clone();
                let active2 = active.clone();
                tasks.spawn(async move {
                    let result = deliver(inner2, active2.clone(), entry).await;
                    active2.in_flight.fetch_sub(1, Ordering::SeqCst);
                    result
                });
            }
        }
        if tasks.is_empty()
            && let Until::Drained { deadline } = until
        {
            let pending_for_active = inner.store.integrations_with_pending()?.iter().any(|n| {
                inner
                    .integrations
                    .iter()
                    .any(|a| &a.config.name == n && !a.blocked())
            });
            if !pending_for_active || tokio::time::Instant::now() >= deadline {
                return Ok(());
            }
        }
        // Wake when a send finishes, something is enqueued, or the next entry is due.
        let mut next_due: Option<i64> = None;
        for active in &inner.integrations {
            if let Some(t) = inner.store.next_due(&active.config.name)? {
                next_due = Some(next_due.map_or(t, |n: i64| n.min(t)));
            }
        }
        let sleep_for = match next_due {
            Some(t) if t <= now => Duration::from_millis(20),
            Some(t) => {
                Duration::from_secs(u64::try_from(t - now).unwrap_or(1)).min(Duration::from_secs(1))
            }
            None => Duration::from_secs(1),
        };
        let deadline_sleep = match until {
            Until::Drained { deadline } => {
                deadline.saturating_duration_since(tokio::time::Instant::now())
            }
            Until::Forever => sleep_for,
        };
        tokio::select! {
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                match done {
                    Ok(result) => result?,
                    Err(e) => return Err(StoreError::Sql(format!("an outbox task stopped: {e}"))),
                }
            }
            _ = inner.wake.notified() => {}
            _ = tokio::time::sleep(sleep_for.min(deadline_sleep.max(Duration::from_millis(20)))) => {}
        }
    }
}
