//! A rule's fingerprint: a stable digest of what decides its alerts (match,
//! condition or script, threshold, suppress), and of nothing else.
//!
//! It is computed from the rule's YAML read as data, keys sorted, so that
//! comments, key order, titles, summaries and tests do not change it, and
//! it stays the same from one build to the next (FNV-1a, not `Hash`).

use std::sync::{Arc, OnceLock};

use serde_json::Value;

/// A rule's fingerprint, worked out the first time it is asked for. Reading
/// a document's logic costs a second read of its YAML, and only a state
/// that is saved, restored, rebound or taught compares fingerprints, so a
/// `rulecheck` run never pays for it. Clones share the worked-out text.
#[derive(Clone, Default)]
pub struct Fingerprint(Arc<Lazy>);

#[derive(Default)]
struct Lazy {
    /// The rule document and the text of its script file, until the
    /// fingerprint is worked out from them.
    source: Option<(Box<str>, Option<Box<str>>)>,
    value: OnceLock<String>,
}

impl Fingerprint {
    /// The fingerprint of rule document `doc` whose script file (if any)
    /// holds `script`.
    pub fn of_document(doc: &str, script: Option<&str>) -> Fingerprint {
        Fingerprint(Arc::new(Lazy {
            source: Some((doc.into(), script.map(Into::into))),
            value: OnceLock::new(),
        }))
    }

    /// A fingerprint already worked out (a saved state's).
    pub fn known(text: String) -> Fingerprint {
        Fingerprint(Arc::new(Lazy {
            source: None,
            value: OnceLock::from(text),
        }))
    }

    /// The fingerprint's text: 16 hex digits.
    pub fn as_str(&self) -> &str {
        self.0.value.get_or_init(|| match &self.0.source {
            Some((doc, script)) => of(&logic(doc), script.as_deref()),
            None => String::new(),
        })
    }
}

impl std::fmt::Debug for Fingerprint {
    /// The text when it was worked out; the rule document is left out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Fingerprint")
            .field(&self.0.value.get())
            .finish()
    }
}

impl PartialEq for Fingerprint {
    fn eq(&self, other: &Fingerprint) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.as_str() == other.as_str()
    }
}

impl Eq for Fingerprint {}

/// The parts of a rule document that make its logic: what it matches and
/// what its state holds. Every other key (tests, above all) is skipped
/// unread.
#[derive(Default, serde::Deserialize)]
#[serde(default)]
struct Logic {
    #[serde(rename = "match")]
    matches: Option<Value>,
    condition: Option<Value>,
    script: Option<Value>,
    threshold: Option<Value>,
    sequence: Option<Value>,
    first_seen: Option<Value>,
    suppress: Option<Value>,
}

/// The logic of the rule document `doc` as canonical text, for [`of`].
fn logic(doc: &str) -> String {
    let mut text = String::new();
    if let Ok(logic) = serde_saphyr::from_str_with_options::<Logic>(doc, super::yaml_options()) {
        let parts = [
            ("match", &logic.matches),
            ("condition", &logic.condition),
            ("script", &logic.script),
            ("threshold", &logic.threshold),
            ("sequence", &logic.sequence),
            ("first_seen", &logic.first_seen),
            ("suppress", &logic.suppress),
        ];
        for (key, v) in parts {
            if let Some(v) = v {
                text.push_str(key);
                text.push('=');
                canonical(v, &mut text);
                text.push('\n');
            }
        }
    }
    text
}

/// The fingerprint of a rule whose [`logic`] is `logic` and whose script
/// file (if any) holds `script`.
fn of(logic: &str, script: Option<&str>) -> String {
    let mut text = logic.to_owned();
    if let Some(s) = script {
        text.push_str("script-file=");
        text.push_str(s);
    }
    format!("{:016x}", fnv1a(text.as_bytes()))
}

/// JSON text with object keys in sorted order, whatever the map keeps.
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::Fingerprint;

    fn of(doc: &str, script: Option<&str>) -> String {
        Fingerprint::of_document(doc, script).as_str().to_owned()
    }

    /// A fingerprint worked out late is the one a saved state holds, and
    /// compares by its text, not by where it came from.
    #[test]
    fn a_late_fingerprint_compares_by_its_text() {
        let doc = "id: r\ntitle: A\nseverity: low\nmatch: {type: x}\n";
        let late = Fingerprint::of_document(doc, None);
        let saved = Fingerprint::known(of(doc, None));
        assert_eq!(late, saved);
        assert_eq!(late.clone(), late);
        assert_eq!(late.as_str(), super::of(&super::logic(doc), None));
        let other = Fingerprint::of_document(&doc.replace("type: x", "type: y"), None);
        assert_ne!(other, saved);
        assert_ne!(Fingerprint::of_document(doc, Some("true")), saved);
    }

    #[test]
    fn only_the_logic_counts() {
        let a = "id: r\ntitle: A\nseverity: low\nmatch: {type: x, actor.email: a@b}\nthreshold: {count: 3, window: 1h}\n";
        // Other title, summary, comments and key order: same logic.
        let b = "# note\nthreshold: {window: 1h, count: 3}\nid: r\ntitle: B\nseverity: high\nsummary: s\nmatch:\n  actor.email: a@b\n  type: x\n";
        assert_eq!(of(a, None), of(b, None));
        let c = a.replace("count: 3", "count: 4");
        assert_ne!(of(a, None), of(&c, None));
        assert_ne!(of(a, None), of(a, Some("true")));
        assert_eq!(of(a, None).len(), 16);
        // Tests are not logic.
        let tested =
            format!("{a}tests:\n  - {{name: t, events: [{{type: x}}], expect_alerts: 0}}\n");
        assert_eq!(of(a, None), of(&tested, None));
    }

    /// Sequences and `first_seen` hold state: changing them changes the
    /// fingerprint, so that a reload does not keep state that meant
    /// something else.
    #[test]
    fn sequence_and_first_seen_are_logic() {
        let seq = "id: r\ntitle: A\nseverity: low\nsequence: {by: actor.email, within: 30m, steps: [{match: {type: login.failed}, count: 5}, {match: {type: login.succeeded}}]}\n";
        assert_ne!(of(seq, None), of(&seq.replace("30m", "1h"), None));
        assert_ne!(
            of(seq, None),
            of(&seq.replace("count: 5", "count: 3"), None)
        );
        let fs = "id: r\ntitle: A\nseverity: low\nmatch: {type: login.succeeded}\nfirst_seen: {of: actor.country, per: actor.email}\n";
        assert_ne!(
            of(fs, None),
            of(&fs.replace("actor.country", "actor.browser"), None)
        );
        assert_ne!(
            of(fs, None),
            of(&fs.replace("per: actor.email", "per: actor.id"), None)
        );
    }
}
