//! Times the hot path: the GJSON paths of `paths.txt` over the Zoho-like
//! `response.json`, once per iteration, with `get()` and with one
//! `Document` per iteration (created inside the timed loop).
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-gjson cargo run --release -p callbox-gjson --example paths_bench [DIR] [ITERATIONS]
//! ```
//! `DIR` defaults to `/work/shared/anchors/hotpath`. Timings are the best
//! of several batches (the median is printed too), in ns per iteration.

use std::hint::black_box;
use std::time::Instant;

use callbox_gjson::{Document, get};

/// Best and median ns per call of `f` over `batches` batches of `n` calls.
fn measure(batches: u32, n: u32, f: &dyn Fn() -> usize) -> (u128, u128) {
    let mut samples = Vec::new();
    for _ in 0..batches {
        let t = Instant::now();
        let mut sink = 0;
        for _ in 0..n {
            sink += f();
        }
        black_box(sink);
        samples.push(t.elapsed().as_nanos() / u128::from(n.max(1)));
    }
    samples.sort_unstable();
    (
        samples.first().copied().unwrap_or(0),
        samples.get(samples.len() / 2).copied().unwrap_or(0),
    )
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .unwrap_or_else(|| "/work/shared/anchors/hotpath".to_string());
    let iterations: u32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(2000);
    let json = match std::fs::read_to_string(format!("{dir}/response.json")) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot read {dir}/response.json: {e}");
            std::process::exit(2);
        }
    };
    let paths_txt = std::fs::read_to_string(format!("{dir}/paths.txt")).unwrap_or_default();
    let paths: Vec<&str> = paths_txt
        .lines()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();

    // Sanity: both ways agree.
    let doc = Document::new(&json);
    for p in &paths {
        let a = get(&json, p);
        let b = doc.get(p);
        assert_eq!(a, b, "Document::get differs from get for {p}");
        let s = a.to_str();
        let shown: String = s.chars().take(50).collect();
        println!(
            "{p:<48} {}{}",
            shown,
            if s.chars().count() > 50 { "…" } else { "" }
        );
    }
    println!();

    let batches = 20;
    let n = (iterations / batches).max(1);
    let run_get = || {
        paths
            .iter()
            .map(|p| get(black_box(&json), p).to_str().len())
            .sum::<usize>()
    };
    let run_doc = || {
        let doc = Document::new(black_box(&json));
        paths
            .iter()
            .map(|p| doc.get(p).to_str().len())
            .sum::<usize>()
    };
    // warm up
    measure(2, n, &run_doc);
    let (get_best, get_med) = measure(batches, (n / 4).max(1), &run_get);
    let (doc_best, doc_med) = measure(batches, n, &run_doc);
    println!(
        "{} paths, ns per iteration (best / median of {batches} batches):",
        paths.len()
    );
    println!("  get()     {get_best:>9} / {get_med:>9}");
    println!("  Document  {doc_best:>9} / {doc_med:>9}");

    // Cost of each path after the previous ones, on one Document.
    println!("\nper path, Document (cumulative minus previous, best of batches):");
    let mut prev = 0;
    for k in 0..paths.len() {
        let upto = &paths[..=k];
        let f = || {
            let doc = Document::new(black_box(&json));
            upto.iter()
                .map(|p| doc.get(p).to_str().len())
                .sum::<usize>()
        };
        let (best, _) = measure(10, (n / 2).max(1), &f);
        println!("  {:>8} ns  {}", best.saturating_sub(prev), paths[k]);
        prev = best;
    }
}
