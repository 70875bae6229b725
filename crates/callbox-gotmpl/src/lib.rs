//! Go `text/template` over JSON data, as Go would render it.
//!
//! Callbox's CRM integrations are declarative templates whose URLs, headers and bodies
//! are Go templates rendered over the call variables (JSON). This crate parses and
//! executes them with the semantics of Go's `text/template` (release 1.19, plus the
//! later additions listed below) running over data decoded by `encoding/json` into
//! `interface{}`: JSON numbers are `float64`, objects are `map[string]interface{}`.
//!
//! ```
//! use callbox_gotmpl::{Funcs, Template};
//! let funcs = Funcs::new();
//! let t = Template::parse("t", r#"{{if eq .dir "in"}}from {{.from}}{{else}}to {{.to}}{{end}}"#, &funcs)?;
//! let data = serde_json::json!({"dir": "in", "from": "+14155551077", "secs": 301});
//! assert_eq!(t.render(&data, &funcs)?, "from +14155551077");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Supported
//!
//! Everything of `text/template`'s language:
//!
//! - text and actions, `{{- -}}` trimming, comments `{{/* */}}`;
//! - `.`, fields and chained fields (`.A.B`, `(pipeline).A`), `$`, variables declared
//!   with `:=` and assigned with `=`, pipelines with `|`, parenthesized pipelines;
//! - `if` / `else if` / `else`, `with` / `else with` / `else`, `range` over arrays,
//!   objects (sorted keys) and integers, with `$i, $v :=`, `else`, `break`, `continue`;
//! - `define`, `template`, `block`;
//! - constants: strings (`"…"` with Go escapes, `` `…` ``), runes (`'a'`), integers
//!   (decimal, `0x`, `0o`, `0b`, octal, `_` separators), floats (also hex floats),
//!   `true`, `false`, `nil`;
//! - the builtins `and`, `or` (short-circuit), `not`, `len`, `index`, `slice`, `print`,
//!   `printf`, `println`, `html`, `js`, `urlquery`, `eq` (several arguments), `ne`,
//!   `lt`, `le`, `gt`, `ge`, `call`, plus functions registered in [`Funcs`];
//! - Go's `fmt` for `print`/`printf`/`println` and for printing values: verbs
//!   `%v %+v %#v %T %d %s %q %x %X %o %O %b %e %E %f %F %g %G %t %c %U %%`, flags
//!   `+ - # 0 space`, widths and precisions (also `*` and `%[n]d` argument indexes),
//!   Go's float formatting (`15.1`, `1e+21`, `1.234567e+06`) and its error forms
//!   (`%!d(float64=17)`, `%!s(MISSING)`, `%!(EXTRA float64=1)`, `%!(NOVERB)`,
//!   `%!(BADWIDTH)`, `%!(BADPREC)`, `%!d(BADINDEX)`);
//! - the `missingkey` option ([`MissingKey`]).
//!
//! Errors resemble Go's (`executing "t" at <.X>: map has no entry for key "X"`) and
//! carry the byte offset, line and column (1-based, in characters) of the place in the
//! template text, also for templates called with `{{template}}`.
//!
//! # Hooks for the application
//!
//! - [`Sink`] receives text and the printed value of each action separately, with the
//!   name of the function that ends the action's pipeline, so that the caller can escape
//!   values for their output context unless the template already did.
//! - [`Template::root_fields`] lists the fields the template reads from the root data.
//! - [`ExecOptions`] bounds output size, template recursion and loop iterations.
//!
//! # Deliberate differences from Go
//!
//! - The data model is JSON: there are no structs, methods, pointers, channels or
//!   function values in the data (so `call` always fails, `%p` prints `%!p(…)`).
//! - No complex numbers: `1i` or `1+2i` constants are parse errors.
//! - Later Go additions are supported: `range` over an integer (Go 1.22), `else with`
//!   (Go 1.23), and assignments in `range` (`range $x = …`) assign the variables (Go 1.21).
//! - Strings are UTF-8: a `\x` escape in a constant that does not form valid UTF-8 gives
//!   U+FFFD, and `slice` on a string at a position inside a character gives U+FFFD.
//! - `index "abc" 1` gives an `int` (Go: `uint8`); `slice` of an array is limited by its
//!   length (Go: by its capacity).
//! - Registered functions receive untyped [`Value`]s: Go's argument type conversions
//!   and checks for them are the function's business.
//! - Executions are bounded ([`ExecOptions`]) where Go is not: output size (also of the
//!   strings `print`/`printf`/`html`… build), template recursion depth, range iterations
//!   and `{{template}}` calls, total steps (100 × the iteration limit).
//! - Nesting is bounded: 200 levels of control structures and parentheses in a template
//!   (a parse error beyond), 1500 levels of nested execution (bodies, pipelines and
//!   `{{template}}` calls together), and at most 1.5 MiB of stack for the recursion of
//!   either, whatever the build (so any thread with the usual 2 MiB stack is safe;
//!   optimized builds use far less). Printing stops descending into data nested deeper
//!   than 200 arrays or objects (`...`).
//! - A registered function that panics fails its call (`error calling F: panic: …`), as
//!   Go's `safeCall` does.
//! - Error messages are Go's, but positions are those of the start of the offending
//!   node, reported as 1-based line and character column (Go: byte column); a missing
//!   `{{end}}` is reported at the action it would close, an unclosed action at its `{{`.
//!
//! # Performance
//!
//! Templates are parsed once into a compact tree: variables are resolved to frame slots
//! and function names to the functions at parse time; execution borrows strings, arrays
//! and objects from the data instead of copying them, and writes straight into the
//! [`Sink`]. `examples/render_bench.rs` renders the five request templates of a CRM hook
//! (`examples/hotpath`) in about 5 µs per iteration on an idle core of the reference
//! machine, where Go's `text/template` takes about 40 µs.
//!
//! # Testing against Go
//!
//! `tests/conformance.rs` runs the vectors of Go's own exec tests; `tests/go_reference.rs`
//! runs ~1800 templates with the answers of Go 1.19 (generated with
//! `tools/difftest/difftest.py`, which also fuzzes this crate against Go);
//! `tests/props.rs` checks that no input panics.
//!
//! # Credits
//!
//! The lexer, parser, executor and the `fmt`/`strconv` formatting are ports of Go's
//! `text/template`, `fmt` and `strconv` packages, Copyright (c) 2009 The Go Authors, used
//! under Go's BSD-style license (`LICENSE-GO` in this crate). The Unicode tables are
//! generated from Go's `unicode` package by `tools/gen_unicode_tables.go`.

