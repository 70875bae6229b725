//! Checks a template as a whole: Go-template syntax in every attribute, GJSON paths,
//! variables nothing defines, required outputs, URLs, `Next` targets, auth settings.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use callbox_gotmpl::{Funcs, Template};

use super::model::*;
use super::xml::Located;
use crate::diagnostic::Diagnostics;
use crate::escape::{ContextSink, OutputContext};
use crate::variables;

/// Validates `template`, returning the compiled Go templates of its texts by file offset.
pub fn validate(
    template: &IntegrationTemplate,
    funcs: &Funcs,
    d: &mut Diagnostics<'_>,
) -> HashMap<usize, Arc<Template>> {
    let mut v = Validator {
        template,
        funcs,
        compiled: HashMap::new(),
        auth: template.auth(),
    };
    v.check_auth(d);
    v.check_information(d);
    for scenario in &template.scenarios {
        v.check_scenario(scenario, d);
    }
    v.compiled
}

struct Validator<'t> {
    template: &'t IntegrationTemplate,
    funcs: &'t Funcs,
    compiled: HashMap<usize, Arc<Template>>,
    auth: Auth,
}

/// Names defined for one text.
struct Scope<'a> {
    scenario: &'a ScenarioId,
    names: BTreeSet<String>,
}

impl Validator<'_> {
    /// Compiles `text`, reporting syntax errors at their place in the file, then checks the
    /// variables it uses against `scope`.
    fn text(
        &mut self,
        text: &Located,
        what: &str,
        scope: Option<&Scope<'_>>,
        d: &mut Diagnostics<'_>,
    ) -> Option<Arc<Template>> {
        if text.text.is_empty() {
            return None;
        }
        let parsed = match Template::parse(what, &text.text, self.funcs) {
            Ok(t) => Arc::new(t),
            Err(e) => {
                d.error(
                    text.file_offset(e.offset),
                    format!("template syntax error in {what}: {}", e.message),
                );
                return None;
            }
        };
        if let Some(scope) = scope {
            let mut reported = BTreeSet::new();
            for field in parsed.root_fields() {
                if scope.names.contains(&field.name)
                    || variables::is_supplied(scope.scenario, &field.name)
                    || !reported.insert(field.name.clone())
                {
                    continue;
                }
                d.warning(
                    text.file_offset(field.offset),
                    format!(
                        "variable .{} is not defined in scenario {} (no field, global output, earlier output or Callbox variable has this name); it renders as \"<no value>\"",
                        field.name, scope.scenario
                    ),
                );
            }
        }
        self.compiled.insert(text.start(), parsed.clone());
        Some(parsed)
    }

    fn base_scope<'s>(&self, scenario: &'s Scenario) -> Scope<'s> {
        let mut names: BTreeSet<String> = self.auth.fields.iter().map(|f| f.name.clone()).collect();
        if scenario.id != ScenarioId::AuthMethod {
            if matches!(self.auth.method, AuthType::OAuth2 | AuthType::Bearer) {
                names.insert("AccessToken".into());
            }
            if let Some(global) = self.template.scenario(&ScenarioId::GetGlobalInfo)
                && scenario.id != ScenarioId::GetGlobalInfo
            {
                for r in &global.requests {
                    names.extend(r.outputs.iter().map(|o| o.name.clone()));
                }
            }
        }
        for p in &scenario.parameters {
            if p.father.is_none() || p.father.as_deref() == Some("CustomScenarioParameter") {
                names.insert(p.name.clone());
            }
        }
        let earlier: &[ScenarioId] = match scenario.id {
            ScenarioId::CallJournal => &[ScenarioId::PreCallJournal, ScenarioId::CreateNewTicket],
            ScenarioId::PreCallJournal => &[ScenarioId::CreateNewTicket],
            ScenarioId::Common => &[ScenarioId::SyncContactAuto, ScenarioId::SearchContact],
            _ => &[],
        };
        for id in earlier {
            if let Some(s) = self.template.scenario(id) {
                for r in &s.requests {
                    names.extend(r.outputs.iter().map(|o| o.name.clone()));
                }
            }
        }
        if scenario.id == ScenarioId::Common {
            // A Common request sees the outputs of whatever chains to it, in any scenario.
            for s in &self.template.scenarios {
                for r in &s.requests {
                    if r.next.is_some() {
                        names.extend(r.outputs.iter().map(|o| o.name.clone()));
                    }
                }
            }
        }
        Scope {
            scenario: &scenario.id,
            names,
        }
    }

    fn check_information(&self, d: &mut Diagnostics<'_>) {
        let info = &self.template.info;
        let pairs = [
            (info.call_journal, ScenarioId::CallJournal, "CallJournal"),
            (
                info.create_new_contact,
                ScenarioId::CreateNewContact,
                "CreateNewContact",
            ),
            (
                info.create_new_ticket,
                ScenarioId::CreateNewTicket,
                "CreateNewTicket",
            ),
            (
                info.user_association,
                ScenarioId::UserAssociation,
                "UserAssociation",
            ),
        ];
        for (enabled, id, attribute) in pairs {
            if enabled && self.template.scenario(&id).is_none() {
                d.warning(
                    0,
                    format!("<Information {attribute}=\"1\"> but the template has no {id} scenario; the feature stays off"),
                );
            }
        }
        if self
            .template
            .scenario(&ScenarioId::SyncContactAuto)
            .is_none()
        {
            d.warning(
                0,
                "the template has no SyncContactAuto scenario: callers are never looked up",
            );
        }
    }

    fn check_auth(&mut self, d: &mut Diagnostics<'_>) {
        let Some(scenario) = self.template.scenario(&ScenarioId::AuthMethod) else {
            if self.template.info.auth_type != AuthType::None {
                d.error(
                    0,
                    format!(
                        "AuthType is {} but the template has no AuthMethod scenario",
                        self.template.info.auth_type
                    ),
                );
            }
            return;
        };
        let scope = self.base_scope(scenario);
        if let Some(p) = scenario.setting("AuthMethod") {
            let value = p.value.text.trim();
            match AuthType::parse(value) {
                None => d.error(
                    p.value.start(),
                    format!("AuthMethod \"{value}\" is not one of none, basic, oauth2, bearertoken"),
                ),
                Some(m) if !value.is_empty() && m != self.template.info.auth_type => d.warning(
                    p.value.start(),
                    format!(
                        "AuthMethod is {m} but <Information AuthType=\"{}\">; Callbox uses AuthMethod",
                        self.template.info.auth_type
                    ),
                ),
                Some(_) => {}
            }
        }
        let method = self.auth.method;
        let require = |name: &str, why: &str, d: &mut Diagnostics<'_>| {
            if scenario
                .setting_value(name)
                .is_none_or(|v| v.trim().is_empty())
            {
                d.error(
                    scenario.offset,
                    format!("AuthMethod scenario needs {name} for {why}"),
                );
            }
        };
        match method {
            AuthType::Basic => require("Base64EncodedCredential", "basic authentication", d),
            AuthType::OAuth2 => {
                require("AuthEndPoint", "OAuth2", d);
                require("TokenEndPoint", "OAuth2", d);
            }
            AuthType::Bearer => require("TokenEndPoint", "bearer token authentication", d),
            AuthType::None => {}
        }
        if let Some(p) = scenario.setting("CredentialType") {
            let v = p.value.text.trim();
            if !v.is_empty() && v != "username_password" && v != "api_key" {
                d.warning(
                    p.value.start(),
                    format!("CredentialType \"{v}\" is neither username_password nor api_key"),
                );
            }
        }
        if let Some(p) = scenario.setting("TokenRefreshInterval") {
            let v = p.value.text.trim();
            if !v.is_empty() && v.parse::<u32>().is_err() {
                d.error(
                    p.value.start(),
                    format!(
                        "TokenRefreshInterval \"{v}\" must be a whole number of minutes (0 = never)"
                    ),
                );
            }
        }
        for (name, what) in [
            ("AuthEndPoint", "AuthEndPoint"),
            ("TokenEndPoint", "TokenEndPoint"),
        ] {
            if let Some(p) = scenario.setting(name) {
                self.text(&p.value, what, Some(&scope), d);
                check_url_prefix(&p.value, what, d);
            }
        }
        for name in ["AdditionalQueryString", "Base64EncodedCredential", "Scope"] {
            if let Some(p) = scenario.setting(name) {
                self.text(&p.value, name, Some(&scope), d);
            }
        }
        let mut field_names = BTreeSet::new();
        for p in scenario.group("CustomFieldList") {
            if !field_names.insert(p.name.clone()) {
                d.warning(p.offset, format!("field {} is defined twice", p.name));
            }
            match p.editor.as_deref().map(str::to_ascii_lowercase).as_deref() {
                None | Some("string") | Some("password") => {}
                Some("list") => {
                    if p.value.text.trim().is_empty() {
                        d.warning(
                            p.offset,
                            format!("list field {} has no options (Value=\"a,b\")", p.name),
                        );
                    }
                }
                Some(other) => d.warning(
                    p.offset,
                    format!(
                        "field {} has Editor \"{other}\"; expected string, password or list",
                        p.name
                    ),
                ),
            }
            if !is_identifier(&p.name) {
                d.error(
                    p.offset,
                    format!("field name \"{}\" cannot be used as a template variable (letters, digits and _ only)", p.name),
                );
            }
        }
        for p in scenario.group("PopulateTemplateString") {
            if let Some(k) = &p.kind
                && !k.eq_ignore_ascii_case("header")
            {
                d.warning(
                    p.offset,
                    format!(
                        "PopulateTemplateString {} has Type \"{k}\"; only Header is supported",
                        p.name
                    ),
                );
            }
            if !is_header_name(&p.name) {
                d.error(
                    p.offset,
                    format!("\"{}\" is not a valid HTTP header name", p.name),
                );
            }
            // Headers are rendered with each scenario's own variables, so they are not checked
            // against one scenario's names.
            self.text(&p.value, &format!("header {}", p.name), None, d);
        }
    }

    fn check_scenario(&mut self, scenario: &Scenario, d: &mut Diagnostics<'_>) {
        if scenario.id == ScenarioId::AuthMethod {
            return;
        }
        let mut scope = self.base_scope(scenario);
        // Scenario settings that are templates.
        for name in ["Subject", "Description"] {
            if let Some(p) = scenario.setting(name) {
                self.text(&p.value, name, Some(&scope), d);
            }
        }
        match scenario.id {
            ScenarioId::SyncContactAuto | ScenarioId::SearchContact => {
                self.check_contact_scenario(scenario, &scope, d)
            }
            ScenarioId::UserAssociation => {
                for r in &scenario.requests {
                    if r.output("UserUniqueId").is_none() {
                        d.error(
                            r.offset,
                            format!(
                                "UserAssociation request {} needs an output UserUniqueId",
                                r.name
                            ),
                        );
                    }
                    if r.output("Email").is_none() {
                        d.warning(r.offset, format!("UserAssociation request {} has no Email output: users cannot be associated automatically", r.name));
                    }
                }
            }
            _ => {}
        }
        if scenario.requests.is_empty() && !matches!(scenario.id, ScenarioId::Other(_)) {
            d.warning(
                scenario.offset,
                format!("scenario {} has no requests", scenario.id),
            );
        }
        for request in &scenario.requests {
            self.check_request(request, &scope, d);
            // Later requests see this one's outputs.
            scope
                .names
                .extend(request.outputs.iter().map(|o| o.name.clone()));
        }
    }

    fn check_contact_scenario(
        &mut self,
        scenario: &Scenario,
        scope: &Scope<'_>,
        d: &mut Diagnostics<'_>,
    ) {
        let url_type = scenario.setting("ContactUrlType");
        let kind = match url_type {
            None => None,
            Some(p) if p.value.text.trim().is_empty() => None,
            Some(p) => match ContactUrlType::parse(&p.value.text) {
                Some(k) => Some(k),
                None => {
                    d.error(
                        p.value.start(),
                        format!("ContactUrlType \"{}\" is neither specify_url_format nor retrieve_from_contact", p.value.text),
                    );
                    None
                }
            },
        };
        let mut popup_scope = Scope {
            scenario: scope.scenario,
            names: scope.names.clone(),
        };
        for r in &scenario.requests {
            popup_scope
                .names
                .extend(r.outputs.iter().map(|o| o.name.clone()));
        }
        match kind {
            Some(ContactUrlType::SpecifyUrlFormat) => match scenario.setting("URLFormat") {
                Some(p) if !p.value.text.trim().is_empty() => {
                    self.text(&p.value, "the popup URLFormat", Some(&popup_scope), d);
                    check_url_prefix(&p.value, "the popup URLFormat", d);
                }
                _ => d.error(
                    scenario.offset,
                    format!("{} uses ContactUrlType specify_url_format but has no URLFormat", scenario.id),
                ),
            },
            Some(ContactUrlType::RetrieveFromContact) => match scenario.setting("ContactFieldForUri") {
                Some(p) if !p.value.text.trim().is_empty() => check_path(&p.value, "ContactFieldForUri", d),
                _ => d.error(
                    scenario.offset,
                    format!("{} uses ContactUrlType retrieve_from_contact but has no ContactFieldForUri", scenario.id),
                ),
            },
            None => {}
        }
        if scenario.id == ScenarioId::SyncContactAuto {
            let any_phone_enabled = PHONE_FIELDS
                .iter()
                .any(|f| contact_field_enabled(scenario, f));
            if !any_phone_enabled {
                d.error(scenario.offset, "SyncContactAuto must enable at least one phone number (e.g. BusinessNumberEnable=1)");
            }
        }
        for r in &scenario.requests {
            let mut names: BTreeSet<&str> = r
                .outputs
                .iter()
                .filter(|o| !o.path.text.trim().is_empty())
                .map(|o| o.name.as_str())
                .collect();
            let mut next = r.next.as_ref().map(|(n, _)| n.clone());
            let mut hops = 0;
            while let (Some(name), true) = (next.take(), hops < 16) {
                hops += 1;
                if let Some(c) = self.template.common_request(&name) {
                    names.extend(
                        c.outputs
                            .iter()
                            .filter(|o| !o.path.text.trim().is_empty())
                            .map(|o| o.name.as_str()),
                    );
                    next = c.next.as_ref().map(|(n, _)| n.clone());
                }
            }
            let missing: Vec<&str> = ["ContactsId", "FirstName"]
                .into_iter()
                .filter(|f| !names.contains(f))
                .collect();
            let has_phone = PHONE_FIELDS
                .iter()
                .any(|f| names.contains(f) && contact_field_enabled(scenario, f));
            let severity_error = scenario.id == ScenarioId::SyncContactAuto;
            let mut report = |msg: String| {
                if severity_error {
                    d.error(r.offset, msg);
                } else {
                    d.warning(r.offset, msg);
                }
            };
            if !missing.is_empty() {
                report(format!(
                    "{} request {} must map {} (an <Output> with a Path)",
                    scenario.id,
                    r.name,
                    missing.join(" and ")
                ));
            }
            if !has_phone {
                report(format!(
                    "{} request {} must map at least one phone number ({})",
                    scenario.id,
                    r.name,
                    PHONE_FIELDS.join(", ")
                ));
            }
        }
    }

    fn check_request(&mut self, request: &Request, scope: &Scope<'_>, d: &mut Diagnostics<'_>) {
        let what = format!("URLFormat of request {}", request.name);
        self.text(&request.url_format, &what, Some(scope), d);
        check_url_prefix(&request.url_format, &what, d);
        let mut outputs = BTreeSet::new();
        for o in &request.outputs {
            if !outputs.insert(o.name.as_str()) {
                d.warning(
                    o.offset,
                    format!(
                        "output {} appears twice in request {}",
                        o.name, request.name
                    ),
                );
            }
            if !o.path.text.is_empty() {
                check_path(&o.path, &format!("output {}", o.name), d);
                if o.path.text.contains("{{") {
                    self.text(
                        &o.path,
                        &format!("the Path of output {}", o.name),
                        Some(scope),
                        d,
                    );
                }
            }
        }
        if let Some((next, offset)) = &request.next
            && self.template.common_request(next).is_none()
        {
            d.error(
                *offset,
                format!("Next=\"{next}\" names no request in the Common scenario"),
            );
        }
        let mut body_params = 0;
        for p in &request.parameters {
            let Some(kind) = p.request_kind() else {
                continue;
            };
            let text = p.template().clone();
            let what = format!("{} parameter {}", p.kind.as_deref().unwrap_or(""), p.name);
            let compiled = self.text(&text, &what, Some(scope), d);
            match kind {
                ParameterKind::Header | ParameterKind::Md5 => {
                    if !is_header_name(&p.name) {
                        d.error(
                            p.offset,
                            format!("\"{}\" is not a valid HTTP header name", p.name),
                        );
                    }
                }
                ParameterKind::Path => {
                    if !request.url_format.text.contains(&format!("{{{}}}", p.name)) {
                        d.error(
                            p.offset,
                            format!("Path parameter {0} needs a {{{0}}} placeholder in the request's URLFormat", p.name),
                        );
                    }
                }
                ParameterKind::Body => {
                    body_params += 1;
                    if !request.is_form_encoded()
                        && let Some(t) = compiled
                    {
                        check_json_body(&t, &text, self.funcs, d);
                    }
                }
                ParameterKind::Query => {}
            }
        }
        if body_params > 1 && !request.is_form_encoded() {
            d.warning(
                request.offset,
                format!("request {} has {body_params} Body parameters; only the first is sent unless RequestEncoding is form-encoded", request.name),
            );
        }
        if body_params > 0 && matches!(request.method.as_str(), "GET" | "HEAD") {
            d.warning(
                request.offset,
                format!(
                    "request {} sends a body with {}",
                    request.name, request.method
                ),
            );
        }
    }
}

