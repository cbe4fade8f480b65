//! A faithful stand-in for `GET /v1/organization/audit_logs`, started by a
//! test on `127.0.0.1:0`, with switches that break the API's habits.
//!
//! It follows what the API does (newest first, cursors, `has_more`,
//! `first_id`/`last_id`, `effective_at[...]` filters with raw or
//! percent-encoded brackets, the repeated array filters, `tenant_only`,
//! `limit` 1..100, 400 for unknown parameters, 401 with OpenAI's error
//! body) and can answer late events, 429 with `Retry-After`, 500s, slow
//! responses and a cursor that does not advance.

#![allow(dead_code)]

use crate::serve;

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub const ADMIN_KEY: &str = "sk-admin-standin-0123456789abcdef";

/// How a 429 says when to come back.
#[derive(Debug, Clone, Copy)]
pub enum RetryAfter {
    Seconds(u64),
    /// An HTTP date this many seconds from now.
    HttpDate(u64),
    Absent,
}

/// One request received.
#[derive(Debug, Clone)]
pub struct Request {
    /// The query as received, still encoded.
    pub raw_query: String,
    /// Decoded, in order, repeated keys kept.
    pub params: Vec<(String, String)>,
    pub authorization: Option<String>,
    pub status: u16,
    pub at: std::time::Instant,
}

impl Request {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.params
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

#[derive(Default)]
struct Inner {
    /// Newest first: by `effective_at` descending, ties by a hash of the id.
    events: Vec<Value>,
    fail_next: usize,
    rate_limited: Vec<RetryAfter>,
    delay: Duration,
    stuck_cursor: bool,
    oldest_first: bool,
    requests: Vec<Request>,
}

struct Shared {
    inner: Mutex<Inner>,
    arrived: Condvar,
}

pub struct StandIn {
    shared: Arc<Shared>,
    server: serve::Server,
    port: u16,
}

impl StandIn {
    /// Starts the server in a thread of its own.
    pub fn start() -> StandIn {
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner::default()),
            arrived: Condvar::new(),
        });
        let state = shared.clone();
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
            let state = state.clone();
            async move { handle(&state, uri, headers).await }
        });
        let server = serve::Server::start(app);
        StandIn {
            shared,
            port: server.port,
            server,
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared.inner.lock().unwrap()
    }

    /// Adds events, visible from the next request on (an old
    /// `effective_at` added between polls is a late event).
    pub fn add(&self, events: impl IntoIterator<Item = Value>) {
        let mut inner = self.inner();
        inner.events.extend(events);
        inner.events.sort_by_key(|e| {
            (
                std::cmp::Reverse(e["effective_at"].as_i64().unwrap_or(0)),
                tie(e["id"].as_str().unwrap_or("")),
            )
        });
    }

    pub fn len(&self) -> usize {
        self.inner().events.len()
    }

    /// The next `n` requests answer 500.
    pub fn fail_next(&self, n: usize) {
        self.inner().fail_next += n;
    }

    /// No more 500s.
    pub fn stop_failing(&self) {
        self.inner().fail_next = 0;
    }

    /// The next `n` requests (after any 500s) answer 429.
    pub fn rate_limit_next(&self, n: usize, retry_after: RetryAfter) {
        let mut inner = self.inner();
        for _ in 0..n {
            inner.rate_limited.push(retry_after);
        }
    }

    /// Every answer waits this long.
    pub fn set_delay(&self, d: Duration) {
        self.inner().delay = d;
    }

    /// `after=X` answers the same page as without it.
    pub fn set_stuck_cursor(&self, on: bool) {
        self.inner().stuck_cursor = on;
    }

    /// Oldest first instead of newest first.
    pub fn set_oldest_first(&self, on: bool) {
        self.inner().oldest_first = on;
    }

    pub fn requests(&self) -> Vec<Request> {
        self.inner().requests.clone()
    }

    /// Waits until at least `n` requests came, or `timeout` passed.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        let inner = self.inner();
        let (inner, _) = self
            .shared
            .arrived
            .wait_timeout_while(inner, timeout, |i| i.requests.len() < n)
            .unwrap();
        inner.requests.len() >= n
    }
}

