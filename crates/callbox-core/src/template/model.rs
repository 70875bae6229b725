//! The integration template as data: every element and attribute of the Yeastar P-Series
//! custom CRM/helpdesk format, plus Callbox's documented extensions.

use std::fmt;

use super::xml::Located;

/// A whole integration template.
#[derive(Clone, Debug, Default)]
pub struct IntegrationTemplate {
    /// The root `<Information>` element's properties.
    pub info: Information,
    /// Root-level `<Parameters>` (rarely used; kept as found).
    pub root_parameters: Vec<Parameter>,
    /// Scenarios in document order.
    pub scenarios: Vec<Scenario>,
}

impl IntegrationTemplate {
    /// The first scenario with `id`.
    pub fn scenario(&self, id: &ScenarioId) -> Option<&Scenario> {
        self.scenarios.iter().find(|s| &s.id == id)
    }

    /// The request named `name` in the `Common` scenario (a `Next` target).
    pub fn common_request(&self, name: &str) -> Option<&Request> {
        self.scenario(&ScenarioId::Common)?
            .requests
            .iter()
            .find(|r| r.name == name)
    }

    /// The authentication settings (from the `AuthMethod` scenario, or defaults from `AuthType`).
    pub fn auth(&self) -> Auth {
        Auth::from_template(self)
    }
}

/// The `<Information>` attributes.
#[derive(Clone, Debug, Default)]
pub struct Information {
    /// `Provider`: `crm` or `helpdesk`.
    pub provider: String,
    /// `Name`: shown to users.
    pub name: String,
    /// `Key`: unique identifier of the template.
    pub key: String,
    /// `Logo`: file name of the logo.
    pub logo: String,
    /// `Remark`: description.
    pub remark: String,
    /// `Version`, e.g. `1.0.0`.
    pub version: String,
    /// `AuthType`.
    pub auth_type: AuthType,
    /// `MaxConcurrentRequest` (5 when absent).
    pub max_concurrent_request: u32,
    /// `UserAssociation` is `1`.
    pub user_association: bool,
    /// `CallJournal` is `1`.
    pub call_journal: bool,
    /// `CreateNewContact` is `1`.
    pub create_new_contact: bool,
    /// `CreateNewTicket` is `1`.
    pub create_new_ticket: bool,
}

/// How requests authenticate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthType {
    /// No authentication (an API key may still travel in a header or URL).
    #[default]
    None,
    /// `Authorization: Basic base64(Base64EncodedCredential)`.
    Basic,
    /// OAuth2 authorization code flow.
    OAuth2,
    /// `Authorization: Bearer {{.AccessToken}}` from a token endpoint.
    Bearer,
}

impl AuthType {
    /// Parses the template spelling (`none`, `basic`, `oauth2`, `bearer` / `bearertoken`).
    pub fn parse(s: &str) -> Option<AuthType> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "none" => Some(AuthType::None),
            "basic" => Some(AuthType::Basic),
            "oauth2" | "oauth" => Some(AuthType::OAuth2),
            "bearer" | "bearertoken" | "bearer_token" => Some(AuthType::Bearer),
            _ => None,
        }
    }
}

impl fmt::Display for AuthType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthType::None => "none",
            AuthType::Basic => "basic",
            AuthType::OAuth2 => "oauth2",
            AuthType::Bearer => "bearertoken",
        })
    }
}

/// The scenario ids the format knows, and Callbox's extensions.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScenarioId {
    /// `AuthMethod`: authentication settings and the integration page's fields.
    AuthMethod,
    /// `UserAssociation`: list CRM users.
    UserAssociation,
    /// `SyncContactAuto`: find the contact for a number, popup URL (`getDataIframe`).
    SyncContactAuto,
    /// `SearchContact`: search contacts by a typed value (Yeastar dial search).
    SearchContact,
    /// `CreateNewContact`: create a contact (`handleCreateContact`).
    CreateNewContact,
    /// `CreateNewTicket`: create a ticket (`handleCreateTicket`).
    CreateNewTicket,
    /// `CallJournal`: log the call when it ends (`saveLogCRM`).
    CallJournal,
    /// `GetGlobalInfo`: values fetched once and available everywhere.
    GetGlobalInfo,
    /// `Common`: requests other requests chain to with `Outputs Next`.
    Common,
    /// Callbox extension `PreCallJournal`: log the call when it is answered (`savePreLogCRM`).
    PreCallJournal,
    /// Callbox extension `SmsNote`: log an SMS as a note (`createSMSNote`).
    SmsNote,
    /// Callbox extension `SendSms`: send an SMS through the integration (an SMS provider's
    /// API; seed 001's `SendSMS` endpoints). Once sent, it is logged with `SmsNote`.
    SendSms,
    /// Any other id (kept, with a warning).
    Other(String),
}

