//! Reading rule files: documents, fields and every check of contract v1, with
//! all problems collected and reported as `PATH:LINE:COLUMN: message`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_saphyr::{Location, Spanned};

use super::TestCase;
use super::fingerprint::Fingerprint;
use super::matcher::Matcher;
use super::raw::{RawRule, RawTest};
use super::script::{ScriptEngine, SyntaxError, ViewNeeds};
use super::summary::Templates;
use super::{Environment, FirstSeen, Rule, RuleSet, Sequence, Severity, Step, Suppress, Threshold};
use crate::event::FieldPath;

/// One problem found while loading rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: PathBuf,
    pub line: Option<u64>,
    pub column: Option<u64>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

/// Loading failed; every problem is listed.
#[derive(Debug, thiserror::Error)]
pub struct LoadError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// Collects problems of one YAML document, translating its positions to
/// positions in the file.
pub(crate) struct Problems<'a> {
    path: &'a Path,
    /// The document's text, to place positions inside multi-line scalars.
    doc: &'a str,
    line_offset: u64,
    list: &'a mut Vec<Problem>,
}

impl Problems<'_> {
    /// A problem at a YAML position of the current document.
    pub fn at(&mut self, loc: &Location, message: impl Into<String>) {
        let (line, column) = if loc.line() == 0 {
            (None, None)
        } else {
            (Some(loc.line() + self.line_offset), Some(loc.column()))
        };
        self.list.push(Problem {
            path: self.path.to_owned(),
            line,
            column,
            message: message.into(),
        });
    }

    /// A problem in another file (a script), at a position of its own.
    fn in_file(
        &mut self,
        path: &Path,
        line: Option<u64>,
        column: Option<u64>,
        message: impl Into<String>,
    ) {
        self.list.push(Problem {
            path: path.to_owned(),
            line,
            column,
            message: message.into(),
        });
    }
}

pub(super) fn load(paths: &[PathBuf], env: &Environment) -> Result<RuleSet, LoadError> {
    let mut problems = Vec::new();
    let mut files = Vec::new();
    let mut visited = std::collections::HashSet::new();
    for path in paths {
        collect_files(path, &mut files, &mut problems, &mut visited);
    }
    let engine = ScriptEngine::new(env.lists.clone(), env.business_hours.clone());
    let mut templates = Templates::new();
    let mut view_needs = ViewNeeds::default();
    let mut rules: Vec<Rule> = Vec::new();
    let mut warnings = Vec::new();
    // Every file is read and cut into documents first; parsing the YAML is
    // most of a load, so the documents are parsed on several threads, then
    // compiled one by one in file order.
    let mut docs: Vec<(&PathBuf, u64, String)> = Vec::new();
    let mut unreadable: Vec<(usize, Problem)> = Vec::new();
    for file in &files {
        match std::fs::read_to_string(file) {
            Ok(text) => docs.extend(
                split_documents(&text)
                    .into_iter()
                    .map(|(offset, doc)| (file, offset, doc)),
            ),
            Err(e) => unreadable.push((
                docs.len(),
                Problem {
                    path: file.clone(),
                    line: None,
                    column: None,
                    message: format!("cannot read: {e}"),
                },
            )),
        }
    }
    let parsed = parse_documents(&docs);
    let mut unreadable = unreadable.into_iter().peekable();
    for (i, ((file, offset, doc), raw)) in docs.iter().zip(parsed).enumerate() {
        while let Some((_, problem)) = unreadable.next_if(|(before, _)| *before <= i) {
            problems.push(problem);
        }
        let (file, offset) = (*file, *offset);
        let mut p = Problems {
            path: file,
            doc,
            line_offset: offset,
            list: &mut problems,
        };
        let raw: RawRule = match raw {
            Ok(r) => r,
            Err(e) => {
                let loc = e.location().unwrap_or(Location::UNKNOWN);
                p.at(&loc, yaml_message(&e));
                continue;
            }
        };
        let names = super::warnings::Names::of(&raw);
        if let Some(rule) = compile(
            raw,
            file,
            env,
            &engine,
            &mut templates,
            &mut view_needs,
            &mut p,
        ) {
            if let Some(first) = rules.iter().find(|r| r.id == rule.id) {
                let msg = format!(
                    "duplicate rule id `{}` (first defined at {}:{})",
                    rule.id,
                    first.file.display(),
                    first.line
                );
                problems.push(Problem {
                    path: file.clone(),
                    line: Some(rule.line),
                    column: Some(rule.column),
                    message: msg,
                });
            } else {
                names.check(
                    &rule,
                    &mut Problems {
                        path: file,
                        doc,
                        line_offset: offset,
                        list: &mut warnings,
                    },
                );
                rules.push(rule);
            }
        }
    }
    problems.extend(unreadable.map(|(_, problem)| problem));
    if problems.is_empty() {
        let shared_conditions = super::matcher::share_conditions(rules.iter_mut().flat_map(|r| {
            let steps = r.sequence.iter_mut().flat_map(|s| &mut s.steps);
            r.matcher.iter_mut().chain(steps.map(|s| &mut s.matcher))
        }));
        Ok(RuleSet {
            view_needs,
            rules,
            shared_conditions,
            engine,
            templates,
            warnings,
            incidents: env.incidents.clone(),
            generation: {
                static LOADS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
                LOADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            },
        })
    } else {
        Err(LoadError { problems })
    }
}