/// A fixed, arbitrary order of events within one second (not id order).
fn tie(id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

fn error(
    status: StatusCode,
    message: &str,
    kind: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Response {
    (
        status,
        [("content-type", "application/json")],
        json!({"error": {"message": message, "type": kind, "param": param, "code": code}})
            .to_string(),
    )
        .into_response()
}

fn bad_request(message: String, param: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        &message,
        "invalid_request_error",
        Some(param),
        None,
    )
}

/// Percent-decodes a query component (`+` is a space).
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn params(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

const KNOWN: [&str; 13] = [
    "effective_at[gt]",
    "effective_at[gte]",
    "effective_at[lt]",
    "effective_at[lte]",
    "project_ids[]",
    "event_types[]",
    "actor_ids[]",
    "actor_emails[]",
    "resource_ids[]",
    "tenant_only",
    "limit",
    "after",
    "before",
];

fn is_tenant_scoped(ty: &str) -> bool {
    ty.starts_with("tenant.")
        || matches!(ty, "role.bound_to_resource" | "role.unbound_from_resource")
}

fn actor_ids(e: &Value) -> Vec<&str> {
    let a = &e["actor"];
    [
        &a["session"]["user"]["id"],
        &a["api_key"]["id"],
        &a["api_key"]["user"]["id"],
        &a["api_key"]["service_account"]["id"],
    ]
    .into_iter()
    .filter_map(Value::as_str)
    .collect()
}

fn actor_emails(e: &Value) -> Vec<&str> {
    let a = &e["actor"];
    [
        &a["session"]["user"]["email"],
        &a["api_key"]["user"]["email"],
    ]
    .into_iter()
    .filter_map(Value::as_str)
    .collect()
}

async fn handle(shared: &Shared, uri: Uri, headers: HeaderMap) -> Response {
    let raw_query = uri.query().unwrap_or("").to_owned();
    let params = params(&raw_query);
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let delay = shared.inner.lock().unwrap().delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let response = {
        let mut inner = shared.inner.lock().unwrap();
        answer(&mut inner, uri.path(), &params, authorization.as_deref())
    };
    let mut inner = shared.inner.lock().unwrap();
    inner.requests.push(Request {
        raw_query,
        params,
        authorization,
        status: response.status().as_u16(),
        at: std::time::Instant::now(),
    });
    shared.arrived.notify_all();
    response
}

fn answer(
    inner: &mut Inner,
    path: &str,
    params: &[(String, String)],
    auth: Option<&str>,
) -> Response {
    if path != "/v1/organization/audit_logs" {
        return error(
            StatusCode::NOT_FOUND,
            "Not found",
            "invalid_request_error",
            None,
            None,
        );
    }
    if inner.fail_next > 0 {
        inner.fail_next -= 1;
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The server had an error while processing your request.",
            "server_error",
            None,
            None,
        );
    }
    if !inner.rate_limited.is_empty() {
        let retry = inner.rate_limited.remove(0);
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            "Rate limit reached for requests",
            "requests",
            None,
            Some("rate_limit_exceeded"),
        );
        let value = match retry {
            RetryAfter::Seconds(s) => Some(s.to_string()),
            RetryAfter::HttpDate(s) => {
                let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(s as i64);
                Some(at.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string())
            }
            RetryAfter::Absent => None,
        };
        if let Some(v) = value {
            r.headers_mut().insert("retry-after", v.parse().unwrap());
        }
        return r;
    }
    if auth != Some(&format!("Bearer {ADMIN_KEY}")) {
        return error(
            StatusCode::UNAUTHORIZED,
            "Incorrect API key provided: sk-ad****cdef. You can find your API key at https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            None,
            Some("invalid_api_key"),
        );
    }
    for (k, _) in params {
        if !KNOWN.contains(&k.as_str()) {
            return bad_request(format!("Unknown parameter: '{k}'."), k);
        }
    }
    let one = |name: &str| {
        params
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let many = |name: &str| -> Vec<&str> {
        params
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let mut bounds = [None; 4];
    for (i, name) in [
        "effective_at[gt]",
        "effective_at[gte]",
        "effective_at[lt]",
        "effective_at[lte]",
    ]
    .iter()
    .enumerate()
    {
        if let Some(v) = one(name) {
            match v.parse::<i64>() {
                Ok(n) => bounds[i] = Some(n),
                Err(_) => {
                    return bad_request(format!("Invalid integer for '{name}': '{v}'."), name);
                }
            }
        }
    }
    let limit = match one("limit") {
        None => 20,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => {
                return bad_request(
                    format!("Invalid 'limit': {v}. Limit can range between 1 and 100."),
                    "limit",
                );
            }
        },
    };
    let tenant_only = match one("tenant_only") {
        None | Some("false") => false,
        Some("true") => true,
        Some(v) => {
            return bad_request(
                format!("Invalid boolean for 'tenant_only': '{v}'."),
                "tenant_only",
            );
        }
    };
    let (types, projects, actors, emails, resources) = (
        many("event_types[]"),
        many("project_ids[]"),
        many("actor_ids[]"),
        many("actor_emails[]"),
        many("resource_ids[]"),
    );
    let [gt, gte, lt, lte] = bounds;
    // Events are kept newest first: the time bounds are a range of them.
    let time = |e: &Value| e["effective_at"].as_i64().unwrap_or(0);
    let newest = lt.map(|b| b - 1).into_iter().chain(lte).min();
    let oldest = gt.map(|b| b + 1).into_iter().chain(gte).max();
    let lo = newest.map_or(0, |n| inner.events.partition_point(|e| time(e) > n));
    let hi = oldest.map_or(inner.events.len(), |o| {
        inner.events.partition_point(|e| time(e) >= o)
    });
    let mut list: Vec<&Value> = inner.events[lo..hi.max(lo)]
        .iter()
        .filter(|e| {
            let ty = e["type"].as_str().unwrap_or("");
            is_tenant_scoped(ty) == tenant_only
                && (types.is_empty() || types.contains(&ty))
                && (projects.is_empty()
                    || e["project"]["id"]
                        .as_str()
                        .is_some_and(|p| projects.contains(&p)))
                && (actors.is_empty() || actor_ids(e).iter().any(|a| actors.contains(a)))
                && (emails.is_empty() || actor_emails(e).iter().any(|a| emails.contains(a)))
                && (resources.is_empty()
                    || e[ty]["id"].as_str().is_some_and(|r| resources.contains(&r)))
        })
        .collect();
    if inner.oldest_first {
        list.reverse();
    }
    let position = |id: &str| list.iter().position(|e| e["id"].as_str() == Some(id));
    let (start, end) = match (one("after"), one("before")) {
        (Some(after), _) if !inner.stuck_cursor => match position(after) {
            Some(p) => (p + 1, (p + 1 + limit).min(list.len())),
            None => return bad_request(format!("No such object: '{after}'."), "after"),
        },
        (_, Some(before)) => match position(before) {
            Some(p) => (p.saturating_sub(limit), p),
            None => return bad_request(format!("No such object: '{before}'."), "before"),
        },
        _ => (0, limit.min(list.len())),
    };
    let data: Vec<Value> = list[start..end].iter().map(|e| (*e).clone()).collect();
    let first_id = data.first().map(|e| e["id"].clone()).unwrap_or(Value::Null);
    let last_id = data.last().map(|e| e["id"].clone()).unwrap_or(Value::Null);
    let body = json!({
        "object": "list",
        "data": data,
        "first_id": first_id,
        "last_id": last_id,
        "has_more": end < list.len(),
    });
    ([("content-type", "application/json")], body.to_string()).into_response()
}