impl ScenarioId {
    /// Every id Callbox knows, in the order the documentation lists them.
    pub const KNOWN: [ScenarioId; 12] = [
        ScenarioId::AuthMethod,
        ScenarioId::GetGlobalInfo,
        ScenarioId::UserAssociation,
        ScenarioId::SyncContactAuto,
        ScenarioId::SearchContact,
        ScenarioId::CreateNewContact,
        ScenarioId::CreateNewTicket,
        ScenarioId::PreCallJournal,
        ScenarioId::CallJournal,
        ScenarioId::SmsNote,
        ScenarioId::SendSms,
        ScenarioId::Common,
    ];

    /// Parses an `Id` attribute.
    pub fn parse(s: &str) -> ScenarioId {
        match s {
            "AuthMethod" => ScenarioId::AuthMethod,
            "UserAssociation" => ScenarioId::UserAssociation,
            "SyncContactAuto" => ScenarioId::SyncContactAuto,
            "SearchContact" => ScenarioId::SearchContact,
            "CreateNewContact" => ScenarioId::CreateNewContact,
            "CreateNewTicket" => ScenarioId::CreateNewTicket,
            "CallJournal" => ScenarioId::CallJournal,
            "GetGlobalInfo" => ScenarioId::GetGlobalInfo,
            "Common" => ScenarioId::Common,
            "PreCallJournal" => ScenarioId::PreCallJournal,
            "SmsNote" => ScenarioId::SmsNote,
            "SendSms" => ScenarioId::SendSms,
            other => ScenarioId::Other(other.to_string()),
        }
    }

    /// The id as written in templates.
    pub fn as_str(&self) -> &str {
        match self {
            ScenarioId::AuthMethod => "AuthMethod",
            ScenarioId::UserAssociation => "UserAssociation",
            ScenarioId::SyncContactAuto => "SyncContactAuto",
            ScenarioId::SearchContact => "SearchContact",
            ScenarioId::CreateNewContact => "CreateNewContact",
            ScenarioId::CreateNewTicket => "CreateNewTicket",
            ScenarioId::CallJournal => "CallJournal",
            ScenarioId::GetGlobalInfo => "GetGlobalInfo",
            ScenarioId::Common => "Common",
            ScenarioId::PreCallJournal => "PreCallJournal",
            ScenarioId::SmsNote => "SmsNote",
            ScenarioId::SendSms => "SendSms",
            ScenarioId::Other(s) => s,
        }
    }

    /// Whether this scenario is a Callbox extension (not in Yeastar's format).
    pub fn is_extension(&self) -> bool {
        matches!(
            self,
            ScenarioId::PreCallJournal | ScenarioId::SmsNote | ScenarioId::SendSms
        )
    }

    /// Whether the scenario writes to the CRM (and so goes through the outbox in the app).
    pub fn writes(&self) -> bool {
        matches!(
            self,
            ScenarioId::CreateNewContact
                | ScenarioId::CreateNewTicket
                | ScenarioId::PreCallJournal
                | ScenarioId::CallJournal
                | ScenarioId::SmsNote
                | ScenarioId::SendSms
        )
    }
}

impl fmt::Display for ScenarioId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `<Scenario>`.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// `Id`.
    pub id: ScenarioId,
    /// `Type`: `REST`, or `AUTH` for `AuthMethod`.
    pub kind: String,
    /// `<Presets>` children (kept as found; Yeastar leaves them empty).
    pub presets: Vec<Parameter>,
    /// `<Parameters>` children: settings (`Subject`, `ContactUrlType`…) and grouped fields.
    pub parameters: Vec<Parameter>,
    /// `<Requests>` in document order.
    pub requests: Vec<Request>,
    /// File offset of the `<Scenario` tag.
    pub offset: usize,
}