/// Each document's rule, parsed on up to as many threads as there are
/// cores (a few documents per thread at least), in document order. Each
/// thread takes the next document not taken yet, so that a file of long
/// documents does not leave one thread working alone.
fn parse_documents(docs: &[(&PathBuf, u64, String)]) -> Vec<Result<RawRule, serde_saphyr::Error>> {
    let parse = |doc: &str| serde_saphyr::from_str_with_options(doc, yaml_options());
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(docs.len() / 8)
        .max(1);
    if threads == 1 {
        return docs.iter().map(|(_, _, doc)| parse(doc)).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut parsed: Vec<(usize, Result<RawRule, serde_saphyr::Error>)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((_, _, doc)) = docs.get(i) else {
                            return mine;
                        };
                        mine.push((i, parse(doc)));
                    }
                })
            })
            .collect();
        (workers.into_iter())
            .flat_map(|h| h.join().expect("a rule parsing thread panicked"))
            .collect()
    });
    parsed.sort_unstable_by_key(|(i, _)| *i);
    parsed.into_iter().map(|(_, raw)| raw).collect()
}

/// YAML reading options: YAML 1.2 booleans and numbers, as users expect.
pub(crate) fn yaml_options() -> serde_saphyr::Options {
    let mut o = serde_saphyr::Options::default();
    o.strict_booleans = true;
    o.leading_zero_numbers_as_strings = true;
    o
}

/// The message of a YAML error, without its position or snippet.
pub(crate) fn yaml_message(e: &serde_saphyr::Error) -> String {
    use serde_saphyr::MessageFormatter;
    let msg = serde_saphyr::DefaultMessageFormatter
        .format_message(e.without_snippet())
        .into_owned();
    let msg = msg.split_whitespace().collect::<Vec<_>>().join(" ");
    // `unknown field `sevrity`, expected one of id, title, severity, …`:
    // name the one meant.
    if let Some(rest) = msg.strip_prefix("unknown field `")
        && let Some((field, tail)) = rest.split_once('`')
        && let Some(list) = tail.split("expected one of ").nth(1)
        && let Some(s) =
            super::schema::suggest(field, list.split(", ").map(|k| k.trim_matches('`')))
    {
        return format!("unknown key `{field}`; did you mean `{s}`? (keys: {list})");
    }
    msg
}

/// Adds the rule files under `path` to `out`. Folders and files reached
/// again (through symbolic links) are read once, so a link that points back
/// to a parent folder cannot make the walk endless.
fn collect_files(
    path: &Path,
    out: &mut Vec<PathBuf>,
    problems: &mut Vec<Problem>,
    visited: &mut std::collections::HashSet<(u64, u64)>,
) {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            problems.push(Problem {
                path: path.to_owned(),
                line: None,
                column: None,
                message: format!("cannot read rules: {e}"),
            });
            return;
        }
    };
    if !visited.insert(identity(&meta, path)) {
        return;
    }
    if meta.is_file() {
        out.push(path.to_owned());
        return;
    }
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(path) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => {
            problems.push(Problem {
                path: path.to_owned(),
                line: None,
                column: None,
                message: format!("cannot read rules: {e}"),
            });
            return;
        }
    };
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            collect_files(&entry, out, problems, visited);
        } else if entry.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            match std::fs::metadata(&entry) {
                Ok(m) if !visited.insert(identity(&m, &entry)) => {}
                _ => out.push(entry),
            }
        }
    }
}

