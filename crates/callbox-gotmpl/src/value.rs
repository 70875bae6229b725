//! Runtime values of template execution.

use std::borrow::Cow;

use serde_json::{Map, Value as Json};

/// A runtime value of template execution: what pipelines produce and what functions
/// receive and return.
///
/// Values borrow from the JSON data (`'a`) wherever they can: a field lookup never
/// copies a string, array or object. The variants model what Go's reflection sees when
/// a template runs over JSON decoded into `interface{}`:
///
/// | Go | `Value` |
/// |---|---|
/// | invalid `reflect.Value` (missing key, nil data) — prints `<no value>` | [`Value::Missing`] |
/// | `nil` (JSON `null`, the `nil` constant) | [`Value::Nil`] |
/// | `bool` | [`Value::Bool`] |
/// | `int` (integer constants, `len`, range indexes) | [`Value::Int`] |
/// | `float64` (every JSON number, float constants) | [`Value::Float`] |
/// | `string` | [`Value::Str`] |
/// | `[]interface{}` (JSON arrays) | [`Value::Array`] |
/// | `map[string]interface{}` (JSON objects) | [`Value::Object`] |
#[derive(Clone, Debug, PartialEq)]
pub enum Value<'a> {
    /// No value: a missing map key or nil data (Go's invalid `reflect.Value`).
    Missing,
    /// Go's untyped `nil`: JSON `null` or the `nil` constant.
    Nil,
    /// A boolean.
    Bool(bool),
    /// A Go `int`.
    Int(i64),
    /// A Go `float64`.
    Float(f64),
    /// A string.
    Str(Cow<'a, str>),
    /// A JSON array (`[]interface{}`).
    Array(Cow<'a, [Json]>),
    /// A JSON object (`map[string]interface{}`).
    Object(Cow<'a, Map<String, Json>>),
}

/// What a template function returns: a value, or an error message.
pub type FuncResult<'a> = Result<Value<'a>, String>;

impl<'a> Value<'a> {
    /// The value of a borrowed JSON value (no copy).
    pub fn from_json(v: &'a Json) -> Value<'a> {
        match v {
            Json::Null => Value::Nil,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            Json::String(s) => Value::Str(Cow::Borrowed(s)),
            Json::Array(a) => Value::Array(Cow::Borrowed(a)),
            Json::Object(o) => Value::Object(Cow::Borrowed(o)),
        }
    }

    /// The value of an owned JSON value.
    pub fn from_json_owned(v: Json) -> Value<'static> {
        match v {
            Json::Null => Value::Nil,
            Json::Bool(b) => Value::Bool(b),
            Json::Number(n) => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            Json::String(s) => Value::Str(Cow::Owned(s)),
            Json::Array(a) => Value::Array(Cow::Owned(a)),
            Json::Object(o) => Value::Object(Cow::Owned(o)),
        }
    }

    /// A string value.
    pub fn from_string(s: String) -> Value<'static> {
        Value::Str(Cow::Owned(s))
    }

    /// A borrowed string value.
    pub fn from_str_ref(s: &'a str) -> Value<'a> {
        Value::Str(Cow::Borrowed(s))
    }

    /// What `{{.}}` prints for this value, i.e. Go's `fmt.Sprint` (`%v`), except that
    /// [`Value::Missing`] gives `<no value>` as the template prints it (and [`Value::Nil`]
    /// gives `<nil>`, as fmt prints it).
    pub fn to_go_string(&self) -> String {
        match self {
            Value::Missing => "<no value>".to_string(),
            Value::Str(s) => s.to_string(),
            _ => {
                let mut out = String::new();
                crate::fmt::sprint_value(&mut out, self);
                out
            }
        }
    }

    /// The string, when the value is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Go's truth (`if`, `with`, `and`, `or`, `not`): false for missing values, nil,
    /// `false`, zero numbers and empty strings, arrays and objects.
    pub fn is_truthy(&self) -> bool {
        match self {
            Value::Missing | Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::Array(a) => !a.is_empty(),
            Value::Object(o) => !o.is_empty(),
        }
    }

    /// The number, for [`Value::Int`] and [`Value::Float`].
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The integer, for [`Value::Int`] and for a [`Value::Float`] with an integral value
    /// that fits in an `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Float(f) => {
                if f.fract() == 0.0
                    && *f >= -9.223_372_036_854_776e18
                    && *f < 9.223_372_036_854_776e18
                {
                    Some(*f as i64)
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    /// Entry `key` of an object value (borrowing from the data when the object does);
    /// `None` for a missing key or a value that is not an object.
    pub fn field(&self, key: &str) -> Option<Value<'a>> {
        match self {
            Value::Object(o) => object_get(o, key),
            _ => None,
        }
    }

    /// Element `i` of an array value (borrowing from the data when the array does);
    /// `None` out of range or for a value that is not an array.
    pub fn elem(&self, i: usize) -> Option<Value<'a>> {
        match self {
            Value::Array(a) => array_elem(a, i),
            _ => None,
        }
    }

    /// The length Go's `len` gives: bytes of a string, elements of an array or object.
    pub fn len(&self) -> Option<usize> {
        match self {
            Value::Str(s) => Some(s.len()),
            Value::Array(a) => Some(a.len()),
            Value::Object(o) => Some(o.len()),
            _ => None,
        }
    }

    /// True for an empty string, array or object (`Some(0)` from [`Value::len`]).
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }

    /// The boolean, for [`Value::Bool`].
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// True for [`Value::Missing`] and [`Value::Nil`].
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Missing | Value::Nil)
    }

    /// The Go type name of the value, as `printf "%T"` prints it (`<nil>` for nil and
    /// missing values).
    pub fn go_type(&self) -> &'static str {
        match self {
            Value::Missing | Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::Array(_) => "[]interface {}",
            Value::Object(_) => "map[string]interface {}",
        }
    }

    /// Converts the value into one that owns its data.
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Missing => Value::Missing,
            Value::Nil => Value::Nil,
            Value::Bool(b) => Value::Bool(b),
            Value::Int(i) => Value::Int(i),
            Value::Float(f) => Value::Float(f),
            Value::Str(s) => Value::Str(Cow::Owned(s.into_owned())),
            Value::Array(a) => Value::Array(Cow::Owned(a.into_owned())),
            Value::Object(o) => Value::Object(Cow::Owned(o.into_owned())),
        }
    }

    /// The value as JSON (`Missing` and `Nil` become `null`; non-finite floats `null`).
    pub fn to_json(&self) -> Json {
        match self {
            Value::Missing | Value::Nil => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Int(i) => Json::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
            Value::Str(s) => Json::String(s.to_string()),
            Value::Array(a) => Json::Array(a.to_vec()),
            Value::Object(o) => Json::Object(o.as_ref().clone()),
        }
    }
}