impl Scenario {
    /// The ungrouped parameter (no `Father`) named `name`: a scenario setting.
    pub fn setting(&self, name: &str) -> Option<&Parameter> {
        self.parameters
            .iter()
            .find(|p| p.father.is_none() && p.name == name)
    }

    /// The value of setting `name`, if present.
    pub fn setting_value(&self, name: &str) -> Option<&str> {
        self.setting(name).map(|p| p.value.text.as_str())
    }

    /// Whether setting `name` is `1` (or `true`).
    pub fn flag(&self, name: &str) -> bool {
        self.setting_value(name).is_some_and(is_true)
    }

    /// Parameters grouped under `father` (e.g. `CustomFieldList`).
    pub fn group<'s>(&'s self, father: &'s str) -> impl Iterator<Item = &'s Parameter> + 's {
        self.parameters
            .iter()
            .filter(move |p| p.father.as_deref() == Some(father))
    }

    /// The request named `name`.
    pub fn request(&self, name: &str) -> Option<&Request> {
        self.requests.iter().find(|r| r.name == name)
    }
}

/// Whether a template flag value means "on".
pub fn is_true(value: &str) -> bool {
    matches!(value.trim(), "1" | "true" | "True" | "TRUE")
}

/// A `<Parameter>`: a scenario setting, a grouped field/header, or a request parameter.
#[derive(Clone, Debug, Default)]
pub struct Parameter {
    /// `Name`.
    pub name: String,
    /// `Value` (empty when absent).
    pub value: Located,
    /// Whether a `Value` attribute was present.
    pub has_value: bool,
    /// `Father`: the group (`CustomFieldList`, `PopulateTemplateString`, `TokenErrorMap`,
    /// `AuthOption`, `CustomScenarioParameter`).
    pub father: Option<String>,
    /// `Type`: `Header`, `Body`, `Query`, `Path`, `Md5` for request parameters; `Header` for
    /// `PopulateTemplateString`; `TokenInvalid` in `TokenErrorMap`.
    pub kind: Option<String>,
    /// `Editor` of a custom field: `string`, `password`, `list`.
    pub editor: Option<String>,
    /// `Title` of a custom field.
    pub title: Option<String>,
    /// `Key` of a custom field (Yeastar exports repeat the name here).
    pub key: Option<String>,
    /// `Description` (headers).
    pub description: Option<String>,
    /// Element text (Callbox extension: a body may be given as text or CDATA).
    pub text: Located,
    /// File offset of the `<Parameter` tag.
    pub offset: usize,
}

impl Parameter {
    /// The parameter's template text: its `Value`, or its element text when it has no `Value`.
    pub fn template(&self) -> &Located {
        if !self.has_value && !self.text.text.trim().is_empty() {
            &self.text
        } else {
            &self.value
        }
    }

    /// The parameter kind for a request parameter.
    pub fn request_kind(&self) -> Option<ParameterKind> {
        self.kind.as_deref().and_then(ParameterKind::parse)
    }
}

/// Where a request parameter goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParameterKind {
    /// An HTTP header.
    Header,
    /// The request body (`Data`), or a form field when the request is form-encoded.
    Body,
    /// A query-string parameter (Callbox extension, seed 001).
    Query,
    /// Replaces `{Name}` in the URL path, as one path segment (Callbox extension, seed 001).
    Path,
    /// A header whose value is the hex MD5 of the rendered value (Callbox extension, seed 001).
    Md5,
}

impl ParameterKind {
    /// Parses a `Type` attribute.
    pub fn parse(s: &str) -> Option<ParameterKind> {
        match s.trim().to_ascii_lowercase().as_str() {
            "header" => Some(ParameterKind::Header),
            "body" => Some(ParameterKind::Body),
            "query" => Some(ParameterKind::Query),
            "path" => Some(ParameterKind::Path),
            "md5" => Some(ParameterKind::Md5),
            _ => None,
        }
    }
}

