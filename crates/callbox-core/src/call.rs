//! Calls and SMS as the hooks see them: what happened on the phone, turned into the
//! variables the templates use (`Talk_Duration`, `Call_Log_Status`, `CallDisposition`…).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::functions::TimeZone;
use crate::time_format::go_format;

/// Which way a call went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The other party called the agent.
    Inbound,
    /// The agent called the other party.
    Outbound,
}

/// How a call ended (`CallDisposition`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// Talked.
    Answered,
    /// An inbound call nobody answered.
    Missed,
    /// The other side was busy.
    Busy,
    /// An outbound call nobody answered.
    NoAnswer,
    /// Went to voicemail.
    Voicemail,
}

impl Disposition {
    /// The template value: `ANSWERED`, `MISSED`, `BUSY`, `NO ANSWER`, `VOICEMAIL`.
    pub fn as_template_value(self) -> &'static str {
        match self {
            Disposition::Answered => "ANSWERED",
            Disposition::Missed => "MISSED",
            Disposition::Busy => "BUSY",
            Disposition::NoAnswer => "NO ANSWER",
            Disposition::Voicemail => "VOICEMAIL",
        }
    }
}

/// The agent whose phone the call is on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    /// Extension or own number.
    pub extension: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Email (used to associate the agent with a CRM user).
    pub email: String,
}

/// One call, as far as it has got.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    /// Unique id of the call (the key of its hooks: one log per call and integration).
    pub id: String,
    /// Direction.
    pub direction: Direction,
    /// The other party's number as signalled.
    pub remote_number: String,
    /// The other party's name, when known.
    pub remote_name: String,
    /// The agent.
    pub agent: Agent,
    /// Unix seconds when it started ringing or dialing.
    pub started_at: i64,
    /// Unix seconds when it was answered.
    pub answered_at: Option<i64>,
    /// Unix seconds when it ended.
    pub ended_at: Option<i64>,
    /// How it ended (derived from `answered_at` when not given).
    pub disposition: Option<Disposition>,
    /// Link to the recording.
    pub recording_url: Option<String>,
}

impl Call {
    /// A call that has just started ringing or dialing: not answered, not ended, no name yet.
    pub fn starting(
        id: impl Into<String>,
        direction: Direction,
        remote_number: impl Into<String>,
        agent: Agent,
        started_at: i64,
    ) -> Call {
        Call {
            id: id.into(),
            direction,
            remote_number: remote_number.into(),
            remote_name: String::new(),
            agent,
            started_at,
            answered_at: None,
            ended_at: None,
            disposition: None,
            recording_url: None,
        }
    }

    /// How it ended: the given disposition, else answered or missed/no answer.
    pub fn effective_disposition(&self) -> Disposition {
        self.disposition
            .unwrap_or(match (self.answered_at, self.direction) {
                (Some(_), _) => Disposition::Answered,
                (None, Direction::Inbound) => Disposition::Missed,
                (None, Direction::Outbound) => Disposition::NoAnswer,
            })
    }

    /// The call-log variables (seed 003's list plus Callbox's), for every call hook.
    /// `zone` gives the local time for `Time`; `crm_user` is the agent's associated CRM user.
    pub fn variables(&self, zone: &dyn TimeZone, crm_user: Option<&str>) -> Map<String, Value> {
        let mut v = Map::new();
        let mut set = |k: &str, val: String| {
            v.insert(k.to_string(), Value::String(val));
        };
        let agent_name = format!("{} {}", self.agent.first_name, self.agent.last_name)
            .trim()
            .to_string();
        let (caller_number, caller_name, callee_number, callee_name) = match self.direction {
            Direction::Inbound => (
                self.remote_number.clone(),
                self.remote_name.clone(),
                self.agent.extension.clone(),
                agent_name.clone(),
            ),
            Direction::Outbound => (
                self.agent.extension.clone(),
                agent_name.clone(),
                self.remote_number.clone(),
                self.remote_name.clone(),
            ),
        };
        set("CallId", self.id.clone());
        set(
            "Communication_Type",
            match self.direction {
                Direction::Inbound => "Inbound",
                Direction::Outbound => "Outbound",
            }
            .into(),
        );
        set("Call_From", format!("{caller_name}<{caller_number}>"));
        set("Call_To", format!("{callee_name}<{callee_number}>"));
        set("CallerDisplayName", caller_name.clone());
        set("CallerNumber", caller_number);
        set("CallerName", caller_name);
        set("CalleeNumber", callee_number);
        set("CalleeName", callee_name);
        set("Phone", self.remote_number.clone());
        set("ContactNumber", self.remote_number.clone());
        let (offset, _) = zone.offset_at(self.started_at);
        set(
            "Time",
            go_format(self.started_at, offset, "", "2006-01-02 15:04:05"),
        );
        set("StartTimeUnix", self.started_at.to_string());
        set(
            "AnswerTimeUnix",
            self.answered_at.map(|t| t.to_string()).unwrap_or_default(),
        );
        set(
            "EndTimeUnix",
            self.ended_at.map(|t| t.to_string()).unwrap_or_default(),
        );
        set("Extension", self.agent.extension.clone());
        set("ExtensionFirstName", self.agent.first_name.clone());
        set("ExtensionLastName", self.agent.last_name.clone());
        set("ExtensionEmail", self.agent.email.clone());
        set("CrmId", crm_user.unwrap_or_default().to_string());
        let disposition = self.effective_disposition();
        let answered = disposition == Disposition::Answered;
        let talk = match (self.answered_at, self.ended_at) {
            (Some(a), Some(e)) if answered => (e - a).max(0),
            _ => 0,
        };
        if let Some(end) = self.ended_at {
            set("CallDuration", (end - self.started_at).max(0).to_string());
            set("Talk_Duration", hh_mm_ss(talk));
            set("Talk_Duration_Sec", talk.to_string());
            set(
                "Call_Status",
                if answered { "Completed" } else { "Missed" }.into(),
            );
            set("CallDisposition", disposition.as_template_value().into());
        } else {
            for k in [
                "CallDuration",
                "Talk_Duration",
                "Talk_Duration_Sec",
                "Call_Status",
                "CallDisposition",
            ] {
                set(k, String::new());
            }
        }
        let log_status = match (disposition, self.direction) {
            (Disposition::Voicemail, _) => "Voicemail",
            (_, Direction::Outbound) => "Outgoing Call",
            (Disposition::Answered, Direction::Inbound) => "Incoming Call",
            (_, Direction::Inbound) if self.ended_at.is_some() => "Missed Call",
            _ => "Incoming Call",
        };
        set("Call_Log_Status", log_status.into());
        let recording = self.recording_url.clone().unwrap_or_default();
        set(
            "EnableCallRecording",
            if recording.is_empty() { "0" } else { "1" }.into(),
        );
        set("RecordPath", recording.clone());
        set("RecordingUrl", recording);
        v
    }
}

