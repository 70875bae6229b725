//! The contacts cache: one SQLite file (`contacts.sqlite`), separate from the outbox's
//! database because it can always be rebuilt from the CRMs and the outbox never can.
//!
//! - `contacts`: one row per (integration, CRM id), with when it was cached and until when it
//!   is fresh (`expires_at`; NULL for imported phonebooks, which never go stale).
//! - `numbers`: every phone field of every contact, read once: the E.164 form (exact match
//!   index) and the digits reversed (last-N-digit match and "ends with" dial search are then
//!   prefix ranges of one index). The numbers as written live in the contact's row
//!   (`phones`), so a match reads one row, not one more index.
//! - `contacts_fts`: an FTS5 index over names, company and email for dial search. It is kept
//!   in step by the code, not by triggers: every statement that writes an FTS5 table flushes
//!   its pending terms, so a trigger a row made imports 5x slower. Writes note the rows to
//!   (re)index in temporary tables and index them in three statements at the end.
//! - `readings`: the country each integration's numbers were read with; when it changes,
//!   every stored number of the integration is read again from its original text.
//! - `misses`: numbers a CRM just said it does not know, until a short TTL runs out.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, params};
use rusqlite_migration::{M, Migrations};
use serde_json::{Map, Value};

use crate::contact::{ContactRecord, PhoneField};
use crate::matching::{self, Match, MatchPolicy, MatchedBy};
use crate::phone::{self, NumberKind, NumberRules, PhoneNumber};

/// A cache problem, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The file cannot be opened (permissions, missing directory…).
    #[error("cannot open the contacts cache {path}: {reason}")]
    Open {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The file is not a database or is damaged.
    #[error(
        "the contacts cache {path} is damaged ({reason}); rebuild it with `callbox-cli contacts rebuild` (it refills from the CRMs; imported phonebooks must be imported again)"
    )]
    Corrupt {
        /// The file.
        path: String,
        /// SQLite's words.
        reason: String,
    },
    /// The cache was written by a newer Callbox, or an upgrade failed.
    #[error("cannot upgrade the contacts cache {path}: {reason}")]
    Migration {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// Another process holds the cache locked for too long.
    #[error(
        "the contacts cache {path} is locked by another process (an import running, or another Callbox?)"
    )]
    Locked {
        /// The file.
        path: String,
    },
    /// The contacts being imported could not be read (nothing was imported).
    #[error("{0} (nothing was imported)")]
    Source(String),
    /// Any other SQLite error.
    #[error("contacts cache error: {0}")]
    Sql(String),
}

impl CacheError {
    fn from_sql(e: &rusqlite::Error, path: &str) -> CacheError {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                CacheError::Locked {
                    path: path.to_string(),
                }
            }
            Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => {
                CacheError::Corrupt {
                    path: path.to_string(),
                    reason: e.to_string(),
                }
            }
            _ => CacheError::Sql(e.to_string()),
        }
    }
}

/// Where a cached contact came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// A CRM lookup returned it; it goes stale after the integration's TTL.
    Lookup,
    /// `contacts import`: a phonebook, never stale.
    Import,
    /// Created from Callbox; found at once, replaced when the CRM returns the real record.
    Created,
}

impl Origin {
    fn as_str(self) -> &'static str {
        match self {
            Origin::Lookup => "lookup",
            Origin::Import => "import",
            Origin::Created => "created",
        }
    }

    fn parse(s: &str) -> Origin {
        match s {
            "import" => Origin::Import,
            "created" => Origin::Created,
            _ => Origin::Lookup,
        }
    }
}

/// What a lookup in the cache found.
#[derive(Clone, Debug)]
pub struct CacheLookup {
    /// The number as read.
    pub number: PhoneNumber,
    /// Matches, best first (one per contact).
    pub matches: Vec<Match>,
    /// Whether the agent has to pick one (policy `ask`, several equally good).
    pub needs_choice: bool,
}

/// How a lookup matches.
#[derive(Clone, Debug)]
pub struct LookupOptions<'a> {
    /// Only this integration's contacts (all when `None`).
    pub integration: Option<&'a str>,
    /// Match the last this-many digits when no E.164 match exists (0: never).
    pub suffix_digits: usize,
    /// How several matches are ranked.
    pub policy: MatchPolicy,
    /// Now (Unix seconds), to tell fresh from stale.
    pub now: i64,
}

/// One dial-search result.
#[derive(Clone, Debug)]
pub struct SearchHit {
    /// The contact.
    pub contact: ContactRecord,
    /// Why it was found ("name", "company", "business number starts with 415").
    pub reason: String,
    /// The number to dial: the one that matched, else the contact's first.
    pub dial: Option<String>,
}

/// What an import did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ImportReport {
    /// Contacts written (new or replaced).
    pub contacts: u64,
    /// Phone numbers indexed.
    pub numbers: u64,
    /// Numbers with an E.164 form.
    pub normalized: u64,
    /// Numbers that could not be read, by kind (they are kept for display and digit matching).
    pub unreadable: HashMap<String, u64>,
    /// Records skipped because they had no `ContactsId`.
    pub skipped_without_id: u64,
}

const MAX_MATCHES: usize = 50;

/// The last-N-digits match used when nothing says otherwise.
pub const DEFAULT_SUFFIX_DIGITS: usize = 9;

