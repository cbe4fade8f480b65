//! Calendar and wall-clock arithmetic in the organization's time zone.
//! Converts "day N, local time hh:mm" into Unix seconds, honouring daylight saving changes.

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Span, Timestamp};

/// The history's calendar: local days starting at `d0`, in the org's zone.
pub struct Clock {
    pub tz: TimeZone,
    pub d0: Date,
    pub days: u32,
    /// No event is earlier than this instant (the `start` option).
    pub start: i64,
    /// Local midnight after the last day; no event is at or after it.
    pub end: i64,
}

impl Clock {
    pub fn new(tz: TimeZone, start: Timestamp, days: u32) -> Clock {
        let d0 = start.to_zoned(TimeZone::UTC).date();
        let end_date = add_days(d0, i64::from(days));
        let end = at(&tz, end_date, 0);
        Clock {
            tz,
            d0,
            days,
            start: start.as_second(),
            end,
        }
    }

    /// The local calendar date of day `day` (0-based).
    pub fn date(&self, day: u32) -> Date {
        add_days(self.d0, i64::from(day))
    }

    /// Unix seconds of `secs` wall-clock seconds after local midnight of `date`.
    pub fn local(&self, date: Date, secs: i64) -> i64 {
        at(&self.tz, date, secs)
    }

    /// Unix seconds of local midnight at the start of day `day`.
    pub fn day_start(&self, day: u32) -> i64 {
        self.local(self.date(day), 0)
    }

    /// Local wall-clock text of an instant, e.g. `Sat 2026-10-24 23:40 EDT`.
    pub fn describe(&self, t: i64) -> String {
        let z = Timestamp::from_second(t)
            .expect("timestamp in range")
            .to_zoned(self.tz.clone());
        z.strftime("%a %Y-%m-%d %H:%M %Z").to_string()
    }
}

/// Unix seconds of wall-clock `secs` after midnight of `date` in `tz`.
/// Times in a spring-forward gap move forward; repeated times take the earlier instant.
pub fn at(tz: &TimeZone, date: Date, secs: i64) -> i64 {
    let dt = date
        .to_datetime(Time::midnight())
        .checked_add(SignedDuration::from_secs(secs))
        .expect("civil time in range");
    tz.to_ambiguous_timestamp(dt)
        .compatible()
        .expect("local time resolvable")
        .as_second()
}

pub fn add_days(d: Date, n: i64) -> Date {
    d.checked_add(Span::new().days(n)).expect("date in range")
}

pub fn is_weekend(d: Date) -> bool {
    matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday)
}

/// Seconds after midnight for `h:m`.
pub const fn hm(h: i64, m: i64) -> i64 {
    h * 3600 + m * 60
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ny() -> TimeZone {
        TimeZone::get("America/New_York").unwrap()
    }

    #[test]
    fn local_nine_am_moves_one_utc_hour_across_dst_end() {
        let tz = ny();
        let before = at(&tz, jiff::civil::date(2026, 10, 30), hm(9, 0));
        let after = at(&tz, jiff::civil::date(2026, 11, 2), hm(9, 0));
        // 09:00 EDT = 13:00 UTC; 09:00 EST = 14:00 UTC.
        assert_eq!(before.rem_euclid(86_400), 13 * 3600);
        assert_eq!(after.rem_euclid(86_400), 14 * 3600);
    }

    #[test]
    fn the_day_of_the_change_has_25_hours() {
        let tz = ny();
        let d = jiff::civil::date(2026, 11, 1);
        let len = at(&tz, add_days(d, 1), 0) - at(&tz, d, 0);
        assert_eq!(len, 25 * 3600);
        // 02:00 happens once, after the clocks go back: 07:00 UTC.
        assert_eq!(at(&tz, d, hm(2, 0)).rem_euclid(86_400), 7 * 3600);
    }

    #[test]
    fn first_day_is_the_utc_date_of_start() {
        let start: Timestamp = "2026-10-19T00:00:00Z".parse().unwrap();
        let c = Clock::new(ny(), start, 28);
        assert_eq!(c.date(0), jiff::civil::date(2026, 10, 19));
        assert_eq!(c.day_start(0), at(&c.tz, c.d0, 0));
        assert_eq!(c.end, c.day_start(28));
        assert_eq!(c.describe(c.day_start(0)), "Mon 2026-10-19 00:00 EDT");
    }
}
