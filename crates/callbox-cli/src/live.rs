//! Commands that work with the agent's live setup: integrations, secrets, sign-in, simulated
//! calls and the outbox. They share `--data-dir` (the SQLite store) and `--integrations`
//! (the `NAME.toml` files).

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use callbox_core::call::{Agent, Call, Direction};
use callbox_core::secret::Secret;
use callbox_engine::hooks::{Engine, EngineSettings, now_unix};
use callbox_engine::integrations;
use callbox_engine::outbox::Until;
use callbox_engine::secret_store::{LazyKeychain, SecretKey, SecretStore};
use callbox_engine::setup::{self, Paths};
use callbox_engine::store::HookState;
use callbox_engine::{CredentialState, HttpClient, HttpSettings, SystemBrowser};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

/// Where the live state is.
#[derive(Args, Clone, Debug)]
pub struct Places {
    /// The data directory (SQLite store). Default: the app's data directory.
    #[arg(long = "data-dir", global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The integrations directory (NAME.toml files). Default: the app's config directory.
    #[arg(long = "integrations", global = true, value_name = "DIR")]
    integrations: Option<PathBuf>,
}

impl Places {
    /// The directories these options name (defaults filled in).
    pub fn paths(&self) -> Paths {
        let defaults = Paths::default_dirs();
        Paths {
            data_dir: self.data_dir.clone().unwrap_or(defaults.data_dir),
            integrations_dir: self
                .integrations
                .clone()
                .unwrap_or(defaults.integrations_dir),
        }
    }
}

/// `callbox-cli secret …`
#[derive(Subcommand)]
pub enum SecretCommand {
    /// Stores a secret field of an integration in the keychain; the value is read from
    /// standard input (a trailing newline is dropped).
    Set {
        /// Integration name.
        integration: String,
        /// Secret field name.
        field: String,
    },
    /// Removes a secret field from the keychain.
    Delete {
        /// Integration name.
        integration: String,
        /// Secret field name.
        field: String,
    },
}

/// `callbox-cli integration …`
#[derive(Subcommand)]
pub enum IntegrationCommand {
    /// Lists the configured integrations with their state.
    List,
    /// Test Connection: authenticate and look a number up.
    Test {
        /// Integration name.
        integration: String,
        /// The number to look up.
        #[arg(long, default_value = "+10000000000")]
        number: String,
    },
    /// Fetches the CRM users and associates an extension with the one having this email.
    Associate {
        /// Integration name.
        integration: String,
        /// The extension.
        #[arg(long)]
        extension: String,
        /// The agent's email (matched case-insensitively), or use --user.
        #[arg(long)]
        email: Option<String>,
        /// A CRM user id, to associate by hand.
        #[arg(long)]
        user: Option<String>,
    },
}

