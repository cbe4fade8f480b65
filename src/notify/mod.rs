//! Delivering alerts: which destinations an alert goes to (routing), the
//! [`Destination`] trait every kind implements, and the worker that takes a
//! destination's deliveries from the outbox until each is accepted.
//!
//! One worker runs per destination, so a failing destination never holds
//! up the others. A delivery leaves the outbox only after its destination
//! accepted it (at least once); a permanent refusal is logged once and kept
//! as failed; everything else is retried with capped exponential backoff.

pub mod digest;
pub mod email;
pub mod format;
pub mod slack;
mod stdout;
pub mod webhook;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use stdout::Stdout;

use crate::alert::Alert;
use crate::config::{Config, DestinationConfig};
use crate::rules::{RuleSet, Severity};
use crate::store::{Delivery, Store, StoreError};

/// A boxed future, for the one async method of [`Destination`].
pub type Sending<'a> = Pin<Box<dyn Future<Output = Result<Accepted, SendError>> + Send + 'a>>;

/// One delivery handed to its destination.
pub struct Parcel<'a> {
    pub delivery: &'a Delivery,
    /// For a repeat: the thread of the alert it repeats, when known.
    pub thread: Option<&'a str>,
    /// The alerts of its incident before it, for destinations that show
    /// the timeline (see [`Destination::shows_timeline`]).
    pub earlier: Earlier<'a>,
}

/// The alerts of an incident before the one being sent: the last
/// [`TIMELINE_LIMIT`] of them, oldest first, and how many there are in all.
#[derive(Debug, Clone, Copy, Default)]
pub struct Earlier<'a> {
    pub alerts: &'a [Alert],
    pub total: u64,
}

/// How many earlier alerts of an incident a message lists at most.
pub const TIMELINE_LIMIT: usize = 20;

/// What a destination answered when it accepted a delivery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accepted {
    /// The thread the message opened (a Slack message `ts`).
    pub thread: Option<String>,
    /// The destination's answer, in words (`notify-test` prints it).
    pub answer: String,
}

impl Accepted {
    pub fn answer(text: &str) -> Accepted {
        Accepted {
            thread: None,
            answer: text.to_owned(),
        }
    }
}

/// Why a destination did not accept an alert.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth trying again (after `after` when the destination said so).
    #[error("{message}")]
    Retry {
        message: String,
        after: Option<Duration>,
    },
    /// Trying again cannot help (a bad token, an unknown channel).
    #[error("{0}")]
    Permanent(String),
}

/// A place alerts go.
pub trait Destination: Send + Sync {
    /// The destination's name in the config.
    fn name(&self) -> &str;
    /// Delivers one alert; `Ok` once the destination accepted it.
    fn send<'a>(&'a self, parcel: &'a Parcel<'a>) -> Sending<'a>;
    /// The least time between two sends, for destinations that limit rate.
    fn min_interval(&self) -> Duration {
        Duration::ZERO
    }
    /// Whether repeats go as replies in the thread of their alert.
    fn threads_repeats(&self) -> bool {
        false
    }
    /// Whether messages list the earlier alerts of their incident (mail,
    /// where there is no thread to scroll up in).
    fn shows_timeline(&self) -> bool {
        false
    }
}

/// The URL of config key `key`, which must be `https://`: tokens and
/// secrets in it would travel in the clear over `http://`, allowed only to
/// this machine.
pub(crate) fn secure_url(url: &str, key: &str) -> Result<url::Url, String> {
    let parsed: url::Url = url.parse().map_err(|_| format!("`{key}` is not a URL"))?;
    let loopback = match parsed.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if loopback => Ok(parsed),
        _ => Err(format!(
            "`{key}` must be an https:// URL (http:// only to a loopback address)"
        )),
    }
}

/// The store, shared by the watcher and the delivery workers.
pub type SharedStore = Arc<Mutex<Box<dyn Store>>>;

