//! `callbox-cli contacts …` as admins and scripts use it: real processes on a real cache file.
//! The JSON shapes and exit codes are the stable contract (docs/cli.md).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

struct Setup {
    dir: PathBuf,
}

impl Setup {
    fn new(tag: &str) -> Setup {
        let dir =
            std::env::temp_dir().join(format!("callbox-cli-contacts-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Setup { dir }
    }

    fn file(&self, name: &str, content: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_stdin(args, "")
    }

    fn run_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let data = self.dir.join("data");
        let integrations = self.dir.join("integrations");
        let mut child = Command::new(env!("CARGO_BIN_EXE_callbox-cli"))
            .arg("contacts")
            .args(args)
            .args([
                "--data-dir",
                data.to_str().unwrap(),
                "--integrations",
                integrations.to_str().unwrap(),
            ])
            .env("LANG", "C.UTF-8")
            .env_remove("LC_ALL")
            .env_remove("LC_TELEPHONE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    fn json(&self, args: &[&str]) -> (i32, Value) {
        let o = self.run(args);
        let text = String::from_utf8_lossy(&o.stdout);
        let v = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{e}: {text} / {}", String::from_utf8_lossy(&o.stderr)));
        (o.status.code().unwrap(), v)
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const CSV: &str = "ContactsId,FirstName,LastName,Company,Email,BusinessNumber,MobileNumber,HomeFaxNumber\n\
1,Ada,Lovelace,Analytical Engines,ada@engines.example,(650) 253-0000,,\n\
2,Jonas,Weber,Weber GmbH,,,+49 151 23456789,\n\
3,Grace,Hopper,Acme,,212.555.0199 x12,,(212) 555-0100\n\
4,,,No Numbers Inc,,,,\n";

fn ids(v: &Value) -> Vec<String> {
    v["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["ContactsId"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn import_then_lookup_in_every_format_with_confidence_and_reason() {
    let s = Setup::new("lookup");
    let csv = s.file("people.csv", CSV);
    let (code, report) = s.json(&[
        "import",
        csv.to_str().unwrap(),
        "--integration",
        "crm",
        "--country",
        "US",
    ]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["contacts"], 4);
    assert_eq!(report["numbers"], 4);
    assert_eq!(report["normalized"], 4);
    for number in [
        "+1 650 253 0000",
        "(650) 253-0000",
        "650.253.0000",
        "1-650-253-0000",
        "011 1 650 253 0000",
    ] {
        let (code, v) = s.json(&["lookup", number, "--country", "US"]);
        assert_eq!(code, 0, "{number}: {v}");
        assert_eq!(v["number"], "+16502530000");
        assert_eq!(v["kind"], "valid");
        let m = &v["matches"][0];
        assert_eq!(
            (
                m["ContactsId"].as_str(),
                m["FirstName"].as_str(),
                m["LastName"].as_str()
            ),
            (Some("1"), Some("Ada"), Some("Lovelace"))
        );
        assert_eq!(m["confidence"], 1.0);
        assert_eq!(m["reason"], "business number matched exactly");
        assert_eq!(m["integration"], "crm");
    }
    // A German mobile, as a German would write it and as a US caller ID shows it.
    let (_, v) = s.json(&["lookup", "0151 23456789", "--country", "DE"]);
    assert_eq!(
        (v["number"].as_str(), ids(&v)),
        (Some("+4915123456789"), vec!["2".to_string()])
    );
    assert_eq!(v["matches"][0]["reason"], "mobile matched exactly");
    let (_, v) = s.json(&["lookup", "+4915123456789"]);
    assert_eq!(ids(&v), ["2"], "E.164 needs no country");
    // The fax, and the extension kept apart from the number.
    let (_, v) = s.json(&["lookup", "212-555-0100", "--country", "US"]);
    assert_eq!(v["matches"][0]["reason"], "home fax matched exactly");
    let (_, v) = s.json(&["lookup", "+1 212 555 0199 ext. 7"]);
    assert_eq!(
        (v["extension"].as_str(), ids(&v)),
        (Some("7"), vec!["3".to_string()])
    );
    // The last 9 digits when the country is unknown to the caller ID.
    let (_, v) = s.json(&["lookup", "6502530000"]);
    assert_eq!(v["kind"], "needs_country");
    assert_eq!(v["number"], Value::Null);
    assert_eq!(
        v["matches"][0]["reason"],
        "last 9 digits of business number"
    );
    assert!(v["matches"][0]["confidence"].as_f64().unwrap() < 1.0);
    // Nothing found: exit 1; extensions and withheld numbers are classified.
    for (number, kind) in [
        ("+1 303 555 0123", "valid"),
        ("1001", "extension"),
        ("anonymous", "withheld"),
        ("call me", "invalid"),
    ] {
        let (code, v) = s.json(&["lookup", number, "--country", "US"]);
        assert_eq!((code, v["kind"].as_str()), (1, Some(kind)), "{number}");
        assert_eq!(v["matches"], json!([]));
    }
}

#[test]
fn several_matches_are_ranked_by_policy() {
    let s = Setup::new("policy");
    let json = s.file(
        "dupes.json",
        r#"[{"ContactsId": "old", "LastName": "Old", "MobileNumber": "+44 20 7946 0018", "ModifiedTime": "2024-01-01T00:00:00Z"},
            {"ContactsId": "new", "LastName": "New", "BusinessNumber": "020 7946 0018", "ModifiedTime": "2025-06-01T09:00:00+02:00"}]"#,
    );
    assert_eq!(
        s.json(&["import", json.to_str().unwrap(), "--country", "GB"])
            .0,
        0
    );
    let (_, v) = s.json(&["lookup", "+442079460018"]);
    assert_eq!(ids(&v), ["old", "new"]);
    assert_eq!(v["needs_choice"], true);
    assert_eq!(v["matches"][0]["integration"], "local");
    let (_, v) = s.json(&["lookup", "+442079460018", "--policy", "most_recent"]);
    assert_eq!(ids(&v), ["new", "old"]);
    assert_eq!(v["needs_choice"], false);
}

#[test]
fn dial_search_by_name_company_and_digits() {
    let s = Setup::new("search");
    let csv = s.file("people.csv", CSV);
    s.json(&["import", csv.to_str().unwrap(), "--country", "US"]);
    let (code, v) = s.json(&["search", "lov"]);
    assert_eq!(code, 0);
    assert_eq!(v["query"], "lov");
    assert_eq!(ids(&v), ["1"]);
    assert_eq!(v["matches"][0]["reason"], "name");
    assert_eq!(v["matches"][0]["dial"], "(650) 253-0000");
    assert_eq!(ids(&s.json(&["search", "weber g"]).1), ["2"]);
    assert_eq!(ids(&s.json(&["search", "no numbers"]).1), ["4"]);
    let (_, v) = s.json(&["search", "650", "--country", "US"]);
    assert_eq!(ids(&v), ["1"]);
    assert_eq!(v["matches"][0]["reason"], "business number starts with 650");
    let (_, v) = s.json(&["search", "6789"]);
    assert_eq!(ids(&v), ["2"]);
    assert_eq!(v["matches"][0]["reason"], "mobile ends with 6789");
    assert_eq!(ids(&s.json(&["search", "+49 151"]).1), ["2"]);
    assert!(ids(&s.json(&["search", "zzz"]).1).is_empty());
}

#[test]
fn export_round_trips_through_import_in_json_and_csv() {
    let s = Setup::new("export");
    let csv = s.file("people.csv", CSV);
    s.json(&[
        "import",
        csv.to_str().unwrap(),
        "--integration",
        "crm",
        "--country",
        "US",
    ]);
    let extra = s.file("extra.json", r#"[{"ContactsId": "z1", "FirstName": "Zoë", "OtherNumber": "+33 6 12 34 56 78", "ContactUrl": "https://crm.example/z1"}]"#);
    s.json(&["import", extra.to_str().unwrap(), "--integration", "other"]);
    let (code, all) = s.json(&["export"]);
    assert_eq!(code, 0);
    assert_eq!(all.as_array().unwrap().len(), 5);
    assert_eq!(all[4]["integration"], "other");
    assert_eq!(all[4]["ContactUrl"], "https://crm.example/z1");
    // Into a fresh cache from standard input: every contact back in its integration.
    let copy = Setup::new("export-copy");
    let o = copy.run_stdin(&["import", "-", "--country", "US"], &all.to_string());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(copy.json(&["export"]).1, all);
    // CSV: the named and phone fields, in template order.
    let o = s.run(&["export", "--integration", "crm", "--format", "csv"]);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.starts_with("ContactsId,FirstName,LastName,Company,Email,BusinessNumber,BusinessNumber2,BusinessFaxNumber,MobileNumber,"), "{text}");
    let csv_copy = Setup::new("export-csv");
    let f = csv_copy.file("back.csv", &text);
    csv_copy.json(&[
        "import",
        f.to_str().unwrap(),
        "--integration",
        "crm",
        "--country",
        "US",
    ]);
    assert_eq!(
        csv_copy.json(&["export", "--integration", "crm"]).1,
        s.json(&["export", "--integration", "crm"]).1
    );
}

#[test]
fn bad_input_is_reported_with_where_and_imports_nothing() {
    let s = Setup::new("bad");
    let bad_json = s.file(
        "bad.json",
        "[\n  {\"ContactsId\": \"1\", \"FirstName\": \"A\"},\n  {\"ContactsId\": \"2\",, }\n]",
    );
    let o = s.run(&["import", bad_json.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("bad.json: 3:22: key must be a string") && e.contains("nothing was imported"),
        "{e}"
    );
    let bad_csv = s.file("bad.csv", "ContactsId,FirstName\n1,Ada\n2,Bob,extra\n");
    let e = stderr(&s.run(&["import", bad_csv.to_str().unwrap()]));
    assert!(
        e.contains("bad.csv: line 3: 3 cells where the header row has 2"),
        "{e}"
    );
    let no_id = s.file("noid.csv", "Name,Phone\nA,1\n");
    assert!(
        stderr(&s.run(&["import", no_id.to_str().unwrap()]))
            .contains("line 1: the header row has no ContactsId column")
    );
    let e = stderr(&s.run(&["lookup", "123", "--country", "XX"]));
    assert!(e.contains("\"XX\" is not a country code"), "{e}");
    let e = stderr(&s.run(&["import", "/nonexistent/file.json"]));
    assert!(e.contains("cannot read /nonexistent/file.json"), "{e}");
    assert_eq!(s.json(&["export"]).1, json!([]), "nothing was imported");
}

#[test]
fn a_damaged_cache_names_the_fix_and_rebuild_applies_it() {
    let s = Setup::new("damaged");
    let data = s.dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    damage(&data.join("contacts.sqlite"));
    let o = s.run(&["lookup", "+16502530000"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("is damaged") && stderr(&o).contains("callbox-cli contacts rebuild"),
        "{}",
        stderr(&o)
    );
    let (code, v) = s.json(&["rebuild"]);
    assert_eq!((code, v["contacts"].as_u64()), (0, Some(0)));
    let csv = s.file("people.csv", CSV);
    assert_eq!(
        s.json(&["import", csv.to_str().unwrap(), "--country", "US"])
            .0,
        0
    );
    assert_eq!(s.json(&["lookup", "+16502530000"]).0, 0);
}

fn damage(path: &Path) {
    std::fs::write(path, vec![0x42; 8192]).unwrap();
}