/// `callbox-cli auth …`
#[derive(Subcommand)]
pub enum AuthCommand {
    /// Signs in (OAuth2 in the system browser; bearer: fetches a first token).
    Login {
        /// Integration name.
        integration: String,
        /// Seconds to wait for the browser sign-in.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
}

/// `callbox-cli call …`
#[derive(Subcommand)]
pub enum CallCommand {
    /// Feeds one call's events through every enabled integration and waits for the outbox.
    Simulate(SimulateArgs),
}

/// Options of `call simulate`.
#[derive(Args)]
pub struct SimulateArgs {
    /// The calling number (the other party for inbound calls, the agent for outbound).
    #[arg(long)]
    from: String,
    /// The called number (the agent for inbound calls, the other party for outbound).
    #[arg(long)]
    to: String,
    /// inbound or outbound.
    #[arg(long, default_value = "inbound")]
    direction: String,
    /// Answer after S seconds (not answered when absent: a missed call).
    #[arg(long = "answer-after", value_name = "S")]
    answer_after: Option<f64>,
    /// Hang up after S seconds from the start.
    #[arg(long = "hangup-after", value_name = "S", default_value_t = 0.0)]
    hangup_after: f64,
    /// The call's id (default: a new one).
    #[arg(long = "call-id")]
    call_id: Option<String>,
    /// Seconds to wait for the outbox to drain.
    #[arg(long, value_name = "S", default_value_t = 30.0)]
    wait: f64,
    /// The other party's name.
    #[arg(long = "name", default_value = "")]
    name: String,
    /// The agent's email (for user association).
    #[arg(long = "agent-email", default_value = "")]
    agent_email: String,
    /// A recording link.
    #[arg(long = "recording")]
    recording: Option<String>,
}

/// `callbox-cli outbox …`
#[derive(Subcommand)]
pub enum OutboxCommand {
    /// Lists outbox entries (the sync log), newest first.
    List {
        /// Only this call's.
        #[arg(long = "call")]
        call: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Puts failed entries (one, or all) back in the outbox, then sends.
    Retry {
        /// The entry id (all failed entries when absent).
        id: Option<i64>,
        /// Seconds to wait for sending.
        #[arg(long, value_name = "S", default_value_t = 30.0)]
        wait: f64,
    },
    /// Sends what is pending until the outbox is drained or the wait ran out.
    Run {
        /// Seconds to wait.
        #[arg(long, value_name = "S", default_value_t = 30.0)]
        wait: f64,
    },
}

fn keychain() -> anyhow::Result<Arc<dyn SecretStore>> {
    Ok(Arc::new(LazyKeychain::new()))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn engine_settings() -> EngineSettings {
    let mut settings = EngineSettings {
        default_country: setup::locale_country(),
        ..EngineSettings::default()
    };
    // For tests and admins who want fast retries: CALLBOX_BACKOFF_BASE_MS / _CAP_MS.
    if let Some(ms) = std::env::var("CALLBOX_BACKOFF_BASE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        settings.backoff_base = Duration::from_millis(ms);
    }
    if let Some(ms) = std::env::var("CALLBOX_BACKOFF_CAP_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        settings.backoff_cap = Duration::from_millis(ms);
    }
    settings
}

/// `CALLBOX_HTTP_TIMEOUT_MS` shortens the per-request timeout (tests of timeouts).
fn with_env(mut http: HttpSettings) -> HttpSettings {
    if let Some(ms) = std::env::var("CALLBOX_HTTP_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        http.timeout = Duration::from_millis(ms);
    }
    http
}

fn open(places: &Places, http: HttpSettings) -> anyhow::Result<Engine> {
    let http = with_env(http);
    let secrets = keychain()?;
    Ok(setup::open_engine(
        &places.paths(),
        secrets,
        HttpClient::new(http)?,
        engine_settings(),
    )?)
}

fn print_json(v: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn seconds(s: f64) -> Duration {
    Duration::from_secs_f64(if s.is_finite() {
        s.clamp(0.0, 86_400.0)
    } else {
        0.0
    })
}

/// `secret set|delete`.
pub fn secret(places: &Places, command: SecretCommand) -> anyhow::Result<ExitCode> {
    let paths = places.paths();
    let (integration, field) = match &command {
        SecretCommand::Set { integration, field }
        | SecretCommand::Delete { integration, field } => (integration, field),
    };
    // The SIP password of the telephony integration (telephony.toml) is the one secret that
    // belongs to no CRM integration.
    let telephony = integration == callbox_engine::telephony::SECRETS && field == "password";
    let secret_fields = if telephony {
        vec![field.clone()]
    } else {
        integrations::load_named(&paths.integrations_dir, integration)?.secret_fields()
    };
    if !secret_fields.contains(field) {
        anyhow::bail!(
            "{field} is not a secret field of {integration} (its secret fields: {})",
            if secret_fields.is_empty() {
                "none".to_string()
            } else {
                secret_fields.join(", ")
            }
        );
    }
    let store = keychain()?;
    let key = SecretKey::new(integration, field);
    match command {
        SecretCommand::Set { .. } => {
            let mut value = String::new();
            std::io::stdin()
                .read_to_string(&mut value)
                .context("cannot read the secret from standard input")?;
            let value = value
                .strip_suffix('\n')
                .map(|v| v.strip_suffix('\r').unwrap_or(v))
                .unwrap_or(&value);
            if value.is_empty() {
                anyhow::bail!("no secret on standard input");
            }
            store.set(&key, &Secret::new(value))?;
        }
        SecretCommand::Delete { .. } => store.delete(&key)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn state_json(state: &CredentialState) -> Value {
    match state {
        CredentialState::NotRequired => json!({"state": "not_required"}),
        CredentialState::NoToken => json!({"state": "no_token"}),
        CredentialState::Valid { expires_at } => {
            json!({"state": "valid", "expires_at": expires_at})
        }
        CredentialState::NeedsSignIn { reason } => {
            json!({"state": "needs_sign_in", "reason": reason})
        }
        CredentialState::SecretsUnavailable { reason } => {
            json!({"state": "secrets_unavailable", "reason": reason})
        }
    }
}

/// `integration list|test|associate`.
pub fn integration(
    places: &Places,
    command: IntegrationCommand,
    http: HttpSettings,
) -> anyhow::Result<ExitCode> {
    let paths = places.paths();
    let http = with_env(http);
    let client = HttpClient::new(http.clone())?;
    match command {
        IntegrationCommand::List => {
            let secrets = keychain()?;
            let mut list = Vec::new();
            for config in integrations::load_all(&paths.integrations_dir)? {
                let name = config.name.clone();
                let template = config.template_ref.clone();
                let (enabled, order) = (config.enabled, config.order);
                let scenarios: Vec<String> = config
                    .integration
                    .template()
                    .scenarios
                    .iter()
                    .map(|s| s.id.to_string())
                    .collect();
                let auth = config.integration.auth().method.to_string();
                let loaded = setup::load_active(config, &secrets, &client)?;
                let state = loaded.credential.as_ref().map_or_else(
                    || json!({"state": "not_required"}),
                    |c| state_json(&c.state()),
                );
                list.push(json!({
                    "name": name,
                    "template": template,
                    "enabled": enabled,
                    "order": if order == i64::MAX { Value::Null } else { json!(order) },
                    "auth": auth,
                    "credential": state,
                    "missing_secrets": loaded.missing_secrets,
                    "scenarios": scenarios,
                }));
            }
            print_json(&Value::Array(list))?;
            Ok(ExitCode::SUCCESS)
        }
        IntegrationCommand::Test {
            integration,
            number,
        } => {
            let engine = open(places, http)?;
            let rt = runtime()?;
            let lookup = rt.block_on(engine.test_lookup(&integration, &number))?;
            let ok = lookup.errors.is_empty();
            print_json(&json!({
                "integration": integration,
                "ok": ok,
                "number": number,
                "contacts": lookup.matches.iter().map(match_json).collect::<Vec<_>>(),
                "error": lookup.errors.first().map(|(_, e)| e.clone()),
            }))?;
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        IntegrationCommand::Associate {
            integration,
            extension,
            email,
            user,
        } => {
            let engine = open(places, http)?;
            let user_id = match (user, email) {
                (Some(user), _) => {
                    engine.store().associate(&integration, &extension, &user)?;
                    Some(user)
                }
                (None, Some(email)) => {
                    let rt = runtime()?;
                    rt.block_on(engine.refresh_users(&integration))?;
                    engine.associate_by_email(&integration, &extension, &email)?
                }
                (None, None) => anyhow::bail!("give --email (automatic) or --user (by hand)"),
            };
            print_json(
                &json!({"integration": integration, "extension": extension, "user": user_id}),
            )?;
            Ok(if user_id.is_some() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

/// `auth login`.
pub fn auth(places: &Places, command: AuthCommand, http: HttpSettings) -> anyhow::Result<ExitCode> {
    let AuthCommand::Login {
        integration,
        timeout,
    } = command;
    let paths = places.paths();
    let config = integrations::load_named(&paths.integrations_dir, &integration)?;
    let client = HttpClient::new(http)?;
    let loaded = setup::load_active(config, &keychain()?, &client)?;
    let Some(credential) = loaded.credential else {
        anyhow::bail!("{integration} uses no tokens (auth none or basic): nothing to sign in to");
    };
    let rt = runtime()?;
    eprintln!("callbox-cli: signing in to {integration} in your browser…");
    rt.block_on(credential.login(
        &SystemBrowser,
        Duration::from_secs(timeout.max(1)),
        now_unix(),
    ))?;
    print_json(
        &json!({"integration": integration, "credential": state_json(&credential.state())}),
    )?;
    Ok(ExitCode::SUCCESS)
}

fn hook_json(h: &callbox_engine::store::HookEntry) -> Value {
    json!({
        "id": h.id,
        "call_id": h.call_id,
        "integration": h.integration,
        "hook": h.hook,
        "state": h.state.name(),
        "attempts": h.attempts,
        "error": h.last_error,
        "status": h.last_status,
        "outputs": h.outputs,
        "updated_at": h.updated_at,
    })
}

/// `call simulate`.
pub fn call(places: &Places, command: CallCommand, http: HttpSettings) -> anyhow::Result<ExitCode> {
    let CallCommand::Simulate(a) = command;
    let direction = match a.direction.to_ascii_lowercase().as_str() {
        "inbound" | "in" => Direction::Inbound,
        "outbound" | "out" => Direction::Outbound,
        other => anyhow::bail!("--direction {other:?}: use inbound or outbound"),
    };
    let (remote, agent_number) = match direction {
        Direction::Inbound => (a.from.clone(), a.to.clone()),
        Direction::Outbound => (a.to.clone(), a.from.clone()),
    };
    let engine = open(places, http)?;
    let start = now_unix();
    let mut call = Call {
        id: a
            .call_id
            .clone()
            .unwrap_or_else(|| format!("sim-{start}-{}", std::process::id())),
        direction,
        remote_number: remote,
        remote_name: a.name.clone(),
        agent: Agent {
            extension: agent_number,
            email: a.agent_email.clone(),
            ..Agent::default()
        },
        started_at: start,
        answered_at: None,
        ended_at: None,
        disposition: None,
        recording_url: a.recording.clone(),
    };
    let rt = runtime()?;
    let out = rt.block_on(async {
        let lookup = engine.call_started(&call).await?;
        let answer_at = a.answer_after.map(seconds);
        let hangup = seconds(a.hangup_after);
        if let Some(answer) = answer_at.filter(|t| *t <= hangup) {
            tokio::time::sleep(answer).await;
            call.answered_at = Some(start + answer.as_secs() as i64);
            engine.call_answered(&call)?;
            tokio::time::sleep(hangup - answer).await;
        } else {
            tokio::time::sleep(hangup).await;
        }
        call.ended_at = Some(start + hangup.as_secs() as i64);
        engine.call_ended(&call)?;
        engine
            .run_outbox(Until::Drained {
                deadline: tokio::time::Instant::now() + seconds(a.wait),
            })
            .await?;
        anyhow::Ok(lookup)
    })?;
    let hooks = engine.hooks(&call.id)?;
    let all_sent = hooks.iter().all(|h| h.state == HookState::Sent);
    print_json(&json!({
        "call_id": call.id,
        "contacts": out.matches.iter().map(match_json).collect::<Vec<_>>(),
        "needs_choice": out.needs_choice,
        "popup_url": out.popup_url,
        "lookup_errors": out.errors.iter().map(|(i, e)| json!({"integration": i, "error": e})).collect::<Vec<_>>(),
        "hooks": hooks.iter().map(|h| json!({
            "integration": h.integration,
            "hook": h.hook,
            "state": h.state.name(),
            "attempts": h.attempts,
            "error": h.last_error,
        })).collect::<Vec<_>>(),
    }))?;
    Ok(if all_sent {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `outbox list|retry|run`.
pub fn outbox(
    places: &Places,
    command: OutboxCommand,
    http: HttpSettings,
) -> anyhow::Result<ExitCode> {
    match command {
        OutboxCommand::List { call, limit } => {
            let store = callbox_engine::store::Store::open(&places.paths().database())?;
            let entries = store.hooks(call.as_deref(), limit)?;
            print_json(&Value::Array(entries.iter().map(hook_json).collect()))?;
            Ok(ExitCode::SUCCESS)
        }
        OutboxCommand::Retry { id, wait } => {
            let engine = open(places, http)?;
            let n = engine.store().retry_failed(id, now_unix())?;
            if id.is_some() && n == 0 {
                anyhow::bail!("no failed outbox entry with id {}", id.unwrap_or_default());
            }
            drain(&engine, wait)
        }
        OutboxCommand::Run { wait } => {
            let engine = open(places, http)?;
            drain(&engine, wait)
        }
    }
}

fn drain(engine: &Engine, wait: f64) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    rt.block_on(engine.run_outbox(Until::Drained {
        deadline: tokio::time::Instant::now() + seconds(wait),
    }))?;
    let left = callbox_engine::hooks::unfinished(engine)?;
    let recent = engine.store().hooks(None, 1000)?;
    let failed = recent
        .iter()
        .filter(|h| h.state == HookState::Failed)
        .count();
    print_json(&json!({"unfinished": left, "failed": failed}))?;
    Ok(if left == 0 && failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A matched contact as the CLI prints it: its fields, then where and how it matched.
fn match_json(m: &callbox_engine::hooks::ContactMatch) -> Value {
    let mut o = m.fields.clone();
    o.insert("integration".into(), json!(m.integration));
    o.insert("confidence".into(), json!(m.confidence));
    o.insert("reason".into(), json!(m.reason));
    o.insert("source".into(), json!(m.source));
    o.insert("fresh".into(), json!(m.fresh));
    o.insert("placeholder".into(), json!(m.placeholder));
    Value::Object(o)
}