/// What makes a file or folder the same one, whatever path reaches it.
#[cfg(unix)]
fn identity(meta: &std::fs::Metadata, _: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn identity(_: &std::fs::Metadata, path: &Path) -> (u64, u64) {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_owned())
        .hash(&mut h);
    (0, h.finish())
}

/// Splits a file into its YAML documents at `---` lines, each with the number
/// of lines before it. Documents holding only comments are left out.
fn split_documents(text: &str) -> Vec<(u64, String)> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut start = 0u64;
    let is_marker = |line: &str, m: &str| {
        line.strip_prefix(m)
            .is_some_and(|r| r.is_empty() || r.starts_with([' ', '\t', '#']))
    };
    for (n, line) in text.lines().enumerate() {
        if is_marker(line, "---") || is_marker(line, "...") {
            docs.push((start, std::mem::take(&mut current)));
            start = n as u64;
            // Keep the line (blanked) so that positions stay right.
            current.push_str(&" ".repeat(3));
            current.push_str(&line[3..]);
            current.push('\n');
            continue;
        }
        current.push_str(line);
        current.push('\n');
    }
    docs.push((start, current));
    docs.into_iter()
        .filter(|(_, d)| {
            d.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        })
        .collect()
}

fn compile(
    raw: RawRule,
    file: &Path,
    env: &Environment,
    engine: &ScriptEngine,
    templates: &mut Templates,
    view_needs: &mut ViewNeeds,
    p: &mut Problems<'_>,
) -> Option<Rule> {
    let before = p.list.len();
    let id = raw.id.value.clone();
    let id_ok = id
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-'));
    if !id_ok {
        p.at(&raw.id.referenced, format!("bad rule id {id:?}: use lower-case letters, digits, `_`, `.` and `-`, starting with a letter or digit"));
    }
    if raw.title.value.trim().is_empty() || raw.title.value.contains('\n') {
        p.at(&raw.title.referenced, "`title` must be one non-empty line");
    }
    let severity = match raw.severity.value.as_str() {
        "info" => Severity::Info,
        "low" => Severity::Low,
        "medium" => Severity::Medium,
        "high" => Severity::High,
        "critical" => Severity::Critical,
        other => {
            p.at(
                &raw.severity.referenced,
                format!("unknown severity {other:?}: use info, low, medium, high or critical"),
            );
            Severity::Info
        }
    };
    if raw.matches.is_none()
        && raw.condition.is_none()
        && raw.script.is_none()
        && raw.sequence.is_none()
    {
        p.at(
            &raw.id.referenced,
            "the rule needs at least one of `match`, `condition`, `script` or `sequence`",
        );
    }
    let matcher = raw
        .matches
        .as_ref()
        .map(|m| Matcher::compile(&m.value, &env.lists, p));
    let mut script_text = None;
    let script = match (&raw.condition, &raw.script) {
        (Some(_), Some(s)) => {
            p.at(
                &s.referenced,
                "`condition` and `script` exclude each other: keep one",
            );
            None
        }
        (Some(c), None) => {
            view_needs.add(&c.value);
            compile_condition(c, engine, env, p)
        }
        (None, Some(s)) => {
            compile_script_file(s, file, engine, env, view_needs, p).map(|(script, text)| {
                script_text = Some(text);
                script
            })
        }
        (None, None) => None,
    };
    let threshold = raw.threshold.as_ref().and_then(|t| {
        let window = duration(&t.value.window, p)?;
        if t.value.count == 0 {
            p.at(&t.referenced, "`threshold.count` must be at least 1");
        }
        Some(Threshold {
            count: t.value.count,
            window,
            group_by: paths(&t.value.group_by.0, p),
            distinct: t.value.distinct.as_ref().and_then(|d| path(d, p)),
        })
    });
    if let (Some(_), Some(seq)) = (&raw.threshold, &raw.sequence) {
        p.at(
            &seq.referenced,
            "`threshold` and `sequence` exclude each other: a step's `count` says how many events it needs",
        );
    }
    let sequence = raw.sequence.as_ref().and_then(|seq| {
        let within = duration(&seq.value.within, p);
        let steps = &seq.value.steps;
        if steps.len() < 2 {
            p.at(
                &seq.referenced,
                "a `sequence` needs at least two `steps` (for one, use `threshold`)",
            );
        }
        if steps.len() > Sequence::MAX_STEPS {
            p.at(
                &steps[Sequence::MAX_STEPS].referenced,
                format!("a `sequence` has at most {} steps", Sequence::MAX_STEPS),
            );
        }
        let steps: Vec<Step> = steps
            .iter()
            .enumerate()
            .map(|(i, step)| Step {
                name: step
                    .value
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("step {}", i + 1)),
                count: step.value.count,
                matcher: Matcher::compile(&step.value.matches.value, &env.lists, p),
            })
            .collect();
        Some(Sequence {
            by: paths(&seq.value.by.0, p),
            within: within?,
            steps,
        })
    });
    if let Some(fs) = &raw.first_seen
        && (raw.threshold.is_some() || raw.sequence.is_some())
    {
        p.at(
            &fs.referenced,
            "`first_seen` excludes `threshold` and `sequence`: keep one",
        );
    }
    let first_seen = raw.first_seen.as_ref().and_then(|fs| {
        let learn_for = duration(&fs.value.learn_for, p);
        let forget_after = match &fs.value.forget_after {
            Some(f) => duration(f, p),
            None => Some(FirstSeen::DEFAULT_FORGET_AFTER),
        };
        let of = paths(&fs.value.of.0, p);
        if fs.value.of.0.is_empty() {
            p.at(
                &fs.referenced,
                "`first_seen.of` needs at least one field path",
            );
        }
        Some(FirstSeen {
            of,
            per: paths(&fs.value.per.0, p),
            learn_for: learn_for?,
            forget_after: forget_after?,
            new_keys: fs.value.new_keys,
            max_values: fs
                .value
                .max_values
                .map_or(FirstSeen::DEFAULT_MAX_VALUES, |n| n as usize),
        })
    });
    let suppress = raw.suppress.as_ref().and_then(|s| {
        Some(Suppress {
            window: duration(&s.value.window, p)?,
            key: paths(&s.value.key.0, p),
        })
    });
    let summary = match templates.add(&id, raw.summary.as_ref().map(|s| s.value.as_str())) {
        Ok(s) => Some(s),
        Err(msg) => {
            let at = raw
                .summary
                .as_ref()
                .map_or(raw.id.referenced, |s| s.referenced);
            p.at(&at, msg);
            None
        }
    };
    let tests: Vec<TestCase> = raw
        .tests
        .into_iter()
        .enumerate()
        .filter_map(|(i, t)| test_case(i, t, p))
        .collect();
    if p.list.len() > before {
        return None;
    }
    Some(Rule {
        id,
        title: raw.title.value,
        severity,
        description: raw.description,
        tags: raw.tags,
        enabled: raw.enabled.unwrap_or(true),
        notify: raw.notify,
        file: file.to_owned(),
        line: raw.id.referenced.line() + p.line_offset,
        column: raw.id.referenced.column(),
        fingerprint: Fingerprint::of_document(p.doc, script_text.as_deref()),
        threshold,
        sequence,
        first_seen,
        suppress,
        tests,
        matcher,
        script,
        summary: summary?,
    })
}

