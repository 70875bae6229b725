//! Property tests: whatever the template text and the data, parsing and execution return
//! `Ok` or `Err` — they never panic, hang or overflow the stack.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] functions

use callbox_gotmpl::{ExecOptions, Funcs, Template, Value};
use proptest::prelude::*;
use serde_json::{Map, Value as Json};

/// Pieces that make random text look like templates.
const FRAGMENTS: &[&str] = &[
    "{{",
    "}}",
    "{{- ",
    " -}}",
    "{{-",
    "-}}",
    " ",
    "  ",
    "\n",
    "\t",
    "(",
    ")",
    "|",
    ",",
    ":=",
    "=",
    "$",
    "$x",
    "$y",
    ".",
    "..",
    ".X",
    ".A",
    ".A.B",
    ".L",
    ".N",
    ".S",
    "\"",
    "\"s\"",
    "`",
    "`r`",
    "'",
    "'c'",
    "'\\n'",
    "\"\\x41\"",
    "\"%d\"",
    "\"%v %s\"",
    "\"%-*.*q\"",
    "0",
    "1",
    "-1",
    "1.5",
    "1e3",
    "0x1F",
    "0b1",
    "1_0",
    "09",
    "1e400",
    "nil",
    "true",
    "false",
    "if",
    "else",
    "end",
    "range",
    "with",
    "define",
    "template",
    "block",
    "break",
    "continue",
    "\"d\"",
    "and",
    "or",
    "not",
    "len",
    "index",
    "slice",
    "print",
    "printf",
    "println",
    "html",
    "js",
    "urlquery",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "call",
    "Up",
    "/*",
    "*/",
    "{{end}}",
    "{{else}}",
    "{{if .X}}",
    "{{range .L}}",
    "{{range $i, $e := .L}}",
    "{{with .A}}",
    "{{define \"d\"}}",
    "{{template \"d\" .}}",
    "{{block \"b\" .}}",
    "{{break}}",
    "{{continue}}",
    "é",
    "😀",
    "\u{0}",
    "}",
    "{",
    "#",
    "%",
];

fn template_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        6 => proptest::sample::select(FRAGMENTS).prop_map(str::to_string),
        1 => "[a-zA-Z0-9 .$(){}|\"'`\\-_:=%]{0,4}",
        1 => any::<char>().prop_map(|c| c.to_string()),
    ];
    proptest::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

fn json_value() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number)),
        any::<i32>().prop_map(|i| Json::from(i64::from(i))),
        "\\PC{0,8}".prop_map(Json::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Json::Array),
            proptest::collection::btree_map("[A-Za-z]{1,3}", inner, 0..6)
                .prop_map(|m| Json::Object(m.into_iter().collect::<Map<String, Json>>())),
        ]
    })
}

/// Data with the keys the fragments use, holding arbitrary values.
fn data() -> impl Strategy<Value = Json> {
    (
        json_value(),
        json_value(),
        json_value(),
        json_value(),
        json_value(),
    )
        .prop_map(|(x, a, l, n, s)| {
            let mut m = Map::new();
            m.insert("X".into(), x);
            m.insert("A".into(), a);
            m.insert("L".into(), l);
            m.insert("N".into(), n);
            m.insert("S".into(), s);
            Json::Object(m)
        })
}

fn funcs() -> Funcs {
    let mut f = Funcs::new();
    f.register("Up", |args: &[Value<'_>]| match args {
        [v] => Ok(Value::from_string(v.to_go_string().to_uppercase())),
        _ => Err("want one argument".to_string()),
    });
    f
}

fn options() -> ExecOptions {
    ExecOptions {
        max_output_bytes: 64 << 10,
        max_range_iterations: 2_000,
        ..ExecOptions::default()
    }
}

fn check_position(text: &str, offset: usize, line: usize, column: usize) {
    assert!(
        offset <= text.len(),
        "offset {offset} beyond {}",
        text.len()
    );
    assert!(line >= 1 && column >= 1);
    assert!(line <= text.matches('\n').count() + 1);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn parse_and_execute_never_panic(text in template_text(), data in data()) {
        let funcs = funcs();
        match Template::parse("t", &text, &funcs) {
            Ok(t) => {
                let mut out = String::new();
                if let Err(e) = t.execute(&data, &funcs, &options(), &mut out) {
                    check_position(&text, e.offset, e.line, e.column);
                }
                prop_assert!(out.len() <= options().max_output_bytes);
                let _ = t.root_fields();
            }
            Err(e) => check_position(&text, e.offset, e.line, e.column),
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,60}", data in json_value()) {
        let funcs = funcs();
        if let Ok(t) = Template::parse("t", &text, &funcs) {
            let mut out = String::new();
            let _ = t.execute(&data, &funcs, &options(), &mut out);
        }
    }

    #[test]
    fn plain_text_renders_as_itself(text in "[^{]{0,40}") {
        let funcs = Funcs::new();
        let t = Template::parse("t", &text, &funcs).unwrap();
        prop_assert!(t.is_plain_text());
        prop_assert_eq!(t.render(&Json::Null, &funcs).unwrap(), text);
    }

    #[test]
    fn printing_any_value_never_panics(v in json_value(), verb in "[a-zA-Z%]", flags in "[-+# 0]{0,3}", width in 0u32..20, prec in proptest::option::of(0u32..20)) {
        let _ = Value::from_json(&v).to_go_string();
        let prec = prec.map(|p| format!(".{p}")).unwrap_or_default();
        let text = format!("{{{{printf \"%{flags}{width}{prec}{verb}|%v\" .X .X}}}}");
        let funcs = Funcs::new();
        let t = Template::parse("t", &text, &funcs).unwrap();
        let data = serde_json::json!({"X": v});
        prop_assert!(t.render(&data, &funcs).is_ok());
    }
}
