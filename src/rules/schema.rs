//! What the audit log holds, from the official list of event types and
//! their detail fields (shipped in the binary), and the load-time check of
//! every field path and event type a rule names against it.
//!
//! A name the schema does not know is a warning, never an error: the API
//! adds types and fields. Each warning says where, and what was probably
//! meant.

use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The official list, as copied from the OpenAI API description by
/// `cargo run --example event_types -- PATH`.
pub const EVENT_TYPES: &str = include_str!("event-types.txt");

/// The shape of a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// A scalar, or an array of scalars: paths end here.
    Leaf,
    /// An object (or an array of objects) with these fields.
    Fields(BTreeMap<String, Shape>),
    /// Anything: no schema, or an object without declared fields.
    Free,
}

/// Every event type with the shape of its detail object.
#[derive(Debug)]
pub struct Schema {
    pub types: BTreeMap<String, Shape>,
    /// The fields of `actor` as the API sends them.
    actor: Shape,
}

/// The schema, read once.
pub fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| Schema::parse(EVENT_TYPES).expect("the shipped event types parse"))
}

impl Schema {
    /// Reads the list: one type per line, then its fields in the notation
    /// `id, data{scopes[]}, certificates[]{id, name}`, `x{}` for free-form
    /// objects, `-` for types without a schema.
    pub fn parse(text: &str) -> Result<Schema, String> {
        let mut types = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, spec) = line
                .split_once(char::is_whitespace)
                .map(|(n, s)| (n, s.trim()))
                .unwrap_or((line, "-"));
            let shape = if spec == "-" {
                Shape::Free
            } else if spec.starts_with("{}") {
                // Documented as having no fields of its own.
                Shape::Fields(BTreeMap::new())
            } else {
                let mut chars = spec.chars().peekable();
                let fields = parse_fields(&mut chars)
                    .map_err(|e| format!("event types line {}: {e}", n + 1))?;
                Shape::Fields(fields)
            };
            types.insert(name.to_owned(), shape);
        }
        Ok(Schema {
            types,
            actor: actor_shape(),
        })
    }

    /// Checks a field path of a rule that can match `types` (`None`: any
    /// type); the warning text when the schema does not know it.
    pub fn check_path(&self, path: &str, types: Option<&[String]>) -> Result<(), String> {
        let (first, rest) = split_first(path);
        let tops = [
            "id",
            "type",
            "effective_at",
            "time",
            "object",
            "project",
            "actor",
            "details",
        ];
        match first {
            "id" | "type" | "effective_at" | "time" | "object" => match rest {
                None => Ok(()),
                Some(_) => Err(format!(
                    "`{first}` has no fields, so `{path}` is never there"
                )),
            },
            "project" => {
                let fields = BTreeMap::from([
                    ("id".to_owned(), Shape::Leaf),
                    ("name".to_owned(), Shape::Leaf),
                ]);
                walk(&Shape::Fields(fields), rest, "project", path)
            }
            "actor" => {
                // The normalized fields first, then the API's own.
                if let Some(r) = rest {
                    let (name, deeper) = split_first(r);
                    if crate::event::NORMALIZED.contains(&name) && deeper.is_none() {
                        return Ok(());
                    }
                }
                walk(&self.actor, rest, "actor", path).map_err(|e| {
                    let names: Vec<&str> = crate::event::NORMALIZED
                        .iter()
                        .copied()
                        .chain(["session", "api_key"])
                        .collect();
                    match rest.map(split_first) {
                        Some((name, None)) => match suggest(name, names.iter().copied()) {
                            Some(s) => format!(
                                "`actor.{name}` is not an actor field; did you mean `actor.{s}`?"
                            ),
                            None => e,
                        },
                        _ => e,
                    }
                })
            }
            "details" => {
                let Some(rest) = rest else { return Ok(()) };
                self.check_details(rest, types, path)
            }
            _ => {
                // A type's own key (`api_key.created.data.scopes`): the
                // longest type name the path starts with.
                if let Some((ty, shape)) = self
                    .types
                    .iter()
                    .filter(|(t, _)| {
                        path == t.as_str()
                            || path
                                .strip_prefix(t.as_str())
                                .is_some_and(|r| r.starts_with('.'))
                    })
                    .max_by_key(|(t, _)| t.len())
                {
                    let rest = path[ty.len()..].strip_prefix('.');
                    return walk(shape, rest, ty, path);
                }
                let rule_keys = [
                    "condition",
                    "script",
                    "threshold",
                    "suppress",
                    "summary",
                    "severity",
                    "title",
                    "description",
                    "notify",
                    "tests",
                    "tags",
                    "enabled",
                ];
                if rule_keys.contains(&first) && rest.is_none() {
                    return Err(format!(
                        "`{first}` is read as a field path here; if it is the rule's `{first}:`, move it out of `match:` to the rule's top level"
                    ));
                }
                let hint = suggest(first, tops.iter().copied())
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                Err(format!(
                    "`{first}` is not a field of audit log events{hint} (fields: {})",
                    tops.join(", ")
                ))
            }
        }
    }

    /// A `details.…` path, against the detail fields of every type the
    /// rule can match: known if any of them has it.
    fn check_details(
        &self,
        rest: &str,
        types: Option<&[String]>,
        path: &str,
    ) -> Result<(), String> {
        let shapes: Vec<(&str, &Shape)> = match types {
            Some(ts) => ts
                .iter()
                .filter_map(|t| self.types.get_key_value(t.as_str()))
                .map(|(t, s)| (t.as_str(), s))
                .collect(),
            None => self.types.iter().map(|(t, s)| (t.as_str(), s)).collect(),
        };
        // Types the schema does not know have no known shape either.
        if shapes.is_empty() || types.is_some_and(|ts| ts.len() != shapes.len()) {
            return Ok(());
        }
        let mut first_error = None;
        for (_, shape) in &shapes {
            match walk(shape, Some(rest), "details", path) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        let names: Vec<&str> = shapes.iter().map(|(t, _)| *t).collect();
        let of = if names.len() <= 3 {
            names.join(", ")
        } else {
            format!("{} types", names.len())
        };
        Err(format!(
            "{} (details of {of})",
            first_error.unwrap_or_else(|| format!("`{path}` is unknown"))
        ))
    }

    /// Checks an event type name; the warning text when it is unknown.
    pub fn check_type(&self, ty: &str) -> Result<(), String> {
        if self.types.contains_key(ty) {
            return Ok(());
        }
        let hint = suggest(ty, self.types.keys().map(String::as_str))
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_default();
        Err(format!("`{ty}` is not an audit log event type{hint}"))
    }
}

