//! The audit log event as rules see it: parsed once, borrowed from its input,
//! with the normalized `actor.*`, `details` and `time` fields computed on demand.
//!
//! Parsing reads only `id`, `type`, `effective_at` and, when rules need it,
//! the actor; every other top-level field is kept as raw JSON and decoded the
//! first time a rule asks for it, so an event that no rule looks at costs
//! little more than scanning its bytes. Lines of the usual shape take a fast
//! reader (`scan`); serde_json reads the rest and words every error.

mod actor;
mod path;
mod scan;

use std::borrow::Cow;
use std::cell::OnceCell;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};
use serde_json::value::RawValue;

pub use actor::{Actor, ActorField, NORMALIZED};
pub use path::{FieldPath, FieldValue};
#[doc(hidden)]
pub use scan::readers_agree;

/// Why a line of input is not an audit log event.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("missing required field `{0}`")]
    Missing(&'static str),
    #[error("the key `{0}` appears twice in the object")]
    Duplicate(String),
    #[error("effective_at {0} is not a time of the audit log (1970 to 9999)")]
    OutOfRange(i64),
}

/// The latest `effective_at` accepted: 9999-12-31T23:59:59Z. Later (or
/// negative) times are not real audit log times, and would overflow the
/// arithmetic of windows.
pub const MAX_EFFECTIVE_AT: i64 = 253_402_300_799;

/// One audit log object, borrowed from the buffer it was parsed from.
pub struct Event<'a> {
    id: Cow<'a, str>,
    kind: Cow<'a, str>,
    effective_at: i64,
    /// Top-level fields kept as raw JSON (all but the three above, and the
    /// actor when it was read in the same pass).
    fields: Vec<TopField<'a>>,
    actor: OnceCell<Option<Actor<'a>>>,
    /// The actor's JSON text when it was read in the same pass (and is
    /// therefore not among the raw fields), decoded on demand.
    actor_raw: Option<&'a str>,
    actor_value: OnceCell<serde_json::Value>,
}

struct TopField<'a> {
    key: Cow<'a, str>,
    /// The value's JSON text.
    raw: &'a str,
    parsed: OnceCell<serde_json::Value>,
}

/// Room for the top-level fields of one event at a time (and the fast
/// reader's quote map), passed from event to event so that reading many
/// events does not allocate for each.
#[derive(Default)]
pub struct FieldRoom<'a> {
    fields: Vec<TopField<'a>>,
    quotes: Vec<u64>,
}

