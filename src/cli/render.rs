//! `rulecheck --render` and `--routes`: each alert as the exact payload a
//! destination of a kind would be sent, and the destinations it goes to.

use std::collections::HashMap;
use std::io::{self, Write};

use clap::ValueEnum;
use serde_json::{Value, json};

use crate::alert::Alert;
use crate::config::RuleConfig;
use crate::notify::format::Style;
use crate::notify::{Earlier, Parcel, Routes, TIMELINE_LIMIT, email, slack, webhook};
use crate::rules::RuleSet;
use crate::store::Delivery;

/// A kind of destination to render for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Medium {
    Slack,
    Email,
    Webhook,
}

/// What `--render` and `--routes` need from the config.
pub struct Rendering {
    style: Style,
    routes: Option<Routes>,
    templates: email::Templates,
}

impl Rendering {
    /// From the config (`-c`, else `./auditwatch.yaml`), when there is one;
    /// `--routes` needs one.
    pub fn new(config: Option<&RuleConfig>, want_routes: bool) -> Result<Rendering, String> {
        if want_routes && config.is_none() {
            return Err("--routes needs a config with `routing` (-c CONFIG)".into());
        }
        // Repeats, which only threading destinations take, are not shown.
        let routes = config
            .filter(|_| want_routes)
            .map(|c| Routes::of_routing(&c.routing, Default::default()));
        Ok(Rendering {
            style: Style::in_zone(config.and_then(|c| c.timezone.as_deref())),
            routes,
            templates: email::Templates::new(),
        })
    }

    /// The destinations of `alert`, with `--routes`.
    pub fn routes(&self, rules: &RuleSet, alert: &Alert) -> Option<Vec<String>> {
        self.routes.as_ref().map(|r| r.of(rules, alert))
    }

    /// The payload of `alert` for `medium`; `earlier` holds the alerts of
    /// its incident before it, which mail lists.
    pub fn payload(
        &self,
        medium: Medium,
        alert: &Alert,
        earlier: Earlier<'_>,
        routes: &[String],
    ) -> Value {
        match medium {
            Medium::Slack => serde_json::to_value(slack::message(alert, &self.style))
                .expect("Slack messages serialize"),
            Medium::Email => match self.templates.alert(alert, earlier, &self.style) {
                Ok((subject, text, html)) => {
                    json!({"subject": subject, "text": text, "html": html})
                }
                Err(e) => json!({"error": e.to_string()}),
            },
            Medium::Webhook => {
                let now = crate::time::now();
                let delivery = Delivery::preview(alert.clone(), "", routes.to_vec(), now);
                let parcel = Parcel {
                    delivery: &delivery,
                    thread: None,
                    earlier: Default::default(),
                };
                webhook::body(&parcel, "", now)
            }
        }
    }
}

/// Prints one JSON line per alert: its rule and event, its destinations
/// (with `--routes`) and the payload for `medium`.
pub fn print(
    out: &mut dyn Write,
    rendering: &Rendering,
    rules: &RuleSet,
    alerts: &[Alert],
    medium: Medium,
) -> io::Result<()> {
    let key = match medium {
        Medium::Slack => "slack",
        Medium::Email => "email",
        Medium::Webhook => "webhook",
    };
    // For mail: the alerts of each incident so far, as the outbox holds them.
    let mut incidents: HashMap<&str, Vec<Alert>> = HashMap::new();
    for a in alerts {
        let routes = rendering.routes(rules, a);
        let incident = a
            .facts
            .incident
            .as_deref()
            .filter(|_| medium == Medium::Email && !a.facts.repeat);
        let so_far = incident
            .and_then(|i| incidents.get(i))
            .map_or(&[][..], Vec::as_slice);
        let earlier = Earlier {
            alerts: &so_far[so_far.len().saturating_sub(TIMELINE_LIMIT)..],
            total: so_far.len() as u64,
        };
        let mut line = serde_json::Map::new();
        line.insert("rule_id".into(), a.rule_id.clone().into());
        line.insert("event_id".into(), a.event_id.clone().into());
        if let Some(r) = &routes {
            line.insert("destinations".into(), json!(r));
        }
        line.insert(
            key.into(),
            rendering.payload(medium, a, earlier, routes.as_deref().unwrap_or(&[])),
        );
        serde_json::to_writer(&mut *out, &line)?;
        out.write_all(b"\n")?;
        if let Some(i) = incident {
            incidents.entry(i).or_default().push(a.clone());
        }
    }
    Ok(())
}
