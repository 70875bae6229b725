//! GJSON path evaluation with the semantics of [tidwall/gjson] (Go).
//!
//! Callbox's CRM integrations extract output values from CRM JSON responses
//! with GJSON paths. This crate evaluates those paths exactly as gjson does —
//! including its lenient behaviour on malformed JSON — because the scanning
//! algorithm is a port of gjson's own.
//!
//! *Derived from tidwall/gjson, tidwall/match and tidwall/pretty (MIT,
//! Copyright (c) 2016 Josh Baker).*
//!
//! ```
//! let json = r#"{"name":{"first":"Tom","last":"Anderson"},"friends":[
//!     {"first":"Dale","last":"Murphy","age":44},
//!     {"first":"Roger","last":"Craig","age":68}]}"#;
//! assert_eq!(callbox_gjson::get(json, "name.last").to_str(), "Anderson");
//! assert_eq!(callbox_gjson::get(json, "friends.#(age>45).first").to_str(), "Roger");
//! assert_eq!(callbox_gjson::get(json, "friends.#.first").raw(), r#"["Dale","Roger"]"#);
//!
//! // Many paths over one response: prepare a Document once.
//! let doc = callbox_gjson::Document::new(json);
//! assert_eq!(doc.get("friends.1.age").num(), 68.0);
//! assert!(!doc.get("friends.2").exists());
//! ```
//!
//! # Supported syntax
//!
//! The whole GJSON path syntax (see gjson's `SYNTAX.md`):
//!
//! * dot paths (`name.last`), `\` escapes (`fav\.movie`), `*` / `?`
//!   wildcards in keys (unicode aware);
//! * array indexes (`children.1`), `#` (count), `#.key` projections;
//! * queries `#(...)` (first match) and `#(...)#` (all matches) with
//!   `==`, `=`, `!=`, `<`, `<=`, `>`, `>=`, `%` (like), `!%` (not like),
//!   `==~` / `!=~` truthiness (`~true`, `~false`, `~null`, `~*`), existence
//!   queries `#(key)`, value queries on arrays of scalars `#(=="x")`, nested
//!   queries `#(nets.#(=="fb"))`, and the legacy `#[...]` brackets;
//! * `|` pipes, with gjson's dot-vs-pipe differences after `#`;
//! * multipaths `[a,b]` and `{a,"key":b}`;
//! * literals `!true`, `!"str"`, `!{...}`, `!123`;
//! * JSON lines (`..#`, `..0`, `..#.name`);
//! * modifiers `@reverse`, `@ugly`, `@pretty` (with its
//!   `{"sortKeys","indent","prefix","width"}` options), `@this`, `@valid`,
//!   `@flatten` (`{"deep":true}`), `@join` (`{"preserve":true}`), `@keys`,
//!   `@values`, `@tostr`, `@fromstr`, `@group` and `@dig`.
//!
//! The reference is gjson v1.18 (the version the conformance vectors were
//! produced with): it differs from the older v1.14 in the `==~` semantics
//! (`~null` and `~*` exist, and `~false` also matches `null`, missing and
//! `"0"`/`"false"` strings) and it has `@dig`.
//!
//! # Differences from Go gjson
//!
//! * Evaluation is bounded: beyond [`MAX_DEPTH`] nested steps (path
//!   components, nested queries/multipaths/modifiers, or JSON nesting inside
//!   `@pretty`, `@flatten` and `@dig`) the result is a non-existing value
//!   instead of an arbitrarily deep recursion. Wildcard patterns with more
//!   than 256 sandwiched `*` do not match. `@dig` and deep `@flatten` cost
//!   O(size × depth), as in gjson (the depth being capped here).
//! * There are no custom modifiers (`gjson.AddModifier`), and
//!   `DisableModifiers` is always off.
//! * `Result.Index`/`Indexes`/`Path()`/`Int()`/`Uint()`/`Time()` are not
//!   provided (the values are available through [`Value::raw`],
//!   [`Value::to_str`], [`Value::num`]).
//! * [`validate_path`] is an addition: it rejects some paths gjson would
//!   accept (unknown `@name` components, which gjson treats as plain keys —
//!   escape them as `\@name`; unbalanced brackets in plain keys — escape
//!   them).
//!
//! Behaviour on malformed JSON follows gjson's scanning exactly (the crate
//! was checked against gjson on ~100,000 generated, mostly malformed,
//! documents and paths, with and without [`Document`]).
//!
//! # Performance
//!
//! [`get`] is a straight port of gjson's scanner (with SWAR string scanning).
//! [`Document`] additionally memoizes, per absolute byte offset, the results
//! of gjson's own deterministic scanning steps:
//!
//! * for a container (≥ 256 bytes, or already seen), the members its
//!   object/array loop visits when skipping values (key span, value span) and
//!   where that loop ends — so key lookups, `#`, `#.key` and queries over an
//!   array already scanned cost no rescanning;
//! * where `parseSquash` from an opening bracket ends;
//! * for query conditions repeated over the same array (`data.#(Phone=="…")`
//!   followed by other paths with the same query), each element's match
//!   outcome.
//!
//! A memoized step is only used where the bytes it examined are all inside
//! the text being evaluated, and evaluation falls back to gjson's raw loops
//! whenever the memo cannot answer, so `Document::get` returns exactly what
//! [`get`] returns (checked by property tests and differential fuzzing).
//! A `Document` is `Send` but not `Sync` (it uses interior mutability).
//!
//! [tidwall/gjson]: https://github.com/tidwall/gjson

