//! What the watcher and the delivery workers report as they go: counters
//! and gauges in Prometheus form, and the health of the last polls.
//!
//! One set per process ([`telemetry`]); recording costs an atomic add.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Mutex, OnceLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    pub rule: String,
    pub severity: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabel {
    pub rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    pub destination: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DestinationLabel {
    pub destination: String,
}

/// The process's metrics and health.
pub struct Telemetry {
    pub registry: Registry,
    pub polls: Family<ResultLabel, Counter>,
    pub events_polled: Counter,
    pub events_evaluated: Counter,
    pub alerts: Family<RuleLabels, Counter>,
    pub evaluation_errors: Family<RuleLabel, Counter>,
    pub deliveries: Family<DeliveryLabels, Counter>,
    pub outbox: Family<DestinationLabel, Gauge>,
    pub last_poll_ok: Gauge,
    pub api_lag: Gauge,
    pub poll_duration: Histogram,
    pub late_events: Counter,
    pub matches: Family<RuleLabel, Counter>,
    pub suppressed: Family<RuleLabels, Counter>,
    pub reloads: Family<ResultLabel, Counter>,
    pub rules_loaded: Gauge,
    /// Unix seconds of the last poll that committed; 0 before the first.
    last_ok: AtomicI64,
    ready: AtomicBool,
    last_error: Mutex<Option<String>>,
    /// When the last reload ended, and its error when it failed.
    last_reload: Mutex<Option<(i64, Option<String>)>>,
}

/// One rule's counts since the start.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RuleCounts {
    pub matched: u64,
    pub alerts: u64,
    pub suppressed: u64,
    pub errors: u64,
}

/// The metrics and health of this process.
pub fn telemetry() -> &'static Telemetry {
    static T: OnceLock<Telemetry> = OnceLock::new();
    T.get_or_init(Telemetry::new)
}

impl Telemetry {
    fn new() -> Telemetry {
        let mut registry = Registry::with_prefix("auditwatch");
        let t = Telemetry {
            registry: Registry::default(),
            polls: Family::default(),
            events_polled: Counter::default(),
            events_evaluated: Counter::default(),
            alerts: Family::default(),
            evaluation_errors: Family::default(),
            deliveries: Family::default(),
            outbox: Family::default(),
            last_poll_ok: Gauge::default(),
            api_lag: Gauge::default(),
            poll_duration: Histogram::new([
                0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
            ]),
            late_events: Counter::default(),
            matches: Family::default(),
            suppressed: Family::default(),
            reloads: Family::default(),
            rules_loaded: Gauge::default(),
            last_ok: AtomicI64::new(0),
            ready: AtomicBool::new(false),
            last_error: Mutex::new(None),
            last_reload: Mutex::new(None),
        };
        registry.register(
            "polls",
            "Polls of the audit log, by result",
            t.polls.clone(),
        );
        registry.register(
            "events_polled",
            "Events the source showed",
            t.events_polled.clone(),
        );
        registry.register(
            "events_evaluated",
            "Events evaluated for the first time",
            t.events_evaluated.clone(),
        );
        registry.register(
            "alerts",
            "Alerts raised, by rule and severity",
            t.alerts.clone(),
        );
        registry.register(
            "evaluation_errors",
            "Rules that failed on an event, by rule",
            t.evaluation_errors.clone(),
        );
        registry.register(
            "deliveries",
            "Delivery attempts, by destination and outcome (sent, retried, failed)",
            t.deliveries.clone(),
        );
        registry.register(
            "outbox_depth",
            "Deliveries waiting in the outbox, by destination",
            t.outbox.clone(),
        );
        registry.register(
            "last_successful_poll_timestamp_seconds",
            "When the last poll committed (Unix seconds)",
            t.last_poll_ok.clone(),
        );
        registry.register(
            "api_lag_seconds",
            "Now minus the newest effective_at the audit log showed",
            t.api_lag.clone(),
        );
        registry.register(
            "poll_duration_seconds",
            "How long a poll took, committed or failed",
            t.poll_duration.clone(),
        );
        registry.register(
            "late_events",
            "Events evaluated that were older than the high-water mark when read (shown late by the API)",
            t.late_events.clone(),
        );
        registry.register(
            "matches",
            "Events that passed a rule's match, condition and script, by rule",
            t.matches.clone(),
        );
        registry.register(
            "alerts_suppressed",
            "Alerts quieted by suppress, by rule and severity",
            t.suppressed.clone(),
        );
        registry.register(
            "reloads",
            "Rule reloads, by result (ok, failed)",
            t.reloads.clone(),
        );
        registry.register("rules", "Rules in force", t.rules_loaded.clone());
        Telemetry { registry, ..t }
    }

