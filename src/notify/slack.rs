//! The `slack` destination: a Block Kit message per alert, through an
//! incoming webhook or a bot token (`chat.postMessage`) with slack-morphism.
//!
//! With a bot token, repeats that `suppress` quieted go as replies in the
//! thread of the alert they repeat. Every value from an event is escaped
//! (see [`crate::text::slack_plain`]); Slack's size limits are kept by
//! cutting text, never by failing.

use std::sync::Arc;
use std::time::Duration;

use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;

use super::format::{self, Style};
use super::{Accepted, Destination, Parcel, SendError, Sending};
use crate::alert::Alert;
use crate::config::Secret;
use crate::text::{mrkdwn, slack_plain};

/// Slack's limits, from its Block Kit reference.
const HEADER_MAX: usize = 150;
const SECTION_MAX: usize = 3000;
const FIELD_MAX: usize = 2000;
const FIELDS_MAX: usize = 10;
const BLOCKS_MAX: usize = 50;
const FALLBACK_MAX: usize = 3000;
/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(30);

type Client = SlackClient<SlackClientHyperHttpsConnector>;

/// Where the messages go.
enum Target {
    Webhook(Secret),
    Bot {
        token: SlackApiToken,
        channel: String,
    },
}

pub struct Slack {
    name: String,
    client: Arc<Client>,
    target: Target,
    style: Style,
}

/// Why a Slack destination cannot be set up.
#[derive(Debug, thiserror::Error)]
#[error("destination `{name}`: {message}")]
pub struct SlackSetupError {
    pub name: String,
    pub message: String,
}

impl Slack {
    /// A destination posting to an incoming webhook, or with a bot token
    /// to `channel` through the Web API at `api_url`.
    pub fn new(
        name: &str,
        webhook_url: Option<&Secret>,
        bot_token: Option<&Secret>,
        channel: Option<&str>,
        api_url: Option<&str>,
        style: Style,
    ) -> Result<Slack, SlackSetupError> {
        let fail = |message: String| SlackSetupError {
            name: name.to_owned(),
            message,
        };
        crate::tls::init();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| fail(format!("cannot load the system's CA certificates: {e}")))?
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .build();
        let mut connector = SlackClientHyperConnector::with_connector(https);
        let target = match (webhook_url, bot_token, channel) {
            (Some(url), _, _) => {
                super::secure_url(url.expose(), "webhook_url").map_err(fail)?;
                Target::Webhook(url.clone())
            }
            (None, Some(token), Some(channel)) => {
                if let Some(api) = api_url {
                    super::secure_url(api, "api_url").map_err(fail)?;
                    let api = if api.ends_with('/') {
                        api.to_owned()
                    } else {
                        format!("{api}/")
                    };
                    connector = connector.with_slack_api_url(&api);
                }
                Target::Bot {
                    token: SlackApiToken::new(token.expose().into()),
                    channel: channel.to_owned(),
                }
            }
            _ => {
                return Err(fail(
                    "give `webhook_url`, or `bot_token` with `channel`".to_owned(),
                ));
            }
        };
        Ok(Slack {
            name: name.to_owned(),
            client: Arc::new(SlackClient::new(connector)),
            target,
            style,
        })
    }

    async fn post(&self, alert: &Alert, thread: Option<&str>) -> Result<Accepted, SendError> {
        let content = if alert.facts.repeat {
            repeat_message(alert, &self.style)
        } else {
            message(alert, &self.style)
        };
        match &self.target {
            Target::Webhook(url) => {
                let url: url::Url = url
                    .expose()
                    .parse()
                    .map_err(|_| SendError::Permanent("the webhook URL is not a URL".into()))?;
                let request = SlackApiPostWebhookMessageRequest::new(content);
                let sent =
                    tokio::time::timeout(TIMEOUT, self.client.post_webhook_message(&url, &request))
                        .await
                        .map_err(|_| timed_out())?;
                sent.map_err(|e| error(e, false))?;
                Ok(Accepted::answer("ok"))
            }
            Target::Bot { token, channel } => {
                let session = self.client.open_session(token);
                let mut request =
                    SlackApiChatPostMessageRequest::new(channel.clone().into(), content)
                        .with_unfurl_links(false)
                        .with_unfurl_media(false)
                        .with_link_names(false)
                        .with_parse("none".into());
                if let Some(ts) = thread {
                    request = request.with_thread_ts(ts.to_owned().into());
                    if !alert.facts.repeat {
                        // A new alert of an open incident: in its thread,
                        // and in the channel too.
                        request = request.with_reply_broadcast(true);
                    }
                }
                let sent = tokio::time::timeout(TIMEOUT, session.chat_post_message(&request))
                    .await
                    .map_err(|_| timed_out())?;
                let reply = sent.map_err(|e| error(e, true))?;
                Ok(Accepted {
                    // A reply cannot start a thread: replies go to the root.
                    thread: Some(thread.map_or_else(|| reply.ts.to_string(), str::to_owned)),
                    answer: format!("ok, message ts {} in {}", reply.ts, reply.channel),
                })
            }
        }
    }
}