mod ast;
mod escape;
mod exec;
mod fmt;
mod funcs;
mod lex;
mod parse;
mod unicode;
mod unicode_tables;
mod value;

use std::sync::Arc;

pub use funcs::Funcs;
pub use value::{FuncResult, Value};

use funcs::FuncsInner;
use parse::Tree;

/// A parsed template, with the templates it `{{define}}`s.
///
/// Parse once, execute many times, from any thread: `Template` is `Send + Sync` and
/// cheap to clone (the parsed tree is shared).
#[derive(Clone)]
pub struct Template {
    inner: Arc<TemplateInner>,
}

pub(crate) struct TemplateInner {
    pub(crate) name: String,
    pub(crate) text: Box<str>,
    pub(crate) trees: Vec<Tree>,
    pub(crate) main: usize,
    pub(crate) funcs: Arc<FuncsInner>,
    pub(crate) root_fields: Vec<FieldRef>,
    pub(crate) plain: bool,
}

/// A reference to a field of the root data, found by [`Template::root_fields`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FieldRef {
    /// The first field name (`X` for `.X.Y` or `$.X.Y`).
    pub name: String,
    /// Byte offset of the reference (`.X` or `$`) in the template text.
    pub offset: usize,
}

/// Where the output of an execution goes.
///
/// Text nodes of the template arrive through [`Sink::text`]; the printed value of each
/// action that produces output arrives through [`Sink::action`].
pub trait Sink {
    /// Text of the template itself (after `{{- -}}` trimming).
    fn text(&mut self, text: &str);
    /// The printed value of an action (`{{pipeline}}`). `escaped_by` is the name of the
    /// function that ends the pipeline when its last command is a function call:
    /// `{{UrlEncode .Phone}}` → `Some("UrlEncode")`, `{{.Phone | urlquery}}` →
    /// `Some("urlquery")`, `{{printf "%q" .D}}` → `Some("printf")`,
    /// `{{(urlquery .X)}}` → `Some("urlquery")`, `{{.Phone}}` → `None`.
    fn action(&mut self, value: &str, escaped_by: Option<&str>);
}

impl Sink for String {
    fn text(&mut self, text: &str) {
        self.push_str(text);
    }

    fn action(&mut self, value: &str, _escaped_by: Option<&str>) {
        self.push_str(value);
    }
}

/// What to do when a template looks up a key that an object does not have
/// (Go's `missingkey` option).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MissingKey {
    /// `missingkey=default` (or `invalid`): the result is "no value", printed `<no value>`.
    #[default]
    Default,
    /// `missingkey=zero`: the zero value of the map's element type, which for JSON
    /// objects is nil (also printed `<no value>` by an action).
    Zero,
    /// `missingkey=error`: execution stops with an error.
    Error,
}

impl MissingKey {
    /// Parses Go's option string: `missingkey=default|invalid|zero|error`.
    pub fn from_option(option: &str) -> Option<MissingKey> {
        match option {
            "missingkey=default" | "missingkey=invalid" => Some(MissingKey::Default),
            "missingkey=zero" => Some(MissingKey::Zero),
            "missingkey=error" => Some(MissingKey::Error),
            _ => None,
        }
    }
}

