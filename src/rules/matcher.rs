//! The declarative `match` block, compiled once at load into a tree of
//! conditions whose regexes, globs, networks and lists are ready to run.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

use globset::{GlobSet, GlobSetBuilder};
use regex::RegexSet;
use rustc_hash::FxHashSet;
use serde_json::Value;

use super::lists::{Lists, NamedList, Networks};
use super::load::Problems;
use super::raw::{MatchEntry, RawCond, RawMatch, Scalar};
use super::text::{self, lower};
use crate::event::{Event, FieldPath, FieldValue};

/// A compiled `match` block.
#[derive(Debug)]
pub struct Matcher {
    /// The top-level entries, all of which must hold; those that test the
    /// event type come first.
    entries: Vec<Cond>,
    /// How many entries test only the event type (decided exactly by
    /// [`Matcher::may_match_type`]).
    type_entries: usize,
}

#[derive(Debug)]
enum Cond {
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
    Field(FieldCond),
}

#[derive(Debug)]
struct FieldCond {
    path: FieldPath,
    ops: Vec<Op>,
    /// The condition as written (path and operators), which tells the
    /// same condition of several rules apart from others.
    written: String,
    /// Its slot among the [`Shared`] conditions, when several rules of the
    /// set test it: its answer is then worked out once per event.
    shared: Option<u32>,
}

/// The answers of the conditions that several rules test (the account
/// of a login exists, its address is in a list), kept for the event being
/// checked so that each is worked out once per event. One per thread.
#[derive(Debug)]
pub struct Shared {
    /// The number of the event the answers are for (see
    /// [`Shared::for_event`]).
    event: u64,
    /// Per slot: the event it was answered for, and the answer.
    answers: Vec<(u64, bool)>,
}

impl Shared {
    /// Room for `slots` shared conditions.
    pub fn new(slots: usize) -> Shared {
        Shared {
            event: 0,
            answers: vec![(0, false); slots],
        }
    }

    /// Takes the answers as those of event number `event`, which must
    /// differ from every event number given before (and from 0): the
    /// answers of earlier events are forgotten.
    pub fn for_event(&mut self, event: u64) {
        debug_assert!(event > self.event, "event numbers only grow");
        self.event = event;
    }
}

/// Gives a slot to every condition that more than one place of `matchers`
/// tests (the same path with the same operators); returns how many slots
/// there are.
pub(crate) fn share_conditions<'m>(matchers: impl Iterator<Item = &'m mut Matcher>) -> usize {
    let mut matchers: Vec<&mut Matcher> = matchers.collect();
    let mut seen: rustc_hash::FxHashMap<String, (usize, Option<u32>)> = Default::default();
    for m in matchers.iter_mut() {
        m.visit(&mut |f| seen.entry(f.written.clone()).or_default().0 += 1);
    }
    let mut slots = 0;
    for m in matchers.iter_mut() {
        m.visit(&mut |f| {
            let (count, slot) = seen.get_mut(&f.written).expect("counted above");
            if *count > 1 {
                f.shared = Some(*slot.get_or_insert_with(|| {
                    slots += 1;
                    slots - 1
                }));
            }
        });
    }
    slots as usize
}

#[derive(Debug)]
struct Op {
    test: Test,
    negate: bool,
}

#[derive(Debug)]
enum Test {
    Eq(FxHashSet<String>),
    Glob(GlobSet),
    Regex(RegexSet),
    Cidr(Networks),
    Contains(Vec<String>),
    StartsWith(Vec<String>),
    EndsWith(Vec<String>),
    Cmp(Cmp, Vec<f64>),
    Exists(bool),
    InList(Vec<Arc<NamedList>>),
}

#[derive(Debug, Clone, Copy)]
enum Cmp {
    Gt,
    Gte,
    Lt,
    Lte,
}

const OPERATORS: &str = "eq, ne, in, not_in, glob, not_glob, regex, not_regex, cidr, not_cidr, \
contains, starts_with, ends_with, gt, gte, lt, lte, exists, in_list, not_in_list";