impl Destination for Slack {
    fn name(&self) -> &str {
        &self.name
    }

    fn send<'a>(&'a self, parcel: &'a Parcel<'a>) -> Sending<'a> {
        Box::pin(self.post(&parcel.delivery.alert, parcel.thread))
    }

    /// About one message per second per channel, as Slack asks.
    fn min_interval(&self) -> Duration {
        Duration::from_millis(1100)
    }

    fn threads_repeats(&self) -> bool {
        matches!(self.target, Target::Bot { .. })
    }
}

fn timed_out() -> SendError {
    SendError::Retry {
        message: format!("Slack did not answer within {}s", TIMEOUT.as_secs()),
        after: None,
    }
}

/// Slack API errors that trying again cannot fix.
const PERMANENT: &[&str] = &[
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "no_permission",
    "missing_scope",
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "invalid_blocks",
    "invalid_blocks_format",
    "msg_too_long",
    "no_text",
    "restricted_action",
    "ekm_access_denied",
    "team_access_not_granted",
    "invalid_arguments",
    "no_service",
    "no_service_id",
    "no_team",
    "team_disabled",
    "invalid_token",
    "action_prohibited",
    "posting_to_general_channel_denied",
    "channel_is_archived",
];

/// Sorts a client error into worth retrying or not, in words that say what
/// to check (never with the token or the webhook URL).
fn error(e: SlackClientError, bot: bool) -> SendError {
    let key = if bot { "bot_token" } else { "webhook_url" };
    match e {
        SlackClientError::RateLimitError(r) => SendError::Retry {
            message: "Slack is rate limiting (429)".into(),
            after: r.retry_after,
        },
        SlackClientError::ApiError(a) => {
            let code = crate::text::plain(&a.code).into_owned();
            if PERMANENT.contains(&a.code.as_str()) {
                let hint = match a.code.as_str() {
                    "invalid_auth" | "not_authed" | "token_revoked" | "token_expired"
                    | "account_inactive" | "invalid_token" => {
                        format!(": check `{key}`")
                    }
                    "channel_not_found" | "not_in_channel" | "is_archived" => {
                        ": check `channel`, and that the bot is a member of it".into()
                    }
                    "missing_scope" | "no_permission" => {
                        ": the bot token needs the `chat:write` scope".into()
                    }
                    _ => String::new(),
                };
                SendError::Permanent(format!("Slack refused the message: {code}{hint}"))
            } else {
                SendError::Retry {
                    message: format!("Slack answered an error: {code}"),
                    after: None,
                }
            }
        }
        SlackClientError::HttpError(h) => {
            let status = h.status_code.as_u16();
            let body = h
                .http_response_body
                .as_deref()
                .map(|b| format::cut(&crate::text::plain(b), 200))
                .unwrap_or_default();
            if status >= 500 || status == 408 {
                SendError::Retry {
                    message: format!("Slack answered HTTP {status} {body}"),
                    after: None,
                }
            } else {
                let hint = match status {
                    401 | 403 | 404 | 410 => format!(": check `{key}`"),
                    _ => String::new(),
                };
                SendError::Permanent(format!("Slack answered HTTP {status} {body}{hint}"))
            }
        }
        other => SendError::Retry {
            message: format!(
                "cannot reach Slack: {}",
                format::cut(&crate::text::plain(&other.to_string()), 300)
            ),
            after: None,
        },
    }
}

fn plain(text: &str) -> SlackBlockPlainText {
    SlackBlockPlainText::new(text.to_owned()).with_emoji(false)
}

fn label(text: &str) -> SlackBlockText {
    SlackBlockText::MarkDown(SlackBlockMarkDownText::new(format!("*{text}*")))
}

/// The message of an alert: header, summary, facts, the rule's
/// description, ids; a plain fallback text for notifications.
pub fn message(alert: &Alert, style: &Style) -> SlackMessageContent {
    let mut blocks: Vec<SlackBlock> = Vec::new();
    let header = format!(
        "{} {}",
        format::mark(alert.severity),
        format::subject(alert)
    );
    blocks.push(
        SlackHeaderBlock::new(SlackBlockPlainTextOnly::from(plain(&format::cut(
            &slack_plain(&header),
            HEADER_MAX,
        ))))
        .into(),
    );
    blocks.push(
        SlackSectionBlock::new()
            .with_text(SlackBlockText::Plain(plain(&format::cut(
                &slack_plain(&alert.summary),
                SECTION_MAX,
            ))))
            .into(),
    );
    // Facts as label | value pairs: labels are ours (mrkdwn), values are
    // shown exactly (plain text).
    let facts = format::facts(alert, style);
    for chunk in facts.chunks(FIELDS_MAX / 2) {
        let fields = chunk
            .iter()
            .flat_map(|(name, value)| {
                [
                    label(name),
                    SlackBlockText::Plain(plain(&format::cut(&slack_plain(value), FIELD_MAX))),
                ]
            })
            .collect();
        blocks.push(SlackSectionBlock::new().with_fields(fields).into());
    }
    if let Some(d) = &alert.facts.description {
        blocks.push(
            SlackSectionBlock::new()
                .with_text(SlackBlockText::Plain(plain(&format::cut(
                    &slack_plain(d),
                    SECTION_MAX,
                ))))
                .into(),
        );
    }
    blocks.push(context(alert));
    blocks.truncate(BLOCKS_MAX);
    SlackMessageContent::new()
        .with_text(fallback(alert))
        .with_blocks(blocks)
}

