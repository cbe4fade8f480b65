//! The `email_digest` destination: the alerts routed to it wait in the
//! outbox until the end of their period (`every`, from `at` in the
//! business-hours zone, or from the first start), then go as one mail.
//!
//! The schedule and the queued alerts live in the state store, so a restart
//! loses nothing; a period without alerts sends nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::tz::TimeZone;
use lettre::message::Mailbox;
use minijinja::{Value, context};

use super::email::{self, Mailer, Templates, safe};
use super::format::{self, Style};
use super::{SendError, SharedStore, with_store};
use crate::alert::Alert;
use crate::rules::Severity;
use crate::store::{Delivery, StoreError};

/// Rows shown per rule; the rest are counted.
const ROWS_PER_RULE: usize = 25;
/// Alerts taken into one digest at most; the rest go in the next.
const MAX_ALERTS: usize = 5000;

/// When a digest goes out.
#[derive(Debug, Clone)]
pub struct Schedule {
    every: i64,
    /// `HH:MM` in `zone`.
    at: Option<(i8, i8)>,
    zone: TimeZone,
}

impl Schedule {
    /// `every` (default one day) from `at` (`HH:MM`) in `zone` (default
    /// UTC).
    pub fn new(
        every: Option<i64>,
        at: Option<&str>,
        zone: Option<&str>,
    ) -> Result<Schedule, String> {
        let every = every.unwrap_or(86_400);
        if every < 1 {
            return Err("`every` must be at least 1s".into());
        }
        let at = at
            .map(|t| {
                let (h, m) = t
                    .split_once(':')
                    .ok_or_else(|| format!("`at` is {t:?}: write the time of day as HH:MM"))?;
                match (h.parse::<i8>(), m.parse::<i8>()) {
                    (Ok(h), Ok(m)) if (0..24).contains(&h) && (0..60).contains(&m) => Ok((h, m)),
                    _ => Err(format!(
                        "`at` is {t:?}: write the time of day as HH:MM (00:00 to 23:59)"
                    )),
                }
            })
            .transpose()?;
        let zone = match zone {
            Some(z) => TimeZone::get(z).map_err(|_| format!("unknown time zone {z:?}"))?,
            None => TimeZone::UTC,
        };
        Ok(Schedule { every, at, zone })
    }

    /// The end of the period that `now` falls in (the first send time after
    /// `now`); `started` is the first start, for schedules without `at`.
    pub fn next_after(&self, now: i64, started: i64) -> i64 {
        let Some((h, m)) = self.at else {
            let periods = (now - started).div_euclid(self.every) + 1;
            return started + periods * self.every;
        };
        let Ok(t) = jiff::Timestamp::from_second(now) else {
            return now + self.every;
        };
        let today = t.to_zoned(self.zone.clone()).date();
        let anchor = today
            .at(h, m, 0, 0)
            .to_zoned(self.zone.clone())
            .map(|z| z.timestamp().as_second())
            .unwrap_or(now);
        if self.every % 86_400 == 0 {
            // Whole days: step in days of the zone, so a send stays at `at`
            // across daylight-saving changes.
            let days = self.every / 86_400;
            let mut date = today;
            let mut at_ts = anchor;
            while at_ts <= now {
                date = date
                    .checked_add(jiff::Span::new().days(days))
                    .unwrap_or(date);
                at_ts = date
                    .at(h, m, 0, 0)
                    .to_zoned(self.zone.clone())
                    .map(|z| z.timestamp().as_second())
                    .unwrap_or(at_ts + self.every);
            }
            return at_ts;
        }
        let periods = (now - anchor).div_euclid(self.every) + 1;
        anchor + periods * self.every
    }

    pub fn every(&self) -> i64 {
        self.every
    }
}

pub struct Digest {
    name: String,
    mailer: Mailer,
    to: Vec<Mailbox>,
    schedule: Schedule,
    templates: Arc<Templates>,
    style: Style,
}

