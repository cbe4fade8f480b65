//! Durations (`90s`, `1h30m`, `2d`) and points in time as users write them
//! (RFC 3339, Unix seconds, or a duration back from now).

/// Parses a duration into whole seconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("bad duration {s:?} ({e}): write it like 90s, 10m, 1h30m or 2d"))?;
    if d.subsec_nanos() != 0 {
        return Err(format!("bad duration {s:?}: use whole seconds"));
    }
    i64::try_from(d.as_secs()).map_err(|_| format!("duration {s:?} is too long"))
}

/// Parses WHEN: an RFC 3339 time, Unix seconds, or a duration back from `now`.
pub fn parse_when(s: &str, now: i64) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(ts) = s.parse::<i64>() {
        return Ok(ts);
    }
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Ok(t.as_second());
    }
    match parse_duration(s) {
        Ok(d) => Ok(now - d),
        Err(_) => Err(format!(
            "bad time {s:?}: give an RFC 3339 time (2026-11-01T00:00:00Z), Unix seconds, or a duration back from now (7d, 36h)"
        )),
    }
}

/// The current time in Unix seconds.
pub fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("10m"), Ok(600));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration("2d"), Ok(172_800));
        assert!(parse_duration("ten minutes").is_err());
    }

    #[test]
    fn whens() {
        assert_eq!(parse_when("1720800000", 0), Ok(1_720_800_000));
        assert_eq!(parse_when("2024-07-12T16:00:00Z", 0), Ok(1_720_800_000));
        assert_eq!(parse_when("7d", 1_000_000), Ok(1_000_000 - 604_800));
        assert!(parse_when("yesterday", 0).is_err());
    }
}
