//! `callbox-cli`: check, render and run integration templates from the command line, and run
//! and test live integrations (secrets, sign-in, simulated calls, the outbox).
//! Its commands, output and exit codes are a stable contract (see docs/cli.md).

mod contacts;
mod live;
mod sip;

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use callbox_core::gjson;
use callbox_core::gotmpl::Template;
use callbox_core::run::RunInput;
use callbox_core::secret::{Masker, Secret};
use callbox_core::template::{self, AuthType, ScenarioId};
use callbox_engine::{HttpClient, HttpSettings, LocalTimeZone};
use clap::{Parser, Subcommand};
use serde_json::{Map, Value};

/// Integration templates from the command line.
#[derive(Parser)]
#[command(
    name = "callbox-cli",
    version,
    about = "Callbox: check, render and run CRM integration templates"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Integration templates (Yeastar P-Series custom CRM XML).
    Template {
        #[command(subcommand)]
        command: TemplateCommand,
    },
    /// Render a Go template string (Go text/template semantics, Yeastar functions).
    Render {
        /// The template text.
        template: String,
        /// JSON data file, or - for standard input.
        #[arg(long)]
        data: Option<String>,
        /// Adds a string value KEY=VALUE to the data (repeatable).
        #[arg(long = "var", value_name = "KEY=VALUE")]
        vars: Vec<String>,
    },
    /// Secrets of integrations, in the OS keychain.
    Secret {
        #[command(subcommand)]
        command: live::SecretCommand,
        #[command(flatten)]
        places: live::Places,
    },
    /// Configured integrations: list, Test Connection, user association.
    Integration {
        #[command(subcommand)]
        command: live::IntegrationCommand,
        #[command(flatten)]
        places: live::Places,
    },
    /// Sign-in for OAuth2 and bearer-token integrations.
    Auth {
        #[command(subcommand)]
        command: live::AuthCommand,
        #[command(flatten)]
        places: live::Places,
    },
    /// Simulated calls through every enabled integration.
    Call {
        #[command(subcommand)]
        command: live::CallCommand,
        #[command(flatten)]
        places: live::Places,
    },
    /// The outbox of CRM writes (the sync log).
    Outbox {
        #[command(subcommand)]
        command: live::OutboxCommand,
        #[command(flatten)]
        places: live::Places,
    },
    /// The contacts cache: import, lookup, dial search, export, rebuild.
    Contacts {
        #[command(subcommand)]
        command: contacts::ContactsCommand,
        #[command(flatten)]
        places: live::Places,
    },
    /// SIP diagnostics with the built-in softphone: register, call, answer.
    Sip {
        #[command(subcommand)]
        command: sip::SipCommand,
        #[command(flatten)]
        places: live::Places,
    },
    /// Evaluate a GJSON path over a JSON document.
    Path {
        /// The GJSON path.
        path: String,
        /// JSON file, or - (default) for standard input.
        file: Option<String>,
        /// Print the raw JSON of the result instead of its string form.
        #[arg(long)]
        raw: bool,
    },
}