impl Matcher {
    /// Compiles a `match` mapping; problems are added to `problems`.
    pub(crate) fn compile(raw: &RawMatch, lists: &Lists, problems: &mut Problems<'_>) -> Matcher {
        let mut entries = compile_entries(raw, lists, problems);
        let is_type = |c: &Cond| matches!(c, Cond::Field(f) if f.path.is_type());
        entries.sort_by_key(|c| !is_type(c));
        let type_entries = entries.iter().take_while(|c| is_type(c)).count();
        Matcher {
            entries,
            type_entries,
        }
    }

    /// True when every entry holds for `event`. With `type_checked`, the
    /// event's type is known to pass [`Matcher::may_match_type`], so the
    /// entries that test only the type are not tested again.
    ///
    /// The answers of shared conditions are taken from, or kept in,
    /// `shared`, which must be for this event and this matcher's rule set.
    pub fn matches(&self, event: &Event<'_>, type_checked: bool, shared: &mut Shared) -> bool {
        let skip = if type_checked { self.type_entries } else { 0 };
        self.entries[skip..].iter().all(|c| c.holds(event, shared))
    }

    /// Calls `f` on every field condition, nested ones included.
    fn visit(&mut self, f: &mut impl FnMut(&mut FieldCond)) {
        fn walk(c: &mut Cond, f: &mut impl FnMut(&mut FieldCond)) {
            match c {
                Cond::All(cs) | Cond::Any(cs) => cs.iter_mut().for_each(|c| walk(c, f)),
                Cond::Not(c) => walk(c, f),
                Cond::Field(fc) => f(fc),
            }
        }
        self.entries.iter_mut().for_each(|c| walk(c, f));
    }

    /// The event types the rule can match, from its `type` entries (at the
    /// top level or under `any`/`all`): `(false, types)` when it matches only
    /// these, `(true, types)` when it matches every type but these; `None`
    /// when the type is not restricted by plain lists.
    pub fn event_types(&self) -> Option<(bool, Vec<String>)> {
        let mut types = all_types(&self.entries)?;
        types.1.sort();
        types.1.dedup();
        Some(types)
    }

    /// False when the rule's `type` entries rule out events of type `ty`, so
    /// that rules can be indexed by the event types they may match. Entries
    /// under `any`, `all` and `not` count too, as far as they decide it.
    pub fn may_match_type(&self, ty: &str) -> bool {
        self.entries.iter().all(|c| c.may_match_type(ty))
    }
}

/// The types a conjunction of entries restricts to (see [`Matcher::event_types`]).
fn all_types(entries: &[Cond]) -> Option<(bool, Vec<String>)> {
    entries.iter().find_map(Cond::types)
}