/// The `rule_id` under which the Slack thread of each incident is kept.
const INCIDENT_THREADS: &str = "auditwatch.incident";

/// Runs a store operation without holding up the async runtime's threads.
pub fn with_store<T>(store: &SharedStore, f: impl FnOnce(&mut dyn Store) -> T) -> T {
    tokio::task::block_in_place(|| {
        let mut guard = store.lock().unwrap_or_else(|p| p.into_inner());
        f(guard.as_mut())
    })
}

/// Which destinations each alert goes to.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    default: Vec<String>,
    by_severity: BTreeMap<Severity, Vec<String>>,
    /// Every alert to these instead (a dry run's stdout).
    only: Option<Vec<String>>,
    /// Destinations that take repeats quieted by `suppress` (as replies in
    /// the thread of the alert they repeat).
    threads: std::collections::BTreeSet<String>,
}

impl Routes {
    pub fn new(config: &Config) -> Routes {
        Routes::of_routing(
            &config.routing,
            config
                .destinations
                .iter()
                .filter(|(_, d)| d.threads_repeats())
                .map(|(n, _)| n.clone())
                .collect(),
        )
    }

    /// Routes from a `routing` section, with the destinations that thread
    /// repeats.
    pub fn of_routing(
        routing: &crate::config::RoutingConfig,
        threads: std::collections::BTreeSet<String>,
    ) -> Routes {
        Routes {
            default: routing.default.iter().map(|d| d.value.clone()).collect(),
            by_severity: routing
                .severity
                .iter()
                .map(|(s, ds)| (*s, ds.iter().map(|d| d.value.clone()).collect()))
                .collect(),
            only: None,
            threads,
        }
    }

    /// The destinations of `routing.default`.
    pub fn default_route(&self) -> &[String] {
        self.only.as_deref().unwrap_or(&self.default)
    }

    /// Whether any destination takes repeats.
    pub fn threads_repeats(&self) -> bool {
        !self.threads.is_empty()
    }

    /// Every alert to `destination` alone.
    pub fn only(destination: &str) -> Routes {
        Routes {
            only: Some(vec![destination.to_owned()]),
            ..Routes::default()
        }
    }

    /// The destinations of `alert`: its rule's `notify`, else its
    /// severity's route, else the default route. A repeat goes only to
    /// those of them that thread repeats.
    pub fn of(&self, rules: &RuleSet, alert: &Alert) -> Vec<String> {
        let mut out = self.of_rule(rules, &alert.rule_id, alert.severity);
        if alert.facts.repeat {
            out.retain(|d| self.threads.contains(d));
        }
        out
    }

    /// The destinations of an alert of `rule_id` with `severity`.
    pub fn of_rule(&self, rules: &RuleSet, rule_id: &str, severity: Severity) -> Vec<String> {
        if let Some(only) = &self.only {
            return only.clone();
        }
        let rule = rules.rules().iter().find(|r| r.id == rule_id);
        if let Some(notify) = rule.and_then(|r| r.notify.as_ref()) {
            return notify.clone();
        }
        self.by_severity
            .get(&severity)
            .unwrap_or(&self.default)
            .clone()
    }
}

