//! Alert summaries: Jinja-style templates compiled at load, rendered with the
//! values of only the event fields they name.

use minijinja::value::Value as JValue;
use minijinja::{Environment, UndefinedBehavior};
use serde_json::Value;

use crate::event::{Event, FieldPath, FieldValue};

/// The instructions one summary may take; a summary of ordinary size takes
/// a few hundred.
const SUMMARY_FUEL: u64 = 100_000;

/// Every rule's summary template, compiled.
pub struct Templates {
    env: Environment<'static>,
}

/// What one rule's summary needs from an event.
#[derive(Debug)]
pub struct Summary {
    /// `None`: the default summary built from type, actor and project.
    template: Option<String>,
    /// The event paths the template reads, with no path that another one covers.
    paths: Vec<FieldPath>,
    /// The template as text and plain `{{ path }}` values, when it is only
    /// that (most summaries): written without the template engine.
    plain: Option<Vec<Piece>>,
}

/// A part of a plain template.
#[derive(Debug)]
enum Piece {
    Text(String),
    /// `{{ a.b.c }}`: the kept path (by index) that covers it, and the
    /// segments below that path.
    Value {
        path: usize,
        rest: Vec<String>,
    },
    Count,
    RuleId,
    RuleTitle,
    RuleSeverity,
}

/// The values a summary reads, taken from the matching event so that it can
/// be rendered later (when a threshold fires) without keeping the event.
#[derive(Debug, Clone)]
pub enum SummaryContext {
    /// The default summary, already written.
    Text(String),
    /// The value of each of the template's paths (`None`: missing).
    Values(Box<[Option<Value>]>),
}

impl Summary {
    /// The event paths the template reads.
    pub fn paths(&self) -> &[FieldPath] {
        &self.paths
    }
}

impl Templates {
    pub fn new() -> Templates {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        // A template that loops without end (nested loops over long lists)
        // runs out of fuel and fails instead of hanging the replay.
        env.set_fuel(Some(SUMMARY_FUEL));
        // Summaries are plain text; each destination escapes for its medium.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        env.set_formatter(|out, state, value| {
            if value.is_undefined() || value.is_none() {
                return Ok(());
            }
            if value.kind() == minijinja::value::ValueKind::Seq {
                for (i, item) in value.try_iter()?.enumerate() {
                    if i > 0 {
                        out.write_str(", ")?;
                    }
                    if !(item.is_none() || item.is_undefined()) {
                        minijinja::escape_formatter(out, state, &item)?;
                    }
                }
                return Ok(());
            }
            minijinja::escape_formatter(out, state, value)
        });
        Templates { env }
    }

    /// Compiles the template of rule `id`.
    pub fn add(&mut self, id: &str, source: Option<&str>) -> Result<Summary, String> {
        let Some(source) = source else {
            return Ok(Summary::default_summary());
        };
        self.env
            .add_template_owned(id.to_owned(), source.to_owned())
            .map_err(|e| {
                format!(
                    "bad summary template: {}",
                    e.detail().unwrap_or(&e.to_string())
                )
            })?;
        let tmpl = self.env.get_template(id).map_err(|e| e.to_string())?;
        // Filters, tests and functions are looked up when they run: run the
        // template once on nothing, so that a misspelt one fails the load.
        if let Err(e) = tmpl.render(minijinja::context! {}) {
            use minijinja::ErrorKind::{UnknownFilter, UnknownFunction, UnknownTest};
            if matches!(e.kind(), UnknownFilter | UnknownFunction | UnknownTest) {
                return Err(format!(
                    "bad summary template: {}",
                    e.detail().unwrap_or(&e.to_string())
                ));
            }
        }
        let mut vars: Vec<String> = tmpl
            .undeclared_variables(true)
            .into_iter()
            .filter(|v| !matches!(v.split('.').next(), Some("count" | "rule")))
            .collect();
        vars.sort();
        // Keep `details` and drop `details.id`: the shorter path covers it.
        let mut kept: Vec<String> = Vec::new();
        for v in vars {
            if !kept
                .iter()
                .any(|k| v.starts_with(k.as_str()) && v[k.len()..].starts_with('.'))
            {
                kept.push(v);
            }
        }
        let paths: Vec<FieldPath> = kept.iter().filter_map(|p| FieldPath::parse(p)).collect();
        Ok(Summary {
            template: Some(id.to_owned()),
            plain: plain_pieces(source, &paths),
            paths,
        })
    }

    /// Renders a summary from the context taken at match time.
    pub fn render(
        &self,
        summary: &Summary,
        ctx: &SummaryContext,
        rule: &RuleInfo<'_>,
        count: usize,
    ) -> (String, Option<String>) {
        let (Some(name), SummaryContext::Values(values)) = (&summary.template, ctx) else {
            let text = match ctx {
                SummaryContext::Text(t) => t.clone(),
                SummaryContext::Values(_) => String::new(),
            };
            return (text, None);
        };
        if let Some(text) = summary
            .plain
            .as_deref()
            .and_then(|pieces| write_plain(pieces, values, rule, count))
        {
            return (one_line(&text), None);
        }
        self.render_with_engine(name, summary, values, rule, count)
    }

    /// Renders a summary with the template engine.
    fn render_with_engine(
        &self,
        name: &str,
        summary: &Summary,
        values: &[Option<Value>],
        rule: &RuleInfo<'_>,
        count: usize,
    ) -> (String, Option<String>) {
        let mut root = serde_json::Map::new();
        for (path, value) in summary.paths.iter().zip(values.iter()) {
            if let Some(v) = value {
                insert_nested(&mut root, path.as_str(), v.clone());
            }
        }
        let fields = JValue::from_serialize(&root);
        let full = minijinja::context! {
            count => count,
            rule => minijinja::context! { id => rule.id, title => rule.title, severity => rule.severity },
            ..fields
        };
        match self.env.get_template(name).and_then(|t| t.render(full)) {
            Ok(s) => (one_line(&s), None),
            Err(e) => (
                format!("{} (summary failed: {e})", rule.title),
                Some(format!("the summary failed: {e}")),
            ),
        }
    }
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

