//! The local SQLite store: the outbox of CRM writes (each hook of each call for each
//! integration, with its state), the call history, cached GetGlobalInfo values, CRM users and
//! their association with extensions, and each call's matched contact. No secret is ever
//! written here: hook variables are call data; fields and tokens are added at send time.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use callbox_core::call::Call;
use rusqlite::{Connection, OptionalExtension, params};
use rusqlite_migration::{M, Migrations};
use serde_json::{Map, Value};

/// A store problem, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file cannot be opened or is not a Callbox database.
    #[error("cannot open the Callbox database {path}: {reason}")]
    Open {
        /// The file.
        path: String,
        /// Why (corrupt, permission, locked…).
        reason: String,
    },
    /// The database is newer than this Callbox, or a migration failed.
    #[error("cannot upgrade the Callbox database: {0}")]
    Migration(String),
    /// Another process holds the database locked for too long.
    #[error("the Callbox database is locked by another process (is another Callbox running?)")]
    Locked,
    /// Any other SQLite error.
    #[error("database error: {0}")]
    Sql(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                StoreError::Locked
            }
            _ => StoreError::Sql(e.to_string()),
        }
    }
}

/// Where a hook is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HookState {
    /// Waiting to be sent (first time, or to retry at `next_attempt_at`).
    Pending,
    /// Being sent now (after a crash: sent again, see ARCHITECTURE.md).
    Sending,
    /// The CRM accepted it.
    Sent,
    /// The CRM refused it for good (or it needs a person): kept with the reason, retry by hand.
    Failed,
}

impl HookState {
    fn as_str(self) -> &'static str {
        match self {
            HookState::Pending => "pending",
            HookState::Sending => "sending",
            HookState::Sent => "sent",
            HookState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> HookState {
        match s {
            "sending" => HookState::Sending,
            "sent" => HookState::Sent,
            "failed" => HookState::Failed,
            _ => HookState::Pending,
        }
    }
}

/// One CRM write of one call for one integration: an outbox entry and its history.
#[derive(Clone, Debug, serde::Serialize)]
pub struct HookEntry {
    /// Row id.
    pub id: i64,
    /// The call (or SMS) id.
    pub call_id: String,
    /// The integration's name.
    pub integration: String,
    /// The scenario (`PreCallJournal`, `CallJournal`, `SmsNote`, `CreateNewContact`…).
    pub hook: String,
    /// State.
    pub state: HookState,
    /// Attempts so far.
    pub attempts: u32,
    /// When it may be sent next (Unix seconds).
    pub next_attempt_at: i64,
    /// The call variables it runs with.
    #[serde(skip)]
    pub variables: Map<String, Value>,
    /// What the CRM answered (outputs, e.g. the created record's id).
    pub outputs: Map<String, Value>,
    /// Requests of the scenario already done in earlier attempts.
    #[serde(skip)]
    pub completed: Vec<String>,
    /// Their outputs.
    #[serde(skip)]
    pub earlier: Map<String, Value>,
    /// The last error (masked), if any.
    pub last_error: Option<String>,
    /// The last HTTP status, if any.
    pub last_status: Option<u16>,
    /// Created (Unix seconds).
    pub created_at: i64,
    /// Last change (Unix seconds).
    pub updated_at: i64,
}

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![M::up(
        "CREATE TABLE calls (
            id TEXT PRIMARY KEY,
            record TEXT NOT NULL,
            started_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL
        );
        CREATE TABLE hooks (
            id INTEGER PRIMARY KEY,
            call_id TEXT NOT NULL,
            integration TEXT NOT NULL,
            hook TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at INTEGER NOT NULL,
            variables TEXT NOT NULL,
            outputs TEXT NOT NULL DEFAULT '{}',
            completed TEXT NOT NULL DEFAULT '[]',
            earlier TEXT NOT NULL DEFAULT '{}',
            last_error TEXT,
            last_status INTEGER,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            UNIQUE (call_id, integration, hook)
        );
        CREATE INDEX hooks_due ON hooks (state, next_attempt_at);
        CREATE INDEX hooks_call ON hooks (call_id, integration, id);
        CREATE TABLE globals (
            integration TEXT PRIMARY KEY,
            vars TEXT NOT NULL,
            fetched_at INTEGER NOT NULL
        );
        CREATE TABLE crm_users (
            integration TEXT NOT NULL,
            user_id TEXT NOT NULL,
            first_name TEXT NOT NULL,
            last_name TEXT NOT NULL,
            email TEXT NOT NULL,
            PRIMARY KEY (integration, user_id)
        );
        CREATE TABLE associations (
            integration TEXT NOT NULL,
            extension TEXT NOT NULL,
            user_id TEXT NOT NULL,
            PRIMARY KEY (integration, extension)
        );
        CREATE TABLE call_contacts (
            call_id TEXT NOT NULL,
            integration TEXT NOT NULL,
            contact TEXT NOT NULL,
            PRIMARY KEY (call_id, integration)
        );",
    )])
}

