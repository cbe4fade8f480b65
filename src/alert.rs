//! The alert: what a rule raises when it fires and its threshold and
//! suppression let it go out, in the shape every output and destination uses.

use serde::{Deserialize, Serialize};

use crate::event::Event;
use crate::rules::Severity;

/// One alert that goes out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub rule_id: String,
    pub severity: Severity,
    pub title: String,
    pub summary: String,
    /// The event that fired it.
    pub event_id: String,
    /// Every contributing event (one, or a threshold's whole burst).
    pub event_ids: Vec<String>,
    /// `effective_at` of the event that fired it.
    pub effective_at: i64,
    /// Repeats quieted by `suppress` since the previous alert of this rule and key.
    pub suppressed: u64,
    /// What destinations show beside the summary. Not part of the
    /// `rulecheck` line, which keeps its documented fields.
    #[serde(skip)]
    pub facts: Facts,
}

/// Who did what, where, as destinations show it: read from the event that
/// fired the alert, plus the rule's description and the alert's key. Every
/// text here comes from an audit event or a rule and is untrusted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Facts {
    /// The event's `type`.
    pub event_type: String,
    /// The actor's email, else its id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// `user`, `service_account` or `unknown`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// City, region and country of the IP, as the API gives them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub place: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The project's name and id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// The rule's description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The suppression key (or threshold group) the alert stands for, so
    /// repeats can be told apart from other alerts of the rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// For a threshold: the time of the first contributing event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_at: Option<i64>,
    /// For a threshold: its window, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<i64>,
    /// A repeat that `suppress` quieted: not an alert of its own, only a
    /// reply in the thread of the alert it repeats (Slack bots).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub repeat: bool,
    /// The incident the alert belongs to: the alerts that share an actor
    /// or key (`incidents.by`) close together in time. Its id is
    /// `incident-` and the event id of its first alert.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
}

impl Facts {
    /// The facts an event gives.
    pub fn of_event(event: &Event<'_>) -> Facts {
        let actor = event.actor();
        let get = |name: &str| actor.and_then(|a| a.get(name)).map(str::to_owned);
        let place: Vec<&str> = ["city", "region", "country"]
            .iter()
            .filter_map(|n| actor.and_then(|a| a.get(n)))
            .filter(|s| !s.is_empty())
            .collect();
        let project = event.field("project").and_then(|p| {
            let id = p.get("id").and_then(|v| v.as_str());
            let name = p.get("name").and_then(|v| v.as_str());
            match (name, id) {
                (Some(n), Some(i)) => Some(format!("{n} ({i})")),
                (Some(s), None) | (None, Some(s)) => Some(s.to_owned()),
                (None, None) => None,
            }
        });
        Facts {
            event_type: event.kind().to_owned(),
            actor: get("email").or_else(|| get("id")),
            actor_kind: get("kind"),
            api_key_id: get("api_key_id"),
            ip: get("ip"),
            place: (!place.is_empty()).then(|| place.join(", ")),
            user_agent: get("user_agent"),
            project,
            ..Facts::default()
        }
    }
}

/// An alert as it is kept in the outbox: the alert with its facts.
#[derive(Serialize)]
pub struct Stored<'a> {
    #[serde(flatten)]
    pub alert: &'a Alert,
    pub facts: &'a Facts,
}

#[derive(Deserialize)]
struct StoredOwned {
    #[serde(flatten)]
    alert: Alert,
    #[serde(default)]
    facts: Facts,
}

impl Alert {
    /// The outbox's text of the alert, facts included.
    pub fn to_stored(&self) -> String {
        serde_json::to_string(&Stored {
            alert: self,
            facts: &self.facts,
        })
        .expect("alerts serialize")
    }

    /// Reads an alert back from the outbox.
    pub fn from_stored(text: &str) -> serde_json::Result<Alert> {
        let s: StoredOwned = serde_json::from_str(text)?;
        let mut alert = s.alert;
        alert.facts = s.facts;
        Ok(alert)
    }
}
