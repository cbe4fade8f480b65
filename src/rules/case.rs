//! An inline test case (`tests:` in a rule) as compiled at load: the events
//! to feed and what the rule must raise on them.

use std::sync::Arc;

use super::Severity;

/// One inline test case.
#[derive(Debug, Clone)]
pub struct TestCase {
    pub name: String,
    /// Position among the rule's cases (0-based).
    pub index: usize,
    pub events: Vec<Arc<serde_json::Value>>,
    pub expect: Option<bool>,
    pub expect_alerts: Option<usize>,
    pub expect_severity: Option<Severity>,
}

impl TestCase {
    /// True when the case expects at least one alert.
    pub fn expects_alert(&self) -> bool {
        self.expect == Some(true) || self.expect_alerts.is_some_and(|n| n > 0)
    }

    /// True when the case expects no alert.
    pub fn expects_quiet(&self) -> bool {
        self.expect == Some(false) || self.expect_alerts == Some(0)
    }
}
