//! The normalized actor: who did it, whatever kind of actor the API reports
//! (a user's session, a user's API key, a service account's API key).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::BorrowedStr;

/// The `actor.*` fields that rules see beside the original ones.
#[derive(Debug, Default, Clone)]
pub struct Actor<'a> {
    /// `actor.type` as returned: `session` or `api_key`.
    pub actor_type: Option<Cow<'a, str>>,
    /// `user`, `service_account` or `unknown`.
    pub kind: &'static str,
    pub id: Option<Cow<'a, str>>,
    /// Lower-cased; absent for service accounts.
    pub email: Option<Cow<'a, str>>,
    pub api_key_id: Option<Cow<'a, str>>,
    pub ip: Option<Cow<'a, str>>,
    pub user_agent: Option<Cow<'a, str>>,
    pub country: Option<Cow<'a, str>>,
    pub region: Option<Cow<'a, str>>,
    pub city: Option<Cow<'a, str>>,
    pub asn: Option<Cow<'a, str>>,
}

/// The normalized field names, as written after `actor.` in a path.
pub const NORMALIZED: &[&str] = &[
    "type",
    "kind",
    "id",
    "email",
    "api_key_id",
    "ip",
    "user_agent",
    "country",
    "region",
    "city",
    "asn",
];

impl<'a> Actor<'a> {
    /// Reads the actor from its raw JSON; `None` when it is `null` or not an object.
    pub fn parse(raw: &'a RawValue) -> Option<Actor<'a>> {
        let wire: Option<WireActor<'a>> = serde_json::from_str(raw.get()).ok()?;
        wire.map(Actor::from_wire)
    }

    /// Reads the actor straight from a deserializer (one pass over its text).
    pub(crate) fn deserialize<'de: 'a, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Actor<'a>>, D::Error> {
        let wire: Option<WireActor<'a>> = Option::deserialize(d)?;
        Ok(wire.map(Actor::from_wire))
    }

    fn from_wire(wire: WireActor<'a>) -> Actor<'a> {
        let mut actor = Actor {
            actor_type: wire.actor_type.map(|s| s.0),
            kind: "unknown",
            ..Actor::default()
        };
        if let Some(session) = wire.session {
            if let Some(user) = session.user {
                actor.kind = "user";
                actor.id = user.id.map(|s| s.0);
                actor.email = user.email.map(|s| lower(s.0));
            }
            actor.ip = session.ip_address.map(|s| s.0);
            actor.user_agent = session.user_agent.map(|s| s.0);
            if let Some(d) = session.ip_address_details {
                actor.country = d.country.map(|s| s.0);
                actor.region = d.region.map(|s| s.0);
                actor.city = d.city.map(|s| s.0);
                actor.asn = d.asn.map(|s| s.0);
            }
        }
        if let Some(key) = wire.api_key {
            actor.api_key_id = key.id.map(|s| s.0);
            match key.key_type.as_ref().map(|s| s.0.as_ref()) {
                Some("user") => {
                    actor.kind = "user";
                    if let Some(user) = key.user {
                        actor.id = user.id.map(|s| s.0);
                        actor.email = user.email.map(|s| lower(s.0));
                    }
                }
                Some("service_account") => {
                    actor.kind = "service_account";
                    actor.id = key.service_account.and_then(|s| s.id).map(|s| s.0);
                }
                _ => {}
            }
        }
        actor
    }

    /// The value of a normalized field by its name (see [`NORMALIZED`]).
    pub fn get(&self, name: &str) -> Option<&str> {
        match name {
            "type" => self.actor_type.as_deref(),
            "kind" => Some(self.kind),
            "id" => self.id.as_deref(),
            "email" => self.email.as_deref(),
            "api_key_id" => self.api_key_id.as_deref(),
            "ip" => self.ip.as_deref(),
            "user_agent" => self.user_agent.as_deref(),
            "country" => self.country.as_deref(),
            "region" => self.region.as_deref(),
            "city" => self.city.as_deref(),
            "asn" => self.asn.as_deref(),
            _ => None,
        }
    }

    /// Adds the normalized fields to the original actor object.
    pub fn add_to(&self, obj: &mut serde_json::Map<String, serde_json::Value>) {
        for name in NORMALIZED {
            if let Some(v) = self.get(name) {
                obj.insert((*name).to_owned(), v.to_owned().into());
            }
        }
    }
}

fn lower(s: Cow<'_, str>) -> Cow<'_, str> {
    if s.chars().any(char::is_uppercase) {
        Cow::Owned(s.to_lowercase())
    } else {
        s
    }
}

#[derive(Deserialize)]
struct WireActor<'a> {
    #[serde(rename = "type", borrow)]
    actor_type: Option<BorrowedStr<'a>>,
    #[serde(borrow)]
    session: Option<WireSession<'a>>,
    #[serde(borrow)]
    api_key: Option<WireApiKey<'a>>,
}

#[derive(Deserialize)]
struct WireSession<'a> {
    #[serde(borrow)]
    user: Option<WireUser<'a>>,
    #[serde(borrow)]
    ip_address: Option<BorrowedStr<'a>>,
    #[serde(borrow)]
    user_agent: Option<BorrowedStr<'a>>,
    #[serde(borrow)]
    ip_address_details: Option<WireIpDetails<'a>>,
}

#[derive(Deserialize)]
struct WireUser<'a> {
    #[serde(borrow)]
    id: Option<BorrowedStr<'a>>,
    #[serde(borrow)]
    email: Option<BorrowedStr<'a>>,
}

#[derive(Deserialize)]
struct WireIpDetails<'a> {
    #[serde(borrow, default, deserialize_with = "text")]
    country: Option<BorrowedStr<'a>>,
    #[serde(borrow, default, deserialize_with = "text")]
    region: Option<BorrowedStr<'a>>,
    #[serde(borrow, default, deserialize_with = "text")]
    city: Option<BorrowedStr<'a>>,
    #[serde(borrow, default, deserialize_with = "text")]
    asn: Option<BorrowedStr<'a>>,
}

#[derive(Deserialize)]
struct WireApiKey<'a> {
    #[serde(borrow)]
    id: Option<BorrowedStr<'a>>,
    #[serde(rename = "type", borrow)]
    key_type: Option<BorrowedStr<'a>>,
    #[serde(borrow)]
    user: Option<WireUser<'a>>,
    #[serde(borrow)]
    service_account: Option<WireServiceAccount<'a>>,
}

#[derive(Deserialize)]
struct WireServiceAccount<'a> {
    #[serde(borrow)]
    id: Option<BorrowedStr<'a>>,
}

/// Accepts a string or a number (an `asn` sent as a JSON number) as text;
/// anything else reads as absent.
fn text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<BorrowedStr<'de>>, D::Error> {
    use serde::de::{self, Visitor};
    use std::fmt;
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<BorrowedStr<'de>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("text")
        }
        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Some(BorrowedStr(Cow::Borrowed(v))))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(BorrowedStr(Cow::Owned(v.to_owned()))))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(BorrowedStr(Cow::Owned(v.to_string()))))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(BorrowedStr(Cow::Owned(v.to_string()))))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(BorrowedStr(Cow::Owned(v.to_string()))))
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: de::Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(V)
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
            while a.next_element::<de::IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_map<A: de::MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
            while a.next_entry::<de::IgnoredAny, de::IgnoredAny>()?.is_some() {}
            Ok(None)
        }
    }
    d.deserialize_any(V)
}
