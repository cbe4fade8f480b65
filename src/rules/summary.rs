//! Alert summaries: Jinja-style templates compiled at load, rendered with the
//! values of only the event fields they name.

use std::collections::BTreeMap;

use minijinja::value::Value as JValue;
use minijinja::{Environment, UndefinedBehavior};
use serde_json::Value;

use crate::event::{Event, FieldPath, FieldValue};

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
}

/// The values a summary reads, taken from the matching event so that it can
/// be rendered later (when a threshold fires) without keeping the event.
pub type SummaryContext = JValue;

impl Templates {
    pub fn new() -> Templates {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
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
        let paths = kept.iter().filter_map(|p| FieldPath::parse(p)).collect();
        Ok(Summary {
            template: Some(id.to_owned()),
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
    ) -> String {
        let Some(name) = &summary.template else {
            return ctx.as_str().unwrap_or_default().to_owned();
        };
        let extra = minijinja::context! {
            count => count,
            rule => minijinja::context! { id => rule.id, title => rule.title, severity => rule.severity },
        };
        let full = minijinja::context! { ..extra, ..ctx.clone() };
        match self.env.get_template(name).and_then(|t| t.render(full)) {
            Ok(s) => s.split_whitespace().collect::<Vec<_>>().join(" "),
            Err(e) => format!("{} (summary failed: {e})", rule.title),
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
        }
    }

    /// Takes what the summary needs from `event`.
    pub fn context(&self, event: &Event<'_>) -> SummaryContext {
        if self.template.is_none() {
            return JValue::from(default_text(event));
        }
        let mut root: BTreeMap<String, JValue> = BTreeMap::new();
        for path in &self.paths {
            let value = match path.resolve(event) {
                FieldValue::Missing => continue,
                FieldValue::Text(s) => JValue::from(s),
                FieldValue::Owned(s) => JValue::from(s),
                FieldValue::Int(i) => JValue::from(i),
                FieldValue::Json(v) => JValue::from_serialize(v),
            };
            insert_nested(&mut root, path.as_str(), value);
        }
        JValue::from_object(root.into_iter().collect::<BTreeMap<_, _>>())
    }
}

/// Places `value` at the dotted `path` inside nested maps, so that the
/// template's `api_key.created.id` finds it where Jinja looks.
fn insert_nested(root: &mut BTreeMap<String, JValue>, path: &str, value: JValue) {
    fn build(segs: &[&str], value: JValue) -> JValue {
        match segs {
            [] => value,
            [first, rest @ ..] => {
                let mut m = BTreeMap::new();
                m.insert((*first).to_owned(), build(rest, value));
                JValue::from_object(m)
            }
        }
    }
    let segs: Vec<&str> = path.split('.').collect();
    let (first, rest) = segs.split_first().expect("paths are non-empty");
    match root.get(*first) {
        Some(existing) if existing.as_object().is_some() && !rest.is_empty() => {
            let merged = merge(existing.clone(), build(rest, value));
            root.insert((*first).to_owned(), merged);
        }
        _ => {
            root.insert((*first).to_owned(), build(rest, value));
        }
    }
}

fn merge(a: JValue, b: JValue) -> JValue {
    let to_map = |v: &JValue| -> BTreeMap<String, JValue> {
        v.try_iter()
            .map(|it| {
                it.filter_map(|k| {
                    let val = v.get_item(&k).ok()?;
                    Some((k.as_str()?.to_owned(), val))
                })
                .collect()
            })
            .unwrap_or_default()
    };
    let mut out = to_map(&a);
    for (k, v) in to_map(&b) {
        let merged = match out.remove(&k) {
            Some(old) if old.as_object().is_some() && v.as_object().is_some() => merge(old, v),
            _ => v,
        };
        out.insert(k, merged);
    }
    JValue::from_object(out)
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
