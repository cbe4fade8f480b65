//! Business hours (`Mon-Fri 09:00-18:00` in an IANA zone, with holidays and
//! per-country local zones): parsing and the "is this instant inside them" test.

use std::collections::BTreeSet;

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

/// Business hours in one time zone.
#[derive(Debug, Clone)]
pub struct BusinessHours {
    tz: TimeZone,
    /// Indexed by `Weekday::to_monday_zero_offset`.
    days: [bool; 7],
    /// Seconds after local midnight; `start` is inside, `end` is not.
    start: i32,
    end: i32,
    holidays: BTreeSet<Date>,
    /// Countries (upper-case ISO codes) whose people keep the same hours in
    /// their own zone: an office abroad.
    countries: Vec<(String, TimeZone)>,
}

impl BusinessHours {
    /// Builds business hours from their parts as the config writes them.
    pub fn new(
        timezone: &str,
        days: &str,
        hours: &str,
        holidays: &[String],
    ) -> Result<Self, String> {
        let tz = TimeZone::get(timezone).map_err(|_| {
            format!("unknown time zone {timezone:?} (use an IANA name like America/New_York)")
        })?;
        let days = parse_days(days)?;
        let (start, end) = parse_hours(hours)?;
        let holidays = holidays
            .iter()
            .map(|d| {
                d.parse::<Date>()
                    .map_err(|_| format!("bad holiday {d:?}: write dates as YYYY-MM-DD"))
            })
            .collect::<Result<_, _>>()?;
        Ok(BusinessHours {
            tz,
            days,
            start,
            end,
            holidays,
            countries: Vec::new(),
        })
    }

    /// Adds local zones by country (`GB: Europe/London`): an actor whose
    /// address is in one of them is judged by the same hours in that zone.
    pub fn with_countries<'a>(
        mut self,
        countries: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, String> {
        for (country, zone) in countries {
            if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err(format!(
                    "bad country {country:?}: write two-letter ISO codes as in ip_address_details.country (GB, IN)"
                ));
            }
            let tz = TimeZone::get(zone).map_err(|_| {
                format!(
                    "unknown time zone {zone:?} for {country} (use an IANA name like Europe/London)"
                )
            })?;
            self.countries.push((country.to_ascii_uppercase(), tz));
        }
        Ok(self)
    }

    /// True when `ts` is inside business hours for an actor in `country`:
    /// in that country's zone when one is configured, else in the main zone.
    pub fn contains_in(&self, ts: i64, country: Option<&str>) -> bool {
        let tz = country
            .and_then(|c| {
                self.countries
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(c))
            })
            .map_or(&self.tz, |(_, tz)| tz);
        self.contains_zoned(ts, tz)
    }

    /// Parses `DAYS HH:MM-HH:MM` in the zone `timezone` (no holidays).
    pub fn parse_spec(timezone: &str, spec: &str) -> Result<Self, String> {
        let (days, hours) = spec.trim().split_once(char::is_whitespace).ok_or_else(|| {
            format!("bad business hours {spec:?}: write them like \"Mon-Fri 09:00-18:00\"")
        })?;
        Self::new(timezone, days, hours.trim(), &[])
    }

    /// True when the instant `ts` (Unix seconds) is inside business hours.
    pub fn contains(&self, ts: i64) -> bool {
        self.contains_zoned(ts, &self.tz)
    }

    fn contains_zoned(&self, ts: i64, tz: &TimeZone) -> bool {
        let Ok(t) = Timestamp::from_second(ts) else {
            return false;
        };
        let local = t.to_zoned(tz.clone());
        let sod = seconds_of_day(&local);
        let date = local.date();
        if self.start < self.end {
            self.open_on(date) && self.start <= sod && sod < self.end
        } else {
            // The span runs past midnight: the part after midnight belongs to
            // the day it started on.
            let yesterday = date.yesterday().ok();
            (self.open_on(date) && sod >= self.start)
                || (sod < self.end
                    && !self.holidays.contains(&date)
                    && yesterday.is_some_and(|y| self.open_on(y)))
        }
    }

    fn open_on(&self, date: Date) -> bool {
        self.days[date.weekday().to_monday_zero_offset() as usize] && !self.holidays.contains(&date)
    }
}

/// The local calendar fields of an instant in a zone, for `local_time`.
pub fn local_time(ts: i64, timezone: &str) -> Result<Zoned, String> {
    let tz = TimeZone::get(timezone).map_err(|_| format!("unknown time zone {timezone:?}"))?;
    let t = Timestamp::from_second(ts).map_err(|e| e.to_string())?;
    Ok(t.to_zoned(tz))
}

fn seconds_of_day(z: &Zoned) -> i32 {
    i32::from(z.hour()) * 3600 + i32::from(z.minute()) * 60 + i32::from(z.second())
}

fn parse_days(spec: &str) -> Result<[bool; 7], String> {
    let mut days = [false; 7];
    let bad = || format!("bad days {spec:?}: write them like Mon-Fri, Sat-Sun or Mon,Wed,Fri");
    for part in spec.split(',').map(str::trim) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (weekday(a).ok_or_else(bad)?, weekday(b).ok_or_else(bad)?);
                let mut d = a;
                loop {
                    days[d.to_monday_zero_offset() as usize] = true;
                    if d == b {
                        break;
                    }
                    d = d.next();
                }
            }
            None => days[weekday(part).ok_or_else(bad)?.to_monday_zero_offset() as usize] = true,
        }
    }
    Ok(days)
}

