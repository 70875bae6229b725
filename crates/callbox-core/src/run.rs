//! Running one scenario as the app does, without doing any I/O: the run hands out requests
//! and takes back responses (a "sans-IO" state machine), so the engine (HTTP) and the tests
//! (recorded responses) drive the same logic.
//!
//! Order: `GetGlobalInfo` first when the template has it and no globals were supplied; then
//! the scenario's requests in document order, each seeing the outputs of the ones before;
//! `Outputs Next` chains run per matched contact and fill in the contact's empty fields.

use std::collections::VecDeque;

use callbox_gjson::Document;
use serde_json::{Map, Value};

use crate::escape::OutputContext;
use crate::request::{HttpRequest, RenderError, RequestError};
use crate::template::{
    CONTACT_FIELDS, ContactUrlType, Integration, Request, Scenario, ScenarioId,
    contact_field_enabled,
};
use crate::variables;

/// What to run.
#[derive(Clone, Debug, Default)]
pub struct RunInput {
    /// Run only the request with this name (and its Next chain).
    pub only_request: Option<String>,
    /// Values the user typed on the integration page (CustomFieldList), secrets included.
    pub fields: Map<String, Value>,
    /// Call variables (`Phone`, `CallerNumber`, `Talk_Duration`…).
    pub vars: Map<String, Value>,
    /// `GetGlobalInfo` outputs from an earlier run; `None` runs `GetGlobalInfo` first.
    pub globals: Option<Map<String, Value>>,
    /// Requests of the scenario that already succeeded in an earlier attempt (by name): they
    /// are not sent again, so a retried multi-request hook never repeats a write.
    pub completed: Vec<String>,
    /// The outputs those requests produced, as variables for the ones still to run.
    pub earlier: Map<String, Value>,
}

/// A response to the request the run handed out.
#[derive(Clone, Debug, Default)]
pub struct HttpResponse {
    /// HTTP status code.
    pub status: u16,
    /// Response headers (names lower-cased).
    pub headers: Vec<(String, String)>,
    /// Response body (UTF-8, lossily decoded).
    pub body: String,
}

impl HttpResponse {
    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One request the run made (or skipped).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RequestRecord {
    /// The scenario it belongs to (`GetGlobalInfo`, `Common`, or the scenario run).
    pub scenario: String,
    /// Request name.
    pub name: String,
    /// Method.
    pub method: String,
    /// URL (empty when skipped).
    pub url: String,
    /// Status code (`None` when skipped or not answered).
    pub status: Option<u16>,
    /// The URL rendered empty, so the request was not sent.
    pub skipped: bool,
}

/// A contact found by `SyncContactAuto` or `SearchContact`.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Contact {
    /// Mapped fields (`ContactsId`, `FirstName`, … as enabled), then `ContactSyncType`
    /// and `ContactUrl`.
    pub fields: Map<String, Value>,
}

impl Contact {
    /// A field's value as text ("" when absent).
    pub fn get(&self, name: &str) -> &str {
        self.fields.get(name).and_then(Value::as_str).unwrap_or("")
    }
}

/// What a finished run produced.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RunOutcome {
    /// The scenario run.
    pub scenario: String,
    /// Requests in the order they were made.
    pub requests: Vec<RequestRecord>,
    /// Every output: a string, or an array of strings for a path that yields one per result
    /// (e.g. `data.#.id`). Later requests overwrite earlier outputs of the same name.
    pub outputs: Map<String, Value>,
    /// Contacts (SyncContactAuto / SearchContact).
    pub contacts: Vec<Contact>,
    /// `GetGlobalInfo` outputs in effect (to reuse for later runs).
    #[serde(skip)]
    pub globals: Map<String, Value>,
}

