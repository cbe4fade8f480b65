//! The normalized actor: who did it, whatever kind of actor the API reports
//! (a user's session, a user's API key, a service account's API key).

use std::borrow::Cow;
use std::cell::OnceCell;

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};

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
    /// The user agent's families, worked out the first time one is asked.
    families: OnceCell<Families>,
}

/// The normalized field names, as written after `actor.` in a path, in the
/// order of [`ActorField`].
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
    "browser",
    "os",
];

/// One normalized field (see [`NORMALIZED`]), named once at load so that
/// reading it is a jump rather than a search by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorField {
    Type,
    Kind,
    Id,
    Email,
    ApiKeyId,
    Ip,
    UserAgent,
    Country,
    Region,
    City,
    Asn,
    Browser,
    Os,
}

impl ActorField {
    const ALL: [ActorField; 13] = [
        ActorField::Type,
        ActorField::Kind,
        ActorField::Id,
        ActorField::Email,
        ActorField::ApiKeyId,
        ActorField::Ip,
        ActorField::UserAgent,
        ActorField::Country,
        ActorField::Region,
        ActorField::City,
        ActorField::Asn,
        ActorField::Browser,
        ActorField::Os,
    ];

    /// The field named `name` (as written after `actor.`).
    pub fn named(name: &str) -> Option<ActorField> {
        let i = NORMALIZED.iter().position(|n| *n == name)?;
        Some(ActorField::ALL[i])
    }

    /// The field at `index` of [`NORMALIZED`].
    pub fn at(index: usize) -> Option<ActorField> {
        ActorField::ALL.get(index).copied()
    }

    pub fn name(self) -> &'static str {
        NORMALIZED[self as usize]
    }
}

impl<'a> Actor<'a> {
    /// Reads the actor from its raw JSON; `None` when it is `null` or not of
    /// the expected shape.
    pub fn parse(raw: &'a str) -> Option<Actor<'a>> {
        let mut de = serde_json::Deserializer::from_str(raw);
        Actor::deserialize(&mut de).ok().flatten()
    }

    /// Reads the actor straight from a deserializer, in one pass over its
    /// text, keeping only the fields that are normalized.
    pub(crate) fn deserialize<'de: 'a, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Actor<'a>>, D::Error> {
        d.deserialize_option(OptionalActor(PhantomData))
    }

    /// An actor of no known kind, with no field yet.
    pub(super) fn unknown() -> Actor<'a> {
        Actor {
            kind: "unknown",
            ..Actor::default()
        }
    }

    /// The value of a normalized field by its name (see [`NORMALIZED`]).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.field(ActorField::named(name)?)
    }

    /// The value of a normalized field.
    pub fn field(&self, field: ActorField) -> Option<&str> {
        match field {
            ActorField::Type => self.actor_type.as_deref(),
            ActorField::Kind => Some(self.kind),
            ActorField::Id => self.id.as_deref(),
            ActorField::Email => self.email.as_deref(),
            ActorField::ApiKeyId => self.api_key_id.as_deref(),
            ActorField::Ip => self.ip.as_deref(),
            ActorField::UserAgent => self.user_agent.as_deref(),
            ActorField::Country => self.country.as_deref(),
            ActorField::Region => self.region.as_deref(),
            ActorField::City => self.city.as_deref(),
            ActorField::Asn => self.asn.as_deref(),
            ActorField::Browser => {
                let ua = self.user_agent.as_deref()?;
                match ua.starts_with("Mozilla/") {
                    true => Some(self.families(ua).0),
                    false => product(ua),
                }
            }
            ActorField::Os => self.families(self.user_agent.as_deref()?).1,
        }
    }

    /// The families of this actor's user agent `ua`.
    fn families(&self, ua: &str) -> Families {
        *self.families.get_or_init(|| families(ua))
    }

    /// Adds the normalized fields to the original actor object.
    pub fn add_to(&self, obj: &mut serde_json::Map<String, serde_json::Value>) {
        for field in ActorField::ALL {
            if let Some(v) = self.field(field) {
                obj.insert(field.name().to_owned(), v.to_owned().into());
            }
        }
    }
}

/// The first product name of a user agent that is not a browser
/// (`python-requests`, `curl`).
fn product(ua: &str) -> Option<&str> {
    let product = ua.split(['/', ' ', ';']).next()?.trim();
    (!product.is_empty()).then_some(product)
}

/// A user agent's browser family (as a `Mozilla/` agent) and system family.
type Families = (&'static str, Option<&'static str>);