fn compile_condition(
    c: &Spanned<String>,
    engine: &ScriptEngine,
    env: &Environment,
    p: &mut Problems<'_>,
) -> Option<super::Script> {
    check_script_needs(&c.value, env, engine, |msg| p.at(&c.referenced, msg));
    match engine.compile_condition(&c.value) {
        Ok(s) => Some(s),
        Err(SyntaxError {
            line,
            column,
            message,
        }) => {
            let loc = &c.referenced;
            let (l, col) = scalar_position(
                p.doc,
                loc.line(),
                loc.column(),
                line.unwrap_or(1) as u64,
                column.unwrap_or(1) as u64,
            );
            p.list.push(Problem {
                path: p.path.to_owned(),
                line: Some(l + p.line_offset),
                column: Some(col),
                message: format!("condition: {message}"),
            });
            None
        }
    }
}

fn compile_script_file(
    s: &Spanned<String>,
    rule_file: &Path,
    engine: &ScriptEngine,
    env: &Environment,
    view_needs: &mut ViewNeeds,
    p: &mut Problems<'_>,
) -> Option<(super::Script, String)> {
    let path = rule_file.parent().unwrap_or(Path::new(".")).join(&s.value);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            p.at(
                &s.referenced,
                format!("cannot read script {}: {e}", path.display()),
            );
            return None;
        }
    };
    view_needs.add(&text);
    let mut needs = Vec::new();
    check_script_needs(&text, env, engine, |msg| needs.push(msg));
    for msg in needs {
        p.in_file(&path, None, None, msg);
    }
    match engine.compile_script(&text) {
        Ok(script) => Some((script, text)),
        Err(SyntaxError {
            line,
            column,
            message,
        }) => {
            p.in_file(
                &path,
                line.map(|l| l as u64),
                column.map(|c| c as u64),
                message,
            );
            None
        }
    }
}

