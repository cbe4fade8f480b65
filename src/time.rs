//! Durations (`90s`, `1h30m`, `2d`) and points in time as users write them
//! (RFC 3339, Unix seconds, or a duration back from now).

/// Parses a duration into whole seconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let text = s.trim();
    let hint = "write it like 90s, 10m, 1h30m, 2d or 1w (s, m, h, d, w)";
    if text.is_empty() {
        return Err(format!("bad duration {s:?}: {hint}"));
    }
    let mut total: i64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(format!("bad duration {s:?}: {hint}"));
        }
        let n: i64 = rest[..digits]
            .parse()
            .map_err(|_| format!("duration {s:?} is too long"))?;
        rest = rest[digits..].trim_start();
        let unit_len = rest.len() - rest.trim_start_matches(|c: char| c.is_alphabetic()).len();
        let unit = &rest[..unit_len];
        let secs = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3_600,
            "d" => 86_400,
            "w" => 604_800,
            "" => {
                return Err(format!(
                    "bad duration {s:?}: a number needs its unit; {hint}"
                ));
            }
            "M" | "mo" | "month" | "months" | "y" | "year" | "years" => {
                return Err(format!(
                    "bad duration {s:?}: `{unit}` is not a unit here (months and years have no fixed length, and `M` is easily read as minutes): {hint}"
                ));
            }
            other => {
                return Err(format!(
                    "bad duration {s:?}: `{other}` is not a unit; {hint}"
                ));
            }
        };
        total = n
            .checked_mul(secs)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("duration {s:?} is too long"))?;
        rest = rest[unit_len..].trim_start();
    }
    Ok(total)
}

#[cfg(test)]
mod duration_tests {
    use super::parse_duration;

    #[test]
    fn durations_take_s_m_h_d_w_and_refuse_the_rest() {
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("10m"), Ok(600));
        assert_eq!(parse_duration("1h30m"), Ok(5_400));
        assert_eq!(parse_duration("1h 30m"), Ok(5_400));
        assert_eq!(parse_duration("2d"), Ok(172_800));
        assert_eq!(parse_duration("1w"), Ok(604_800));
        assert!(
            parse_duration("10M")
                .unwrap_err()
                .contains("`M` is not a unit")
        );
        assert!(parse_duration("10").unwrap_err().contains("needs its unit"));
        assert!(parse_duration("10ms").is_err());
        assert!(parse_duration("1y").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("99999999999999999w").is_err());
    }
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
