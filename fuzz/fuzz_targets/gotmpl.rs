//! Any text as a Go template, executed over fixed call data with the Yeastar functions and in
//! every output context: parse and execute must return, never panic or hang.
#![no_main]
use std::sync::{Arc, OnceLock};

use callbox_core::escape::{ContextSink, OutputContext};
use callbox_core::functions::{yeastar_funcs, Utc};
use callbox_core::gotmpl::{ExecOptions, Funcs, Template};
use libfuzzer_sys::fuzz_target;

fn data() -> &'static (serde_json::Value, Funcs) {
    static DATA: OnceLock<(serde_json::Value, Funcs)> = OnceLock::new();
    DATA.get_or_init(|| {
        (
            serde_json::json!({"Phone": "+14155550100", "n": 3, "f": 1.5, "list": [1, "a", null, {"k": [true]}],
                "obj": {"a": {"b": "c"}}, "StartTimeUnix": 1717236000, "empty": "", "nil": null}),
            yeastar_funcs(Arc::new(Utc)),
        )
    })
}

fuzz_target!(|text: &str| {
    let (data, funcs) = data();
    if let Ok(template) = Template::parse("fuzz", text, funcs) {
        let options = ExecOptions {
            max_output_bytes: 64 * 1024,
            ..ExecOptions::default()
        };
        for context in [OutputContext::Url, OutputContext::Json, OutputContext::Plain] {
            let mut out = String::new();
            let mut sink = ContextSink::new(&mut out, context);
            let _ = template.execute(data, funcs, &options, &mut sink);
        }
        let _ = template.root_fields();
    }
});