/// What a summary may say about its rule.
pub struct RuleInfo<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub severity: &'a str,
}

impl Summary {
    fn default_summary() -> Summary {
        Summary {
            template: None,
            paths: Vec::new(),
            plain: None,
        }
    }

    /// Takes what the summary needs from `event`.
    pub fn context(&self, event: &Event<'_>) -> SummaryContext {
        if self.template.is_none() {
            return SummaryContext::Text(default_text(event));
        }
        let values = self
            .paths
            .iter()
            .map(|path| match path.resolve(event) {
                FieldValue::Missing => None,
                FieldValue::Text(s) => Some(Value::String(s.to_owned())),
                FieldValue::Owned(s) => Some(Value::String(s)),
                FieldValue::Int(i) => Some(Value::from(i)),
                FieldValue::Json(v) => Some(v.clone()),
            })
            .collect();
        SummaryContext::Values(values)
    }
}

/// The pieces of a template that is only text and `{{ a.b.c }}` values
/// (no statements, comments, filters, operators or whitespace control),
/// each value covered by one of `paths`; `None` for any other template.
fn plain_pieces(source: &str, paths: &[FieldPath]) -> Option<Vec<Piece>> {
    if source.contains("{%") || source.contains("{#") {
        return None;
    }
    let ident = |s: &str| {
        let mut chars = s.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !matches!(
                s,
                "true" | "false" | "none" | "True" | "False" | "None" | "loop" | "self"
            )
    };
    let mut pieces = Vec::new();
    let mut rest = source;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            pieces.push(Piece::Text(rest[..open].to_owned()));
        }
        let after = &rest[open + 2..];
        let close = after.find("}}")?;
        let expr = &after[..close];
        if expr.starts_with('-') || expr.ends_with('-') || expr.starts_with('+') {
            return None;
        }
        let segs: Vec<&str> = expr.trim().split('.').collect();
        if !segs.iter().all(|s| ident(s)) {
            return None;
        }
        pieces.push(match segs.as_slice() {
            ["count"] => Piece::Count,
            ["rule", "id"] => Piece::RuleId,
            ["rule", "title"] => Piece::RuleTitle,
            ["rule", "severity"] => Piece::RuleSeverity,
            ["count" | "rule", ..] => return None,
            _ => {
                let (path, depth) = paths.iter().enumerate().find_map(|(i, p)| {
                    let covered: Vec<&str> = p.as_str().split('.').collect();
                    segs.starts_with(&covered).then_some((i, covered.len()))
                })?;
                Piece::Value {
                    path,
                    rest: segs[depth..].iter().map(|s| (*s).to_owned()).collect(),
                }
            }
        });
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_owned()));
    }
    Some(pieces)
}

/// Writes a plain template the way the template engine would; `None` when
/// a value is of a kind whose text only the engine knows (an object, a
/// float, a value reached through a list), for the engine to write.
fn write_plain(
    pieces: &[Piece],
    values: &[Option<Value>],
    rule: &RuleInfo<'_>,
    count: usize,
) -> Option<String> {
    use std::fmt::Write;
    let mut out = String::with_capacity(128);
    for piece in pieces {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Count => {
                let _ = write!(out, "{count}");
            }
            Piece::RuleId => out.push_str(rule.id),
            Piece::RuleTitle => out.push_str(rule.title),
            Piece::RuleSeverity => out.push_str(rule.severity),
            Piece::Value { path, rest } => {
                let mut v = values.get(*path)?.as_ref();
                for seg in rest {
                    v = match v {
                        None => None,
                        Some(Value::Object(map)) => map.get(seg.as_str()),
                        Some(_) => return None,
                    };
                }
                match v {
                    None | Some(Value::Null) => {}
                    Some(Value::Array(items)) => {
                        for (i, item) in items.iter().enumerate() {
                            if i > 0 {
                                out.push_str(", ");
                            }
                            match item {
                                Value::Null => {}
                                other => write_scalar(&mut out, other)?,
                            }
                        }
                    }
                    Some(other) => write_scalar(&mut out, other)?,
                }
            }
        }
    }
    Some(out)
}

