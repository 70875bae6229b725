//! Callbox's hooks on call events (seed 001): the API the app and the CLI drive.
//!
//! | event | scenario | hook |
//! |---|---|---|
//! | call started (ringing/dialing) | `SyncContactAuto` → contacts, popup URL | `getDataIframe` |
//! | answered | `PreCallJournal` | `savePreLogCRM` |
//! | ended | `CallJournal` (updates the pre-log) | `saveLogCRM` |
//! | SMS | `SmsNote` | `createSMSNote` |
//! | agent or rule creates a contact / ticket | `CreateNewContact` / `CreateNewTicket` | `handleCreateContact` / `handleCreateTicket` |
//!
//! Lookups run now, in the configured order, against every enabled integration, through the
//! contacts cache (`callbox-contacts`): cache first and the CRM on a miss, or the CRM first and
//! the cache when it fails (`always_query_crm`); unknown numbers are not asked again for a
//! short while; stale contacts are shown and refreshed in the background. Writes go through
//! the outbox: committed to SQLite first, then sent by [`Engine::run_outbox`].

use std::collections::BTreeSet;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use callbox_contacts::cache::{LookupOptions, Origin};
use callbox_contacts::matching::{self, Match};
use callbox_contacts::{
    ContactCache, ContactRecord, Country, NumberKind, NumberRules, PhoneNumber,
};
use callbox_core::call::{Call, Direction, Sms};
use callbox_core::functions::TimeZone;
use callbox_core::request::HttpRequest;
use callbox_core::run::RunInput;
use callbox_core::secret::{Masker, Secret};
use callbox_core::template::ScenarioId;
use serde_json::{Map, Value};

use crate::http::HttpClient;
use crate::integrations::{CreateContacts, IntegrationConfig};
use crate::outbox::{self, Until};
use crate::rate_limit::Pacer;
use crate::store::{CrmUser, HookEntry, Store, StoreError};
use crate::tokens::TokenSource;

/// Seconds since the Unix epoch (the engine's clock; core reads none).
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Engine tuning.
#[derive(Clone, Debug)]
pub struct EngineSettings {
    /// First retry delay of a transient failure.
    pub backoff_base: Duration,
    /// Longest retry delay.
    pub backoff_cap: Duration,
    /// How long an entry waits when its integration needs a new sign-in.
    pub sign_in_wait: Duration,
    /// Numbers with at most this many digits (and no `+`) are internal extensions.
    pub max_extension_digits: usize,
    /// The country of national numbers for integrations that do not set one.
    pub default_country: Option<Country>,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            backoff_base: Duration::from_secs(2),
            backoff_cap: Duration::from_secs(300),
            sign_in_wait: Duration::from_secs(600),
            max_extension_digits: 6,
            default_country: None,
        }
    }
}

/// An enabled integration with its secrets and credentials, ready to send.
pub struct ActiveIntegration {
    /// Its configuration (template, fields, rules).
    pub config: IntegrationConfig,
    /// Field values, secrets included (memory only).
    pub fields: Map<String, Value>,
    /// Hides its secrets in any text shown or stored.
    pub masker: Masker,
    /// Its credentials.
    pub tokens: Arc<dyn TokenSource>,
    /// Hosts its credentials may go to.
    pub hosts: BTreeSet<String>,
    pub(crate) pacer: Pacer,
    pub(crate) in_flight: AtomicUsize,
    sign_in: Mutex<Option<String>>,
}

impl ActiveIntegration {
    /// Prepares an integration: `secrets` are its password-field values (from the keychain).
    pub fn new(
        config: IntegrationConfig,
        secrets: Map<String, Value>,
        tokens: Arc<dyn TokenSource>,
    ) -> Self {
        let mut masker = Masker::new();
        for v in secrets.values() {
            if let Some(s) = v.as_str() {
                masker.add(&Secret::new(s));
            }
        }
        let mut fields = config.fields.clone();
        fields.extend(secrets);
        let hosts = crate::auth::credential_hosts(&config.integration, &fields);
        ActiveIntegration {
            config,
            fields,
            masker,
            tokens,
            hosts,
            pacer: Pacer::default(),
            in_flight: AtomicUsize::new(0),
            sign_in: Mutex::new(None),
        }
    }