/// A `<Request>`.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// `Name` (for SyncContactAuto and CreateNewContact: the contact type).
    pub name: String,
    /// `Method` (upper-cased; GET when absent).
    pub method: String,
    /// `URLFormat` (or `URL`).
    pub url_format: Located,
    /// `ResponseType` (e.g. `application/json`).
    pub response_type: String,
    /// `RequestEncoding` (empty: JSON/raw body; `UrlEncoded`/`application/x-www-form-urlencoded`: form).
    pub request_encoding: String,
    /// `Weight` (kept; requests run in document order).
    pub weight: i64,
    /// Request parameters.
    pub parameters: Vec<Parameter>,
    /// `<Outputs>`.
    pub outputs: Vec<Output>,
    /// `<Outputs Next="…">`: a Common request to run per result, with its file offset.
    pub next: Option<(String, usize)>,
    /// File offset of the `<Request` tag.
    pub offset: usize,
}

impl Request {
    /// The output named `name`.
    pub fn output(&self, name: &str) -> Option<&Output> {
        self.outputs.iter().find(|o| o.name == name)
    }

    /// Whether bodies are form-encoded rather than sent as written.
    pub fn is_form_encoded(&self) -> bool {
        let e = self.request_encoding.trim().to_ascii_lowercase();
        e == "urlencoded" || e == "form" || e.contains("x-www-form-urlencoded")
    }
}

/// An `<Output>`: a value extracted from the response with a GJSON path.
#[derive(Clone, Debug, Default)]
pub struct Output {
    /// `Name`: the variable it defines.
    pub name: String,
    /// `Path`: a GJSON path.
    pub path: Located,
    /// `Type` (Yeastar: always `string`).
    pub kind: String,
    /// File offset of the `<Output` tag.
    pub offset: usize,
}

/// A field on the integration page (`Father="CustomFieldList"`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CustomField {
    /// Variable name.
    pub name: String,
    /// Input kind.
    pub editor: FieldEditor,
    /// Label.
    pub title: String,
    /// Options of a `list` field.
    pub options: Vec<String>,
}

/// How a custom field is edited.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldEditor {
    /// Plain text.
    String,
    /// Masked; the value is a secret (keychain, never shown or logged).
    Password,
    /// One of `options`.
    List,
}

/// Authentication settings gathered from `AuthType` and the `AuthMethod` scenario.
#[derive(Clone, Debug, Default)]
pub struct Auth {
    /// The method (`AuthMethod` parameter, else `AuthType`).
    pub method: AuthType,
    /// `AuthEndPoint` (oauth2).
    pub auth_endpoint: Option<Located>,
    /// `TokenEndPoint` (oauth2, bearer).
    pub token_endpoint: Option<Located>,
    /// `AdditionalQueryString` (oauth2).
    pub additional_query_string: Option<Located>,
    /// `Scope` (oauth2), comma separated.
    pub scope: Option<String>,
    /// `CredentialType` (basic): `username_password` or `api_key`.
    pub credential_type: Option<String>,
    /// `Base64EncodedCredential` (basic), e.g. `{{.username}}:{{.password}}`.
    pub base64_encoded_credential: Option<Located>,
    /// `TokenRefreshInterval` in minutes: `None` = default (25), `Some(0)` = never.
    pub token_refresh_interval: Option<u32>,
    /// `TokenType` (e.g. `Bearer`).
    pub token_type: Option<String>,
    /// `TokenInvalid` markers: an error body containing one means the token is invalid.
    pub token_invalid: Vec<String>,
    /// `AuthOption` settings (e.g. `NoNeedRefreshAccessToken`).
    pub options: Vec<(String, String)>,
    /// Fields the user fills in on the integration page.
    pub fields: Vec<CustomField>,
    /// Headers added to every request (`PopulateTemplateString`).
    pub headers: Vec<Parameter>,
}

impl Auth {
    /// The default token refresh interval, in minutes.
    pub const DEFAULT_TOKEN_REFRESH_MINUTES: u32 = 25;

