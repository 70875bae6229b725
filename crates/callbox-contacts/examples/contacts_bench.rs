//! The contacts cache at scale: imports N contacts (default 1,000,000) with 3 numbers each,
//! written the many ways people write them across seven countries, into a cache file; then
//! measures lookups (normalize + SQLite, p50/p99 over numbers that exist and numbers that do
//! not) and dial search for 3-character queries (names and digits), and reports the file size.
//!
//! ```sh
//! cargo run --release -p callbox-contacts --example contacts_bench -- [N] [DIR]
//! ```
//!
//! Knobs: `BENCH_REUSE=1` measures the cache left in DIR by an earlier run (no import);
//! `BENCH_IMPORT_ONLY=1` stops after the import; `BENCH_NORMALIZE_ONLY=1` times reading the
//! numbers alone; `BENCH_PARSE=1` adds a comparison of `normalize` and `normalize_for_index`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use callbox_contacts::cache::LookupOptions;
use callbox_contacts::{
    ContactCache, ContactRecord, MatchPolicy, NumberRules, PhoneField, normalize,
};

const FIRST: [&str; 40] = [
    "James",
    "Mary",
    "John",
    "Patricia",
    "Robert",
    "Jennifer",
    "Michael",
    "Linda",
    "William",
    "Elizabeth",
    "David",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Minh",
    "Lan",
    "Hùng",
    "Thảo",
    "Hans",
    "Greta",
    "Jürgen",
    "Léa",
    "Chloé",
    "Émile",
    "João",
    "Ana",
    "Lucas",
    "Priya",
    "Arjun",
    "Ananya",
    "Oliver",
    "Amelia",
    "Harry",
    "Isla",
];
const LAST: [&str; 40] = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Nguyễn",
    "Trần",
    "Lê",
    "Phạm",
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Silva",
    "Santos",
    "Oliveira",
    "Souza",
    "Sharma",
    "Patel",
    "Singh",
    "Kumar",
    "Taylor",
    "Wilson",
    "Evans",
    "Walker",
    "Wright",
    "Hughes",
    "Okafor",
    "Kowalski",
    "Novak",
    "Rossi",
];
const COMPANY: [&str; 20] = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Vandelay",
    "Stark",
    "Wayne",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Wonka",
    "Aperture",
    "Gringotts",
    "Oscorp",
    "Saigon Trading",
    "Berliner Bau",
    "Lumière",
    "Paulista",
    "Mumbai Metals",
];