#[derive(Subcommand)]
enum TemplateCommand {
    /// Validate templates: one line per problem, FILE:LINE:COL: error|warning: MESSAGE.
    Check {
        /// Template files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run one scenario of a template over real HTTP, as the app would.
    Run {
        /// The template file.
        file: PathBuf,
        /// Scenario id (SyncContactAuto, CallJournal, …).
        #[arg(long)]
        scenario: String,
        /// Run only this request of the scenario (and its Next chain).
        #[arg(long)]
        request: Option<String>,
        /// A value of the integration page, KEY=VALUE (repeatable).
        #[arg(long = "field", value_name = "KEY=VALUE")]
        fields: Vec<String>,
        /// A call variable, KEY=VALUE (repeatable).
        #[arg(long = "var", value_name = "KEY=VALUE")]
        vars: Vec<String>,
        /// Print the rendered requests instead of sending them.
        #[arg(long)]
        dry_run: bool,
        /// Seconds to wait for each request.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
        /// Largest response accepted, in bytes.
        #[arg(long, default_value_t = 10 * 1024 * 1024)]
        max_response_bytes: usize,
        /// Send requests for origin FROM to origin TO instead (repeatable), e.g.
        /// `https://api.hubapi.com=http://127.0.0.1:8080` to try a template on a fake CRM.
        #[arg(long = "origin-override", value_name = "FROM=TO")]
        origin_overrides: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let result = match cli.command {
        Command::Template {
            command: TemplateCommand::Check { files },
        } => check(&files),
        Command::Template {
            command:
                TemplateCommand::Run {
                    file,
                    scenario,
                    request,
                    fields,
                    vars,
                    dry_run,
                    timeout,
                    max_response_bytes,
                    origin_overrides,
                },
        } => origin_pairs(&origin_overrides).and_then(|origin_overrides| {
            run(RunArgs {
                file,
                scenario,
                request,
                fields,
                vars,
                dry_run,
                settings: HttpSettings {
                    timeout: Duration::from_secs(timeout.max(1)),
                    max_response_bytes,
                    origin_overrides,
                    ..HttpSettings::default()
                },
            })
        }),
        Command::Render {
            template,
            data,
            vars,
        } => render(&template, data.as_deref(), &vars),
        Command::Path { path, file, raw } => path_command(&path, file.as_deref(), raw),
        Command::Secret { command, places } => live::secret(&places, command),
        Command::Integration { command, places } => {
            live::integration(&places, command, HttpSettings::default())
        }
        Command::Auth { command, places } => live::auth(&places, command, HttpSettings::default()),
        Command::Call { command, places } => live::call(&places, command, HttpSettings::default()),
        Command::Outbox { command, places } => {
            live::outbox(&places, command, HttpSettings::default())
        }
        Command::Contacts { command, places } => contacts::run(command, &places),
        Command::Sip { command, places } => sip::run(command, &places),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("callbox-cli: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn read_input(name: Option<&str>) -> anyhow::Result<String> {
    match name {
        None | Some("-") => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("cannot read standard input")?;
            Ok(s)
        }
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("cannot read {path}")),
    }
}

fn key_values(pairs: &[String], what: &str) -> anyhow::Result<Map<String, Value>> {
    let mut map = Map::new();
    for pair in pairs {
        let (k, v) = pair
            .split_once('=')
            .with_context(|| format!("--{what} {pair:?} is not KEY=VALUE"))?;
        map.insert(k.to_string(), Value::String(v.to_string()));
    }
    Ok(map)
}

fn origin_pairs(pairs: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    pairs
        .iter()
        .map(|p| {
            let (from, to) = p
                .split_once('=')
                .with_context(|| format!("--origin-override {p:?} is not FROM=TO"))?;
            for origin in [from, to] {
                callbox_core::request::check_url(origin).map_err(|e| {
                    anyhow::anyhow!("--origin-override: {origin:?} is not an http(s) origin ({e})")
                })?;
            }
            Ok((from.to_string(), to.to_string()))
        })
        .collect()
}

fn check(files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let mut errors = false;
    for file in files {
        let name = file.display().to_string();
        let source = match std::fs::read_to_string(file) {
            Ok(s) => s,
            Err(e) => {
                println!("{name}:1:1: error: cannot read the file: {e}");
                errors = true;
                continue;
            }
        };
        let parsed = template::parse(&source);
        errors |= parsed.has_errors();
        for d in &parsed.diagnostics {
            println!("{}", d.display_with_file(&name));
        }
    }
    Ok(if errors {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn render(text: &str, data: Option<&str>, vars: &[String]) -> anyhow::Result<ExitCode> {
    let mut value = match data {
        Some(source) => {
            let text = read_input(Some(source))?;
            serde_json::from_str::<Value>(&text)
                .with_context(|| format!("--data {source} is not JSON"))?
        }
        None => Value::Null,
    };
    let extra = key_values(vars, "var")?;
    if !extra.is_empty() {
        match &mut value {
            Value::Object(map) => map.extend(extra),
            Value::Null => value = Value::Object(extra),
            _ => anyhow::bail!("--var needs the --data value to be a JSON object"),
        }
    }
    let funcs = callbox_core::functions::yeastar_funcs(Arc::new(LocalTimeZone::system()));
    let template = match Template::parse("render", text, &funcs) {
        Ok(t) => t,
        Err(e) => {
            eprintln!(
                "callbox-cli: template:{}:{}: {}",
                e.line, e.column, e.message
            );
            return Ok(ExitCode::from(1));
        }
    };
    match template.render(&value, &funcs) {
        Ok(out) => {
            print!("{out}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!(
                "callbox-cli: template:{}:{}: {}",
                e.line, e.column, e.message
            );
            Ok(ExitCode::from(1))
        }
    }
}

fn path_command(path: &str, file: Option<&str>, raw: bool) -> anyhow::Result<ExitCode> {
    let json = match read_input(file) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("callbox-cli: {e:#}");
            return Ok(ExitCode::from(2));
        }
    };
    let value = gjson::get(&json, path);
    if !value.exists() {
        return Ok(ExitCode::from(1));
    }
    if raw {
        println!("{}", value.raw());
    } else {
        println!("{}", value.to_str());
    }
    Ok(ExitCode::SUCCESS)
}

struct RunArgs {
    file: PathBuf,
    scenario: String,
    request: Option<String>,
    fields: Vec<String>,
    vars: Vec<String>,
    dry_run: bool,
    settings: HttpSettings,
}

fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let name = args.file.display().to_string();
    let source =
        std::fs::read_to_string(&args.file).with_context(|| format!("cannot read {name}"))?;
    let parsed = template::parse(&source);
    let Some(mut integration) = parsed.integration else {
        for d in parsed
            .diagnostics
            .iter()
            .filter(|d| d.severity == callbox_core::diagnostic::Severity::Error)
        {
            eprintln!("{}", d.display_with_file(&name));
        }
        eprintln!(
            "callbox-cli: {name} has errors; fix them first (callbox-cli template check {name})"
        );
        return Ok(ExitCode::from(1));
    };
    integration.set_time_zone(Arc::new(LocalTimeZone::system()));
    integration.set_source_name(&name);
    let scenario = ScenarioId::parse(&args.scenario);
    if integration.template().scenario(&scenario).is_none() {
        anyhow::bail!(
            "{name} has no scenario {:?} (it has: {})",
            args.scenario,
            integration
                .template()
                .scenarios
                .iter()
                .map(|s| s.id.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let fields = key_values(&args.fields, "field")?;
    let vars = key_values(&args.vars, "var")?;
    let mut masker = Masker::new();
    let secret_names: Vec<String> = integration
        .auth()
        .secret_field_names()
        .map(str::to_string)
        .collect();
    for (k, v) in fields.iter().chain(vars.iter()) {
        if (secret_names.contains(k) || k == "AccessToken")
            && let Some(s) = v.as_str()
        {
            masker.add(&Secret::new(s));
        }
    }
    let mut fields = fields;
    // Token auth: bearer fetches a token from the TokenEndPoint with the given fields; OAuth2
    // needs a token from a sign-in (`--field AccessToken=…`).
    let method = integration.auth().method;
    if matches!(method, AuthType::OAuth2 | AuthType::Bearer)
        && !fields.contains_key("AccessToken")
        && !args.dry_run
    {
        if method == AuthType::OAuth2 {
            anyhow::bail!(
                "{name} uses OAuth2: sign in with `callbox-cli auth login NAME` for a configured integration, or pass --field AccessToken=…"
            );
        }
        let client = HttpClient::new(args.settings.clone())?;
        let credential = callbox_engine::Credential::new(
            "template-run",
            Arc::new(integration.clone()),
            fields.clone(),
            Arc::new(callbox_engine::MemoryStore::new()),
            client,
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        if let Err(e) = runtime.block_on(credential.access_token(callbox_engine::hooks::now_unix()))
        {
            eprintln!("callbox-cli: {}", masker.mask(&e.to_string()));
            return Ok(ExitCode::from(1));
        }
        credential.add_secrets_to(&mut masker);
        fields.extend(credential.token_variables());
    }
    let input = RunInput {
        only_request: args.request.clone(),
        fields,
        vars,
        ..RunInput::default()
    };
    if args.dry_run {
        let requests = match callbox_engine::dry_run(&integration, &scenario, input) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("callbox-cli: {}", masker.mask(&e.to_string()));
                return Ok(ExitCode::from(1));
            }
        };
        let out = DryRunOutput {
            scenario: scenario.to_string(),
            dry_run: true,
            requests: requests
                .iter()
                .map(|r| match &r.request {
                    None => DryRunEntry {
                        scenario: r.scenario.clone(),
                        name: r.name.clone(),
                        skipped: Some(true),
                        method: None,
                        url: None,
                        headers: None,
                        body: None,
                    },
                    Some(http) => DryRunEntry {
                        scenario: r.scenario.clone(),
                        name: r.name.clone(),
                        skipped: None,
                        method: Some(http.method.clone()),
                        url: Some(masker.mask(&http.url)),
                        headers: Some(
                            http.headers
                                .iter()
                                .map(|(n, v)| (n.clone(), masker.mask_header(n, v)))
                                .collect(),
                        ),
                        body: Some(http.body.as_ref().map(|b| masker.mask(b))),
                    },
                })
                .collect(),
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    let client = HttpClient::new(args.settings)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = match runtime.block_on(callbox_engine::run_scenario(
        &integration,
        &scenario,
        input,
        &client,
    )) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("callbox-cli: {}", masker.mask(&e.to_string()));
            return Ok(ExitCode::from(1));
        }
    };
    let outcome = &report.outcome;
    let out = RunOutput {
        scenario: outcome.scenario.clone(),
        requests: outcome
            .requests
            .iter()
            .map(|r| RunRequest {
                name: r.name.clone(),
                scenario: (r.scenario != outcome.scenario).then(|| r.scenario.clone()),
                method: r.method.clone(),
                url: masker.mask(&r.url),
                status: r.status,
                skipped: r.skipped.then_some(true),
            })
            .collect(),
        outputs: outcome
            .outputs
            .iter()
            .map(|(k, v)| (k.clone(), mask_value(&masker, v)))
            .collect(),
        contacts: matches!(
            scenario,
            ScenarioId::SyncContactAuto | ScenarioId::SearchContact
        )
        .then(|| {
            outcome
                .contacts
                .iter()
                .map(|c| {
                    // Fields in the template's order, then the type and the popup URL.
                    let mut names: Vec<&String> = c.fields.keys().collect();
                    names.sort_by_key(|n| field_rank(n));
                    names
                        .into_iter()
                        .map(|n| (n.clone(), mask_value(&masker, &c.fields[n.as_str()])))
                        .collect()
                })
                .collect()
        }),
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    match &report.error {
        None => Ok(ExitCode::SUCCESS),
        Some(e) => {
            eprintln!("callbox-cli: {}", masker.mask(&e.to_string()));
            Ok(ExitCode::from(1))
        }
    }
}

/// Where a contact field goes in output: the template's field order, then the rest.
fn field_rank(name: &str) -> usize {
    callbox_core::template::CONTACT_FIELDS
        .iter()
        .position(|f| *f == name)
        .unwrap_or(match name {
            "ContactSyncType" => 100,
            "ContactUrl" => 101,
            _ => 102,
        })
}

/// A JSON object whose keys keep the order they were pushed in.
struct Ordered<V>(Vec<(String, V)>);

impl<V> FromIterator<(String, V)> for Ordered<V> {
    fn from_iter<I: IntoIterator<Item = (String, V)>>(iter: I) -> Self {
        Ordered(iter.into_iter().collect())
    }
}

impl<V: serde::Serialize> serde::Serialize for Ordered<V> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// `template run` output, fields in the documented order.
#[derive(serde::Serialize)]
struct RunOutput {
    scenario: String,
    requests: Vec<RunRequest>,
    outputs: Ordered<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    contacts: Option<Vec<Ordered<Value>>>,
}

#[derive(serde::Serialize)]
struct RunRequest {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    scenario: Option<String>,
    method: String,
    url: String,
    status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<bool>,
}

/// `template run --dry-run` output.
#[derive(serde::Serialize)]
struct DryRunOutput {
    scenario: String,
    dry_run: bool,
    requests: Vec<DryRunEntry>,
}

#[derive(serde::Serialize)]
struct DryRunEntry {
    scenario: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    headers: Option<Ordered<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<Option<String>>,
}

fn mask_value(masker: &Masker, v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(masker.mask(s)),
        Value::Array(a) => Value::Array(a.iter().map(|x| mask_value(masker, x)).collect()),
        other => other.clone(),
    }
}