    fn from_template(template: &IntegrationTemplate) -> Auth {
        let mut auth = Auth {
            method: template.info.auth_type,
            ..Auth::default()
        };
        let Some(scenario) = template.scenario(&ScenarioId::AuthMethod) else {
            return auth;
        };
        let located = |name: &str| {
            scenario
                .setting(name)
                .filter(|p| !p.value.text.trim().is_empty())
                .map(|p| p.value.clone())
        };
        if let Some(method) = scenario
            .setting_value("AuthMethod")
            .and_then(AuthType::parse)
            && scenario
                .setting_value("AuthMethod")
                .is_some_and(|v| !v.trim().is_empty())
        {
            auth.method = method;
        }
        auth.auth_endpoint = located("AuthEndPoint");
        auth.token_endpoint = located("TokenEndPoint");
        auth.additional_query_string = located("AdditionalQueryString");
        auth.scope = located("Scope").map(|l| l.text);
        auth.credential_type = located("CredentialType").map(|l| l.text);
        auth.base64_encoded_credential = located("Base64EncodedCredential");
        auth.token_refresh_interval =
            located("TokenRefreshInterval").and_then(|l| l.text.trim().parse().ok());
        auth.token_type = located("TokenType").map(|l| l.text);
        for p in &scenario.parameters {
            let is_marker = (p.father.is_none() && p.name == "TokenInvalid")
                || p.father.as_deref() == Some("TokenErrorMap");
            if is_marker && !p.value.text.is_empty() {
                auth.token_invalid.push(p.value.text.clone());
            }
        }
        auth.options = scenario
            .group("AuthOption")
            .map(|p| (p.name.clone(), p.value.text.clone()))
            .collect();
        auth.fields = scenario
            .group("CustomFieldList")
            .map(|p| CustomField {
                name: p.name.clone(),
                editor: match p.editor.as_deref().map(str::to_ascii_lowercase).as_deref() {
                    Some("password") => FieldEditor::Password,
                    Some("list") => FieldEditor::List,
                    _ => FieldEditor::String,
                },
                title: p.title.clone().unwrap_or_else(|| p.name.clone()),
                options: p
                    .value
                    .text
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
            .collect();
        auth.headers = scenario.group("PopulateTemplateString").cloned().collect();
        auth
    }

    /// Names of the fields whose values are secrets.
    pub fn secret_field_names(&self) -> impl Iterator<Item = &str> {
        self.fields
            .iter()
            .filter(|f| f.editor == FieldEditor::Password)
            .map(|f| f.name.as_str())
    }
}

/// The contact fields of the `SyncContactAuto` scenario, in the template's order.
pub const CONTACT_FIELDS: [&str; 21] = [
    "ContactsId",
    "FirstName",
    "LastName",
    "Company",
    "Email",
    "BusinessNumber",
    "BusinessNumber2",
    "BusinessFaxNumber",
    "MobileNumber",
    "MobileNumber2",
    "HomeNumber",
    "HomeNumber2",
    "HomeFaxNumber",
    "OtherNumber",
    "ZipCode",
    "Street",
    "City",
    "State",
    "Country",
    "Remark",
    "CustomValue",
];

/// The phone-number fields among [`CONTACT_FIELDS`].
pub const PHONE_FIELDS: [&str; 9] = [
    "BusinessNumber",
    "BusinessNumber2",
    "BusinessFaxNumber",
    "MobileNumber",
    "MobileNumber2",
    "HomeNumber",
    "HomeNumber2",
    "HomeFaxNumber",
    "OtherNumber",
];

/// Fields of a CRM user (`UserAssociation` outputs).
pub const USER_FIELDS: [&str; 4] = ["UserUniqueId", "FirstName", "LastName", "Email"];

/// How the popup URL of a contact is built (`ContactUrlType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContactUrlType {
    /// `specify_url_format`: render `URLFormat`.
    SpecifyUrlFormat,
    /// `retrieve_from_contact`: take it from the response with `ContactFieldForUri`.
    RetrieveFromContact,
}

impl ContactUrlType {
    /// Parses the setting.
    pub fn parse(s: &str) -> Option<ContactUrlType> {
        match s.trim() {
            "specify_url_format" => Some(ContactUrlType::SpecifyUrlFormat),
            "retrieve_from_contact" => Some(ContactUrlType::RetrieveFromContact),
            _ => None,
        }
    }
}

/// Whether the SyncContactAuto setting `<field>Enable` turns `field` on. ContactsId and
/// FirstName are always on; a field with no `…Enable` setting is on when the request maps it.
pub fn contact_field_enabled(scenario: &Scenario, field: &str) -> bool {
    if field == "ContactsId" || field == "FirstName" {
        return true;
    }
    match scenario.setting_value(&format!("{field}Enable")) {
        Some(v) => is_true(v),
        None => true,
    }
}