/// Renders a JSON body with sample values for every variable and checks the result is JSON.
fn check_json_body(template: &Template, text: &Located, funcs: &Funcs, d: &mut Diagnostics<'_>) {
    let trimmed = text.text.trim_start();
    if !(trimmed.starts_with('{') || trimmed.starts_with('[')) {
        return;
    }
    let mut sample = serde_json::Map::new();
    for f in template.root_fields() {
        sample.insert(f.name, serde_json::Value::String("1".into()));
    }
    let mut out = String::new();
    let mut sink = ContextSink::new(&mut out, OutputContext::Json);
    let data = serde_json::Value::Object(sample);
    if template
        .execute(
            &data,
            funcs,
            &callbox_gotmpl::ExecOptions::default(),
            &mut sink,
        )
        .is_ok()
        && let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&out)
    {
        d.warning(
            text.start(),
            format!("the body is not valid JSON once rendered (with sample values): {e}"),
        );
    }
}

fn check_path(path: &Located, what: &str, d: &mut Diagnostics<'_>) {
    if let Err(e) = callbox_gjson::validate_path(&path.text) {
        let at = path.file_offset(e.offset);
        match e.kind {
            callbox_gjson::PathErrorKind::Syntax => {
                d.error(at, format!("GJSON path error in {what}: {}", e.message))
            }
            callbox_gjson::PathErrorKind::UnknownModifier => {
                d.warning(at, format!("GJSON path in {what}: {}", e.message))
            }
        }
    }
}

/// A URL must be http(s); checkable when it starts with literal text.
fn check_url_prefix(url: &Located, what: &str, d: &mut Diagnostics<'_>) {
    let text = url.text.trim_start();
    let literal = text.split("{{").next().unwrap_or("");
    if literal.is_empty() {
        return;
    }
    let lower = literal.to_ascii_lowercase();
    let ok = ["https://", "http://"]
        .iter()
        .any(|p| lower.starts_with(p) || p.starts_with(lower.as_str()));
    if !ok {
        d.error(
            url.start(),
            format!(
                "{what} must be an http:// or https:// URL, not \"{}\"",
                truncate(text, 60)
            ),
        );
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n).collect();
        t.push('…');
        t
    }
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

fn is_header_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
