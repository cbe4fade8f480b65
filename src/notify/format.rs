//! What every destination says the same way: severity labels, times in the
//! business-hours zone and UTC, durations, and text cut to a limit.
//!
//! Escaping for each medium lives with the medium; the texts made here are
//! still untrusted where they hold values from events.

use jiff::tz::TimeZone;

use crate::alert::Alert;
use crate::config::Config;
use crate::rules::Severity;

/// How alerts are written for people: the time zone their times are shown in.
#[derive(Debug, Clone, Default)]
pub struct Style {
    zone: Option<(String, TimeZone)>,
}

impl Style {
    /// Times in the business-hours zone of `config` (and UTC).
    pub fn of(config: &Config) -> Style {
        Style::in_zone(config.business_hours.as_ref().map(|b| b.timezone.as_str()))
    }

    /// Times in `zone` (an IANA name, already checked by the config) and UTC.
    pub fn in_zone(zone: Option<&str>) -> Style {
        Style {
            zone: zone.and_then(|z| TimeZone::get(z).ok().map(|tz| (z.to_owned(), tz))),
        }
    }

    /// `2026-12-02 09:14:05 EST (14:14:05 UTC)`, or the UTC time alone.
    pub fn when(&self, ts: i64) -> String {
        let Ok(t) = jiff::Timestamp::from_second(ts) else {
            return ts.to_string();
        };
        match &self.zone {
            Some((_, tz)) => format!(
                "{} ({} UTC)",
                t.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M:%S %Z"),
                t.strftime("%H:%M:%S")
            ),
            None => t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
        }
    }

    /// The zone times are shown in.
    pub fn zone_name(&self) -> &str {
        self.zone.as_ref().map_or("UTC", |(n, _)| n)
    }
}

/// `CRITICAL`, `HIGH`, …
pub fn label(severity: Severity) -> String {
    severity.as_str().to_ascii_uppercase()
}

/// A colored mark for a severity.
pub fn mark(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "\u{1F534}",
        Severity::High => "\u{1F7E0}",
        Severity::Medium => "\u{1F7E1}",
        Severity::Low => "\u{1F535}",
        Severity::Info => "\u{26AA}",
    }
}

/// `[HIGH] API key created outside business hours`
pub fn subject(alert: &Alert) -> String {
    format!("[{}] {}", label(alert.severity), alert.title)
}

/// `3m 20s`, `2h`, `1d 4h`.
pub fn span(secs: i64) -> String {
    let secs = secs.max(0);
    let parts = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    let mut out = Vec::new();
    let mut rest = secs;
    for (unit, name) in parts {
        if rest >= unit {
            out.push(format!("{}{name}", rest / unit));
            rest %= unit;
        }
        if out.len() == 2 {
            break;
        }
    }
    if out.is_empty() {
        "0s".to_owned()
    } else {
        out.join(" ")
    }
}

/// For a threshold alert: `5 events in 3m 20s (window 10m)`.
pub fn threshold(alert: &Alert) -> Option<String> {
    let first = alert.facts.first_at?;
    let n = alert.event_ids.len();
    let mut s = format!(
        "{n} event{} in {}",
        if n == 1 { "" } else { "s" },
        span(alert.effective_at - first)
    );
    if let Some(w) = alert.facts.window {
        s.push_str(&format!(" (window {})", span(w)));
    }
    Some(s)
}

/// The labelled facts of an alert, in the order destinations show them;
/// values are untrusted.
pub fn facts(alert: &Alert, style: &Style) -> Vec<(&'static str, String)> {
    let f = &alert.facts;
    let mut out = Vec::new();
    if let Some(actor) = &f.actor {
        let who = match f.actor_kind.as_deref() {
            Some("service_account") => format!("{actor} (service account)"),
            _ => actor.clone(),
        };
        out.push(("Who", who));
    }
    match (&f.ip, &f.place) {
        (Some(ip), Some(place)) => out.push(("From", format!("{ip} ({place})"))),
        (Some(ip), None) => out.push(("From", ip.clone())),
        (None, Some(place)) => out.push(("From", place.clone())),
        (None, None) => {}
    }
    if let Some(p) = &f.project {
        out.push(("Project", p.clone()));
    }
    if !f.event_type.is_empty() {
        out.push(("Event", f.event_type.clone()));
    }
    out.push(("When", style.when(alert.effective_at)));
    if let Some(t) = threshold(alert) {
        out.push(("Count", t));
    }
    if alert.suppressed > 0 {
        out.push((
            "Repeats quieted",
            format!("{} since the previous alert", alert.suppressed),
        ));
    }
    if let Some(k) = &f.api_key_id {
        out.push(("API key", k.clone()));
    }
    if let Some(ua) = &f.user_agent {
        out.push(("User agent", ua.clone()));
    }
    out
}

/// `text` cut to at most `max` characters, ending in `…` when cut.
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('\u{2026}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_and_cuts() {
        assert_eq!(span(0), "0s");
        assert_eq!(span(200), "3m 20s");
        assert_eq!(span(7200), "2h");
        assert_eq!(span(90_061), "1d 1h");
        assert_eq!(cut("abcdef", 4), "abc\u{2026}");
        assert_eq!(cut("abc", 4), "abc");
    }

    #[test]
    fn times_in_the_zone_and_utc() {
        let s = Style::in_zone(Some("America/New_York"));
        assert_eq!(
            s.when(1_764_688_445),
            "2025-12-02 10:14:05 EST (15:14:05 UTC)"
        );
        assert_eq!(
            Style::default().when(1_764_688_445),
            "2025-12-02 15:14:05 UTC"
        );
    }
}
