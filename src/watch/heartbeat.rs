//! The heartbeat: an alert when the audit log API has failed for longer
//! than `heartbeat.api_failing_for`, and when no audit event at all has
//! arrived for `heartbeat.silent_for` (a silent audit log is suspicious
//! too), each followed by a recovery notice when it ends.

use crate::alert::{Alert, Facts};
use crate::config::HeartbeatConfig;
use crate::rules::Severity;

/// The rule ids the heartbeat's alerts carry, for routing and filters.
pub const API_FAILING: &str = "auditwatch.heartbeat.api_failing";
pub const API_RECOVERED: &str = "auditwatch.heartbeat.api_recovered";
pub const SILENT: &str = "auditwatch.heartbeat.silent";
pub const EVENTS_BACK: &str = "auditwatch.heartbeat.events_back";

/// Where the heartbeat stands.
#[derive(Debug)]
pub struct Heartbeat {
    api_failing_for: Option<i64>,
    silent_for: Option<i64>,
    failing_since: Option<i64>,
    api_alerted: bool,
    /// When events last arrived (or the watcher started).
    events_at: i64,
    silent_alerted: bool,
}

impl Heartbeat {
    pub fn new(config: Option<&HeartbeatConfig>, now: i64) -> Heartbeat {
        Heartbeat {
            api_failing_for: config.and_then(|c| c.api_failing_for).map(|s| s.0),
            silent_for: config.and_then(|c| c.silent_for).map(|s| s.0),
            failing_since: None,
            api_alerted: false,
            events_at: now,
            silent_alerted: false,
        }
    }

    /// A poll committed with `new_events` events evaluated for the first time.
    pub fn poll_ok(&mut self, now: i64, new_events: usize) -> Vec<Alert> {
        let mut out = Vec::new();
        if let Some(since) = self.failing_since.take()
            && self.api_alerted
        {
            self.api_alerted = false;
            out.push(notice(
                API_RECOVERED,
                Severity::Info,
                "Audit log API reachable again",
                format!(
                    "The audit log API answers again after failing for {}.",
                    crate::notify::format::span(now - since)
                ),
                now,
            ));
        }
        if new_events > 0 {
            if self.silent_alerted {
                self.silent_alerted = false;
                out.push(notice(
                    EVENTS_BACK,
                    Severity::Info,
                    "Audit events arrive again",
                    format!(
                        "{new_events} new audit events after {} without any.",
                        crate::notify::format::span(now - self.events_at)
                    ),
                    now,
                ));
            }
            self.events_at = now;
        } else if let Some(limit) = self.silent_for
            && !self.silent_alerted
            && now - self.events_at >= limit
        {
            self.silent_alerted = true;
            out.push(notice(
                SILENT,
                Severity::High,
                "No audit events",
                format!(
                    "The audit log showed no new event for {}: check that audit logging is still on for the organization and that the admin key reads the right one.",
                    crate::notify::format::span(now - self.events_at)
                ),
                now,
            ));
        }
        out
    }

    /// A poll failed; `error` says why.
    pub fn poll_failed(&mut self, now: i64, error: &str) -> Vec<Alert> {
        let since = *self.failing_since.get_or_insert(now);
        match self.api_failing_for {
            Some(limit) if !self.api_alerted && now - since >= limit => {
                self.api_alerted = true;
                vec![notice(
                    API_FAILING,
                    Severity::High,
                    "Audit log API failing",
                    format!(
                        "Polling the audit log has failed for {}; no event is evaluated meanwhile (they are read once it answers). Last error: {error}",
                        crate::notify::format::span(now - since)
                    ),
                    now,
                )]
            }
            _ => Vec::new(),
        }
    }
}

fn notice(rule_id: &str, severity: Severity, title: &str, summary: String, now: i64) -> Alert {
    watcher_alert(
        rule_id,
        severity,
        title,
        summary,
        "Raised by the watcher itself (heartbeat), not by an audit event.",
        now,
    )
}

/// An alert that the watcher raises itself, not an audit event.
pub(crate) fn watcher_alert(
    rule_id: &str,
    severity: Severity,
    title: &str,
    summary: String,
    description: &str,
    now: i64,
) -> Alert {
    let id = format!("{rule_id}-{now}");
    Alert {
        rule_id: rule_id.to_owned(),
        severity,
        title: title.to_owned(),
        summary,
        event_id: id.clone(),
        event_ids: vec![id],
        effective_at: now,
        suppressed: 0,
        facts: Facts {
            description: Some(description.to_owned()),
            ..Facts::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Seconds;

    #[test]
    fn failing_and_silent_each_alert_once_then_recover() {
        let cfg = HeartbeatConfig {
            api_failing_for: Some(Seconds(60)),
            silent_for: Some(Seconds(600)),
        };
        let mut h = Heartbeat::new(Some(&cfg), 0);
        assert!(h.poll_failed(10, "500").is_empty());
        let a = h.poll_failed(70, "500");
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].rule_id, API_FAILING);
        assert!(h.poll_failed(130, "500").is_empty(), "once");
        let r = h.poll_ok(140, 5);
        assert_eq!(r[0].rule_id, API_RECOVERED);
        assert!(h.poll_ok(500, 0).is_empty());
        let s = h.poll_ok(740, 0);
        assert_eq!(s[0].rule_id, SILENT);
        assert!(h.poll_ok(800, 0).is_empty(), "once");
        assert_eq!(h.poll_ok(900, 2)[0].rule_id, EVENTS_BACK);
    }
}