/// Checks that every rule's `notify` names a destination of the config.
pub fn check_rule_destinations(rules: &RuleSet, config: &Config) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    for rule in rules.rules() {
        for name in rule.notify.iter().flatten() {
            if !config.destinations.contains_key(name) {
                problems.push(format!(
                    "{}:{}:{}: rule {} notifies destination `{name}`, which is not defined in {} (destinations: {})",
                    rule.file.display(),
                    rule.line,
                    rule.column,
                    rule.id,
                    config.path.display(),
                    config.destinations.keys().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Why the destinations of a config cannot be set up.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SetupError(pub String);

/// The destinations of a config, ready to deliver.
pub struct Destinations {
    /// Destinations that take alerts one by one.
    pub immediate: Vec<Arc<dyn Destination>>,
    pub digests: Vec<Arc<digest::Digest>>,
}

/// Builds every destination of the config.
pub fn destinations(config: &Config) -> Result<Destinations, SetupError> {
    let style = format::Style::of(config);
    let templates = Arc::new(email::Templates::new());
    let zone = config.business_hours.as_ref().map(|b| b.timezone.as_str());
    let mailer = || -> Result<email::Mailer, SetupError> {
        let smtp = config
            .smtp
            .as_ref()
            .ok_or_else(|| SetupError("email destinations need an `smtp` section".into()))?;
        email::Mailer::new(smtp).map_err(|e| SetupError(e.to_string()))
    };
    let mut out = Destinations {
        immediate: Vec::new(),
        digests: Vec::new(),
    };
    for (name, d) in &config.destinations {
        let fail = |e: &dyn std::fmt::Display| SetupError(e.to_string());
        match d {
            DestinationConfig::Stdout {} => out.immediate.push(Arc::new(Stdout::new(name))),
            DestinationConfig::Slack {
                webhook_url,
                bot_token,
                channel,
                api_url,
            } => out.immediate.push(Arc::new(
                slack::Slack::new(
                    name,
                    webhook_url.as_ref(),
                    bot_token.as_ref(),
                    channel.as_deref(),
                    api_url.as_deref(),
                    style.clone(),
                )
                .map_err(|e| fail(&e))?,
            )),
            DestinationConfig::Email { to } => out.immediate.push(Arc::new(email::Email::new(
                name,
                mailer()?,
                email::recipients(name, to).map_err(|e| fail(&e))?,
                templates.clone(),
                style.clone(),
            ))),
            DestinationConfig::EmailDigest { to, every, at } => {
                let schedule = digest::Schedule::new(every.map(|e| e.0), at.as_deref(), zone)
                    .map_err(|e| SetupError(format!("destination `{name}`: {e}")))?;
                out.digests.push(Arc::new(digest::Digest::new(
                    name,
                    mailer()?,
                    email::recipients(name, to).map_err(|e| fail(&e))?,
                    schedule,
                    templates.clone(),
                    style.clone(),
                )));
            }
            DestinationConfig::Webhook { url, headers } => out.immediate.push(Arc::new(
                webhook::Webhook::new(name, url, headers).map_err(|e| fail(&e))?,
            )),
        }
    }
    Ok(out)
}

/// Retry delays of a delivery: 1 s doubling to 10 minutes, with full jitter.
pub(crate) fn backoff(attempts: u32) -> Duration {
    let capped = Duration::from_secs(1u64 << attempts.min(10)).min(Duration::from_secs(600));
    capped.mul_f64(0.5 + fastrand::f64() / 2.0)
}

/// What one round of deliveries came to.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
}

/// Delivers what is queued for `dest`, strictly oldest first: a delivery
/// waiting for its retry holds back the ones after it (so alerts arrive in
/// order, and a repeat never arrives before the alert it threads under). A
/// failure that may pass ends the round, so a destination that is down is
/// not hammered.
pub async fn deliver_due(dest: &dyn Destination, store: &SharedStore) -> Result<Round, StoreError> {
    let mut round = Round::default();
    loop {
        let now = crate::time::now();
        let queued = with_store(store, |s| s.due(dest.name(), i64::MAX, 100))?;
        if queued.is_empty() {
            return Ok(round);
        }
        for d in queued {
            if d.next_attempt_at > now {
                return Ok(round);
            }
            let started = std::time::Instant::now();
            let facts = &d.alert.facts;
            let thread = match (&facts.key, &facts.incident) {
                _ if !dest.threads_repeats() => None,
                (Some(key), _) if facts.repeat => {
                    with_store(store, |s| s.thread(dest.name(), &d.alert.rule_id, key))?
                }
                // The other alerts of an incident go in its first one's thread.
                (_, Some(incident)) if !facts.repeat => {
                    with_store(store, |s| s.thread(dest.name(), INCIDENT_THREADS, incident))?
                }
                _ => None,
            };
            let (earlier, total) = match &facts.incident {
                Some(incident) if dest.shows_timeline() && !facts.repeat => {
                    with_store(store, |s| {
                        s.incident_before(incident, d.alert_id, TIMELINE_LIMIT)
                    })?
                }
                _ => (Vec::new(), 0),
            };
            let parcel = Parcel {
                delivery: &d,
                thread: thread.as_deref(),
                earlier: Earlier {
                    alerts: &earlier,
                    total,
                },
            };
            let result = dest.send(&parcel).await;
            let now = crate::time::now();
            match result {
                Ok(accepted) => {
                    with_store(store, |s| {
                        s.sent(d.id, now)?;
                        let facts = &d.alert.facts;
                        if let Some(ts) = &accepted.thread
                            && !facts.repeat
                            && dest.threads_repeats()
                        {
                            if let Some(key) = &facts.key {
                                s.set_thread(dest.name(), &d.alert.rule_id, key, ts, now)?;
                            }
                            if let Some(incident) = &facts.incident
                                && thread.is_none()
                            {
                                s.set_thread(dest.name(), INCIDENT_THREADS, incident, ts, now)?;
                            }
                        }
                        Ok(())
                    })?;
                    round.sent += 1;
                    crate::telemetry::telemetry().delivery(dest.name(), "sent");
                    tracing::info!(
                        destination = dest.name(),
                        delivery = d.id,
                        alert = d.alert_id,
                        rule_id = %d.alert.rule_id,
                        event_id = %crate::text::plain(&d.alert.event_id),
                        latency_s = now - d.queued_at,
                        "alert delivered"
                    );
                }
                Err(SendError::Retry { message, after }) => {
                    let wait = after.unwrap_or_else(|| backoff(d.attempts));
                    let at = now + wait.as_secs().max(1) as i64;
                    with_store(store, |s| s.retry_at(d.id, at, &message))?;
                    round.retried += 1;
                    crate::telemetry::telemetry().delivery(dest.name(), "retried");
                    tracing::warn!(
                        destination = dest.name(),
                        delivery = d.id,
                        attempts = d.attempts + 1,
                        retry_in_s = at - now,
                        error = %crate::text::plain(&message),
                        "delivery failed; it stays queued"
                    );
                    return Ok(round);
                }
                Err(SendError::Permanent(message)) => {
                    with_store(store, |s| s.failed(d.id, &message))?;
                    round.failed += 1;
                    crate::telemetry::telemetry().delivery(dest.name(), "failed");
                    tracing::error!(
                        destination = dest.name(),
                        delivery = d.id,
                        error = %crate::text::plain(&message),
                        "the destination refused the alert; kept as failed (see `auditwatch outbox --failed`)"
                    );
                }
            }
            let gap = dest.min_interval().saturating_sub(started.elapsed());
            if !gap.is_zero() {
                tokio::time::sleep(gap).await;
            }
        }
    }
}

/// Delivers `dest`'s alerts until `stop` turns true: after every commit
/// (`wake`), when a retry falls due, and at least every `idle`.
pub async fn run_worker(
    dest: Arc<dyn Destination>,
    store: SharedStore,
    wake: Arc<tokio::sync::Notify>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), StoreError> {
    let idle = Duration::from_secs(60);
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        deliver_due(dest.as_ref(), &store).await?;
        let next = with_store(&store, |s| s.next_due(dest.name()))?;
        let wait = next.map_or(idle, |at| {
            Duration::from_secs((at - crate::time::now()).clamp(0, idle.as_secs() as i64) as u64)
        });
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait.max(Duration::from_millis(200))) => {}
            _ = stop.changed() => {}
        }
    }
}
