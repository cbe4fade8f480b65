//! The state store in an embedded SQLite file (WAL, full sync), created on
//! first run and migrated forward by its schema version.
//!
//! A lock file beside the database keeps a second watcher off the same
//! state; tools such as `auditwatch outbox` open it without the lock.

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, ErrorCode, OptionalExtension, params};

use super::{Checkpoint, Commit, Delivery, DeliveryStatus, Outgoing, Store, StoreError};
use crate::alert::Alert;

/// The schema, one step per version; a new version appends a step.
const MIGRATIONS: &[&str] = &[
    // 1: checkpoint, seen ids, outbox.
    "CREATE TABLE checkpoint (
         id INTEGER PRIMARY KEY CHECK (id = 1),
         high_water INTEGER,
         rule_state BLOB,
         events_total INTEGER NOT NULL DEFAULT 0,
         updated_at INTEGER NOT NULL
     );
     CREATE TABLE seen (
         id TEXT PRIMARY KEY,
         effective_at INTEGER NOT NULL
     ) WITHOUT ROWID;
     CREATE INDEX seen_by_time ON seen (effective_at);
     CREATE TABLE alerts (
         id INTEGER PRIMARY KEY,
         rule_id TEXT NOT NULL,
         event_id TEXT NOT NULL,
         severity TEXT NOT NULL,
         effective_at INTEGER NOT NULL,
         created_at INTEGER NOT NULL,
         body TEXT NOT NULL
     );
     CREATE TABLE deliveries (
         id INTEGER PRIMARY KEY,
         alert_id INTEGER NOT NULL REFERENCES alerts (id),
         destination TEXT NOT NULL,
         status TEXT NOT NULL CHECK (status IN ('queued', 'sent', 'failed')),
         attempts INTEGER NOT NULL DEFAULT 0,
         next_attempt_at INTEGER NOT NULL,
         last_error TEXT,
         sent_at INTEGER
     );
     CREATE INDEX deliveries_due ON deliveries (destination, status, next_attempt_at);",
    // 2: Slack threads of alerts, and the schedules of digests.
    "CREATE TABLE threads (
         destination TEXT NOT NULL,
         rule_id TEXT NOT NULL,
         key TEXT NOT NULL,
         ts TEXT NOT NULL,
         posted_at INTEGER NOT NULL,
         PRIMARY KEY (destination, rule_id, key)
     ) WITHOUT ROWID;
     CREATE TABLE schedules (
         destination TEXT PRIMARY KEY,
         next_at INTEGER NOT NULL
     ) WITHOUT ROWID;",
    // 3: the incident of each alert, for the timelines of its messages.
    "ALTER TABLE alerts ADD COLUMN incident TEXT;
     UPDATE alerts SET incident = json_extract(body, '$.facts.incident');
     CREATE INDEX alerts_by_incident ON alerts (incident, id) WHERE incident IS NOT NULL;",
];

/// The state store in a SQLite file.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    /// Held while the store is open for a watcher.
    _lock: Option<File>,
}

impl SqliteStore {
    /// Opens (creating on first run) the state file for a watcher: no other
    /// watcher may hold it at the same time.
    pub fn open_for_watcher(path: &Path) -> Result<SqliteStore, StoreError> {
        let lock = lock_file(path)?;
        let mut store = Self::open(path)?;
        store._lock = Some(lock);
        Ok(store)
    }

