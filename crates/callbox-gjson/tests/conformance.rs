//! Conformance vectors: gjson results (String(), Raw, Exists(), Type)
//! recorded from tidwall/gjson, run against `get` and `Document::get`.

use callbox_gjson::{Document, get};
use serde_json::Value as Json;

/// Cases expected to fail, with the reason. The test fails if a case not
/// listed here fails, and also if a listed case passes.
const KNOWN_FAILURES: &[(&str /*id*/, &str /*reason*/)] = &[];

fn load() -> Vec<Json> {
    let text = include_str!("conformance/gjson_cases.json");
    match serde_json::from_str::<Json>(text) {
        Ok(Json::Array(cases)) => cases,
        _ => panic!("gjson_cases.json must be a JSON array"),
    }
}

fn field<'j>(case: &'j Json, name: &str) -> Option<&'j Json> {
    case.get(name)
}

fn str_field<'j>(case: &'j Json, name: &str) -> &'j str {
    field(case, name)
        .and_then(Json::as_str)
        .unwrap_or_else(|| panic!("case lacks {name}: {case}"))
}

/// Check one case; `Err(description)` on mismatch.
fn check(case: &Json) -> Result<(), String> {
    let json = str_field(case, "json");
    let path = str_field(case, "path");
    let expected = str_field(case, "expected");
    let exists = field(case, "expected_exists")
        .and_then(Json::as_bool)
        .unwrap_or(true);
    let ty = str_field(case, "expected_type");
    let raw = field(case, "expected_raw").and_then(Json::as_str);

    let doc = Document::new(json);
    // Evaluate through a Document twice (cold and warm memo) and through get().
    let results = [
        ("get", get(json, path)),
        ("doc", doc.get(path)),
        ("doc-warm", doc.get(path)),
    ];
    let mut problems = Vec::new();
    for (how, v) in &results {
        if v.exists() != exists {
            problems.push(format!("{how}: exists {} != {exists}", v.exists()));
        }
        if v.to_str() != expected {
            problems.push(format!("{how}: String() {:?} != {expected:?}", v.to_str()));
        }
        if let Some(raw) = raw
            && v.raw() != raw
        {
            problems.push(format!("{how}: raw {:?} != {raw:?}", v.raw()));
        }
        if v.kind().name() != ty {
            problems.push(format!("{how}: type {} != {ty}", v.kind().name()));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

#[test]
fn conformance() {
    let cases = load();
    assert!(cases.len() >= 200, "expected the full vector set");
    for (id, reason) in KNOWN_FAILURES {
        assert!(
            !reason.trim().is_empty(),
            "known failure {id} needs a reason"
        );
    }
    let mut passed = 0;
    let mut unexpected = Vec::new();
    let mut fixed = Vec::new();
    for case in &cases {
        let id = str_field(case, "id");
        let known = KNOWN_FAILURES.iter().any(|(k, _)| *k == id);
        match check(case) {
            Ok(()) => {
                passed += 1;
                if known {
                    fixed.push(id.to_string());
                }
            }
            Err(e) => {
                if !known {
                    unexpected.push(format!("{id} path={:?}: {e}", str_field(case, "path")));
                }
            }
        }
    }
    eprintln!("conformance: {passed}/{} cases pass", cases.len());
    assert!(
        unexpected.is_empty(),
        "unexpected failures:\n{}",
        unexpected.join("\n")
    );
    assert!(
        fixed.is_empty(),
        "listed as known failures but now pass: {fixed:?}"
    );
    assert!(passed * 100 >= cases.len() * 95, "fewer than 95% pass");
}
