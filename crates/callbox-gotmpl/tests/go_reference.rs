//! Differential vectors: templates (hand-written, and generated for `printf`, float
//! formatting, escaping, control structures and random token soup) with the answers of
//! Go 1.19's `text/template` over the same JSON data (`tests/golden/go_reference_cases.json`,
//! produced by `tools/gobatch` and `tools/gen_go_reference.py`).
//!
//! A case passes when both succeed with the same output, or both fail at the same stage
//! (parse or execution). Error messages are informative only.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] functions

use callbox_gotmpl::{Funcs, Template, Value};
use serde_json::Value as Json;

/// Cases where this crate deliberately differs from Go (none in the file: the generator
/// leaves out `else with`, `range` over integers, complex numbers and capacity-based slicing).
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[];

/// Registered like the Yeastar functions the generator's Go harness has.
fn funcs() -> Funcs {
    let mut f = Funcs::new();
    f.register("Capitalize", |args: &[Value<'_>]| match args {
        [v] => {
            let s = v.as_str().ok_or("wrong type for value; expected string")?;
            let mut c = s.chars();
            Ok(match c.next() {
                Some(first) => Value::from_string(first.to_uppercase().chain(c).collect()),
                None => Value::from_string(String::new()),
            })
        }
        _ => Err(format!(
            "wrong number of args for Capitalize: want 1 got {}",
            args.len()
        )),
    });
    f.register("UrlEncode", |args: &[Value<'_>]| match args {
        [v] => {
            let s = v.as_str().ok_or("wrong type for value; expected string")?;
            let mut o = String::new();
            for b in s.bytes() {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    o.push(b as char);
                } else {
                    o.push_str(&format!("%{b:02X}"));
                }
            }
            Ok(Value::from_string(o))
        }
        _ => Err(format!(
            "wrong number of args for UrlEncode: want 1 got {}",
            args.len()
        )),
    });
    f
}

#[test]
fn same_answers_as_go() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/go_reference_cases.json"
    ))
    .expect("golden file");
    let file: Json = serde_json::from_str(&text).expect("valid JSON");
    let data = &file["data"];
    let cases = file["cases"].as_array().expect("cases");
    let funcs = funcs();
    let mut failures = Vec::new();
    let mut passed = 0;
    for case in cases {
        let template = case["template"].as_str().expect("template");
        let d = &data[case["data"].as_str().expect("data name")];
        let ours = Template::parse("t", template, &funcs)
            .map_err(|e| (true, e.to_string()))
            .and_then(|t| t.render(d, &funcs).map_err(|e| (false, e.to_string())));
        let ok = match (&ours, case.get("output")) {
            (Ok(out), Some(expected)) => Some(out.as_str()) == expected.as_str(),
            (Err((parse, _)), None) => Some(*parse) == case["parse_error"].as_bool(),
            _ => false,
        };
        let known = KNOWN_DIFFERENCES.iter().any(|(t, _)| *t == template);
        if ok {
            passed += 1;
            assert!(!known, "listed difference now agrees with Go: {template:?}");
        } else if !known {
            failures.push(format!(
                "{template:?}\n   go: {}\n   us: {ours:?}",
                case.get("output")
                    .map(|o| format!("Ok({o})"))
                    .unwrap_or_else(|| format!("Err({})", case["error"]))
            ));
        }
    }
    println!("go reference: {passed}/{} cases agree", cases.len());
    assert!(
        failures.is_empty(),
        "{} disagreements:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
