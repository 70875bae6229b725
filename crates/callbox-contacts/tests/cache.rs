//! The contacts cache against a real SQLite file: matching, TTLs, misses, created contacts,
//! dial search, export/import, and the damaged, locked and too-new database errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use callbox_contacts::cache::{CacheError, LookupOptions, Origin};
use callbox_contacts::{
    ContactCache, ContactRecord, MatchPolicy, NumberRules, PhoneField, normalize,
};
use serde_json::{Value, json};

fn record(integration: &str, fields: Value) -> ContactRecord {
    let Value::Object(map) = fields else {
        panic!("not an object")
    };
    ContactRecord::from_fields(integration, &map)
}

fn us() -> NumberRules {
    NumberRules::with_country(Some("US".parse().unwrap()))
}

fn options(policy: MatchPolicy, now: i64) -> LookupOptions<'static> {
    LookupOptions {
        integration: None,
        suffix_digits: 9,
        policy,
        now,
    }
}

fn fresh_cache() -> (tempfile::TempDir, ContactCache) {
    let dir = tempfile::tempdir().unwrap();
    let cache = ContactCache::open(&dir.path().join("contacts.sqlite")).unwrap();
    (dir, cache)
}

#[test]
fn a_number_written_any_way_finds_the_contact_exactly() {
    let (_dir, cache) = fresh_cache();
    cache
        .upsert(
            &[
                record("crm", json!({"ContactsId": "1", "FirstName": "Ada", "LastName": "Lovelace",
                    "BusinessNumber": "(650) 253-0000", "MobileNumber": "650.253.0001",
                    "ContactUrl": "https://crm.example/1"})),
                record("crm", json!({"ContactsId": "2", "FirstName": "Bob", "HomeFaxNumber": "+1 212 555 0199"})),
            ],
            Origin::Lookup,
            &us(),
            1000,
            Some(3600),
        )
        .unwrap();
    for text in [
        "+16502530000",
        "011 1 650 253 0000",
        "1-650-253-0000",
        "6502530000",
    ] {
        let found = cache
            .lookup(&normalize(text, &us()), &options(MatchPolicy::Ask, 1000))
            .unwrap();
        assert_eq!(found.matches.len(), 1, "{text}");
        let m = &found.matches[0];
        assert_eq!(m.contact.id, "1");
        assert_eq!(m.reason(), "business number matched exactly");
        assert_eq!(m.confidence, 1.0);
        assert!(m.fresh);
        assert_eq!(m.contact.url(), Some("https://crm.example/1"));
        assert_eq!(
            m.contact.numbers.len(),
            2,
            "all its numbers come back for display"
        );
        assert!(!found.needs_choice);
    }
    // 00 is not the international prefix in the US: read as a national number it is invalid,
    // and only its last digits match.
    let found = cache
        .lookup(
            &normalize("001 650 253 0000", &us()),
            &options(MatchPolicy::Ask, 1000),
        )
        .unwrap();
    assert_eq!(
        found.matches[0].reason(),
        "last 9 digits of business number"
    );
    let fax = cache
        .lookup(
            &normalize("(212) 555-0199", &us()),
            &options(MatchPolicy::Ask, 1000),
        )
        .unwrap();
    assert_eq!(fax.matches[0].reason(), "home fax matched exactly");
    // Extensions and withheld numbers are never looked up.
    for text in ["1001", "anonymous"] {
        assert!(
            cache
                .lookup(&normalize(text, &us()), &options(MatchPolicy::Ask, 1000))
                .unwrap()
                .matches
                .is_empty()
        );
    }
}