/// Options and limits of an execution.
#[derive(Clone, Debug)]
pub struct ExecOptions {
    /// What a missing map key gives.
    pub missing_key: MissingKey,
    /// Maximum bytes of output (text and actions together), and of any string a builtin
    /// function produces. Default 1 MiB.
    pub max_output_bytes: usize,
    /// Maximum depth of `{{template}}` calls. Default 100.
    pub max_depth: usize,
    /// Maximum number of `range` iterations in one execution (all loops together);
    /// the number of `{{template}}` calls is bounded by the same number, and the total
    /// number of execution steps by 100 times it. Default 100 000.
    pub max_range_iterations: usize,
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions {
            missing_key: MissingKey::Default,
            max_output_bytes: 1 << 20,
            max_depth: 100,
            max_range_iterations: 100_000,
        }
    }
}

/// A template that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template: {line}:{column}: {message}")]
pub struct ParseError {
    /// Byte offset of the problem in the template text.
    pub offset: usize,
    /// 1-based line of the problem.
    pub line: usize,
    /// 1-based column of the problem, counted in characters.
    pub column: usize,
    /// What is wrong, in Go's words where Go has them (e.g. `function "foo" not defined`).
    pub message: String,
}

/// An execution that failed. Output sent to the sink before the failure stays there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template: {line}:{column}: {message}")]
pub struct ExecError {
    /// Byte offset in the template text of the node that failed.
    pub offset: usize,
    /// 1-based line of that node.
    pub line: usize,
    /// 1-based column of that node, counted in characters.
    pub column: usize,
    /// What failed, in Go's words: `executing "t" at <.X>: map has no entry for key "X"`.
    pub message: String,
}

/// 1-based line and character column of byte `offset` in `text`.
fn locate(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = 1 + before.bytes().filter(|&b| b == b'\n').count();
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = 1 + before[line_start..].chars().count();
    (line, column)
}

impl Template {
    /// Parses `text` like Go's `template.New(name).Funcs(funcs).Parse(text)`: the
    /// builtins and the functions of `funcs` may be called; any other function name is a
    /// parse error.
    pub fn parse(name: &str, text: &str, funcs: &Funcs) -> Result<Template, ParseError> {
        match parse::parse(name, text, &funcs.inner) {
            Ok(parsed) => Ok(Template {
                inner: Arc::new(TemplateInner {
                    name: name.to_string(),
                    text: text.into(),
                    trees: parsed.trees,
                    main: parsed.main,
                    funcs: funcs.inner.clone(),
                    root_fields: parsed.root_fields,
                    plain: !text.contains("{{"),
                }),
            }),
            Err(e) => {
                let (line, column) = locate(text, e.pos);
                Err(ParseError {
                    offset: e.pos,
                    line,
                    column,
                    message: e.msg,
                })
            }
        }
    }

    /// Executes the template over `data`, sending the output to `sink`.
    ///
    /// Functions are looked up in `funcs` (normally the registry the template was parsed
    /// with; a function missing from it is an execution error).
    pub fn execute(
        &self,
        data: &serde_json::Value,
        funcs: &Funcs,
        options: &ExecOptions,
        sink: &mut dyn Sink,
    ) -> Result<(), ExecError> {
        let inner: &TemplateInner = &self.inner;
        let mut ex = exec::Exec::new(inner, funcs, options, sink);
        match ex.run(data) {
            Ok(()) => Ok(()),
            Err(e) => {
                let (line, column) = locate(&inner.text, e.pos);
                Err(ExecError {
                    offset: e.pos,
                    line,
                    column,
                    message: e.msg,
                })
            }
        }
    }

    /// Executes the template into a `String` with default options.
    pub fn render(&self, data: &serde_json::Value, funcs: &Funcs) -> Result<String, ExecError> {
        let mut out = String::new();
        self.execute(data, funcs, &ExecOptions::default(), &mut out)?;
        Ok(out)
    }

    /// Every field looked up on the root data, in text order: `.X` and `.X.Y` (reported
    /// as `X`) where dot is still the root (outside `with` and `range` bodies and outside
    /// `{{define}}`d and `{{block}}` templates), and `$.X` anywhere. Each with the byte
    /// offset of the reference in the text.
    pub fn root_fields(&self) -> Vec<FieldRef> {
        self.inner.root_fields.clone()
    }

    /// True when the template has no actions, comments or definitions at all: rendering
    /// it always gives its text unchanged.
    pub fn is_plain_text(&self) -> bool {
        self.inner.plain
    }

    /// The name the template was parsed with.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The text the template was parsed from.
    pub fn text(&self) -> &str {
        &self.inner.text
    }

    /// The names of the templates defined by the text (the main one included), sorted.
    pub fn template_names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.inner.trees.iter().map(|t| t.name.as_str()).collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Template")
            .field("name", &self.inner.name)
            .field("text", &self.inner.text)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync + Clone>() {}

    #[test]
    fn template_and_funcs_are_send_sync_clone() {
        assert_send_sync::<Template>();
        assert_send_sync::<Funcs>();
    }

    #[test]
    fn locate_counts_lines_and_chars() {
        assert_eq!(locate("ab\ncdé{{", 7), (2, 4));
        assert_eq!(locate("", 0), (1, 1));
        assert_eq!(locate("abc", 99), (1, 4));
    }
}
