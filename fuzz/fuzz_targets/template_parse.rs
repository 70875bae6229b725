//! Any bytes as an integration template: parse and validate must return, never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let parsed = callbox_core::template::parse(text);
        for d in &parsed.diagnostics {
            let _ = d.to_string();
        }
    }
});
