//! The `webhook` destination: each alert as one JSON POST with a stable,
//! documented schema (`auditwatch.alert.v1`), for SIEMs and chat tools that
//! have no destination of their own.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

use super::format;
use super::{Accepted, Destination, Parcel, SendError, Sending};
use crate::config::Secret;
use crate::event::format_time;

/// The schema name every body carries; a change that is not backwards
/// compatible gets a new one.
pub const SCHEMA: &str = "auditwatch.alert.v1";

const TIMEOUT: Duration = Duration::from_secs(30);

pub struct Webhook {
    name: String,
    url: Secret,
    client: reqwest::Client,
    /// Where the URL points, without its path or query (which may hold a
    /// secret), for messages.
    host: String,
}

/// Why a webhook destination cannot be set up.
#[derive(Debug, thiserror::Error)]
#[error("destination `{name}`: {message}")]
pub struct WebhookSetupError {
    pub name: String,
    pub message: String,
}

impl Webhook {
    pub fn new(
        name: &str,
        url: &Secret,
        headers: &BTreeMap<String, Secret>,
    ) -> Result<Webhook, WebhookSetupError> {
        let fail = |message: String| WebhookSetupError {
            name: name.to_owned(),
            message,
        };
        crate::tls::init();
        let parsed = super::secure_url(url.expose(), "url").map_err(fail)?;
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            let key = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| fail(format!("header name {k:?} is not valid")))?;
            let mut value = HeaderValue::from_str(v.expose())
                .map_err(|_| fail(format!("the value of header {k:?} is not valid")))?;
            value.set_sensitive(true);
            map.insert(key, value);
        }
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("auditwatch/", env!("CARGO_PKG_VERSION")))
            .default_headers(map)
            .build()
            .map_err(|e| fail(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Webhook {
            name: name.to_owned(),
            url: url.clone(),
            client,
            host: format!("{}://{}", parsed.scheme(), parsed.host_str().unwrap_or("?")),
        })
    }

    async fn post(&self, parcel: &Parcel<'_>) -> Result<Accepted, SendError> {
        let body = serde_json::to_vec(&body(parcel, &self.name, crate::time::now()))
            .expect("webhook bodies serialize");
        let sent = self
            .client
            .post(self.url.expose())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                let what = if e.is_timeout() {
                    "did not answer in time".to_owned()
                } else {
                    // reqwest's message names the URL, which may hold a secret.
                    "cannot be reached".to_owned()
                };
                return Err(SendError::Retry {
                    message: format!("the webhook at {} {what}", self.host),
                    after: None,
                });
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(crate::source::openai::parse_retry_after);
        let text = response.text().await.unwrap_or_default();
        let text = format::cut(&crate::text::plain(&text), 200);
        match status {
            200..=299 => Ok(Accepted::answer(&format!("HTTP {status} {text}"))),
            429 => Err(SendError::Retry {
                message: format!("the webhook at {} is rate limiting (429)", self.host),
                after: retry_after,
            }),
            408 | 500..=599 => Err(SendError::Retry {
                message: format!("the webhook at {} answered HTTP {status} {text}", self.host),
                after: retry_after,
            }),
            _ => Err(SendError::Permanent(format!(
                "the webhook at {} answered HTTP {status} {text}: check `url` and `headers`",
                self.host
            ))),
        }
    }
}

impl Destination for Webhook {
    fn name(&self) -> &str {
        &self.name
    }

    fn send<'a>(&'a self, parcel: &'a Parcel<'a>) -> Sending<'a> {
        Box::pin(self.post(parcel))
    }
}

/// The JSON body of one delivery: the alert (the fields of a `rulecheck`
/// line), its facts, where it was routed, and which delivery this is.
pub fn body(parcel: &Parcel<'_>, destination: &str, now: i64) -> Value {
    let d = parcel.delivery;
    json!({
        "schema": SCHEMA,
        "alert": &d.alert,
        "facts": &d.alert.facts,
        "routing": {
            "destination": destination,
            "destinations": &d.routes,
        },
        "delivery": {
            "id": d.id,
            "attempt": d.attempts + 1,
            "queued_at": format_time(d.queued_at),
            "sent_at": format_time(now),
        },
    })
}