/// Follows `rest` (dot-separated) down `shape`.
fn walk(shape: &Shape, rest: Option<&str>, at: &str, path: &str) -> Result<(), String> {
    let Some(rest) = rest else { return Ok(()) };
    match shape {
        Shape::Free => Ok(()),
        Shape::Leaf => Err(format!("`{at}` has no fields, so `{path}` is never there")),
        Shape::Fields(fields) => {
            // Keys may hold dots: the longest known key wins.
            let key = fields
                .keys()
                .filter(|k| {
                    rest == k.as_str()
                        || rest
                            .strip_prefix(k.as_str())
                            .is_some_and(|r| r.starts_with('.'))
                })
                .max_by_key(|k| k.len());
            match key {
                Some(k) => walk(
                    &fields[k],
                    rest[k.len()..].strip_prefix('.'),
                    &format!("{at}.{k}"),
                    path,
                ),
                None => {
                    let (name, _) = split_first(rest);
                    let hint = suggest(name, fields.keys().map(String::as_str))
                        .map(|s| format!("; did you mean `{at}.{s}`?"))
                        .unwrap_or_default();
                    let known = if fields.is_empty() {
                        "it has no documented fields".to_owned()
                    } else {
                        format!(
                            "its fields: {}",
                            fields.keys().cloned().collect::<Vec<_>>().join(", ")
                        )
                    };
                    Err(format!(
                        "`{at}.{name}` is not a known field{hint} ({known})"
                    ))
                }
            }
        }
    }
}

fn split_first(path: &str) -> (&str, Option<&str>) {
    match path.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (path, None),
    }
}