/// Load-time checks of what a script needs from the config: the lists it
/// names literally and business hours for `business_hours(event)`.
fn check_script_needs(
    src: &str,
    env: &Environment,
    engine: &ScriptEngine,
    mut report: impl FnMut(String),
) {
    for (at, _) in src.match_indices("in_list(") {
        let rest = src[at + 8..].trim_start();
        if let Some(name) = rest.strip_prefix('"').and_then(|r| r.split('"').next())
            && env.lists.get(name).is_none()
        {
            report(format!(
                "in_list: list `{name}` is not defined in the config"
            ));
        }
    }
    let known = engine.function_names();
    for name in called_functions(src) {
        if !known.contains(&name) {
            let hint = super::schema::suggest(&name, known.iter().map(String::as_str))
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            report(format!("`{name}` is not a function scripts can call{hint}"));
        }
    }
    if !engine.has_business_hours() && calls_with_args(src, "business_hours", |n| n < 3) {
        report("business_hours() without a zone needs `business_hours` in the config (pass it with -c)".into());
    }
}

/// The names of the functions a script calls (`name(` and `.name(`), less
/// the functions it defines and the words of the language; string
/// literals and comments are skipped.
fn called_functions(src: &str) -> std::collections::BTreeSet<String> {
    let code = code_only(src);
    let keywords = [
        "if", "else", "while", "for", "loop", "do", "until", "switch", "return", "throw", "try",
        "catch", "fn", "let", "const", "in", "break", "continue", "import", "export", "as",
        "private", "this", "global", "true", "false",
    ];
    let mut defined = std::collections::BTreeSet::new();
    let mut called = std::collections::BTreeSet::new();
    let chars: Vec<char> = code.chars().collect();
    let mut last_word = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_alphabetic() || chars[i] == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            if last_word == "fn" {
                defined.insert(word.clone());
            } else if next == Some(&'(') && !keywords.contains(&word.as_str()) {
                called.insert(word.clone());
            }
            last_word = word;
        } else if chars[i].is_ascii_digit() {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            last_word.clear();
        } else {
            if !chars[i].is_whitespace() {
                last_word.clear();
            }
            i += 1;
        }
    }
    called.retain(|n| !defined.contains(n));
    called
}

