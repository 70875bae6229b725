//! Renders a batch of templates and prints one JSON result per case, in the format of
//! `tools/difftest/gobatch` (Go's answers), for differential testing against Go:
//!
//! ```text
//! cargo run --release -p callbox-gotmpl --example batch_render -- CASES.json > RESULTS.json
//! ```
//!
//! CASES.json is a list of `{"template": "...", "data": ..., "option": "missingkey=..."}`.
//! `Capitalize` and `UrlEncode` are registered like the Yeastar functions.

use callbox_gotmpl::{ExecOptions, Funcs, MissingKey, Template, Value};
use serde_json::{Value as Json, json};

fn funcs() -> Funcs {
    let mut f = Funcs::new();
    f.register("Capitalize", |args: &[Value<'_>]| match args {
        [v] => {
            let s = v.as_str().ok_or("wrong type for value; expected string")?;
            let mut c = s.chars();
            Ok(Value::from_string(match c.next() {
                Some(first) => first.to_uppercase().chain(c).collect(),
                None => String::new(),
            }))
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

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: batch_render CASES.json")?;
    let cases: Vec<Json> = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let funcs = funcs();
    let results: Vec<Json> = cases
        .iter()
        .map(|c| {
            let text = c["template"].as_str().unwrap_or("");
            let data = c.get("data").cloned().unwrap_or(Json::Null);
            let mut options = ExecOptions::default();
            if let Some(m) = c["option"].as_str().and_then(MissingKey::from_option) {
                options.missing_key = m;
            }
            match Template::parse("t", text, &funcs) {
                Err(e) => json!({"ok": false, "out": "", "err": e.to_string(), "parse_err": true}),
                Ok(t) => {
                    let mut out = String::new();
                    match t.execute(&data, &funcs, &options, &mut out) {
                        Ok(()) => json!({"ok": true, "out": out, "err": "", "parse_err": false}),
                        Err(e) => {
                            json!({"ok": false, "out": out, "err": e.to_string(), "parse_err": false})
                        }
                    }
                }
            }
        })
        .collect();
    println!("{}", serde_json::to_string(&results)?);
    Ok(())
}