/// A CRM user (UserAssociation).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CrmUser {
    /// `UserUniqueId`.
    pub id: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Email.
    pub email: String,
}

/// The store. Cheap to share behind an `Arc`; operations are short transactions.
#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
    /// `callbox.outbox.lock` beside the database: one sender per store.
    lock_path: Option<std::path::PathBuf>,
}

/// Held by the one process that sends a store's outbox; released when dropped or when the
/// process dies (even by SIGKILL), so a crashed sender's entries are recovered at once.
#[derive(Debug)]
pub struct SenderLock {
    _file: Option<std::fs::File>,
}

impl Store {
    /// Opens (creating and upgrading as needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        }
        let open_err = |e: std::io::Error| StoreError::Open {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        // Processes starting together must not migrate the same new database at once.
        let migrating = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path.with_extension("open.lock"))
            .map_err(open_err)?;
        migrating.lock().map_err(open_err)?;
        let conn = Connection::open(path).map_err(|e| StoreError::Open {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let mut store = Self::init(conn, &path.display().to_string())?;
        drop(migrating);
        store.lock_path = Some(path.with_extension("outbox.lock"));
        Ok(store)
    }

    /// Becomes the store's outbox sender if no other process is: `None` while another holds
    /// the role. Entries left `sending` by a sender that died go back to pending when the
    /// role is taken.
    pub fn try_become_sender(&self, now: i64) -> Result<Option<SenderLock>, StoreError> {
        let Some(path) = &self.lock_path else {
            // An in-memory store has one process by construction.
            self.recover_in_flight(now)?;
            return Ok(Some(SenderLock { _file: None }));
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| StoreError::Open {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        match file.try_lock() {
            Ok(()) => {
                self.recover_in_flight(now)?;
                Ok(Some(SenderLock { _file: Some(file) }))
            }
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Open {
                path: path.display().to_string(),
                reason: e.to_string(),
            }),
        }
    }

    /// An in-memory store (tests).
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Self::init(Connection::open_in_memory()?, ":memory:")
    }

    fn init(mut conn: Connection, path: &str) -> Result<Store, StoreError> {
        let open_err = |e: rusqlite::Error| {
            StoreError::Open {
            path: path.to_string(),
            reason: match e.sqlite_error_code() {
                Some(rusqlite::ErrorCode::NotADatabase) => {
                    "the file is not a database (corrupt?): move it away and Callbox starts a new one".to_string()
                }
                _ => e.to_string(),
            },
        }
        };
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        // FULL: a committed outbox entry survives a power loss, not only a crashed process.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        migrations()
            .to_latest(&mut conn)
            .map_err(|e| StoreError::Migration(e.to_string()))?;
        Ok(Store {
            conn: Mutex::new(conn),
            lock_path: None,
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (each operation is
        // one statement or transaction), so a poisoned lock is still usable.
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records (or updates) a call in the history.
    pub fn record_call(&self, call: &Call, now: i64) -> Result<(), StoreError> {
        let record = serde_json::to_string(call).map_err(|e| StoreError::Sql(e.to_string()))?;
        self.conn().execute(
            "INSERT INTO calls (id, record, started_at, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (id) DO UPDATE SET record = excluded.record, updated_at = excluded.updated_at",
            params![call.id, record, call.started_at, now],
        )?;
        Ok(())
    }

    /// A call of the history.
    pub fn call(&self, id: &str) -> Result<Option<Call>, StoreError> {
        let record: Option<String> = self
            .conn()
            .query_row("SELECT record FROM calls WHERE id = ?1", [id], |r| r.get(0))
            .optional()?;
        Ok(record.and_then(|r| serde_json::from_str(&r).ok()))
    }

    /// The latest calls of the history, newest first.
    pub fn recent_calls(&self, limit: usize) -> Result<Vec<Call>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT record FROM calls ORDER BY started_at DESC, rowid DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
            r.get::<_, String>(0)
        })?;
        let mut calls = Vec::new();
        for row in rows {
            if let Ok(call) = serde_json::from_str(&row?) {
                calls.push(call);
            }
        }
        Ok(calls)
    }

    /// Puts a write in the outbox, durably, before anything is sent. The same call,
    /// integration and hook is one entry: enqueueing again changes nothing and returns
    /// `(id, false)`.
    pub fn enqueue(
        &self,
        call_id: &str,
        integration: &str,
        hook: &str,
        variables: &Map<String, Value>,
        now: i64,
    ) -> Result<(i64, bool), StoreError> {
        let conn = self.conn();
        let vars = Value::Object(variables.clone()).to_string();
        let inserted = conn.execute(
            "INSERT INTO hooks (call_id, integration, hook, next_attempt_at, variables, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?4, ?4) ON CONFLICT (call_id, integration, hook) DO NOTHING",
            params![call_id, integration, hook, now, vars],
        )?;
        let id: i64 = conn.query_row(
            "SELECT id FROM hooks WHERE call_id = ?1 AND integration = ?2 AND hook = ?3",
            params![call_id, integration, hook],
            |r| r.get(0),
        )?;
        Ok((id, inserted == 1))
    }

    /// After a crash: writes that were being sent go back to pending (they are sent again).
    /// Returns how many.
    pub fn recover_in_flight(&self, now: i64) -> Result<usize, StoreError> {
        Ok(self.conn().execute(
            "UPDATE hooks SET state = 'pending', next_attempt_at = ?1, updated_at = ?1 WHERE state = 'sending'",
            [now],
        )?)
    }

    /// Claims up to `limit` due entries of `integration` (marks them sending and counts the
    /// attempt). An entry waits while an earlier entry of the same call and integration is
    /// unfinished, so a call's hooks run in order (the end-of-call log sees the pre-log's id).
    pub fn claim_due(
        &self,
        integration: &str,
        now: i64,
        limit: usize,
    ) -> Result<Vec<HookEntry>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let ids: Vec<i64> = {
            let mut stmt = tx.prepare_cached(
                "SELECT h.id FROM hooks h
                 WHERE h.integration = ?1 AND h.state = 'pending' AND h.next_attempt_at <= ?2
                   AND NOT EXISTS (SELECT 1 FROM hooks e WHERE e.call_id = h.call_id
                       AND e.integration = h.integration AND e.id < h.id AND e.state IN ('pending', 'sending'))
                 ORDER BY h.next_attempt_at, h.id LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![integration, now, limit as i64], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut claimed = Vec::with_capacity(ids.len());
        for id in ids {
            tx.execute(
                "UPDATE hooks SET state = 'sending', attempts = attempts + 1, updated_at = ?2 WHERE id = ?1",
                params![id, now],
            )?;
            if let Some(entry) = read_entry(&tx, id)? {
                claimed.push(entry);
            }
        }
        tx.commit()?;
        Ok(claimed)
    }

    /// The earliest time any pending entry of `integration` becomes due.
    pub fn next_due(&self, integration: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.conn().query_row(
            "SELECT MIN(next_attempt_at) FROM hooks WHERE integration = ?1 AND state = 'pending'",
            [integration],
            |r| r.get(0),
        )?)
    }

    /// How many entries are pending or being sent.
    pub fn unfinished(&self) -> Result<usize, StoreError> {
        let n: i64 = self.conn().query_row(
            "SELECT COUNT(*) FROM hooks WHERE state IN ('pending', 'sending')",
            [],
            |r| r.get(0),
        )?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Outputs of the call's earlier sent hooks for the same integration (e.g. the pre-log's
    /// `CallLogId` for the end-of-call log), oldest first so later ones win.
    pub fn earlier_outputs(
        &self,
        call_id: &str,
        integration: &str,
        before: i64,
    ) -> Result<Map<String, Value>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT outputs FROM hooks WHERE call_id = ?1 AND integration = ?2 AND id < ?3 AND state = 'sent' ORDER BY id",
        )?;
        let rows = stmt.query_map(params![call_id, integration, before], |r| {
            r.get::<_, String>(0)
        })?;
        let mut out = Map::new();
        for row in rows {
            if let Ok(Value::Object(o)) = serde_json::from_str(&row?) {
                out.extend(o);
            }
        }
        Ok(out)
    }

    /// Saves which requests of a multi-request hook are done, so a retry resumes after them.
    pub fn save_progress(
        &self,
        id: i64,
        completed: &[String],
        earlier: &Map<String, Value>,
        now: i64,
    ) -> Result<(), StoreError> {
        let completed =
            serde_json::to_string(completed).map_err(|e| StoreError::Sql(e.to_string()))?;
        self.conn().execute(
            "UPDATE hooks SET completed = ?2, earlier = ?3, updated_at = ?4 WHERE id = ?1",
            params![
                id,
                completed,
                Value::Object(earlier.clone()).to_string(),
                now
            ],
        )?;
        Ok(())
    }

    /// The CRM accepted the write.
    pub fn mark_sent(
        &self,
        id: i64,
        outputs: &Map<String, Value>,
        status: Option<u16>,
        now: i64,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE hooks SET state = 'sent', outputs = ?2, last_error = NULL, last_status = ?3, updated_at = ?4 WHERE id = ?1",
            params![id, Value::Object(outputs.clone()).to_string(), status, now],
        )?;
        Ok(())
    }

