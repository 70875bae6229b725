//! The result type ([`Value`]) and gjson's `Parse`, `ForEach` and `Array`.

use std::borrow::Cow;
use std::fmt;

use crate::numfmt;
use crate::scan::{self, from, sub};

/// The JSON type of a [`Value`] (gjson `Type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `null`, or a value that does not exist.
    Null,
    /// `false`.
    False,
    /// A number.
    Number,
    /// A string.
    String,
    /// `true`.
    True,
    /// An array or an object (raw JSON).
    Json,
}

impl Kind {
    /// The name gjson gives this type (`Type.String()`): "Null", "False",
    /// "Number", "String", "True" or "JSON".
    pub fn name(self) -> &'static str {
        match self {
            Kind::Null => "Null",
            Kind::False => "False",
            Kind::Number => "Number",
            Kind::String => "String",
            Kind::True => "True",
            Kind::Json => "JSON",
        }
    }
}

/// An `f64` compared bitwise (so that `NaN == NaN` and results stay
/// comparable with `==`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Num(pub(crate) f64);

impl PartialEq for Num {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits() || (self.0.is_nan() && other.0.is_nan())
    }
}

/// The result of evaluating a path (gjson `Result`).
///
/// A `Value` borrows from the JSON document when it can, and owns its text
/// when a modifier, a multipath or a `#` projection built new JSON.
/// Numbers compare bitwise, so `NaN == NaN` for two results.
#[derive(Clone, Debug, PartialEq)]
pub struct Value<'a> {
    pub(crate) kind: Kind,
    pub(crate) raw: Cow<'a, str>,
    pub(crate) str: Cow<'a, str>,
    pub(crate) num: Num,
}

impl Default for Value<'_> {
    fn default() -> Self {
        Value::missing()
    }
}

impl<'a> Value<'a> {
    /// A value that does not exist.
    pub(crate) const fn missing() -> Self {
        Value {
            kind: Kind::Null,
            raw: Cow::Borrowed(""),
            str: Cow::Borrowed(""),
            num: Num(0.0),
        }
    }

    pub(crate) fn new(kind: Kind, raw: Cow<'a, str>) -> Self {
        Value {
            kind,
            raw,
            str: Cow::Borrowed(""),
            num: Num(0.0),
        }
    }

    pub(crate) fn string(raw: Cow<'a, str>, s: Cow<'a, str>) -> Self {
        Value {
            kind: Kind::String,
            raw,
            str: s,
            num: Num(0.0),
        }
    }

    pub(crate) fn number(raw: Cow<'a, str>, n: f64) -> Self {
        Value {
            kind: Kind::Number,
            raw,
            str: Cow::Borrowed(""),
            num: Num(n),
        }
    }

    /// Whether the value exists (gjson `Exists()`): a `null` in the JSON
    /// exists, a missing path does not.
    pub fn exists(&self) -> bool {
        self.kind != Kind::Null || !self.raw.is_empty()
    }

