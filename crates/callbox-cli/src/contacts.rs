//! `callbox-cli contacts …`: the contacts cache for admins and tests (import, lookup, dial
//! search, export, rebuild). Output is JSON on standard output.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use callbox_contacts::cache::{CacheLookup, LookupOptions};
use callbox_contacts::import::{self, LOCAL};
use callbox_contacts::{ContactCache, Country, MatchPolicy, NumberRules, PhoneField, normalize};
use callbox_engine::hooks::now_unix;
use callbox_engine::integrations::{self, ContactSettings};
use callbox_engine::setup;
use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};

use crate::live::Places;

/// `callbox-cli contacts …`
#[derive(Subcommand)]
pub enum ContactsCommand {
    /// Import contacts from a JSON array of objects or a CSV file with a header row, keyed by
    /// the template's field names (ContactsId, FirstName, LastName, Company, Email,
    /// BusinessNumber, MobileNumber, …). `-` reads standard input. All or nothing.
    Import {
        /// The file.
        file: PathBuf,
        /// The integration the contacts belong to (default: each record's `integration`
        /// key, else `local`).
        #[arg(long)]
        integration: Option<String>,
        /// The country of numbers written without + (default: the integration's, else the
        /// system locale's).
        #[arg(long)]
        country: Option<String>,
    },
    /// Look a number up in the cache, best match first. Exit 1 when nothing matches.
    Lookup {
        /// The number, as written.
        number: String,
        /// The country of a number written without + (default: the integration's, else the
        /// system locale's).
        #[arg(long)]
        country: Option<String>,
        /// Only this integration's contacts.
        #[arg(long)]
        integration: Option<String>,
        /// Match the last N digits when there is no exact match (0: never). Default: the
        /// integration's setting, else 9.
        #[arg(long)]
        suffix_digits: Option<usize>,
        /// How several matches are ranked. Default: the integration's setting, else ask.
        #[arg(long, value_enum)]
        policy: Option<Policy>,
    },
    /// Dial search: contacts whose name, company or email words start with the query's
    /// words, or whose number starts or ends with the query's digits.
    Search {
        /// What the agent typed.
        query: String,
        /// The country of a national number prefix (default: the integration's, else the
        /// system locale's).
        #[arg(long)]
        country: Option<String>,
        /// Only this integration's contacts.
        #[arg(long)]
        integration: Option<String>,
        /// At most this many results.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Print cached contacts in the format `import` reads.
    Export {
        /// Only this integration's contacts (else every contact, tagged with `integration`).
        #[arg(long)]
        integration: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Json)]
        format: ExportFormat,
    },
    /// Delete the cache and start it empty (when it is damaged). Lookups refill it from the
    /// CRMs; imported phonebooks must be imported again.
    Rebuild,
}

/// Ranking policy (see `MatchPolicy`); spelled as in the `[contacts]` table.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Policy {
    /// Rank and let the agent pick.
    Ask,
    /// Most recently modified first.
    #[value(name = "most_recent", alias = "most-recent")]
    MostRecent,
    /// The first in the CRM's order.
    First,
}

/// Export format.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ExportFormat {
    /// A JSON array of objects.
    Json,
    /// CSV with a header row (the named and phone fields).
    Csv,
}

/// The `[contacts]` settings of a configured integration, if `integration` names one.
fn settings(places: &Places, integration: Option<&str>) -> Option<ContactSettings> {
    let name = integration.filter(|n| *n != LOCAL)?;
    integrations::load_named(&places.paths().integrations_dir, name)
        .ok()
        .map(|c| c.contacts)
}

/// How numbers are read: `--country`, else the integration's country, else the locale's.
fn rules(
    places: &Places,
    flag: Option<&str>,
    integration: Option<&str>,
) -> anyhow::Result<NumberRules> {
    let country: Option<Country> = match flag {
        Some(c) => Some(c.parse()?),
        None => settings(places, integration)
            .and_then(|s| s.country)
            .or_else(setup::locale_country),
    };
    Ok(NumberRules::with_country(country))
}

fn open(places: &Places) -> anyhow::Result<ContactCache> {
    Ok(ContactCache::open(&places.paths().contacts_database())?)
}

