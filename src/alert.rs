//! The alert: what a rule raises when it fires and its threshold and
//! suppression let it go out, in the shape every output and destination uses.

use serde::{Deserialize, Serialize};

use crate::rules::Severity;

/// One alert that goes out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub rule_id: String,
    pub severity: Severity,
    pub title: String,
    pub summary: String,
    /// The event that fired it.
    pub event_id: String,
    /// Every contributing event (one, or a threshold's whole burst).
    pub event_ids: Vec<String>,
    /// `effective_at` of the event that fired it.
    pub effective_at: i64,
    /// Repeats quieted by `suppress` since the previous alert of this rule and key.
    pub suppressed: u64,
}
