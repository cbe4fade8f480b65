//! Load-time warnings of a rule: event types and field paths that the
//! audit log schema does not know, each at its line with a did-you-mean.
//!
//! They are warnings because the API adds types and fields; `rulecheck
//! --deny-warnings` and `auditwatch validate` make them fail.

use serde_saphyr::Location;

use super::Rule;
use super::load::Problems;
use super::raw::{MatchEntry, RawMatch, RawRule};
use super::schema::schema;

/// Where a rule names event fields, taken before the rule is compiled.
pub(super) struct Names {
    paths: Vec<(String, Location)>,
    /// The top-level `type` entry of `match`.
    type_at: Option<Location>,
    /// Where the condition, script and summary are, for the paths in them.
    condition_at: Option<Location>,
    script_at: Option<Location>,
    summary_at: Option<Location>,
}

impl Names {
    pub(super) fn of(raw: &RawRule) -> Names {
        let mut paths = Vec::new();
        let mut type_at = None;
        if let Some(m) = &raw.matches {
            for (key, _) in &m.value.0 {
                if key.value == "type" {
                    type_at = Some(key.referenced);
                }
            }
            collect_match(&m.value, &mut paths);
        }
        // Items of a flow list (`[a, b]`) may come without a position of
        // their own: they get their section's.
        let or = |loc: Location, parent: Location| if loc.line() == 0 { parent } else { loc };
        if let Some(t) = &raw.threshold {
            for g in &t.value.group_by.0 {
                paths.push((g.value.clone(), or(g.referenced, t.referenced)));
            }
            if let Some(d) = &t.value.distinct {
                paths.push((d.value.clone(), or(d.referenced, t.referenced)));
            }
        }
        if let Some(seq) = &raw.sequence {
            for b in &seq.value.by.0 {
                paths.push((b.value.clone(), or(b.referenced, seq.referenced)));
            }
            for step in &seq.value.steps {
                let m = &step.value.matches;
                for (key, _) in &m.value.0 {
                    if key.value == "type" && type_at.is_none() {
                        type_at = Some(key.referenced);
                    }
                }
                collect_match(&m.value, &mut paths);
            }
        }
        if let Some(fs) = &raw.first_seen {
            for p in fs.value.of.0.iter().chain(&fs.value.per.0) {
                paths.push((p.value.clone(), or(p.referenced, fs.referenced)));
            }
        }
        if let Some(s) = &raw.suppress {
            for k in &s.value.key.0 {
                paths.push((k.value.clone(), or(k.referenced, s.referenced)));
            }
        }
        paths.sort_by_key(|p| (p.1.line(), p.1.column()));
        paths.dedup_by(|a, b| {
            a.0 == b.0 && a.1.line() == b.1.line() && a.1.column() == b.1.column()
        });
        Names {
            paths,
            type_at,
            condition_at: raw.condition.as_ref().map(|c| c.referenced),
            script_at: raw.script.as_ref().map(|s| s.referenced),
            summary_at: raw.summary.as_ref().map(|s| s.referenced),
        }
    }

    /// Adds a warning for every name of `rule` the schema does not know.
    pub(super) fn check(&self, rule: &Rule, warnings: &mut Problems<'_>) {
        let s = schema();
        let types = match rule.event_types() {
            Some((negated, types)) => {
                if let Some(at) = &self.type_at {
                    for t in &types {
                        if let Err(m) = s.check_type(t) {
                            warnings.at(at, format!("warning: rule {}: {m}", rule.id));
                        }
                    }
                }
                (!negated).then_some(types)
            }
            None => None,
        };
        let types = types.as_deref();
        let mut warn = |path: &str, at: &Location, what: &str| {
            if let Err(m) = s.check_path(path, types) {
                warnings.at(at, format!("warning: rule {}: {what}{m}", rule.id));
            }
        };
        for (path, at) in &self.paths {
            warn(path, at, "");
        }
        if let Some(script) = &rule.script {
            let at = self.condition_at.or(self.script_at);
            if let Some(at) = at {
                for path in script_paths(script.source()) {
                    warn(&path, &at, "in the script: ");
                }
            }
        }
        if let Some(at) = &self.summary_at {
            for path in rule.summary.paths() {
                let p = path.as_str();
                if p == "count" || p == "rule" || p.starts_with("rule.") {
                    continue;
                }
                warn(p, at, "in the summary: ");
            }
        }
    }
}

fn collect(entry: &MatchEntry, out: &mut Vec<(String, Location)>) {
    match entry {
        MatchEntry::Any(list) | MatchEntry::All(list) => {
            for m in list {
                collect_match(&m.value, out);
            }
        }
        MatchEntry::Not(m) => collect_match(&m.value, out),
        MatchEntry::Field(_) => {}
    }
}

fn collect_match(m: &RawMatch, out: &mut Vec<(String, Location)>) {
    for (key, entry) in &m.0 {
        match entry {
            MatchEntry::Field(_) => out.push((key.value.clone(), key.referenced)),
            other => collect(other, out),
        }
    }
}

/// The field paths a script reads with plain `event.a.b` chains (`?.`
/// too); indexing (`event["x"]`) is not followed.
pub(super) fn script_paths(src: &str) -> Vec<String> {
    let bytes = src.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut out = Vec::new();
    for (at, _) in src.match_indices("event") {
        let end = at + "event".len();
        if (at > 0 && word(bytes[at - 1])) || bytes.get(end).is_some_and(|&b| word(b)) {
            continue;
        }
        let mut rest = &src[end..];
        let mut parts = Vec::new();
        loop {
            let r = rest.trim_start();
            let r = r.strip_prefix('?').unwrap_or(r);
            let Some(after) = r.strip_prefix('.') else {
                break;
            };
            let after = after.trim_start();
            let name: String = after
                .chars()
                .take_while(|&c| c.is_ascii_alphanumeric() || c == '_')
                .collect();
            if name.is_empty() {
                break;
            }
            rest = &after[name.len()..];
            // A method call (`event.id.len()`) ends the path before it.
            if rest.trim_start().starts_with('(') {
                break;
            }
            parts.push(name);
        }
        if !parts.is_empty() {
            out.push(parts.join("."));
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::script_paths;

    #[test]
    fn script_paths_follow_plain_chains() {
        assert_eq!(
            script_paths(
                "!business_hours(event) && event.actor.email != \"x\" && event?.details.data.role.len() > 0"
            ),
            ["actor.email", "details.data.role"]
        );
        assert!(script_paths("let e = event; e[\"id\"]").is_empty());
    }
}