    /// Try again at `next_attempt_at` (a transient failure, or a rate limit).
    pub fn mark_retry(
        &self,
        id: i64,
        next_attempt_at: i64,
        error: &str,
        status: Option<u16>,
        now: i64,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE hooks SET state = 'pending', next_attempt_at = ?2, last_error = ?3, last_status = ?4, updated_at = ?5 WHERE id = ?1",
            params![id, next_attempt_at, error, status, now],
        )?;
        Ok(())
    }

    /// Gives a rate-limited attempt back without counting it.
    pub fn release(&self, id: i64, next_attempt_at: i64, now: i64) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE hooks SET state = 'pending', attempts = MAX(attempts - 1, 0), next_attempt_at = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, next_attempt_at, now],
        )?;
        Ok(())
    }

    /// The CRM refused the write for good: kept with its reason for a person to act on.
    pub fn mark_failed(
        &self,
        id: i64,
        error: &str,
        status: Option<u16>,
        now: i64,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE hooks SET state = 'failed', last_error = ?2, last_status = ?3, updated_at = ?4 WHERE id = ?1",
            params![id, error, status, now],
        )?;
        Ok(())
    }

    /// Puts failed entries (one, or all when `id` is `None`) back in the outbox.
    pub fn retry_failed(&self, id: Option<i64>, now: i64) -> Result<usize, StoreError> {
        let conn = self.conn();
        Ok(match id {
            Some(id) => conn.execute(
                "UPDATE hooks SET state = 'pending', next_attempt_at = ?2, updated_at = ?2 WHERE id = ?1 AND state = 'failed'",
                params![id, now],
            )?,
            None => conn.execute(
                "UPDATE hooks SET state = 'pending', next_attempt_at = ?1, updated_at = ?1 WHERE state = 'failed'",
                [now],
            )?,
        })
    }

    /// Makes `integration`'s pending entries due now (it was just signed in again).
    pub fn due_now(&self, integration: &str, now: i64) -> Result<usize, StoreError> {
        Ok(self.conn().execute(
            "UPDATE hooks SET next_attempt_at = ?2 WHERE integration = ?1 AND state = 'pending' AND next_attempt_at > ?2",
            params![integration, now],
        )?)
    }

    /// Outbox entries, newest first (optionally one call's).
    pub fn hooks(&self, call_id: Option<&str>, limit: usize) -> Result<Vec<HookEntry>, StoreError> {
        let conn = self.conn();
        let ids: Vec<i64> = match call_id {
            Some(c) => {
                let mut stmt =
                    conn.prepare_cached("SELECT id FROM hooks WHERE call_id = ?1 ORDER BY id")?;
                let rows = stmt.query_map([c], |r| r.get(0))?;
                rows.collect::<Result<_, _>>()?
            }
            None => {
                let mut stmt =
                    conn.prepare_cached("SELECT id FROM hooks ORDER BY id DESC LIMIT ?1")?;
                let rows = stmt.query_map([limit as i64], |r| r.get(0))?;
                rows.collect::<Result<_, _>>()?
            }
        };
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(e) = read_entry(&conn, id)? {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// Integrations that have pending entries.
    pub fn integrations_with_pending(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached("SELECT DISTINCT integration FROM hooks WHERE state = 'pending'")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Caches an integration's GetGlobalInfo values.
    pub fn set_globals(
        &self,
        integration: &str,
        vars: &Map<String, Value>,
        now: i64,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO globals (integration, vars, fetched_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (integration) DO UPDATE SET vars = excluded.vars, fetched_at = excluded.fetched_at",
            params![integration, Value::Object(vars.clone()).to_string(), now],
        )?;
        Ok(())
    }

    /// An integration's cached GetGlobalInfo values.
    pub fn globals(&self, integration: &str) -> Result<Option<Map<String, Value>>, StoreError> {
        let vars: Option<String> = self
            .conn()
            .query_row(
                "SELECT vars FROM globals WHERE integration = ?1",
                [integration],
                |r| r.get(0),
            )
            .optional()?;
        Ok(vars.and_then(|v| match serde_json::from_str(&v) {
            Ok(Value::Object(o)) => Some(o),
            _ => None,
        }))
    }

    /// Replaces an integration's CRM user list.
    pub fn set_crm_users(&self, integration: &str, users: &[CrmUser]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(
            "DELETE FROM crm_users WHERE integration = ?1",
            [integration],
        )?;
        for u in users {
            tx.execute(
                "INSERT OR REPLACE INTO crm_users (integration, user_id, first_name, last_name, email) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![integration, u.id, u.first_name, u.last_name, u.email],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// An integration's CRM users.
    pub fn crm_users(&self, integration: &str) -> Result<Vec<CrmUser>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT user_id, first_name, last_name, email FROM crm_users WHERE integration = ?1 ORDER BY last_name, first_name",
        )?;
        let rows = stmt.query_map([integration], |r| {
            Ok(CrmUser {
                id: r.get(0)?,
                first_name: r.get(1)?,
                last_name: r.get(2)?,
                email: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Associates an extension with a CRM user of an integration (by hand or by email).
    pub fn associate(
        &self,
        integration: &str,
        extension: &str,
        user_id: &str,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO associations (integration, extension, user_id) VALUES (?1, ?2, ?3)
             ON CONFLICT (integration, extension) DO UPDATE SET user_id = excluded.user_id",
            params![integration, extension, user_id],
        )?;
        Ok(())
    }

    /// The CRM user associated with an extension (`{{.CrmId}}`).
    pub fn associated_user(
        &self,
        integration: &str,
        extension: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT user_id FROM associations WHERE integration = ?1 AND extension = ?2",
                params![integration, extension],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Remembers the contact a call was matched to in an integration.
    pub fn set_call_contact(
        &self,
        call_id: &str,
        integration: &str,
        contact: &Map<String, Value>,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO call_contacts (call_id, integration, contact) VALUES (?1, ?2, ?3)
             ON CONFLICT (call_id, integration) DO UPDATE SET contact = excluded.contact",
            params![
                call_id,
                integration,
                Value::Object(contact.clone()).to_string()
            ],
        )?;
        Ok(())
    }

    /// The contact a call was matched to in an integration.
    pub fn call_contact(
        &self,
        call_id: &str,
        integration: &str,
    ) -> Result<Option<Map<String, Value>>, StoreError> {
        let c: Option<String> = self
            .conn()
            .query_row(
                "SELECT contact FROM call_contacts WHERE call_id = ?1 AND integration = ?2",
                params![call_id, integration],
                |r| r.get(0),
            )
            .optional()?;
        Ok(c.and_then(|c| match serde_json::from_str(&c) {
            Ok(Value::Object(o)) => Some(o),
            _ => None,
        }))
    }
}

fn read_entry(conn: &Connection, id: i64) -> Result<Option<HookEntry>, StoreError> {
    let object = |s: String| match serde_json::from_str(&s) {
        Ok(Value::Object(o)) => o,
        _ => Map::new(),
    };
    Ok(conn
        .query_row(
            "SELECT call_id, integration, hook, state, attempts, next_attempt_at, variables, outputs,
                    completed, earlier, last_error, last_status, created_at, updated_at
             FROM hooks WHERE id = ?1",
            [id],
            |r| {
                Ok(HookEntry {
                    id,
                    call_id: r.get(0)?,
                    integration: r.get(1)?,
                    hook: r.get(2)?,
                    state: HookState::parse(&r.get::<_, String>(3)?),
                    attempts: r.get(4)?,
                    next_attempt_at: r.get(5)?,
                    variables: object(r.get(6)?),
                    outputs: object(r.get(7)?),
                    completed: serde_json::from_str(&r.get::<_, String>(8)?).unwrap_or_default(),
                    earlier: object(r.get(9)?),
                    last_error: r.get(10)?,
                    last_status: r.get(11)?,
                    created_at: r.get(12)?,
                    updated_at: r.get(13)?,
                })
            },
        )
        .optional()?)
}

impl HookState {
    /// The state as stored and shown (`pending`, `sending`, `sent`, `failed`).
    pub fn name(self) -> &'static str {
        self.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Map<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect()
    }

    #[test]
    fn one_entry_per_call_integration_and_hook() {
        let s = Store::open_in_memory().unwrap();
        let (a, new_a) = s
            .enqueue("c1", "zoho", "CallJournal", &vars(&[("x", "1")]), 10)
            .unwrap();
        let (b, new_b) = s
            .enqueue("c1", "zoho", "CallJournal", &vars(&[("x", "2")]), 11)
            .unwrap();
        assert!(new_a && !new_b);
        assert_eq!(a, b);
        let (c, _) = s
            .enqueue("c1", "hubspot", "CallJournal", &vars(&[]), 12)
            .unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn a_calls_hooks_run_in_order_and_see_earlier_outputs() {
        let s = Store::open_in_memory().unwrap();
        let (pre, _) = s
            .enqueue("c1", "zoho", "PreCallJournal", &vars(&[]), 10)
            .unwrap();
        let (end, _) = s
            .enqueue("c1", "zoho", "CallJournal", &vars(&[]), 10)
            .unwrap();
        let claimed = s.claim_due("zoho", 10, 10).unwrap();
        assert_eq!(claimed.iter().map(|e| e.id).collect::<Vec<_>>(), vec![pre]);
        assert_eq!(claimed[0].state, HookState::Sending);
        assert_eq!(claimed[0].attempts, 1);
        assert!(
            s.claim_due("zoho", 10, 10).unwrap().is_empty(),
            "the end waits for the pre-log"
        );
        s.mark_sent(pre, &vars(&[("CallLogId", "L-1")]), Some(201), 11)
            .unwrap();
        let claimed = s.claim_due("zoho", 11, 10).unwrap();
        assert_eq!(claimed[0].id, end);
        assert_eq!(
            s.earlier_outputs("c1", "zoho", end).unwrap(),
            vars(&[("CallLogId", "L-1")])
        );
    }

    #[test]
    fn retries_wait_and_crashes_recover() {
        let s = Store::open_in_memory().unwrap();
        let (id, _) = s
            .enqueue("c1", "zoho", "CallJournal", &vars(&[]), 10)
            .unwrap();
        s.claim_due("zoho", 10, 1).unwrap();
        s.mark_retry(id, 40, "HTTP 503", Some(503), 10).unwrap();
        assert!(s.claim_due("zoho", 39, 1).unwrap().is_empty());
        assert_eq!(s.next_due("zoho").unwrap(), Some(40));
        let e = s.claim_due("zoho", 40, 1).unwrap().remove(0);
        assert_eq!(e.attempts, 2);
        // crash while sending
        assert_eq!(s.recover_in_flight(50).unwrap(), 1);
        assert_eq!(s.claim_due("zoho", 50, 1).unwrap()[0].attempts, 3);
        s.mark_failed(id, "HTTP 422: bad field", Some(422), 51)
            .unwrap();
        assert_eq!(s.unfinished().unwrap(), 0);
        assert_eq!(s.retry_failed(None, 60).unwrap(), 1);
        assert_eq!(s.unfinished().unwrap(), 1);
    }

    #[test]
    fn survives_reopen_and_reports_a_corrupt_file() {
        let dir = std::env::temp_dir().join(format!("callbox-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("callbox.db");
        {
            let s = Store::open(&path).unwrap();
            s.enqueue("c1", "zoho", "CallJournal", &vars(&[("a", "b")]), 1)
                .unwrap();
            s.associate("zoho", "1001", "u-1").unwrap();
        }
        let s = Store::open(&path).unwrap();
        assert_eq!(
            s.hooks(Some("c1"), 10).unwrap()[0].variables,
            vars(&[("a", "b")])
        );
        assert_eq!(
            s.associated_user("zoho", "1001").unwrap().as_deref(),
            Some("u-1")
        );
        drop(s);
        let bad = dir.join("bad.db");
        std::fs::write(
            &bad,
            b"this is not sqlite, just text long enough to look like a header............",
        )
        .unwrap();
        let err = Store::open(&bad).unwrap_err().to_string();
        assert!(err.contains("not a database"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