/// A summary on one line, its runs of whitespace as single spaces.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A string, an integer or a boolean as the template engine writes it.
fn write_scalar(out: &mut String, v: &Value) -> Option<()> {
    use std::fmt::Write;
    match v {
        Value::String(s) => out.push_str(s),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) if n.is_i64() || n.is_u64() => {
            let _ = write!(out, "{n}");
        }
        _ => return None,
    }
    Some(())
}

/// Places `value` at the dotted `path` inside nested maps, so that the
/// template's `api_key.created.id` finds it where Jinja looks.
fn insert_nested(root: &mut serde_json::Map<String, Value>, path: &str, value: Value) {
    let mut segs = path.split('.').peekable();
    let mut map = root;
    while let Some(seg) = segs.next() {
        if segs.peek().is_none() {
            map.insert(seg.to_owned(), value);
            return;
        }
        let slot = map
            .entry(seg.to_owned())
            .or_insert_with(|| Value::Object(Default::default()));
        if !slot.is_object() {
            *slot = Value::Object(Default::default());
        }
        map = slot.as_object_mut().expect("made an object above");
    }
}

/// `api_key.created by alice@example.com in Default project`.
fn default_text(event: &Event<'_>) -> String {
    let mut s = event.kind().to_owned();
    if let Some(actor) = event.actor() {
        if let Some(who) = actor.email.as_deref().or(actor.id.as_deref()) {
            s.push_str(" by ");
            s.push_str(who);
        }
        if let Some(ip) = actor.ip.as_deref() {
            s.push_str(" from ");
            s.push_str(ip);
        }
    }
    if let Some(Value::String(name)) = event.field("project").and_then(|p| p.get("name")) {
        s.push_str(" in ");
        s.push_str(name);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_templates_are_written_as_the_template_engine_writes_them() {
        let templates = [
            "{{ actor.email }} invited {{ details.data.email }} as {{ details.data.role }}",
            "{{details.data.scopes}} by {{ actor.email }}; {{ count }} in {{ rule.id }} ({{ rule.severity }}: {{ rule.title }})",
            "  {{ details }}\n{{ details.id }} {{ details.n }} {{ details.flag }} {{ details.gone.deeper }}  ",
            "{{ details.data.nested.x }} {{ details.list }} {{ type }}",
            "}} {{ project.name }} {",
        ];
        let contexts = [
            json!({}),
            json!({"actor": {"email": "ann@example.com"}, "type": "invite.sent",
                   "project": {"name": "P  one"},
                   "invite.sent": {"id": "inv_1", "n": 5, "flag": true, "list": ["a", null, 3],
                     "data": {"email": "bob@gmail.com", "role": "owner", "scopes": ["api.all", "x"],
                              "nested": {"x": -7}}}}),
            json!({"actor": {"email": "c@example.com"}, "type": "invite.sent",
                   "invite.sent": {"id": 1.5, "n": {"o": 1}, "flag": null, "list": [[1]],
                     "data": {"email": null, "role": ["r"], "scopes": "one", "nested": "no"}}}),
            json!({"type": "invite.sent", "invite.sent": {"data": 3, "list": [{"k": "v"}]}}),
        ];
        let mut t = Templates::new();
        let mut plain = 0;
        for (i, src) in templates.iter().enumerate() {
            let id = format!("r{i}");
            let summary = t.add(&id, Some(src)).expect("template compiles");
            assert!(summary.plain.is_some(), "{src} is plain");
            for ctx in &contexts {
                let line = json!({"id": "e", "effective_at": 1, "type": "invite.sent"});
                let mut line = line.as_object().unwrap().clone();
                line.extend(ctx.as_object().unwrap().clone());
                let text = serde_json::to_string(&line).unwrap();
                let event = Event::parse(&text).unwrap();
                let SummaryContext::Values(values) = summary.context(&event) else {
                    panic!("values")
                };
                let info = RuleInfo {
                    id: &id,
                    title: "A title",
                    severity: "high",
                };
                let engine = t.render_with_engine(&id, &summary, &values, &info, 3).0;
                let engine = one_line(&engine);
                if let Some(fast) = write_plain(summary.plain.as_ref().unwrap(), &values, &info, 3)
                {
                    plain += 1;
                    let fast = one_line(&fast);
                    assert_eq!(fast, engine, "{src} on {ctx}");
                }
                assert_eq!(
                    t.render(&summary, &SummaryContext::Values(values), &info, 3)
                        .0,
                    engine
                );
            }
        }
        assert!(plain >= 12, "only {plain} written plainly");
        for not_plain in [
            "{{ actor.email | upper }}",
            "{% if x %}y{% endif %}",
            "{{ actor.email or actor.id }}",
            "{{- actor.email }}",
            "{# note #}{{ actor.email }}",
            "{{ rule }}",
            "{{ actor['email'] }}",
        ] {
            let summary = t.add("np", Some(not_plain)).expect("template compiles");
            assert!(summary.plain.is_none(), "{not_plain} is not plain");
        }
    }
}
