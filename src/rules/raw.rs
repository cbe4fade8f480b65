//! The rule file as written: the YAML shapes of contract v1, read with their
//! positions so that every problem can be reported as `PATH:LINE:COLUMN`.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use super::Severity;

/// The scalar `visit_*` methods shared by the visitors above; `$wrap` turns
/// a [`Scalar`] into the visitor's value.
macro_rules! scalar_visits {
    ($wrap:expr) => {
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(($wrap)(Scalar::Str(v.to_owned())))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(($wrap)(Scalar::Str(v)))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(($wrap)(Scalar::Int(v)))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(($wrap)(match i64::try_from(v) {
                Ok(i) => Scalar::Int(i),
                Err(_) => Scalar::Float(v as f64),
            }))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(($wrap)(Scalar::Float(v)))
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(($wrap)(Scalar::Bool(v)))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(($wrap)(Scalar::Null))
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(($wrap)(Scalar::Null))
        }
    };
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub id: Spanned<String>,
    pub title: Spanned<String>,
    pub severity: Spanned<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub enabled: Option<bool>,
    #[serde(rename = "match")]
    pub matches: Option<Spanned<RawMatch>>,
    pub condition: Option<Spanned<String>>,
    pub script: Option<Spanned<String>>,
    pub threshold: Option<Spanned<RawThreshold>>,
    pub sequence: Option<Spanned<RawSequence>>,
    pub first_seen: Option<Spanned<RawFirstSeen>>,
    pub suppress: Option<Spanned<RawSuppress>>,
    pub summary: Option<Spanned<String>>,
    pub notify: Option<Vec<String>>,
    #[serde(default)]
    pub tests: Vec<Spanned<RawTest>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawThreshold {
    #[serde(deserialize_with = "count_of_events")]
    pub count: u32,
    pub window: Spanned<String>,
    #[serde(default)]
    pub group_by: OneOrMany<Spanned<String>>,
    pub distinct: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSequence {
    #[serde(default)]
    pub by: OneOrMany<Spanned<String>>,
    pub within: Spanned<String>,
    pub steps: Vec<Spanned<RawStep>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    pub name: Option<String>,
    #[serde(rename = "match")]
    pub matches: Spanned<RawMatch>,
    #[serde(default = "one_event", deserialize_with = "count_of_events")]
    pub count: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFirstSeen {
    pub of: OneOrMany<Spanned<String>>,
    #[serde(default)]
    pub per: OneOrMany<Spanned<String>>,
    pub learn_for: Spanned<String>,
    pub forget_after: Option<Spanned<String>>,
    #[serde(default)]
    pub new_keys: bool,
    #[serde(default, deserialize_with = "some_count")]
    pub max_values: Option<u32>,
}

fn some_count<'de, D: de::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    count_of_events(d).map(Some)
}

fn one_event() -> u32 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSuppress {
    pub window: Spanned<String>,
    #[serde(default)]
    pub key: OneOrMany<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTest {
    pub name: String,
    pub event: Option<serde_json::Value>,
    pub events: Option<Vec<serde_json::Value>>,
    pub expect: Option<bool>,
    pub expect_alerts: Option<usize>,
    pub expect_severity: Option<Severity>,
}

/// One value or a list of them.
pub struct OneOrMany<T>(pub Vec<T>);

impl<T> Default for OneOrMany<T> {
    fn default() -> Self {
        OneOrMany(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either<T> {
            Many(Vec<T>),
            One(T),
        }
        Ok(match Either::deserialize(d)? {
            Either::Many(v) => OneOrMany(v),
            Either::One(v) => OneOrMany(vec![v]),
        })
    }
}

/// A YAML scalar in a `match` entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
}

impl Scalar {
    /// The value's JSON text (`5`, `true`, `api.all`); `None` for null.
    pub fn text(&self) -> Option<String> {
        match self {
            Scalar::Str(s) => Some(s.clone()),
            Scalar::Int(i) => Some(i.to_string()),
            Scalar::Float(f) => Some(serde_json::Number::from_f64(*f)?.to_string()),
            Scalar::Bool(b) => Some(b.to_string()),
            Scalar::Null => None,
        }
    }

    pub fn number(&self) -> Option<f64> {
        match self {
            Scalar::Int(i) => Some(*i as f64),
            Scalar::Float(f) => Some(*f),
            Scalar::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

/// The value of a field entry: a scalar (equality), a list (equality with
/// any), or a mapping of operators.
pub enum RawCond {
    One(Scalar),
    Many(Vec<Scalar>),
    Ops(Vec<(String, Spanned<RawOperand>)>),
}

/// An operator's operand: one scalar or a list of them.
pub struct RawOperand(pub Vec<Scalar>);

/// A `match` mapping: field entries and `any`/`all`/`not`, in file order.
pub struct RawMatch(pub Vec<(Spanned<String>, MatchEntry)>);

pub enum MatchEntry {
    Any(Vec<Spanned<RawMatch>>),
    All(Vec<Spanned<RawMatch>>),
    Not(Box<Spanned<RawMatch>>),
    Field(Spanned<RawCond>),
}

impl<'de> Deserialize<'de> for RawMatch {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawMatch;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of field paths to conditions")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawMatch, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    let entry = match key.value.as_str() {
                        "or" | "and" => {
                            let with = if key.value == "or" { "any" } else { "all" };
                            return Err(de::Error::custom(format!(
                                "`{}` is not an operator: use `{with}:` with a list of matches",
                                key.value
                            )));
                        }
                        "any" => MatchEntry::Any(map.next_value()?),
                        "all" => MatchEntry::All(map.next_value()?),
                        "not" => MatchEntry::Not(Box::new(map.next_value()?)),
                        _ => MatchEntry::Field(map.next_value()?),
                    };
                    entries.push((key, entry));
                }
                Ok(RawMatch(entries))
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for RawCond {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawCond;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value, a list of values, or a mapping of operators")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawCond, A::Error> {
                let mut ops = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    ops.push((key, map.next_value()?));
                }
                Ok(RawCond::Ops(ops))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawCond, A::Error> {
                let mut items = Vec::new();
                while let Some(s) = seq.next_element::<Scalar>()? {
                    items.push(s);
                }
                Ok(RawCond::Many(items))
            }
            scalar_visits!(RawCond::One);
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for RawOperand {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawOperand;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value or a list of values")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawOperand, A::Error> {
                let mut items = Vec::new();
                while let Some(s) = seq.next_element::<Scalar>()? {
                    items.push(s);
                }
                Ok(RawOperand(items))
            }
            scalar_visits!(|s| RawOperand(vec![s]));
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scalar value (text, number or boolean)")
            }
            scalar_visits!(|s| s);
        }
        d.deserialize_any(V)
    }
}

/// `threshold.count`, with a message in the rule's terms.
fn count_of_events<'de, D: de::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = u32;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a whole number of events, at least 1")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u32, E> {
            match u32::try_from(v) {
                Ok(n) if n >= 1 => Ok(n),
                _ => Err(E::custom(
                    "`count` must be a whole number of events, at least 1",
                )),
            }
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u32, E> {
            if v < 1 {
                return Err(E::custom(
                    "`count` must be a whole number of events, at least 1",
                ));
            }
            self.visit_u64(v as u64)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<u32, E> {
            Err(E::custom(
                "`count` must be a whole number of events, at least 1",
            ))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<u32, E> {
            Err(E::custom(format!(
                "`count` must be a whole number of events, at least 1, not {v:?}"
            )))
        }
    }
    d.deserialize_any(V)
}
