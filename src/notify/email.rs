//! The `email` destination: each alert as one multipart message (text and
//! HTML) over SMTP with lettre, subject `[SEVERITY] title`; and the
//! templates and mailer that digests share.
//!
//! Templates are minijinja, compiled once; the HTML ones escape every value.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::{AsyncSmtpTransport, PoolConfig};
use lettre::{AsyncTransport, Message, Tokio1Executor};
use minijinja::{AutoEscape, Environment, Value, context};

use super::format::{self, Style};
use super::{Accepted, Destination, Earlier, Parcel, SendError, Sending};
use crate::alert::Alert;
use crate::config::{SmtpConfig, SmtpTls};
use crate::rules::Severity;

const TIMEOUT: Duration = Duration::from_secs(30);

/// A mail server and who the mail is from.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// `host:port`, for messages.
    server: String,
}

/// Why an email destination cannot be set up.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EmailSetupError(pub String);

impl Mailer {
    pub fn new(smtp: &SmtpConfig) -> Result<Mailer, EmailSetupError> {
        crate::tls::init();
        let fail = |m: String| EmailSetupError(m);
        let from: Mailbox = smtp
            .from
            .parse()
            .map_err(|e| fail(format!("smtp.from {:?} is not an address: {e}", smtp.from)))?;
        let loopback = matches!(
            smtp.host.as_str(),
            "localhost" | "127.0.0.1" | "::1" | "[::1]"
        );
        let builder = match smtp.tls {
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)
                .map_err(|e| fail(format!("smtp: {e}")))?,
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host)
                .map_err(|e| fail(format!("smtp: {e}")))?,
            SmtpTls::None => {
                if !loopback {
                    return Err(fail(format!(
                        "smtp.tls is `none` but smtp.host is {}: mail without TLS goes only to localhost; use `starttls` or `tls`",
                        smtp.host
                    )));
                }
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
            }
        };
        let port = smtp.port.unwrap_or(match smtp.tls {
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        });
        let mut builder = builder
            .port(port)
            .timeout(Some(TIMEOUT))
            .pool_config(PoolConfig::new().max_size(2));
        if let (Some(user), Some(pass)) = (&smtp.username, &smtp.password)
            && !user.is_empty()
        {
            builder = builder.credentials(Credentials::new(
                user.expose().to_owned(),
                pass.expose().to_owned(),
            ));
        }
        Ok(Mailer {
            transport: builder.build(),
            from,
            server: format!("{}:{port}", smtp.host),
        })
    }

    /// Sends one message to `to`; the server's answer on success. With
    /// `incident`, the message belongs to that incident's thread: the
    /// incident's first alert starts it, the others reply to it.
    pub async fn send(
        &self,
        to: &[Mailbox],
        subject: &str,
        text: String,
        html: String,
        incident: Option<Incident<'_>>,
    ) -> Result<String, SendError> {
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(subject.replace(['\r', '\n'], " "));
        if let Some(incident) = incident {
            let id = incident.message_id();
            builder = if incident.first {
                builder.message_id(Some(id))
            } else {
                builder.in_reply_to(id.clone()).references(id)
            };
        }
        for m in to {
            builder = builder.to(m.clone());
        }
        let message = builder
            .multipart(MultiPart::alternative_plain_html(text, html))
            .map_err(|e| SendError::Permanent(format!("cannot build the message: {e}")))?;
        let sent = tokio::time::timeout(TIMEOUT, self.transport.send(message))
            .await
            .map_err(|_| SendError::Retry {
                message: format!("the mail server {} did not answer in time", self.server),
                after: None,
            })?;
        match sent {
            Ok(r) => Ok(format!(
                "{} {}",
                r.code(),
                crate::text::plain(&r.message().collect::<Vec<_>>().join(" "))
            )),
            Err(e) => {
                let text = crate::text::plain(&e.to_string()).into_owned();
                if e.is_permanent() {
                    Err(SendError::Permanent(format!(
                        "the mail server {} refused the message: {text}",
                        self.server
                    )))
                } else {
                    Err(SendError::Retry {
                        message: format!("mail server {}: {text}", self.server),
                        after: None,
                    })
                }
            }
        }
    }
}

