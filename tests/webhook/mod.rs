//! A generic JSON webhook receiver for the alert tests: it records every
//! request and can answer 429, 500 or any status instead of 200.

#![allow(dead_code)]

use crate::serve;

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// One request received, answered 200 or not.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    /// The path and query as received.
    pub path: String,
    /// In the order received; names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON, `Null` if it is not JSON.
    pub body: serde_json::Value,
    pub raw_body: String,
    /// What it was answered.
    pub status: u16,
    pub at: Instant,
}

impl Received {
    /// The first header of this name (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn accepted(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    /// 429 with `Retry-After` in seconds.
    RateLimited(u64),
    Status(u16),
}

#[derive(Default)]
struct Inner {
    faults: VecDeque<Fault>,
    delay: Duration,
    received: Vec<Received>,
}

struct Shared {
    inner: Mutex<Inner>,
    arrived: Condvar,
}

/// Answers every method on every path 200 `{"ok":true}` unless a fault is
/// queued; faults are used one a request, in the order they were asked for.
pub struct WebhookStandin {
    shared: Arc<Shared>,
    server: serve::Server,
    port: u16,
}

impl WebhookStandin {
    /// Starts the server in a thread of its own.
    pub fn start() -> WebhookStandin {
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner::default()),
            arrived: Condvar::new(),
        });
        let state = shared.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let state = state.clone();
                async move { handle(&state, method, uri, headers, body).await }
            },
        );
        let server = serve::Server::start(app);
        WebhookStandin {
            shared,
            port: server.port,
            server,
        }
    }

    /// `http://127.0.0.1:PORT/hook`; any other path is answered the same.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared.inner.lock().unwrap()
    }

    /// The next `n` requests (after the faults queued before) answer 429
    /// with `Retry-After: secs`.
    pub fn fail_with_429(&self, n: usize, retry_after_secs: u64) {
        self.inner()
            .faults
            .extend(std::iter::repeat_n(Fault::RateLimited(retry_after_secs), n));
    }

    /// The next `n` requests (after the faults queued before) answer 500.
    pub fn fail_with_500(&self, n: usize) {
        self.fail_with_status(n, 500);
    }

    /// The next `n` requests (after the faults queued before) answer
    /// `code` (400 for a permanent refusal, say) with a small JSON error.
    pub fn fail_with_status(&self, n: usize, code: u16) {
        StatusCode::from_u16(code).expect("an HTTP status code");
        self.inner()
            .faults
            .extend(std::iter::repeat_n(Fault::Status(code), n));
    }

    /// Every answer waits this long first.
    pub fn set_delay(&self, d: Duration) {
        self.inner().delay = d;
    }

    /// Every request, refused ones too, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.inner().received.clone()
    }

    /// The requests answered 2xx, in arrival order.
    pub fn accepted(&self) -> Vec<Received> {
        self.inner()
            .received
            .iter()
            .filter(|r| r.accepted())
            .cloned()
            .collect()
    }

    /// Waits until at least `n` requests were answered 2xx or `timeout`
    /// passed, and returns those accepted.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let count = |i: &Inner| i.received.iter().filter(|r| r.accepted()).count();
        let inner = self.inner();
        let (inner, _) = self
            .shared
            .arrived
            .wait_timeout_while(inner, timeout, |i| count(i) < n)
            .unwrap();
        inner
            .received
            .iter()
            .filter(|r| r.accepted())
            .cloned()
            .collect()
    }

    /// Waits until at least `n` requests came, answered anyhow, or
    /// `timeout` passed, and returns them all.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let inner = self.inner();
        let (inner, _) = self
            .shared
            .arrived
            .wait_timeout_while(inner, timeout, |i| i.received.len() < n)
            .unwrap();
        inner.received.clone()
    }
}

fn json(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn handle(
    shared: &Shared,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let delay = shared.inner.lock().unwrap().delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut inner = shared.inner.lock().unwrap();
    let response = match inner.faults.pop_front() {
        None => json(StatusCode::OK, serde_json::json!({"ok": true})),
        Some(Fault::RateLimited(secs)) => {
            let mut r = json(
                StatusCode::TOO_MANY_REQUESTS,
                serde_json::json!({"error": "rate limited"}),
            );
            r.headers_mut()
                .insert("retry-after", secs.to_string().parse().unwrap());
            r
        }
        Some(Fault::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap();
            let reason = status.canonical_reason().unwrap_or("error");
            json(status, serde_json::json!({"error": reason}))
        }
    };
    let raw_body = String::from_utf8_lossy(&body).into_owned();
    inner.received.push(Received {
        method: method.to_string(),
        path: uri
            .path_and_query()
            .map_or_else(|| uri.path().to_owned(), |p| p.to_string()),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: serde_json::from_str(&raw_body).unwrap_or(serde_json::Value::Null),
        raw_body,
        status: response.status().as_u16(),
        at: Instant::now(),
    });
    shared.arrived.notify_all();
    response
}
