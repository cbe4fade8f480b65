//! The watcher's durable state: the high-water mark, the ids already
//! evaluated, the rules' threshold and suppression state, and the outbox of
//! alerts and their deliveries.
//!
//! [`Store`] is the small interface the watcher and the delivery workers
//! use; [`SqliteStore`] keeps it in an embedded SQLite file. One poll's
//! results are committed in one transaction, so a crash at any moment
//! leaves either all of them or none.

mod sqlite;

use std::collections::HashSet;

pub use sqlite::SqliteStore;

use crate::alert::Alert;

/// Why the state store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the disk holding the state file {path} is full; nothing of the current poll was committed, and everything committed before is intact: free space and start again"
    )]
    Full { path: String },
    #[error(
        "the state file {path} cannot be written ({detail}); nothing of the current poll was committed: check its permissions and the free space of its folder"
    )]
    ReadOnly { path: String, detail: String },
    #[error(
        "the state file {path} was written by a newer auditwatch (schema {found}, this build knows up to {known}): run the newer version, or restore a backup"
    )]
    TooNew {
        path: String,
        found: i64,
        known: i64,
    },
    #[error(
        "the state file {path} is in use by another auditwatch process: stop it first, or give this one its own `state.path`"
    )]
    Locked { path: String },
    #[error("state file {path}: {detail}")]
    Sqlite { path: String, detail: String },
}

/// Where the watcher stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// Everything before this event time has been read (less the lookback,
    /// which every poll reads again); `None` before the first poll.
    pub high_water: Option<i64>,
    /// The rules' saved threshold and suppression state.
    pub rule_state: Option<Vec<u8>>,
    /// Events evaluated since the state file was created.
    pub events_total: u64,
}

/// One alert for the outbox, with the destinations it goes to.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub alert: Alert,
    pub destinations: Vec<String>,
}

/// What one poll (or one slice of a backlog) commits, all together.
#[derive(Debug, Clone, Default)]
pub struct Commit {
    /// The ids evaluated, with their `effective_at`.
    pub events: Vec<(String, i64)>,
    pub alerts: Vec<Outgoing>,
    pub rule_state: Vec<u8>,
    pub high_water: i64,
    /// Seen ids older than this are forgotten.
    pub forget_before: i64,
    /// When the commit is made (Unix seconds), for the outbox.
    pub now: i64,
}

/// One alert's delivery to one destination.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: i64,
    pub alert_id: i64,
    pub destination: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    /// When its alert was committed to the outbox (Unix seconds).
    pub queued_at: i64,
    /// Every destination its alert was routed to.
    pub routes: Vec<String>,
    pub alert: Alert,
}

impl Delivery {
    /// A delivery of `alert` that is in no outbox: what `notify-test`
    /// sends and `rulecheck --render` shows.
    pub fn preview(alert: Alert, destination: &str, routes: Vec<String>, now: i64) -> Delivery {
        Delivery {
            id: 0,
            alert_id: 0,
            destination: destination.to_owned(),
            status: DeliveryStatus::Queued,
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            queued_at: now,
            routes,
            alert,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    Queued,
    Sent,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Queued => "queued",
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> DeliveryStatus {
        match s {
            "sent" => DeliveryStatus::Sent,
            "failed" => DeliveryStatus::Failed,
            _ => DeliveryStatus::Queued,
        }
    }
}

/// The watcher's state, wherever it is kept.
pub trait Store: Send {
    fn checkpoint(&self) -> Result<Checkpoint, StoreError>;

    /// Which of `ids` were evaluated before.
    fn seen(&self, ids: &[&str]) -> Result<HashSet<String>, StoreError>;

    /// Commits one poll's results in one transaction: all or nothing.
    fn commit(&mut self, commit: &Commit) -> Result<(), StoreError>;

    /// Puts alerts that no poll raised (the heartbeat's) in the outbox.
    fn enqueue(&mut self, alerts: &[Outgoing], now: i64) -> Result<(), StoreError>;

    /// Up to `limit` queued deliveries of `destination` due at `now`,
    /// oldest first.
    fn due(&self, destination: &str, now: i64, limit: usize) -> Result<Vec<Delivery>, StoreError>;

    /// When the oldest queued delivery of `destination` is due.
    fn next_due(&self, destination: &str) -> Result<Option<i64>, StoreError>;

    /// The destination accepted the delivery.
    fn sent(&mut self, delivery: i64, now: i64) -> Result<(), StoreError>;

    /// The delivery failed for now: try again at `next_attempt_at`.
    fn retry_at(
        &mut self,
        delivery: i64,
        next_attempt_at: i64,
        error: &str,
    ) -> Result<(), StoreError>;

    /// The delivery failed for good (kept as failed until re-queued).
    fn failed(&mut self, delivery: i64, error: &str) -> Result<(), StoreError>;

    /// How many deliveries wait for each destination.
    fn queued_counts(&self) -> Result<Vec<(String, u64)>, StoreError>;

    /// Deliveries in the outbox: queued and failed ones, or only failed.
    fn deliveries(&self, only_failed: bool) -> Result<Vec<Delivery>, StoreError>;

    /// Puts failed deliveries back in the queue (one by id, or all);
    /// returns how many.
    fn requeue(&mut self, delivery: Option<i64>, now: i64) -> Result<usize, StoreError>;

    /// The Slack thread (message `ts`) of the last alert of `rule_id` and
    /// `key` posted to `destination`.
    fn thread(
        &self,
        destination: &str,
        rule_id: &str,
        key: &str,
    ) -> Result<Option<String>, StoreError>;

    /// Records the thread of an alert just posted.
    fn set_thread(
        &mut self,
        destination: &str,
        rule_id: &str,
        key: &str,
        ts: &str,
        now: i64,
    ) -> Result<(), StoreError>;

    /// When a digest destination sends next.
    fn schedule(&self, destination: &str) -> Result<Option<i64>, StoreError>;

    fn set_schedule(&mut self, destination: &str, next_at: i64) -> Result<(), StoreError>;

    /// Several deliveries accepted at once (one digest), in one transaction.
    fn sent_all(&mut self, deliveries: &[i64], now: i64) -> Result<(), StoreError>;

    /// The alerts of `incident` committed before alert `alert` (repeats
    /// left out): the last `limit` of them, oldest first, and how many
    /// there are in all.
    fn incident_before(
        &self,
        incident: &str,
        alert: i64,
        limit: usize,
    ) -> Result<(Vec<Alert>, u64), StoreError>;

    /// Every alert committed so far, oldest first.
    fn alerts(&self) -> Result<Vec<Alert>, StoreError>;

    /// Replaces the saved rule state alone (`auditwatch learn`), leaving
    /// the high-water mark and seen ids as they are.
    fn save_rule_state(&mut self, state: &[u8], now: i64) -> Result<(), StoreError>;

    /// The last `n` alerts committed (thread repeats included), newest first.
    fn recent_alerts(&self, n: usize) -> Result<Vec<Alert>, StoreError>;
}
