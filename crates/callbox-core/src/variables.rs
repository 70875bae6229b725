//! Which variables each scenario's templates can use, and what they mean.
//!
//! This is the single source of truth for template validation ("a variable nothing defines")
//! and for the template author documentation (a test checks every entry is documented).

use crate::template::ScenarioId;

/// A variable Callbox supplies to templates.
#[derive(Clone, Copy, Debug)]
pub struct Variable {
    /// The name, as in `{{.Name}}`.
    pub name: &'static str,
    /// What it holds.
    pub description: &'static str,
}

const fn v(name: &'static str, description: &'static str) -> Variable {
    Variable { name, description }
}

/// Call information, available in every scenario a call drives.
pub const CALL: &[Variable] = &[
    v(
        "CallId",
        "Callbox extension: the call's unique id (stable for one call, used for de-duplication).",
    ),
    v("Communication_Type", "Direction: Inbound or Outbound."),
    v("CallerNumber", "Caller's number, as signalled."),
    v("CallerName", "Caller's name (empty when unknown)."),
    v(
        "CallerDisplayName",
        "Caller's display name as signalled (Yeastar exports use it; same as CallerName when nothing better is known).",
    ),
    v("CalleeNumber", "Callee's number."),
    v("CalleeName", "Callee's name."),
    v("Call_From", "The calling party: Name<number>."),
    v("Call_To", "The called party: Name<number>."),
    v(
        "Phone",
        "The other party's number (the contact's number): the caller on inbound calls, the callee on outbound calls.",
    ),
    v(
        "ContactNumber",
        "Same as Phone: the number of the contact the call is with.",
    ),
    v(
        "Time",
        "When the call started, in the agent's local time (yyyy-MM-dd HH:mm:ss).",
    ),
    v("StartTimeUnix", "Call start, Unix seconds."),
    v(
        "AnswerTimeUnix",
        "Callbox extension: when the call was answered, Unix seconds (empty if never).",
    ),
    v(
        "EndTimeUnix",
        "Call end, Unix seconds (empty before the call ends).",
    ),
    v(
        "Extension",
        "Callbox extension: the agent's extension number.",
    ),
    v("ExtensionFirstName", "The agent's first name."),
    v("ExtensionLastName", "The agent's last name."),
    v("ExtensionEmail", "The agent's email."),
    v(
        "CrmId",
        "The id of the CRM user associated with the agent's extension (UserAssociation).",
    ),
];

/// Call-log information (CallJournal, PreCallJournal, CreateNewTicket), on top of [`CALL`].
pub const JOURNAL: &[Variable] = &[
    v("Subject", "The rendered Subject parameter of the scenario."),
    v(
        "Description",
        "The rendered Description parameter of the scenario.",
    ),
    v(
        "ContactId",
        "The id of the contact the call was matched to (SyncContactAuto's ContactsId).",
    ),
    v(
        "ContactSyncType",
        "The contact type the contact was found as (the SyncContactAuto request's Name).",
    ),
    v(
        "TicketId",
        "The id of the ticket created for the call (CreateNewTicket's TicketId output).",
    ),
    v("CallDuration", "Seconds from call start to call end."),
    v("Talk_Duration", "Talk time (answer to end) as hh:mm:ss."),
    v("Talk_Duration_Sec", "Talk time in seconds."),
    v("Call_Status", "Missed or Completed."),
    v(
        "Call_Log_Status",
        "Missed Call, Outgoing Call, Incoming Call or Voicemail.",
    ),
    v(
        "CallDisposition",
        "MISSED, VOICEMAIL, BUSY, ANSWERED or NO ANSWER.",
    ),
    v(
        "EnableCallRecording",
        "1 when the call was recorded and recordings may be played from the CRM, else 0.",
    ),
    v(
        "RecordPath",
        "Link to the call recording (empty when there is none).",
    ),
    v("RecordingUrl", "Callbox extension: same as RecordPath."),
];