/// A run failed.
#[derive(Clone, Debug, thiserror::Error)]
pub enum RunError {
    /// The template has no such scenario.
    #[error("the template has no {0} scenario")]
    NoScenario(String),
    /// `--request` named no request of the scenario.
    #[error("scenario {scenario} has no request named {request}")]
    NoRequest {
        /// Scenario.
        scenario: String,
        /// The name asked for.
        request: String,
    },
    /// A request could not be built.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// A text (Subject, popup URL…) could not be rendered.
    #[error("{what}: {source}")]
    Render {
        /// Which text.
        what: String,
        /// The problem.
        source: RenderError,
    },
    /// The CRM answered with an error status.
    #[error("request {request} failed: HTTP {status}{}", if message.is_empty() { String::new() } else { format!(": {message}") })]
    Status {
        /// Request name.
        request: String,
        /// Status code.
        status: u16,
        /// The CRM's error message (or the start of the body).
        message: String,
    },
    /// A request was asked for while the previous one still awaits its response.
    #[error("the previous request still awaits its response")]
    AwaitingResponse,
    /// A response came when no request was pending.
    #[error("a response arrived but no request was pending")]
    NoPendingRequest,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    Global,
    Main,
    Next { contact: usize, depth: u8 },
}

#[derive(Clone, Debug)]
struct Task {
    scenario: ScenarioId,
    request: usize,
    purpose: Purpose,
}

/// Longest `Outputs Next` chain followed (guards against cycles).
const MAX_NEXT_DEPTH: u8 = 8;

/// A scenario run in progress.
pub struct ScenarioRun<'i> {
    integration: &'i Integration,
    scenario: &'i Scenario,
    input: RunInput,
    globals: Map<String, Value>,
    /// Outputs of earlier requests of the scenario, as variables.
    earlier: Map<String, Value>,
    main_started: bool,
    completed: Vec<String>,
    tasks: VecDeque<Task>,
    pending: Option<Task>,
    outcome: RunOutcome,
}

impl<'i> ScenarioRun<'i> {
    /// Prepares a run of `scenario`.
    pub fn new(
        integration: &'i Integration,
        scenario: &ScenarioId,
        input: RunInput,
    ) -> Result<Self, RunError> {
        let template = integration.template();
        let scenario = template
            .scenario(scenario)
            .ok_or_else(|| RunError::NoScenario(scenario.to_string()))?;
        if let Some(name) = &input.only_request
            && scenario.request(name).is_none()
        {
            return Err(RunError::NoRequest {
                scenario: scenario.id.to_string(),
                request: name.clone(),
            });
        }
        let mut tasks = VecDeque::new();
        let globals = match &input.globals {
            Some(g) => g.clone(),
            None => {
                if scenario.id != ScenarioId::GetGlobalInfo
                    && scenario.id != ScenarioId::AuthMethod
                    && let Some(global) = template.scenario(&ScenarioId::GetGlobalInfo)
                {
                    for i in 0..global.requests.len() {
                        tasks.push_back(Task {
                            scenario: ScenarioId::GetGlobalInfo,
                            request: i,
                            purpose: Purpose::Global,
                        });
                    }
                }
                Map::new()
            }
        };
        Ok(ScenarioRun {
            integration,
            scenario,
            outcome: RunOutcome {
                scenario: scenario.id.to_string(),
                ..RunOutcome::default()
            },
            earlier: input.earlier.clone(),
            completed: input.completed.clone(),
            input,
            globals,
            main_started: false,
            tasks,
            pending: None,
        })
    }

    /// The variables every request of the scenario sees (before earlier outputs and contact
    /// fields): Callbox variables default to "", then globals, fields, scenario parameters,
    /// call variables, and the rendered Subject and Description.
    fn base_data(&self, scenario: &Scenario) -> Result<Map<String, Value>, RunError> {
        let mut data = Map::new();
        for (_, list) in variables::catalog() {
            for v in list {
                if variables::is_supplied(&scenario.id, v.name) {
                    data.insert(v.name.to_string(), Value::String(String::new()));
                }
            }
        }
        for f in CONTACT_FIELDS {
            if variables::is_supplied(&scenario.id, f) {
                data.entry(f.to_string())
                    .or_insert(Value::String(String::new()));
            }
        }
        data.extend(self.globals.clone());
        data.extend(self.input.fields.clone());
        for p in &scenario.parameters {
            let variable =
                p.father.is_none() || p.father.as_deref() == Some("CustomScenarioParameter");
            if variable && !matches!(p.name.as_str(), "Subject" | "Description") {
                data.insert(p.name.clone(), Value::String(p.value.text.clone()));
            }
        }
        data.extend(self.input.vars.clone());
        for name in ["Subject", "Description"] {
            if self.input.vars.contains_key(name) {
                continue;
            }
            if let Some(p) = scenario.setting(name) {
                let object = Value::Object(data.clone());
                let text = self
                    .integration
                    .render(&p.value, &object, OutputContext::Plain)
                    .map_err(|source| RunError::Render {
                        what: format!("the {name} of {}", scenario.id),
                        source,
                    })?;
                data.insert(name.to_string(), Value::String(text));
            }
        }
        Ok(data)
    }