/// `hh:mm:ss`.
fn hh_mm_ss(seconds: i64) -> String {
    let s = seconds.max(0);
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// An SMS to log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sms {
    /// Unique id (the key of its hook).
    pub id: String,
    /// Direction.
    pub direction: Direction,
    /// The other party's number.
    pub remote_number: String,
    /// The text.
    pub text: String,
    /// The agent.
    pub agent: Agent,
    /// Unix seconds when sent or received.
    pub at: i64,
}

impl Sms {
    /// The SmsNote variables.
    pub fn variables(&self, zone: &dyn TimeZone, crm_user: Option<&str>) -> Map<String, Value> {
        let mut v = Map::new();
        let (from, to) = match self.direction {
            Direction::Inbound => (self.remote_number.clone(), self.agent.extension.clone()),
            Direction::Outbound => (self.agent.extension.clone(), self.remote_number.clone()),
        };
        let (offset, _) = zone.offset_at(self.at);
        for (k, val) in [
            ("SmsText", self.text.clone()),
            ("SmsFrom", from),
            ("SmsTo", to),
            (
                "SmsDirection",
                match self.direction {
                    Direction::Inbound => "Inbound".to_string(),
                    Direction::Outbound => "Outbound".to_string(),
                },
            ),
            ("Phone", self.remote_number.clone()),
            ("ContactNumber", self.remote_number.clone()),
            ("StartTimeUnix", self.at.to_string()),
            (
                "Time",
                go_format(self.at, offset, "", "2006-01-02 15:04:05"),
            ),
            ("Extension", self.agent.extension.clone()),
            ("ExtensionFirstName", self.agent.first_name.clone()),
            ("ExtensionLastName", self.agent.last_name.clone()),
            ("ExtensionEmail", self.agent.email.clone()),
            ("CrmId", crm_user.unwrap_or_default().to_string()),
        ] {
            v.insert(k.to_string(), Value::String(val));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::Utc;

    fn call() -> Call {
        Call {
            id: "c-1".into(),
            direction: Direction::Inbound,
            remote_number: "+14155551077".into(),
            remote_name: "Carla Rossi".into(),
            agent: Agent {
                extension: "1001".into(),
                first_name: "Agent".into(),
                last_name: "Smith".into(),
                email: "agent@example.com".into(),
            },
            started_at: 1717236000,
            answered_at: Some(1717236024),
            ended_at: Some(1717236325),
            disposition: None,
            recording_url: Some("https://pbx.example/r.wav".into()),
        }
    }

    #[test]
    fn an_answered_inbound_call() {
        let v = call().variables(&Utc, Some("u-9"));
        let get = |k: &str| v[k].as_str().unwrap().to_string();
        assert_eq!(get("Call_From"), "Carla Rossi<+14155551077>");
        assert_eq!(get("Call_To"), "Agent Smith<1001>");
        assert_eq!(get("Talk_Duration"), "00:05:01");
        assert_eq!(get("Talk_Duration_Sec"), "301");
        assert_eq!(get("CallDuration"), "325");
        assert_eq!(get("Call_Status"), "Completed");
        assert_eq!(get("Call_Log_Status"), "Incoming Call");
        assert_eq!(get("CallDisposition"), "ANSWERED");
        assert_eq!(get("Time"), "2024-06-01 10:00:00");
        assert_eq!(get("CrmId"), "u-9");
        assert_eq!(get("EnableCallRecording"), "1");
        assert_eq!(get("Phone"), "+14155551077");
    }

    #[test]
    fn missed_and_outbound_calls() {
        let mut c = call();
        c.answered_at = None;
        c.recording_url = None;
        let v = c.variables(&Utc, None);
        assert_eq!(v["Call_Status"], "Missed");
        assert_eq!(v["Call_Log_Status"], "Missed Call");
        assert_eq!(v["CallDisposition"], "MISSED");
        assert_eq!(v["Talk_Duration"], "00:00:00");
        assert_eq!(v["EnableCallRecording"], "0");
        c.direction = Direction::Outbound;
        let v = c.variables(&Utc, None);
        assert_eq!(v["Call_Log_Status"], "Outgoing Call");
        assert_eq!(v["CallDisposition"], "NO ANSWER");
        assert_eq!(v["Call_From"], "Agent Smith<1001>");
        assert_eq!(v["Phone"], "+14155551077");
        c.ended_at = None;
        let v = c.variables(&Utc, None);
        assert_eq!(v["Talk_Duration"], "");
        assert_eq!(v["EndTimeUnix"], "");
    }
}