/// A repeat, as a short reply in the thread of the alert it repeats.
pub fn repeat_message(alert: &Alert, style: &Style) -> SlackMessageContent {
    let line = format!(
        "Repeat at {}: {}",
        style.when(alert.effective_at),
        alert.summary
    );
    let blocks: Vec<SlackBlock> = vec![
        SlackSectionBlock::new()
            .with_text(SlackBlockText::Plain(plain(&format::cut(
                &slack_plain(&line),
                SECTION_MAX,
            ))))
            .into(),
        context(alert),
    ];
    SlackMessageContent::new()
        .with_text(format::cut(&mrkdwn(&line), FALLBACK_MAX))
        .with_blocks(blocks)
}

/// The ids: rule, event, and the other events of a threshold.
fn context(alert: &Alert) -> SlackBlock {
    let mut ids = format!("rule {} \u{b7} event {}", alert.rule_id, alert.event_id);
    let others = alert.event_ids.len().saturating_sub(1);
    if others > 0 {
        ids.push_str(&format!(
            " \u{b7} {others} more event{}",
            if others == 1 { "" } else { "s" }
        ));
    }
    SlackContextBlock::new(vec![SlackContextBlockElement::Plain(plain(&format::cut(
        &slack_plain(&ids),
        FIELD_MAX,
    )))])
    .into()
}

/// The notification text: severity, title and summary, escaped for mrkdwn.
fn fallback(alert: &Alert) -> String {
    format::cut(
        &mrkdwn(&format!("{}: {}", format::subject(alert), alert.summary)),
        FALLBACK_MAX,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Facts;
    use crate::rules::Severity;

    fn huge() -> Alert {
        Alert {
            rule_id: "r".into(),
            severity: Severity::High,
            title: "T".repeat(400),
            summary: "<!channel> ".repeat(1000),
            event_id: "e".into(),
            event_ids: (0..500).map(|i| format!("e{i}")).collect(),
            effective_at: 1_764_688_445,
            suppressed: 3,
            facts: Facts {
                event_type: "api_key.created".into(),
                actor: Some("a".repeat(5000)),
                ip: Some("203.0.113.7".into()),
                place: Some("x".into()),
                project: Some("p".into()),
                user_agent: Some("u".repeat(5000)),
                api_key_id: Some("key".into()),
                description: Some("d".repeat(10_000)),
                first_at: Some(1_764_688_000),
                window: Some(600),
                ..Facts::default()
            },
        }
    }

    fn texts(v: &serde_json::Value) -> Vec<(String, usize)> {
        let mut out = Vec::new();
        if let Some(blocks) = v["blocks"].as_array() {
            for b in blocks {
                let kind = b["type"].as_str().unwrap_or("").to_owned();
                if let Some(t) = b["text"]["text"].as_str() {
                    out.push((kind.clone(), t.chars().count()));
                }
                for f in b["fields"].as_array().into_iter().flatten() {
                    out.push(("field".into(), f["text"].as_str().unwrap().chars().count()));
                }
            }
        }
        out
    }

    #[test]
    fn slack_limits_are_kept_by_cutting() {
        let v = serde_json::to_value(message(&huge(), &Style::default())).unwrap();
        let blocks = v["blocks"].as_array().unwrap();
        assert!(blocks.len() <= BLOCKS_MAX);
        for b in blocks {
            if let Some(f) = b["fields"].as_array() {
                assert!(f.len() <= FIELDS_MAX, "{} fields", f.len());
            }
        }
        for (kind, n) in texts(&v) {
            let max = match kind.as_str() {
                "header" => HEADER_MAX,
                "field" => FIELD_MAX,
                _ => SECTION_MAX,
            };
            assert!(n <= max, "{kind}: {n} > {max}");
        }
        assert!(v["text"].as_str().unwrap().chars().count() <= FALLBACK_MAX);
        // Threshold count and quieted repeats are among the facts.
        let all = v.to_string();
        assert!(all.contains("500 events in 7m 25s (window 10m)"), "{all}");
        assert!(all.contains("3 since the previous alert"), "{all}");
        assert!(!all.contains("<!channel>"));
    }
}