#[test]
fn last_digits_match_when_the_crm_number_lacks_its_country() {
    let (_dir, cache) = fresh_cache();
    // A UK team's CRM holds a US customer's number without +1: read as a UK number it has no
    // E.164 form, but its last 9 digits are those of the caller.
    let gb = NumberRules::with_country(Some("GB".parse().unwrap()));
    cache
        .upsert(
            &[record(
                "crm",
                json!({"ContactsId": "7", "LastName": "Okafor", "BusinessNumber": "650-253-0000"}),
            )],
            Origin::Lookup,
            &gb,
            1000,
            Some(3600),
        )
        .unwrap();
    let found = cache
        .lookup(
            &normalize("+1 650 253 0000", &gb),
            &options(MatchPolicy::Ask, 1000),
        )
        .unwrap();
    assert_eq!(found.matches.len(), 1);
    assert_eq!(
        found.matches[0].reason(),
        "last 9 digits of business number"
    );
    assert!(found.matches[0].confidence < 1.0 && found.matches[0].confidence > 0.8);
    // Fewer digits than asked for: no suffix match.
    let none = cache
        .lookup(
            &normalize("+1 650 253 0000", &gb),
            &LookupOptions {
                suffix_digits: 12,
                ..options(MatchPolicy::Ask, 1000)
            },
        )
        .unwrap();
    assert!(none.matches.is_empty());
    // 0 turns suffix matching off.
    let off = cache
        .lookup(
            &normalize("+1 650 253 0000", &gb),
            &LookupOptions {
                suffix_digits: 0,
                ..options(MatchPolicy::Ask, 1000)
            },
        )
        .unwrap();
    assert!(off.matches.is_empty());
}

#[test]
fn several_matches_follow_the_policy() {
    let (_dir, cache) = fresh_cache();
    cache
        .upsert(
            &[
                record("crm", json!({"ContactsId": "old", "MobileNumber": "+16502530000", "ModifiedTime": "2024-01-01T00:00:00Z"})),
                record("crm", json!({"ContactsId": "new", "BusinessNumber": "+16502530000", "ModifiedTime": "2025-06-01T00:00:00Z"})),
            ],
            Origin::Lookup, &us(), 1000, Some(3600),
        )
        .unwrap();
    let n = normalize("650 253 0000", &us());
    let ask = cache.lookup(&n, &options(MatchPolicy::Ask, 1000)).unwrap();
    assert!(ask.needs_choice);
    assert_eq!(ask.matches.len(), 2);
    let recent = cache
        .lookup(&n, &options(MatchPolicy::MostRecent, 1000))
        .unwrap();
    assert!(!recent.needs_choice);
    assert_eq!(recent.matches[0].contact.id, "new");
    let first = cache
        .lookup(&n, &options(MatchPolicy::First, 1000))
        .unwrap();
    assert_eq!(first.matches[0].contact.id, "old");
}

#[test]
fn ttls_misses_and_created_contacts() {
    let (_dir, cache) = fresh_cache();
    let n = normalize("+1 650 253 0000", &us());
    // A miss is remembered for its TTL only.
    cache.record_miss("crm", &n, 1000, 120).unwrap();
    assert!(cache.is_recent_miss("crm", &n, 1119).unwrap());
    assert!(!cache.is_recent_miss("crm", &n, 1120).unwrap());
    assert!(!cache.is_recent_miss("other", &n, 1000).unwrap());
    // A contact created from Callbox is found at once, and clears the miss.
    cache.record_miss("crm", &n, 1000, 120).unwrap();
    cache
        .upsert(&[record("crm", json!({"ContactsId": "created:call-1", "FirstName": "New", "BusinessNumber": "+16502530000"}))],
            Origin::Created, &us(), 1001, Some(0))
        .unwrap();
    assert!(!cache.is_recent_miss("crm", &n, 1002).unwrap());
    let found = cache.lookup(&n, &options(MatchPolicy::Ask, 1002)).unwrap();
    assert_eq!(found.matches[0].contact.id, "created:call-1");
    assert!(
        !found.matches[0].fresh,
        "stale at once: the CRM's record replaces it"
    );
    // The CRM's record replaces it.
    cache
        .upsert(
            &[record(
                "crm",
                json!({"ContactsId": "42", "FirstName": "New", "MobileNumber": "(650) 253-0000"}),
            )],
            Origin::Lookup,
            &us(),
            1003,
            Some(60),
        )
        .unwrap();
    let found = cache.lookup(&n, &options(MatchPolicy::Ask, 1004)).unwrap();
    assert_eq!(found.matches.len(), 1);
    assert_eq!(found.matches[0].contact.id, "42");
    assert!(found.matches[0].fresh);
    // Stale after its TTL, and listed for refresh.
    let later = cache.lookup(&n, &options(MatchPolicy::Ask, 1063)).unwrap();
    assert!(!later.matches[0].fresh);
    assert!(cache.stale("crm", 1062, 10).unwrap().is_empty());
    let stale = cache.stale("crm", 1063, 10).unwrap();
    assert_eq!(stale.len(), 1);
    assert_eq!(
        stale[0].numbers,
        vec![(PhoneField::MobileNumber, "(650) 253-0000".to_string())]
    );
    assert!(cache.remove("crm", "42").unwrap());
    assert!(
        cache
            .lookup(&n, &options(MatchPolicy::Ask, 1064))
            .unwrap()
            .matches
            .is_empty()
    );
}