/// SMS information (SmsNote), on top of [`CALL`]'s agent variables.
pub const SMS: &[Variable] = &[
    v("SmsText", "Callbox extension: the message text."),
    v("SmsFrom", "Callbox extension: the sender's number."),
    v("SmsTo", "Callbox extension: the recipient's number."),
    v("SmsDirection", "Callbox extension: Inbound or Outbound."),
    v("Subject", "The rendered Subject parameter of the scenario."),
    v(
        "Description",
        "The rendered Description parameter of the scenario.",
    ),
    v("ContactId", "The id of the contact the SMS is with."),
    v("ContactSyncType", "The contact type of that contact."),
];

/// Contact information for CreateNewContact.
pub const NEW_CONTACT: &[Variable] = &[
    v("FirstName", "First name of the contact to create."),
    v("LastName", "Last name of the contact to create."),
    v(
        "DisplayName",
        "Full name of the contact to create (Yeastar exports use it).",
    ),
    v(
        "BusinessNumber",
        "The phone number of the contact to create.",
    ),
    v("Email", "Email of the contact to create (may be empty)."),
    v(
        "Company",
        "Company of the contact to create (may be empty).",
    ),
    v(
        "ContactSyncType",
        "The contact type being created (the request's Name).",
    ),
];

/// Contact lookups (SyncContactAuto requests).
pub const LOOKUP: &[Variable] = &[v(
    "Phone",
    "The number to look up: the other party of the call, or a number typed by the agent.",
)];

/// Contact search (SearchContact requests).
pub const SEARCH: &[Variable] = &[v(
    "SearchValue",
    "What the agent typed in the dial search (name, company or digits).",
)];

/// The popup URL (SyncContactAuto `URLFormat`), on top of the contact's fields.
pub const POPUP: &[Variable] = &[
    v("ContactId", "The contact's id (its ContactsId)."),
    v("ContactSyncType", "The contact type (the request's Name)."),
    v("CustomValue", "The CustomValue output of the contact."),
];

/// Authentication endpoints (AuthMethod).
pub const AUTH: &[Variable] = &[v(
    "redirect_uri",
    "Callbox extension: the OAuth2 redirect URI (a loopback address Callbox listens on during sign-in).",
)];

/// The access token, available to every request of oauth2 and bearer integrations.
pub const TOKEN: &[Variable] = &[v(
    "AccessToken",
    "The current access token (oauth2 and bearertoken).",
)];

/// Whether `name` is a variable Callbox supplies in `scenario` (fields, global outputs and
/// earlier outputs are checked separately, by the validator).
pub fn is_supplied(scenario: &ScenarioId, name: &str) -> bool {
    let has = |list: &[Variable]| list.iter().any(|v| v.name == name);
    let contact_field = crate::template::CONTACT_FIELDS.contains(&name);
    match scenario {
        ScenarioId::AuthMethod => has(AUTH),
        ScenarioId::GetGlobalInfo | ScenarioId::UserAssociation => false,
        ScenarioId::SyncContactAuto => has(CALL) || has(LOOKUP) || has(POPUP) || contact_field,
        ScenarioId::SearchContact => has(SEARCH) || has(POPUP) || contact_field,
        ScenarioId::Common => {
            has(CALL) || has(LOOKUP) || has(POPUP) || has(SEARCH) || contact_field
        }
        ScenarioId::CreateNewContact => has(CALL) || has(NEW_CONTACT),
        ScenarioId::CreateNewTicket | ScenarioId::PreCallJournal | ScenarioId::CallJournal => {
            has(CALL) || has(JOURNAL)
        }
        ScenarioId::SmsNote | ScenarioId::SendSms => has(CALL) || has(SMS),
        ScenarioId::Other(_) => true,
    }
}

/// Every variable list with a title, for documentation.
pub fn catalog() -> [(&'static str, &'static [Variable]); 9] {
    [
        ("Call", CALL),
        ("Call log", JOURNAL),
        ("SMS", SMS),
        ("New contact", NEW_CONTACT),
        ("Contact lookup", LOOKUP),
        ("Contact search", SEARCH),
        ("Popup URL", POPUP),
        ("Authentication", AUTH),
        ("Token", TOKEN),
    ]
}
