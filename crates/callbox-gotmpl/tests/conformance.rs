//! Runs the conformance vectors taken from Go's `text/template` exec tests
//! (`tests/conformance/text_template_cases.json`, answers of the real library over JSON data).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] functions

use callbox_gotmpl::{ExecOptions, Funcs, MissingKey, Template};
use serde_json::Value as Json;

/// Cases expected to fail, with the reason. The test fails if one of them passes.
const KNOWN_FAILURES: &[(&str, &str)] = &[];

struct Outcome {
    id: String,
    passed: bool,
    detail: String,
}

fn run_case(case: &Json) -> Outcome {
    let id = case["id"].as_str().unwrap_or("?").to_string();
    let template = case["template"].as_str().unwrap_or("");
    let data = case.get("data").cloned().unwrap_or(Json::Null);
    let expect_error = case["expected_error"].as_bool().unwrap_or(false);
    let expected = case["expected"].as_str();
    let mut options = ExecOptions::default();
    if let Some(opt) = case.get("option").and_then(Json::as_str) {
        options.missing_key = MissingKey::from_option(opt).expect("known option");
    }
    let funcs = Funcs::new();
    let result = Template::parse("t", template, &funcs)
        .map_err(|e| format!("parse error: {e}"))
        .and_then(|t| {
            let mut out = String::new();
            t.execute(&data, &funcs, &options, &mut out)
                .map(|()| out)
                .map_err(|e| format!("exec error: {e}"))
        });
    let (passed, detail) = match (&result, expect_error) {
        (Err(_), true) => (true, String::new()),
        (Ok(out), true) => (false, format!("expected an error, got {out:?}")),
        (Err(e), false) => (false, format!("expected {expected:?}, got {e}")),
        (Ok(out), false) => (
            Some(out.as_str()) == expected,
            format!("expected {expected:?}, got {out:?}"),
        ),
    };
    Outcome { id, passed, detail }
}

#[test]
fn go_text_template_conformance() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/conformance/text_template_cases.json"
    ))
    .expect("conformance file");
    let cases: Vec<Json> = serde_json::from_str(&text).expect("valid JSON");
    assert!(!cases.is_empty());
    let outcomes: Vec<Outcome> = cases.iter().map(run_case).collect();
    let passed = outcomes.iter().filter(|o| o.passed).count();
    let total = outcomes.len();
    println!("conformance: {passed}/{total} cases pass");

    let known = |id: &str| KNOWN_FAILURES.iter().any(|(k, _)| *k == id);
    let unexpected: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.passed && !known(&o.id))
        .map(|o| format!("{}: {}", o.id, o.detail))
        .collect();
    let fixed: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.passed && known(&o.id))
        .map(|o| o.id.as_str())
        .collect();
    assert!(
        unexpected.is_empty(),
        "unexpected failures:\n{}",
        unexpected.join("\n")
    );
    assert!(
        fixed.is_empty(),
        "cases listed in KNOWN_FAILURES now pass: {fixed:?}"
    );
    assert!(
        passed * 100 >= total * 95,
        "only {passed}/{total} cases pass"
    );
}