    fn start_main(&mut self) {
        self.main_started = true;
        for (i, r) in self.scenario.requests.iter().enumerate() {
            if self
                .input
                .only_request
                .as_deref()
                .is_some_and(|n| n != r.name)
                || self.input.completed.contains(&r.name)
            {
                continue;
            }
            self.tasks.push_back(Task {
                scenario: self.scenario.id.clone(),
                request: i,
                purpose: Purpose::Main,
            });
        }
    }

    fn request_of(&self, task: &Task) -> Option<&'i Request> {
        let scenario = self.integration.template().scenario(&task.scenario)?;
        scenario.requests.get(task.request)
    }

    /// The next request to send, or `None` when the run is complete (call [`finish`]).
    ///
    /// [`finish`]: ScenarioRun::finish
    pub fn next_request(&mut self) -> Result<Option<HttpRequest>, RunError> {
        loop {
            if self.pending.is_some() {
                return Err(RunError::AwaitingResponse);
            }
            let Some(task) = self.tasks.pop_front() else {
                if self.main_started {
                    return Ok(None);
                }
                self.start_main();
                continue;
            };
            let Some(request) = self.request_of(&task) else {
                continue;
            };
            let data = self.data_for(&task)?;
            let built = self
                .integration
                .build_request(request, &Value::Object(data))?;
            let scenario_name = task.scenario.to_string();
            match built {
                None => self.outcome.requests.push(RequestRecord {
                    scenario: scenario_name,
                    name: request.name.clone(),
                    method: request.method.clone(),
                    url: String::new(),
                    status: None,
                    skipped: true,
                }),
                Some(http) => {
                    self.outcome.requests.push(RequestRecord {
                        scenario: scenario_name,
                        name: request.name.clone(),
                        method: http.method.clone(),
                        url: http.url.clone(),
                        status: None,
                        skipped: false,
                    });
                    self.pending = Some(task);
                    return Ok(Some(http));
                }
            }
        }
    }

    fn data_for(&self, task: &Task) -> Result<Map<String, Value>, RunError> {
        let template = self.integration.template();
        match task.purpose {
            Purpose::Global => {
                let scenario = template
                    .scenario(&ScenarioId::GetGlobalInfo)
                    .ok_or_else(|| RunError::NoScenario("GetGlobalInfo".into()))?;
                let mut data = self.base_data(scenario)?;
                data.extend(self.globals.clone());
                Ok(data)
            }
            Purpose::Main => {
                let mut data = self.base_data(self.scenario)?;
                data.extend(self.earlier.clone());
                Ok(data)
            }
            Purpose::Next { contact, .. } => {
                let mut data = self.base_data(self.scenario)?;
                data.extend(self.earlier.clone());
                if let Some(c) = self.outcome.contacts.get(contact) {
                    data.extend(c.fields.clone());
                    data.insert(
                        "ContactId".into(),
                        Value::String(c.get("ContactsId").to_string()),
                    );
                }
                Ok(data)
            }
        }
    }

    /// Builds the pending request again after `fields` changed (e.g. a refreshed
    /// `AccessToken`), to send it once more.
    pub fn rebuild_pending(&mut self, fields: Map<String, Value>) -> Result<HttpRequest, RunError> {
        self.input.fields.extend(fields);
        let task = self.pending.clone().ok_or(RunError::NoPendingRequest)?;
        let request = self.request_of(&task).ok_or(RunError::NoPendingRequest)?;
        let data = self.data_for(&task)?;
        self.integration
            .build_request(request, &Value::Object(data))?
            .ok_or(RunError::NoPendingRequest)
    }

    /// Names of the scenario's own requests that have succeeded so far (with those given in
    /// [`RunInput::completed`]), and the outputs they produced: what to persist so a retry
    /// resumes after them.
    pub fn progress(&self) -> (Vec<String>, Map<String, Value>) {
        (self.completed.clone(), self.earlier.clone())
    }

    /// Hands the response to the request last returned by [`next_request`].
    ///
    /// [`next_request`]: ScenarioRun::next_request
    pub fn handle_response(&mut self, response: &HttpResponse) -> Result<(), RunError> {
        let task = self.pending.take().ok_or(RunError::NoPendingRequest)?;
        let Some(request) = self.request_of(&task) else {
            return Ok(());
        };
        if let Some(record) = self.outcome.requests.last_mut() {
            record.status = Some(response.status);
        }
        if !(200..300).contains(&response.status) {
            return Err(RunError::Status {
                request: request.name.clone(),
                status: response.status,
                message: crm_error_message(&response.body),
            });
        }
        let document = Document::new(&response.body);
        // Paths with {{…}} (e.g. `data.#(phone=="{{.Phone}}")#.street`) are rendered over the
        // request's variables first; only then are those variables needed.
        let data = if request.outputs.iter().any(|o| o.path.text.contains("{{")) {
            Some(Value::Object(self.data_for(&task)?))
        } else {
            None
        };
        let mut values: Vec<(String, Extracted)> = Vec::new();
        for output in &request.outputs {
            let rendered;
            let path = match &data {
                Some(data) if output.path.text.contains("{{") => {
                    rendered = self
                        .integration
                        .render(&output.path, data, OutputContext::Path)
                        .map_err(|source| RunError::Render {
                            what: format!("the Path of output {}", output.name),
                            source,
                        })?;
                    rendered.as_str()
                }
                _ => output.path.text.as_str(),
            };
            values.push((output.name.clone(), extract_first(&document, path)));
        }
        for (name, value) in &values {
            if let Some(json) = value.to_json() {
                self.outcome.outputs.insert(name.clone(), json);
            }
        }
        match task.purpose {
            Purpose::Global => {
                for (name, value) in &values {
                    self.globals
                        .insert(name.clone(), Value::String(value.first()));
                }
            }
            Purpose::Main => {
                for (name, value) in &values {
                    self.earlier
                        .insert(name.clone(), Value::String(value.first()));
                }
                self.completed.push(request.name.clone());
                if matches!(
                    self.scenario.id,
                    ScenarioId::SyncContactAuto | ScenarioId::SearchContact
                ) {
                    self.add_contacts(request, &values, &document);
                }
            }
            Purpose::Next { contact, depth } => {
                if let Some(c) = self.outcome.contacts.get_mut(contact) {
                    for (name, value) in &values {
                        let v = value.first();
                        let empty = c
                            .fields
                            .get(name)
                            .and_then(Value::as_str)
                            .is_none_or(str::is_empty);
                        if empty && !v.is_empty() {
                            c.fields.insert(name.clone(), Value::String(v));
                        }
                    }
                }
                if let Some((next, _)) = &request.next {
                    self.enqueue_next(next, contact, depth + 1);
                }
            }
        }
        Ok(())
    }

    fn enqueue_next(&mut self, name: &str, contact: usize, depth: u8) {
        if depth > MAX_NEXT_DEPTH {
            return;
        }
        let template = self.integration.template();
        let Some(common) = template.scenario(&ScenarioId::Common) else {
            return;
        };
        if let Some(index) = common.requests.iter().position(|r| r.name == name) {
            self.tasks.push_back(Task {
                scenario: ScenarioId::Common,
                request: index,
                purpose: Purpose::Next { contact, depth },
            });
        }
    }

    fn add_contacts(
        &mut self,
        request: &Request,
        values: &[(String, Extracted)],
        document: &Document<'_>,
    ) {
        let id = values
            .iter()
            .find(|(n, _)| n == "ContactsId")
            .map(|(_, v)| v);
        let count = match id {
            Some(Extracted::Many(items)) => items.len(),
            Some(Extracted::One(v)) if !v.is_empty() => 1,
            _ => 0,
        };
        let url_type = self
            .scenario
            .setting_value("ContactUrlType")
            .and_then(ContactUrlType::parse);
        let url_field = match (url_type, self.scenario.setting("ContactFieldForUri")) {
            (Some(ContactUrlType::RetrieveFromContact), Some(p)) => {
                Some(extract(document, &p.value.text))
            }
            _ => None,
        };
        // The fields this contact type maps: enabled, and named by an output of the request
        // or its Next chain, or switched on explicitly with `…Enable=1`.
        let mapped = self.chain_outputs(request);
        let fields_shown: Vec<&str> = CONTACT_FIELDS
            .into_iter()
            .filter(|f| contact_field_enabled(self.scenario, f))
            .filter(|f| {
                mapped.iter().any(|m| m == f)
                    || self.scenario.setting(&format!("{f}Enable")).is_some()
            })
            .collect();
        for i in 0..count {
            let mut fields = Map::new();
            for field in fields_shown.iter().copied() {
                let value = values
                    .iter()
                    .find(|(n, _)| n == field)
                    .map(|(_, v)| v.at(i))
                    .unwrap_or_default();
                fields.insert(field.to_string(), Value::String(value));
            }
            fields.insert(
                "ContactSyncType".into(),
                Value::String(request.name.clone()),
            );
            let url = url_field.as_ref().map(|u| u.at(i)).unwrap_or_default();
            fields.insert("ContactUrl".into(), Value::String(url));
            let index = self.outcome.contacts.len();
            self.outcome.contacts.push(Contact { fields });
            if let Some((next, _)) = &request.next {
                self.enqueue_next(next, index, 1);
            }
        }
    }

    /// What the run has produced so far.
    pub fn outcome(&self) -> &RunOutcome {
        &self.outcome
    }

    /// The outcome, ending the run (call [`finish`] first for popup URLs).
    ///
    /// [`finish`]: ScenarioRun::finish
    pub fn into_outcome(mut self) -> RunOutcome {
        self.outcome.globals = std::mem::take(&mut self.globals);
        self.outcome
    }

    /// Output names of `request` and of the Common requests its `Next` chain reaches.
    fn chain_outputs(&self, request: &Request) -> Vec<String> {
        let mut names: Vec<String> = request.outputs.iter().map(|o| o.name.clone()).collect();
        let mut next = request.next.as_ref().map(|(n, _)| n.clone());
        let mut depth = 0;
        while let Some(name) = next.take() {
            depth += 1;
            if depth > MAX_NEXT_DEPTH {
                break;
            }
            if let Some(common) = self.integration.template().common_request(&name) {
                names.extend(common.outputs.iter().map(|o| o.name.clone()));
                next = common.next.as_ref().map(|(n, _)| n.clone());
            }
        }
        names
    }

    /// Completes the run once [`next_request`] returned `None`: popup URLs are rendered now
    /// that every Next chain has filled in its contact.
    ///
    /// [`next_request`]: ScenarioRun::next_request
    pub fn finish(&mut self) -> Result<(), RunError> {
        let url_type = self
            .scenario
            .setting_value("ContactUrlType")
            .and_then(ContactUrlType::parse);
        if url_type == Some(ContactUrlType::SpecifyUrlFormat)
            && let Some(p) = self.scenario.setting("URLFormat")
        {
            let base = self.base_data(self.scenario)?;
            for i in 0..self.outcome.contacts.len() {
                let mut data = base.clone();
                data.extend(self.earlier.clone());
                let contact = &self.outcome.contacts[i];
                data.extend(contact.fields.clone());
                data.insert(
                    "ContactId".into(),
                    Value::String(contact.get("ContactsId").to_string()),
                );
                let url = self
                    .integration
                    .render(&p.value, &Value::Object(data), OutputContext::Url)
                    .map_err(|source| RunError::Render {
                        what: "the popup URLFormat".into(),
                        source,
                    })?;
                self.outcome.contacts[i]
                    .fields
                    .insert("ContactUrl".into(), Value::String(url.trim().to_string()));
            }
        }
        Ok(())
    }
}