    /// The integration's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub(crate) fn max_concurrent(&self) -> usize {
        self.config
            .integration
            .template()
            .info
            .max_concurrent_request
            .max(1) as usize
    }

    /// Why the integration waits for a sign-in, if it does.
    pub fn sign_in_needed(&self) -> Option<String> {
        self.sign_in
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn blocked(&self) -> bool {
        self.sign_in_needed().is_some()
    }

    pub(crate) fn needs_sign_in(&self, why: &str) {
        *self
            .sign_in
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(why.to_string());
    }

    pub(crate) fn signed_in(&self) {
        *self
            .sign_in
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    /// Removes credentials from a request to a host the integration is not configured for
    /// (call data or a redirect could otherwise send them elsewhere).
    pub fn strip_foreign_credentials(&self, request: &mut HttpRequest) {
        let mut masker = self.masker.clone();
        self.tokens.add_secrets_to(&mut masker);
        crate::auth::strip_credentials_if_foreign(request, &self.hosts, &masker);
    }

    /// A masker for this integration's secrets, tokens of the moment included.
    pub fn current_masker(&self) -> Masker {
        let mut masker = self.masker.clone();
        self.tokens.add_secrets_to(&mut masker);
        masker
    }
}

/// Shared engine state (the outbox worker holds it too).
pub struct Inner {
    pub(crate) store: Store,
    pub(crate) integrations: Vec<Arc<ActiveIntegration>>,
    pub(crate) http: HttpClient,
    pub(crate) zone: Arc<dyn TimeZone>,
    pub(crate) settings: EngineSettings,
    pub(crate) wake: tokio::sync::Notify,
    pub(crate) contacts: Arc<ContactCache>,
}

/// An engine error.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The contacts cache failed.
    #[error(transparent)]
    Contacts(#[from] callbox_contacts::CacheError),
    /// No such integration (or it is disabled).
    #[error("no enabled integration named {0}")]
    UnknownIntegration(String),
    /// The integration's template has no such scenario or the feature is off.
    #[error(
        "integration {integration} cannot {what}: its template has no {scenario} scenario (or the feature is off)"
    )]
    Unsupported {
        /// Integration.
        integration: String,
        /// What was asked.
        what: String,
        /// The scenario needed.
        scenario: String,
    },
    /// A request failed (lookups and tests run at once, not through the outbox).
    #[error("{0}")]
    Request(String),
}

/// An inbound call from `number` starting now, for asking a CRM about a number outside any
/// call (Test Connection, refreshing the cache); `purpose` prefixes its id.
fn probe_call(purpose: &str, number: &str) -> Call {
    let now = now_unix();
    Call::starting(
        format!("{purpose}-{now}"),
        Direction::Inbound,
        number,
        callbox_core::call::Agent::default(),
        now,
    )
}

/// Where a match came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchSource {
    /// The CRM, just now.
    Crm,
    /// The contacts cache.
    Cache,
}

/// A contact matched to a call's number.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ContactMatch {
    /// The integration.
    pub integration: String,
    /// The contact's fields under the template's names (`ContactsId`, `ContactUrl`…).
    pub fields: Map<String, Value>,
    /// 0.0–1.0.
    pub confidence: f64,
    /// Why it matched ("mobile matched exactly", "last 9 digits of business number").
    pub reason: String,
    /// CRM or cache.
    pub source: MatchSource,
    /// False for a cached copy past its TTL (it is being refreshed).
    pub fresh: bool,
    /// A contact created from Callbox that the CRM's search does not return yet (its
    /// `ContactsId` is a placeholder, never sent to the CRM).
    pub placeholder: bool,
}

impl ContactMatch {
    fn new(integration: &str, m: &Match, source: MatchSource) -> ContactMatch {
        ContactMatch {
            integration: integration.to_string(),
            fields: m.contact.fields(),
            confidence: m.confidence,
            reason: m.reason(),
            source,
            fresh: m.fresh,
            placeholder: m.is_placeholder(),
        }
    }

    /// A field's text ("" when absent).
    pub fn get(&self, name: &str) -> &str {
        self.fields.get(name).and_then(Value::as_str).unwrap_or("")
    }
}

/// The contact(s) found when a call starts.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Lookup {
    /// The other party's number in E.164, when it has one.
    pub number: Option<String>,
    /// What the number is (`valid`, `extension`, `withheld`…).
    pub kind: Option<NumberKind>,
    /// Matches, by integration order, each integration's best first.
    pub matches: Vec<ContactMatch>,
    /// The agent should pick among the first matching integration's matches (policy `ask`).
    pub needs_choice: bool,
    /// The URL to open in the CRM panel: the best match's `ContactUrl`.
    pub popup_url: Option<String>,
    /// Integrations whose lookup failed, with why (the call goes on without them).
    pub errors: Vec<(String, String)>,
    /// Integrations where a contact will be created automatically (unknown number).
    pub creating: Vec<String>,
}

/// The variable of a `SendSms` entry that holds the SMS itself (for its `SmsNote` once sent).
pub(crate) const SMS_RECORD: &str = "__callbox_sms";

/// The id a contact created from Callbox has in the cache until the CRM's record replaces it.
pub fn created_contact_id(call_id: &str) -> String {
    format!("created:{call_id}")
}

