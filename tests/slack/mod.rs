//! A stand-in for Slack's `chat.postMessage` and one incoming webhook, for
//! the alert tests: what Slack answers, its failures, what it was sent.

#![allow(dead_code)]

use crate::serve;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

pub const BOT_TOKEN: &str = "xoxb-standin-0123456789";
/// The channel known from the start.
pub const CHANNEL: &str = "C0123456";
/// The path of the one incoming webhook.
pub const WEBHOOK_PATH: &str = "/services/T000/B000/secretpart";
/// Two messages to one channel closer than this count as too fast.
pub const TOO_FAST: Duration = Duration::from_millis(900);

/// Where an accepted message came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// `chat.postMessage`; the channel id (a name sent is resolved).
    Bot {
        channel: String,
    },
    Webhook,
}

/// One accepted message.
#[derive(Debug, Clone)]
pub struct SlackMessage {
    pub via: Via,
    /// The ts given to it (bot messages only).
    pub ts: Option<String>,
    pub thread_ts: Option<String>,
    /// The request body (a form body as an object of strings, `blocks` and
    /// `attachments` parsed).
    pub body: Value,
    pub at: Instant,
}

impl SlackMessage {
    pub fn text(&self) -> Option<&str> {
        self.body["text"].as_str()
    }

    pub fn channel(&self) -> Option<&str> {
        match &self.via {
            Via::Bot { channel } => Some(channel),
            Via::Webhook => None,
        }
    }
}

/// One request, accepted or not.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    /// The body as received.
    pub raw_body: String,
    pub status: u16,
    /// The `error` of the answer (or the text of a webhook's refusal).
    pub error: Option<String>,
    pub at: Instant,
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    RateLimited(u64),
    ServerError,
}

struct Inner {
    /// Channel id by id and by name.
    channels: HashMap<String, String>,
    faults: VecDeque<Fault>,
    outage_until: Option<Instant>,
    delay: Duration,
    next_ts: u64,
    /// Every ts given, by channel id.
    posted: HashMap<String, Vec<String>>,
    messages: Vec<SlackMessage>,
    requests: Vec<RequestRecord>,
}

struct Shared {
    inner: Mutex<Inner>,
    arrived: Condvar,
}

/// Started by a test on `127.0.0.1:0`; it answers like Slack: HTTP 200
/// with `{"ok":false,"error":..}` for `not_authed` (no token),
/// `invalid_auth`, `channel_not_found`, `thread_not_found`, `no_text` and
/// `invalid_json`; a new `ts` per accepted bot message; `ok` as text for the
/// webhook, 400 `invalid_payload`/`no_text` for a bad webhook body and 404
/// `no_service` for an unknown webhook path.
///
/// Faults hit both endpoints: queued 429s and 500s in the order they were
/// asked for, and an outage that answers 503 to every request (the
/// connection stays up: closing it is not reliable once clients pool
/// keep-alive connections). Nothing is refused for being fast, but
/// [`SlackStandin::too_fast`] counts messages to one channel less than a
/// second apart, as Slack allows about one a second.
pub struct SlackStandin {
    shared: Arc<Shared>,
    server: serve::Server,
    port: u16,
}

