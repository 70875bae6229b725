//! Benchmark of the template hot path: the five request templates of a CRM hook rendered
//! over a call's variables, once per iteration (Go's text/template takes about 52 µs per
//! iteration for the same workload on the reference machine).
//!
//! ```text
//! cargo run --release -p callbox-gotmpl --example render_bench [DIR] [ITERATIONS]
//! ```
//!
//! `DIR` holds `templates.json` (a list of template strings) and `vars.json` (an object);
//! it defaults to the copy of the workload in `examples/hotpath`. The Yeastar functions
//! are registered as simple stand-ins with the same arity.

use std::fmt::Write as _;
use std::time::Instant;

use callbox_gotmpl::{ExecOptions, FuncResult, Funcs, Template, Value};

fn one_arg<'a>(name: &str, args: &[Value<'a>]) -> Result<Value<'a>, String> {
    match args {
        [v] => Ok(v.clone()),
        _ => Err(format!(
            "wrong number of args for {name}: want 1 got {}",
            args.len()
        )),
    }
}

fn to_secs(v: &Value<'_>) -> Result<i64, String> {
    match v {
        Value::Float(f) => Ok(*f as i64),
        Value::Int(i) => Ok(*i),
        Value::Str(s) => s.trim().parse().map_err(|e| format!("{e}")),
        other => Err(format!("not a timestamp: {}", other.to_go_string())),
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn stand_in_funcs() -> Funcs {
    let mut funcs = Funcs::new();
    funcs.register("Capitalize", |args: &[Value<'_>]| -> FuncResult<'_> {
        let v = one_arg("Capitalize", args)?;
        let s = v.as_str().ok_or("wrong type for value; expected string")?;
        let mut chars = s.chars();
        Ok(match chars.next() {
            Some(c) => Value::from_string(c.to_uppercase().chain(chars).collect()),
            None => v.clone(),
        })
    });
    funcs.register("UrlEncode", |args: &[Value<'_>]| -> FuncResult<'_> {
        let v = one_arg("UrlEncode", args)?;
        let s = v.as_str().ok_or("wrong type for value; expected string")?;
        let mut out = String::with_capacity(s.len() + 8);
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                out.push(b as char);
            } else {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 15)] as char);
            }
        }
        Ok(Value::from_string(out))
    });
    funcs.register("ToMillis", |args: &[Value<'_>]| -> FuncResult<'_> {
        let v = one_arg("ToMillis", args)?;
        Ok(Value::from_string((to_secs(&v)? * 1000).to_string()))
    });
    funcs.register("TimeFormat", |args: &[Value<'_>]| -> FuncResult<'_> {
        let [v, layout, _utc] = args else {
            return Err(format!(
                "wrong number of args for TimeFormat: want 3 got {}",
                args.len()
            ));
        };
        let secs = to_secs(v)?;
        let (y, mo, d) = civil(secs.div_euclid(86_400));
        let t = secs.rem_euclid(86_400);
        let layout = layout
            .as_str()
            .ok_or("wrong type for value; expected string")?;
        let mut out = String::with_capacity(layout.len() + 8);
        let mut rest = layout;
        while !rest.is_empty() {
            let fields: [(&str, i64, usize); 6] = [
                ("yyyy", y, 4),
                ("MM", mo, 2),
                ("dd", d, 2),
                ("HH", t / 3600, 2),
                ("mm", t / 60 % 60, 2),
                ("ss", t % 60, 2),
            ];
            if let Some((tok, n, w)) = fields.iter().find(|(tok, _, _)| rest.starts_with(tok)) {
                let _ = write!(out, "{n:0w$}");
                rest = &rest[tok.len()..];
            } else {
                let c = rest.chars().next().unwrap_or(' ');
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        Ok(Value::from_string(out))
    });
    funcs
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hotpath").to_string());
    let iterations: u32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(200_000);

    let texts: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(format!("{dir}/templates.json"))?)?;
    let vars: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{dir}/vars.json"))?)?;
    let funcs = stand_in_funcs();
    let templates = texts
        .iter()
        .map(|t| Template::parse("t", t, &funcs))
        .collect::<Result<Vec<_>, _>>()?;
    let options = ExecOptions::default();

    let mut out = String::with_capacity(4096);
    for t in &templates {
        out.clear();
        t.execute(&vars, &funcs, &options, &mut out)?;
        println!("{out}");
    }

    let mut sink = 0usize;
    // Warm up, then measure.
    for _ in 0..iterations / 10 {
        for t in &templates {
            out.clear();
            t.execute(&vars, &funcs, &options, &mut out)?;
            sink += out.len();
        }
    }
    // Batches of iterations: the best batch is the cost on an idle core, the median what a
    // loaded machine gives.
    let batches = 20u32;
    let per_batch = (iterations / batches).max(1);
    let mut batch_ns: Vec<u128> = Vec::with_capacity(batches as usize);
    let start = Instant::now();
    for _ in 0..batches {
        let t0 = Instant::now();
        for _ in 0..per_batch {
            for t in &templates {
                out.clear();
                t.execute(&vars, &funcs, &options, &mut out)?;
                sink += out.len();
            }
        }
        batch_ns.push(t0.elapsed().as_nanos() / u128::from(per_batch));
    }
    let elapsed = start.elapsed();
    batch_ns.sort_unstable();
    let best = batch_ns[0];
    let median = batch_ns[batch_ns.len() / 2];
    let iterations = per_batch * batches;
    if std::env::var_os("PER_TEMPLATE").is_some() {
        for (i, t) in templates.iter().enumerate() {
            let start = Instant::now();
            for _ in 0..iterations {
                out.clear();
                t.execute(&vars, &funcs, &options, &mut out)?;
                sink += out.len();
            }
            let ns = start.elapsed().as_nanos() / u128::from(iterations.max(1));
            println!("template {i}: {ns} ns");
        }
    }
    let ns = elapsed.as_nanos() / u128::from(iterations.max(1));
    println!(
        "{{\"impl\":\"callbox-gotmpl\",\"iterations\":{iterations},\"ns_per_iteration\":{ns},\"best_batch_ns\":{best},\"median_batch_ns\":{median},\"sink\":{sink}}}"
    );
    Ok(())
}
