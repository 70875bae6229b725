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
//! Lookups run now, in the configured order, against every enabled integration. Writes go
//! through the outbox: committed to SQLite first, then sent by [`Engine::run_outbox`].

use std::collections::BTreeSet;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use callbox_core::call::{Call, Direction, NumberKind, Sms, classify_number};
use callbox_core::functions::TimeZone;
use callbox_core::request::HttpRequest;
use callbox_core::run::{Contact, RunInput};
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
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            backoff_base: Duration::from_secs(2),
            backoff_cap: Duration::from_secs(300),
            sign_in_wait: Duration::from_secs(600),
            max_extension_digits: 6,
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
}

/// An engine error.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
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

/// The contact(s) found when a call starts.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Lookup {
    /// Matches, in integration order: (integration, contact).
    pub contacts: Vec<(String, Contact)>,
    /// The URL to open in the CRM panel: the first match's `ContactUrl`.
    pub popup_url: Option<String>,
    /// Integrations whose lookup failed, with why (the call goes on without them).
    pub errors: Vec<(String, String)>,
    /// Integrations where a contact will be created automatically (unknown number).
    pub creating: Vec<String>,
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
            }),
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
    /// integration (in order), returns the contacts and the popup URL, and queues contact
    /// creation where a rule says so for an unknown outside number.
    pub async fn call_started(&self, call: &Call) -> Result<Lookup, EngineError> {
        let now = now_unix();
        self.inner.store.record_call(call, now)?;
        let mut lookup = Lookup::default();
        for active in &self.inner.integrations {
            let one = self.lookup_in(active, call).await?;
            if let Some((_, first)) = one.contacts.first() {
                self.inner
                    .store
                    .set_call_contact(&call.id, active.name(), &first.fields)?;
            }
            if lookup.popup_url.is_none() {
                lookup.popup_url = one.popup_url;
            }
            lookup.contacts.extend(one.contacts);
            lookup.errors.extend(one.errors);
        }
        if lookup.contacts.is_empty()
            && lookup.errors.is_empty()
            && classify_number(
                &call.remote_number,
                self.inner.settings.max_extension_digits,
            ) == NumberKind::External
        {
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

    /// Looks the call's other party up in one integration (Test Connection uses it too).
    pub async fn lookup_in(
        &self,
        active: &ActiveIntegration,
        call: &Call,
    ) -> Result<Lookup, EngineError> {
        let mut lookup = Lookup::default();
        let template = active.config.integration.template();
        if template.scenario(&ScenarioId::SyncContactAuto).is_none() {
            return Ok(lookup);
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
            lookup
                .errors
                .push((active.name().to_string(), f.message().to_string()));
            return Ok(lookup);
        }
        for c in execution.outcome.contacts {
            if lookup.popup_url.is_none() && !c.get("ContactUrl").is_empty() {
                lookup.popup_url = Some(c.get("ContactUrl").to_string());
            }
            lookup.contacts.push((active.name().to_string(), c));
        }
        Ok(lookup)
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
        if classify_number(&contact.number, self.inner.settings.max_extension_digits)
            != NumberKind::External
        {
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