impl SlackStandin {
    /// Starts the server in a thread of its own.
    pub fn start() -> SlackStandin {
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                channels: HashMap::from([(CHANNEL.to_owned(), CHANNEL.to_owned())]),
                faults: VecDeque::new(),
                outage_until: None,
                delay: Duration::ZERO,
                next_ts: 0,
                posted: HashMap::new(),
                messages: Vec::new(),
                requests: Vec::new(),
            }),
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
        SlackStandin {
            shared,
            port: server.port,
            server,
        }
    }

    /// The Web API base, without a trailing slash: methods are
    /// `{api_url}/chat.postMessage`.
    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}/api", self.port)
    }

    pub fn webhook_url(&self) -> String {
        format!("http://127.0.0.1:{}{WEBHOOK_PATH}", self.port)
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared.inner.lock().unwrap()
    }

    /// Makes channel `id` known, also by `#name` and `name` if given.
    pub fn add_channel(&self, id: &str, name: Option<&str>) {
        let mut inner = self.inner();
        inner.channels.insert(id.to_owned(), id.to_owned());
        if let Some(name) = name {
            let name = name.trim_start_matches('#');
            inner.channels.insert(name.to_owned(), id.to_owned());
            inner.channels.insert(format!("#{name}"), id.to_owned());
        }
    }

    /// The next `n` requests (after the faults queued before) answer 429
    /// with `Retry-After: secs` and `{"ok":false,"error":"ratelimited"}`.
    pub fn fail_with_429(&self, n: usize, retry_after_secs: u64) {
        let mut inner = self.inner();
        inner
            .faults
            .extend(std::iter::repeat_n(Fault::RateLimited(retry_after_secs), n));
    }

    /// The next `n` requests (after the faults queued before) answer 500
    /// with `{"ok":false,"error":"fatal_error"}`.
    pub fn fail_with_500(&self, n: usize) {
        self.inner()
            .faults
            .extend(std::iter::repeat_n(Fault::ServerError, n));
    }

    /// Every request from now for `d` answers 503 with
    /// `{"ok":false,"error":"service_unavailable"}`; queued faults wait.
    pub fn outage_for(&self, d: Duration) {
        self.inner().outage_until = Some(Instant::now() + d);
    }

    /// Every answer waits this long first.
    pub fn set_delay(&self, d: Duration) {
        self.inner().delay = d;
    }

    /// Accepted messages, in arrival order.
    pub fn messages(&self) -> Vec<SlackMessage> {
        self.inner().messages.clone()
    }

    /// Every request, refused ones too, in arrival order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.inner().requests.clone()
    }

    /// How many times a message came less than [`TOO_FAST`] after the
    /// previous accepted one to the same channel (the webhook is one
    /// channel of its own).
    pub fn too_fast(&self) -> usize {
        let inner = self.inner();
        let mut last: HashMap<Option<&str>, Instant> = HashMap::new();
        let mut count = 0;
        for m in &inner.messages {
            if let Some(prev) = last.insert(m.channel(), m.at)
                && m.at.duration_since(prev) < TOO_FAST
            {
                count += 1;
            }
        }
        count
    }

    /// Waits until at least `n` messages were accepted or `timeout`
    /// passed, and returns the accepted messages.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<SlackMessage> {
        let inner = self.inner();
        let (inner, _) = self
            .shared
            .arrived
            .wait_timeout_while(inner, timeout, |i| i.messages.len() < n)
            .unwrap();
        inner.messages.clone()
    }

    /// Waits until at least `n` requests came or `timeout` passed, and
    /// returns them.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<RequestRecord> {
        let inner = self.inner();
        let (inner, _) = self
            .shared
            .arrived
            .wait_timeout_while(inner, timeout, |i| i.requests.len() < n)
            .unwrap();
        inner.requests.clone()
    }
}