/// The closest of `names` to `word`, when it is close enough to be a typo.
pub fn suggest<'n>(word: &str, names: impl Iterator<Item = &'n str>) -> Option<&'n str> {
    names
        .map(|n| (strsim::damerau_levenshtein(word, n), n))
        .filter(|(d, n)| *d > 0 && *d <= (n.len().max(word.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

/// `field, other{a, b[]}, list[]{x}` up to the end or a closing brace.
fn parse_fields(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
) -> Result<BTreeMap<String, Shape>, String> {
    let mut out = BTreeMap::new();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        match chars.peek() {
            None | Some('}') => return Ok(out),
            Some('(') => {
                // A trailing remark.
                for _ in chars.by_ref() {}
                return Ok(out);
            }
            _ => {}
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_alphanumeric() || c == '_' || c == '.' || c == '-' {
                name.push(c);
                chars.next();
            } else {
                break;
            }
        }
        if name.is_empty() {
            return Err(format!("unexpected {:?}", chars.peek()));
        }
        if chars.peek() == Some(&'[') {
            chars.next();
            if chars.next() != Some(']') {
                return Err(format!("`{name}[` without `]`"));
            }
        }
        let shape = if chars.peek() == Some(&'{') {
            chars.next();
            let inner = parse_fields(chars)?;
            if chars.next() != Some('}') {
                return Err(format!("`{name}{{` without `}}`"));
            }
            if inner.is_empty() {
                Shape::Free
            } else {
                Shape::Fields(inner)
            }
        } else {
            Shape::Leaf
        };
        out.insert(name, shape);
    }
}

/// The actor object as the API sends it (the spec's actor, plus the
/// session fields that real events carry).
fn actor_shape() -> Shape {
    let leaf = |names: &[&str]| -> BTreeMap<String, Shape> {
        names
            .iter()
            .map(|n| ((*n).to_owned(), Shape::Leaf))
            .collect()
    };
    let user = Shape::Fields(leaf(&["id", "email"]));
    let mut session = leaf(&["ip_address", "user_agent", "ja3", "ja4"]);
    session.insert("user".into(), user.clone());
    session.insert(
        "ip_address_details".into(),
        Shape::Fields(leaf(&[
            "country",
            "city",
            "region",
            "region_code",
            "asn",
            "latitude",
            "longitude",
        ])),
    );
    let mut api_key = leaf(&["id", "type"]);
    api_key.insert("user".into(), user);
    api_key.insert("service_account".into(), Shape::Fields(leaf(&["id"])));
    let mut actor = leaf(&["type"]);
    actor.insert("session".into(), Shape::Fields(session));
    actor.insert("api_key".into(), Shape::Fields(api_key));
    Shape::Fields(actor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_list_has_every_type() {
        let s = schema();
        assert_eq!(s.types.len(), 145);
        assert!(s.check_type("api_key.created").is_ok());
        let e = s.check_type("ip_allowlist.delete").unwrap_err();
        assert!(e.contains("did you mean `ip_allowlist.deleted`"), "{e}");
    }

    #[test]
    fn paths_are_checked_with_suggestions() {
        let s = schema();
        let key = ["api_key.created".to_owned()];
        assert!(s.check_path("details.data.scopes", Some(&key)).is_ok());
        assert!(s.check_path("api_key.created.data.scopes", None).is_ok());
        assert!(s.check_path("actor.email", None).is_ok());
        assert!(
            s.check_path("actor.session.ip_address_details.asn", None)
                .is_ok()
        );
        assert!(s.check_path("project.name", None).is_ok());
        let e = s.check_path("actor.emial", None).unwrap_err();
        assert!(e.contains("did you mean `actor.email`"), "{e}");
        let e = s.check_path("details.data.scope", Some(&key)).unwrap_err();
        assert!(e.contains("did you mean `details.data.scopes`"), "{e}");
        let e = s.check_path("projct.id", None).unwrap_err();
        assert!(e.contains("did you mean `project`"), "{e}");
        // Unknown types and free-form details are not guessed at.
        assert!(
            s.check_path("details.anything", Some(&["new.type".to_owned()]))
                .is_ok()
        );
        assert!(
            s.check_path(
                "details.data.x",
                Some(&["external_key.registered".to_owned()])
            )
            .is_ok()
        );
    }
}