fn phonebook() -> Vec<ContactRecord> {
    vec![
        record(
            "crm",
            json!({"ContactsId": "1", "FirstName": "Ada", "LastName": "Lovelace", "Company": "Analytical Engines",
            "Email": "ada@engines.example", "MobileNumber": "+1 650 253 0000"}),
        ),
        record(
            "crm",
            json!({"ContactsId": "2", "FirstName": "Văn An", "LastName": "Nguyễn", "Company": "Saigon Trading",
            "BusinessNumber": "+84 28 3822 1234"}),
        ),
        record(
            "crm",
            json!({"ContactsId": "3", "FirstName": "Grace", "LastName": "Hopper", "Company": "Acme",
            "BusinessNumber": "(212) 555-0199", "OtherNumber": "+44 20 7946 0018"}),
        ),
        record(
            "crm",
            json!({"ContactsId": "4", "FirstName": "Adam", "LastName": "Smith", "Company": "Acme"}),
        ),
    ]
}

fn ids(hits: &[callbox_contacts::SearchHit]) -> Vec<&str> {
    hits.iter().map(|h| h.contact.id.as_str()).collect()
}

#[test]
fn dial_search_by_name_company_email_and_digits() {
    let (_dir, cache) = fresh_cache();
    cache
        .import(phonebook().into_iter().map(Ok), &us(), 1000)
        .unwrap();
    let search = |q: &str| cache.search(q, &us(), None, 20).unwrap();
    assert_eq!(
        ids(&search("ada")),
        ["1", "4"],
        "name prefixes, in name order"
    );
    assert_eq!(search("ada")[0].reason, "name");
    assert_eq!(search("ada")[0].dial.as_deref(), Some("+1 650 253 0000"));
    assert_eq!(
        ids(&search("acm")),
        ["4", "3"],
        "company prefix, in name order"
    );
    assert_eq!(search("acm")[0].reason, "company");
    assert_eq!(ids(&search("nguyen")), ["2"], "diacritics fold");
    assert_eq!(ids(&search("Nguyễn")), ["2"]);
    assert_eq!(ids(&search("grace acme")), ["3"], "every word must match");
    assert_eq!(ids(&search("engines.example")), ["1"]);
    assert!(search("zzz").is_empty());
    assert!(
        search("\"*(").is_empty(),
        "FTS syntax in a query is just text"
    );
    // Digits: national prefix, international prefix, ends-with.
    assert_eq!(ids(&search("650")), ["1"]);
    assert_eq!(search("650")[0].reason, "mobile starts with 650");
    assert_eq!(ids(&search("(212) 55")), ["3"]);
    assert_eq!(ids(&search("+44 20")), ["3"]);
    assert_eq!(
        search("+44 20")[0].dial.as_deref(),
        Some("+44 20 7946 0018")
    );
    assert_eq!(ids(&search("0084 28")), ["2"]);
    assert_eq!(ids(&search("0199")), ["3"]);
    assert_eq!(search("0199")[0].reason, "business number ends with 0199");
    assert_eq!(
        cache.search("a", &us(), Some("other"), 20).unwrap().len(),
        0,
        "integration filter"
    );
    assert_eq!(cache.search("a", &us(), None, 1).unwrap().len(), 1, "limit");
}

