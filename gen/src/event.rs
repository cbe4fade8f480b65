//! Compact JSON rendering of audit log events (envelope, actors, detail objects) and the
//! per-day batch that collects rendered events before they are sorted and written.

use std::fmt::Write as _;

use fastrand::Rng;

use crate::net::Place;
use crate::people::Device;
use crate::rng::push_base62;

/// Marks an event that belongs to no incident.
pub const NO_INCIDENT: u32 = u32::MAX;

const HEAD: &str = r#"{"object":"organization.audit_log","id":""#;
const ID_LEN: usize = "audit_log-".len() + 24;

/// One rendered event: a complete JSON Lines record including the trailing newline.
pub struct Ev {
    pub t: i64,
    pub seq: u64,
    pub incident: u32,
    pub line: String,
}

impl Ev {
    /// The event's `id`.
    pub fn id(&self) -> &str {
        &self.line[HEAD.len()..HEAD.len() + ID_LEN]
    }
}

/// Events waiting to be written; may hold events of later days (written when their day comes).
#[derive(Default)]
pub struct Batch {
    pub pending: Vec<Ev>,
    seq: u64,
    /// Incident index stamped on events created while an incident is being injected.
    pub tag: Option<u32>,
}

impl Batch {
    /// Starts an event: `object`, `id`, `type` and `effective_at`.
    pub fn event<'b>(&'b mut self, rng: &mut Rng, t: i64, ty: &'static str) -> EventBuilder<'b> {
        let mut line = String::with_capacity(768);
        line.push_str(HEAD);
        line.push_str("audit_log-");
        push_base62(&mut line, rng, 24);
        line.push_str(r#"","type":"#);
        push_str(&mut line, ty);
        line.push_str(r#","effective_at":"#);
        push_int(&mut line, t);
        EventBuilder {
            batch: self,
            line,
            ty,
            t,
        }
    }
}

/// Adds the optional parts of an event in the API's field order.
#[must_use = "call push() to queue the event"]
pub struct EventBuilder<'b> {
    batch: &'b mut Batch,
    line: String,
    ty: &'static str,
    t: i64,
}

impl<'b> EventBuilder<'b> {
    /// The project the action was scoped to.
    pub fn project(mut self, id: &str, name: &str) -> Self {
        self.line.push_str(r#","project":{"id":"#);
        push_str(&mut self.line, id);
        self.line.push_str(r#","name":"#);
        push_str(&mut self.line, name);
        self.line.push('}');
        self
    }

    /// The actor, already rendered as JSON (`null` for a null actor).
    pub fn actor(mut self, raw: &str) -> Self {
        self.line.push_str(r#","actor":"#);
        self.line.push_str(raw);
        self
    }

    /// The detail object, stored under a key equal to the event type.
    pub fn detail(mut self, f: impl FnOnce(&mut Obj<'_>)) -> Self {
        self.line.push(',');
        push_str(&mut self.line, self.ty);
        self.line.push(':');
        Obj::write(&mut self.line, f);
        self
    }

    /// Finishes the event and queues it.
    pub fn push(self) {
        self.finish();
    }

    /// Finishes the event, queues it and returns its id.
    pub fn push_id(self) -> String {
        self.finish().id().to_string()
    }

    fn finish(self) -> &'b Ev {
        let EventBuilder {
            batch, mut line, t, ..
        } = self;
        line.push_str("}\n");
        let seq = batch.seq;
        batch.seq += 1;
        batch.pending.push(Ev {
            t,
            seq,
            incident: batch.tag.unwrap_or(NO_INCIDENT),
            line,
        });
        batch.pending.last().expect("just pushed")
    }
}

/// Writes the members of a JSON object.
pub struct Obj<'a> {
    s: &'a mut String,
    first: bool,
}

impl Obj<'_> {
    /// Writes `{…}` with the members added by `f`.
    pub fn write(s: &mut String, f: impl FnOnce(&mut Obj<'_>)) {
        s.push('{');
        let mut o = Obj {
            s: &mut *s,
            first: true,
        };
        f(&mut o);
        s.push('}');
    }

    fn key(&mut self, k: &str) {
        if !self.first {
            self.s.push(',');
        }
        self.first = false;
        push_str(self.s, k);
        self.s.push(':');
    }

    pub fn str(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k);
        push_str(self.s, v);
        self
    }

    pub fn int(&mut self, k: &str, v: i64) -> &mut Self {
        self.key(k);
        push_int(self.s, v);
        self
    }

    pub fn strs<S: AsRef<str>>(&mut self, k: &str, v: &[S]) -> &mut Self {
        self.key(k);
        self.s.push('[');
        for (i, x) in v.iter().enumerate() {
            if i > 0 {
                self.s.push(',');
            }
            push_str(self.s, x.as_ref());
        }
        self.s.push(']');
        self
    }

    pub fn ints(&mut self, k: &str, v: &[i64]) -> &mut Self {
        self.key(k);
        self.s.push('[');
        for (i, x) in v.iter().enumerate() {
            if i > 0 {
                self.s.push(',');
            }
            push_int(self.s, *x);
        }
        self.s.push(']');
        self
    }

    pub fn obj(&mut self, k: &str, f: impl FnOnce(&mut Obj<'_>)) -> &mut Self {
        self.key(k);
        Obj::write(self.s, f);
        self
    }

    pub fn objs<T>(&mut self, k: &str, items: &[T], f: impl Fn(&mut Obj<'_>, &T)) -> &mut Self {
        self.key(k);
        self.s.push('[');
        for (i, x) in items.iter().enumerate() {
            if i > 0 {
                self.s.push(',');
            }
            Obj::write(self.s, |o| f(o, x));
        }
        self.s.push(']');
        self
    }
}

/// Appends `v` as a JSON string literal.
pub fn push_str(s: &mut String, v: &str) {
    s.push('"');
    let bytes = v.as_bytes();
    let mut from = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        s.push_str(&v[from..i]);
        if esc.is_empty() {
            let _ = write!(s, "\\u{:04x}", b);
        } else {
            s.push_str(esc);
        }
        from = i + 1;
    }
    s.push_str(&v[from..]);
    s.push('"');
}

/// Appends an integer.
pub fn push_int(s: &mut String, v: i64) {
    let _ = write!(s, "{v}");
}

/// A session actor: a person in a browser, with address, fingerprints and geolocation.
/// `full` = false renders the older shape without `ja3`, `ja4` and `ip_address_details`.
pub fn session_actor(
    user_id: &str,
    email: &str,
    place: &Place,
    dev: &Device,
    full: bool,
) -> String {
    let mut s = String::with_capacity(560);
    s.push_str(r#"{"type":"session","session":{"user":{"id":"#);
    push_str(&mut s, user_id);
    s.push_str(r#","email":"#);
    push_str(&mut s, email);
    s.push_str(r#"},"ip_address":"#);
    push_str(&mut s, &place.ip);
    s.push_str(r#","user_agent":"#);
    push_str(&mut s, dev.ua);
    if full {
        s.push_str(r#","ja3":"#);
        push_str(&mut s, dev.ja3);
        s.push_str(r#","ja4":"#);
        push_str(&mut s, dev.ja4);
        let g = place.geo;
        s.push_str(r#","ip_address_details":{"country":"#);
        push_str(&mut s, g.country);
        s.push_str(r#","city":"#);
        push_str(&mut s, g.city);
        s.push_str(r#","region":"#);
        push_str(&mut s, g.region);
        s.push_str(r#","region_code":"#);
        push_str(&mut s, g.region_code);
        s.push_str(r#","asn":"#);
        push_str(&mut s, g.asn);
        s.push_str(r#","latitude":"#);
        push_str(&mut s, g.latitude);
        s.push_str(r#","longitude":"#);
        push_str(&mut s, g.longitude);
        s.push('}');
    }
    s.push_str("}}");
    s
}

/// An API key actor owned by a user.
pub fn user_key_actor(key_id: &str, user_id: &str, email: &str) -> String {
    let mut s = String::with_capacity(160);
    s.push_str(r#"{"type":"api_key","api_key":{"id":"#);
    push_str(&mut s, key_id);
    s.push_str(r#","type":"user","user":{"id":"#);
    push_str(&mut s, user_id);
    s.push_str(r#","email":"#);
    push_str(&mut s, email);
    s.push_str("}}}");
    s
}

/// An API key actor owned by a service account.
pub fn service_key_actor(key_id: &str, svc_id: &str) -> String {
    let mut s = String::with_capacity(140);
    s.push_str(r#"{"type":"api_key","api_key":{"id":"#);
    push_str(&mut s, key_id);
    s.push_str(r#","type":"service_account","service_account":{"id":"#);
    push_str(&mut s, svc_id);
    s.push_str("}}}");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped() {
        let mut s = String::new();
        push_str(&mut s, "a\"b\\c\nd\u{1}é");
        assert_eq!(s, r#""a\"b\\c\nd\u0001é""#);
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v, "a\"b\\c\nd\u{1}é");
    }

    #[test]
    fn an_event_is_one_json_line_with_the_detail_under_its_type() {
        let mut b = Batch::default();
        let mut rng = Rng::with_seed(1);
        let id = b
            .event(&mut rng, 1_792_000_000, "api_key.created")
            .project("proj_x", "Docs \"QA\"")
            .actor("null")
            .detail(|o| {
                o.str("id", "key_1").obj("data", |o| {
                    o.strs("scopes", &["api.model.request"]);
                });
            })
            .push_id();
        let ev = &b.pending[0];
        assert_eq!(ev.id(), id);
        assert!(ev.line.ends_with("}\n") && !ev.line[..ev.line.len() - 1].contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&ev.line).unwrap();
        assert_eq!(v["object"], "organization.audit_log");
        assert_eq!(v["id"], id.as_str());
        assert_eq!(v["effective_at"], 1_792_000_000);
        assert_eq!(v["project"]["name"], "Docs \"QA\"");
        assert!(v["actor"].is_null());
        assert_eq!(
            v["api_key.created"]["data"]["scopes"][0],
            "api.model.request"
        );
    }
}
