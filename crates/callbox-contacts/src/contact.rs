//! A contact as the cache keeps it: the template's contact fields (seed 003's
//! `SyncContactAuto` outputs) with its phone numbers read once.

use serde_json::{Map, Value};

/// The phone fields of a template contact, in the order a tie between them is broken
/// (mobiles and business lines before home lines, faxes last).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum PhoneField {
    /// `MobileNumber`.
    MobileNumber,
    /// `MobileNumber2`.
    MobileNumber2,
    /// `BusinessNumber`.
    BusinessNumber,
    /// `BusinessNumber2`.
    BusinessNumber2,
    /// `HomeNumber`.
    HomeNumber,
    /// `HomeNumber2`.
    HomeNumber2,
    /// `OtherNumber`.
    OtherNumber,
    /// `BusinessFaxNumber`.
    BusinessFaxNumber,
    /// `HomeFaxNumber`.
    HomeFaxNumber,
}

impl PhoneField {
    /// Every phone field, in tie-break order.
    pub const ALL: [PhoneField; 9] = [
        PhoneField::MobileNumber,
        PhoneField::MobileNumber2,
        PhoneField::BusinessNumber,
        PhoneField::BusinessNumber2,
        PhoneField::HomeNumber,
        PhoneField::HomeNumber2,
        PhoneField::OtherNumber,
        PhoneField::BusinessFaxNumber,
        PhoneField::HomeFaxNumber,
    ];

    /// Every phone field, in the order templates list them.
    pub const TEMPLATE_ORDER: [PhoneField; 9] = [
        PhoneField::BusinessNumber,
        PhoneField::BusinessNumber2,
        PhoneField::BusinessFaxNumber,
        PhoneField::MobileNumber,
        PhoneField::MobileNumber2,
        PhoneField::HomeNumber,
        PhoneField::HomeNumber2,
        PhoneField::HomeFaxNumber,
        PhoneField::OtherNumber,
    ];

    /// The template field name.
    pub fn name(self) -> &'static str {
        match self {
            PhoneField::MobileNumber => "MobileNumber",
            PhoneField::MobileNumber2 => "MobileNumber2",
            PhoneField::BusinessNumber => "BusinessNumber",
            PhoneField::BusinessNumber2 => "BusinessNumber2",
            PhoneField::HomeNumber => "HomeNumber",
            PhoneField::HomeNumber2 => "HomeNumber2",
            PhoneField::OtherNumber => "OtherNumber",
            PhoneField::BusinessFaxNumber => "BusinessFaxNumber",
            PhoneField::HomeFaxNumber => "HomeFaxNumber",
        }
    }

    /// How a person says it ("mobile", "business number").
    pub fn label(self) -> &'static str {
        match self {
            PhoneField::MobileNumber => "mobile",
            PhoneField::MobileNumber2 => "second mobile",
            PhoneField::BusinessNumber => "business number",
            PhoneField::BusinessNumber2 => "second business number",
            PhoneField::HomeNumber => "home number",
            PhoneField::HomeNumber2 => "second home number",
            PhoneField::OtherNumber => "other number",
            PhoneField::BusinessFaxNumber => "business fax",
            PhoneField::HomeFaxNumber => "home fax",
        }
    }

    /// The field called `name`, if it is a phone field.
    pub fn from_name(name: &str) -> Option<PhoneField> {
        PhoneField::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Its number in the database.
    pub(crate) fn code(self) -> i64 {
        PhoneField::ALL.iter().position(|f| *f == self).unwrap_or(0) as i64
    }

    /// The field stored as `code`.
    pub(crate) fn from_code(code: i64) -> PhoneField {
        usize::try_from(code)
            .ok()
            .and_then(|i| PhoneField::ALL.get(i).copied())
            .unwrap_or(PhoneField::OtherNumber)
    }
}

/// One contact of one integration.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContactRecord {
    /// The integration it belongs to (`local` for a phonebook imported without one).
    pub integration: String,
    /// `ContactsId`: its id in the CRM.
    pub id: String,
    /// `FirstName`.
    pub first_name: String,
    /// `LastName`.
    pub last_name: String,
    /// `Company`.
    pub company: String,
    /// `Email`.
    pub email: String,
    /// Its phone numbers as written, by field.
    pub numbers: Vec<(PhoneField, String)>,
    /// The other fields (`ContactUrl`, `ContactSyncType`, …).
    pub other: Map<String, Value>,
    /// When the CRM last changed it (Unix seconds), if known (`ModifiedTime` field).
    pub modified_at: Option<i64>,
}

