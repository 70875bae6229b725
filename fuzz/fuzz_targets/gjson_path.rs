//! Any input split into a JSON document and a path: evaluation (plain and memoized) and path
//! validation must return, never panic or hang, and agree with each other.
#![no_main]
use callbox_core::gjson;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    let (json, path) = input.split_once('\u{1}').unwrap_or((input, "a.#(b==1)#|0"));
    let _ = gjson::validate_path(path);
    let plain = gjson::get(json, path);
    let document = gjson::Document::new(json);
    let memoized = document.get(path);
    assert_eq!(plain.raw(), memoized.raw());
    assert_eq!(plain.exists(), memoized.exists());
    let _ = plain.to_str();
    let _ = gjson::valid(json);
});