/// What one JSON object of input turned out to be.
// Events are parsed by the million and moved right away: boxing them would
// cost an allocation each.
#[allow(clippy::large_enum_variant)]
pub enum Parsed<'a> {
    /// An audit log object.
    Event(Event<'a>),
    /// A saved list response (`{"object":"list","data":[…]}`): its items.
    Page(Vec<&'a RawValue>),
}

impl<'a> Event<'a> {
    /// Parses one audit log object from JSON text.
    pub fn parse(json: &'a str) -> Result<Event<'a>, EventError> {
        match Self::parse_any(json)? {
            Parsed::Event(ev) => Ok(ev),
            Parsed::Page(_) => Err(EventError::Missing("id")),
        }
    }

    /// Parses one JSON object that is either an audit log object or a saved
    /// list page.
    pub fn parse_any(json: &'a str) -> Result<Parsed<'a>, EventError> {
        Self::parse_with(json, &mut |_| false)
    }

    /// Like [`Event::parse_any`]; `wants_actor(type)` tells whether the
    /// normalized actor of events of that type will be needed, so that it is
    /// read in the same pass instead of being kept raw.
    pub fn parse_with(
        json: &'a str,
        wants_actor: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Parsed<'a>, EventError> {
        Self::parse_in(json, wants_actor, &mut FieldRoom::default())
    }

    /// Like [`Event::parse_with`], keeping the top-level fields in `room`
    /// (see [`Event::recycle`]).
    pub fn parse_in(
        json: &'a str,
        wants_actor: &mut dyn FnMut(&str) -> bool,
        room: &mut FieldRoom<'a>,
    ) -> Result<Parsed<'a>, EventError> {
        // Lines of the usual shape take the fast reader; it declines anything
        // else, which the full reader then takes (and reports when bad).
        // The actor, when read in the same pass, is kept aside: it is the
        // bulk of an event, and is written once, where it stays.
        let mut actor = None;
        let fields = std::mem::take(&mut room.fields);
        if let Some(top) = scan::top_level(json, wants_actor, &mut actor, fields, &mut room.quotes)
        {
            return top.into_parsed(actor);
        }
        let top = read_top_level(json, wants_actor, &mut actor)?;
        top.into_parsed(actor)
    }

    /// Gives the room of the event's top-level fields back, for the next
    /// event read with [`Event::parse_in`]; the event is left without
    /// them. It takes the event in place: moving it would copy a few
    /// hundred bytes.
    pub fn recycle(&mut self, room: &mut FieldRoom<'a>) {
        let mut fields = std::mem::take(&mut self.fields);
        fields.clear();
        room.fields = fields;
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The event type, e.g. `api_key.created`.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// Unix seconds.
    pub fn effective_at(&self) -> i64 {
        self.effective_at
    }

    /// `effective_at` as RFC 3339 UTC text (`2024-07-12T17:09:50Z`).
    pub fn time(&self) -> String {
        format_time(self.effective_at)
    }

    /// The normalized actor, or `None` when the event has no actor.
    pub fn actor(&self) -> Option<&Actor<'a>> {
        self.actor
            .get_or_init(|| {
                let raw = self.raw_field("actor")?;
                Actor::parse(raw)
            })
            .as_ref()
    }

    /// The raw JSON of the original actor object, wherever it was read.
    pub fn raw_actor(&self) -> Option<&'a str> {
        self.raw_field("actor").or(self.actor_raw)
    }

    /// The raw JSON of a top-level field.
    pub fn raw_field(&self, key: &str) -> Option<&'a str> {
        self.fields.iter().find(|f| f.key == key).map(|f| f.raw)
    }

    /// The decoded value of a top-level field (decoded once, then cached).
    pub fn field(&self, key: &str) -> Option<&serde_json::Value> {
        if let Some(f) = self.fields.iter().find(|f| f.key == key) {
            return Some(f.value());
        }
        if key == "actor" && self.actor.get().is_some() {
            return self.original_actor();
        }
        None
    }

    /// The original actor object, when it was read in the same pass as the
    /// event (and is therefore not among the raw fields).
    fn original_actor(&self) -> Option<&serde_json::Value> {
        let raw = self.actor_raw?;
        Some(
            self.actor_value
                .get_or_init(|| serde_json::from_str(raw).unwrap_or(serde_json::Value::Null)),
        )
    }

    /// The detail object: the value under the key named by `type`, when it is
    /// an object.
    pub fn details(&self) -> Option<&serde_json::Map<String, serde_json::Value>> {
        self.field(&self.kind).and_then(|v| v.as_object())
    }

    /// Top-level keys and their decoded values, in input order.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &serde_json::Value)> {
        let actor = if self.fields.iter().any(|f| f.key == "actor") {
            None
        } else {
            self.field("actor")
        };
        self.fields
            .iter()
            .map(|f| (f.key.as_ref(), f.value()))
            .chain(actor.map(|a| ("actor", a)))
    }

    /// The whole event as the map that scripts and templates see: every
    /// original field plus `time`, `details` and the normalized `actor` fields.
    pub fn to_view(&self) -> serde_json::Map<String, serde_json::Value> {
        let computed = ["id", "type", "effective_at", "time", "details", "actor"];
        let keys: Vec<&str> = self
            .fields()
            .map(|(k, _)| k)
            .filter(|k| !computed.contains(k))
            .collect();
        self.to_view_of(keys.into_iter().chain(computed))
    }

    /// The view of [`Event::to_view`] restricted to the top-level `keys`
    /// (missing ones are left out).
    pub fn to_view_of<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k str>,
    ) -> serde_json::Map<String, serde_json::Value> {
        use serde_json::Value;
        let mut map = serde_json::Map::new();
        for key in keys {
            let value = match key {
                "id" => Value::String(self.id.to_string()),
                "type" => Value::String(self.kind.to_string()),
                "effective_at" => Value::from(self.effective_at),
                "time" => Value::String(self.time()),
                "details" => Value::Object(self.details().cloned().unwrap_or_default()),
                "actor" => {
                    let Some(actor) = self.actor() else { continue };
                    let mut obj = match self.field("actor") {
                        Some(Value::Object(o)) => o.clone(),
                        _ => serde_json::Map::new(),
                    };
                    actor.add_to(&mut obj);
                    Value::Object(obj)
                }
                other => match self.field(other) {
                    Some(v) => v.clone(),
                    None => continue,
                },
            };
            map.insert(key.to_owned(), value);
        }
        map
    }
}

impl fmt::Debug for Event<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("id", &self.id)
            .field("type", &self.kind)
            .field("effective_at", &self.effective_at)
            .finish_non_exhaustive()
    }
}

impl TopField<'_> {
    fn value(&self) -> &serde_json::Value {
        self.parsed
            .get_or_init(|| serde_json::from_str(self.raw).unwrap_or(serde_json::Value::Null))
    }
}

