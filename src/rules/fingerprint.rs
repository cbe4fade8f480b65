//! A rule's fingerprint: a stable digest of what decides its alerts (match,
//! condition or script, threshold, suppress), and of nothing else.
//!
//! It is computed from the rule's YAML read as data, keys sorted, so that
//! comments, key order, titles, summaries and tests do not change it, and
//! it stays the same from one build to the next (FNV-1a, not `Hash`).

use serde_json::Value;

/// The keys of a rule document that make its logic.
const LOGIC: [&str; 5] = ["match", "condition", "script", "threshold", "suppress"];

/// The fingerprint of the rule document `doc`, whose script file (if any)
/// holds `script`.
pub fn of(doc: &str, script: Option<&str>) -> String {
    let mut text = String::new();
    if let Ok(Value::Object(map)) =
        serde_saphyr::from_str_with_options::<Value>(doc, super::yaml_options())
    {
        for key in LOGIC {
            if let Some(v) = map.get(key) {
                text.push_str(key);
                text.push('=');
                canonical(v, &mut text);
                text.push('\n');
            }
        }
    }
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
    use super::of;

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
    }
}