#![forbid(unsafe_code)]

mod cache;
mod engine;
mod levels;
mod matcher;
mod modifiers;
mod numfmt;
mod scan;
mod valid;
mod validate;
mod value;

pub use engine::MAX_DEPTH;
pub use modifiers::MODIFIERS;
pub use valid::valid;
pub use validate::{PathError, PathErrorKind, validate_path};
pub use value::{Kind, Value};

use cache::DocCache;
use engine::Env;

/// Evaluate `path` over `json` (like `gjson.Get`).
///
/// Never panics; on malformed JSON it answers what gjson answers.
pub fn get<'a>(json: &'a str, path: &str) -> Value<'a> {
    let env = Env::new(json, None);
    engine::get_top(&env, json, path)
}

/// Evaluate several paths over one JSON text (like `gjson.GetMany`), sharing
/// one [`Document`].
pub fn get_many<'a>(json: &'a str, paths: &[&str]) -> Vec<Value<'a>> {
    let doc = Document::new(json);
    paths.iter().map(|p| doc.get(p)).collect()
}

/// A JSON document prepared for evaluating many paths.
///
/// The engine extracts 5-20 outputs from one CRM response; a `Document`
/// remembers what earlier paths scanned, so later paths are cheaper.
/// `doc.get(path)` always returns the same value as `get(doc.json(), path)`.
#[derive(Debug)]
pub struct Document<'a> {
    json: &'a str,
    cache: Box<DocCache>,
}

impl<'a> Document<'a> {
    /// Prepare `json` (no work is done until the first `get`).
    pub fn new(json: &'a str) -> Self {
        Document {
            json,
            cache: Box::default(),
        }
    }

    /// Evaluate `path` (same result as [`get`]`(self.json(), path)`).
    pub fn get(&self, path: &str) -> Value<'a> {
        let cache = DocCache::supports(self.json.len()).then_some(&*self.cache);
        if let Some(c) = cache {
            c.prepare(self.json.len());
        }
        let env = Env::new(self.json, cache);
        engine::get_top(&env, self.json, path)
    }

    /// The JSON text.
    pub fn json(&self) -> &'a str {
        self.json
    }
}

/// Parse a JSON value without a path (gjson `Parse`): the first value of the
/// text. Objects and arrays take the whole rest of the text as their raw.
pub fn parse(json: &str) -> Value<'_> {
    value::parse(json)
}
