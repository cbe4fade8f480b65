//! The Slack and webhook stand-ins themselves, over HTTP: what the alert
//! tests rely on them to do like Slack and a webhook receiver.

mod serve;
mod slack;
mod webhook;

use std::time::Duration;

use serde_json::{Value, json};
use slack::{BOT_TOKEN, CHANNEL, SlackStandin, Via};
use webhook::WebhookStandin;

struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

fn post(url: &str, token: Option<&str>, body: &Value) -> Answer {
    let body = serde_json::to_vec(body).unwrap();
    send(url, token, "application/json; charset=utf-8", body)
}

fn send(url: &str, token: Option<&str>, content_type: &str, body: Vec<u8>) -> Answer {
    auditwatch::tls::init();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut req = reqwest::Client::new()
            .post(url)
            .header("content-type", content_type)
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        Answer {
            status: r.status().as_u16(),
            retry_after: r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned()),
            body: r.text().await.unwrap(),
        }
    })
}

fn chat(slack: &SlackStandin, token: Option<&str>, body: Value) -> Answer {
    post(
        &format!("{}/chat.postMessage", slack.api_url()),
        token,
        &body,
    )
}

#[test]
fn bot_messages_check_token_channel_and_thread() {
    let slack = SlackStandin::start();
    let msg = json!({"channel": CHANNEL, "text": "hello"});
    for (token, error) in [(None, "not_authed"), (Some("xoxb-wrong"), "invalid_auth")] {
        let a = chat(&slack, token, msg.clone());
        assert_eq!(
            (a.status, a.json()),
            (200, json!({"ok": false, "error": error}))
        );
    }
    let a = chat(
        &slack,
        Some(BOT_TOKEN),
        json!({"channel": "C999", "text": "x"}),
    );
    assert_eq!(a.json()["error"], "channel_not_found");

    let first = chat(&slack, Some(BOT_TOKEN), msg.clone()).json();
    assert_eq!(first["ok"], true, "{first}");
    assert_eq!(first["channel"], CHANNEL);
    let ts = first["ts"].as_str().unwrap().to_owned();
    assert_eq!(first["message"]["ts"], ts.as_str());
    assert_eq!(first["message"]["text"], "hello");

    let reply = json!({"channel": CHANNEL, "text": "more", "thread_ts": ts});
    let answer = chat(&slack, Some(BOT_TOKEN), reply);
    let parsed: slack_morphism::api::SlackApiChatPostMessageResponse =
        serde_json::from_str(&answer.body).expect("what slack-morphism reads");
    assert_eq!(parsed.message.origin.thread_ts.unwrap().0, ts);
    let second = answer.json();
    assert_eq!(second["message"]["thread_ts"], ts.as_str(), "{second}");
    assert!(
        second["ts"].as_str().unwrap() > ts.as_str(),
        "increasing ts"
    );
    let orphan = json!({"channel": CHANNEL, "text": "x", "thread_ts": "1.000001"});
    assert_eq!(
        chat(&slack, Some(BOT_TOKEN), orphan).json()["error"],
        "thread_not_found"
    );

    let form = format!("token={BOT_TOKEN}&channel={CHANNEL}&text=a+form%21");
    let url = format!("{}/chat.postMessage", slack.api_url());
    let a = send(&url, None, "application/x-www-form-urlencoded", form.into());
    assert_eq!(a.json()["message"]["text"], "a form!", "{}", a.body);

    let messages = slack.wait_for(3, Duration::from_secs(1));
    assert_eq!(messages.len(), 3);
    assert_eq!(
        messages[0].via,
        Via::Bot {
            channel: CHANNEL.into()
        }
    );
    assert_eq!(messages[1].thread_ts.as_deref(), Some(ts.as_str()));
    let requests = slack.requests();
    assert_eq!(requests.len(), 7);
    assert_eq!(requests[0].authorization, None);
    assert_eq!(requests[0].error.as_deref(), Some("not_authed"));
    assert_eq!(
        requests[1].authorization.as_deref(),
        Some("Bearer xoxb-wrong")
    );
    assert_eq!(slack.too_fast(), 2, "the three accepted came at once");
}

#[test]
fn webhook_and_faults() {
    let slack = SlackStandin::start();
    let hook = slack.webhook_url();
    let a = post(&hook, None, &json!({"text": "hi"}));
    assert_eq!((a.status, a.body.as_str()), (200, "ok"));
    let wrong = hook.replace("secretpart", "other");
    let a = post(&wrong, None, &json!({"text": "hi"}));
    assert_eq!((a.status, a.body.as_str()), (404, "no_service"));

    slack.fail_with_429(1, 7);
    slack.fail_with_500(1);
    let a = post(&hook, None, &json!({"text": "hi"}));
    assert_eq!((a.status, a.retry_after.as_deref()), (429, Some("7")));
    assert_eq!(a.json(), json!({"ok": false, "error": "ratelimited"}));
    let msg = json!({"channel": CHANNEL, "text": "x"});
    assert_eq!(chat(&slack, Some(BOT_TOKEN), msg.clone()).status, 500);

    slack.outage_for(Duration::from_millis(300));
    assert_eq!(post(&hook, None, &json!({"text": "hi"})).status, 503);
    assert_eq!(chat(&slack, Some(BOT_TOKEN), msg.clone()).status, 503);
    std::thread::sleep(Duration::from_millis(350));
    assert_eq!(
        chat(&slack, Some(BOT_TOKEN), msg.clone()).json()["ok"],
        true
    );
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(chat(&slack, Some(BOT_TOKEN), msg).json()["ok"], true);

    let messages = slack.messages();
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[0].via, Via::Webhook);
    assert_eq!(messages[0].text(), Some("hi"));
    assert_eq!(slack.too_fast(), 0, "a second apart, or other channels");
    let statuses: Vec<u16> = slack.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 404, 429, 500, 503, 503, 200, 200]);
}

#[test]
fn webhook_receiver_records_and_fails() {
    let hook = WebhookStandin::start();
    hook.fail_with_429(1, 3);
    hook.fail_with_500(1);
    hook.fail_with_status(1, 400);
    let body = json!({"alert": "x"});
    let a = post(&hook.url(), Some("secret"), &body);
    assert_eq!((a.status, a.retry_after.as_deref()), (429, Some("3")));
    assert_eq!(post(&hook.url(), None, &body).status, 500);
    assert_eq!(post(&hook.url(), None, &body).status, 400);
    assert_eq!(post(&hook.url(), None, &body).status, 200);

    let got = hook.wait_for(1, Duration::from_secs(1));
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].method.as_str(), got[0].path.as_str()),
        ("POST", "/hook")
    );
    assert_eq!(got[0].body, body);
    assert_eq!(
        got[0].header("Content-Type"),
        Some("application/json; charset=utf-8")
    );
    let all = hook.received();
    assert_eq!(all.len(), 4);
    assert_eq!(all[0].header("authorization"), Some("Bearer secret"));
}
