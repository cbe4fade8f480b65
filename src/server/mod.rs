//! The watcher's HTTP server (`server.listen`): `/healthz`, `/readyz`,
//! `/metrics` in Prometheus text form, and a read-only status page.
//!
//! An optional bearer token (`server.token`) guards every path but
//! `/healthz`. Values from events are HTML-escaped on the status page.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub use crate::telemetry::{Telemetry, telemetry};

use crate::config::Secret;
use crate::notify::{SharedStore, with_store};
use crate::rules::RuleSet;
use crate::store::DeliveryStatus;
use crate::text::html;

/// What the server shows.
pub struct Status {
    pub store: SharedStore,
    /// The rules in force (swapped by a reload).
    pub rules: RwLock<Arc<RuleSet>>,
    /// How often the watcher polls: `/healthz` fails after three polls'
    /// worth of time (and a minute) without a successful one.
    pub poll_interval: Duration,
    pub token: Option<Secret>,
    /// The destinations' names, shown even while nothing waits for them.
    pub destinations: Vec<String>,
}

impl Status {
    /// The rules in force.
    pub fn rules(&self) -> Arc<RuleSet> {
        self.rules.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Puts reloaded rules on the page.
    pub fn set_rules(&self, rules: Arc<RuleSet>) {
        *self.rules.write().unwrap_or_else(|p| p.into_inner()) = rules;
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[error("server.listen {listen}: {message}")]
pub struct ServerError {
    pub listen: String,
    pub message: String,
}

/// Binds `listen` now (so a bad address fails the start) and serves until
/// `stop` turns true.
pub async fn serve(
    listen: &str,
    status: Arc<Status>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, ServerError> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| ServerError {
            listen: listen.to_owned(),
            message: e.to_string(),
        })?;
    let app = axum::Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/", get(page))
        .with_state(status);
    tracing::info!(listen = %listen, "status server listening");
    Ok(tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
    }))
}

/// `Some(response)` when the request lacks the token.
fn refused(status: &Status, headers: &HeaderMap) -> Option<Response> {
    let token = status.token.as_ref().filter(|t| !t.is_empty())?;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given == Some(token.expose()) {
        return None;
    }
    Some(
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "a bearer token is needed (server.token)\n",
        )
            .into_response(),
    )
}

async fn healthz(State(status): State<Arc<Status>>) -> Response {
    let t = telemetry();
    let now = crate::time::now();
    let allowed = (status.poll_interval.as_secs() as i64) * 3 + 60;
    match t.last_ok() {
        Some(at) if now - at <= allowed => (StatusCode::OK, "ok\n").into_response(),
        Some(at) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "no successful poll for {}s (last error: {})\n",
                now - at,
                crate::text::plain(&t.last_error().unwrap_or_else(|| "none".into()))
            ),
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "no successful poll yet (last error: {})\n",
                crate::text::plain(&t.last_error().unwrap_or_else(|| "none".into()))
            ),
        )
            .into_response(),
    }
}

async fn readyz(State(status): State<Arc<Status>>, headers: HeaderMap) -> Response {
    if let Some(r) = refused(&status, &headers) {
        return r;
    }
    if telemetry().ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the first poll has not committed yet\n",
        )
            .into_response()
    }
}

/// Counts the outbox by destination into the gauge.
fn refresh_outbox(status: &Status) {
    if let Ok(counts) = with_store(&status.store, |s| s.queued_counts()) {
        let t = telemetry();
        t.outbox.clear();
        for (destination, n) in counts {
            t.outbox
                .get_or_create(&crate::telemetry::DestinationLabel { destination })
                .set(n as i64);
        }
    }
}

async fn metrics(State(status): State<Arc<Status>>, headers: HeaderMap) -> Response {
    if let Some(r) = refused(&status, &headers) {
        return r;
    }
    refresh_outbox(&status);
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, &telemetry().registry).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn page(State(status): State<Arc<Status>>, headers: HeaderMap) -> Response {
    if let Some(r) = refused(&status, &headers) {
        return r;
    }
    let t = telemetry();
    let now = crate::time::now();
    let (alerts, deliveries) = with_store(&status.store, |s| {
        (s.recent_alerts(500), s.deliveries(false))
    });
    let alerts = alerts.unwrap_or_default();
    let deliveries = deliveries.unwrap_or_default();
    let mut body = String::from(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>auditwatch</title>\
         <style>body{font:14px/1.4 -apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#1d1c1d}\
         table{border-collapse:collapse;margin:8px 0 24px}td,th{border-bottom:1px solid #eee;padding:4px 10px;text-align:left}\
         </style></head><body><h1>auditwatch</h1>",
    );
    let last = match t.last_ok() {
        Some(at) => format!(
            "{} ({} ago)",
            crate::event::format_time(at),
            crate::notify::format::span(now - at)
        ),
        None => "none yet".into(),
    };
    body.push_str(&format!(
        "<p>Last successful poll: {}. API lag: {}. Last error: {}.</p>",
        html(&last),
        if t.last_ok().is_some() {
            crate::notify::format::span(t.api_lag.get())
        } else {
            "unknown".into()
        },
        html(&t.last_error().unwrap_or_else(|| "none".into()))
    ));
    if let Some((at, error)) = t.last_reload() {
        body.push_str(&format!(
            "<p>Last rule reload: {} ({}).</p>",
            crate::event::format_time(at),
            html(&error.unwrap_or_else(|| "ok".into()))
        ));
    }
    body.push_str("<h2>Destinations</h2><table><tr><th>destination</th><th>queued</th><th>failed</th><th>last error</th></tr>");
    let mut by_dest = std::collections::BTreeMap::<&str, (usize, usize, Option<&str>)>::new();
    for d in &status.destinations {
        by_dest.entry(d.as_str()).or_default();
    }
    for d in &deliveries {
        let e = by_dest.entry(d.destination.as_str()).or_default();
        match d.status {
            DeliveryStatus::Queued => e.0 += 1,
            DeliveryStatus::Failed => e.1 += 1,
            DeliveryStatus::Sent => {}
        }
        if let Some(err) = &d.last_error {
            e.2 = Some(err);
        }
    }
    for (d, (q, f, err)) in by_dest {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{q}</td><td>{f}</td><td>{}</td></tr>",
            html(d),
            html(err.unwrap_or(""))
        ));
    }
    body.push_str("</table><h2>Last alerts</h2><table><tr><th>time</th><th>severity</th><th>rule</th><th>summary</th></tr>");
    for a in alerts.iter().filter(|a| !a.facts.repeat).take(50) {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            crate::event::format_time(a.effective_at),
            a.severity,
            html(&a.rule_id),
            html(&a.summary)
        ));
    }
    body.push_str(
        "</table><h2>Rules</h2><p>Counts since the watcher started.</p><table><tr><th>rule</th><th>severity</th>\
         <th>matched</th><th>alerts</th><th>suppressed</th><th>errors</th></tr>",
    );
    let rules = status.rules().clone();
    for r in rules.rules() {
        let c = t.counts(&r.id, r.severity.as_str());
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            html(&r.id),
            r.severity,
            c.matched,
            c.alerts,
            c.suppressed,
            c.errors
        ));
    }
    body.push_str("</table></body></html>");
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}