    /// Opens (creating on first run) the state file.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::ReadOnly {
                path: path.display().to_string(),
                detail: format!("cannot create its folder: {e}"),
            })?;
        }
        let conn = Connection::open(path).map_err(|e| error(path, e))?;
        Self::setup(conn, path, true)
    }

    /// An in-memory copy of the state file (empty when it does not exist):
    /// a dry run works on it and leaves the file as it was.
    pub fn copy_in_memory(path: &Path) -> Result<SqliteStore, StoreError> {
        let mut conn = Connection::open_in_memory().map_err(|e| error(path, e))?;
        if path.exists() {
            let src = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .map_err(|e| error(path, e))?;
            let backup =
                rusqlite::backup::Backup::new(&src, &mut conn).map_err(|e| error(path, e))?;
            backup
                .run_to_completion(256, std::time::Duration::ZERO, None)
                .map_err(|e| error(path, e))?;
        }
        Self::setup(conn, path, false)
    }

    fn setup(conn: Connection, path: &Path, on_disk: bool) -> Result<SqliteStore, StoreError> {
        let err = |e| error(path, e);
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err)?;
        if on_disk {
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(err)?;
            conn.pragma_update(None, "synchronous", "FULL")
                .map_err(err)?;
        }
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(err)?;
        let mut store = SqliteStore {
            conn,
            path: path.to_owned(),
            _lock: None,
        };
        store.migrate()?;
        Ok(store)
    }

    /// The schema version of the open file.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let found = self.schema_version()?;
        let known = MIGRATIONS.len() as i64;
        if found > known {
            return Err(StoreError::TooNew {
                path: self.path.display().to_string(),
                found,
                known,
            });
        }
        if found == known {
            return Ok(());
        }
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(|e| error(&path, e))?;
        for (i, step) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            tx.execute_batch(step).map_err(|e| error(&path, e))?;
            tx.pragma_update(None, "user_version", i as i64 + 1)
                .map_err(|e| error(&path, e))?;
        }
        tx.commit().map_err(|e| error(&path, e))?;
        if found > 0 {
            tracing::info!(from = found, to = known, "state file migrated");
        }
        Ok(())
    }

    fn err(&self, e: rusqlite::Error) -> StoreError {
        error(&self.path, e)
    }

    fn delivery_rows(
        &self,
        sql: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(args, |r| {
                Ok((
                    Delivery {
                        id: r.get(0)?,
                        alert_id: r.get(1)?,
                        destination: r.get(2)?,
                        status: DeliveryStatus::parse(&r.get::<_, String>(3)?),
                        attempts: r.get(4)?,
                        next_attempt_at: r.get(5)?,
                        last_error: r.get(6)?,
                        queued_at: r.get(8)?,
                        routes: r
                            .get::<_, String>(9)?
                            .split('\u{1f}')
                            .map(str::to_owned)
                            .collect(),
                        alert: placeholder_alert(),
                    },
                    r.get::<_, String>(7)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (mut d, body) = row.map_err(|e| self.err(e))?;
            d.alert = Alert::from_stored(&body).map_err(|e| StoreError::Sqlite {
                path: self.path.display().to_string(),
                detail: format!("alert {} is not readable: {e}", d.alert_id),
            })?;
            out.push(d);
        }
        Ok(out)
    }
}

const DELIVERY_COLUMNS: &str =
    "d.id, d.alert_id, d.destination, d.status, d.attempts, d.next_attempt_at, d.last_error, a.body,
     a.created_at,
     (SELECT group_concat(x.destination, char(31)) FROM deliveries x WHERE x.alert_id = d.alert_id)
     FROM deliveries d JOIN alerts a ON a.id = d.alert_id";

/// Writes alerts and their queued deliveries, inside the caller's
/// transaction.
fn insert_alerts(
    tx: &rusqlite::Transaction<'_>,
    alerts: &[Outgoing],
    now: i64,
) -> rusqlite::Result<()> {
    let mut alert = tx.prepare_cached(
        "INSERT INTO alerts (rule_id, event_id, severity, effective_at, created_at, body, incident)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    let mut delivery = tx.prepare_cached(
        "INSERT INTO deliveries (alert_id, destination, status, next_attempt_at)
         VALUES (?1, ?2, 'queued', ?3)",
    )?;
    for out in alerts {
        let a = &out.alert;
        alert.execute(params![
            a.rule_id,
            a.event_id,
            a.severity.as_str(),
            a.effective_at,
            now,
            a.to_stored(),
            a.facts.incident
        ])?;
        let alert_id = tx.last_insert_rowid();
        for d in &out.destinations {
            delivery.execute(params![alert_id, d, now])?;
        }
    }
    Ok(())
}

fn placeholder_alert() -> Alert {
    Alert {
        rule_id: String::new(),
        severity: crate::rules::Severity::Info,
        title: String::new(),
        summary: String::new(),
        event_id: String::new(),
        event_ids: Vec::new(),
        effective_at: 0,
        suppressed: 0,
        facts: Default::default(),
    }
}

impl Store for SqliteStore {
    fn checkpoint(&self) -> Result<Checkpoint, StoreError> {
        self.conn
            .query_row(
                "SELECT high_water, rule_state, events_total FROM checkpoint WHERE id = 1",
                [],
                |r| {
                    Ok(Checkpoint {
                        high_water: r.get(0)?,
                        rule_state: r.get(1)?,
                        events_total: r.get::<_, i64>(2)? as u64,
                    })
                },
            )
            .optional()
            .map(Option::unwrap_or_default)
            .map_err(|e| self.err(e))
    }

    fn seen(&self, ids: &[&str]) -> Result<HashSet<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT 1 FROM seen WHERE id = ?1")
            .map_err(|e| self.err(e))?;
        let mut out = HashSet::new();
        for id in ids {
            if stmt.exists([id]).map_err(|e| self.err(e))? {
                out.insert((*id).to_owned());
            }
        }
        Ok(out)
    }

    fn enqueue(&mut self, alerts: &[Outgoing], now: i64) -> Result<(), StoreError> {
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(|e| error(&path, e))?;
        insert_alerts(&tx, alerts, now).map_err(|e| error(&path, e))?;
        tx.commit().map_err(|e| error(&path, e))
    }

    fn commit(&mut self, c: &Commit) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |e| error(&path, e);
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut seen = tx
                .prepare_cached("INSERT OR IGNORE INTO seen (id, effective_at) VALUES (?1, ?2)")
                .map_err(err)?;
            for (id, at) in &c.events {
                seen.execute(params![id, at]).map_err(err)?;
            }
            insert_alerts(&tx, &c.alerts, c.now).map_err(err)?;
            tx.execute(
                "INSERT INTO checkpoint (id, high_water, rule_state, events_total, updated_at)
                 VALUES (1, ?1, ?2, ?3, ?4)
                 ON CONFLICT (id) DO UPDATE SET
                     high_water = MAX(COALESCE(high_water, ?1), ?1),
                     rule_state = ?2,
                     events_total = events_total + ?3,
                     updated_at = ?4",
                params![c.high_water, c.rule_state, c.events.len() as i64, c.now],
            )
            .map_err(err)?;
            tx.execute(
                "DELETE FROM seen WHERE effective_at < ?1",
                [c.forget_before],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    fn due(&self, destination: &str, now: i64, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.delivery_rows(
            &format!(
                "SELECT {DELIVERY_COLUMNS}
                 WHERE d.destination = ?1 AND d.status = 'queued' AND d.next_attempt_at <= ?2
                 ORDER BY d.id LIMIT ?3"
            ),
            params![destination, now, limit as i64],
        )
    }

    fn next_due(&self, destination: &str) -> Result<Option<i64>, StoreError> {
        self.conn
            .query_row(
                "SELECT next_attempt_at FROM deliveries WHERE destination = ?1 AND status = 'queued' ORDER BY id LIMIT 1",
                [destination],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    fn sent(&mut self, delivery: i64, now: i64) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE deliveries SET status = 'sent', attempts = attempts + 1, sent_at = ?2, last_error = NULL WHERE id = ?1",
                params![delivery, now],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    fn retry_at(
        &mut self,
        delivery: i64,
        next_attempt_at: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = ?2, last_error = ?3 WHERE id = ?1",
                params![delivery, next_attempt_at, error],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    fn failed(&mut self, delivery: i64, error: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE deliveries SET status = 'failed', attempts = attempts + 1, last_error = ?2 WHERE id = ?1",
                params![delivery, error],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    fn queued_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT destination, COUNT(*) FROM deliveries WHERE status = 'queued' GROUP BY destination",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    fn deliveries(&self, only_failed: bool) -> Result<Vec<Delivery>, StoreError> {
        let filter = if only_failed {
            "d.status = 'failed'"
        } else {
            "d.status IN ('queued', 'failed')"
        };
        self.delivery_rows(
            &format!("SELECT {DELIVERY_COLUMNS} WHERE {filter} ORDER BY d.id"),
            [],
        )
    }

    fn requeue(&mut self, delivery: Option<i64>, now: i64) -> Result<usize, StoreError> {
        let n = match delivery {
            Some(id) => self.conn.execute(
                "UPDATE deliveries SET status = 'queued', next_attempt_at = ?2 WHERE id = ?1 AND status = 'failed'",
                params![id, now],
            ),
            None => self.conn.execute(
                "UPDATE deliveries SET status = 'queued', next_attempt_at = ?1 WHERE status = 'failed'",
                [now],
            ),
        };
        n.map_err(|e| self.err(e))
    }

    fn thread(
        &self,
        destination: &str,
        rule_id: &str,
        key: &str,
    ) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row(
                "SELECT ts FROM threads WHERE destination = ?1 AND rule_id = ?2 AND key = ?3",
                params![destination, rule_id, key],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    fn set_thread(
        &mut self,
        destination: &str,
        rule_id: &str,
        key: &str,
        ts: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO threads (destination, rule_id, key, ts, posted_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (destination, rule_id, key) DO UPDATE SET ts = excluded.ts, posted_at = excluded.posted_at",
                params![destination, rule_id, key, ts, now],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    fn schedule(&self, destination: &str) -> Result<Option<i64>, StoreError> {
        self.conn
            .query_row(
                "SELECT next_at FROM schedules WHERE destination = ?1",
                [destination],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    fn set_schedule(&mut self, destination: &str, next_at: i64) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO schedules (destination, next_at) VALUES (?1, ?2)
                 ON CONFLICT (destination) DO UPDATE SET next_at = excluded.next_at",
                params![destination, next_at],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    fn sent_all(&mut self, deliveries: &[i64], now: i64) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |e| error(&path, e);
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "UPDATE deliveries SET status = 'sent', attempts = attempts + 1, sent_at = ?2, last_error = NULL WHERE id = ?1",
                )
                .map_err(err)?;
            for id in deliveries {
                stmt.execute(params![id, now]).map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    fn incident_before(
        &self,
        incident: &str,
        alert: i64,
        limit: usize,
    ) -> Result<(Vec<Alert>, u64), StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // The window's count is taken before LIMIT: every earlier alert.
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT body, count(*) OVER () FROM alerts
                 WHERE incident = ?1 AND id < ?2
                 AND json_extract(body, '$.facts.repeat') IS NOT 1
                 ORDER BY id DESC LIMIT ?3",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![incident, alert, limit], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<(String, i64)>, _>>()
            .map_err(|e| self.err(e))?;
        let total = rows
            .first()
            .map_or(0, |(_, n)| u64::try_from(*n).unwrap_or(0));
        let mut earlier = Vec::with_capacity(rows.len());
        for (body, _) in rows.iter().rev() {
            earlier.push(Alert::from_stored(body).map_err(|e| StoreError::Sqlite {
                path: self.path.display().to_string(),
                detail: format!("an alert is not readable: {e}"),
            })?);
        }
        Ok((earlier, total))
    }

    fn alerts(&self) -> Result<Vec<Alert>, StoreError> {
        self.alert_rows("SELECT body FROM alerts ORDER BY id LIMIT ?1", -1)
    }

    fn save_rule_state(&mut self, state: &[u8], now: i64) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO checkpoint (id, high_water, rule_state, events_total, updated_at)
                 VALUES (1, NULL, ?1, 0, ?2)
                 ON CONFLICT (id) DO UPDATE SET rule_state = ?1, updated_at = ?2",
                params![state, now],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    fn recent_alerts(&self, n: usize) -> Result<Vec<Alert>, StoreError> {
        self.alert_rows(
            "SELECT body FROM alerts ORDER BY id DESC LIMIT ?1",
            i64::try_from(n).unwrap_or(i64::MAX),
        )
    }
}

impl SqliteStore {
    /// The alerts `sql` selects, `limit` at most (-1: all).
    fn alert_rows(&self, sql: &str, limit: i64) -> Result<Vec<Alert>, StoreError> {
        let mut stmt = self.conn.prepare(sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([limit], |r| r.get::<_, String>(0))
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for body in rows {
            let body = body.map_err(|e| self.err(e))?;
            out.push(Alert::from_stored(&body).map_err(|e| StoreError::Sqlite {
                path: self.path.display().to_string(),
                detail: format!("an alert is not readable: {e}"),
            })?);
        }
        Ok(out)
    }
}

/// Takes the lock file beside the database.
fn lock_file(path: &Path) -> Result<File, StoreError> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock_path = PathBuf::from(lock_path);
    if let Some(dir) = lock_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::create_dir_all(dir);
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| StoreError::ReadOnly {
            path: path.display().to_string(),
            detail: format!("cannot create the lock file {}: {e}", lock_path.display()),
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked {
            path: path.display().to_string(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Sqlite {
            path: path.display().to_string(),
            detail: format!("cannot lock {}: {e}", lock_path.display()),
        }),
    }
}

/// Words a SQLite error for the user.
fn error(path: &Path, e: rusqlite::Error) -> StoreError {
    let path_text = path.display().to_string();
    let code = match &e {
        rusqlite::Error::SqliteFailure(f, _) => Some(f.code),
        _ => None,
    };
    match code {
        Some(ErrorCode::DiskFull) => StoreError::Full { path: path_text },
        Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => {
            StoreError::ReadOnly {
                path: path_text,
                detail: e.to_string(),
            }
        }
        Some(ErrorCode::SystemIoFailure) if e.to_string().contains("disk") => {
            StoreError::Full { path: path_text }
        }
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            StoreError::Locked { path: path_text }
        }
        _ => StoreError::Sqlite {
            path: path_text,
            detail: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Severity;
    use crate::store::Outgoing;

    fn alert(rule: &str, event: &str) -> Alert {
        Alert {
            rule_id: rule.into(),
            severity: Severity::High,
            title: "T".into(),
            summary: "S".into(),
            event_id: event.into(),
            event_ids: vec![event.into()],
            effective_at: 100,
            suppressed: 0,
            facts: crate::alert::Facts {
                event_type: "api_key.created".into(),
                actor: Some("a_b*c@example.com".into()),
                key: Some("k".into()),
                ..Default::default()
            },
        }
    }

    #[test]
    fn a_commit_is_all_or_nothing_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/aw.db");
        let mut store = SqliteStore::open_for_watcher(&path).unwrap();
        assert_eq!(store.checkpoint().unwrap(), Checkpoint::default());
        assert_eq!(store.schema_version().unwrap(), MIGRATIONS.len() as i64);
        store
            .commit(&Commit {
                events: vec![("e1".into(), 100), ("e2".into(), 200)],
                alerts: vec![Outgoing {
                    alert: alert("r", "e1"),
                    destinations: vec!["out".into(), "slack".into()],
                }],
                rule_state: b"{}".to_vec(),
                high_water: 200,
                forget_before: 0,
                now: 1000,
            })
            .unwrap();
        // A second watcher is kept off the same file.
        assert!(matches!(
            SqliteStore::open_for_watcher(&path),
            Err(StoreError::Locked { .. })
        ));
        drop(store);
        let mut store = SqliteStore::open_for_watcher(&path).unwrap();
        let cp = store.checkpoint().unwrap();
        assert_eq!(cp.high_water, Some(200));
        assert_eq!(cp.rule_state.as_deref(), Some(&b"{}"[..]));
        assert_eq!(cp.events_total, 2);
        let seen = store.seen(&["e1", "e3"]).unwrap();
        assert_eq!(seen, HashSet::from(["e1".to_owned()]));
        let due = store.due("out", 1000, 10).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].alert, alert("r", "e1"));
        store
            .retry_at(due[0].id, 1060, "500 from the server")
            .unwrap();
        assert!(store.due("out", 1000, 10).unwrap().is_empty());
        assert_eq!(store.next_due("out").unwrap(), Some(1060));
        store.sent(due[0].id, 1061).unwrap();
        let slack = store.due("slack", 1000, 10).unwrap();
        store.failed(slack[0].id, "invalid_auth").unwrap();
        let failed = store.deliveries(true).unwrap();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].last_error.as_deref(), Some("invalid_auth"));
        assert_eq!(store.requeue(None, 2000).unwrap(), 1);
        assert_eq!(store.due("slack", 2000, 10).unwrap().len(), 1);
        // Old ids are forgotten past the lookback; the high-water mark never goes back.
        store
            .commit(&Commit {
                events: vec![("e3".into(), 300)],
                high_water: 150,
                forget_before: 150,
                now: 2000,
                ..Commit::default()
            })
            .unwrap();
        assert_eq!(store.checkpoint().unwrap().high_water, Some(200));
        assert!(store.seen(&["e1"]).unwrap().is_empty());
        assert_eq!(store.seen(&["e2", "e3"]).unwrap().len(), 2);
        assert_eq!(store.alerts().unwrap().len(), 1);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("aw.db");
        drop(SqliteStore::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let e = SqliteStore::open(&path).err().unwrap().to_string();
        assert!(e.contains("newer auditwatch") && e.contains("99"), "{e}");
    }

    #[test]
    fn a_dry_run_copy_leaves_the_file_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("aw.db");
        let mut store = SqliteStore::open(&path).unwrap();
        store
            .commit(&Commit {
                events: vec![("e1".into(), 100)],
                high_water: 100,
                now: 1,
                ..Commit::default()
            })
            .unwrap();
        drop(store);
        let mut copy = SqliteStore::copy_in_memory(&path).unwrap();
        assert_eq!(copy.checkpoint().unwrap().high_water, Some(100));
        copy.commit(&Commit {
            events: vec![("e2".into(), 500)],
            high_water: 500,
            now: 2,
            ..Commit::default()
        })
        .unwrap();
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.checkpoint().unwrap().high_water, Some(100));
        assert!(store.seen(&["e2"]).unwrap().is_empty());
    }

    #[test]
    fn the_earlier_alerts_of_an_incident_are_found_also_after_a_migration() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("aw.db");
        let of = |event: &str, incident: &str, repeat: bool| {
            let mut a = alert("r", event);
            a.facts.incident = Some(incident.into());
            a.facts.repeat = repeat;
            Outgoing {
                alert: a,
                destinations: vec!["mail".into()],
            }
        };
        // A state file of schema 2 that already holds two alerts of incident-e1.
        {
            let mut conn = Connection::open(&path).unwrap();
            let tx = conn.transaction().unwrap();
            for step in &MIGRATIONS[..2] {
                tx.execute_batch(step).unwrap();
            }
            tx.pragma_update(None, "user_version", 2).unwrap();
            for (i, out) in [
                of("e1", "incident-e1", false),
                of("e2", "incident-e1", true),
            ]
            .iter()
            .enumerate()
            {
                tx.execute(
                    "INSERT INTO alerts (rule_id, event_id, severity, effective_at, created_at, body)
                     VALUES ('r', ?1, 'high', 100, ?2, ?3)",
                    params![out.alert.event_id, i as i64, out.alert.to_stored()],
                )
                .unwrap();
            }
            tx.commit().unwrap();
        }
        let mut store = SqliteStore::open_for_watcher(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), MIGRATIONS.len() as i64);
        store
            .commit(&Commit {
                alerts: vec![
                    of("e3", "incident-e3", false),
                    of("e4", "incident-e1", false),
                    of("e5", "incident-e1", false),
                ],
                now: 10,
                ..Commit::default()
            })
            .unwrap();
        let ids = |found: &[Alert]| found.iter().map(|a| a.event_id.clone()).collect::<Vec<_>>();
        let due = store.due("mail", 10, 10).unwrap();
        let last = due.iter().find(|d| d.alert.event_id == "e5").unwrap();
        // The repeat (e2) and the other incident (e3) are left out.
        let (earlier, total) = store
            .incident_before("incident-e1", last.alert_id, 20)
            .unwrap();
        assert_eq!(
            (ids(&earlier), total),
            (vec!["e1".to_owned(), "e4".to_owned()], 2)
        );
        let (earlier, total) = store
            .incident_before("incident-e1", last.alert_id, 1)
            .unwrap();
        assert_eq!((ids(&earlier), total), (vec!["e4".to_owned()], 2));
        let first = due.iter().find(|d| d.alert.event_id == "e3").unwrap();
        let (earlier, total) = store
            .incident_before("incident-e3", first.alert_id, 20)
            .unwrap();
        assert!(earlier.is_empty() && total == 0);
    }
}
