//! Matching a number to contacts: exact E.164 first, then the last N digits; every match
//! carries a confidence and a reason a person can read ("mobile matched exactly", "last 9
//! digits of business number"); several matches are ranked by a policy.

use crate::contact::{ContactRecord, PhoneField};
use crate::phone::{self, NumberRules, PhoneNumber};

/// Confidence of an exact E.164 match.
pub const EXACT: f64 = 1.0;
/// Confidence of a contact the CRM's own search returned without a number that matches here.
pub const CRM_SEARCH: f64 = 0.5;

/// Confidence of a match on the last `n` digits: 0.6 plus 0.03 a digit, at most 0.9.
pub fn suffix_confidence(n: usize) -> f64 {
    let n = n.min(10) as f64;
    ((0.6 + 0.03 * n) * 100.0).round() / 100.0
}

/// How a match was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "by", content = "digits")]
pub enum MatchedBy {
    /// The E.164 forms are equal.
    Exact,
    /// The last this-many digits are equal.
    LastDigits(usize),
    /// The CRM returned it for the number; no field of it matches here.
    CrmSearch,
}

/// One contact matched to a number.
#[derive(Clone, Debug, PartialEq)]
pub struct Match {
    /// The contact.
    pub contact: ContactRecord,
    /// The field that matched (none for [`MatchedBy::CrmSearch`]).
    pub field: Option<PhoneField>,
    /// How.
    pub by: MatchedBy,
    /// 0.0–1.0.
    pub confidence: f64,
    /// Whether the cached copy is within its TTL (contacts fresh from the CRM are).
    pub fresh: bool,
    /// Where the cached copy came from (`None`: straight from the CRM).
    pub origin: Option<crate::cache::Origin>,
}

impl Match {
    /// A contact Callbox created, not yet known to the CRM's search.
    pub fn is_placeholder(&self) -> bool {
        self.origin == Some(crate::cache::Origin::Created)
    }
}

impl Match {
    /// Why it matched, for people: "mobile matched exactly", "last 9 digits of business number".
    pub fn reason(&self) -> String {
        let label = self.field.map_or("number", PhoneField::label);
        match self.by {
            MatchedBy::Exact => format!("{label} matched exactly"),
            MatchedBy::LastDigits(n) => format!("last {n} digits of {label}"),
            MatchedBy::CrmSearch => "found by the CRM's search".to_string(),
        }
    }
}

/// What to do when several contacts match.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchPolicy {
    /// Rank them and let the agent pick (the first is shown until they do).
    #[default]
    Ask,
    /// The most recently modified contact (CRM `ModifiedTime`, else when it was cached).
    MostRecent,
    /// The first, in the CRM's (or the import's) order.
    First,
}

/// Sorts `matches` best first: by confidence, then by the policy; for `Ask` and `First`
/// the given order breaks ties. Stable.
pub fn rank(matches: &mut [Match], policy: MatchPolicy) {
    matches.sort_by(|a, b| {
        b.confidence
            .total_cmp(&a.confidence)
            .then_with(|| match policy {
                MatchPolicy::MostRecent => b.contact.modified_at.cmp(&a.contact.modified_at),
                MatchPolicy::Ask | MatchPolicy::First => std::cmp::Ordering::Equal,
            })
    });
}

/// Whether the agent has to choose: the policy is `Ask` and more than one contact matched
/// with the best confidence.
pub fn needs_choice(matches: &[Match], policy: MatchPolicy) -> bool {
    policy == MatchPolicy::Ask
        && matches.len() > 1
        && matches[1].confidence >= matches[0].confidence
}