/// The engine: call events in, CRM requests out.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    /// An engine over `store` with the enabled `integrations` (lookup order = list order).
    pub fn new(
        store: Store,
        contacts: ContactCache,
        integrations: Vec<ActiveIntegration>,
        http: HttpClient,
        zone: Arc<dyn TimeZone>,
        settings: EngineSettings,
    ) -> Engine {
        Engine {
            inner: Arc::new(Inner {
                store,
                integrations: integrations.into_iter().map(Arc::new).collect(),
                http,
                zone,
                settings,
                wake: tokio::sync::Notify::new(),
                contacts: Arc::new(contacts),
            }),
        }
    }

    /// The contacts cache.
    pub fn contacts(&self) -> &ContactCache {
        &self.inner.contacts
    }

    /// How `active` reads numbers: its country, else the engine's default.
    pub fn number_rules(&self, active: &ActiveIntegration) -> NumberRules {
        NumberRules {
            country: active
                .config
                .contacts
                .country
                .clone()
                .or_else(|| self.inner.settings.default_country.clone()),
            max_extension_digits: self.inner.settings.max_extension_digits,
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The active integrations, in lookup order.
    pub fn integrations(&self) -> &[Arc<ActiveIntegration>] {
        &self.inner.integrations
    }

    fn integration(&self, name: &str) -> Result<&Arc<ActiveIntegration>, EngineError> {
        self.inner
            .integrations
            .iter()
            .find(|a| a.name() == name)
            .ok_or_else(|| EngineError::UnknownIntegration(name.to_string()))
    }

    fn crm_user(&self, integration: &str, extension: &str) -> Result<Option<String>, EngineError> {
        Ok(self.inner.store.associated_user(integration, extension)?)
    }

    /// `ContactId` and `ContactSyncType` of the contact a call (or SMS) was matched to in an
    /// integration; empty when there is none.
    fn contact_variables(
        &self,
        id: &str,
        integration: &str,
    ) -> Result<Map<String, Value>, EngineError> {
        let contact = self
            .inner
            .store
            .call_contact(id, integration)?
            .unwrap_or_default();
        let get = |k: &str| {
            contact
                .get(k)
                .cloned()
                .unwrap_or(Value::String(String::new()))
        };
        let mut vars = Map::new();
        if !contact.is_empty() {
            vars.insert("ContactId".into(), get("ContactsId"));
            vars.insert("ContactSyncType".into(), get("ContactSyncType"));
        }
        Ok(vars)
    }

    /// The variables of a call hook for one integration: call variables, the agent's CRM
    /// user, and the contact the call was matched to there.
    fn call_variables(
        &self,
        active: &ActiveIntegration,
        call: &Call,
    ) -> Result<Map<String, Value>, EngineError> {
        let crm = self.crm_user(active.name(), &call.agent.extension)?;
        let mut vars = call.variables(self.inner.zone.as_ref(), crm.as_deref());
        vars.extend(self.contact_variables(&call.id, active.name())?);
        Ok(vars)
    }

    /// A call starts ringing or dialing: looks the other party up in every enabled
    /// integration (in order), returns the matches and the popup URL, and queues contact
    /// creation where a rule says so for an unknown outside number.
    pub async fn call_started(&self, call: &Call) -> Result<Lookup, EngineError> {
        let now = now_unix();
        self.inner.store.record_call(call, now)?;
        let mut lookup = Lookup::default();
        let mut outside = false;
        for active in &self.inner.integrations {
            let one = self.lookup_in(active, call).await?;
            if lookup.kind.is_none() {
                lookup.number.clone_from(&one.number);
                lookup.kind = one.kind;
            }
            outside |= one
                .kind
                .is_some_and(|k| !matches!(k, NumberKind::Extension | NumberKind::Withheld));
            // A placeholder (created from Callbox, not yet in the CRM) has no CRM id to log to.
            if let Some(first) = one.matches.first().filter(|m| !m.placeholder) {
                self.inner
                    .store
                    .set_call_contact(&call.id, active.name(), &first.fields)?;
            }
            if lookup.matches.is_empty() && !one.matches.is_empty() {
                lookup.needs_choice = one.needs_choice;
            }
            if lookup.popup_url.is_none() {
                lookup.popup_url = one.popup_url;
            }
            lookup.matches.extend(one.matches);
            lookup.errors.extend(one.errors);
        }
        if lookup.kind.is_none() {
            // No integration: read the number with the engine's rules.
            let n = callbox_contacts::normalize(
                &call.remote_number,
                &NumberRules {
                    country: self.inner.settings.default_country.clone(),
                    max_extension_digits: self.inner.settings.max_extension_digits,
                },
            );
            outside = !matches!(n.kind, NumberKind::Extension | NumberKind::Withheld);
            lookup.number = n.e164;
            lookup.kind = Some(n.kind);
        }
        if lookup.matches.is_empty() && outside {
            // No CRM knows the number: an imported local phonebook may still name the caller.
            let phonebook = self.lookup_phonebook(&call.remote_number)?;
            lookup.needs_choice = phonebook.needs_choice;
            lookup.matches = phonebook.matches;
        }
        if lookup.matches.is_empty() && lookup.errors.is_empty() && outside {
            for active in &self.inner.integrations {
                let rule = active.config.create_contacts;
                let wanted = match call.direction {
                    Direction::Inbound => {
                        matches!(rule, CreateContacts::Inbound | CreateContacts::Both)
                    }
                    Direction::Outbound => {
                        matches!(rule, CreateContacts::Outbound | CreateContacts::Both)
                    }
                };
                if wanted
                    && self
                        .create_contact(active.name(), call, &NewContact::from_call(call))
                        .is_ok()
                {
                    lookup.creating.push(active.name().to_string());
                }
            }
        }
        Ok(lookup)
    }

    /// The local phonebook (contacts imported without an integration) for `number`, read
    /// with the engine's default country.
    fn lookup_phonebook(&self, number: &str) -> Result<Lookup, EngineError> {
        let rules = NumberRules {
            country: self.inner.settings.default_country.clone(),
            max_extension_digits: self.inner.settings.max_extension_digits,
        };
        let number = callbox_contacts::normalize(number, &rules);
        let policy = callbox_contacts::MatchPolicy::default();
        let found = self.inner.contacts.lookup(
            &number,
            &LookupOptions {
                integration: Some(callbox_contacts::import::LOCAL),
                suffix_digits: callbox_contacts::cache::DEFAULT_SUFFIX_DIGITS,
                policy,
                now: now_unix(),
            },
        )?;
        Ok(finish(
            Lookup::default(),
            callbox_contacts::import::LOCAL,
            &found.matches,
            found.needs_choice,
            MatchSource::Cache,
        ))
    }

    /// Reads again the cached numbers of every integration whose country changed since they
    /// were stored (the app calls this once at start; `setup::open_engine` does).
    pub fn apply_number_rules(&self) -> Result<(), EngineError> {
        for active in &self.inner.integrations {
            let rules = self.number_rules(active);
            self.inner
                .contacts
                .set_number_rules(active.name(), &rules)?;
        }
        Ok(())
    }

    /// The agent picked another of the call's candidates in `integration` (or the policy
    /// `ask` asked them to): later hooks of the call use it. Returns its popup URL.
    pub fn choose_contact(
        &self,
        call_id: &str,
        integration: &str,
        fields: &Map<String, Value>,
    ) -> Result<Option<String>, EngineError> {
        self.integration(integration)?;
        self.inner
            .store
            .set_call_contact(call_id, integration, fields)?;
        Ok(fields
            .get("ContactUrl")
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty())
            .map(str::to_string))
    }

    /// Looks the call's other party up in one integration (Test Connection uses it too):
    /// the cache first or the CRM first, as the integration says.
    pub async fn lookup_in(
        &self,
        active: &ActiveIntegration,
        call: &Call,
    ) -> Result<Lookup, EngineError> {
        let now = now_unix();
        let rules = self.number_rules(active);
        let number = callbox_contacts::normalize(&call.remote_number, &rules);
        let settings = &active.config.contacts;
        let options = LookupOptions {
            integration: Some(active.name()),
            suffix_digits: settings.suffix_digits,
            policy: settings.match_policy,
            now,
        };
        let mut lookup = Lookup {
            number: number.e164.clone(),
            kind: Some(number.kind),
            ..Lookup::default()
        };
        // Internal calls and withheld numbers are never looked up.
        if matches!(number.kind, NumberKind::Extension | NumberKind::Withheld) {
            return Ok(lookup);
        }
        let cached = self.inner.contacts.lookup(&number, &options)?;
        let from_cache = |lookup: Lookup| {
            finish(
                lookup,
                active.name(),
                &cached.matches,
                cached.needs_choice,
                MatchSource::Cache,
            )
        };
        let known = cached.matches.iter().any(|m| !m.is_placeholder());
        if !settings.always_query_crm && known {
            if cached.matches.iter().any(|m| !m.fresh) {
                self.refresh_in_background(active, &number);
            }
            return Ok(from_cache(lookup));
        }
        // Placeholders of contacts created from Callbox answer only when the CRM cannot.
        if self
            .inner
            .contacts
            .is_recent_miss(active.name(), &number, now)?
        {
            return Ok(from_cache(lookup));
        }
        match self.query_crm(active, call, &number, &rules).await? {
            Ok(mut matches) if !matches.is_empty() => {
                matching::rank(&mut matches, settings.match_policy);
                let needs_choice = matching::needs_choice(&matches, settings.match_policy);
                Ok(finish(
                    lookup,
                    active.name(),
                    &matches,
                    needs_choice,
                    MatchSource::Crm,
                ))
            }
            Ok(_) => Ok(from_cache(lookup)),
            Err(why) => {
                lookup.errors.push((active.name().to_string(), why));
                // The CRM is down or refusing: what the cache knows, even stale, still pops.
                Ok(from_cache(lookup))
            }
        }
    }

    /// Test Connection: asks `integration`'s CRM about `number` now, as if it were calling
    /// (authenticating first when needed), whatever the cache holds.
    pub async fn test_lookup(
        &self,
        integration: &str,
        number: &str,
    ) -> Result<Lookup, EngineError> {
        let active = self.integration(integration)?.clone();
        let probe = probe_call("test", number);
        self.lookup_in_crm(&active, &probe).await
    }

    /// Asks `active`'s CRM about the call's number now, whatever the cache holds (Test
    /// Connection): the matches, or the CRM's error in `errors`.
    pub async fn lookup_in_crm(
        &self,
        active: &ActiveIntegration,
        call: &Call,
    ) -> Result<Lookup, EngineError> {
        let rules = self.number_rules(active);
        let number = callbox_contacts::normalize(&call.remote_number, &rules);
        let lookup = Lookup {
            number: number.e164.clone(),
            kind: Some(number.kind),
            ..Lookup::default()
        };
        let policy = active.config.contacts.match_policy;
        Ok(match self.query_crm(active, call, &number, &rules).await? {
            Ok(mut matches) => {
                matching::rank(&mut matches, policy);
                let needs_choice = matching::needs_choice(&matches, policy);
                finish(
                    lookup,
                    active.name(),
                    &matches,
                    needs_choice,
                    MatchSource::Crm,
                )
            }
            Err(why) => {
                let mut lookup = lookup;
                lookup.errors.push((active.name().to_string(), why));
                lookup
            }
        })
    }

    /// Asks the CRM (SyncContactAuto) for `number`, matches what it returns, and caches it
    /// (or the miss). The inner error is why the CRM could not answer.
    async fn query_crm(
        &self,
        active: &ActiveIntegration,
        call: &Call,
        number: &PhoneNumber,
        rules: &NumberRules,
    ) -> Result<Result<Vec<Match>, String>, EngineError> {
        let template = active.config.integration.template();
        if template.scenario(&ScenarioId::SyncContactAuto).is_none() {
            return Ok(Ok(Vec::new()));
        }
        let now = now_unix();
        let vars = self.call_variables(active, call)?;
        let globals = self.inner.store.globals(active.name())?;
        let input = RunInput {
            fields: active.fields.clone(),
            vars,
            globals: globals.clone(),
            ..RunInput::default()
        };
        let execution =
            outbox::execute(&self.inner, active, &ScenarioId::SyncContactAuto, input).await;
        if globals.is_none() && !execution.outcome.globals.is_empty() {
            self.inner
                .store
                .set_globals(active.name(), &execution.outcome.globals, now)?;
        }
        if let Some(f) = execution.failure {
            if matches!(f, outbox::Failure::NeedsSignIn { .. }) {
                active.needs_sign_in(f.message());
            }
            return Ok(Err(f.message().to_string()));
        }
        let settings = &active.config.contacts;
        let records: Vec<ContactRecord> = execution
            .outcome
            .contacts
            .iter()
            .map(|c| ContactRecord::from_fields(active.name(), &c.fields))
            .collect();
        if settings.synchronize_to_phonebook {
            self.inner.contacts.upsert(
                &records,
                Origin::Lookup,
                rules,
                now,
                Some(settings.ttl_seconds),
            )?;
        }
        let matches = matching::match_records(number, records, rules, settings.suffix_digits);
        if matches.is_empty() {
            self.inner.contacts.record_miss(
                active.name(),
                number,
                now,
                settings.miss_ttl_seconds,
            )?;
        }
        Ok(Ok(matches))
    }

    fn refresh_in_background(&self, active: &ActiveIntegration, number: &PhoneNumber) {
        if !active.config.contacts.synchronize_to_phonebook {
            return;
        }
        let engine = self.clone();
        let name = active.name().to_string();
        let text = number
            .e164
            .clone()
            .unwrap_or_else(|| number.original.clone());
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = engine.refresh_number(&name, &text).await;
            });
        }
    }

    /// Asks `integration`'s CRM about `number` again and brings the cache in step: contacts
    /// it returns are re-cached; cached contacts of that number it no longer returns are
    /// dropped (deleted in the CRM, or their number changed). Returns how many it returned.
    pub async fn refresh_number(
        &self,
        integration: &str,
        number: &str,
    ) -> Result<usize, EngineError> {
        let active = self.integration(integration)?.clone();
        let rules = self.number_rules(&active);
        let parsed = callbox_contacts::normalize(number, &rules);
        if matches!(parsed.kind, NumberKind::Extension | NumberKind::Withheld) {
            return Ok(0);
        }
        let probe = probe_call("refresh", number);
        let before = self.inner.contacts.lookup(
            &parsed,
            &LookupOptions {
                integration: Some(integration),
                suffix_digits: 0,
                policy: active.config.contacts.match_policy,
                now: now_unix(),
            },
        )?;
        let found = match self.query_crm(&active, &probe, &parsed, &rules).await? {
            Ok(found) => found,
            Err(why) => return Err(EngineError::Request(why)),
        };
        for old in before.matches {
            // Only what lookups cached is the CRM's to take back; imports and placeholders stay.
            let from_lookup = old.origin == Some(Origin::Lookup);
            if from_lookup && !found.iter().any(|m| m.contact.id == old.contact.id) {
                self.inner.contacts.remove(integration, &old.contact.id)?;
            }
        }
        Ok(found.len())
    }

    /// Refreshes up to `limit` cached contacts whose TTL ran out, in every integration that
    /// synchronizes to the phonebook (the app calls this now and then, off the call path).
    /// Returns how many numbers were asked about.
    pub async fn refresh_stale_contacts(&self, limit: usize) -> Result<usize, EngineError> {
        let mut asked = 0;
        for active in &self.inner.integrations {
            if !active.config.contacts.synchronize_to_phonebook {
                continue;
            }
            let stale = self
                .inner
                .contacts
                .stale(active.name(), now_unix(), limit)?;
            for record in stale {
                let Some((_, number)) = record.numbers.first() else {
                    self.inner.contacts.remove(active.name(), &record.id)?;
                    continue;
                };
                asked += 1;
                // A CRM that fails now leaves the contact stale, to be tried again later.
                let _ = self.refresh_number(active.name(), number).await;
            }
        }
        Ok(asked)
    }

    fn enqueue(
        &self,
        active: &ActiveIntegration,
        id: &str,
        scenario: &ScenarioId,
        vars: &Map<String, Value>,
    ) -> Result<bool, EngineError> {
        let (_, inserted) =
            self.inner
                .store
                .enqueue(id, active.name(), scenario.as_str(), vars, now_unix())?;
        self.inner.wake.notify_one();
        Ok(inserted)
    }

    fn has(active: &ActiveIntegration, scenario: &ScenarioId) -> bool {
        let template = active.config.integration.template();
        let info = &template.info;
        let enabled = match scenario {
            ScenarioId::CallJournal => info.call_journal,
            ScenarioId::CreateNewContact => info.create_new_contact,
            ScenarioId::CreateNewTicket => info.create_new_ticket,
            _ => true,
        };
        enabled
            && template
                .scenario(scenario)
                .is_some_and(|s| !s.requests.is_empty())
    }

    /// The call was answered: queues the pre-log in every integration that has one.
    pub fn call_answered(&self, call: &Call) -> Result<(), EngineError> {
        self.inner.store.record_call(call, now_unix())?;
        for active in &self.inner.integrations {
            if Self::has(active, &ScenarioId::PreCallJournal) {
                let vars = self.call_variables(active, call)?;
                self.enqueue(active, &call.id, &ScenarioId::PreCallJournal, &vars)?;
            }
        }
        Ok(())
    }

    /// The call ended: queues the call log in every integration (it updates the pre-logged
    /// record when there is one). Logged once per call and integration, whatever happens.
    pub fn call_ended(&self, call: &Call) -> Result<(), EngineError> {
        self.inner.store.record_call(call, now_unix())?;
        for active in &self.inner.integrations {
            if Self::has(active, &ScenarioId::CallJournal) {
                let vars = self.call_variables(active, call)?;
                self.enqueue(active, &call.id, &ScenarioId::CallJournal, &vars)?;
            }
        }
        Ok(())
    }

    /// An SMS was sent or received: queues the note in every integration that logs SMS.
    pub fn sms(&self, sms: &Sms) -> Result<(), EngineError> {
        for active in &self.inner.integrations {
            if Self::has(active, &ScenarioId::SmsNote) {
                let crm = self.crm_user(active.name(), &sms.agent.extension)?;
                let mut vars = sms.variables(self.inner.zone.as_ref(), crm.as_deref());
                vars.extend(self.contact_variables(&sms.id, active.name())?);
                self.enqueue(active, &sms.id, &ScenarioId::SmsNote, &vars)?;
            }
        }
        Ok(())
    }

    /// Sends an SMS through `integration`'s `SendSms` scenario, durably (the outbox). Once the
    /// provider has accepted it, the outbox logs it with `SmsNote` in every integration that
    /// has one — an SMS that was never sent is never logged as sent.
    ///
    /// The recipient is looked up first in every integration (cache or CRM, as for a call), so
    /// the notes land on their contact.
    pub async fn send_sms(&self, integration: &str, sms: &Sms) -> Result<(), EngineError> {
        let active = self.integration(integration)?;
        if !Self::has(active, &ScenarioId::SendSms) {
            return Err(EngineError::Unsupported {
                integration: integration.to_string(),
                what: "send SMS".into(),
                scenario: "SendSms".into(),
            });
        }
        let as_call = Call::starting(
            sms.id.clone(),
            sms.direction,
            sms.remote_number.clone(),
            sms.agent.clone(),
            sms.at,
        );
        for each in &self.inner.integrations {
            // A failed lookup only means the note has no contact to land on.
            if let Ok(found) = self.lookup_in(each, &as_call).await
                && let Some(first) = found.matches.first().filter(|m| !m.placeholder)
            {
                self.inner
                    .store
                    .set_call_contact(&sms.id, each.name(), &first.fields)?;
            }
        }
        let crm = self.crm_user(active.name(), &sms.agent.extension)?;
        let mut vars = sms.variables(self.inner.zone.as_ref(), crm.as_deref());
        vars.extend(self.contact_variables(&sms.id, active.name())?);
        let record = serde_json::to_value(sms).map_err(|e| EngineError::Request(e.to_string()))?;
        vars.insert(SMS_RECORD.into(), record);
        self.enqueue(active, &sms.id, &ScenarioId::SendSms, &vars)?;
        Ok(())
    }

    /// The integrations that can send SMS (their template has `SendSms`).
    pub fn sms_senders(&self) -> Vec<String> {
        self.inner
            .integrations
            .iter()
            .filter(|a| Self::has(a, &ScenarioId::SendSms))
            .map(|a| a.name().to_string())
            .collect()
    }

    /// Creates a contact for the call's number in `integration` (by hand, or by a rule).
    /// Refuses internal extensions and withheld numbers.
    pub fn create_contact(
        &self,
        integration: &str,
        call: &Call,
        contact: &NewContact,
    ) -> Result<(), EngineError> {
        let active = self.integration(integration)?;
        if !Self::has(active, &ScenarioId::CreateNewContact)
            || active.config.create_contacts == CreateContacts::Never
        {
            return Err(EngineError::Unsupported {
                integration: integration.to_string(),
                what: "create contacts".into(),
                scenario: "CreateNewContact".into(),
            });
        }
        let rules = self.number_rules(active);
        let number = callbox_contacts::normalize(&contact.number, &rules);
        if matches!(number.kind, NumberKind::Extension | NumberKind::Withheld) {
            return Err(EngineError::Request(format!(
                "{} is an internal extension or a withheld number: no contact is created",
                contact.number
            )));
        }
        let mut vars = self.call_variables(active, call)?;
        let contact_type = active
            .config
            .create_contact_type
            .clone()
            .unwrap_or_else(|| {
                active
                    .config
                    .integration
                    .template()
                    .scenario(&ScenarioId::CreateNewContact)
                    .and_then(|s| s.requests.first())
                    .map(|r| r.name.clone())
                    .unwrap_or_default()
            });
        for (k, v) in [
            ("FirstName", contact.first_name.clone()),
            ("LastName", contact.last_name.clone()),
            ("DisplayName", contact.display_name()),
            ("BusinessNumber", contact.number.clone()),
            ("Email", contact.email.clone()),
            ("Company", contact.company.clone()),
            ("ContactSyncType", contact_type),
        ] {
            vars.insert(k.into(), Value::String(v));
        }
        self.enqueue(active, &call.id, &ScenarioId::CreateNewContact, &vars)?;
        // Found at once on the next call, before the CRM's search index has it; stale from
        // the start, so a lookup asks the CRM for the real record in the background.
        let mut fields = Map::new();
        for (k, v) in [
            ("ContactsId", created_contact_id(&call.id)),
            ("FirstName", contact.first_name.clone()),
            ("LastName", contact.last_name.clone()),
            ("Email", contact.email.clone()),
            ("Company", contact.company.clone()),
            ("BusinessNumber", contact.number.clone()),
        ] {
            fields.insert(k.into(), Value::String(v));
        }
        let record = ContactRecord::from_fields(active.name(), &fields);
        let now = now_unix();
        self.inner
            .contacts
            .upsert(&[record], Origin::Created, &rules, now, Some(0))?;
        self.inner.contacts.forget_miss(active.name(), &number)?;
        Ok(())
    }

    /// Creates a ticket for the call in `integration`.
    pub fn create_ticket(&self, integration: &str, call: &Call) -> Result<(), EngineError> {
        let active = self.integration(integration)?;
        if !Self::has(active, &ScenarioId::CreateNewTicket) {
            return Err(EngineError::Unsupported {
                integration: integration.to_string(),
                what: "create tickets".into(),
                scenario: "CreateNewTicket".into(),
            });
        }
        let vars = self.call_variables(active, call)?;
        self.enqueue(active, &call.id, &ScenarioId::CreateNewTicket, &vars)?;
        Ok(())
    }

    /// Fetches the integration's CRM users (UserAssociation) and stores them.
    pub async fn refresh_users(&self, integration: &str) -> Result<Vec<CrmUser>, EngineError> {
        let active = self.integration(integration)?;
        let input = RunInput {
            fields: active.fields.clone(),
            globals: self.inner.store.globals(integration)?,
            ..RunInput::default()
        };
        let execution =
            outbox::execute(&self.inner, active, &ScenarioId::UserAssociation, input).await;
        if let Some(f) = execution.failure {
            return Err(EngineError::Request(f.message().to_string()));
        }
        let list = |name: &str| -> Vec<String> {
            match execution.outcome.outputs.get(name) {
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|v| v.as_str().unwrap_or_default().to_string())
                    .collect(),
                Some(Value::String(s)) => vec![s.clone()],
                _ => Vec::new(),
            }
        };
        let (ids, first, last, email) = (
            list("UserUniqueId"),
            list("FirstName"),
            list("LastName"),
            list("Email"),
        );
        let at = |v: &[String], i: usize| v.get(i).cloned().unwrap_or_default();
        let users: Vec<CrmUser> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| CrmUser {
                id: id.clone(),
                first_name: at(&first, i),
                last_name: at(&last, i),
                email: at(&email, i),
            })
            .collect();
        self.inner.store.set_crm_users(integration, &users)?;
        Ok(users)
    }

    /// Associates `extension` with the CRM user whose email is `email` (case-insensitive);
    /// returns the user id when one matched.
    pub fn associate_by_email(
        &self,
        integration: &str,
        extension: &str,
        email: &str,
    ) -> Result<Option<String>, EngineError> {
        let users = self.inner.store.crm_users(integration)?;
        let Some(user) = users
            .iter()
            .find(|u| !email.is_empty() && u.email.eq_ignore_ascii_case(email))
        else {
            return Ok(None);
        };
        self.inner
            .store
            .associate(integration, extension, &user.id)?;
        Ok(Some(user.id.clone()))
    }

    /// Sends the outbox until it is drained (or `wait` ran out), or forever.
    pub async fn run_outbox(&self, until: Until) -> Result<(), EngineError> {
        Ok(outbox::run(self.inner.clone(), until).await?)
    }

    /// Integrations waiting for a person to sign in again, with why.
    pub fn sign_in_needed(&self) -> Vec<(String, String)> {
        self.inner
            .integrations
            .iter()
            .filter_map(|a| a.sign_in_needed().map(|why| (a.name().to_string(), why)))
            .collect()
    }

    /// Signs `integration` in again with the running credentials (OAuth2 in the browser
    /// `opener` opens), then sends what waited for it at once.
    pub async fn sign_in(
        &self,
        integration: &str,
        opener: &dyn crate::auth::BrowserOpener,
        timeout: Duration,
    ) -> Result<(), EngineError> {
        let active = self.integration(integration)?;
        active
            .tokens
            .sign_in(opener, timeout, now_unix())
            .await
            .map_err(EngineError::Request)?;
        active.signed_in();
        self.inner.store.due_now(integration, now_unix())?;
        self.inner.wake();
        Ok(())
    }

    /// Sends a failed outbox entry again (all failed ones with `None`) and wakes the worker.
    /// Returns how many were put back.
    pub fn retry_failed(&self, id: Option<i64>) -> Result<usize, EngineError> {
        let count = self.inner.store.retry_failed(id, now_unix())?;
        self.inner.wake();
        Ok(count)
    }

    /// The hooks of one call (its sync log).
    pub fn hooks(&self, call_id: &str) -> Result<Vec<HookEntry>, EngineError> {
        Ok(self.inner.store.hooks(Some(call_id), usize::MAX)?)
    }
}