/// The browser family (as a `Mozilla/` agent) and the system family of a
/// user agent. An organization has few distinct agents, each seen on many
/// events, so the answers are kept per thread rather than searched for
/// again in every event.
fn families(ua: &str) -> Families {
    use std::cell::RefCell;
    thread_local! {
        static KNOWN: RefCell<rustc_hash::FxHashMap<Box<str>, Families>> = RefCell::default();
    }
    KNOWN.with_borrow_mut(|known| {
        if let Some(&f) = known.get(ua) {
            return f;
        }
        if known.len() >= 4096 {
            known.clear();
        }
        let f = (browser_family(ua), system_family(ua));
        known.insert(ua.into(), f);
        f
    })
}

fn browser_family(ua: &str) -> &'static str {
    const FAMILIES: [(&str, &str); 9] = [
        ("HeadlessChrome/", "HeadlessChrome"),
        ("Edg/", "Edge"),
        ("EdgA/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("FxiOS/", "Firefox"),
        ("CriOS/", "Chrome"),
        ("Chrome/", "Chrome"),
        ("Version/", "Safari"),
    ];
    FAMILIES
        .iter()
        .find(|(needle, _)| ua.contains(needle))
        .map_or("other", |(_, family)| *family)
}

fn system_family(ua: &str) -> Option<&'static str> {
    const SYSTEMS: [(&str, &str); 8] = [
        ("iPhone", "iOS"),
        ("iPad", "iOS"),
        ("Android", "Android"),
        ("Windows", "Windows"),
        ("Macintosh", "macOS"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ];
    SYSTEMS
        .iter()
        .find(|(needle, _)| ua.contains(needle))
        .map(|(_, system)| *system)
}

fn lower(s: Cow<'_, str>) -> Cow<'_, str> {
    // One pass over the usual address: lower-case ASCII.
    if !super::may_fold(&s) {
        return s;
    }
    if s.is_ascii() {
        Cow::Owned(s.to_ascii_lowercase())
    } else if s.chars().any(char::is_uppercase) {
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
        let mut actor = Actor::unknown();
        d.deserialize_map(Fields {
            actor: &mut actor,
            part: Part::Actor,
        })?;
        Ok(Some(actor))
    }
}

/// Which object of the actor is being read.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Part {
    Actor,
    Session,
    SessionUser,
    IpDetails,
    ApiKey,
    ApiKeyUser,
    ServiceAccount,
}

/// What a key of one object of the actor holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Slot {
    /// A nested object, read into the actor.
    Nested(Part),
    /// A nested object of an API key's owner, read aside until the key's
    /// `type` says whose it is.
    Owner(Part),
    /// Text (or `null`) for one field.
    Text(TextField),
    /// Text, a number, or anything else as absent (location details).
    Loose(TextField),
    Ignored,
}

/// Where the readers store one text of the actor: the stored normalized
/// fields, and an API key's `type` (read aside). [`ActorField`] names what
/// rules read instead, computed fields included.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum TextField {
    ActorType,
    Id,
    Email,
    ApiKeyId,
    KeyType,
    Ip,
    UserAgent,
    Country,
    Region,
    City,
    Asn,
}

impl Part {
    /// The slot of `key` in this object.
    #[inline]
    pub(super) fn slot(self, key: &str) -> Slot {
        use TextField as F;
        match self {
            Part::Actor => match key {
                "type" => Slot::Text(F::ActorType),
                "session" => Slot::Nested(Part::Session),
                "api_key" => Slot::Nested(Part::ApiKey),
                _ => Slot::Ignored,
            },
            Part::Session => match key {
                "user" => Slot::Nested(Part::SessionUser),
                "ip_address" => Slot::Text(F::Ip),
                "user_agent" => Slot::Text(F::UserAgent),
                "ip_address_details" => Slot::Nested(Part::IpDetails),
                _ => Slot::Ignored,
            },
            Part::SessionUser | Part::ApiKeyUser => match key {
                "id" => Slot::Text(F::Id),
                "email" => Slot::Text(F::Email),
                _ => Slot::Ignored,
            },
            Part::ServiceAccount => match key {
                "id" => Slot::Text(F::Id),
                _ => Slot::Ignored,
            },
            Part::IpDetails => match key {
                "country" => Slot::Loose(F::Country),
                "region" => Slot::Loose(F::Region),
                "city" => Slot::Loose(F::City),
                "asn" => Slot::Loose(F::Asn),
                _ => Slot::Ignored,
            },
            Part::ApiKey => match key {
                "id" => Slot::Text(F::ApiKeyId),
                "type" => Slot::Text(F::KeyType),
                "user" => Slot::Owner(Part::ApiKeyUser),
                "service_account" => Slot::Owner(Part::ServiceAccount),
                _ => Slot::Ignored,
            },
        }
    }
}

/// One object of the actor as it is read: the actor, and for an API key its
/// `type` and its owner, settled by [`ObjectRead::finish`].
pub(super) struct ObjectRead<'a> {
    pub part: Part,
    key_type: Option<Cow<'a, str>>,
    /// Made only for an API key that names one.
    owner: Option<Actor<'a>>,
}

