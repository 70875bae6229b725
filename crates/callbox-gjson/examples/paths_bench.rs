//! Times the hot path: the 10 GJSON paths of `paths.txt` over the Zoho-like
//! `response.json`, once per iteration, with `get()` and with one
//! `Document` per iteration.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-gjson cargo run --release -p callbox-gjson --example paths_bench [DIR] [ITERATIONS]
//! ```
//! `DIR` defaults to `/work/shared/anchors/hotpath`.

use std::hint::black_box;
use std::time::Instant;

use callbox_gjson::{Document, get};

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| "/work/shared/anchors/hotpath".to_string());
    let iterations: u32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(3000);
    let json = match std::fs::read_to_string(format!("{dir}/response.json")) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot read {dir}/response.json: {e}");
            std::process::exit(2);
        }
    };
    let paths_txt = std::fs::read_to_string(format!("{dir}/paths.txt")).unwrap_or_default();
    let paths: Vec<&str> = paths_txt.lines().map(str::trim).filter(|p| !p.is_empty()).collect();

    // Sanity: both ways agree.
    let doc = Document::new(&json);
    for p in &paths {
        let a = get(&json, p);
        let b = doc.get(p);
        assert_eq!(a, b, "Document::get differs from get for {p}");
        let s = a.to_str();
        let shown: String = s.chars().take(60).collect();
        println!("{p:<50} {}{}", shown, if s.len() > 60 { "…" } else { "" });
    }

    let run_get = || {
        let mut sink = 0usize;
        for p in &paths {
            sink += get(black_box(&json), p).to_str().len();
        }
        sink
    };
    let run_doc = || {
        let mut sink = 0usize;
        let doc = Document::new(black_box(&json));
        for p in &paths {
            sink += doc.get(p).to_str().len();
        }
        sink
    };
    // per-path timing with one warm Document per iteration is not meaningful;
    // report per-path cost with get()
    for p in &paths {
        let n = (iterations / 3).max(1);
        let t = Instant::now();
        for _ in 0..n {
            black_box(get(black_box(&json), p).to_str().len());
        }
        println!("  get {:>9} ns  {p}", t.elapsed().as_nanos() / u128::from(n));
    }
    for (name, f) in [("get()", &run_get as &dyn Fn() -> usize), ("Document", &run_doc)] {
        // warm up
        for _ in 0..(iterations / 10).max(1) {
            black_box(f());
        }
        let t = Instant::now();
        let mut sink = 0;
        for _ in 0..iterations {
            sink += f();
        }
        let ns = t.elapsed().as_nanos() / u128::from(iterations);
        println!("{name:<10} {ns:>9} ns per iteration ({} paths, sink {sink})", paths.len());
    }
}