impl From<String> for Value<'static> {
    fn from(s: String) -> Self {
        Value::from_string(s)
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(s: &'a str) -> Self {
        Value::from_str_ref(s)
    }
}

impl From<bool> for Value<'static> {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<i64> for Value<'static> {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<f64> for Value<'static> {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}

impl<'a> From<&'a Json> for Value<'a> {
    fn from(v: &'a Json) -> Self {
        Value::from_json(v)
    }
}

/// Element `i` of an array value (borrowed when the array is).
pub(crate) fn array_elem<'a>(a: &Cow<'a, [Json]>, i: usize) -> Option<Value<'a>> {
    match a {
        Cow::Borrowed(s) => s.get(i).map(Value::from_json),
        Cow::Owned(v) => v.get(i).map(|e| Value::from_json_owned(e.clone())),
    }
}

/// Entry `key` of an object value (borrowed when the object is).
pub(crate) fn object_get<'a>(o: &Cow<'a, Map<String, Json>>, key: &str) -> Option<Value<'a>> {
    match o {
        Cow::Borrowed(m) => m.get(key).map(Value::from_json),
        Cow::Owned(m) => m.get(key).map(|e| Value::from_json_owned(e.clone())),
    }
}

/// The entries of an object in Go's map order (sorted keys), whatever the map's own order.
pub(crate) fn sorted_entries(m: &Map<String, Json>) -> Vec<(&String, &Json)> {
    let mut v: Vec<(&String, &Json)> = m.iter().collect();
    if !v.windows(2).all(|w| w[0].0 <= w[1].0) {
        v.sort_by(|a, b| a.0.cmp(b.0));
    }
    v
}

/// Whether iterating the map yields sorted keys (true for serde_json's default BTreeMap).
pub(crate) fn map_is_sorted(m: &Map<String, Json>) -> bool {
    let mut prev: Option<&String> = None;
    for k in m.keys() {
        if let Some(p) = prev
            && p > k
        {
            return false;
        }
        prev = Some(k);
    }
    true
}