fn weekday(s: &str) -> Option<Weekday> {
    Some(match s.trim().to_ascii_lowercase().get(..3)? {
        "mon" => Weekday::Monday,
        "tue" => Weekday::Tuesday,
        "wed" => Weekday::Wednesday,
        "thu" => Weekday::Thursday,
        "fri" => Weekday::Friday,
        "sat" => Weekday::Saturday,
        "sun" => Weekday::Sunday,
        _ => return None,
    })
}

fn parse_hours(spec: &str) -> Result<(i32, i32), String> {
    let bad = || format!("bad hours {spec:?}: write them like 09:00-18:00");
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let clock = |s: &str| -> Option<i32> {
        let (h, m) = s.trim().split_once(':')?;
        let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
        ((0..24).contains(&h) && (0..60).contains(&m) || (h == 24 && m == 0))
            .then_some(h * 3600 + m * 60)
    };
    let (start, end) = (clock(a).ok_or_else(bad)?, clock(b).ok_or_else(bad)?);
    if start == end {
        return Err(format!("bad hours {spec:?}: start and end are the same"));
    }
    Ok((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_second()
    }

    #[test]
    fn start_is_inside_end_is_not() {
        let bh = BusinessHours::new("America/New_York", "Mon-Fri", "09:00-18:00", &[]).unwrap();
        // Tuesday 2026-07-14, EDT (UTC-4).
        assert!(bh.contains(ts("2026-07-14T13:00:00Z")));
        assert!(bh.contains(ts("2026-07-14T21:59:59Z")));
        assert!(!bh.contains(ts("2026-07-14T22:00:00Z")));
        assert!(!bh.contains(ts("2026-07-14T12:59:59Z")));
        // Saturday.
        assert!(!bh.contains(ts("2026-07-18T15:00:00Z")));
    }

    #[test]
    fn daylight_saving_moves_the_utc_hours() {
        let bh = BusinessHours::new("America/New_York", "Mon-Fri", "09:00-18:00", &[]).unwrap();
        // Friday 2026-10-30 is EDT: 09:00 local = 13:00Z.
        assert!(bh.contains(ts("2026-10-30T13:00:00Z")));
        // Monday 2026-11-02 is EST: 13:00Z = 08:00 local, 14:00Z = 09:00.
        assert!(!bh.contains(ts("2026-11-02T13:00:00Z")));
        assert!(bh.contains(ts("2026-11-02T14:00:00Z")));
        assert!(bh.contains(ts("2026-11-02T22:59:59Z")));
        assert!(!bh.contains(ts("2026-11-02T23:00:00Z")));
    }

    #[test]
    fn overnight_spans_and_holidays() {
        let bh = BusinessHours::new("UTC", "Mon,Wed,Fri", "22:00-06:00", &["2026-07-15".into()])
            .unwrap();
        assert!(bh.contains(ts("2026-07-13T23:00:00Z"))); // Monday night
        assert!(bh.contains(ts("2026-07-14T05:59:59Z"))); // ...into Tuesday
        assert!(!bh.contains(ts("2026-07-14T06:00:00Z")));
        assert!(!bh.contains(ts("2026-07-15T23:00:00Z"))); // Wednesday is a holiday
        assert!(!bh.contains(ts("2026-07-14T23:00:00Z"))); // Tuesday is not a day
    }

    #[test]
    fn offices_abroad_keep_their_local_hours() {
        let bh = BusinessHours::new("America/New_York", "Mon-Fri", "08:00-19:00", &[])
            .unwrap()
            .with_countries([("GB", "Europe/London"), ("in", "Asia/Kolkata")])
            .unwrap();
        // Tuesday 2026-07-14 09:30 in London is 04:30 in New York.
        let t = ts("2026-07-14T08:30:00Z");
        assert!(!bh.contains(t));
        assert!(!bh.contains_in(t, Some("US")));
        assert!(!bh.contains_in(t, None));
        assert!(bh.contains_in(t, Some("GB")));
        assert!(bh.contains_in(t, Some("gb")));
        // 10:00 in Bengaluru is 00:30 in New York; lower-case config keys count.
        let t = ts("2026-07-14T04:30:00Z");
        assert!(bh.contains_in(t, Some("IN")));
        assert!(!bh.contains_in(t, Some("GB")));
        // The same days and holidays apply: Saturday in London is closed.
        assert!(!bh.contains_in(ts("2026-07-18T10:00:00Z"), Some("GB")));
        let err = BusinessHours::new("UTC", "Mon-Fri", "09:00-18:00", &[])
            .unwrap()
            .with_countries([("GBR", "Europe/London")])
            .unwrap_err();
        assert!(err.contains("two-letter"), "{err}");
        let err = BusinessHours::new("UTC", "Mon-Fri", "09:00-18:00", &[])
            .unwrap()
            .with_countries([("GB", "Europe/Londres")])
            .unwrap_err();
        assert!(err.contains("IANA"), "{err}");
    }

    #[test]
    fn bad_specs_are_explained() {
        assert!(
            BusinessHours::new("Mars/Base", "Mon-Fri", "09:00-18:00", &[])
                .unwrap_err()
                .contains("IANA")
        );
        assert!(BusinessHours::new("UTC", "Mon-Frx", "09:00-18:00", &[]).is_err());
        assert!(BusinessHours::new("UTC", "Mon-Fri", "9-18", &[]).is_err());
        assert!(BusinessHours::parse_spec("UTC", "Sat-Sun 10:00-14:00").is_ok());
    }
}