impl<'a> ObjectRead<'a> {
    #[inline(always)]
    pub(super) fn start(part: Part, actor: &mut Actor<'a>) -> Self {
        if part == Part::SessionUser {
            actor.kind = "user";
        }
        ObjectRead {
            part,
            key_type: None,
            owner: None,
        }
    }

    /// Where an API key's owner is read.
    pub(super) fn owner(&mut self) -> &mut Actor<'a> {
        self.owner.get_or_insert_with(Actor::default)
    }

    /// Stores one text field.
    #[inline(always)]
    pub(super) fn set(&mut self, actor: &mut Actor<'a>, field: TextField, v: Option<Cow<'a, str>>) {
        use TextField as F;
        match field {
            F::ActorType => actor.actor_type = v,
            F::Id => actor.id = v,
            F::Email => actor.email = v.map(lower),
            F::ApiKeyId => actor.api_key_id = v,
            F::KeyType => self.key_type = v,
            F::Ip => actor.ip = v,
            F::UserAgent => actor.user_agent = v,
            F::Country => actor.country = v,
            F::Region => actor.region = v,
            F::City => actor.city = v,
            F::Asn => actor.asn = v,
        }
    }

    /// Settles an API key's owner once the whole key object is read.
    #[inline(always)]
    pub(super) fn finish(&mut self, actor: &mut Actor<'a>) {
        if self.part == Part::ApiKey {
            self.settle_owner(actor);
        }
    }

    #[cold]
    fn settle_owner(&mut self, actor: &mut Actor<'a>) {
        let owner = self.owner.take().unwrap_or_default();
        match self.key_type.as_deref() {
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
        let mut read = ObjectRead::start(self.part, actor);
        while let Some(BorrowedStr(key)) = map.next_key::<BorrowedStr>()? {
            match read.part.slot(&key) {
                Slot::Nested(part) => map.next_value_seed(Fields {
                    actor: &mut *actor,
                    part,
                })?,
                Slot::Owner(part) => map.next_value_seed(Fields {
                    actor: read.owner(),
                    part,
                })?,
                Slot::Text(field) => {
                    let v = map.next_value::<Option<BorrowedStr>>()?.map(|s| s.0);
                    read.set(actor, field, v);
                }
                Slot::Loose(field) => {
                    let v = map.next_value::<LooseText>()?.0;
                    read.set(actor, field, v);
                }
                Slot::Ignored => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        read.finish(actor);
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

#[cfg(test)]
mod tests {
    use super::{Actor, ActorField, NORMALIZED};

    /// The browser and system families the actor of user agent `ua` has.
    fn families(ua: &str) -> (Option<String>, Option<String>) {
        let actor = Actor {
            user_agent: Some(ua.into()),
            ..Actor::default()
        };
        let family = |f| actor.field(f).map(str::to_owned);
        (family(ActorField::Browser), family(ActorField::Os))
    }

    #[test]
    fn actor_fields_follow_the_order_of_their_names() {
        for (i, name) in NORMALIZED.iter().enumerate() {
            let field = ActorField::named(name).unwrap();
            assert_eq!(field as usize, i, "{name}");
            assert_eq!(field.name(), *name);
            assert_eq!(ActorField::at(i), Some(field));
        }
        assert_eq!(ActorField::named("mail"), None);
    }

    #[test]
    fn user_agents_reduce_to_browser_and_system_families() {
        let cases = [
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/153.0.0.0 Safari/537.36",
                Some("Chrome"),
                Some("macOS"),
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/153.0.0.0 Safari/537.36 Edg/153.0.3650.66",
                Some("Edge"),
                Some("Windows"),
            ),
            (
                "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:156.0) Gecko/20100101 Firefox/156.0",
                Some("Firefox"),
                Some("Linux"),
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/27.0 Mobile/15E148 Safari/604.1",
                Some("Safari"),
                Some("iOS"),
            ),
            (
                "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/153.0.0.0 Mobile Safari/537.36",
                Some("Chrome"),
                Some("Android"),
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.6367.207 Safari/537.36",
                Some("HeadlessChrome"),
                Some("Linux"),
            ),
            ("python-requests/2.32.3", Some("python-requests"), None),
            ("curl/8.5.0", Some("curl"), None),
            ("", None, None),
        ];
        for (ua, b, o) in cases {
            let (browser, os) = families(ua);
            assert_eq!(browser.as_deref(), b, "{ua}");
            assert_eq!(os.as_deref(), o, "{ua}");
        }
        // A new version of the same browser is the same family.
        let (browser, _) = families(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/154.0.0.0 Safari/537.36",
        );
        assert_eq!(browser.as_deref(), Some("Chrome"));
    }
}