/// Whether lower-casing `s` may change it: it has an ASCII capital or a
/// byte outside ASCII. Every byte is looked at, without stopping early, so
/// that the check runs many bytes at a time (most texts need no folding).
pub fn may_fold(s: &str) -> bool {
    s.bytes()
        .fold(false, |any, b| any | b.is_ascii_uppercase() | (b >= 0x80))
}

/// Formats Unix seconds as RFC 3339 UTC text.
pub fn format_time(ts: i64) -> String {
    match jiff::Timestamp::from_second(ts) {
        Ok(t) => t.to_string(),
        Err(_) => ts.to_string(),
    }
}

/// A top-level JSON object, read key by key: `id`, `type` and `effective_at`
/// decoded, everything else kept raw.
struct TopLevel<'a> {
    id: Option<Cow<'a, str>>,
    kind: Option<Cow<'a, str>>,
    effective_at: Option<i64>,
    fields: Vec<TopField<'a>>,
    /// The actor was read in the same pass (into a slot of the caller's).
    actor_read: bool,
    /// The actor's text, when it was read in the same pass.
    actor_raw: Option<&'a str>,
}

impl<'a> TopLevel<'a> {
    /// An empty record whose fields go to `fields` (emptied first).
    fn new(mut fields: Vec<TopField<'a>>) -> Self {
        fields.clear();
        fields.reserve(8);
        TopLevel {
            id: None,
            kind: None,
            effective_at: None,
            fields,
            actor_read: false,
            actor_raw: None,
        }
    }

    /// True when `key` was read before in this object: such objects are
    /// refused, by both readers, rather than read with one of the values.
    fn has(&self, key: &str) -> bool {
        match key {
            "id" => self.id.is_some(),
            "type" => self.kind.is_some(),
            "effective_at" => self.effective_at.is_some(),
            "actor" if self.actor_read => true,
            _ => self.fields.iter().any(|f| f.key == key),
        }
    }

    /// The event (or list page) read, with the actor read in the same pass.
    fn into_parsed(self, actor: Option<Actor<'a>>) -> Result<Parsed<'a>, EventError> {
        if self.id.is_none()
            && self.kind.is_none()
            && let Some(page) = self.page_items()?
        {
            return Ok(Parsed::Page(page));
        }
        // Errors are made only when needed (an error dropped unused still
        // costs its drop on every event).
        let Some(effective_at) = self.effective_at else {
            return Err(EventError::Missing("effective_at"));
        };
        if !(0..=MAX_EFFECTIVE_AT).contains(&effective_at) {
            return Err(EventError::OutOfRange(effective_at));
        }
        let Some(id) = self.id else {
            return Err(EventError::Missing("id"));
        };
        let Some(kind) = self.kind else {
            return Err(EventError::Missing("type"));
        };
        Ok(Parsed::Event(Event {
            id,
            kind,
            effective_at,
            fields: self.fields,
            actor: match self.actor_read {
                true => OnceCell::from(actor),
                false => OnceCell::new(),
            },
            actor_raw: self.actor_raw,
            actor_value: OnceCell::new(),
        }))
    }

    fn page_items(&self) -> Result<Option<Vec<&'a RawValue>>, EventError> {
        // Compared decoded: `"l\u0069st"` is a list too.
        let is_list = self
            .fields
            .iter()
            .any(|f| f.key == "object" && f.value().as_str() == Some("list"));
        let data = self.fields.iter().find(|f| f.key == "data");
        match (is_list, data) {
            (true, Some(data)) => Ok(Some(serde_json::from_str(data.raw)?)),
            _ => Ok(None),
        }
    }
}

/// Reads a top-level object with serde (see [`TopLevel`]).
fn read_top_level<'a>(
    json: &'a str,
    wants_actor: &mut dyn FnMut(&str) -> bool,
    actor: &mut Option<Actor<'a>>,
) -> Result<TopLevel<'a>, serde_json::Error> {
    let mut read = |wants_actor: &mut dyn FnMut(&str) -> bool| {
        *actor = None;
        let mut de = serde_json::Deserializer::from_str(json);
        let visitor = TopLevelVisitor {
            wants_actor: &mut *wants_actor,
            actor: &mut *actor,
        };
        let top = serde::de::DeserializeSeed::deserialize(visitor, &mut de)?;
        de.end()?;
        Ok(top)
    };
    match read(wants_actor) {
        Ok(top) => Ok(top),
        // An actor of an unexpected shape is an event without a normalized
        // actor, not a bad line: read it again with the actor kept raw.
        Err(_) => read(&mut |_| false),
    }
}