    /// A poll committed; `newest` is the newest event time it saw.
    pub fn poll_ok(&self, now: i64, read: usize, evaluated: usize, newest: Option<i64>) {
        self.polls
            .get_or_create(&ResultLabel {
                result: "ok".into(),
            })
            .inc();
        self.events_polled.inc_by(read as u64);
        self.events_evaluated.inc_by(evaluated as u64);
        self.last_poll_ok.set(now);
        if let Some(n) = newest {
            self.api_lag.set(now - n);
        }
        self.last_ok.store(now, Ordering::Relaxed);
        self.ready.store(true, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// A poll failed (nothing committed).
    pub fn poll_failed(&self, kind: &str, message: &str) {
        self.polls
            .get_or_create(&ResultLabel {
                result: kind.to_owned(),
            })
            .inc();
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(message.to_owned());
    }

    /// What one evaluation matched and quieted, by rule.
    pub fn evaluated(&self, rules: &crate::rules::RuleSet, stats: &[crate::engine::RuleStats]) {
        for (rule, s) in rules.rules().iter().zip(stats) {
            if s.matched > 0 {
                self.matches
                    .get_or_create(&RuleLabel {
                        rule: rule.id.clone(),
                    })
                    .inc_by(s.matched);
            }
            if s.suppressed > 0 {
                self.suppressed
                    .get_or_create(&RuleLabels {
                        rule: rule.id.clone(),
                        severity: rule.severity.as_str().to_owned(),
                    })
                    .inc_by(s.suppressed);
            }
        }
    }

    /// The rules were loaded at the start: `count` are in force.
    pub fn rules_loaded(&self, count: usize) {
        self.rules_loaded.set(count as i64);
    }

    /// A reload ended at `now`: `Ok(n)` with `n` rules in force, or the
    /// first of its problems.
    pub fn reloaded(&self, now: i64, result: Result<usize, String>) {
        self.reloads
            .get_or_create(&ResultLabel {
                result: if result.is_ok() { "ok" } else { "failed" }.into(),
            })
            .inc();
        let error = match result {
            Ok(n) => {
                self.rules_loaded.set(n as i64);
                None
            }
            Err(e) => Some(e),
        };
        *self.last_reload.lock().unwrap_or_else(|p| p.into_inner()) = Some((now, error));
    }

    /// When the last reload ended, and its first problem when it failed.
    pub fn last_reload(&self) -> Option<(i64, Option<String>)> {
        self.last_reload
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Rule `rule`'s counts since the start.
    pub fn counts(&self, rule: &str, severity: &str) -> RuleCounts {
        let with_severity = RuleLabels {
            rule: rule.to_owned(),
            severity: severity.to_owned(),
        };
        let by_rule = RuleLabel {
            rule: rule.to_owned(),
        };
        // Read only: a look at the page adds no series to /metrics.
        let read =
            |family: &Family<RuleLabel, Counter>| family.get(&by_rule).map_or(0, |c| c.get());
        let read_sev = |family: &Family<RuleLabels, Counter>| {
            family.get(&with_severity).map_or(0, |c| c.get())
        };
        RuleCounts {
            matched: read(&self.matches),
            alerts: read_sev(&self.alerts),
            suppressed: read_sev(&self.suppressed),
            errors: read(&self.evaluation_errors),
        }
    }

    pub fn alert(&self, rule: &str, severity: &str) {
        self.alerts
            .get_or_create(&RuleLabels {
                rule: rule.to_owned(),
                severity: severity.to_owned(),
            })
            .inc();
    }

    pub fn evaluation_error(&self, rule: &str) {
        self.evaluation_errors
            .get_or_create(&RuleLabel {
                rule: rule.to_owned(),
            })
            .inc();
    }

    pub fn delivery(&self, destination: &str, outcome: &str) {
        self.deliveries
            .get_or_create(&DeliveryLabels {
                destination: destination.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Unix seconds of the last poll that committed, if any.
    pub fn last_ok(&self) -> Option<i64> {
        Some(self.last_ok.load(Ordering::Relaxed)).filter(|&t| t > 0)
    }

    /// Whether a poll has committed since the start.
    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// The error of the last poll, when it failed.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
