//! Limits: nothing panics, hangs or overflows the stack, whatever the template.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] functions

use callbox_gotmpl::{ExecOptions, Funcs, Template};
use serde_json::json;

fn parse(text: &str) -> Result<Template, callbox_gotmpl::ParseError> {
    Template::parse("t", text, &Funcs::new())
}

fn exec(t: &Template, options: &ExecOptions) -> Result<String, callbox_gotmpl::ExecError> {
    let mut out = String::new();
    t.execute(
        &json!({"X": "x", "SI": [1, 2, 3]}),
        &Funcs::new(),
        options,
        &mut out,
    )
    .map(|()| out)
}

#[test]
fn deep_nesting_is_a_parse_error_not_a_stack_overflow() {
    for n in [150usize, 199, 200, 201, 1000, 100_000] {
        let text = "{{if 1}}".repeat(n) + &"{{end}}".repeat(n);
        let r = parse(&text);
        if n <= 200 {
            let t = r.expect("nesting under the limit parses");
            assert_eq!(exec(&t, &ExecOptions::default()).unwrap(), "");
        } else {
            let e = r.expect_err("nesting over the limit is refused");
            assert!(e.message.contains("nesting too deep"), "{e}");
        }
        let parens = "{{print ".to_string() + &"(print ".repeat(n) + "1" + &")".repeat(n) + "}}";
        match parse(&parens) {
            // Unoptimized builds have large frames: the stack budget may stop deep parens.
            Ok(t) => match exec(&t, &ExecOptions::default()) {
                Ok(out) => assert_eq!(out, "1"),
                Err(e) => assert!(e.message.contains("nesting too deep"), "{e}"),
            },
            Err(e) => {
                assert!(n >= 200, "{n}: {e}");
                assert!(e.message.contains("nesting too deep"), "{e}");
            }
        }
    }
}

#[test]
fn deep_recursion_through_templates_is_bounded() {
    // Each call nests 150 levels of {{if}}: the executor's nesting budget stops it.
    let body = "{{if 1}}".repeat(150) + "{{template \"a\" .}}" + &"{{end}}".repeat(150);
    let text = format!("{{{{define \"a\"}}}}{body}{{{{end}}}}{{{{template \"a\" .}}}}");
    let t = parse(&text).unwrap();
    let e = exec(&t, &ExecOptions::default()).unwrap_err();
    assert!(e.message.contains("too deep"), "{e}");

    let t = parse(r#"{{define "a"}}{{template "a" .}}{{end}}{{template "a" .}}"#).unwrap();
    let e = exec(&t, &ExecOptions::default()).unwrap_err();
    assert!(
        e.message.contains("exceeded maximum template depth (100)"),
        "{e}"
    );
    let options = ExecOptions {
        max_depth: 10_000,
        ..ExecOptions::default()
    };
    let e = exec(&t, &options).unwrap_err();
    assert!(e.message.contains("too deep"), "{e}");
}

#[test]
fn exponential_template_calls_are_bounded() {
    // Depth 30, two calls per level: 2^30 calls without a bound.
    let t = parse(
        r#"{{define "a"}}{{if lt (len .) 30}}{{template "a" (print . "x")}}{{template "a" (print . "x")}}{{end}}{{end}}{{template "a" ""}}"#,
    )
    .unwrap();
    let e = exec(&t, &ExecOptions::default()).unwrap_err();
    assert!(
        e.message
            .contains("template calls exceed the limit of 100000"),
        "{e}"
    );
}

#[test]
fn deeply_nested_data_prints_without_overflow() {
    let mut v = json!(1);
    for _ in 0..5000 {
        v = serde_json::Value::Array(vec![v]);
    }
    let mut m = serde_json::Map::new();
    m.insert("V".to_string(), v);
    let data = serde_json::Value::Object(m);
    let t = parse("{{len (printf \"%v\" .V)}} {{index .V 0 0 0}}").unwrap();
    let out = t.render(&data, &Funcs::new()).unwrap();
    assert!(out.starts_with("405 [[["), "{out}");
    // Leak the value: dropping 5000 levels of serde_json::Value recurses deeply itself.
    std::mem::forget(data);
}

#[test]
fn malformed_escapes_are_parse_errors() {
    for text in [
        "{{\"\\𑤉\"}}",
        "{{\"\\é\"}}",
        "{{'\\é'}}",
        "{{\"\\400\"}}",
        "{{\"\\ud800\"}}",
        "{{\"\\x4\"}}",
        "{{'ab'}}",
        "{{''}}",
    ] {
        assert!(parse(text).is_err(), "{text}");
    }
    // Escapes of bytes that are not UTF-8 give U+FFFD.
    let t = parse(r#"{{"\xff\x41"}}"#).unwrap();
    assert_eq!(exec(&t, &ExecOptions::default()).unwrap(), "\u{FFFD}A");
}