/// An output's value: one, or one per result of a projecting path (`data.#.id`).
#[derive(Clone, Debug, PartialEq)]
enum Extracted {
    Missing,
    One(String),
    Many(Vec<String>),
}

impl Extracted {
    fn first(&self) -> String {
        match self {
            Extracted::Missing => String::new(),
            Extracted::One(s) => s.clone(),
            Extracted::Many(v) => v.first().cloned().unwrap_or_default(),
        }
    }

    /// The value for result `i`: element `i` of a projection; a single value only for the first.
    fn at(&self, i: usize) -> String {
        match self {
            Extracted::Missing => String::new(),
            Extracted::One(s) => {
                if i == 0 {
                    s.clone()
                } else {
                    String::new()
                }
            }
            Extracted::Many(v) => v.get(i).cloned().unwrap_or_default(),
        }
    }

    fn to_json(&self) -> Option<Value> {
        match self {
            Extracted::Missing => None,
            Extracted::One(s) => Some(Value::String(s.clone())),
            Extracted::Many(v) => {
                Some(Value::Array(v.iter().cloned().map(Value::String).collect()))
            }
        }
    }
}

/// Extracts with a path that may list alternatives separated by top-level commas
/// (`a.phone,a.mobile`): the first that finds a non-empty value wins.
fn extract_first(document: &Document<'_>, path: &str) -> Extracted {
    let alternatives = split_alternatives(path);
    if alternatives.len() == 1 {
        return extract(document, path);
    }
    let mut first = Extracted::Missing;
    for alternative in alternatives {
        let value = extract(document, alternative.trim());
        let empty = match &value {
            Extracted::Missing => true,
            Extracted::One(s) => s.is_empty(),
            Extracted::Many(v) => v.iter().all(String::is_empty),
        };
        if !empty {
            return value;
        }
        if first == Extracted::Missing {
            first = value;
        }
    }
    first
}