/// The indexes lookups and number search use (dropped and rebuilt around a bulk import).
macro_rules! number_indexes {
    () => {
        "CREATE INDEX numbers_e164 ON numbers (e164) WHERE e164 IS NOT NULL;
         CREATE INDEX numbers_rev ON numbers (rev);"
    };
}
const NUMBER_INDEXES: &str = number_indexes!();

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![M::up(concat!(
        "CREATE TABLE contacts (
            id INTEGER PRIMARY KEY,
            integration TEXT NOT NULL,
            contact_id TEXT NOT NULL,
            first_name TEXT NOT NULL,
            last_name TEXT NOT NULL,
            company TEXT NOT NULL,
            email TEXT NOT NULL,
            phones TEXT NOT NULL,
            other TEXT,
            modified_at INTEGER,
            cached_at INTEGER NOT NULL,
            expires_at INTEGER,
            origin TEXT NOT NULL,
            UNIQUE (integration, contact_id)
        );
        CREATE INDEX contacts_expiry ON contacts (expires_at) WHERE expires_at IS NOT NULL;
        CREATE TABLE numbers (
            contact INTEGER NOT NULL,
            field INTEGER NOT NULL,
            e164 TEXT,
            rev TEXT NOT NULL,
            PRIMARY KEY (contact, field)
        ) WITHOUT ROWID;
        CREATE VIRTUAL TABLE contacts_fts USING fts5 (
            first_name, last_name, company, email,
            content = 'contacts', content_rowid = 'id',
            tokenize = 'unicode61 remove_diacritics 2', prefix = '3', detail = none
        );
        CREATE TABLE misses (
            integration TEXT NOT NULL,
            number TEXT NOT NULL,
            expires_at INTEGER NOT NULL,
            PRIMARY KEY (integration, number)
        ) WITHOUT ROWID;
        CREATE TABLE readings (
            integration TEXT PRIMARY KEY,
            country TEXT NOT NULL
        ) WITHOUT ROWID;",
        number_indexes!()
    ))])
}

/// The contacts cache. Share it behind an `Arc`; every operation is one short transaction.
#[derive(Debug)]
pub struct ContactCache {
    conn: Mutex<Connection>,
    path: String,
}

/// The columns of `contacts` every read selects, in this order.
macro_rules! contact_columns {
    () => {
        "c.id, c.integration, c.contact_id, c.first_name, c.last_name, c.company, c.email, \
         c.other, c.modified_at, c.cached_at, c.expires_at, c.origin, c.phones"
    };
}
const CONTACT_COLUMNS: &str = contact_columns!();

/// A lookup's query: contacts with a number meeting `condition` (`?1`, `?2`), of the
/// integration `?3` (all when NULL). A literal, so the hot path formats nothing.
macro_rules! lookup_sql {
    ($condition:literal) => {
        concat!(
            "SELECT ",
            contact_columns!(),
            ", n.field FROM numbers n JOIN contacts c ON c.id = n.contact WHERE ",
            $condition,
            " AND (?3 IS NULL OR c.integration = ?3) LIMIT 200"
        )
    };
}

struct Row {
    rowid: i64,
    record: ContactRecord,
    expires_at: Option<i64>,
    origin: Origin,
}

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    let other: Option<String> = r.get(7)?;
    let other = other
        .and_then(|s| serde_json::from_str::<Map<String, Value>>(&s).ok())
        .unwrap_or_default();
    let modified: Option<i64> = r.get(8)?;
    let cached_at: i64 = r.get(9)?;
    Ok(Row {
        rowid: r.get(0)?,
        record: ContactRecord {
            integration: r.get(1)?,
            id: r.get(2)?,
            first_name: r.get(3)?,
            last_name: r.get(4)?,
            company: r.get(5)?,
            email: r.get(6)?,
            numbers: Vec::new(),
            other,
            modified_at: modified.or(Some(cached_at)),
        },
        expires_at: r.get(10)?,
        origin: Origin::parse(&r.get::<_, String>(11)?),
    })
    .map(|mut row| {
        row.record.numbers = decode_phones(
            r.get_ref(12)
                .ok()
                .and_then(|v| v.as_str().ok())
                .unwrap_or(""),
        );
        row
    })
}

/// A contact's numbers as written, in one column: the field's code, the text; records
/// separated by U+001E (removed from the text, with U+001F, when written).
fn encode_phones(numbers: &[(PhoneField, String)]) -> String {
    let mut out = String::new();
    for (field, text) in numbers {
        if !out.is_empty() {
            out.push('\u{1e}');
        }
        out.push(char::from(b'0' + u8::try_from(field.code()).unwrap_or(0)));
        out.extend(text.chars().filter(|c| *c != '\u{1e}' && *c != '\u{1f}'));
    }
    out
}

fn decode_phones(s: &str) -> Vec<(PhoneField, String)> {
    let mut numbers: Vec<(PhoneField, String)> = s
        .split('\u{1e}')
        .filter_map(|entry| {
            let mut chars = entry.chars();
            let code = chars.next()?.to_digit(10)?;
            Some((
                PhoneField::from_code(i64::from(code)),
                chars.as_str().to_string(),
            ))
        })
        .collect();
    numbers.sort_by_key(|(f, _)| *f);
    numbers
}

/// A contact's numbers read under `rules`, ready to store.
/// What a contact's row and number rows need, computed before the write (on the import's
/// reader thread, so the SQLite thread only binds and steps).
struct Prepared {
    numbers: Vec<(PhoneField, PhoneNumber)>,
    reversed: Vec<String>,
    codes: Vec<i64>,
    phones: String,
    other: Option<String>,
}

fn prepare(record: &ContactRecord, rules: &NumberRules) -> Prepared {
    let numbers: Vec<(PhoneField, PhoneNumber)> = record
        .numbers
        .iter()
        .map(|(f, text)| (*f, phone::normalize_for_index(text, rules)))
        .collect();
    Prepared {
        reversed: numbers
            .iter()
            .map(|(_, n)| phone::reversed(&n.digits))
            .collect(),
        codes: numbers.iter().map(|(f, _)| f.code()).collect(),
        numbers,
        phones: encode_phones(&record.numbers),
        other: if record.other.is_empty() {
            None
        } else {
            serde_json::to_string(&record.other).ok()
        },
    }
}