fn compile_entries(raw: &RawMatch, lists: &Lists, problems: &mut Problems<'_>) -> Vec<Cond> {
    let mut out = Vec::with_capacity(raw.0.len());
    for (key, entry) in &raw.0 {
        let cond = match entry {
            MatchEntry::Any(items) | MatchEntry::All(items) => {
                if items.is_empty() {
                    problems.at(
                        &key.referenced,
                        format!("`{}` needs at least one mapping", key.value),
                    );
                }
                let conds = items
                    .iter()
                    .map(|m| Cond::All(compile_entries(&m.value, lists, problems)))
                    .collect();
                if matches!(entry, MatchEntry::Any(_)) {
                    Cond::Any(conds)
                } else {
                    Cond::All(conds)
                }
            }
            MatchEntry::Not(m) => Cond::Not(Box::new(Cond::All(compile_entries(
                &m.value, lists, problems,
            )))),
            MatchEntry::Field(cond) => {
                let Some(path) = FieldPath::parse(&key.value) else {
                    problems.at(&key.referenced, format!("bad field path {:?}", key.value));
                    continue;
                };
                let ops = match &cond.value {
                    RawCond::One(s) => vec![eq_op(std::slice::from_ref(s), false)],
                    RawCond::Many(items) => {
                        if items.is_empty() {
                            problems.at(
                                &cond.referenced,
                                "an empty list matches nothing: remove the entry or add values",
                            );
                        }
                        vec![eq_op(items, false)]
                    }
                    RawCond::Ops(ops) => {
                        if ops.is_empty() {
                            problems.at(
                                &cond.referenced,
                                format!("no operators for `{}`", key.value),
                            );
                        }
                        ops.iter()
                            .filter_map(|(name, operand)| {
                                match compile_op(name, &operand.value.0, lists) {
                                    Ok(op) => Some(op),
                                    Err(msg) => {
                                        problems.at(
                                            &operand.referenced,
                                            format!("`{}`: {msg}", key.value),
                                        );
                                        None
                                    }
                                }
                            })
                            .collect()
                    }
                };
                Cond::Field(FieldCond {
                    path,
                    ops,
                    written: written(&key.value, &cond.value),
                    shared: None,
                })
            }
        };
        out.push(cond);
    }
    out
}

/// A field condition as written, without where it was written: the same
/// text for the same path and operators.
fn written(path: &str, cond: &RawCond) -> String {
    use std::fmt::Write;
    let mut out = format!("{path}\u{1f}");
    match cond {
        RawCond::One(s) => write!(out, "{s:?}"),
        RawCond::Many(items) => write!(out, "{items:?}"),
        RawCond::Ops(ops) => ops
            .iter()
            .try_for_each(|(name, operand)| write!(out, "{name}={:?};", operand.value.0)),
    }
    .expect("writing to a String");
    out
}

fn eq_op(items: &[Scalar], negate: bool) -> Op {
    let set = items
        .iter()
        .filter_map(Scalar::text)
        .map(|t| t.to_lowercase())
        .collect();
    Op {
        test: Test::Eq(set),
        negate,
    }
}

