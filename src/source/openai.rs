//! The audit log API client: one page of `GET /organization/audit_logs`
//! with the real query encoding, retried on 429 (after `Retry-After`), 5xx,
//! timeouts and connection errors with capped exponential backoff and full
//! jitter; 401/403 stop with a message that names the config key.
//!
//! The admin key is sent only in the `Authorization` header and removed from
//! every message.

use std::time::Duration;

use backon::BackoffBuilder;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::RawEvent;
use crate::config::{OpenAiSource, Secret};
use crate::event::Event;

/// Why a page could not be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error(
        "the audit log API refused the admin key (HTTP {status}: {message}): check `source.openai.admin_key` in the config: it must be an admin key (sk-admin-…) of the organization with permission to read audit logs, and audit logging must be turned on in the organization's data controls"
    )]
    Auth { status: u16, message: String },
    #[error("the audit log API answered HTTP {status}: {message}")]
    Status { status: u16, message: String },
    #[error("the audit log API could not be reached at {url}: {message}")]
    Unreachable { url: String, message: String },
    #[error("the audit log API sent a response that is not a list page: {0}")]
    BadResponse(String),
}

impl ApiError {
    /// True when retrying cannot help (the key is wrong, the request bad).
    pub fn is_fatal(&self) -> bool {
        match self {
            ApiError::Auth { .. } => true,
            ApiError::Status { status, .. } => {
                (400..500).contains(status) && *status != 408 && *status != 409 && *status != 429
            }
            _ => false,
        }
    }

    /// A short name of the kind of failure, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ApiError::Auth { .. } => "auth",
            ApiError::Status { status: 429, .. } => "rate_limited",
            ApiError::Status { status, .. } if *status >= 500 => "server",
            ApiError::Status { .. } => "client",
            ApiError::Unreachable { .. } => "connection",
            ApiError::BadResponse(_) => "bad_response",
        }
    }
}

/// One request's filters and cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub gte: Option<i64>,
    pub lt: Option<i64>,
    pub lte: Option<i64>,
    pub after: Option<String>,
    pub tenant_only: bool,
    pub event_types: Vec<String>,
}

/// One page of the list, newest first.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub events: Vec<RawEvent>,
    pub has_more: bool,
    pub last_id: Option<String>,
    /// Items that are not audit log events, with why.
    pub bad_items: Vec<String>,
}

/// How a failed request is retried.
#[derive(Debug, Clone)]
pub struct Retry {
    /// Retries of one request before it fails.
    pub attempts: usize,
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// The longest `Retry-After` honoured as given.
    pub max_retry_after: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 6,
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

/// A client of the audit log API.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    url: String,
    key: Secret,
    page_size: u32,
    project_ids: Vec<String>,
    pub retry: Retry,
}

/// What one attempt came to.
enum Attempt {
    Done(Page),
    /// Worth another try, after the given wait when the server named one.
    Again(ApiError, Option<Duration>),
    Stop(ApiError),
}