/// Parses the recipients of a destination.
pub fn recipients(name: &str, to: &[String]) -> Result<Vec<Mailbox>, EmailSetupError> {
    if to.is_empty() {
        return Err(EmailSetupError(format!(
            "destination `{name}`: `to` lists no address"
        )));
    }
    to.iter()
        .map(|a| {
            a.parse().map_err(|e| {
                EmailSetupError(format!(
                    "destination `{name}`: {a:?} is not an address: {e}"
                ))
            })
        })
        .collect()
}

/// The mail templates, compiled once.
pub struct Templates {
    env: Environment<'static>,
}

impl Default for Templates {
    fn default() -> Templates {
        Templates::new()
    }
}

impl Templates {
    pub fn new() -> Templates {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        for (name, text) in [
            ("alert.txt", include_str!("templates/alert.txt")),
            ("alert.html", include_str!("templates/alert.html")),
            ("digest.txt", include_str!("templates/digest.txt")),
            ("digest.html", include_str!("templates/digest.html")),
        ] {
            env.add_template(name, text)
                .expect("the mail templates compile");
        }
        Templates { env }
    }

    /// Renders template `name` with `ctx`.
    pub fn render(&self, name: &str, ctx: Value) -> Result<String, SendError> {
        self.env
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|e| SendError::Permanent(format!("cannot render the {name} template: {e}")))
    }

    /// Subject, text and HTML of the mail of one alert; when `earlier`
    /// holds alerts of its incident, the mail ends with the incident's
    /// timeline so far.
    pub fn alert(
        &self,
        alert: &Alert,
        earlier: Earlier<'_>,
        style: &Style,
    ) -> Result<(String, String, String), SendError> {
        let subject = safe(&format::subject(alert));
        let facts: Vec<Value> = format::facts(alert, style)
            .into_iter()
            .map(|(name, value)| context! { name, value => safe(&value) })
            .collect();
        let ctx = context! {
            subject => subject.clone(),
            severity => format::label(alert.severity),
            color => color(alert.severity),
            title => safe(&alert.title),
            summary => safe(&alert.summary),
            facts,
            description => alert.facts.description.as_deref().map(safe),
            rule_id => safe(&alert.rule_id),
            event_id => safe(&alert.event_id),
            more_events => alert.event_ids.len().saturating_sub(1),
            zone => style.zone_name(),
            timeline => timeline(alert, earlier, style),
            incident_total => earlier.total + 1,
            timeline_hidden => earlier.total.saturating_sub(earlier.alerts.len() as u64),
        };
        let text = self.render("alert.txt", ctx.clone())?;
        let html = self.render("alert.html", ctx)?;
        Ok((subject, text, html))
    }
}

/// The rows of an incident's timeline, the alert being sent last; none
/// when the alert is its incident's first.
fn timeline(alert: &Alert, earlier: Earlier<'_>, style: &Style) -> Vec<Value> {
    if earlier.total == 0 {
        return Vec::new();
    }
    let row = |a: &Alert, current: bool| {
        context! {
            when => style.when(a.effective_at),
            severity => format::label(a.severity),
            color => color(a.severity),
            title => safe(&a.title),
            summary => safe(&a.summary),
            current,
        }
    };
    earlier
        .alerts
        .iter()
        .map(|a| row(a, false))
        .chain(std::iter::once(row(alert, true)))
        .collect()
}

/// Untrusted text with control and bidi characters made visible; the HTML
/// templates escape the rest.
pub fn safe(text: &str) -> String {
    crate::text::plain_lines(text).into_owned()
}

/// The color of a severity in mail.
pub fn color(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "#d1242f",
        Severity::High => "#e16f24",
        Severity::Medium => "#bf8700",
        Severity::Low => "#0969da",
        Severity::Info => "#6e7781",
    }
}