/// `src` with string and character literals and comments blanked out.
fn code_only(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut chars = src.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' | '`' => {
                out.push(' ');
                let mut escaped = false;
                for d in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if d == '\\' {
                        escaped = true;
                    } else if d == c {
                        break;
                    }
                    out.push(if d == '\n' { '\n' } else { ' ' });
                }
                out.push(' ');
            }
            '/' if chars.peek() == Some(&'/') => {
                for d in chars.by_ref() {
                    if d == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut last = ' ';
                for d in chars.by_ref() {
                    if last == '*' && d == '/' {
                        break;
                    }
                    last = d;
                }
                out.push(' ');
            }
            c => out.push(c),
        }
    }
    out
}

/// True when `src` calls `name(...)` with an argument count for which `pred` holds.
fn calls_with_args(src: &str, name: &str, pred: impl Fn(usize) -> bool) -> bool {
    let pat = format!("{name}(");
    src.match_indices(&pat).any(|(at, _)| {
        let before_ok = src[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        let (mut depth, mut args, mut empty) = (0i32, 1usize, true);
        for c in src[at + pat.len()..].chars() {
            match c {
                '(' | '[' | '{' => depth += 1,
                ')' if depth == 0 => break,
                ')' | ']' | '}' => depth -= 1,
                ',' if depth == 0 => args += 1,
                c if !c.is_whitespace() => empty = false,
                _ => {}
            }
        }
        before_ok && pred(if empty { 0 } else { args })
    })
}

/// Where, in the document, a position inside a scalar's text lies. The
/// scalar's text starts at `(line, col)` (its first character, or the
/// opening quote); `(text_line, text_col)` is 1-based inside the value.
/// Lines of a literal block keep their place; folded lines (plain, quoted,
/// `>`) were joined with spaces and are found again by length.
fn scalar_position(doc: &str, line: u64, col: u64, text_line: u64, text_col: u64) -> (u64, u64) {
    let lines: Vec<&str> = doc.lines().collect();
    let first = lines
        .get(line.saturating_sub(1) as usize)
        .copied()
        .unwrap_or("");
    let quoted = matches!(
        first.chars().nth(col.saturating_sub(1) as usize),
        Some('"' | '\'')
    );
    let col = if quoted { col + 1 } else { col };
    if text_line > 1 {
        return (line + text_line - 1, col - 1 + text_col);
    }
    let on_first = (first.chars().count() as u64 + 1).saturating_sub(col);
    if text_col <= on_first {
        return (line, col + text_col - 1);
    }
    let body: Vec<&str> = lines.iter().skip(line as usize).copied().collect();
    let indent = body.first().map_or(0, |s| s.len() - s.trim_start().len());
    fold_position(&body, indent, line + 1, text_col - on_first - 1)
}

/// Finds the line and column of character `col` of folded text made of `body`'s lines.
fn fold_position(body: &[&str], indent: usize, first_line: u64, mut col: u64) -> (u64, u64) {
    for (i, l) in body.iter().enumerate() {
        let len = l.trim().chars().count() as u64;
        if col <= len || i + 1 == body.len() {
            return (first_line + i as u64, indent as u64 + col);
        }
        col -= len + 1;
    }
    (first_line, indent as u64 + col)
}

fn duration(s: &Spanned<String>, p: &mut Problems<'_>) -> Option<i64> {
    match crate::time::parse_duration(&s.value) {
        Ok(d) if d > 0 => Some(d),
        Ok(_) => {
            p.at(
                &s.referenced,
                format!("bad duration {:?}: it must be at least one second", s.value),
            );
            None
        }
        Err(e) => {
            p.at(&s.referenced, e);
            None
        }
    }
}

fn path(s: &Spanned<String>, p: &mut Problems<'_>) -> Option<FieldPath> {
    let path = FieldPath::parse(&s.value);
    if path.is_none() {
        p.at(&s.referenced, format!("bad field path {:?}", s.value));
    }
    path
}

fn paths(items: &[Spanned<String>], p: &mut Problems<'_>) -> Vec<FieldPath> {
    items.iter().filter_map(|s| path(s, p)).collect()
}

fn test_case(i: usize, t: Spanned<RawTest>, p: &mut Problems<'_>) -> Option<TestCase> {
    let RawTest {
        name,
        event,
        events,
        expect,
        expect_alerts,
        expect_severity,
    } = t.value;
    let events = match (event, events) {
        (Some(e), None) => vec![e],
        (None, Some(es)) if !es.is_empty() => es,
        (Some(_), Some(_)) => {
            p.at(
                &t.referenced,
                format!("test `{name}`: give `event` or `events`, not both"),
            );
            return None;
        }
        _ => {
            p.at(
                &t.referenced,
                format!("test `{name}`: needs `event` or `events`"),
            );
            return None;
        }
    };
    if expect.is_none() && expect_alerts.is_none() {
        p.at(
            &t.referenced,
            format!("test `{name}`: needs `expect` or `expect_alerts`"),
        );
        return None;
    }
    if let Some(bad) = events.iter().position(|e| !e.is_object()) {
        p.at(
            &t.referenced,
            format!("test `{name}`: event {} is not a mapping", bad + 1),
        );
        return None;
    }
    Some(TestCase {
        name,
        index: i,
        events: events.into_iter().map(Arc::new).collect(),
        expect,
        expect_alerts,
        expect_severity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_keep_their_line_offsets() {
        let docs = split_documents(
            "# header\nid: a\n---\nid: b\n--- # c\n# only a comment\n---\n\nid: c\n",
        );
        let offsets: Vec<u64> = docs.iter().map(|d| d.0).collect();
        assert_eq!(offsets, vec![0, 2, 6]);
        assert_eq!(docs[2].1.lines().nth(2), Some("id: c"));
    }

    #[test]
    fn counts_call_arguments() {
        assert!(calls_with_args(
            "!business_hours(event)",
            "business_hours",
            |n| n < 3
        ));
        assert!(!calls_with_args(
            "business_hours(ts, \"UTC\", \"Mon-Fri 09:00-17:00\")",
            "business_hours",
            |n| n < 3
        ));
        assert!(!calls_with_args(
            "my_business_hours(x)",
            "business_hours",
            |n| n < 3
        ));
    }
}
