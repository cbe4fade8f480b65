//! Writes the previews shown in the README: one Slack message (its Block Kit
//! drawn as HTML) and one email digest, from the sample history and the
//! default pack, for `docs/previews.sh` to screenshot.
//!
//!     cargo run --example previews -- OUT_DIR

use std::path::{Path, PathBuf};

use auditwatch::config::RuleConfig;
use auditwatch::engine::{Batch, Evaluator, RuleState};
use auditwatch::event::Event;
use auditwatch::notify::email::Templates;
use auditwatch::notify::format::Style;
use auditwatch::notify::{digest, slack};
use auditwatch::rules::RuleSet;
use serde_json::Value;

fn main() -> anyhow::Result<()> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/previews".into()),
    );
    std::fs::create_dir_all(&out)?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = RuleConfig::load(&root.join("examples/demo.yaml"))?;
    let rules = RuleSet::load(&config.rules, &config.env).map_err(|e| anyhow::anyhow!("{e}"))?;
    let text = std::fs::read_to_string(root.join("examples/sample-events.jsonl"))?;
    let events: Vec<Event<'_>> = text.lines().filter_map(|l| Event::parse(l).ok()).collect();
    let evaluation = Evaluator::new(&rules).evaluate(&Batch::new(events), &mut RuleState::new());
    let style = Style::in_zone(config.timezone.as_deref());

    // The Slack message of a critical alert with a place and a project.
    let alert = evaluation
        .alerts
        .iter()
        .find(|a| a.severity.as_str() == "critical" && a.facts.place.is_some())
        .or_else(|| evaluation.alerts.first())
        .expect("the sample history raises alerts");
    let message = serde_json::to_value(slack::message(alert, &style))?;
    std::fs::write(out.join("slack-alert.html"), slack_html(&message))?;

    // A day's digest: the alerts of the sample's busiest day.
    let mut days = std::collections::BTreeMap::<i64, Vec<_>>::new();
    for a in &evaluation.alerts {
        days.entry(a.effective_at / 86_400)
            .or_default()
            .push(a.clone());
    }
    let (day, alerts) = days
        .into_iter()
        .max_by_key(|(_, a)| a.len())
        .expect("alerts");
    let (_, _, html) = digest::render(
        &Templates::new(),
        &alerts,
        day * 86_400,
        (day + 1) * 86_400,
        &style,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    std::fs::write(out.join("email-digest.html"), html)?;
    println!("{}", out.display());
    Ok(())
}

/// Block Kit drawn as Slack draws it, closely enough for a preview. The
/// texts are already escaped for Slack (`&`, `<`, `>` as entities), which
/// is also safe in HTML.
fn slack_html(message: &Value) -> String {
    let mut body = String::new();
    for b in message["blocks"].as_array().into_iter().flatten() {
        let text = |v: &Value| {
            let s = v["text"].as_str().unwrap_or("");
            if v["type"] == "mrkdwn" {
                let s = s.trim_matches('*');
                format!("<b>{s}</b>")
            } else {
                s.replace('\n', "<br>")
            }
        };
        match b["type"].as_str() {
            Some("header") => body.push_str(&format!("<div class=h>{}</div>", text(&b["text"]))),
            Some("section") => {
                if b["text"].is_object() {
                    body.push_str(&format!("<div class=s>{}</div>", text(&b["text"])));
                }
                if let Some(fields) = b["fields"].as_array() {
                    body.push_str("<div class=f>");
                    for pair in fields.chunks(2) {
                        body.push_str(&format!(
                            "<div>{}</div><div>{}</div>",
                            text(&pair[0]),
                            pair.get(1).map(text).unwrap_or_default()
                        ));
                    }
                    body.push_str("</div>");
                }
            }
            Some("context") => {
                for e in b["elements"].as_array().into_iter().flatten() {
                    body.push_str(&format!("<div class=c>{}</div>", text(e)));
                }
            }
            _ => {}
        }
    }
    format!(
        "<!DOCTYPE html><html><head><meta charset=utf-8><style>\
         body{{margin:0;padding:20px;background:#fff;font:15px/1.45 -apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#1d1c1d;width:620px}}\
         .m{{display:flex;gap:10px}}.a{{width:36px;height:36px;border-radius:6px;background:#4a154b;color:#fff;font-weight:bold;display:flex;align-items:center;justify-content:center}}\
         .n{{font-weight:900}}.n span{{font-weight:normal;color:#616061;font-size:12px;margin-left:6px}}\
         .h{{font-size:18px;font-weight:900;margin:6px 0}}.s{{margin:6px 0}}\
         .f{{display:grid;grid-template-columns:120px 1fr;gap:4px 12px;margin:8px 0}}.c{{color:#616061;font-size:12px;margin-top:6px}}\
         </style></head><body><div class=m><div class=a>aw</div><div><div class=n>auditwatch<span>APP</span></div>{body}</div></div></body></html>"
    )
}