/// Fields that are columns of their own (the rest goes to `other`).
const NAMED: [&str; 5] = ["ContactsId", "FirstName", "LastName", "Company", "Email"];

impl ContactRecord {
    /// A contact from template field names (`ContactsId`, `FirstName`, `MobileNumber`, …).
    /// Non-string values are kept as their JSON text; `ModifiedTime` (Unix seconds,
    /// milliseconds or RFC 3339) sets `modified_at`.
    pub fn from_fields(integration: &str, fields: &Map<String, Value>) -> ContactRecord {
        let text = |k: &str| match fields.get(k) {
            Some(Value::String(s)) => s.trim().to_string(),
            Some(Value::Null) | None => String::new(),
            Some(v) => v.to_string(),
        };
        let mut record = ContactRecord {
            integration: integration.to_string(),
            id: text("ContactsId"),
            first_name: text("FirstName"),
            last_name: text("LastName"),
            company: text("Company"),
            email: text("Email"),
            ..ContactRecord::default()
        };
        for field in PhoneField::ALL {
            let n = text(field.name());
            if !n.is_empty() {
                record.numbers.push((field, n));
            }
        }
        for (k, v) in fields {
            if NAMED.contains(&k.as_str()) || PhoneField::from_name(k).is_some() {
                continue;
            }
            if k == "ModifiedTime" {
                record.modified_at = parse_time(&text(k));
            }
            if !matches!(v, Value::Null) && v.as_str() != Some("") {
                record.other.insert(k.clone(), v.clone());
            }
        }
        record
    }

    /// Its fields under the template's names (what the CLI prints and hooks read).
    pub fn fields(&self) -> Map<String, Value> {
        let mut out = Map::new();
        for (k, v) in [
            ("ContactsId", &self.id),
            ("FirstName", &self.first_name),
            ("LastName", &self.last_name),
            ("Company", &self.company),
            ("Email", &self.email),
        ] {
            out.insert(k.into(), Value::String(v.clone()));
        }
        for (field, number) in &self.numbers {
            out.insert(field.name().into(), Value::String(number.clone()));
        }
        for (k, v) in &self.other {
            out.insert(k.clone(), v.clone());
        }
        out
    }

    /// "First Last", else the company, else the first number.
    pub fn display_name(&self) -> String {
        let name = format!("{} {}", self.first_name, self.last_name)
            .trim()
            .to_string();
        if !name.is_empty() {
            name
        } else if !self.company.is_empty() {
            self.company.clone()
        } else {
            self.numbers
                .first()
                .map(|(_, n)| n.clone())
                .unwrap_or_default()
        }
    }

    /// The popup URL (`ContactUrl`), if the CRM gave one.
    pub fn url(&self) -> Option<&str> {
        self.other
            .get("ContactUrl")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }
}

/// Unix seconds from seconds, milliseconds, or an RFC 3339 date-time.
fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i64>() {
        return Some(if n > 100_000_000_000 { n / 1000 } else { n });
    }
    s.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_round_trip() {
        let Value::Object(fields) = json!({
            "ContactsId": "42", "FirstName": "Ada", "LastName": "Lovelace",
            "MobileNumber": "+44 7700 900123", "ContactUrl": "https://crm/42",
            "ModifiedTime": "2025-01-02T03:04:05Z", "HomeNumber": ""
        }) else {
            unreachable!()
        };
        let r = ContactRecord::from_fields("crm", &fields);
        assert_eq!(
            r.numbers,
            vec![(PhoneField::MobileNumber, "+44 7700 900123".into())]
        );
        assert_eq!(r.url(), Some("https://crm/42"));
        assert_eq!(r.modified_at, Some(1_735_787_045));
        assert_eq!(r.fields()["MobileNumber"], "+44 7700 900123");
        assert_eq!(r.display_name(), "Ada Lovelace");
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("1735787045"), Some(1_735_787_045));
        assert_eq!(parse_time("1735787045000"), Some(1_735_787_045));
        assert_eq!(parse_time("2025-01-02T05:04:05+02:00"), Some(1_735_787_045));
        assert_eq!(parse_time("2025-01-02T03:04:05.123Z"), Some(1_735_787_045));
        assert_eq!(parse_time("yesterday"), None);
    }
}