/// A contact to create.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewContact {
    /// First name (may be empty).
    pub first_name: String,
    /// Last name (may be empty).
    pub last_name: String,
    /// The number.
    pub number: String,
    /// Email (may be empty).
    pub email: String,
    /// Company (may be empty).
    pub company: String,
}

impl NewContact {
    /// The other party of a call, with the name the network gave, if any.
    pub fn from_call(call: &Call) -> NewContact {
        let mut parts = call.remote_name.trim().rsplitn(2, ' ');
        let last = parts.next().unwrap_or_default().to_string();
        let first = parts.next().unwrap_or_default().to_string();
        NewContact {
            first_name: first,
            last_name: last,
            number: call.remote_number.clone(),
            ..NewContact::default()
        }
    }

    fn display_name(&self) -> String {
        let name = format!("{} {}", self.first_name, self.last_name)
            .trim()
            .to_string();
        if name.is_empty() {
            self.number.clone()
        } else {
            name
        }
    }
}

impl Inner {
    /// Logs a sent SMS (the `SmsNote` of every integration that has one).
    pub(crate) fn log_sent_sms(self: &Arc<Self>, sms: &Sms) -> Result<(), EngineError> {
        Engine {
            inner: self.clone(),
        }
        .sms(sms)
    }

    /// Wakes the outbox worker (something was enqueued or retried).
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// Used by tests and the CLI to see how many writes are unfinished.
pub fn unfinished(engine: &Engine) -> Result<usize, EngineError> {
    Ok(engine.inner.store.unfinished()?)
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field(
                "integrations",
                &self
                    .inner
                    .integrations
                    .iter()
                    .map(|a| a.name().to_string())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// One integration's lookup result from its ranked matches.
fn finish(
    mut lookup: Lookup,
    integration: &str,
    matches: &[Match],
    needs_choice: bool,
    source: MatchSource,
) -> Lookup {
    lookup.matches = matches
        .iter()
        .map(|m| ContactMatch::new(integration, m, source))
        .collect();
    lookup.popup_url = matches
        .iter()
        .find_map(|m| m.contact.url().map(str::to_string));
    lookup.needs_choice = needs_choice;
    lookup
}