/// Reads a top-level object key by key (see [`TopLevel`]).
struct TopLevelVisitor<'f, 'a> {
    wants_actor: &'f mut dyn FnMut(&str) -> bool,
    actor: &'f mut Option<Actor<'a>>,
}

impl<'de: 'a, 'a> serde::de::DeserializeSeed<'de> for TopLevelVisitor<'_, 'a> {
    type Value = TopLevel<'a>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de: 'a, 'a> Visitor<'de> for TopLevelVisitor<'_, 'a> {
    type Value = TopLevel<'a>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an audit log object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut top = TopLevel::new(Vec::new());
        while let Some(BorrowedStr(key)) = map.next_key()? {
            if top.has(&key) {
                return Err(de::Error::custom(format!(
                    "the key `{key}` appears twice in the object"
                )));
            }
            match key.as_ref() {
                "id" => top.id = Some(map.next_value::<BorrowedStr>()?.0),
                "type" => top.kind = Some(map.next_value::<BorrowedStr>()?.0),
                "effective_at" => top.effective_at = Some(map.next_value::<UnixSeconds>()?.0),
                "actor"
                    if !top.actor_read
                        && top.kind.as_deref().is_none_or(|k| (self.wants_actor)(k)) =>
                {
                    let raw: &'de RawValue = map.next_value()?;
                    *self.actor = Actor::parse(raw.get());
                    top.actor_read = true;
                    top.actor_raw = Some(raw.get());
                }
                _ => {
                    let raw: &'de RawValue = map.next_value()?;
                    top.fields.push(TopField {
                        key,
                        raw: raw.get(),
                        parsed: OnceCell::new(),
                    });
                }
            }
        }
        Ok(top)
    }
}

/// A string borrowed from the input when it has no escapes.
pub(crate) struct BorrowedStr<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for BorrowedStr<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = BorrowedStr<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(BorrowedStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(BorrowedStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(BorrowedStr(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// `effective_at`: integer Unix seconds (a whole float is accepted too).
struct UnixSeconds(i64);

impl<'de> Deserialize<'de> for UnixSeconds {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = UnixSeconds;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("Unix seconds")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(UnixSeconds(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                i64::try_from(v)
                    .map(UnixSeconds)
                    .map_err(|_| E::custom("effective_at out of range"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                if v.fract() == 0.0 && v.abs() < 1e15 {
                    Ok(UnixSeconds(v as i64))
                } else {
                    Err(E::custom("effective_at must be whole Unix seconds"))
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EV: &str = r#"{"object":"organization.audit_log","id":"audit_log-1","type":"api_key.created","effective_at":1720800000,"project":{"id":"proj_1","name":"Default"},"actor":{"type":"session","session":{"user":{"id":"user-1","email":"Alice@Example.com"},"ip_address":"203.0.113.7","ip_address_details":{"country":"US","asn":"16509"}}},"api_key.created":{"id":"key_1","data":{"scopes":["api.all"]}}}"#;

    #[test]
    fn texts_that_lower_casing_may_change_are_told_apart() {
        let plain = "a.person+tag@example.com-0123456789-with-a-long-tail";
        assert!(!may_fold(plain));
        assert!(!may_fold(""));
        for at in [0, 7, plain.len() - 1] {
            let mut capital = plain.to_owned();
            capital.replace_range(at..at + 1, "Q");
            assert!(may_fold(&capital), "{capital}");
        }
        assert!(may_fold("zürich"));
    }

    #[test]
    fn parses_required_fields_and_keeps_the_rest_raw() {
        let ev = Event::parse(EV).unwrap();
        assert_eq!(ev.id(), "audit_log-1");
        assert_eq!(ev.kind(), "api_key.created");
        assert_eq!(ev.effective_at(), 1720800000);
        assert_eq!(ev.time(), "2024-07-12T16:00:00Z");
        assert_eq!(ev.details().unwrap()["id"], "key_1");
        let actor = ev.actor().unwrap();
        assert_eq!(actor.email.as_deref(), Some("alice@example.com"));
        assert_eq!(actor.kind, "user");
    }

    #[test]
    fn missing_required_field_is_an_error() {
        let err = Event::parse(r#"{"id":"x","type":"t"}"#).unwrap_err();
        assert!(err.to_string().contains("effective_at"), "{err}");
        assert!(Event::parse("[1]").is_err());
    }

    #[test]
    fn list_pages_yield_their_items() {
        let page = format!(r#"{{"object":"list","data":[{EV}],"has_more":false}}"#);
        match Event::parse_any(&page).unwrap() {
            Parsed::Page(items) => assert_eq!(items.len(), 1),
            Parsed::Event(_) => panic!("expected a page"),
        }
    }
}
