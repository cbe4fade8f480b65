//! The watcher: poll the source window by window, evaluate every new event
//! once, and commit each poll's seen ids, alerts, rule state and high-water
//! mark in one transaction before any delivery is tried.
//!
//! A poll reads from `high-water mark - lookback` (first run: `start`) to
//! now, so events the API shows late are still seen; ids already evaluated
//! are dropped. A read that fails commits nothing and is tried again at the
//! next poll. A long backlog is read in ascending slices, each committed in
//! order.

pub mod heartbeat;
pub mod learn;
pub mod reload;

use std::sync::Arc;
use std::time::Duration;

use crate::config::StartAt;
use crate::engine::{Batch, Evaluator, RuleState};
use crate::event::Event;
use crate::notify::{Routes, SharedStore, with_store};
use crate::rules::RuleSet;
use crate::source::{Read, Source, SourceError, Window};
use crate::store::{Commit, Outgoing, StoreError};

/// Why the watcher stopped.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    State(String),
}

/// How the watcher reads its source.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// How far back each poll reads again, for late events.
    pub lookback: i64,
    /// Where the first run begins.
    pub start: StartAt,
    pub poll_interval: Duration,
}

/// What one poll did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Polled {
    /// Events the source showed.
    pub read: usize,
    /// Of those, events evaluated for the first time.
    pub evaluated: usize,
    pub alerts: usize,
    pub slices: usize,
    /// The newest `effective_at` the source showed.
    pub newest: Option<i64>,
    /// Of the events evaluated, those older than the high-water mark the
    /// poll started from: the API showed them late.
    pub late: usize,
}

pub struct Watcher {
    rules: Arc<RuleSet>,
    source: Source,
    store: SharedStore,
    routes: Routes,
    timing: Timing,
    state: RuleState,
    /// Woken after every commit that queued alerts.
    pub wake: Arc<tokio::sync::Notify>,
}

impl Watcher {
    /// Routes and queues alerts that no poll raised (the heartbeat's).
    pub fn raise(&self, alerts: Vec<crate::alert::Alert>) -> Result<(), WatchError> {
        let outgoing: Vec<Outgoing> = alerts
            .into_iter()
            .map(|alert| {
                let destinations = self.routes.of(&self.rules, &alert);
                Outgoing {
                    alert,
                    destinations,
                }
            })
            .collect();
        self.queue(outgoing)
    }

    /// Queues an alert that no poll raised for the default route alone
    /// (a failed reload's notice).
    pub fn raise_to_default(&self, alert: crate::alert::Alert) -> Result<(), WatchError> {
        let destinations = self.routes.default_route().to_vec();
        self.queue(vec![Outgoing {
            alert,
            destinations,
        }])
    }

    fn queue(&self, outgoing: Vec<Outgoing>) -> Result<(), WatchError> {
        for o in &outgoing {
            crate::telemetry::telemetry().alert(&o.alert.rule_id, o.alert.severity.as_str());
            tracing::warn!(
                rule_id = %o.alert.rule_id,
                event_id = %o.alert.event_id,
                summary = %crate::text::plain(&o.alert.summary),
                destinations = %o.destinations.join(","),
                "watcher alert raised"
            );
        }
        with_store(&self.store, |s| s.enqueue(&outgoing, crate::time::now()))?;
        self.wake.notify_waiters();
        Ok(())
    }

    /// The rules in force.
    pub fn rules(&self) -> &Arc<RuleSet> {
        &self.rules
    }

    /// Puts `rules` in force from the next poll on, keeping the threshold
    /// and suppression state of every rule whose id and logic are
    /// unchanged; returns the ids of the rules whose state was dropped.
    pub fn reload(&mut self, rules: Arc<RuleSet>) -> Vec<String> {
        let dropped = self.state.rebind(&rules);
        self.rules = rules;
        dropped
    }

    /// Sets up a watcher on an open store, restoring the rules' state.
    pub fn new(
        rules: Arc<RuleSet>,
        source: Source,
        store: SharedStore,
        routes: Routes,
        timing: Timing,
    ) -> Result<Watcher, WatchError> {
        let checkpoint = with_store(&store, |s| s.checkpoint())?;
        let mut state = match &checkpoint.rule_state {
            Some(saved) => {
                let (state, dropped) = RuleState::restore(saved, &rules).map_err(|e| {
                    WatchError::State(format!("{e}: delete the state file to start over"))
                })?;
                for id in dropped {
                    tracing::info!(
                        rule_id = %id,
                        "threshold and suppression state dropped: the rule is gone or its logic changed"
                    );
                }
                state
            }
            None => RuleState::new(),
        };
        state.tolerate_late(timing.lookback);
        Ok(Watcher {
            rules,
            source,
            store,
            routes,
            timing,
            state,
            wake: Arc::new(tokio::sync::Notify::new()),
        })
    }

    /// One poll: reads every window from the high-water mark less the
    /// lookback to now, and commits each.
    pub async fn poll(&mut self) -> Result<Polled, WatchError> {
        let checkpoint = with_store(&self.store, |s| s.checkpoint())?;
        let now = crate::time::now();
        let since = match checkpoint.high_water {
            Some(h) => h - self.timing.lookback,
            None => self.timing.start.resolve(now),
        };
        let windows = slices(since, now, self.source.slice());
        let mut polled = Polled {
            slices: windows.len(),
            ..Polled::default()
        };
        let started = std::time::Instant::now();
        let took = |started: std::time::Instant| {
            crate::telemetry::telemetry()
                .poll_duration
                .observe(started.elapsed().as_secs_f64())
        };
        for (i, window) in windows.iter().enumerate() {
            let read = match self.source.read(*window).await {
                Ok(r) => r,
                Err(e) => {
                    took(started);
                    return Err(e.into());
                }
            };
            let done = self.commit(read, *window, checkpoint.high_water, now)?;
            polled.read += done.read;
            polled.evaluated += done.evaluated;
            polled.alerts += done.alerts;
            polled.newest = polled.newest.max(done.newest);
            polled.late += done.late;
            if windows.len() > 1 {
                tracing::info!(
                    slice = i + 1,
                    of = windows.len(),
                    from = %crate::event::format_time(window.since),
                    events = done.evaluated,
                    alerts = done.alerts,
                    elapsed_s = started.elapsed().as_secs(),
                    "backlog slice committed"
                );
            }
        }
        took(started);
        crate::telemetry::telemetry()
            .late_events
            .inc_by(polled.late as u64);
        Ok(polled)
    }