/// Splits a path at commas outside brackets and string literals.
fn split_alternatives(path: &str) -> Vec<&str> {
    if !path.contains(',') {
        return vec![path];
    }
    let bytes = path.as_bytes();
    let (mut depth, mut in_string, mut start, mut i) = (0usize, false, 0usize, 0usize);
    let mut parts = Vec::new();
    while i < bytes.len() {
        match (in_string, bytes[i]) {
            (_, b'\\') => i += 1,
            (true, b'"') => in_string = false,
            (false, b'"') => in_string = true,
            (false, b'(' | b'[' | b'{') => depth += 1,
            (false, b')' | b']' | b'}') => depth = depth.saturating_sub(1),
            (false, b',') if depth == 0 => {
                parts.push(&path[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    parts.push(path.get(start..).unwrap_or(""));
    parts
}

fn extract(document: &Document<'_>, path: &str) -> Extracted {
    if path.trim().is_empty() {
        return Extracted::Missing;
    }
    if let Some((array_path, rest)) = split_projection(path) {
        // Evaluate the rest of the path per element, so that an element lacking the field
        // leaves a gap instead of shifting every later contact's value (gjson's projection
        // drops missing values).
        let array = if array_path.is_empty() {
            document.get("@this")
        } else {
            document.get(array_path)
        };
        if !array.exists() {
            return Extracted::Missing;
        }
        if array.is_array() {
            let items = array
                .array()
                .iter()
                .map(|element| {
                    if rest.is_empty() {
                        element.to_str().into_owned()
                    } else {
                        callbox_gjson::get(element.raw(), rest)
                            .to_str()
                            .into_owned()
                    }
                })
                .collect();
            return Extracted::Many(items);
        }
    }
    let value = document.get(path);
    if value.exists() {
        Extracted::One(value.to_str().into_owned())
    } else {
        Extracted::Missing
    }
}

/// Splits a projecting path at its first projection: `data.#.a.b` → (`data`, `a.b`),
/// `data.#(x==1)#.id` → (`data.#(x==1)#`, `id`), `#.id` → (``, `id`). `None` when the path
/// yields one value (no projection, or a pipe after it picks from the projected list).
fn split_projection(path: &str) -> Option<(&str, &str)> {
    let bytes = path.as_bytes();
    let mut depth = 0usize;
    let mut in_string = false;
    let mut i = 0;
    let mut found: Option<(usize, usize)> = None;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = true,
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => depth = depth.saturating_sub(1),
                b'|' if depth == 0 => return None,
                b'#' if depth == 0 && found.is_none() => {
                    let next = bytes.get(i + 1).copied();
                    let after_dot = i == 0 || bytes[i - 1] == b'.';
                    let closes_query = i > 0 && matches!(bytes[i - 1], b')' | b']');
                    if after_dot && next == Some(b'.') {
                        // `a.#.rest` or `#.rest` (a bare trailing `a.#` is a count).
                        let prefix_end = i.saturating_sub(1);
                        found = Some((prefix_end, i + 2));
                    } else if closes_query && matches!(next, Some(b'.') | None) {
                        found = Some((i + 1, (i + 2).min(bytes.len())));
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    let (prefix_end, rest_start) = found?;
    Some((&path[..prefix_end], path.get(rest_start..).unwrap_or("")))
}

/// A readable error message from a CRM error body: common JSON error fields, else the start
/// of the body.
pub fn crm_error_message(body: &str) -> String {
    let trimmed = body.trim();
    if trimmed.is_empty() {
        return String::new();
    }
    let document = Document::new(trimmed);
    for path in [
        "error_description",
        "error.message",
        "message",
        "0.message",
        "errors.0.message",
        "data.0.message",
        "error",
        "errors.0",
        "title",
        "detail",
    ] {
        let v = document.get(path);
        if v.exists() && !v.is_object() && !v.to_str().is_empty() {
            let mut text = v.to_str().into_owned();
            let code = ["0.errorCode", "code", "data.0.code", "error.code"]
                .iter()
                .map(|p| document.get(p))
                .find(|c| c.exists() && !c.to_str().is_empty());
            if let Some(code) = code {
                text = format!("{} ({})", text, code.to_str());
            }
            return text;
        }
    }
    let mut excerpt: String = trimmed.chars().take(300).collect();
    if trimmed.chars().count() > 300 {
        excerpt.push('…');
    }
    excerpt
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projections_split_at_the_first_hash() {
        assert_eq!(split_projection("data.#.id"), Some(("data", "id")));
        assert_eq!(
            split_projection("data.#.Account.Name"),
            Some(("data", "Account.Name"))
        );
        assert_eq!(split_projection("#.id"), Some(("", "id")));
        assert_eq!(
            split_projection("data.#(a==1)#.id"),
            Some(("data.#(a==1)#", "id"))
        );
        assert_eq!(
            split_projection("data.#(a==1)#"),
            Some(("data.#(a==1)#", ""))
        );
        assert_eq!(split_projection("data.#(a==\"#.x\").id"), None);
        assert_eq!(split_projection("data.#(a==1).id"), None);
        assert_eq!(
            split_projection("identities.#(type==\"phone\")#|1.value"),
            None
        );
        assert_eq!(split_projection("data.0.tags"), None);
        assert_eq!(split_projection("data.#"), None);
    }

    #[test]
    fn a_missing_field_leaves_a_gap_instead_of_shifting_later_values() {
        let json =
            r#"{"r":[{"id":"1","a":{"n":"x"}},{"id":"2","a":null},{"id":"3","a":{"n":"z"}}]}"#;
        let doc = Document::new(json);
        assert_eq!(
            extract(&doc, "r.#.a.n"),
            Extracted::Many(vec!["x".into(), String::new(), "z".into()])
        );
        // gjson itself drops the missing value:
        assert_eq!(doc.get("r.#.a.n").raw(), r#"["x","z"]"#);
        assert_eq!(
            extract(&doc, "r.#(id>\"1\")#.id"),
            Extracted::Many(vec!["2".into(), "3".into()])
        );
        assert_eq!(extract(&doc, "r.1.id"), Extracted::One("2".into()));
        assert_eq!(extract(&doc, "nope.#.id"), Extracted::Missing);
    }

    #[test]
    fn comma_separated_alternatives_take_the_first_value_found() {
        let doc = Document::new(r#"{"a":{"phone":"","mobile":"+1 555"},"l":[{"x":1},{"x":2}]}"#);
        assert_eq!(
            extract_first(&doc, "a.phone,a.mobile"),
            Extracted::One("+1 555".into())
        );
        assert_eq!(
            extract_first(&doc, "a.nope, a.mobile"),
            Extracted::One("+1 555".into())
        );
        assert_eq!(
            extract_first(&doc, "a.nope,a.phone"),
            Extracted::One(String::new())
        );
        assert_eq!(
            split_alternatives("l.#(x==\"a,b\").y,{a,b}"),
            vec!["l.#(x==\"a,b\").y", "{a,b}"]
        );
    }

    #[test]
    fn crm_errors_are_readable() {
        assert_eq!(
            crm_error_message(
                r#"[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]"#
            ),
            "Session expired or invalid (INVALID_SESSION_ID)"
        );
        assert_eq!(
            crm_error_message(
                r#"{"status":"error","message":"You have reached the secondly limit."}"#
            ),
            "You have reached the secondly limit."
        );
        assert_eq!(
            crm_error_message("<html>Bad Gateway</html>"),
            "<html>Bad Gateway</html>"
        );
    }
}