/// Alerts one by one, as they come.
pub struct Email {
    name: String,
    mailer: Mailer,
    to: Vec<Mailbox>,
    templates: Arc<Templates>,
    style: Style,
}

impl Email {
    pub fn new(
        name: &str,
        mailer: Mailer,
        to: Vec<Mailbox>,
        templates: Arc<Templates>,
        style: Style,
    ) -> Email {
        Email {
            name: name.to_owned(),
            mailer,
            to,
            templates,
            style,
        }
    }
}

/// The incident a message belongs to, for mail clients to thread it.
#[derive(Debug, Clone, Copy)]
pub struct Incident<'a> {
    pub id: &'a str,
    /// Whether the message is the incident's first alert.
    pub first: bool,
}

impl<'a> Incident<'a> {
    /// The incident of `alert`, if it has one.
    pub fn of(alert: &'a Alert) -> Option<Incident<'a>> {
        let id = alert.facts.incident.as_deref()?;
        Some(Incident {
            id,
            first: id.strip_prefix("incident-") == Some(alert.event_id.as_str()),
        })
    }

    /// `<incident-…@auditwatch>`, with only letters, digits, `.`, `_` and
    /// `-` kept of the id (it holds an event id, which is untrusted).
    pub fn message_id(&self) -> String {
        let safe: String = self
            .id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            .take(200)
            .collect();
        format!("<{safe}@auditwatch>")
    }
}

impl Destination for Email {
    fn name(&self) -> &str {
        &self.name
    }

    fn shows_timeline(&self) -> bool {
        true
    }

    fn send<'a>(&'a self, parcel: &'a Parcel<'a>) -> Sending<'a> {
        Box::pin(async move {
            let (subject, text, html) =
                self.templates
                    .alert(&parcel.delivery.alert, parcel.earlier, &self.style)?;
            let alert = &parcel.delivery.alert;
            let answer = self
                .mailer
                .send(&self.to, &subject, text, html, Incident::of(alert))
                .await?;
            Ok(Accepted::answer(&answer))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(event: &str, title: &str, summary: &str, at: i64) -> Alert {
        Alert {
            rule_id: "r".into(),
            severity: Severity::High,
            title: title.into(),
            summary: summary.into(),
            event_id: event.into(),
            event_ids: vec![event.into()],
            effective_at: at,
            suppressed: 0,
            facts: crate::alert::Facts {
                incident: Some("incident-e1".into()),
                ..Default::default()
            },
        }
    }

    #[test]
    fn a_later_mail_of_an_incident_lists_its_timeline_escaped() {
        let style = Style::in_zone(Some("UTC"));
        let templates = Templates::new();
        let earlier = [
            alert(
                "e2",
                "Owner granted",
                "<script>x</script> \u{202E}gro",
                1_000,
            ),
            alert("e3", "Key created", "k", 1_060),
        ];
        let now = alert("e4", "Allowlist deleted", "gone", 1_120);
        let (_, text, html) = templates
            .alert(
                &now,
                Earlier {
                    alerts: &earlier,
                    total: 5,
                },
                &style,
            )
            .unwrap();
        let at = text.find("Incident timeline (6 alerts):").expect(&text);
        let rows: Vec<&str> = text[at..].lines().skip(1).take(4).collect();
        assert_eq!(rows[0], "  ... 3 earlier", "{text}");
        assert!(rows[1].contains("Owner granted"), "{text}");
        assert!(!text.contains('\u{202E}'), "{text}");
        assert!(rows[2].contains("Key created"), "{text}");
        assert!(rows[3].contains("Allowlist deleted") && rows[3].ends_with("<- this alert"));
        assert!(html.contains("&lt;script&gt;x&lt;"), "{html}");
        assert!(!html.contains("<script>") && !html.contains('\u{202E}'));
        assert!(html.contains("&hellip; 3 earlier"), "{html}");

        let (_, first, _) = templates.alert(&now, Earlier::default(), &style).unwrap();
        assert!(!first.contains("Incident timeline"), "{first}");
    }
}