impl ContactCache {
    /// Opens (creating and upgrading as needed) the cache at `path`.
    pub fn open(path: &Path) -> Result<ContactCache, CacheError> {
        let _opening = Self::opening(path)?;
        Self::open_locked(path)
    }

    fn open_locked(path: &Path) -> Result<ContactCache, CacheError> {
        let shown = path.display().to_string();
        let conn = Connection::open(path).map_err(|e| CacheError::Open {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        Self::init(conn, shown)
    }

    /// Holds `contacts.open.lock` beside the cache while it is created, upgraded or rebuilt:
    /// processes starting together (the app and a CLI, or several CLIs) must not create the
    /// same new schema at once. Released when dropped, or when the process dies.
    fn opening(path: &Path) -> Result<std::fs::File, CacheError> {
        let open_err = |e: std::io::Error| CacheError::Open {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(open_err)?;
        }
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path.with_extension("open.lock"))
            .map_err(open_err)?;
        lock.lock().map_err(open_err)?;
        Ok(lock)
    }

    /// A cache in memory (tests, benchmarks).
    pub fn in_memory() -> Result<ContactCache, CacheError> {
        let conn = Connection::open_in_memory().map_err(|e| CacheError::Sql(e.to_string()))?;
        Self::init(conn, ":memory:".into())
    }

    /// Deletes the cache at `path` (with its WAL files) and creates it empty.
    pub fn rebuild(path: &Path) -> Result<ContactCache, CacheError> {
        let _opening = Self::opening(path)?;
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            let p = PathBuf::from(p);
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(CacheError::Open {
                        path: p.display().to_string(),
                        reason: e.to_string(),
                    });
                }
            }
        }
        Self::open_locked(path)
    }

    fn init(mut conn: Connection, path: String) -> Result<ContactCache, CacheError> {
        let err = |e: rusqlite::Error| CacheError::from_sql(&e, &path);
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        // The cache can be rebuilt from the CRMs: NORMAL is enough in WAL mode.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.pragma_update(None, "cache_size", -65_536)
            .map_err(err)?;
        // Statement journals (multi-row inserts) in memory, not in temporary files.
        conn.pragma_update(None, "temp_store", "MEMORY")
            .map_err(err)?;
        // Reads through a memory map: no read() call and no copy for pages the OS has cached.
        conn.pragma_update(None, "mmap_size", 1_i64 << 30)
            .map_err(err)?;
        migrations().to_latest(&mut conn).map_err(|e| match e {
            rusqlite_migration::Error::RusqliteError { err, .. } => {
                CacheError::from_sql(&err, &path)
            }
            other => CacheError::Migration {
                path: path.clone(),
                reason: other.to_string(),
            },
        })?;
        conn.execute_batch(
            "CREATE TEMP TABLE fts_old (id INTEGER PRIMARY KEY, first_name, last_name, company, email);
             CREATE TEMP TABLE fts_new (id INTEGER PRIMARY KEY);",
        )
        .map_err(err)?;
        Ok(ContactCache {
            conn: Mutex::new(conn),
            path,
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> CacheError + '_ {
        |e| CacheError::from_sql(&e, &self.path)
    }

    /// Writes contacts (new or replacing the same CRM id): `ttl` seconds fresh, or never
    /// stale when `None`. Contacts created from Callbox for the same numbers are dropped when
    /// the CRM's real record arrives. Misses of their numbers are forgotten.
    pub fn upsert(
        &self,
        records: &[ContactRecord],
        origin: Origin,
        rules: &NumberRules,
        now: i64,
        ttl: Option<i64>,
    ) -> Result<(), CacheError> {
        let err = self.err();
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(&err)?;
        let mark = Mark::read(&tx).map_err(&err)?;
        for record in records {
            if record.id.is_empty() {
                continue;
            }
            let prepared = prepare(record, rules);
            if origin == Origin::Lookup {
                // The CRM's real record replaces what Callbox created for the same number.
                for (_, n) in &prepared.numbers {
                    let Some(e) = &n.e164 else { continue };
                    let created: Vec<i64> = tx
                        .prepare_cached(
                            "SELECT DISTINCT c.id FROM numbers n JOIN contacts c ON c.id = n.contact
                             WHERE n.e164 = ?1 AND c.integration = ?2 AND c.origin = 'created'",
                        )
                        .and_then(|mut s| {
                            s.query_map(params![e, record.integration], |r| r.get(0))?
                                .collect()
                        })
                        .map_err(&err)?;
                    for id in created {
                        delete_contact(&tx, mark, id).map_err(&err)?;
                    }
                }
            }
            write_record(
                &tx,
                mark,
                record,
                &prepared,
                origin,
                now,
                ttl.map(|t| now + t),
            )
            .map_err(&err)?;
            for (_, n) in &prepared.numbers {
                let key = n.e164.clone().unwrap_or_else(|| n.digits.clone());
                tx.execute(
                    "DELETE FROM misses WHERE integration = ?1 AND number = ?2",
                    params![record.integration, key],
                )
                .map_err(&err)?;
            }
        }
        index_text(&tx, mark).map_err(&err)?;
        tx.commit().map_err(&err)
    }

    /// Imports contacts in bulk (one transaction; numbers are read on a second thread while
    /// SQLite writes). Contacts without a `ContactsId` are skipped and counted.
    pub fn import(
        &self,
        records: impl Iterator<Item = Result<ContactRecord, String>> + Send,
        rules: &NumberRules,
        now: i64,
    ) -> Result<ImportReport, CacheError> {
        const BATCH: usize = 2048;
        let err = self.err();
        let mut conn = self.conn();
        conn.pragma_update(None, "cache_size", -524_288)
            .map_err(&err)?;
        // Into an empty cache, a rollback journal writes each new page once (WAL writes it
        // twice: to the log, then back). Fails harmlessly when another process has it open.
        let empty: bool = conn
            .query_row("SELECT NOT EXISTS (SELECT 1 FROM contacts)", [], |r| {
                r.get(0)
            })
            .map_err(&err)?;
        // Index builds sort on a helper thread too.
        conn.pragma_update(None, "threads", 2).map_err(&err)?;
        let rollback_journal = empty
            && conn
                .pragma_update_and_check(None, "journal_mode", "DELETE", |r| r.get::<_, String>(0))
                .is_ok_and(|m| m.eq_ignore_ascii_case("delete"));
        let mut report = ImportReport::default();
        let result = std::thread::scope(|scope| -> Result<(), CacheError> {
            type Batch = Vec<(ContactRecord, Prepared)>;
            let (send, receive) = std::sync::mpsc::sync_channel::<Result<Batch, String>>(8);
            // Written batches go back to the reader thread to be freed there.
            let (give_back, spent) = std::sync::mpsc::sync_channel::<Batch>(16);
            let reader = scope.spawn(move || {
                let mut batch = Vec::with_capacity(BATCH);
                for record in records {
                    let record = match record {
                        Ok(r) => r,
                        Err(e) => {
                            let _ = send.send(Err(e));
                            return;
                        }
                    };
                    let numbers = prepare(&record, rules);
                    batch.push((record, numbers));
                    if batch.len() == BATCH {
                        if send
                            .send(Ok(std::mem::replace(&mut batch, Vec::with_capacity(BATCH))))
                            .is_err()
                        {
                            return;
                        }
                        while let Ok(done) = spent.try_recv() {
                            drop(done);
                        }
                    }
                }
                let _ = send.send(Ok(batch));
            });
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(&err)?;
            let mark = Mark::read(&tx).map_err(&err)?;
            let mut imported_into: Vec<String> = Vec::new();
            // Into an empty cache, the number indexes are built once at the end (sorting
            // beats millions of random inserts); in the same transaction, so a failure
            // leaves them as they were.
            let bulk = mark.0 == 0;
            if bulk {
                tx.execute_batch("DROP INDEX numbers_e164; DROP INDEX numbers_rev;")
                    .map_err(&err)?;
            }
            for batch in receive {
                // An unreadable source rolls the whole import back (the transaction drops).
                let batch = batch.map_err(CacheError::Source)?;
                for (record, prepared) in &batch {
                    if record.id.is_empty() {
                        report.skipped_without_id += 1;
                        continue;
                    }
                    write_record(&tx, mark, record, prepared, Origin::Import, now, None)
                        .map_err(&err)?;
                    if !imported_into.contains(&record.integration) {
                        imported_into.push(record.integration.clone());
                    }
                    report.contacts += 1;
                    for (_, n) in &prepared.numbers {
                        report.numbers += 1;
                        if n.e164.is_some() {
                            report.normalized += 1;
                        } else {
                            *report
                                .unreadable
                                .entry(n.kind.as_str().to_string())
                                .or_default() += 1;
                        }
                    }
                }
                // Freed by the reader (or here, once it has finished).
                if let Err(
                    std::sync::mpsc::TrySendError::Full(b)
                    | std::sync::mpsc::TrySendError::Disconnected(b),
                ) = give_back.try_send(batch)
                {
                    drop(b);
                }
            }
            drop(give_back);
            let _ = reader.join();
            // Numbers just imported must not stay "unknown" until their miss TTL runs out.
            for integration in &imported_into {
                tx.execute("DELETE FROM misses WHERE integration = ?1", [integration])
                    .map_err(&err)?;
            }
            if bulk {
                tx.execute_batch(NUMBER_INDEXES).map_err(&err)?;
            }
            index_text(&tx, mark).map_err(&err)?;
            tx.commit().map_err(&err)
        });
        conn.pragma_update(None, "cache_size", -65_536)
            .map_err(&err)?;
        if rollback_journal {
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(&err)?;
        }
        result.map(|()| report)
    }

    /// Looks `number` up: exact E.164 matches, else (when the number has enough digits) the
    /// last `suffix_digits` digits. One match per contact, by its best field, best first.
    pub fn lookup(
        &self,
        number: &PhoneNumber,
        options: &LookupOptions<'_>,
    ) -> Result<CacheLookup, CacheError> {
        let err = self.err();
        let guard = self.conn();
        // One read transaction for the lookup's queries: one WAL lock, one snapshot.
        let read = ReadTransaction::begin(&guard).map_err(&err)?;
        let conn: &Connection = read.0;
        let mut found: Vec<(i64, Match)> = Vec::new();
        let by_field = |conn: &Connection,
                        sql: &str,
                        a: &str,
                        b: Option<&str>|
         -> rusqlite::Result<Vec<(Row, PhoneField)>> {
            let mut stmt = conn.prepare_cached(sql)?;
            let rows = stmt.query_map(params![a, b, options.integration], |r| {
                Ok((read_row(r)?, PhoneField::from_code(r.get(13)?)))
            })?;
            rows.collect()
        };
        let exact_rows = match (&number.e164, number.kind) {
            (_, NumberKind::Extension | NumberKind::Withheld) => Vec::new(),
            (Some(e), _) => {
                by_field(conn, lookup_sql!("n.e164 = ?1 AND ?2 IS NULL"), e, None).map_err(&err)?
            }
            (None, _) if !number.digits.is_empty() => by_field(
                conn,
                lookup_sql!("n.rev = ?1 AND ?2 IS NULL"),
                &phone::reversed(&number.digits),
                None,
            )
            .map_err(&err)?,
            _ => Vec::new(),
        };
        for (row, field) in exact_rows {
            let fresh = row.expires_at.is_none_or(|t| t > options.now);
            consider(
                &mut found,
                row.rowid,
                Match {
                    contact: row.record,
                    field: Some(field),
                    by: MatchedBy::Exact,
                    confidence: matching::EXACT,
                    fresh,
                    origin: Some(row.origin),
                },
            );
        }
        let suffix = (options.suffix_digits > 0
            && !matches!(number.kind, NumberKind::Extension | NumberKind::Withheld))
        .then(|| phone::reversed_suffix(&number.digits, options.suffix_digits))
        .flatten();
        if found.is_empty()
            && let Some(suffix) = suffix
        {
            let upper = format!("{suffix}:");
            for (row, field) in by_field(
                conn,
                lookup_sql!("n.rev >= ?1 AND n.rev < ?2"),
                &suffix,
                Some(&upper),
            )
            .map_err(&err)?
            {
                let fresh = row.expires_at.is_none_or(|t| t > options.now);
                consider(
                    &mut found,
                    row.rowid,
                    Match {
                        contact: row.record,
                        field: Some(field),
                        by: MatchedBy::LastDigits(options.suffix_digits),
                        confidence: matching::suffix_confidence(options.suffix_digits),
                        fresh,
                        origin: Some(row.origin),
                    },
                );
            }
        }
        // The order contacts were cached in (the CRM's, or the import's) breaks ties.
        found.sort_by_key(|(rowid, _)| *rowid);
        found.truncate(MAX_MATCHES);
        let mut matches = Vec::with_capacity(found.len());
        for (_, m) in found {
            matches.push(m);
        }
        matching::rank(&mut matches, options.policy);
        let needs_choice = matching::needs_choice(&matches, options.policy);
        Ok(CacheLookup {
            number: number.clone(),
            matches,
            needs_choice,
        })
    }

    /// Gives a contact Callbox created (`old_id`) the id the CRM gave it, and makes it stale so
    /// the next lookup fetches the CRM's whole record (with its popup URL).
    pub fn rekey(
        &self,
        integration: &str,
        old_id: &str,
        new_id: &str,
        now: i64,
    ) -> Result<bool, CacheError> {
        let err = self.err();
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(&err)?;
        let taken: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM contacts WHERE integration = ?1 AND contact_id = ?2)",
                params![integration, new_id],
                |r| r.get(0),
            )
            .map_err(&err)?;
        let changed = if taken {
            // The CRM's record is cached already: the placeholder has served its purpose.
            remove_in(&tx, integration, old_id).map_err(&err)?
        } else {
            tx.execute(
                "UPDATE contacts SET contact_id = ?3, origin = 'lookup', expires_at = ?4
                 WHERE integration = ?1 AND contact_id = ?2",
                params![integration, old_id, new_id, now],
            )
            .map_err(&err)?
                == 1
        };
        tx.commit().map_err(&err)?;
        Ok(changed)
    }

    /// Records the rules `integration`'s numbers are read with; when its country changed
    /// since they were stored, reads every stored number of it again (from the text as
    /// written). Returns how many numbers were read again.
    pub fn set_number_rules(
        &self,
        integration: &str,
        rules: &NumberRules,
    ) -> Result<u64, CacheError> {
        let country = rules
            .country
            .as_ref()
            .map_or(String::new(), |c| c.code().to_string());
        let err = self.err();
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(&err)?;
        let stored: Option<String> = tx
            .query_row(
                "SELECT country FROM readings WHERE integration = ?1",
                [integration],
                |r| r.get(0),
            )
            .optional()
            .map_err(&err)?;
        let mut reread = 0u64;
        if stored.as_deref() != Some(country.as_str()) {
            if stored.is_some() {
                let contacts: Vec<(i64, String)> = tx
                    .prepare("SELECT id, phones FROM contacts WHERE integration = ?1")
                    .and_then(|mut st| {
                        st.query_map([integration], |r| Ok((r.get(0)?, r.get(1)?)))?
                            .collect()
                    })
                    .map_err(&err)?;
                let numbers = contacts.into_iter().flat_map(|(id, phones)| {
                    decode_phones(&phones)
                        .into_iter()
                        .map(move |(f, text)| (id, f.code(), text))
                });
                let mut update = tx
                    .prepare(
                        "UPDATE numbers SET e164 = ?3, rev = ?4 WHERE contact = ?1 AND field = ?2",
                    )
                    .map_err(&err)?;
                for (contact, field, original) in numbers {
                    let n = phone::normalize_for_index(&original, rules);
                    update
                        .execute(params![contact, field, n.e164, phone::reversed(&n.digits)])
                        .map_err(&err)?;
                    reread += 1;
                }
                drop(update);
                tx.execute("DELETE FROM misses WHERE integration = ?1", [integration])
                    .map_err(&err)?;
            }
            tx.execute(
                "INSERT INTO readings (integration, country) VALUES (?1, ?2)
                 ON CONFLICT DO UPDATE SET country = excluded.country",
                params![integration, country],
            )
            .map_err(&err)?;
        }
        tx.commit().map_err(&err)?;
        Ok(reread)
    }

    /// Remembers that `integration`'s CRM does not know `number` for `ttl` seconds.
    pub fn record_miss(
        &self,
        integration: &str,
        number: &PhoneNumber,
        now: i64,
        ttl: i64,
    ) -> Result<(), CacheError> {
        let key = miss_key(number);
        self.conn()
            .execute(
                "INSERT INTO misses (integration, number, expires_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT DO UPDATE SET expires_at = excluded.expires_at",
                params![integration, key, now + ttl],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Whether `integration`'s CRM said it does not know `number`, less than its TTL ago.
    pub fn is_recent_miss(
        &self,
        integration: &str,
        number: &PhoneNumber,
        now: i64,
    ) -> Result<bool, CacheError> {
        let key = miss_key(number);
        let hit: Option<i64> = self
            .conn()
            .query_row(
                "SELECT expires_at FROM misses WHERE integration = ?1 AND number = ?2",
                params![integration, key],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err())?;
        Ok(hit.is_some_and(|t| t > now))
    }

    /// Forgets a miss (a contact was just created for the number).
    pub fn forget_miss(&self, integration: &str, number: &PhoneNumber) -> Result<(), CacheError> {
        self.conn()
            .execute(
                "DELETE FROM misses WHERE integration = ?1 AND number = ?2",
                params![integration, miss_key(number)],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Removes one contact.
    pub fn remove(&self, integration: &str, id: &str) -> Result<bool, CacheError> {
        let err = self.err();
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(&err)?;
        let removed = remove_in(&tx, integration, id).map_err(&err)?;
        tx.commit().map_err(&err)?;
        Ok(removed)
    }

    /// Contacts cached from lookups whose TTL ran out, oldest first (for background refresh).
    pub fn stale(
        &self,
        integration: &str,
        now: i64,
        limit: usize,
    ) -> Result<Vec<ContactRecord>, CacheError> {
        let err = self.err();
        let conn = self.conn();
        let sql = format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts c
             WHERE c.expires_at IS NOT NULL AND c.expires_at <= ?1 AND c.integration = ?2
             ORDER BY c.expires_at LIMIT ?3"
        );
        let rows: Vec<Row> = {
            let mut stmt = conn.prepare_cached(&sql).map_err(&err)?;
            let rows = stmt
                .query_map(
                    params![now, integration, i64::try_from(limit).unwrap_or(i64::MAX)],
                    read_row,
                )
                .map_err(&err)?;
            rows.collect::<rusqlite::Result<_>>().map_err(&err)?
        };
        Ok(rows.into_iter().map(|row| row.record).collect())
    }

    /// Dial search: contacts whose name, company or email has words starting with the query's
    /// words, or (for a query of digits) whose number starts or ends with them. Best first.
    pub fn search(
        &self,
        query: &str,
        rules: &NumberRules,
        integration: Option<&str>,
        limit: usize,
    ) -> Result<Vec<SearchHit>, CacheError> {
        let query = query.trim();
        if query.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let is_number = query.chars().any(|c| c.is_ascii_digit())
            && query
                .chars()
                .all(|c| c.is_ascii_digit() || " +-().,/".contains(c));
        if is_number {
            self.search_number(query, rules, integration, limit)
        } else {
            self.search_text(query, integration, limit)
        }
    }

    fn search_text(
        &self,
        query: &str,
        integration: Option<&str>,
        limit: usize,
    ) -> Result<Vec<SearchHit>, CacheError> {
        const CANDIDATES: usize = 200;
        let words: Vec<String> = query
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(crate::fold)
            .collect();
        if words.is_empty() {
            return Ok(Vec::new());
        }
        // Words as the tokenizer splits them (`ada@engines.example` is three), each a prefix;
        // the index keeps no positions, so a query is never a phrase.
        let fts: Vec<String> = words
            .iter()
            .map(|w| format!("\"{}\"*", w.replace('"', "\"\"")))
            .collect();
        let fts = fts.join(" ");
        let err = self.err();
        let guard = self.conn();
        let read = ReadTransaction::begin(&guard).map_err(&err)?;
        let conn: &Connection = read.0;
        let sql = format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts_fts f JOIN contacts c ON c.id = f.rowid
             WHERE contacts_fts MATCH ?1 AND (?3 IS NULL OR c.integration = ?3) LIMIT ?2"
        );
        let rows: Vec<Row> = {
            let mut stmt = conn.prepare_cached(&sql).map_err(&err)?;
            let rows = stmt
                .query_map(params![fts, CANDIDATES as i64, integration], read_row)
                .map_err(&err)?;
            rows.collect::<rusqlite::Result<_>>().map_err(&err)?
        };
        let first = &words[0];
        let starts = |s: &str| crate::fold(s).starts_with(first.as_str());
        let mut scored: Vec<(u8, String, Row, &'static str)> = rows
            .into_iter()
            .map(|row| {
                let r = &row.record;
                let (score, reason) = if starts(&r.last_name) || starts(&r.first_name) {
                    (0, "name")
                } else if starts(&r.company) {
                    (1, "company")
                } else if starts(&r.email) {
                    (2, "email")
                } else {
                    (3, "name or company")
                };
                (score, crate::fold(&r.display_name()), row, reason)
            })
            .collect();
        scored.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        scored.truncate(limit);
        scored
            .into_iter()
            .map(|(_, _, row, reason)| {
                let contact = row.record;
                let dial = contact.numbers.first().map(|(_, n)| n.clone());
                Ok(SearchHit {
                    contact,
                    reason: reason.to_string(),
                    dial,
                })
            })
            .collect()
    }

    fn search_number(
        &self,
        query: &str,
        rules: &NumberRules,
        integration: Option<&str>,
        limit: usize,
    ) -> Result<Vec<SearchHit>, CacheError> {
        let digits = phone::digits_of(query);
        let trimmed = query.trim_start();
        let international = trimmed.starts_with('+');
        let intl_digits = if international {
            Some(digits.clone())
        } else {
            digits.strip_prefix("00").map(str::to_string)
        };
        // "starts with" ranges over E.164 text, "ends with" over reversed digits.
        let mut prefixes: Vec<String> = Vec::new();
        if let Some(d) = &intl_digits {
            prefixes.push(format!("+{d}"));
        } else {
            if let Some(c) = &rules.country {
                let national = digits.strip_prefix('0').unwrap_or(&digits);
                prefixes.push(format!("+{}{national}", c.calling_code()));
            }
            prefixes.push(format!("+{digits}"));
        }
        let err = self.err();
        let guard = self.conn();
        let read = ReadTransaction::begin(&guard).map_err(&err)?;
        let conn: &Connection = read.0;
        let mut seen: Vec<i64> = Vec::new();
        let mut hits: Vec<(i64, ContactRecord, String, String)> = Vec::new();
        let mut run = |condition: &str,
                       low: &str,
                       verb: &str,
                       hits: &mut Vec<(i64, ContactRecord, String, String)>|
         -> rusqlite::Result<()> {
            if hits.len() >= limit {
                return Ok(());
            }
            let sql = format!(
                "SELECT {CONTACT_COLUMNS}, n.field FROM numbers n
                 JOIN contacts c ON c.id = n.contact
                 WHERE {condition} AND (?3 IS NULL OR c.integration = ?3) LIMIT ?4"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let high = format!("{low}:");
            let rows = stmt
                .query_map(params![low, high, integration, (limit * 2) as i64], |r| {
                    Ok((read_row(r)?, PhoneField::from_code(r.get(13)?)))
                })?;
            for row in rows {
                let (row, field) = row?;
                let original = row
                    .record
                    .numbers
                    .iter()
                    .find(|(f, _)| *f == field)
                    .map(|(_, n)| n.clone())
                    .unwrap_or_default();
                if hits.len() >= limit || seen.contains(&row.rowid) {
                    continue;
                }
                seen.push(row.rowid);
                hits.push((
                    row.rowid,
                    row.record,
                    format!("{} {verb} {query}", field.label()),
                    original,
                ));
            }
            Ok(())
        };
        for p in &prefixes {
            run("n.e164 >= ?1 AND n.e164 < ?2", p, "starts with", &mut hits).map_err(&err)?;
        }
        if digits.len() >= 3 {
            run(
                "n.rev >= ?1 AND n.rev < ?2",
                &phone::reversed(&digits),
                "ends with",
                &mut hits,
            )
            .map_err(&err)?;
        }
        hits.into_iter()
            .map(|(_, contact, reason, original)| {
                Ok(SearchHit {
                    contact,
                    reason,
                    dial: Some(original),
                })
            })
            .collect()
    }

    /// Every contact (of one integration, or all), in the order they were cached.
    pub fn export(&self, integration: Option<&str>) -> Result<Vec<ContactRecord>, CacheError> {
        let err = self.err();
        let conn = self.conn();
        let sql = format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts c WHERE (?1 IS NULL OR c.integration = ?1)
             ORDER BY c.id"
        );
        let mut stmt = conn.prepare(&sql).map_err(&err)?;
        let rows = stmt
            .query_map([integration], read_row)
            .map_err(&err)?
            .map(|row| row.map(|r| r.record))
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(&err)?;
        Ok(rows)
    }

    /// How many contacts are cached (of one integration, or all).
    pub fn count(&self, integration: Option<&str>) -> Result<u64, CacheError> {
        self.conn()
            .query_row(
                "SELECT count(*) FROM contacts WHERE (?1 IS NULL OR integration = ?1)",
                [integration],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(self.err())
    }

    /// Removes every contact and miss of `integration` (its template or settings changed).
    pub fn clear(&self, integration: &str) -> Result<(), CacheError> {
        let err = self.err();
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(&err)?;
        let mark = Mark::read(&tx).map_err(&err)?;
        tx.execute(
            "INSERT OR IGNORE INTO temp.fts_old (id, first_name, last_name, company, email)
             SELECT id, first_name, last_name, company, email FROM contacts
             WHERE integration = ?1 AND id <= ?2",
            params![integration, mark.0],
        )
        .map_err(&err)?;
        tx.execute(
            "DELETE FROM numbers WHERE contact IN (SELECT id FROM contacts WHERE integration = ?1)",
            [integration],
        )
        .map_err(&err)?;
        tx.execute("DELETE FROM contacts WHERE integration = ?1", [integration])
            .map_err(&err)?;
        tx.execute("DELETE FROM misses WHERE integration = ?1", [integration])
            .map_err(&err)?;
        index_text(&tx, mark).map_err(&err)?;
        tx.commit().map_err(&err)
    }
}

/// A read transaction whose BEGIN and COMMIT are cached statements (rusqlite's transactions
/// parse theirs each time, a tenth of a lookup).
struct ReadTransaction<'c>(&'c Connection);

impl<'c> ReadTransaction<'c> {
    fn begin(conn: &'c Connection) -> rusqlite::Result<ReadTransaction<'c>> {
        conn.prepare_cached("BEGIN")?.execute([])?;
        Ok(ReadTransaction(conn))
    }
}

impl Drop for ReadTransaction<'_> {
    fn drop(&mut self) {
        // Nothing was written: COMMIT only ends the snapshot.
        if let Ok(mut end) = self.0.prepare_cached("COMMIT") {
            let _ = end.execute([]);
        }
    }
}

/// Keeps one match per contact: its best field.
fn consider(found: &mut Vec<(i64, Match)>, rowid: i64, m: Match) {
    if let Some((_, existing)) = found.iter_mut().find(|(id, _)| *id == rowid) {
        let better = m.confidence > existing.confidence
            || (m.confidence == existing.confidence && m.field < existing.field);
        if better {
            existing.field = m.field;
            existing.by = m.by;
            existing.confidence = m.confidence;
        }
    } else {
        found.push((rowid, m));
    }
}

fn miss_key(number: &PhoneNumber) -> String {
    number.e164.clone().unwrap_or_else(|| number.digits.clone())
}

/// Removes `integration`'s contact `id` inside `tx`, word index included; whether it was there.
fn remove_in(
    tx: &rusqlite::Transaction<'_>,
    integration: &str,
    id: &str,
) -> rusqlite::Result<bool> {
    let mark = Mark::read(tx)?;
    let rowid: Option<i64> = tx
        .query_row(
            "SELECT id FROM contacts WHERE integration = ?1 AND contact_id = ?2",
            params![integration, id],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(rowid) = rowid {
        delete_contact(tx, mark, rowid)?;
        index_text(tx, mark)?;
    }
    Ok(rowid.is_some())
}

/// Brings `contacts_fts` in step with what `write_record` and `delete_contact` noted.
fn index_text(tx: &rusqlite::Transaction<'_>, mark: Mark) -> rusqlite::Result<()> {
    tx.execute_batch(
        "INSERT INTO contacts_fts (contacts_fts, rowid, first_name, last_name, company, email)
             SELECT 'delete', id, first_name, last_name, company, email FROM temp.fts_old;
         INSERT INTO contacts_fts (rowid, first_name, last_name, company, email)
             SELECT c.id, c.first_name, c.last_name, c.company, c.email
             FROM temp.fts_new n JOIN contacts c ON c.id = n.id;
         DELETE FROM temp.fts_old;
         DELETE FROM temp.fts_new;",
    )?;
    tx.execute(
        "INSERT INTO contacts_fts (rowid, first_name, last_name, company, email)
         SELECT id, first_name, last_name, company, email FROM contacts WHERE id > ?1",
        [mark.0],
    )?;
    Ok(())
}

fn delete_contact(tx: &rusqlite::Transaction<'_>, mark: Mark, rowid: i64) -> rusqlite::Result<()> {
    if rowid <= mark.0 {
        tx.execute(
            "INSERT OR IGNORE INTO temp.fts_old (id, first_name, last_name, company, email)
             SELECT id, first_name, last_name, company, email FROM contacts WHERE id = ?1",
            [rowid],
        )?;
        tx.execute("DELETE FROM temp.fts_new WHERE id = ?1", [rowid])?;
    }
    tx.execute("DELETE FROM numbers WHERE contact = ?1", [rowid])?;
    tx.execute("DELETE FROM contacts WHERE id = ?1", [rowid])?;
    Ok(())
}

/// The highest contact row id when a write transaction began: rows above it are new in the
/// transaction and are indexed for dial search by one range statement at its end. A row
/// above the mark was never indexed: ids above the highest one ever committed are new. (A new
/// row can get an id at or below the mark only when the top rows were deleted earlier in the
/// same transaction; `write_record` notes such a row in `fts_new`.)
#[derive(Clone, Copy)]
struct Mark(i64);

impl Mark {
    fn read(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<Mark> {
        tx.query_row("SELECT coalesce(max(id), 0) FROM contacts", [], |r| {
            r.get(0)
        })
        .map(Mark)
    }
}

fn write_record(
    tx: &rusqlite::Transaction<'_>,
    mark: Mark,
    record: &ContactRecord,
    prepared: &Prepared,
    origin: Origin,
    now: i64,
    expires_at: Option<i64>,
) -> rusqlite::Result<()> {
    let values = params![
        record.integration,
        record.id,
        record.first_name,
        record.last_name,
        record.company,
        record.email,
        prepared.other,
        record.modified_at,
        now,
        expires_at,
        origin.as_str(),
        prepared.phones,
    ];
    let inserted = tx
        .prepare_cached(
            "INSERT INTO contacts (integration, contact_id, first_name, last_name, company,
                 email, other, modified_at, cached_at, expires_at, origin, phones)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
             ON CONFLICT (integration, contact_id) DO NOTHING",
        )?
        .execute(values)?;
    let rowid = if inserted == 1 {
        let rowid = tx.last_insert_rowid();
        if rowid <= mark.0 {
            // SQLite reused the id of a row deleted in this transaction: not above the mark,
            // so it must be indexed by name.
            tx.prepare_cached("INSERT OR IGNORE INTO temp.fts_new (id) VALUES (?1)")?
                .execute([rowid])?;
        }
        rowid
    } else {
        let rowid: i64 = tx
            .prepare_cached("SELECT id FROM contacts WHERE integration = ?1 AND contact_id = ?2")?
            .query_row(params![record.integration, record.id], |r| r.get(0))?;
        if rowid <= mark.0 {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO temp.fts_old (id, first_name, last_name, company, email)
                 SELECT id, first_name, last_name, company, email FROM contacts WHERE id = ?1",
            )?
            .execute([rowid])?;
            tx.prepare_cached("INSERT OR IGNORE INTO temp.fts_new (id) VALUES (?1)")?
                .execute([rowid])?;
        }
        tx.prepare_cached(
            "UPDATE contacts SET first_name = ?3, last_name = ?4, company = ?5, email = ?6,
                 other = ?7, modified_at = ?8, cached_at = ?9, expires_at = ?10, origin = ?11,
                 phones = ?12
             WHERE integration = ?1 AND contact_id = ?2",
        )?
        .execute(values)?;
        tx.prepare_cached("DELETE FROM numbers WHERE contact = ?1")?
            .execute([rowid])?;
        rowid
    };
    if prepared.numbers.is_empty() {
        return Ok(());
    }
    // One statement for all of a contact's numbers: statements, not rows, cost the most.
    const ROW: &str = "(?, ?, ?, ?)";
    let placeholders = vec![ROW; prepared.numbers.len()].join(", ");
    let mut insert = tx.prepare_cached(&format!(
        "INSERT INTO numbers (contact, field, e164, rev) VALUES {placeholders}"
    ))?;
    let mut bound: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(prepared.numbers.len() * 4);
    for (i, (_, n)) in prepared.numbers.iter().enumerate() {
        bound.extend([
            &rowid as &dyn rusqlite::ToSql,
            &prepared.codes[i],
            &n.e164,
            &prepared.reversed[i],
        ]);
    }
    insert.execute(bound.as_slice())?;
    Ok(())
}