#[test]
fn export_then_import_round_trips_and_a_bad_source_imports_nothing() {
    let (_dir, cache) = fresh_cache();
    let report = cache
        .import(phonebook().into_iter().map(Ok), &us(), 1000)
        .unwrap();
    assert_eq!(
        (report.contacts, report.numbers, report.normalized),
        (4, 4, 4)
    );
    let exported = cache.export(None).unwrap();
    assert_eq!(
        exported,
        phonebook()
            .into_iter()
            .map(|mut r| {
                r.modified_at = Some(1000);
                r
            })
            .collect::<Vec<_>>()
    );
    let (_dir2, copy) = fresh_cache();
    copy.import(exported.clone().into_iter().map(Ok), &us(), 1000)
        .unwrap();
    assert_eq!(copy.export(None).unwrap(), exported);
    // Re-importing replaces, never duplicates.
    copy.import(exported.clone().into_iter().map(Ok), &us(), 1000)
        .unwrap();
    assert_eq!(copy.count(None).unwrap(), 4);
    // A source that fails halfway imports nothing.
    let (_dir3, empty) = fresh_cache();
    let records = vec![
        Ok(phonebook()[0].clone()),
        Err("contacts.json: 3:1: oops".to_string()),
    ];
    let e = empty.import(records.into_iter(), &us(), 1000).unwrap_err();
    assert!(matches!(e, CacheError::Source(_)), "{e}");
    assert_eq!(
        e.to_string(),
        "contacts.json: 3:1: oops (nothing was imported)"
    );
    assert_eq!(empty.count(None).unwrap(), 0);
    // Records without an id are counted, not stored.
    let report = empty
        .import(
            vec![Ok(record("crm", json!({"FirstName": "X"})))].into_iter(),
            &us(),
            1000,
        )
        .unwrap();
    assert_eq!((report.contacts, report.skipped_without_id), (0, 1));
}

#[test]
fn a_damaged_cache_says_so_and_can_be_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("contacts.sqlite");
    std::fs::write(
        &path,
        b"this is not a database, it is a text file that got here somehow.....",
    )
    .unwrap();
    let e = ContactCache::open(&path).unwrap_err();
    assert!(matches!(e, CacheError::Corrupt { .. }), "{e:?}");
    let message = e.to_string();
    assert!(
        message.contains(&path.display().to_string())
            && message.contains("callbox-cli contacts rebuild"),
        "{message}"
    );
    let cache = ContactCache::rebuild(&path).unwrap();
    cache
        .import(phonebook().into_iter().map(Ok), &us(), 1000)
        .unwrap();
    assert_eq!(cache.count(None).unwrap(), 4);
}

#[test]
fn a_cache_from_a_newer_callbox_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("contacts.sqlite");
    drop(ContactCache::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let e = ContactCache::open(&path).unwrap_err();
    assert!(matches!(e, CacheError::Migration { .. }), "{e:?}");
}

#[test]
fn a_locked_cache_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("contacts.sqlite");
    let cache = ContactCache::open(&path).unwrap();
    let other = rusqlite::Connection::open(&path).unwrap();
    other
        .execute_batch("BEGIN EXCLUSIVE; DELETE FROM misses;")
        .unwrap();
    let e = cache
        .upsert(&phonebook(), Origin::Lookup, &us(), 1000, Some(60))
        .unwrap_err();
    assert!(matches!(e, CacheError::Locked { .. }), "{e:?}");
    assert!(e.to_string().contains("locked by another process"));
    other.execute_batch("ROLLBACK").unwrap();
    cache
        .upsert(&phonebook(), Origin::Lookup, &us(), 1000, Some(60))
        .unwrap();
}

#[test]
fn dial_search_follows_renames_removals_and_clears() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("contacts.sqlite");
    let cache = ContactCache::open(&path).unwrap();
    cache
        .import(phonebook().into_iter().map(Ok), &us(), 1000)
        .unwrap();
    let mut renamed = phonebook()[0].clone();
    renamed.first_name = "Augusta".into();
    // Replaced twice in one write, and once more later.
    cache
        .upsert(
            &[renamed.clone(), renamed.clone()],
            Origin::Lookup,
            &us(),
            1001,
            Some(60),
        )
        .unwrap();
    renamed.last_name = "King".into();
    cache
        .upsert(&[renamed], Origin::Lookup, &us(), 1002, Some(60))
        .unwrap();
    let search = |q: &str| {
        ids(&cache.search(q, &us(), None, 20).unwrap())
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(search("augusta king"), ["1"]);
    assert!(search("lovelace").is_empty());
    assert_eq!(
        search("ada"),
        ["4", "1"],
        "Adam by name, then Augusta by her email"
    );
    assert!(cache.remove("crm", "4").unwrap());
    assert_eq!(search("ada"), ["1"]);
    // Created and replaced in one write.
    cache
        .upsert(
            &[
                record("crm", json!({"ContactsId": "9", "FirstName": "Zed"})),
                record("crm", json!({"ContactsId": "9", "FirstName": "Zoe"})),
            ],
            Origin::Lookup,
            &us(),
            1003,
            Some(60),
        )
        .unwrap();
    assert_eq!(search("zoe"), ["9"]);
    assert!(search("zed").is_empty());
    // The newest row replaced in the same write that creates another: SQLite reuses its id.
    cache
        .upsert(&[record("crm", json!({"ContactsId": "created:c-1", "FirstName": "Placeholder", "MobileNumber": "+1 303 555 0100"}))],
            Origin::Created, &us(), 1004, Some(0))
        .unwrap();
    cache
        .upsert(&[record("crm", json!({"ContactsId": "77", "FirstName": "Realname", "MobileNumber": "(303) 555-0100"}))],
            Origin::Lookup, &us(), 1005, Some(60))
        .unwrap();
    assert_eq!(search("realname"), ["77"]);
    assert!(search("placeholder").is_empty());
    cache.clear("crm").unwrap();
    assert!(search("zoe").is_empty() && search("grace").is_empty());
    drop(cache);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO contacts_fts (contacts_fts) VALUES ('integrity-check')",
        [],
    )
    .unwrap();
}

