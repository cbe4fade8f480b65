//! Rhai conditions and scripts: one sandboxed engine with the contract's
//! functions, scripts compiled once, the event's view built only when one runs.

use std::cell::RefCell;
use std::sync::Arc;

use rhai::{AST, Dynamic, Engine, EvalAltResult, Map, Position, Scope};
use rustc_hash::FxHashMap;

use super::hours::{self, BusinessHours};
use super::lists::Lists;
use super::native::Program;
use super::text;
use crate::event::Event;

/// The shared, sandboxed script engine.
pub struct ScriptEngine {
    engine: Engine,
    has_business_hours: bool,
    /// What it was built with, for [`ScriptEngine::fresh`].
    lists: Lists,
    business_hours: Option<Arc<BusinessHours>>,
    function_names: std::sync::OnceLock<std::collections::BTreeSet<String>>,
}

/// A compiled `condition` or `script`.
#[derive(Debug)]
pub struct Script {
    ast: AST,
    /// Its text and kind, to compile it again for another thread.
    source: Arc<str>,
    condition: bool,
    /// The same, run without the engine, when it is simple enough (see
    /// [`native`](super::native)).
    pub(super) native: Option<Program>,
}

impl Script {
    /// The text it was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The script's answer for `event` without the engine, when it has one
    /// (see [`native`](super::native)); `None`: run it in the engine.
    pub(super) fn native_answer(
        &self,
        event: &Event<'_>,
        hours: Option<&BusinessHours>,
    ) -> Option<bool> {
        self.native.as_ref()?.eval(event, hours)
    }
}

/// An engine and the rules' scripts compiled for one thread alone: scripts
/// evaluated from several threads on one shared engine and AST contend on
/// the reference counts they share, so each parser thread has its own.
pub struct ThreadScripts {
    pub(super) engine: ScriptEngine,
    /// Per rule, in rule order.
    pub(super) scripts: Vec<Option<Script>>,
}