/// A small deterministic generator (xorshift), so runs are comparable.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Number `i`'s national digits and its forms in its country: (country, E.164, written).
fn number(i: u64, rng: &mut Rng) -> (&'static str, String, String) {
    let k = i % 7;
    let n = i / 7;
    let style = rng.below(3);
    match k {
        0 => {
            let (a, b, c) = (
                200 + (n / 10_000_000) % 700,
                200 + (n / 10_000) % 700,
                n % 10_000,
            );
            let e = format!("+1{a}{b}{c:04}");
            let w = [
                format!("({a}) {b}-{c:04}"),
                format!("{a}.{b}.{c:04}"),
                format!("+1 {a} {b} {c:04}"),
            ];
            ("US", e, w[style as usize].clone())
        }
        1 => {
            let s = 7_400_000_000 + n % 600_000_000;
            let e = format!("+44{s}");
            let w = [
                format!("0{} {}", &s.to_string()[..4], &s.to_string()[4..]),
                format!("+44 {s}"),
                format!("0044 {s}"),
            ];
            ("GB", e, w[style as usize].clone())
        }
        2 => {
            let s = 15_100_000_000 + n % 900_000_000;
            let e = format!("+49{s}");
            let w = [
                format!("0{} {}", &s.to_string()[..3], &s.to_string()[3..]),
                format!("+49 (0){s}"),
                format!("0049 {s}"),
            ];
            ("DE", e, w[style as usize].clone())
        }
        3 => {
            let s = 600_000_000 + n % 100_000_000;
            let st = s.to_string();
            let e = format!("+33{s}");
            let w = [
                format!(
                    "0{} {} {} {} {}",
                    &st[..1],
                    &st[1..3],
                    &st[3..5],
                    &st[5..7],
                    &st[7..]
                ),
                format!("+33 {s}"),
                format!("0{}", st),
            ];
            ("FR", e, w[style as usize].clone())
        }
        4 => {
            let s = 912_000_000 + n % 8_000_000;
            let e = format!("+84{s}");
            let w = [format!("0{s}"), format!("+84 {s}"), format!("0084 {s}")];
            ("VN", e, w[style as usize].clone())
        }
        5 => {
            let s = 11_900_000_000 + n % 99_999_999;
            let st = s.to_string();
            let e = format!("+55{s}");
            let w = [
                format!("({}) {}-{}", &st[..2], &st[2..7], &st[7..]),
                format!("+55 {s}"),
                st.clone(),
            ];
            ("BR", e, w[style as usize].clone())
        }
        _ => {
            let s = 9_000_000_000 + n % 999_999_999;
            let e = format!("+91{s}");
            let w = [format!("0{s}"), format!("+91 {s}"), format!("0091 {s}")];
            ("IN", e, w[style as usize].clone())
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let count: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dir = args.next().map_or_else(
        || std::env::temp_dir().join("callbox-contacts-bench"),
        PathBuf::from,
    );
    let path = dir.join("contacts.sqlite");
    let reuse = std::env::var_os("BENCH_REUSE").is_some() && path.exists();
    if !reuse {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let cache = ContactCache::open(&path).expect("open");
    // Every contact's country is that of its first number; the cache reads each number with
    // the integration's one default country, so the numbers are written internationally
    // or nationally for the import's country (here: per record, like a multinational CRM
    // export). Import with the US default: non-US national forms are prefixed.
    let rules = NumberRules::with_country(Some("US".parse().expect("US")));
    let records = (0..count).map(move |i| {
        let mut rng = Rng(i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut fields = Vec::new();
        for (slot, field) in [
            PhoneField::BusinessNumber,
            PhoneField::MobileNumber,
            PhoneField::HomeNumber,
        ]
        .into_iter()
        .enumerate()
        {
            let (country, e164, written) = number(i * 3 + slot as u64, &mut rng);
            let text = if country == "US" || written.starts_with('+') || written.starts_with("00") {
                written
            } else {
                e164
            };
            fields.push((field, text));
        }
        Ok::<_, String>(ContactRecord {
            integration: "crm".into(),
            id: format!("c{i}"),
            first_name: FIRST[rng.below(40) as usize].into(),
            last_name: LAST[rng.below(40) as usize].into(),
            company: COMPANY[rng.below(20) as usize].into(),
            email: format!("user{i}@example.com"),
            numbers: fields,
            ..ContactRecord::default()
        })
    });
    if std::env::var_os("BENCH_NORMALIZE_ONLY").is_some() {
        let t = Instant::now();
        let mut n = 0;
        for r in records.clone() {
            let r: ContactRecord = r.expect("record");
            for (_, text) in &r.numbers {
                n += usize::from(normalize(text, &rules).e164.is_some());
            }
        }
        println!("normalize only: {n} in {:.2} s", t.elapsed().as_secs_f64());
        return;
    }
    if reuse {
        drop(cache);
        println!("import: skipped (BENCH_REUSE, {})", path.display());
    } else {
        let started = Instant::now();
        let report = cache
            .import(records, &rules, 1_700_000_000)
            .expect("import");
        let import = started.elapsed();
        drop(cache);
        let size: u64 = ["", "-wal", "-shm"]
            .iter()
            .filter_map(|s| std::fs::metadata(format!("{}{s}", path.display())).ok())
            .map(|m| m.len())
            .sum();
        println!(
            "import: {} contacts, {} numbers ({} normalized) in {:.2} s = {:.0} contacts/s",
            report.contacts,
            report.numbers,
            report.normalized,
            import.as_secs_f64(),
            report.contacts as f64 / import.as_secs_f64()
        );
        println!(
            "database: {:.1} MB ({:.0} bytes a contact)",
            size as f64 / 1e6,
            size as f64 / count as f64
        );
    }

    if std::env::var_os("BENCH_IMPORT_ONLY").is_some() {
        return;
    }
    let cache = ContactCache::open(&path).expect("reopen");
    let options = LookupOptions {
        integration: None,
        suffix_digits: 9,
        policy: MatchPolicy::Ask,
        now: 1_700_000_001,
    };
    // Lookups of existing numbers, written the ways a call delivers them.
    let mut rng = Rng(42);
    let mut times = Vec::new();
    let mut parse_times = Vec::new();
    let mut found = 0;
    for _ in 0..100_000 {
        let i = rng.below(count);
        let slot = rng.below(3);
        let mut r2 = Rng(i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut e = String::new();
        for s in 0..=slot {
            e = number(i * 3 + s, &mut r2).1;
        }
        let t = Instant::now();
        let n = normalize(&e, &rules);
        let t1 = Instant::now();
        let m = cache.lookup(&n, &options).expect("lookup");
        times.push(t.elapsed());
        parse_times.push(t1 - t);
        if m.matches.iter().any(|m| m.contact.id == format!("c{i}")) {
            found += 1;
        }
    }
    times.sort();
    println!(
        "lookup hit (normalize + cache): p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs, max {:.1} µs; {found}/100000 found the right contact",
        percentile(&times, 0.5).as_secs_f64() * 1e6,
        percentile(&times, 0.9).as_secs_f64() * 1e6,
        percentile(&times, 0.99).as_secs_f64() * 1e6,
        times.last().map_or(0.0, |d| d.as_secs_f64() * 1e6)
    );
    parse_times.sort();
    if std::env::var_os("BENCH_PARSE").is_some() {
        let mut rng = Rng(7);
        let texts: Vec<String> = (0..100_000)
            .map(|_| {
                let i = rng.below(count);
                let mut r2 = Rng(i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
                number(i * 3, &mut r2).1
            })
            .collect();
        for (name, f) in [
            (
                "normalize",
                normalize as fn(&str, &NumberRules) -> callbox_contacts::PhoneNumber,
            ),
            (
                "normalize_for_index",
                callbox_contacts::phone::normalize_for_index,
            ),
        ] {
            for pass in 0..2 {
                let mut t = Vec::with_capacity(texts.len());
                for x in &texts {
                    let s = Instant::now();
                    std::hint::black_box(f(x, &rules));
                    t.push(s.elapsed());
                }
                t.sort();
                println!(
                    "{name} pass {pass}: p50 {:.2} µs p99 {:.2} µs",
                    percentile(&t, 0.5).as_secs_f64() * 1e6,
                    percentile(&t, 0.99).as_secs_f64() * 1e6
                );
            }
        }
    }
    println!(
        "  of which reading the number: p50 {:.1} µs, p99 {:.1} µs",
        percentile(&parse_times, 0.5).as_secs_f64() * 1e6,
        percentile(&parse_times, 0.99).as_secs_f64() * 1e6,
    );
    let mut times = Vec::new();
    for k in 0..20_000u64 {
        let t = Instant::now();
        let n = normalize(&format!("+1 303 555 {:04}", k % 10_000), &rules);
        let m = cache.lookup(&n, &options).expect("lookup");
        times.push(t.elapsed());
        assert!(m.matches.is_empty() || m.matches[0].confidence < 1.0);
    }
    times.sort();
    println!(
        "lookup miss (exact + last-9-digits probe): p50 {:.1} µs, p99 {:.1} µs",
        percentile(&times, 0.5).as_secs_f64() * 1e6,
        percentile(&times, 0.99).as_secs_f64() * 1e6
    );
    // Dial search, 3-character queries.
    let mut queries: Vec<String> = FIRST
        .iter()
        .chain(LAST.iter())
        .chain(COMPANY.iter())
        .map(|w| w.chars().take(3).collect())
        .collect();
    for d in [
        "415", "650", "212", "079", "015", "091", "119", "987", "555", "+44", "+49", "123",
    ] {
        queries.push(d.to_string());
    }
    let mut times = Vec::new();
    let mut empty = 0;
    for round in 0..20 {
        for q in &queries {
            let t = Instant::now();
            let hits = cache.search(q, &rules, None, 20).expect("search");
            times.push(t.elapsed());
            if round == 0 && hits.is_empty() {
                empty += 1;
            }
        }
    }
    times.sort();
    println!(
        "dial search, {} different 3-character queries x 20: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({empty} found nothing)",
        queries.len(),
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3,
        times.last().map_or(0.0, |d| d.as_secs_f64() * 1e3)
    );
}

#[allow(dead_code)]
fn time_normalize() {}