/// `fixtures/contacts-v1.sqlite` was written by the first schema (three contacts imported by
/// `callbox-cli contacts import`). Every later schema must open and upgrade it.
#[test]
fn a_cache_from_the_first_schema_opens_and_upgrades() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("contacts.sqlite");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/contacts-v1.sqlite"
        ),
        &path,
    )
    .unwrap();
    let cache = ContactCache::open(&path).unwrap();
    assert_eq!(cache.count(None).unwrap(), 3);
    let found = cache
        .lookup(
            &normalize("+16502530000", &us()),
            &options(MatchPolicy::Ask, 2_000_000_000),
        )
        .unwrap();
    assert_eq!(found.matches[0].contact.last_name, "Lovelace");
    assert_eq!(ids(&cache.search("hopp", &us(), None, 5).unwrap()), ["3"]);
    drop(cache);
    let version: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, 1, "the latest schema version");
}

#[test]
fn a_new_country_reads_stored_numbers_again_and_placeholders_take_the_crm_id() {
    let (_dir, cache) = fresh_cache();
    let de = NumberRules::with_country(Some("DE".parse().unwrap()));
    let gb = NumberRules::with_country(Some("GB".parse().unwrap()));
    cache
        .upsert(
            &[record(
                "crm",
                json!({"ContactsId": "1", "MobileNumber": "0151 23456789"}),
            )],
            Origin::Lookup,
            &de,
            1000,
            Some(60),
        )
        .unwrap();
    let exact = |cache: &ContactCache| {
        let opts = LookupOptions {
            suffix_digits: 0,
            ..options(MatchPolicy::Ask, 1000)
        };
        cache
            .lookup(&normalize("+4915123456789", &de), &opts)
            .unwrap()
            .matches
            .len()
    };
    assert_eq!(exact(&cache), 1);
    assert_eq!(
        cache.set_number_rules("crm", &de).unwrap(),
        0,
        "first time: recorded"
    );
    assert_eq!(cache.set_number_rules("crm", &de).unwrap(), 0, "unchanged");
    assert_eq!(
        cache.set_number_rules("crm", &gb).unwrap(),
        1,
        "read again as British"
    );
    assert_eq!(exact(&cache), 0);
    assert_eq!(cache.set_number_rules("crm", &de).unwrap(), 1);
    assert_eq!(exact(&cache), 1);

    cache
        .upsert(&[record("crm", json!({"ContactsId": "created:c-9", "LastName": "Neu", "MobileNumber": "+44 7911 123456"}))], Origin::Created, &de, 1000, Some(0))
        .unwrap();
    assert!(cache.rekey("crm", "created:c-9", "crm-77", 1001).unwrap());
    let found = cache
        .lookup(
            &normalize("+447911123456", &de),
            &options(MatchPolicy::Ask, 1002),
        )
        .unwrap();
    assert_eq!(found.matches[0].contact.id, "crm-77");
    assert!(!found.matches[0].is_placeholder());
    assert!(
        !found.matches[0].fresh,
        "stale: the next lookup fetches the CRM's record"
    );
    assert!(!cache.rekey("crm", "created:nope", "x", 1003).unwrap());
}

#[test]
fn processes_opening_a_new_cache_at_once_do_not_race() {
    for round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("contacts.sqlite");
        let opened: Vec<_> = (0..8)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || ContactCache::open(&path).map(|_| ()))
            })
            .collect();
        for t in opened {
            t.join()
                .unwrap()
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
        }
    }
}
