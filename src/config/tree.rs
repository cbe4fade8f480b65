//! The config file as a tree of positioned YAML nodes: `${NAME}` is replaced
//! inside scalar values after the structure is read, and the typed sections
//! are then deserialized from the tree, every error at its line and column.
//!
//! Replacing after parsing means an environment value can never add keys,
//! start a comment or change the document's shape. A scalar that is only
//! `${NAME}` takes the variable's text and is read as whatever its field
//! wants (a number for a port, a string for a password).

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// One YAML node and where it starts.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub kind: Kind,
    pub line: u64,
    pub column: u64,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Map(Vec<(Node, Node)>),
    Seq(Vec<Node>),
    Str(Str),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
}

/// A text scalar, with where its text came from.
#[derive(Debug, Clone)]
pub(crate) struct Str {
    pub text: String,
    /// The variable the whole text came from: the value is read as the
    /// field's type, and never shown in an error.
    pub from_var: Option<String>,
}

/// A problem found in the tree, at a position when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TreeError {
    pub message: String,
    pub line: u64,
    pub column: u64,
}

impl fmt::Display for TreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TreeError {}

impl de::Error for TreeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        TreeError {
            message: msg.to_string(),
            line: 0,
            column: 0,
        }
    }
}

impl TreeError {
    fn at(mut self, node: &Node) -> Self {
        if self.line == 0 {
            self.line = node.line;
            self.column = node.column;
        }
        self
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        let s: Spanned<Kind> = Spanned::deserialize(d)?;
        Ok(Node {
            kind: s.value,
            line: s.referenced.line(),
            column: s.referenced.column(),
        })
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Kind, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Kind;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a YAML value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<Node, Node>()? {
                    entries.push(entry);
                }
                Ok(Kind::Map(entries))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Node>()? {
                    items.push(item);
                }
                Ok(Kind::Seq(items))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Kind, E> {
                Ok(Kind::Str(Str {
                    text: v.to_owned(),
                    from_var: None,
                }))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Kind, E> {
                Ok(Kind::Str(Str {
                    text: v,
                    from_var: None,
                }))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Kind, E> {
                Ok(Kind::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Kind, E> {
                Ok(i64::try_from(v).map_or(Kind::Float(v as f64), Kind::Int))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Kind, E> {
                Ok(Kind::Float(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Kind, E> {
                Ok(Kind::Bool(v))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Kind, E> {
                Ok(Kind::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Kind, E> {
                Ok(Kind::Null)
            }
            fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Kind, D::Error> {
                Kind::deserialize(d)
            }
        }
        d.deserialize_any(V)
    }
}

impl Node {
    /// The value under `key` of a map node.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            Kind::Map(entries) => entries
                .iter()
                .find(|(k, _)| matches!(&k.kind, Kind::Str(s) if s.text == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The text keys of a map node, with their nodes.
    pub fn keys(&self) -> impl Iterator<Item = (&str, &Node)> {
        let entries = match &self.kind {
            Kind::Map(entries) => entries.as_slice(),
            _ => &[],
        };
        entries.iter().filter_map(|(k, _)| match &k.kind {
            Kind::Str(s) => Some((s.text.as_str(), k)),
            _ => None,
        })
    }

    /// Replaces `${NAME}` and `${NAME:-default}` in every text scalar under
    /// this node (map keys excepted) with `lookup(NAME)`; `$${` stands for a
    /// literal `${`. A variable that is not set and has no default is an
    /// error naming it, at its scalar.
    pub fn substitute(&mut self, lookup: &dyn Fn(&str) -> Option<String>) -> Result<(), TreeError> {
        let (line, column) = (self.line, self.column);
        match &mut self.kind {
            Kind::Map(entries) => {
                for (_, v) in entries {
                    v.substitute(lookup)?;
                }
            }
            Kind::Seq(items) => {
                for item in items {
                    item.substitute(lookup)?;
                }
            }
            Kind::Str(s) => {
                *s = expand(&s.text, lookup).map_err(|name| TreeError {
                    message: format!(
                        "environment variable {name} is not set (set it, or give a default with ${{{name}:-default}})"
                    ),
                    line,
                    column,
                })?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Reads a typed value from the node.
    pub fn deserialize<T: de::DeserializeOwned>(&self) -> Result<T, TreeError> {
        T::deserialize(self).map_err(|e| e.at(self))
    }

    fn scalar_text(&self) -> Option<String> {
        match &self.kind {
            Kind::Str(s) => Some(s.text.clone()),
            Kind::Int(i) => Some(i.to_string()),
            Kind::Float(f) => Some(f.to_string()),
            Kind::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
}

/// Expands the variables of one scalar; the error is the name of a variable
/// that is not set.
fn expand(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Str, String> {
    if !text.contains("${") {
        return Ok(Str {
            text: text.to_owned(),
            from_var: None,
        });
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut whole = None;
    while let Some(start) = rest.find("${") {
        if rest[..start].ends_with('$') {
            // `$${` is a literal `${`.
            out.push_str(&rest[..start - 1]);
            out.push_str("${");
            rest = &rest[start + 2..];
            continue;
        }
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        let value = match (lookup(name), default) {
            (Some(v), _) => v,
            (None, Some(d)) => d.to_owned(),
            (None, None) => return Err(name.to_owned()),
        };
        if start == 0 && end + 3 == rest.len() && out.is_empty() {
            whole = Some(name.to_owned());
        }
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(Str {
        text: out,
        from_var: whole,
    })
}

/// An error from a visitor on a scalar that came from a variable must not
/// show the variable's value.
fn hide_value(e: TreeError, s: &Str) -> TreeError {
    match &s.from_var {
        Some(name) if !s.text.is_empty() => TreeError {
            message: e
                .message
                .replace(
                    &format!("{:?}", s.text),
                    &format!("the value of ${{{name}}}"),
                )
                .replace(&s.text, &format!("the value of ${{{name}}}")),
            ..e
        },
        _ => e,
    }
}

macro_rules! parse_scalar {
    ($name:ident, $visit:ident, $ty:ty) => {
        fn $name<V: Visitor<'de>>(self, v: V) -> Result<V::Value, TreeError> {
            match &self.kind {
                Kind::Str(s) => match s.text.trim().parse::<$ty>() {
                    Ok(n) => v.$visit(n).map_err(|e| hide_value(e, s)),
                    Err(_) => self.deserialize_any(v),
                },
                _ => self.deserialize_any(v),
            }
        }
    };
}

impl<'de> de::Deserializer<'de> for &Node {
    type Error = TreeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, TreeError> {
        let out = match &self.kind {
            Kind::Map(entries) => v.visit_map(Entries {
                iter: entries.iter(),
                value: None,
            }),
            Kind::Seq(items) => v.visit_seq(Items { iter: items.iter() }),
            Kind::Str(s) => v.visit_str(&s.text).map_err(|e| hide_value(e, s)),
            Kind::Int(i) => v.visit_i64(*i),
            Kind::Float(f) => v.visit_f64(*f),
            Kind::Bool(b) => v.visit_bool(*b),
            Kind::Null => v.visit_unit(),
        };
        out.map_err(|e| e.at(self))
    }

    parse_scalar!(deserialize_u8, visit_u64, u64);
    parse_scalar!(deserialize_u16, visit_u64, u64);
    parse_scalar!(deserialize_u32, visit_u64, u64);
    parse_scalar!(deserialize_u64, visit_u64, u64);
    parse_scalar!(deserialize_i8, visit_i64, i64);
    parse_scalar!(deserialize_i16, visit_i64, i64);
    parse_scalar!(deserialize_i32, visit_i64, i64);
    parse_scalar!(deserialize_i64, visit_i64, i64);
    parse_scalar!(deserialize_f32, visit_f64, f64);
    parse_scalar!(deserialize_f64, visit_f64, f64);
    parse_scalar!(deserialize_bool, visit_bool, bool);

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, TreeError> {
        match (&self.kind, self.scalar_text()) {
            (Kind::Str(_), _) | (_, None) => self.deserialize_any(v),
            (_, Some(text)) => v.visit_string(text).map_err(|e: TreeError| e.at(self)),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, TreeError> {
        self.deserialize_str(v)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, TreeError> {
        match &self.kind {
            Kind::Null => v.visit_none(),
            _ => v.visit_some(self),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, TreeError> {
        match &self.kind {
            Kind::Str(s) => v
                .visit_enum(s.text.as_str().into_deserializer())
                .map_err(|e: TreeError| e.at(self)),
            _ => self.deserialize_any(v),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, TreeError> {
        if name == super::LOCATED {
            return v
                .visit_seq(Located {
                    node: self,
                    step: 0,
                })
                .map_err(|e| e.at(self));
        }
        v.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        i128 u128 char bytes byte_buf unit unit_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

struct Entries<'n> {
    iter: std::slice::Iter<'n, (Node, Node)>,
    value: Option<&'n Node>,
}

impl<'de> MapAccess<'de> for Entries<'_> {
    type Error = TreeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, TreeError> {
        let Some((k, v)) = self.iter.next() else {
            return Ok(None);
        };
        self.value = Some(v);
        seed.deserialize(k).map(Some).map_err(|e| e.at(k))
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, TreeError> {
        let v = self.value.take().expect("a value follows its key");
        seed.deserialize(v).map_err(|e| e.at(v))
    }
}

struct Items<'n> {
    iter: std::slice::Iter<'n, Node>,
}

impl<'de> SeqAccess<'de> for Items<'_> {
    type Error = TreeError;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, TreeError> {
        match self.iter.next() {
            Some(n) => seed.deserialize(n).map(Some).map_err(|e| e.at(n)),
            None => Ok(None),
        }
    }
}

/// Hands a [`super::Located`] value its line, column and the node.
struct Located<'n> {
    node: &'n Node,
    step: u8,
}

impl<'de> SeqAccess<'de> for Located<'_> {
    type Error = TreeError;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, TreeError> {
        self.step += 1;
        match self.step {
            1 => seed
                .deserialize(self.node.line.into_deserializer())
                .map(Some),
            2 => seed
                .deserialize(self.node.column.into_deserializer())
                .map(Some),
            3 => seed.deserialize(self.node).map(Some),
            _ => Ok(None),
        }
    }
}

/// Reads the YAML text of a config file into a tree.
pub(crate) fn parse(text: &str) -> Result<Node, TreeError> {
    serde_saphyr::from_str_with_options::<Node>(text, crate::rules::yaml_options()).map_err(|e| {
        let loc = e.location();
        TreeError {
            message: crate::rules::yaml_message(&e),
            line: loc.map_or(0, |l| l.line()),
            column: loc.map_or(0, |l| l.column()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "PORT" => Some("2525".into()),
            "PASSWORD" => Some("a: b # not a comment\nsecond: line".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Smtp {
        port: u16,
        password: String,
        user: Option<String>,
        note: String,
    }

    fn read(text: &str) -> Result<Smtp, TreeError> {
        let mut tree = parse(text)?;
        tree.substitute(&env)?;
        tree.deserialize()
    }

    #[test]
    fn values_are_replaced_after_the_structure_is_read() {
        let smtp = read(
            "port: ${PORT}\npassword: \"${PASSWORD}\"\nuser: ${NOPE:-}\nnote: 'x $${PORT} ${EMPTY}y'\n",
        )
        .unwrap();
        assert_eq!(
            smtp,
            Smtp {
                port: 2525,
                password: "a: b # not a comment\nsecond: line".into(),
                user: Some(String::new()),
                note: "x ${PORT} y".into(),
            }
        );
    }

    #[test]
    fn errors_have_positions_and_hide_values() {
        let e = read("port: 1\npassword: x\nnote: ${NOPE}\n").unwrap_err();
        assert_eq!((e.line, e.column), (3, 7), "{e:?}");
        assert!(e.message.contains("NOPE"), "{e}");
        let e = read("port: 1\npassword: x\nnote: n\nextra: 1\n").unwrap_err();
        assert_eq!(e.line, 4, "{e:?}");
        assert!(e.message.contains("extra"), "{e}");
        // A value from the environment that does not fit is not printed.
        let e = read("port: ${PASSWORD}\npassword: x\nnote: n\n").unwrap_err();
        assert_eq!(e.line, 1, "{e:?}");
        assert!(!e.message.contains("not a comment"), "{e}");
        assert!(e.message.contains("${PASSWORD}"), "{e}");
    }
}
