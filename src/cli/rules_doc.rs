//! `auditwatch rules-doc`: a Markdown table of every loaded rule, printed or
//! written between the `rules-doc` markers of a file such as rules/README.md.

use std::path::{Path, PathBuf};

use super::{EXIT_OK, EXIT_USAGE};
use crate::rules::{FirstSeen, Rule, RuleSet, Sequence, Suppress, Threshold};

/// The marker name: the table goes between `<!-- rules-doc:begin -->` and
/// `<!-- rules-doc:end -->`.
const MARKER: &str = "rules-doc";

/// Longest negated type list that is spelled out; longer ones are counted.
const SPELLED_OUT: usize = 10;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub source: super::RuleSource,
    /// Replace the text between `<!-- rules-doc:begin -->` and `<!-- rules-doc:end -->` in FILE
    /// instead of printing the table.
    #[arg(long, value_name = "FILE")]
    pub write: Option<PathBuf>,
}

/// Runs `rules-doc`; returns the exit status.
pub fn run(args: &Args) -> u8 {
    match run_inner(args) {
        Ok(()) => EXIT_OK,
        Err(msg) => {
            eprintln!("{msg}");
            EXIT_USAGE
        }
    }
}

fn run_inner(args: &Args) -> Result<(), String> {
    let (rules, roots) = load_rules(args)?;
    let table = table(rules.rules(), &roots);
    let Some(path) = &args.write else {
        print!("{table}");
        return Ok(());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("rules-doc: cannot read {}: {e}", path.display()))?;
    let updated = replace_section(&text, MARKER, &table)
        .map_err(|e| format!("rules-doc: {}: {e}", path.display()))?;
    if updated != text {
        std::fs::write(path, &updated)
            .map_err(|e| format!("rules-doc: cannot write {}: {e}", path.display()))?;
    }
    eprintln!(
        "rules-doc: {}: {} rules{}",
        path.display(),
        rules.len(),
        if updated == text { ", unchanged" } else { "" }
    );
    Ok(())
}

/// Loads the rules the way `rulecheck` does; also returns the paths they
/// were read from, to name files relative to them.
fn load_rules(args: &Args) -> Result<(RuleSet, Vec<PathBuf>), String> {
    args.source.load().map_err(|e| match e {
        super::RulesError::Config(e) => format!("rules-doc: {e}"),
        super::RulesError::Rules(e) => {
            let n = e.problems.len();
            format!(
                "{e}\nrules-doc: {} in the rules; no table was made",
                super::table::plural(n as u64, "problem", "problems")
            )
        }
    })
}

/// The Markdown table, one row per rule in load order.
fn table(rules: &[Rule], roots: &[PathBuf]) -> String {
    let mut out = String::from(
        "| rule | severity | catches | event types | threshold / suppress | file |\n\
         |---|---|---|---|---|---|\n",
    );
    for rule in rules {
        let id = if rule.enabled {
            format!("`{}`", rule.id)
        } else {
            format!("`{}` (disabled)", rule.id)
        };
        let limits: Vec<String> = rule
            .threshold
            .as_ref()
            .map(threshold_text)
            .into_iter()
            .chain(rule.sequence.as_ref().map(sequence_text))
            .chain(rule.first_seen.as_ref().map(first_seen_text))
            .chain(rule.suppress.as_ref().map(suppress_text))
            .collect();
        let limits = if limits.is_empty() {
            "-".to_owned()
        } else {
            limits.join("; ")
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            id,
            rule.severity,
            cell(&rule.title),
            types_text(rule.event_types()),
            cell(&limits),
            cell(&file_text(&rule.file, roots)),
        ));
    }
    if rules.iter().any(|r| r.event_types().is_none()) {
        out.push_str(
            "\n\"any\": the rule names no event type at the top level of its `match`; \
             it may still test the type under `any:`/`all:` or in its condition.\n",
        );
    }
    out
}

/// Text safe inside a table cell.
fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

/// The event types a rule names at its top level.
fn types_text(types: Option<(bool, Vec<String>)>) -> String {
    match types {
        None => "any".to_owned(),
        Some((false, types)) => compact_types(&types),
        Some((true, types)) if types.len() > SPELLED_OUT => {
            format!("any type except the {} known ones", types.len())
        }
        Some((true, types)) => format!("any type except {}", compact_types(&types)),
    }
}