/// Runs a `contacts` command.
pub fn run(command: ContactsCommand, places: &Places) -> anyhow::Result<ExitCode> {
    match command {
        ContactsCommand::Import {
            file,
            integration,
            country: flag,
        } => {
            let rules = rules(places, flag.as_deref(), integration.as_deref())?;
            let cache = open(places)?;
            let started = Instant::now();
            let records = import::read_file(&file, integration).map_err(anyhow::Error::msg)?;
            let report = cache.import(records, &rules, now_unix())?;
            let mut out = serde_json::to_value(&report)?;
            if let Value::Object(o) = &mut out {
                o.insert(
                    "seconds".into(),
                    json!((started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0),
                );
                o.insert("total".into(), json!(cache.count(None)?));
            }
            print(&out)?;
            Ok(ExitCode::SUCCESS)
        }
        ContactsCommand::Lookup {
            number,
            country: flag,
            integration,
            suffix_digits,
            policy,
        } => {
            let rules = rules(places, flag.as_deref(), integration.as_deref())?;
            let configured = settings(places, integration.as_deref()).unwrap_or_default();
            let cache = open(places)?;
            let parsed = normalize(&number, &rules);
            let found = cache.lookup(
                &parsed,
                &LookupOptions {
                    integration: integration.as_deref(),
                    suffix_digits: suffix_digits.unwrap_or(configured.suffix_digits),
                    policy: match policy {
                        None => configured.match_policy,
                        Some(Policy::Ask) => MatchPolicy::Ask,
                        Some(Policy::MostRecent) => MatchPolicy::MostRecent,
                        Some(Policy::First) => MatchPolicy::First,
                    },
                    now: now_unix(),
                },
            )?;
            print(&lookup_json(&found))?;
            Ok(if found.matches.is_empty() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        ContactsCommand::Search {
            query,
            country: flag,
            integration,
            limit,
        } => {
            let rules = rules(places, flag.as_deref(), integration.as_deref())?;
            let cache = open(places)?;
            let hits = cache.search(&query, &rules, integration.as_deref(), limit)?;
            let matches: Vec<Value> = hits
                .iter()
                .map(|h| {
                    let mut o = h.contact.fields();
                    o.insert("integration".into(), json!(h.contact.integration));
                    o.insert("reason".into(), json!(h.reason));
                    o.insert("dial".into(), json!(h.dial));
                    Value::Object(o)
                })
                .collect();
            print(&json!({"query": query, "matches": matches}))?;
            Ok(ExitCode::SUCCESS)
        }
        ContactsCommand::Export {
            integration,
            format,
        } => {
            let cache = open(places)?;
            let records = cache.export(integration.as_deref())?;
            match format {
                ExportFormat::Json => {
                    print(&import::to_json(&records, integration.is_none()))?;
                }
                ExportFormat::Csv => {
                    let mut w = csv::Writer::from_writer(std::io::stdout().lock());
                    let mut header =
                        vec!["ContactsId", "FirstName", "LastName", "Company", "Email"];
                    header.extend(PhoneField::TEMPLATE_ORDER.iter().map(|f| f.name()));
                    if integration.is_none() {
                        header.push(import::INTEGRATION_KEY);
                    }
                    w.write_record(&header).context("cannot write CSV")?;
                    for r in &records {
                        let mut row = vec![
                            r.id.as_str(),
                            r.first_name.as_str(),
                            r.last_name.as_str(),
                            r.company.as_str(),
                            r.email.as_str(),
                        ];
                        for f in PhoneField::TEMPLATE_ORDER {
                            row.push(
                                r.numbers
                                    .iter()
                                    .find(|(g, _)| *g == f)
                                    .map_or("", |(_, n)| n.as_str()),
                            );
                        }
                        if integration.is_none() {
                            row.push(r.integration.as_str());
                        }
                        w.write_record(&row).context("cannot write CSV")?;
                    }
                    w.flush().context("cannot write CSV")?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ContactsCommand::Rebuild => {
            let path = places.paths().contacts_database();
            let cache = ContactCache::rebuild(&path)?;
            print(&json!({"rebuilt": path.display().to_string(), "contacts": cache.count(None)?}))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `{"number", "kind", "needs_choice", "matches": [...]}` as `contacts lookup` prints it.
fn lookup_json(found: &CacheLookup) -> Value {
    let matches: Vec<Value> = found
        .matches
        .iter()
        .map(|m| {
            let mut o = m.contact.fields();
            o.insert("integration".into(), json!(m.contact.integration));
            o.insert("confidence".into(), json!(m.confidence));
            o.insert("reason".into(), json!(m.reason()));
            o.insert("matched_field".into(), json!(m.field.map(PhoneField::name)));
            o.insert("fresh".into(), json!(m.fresh));
            Value::Object(o)
        })
        .collect();
    json!({
        "number": found.number.e164,
        "kind": found.number.kind,
        "extension": found.number.extension,
        "needs_choice": found.needs_choice,
        "matches": matches,
    })
}

fn print(v: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}