/// Matches `number` against contacts held in memory (a CRM's search results): each contact
/// once, by its best field; contacts with no matching field are kept as
/// [`MatchedBy::CrmSearch`]. `rules` reads the contacts' numbers.
pub fn match_records(
    number: &PhoneNumber,
    records: Vec<ContactRecord>,
    rules: &NumberRules,
    suffix_digits: usize,
) -> Vec<Match> {
    let wanted_suffix = phone::reversed_suffix(&number.digits, suffix_digits);
    records
        .into_iter()
        .map(|contact| {
            let mut best: Option<(PhoneField, MatchedBy)> = None;
            for (field, text) in &contact.numbers {
                let theirs = phone::normalize_for_index(text, rules);
                let same_e164 = number.e164.is_some() && theirs.e164 == number.e164;
                let same_digits = number.e164.is_none()
                    && !number.digits.is_empty()
                    && theirs.digits == number.digits;
                let by = if same_e164 || same_digits {
                    MatchedBy::Exact
                } else if wanted_suffix.is_some()
                    && phone::reversed_suffix(&theirs.digits, suffix_digits) == wanted_suffix
                {
                    MatchedBy::LastDigits(suffix_digits)
                } else {
                    continue;
                };
                let better = match (best, by) {
                    (None, _) => true,
                    (Some((_, MatchedBy::LastDigits(_))), MatchedBy::Exact) => true,
                    (Some((f, b)), by) => b == by && *field < f,
                };
                if better {
                    best = Some((*field, by));
                }
            }
            let (field, by) = match best {
                Some((f, by)) => (Some(f), by),
                None => (None, MatchedBy::CrmSearch),
            };
            let confidence = match by {
                MatchedBy::Exact => EXACT,
                MatchedBy::LastDigits(n) => suffix_confidence(n),
                MatchedBy::CrmSearch => CRM_SEARCH,
            };
            Match {
                contact,
                field,
                by,
                confidence,
                fresh: true,
                origin: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn contact(id: &str, numbers: &[(PhoneField, &str)], modified: Option<i64>) -> ContactRecord {
        ContactRecord {
            integration: "crm".into(),
            id: id.into(),
            numbers: numbers.iter().map(|(f, n)| (*f, n.to_string())).collect(),
            modified_at: modified,
            ..ContactRecord::default()
        }
    }

    #[test]
    fn exact_beats_suffix_and_reasons_read_well() {
        let us = NumberRules::with_country(Some("US".parse().unwrap()));
        let n = phone::normalize("+1 415 555 0100", &us);
        let mut m = match_records(
            &n,
            vec![
                contact(
                    "a",
                    &[(PhoneField::BusinessNumber, "+44 20 5415 5550100")],
                    None,
                ),
                contact(
                    "b",
                    &[
                        (PhoneField::HomeFaxNumber, "415.555.0100"),
                        (PhoneField::MobileNumber, "(415) 555-0100"),
                    ],
                    None,
                ),
                contact("c", &[(PhoneField::OtherNumber, "+1 212 555 0199")], None),
            ],
            &us,
            9,
        );
        rank(&mut m, MatchPolicy::First);
        assert_eq!(m[0].contact.id, "b");
        assert_eq!(m[0].reason(), "mobile matched exactly");
        assert_eq!(m[1].contact.id, "a");
        assert_eq!(m[1].reason(), "last 9 digits of business number");
        assert!((m[1].confidence - 0.87).abs() < 1e-9);
        assert_eq!(m[2].reason(), "found by the CRM's search");
        assert!(!needs_choice(&m, MatchPolicy::Ask));
    }

    #[test]
    fn policies() {
        let us = NumberRules::with_country(Some("US".parse().unwrap()));
        let n = phone::normalize("4155550100", &us);
        let records = vec![
            contact(
                "old",
                &[(PhoneField::MobileNumber, "+14155550100")],
                Some(10),
            ),
            contact(
                "new",
                &[(PhoneField::BusinessNumber, "+14155550100")],
                Some(20),
            ),
        ];
        let mut m = match_records(&n, records.clone(), &us, 9);
        rank(&mut m, MatchPolicy::MostRecent);
        assert_eq!(m[0].contact.id, "new");
        let mut m = match_records(&n, records, &us, 9);
        rank(&mut m, MatchPolicy::First);
        assert_eq!(m[0].contact.id, "old");
        assert!(needs_choice(&m, MatchPolicy::Ask));
        assert!(!needs_choice(&m, MatchPolicy::First));
    }
}
