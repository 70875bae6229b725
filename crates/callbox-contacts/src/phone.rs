//! Phone numbers: every number is read once, with a default country, into its E.164 form
//! (`+14155550100`) for exact matching and its digits for last-N-digit matching. The text as
//! written is kept for display. Numbers that cannot be read are classified (extension,
//! withheld, needs a country, invalid), never guessed.

use std::fmt;
use std::str::FromStr;

use rlibphonenumber::{NumberLengthType, PHONE_NUMBER_UTIL, PhoneNumberFormat};

/// A country (ISO 3166-1 alpha-2 region such as `US`, `GB`, `DE`) whose national numbering
/// plan reads numbers written without a `+` or international prefix.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Country {
    code: String,
    calling_code: u16,
}

/// A country code that is not a known region.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a country code: use a two-letter ISO 3166 code such as US, GB, DE, FR, VN, BR or IN"
)]
pub struct UnknownCountry(pub String);

impl Country {
    /// The two-letter code, upper case.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// Its international calling code (`1` for US, `44` for GB).
    pub fn calling_code(&self) -> u16 {
        self.calling_code
    }
}

impl FromStr for Country {
    type Err = UnknownCountry;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let code = s.trim().to_ascii_uppercase();
        if code.len() != 2 || !PHONE_NUMBER_UTIL.get_supported_regions().any(|r| r == code) {
            return Err(UnknownCountry(s.to_string()));
        }
        let calling_code = PHONE_NUMBER_UTIL
            .get_country_code_for_region(&code)
            .and_then(|c| u16::try_from(c).ok())
            .ok_or_else(|| UnknownCountry(s.to_string()))?;
        Ok(Country { code, calling_code })
    }
}

impl TryFrom<String> for Country {
    type Error = UnknownCountry;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Country> for String {
    fn from(c: Country) -> String {
        c.code
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.code)
    }
}

/// What a number turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NumberKind {
    /// A valid number of its country's numbering plan: it has an E.164 form.
    Valid,
    /// The right length for its country but not a number range in use (test and fictional
    /// numbers often are): it has an E.164 form.
    Possible,
    /// A short internal number (no `+`, at most the configured number of digits).
    Extension,
    /// No number: empty, `anonymous`, `withheld`, `private`, `restricted`, `unknown`,
    /// `unavailable`.
    Withheld,
    /// A national number, but no default country was given to read it with.
    NeedsCountry,
    /// Only dialable inside its local area (no area code): no E.164 form.
    LocalOnly,
    /// Not a phone number (too short or long for its country, letters, garbage).
    Invalid,
}

impl NumberKind {
    /// The name used in JSON and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            NumberKind::Valid => "valid",
            NumberKind::Possible => "possible",
            NumberKind::Extension => "extension",
            NumberKind::Withheld => "withheld",
            NumberKind::NeedsCountry => "needs_country",
            NumberKind::LocalOnly => "local_only",
            NumberKind::Invalid => "invalid",
        }
    }

    /// Whether numbers of this kind have an E.164 form.
    pub fn has_e164(self) -> bool {
        matches!(self, NumberKind::Valid | NumberKind::Possible)
    }
}

/// A number as read.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PhoneNumber {
    /// The text as written (kept for display).
    pub original: String,
    /// What it is.
    pub kind: NumberKind,
    /// `+` and digits, for the kinds that have one.
    pub e164: Option<String>,
    /// An extension written after the number (`x123`, `ext. 123`).
    pub extension: Option<String>,
    /// The digits used for last-N-digit matching: the E.164 digits, else the digits written.
    #[serde(skip)]
    pub digits: String,
}

/// How numbers are read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NumberRules {
    /// The country of numbers written without an international prefix.
    pub country: Option<Country>,
    /// Numbers of at most this many digits (and no `+`) are internal extensions.
    pub max_extension_digits: usize,
}

impl Default for NumberRules {
    fn default() -> Self {
        NumberRules {
            country: None,
            max_extension_digits: 6,
        }
    }
}

impl NumberRules {
    /// Rules with a default country.
    pub fn with_country(country: Option<Country>) -> Self {
        NumberRules {
            country,
            ..NumberRules::default()
        }
    }
}

const WITHHELD_WORDS: [&str; 6] = [
    "anonymous",
    "withheld",
    "private",
    "restricted",
    "unknown",
    "unavailable",
];

/// The longest text read as a number; longer text is invalid (and never parsed).
const MAX_NUMBER_TEXT: usize = 250;

/// Reads `text` as a phone number under `rules`.
pub fn normalize(text: &str, rules: &NumberRules) -> PhoneNumber {
    read(text, rules, true)
}

/// Reads a number to store in the index: as [`normalize`], without checking that the number
/// is in a range in use (6x faster; the index needs the E.164 form, not the kind). Valid
/// numbers come back as [`NumberKind::Possible`].
pub fn normalize_for_index(text: &str, rules: &NumberRules) -> PhoneNumber {
    read(text, rules, false)
}