fn api_json(status: StatusCode, body: Value) -> Response {
    (
        status,
        [("content-type", "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

fn api_error(error: &str) -> Response {
    api_json(StatusCode::OK, json!({"ok": false, "error": error}))
}

fn text(status: StatusCode, body: &str) -> Response {
    (
        status,
        [("content-type", "text/plain; charset=utf-8")],
        body.to_owned(),
    )
        .into_response()
}

/// Percent-decodes a form component (`+` is a space).
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

/// A JSON body as is; a form body as an object of strings, with `blocks`
/// and `attachments` parsed as Slack does. `None` if neither.
fn parse_body(content_type: Option<&str>, raw: &str) -> Option<Value> {
    let form = content_type.is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if !form {
        return serde_json::from_str(raw).ok().filter(Value::is_object);
    }
    let mut map = Map::new();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (decode(k), decode(v));
        let value = match k.as_str() {
            "blocks" | "attachments" => serde_json::from_str(&v).unwrap_or(Value::String(v)),
            _ => Value::String(v),
        };
        map.insert(k, value);
    }
    Some(Value::Object(map))
}

/// The ts at position `n` (from 1): `1700000000.000100`, `...000200`, ...
fn ts(n: u64) -> String {
    let micros = n * 100;
    format!(
        "{}.{:06}",
        1_700_000_000 + micros / 1_000_000,
        micros % 1_000_000
    )
}

async fn handle(
    shared: &Shared,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (authorization, content_type) = (header("authorization"), header("content-type"));
    let raw_body = String::from_utf8_lossy(&body).into_owned();
    let delay = shared.inner.lock().unwrap().delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    // `{api_url}/` + method may arrive with a doubled slash.
    let mut path = uri.path().to_owned();
    while path.contains("//") {
        path = path.replace("//", "/");
    }
    let mut inner = shared.inner.lock().unwrap();
    let (response, error) = answer(
        &mut inner,
        &method,
        &path,
        authorization.as_deref(),
        content_type.as_deref(),
        &raw_body,
    );
    inner.requests.push(RequestRecord {
        method: method.to_string(),
        path,
        authorization,
        content_type,
        raw_body,
        status: response.status().as_u16(),
        error,
        at: Instant::now(),
    });
    shared.arrived.notify_all();
    response
}

/// The answer and its error, if any.
fn answer(
    inner: &mut Inner,
    method: &Method,
    path: &str,
    auth: Option<&str>,
    content_type: Option<&str>,
    raw: &str,
) -> (Response, Option<String>) {
    let refuse = |e: &str| (api_error(e), Some(e.to_owned()));
    let bot = path == "/api/chat.postMessage";
    if !bot && path != WEBHOOK_PATH {
        let (status, e) = if path.starts_with("/api/") {
            (StatusCode::OK, "unknown_method")
        } else {
            (StatusCode::NOT_FOUND, "no_service")
        };
        if status == StatusCode::OK {
            return refuse(e);
        }
        return (text(status, e), Some(e.to_owned()));
    }
    if inner.outage_until.is_some_and(|u| Instant::now() < u) {
        let e = "service_unavailable";
        let body = json!({"ok": false, "error": e});
        return (
            api_json(StatusCode::SERVICE_UNAVAILABLE, body),
            Some(e.to_owned()),
        );
    }
    if let Some(fault) = inner.faults.pop_front() {
        return match fault {
            Fault::RateLimited(secs) => {
                let e = "ratelimited";
                let mut r = api_json(
                    StatusCode::TOO_MANY_REQUESTS,
                    json!({"ok": false, "error": e}),
                );
                r.headers_mut()
                    .insert("retry-after", secs.to_string().parse().unwrap());
                (r, Some(e.to_owned()))
            }
            Fault::ServerError => {
                let e = "fatal_error";
                let body = json!({"ok": false, "error": e});
                (
                    api_json(StatusCode::INTERNAL_SERVER_ERROR, body),
                    Some(e.to_owned()),
                )
            }
        };
    }
    if method != Method::POST {
        let e = "invalid_request";
        return (text(StatusCode::METHOD_NOT_ALLOWED, e), Some(e.to_owned()));
    }
    let body = parse_body(content_type, raw);
    let has_content = |b: &Value| {
        ["text", "blocks", "attachments"]
            .iter()
            .any(|k| b.get(k).is_some_and(|v| !v.is_null()))
    };
    let now = Instant::now();
    if !bot {
        let Some(body) = body else {
            let e = "invalid_payload";
            return (text(StatusCode::BAD_REQUEST, e), Some(e.to_owned()));
        };
        if !has_content(&body) {
            let e = "no_text";
            return (text(StatusCode::BAD_REQUEST, e), Some(e.to_owned()));
        }
        inner.messages.push(SlackMessage {
            via: Via::Webhook,
            ts: None,
            thread_ts: body["thread_ts"].as_str().map(str::to_owned),
            body,
            at: now,
        });
        return (text(StatusCode::OK, "ok"), None);
    }
    let Some(body) = body else {
        return refuse("invalid_json");
    };
    let body_token = body["token"].as_str().map(|t| format!("Bearer {t}"));
    match auth.map(str::to_owned).or(body_token) {
        None => return refuse("not_authed"),
        Some(a) if a != format!("Bearer {BOT_TOKEN}") => return refuse("invalid_auth"),
        Some(_) => {}
    }
    let Some(channel) = body["channel"]
        .as_str()
        .and_then(|c| inner.channels.get(c))
        .cloned()
    else {
        return refuse("channel_not_found");
    };
    if !has_content(&body) {
        return refuse("no_text");
    }
    let thread_ts = body["thread_ts"]
        .as_str()
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    if let Some(t) = &thread_ts
        && !inner.posted.get(&channel).is_some_and(|p| p.contains(t))
    {
        return refuse("thread_not_found");
    }
    inner.next_ts += 1;
    let ts = ts(inner.next_ts);
    inner
        .posted
        .entry(channel.clone())
        .or_default()
        .push(ts.clone());
    let mut message = json!({
        "type": "message",
        "user": "U0STANDIN",
        "bot_id": "B0STANDIN",
        "text": body["text"].as_str().unwrap_or(""),
        "ts": ts,
    });
    for key in ["blocks", "attachments"] {
        if let Some(v) = body.get(key).filter(|v| !v.is_null()) {
            message[key] = v.clone();
        }
    }
    if let Some(t) = &thread_ts {
        message["thread_ts"] = json!(t);
    }
    inner.messages.push(SlackMessage {
        via: Via::Bot {
            channel: channel.clone(),
        },
        ts: Some(ts.clone()),
        thread_ts,
        body,
        at: now,
    });
    let answer = json!({"ok": true, "channel": channel, "ts": ts, "message": message});
    (api_json(StatusCode::OK, answer), None)
}