/// A script syntax error with its position inside the script text.
#[derive(Debug)]
pub struct SyntaxError {
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

type Fail = Box<EvalAltResult>;

fn fail(msg: impl Into<String>) -> Fail {
    msg.into().into()
}

impl ScriptEngine {
    /// Builds the engine with the config's lists and business hours.
    pub fn new(lists: Lists, business_hours: Option<Arc<BusinessHours>>) -> ScriptEngine {
        let (kept_lists, kept_hours) = (lists.clone(), business_hours.clone());
        let mut e = Engine::new();
        e.set_max_operations(200_000)
            .set_max_expr_depths(64, 32)
            .set_max_call_levels(32)
            .set_max_string_size(64 * 1024)
            .set_max_array_size(10_000)
            .set_max_map_size(10_000)
            .set_max_modules(0)
            .set_max_variables(256)
            .set_strict_variables(true);
        // The string interner sits behind one lock shared by every thread
        // that evaluates scripts: without it, parser threads run scripts in
        // parallel instead of one at a time.
        e.set_max_strings_interned(0);
        e.set_module_resolver(rhai::module_resolvers::DummyModuleResolver::new());
        e.disable_symbol("eval");
        e.on_print(|s| tracing::debug!(target: "auditwatch::script", "{s}"));
        e.on_debug(|s, _, _| tracing::debug!(target: "auditwatch::script", "{s}"));

        let has_business_hours = business_hours.is_some();
        let bh = business_hours.clone();
        e.register_fn("business_hours", move |event: Map| -> Result<bool, Fail> {
            let bh = bh.as_ref().ok_or_else(|| {
                fail("business_hours(event) needs `business_hours` in the config")
            })?;
            let ts = event
                .get("effective_at")
                .and_then(|v| v.as_int().ok())
                .ok_or_else(|| fail("business_hours(event): the event has no effective_at"))?;
            let country = event
                .get("actor")
                .and_then(|a| a.read_lock::<Map>())
                .and_then(|a| {
                    a.get("country")
                        .and_then(|c| c.clone().into_immutable_string().ok())
                });
            Ok(bh.contains_in(ts, country.as_deref()))
        });
        let bh = business_hours;
        e.register_fn("business_hours", move |ts: i64| -> Result<bool, Fail> {
            let bh = bh
                .as_ref()
                .ok_or_else(|| fail("business_hours(ts) needs `business_hours` in the config"))?;
            Ok(bh.contains(ts))
        });
        e.register_fn(
            "business_hours",
            |ts: i64, tz: &str, spec: &str| -> Result<bool, Fail> {
                with_cached(&HOURS, (tz, spec), || BusinessHours::parse_spec(tz, spec))
                    .map(|bh| bh.contains(ts))
            },
        );
        e.register_fn("local_time", |ts: i64, tz: &str| -> Result<Map, Fail> {
            let z = hours::local_time(ts, tz).map_err(fail)?;
            let mut m = Map::new();
            m.insert("year".into(), Dynamic::from_int(i64::from(z.year())));
            m.insert("month".into(), Dynamic::from_int(i64::from(z.month())));
            m.insert("day".into(), Dynamic::from_int(i64::from(z.day())));
            m.insert("hour".into(), Dynamic::from_int(i64::from(z.hour())));
            m.insert("minute".into(), Dynamic::from_int(i64::from(z.minute())));
            m.insert("second".into(), Dynamic::from_int(i64::from(z.second())));
            m.insert(
                "weekday".into(),
                Dynamic::from_int(i64::from(z.weekday().to_monday_one_offset())),
            );
            Ok(m)
        });
        e.register_fn("cidr_match", |ip: &str, cidr: &str| -> Result<bool, Fail> {
            let net = text::parse_network(cidr)
                .ok_or_else(|| fail(format!("cidr_match: bad network {cidr:?}")))?;
            Ok(ip
                .trim()
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| net.contains(&ip)))
        });
        e.register_fn(
            "glob_match",
            |value: &str, pattern: &str| -> Result<bool, Fail> {
                with_cached(&GLOBS, (pattern, ""), || {
                    text::glob(pattern)
                        .map(|g| g.compile_matcher())
                        .map_err(|e| format!("glob_match: bad glob {pattern:?}: {e}"))
                })
                .map(|g| g.is_match(value))
            },
        );
        e.register_fn(
            "regex_match",
            |value: &str, pattern: &str| -> Result<bool, Fail> {
                with_cached(&REGEXES, (pattern, ""), || {
                    regex::Regex::new(pattern)
                        .map_err(|e| format!("regex_match: bad regex {pattern:?}: {e}"))
                })
                .map(|r| r.is_match(value))
            },
        );
        e.register_fn(
            "in_list",
            move |name: &str, value: &str| -> Result<bool, Fail> {
                let list = lists.get(name).ok_or_else(|| {
                    fail(format!(
                        "in_list: list `{name}` is not defined in the config"
                    ))
                })?;
                Ok(list.contains(value))
            },
        );
        ScriptEngine {
            engine: e,
            has_business_hours,
            lists: kept_lists,
            business_hours: kept_hours,
            function_names: std::sync::OnceLock::new(),
        }
    }

    /// True when the config has business hours for `business_hours(event)`.
    pub fn has_business_hours(&self) -> bool {
        self.has_business_hours
    }

    /// The config's business hours, when it has them.
    pub fn business_hours(&self) -> Option<&BusinessHours> {
        self.business_hours.as_deref()
    }

    /// The names of every function scripts can call: the project's, and
    /// Rhai's own (listed once per engine).
    pub fn function_names(&self) -> &std::collections::BTreeSet<String> {
        self.function_names
            .get_or_init(|| self.list_function_names())
    }

    fn list_function_names(&self) -> std::collections::BTreeSet<String> {
        let mut names: std::collections::BTreeSet<String> = self
            .engine
            .gen_fn_signatures(true)
            .iter()
            .filter_map(|sig| {
                let name = sig.split('(').next()?.trim();
                let name = name.rsplit(' ').next()?;
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
                    .then(|| name.to_owned())
            })
            .collect();
        // Built into the language rather than registered.
        for n in [
            "type_of",
            "print",
            "debug",
            "Fn",
            "call",
            "curry",
            "is_def_var",
            "is_def_fn",
            "is_shared",
            "sleep",
        ] {
            names.insert(n.to_owned());
        }
        names
    }

    /// A new engine built like this one.
    pub fn fresh(&self) -> ScriptEngine {
        ScriptEngine::new(self.lists.clone(), self.business_hours.clone())
    }