/// Types sharing everything up to their last dot are written once:
/// `tenant.policy.created/updated`.
fn compact_types(types: &[String]) -> String {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for ty in types {
        let (prefix, last) = match ty.rsplit_once('.') {
            Some((p, l)) => (p, l),
            None => ("", ty.as_str()),
        };
        match groups
            .iter_mut()
            .find(|(p, _)| *p == prefix && !p.is_empty())
        {
            Some((_, lasts)) => lasts.push(last),
            None => groups.push((prefix, vec![last])),
        }
    }
    groups
        .iter()
        .map(|(prefix, lasts)| {
            if prefix.is_empty() {
                format!("`{}`", lasts.join("/"))
            } else {
                format!("`{prefix}.{}`", lasts.join("/"))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `5 in 10m per actor.email`, `5 distinct actor.ip in 30m per actor.email`.
fn threshold_text(t: &Threshold) -> String {
    let mut s = match &t.distinct {
        Some(d) => format!(
            "{} distinct {} in {}",
            t.count,
            d.as_str(),
            duration(t.window)
        ),
        None => format!("{} in {}", t.count, duration(t.window)),
    };
    if !t.group_by.is_empty() {
        let keys: Vec<&str> = t.group_by.iter().map(|p| p.as_str()).collect();
        s.push_str(&format!(" per {}", keys.join(", ")));
    }
    s
}

/// `5 failed logins, then a successful login, in 30m per actor.email`.
fn sequence_text(q: &Sequence) -> String {
    let steps: Vec<String> = q
        .steps
        .iter()
        .map(|s| match s.count {
            1 => s.name.clone(),
            n => format!("{n}× {}", s.name),
        })
        .collect();
    let mut out = format!("{} in {}", steps.join(", then "), duration(q.within));
    if !q.by.is_empty() {
        let keys: Vec<&str> = q.by.iter().map(|p| p.as_str()).collect();
        out.push_str(&format!(" per {}", keys.join(", ")));
    }
    out
}

/// `new actor.country per actor.email after 14d learning`.
fn first_seen_text(f: &FirstSeen) -> String {
    let of: Vec<&str> = f.of.iter().map(|p| p.as_str()).collect();
    let mut out = format!("new {}", of.join(" + "));
    if !f.per.is_empty() {
        let keys: Vec<&str> = f.per.iter().map(|p| p.as_str()).collect();
        out.push_str(&format!(" per {}", keys.join(", ")));
    }
    out.push_str(&format!(
        " (learns {}, forgets after {})",
        duration(f.learn_for),
        duration(f.forget_after)
    ));
    out
}

/// `suppress 1h per actor.email`.
fn suppress_text(s: &Suppress) -> String {
    let mut out = format!("suppress {}", duration(s.window));
    if !s.key.is_empty() {
        let keys: Vec<&str> = s.key.iter().map(|p| p.as_str()).collect();
        out.push_str(&format!(" per {}", keys.join(", ")));
    }
    out
}

/// Seconds as the largest whole unit: `90s`, `10m`, `24h`, `7d`.
fn duration(secs: i64) -> String {
    match secs {
        s if s >= 2 * 86_400 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s >= 3_600 && s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s >= 60 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// The rule's file relative to the rules path it was found under.
fn file_text(file: &Path, roots: &[PathBuf]) -> String {
    for root in roots {
        if file == root {
            if let Some(name) = file.file_name() {
                return name.to_string_lossy().into_owned();
            }
        } else if let Ok(rel) = file.strip_prefix(root)
            && !rel.as_os_str().is_empty()
        {
            return rel.display().to_string();
        }
    }
    file.display().to_string()
}

/// Replaces what lies between `<!-- NAME:begin -->` and `<!-- NAME:end -->`
/// with `content`, set off by blank lines; the markers stay.
pub fn replace_section(text: &str, name: &str, content: &str) -> Result<String, String> {
    let begin = format!("<!-- {name}:begin -->");
    let end = format!("<!-- {name}:end -->");
    let missing = || format!("no `{begin}` ... `{end}` markers");
    let start = text.find(&begin).ok_or_else(missing)? + begin.len();
    let stop = start + text[start..].find(&end).ok_or_else(missing)?;
    let body = content.trim_matches('\n');
    Ok(format!("{}\n\n{body}\n\n{}", &text[..start], &text[stop..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration(45), "45s");
        assert_eq!(duration(600), "10m");
        assert_eq!(duration(5400), "90m");
        assert_eq!(duration(86_400), "24h");
        assert_eq!(duration(7 * 86_400), "7d");
    }

    #[test]
    fn types_are_compacted() {
        let t = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(types_text(None), "any");
        assert_eq!(
            types_text(Some((
                false,
                t(&["role.a", "role.assignment.created", "role.b", "tunnel"])
            ))),
            "`role.a/b`, `role.assignment.created`, `tunnel`"
        );
        assert_eq!(
            types_text(Some((true, t(&["login.failed"])))),
            "any type except `login.failed`"
        );
        let many: Vec<String> = (0..11).map(|i| format!("x.t{i}")).collect();
        assert_eq!(
            types_text(Some((true, many))),
            "any type except the 11 known ones"
        );
    }

    #[test]
    fn sections() {
        let text = "a\n<!-- x:begin -->\nold\n<!-- x:end -->\nb\n";
        assert_eq!(
            replace_section(text, "x", "new\n").unwrap(),
            "a\n<!-- x:begin -->\n\nnew\n\n<!-- x:end -->\nb\n"
        );
        assert!(replace_section("a\n<!-- x:end -->\n", "x", "new").is_err());
        assert!(replace_section("<!-- x:end --><!-- x:begin -->", "x", "new").is_err());
    }
}
