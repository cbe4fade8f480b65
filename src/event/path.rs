//! Field paths (`actor.email`, `api_key.created.data.scopes`), compiled once
//! and resolved against an event with the longest-key rule.

use std::fmt;
use std::sync::LazyLock;

use serde_json::Value;

use super::{Event, actor};

/// A dot-separated path into the event, compiled at load.
#[derive(Clone)]
pub struct FieldPath {
    text: String,
    head: Head,
}

#[derive(Clone)]
enum Head {
    Id,
    Type,
    EffectiveAt,
    Time,
    /// A normalized `actor.*` field.
    Actor(actor::ActorField),
    /// `actor…` through the original actor object.
    ActorRaw(Walk),
    /// `details…`: the object under the key named by `type`.
    Details(Walk),
    /// Any other path, from the top of the original object.
    Top(Walk),
}

/// The remaining segments of a path, with every candidate key precomputed:
/// `keys[i]` lists the keys that may start at segment `i`, longest first,
/// each with the index of the segment that follows it.
#[derive(Clone)]
struct Walk {
    keys: Vec<Vec<(String, usize)>>,
}

/// The value a path reaches in one event.
#[derive(Debug, Clone)]
pub enum FieldValue<'v> {
    Missing,
    Text(&'v str),
    /// Text computed for this lookup (`time`).
    Owned(String),
    Int(i64),
    Json(&'v Value),
}

static EMPTY_OBJECT: LazyLock<Value> = LazyLock::new(|| Value::Object(Default::default()));

impl FieldPath {
    /// Compiles a path; `None` when it is empty or has an empty segment.
    pub fn parse(text: &str) -> Option<FieldPath> {
        let segs: Vec<&str> = text.split('.').collect();
        if segs.iter().any(|s| s.is_empty()) {
            return None;
        }
        let head = match segs.as_slice() {
            ["id"] => Head::Id,
            ["type"] => Head::Type,
            ["effective_at"] => Head::EffectiveAt,
            ["time"] => Head::Time,
            ["actor", name] if actor::ActorField::named(name).is_some() => {
                Head::Actor(actor::ActorField::named(name)?)
            }
            ["actor", rest @ ..] => Head::ActorRaw(Walk::new(rest)),
            ["details", rest @ ..] => Head::Details(Walk::new(rest)),
            all => Head::Top(Walk::new(all)),
        };
        Some(FieldPath {
            text: text.to_owned(),
            head,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True when this path is the event type.
    pub fn is_type(&self) -> bool {
        matches!(self.head, Head::Type)
    }

    /// Resolves the path in `event`. JSON `null` is returned as
    /// [`FieldValue::Missing`].
    pub fn resolve<'v>(&self, event: &'v Event<'_>) -> FieldValue<'v> {
        let found = match &self.head {
            Head::Id => return FieldValue::Text(event.id()),
            Head::Type => return FieldValue::Text(event.kind()),
            Head::EffectiveAt => return FieldValue::Int(event.effective_at()),
            Head::Time => return FieldValue::Owned(event.time()),
            Head::Actor(field) => {
                return match event.actor().and_then(|a| a.field(*field)) {
                    Some(v) => FieldValue::Text(v),
                    None => FieldValue::Missing,
                };
            }
            Head::ActorRaw(walk) => event.field("actor").and_then(|v| walk.from(v, 0)),
            Head::Details(walk) => {
                let details = match event.field(event.kind()) {
                    Some(v @ Value::Object(_)) => v,
                    _ => &EMPTY_OBJECT,
                };
                walk.from(details, 0)
            }
            Head::Top(walk) => walk.top(event),
        };
        match found {
            None | Some(Value::Null) => FieldValue::Missing,
            Some(v) => FieldValue::Json(v),
        }
    }
}

impl fmt::Debug for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Walk {
    fn new(segs: &[&str]) -> Walk {
        let n = segs.len();
        let keys = (0..n)
            .map(|i| {
                (i + 1..=n)
                    .rev()
                    .map(|end| (segs[i..end].join("."), end))
                    .collect()
            })
            .collect();
        Walk { keys }
    }

    fn len(&self) -> usize {
        self.keys.len()
    }

    /// Walks from the top of the event, whose fields are decoded lazily.
    fn top<'v>(&self, event: &'v Event<'_>) -> Option<&'v Value> {
        let (value, next) = self
            .keys
            .first()?
            .iter()
            .find_map(|(key, next)| event.field(key).map(|v| (v, *next)))?;
        self.from(value, next)
    }

    /// Walks from `value` at segment `i`: at each level the longest key
    /// that exists wins, without backtracking.
    fn from<'v>(&self, mut value: &'v Value, mut i: usize) -> Option<&'v Value> {
        while i < self.len() {
            let obj = value.as_object()?;
            let (v, next) = self.keys[i]
                .iter()
                .find_map(|(key, next)| obj.get(key).map(|v| (v, *next)))?;
            value = v;
            i = next;
        }
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EV: &str = r#"{"id":"a","type":"api_key.created","effective_at":1,"actor":{"type":"api_key","api_key":{"id":"key_9","type":"service_account","service_account":{"id":"svc_1"}}},"api_key.created":{"id":"key_1","data":{"scopes":["api.all"]}},"a":{"b.c":{"d":1},"b":{"c":{"d":2}}},"n":null}"#;

    fn get(ev: &Event<'_>, path: &str) -> String {
        match FieldPath::parse(path).unwrap().resolve(ev) {
            FieldValue::Missing => "<missing>".into(),
            FieldValue::Text(t) => t.into(),
            FieldValue::Owned(t) => t,
            FieldValue::Int(i) => i.to_string(),
            FieldValue::Json(v) => v.to_string(),
        }
    }

    #[test]
    fn longest_key_wins_at_each_level() {
        let ev = Event::parse(EV).unwrap();
        assert_eq!(get(&ev, "api_key.created.data.scopes"), r#"["api.all"]"#);
        assert_eq!(get(&ev, "details.data.scopes"), r#"["api.all"]"#);
        // "b.c" is longer than "b", so it wins and there is no backtracking.
        assert_eq!(get(&ev, "a.b.c.d"), "1");
    }

    #[test]
    fn normalized_and_original_actor_fields() {
        let ev = Event::parse(EV).unwrap();
        assert_eq!(get(&ev, "actor.kind"), "service_account");
        assert_eq!(get(&ev, "actor.id"), "svc_1");
        assert_eq!(get(&ev, "actor.api_key_id"), "key_9");
        assert_eq!(get(&ev, "actor.email"), "<missing>");
        assert_eq!(get(&ev, "actor.api_key.id"), r#""key_9""#);
    }

    #[test]
    fn null_and_absent_are_missing() {
        let ev = Event::parse(EV).unwrap();
        assert_eq!(get(&ev, "n"), "<missing>");
        assert_eq!(get(&ev, "project.id"), "<missing>");
        assert_eq!(get(&ev, "details.nope"), "<missing>");
        assert!(FieldPath::parse("a..b").is_none());
    }
}