    /// Compiles `script` again on this engine.
    pub fn recompile(&self, script: &Script) -> Script {
        let again = if script.condition {
            self.compile_condition(&script.source)
        } else {
            self.compile_script(&script.source)
        };
        again.expect("a script that compiled once compiles again")
    }

    /// Compiles a `condition` expression.
    pub fn compile_condition(&self, src: &str) -> Result<Script, SyntaxError> {
        self.engine
            .compile_expression_with_scope(&event_scope(), src)
            .map(|ast| Script {
                ast,
                source: src.into(),
                condition: true,
                native: Program::compile(src, true),
            })
            .map_err(|e| syntax_error(e.1, e.0.to_string()))
    }

    /// Compiles a script file's text.
    pub fn compile_script(&self, src: &str) -> Result<Script, SyntaxError> {
        self.engine
            .compile_with_scope(&event_scope(), src)
            .map(|ast| Script {
                ast,
                source: src.into(),
                condition: false,
                native: Program::compile(src, false),
            })
            .map_err(|e| syntax_error(e.1, e.0.to_string()))
    }

    /// Runs a script on an event's scope (see [`event_scope_of`]); the
    /// result must be a boolean. What the script declares is dropped after
    /// it, so the next script sees the event alone.
    pub fn eval(&self, script: &Script, scope: &mut Scope<'static>) -> Result<bool, String> {
        let out = self
            .engine
            .eval_ast_with_scope::<Dynamic>(scope, &script.ast);
        scope.rewind(1);
        out.map_err(|e| describe(&e))?
            .as_bool()
            .map_err(|t| format!("the script must evaluate to a boolean, not {t}"))
    }
}

/// The event as scripts see it: a read-only map of every field, with `time`,
/// `details` and the normalized `actor` fields; only the top-level keys the
/// scripts read are filled in, unless a script uses the event as a whole.
pub fn view(event: &Event<'_>, needs: &ViewNeeds) -> Dynamic {
    if needs.all {
        let map = event.to_view();
        return rhai::serde::to_dynamic(serde_json::Value::Object(map)).unwrap_or(Dynamic::UNIT);
    }
    // Built straight from the event's text, only with what the scripts read.
    let mut map = Map::new();
    for key in &needs.keys {
        let value = match key.as_str() {
            "id" => Dynamic::from(event.id().to_owned()),
            "type" => Dynamic::from(event.kind().to_owned()),
            "effective_at" => Dynamic::from_int(event.effective_at()),
            "time" => Dynamic::from(event.time()),
            "details" => match event.raw_field(event.kind()).and_then(raw_dynamic) {
                Some(d) if d.is_map() => d,
                _ => Dynamic::from_map(Map::new()),
            },
            "actor" => {
                let Some(actor) = event.actor() else { continue };
                let mut obj = match needs.actor_normalized_only() {
                    true => Map::new(),
                    false => match event.raw_actor().and_then(raw_dynamic) {
                        Some(d) if d.is_map() => d.cast::<Map>(),
                        _ => Map::new(),
                    },
                };
                for (i, name) in crate::event::NORMALIZED.iter().enumerate() {
                    if !needs.has_actor_field(i) {
                        continue;
                    }
                    let field = crate::event::ActorField::at(i);
                    if let Some(v) = field.and_then(|f| actor.field(f)) {
                        obj.insert((*name).into(), Dynamic::from(v.to_owned()));
                    }
                }
                Dynamic::from_map(obj)
            }
            other => match event.raw_field(other).and_then(raw_dynamic) {
                Some(d) => d,
                None => continue,
            },
        };
        map.insert(key.as_str().into(), value);
    }
    // Not shared: scripts get their own copy, so one cannot change what
    // the next one sees (the `event` constant refuses writes).
    Dynamic::from_map(map)
}

/// A JSON text as a Rhai value, without an intermediate `serde_json::Value`.
fn raw_dynamic(raw: &str) -> Option<Dynamic> {
    serde_json::from_str::<Dynamic>(raw).ok()
}