fn read(text: &str, rules: &NumberRules, check_ranges: bool) -> PhoneNumber {
    let original = text.to_string();
    let t = text.trim();
    let written_digits: String = t.chars().filter(char::is_ascii_digit).collect();
    let number = |kind, e164: Option<String>, extension: Option<String>| {
        let digits = e164
            .as_deref()
            .map_or_else(|| written_digits.clone(), |e| e[1..].to_string());
        PhoneNumber {
            original: original.clone(),
            kind,
            e164,
            extension,
            digits,
        }
    };
    let lower = t.to_ascii_lowercase();
    if written_digits.is_empty() {
        let kind = if t.is_empty() || WITHHELD_WORDS.iter().any(|w| lower.contains(w)) {
            NumberKind::Withheld
        } else {
            NumberKind::Invalid
        };
        return number(kind, None, None);
    }
    if WITHHELD_WORDS.iter().any(|w| lower.starts_with(w)) {
        return number(NumberKind::Withheld, None, None);
    }
    if t.len() > MAX_NUMBER_TEXT {
        return number(NumberKind::Invalid, None, None);
    }
    let international = t.starts_with('+') || t.starts_with("00") || t.starts_with("011");
    if !international
        && written_digits.len() <= rules.max_extension_digits
        && !t.chars().any(|c| c.is_ascii_alphabetic())
    {
        return number(NumberKind::Extension, None, None);
    }
    let region = match &rules.country {
        Some(c) => c.code(),
        None if t.starts_with('+') => "ZZ",
        None => return number(NumberKind::NeedsCountry, None, None),
    };
    let Ok(parsed) = PHONE_NUMBER_UTIL.parse_with_default_region(t, region) else {
        return number(NumberKind::Invalid, None, None);
    };
    let extension = Some(parsed.extension().to_string()).filter(|e| !e.is_empty());
    let kind = if check_ranges && PHONE_NUMBER_UTIL.is_valid_number(&parsed) {
        NumberKind::Valid
    } else {
        match PHONE_NUMBER_UTIL.is_possible_number_with_reason(&parsed) {
            Ok(NumberLengthType::IsPossible) => NumberKind::Possible,
            Ok(NumberLengthType::IsPossibleLocalOnly) => NumberKind::LocalOnly,
            Err(_) => NumberKind::Invalid,
        }
    };
    if !kind.has_e164() {
        return number(kind, None, extension);
    }
    let e164 = PHONE_NUMBER_UTIL
        .format(&parsed, PhoneNumberFormat::E164)
        .into_owned();
    number(kind, Some(e164), extension)
}

/// `text`'s ASCII digits, in order.
pub fn digits_of(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

/// The last `n` digits, reversed (the key of the suffix index), or `None` when there are fewer.
pub fn reversed_suffix(digits: &str, n: usize) -> Option<String> {
    (digits.len() >= n).then(|| digits.chars().rev().take(n).collect())
}

/// All digits reversed (what the suffix index stores).
pub fn reversed(digits: &str) -> String {
    digits.chars().rev().collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rules(cc: &str) -> NumberRules {
        NumberRules::with_country(Some(cc.parse().unwrap()))
    }

    #[test]
    fn countries_are_checked() {
        assert_eq!("us".parse::<Country>().unwrap().code(), "US");
        assert_eq!("GB".parse::<Country>().unwrap().calling_code(), 44);
        assert!("XX".parse::<Country>().is_err());
        assert!("USA".parse::<Country>().is_err());
        assert!("".parse::<Country>().is_err());
    }

    #[test]
    fn kinds() {
        let us = rules("US");
        assert_eq!(normalize("", &us).kind, NumberKind::Withheld);
        assert_eq!(normalize("Anonymous", &us).kind, NumberKind::Withheld);
        assert_eq!(normalize("1001", &us).kind, NumberKind::Extension);
        assert_eq!(normalize("hello", &us).kind, NumberKind::Invalid);
        assert_eq!(normalize("555-0111", &us).kind, NumberKind::LocalOnly);
        assert_eq!(normalize("+1 415 555", &us).kind, NumberKind::Invalid);
        let none = NumberRules::default();
        assert_eq!(
            normalize("(415) 555-0100", &none).kind,
            NumberKind::NeedsCountry
        );
        assert_eq!(
            normalize("+1 (415) 555-0100", &none).e164.as_deref(),
            Some("+14155550100")
        );
    }

    #[test]
    fn extensions_are_kept_apart() {
        let n = normalize("(650) 253-0000 x123", &rules("US"));
        assert_eq!(n.e164.as_deref(), Some("+16502530000"));
        assert_eq!(n.extension.as_deref(), Some("123"));
        assert_eq!(n.digits, "16502530000");
    }

    #[test]
    fn suffixes() {
        assert_eq!(reversed_suffix("14155550100", 4).as_deref(), Some("0010"));
        assert_eq!(reversed_suffix("123", 4), None);
        assert_eq!(reversed("123"), "321");
    }
}