    /// The JSON type of the value.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The raw JSON text of the value (gjson `Result.Raw`); empty when the
    /// value does not exist.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// gjson `Result.String()`: strings unescaped, numbers as gjson prints
    /// them, `true`/`false`, `""` for null and missing values, raw JSON for
    /// arrays and objects.
    pub fn to_str(&self) -> Cow<'_, str> {
        match self.kind {
            Kind::Null => Cow::Borrowed(""),
            Kind::False => Cow::Borrowed("false"),
            Kind::True => Cow::Borrowed("true"),
            Kind::String => Cow::Borrowed(&self.str),
            Kind::Json => Cow::Borrowed(&self.raw),
            Kind::Number => {
                let raw: &str = &self.raw;
                if raw.is_empty() {
                    return Cow::Owned(numfmt::format_float(self.num.0));
                }
                let digits = raw.strip_prefix('-').unwrap_or(raw);
                if digits.bytes().all(|c| c.is_ascii_digit()) {
                    Cow::Borrowed(raw)
                } else {
                    Cow::Owned(numfmt::format_float(self.num.0))
                }
            }
        }
    }

    /// gjson `Result.Float()`: numbers as is, `true` is 1, strings parsed
    /// like Go's `strconv.ParseFloat` (0 when they are not numbers),
    /// everything else 0.
    pub fn num(&self) -> f64 {
        match self.kind {
            Kind::True => 1.0,
            Kind::String => numfmt::parse_float(&self.str),
            Kind::Number => self.num.0,
            _ => 0.0,
        }
    }

    /// gjson `Result.Bool()`: `true`; strings "1", "t", "true" (any case);
    /// non-zero numbers.
    pub fn bool(&self) -> bool {
        match self.kind {
            Kind::True => true,
            Kind::String => string_truthy(&self.str) == Some(true),
            Kind::Number => self.num.0 != 0.0,
            _ => false,
        }
    }

    /// Whether the value is a JSON array.
    pub fn is_array(&self) -> bool {
        self.kind == Kind::Json && self.raw.as_bytes().first() == Some(&b'[')
    }

    /// Whether the value is a JSON object.
    pub fn is_object(&self) -> bool {
        self.kind == Kind::Json && self.raw.as_bytes().first() == Some(&b'{')
    }

    /// gjson `Result.Array()`: the elements of an array; a non-array
    /// existing value gives a one-element vector; null or missing gives an
    /// empty vector.
    pub fn array(&self) -> Vec<Value<'_>> {
        if self.kind == Kind::Null {
            return Vec::new();
        }
        if !self.is_array() {
            return vec![self.borrowed()];
        }
        array_elements(&self.raw)
    }

    /// Iterate over the members of an object or the elements of an array
    /// (gjson `ForEach`). The callback receives the key (a `String` value
    /// for objects, a missing value for arrays) and the value, and returns
    /// `false` to stop. A non-JSON existing value is passed once with a
    /// missing key; a missing value calls nothing.
    pub fn for_each<'s, F>(&'s self, mut f: F)
    where
        F: FnMut(Value<'s>, Value<'s>) -> bool,
    {
        if !self.exists() {
            return;
        }
        if self.kind != Kind::Json {
            f(Value::missing(), self.borrowed());
            return;
        }
        for_each_raw(&self.raw, f);
    }

    /// Evaluate `path` on this value's raw JSON (gjson `Result.Get`).
    pub fn get(&self, path: &str) -> Value<'_> {
        crate::get(&self.raw, path)
    }

    /// A copy that owns all its text.
    pub fn into_owned(self) -> Value<'static> {
        Value {
            kind: self.kind,
            raw: Cow::Owned(self.raw.into_owned()),
            str: Cow::Owned(self.str.into_owned()),
            num: self.num,
        }
    }

    /// A copy borrowing from `self`.
    pub(crate) fn borrowed(&self) -> Value<'_> {
        Value {
            kind: self.kind,
            raw: Cow::Borrowed(&self.raw),
            str: Cow::Borrowed(&self.str),
            num: self.num,
        }
    }
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_str())
    }
}

/// Go `strconv.ParseBool(strings.ToLower(s))`: `Some(bool)` when `s` is a
/// boolean spelling, `None` otherwise.
pub(crate) fn string_truthy(s: &str) -> Option<bool> {
    match s.len() {
        1 => match s.as_bytes()[0] {
            b'1' | b't' | b'T' => Some(true),
            b'0' | b'f' | b'F' => Some(false),
            _ => None,
        },
        4 if s.eq_ignore_ascii_case("true") => Some(true),
        5 if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// gjson `Parse(json)`.
pub(crate) fn parse(json: &str) -> Value<'_> {
    let b = json.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'{' || c == b'[' {
            // gjson takes the entire rest as raw
            return Value::new(Kind::Json, Cow::Borrowed(from(json, i)));
        }
        if c <= b' ' {
            i += 1;
            continue;
        }
        return match c {
            b'+' | b'-' | b'0'..=b'9' | b'i' | b'I' | b'N' => {
                let (raw, n) = scan::tonum(from(json, i));
                Value::number(Cow::Borrowed(raw), n)
            }
            b'n' => {
                if i + 1 < b.len() && b[i + 1] != b'u' {
                    let (raw, n) = scan::tonum(from(json, i));
                    Value::number(Cow::Borrowed(raw), n)
                } else {
                    Value::new(Kind::Null, Cow::Borrowed(scan::tolit(from(json, i))))
                }
            }
            b't' => Value::new(Kind::True, Cow::Borrowed(scan::tolit(from(json, i)))),
            b'f' => Value::new(Kind::False, Cow::Borrowed(scan::tolit(from(json, i)))),
            b'"' => {
                let (raw, s) = scan::tostr(from(json, i));
                Value::string(Cow::Borrowed(raw), s)
            }
            _ => Value::missing(),
        };
    }
    Value::missing()
}