    /// Evaluates what a window's read showed for the first time and commits it.
    fn commit(
        &mut self,
        read: Read,
        window: Window,
        high_water: Option<i64>,
        now: i64,
    ) -> Result<Polled, WatchError> {
        if read.bad > 0 {
            tracing::warn!(
                items = read.bad,
                "items that are not audit log events were skipped"
            );
        }
        let ids: Vec<&str> = read.events.iter().map(|e| e.id.as_str()).collect();
        let seen = with_store(&self.store, |s| s.seen(&ids))?;
        let fresh: Vec<_> = read
            .events
            .iter()
            .filter(|e| !seen.contains(&e.id))
            .collect();
        let late = match high_water {
            Some(h) => fresh.iter().filter(|e| e.effective_at < h).count(),
            None => 0,
        };
        let events: Vec<Event<'_>> = fresh
            .iter()
            .filter_map(|e| Event::parse(&e.json).ok())
            .collect();
        let batch = Batch::new(events);
        let mut evaluator = Evaluator::new(&self.rules);
        if self.routes.threads_repeats() {
            evaluator = evaluator.with_repeats();
        }
        let evaluation = evaluator.evaluate(&batch, &mut self.state);
        crate::telemetry::telemetry().evaluated(&self.rules, &evaluation.stats);
        for e in &evaluation.errors {
            crate::telemetry::telemetry().evaluation_error(&self.rules.rules()[e.rule].id);
            tracing::warn!(
                rule_id = %self.rules.rules()[e.rule].id,
                event_id = %crate::text::plain(&e.event_id),
                error = %crate::text::plain(&e.message),
                "a rule failed on an event"
            );
        }
        let newest = read.events.iter().map(|e| e.effective_at).max();
        // A bounded slice has been read to its end; an open window up to its
        // newest event.
        let reached = match window.until {
            Some(until) => Some(until),
            None => newest,
        };
        let high_water = high_water.max(reached).unwrap_or(window.since);
        self.state.prune(&self.rules, high_water);
        let mut alerts: Vec<Outgoing> = Vec::with_capacity(evaluation.alerts.len());
        for alert in evaluation.alerts {
            let destinations = self.routes.of(&self.rules, &alert);
            if alert.facts.repeat {
                // Only destinations that thread repeats take them.
                if !destinations.is_empty() {
                    alerts.push(Outgoing {
                        alert,
                        destinations,
                    });
                }
                continue;
            }
            crate::telemetry::telemetry().alert(&alert.rule_id, alert.severity.as_str());
            tracing::info!(
                rule_id = %alert.rule_id,
                event_id = %crate::text::plain(&alert.event_id),
                severity = %alert.severity,
                destinations = %destinations.join(","),
                "alert raised"
            );
            if destinations.is_empty() {
                tracing::warn!(rule_id = %alert.rule_id, "the alert has no destination: set `routing.default`");
            }
            alerts.push(Outgoing {
                alert,
                destinations,
            });
        }
        let raised = alerts.iter().filter(|o| !o.alert.facts.repeat).count();
        let done = Polled {
            read: read.events.len(),
            evaluated: batch.len(),
            alerts: raised,
            slices: 1,
            newest,
            late,
        };
        let commit = Commit {
            events: batch
                .events()
                .iter()
                .map(|e| (e.id().to_owned(), e.effective_at()))
                .collect(),
            alerts,
            rule_state: self.state.save(),
            high_water,
            forget_before: high_water - self.timing.lookback,
            now,
        };
        tracing::debug!(
            events = commit.events.len(),
            alerts = commit.alerts.len(),
            "committing"
        );
        with_store(&self.store, |s| s.commit(&commit))?;
        if !commit.alerts.is_empty() {
            self.wake.notify_waiters();
        }
        Ok(done)
    }
}

/// The windows of one poll from `since` to `now`: one open window, or
/// ascending slices of `slice` seconds ending in an open one.
fn slices(since: i64, now: i64, slice: Option<i64>) -> Vec<Window> {
    let Some(slice) = slice.filter(|s| now - since > *s) else {
        return vec![Window { since, until: None }];
    };
    let mut out = Vec::new();
    let mut t = since;
    while now - t > slice {
        out.push(Window {
            since: t,
            until: Some(t + slice),
        });
        t += slice;
    }
    out.push(Window {
        since: t,
        until: None,
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backlog_is_cut_into_ascending_slices_ending_open() {
        assert_eq!(
            slices(0, 100, Some(1000)),
            [Window {
                since: 0,
                until: None
            }]
        );
        assert_eq!(
            slices(0, 100, None),
            [Window {
                since: 0,
                until: None
            }]
        );
        let w = slices(0, 250, Some(100));
        assert_eq!(
            w,
            [
                Window {
                    since: 0,
                    until: Some(100)
                },
                Window {
                    since: 100,
                    until: Some(200)
                },
                Window {
                    since: 200,
                    until: None
                },
            ]
        );
    }
}