impl Client {
    pub fn new(cfg: &OpenAiSource) -> Result<Client, ApiError> {
        crate::tls::init();
        let timeout = cfg.timeout.duration();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("auditwatch/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError::Unreachable {
                url: cfg.base_url.0.clone(),
                message: format!("cannot set up the HTTP client: {e}"),
            })?;
        Ok(Client {
            http,
            url: format!("{}/organization/audit_logs", cfg.base_url.0),
            key: cfg.admin_key.clone(),
            page_size: cfg.page_size,
            project_ids: cfg.project_ids.clone(),
            retry: Retry::default(),
        })
    }

    /// The largest number of events one page holds.
    pub fn page_size(&self) -> usize {
        self.page_size as usize
    }

    /// Reads one page, retrying what can be retried.
    pub async fn page(&self, q: &Query) -> Result<Page, ApiError> {
        let mut delays = backon::ExponentialBuilder::default()
            .with_min_delay(self.retry.first_delay)
            .with_max_delay(self.retry.max_delay)
            .with_factor(2.0)
            .with_max_times(self.retry.attempts)
            .build();
        loop {
            let (error, wait) = match self.attempt(q).await {
                Attempt::Done(page) => return Ok(page),
                Attempt::Stop(e) => return Err(e),
                Attempt::Again(e, wait) => (e, wait),
            };
            let Some(delay) = delays.next() else {
                return Err(error);
            };
            // Full jitter: anywhere between nothing and the capped delay.
            let delay = match wait {
                Some(w) => w.min(self.retry.max_retry_after),
                None => delay.mul_f64(fastrand::f64()),
            };
            tracing::warn!(
                error = %error,
                retry_in_ms = delay.as_millis() as u64,
                "audit log request failed; retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }

    async fn attempt(&self, q: &Query) -> Attempt {
        let url = self.request_url(q);
        let sent = self
            .http
            .get(url)
            .bearer_auth(self.key.expose())
            .header("accept", "application/json")
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                return Attempt::Again(
                    ApiError::Unreachable {
                        url: self.url.clone(),
                        message: self.scrub(&error_chain(&e)),
                    },
                    None,
                );
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let body = match response.text().await {
            Ok(b) => b,
            Err(e) => {
                return Attempt::Again(
                    ApiError::Unreachable {
                        url: self.url.clone(),
                        message: self.scrub(&error_chain(&e)),
                    },
                    None,
                );
            }
        };
        if status == 200 {
            return match parse_page(&body) {
                Ok(page) => Attempt::Done(page),
                Err(e) => Attempt::Again(ApiError::BadResponse(e), None),
            };
        }
        let message = self.scrub(&error_message(&body));
        match status {
            401 | 403 => Attempt::Stop(ApiError::Auth { status, message }),
            408 | 409 | 429 | 500..=599 => {
                Attempt::Again(ApiError::Status { status, message }, retry_after)
            }
            _ => Attempt::Stop(ApiError::Status { status, message }),
        }
    }

    /// The request URL: brackets percent-encoded, array filters repeated.
    fn request_url(&self, q: &Query) -> reqwest::Url {
        let mut url = reqwest::Url::parse(&self.url).expect("base_url was checked at load");
        {
            let mut pairs = url.query_pairs_mut();
            pairs.append_pair("limit", &self.page_size.to_string());
            for (name, value) in [
                ("effective_at[gte]", q.gte),
                ("effective_at[lt]", q.lt),
                ("effective_at[lte]", q.lte),
            ] {
                if let Some(v) = value {
                    pairs.append_pair(name, &v.to_string());
                }
            }
            for p in &self.project_ids {
                pairs.append_pair("project_ids[]", p);
            }
            for t in &q.event_types {
                pairs.append_pair("event_types[]", t);
            }
            if q.tenant_only {
                pairs.append_pair("tenant_only", "true");
            }
            if let Some(after) = &q.after {
                pairs.append_pair("after", after);
            }
        }
        url
    }

    /// Removes the admin key, and anything shaped like a key, from text.
    fn scrub(&self, text: &str) -> String {
        let text = if self.key.is_empty() {
            text.to_owned()
        } else {
            text.replace(self.key.expose(), "[admin key]")
        };
        text.split(' ')
            .map(|w| if w.starts_with("sk-") { "[key]" } else { w })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The list envelope of the API.
#[derive(Deserialize)]
struct Envelope<'a> {
    object: String,
    #[serde(borrow)]
    data: Vec<&'a RawValue>,
    has_more: bool,
    #[serde(default)]
    last_id: Option<String>,
}

/// Reads a page body. A body of several list documents one after another
/// (reported of the API in production) is read as their concatenation.
fn parse_page(body: &str) -> Result<Page, String> {
    let mut page = Page::default();
    let mut documents = 0;
    for env in serde_json::Deserializer::from_str(body).into_iter::<Envelope<'_>>() {
        let env = env.map_err(|e| format!("{e}"))?;
        if env.object != "list" {
            return Err(format!("`object` is {:?}, not \"list\"", env.object));
        }
        documents += 1;
        for item in env.data {
            match Event::parse(item.get()) {
                Ok(ev) => page.events.push(RawEvent {
                    id: ev.id().to_owned(),
                    effective_at: ev.effective_at(),
                    json: item.get().to_owned(),
                }),
                Err(e) => page.bad_items.push(e.to_string()),
            }
        }
        page.has_more = env.has_more;
        page.last_id = env.last_id;
    }
    if documents == 0 {
        return Err("the body is empty".into());
    }
    if page.last_id.is_none() {
        page.last_id = page.events.last().map(|e| e.id.clone());
    }
    Ok(page)
}

/// The `message` of OpenAI's error envelope, else the start of the body.
fn error_message(body: &str) -> String {
    #[derive(Deserialize)]
    struct Envelope {
        error: Inner,
    }
    #[derive(Deserialize)]
    struct Inner {
        message: String,
    }
    match serde_json::from_str::<Envelope>(body) {
        Ok(e) => e.error.message,
        Err(_) => {
            let text: String = body.chars().take(200).collect();
            if text.trim().is_empty() {
                "(no message)".into()
            } else {
                crate::text::plain(&text).into_owned()
            }
        }
    }
}

/// `Retry-After`: whole seconds, or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let wait = at.as_second() - jiff::Timestamp::now().as_second();
    Some(Duration::from_secs(wait.max(0) as u64))
}

/// An error with its causes, which is where reqwest says what happened.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        let soon = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(30);
        let date = jiff::fmt::rfc2822::DateTimePrinter::new()
            .timestamp_to_rfc9110_string(&soon)
            .unwrap();
        let wait = parse_retry_after(&date).unwrap().as_secs();
        assert!((28..=30).contains(&wait), "{date}: {wait}");
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn pages_are_read_whole_or_refused() {
        let page = parse_page(
            r#"{"object":"list","data":[{"id":"a","type":"x","effective_at":5},{"nope":1}],"has_more":true,"last_id":"a"}"#,
        )
        .unwrap();
        assert_eq!(page.events.len(), 1);
        assert_eq!(page.bad_items.len(), 1);
        assert!(page.has_more);
        // Two documents in one body.
        let page = parse_page(
            "{\"object\":\"list\",\"data\":[{\"id\":\"a\",\"type\":\"x\",\"effective_at\":5}],\"has_more\":true}\n{\"object\":\"list\",\"data\":[{\"id\":\"b\",\"type\":\"x\",\"effective_at\":4}],\"has_more\":false,\"last_id\":\"b\"}",
        )
        .unwrap();
        assert_eq!(page.events.len(), 2);
        assert!(!page.has_more);
        assert!(parse_page(r#"{"object":"error","data":[],"has_more":false}"#).is_err());
        assert!(parse_page("<html>").is_err());
    }
}