/// gjson `parseAny(json, i, true)`: `(next index, value, ok)`.
pub(crate) fn parse_any(json: &str, i: usize) -> (usize, Value<'_>, bool) {
    let b = json.as_bytes();
    let mut i = i;
    while i < b.len() {
        let c = b[i];
        if c == b'{' || c == b'[' {
            let (n, raw) = scan::parse_squash(json, i);
            return (n, Value::new(Kind::Json, Cow::Borrowed(raw)), true);
        }
        if c <= b' ' {
            i += 1;
            continue;
        }
        let mut num = false;
        match c {
            b'"' => {
                let (n, raw, esc, ok) = scan::parse_string(json, i + 1);
                if !ok {
                    return (n, Value::missing(), false);
                }
                return (n, string_value(raw, esc), true);
            }
            b'n' if i + 1 < b.len() && b[i + 1] != b'u' => num = true,
            b'n' | b't' | b'f' => {
                let (n, raw) = scan::parse_literal(json, i);
                return (n, literal_value(c, raw), true);
            }
            b'+' | b'-' | b'0'..=b'9' | b'i' | b'I' | b'N' => num = true,
            _ => {}
        }
        if num {
            let (n, raw) = scan::parse_number(json, i);
            return (
                n,
                Value::number(Cow::Borrowed(raw), numfmt::parse_float(raw)),
                true,
            );
        }
        i += 1;
    }
    (i, Value::missing(), false)
}

/// A String value from a raw quoted string slice.
pub(crate) fn string_value(raw: &str, esc: bool) -> Value<'_> {
    let inner = if raw.len() >= 2 {
        sub(raw, 1, raw.len() - 1)
    } else {
        ""
    };
    let s = if esc {
        Cow::Owned(scan::unescape(inner))
    } else {
        Cow::Borrowed(inner)
    };
    Value::string(Cow::Borrowed(raw), s)
}

/// A literal value (`true`/`false`/`null`-ish) as gjson types it: by first byte.
pub(crate) fn literal_value(first: u8, raw: &str) -> Value<'_> {
    let kind = match first {
        b't' => Kind::True,
        b'f' => Kind::False,
        _ => Kind::Null,
    };
    Value::new(kind, Cow::Borrowed(raw))
}

/// gjson `ForEach` over raw JSON text (type JSON).
pub(crate) fn for_each_raw<'s, F>(json: &'s str, mut f: F)
where
    F: FnMut(Value<'s>, Value<'s>) -> bool,
{
    let b = json.as_bytes();
    let mut i = 0;
    let mut obj = false;
    loop {
        if i >= b.len() {
            return;
        }
        if b[i] == b'{' {
            i += 1;
            obj = true;
            break;
        } else if b[i] == b'[' {
            i += 1;
            break;
        }
        if b[i] > b' ' {
            return;
        }
        i += 1;
    }
    while i < b.len() {
        let mut key = Value::missing();
        if obj {
            if b[i] != b'"' {
                i += 1;
                continue;
            }
            let (n, raw, esc, ok) = scan::parse_string(json, i + 1);
            if !ok {
                return;
            }
            key = string_value(raw, esc);
            i = n;
        }
        while i < b.len() && (b[i] <= b' ' || b[i] == b',' || b[i] == b':') {
            i += 1;
        }
        let (n, value, ok) = parse_any(json, i);
        if !ok {
            return;
        }
        i = n;
        if !f(key, value) {
            return;
        }
        // gjson's loop increments i after each member
        i += 1;
    }
}

/// gjson `arrayOrMap('[', false)` elements.
fn array_elements(json: &str) -> Vec<Value<'_>> {
    let b = json.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        if i >= b.len() {
            return out;
        }
        if b[i] == b'[' {
            i += 1;
            break;
        }
        if b[i] > b' ' {
            return out;
        }
        i += 1;
    }
    while i < b.len() {
        let c = b[i];
        if c <= b' ' {
            i += 1;
            continue;
        }
        if c == b']' || c == b'}' {
            break;
        }
        let rest = from(json, i);
        let value = match c {
            b'{' | b'[' => Value::new(Kind::Json, Cow::Borrowed(scan::squash(rest))),
            b'n' => Value::new(Kind::Null, Cow::Borrowed(scan::tolit(rest))),
            b't' => Value::new(Kind::True, Cow::Borrowed(scan::tolit(rest))),
            b'f' => Value::new(Kind::False, Cow::Borrowed(scan::tolit(rest))),
            b'"' => {
                let (raw, s) = scan::tostr(rest);
                Value::string(Cow::Borrowed(raw), s)
            }
            b'0'..=b'9' | b'-' => {
                let (raw, n) = scan::tonum(rest);
                Value::number(Cow::Borrowed(raw), n)
            }
            _ => {
                i += 1;
                continue;
            }
        };
        i += value.raw.len().max(1);
        out.push(value);
    }
    out
}
