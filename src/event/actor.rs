//! The normalized actor: who did it, whatever kind of actor the API reports
//! (a user's session, a user's API key, a service account's API key).

use std::borrow::Cow;

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
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
    /// Reads the actor from its raw JSON; `None` when it is `null` or not of
    /// the expected shape.
    pub fn parse(raw: &'a RawValue) -> Option<Actor<'a>> {
        let mut de = serde_json::Deserializer::from_str(raw.get());
        Actor::deserialize(&mut de).ok().flatten()
    }

    /// Reads the actor straight from a deserializer, in one pass over its
    /// text, keeping only the fields that are normalized.
    pub(crate) fn deserialize<'de: 'a, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Actor<'a>>, D::Error> {
        d.deserialize_option(OptionalActor(PhantomData))
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

struct OptionalActor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for OptionalActor<'a> {
    type Value = Option<Actor<'a>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an actor object or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let mut actor = Actor {
            kind: "unknown",
            ..Actor::default()
        };
        d.deserialize_map(Fields {
            actor: &mut actor,
            part: Part::Actor,
        })?;
        Ok(Some(actor))
    }
}

/// Which object of the actor a [`Fields`] reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Actor,
    Session,
    SessionUser,
    IpDetails,
    ApiKey,
    ApiKeyUser,
    ServiceAccount,
}

/// Reads the fields of one object of the actor into the normalized actor.
struct Fields<'x, 'a> {
    actor: &'x mut Actor<'a>,
    part: Part,
}

impl<'de: 'a, 'a> DeserializeSeed<'de> for Fields<'_, 'a> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de: 'a, 'a> Visitor<'de> for Fields<'_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let actor = self.actor;
        if self.part == Part::SessionUser {
            actor.kind = "user";
        }
        // An API key's owner is known only once its `type` is read.
        let mut key_type: Option<Cow<'a, str>> = None;
        let mut owner = Actor::default();
        while let Some(BorrowedStr(key)) = map.next_key::<BorrowedStr>()? {
            let text = |s: Option<BorrowedStr<'a>>| s.map(|s| s.0);
            match (self.part, key.as_ref()) {
                (Part::Actor, "type") => {
                    actor.actor_type = text(map.next_value::<Option<BorrowedStr>>()?)
                }
                (Part::Actor, "session") => map.next_value_seed(Fields {
                    actor: &mut *actor,
                    part: Part::Session,
                })?,
                (Part::Actor, "api_key") => map.next_value_seed(Fields {
                    actor: &mut *actor,
                    part: Part::ApiKey,
                })?,
                (Part::Session, "user") => map.next_value_seed(Fields {
                    actor: &mut *actor,
                    part: Part::SessionUser,
                })?,
                (Part::Session, "ip_address") => {
                    actor.ip = text(map.next_value::<Option<BorrowedStr>>()?)
                }
                (Part::Session, "user_agent") => {
                    actor.user_agent = text(map.next_value::<Option<BorrowedStr>>()?)
                }
                (Part::Session, "ip_address_details") => map.next_value_seed(Fields {
                    actor: &mut *actor,
                    part: Part::IpDetails,
                })?,
                (Part::SessionUser | Part::ApiKeyUser | Part::ServiceAccount, "id") => {
                    actor.id = text(map.next_value::<Option<BorrowedStr>>()?)
                }
                (Part::SessionUser | Part::ApiKeyUser, "email") => {
                    actor.email = text(map.next_value::<Option<BorrowedStr>>()?).map(lower)
                }
                (Part::IpDetails, "country") => actor.country = map.next_value::<LooseText>()?.0,
                (Part::IpDetails, "region") => actor.region = map.next_value::<LooseText>()?.0,
                (Part::IpDetails, "city") => actor.city = map.next_value::<LooseText>()?.0,
                (Part::IpDetails, "asn") => actor.asn = map.next_value::<LooseText>()?.0,
                (Part::ApiKey, "id") => {
                    actor.api_key_id = text(map.next_value::<Option<BorrowedStr>>()?)
                }
                (Part::ApiKey, "type") => key_type = text(map.next_value::<Option<BorrowedStr>>()?),
                (Part::ApiKey, "user") => map.next_value_seed(Fields {
                    actor: &mut owner,
                    part: Part::ApiKeyUser,
                })?,
                (Part::ApiKey, "service_account") => map.next_value_seed(Fields {
                    actor: &mut owner,
                    part: Part::ServiceAccount,
                })?,
                _ => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        if self.part == Part::ApiKey {
            match key_type.as_deref() {
                Some("user") => {
                    actor.kind = "user";
                    actor.id = owner.id;
                    actor.email = owner.email;
                }
                Some("service_account") => {
                    actor.kind = "service_account";
                    actor.id = owner.id;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Text, or a number read as text (an `asn` sent as a JSON number);
/// anything else reads as absent.
struct LooseText<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for LooseText<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = LooseText<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("text")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(LooseText(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(LooseText(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(LooseText(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(LooseText(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(LooseText(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(LooseText(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(LooseText(None))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(LooseText(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_entry::<de::IgnoredAny, de::IgnoredAny>()?.is_some() {}
                Ok(LooseText(None))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}