fn compile_op(name: &str, items: &[Scalar], lists: &Lists) -> Result<Op, String> {
    let (positive, negate) = match name.strip_prefix("not_") {
        Some(p) if matches!(p, "in" | "glob" | "regex" | "cidr" | "in_list") => (p, true),
        _ if name == "ne" => ("eq", true),
        _ => (name, false),
    };
    if items.is_empty() {
        return Err(format!("`{name}` needs a value"));
    }
    let texts = || -> Result<Vec<String>, String> {
        items
            .iter()
            .map(|s| {
                s.text()
                    .ok_or_else(|| format!("`{name}` needs text, not null"))
            })
            .collect()
    };
    let test = match positive {
        "eq" | "in" => return Ok(eq_op(items, negate)),
        "glob" => {
            let mut set = GlobSetBuilder::new();
            for p in texts()? {
                set.add(text::glob(&p).map_err(|e| format!("bad glob {p:?}: {e}"))?);
            }
            Test::Glob(set.build().map_err(|e| e.to_string())?)
        }
        "regex" => {
            let pats = texts()?;
            // Each pattern is compiled on its own only to name the bad one.
            let set = RegexSet::new(&pats).map_err(|e| {
                let bad = pats
                    .iter()
                    .find_map(|p| Some((p, regex::Regex::new(p).err()?)));
                match bad {
                    Some((p, e)) => format!("bad regex {p:?}: {}", one_line(&e.to_string())),
                    None => one_line(&e.to_string()),
                }
            })?;
            Test::Regex(set)
        }
        "cidr" => {
            let mut nets = Networks::default();
            for t in texts()? {
                nets.add(text::parse_network(&t).ok_or_else(|| {
                    format!("bad network {t:?}: write it like 10.0.0.0/8 or 2001:db8::/32")
                })?);
            }
            Test::Cidr(nets)
        }
        "contains" => Test::Contains(texts()?.iter().map(|t| t.to_lowercase()).collect()),
        "starts_with" => Test::StartsWith(texts()?.iter().map(|t| t.to_lowercase()).collect()),
        "ends_with" => Test::EndsWith(texts()?.iter().map(|t| t.to_lowercase()).collect()),
        "gt" | "gte" | "lt" | "lte" => {
            let cmp = match positive {
                "gt" => Cmp::Gt,
                "gte" => Cmp::Gte,
                "lt" => Cmp::Lt,
                _ => Cmp::Lte,
            };
            let nums = items
                .iter()
                .map(|s| {
                    s.number().ok_or_else(|| {
                        format!(
                            "`{name}` needs a number, got {}",
                            s.text().unwrap_or_default()
                        )
                    })
                })
                .collect::<Result<_, _>>()?;
            Test::Cmp(cmp, nums)
        }
        "exists" => match items {
            [Scalar::Bool(b)] => Test::Exists(*b),
            _ => return Err("`exists` takes true or false".into()),
        },
        "in_list" => {
            let lists = texts()?
                .iter()
                .map(|name| {
                    lists.get(name).cloned().ok_or_else(|| {
                        let known: Vec<&str> = lists.names().collect();
                        if known.is_empty() {
                            format!("list `{name}` is not defined: no config lists are loaded (pass the config with -c)")
                        } else {
                            let hint = super::schema::suggest(name, known.iter().copied())
                                .map(|s| format!("did you mean `{s}`? "))
                                .unwrap_or_default();
                            format!("list `{name}` is not defined in the config ({hint}lists: {})", known.join(", "))
                        }
                    })
                })
                .collect::<Result<_, _>>()?;
            Test::InList(lists)
        }
        _ => {
            let hint = super::schema::suggest(name, OPERATORS.split(", "))
                .or_else(|| {
                    // `equals`, `equal`: a longer spelling of one.
                    OPERATORS
                        .split(", ")
                        .filter(|op| name.starts_with(op))
                        .max_by_key(|op| op.len())
                })
                .map(|s| format!("did you mean `{s}`? "))
                .unwrap_or_default();
            return Err(format!(
                "unknown operator `{name}` ({hint}operators: {OPERATORS})"
            ));
        }
    };
    Ok(Op { test, negate })
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Cond {
    fn may_match_type(&self, ty: &str) -> bool {
        match self {
            Cond::Field(f) if f.path.is_type() => f.holds_on(&FieldValue::Text(ty)),
            Cond::Field(_) | Cond::Not(_) => true,
            Cond::All(cs) => cs.iter().all(|c| c.may_match_type(ty)),
            Cond::Any(cs) => cs.iter().any(|c| c.may_match_type(ty)),
        }
    }

    fn types(&self) -> Option<(bool, Vec<String>)> {
        match self {
            Cond::Field(f) if f.path.is_type() => f.ops.iter().find_map(|op| match &op.test {
                Test::Eq(set) => Some((op.negate, set.iter().cloned().collect())),
                _ => None,
            }),
            Cond::Field(_) | Cond::Not(_) => None,
            Cond::All(cs) => all_types(cs),
            Cond::Any(cs) => {
                let mut union = Vec::new();
                for c in cs {
                    match c.types()? {
                        (false, types) => union.extend(types),
                        (true, _) => return None,
                    }
                }
                Some((false, union))
            }
        }
    }

    fn holds(&self, event: &Event<'_>, shared: &mut Shared) -> bool {
        match self {
            Cond::All(cs) => cs.iter().all(|c| c.holds(event, shared)),
            Cond::Any(cs) => cs.iter().any(|c| c.holds(event, shared)),
            Cond::Not(c) => !c.holds(event, shared),
            Cond::Field(f) => match f.shared {
                None => f.holds_on(&f.path.resolve(event)),
                Some(slot) => {
                    let now = shared.event;
                    let (at, answer) = &mut shared.answers[slot as usize];
                    if *at != now {
                        *answer = f.holds_on(&f.path.resolve(event));
                        *at = now;
                    }
                    *answer
                }
            },
        }
    }
}

impl FieldCond {
    fn holds_on(&self, value: &FieldValue<'_>) -> bool {
        if matches!(value, FieldValue::Missing) {
            // On a missing value every operator is false but `exists: false`.
            return self
                .ops
                .iter()
                .all(|op| matches!(op.test, Test::Exists(false)));
        }
        self.ops.iter().all(|op| op.holds(value))
    }
}

impl Op {
    fn holds(&self, value: &FieldValue<'_>) -> bool {
        if let Test::Exists(want) = self.test {
            return want;
        }
        let positive = match value {
            FieldValue::Missing => return false,
            FieldValue::Text(s) => self.test.holds(Atom::Str(s)),
            FieldValue::Owned(s) => self.test.holds(Atom::Str(s)),
            FieldValue::Int(i) => self.test.holds(Atom::Int(*i)),
            FieldValue::Json(Value::Array(items)) => {
                items.iter().any(|v| self.test.holds(Atom::of(v)))
            }
            FieldValue::Json(v) => self.test.holds(Atom::of(v)),
        };
        positive != self.negate
    }
}

/// One scalar of an event value (an array is tested element by element).
#[derive(Clone, Copy)]
enum Atom<'v> {
    Str(&'v str),
    Int(i64),
    Num(&'v serde_json::Number),
    Bool(bool),
    Other,
}

impl<'v> Atom<'v> {
    fn of(v: &'v Value) -> Atom<'v> {
        match v {
            Value::String(s) => Atom::Str(s),
            Value::Number(n) => Atom::Num(n),
            Value::Bool(b) => Atom::Bool(*b),
            _ => Atom::Other,
        }
    }

    fn text(self) -> Option<Cow<'v, str>> {
        match self {
            Atom::Str(s) => Some(Cow::Borrowed(s)),
            Atom::Int(i) => Some(Cow::Owned(i.to_string())),
            Atom::Num(n) => Some(Cow::Owned(n.to_string())),
            Atom::Bool(b) => Some(Cow::Borrowed(if b { "true" } else { "false" })),
            Atom::Other => None,
        }
    }

    fn number(self) -> Option<f64> {
        match self {
            Atom::Str(s) => s.trim().parse().ok(),
            Atom::Int(i) => Some(i as f64),
            Atom::Num(n) => n.as_f64(),
            _ => None,
        }
    }
}

impl Test {
    fn holds(&self, atom: Atom<'_>) -> bool {
        if let Test::Cmp(cmp, nums) = self {
            let Some(x) = atom.number() else { return false };
            return nums.iter().any(|&n| match cmp {
                Cmp::Gt => x > n,
                Cmp::Gte => x >= n,
                Cmp::Lt => x < n,
                Cmp::Lte => x <= n,
            });
        }
        let Some(text) = atom.text() else {
            return false;
        };
        match self {
            Test::Eq(set) => set.contains(lower(&text).as_ref()),
            Test::Glob(set) => set.is_match(text.as_ref()),
            Test::Regex(set) => set.is_match(&text),
            Test::Cidr(nets) => text
                .trim()
                .parse::<IpAddr>()
                .is_ok_and(|ip| nets.contains(ip)),
            Test::Contains(needles) => {
                let hay = lower(&text);
                needles.iter().any(|n| hay.contains(n.as_str()))
            }
            Test::StartsWith(needles) => {
                let hay = lower(&text);
                needles.iter().any(|n| hay.starts_with(n.as_str()))
            }
            Test::EndsWith(needles) => {
                let hay = lower(&text);
                needles.iter().any(|n| hay.ends_with(n.as_str()))
            }
            Test::InList(lists) => lists.iter().any(|l| l.contains(&text)),
            Test::Cmp(..) | Test::Exists(_) => unreachable!("handled above"),
        }
    }
}
