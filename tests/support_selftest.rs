//! The test support itself: the SMTP server fails, refuses and stores mail as
//! asked, and the Slack checker accepts good payloads and rejects bad ones.

mod support;

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use support::{SmtpOptions, SmtpServer};

/// Sends the same multipart/alternative message once per recipient list,
/// each on a new connection, with Python's smtplib; returns the SMTP code
/// each attempt ended with (250, or the failing reply's code).
const SEND: &str = r#"
import json, smtplib, sys
from email.message import EmailMessage
from email.utils import formatdate

port, login, attempts = int(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
m = EmailMessage()
m["From"] = "auditwatch <alerts@example.com>"
m["To"] = "secops@example.com"
m["Subject"] = "Admin key created"
m["Date"] = formatdate()
m["Message-ID"] = "<selftest-1@example.com>"
m.set_content("An admin key was created.\n")
m.add_alternative("<p>An admin key was <b>created</b>.</p>\n", subtype="html")

def send(to):
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
            if login:
                s.login(*login)
            s.send_message(m, to_addrs=to)
            return 250
    except smtplib.SMTPRecipientsRefused as e:
        return next(iter(e.recipients.values()))[0]
    except smtplib.SMTPResponseException as e:
        return e.smtp_code

print(json.dumps([send(to) for to in attempts]))
"#;

fn send(server: &SmtpServer, login: Option<(&str, &str)>, attempts: &[&[&str]]) -> Vec<u16> {
    let out = Command::new(support::python())
        .args(["-c", SEND])
        .arg(server.port.to_string())
        .arg(json!(login.map(|(u, p)| [u, p])).to_string())
        .arg(json!(attempts).to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "smtplib script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn smtp_server_fails_refuses_and_stores() {
    let server = SmtpServer::start(SmtpOptions {
        fail_first: 1,
        reject: Some("nobody".into()),
        ..Default::default()
    });
    let to = &["secops@example.com"][..];
    let codes = send(&server, None, &[to, to, &["nobody@example.com"]]);
    assert_eq!(codes, [451, 250, 550]);
    assert_eq!(
        server.log(),
        [
            "451 secops@example.com",
            "250 <selftest-1@example.com>",
            "550 nobody@example.com"
        ]
    );

    let mails = server.wait_for(1, Duration::from_secs(10));
    assert_eq!(mails.len(), 1, "{mails:#?}");
    let mail = &mails[0];
    assert_eq!(mail.subject, "Admin key created");
    assert_eq!(mail.from, "auditwatch <alerts@example.com>");
    assert_eq!(mail.to, ["secops@example.com"]);
    assert_eq!(mail.message_id.as_deref(), Some("<selftest-1@example.com>"));
    assert!(mail.date.is_some());
    assert_eq!(mail.content_type, "multipart/alternative");
    assert_eq!(mail.parts, ["text/plain", "text/html"]);
    assert_eq!(mail.text.as_deref(), Some("An admin key was created.\n"));
    assert_eq!(
        mail.html.as_deref(),
        Some("<p>An admin key was <b>created</b>.</p>\n")
    );

    // Dropping the server stops it.
    let addr = server.addr();
    drop(server);
    assert!(std::net::TcpStream::connect(addr).is_err());
}

#[test]
fn smtp_server_requires_login() {
    let server = SmtpServer::start(SmtpOptions {
        auth: Some(("alerts".into(), "s3cret".into())),
        ..Default::default()
    });
    let to = &["secops@example.com"][..];
    assert_eq!(send(&server, None, &[to]), [530]);
    assert_eq!(send(&server, Some(("alerts", "wrong")), &[to]), [535]);
    assert_eq!(send(&server, Some(("alerts", "s3cret")), &[to]), [250]);
    assert_eq!(server.wait_for(1, Duration::from_secs(10)).len(), 1);
}

fn alert(header: &str) -> Value {
    json!({
        "channel": "C0123456789",
        "text": "Admin key created by alice@example.com",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": header}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "*alice@example.com* created an admin key"}},
            {"type": "section", "fields": [
                {"type": "mrkdwn", "text": "*Actor*\nalice@example.com"},
                {"type": "mrkdwn", "text": "*IP*\n203.0.113.7"}
            ]},
            {"type": "divider"},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "rule `admin-key-created`"}]}
        ]
    })
}

#[test]
fn slack_checker_accepts_good_and_rejects_bad_payloads() {
    support::check_slack_payloads(&[
        alert("Admin key created"),
        json!({"text": "a reply", "thread_ts": "1773154800.000100"}),
    ]);

    let long = "H".repeat(200);
    let err = std::panic::catch_unwind(|| support::check_slack_payloads(&[alert(&long)]))
        .expect_err("a 200-character header must be rejected");
    let message = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        message.contains("payload 0 block 0: header text is 200 characters"),
        "{message}"
    );
}