impl Digest {
    pub fn new(
        name: &str,
        mailer: Mailer,
        to: Vec<Mailbox>,
        schedule: Schedule,
        templates: Arc<Templates>,
        style: Style,
    ) -> Digest {
        Digest {
            name: name.to_owned(),
            mailer,
            to,
            schedule,
            templates,
            style,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends the digest of the alerts waiting now, whatever the schedule
    /// says (`notify-test`, and the end of each period).
    pub async fn send_now(
        &self,
        alerts: &[Alert],
        since: i64,
        until: i64,
    ) -> Result<String, SendError> {
        let (subject, text, html) = render(&self.templates, alerts, since, until, &self.style)?;
        self.mailer.send(&self.to, &subject, text, html, None).await
    }

    /// Sends the digest if its period has ended (`watch --once`).
    pub async fn send_if_due(&self, store: &SharedStore) -> Result<(), StoreError> {
        self.tick(store, &mut Retrying::default()).await.map(drop)
    }

    /// One look at the schedule: sends the digest when its period has
    /// ended; returns when to look again.
    async fn tick(&self, store: &SharedStore, retry: &mut Retrying) -> Result<i64, StoreError> {
        let now = crate::time::now();
        let next = match with_store(store, |s| s.schedule(&self.name))? {
            Some(at) => at,
            None => {
                let at = self.schedule.next_after(now, now);
                with_store(store, |s| s.set_schedule(&self.name, at))?;
                tracing::info!(destination = %self.name, next = %crate::event::format_time(at), "digest scheduled");
                at
            }
        };
        if now < next || now < retry.not_before {
            return Ok(next.max(retry.not_before));
        }
        let due: Vec<Delivery> = with_store(store, |s| s.due(&self.name, now, MAX_ALERTS))?;
        let following = self.schedule.next_after(now, next);
        if due.is_empty() {
            with_store(store, |s| s.set_schedule(&self.name, following))?;
            return Ok(following);
        }
        let alerts: Vec<Alert> = due.iter().map(|d| d.alert.clone()).collect();
        let since = next - self.schedule.every;
        let ids: Vec<i64> = due.iter().map(|d| d.id).collect();
        match self.send_now(&alerts, since, now).await {
            Ok(answer) => {
                with_store(store, |s| {
                    s.sent_all(&ids, now)?;
                    s.set_schedule(&self.name, following)
                })?;
                *retry = Retrying::default();
                tracing::info!(destination = %self.name, alerts = ids.len(), answer = %answer, "digest delivered");
                Ok(following)
            }
            Err(SendError::Retry { message, after }) => {
                let wait = after.unwrap_or_else(|| super::backoff(retry.attempts));
                retry.attempts += 1;
                retry.not_before = now + wait.as_secs().max(1) as i64;
                with_store(store, |s| {
                    ids.iter()
                        .try_for_each(|id| s.retry_at(*id, retry.not_before, &message))
                })?;
                tracing::warn!(destination = %self.name, alerts = ids.len(), retry_in_s = retry.not_before - now, error = %crate::text::plain(&message), "digest not delivered; it stays queued");
                Ok(retry.not_before)
            }
            Err(SendError::Permanent(message)) => {
                with_store(store, |s| {
                    ids.iter().try_for_each(|id| s.failed(*id, &message))?;
                    s.set_schedule(&self.name, following)
                })?;
                tracing::error!(destination = %self.name, alerts = ids.len(), error = %crate::text::plain(&message), "the mail server refused the digest; its alerts are kept as failed (see `auditwatch outbox --failed`)");
                Ok(following)
            }
        }
    }
}

#[derive(Default)]
struct Retrying {
    attempts: u32,
    not_before: i64,
}

/// Sends `digest` at the end of each period until `stop` turns true.
pub async fn run(
    digest: Arc<Digest>,
    store: SharedStore,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), StoreError> {
    let mut retry = Retrying::default();
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        let next = digest.tick(&store, &mut retry).await?;
        let wait = (next - crate::time::now()).clamp(1, 60) as u64;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(wait)) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Subject, text and HTML of a digest: the alerts grouped by severity
/// (most severe first), then by rule (most alerts first).
pub fn render(
    templates: &Templates,
    alerts: &[Alert],
    since: i64,
    until: i64,
    style: &Style,
) -> Result<(String, String, String), SendError> {
    let mut by_severity: BTreeMap<std::cmp::Reverse<Severity>, BTreeMap<&str, Vec<&Alert>>> =
        BTreeMap::new();
    for a in alerts {
        by_severity
            .entry(std::cmp::Reverse(a.severity))
            .or_default()
            .entry(a.rule_id.as_str())
            .or_default()
            .push(a);
    }
    let mut counts = Vec::new();
    let groups: Vec<Value> = by_severity
        .into_iter()
        .map(|(std::cmp::Reverse(severity), rules)| {
            let count: usize = rules.values().map(Vec::len).sum();
            counts.push(format!("{count} {}", severity.as_str()));
            let mut rules: Vec<_> = rules.into_iter().collect();
            rules.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
            let rules: Vec<Value> = rules
                .into_iter()
                .map(|(rule_id, list)| {
                    let rows: Vec<Value> = list
                        .iter()
                        .take(ROWS_PER_RULE)
                        .map(|a| {
                            context! {
                                when => style.when(a.effective_at),
                                summary => safe(&a.summary),
                                who => a.facts.actor.as_deref().map(safe),
                            }
                        })
                        .collect();
                    context! {
                        rule_id => safe(rule_id),
                        title => safe(&list[0].title),
                        count => list.len(),
                        alerts => rows,
                        more => list.len().saturating_sub(ROWS_PER_RULE),
                    }
                })
                .collect();
            context! {
                severity => format::label(severity),
                color => email::color(severity),
                count,
                rules,
            }
        })
        .collect();
    // One row per incident of several alerts, in the order they began.
    let mut by_incident: BTreeMap<&str, Vec<&Alert>> = BTreeMap::new();
    for a in alerts {
        if let Some(i) = &a.facts.incident {
            by_incident.entry(i.as_str()).or_default().push(a);
        }
    }
    let mut incident_rows: Vec<(i64, Value)> = by_incident
        .into_values()
        .filter(|list| list.len() > 1)
        .map(|list| {
            let first = list.iter().map(|a| a.effective_at).min().unwrap_or(0);
            let last = list.iter().map(|a| a.effective_at).max().unwrap_or(0);
            let top = list
                .iter()
                .map(|a| a.severity)
                .max()
                .unwrap_or(Severity::Info);
            let mut titles: Vec<&str> = Vec::new();
            for a in &list {
                if !titles.contains(&a.title.as_str()) {
                    titles.push(&a.title);
                }
            }
            let who = list.iter().find_map(|a| a.facts.actor.as_deref());
            (
                first,
                context! {
                    when => style.when(first),
                    span => format::span(last - first),
                    count => list.len(),
                    severity => format::label(top),
                    color => email::color(top),
                    who => who.map(safe),
                    rules => safe(&titles.join(", ")),
                },
            )
        })
        .collect();
    incident_rows.sort_by_key(|(first, _)| *first);
    let incidents: Vec<Value> = incident_rows.into_iter().map(|(_, v)| v).collect();
    let total = alerts.len();
    let heading = format!(
        "auditwatch digest: {total} alert{}",
        if total == 1 { "" } else { "s" }
    );
    let subject = format!("{heading} ({})", counts.join(", "));
    let ctx = context! {
        subject => subject.clone(),
        heading,
        total,
        since => style.when(since),
        until => style.when(until),
        zone => style.zone_name(),
        groups,
        incidents,
    };
    let text = templates.render("digest.txt", ctx.clone())?;
    let html = templates.render("digest.html", ctx)?;
    Ok((subject, text, html))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> i64 {
        s.parse::<jiff::Timestamp>().unwrap().as_second()
    }

    #[test]
    fn an_incident_of_several_alerts_is_one_row() {
        let alert = |event: &str, rule: &str, at: i64, incident: &str| Alert {
            rule_id: rule.into(),
            severity: Severity::High,
            title: format!("Title of {rule}"),
            summary: format!("summary {event}"),
            event_id: event.into(),
            event_ids: vec![event.into()],
            effective_at: at,
            suppressed: 0,
            facts: crate::alert::Facts {
                actor: Some("bob@example.com".into()),
                incident: Some(incident.into()),
                ..Default::default()
            },
        };
        let alerts = [
            alert("e1", "r.owner", 1_000, "incident-e1"),
            alert("e2", "r.after_hours", 1_090, "incident-e1"),
            alert("e3", "r.other", 5_000, "incident-e3"),
        ];
        let (_, text, html) =
            render(&Templates::new(), &alerts, 0, 10_000, &Style::in_zone(None)).unwrap();
        let rows: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with("== Incidents"))
            .skip(1)
            .take_while(|l| l.starts_with("  - "))
            .collect();
        assert_eq!(rows.len(), 1, "{text}");
        assert!(
            rows[0].contains("2 alerts over 1m 30s")
                && rows[0].contains("bob@example.com")
                && rows[0].contains("Title of r.owner, Title of r.after_hours"),
            "{}",
            rows[0]
        );
        assert!(html.contains(
            "<h2 style=\"margin:8px 0;font-size:15px;letter-spacing:.06em\">Incidents</h2>"
        ));
    }

    #[test]
    fn daily_at_a_time_of_day_in_the_zone() {
        let s = Schedule::new(Some(86_400), Some("08:00"), Some("America/New_York")).unwrap();
        // 07:00 New York (12:00 UTC): today at 08:00.
        assert_eq!(
            s.next_after(ts("2026-12-02T12:00:00Z"), 0),
            ts("2026-12-02T13:00:00Z")
        );
        // 08:00 exactly: tomorrow.
        assert_eq!(
            s.next_after(ts("2026-12-02T13:00:00Z"), 0),
            ts("2026-12-03T13:00:00Z")
        );
        // Across the change to summer time, still 08:00 local.
        assert_eq!(
            s.next_after(ts("2026-03-07T14:00:00Z"), 0),
            ts("2026-03-08T12:00:00Z")
        );
    }

    #[test]
    fn every_without_at_runs_from_the_first_start() {
        let s = Schedule::new(Some(3_600), None, None).unwrap();
        assert_eq!(s.next_after(1_000, 1_000), 4_600);
        assert_eq!(s.next_after(4_600, 1_000), 8_200);
        let s = Schedule::new(Some(6 * 3_600), Some("00:30"), None).unwrap();
        assert_eq!(
            s.next_after(ts("2026-12-02T07:00:00Z"), 0),
            ts("2026-12-02T12:30:00Z")
        );
    }

    #[test]
    fn bad_schedules_are_refused() {
        assert!(Schedule::new(Some(86_400), Some("8am"), None).is_err());
        assert!(Schedule::new(Some(86_400), Some("24:00"), None).is_err());
        assert!(Schedule::new(Some(0), None, None).is_err());
    }
}