/// A script's failure in the rule author's terms (the rule and the event
/// are named by whoever reports it).
pub fn describe(e: &EvalAltResult) -> String {
    use EvalAltResult as E;
    let at = |pos: &Position| match (pos.line(), pos.position()) {
        (Some(l), Some(c)) => format!(" (script line {l}, column {c})"),
        (Some(l), None) => format!(" (script line {l})"),
        _ => String::new(),
    };
    match e {
        E::ErrorFunctionNotFound(sig, pos) if sig.contains("()") => {
            let name = sig.split([' ', '(']).next().unwrap_or(sig);
            format!(
                "`{name}` got a missing value: a field this event does not have reads as `()`; check it first (`event.x != ()`){}",
                at(pos)
            )
        }
        E::ErrorFunctionNotFound(sig, pos) => {
            format!("no function `{sig}` for these kinds of values{}", at(pos))
        }
        E::ErrorMismatchDataType(want, got, pos) => {
            let got = if got == "()" {
                "a missing value".to_owned()
            } else {
                format!("`{got}`")
            };
            format!("expected `{want}`, got {got}{}", at(pos))
        }
        E::ErrorMismatchOutputType(want, got, pos) => {
            format!("the script must end in a `{want}`, not `{got}`{}", at(pos))
        }
        E::ErrorAssignmentToConstant(_, pos) | E::ErrorNonPureMethodCallOnConstant(_, pos) => {
            format!(
                "`event` is read-only: copy a value into a variable to change it{}",
                at(pos)
            )
        }
        E::ErrorTooManyOperations(pos) => format!(
            "the script ran too long (more than 200,000 operations) and was stopped{}",
            at(pos)
        ),
        E::ErrorDataTooLarge(what, pos) => format!("{what} grew too large{}", at(pos)),
        E::ErrorStackOverflow(pos) => format!("the script called itself too deeply{}", at(pos)),
        E::ErrorArithmetic(msg, pos) => format!("arithmetic error: {msg}{}", at(pos)),
        E::ErrorInFunctionCall(name, _, inner, _) => {
            format!("in function `{name}`: {}", describe(inner))
        }
        E::ErrorRuntime(value, pos) => format!("{value}{}", at(pos)),
        other => other.to_string(),
    }
}

/// The scope scripts run in: the event's view as the constant `event`,
/// built once per event however many scripts read it.
pub fn event_scope_of(event: &Event<'_>, needs: &ViewNeeds) -> Scope<'static> {
    let mut scope = Scope::new();
    scope.push_constant_dynamic("event", view(event, needs));
    scope
}

/// Which top-level keys of the event scripts read, found in their text:
/// `event.KEY` (or `event?.KEY`) reads KEY, `business_hours(event)` reads
/// `effective_at`, and any other use of `event` (indexing, passing it on)
/// needs it whole.
#[derive(Debug, Default, Clone)]
pub struct ViewNeeds {
    all: bool,
    keys: std::collections::BTreeSet<String>,
    /// Whether some script reads a field of `event.actor` other than the
    /// normalized ones (or the actor as a whole).
    actor_original: bool,
    /// The normalized `actor` fields the scripts read, one bit each by
    /// their place in [`NORMALIZED`](crate::event::NORMALIZED).
    actor_fields: u32,
}

impl ViewNeeds {
    /// Whether the scripts read only normalized `actor` fields.
    fn actor_normalized_only(&self) -> bool {
        !self.actor_original
    }

    /// Whether the view's actor has normalized field number `i`: the ones
    /// the scripts read, or all of them when the original actor is there.
    fn has_actor_field(&self, i: usize) -> bool {
        self.actor_original || self.actor_fields & (1 << i) != 0
    }

    fn add_actor_field(&mut self, name: &str) {
        match crate::event::NORMALIZED.iter().position(|n| *n == name) {
            Some(i) => self.actor_fields |= 1 << i,
            None => self.actor_original = true,
        }
    }
}

impl ViewNeeds {
    /// Adds what the script `src` reads.
    pub fn add(&mut self, src: &str) {
        let bytes = src.as_bytes();
        let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        for (at, _) in src.match_indices("event") {
            let end = at + "event".len();
            if (at > 0 && word(bytes[at - 1])) || bytes.get(end).is_some_and(|&b| word(b)) {
                continue;
            }
            let rest = src[end..].trim_start();
            let rest = rest.strip_prefix('?').unwrap_or(rest);
            if let Some(after) = rest.strip_prefix('.') {
                let key: String = after
                    .trim_start()
                    .chars()
                    .take_while(|&c| c.is_ascii_alphanumeric() || c == '_')
                    .collect();
                if key.is_empty() {
                    self.all = true;
                } else {
                    if key == "actor" {
                        let rest = after.trim_start()["actor".len()..].trim_start();
                        let rest = rest.strip_prefix('?').unwrap_or(rest);
                        let field: String = rest
                            .strip_prefix('.')
                            .map(|r| {
                                r.trim_start()
                                    .chars()
                                    .take_while(|&c| c.is_ascii_alphanumeric() || c == '_')
                                    .collect()
                            })
                            .unwrap_or_default();
                        self.add_actor_field(&field);
                    }
                    self.keys.insert(key);
                }
            } else if src[..at].trim_end().ends_with("business_hours(") && rest.starts_with(')') {
                // The time, and the actor's country for offices abroad.
                self.keys.insert("effective_at".into());
                self.keys.insert("actor".into());
                self.add_actor_field("country");
            } else {
                self.all = true;
            }
        }
    }
}

fn event_scope() -> Scope<'static> {
    let mut scope = Scope::new();
    scope.push_dynamic("event", Dynamic::from_map(Map::new()));
    scope
}

