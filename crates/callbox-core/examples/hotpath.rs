//! The template hot path — what a CRM hook does per call: render every request template over
//! the call's variables (with Callbox's contextual escaping), then extract every output path
//! from the CRM's response. Same workload and output shape as the Go reference
//! (`shared/anchors/yeastar-ref hotpath DIR N`), for a side-by-side comparison.
//!
//! ```sh
//! cargo run --release -p callbox-core --example hotpath -- [DIR [ITERATIONS]]
//! ```
//!
//! DIR (default: `examples/hotpath` of this crate, a copy of `shared/anchors/hotpath`) holds templates.json (a list of template strings), vars.json (an object),
//! response.json and paths.txt (one GJSON path per line). The last line printed is JSON with
//! `ns_per_iteration`.

use std::sync::Arc;
use std::time::Instant;

use callbox_core::escape::{ContextSink, OutputContext};
use callbox_core::functions::{Utc, yeastar_funcs};
use callbox_core::gjson::Document;
use callbox_core::gotmpl::{ExecOptions, Template};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hotpath").to_string());
    let iterations: u64 = args
        .next()
        .and_then(|n| n.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(10_000);
    let read = |name: &str| std::fs::read_to_string(format!("{dir}/{name}"));
    let texts: Vec<String> = serde_json::from_str(&read("templates.json")?)?;
    let vars: serde_json::Value = serde_json::from_str(&read("vars.json")?)?;
    let response = read("response.json")?;
    let paths: Vec<String> = read("paths.txt")?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();

    // Parse once, as the engine does when it loads a template.
    let funcs = yeastar_funcs(Arc::new(Utc));
    let compiled: Vec<(Template, OutputContext)> = texts
        .iter()
        .map(|t| Ok((Template::parse("t", t, &funcs)?, context_of(t))))
        .collect::<Result<_, callbox_core::gotmpl::ParseError>>()?;
    let options = ExecOptions::default();

    let mut sink_len = 0usize;
    let mut out = String::with_capacity(4096);
    let start = Instant::now();
    for _ in 0..iterations {
        for (template, context) in &compiled {
            out.clear();
            let mut sink = ContextSink::new(&mut out, *context);
            template.execute(&vars, &funcs, &options, &mut sink)?;
            sink_len += out.len();
        }
        let document = Document::new(&response);
        for path in &paths {
            sink_len += document.get(path).to_str().len();
        }
    }
    let elapsed = start.elapsed();
    let per_iteration = elapsed.as_nanos() / u128::from(iterations);
    println!(
        "{{\"impl\":\"callbox-core (callbox-gotmpl + callbox-gjson, contextual escaping)\",\"iterations\":{iterations},\"ns_per_iteration\":{per_iteration},\"sink\":{sink_len}}}"
    );
    Ok(())
}

/// The output context the engine would use for a template of this shape: JSON bodies, URLs,
/// and plain text (Subject/Description).
fn context_of(text: &str) -> OutputContext {
    let t = text.trim_start();
    if t.starts_with('{') && !t.starts_with("{{") || t.starts_with('[') {
        OutputContext::Json
    } else if t.starts_with("http") || (t.starts_with("{{") && t.contains('/')) {
        OutputContext::Url
    } else {
        OutputContext::Plain
    }
}
