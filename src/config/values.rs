//! The value types of the config file that check themselves while they are
//! read (durations, times, URLs, secrets), so that a bad value is reported
//! at its own line.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Visitor};

/// A value the config must never show: an admin key, a token, a password,
/// a webhook URL. `Debug` and `Display` print `<secret>`.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

/// A duration in whole seconds, written like `30s`, `15m`, `1h30m`, `2d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seconds(pub i64);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Seconds, D::Error> {
        let text = String::deserialize(d)?;
        let secs = crate::time::parse_duration(&text).map_err(de::Error::custom)?;
        if secs == 0 {
            return Err(de::Error::custom(format!(
                "duration {text:?} must be longer than zero"
            )));
        }
        Ok(Seconds(secs))
    }
}

impl Seconds {
    pub fn duration(self) -> std::time::Duration {
        std::time::Duration::from_secs(self.0.max(0) as u64)
    }
}

/// Where the first run begins: a time, or a duration back from the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    Ago(i64),
    At(i64),
}

impl StartAt {
    /// The time in Unix seconds, counted from `now`.
    pub fn resolve(self, now: i64) -> i64 {
        match self {
            StartAt::Ago(secs) => now - secs,
            StartAt::At(t) => t,
        }
    }
}

impl<'de> Deserialize<'de> for StartAt {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<StartAt, D::Error> {
        let text = String::deserialize(d)?;
        if let Ok(t) = text.trim().parse::<jiff::Timestamp>() {
            return Ok(StartAt::At(t.as_second()));
        }
        crate::time::parse_duration(&text).map(StartAt::Ago).map_err(|_| {
            de::Error::custom(format!(
                "bad start {text:?}: give a duration back from the first run (24h, 30d) or an RFC 3339 time"
            ))
        })
    }
}

/// The API's base URL, `http` or `https`, without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl(pub String);

impl Default for BaseUrl {
    fn default() -> Self {
        BaseUrl("https://api.openai.com/v1".into())
    }
}

impl<'de> Deserialize<'de> for BaseUrl {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<BaseUrl, D::Error> {
        let text = String::deserialize(d)?;
        let url = reqwest::Url::parse(text.trim())
            .map_err(|e| de::Error::custom(format!("bad base_url {text:?}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(de::Error::custom(format!(
                "bad base_url {text:?}: use an http or https URL such as https://api.openai.com/v1"
            )));
        }
        Ok(BaseUrl(text.trim().trim_end_matches('/').to_owned()))
    }
}

/// A value with the line and column it was written at (0 when the value
/// did not come from a config file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T> {
    pub value: T,
    pub line: u64,
    pub column: u64,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Located<T>, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Located<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Located<T>, A::Error> {
                let missing = || de::Error::custom("a located value needs its position");
                let line = seq.next_element()?.ok_or_else(missing)?;
                let column = seq.next_element()?.ok_or_else(missing)?;
                let value = seq.next_element()?.ok_or_else(missing)?;
                Ok(Located {
                    value,
                    line,
                    column,
                })
            }
            fn visit_newtype_struct<D: de::Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Located<T>, D::Error> {
                Ok(Located {
                    value: T::deserialize(d)?,
                    line: 0,
                    column: 0,
                })
            }
        }
        d.deserialize_newtype_struct(super::LOCATED, V(std::marker::PhantomData))
    }
}

pub(super) fn poll_interval() -> Seconds {
    Seconds(30)
}

pub(super) fn lookback() -> Seconds {
    Seconds(15 * 60)
}

pub(super) fn start() -> StartAt {
    StartAt::Ago(24 * 3600)
}

pub(super) fn page_size() -> u32 {
    100
}

pub(super) fn timeout() -> Seconds {
    Seconds(30)
}

pub(super) fn yes() -> bool {
    true
}

pub(super) fn starttls() -> super::SmtpTls {
    super::SmtpTls::Starttls
}

pub(super) fn page_size_in_range<'de, D: de::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = u64::deserialize(d)?;
    if !(1..=100).contains(&n) {
        return Err(de::Error::custom(format!(
            "page_size must be between 1 and 100 (the API's limit), not {n}"
        )));
    }
    Ok(n as u32)
}

pub(super) fn incident_window() -> Seconds {
    Seconds(3600)
}

pub(super) fn incident_by() -> Vec<String> {
    vec!["actor.id".into(), "actor.api_key_id".into()]
}