fn syntax_error(pos: Position, message: String) -> SyntaxError {
    SyntaxError {
        line: pos.line(),
        column: pos.position(),
        message,
    }
}

type Cache<T> = RefCell<FxHashMap<(String, String), Arc<T>>>;

thread_local! {
    static HOURS: Cache<BusinessHours> = RefCell::default();
    static GLOBS: Cache<globset::GlobMatcher> = RefCell::default();
    static REGEXES: Cache<regex::Regex> = RefCell::default();
}

/// Compiles a script function's pattern once per thread and keeps it, so a
/// rule that calls `regex_match` on every event compiles its regex once.
fn with_cached<T>(
    cache: &'static std::thread::LocalKey<Cache<T>>,
    key: (&str, &str),
    build: impl FnOnce() -> Result<T, String>,
) -> Result<Arc<T>, Fail> {
    cache.with(|c| {
        let owned = (key.0.to_owned(), key.1.to_owned());
        if let Some(v) = c.borrow().get(&owned) {
            return Ok(v.clone());
        }
        let v = Arc::new(build().map_err(fail)?);
        let mut c = c.borrow_mut();
        if c.len() >= 1024 {
            c.clear();
        }
        c.insert(owned, v.clone());
        Ok(v)
    })
}

#[cfg(test)]
mod tests {
    use super::ViewNeeds;

    fn needs(src: &str) -> (bool, Vec<String>) {
        let mut n = ViewNeeds::default();
        n.add(src);
        (n.all, n.keys.into_iter().collect())
    }

    #[test]
    fn scripts_read_only_the_keys_they_name() {
        assert_eq!(
            needs("!business_hours(event)"),
            (false, vec!["actor".into(), "effective_at".into()])
        );
        assert_eq!(
            needs("event.actor.email != \"x\" && event?.project.name == \"p\" && my_event == 1"),
            (false, vec!["actor".into(), "project".into()])
        );
        assert!(needs("let e = event; e.type == \"x\"").0);
        assert!(needs("event[\"api_key.created\"].id == \"k\"").0);
        assert!(needs("business_hours(event, 1)").0);
    }

    #[test]
    fn the_actor_of_the_view_has_the_normalized_fields_that_scripts_read() {
        let of = |srcs: &[&str]| {
            let mut n = ViewNeeds::default();
            srcs.iter().for_each(|s| n.add(s));
            crate::event::NORMALIZED
                .iter()
                .enumerate()
                .filter(|(i, _)| n.has_actor_field(*i))
                .map(|(_, name)| *name)
                .collect::<Vec<_>>()
        };
        assert_eq!(of(&[r#"event.actor.email == "x""#]), ["email"]);
        assert_eq!(
            of(&[r#"event.actor?.ip != """#, "!business_hours(event)"]),
            ["ip", "country"]
        );
        // The original actor, or the actor as a whole: every normalized field.
        let all = crate::event::NORMALIZED.len();
        assert_eq!(of(&[r#"event.actor.session.user.id == "u""#]).len(), all);
        assert_eq!(of(&[r#"let a = event.actor; a.email == "x""#]).len(), all);
    }
}
