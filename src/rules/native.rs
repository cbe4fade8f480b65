//! Conditions and scripts simple enough to run without the script engine:
//! event fields compared with literals, `&&`, `||`, `!`, `let`, the string
//! tests `starts_with`, `ends_with` and `contains`, and
//! `business_hours(event)`, compiled from the script's text at load.
//!
//! A program gives the answer Rhai gives, or none: a field that is missing
//! or of another type than the program can compare, or anything else Rhai
//! might treat its own way, leaves that event to Rhai, which then gives its
//! result or its error. Text that uses anything else is not compiled here
//! at all.

use std::borrow::Cow;

use serde_json::Value;

use super::hours::BusinessHours;
use crate::event::{ActorField, Event};

/// A condition or script that runs natively (see the module's doc).
#[derive(Debug)]
pub struct Program {
    /// `let` bindings, in order; variable `i` is the value of `lets[i]`.
    lets: Vec<Expr>,
    result: Expr,
}

#[derive(Debug)]
enum Expr {
    Field(Field),
    Var(usize),
    Str(Box<str>),
    Int(i64),
    Bool(bool),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Compare(Op, Box<Expr>, Box<Expr>),
    Method(Method, Box<Expr>, Box<str>),
    BusinessHours,
}

/// A field of the event as scripts see it (`event.…`).
#[derive(Debug)]
enum Field {
    Id,
    Type,
    EffectiveAt,
    Time,
    Actor(ActorField),
    /// Keys under the detail object.
    Details(Vec<Box<str>>),
    /// A top-level field and keys under it.
    Top(Box<str>, Vec<Box<str>>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn is_equality(self) -> bool {
        matches!(self, Op::Eq | Op::Ne)
    }

    /// Whether `a OP b` holds when `a` compares to `b` as `order`.
    fn holds(self, order: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Op::Eq => order == Equal,
            Op::Ne => order != Equal,
            Op::Lt => order == Less,
            Op::Le => order != Greater,
            Op::Gt => order == Greater,
            Op::Ge => order != Less,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Method {
    StartsWith,
    EndsWith,
    Contains,
}

/// A value a program computes.
#[derive(Clone)]
enum Val<'e> {
    Str(Cow<'e, str>),
    Int(i64),
    Bool(bool),
}

impl Program {
    /// Compiles a `condition` (one expression) or a `script` (`let`
    /// statements, then an expression); `None` when the text uses anything
    /// this module does not run.
    pub fn compile(src: &str, condition: bool) -> Option<Program> {
        let tokens = tokenize(src)?;
        let mut p = Parser {
            tokens: &tokens,
            at: 0,
            vars: Vec::new(),
        };
        let mut lets = Vec::new();
        if !condition {
            while p.peek() == Some(&Tok::Ident("let")) {
                p.at += 1;
                let Some(Tok::Ident(name)) = p.next() else {
                    return None;
                };
                if is_reserved(name) || p.next() != Some(Tok::Assign) {
                    return None;
                }
                let value = p.expr()?;
                if p.next() != Some(Tok::Semi) {
                    return None;
                }
                p.vars.push(name);
                lets.push(value);
            }
        }
        let result = p.expr()?;
        // A trailing `;` or anything else after the expression: Rhai alone.
        (p.at == tokens.len()).then_some(Program { lets, result })
    }

    /// The program's answer for `event`, or `None` when Rhai must decide.
    pub fn eval(&self, event: &Event<'_>, hours: Option<&BusinessHours>) -> Option<bool> {
        let ctx = Context { event, hours };
        let mut vars = Vec::with_capacity(self.lets.len());
        for e in &self.lets {
            let v = ctx.eval(e, &vars)?;
            vars.push(v);
        }
        match ctx.eval(&self.result, &vars)? {
            Val::Bool(b) => Some(b),
            _ => None,
        }
    }
}

struct Context<'e, 'a> {
    event: &'e Event<'a>,
    hours: Option<&'e BusinessHours>,
}

impl<'e> Context<'e, '_> {
    fn eval(&self, e: &'e Expr, vars: &[Val<'e>]) -> Option<Val<'e>> {
        Some(match e {
            Expr::Field(f) => self.field(f)?,
            Expr::Var(i) => vars[*i].clone(),
            Expr::Str(s) => Val::Str(Cow::Borrowed(s)),
            Expr::Int(n) => Val::Int(*n),
            Expr::Bool(b) => Val::Bool(*b),
            Expr::Not(x) => Val::Bool(!self.bool(x, vars)?),
            // Both short-circuit, as in Rhai.
            Expr::And(a, b) => Val::Bool(self.bool(a, vars)? && self.bool(b, vars)?),
            Expr::Or(a, b) => Val::Bool(self.bool(a, vars)? || self.bool(b, vars)?),
            Expr::Compare(op, a, b) => {
                let order = match (self.eval(a, vars)?, self.eval(b, vars)?) {
                    (Val::Int(a), Val::Int(b)) => a.cmp(&b),
                    // Text and booleans only as equal or not.
                    (Val::Str(a), Val::Str(b)) if op.is_equality() => a.cmp(&b),
                    (Val::Bool(a), Val::Bool(b)) if op.is_equality() => a.cmp(&b),
                    _ => return None,
                };
                Val::Bool(op.holds(order))
            }
            Expr::Method(m, x, arg) => {
                let Val::Str(s) = self.eval(x, vars)? else {
                    return None;
                };
                Val::Bool(match m {
                    Method::StartsWith => s.starts_with(&**arg),
                    Method::EndsWith => s.ends_with(&**arg),
                    Method::Contains => s.contains(&**arg),
                })
            }
            Expr::BusinessHours => {
                // The country of offices abroad comes from the actor; without
                // one, what the script sees depends on the view: Rhai decides.
                let country = self.event.actor()?.field(ActorField::Country)?;
                Val::Bool(
                    self.hours?
                        .contains_in(self.event.effective_at(), Some(country)),
                )
            }
        })
    }

    fn bool(&self, e: &'e Expr, vars: &[Val<'e>]) -> Option<bool> {
        match self.eval(e, vars)? {
            Val::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// A field's value when it is text, a whole number or a boolean.
    fn field(&self, f: &Field) -> Option<Val<'e>> {
        let ev = self.event;
        let json = match f {
            Field::Id => return Some(Val::Str(Cow::Borrowed(ev.id()))),
            Field::Type => return Some(Val::Str(Cow::Borrowed(ev.kind()))),
            Field::EffectiveAt => return Some(Val::Int(ev.effective_at())),
            Field::Time => return Some(Val::Str(Cow::Owned(ev.time()))),
            Field::Actor(field) => {
                return ev
                    .actor()?
                    .field(*field)
                    .map(|v| Val::Str(Cow::Borrowed(v)));
            }
            Field::Details(keys) => walk(ev.field(ev.kind())?, keys)?,
            Field::Top(key, keys) => walk(ev.field(key)?, keys)?,
        };
        match json {
            Value::String(s) => Some(Val::Str(Cow::Borrowed(s))),
            Value::Bool(b) => Some(Val::Bool(*b)),
            Value::Number(n) => n.as_i64().map(Val::Int),
            _ => None,
        }
    }
}

/// Follows `keys` down nested objects, one key each.
fn walk<'v>(mut v: &'v Value, keys: &[Box<str>]) -> Option<&'v Value> {
    for k in keys {
        v = v.as_object()?.get(&**k)?;
    }
    Some(v)
}

fn is_reserved(name: &str) -> bool {
    matches!(
        name,
        "let" | "const" | "true" | "false" | "event" | "business_hours" | "if" | "else" | "fn"
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok<'s> {
    Ident(&'s str),
    Str(&'s str),
    Int(i64),
    Dot,
    Open,
    Close,
    Not,
    And,
    Or,
    Op(Op),
    Assign,
    Semi,
}

/// The tokens of `src`; `None` at anything outside the subset run here.
fn tokenize(src: &str) -> Option<Vec<Tok<'_>>> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let rest = &b[i..];
        let (tok, len) = match b[i] {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b'/' if rest.starts_with(b"//") => {
                i += rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len());
                continue;
            }
            b'"' => {
                let end = rest[1..].iter().position(|&c| c == b'"')? + 1;
                let text = &src[i + 1..i + end];
                // Escapes are Rhai's to read.
                if text.contains('\\') {
                    return None;
                }
                (Tok::Str(text), end + 1)
            }
            b'0'..=b'9' => {
                let len = rest.iter().take_while(|c| c.is_ascii_digit()).count();
                // Floats, `_` separators, hex and the like: Rhai's.
                if rest
                    .get(len)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'.')
                {
                    return None;
                }
                (Tok::Int(src[i..i + len].parse().ok()?), len)
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let len = rest
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                    .count();
                (Tok::Ident(&src[i..i + len]), len)
            }
            b'.' => (Tok::Dot, 1),
            b'(' => (Tok::Open, 1),
            b')' => (Tok::Close, 1),
            b';' => (Tok::Semi, 1),
            b'&' if rest.starts_with(b"&&") => (Tok::And, 2),
            b'|' if rest.starts_with(b"||") => (Tok::Or, 2),
            b'=' if rest.starts_with(b"==") => (Tok::Op(Op::Eq), 2),
            b'!' if rest.starts_with(b"!=") => (Tok::Op(Op::Ne), 2),
            b'<' if rest.starts_with(b"<=") => (Tok::Op(Op::Le), 2),
            b'>' if rest.starts_with(b">=") => (Tok::Op(Op::Ge), 2),
            b'=' => (Tok::Assign, 1),
            b'!' => (Tok::Not, 1),
            b'<' => (Tok::Op(Op::Lt), 1),
            b'>' => (Tok::Op(Op::Gt), 1),
            _ => return None,
        };
        // `<<`, `>>`, `=>`, `!!` and the like: Rhai's.
        if matches!(tok, Tok::Op(_) | Tok::Assign | Tok::Not)
            && b.get(i + len).is_some_and(|c| b"=<>!".contains(c))
        {
            return None;
        }
        out.push(tok);
        i += len;
    }
    Some(out)
}

struct Parser<'t, 's> {
    tokens: &'t [Tok<'s>],
    at: usize,
    /// The `let` variables bound so far, by number.
    vars: Vec<&'s str>,
}

impl<'s> Parser<'_, 's> {
    fn peek(&self) -> Option<&Tok<'s>> {
        self.tokens.get(self.at)
    }

    fn peek_at(&self, ahead: usize) -> Option<&Tok<'s>> {
        self.tokens.get(self.at + ahead)
    }

    fn next(&mut self) -> Option<Tok<'s>> {
        let t = self.tokens.get(self.at).copied();
        self.at += 1;
        t
    }

    fn expr(&mut self) -> Option<Expr> {
        let mut left = self.and()?;
        while self.peek() == Some(&Tok::Or) {
            self.at += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Some(left)
    }

    fn and(&mut self) -> Option<Expr> {
        let mut left = self.compare()?;
        while self.peek() == Some(&Tok::And) {
            self.at += 1;
            left = Expr::And(Box::new(left), Box::new(self.compare()?));
        }
        Some(left)
    }

    fn compare(&mut self) -> Option<Expr> {
        let left = self.unary()?;
        let Some(&Tok::Op(op)) = self.peek() else {
            return Some(left);
        };
        self.at += 1;
        let right = self.unary()?;
        // Chains (`a == b == c`) follow Rhai's own precedence: not here.
        if let Some(Tok::Op(_)) = self.peek() {
            return None;
        }
        Some(Expr::Compare(op, Box::new(left), Box::new(right)))
    }

    fn unary(&mut self) -> Option<Expr> {
        if self.peek() == Some(&Tok::Not) {
            self.at += 1;
            return Some(Expr::Not(Box::new(self.unary()?)));
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Option<Expr> {
        let mut e = self.primary()?;
        while self.peek() == Some(&Tok::Dot) {
            let (Some(Tok::Ident(name)), Some(Tok::Open), Some(Tok::Str(arg)), Some(Tok::Close)) = (
                self.peek_at(1),
                self.peek_at(2),
                self.peek_at(3),
                self.peek_at(4),
            ) else {
                return None;
            };
            let method = match *name {
                "starts_with" => Method::StartsWith,
                "ends_with" => Method::EndsWith,
                "contains" => Method::Contains,
                _ => return None,
            };
            e = Expr::Method(method, Box::new(e), (*arg).into());
            self.at += 5;
        }
        Some(e)
    }

    fn primary(&mut self) -> Option<Expr> {
        Some(match self.next()? {
            Tok::Str(s) => Expr::Str(s.into()),
            Tok::Int(n) => Expr::Int(n),
            Tok::Open => {
                let e = self.expr()?;
                (self.next()? == Tok::Close).then_some(e)?
            }
            Tok::Ident("true") => Expr::Bool(true),
            Tok::Ident("false") => Expr::Bool(false),
            Tok::Ident("business_hours") => {
                let call = [Tok::Open, Tok::Ident("event"), Tok::Close];
                if self.tokens.get(self.at..self.at + 3)? != call {
                    return None;
                }
                self.at += 3;
                Expr::BusinessHours
            }
            Tok::Ident("event") => Expr::Field(self.field()?),
            Tok::Ident(name) if !is_reserved(name) => {
                // The latest binding of the name.
                let i = self.vars.iter().rposition(|v| *v == name)?;
                Expr::Var(i)
            }
            _ => return None,
        })
    }

    /// `event.KEY…`: the keys up to a method call.
    fn field(&mut self) -> Option<Field> {
        let mut keys: Vec<&str> = Vec::new();
        while let (Some(Tok::Dot), Some(&Tok::Ident(key))) = (self.peek(), self.peek_at(1)) {
            if self.peek_at(2) == Some(&Tok::Open) {
                break;
            }
            keys.push(key);
            self.at += 2;
        }
        let owned = |ks: &[&str]| ks.iter().map(|k| Box::from(*k)).collect();
        Some(match keys.as_slice() {
            [] => return None,
            ["id"] => Field::Id,
            ["type"] => Field::Type,
            ["effective_at"] => Field::EffectiveAt,
            ["time"] => Field::Time,
            ["actor", name] => Field::Actor(ActorField::named(name)?),
            ["actor", ..] | ["id" | "type" | "effective_at" | "time", ..] => return None,
            ["details", rest @ ..] => Field::Details(owned(rest)),
            [top, rest @ ..] => Field::Top((*top).into(), owned(rest)),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::lists::Lists;
    use super::super::script::{ScriptEngine, ViewNeeds, event_scope_of};
    use super::*;

    /// Every answer given here is the answer Rhai gives, on events made to
    /// hit the edges: missing and null fields, numbers, booleans, arrays,
    /// other actors, other times.
    #[test]
    fn answers_as_rhai_does() {
        let hours = BusinessHours::new("America/New_York", "Mon-Fri", "08:00-19:00", &[])
            .unwrap()
            .with_countries([("GB", "Europe/London")])
            .unwrap();
        let engine = ScriptEngine::new(Lists::default(), Some(Arc::new(hours)));
        let conditions = [
            "!business_hours(event)",
            "!business_hours(event) && event.actor.country != \"US\"",
            "event.details.changes_requested.role == \"owner\" && event.actor.email != \"root@example.com\"",
            "event.details.n == 5 || event.details.n > 100",
            "event.details.n >= 5 && event.details.n < 7",
            "event.details.b == true",
            "!event.details.b",
            "event.details.s.contains(\"\") && event.details.s.starts_with(\"ab\")",
            "event.type == \"invite.sent\" || event.type == \"user.updated\"",
            "event.effective_at > 1773151200",
            "event.project.id.ends_with(\"_1\")",
            "event.actor.kind == \"user\" && event.actor.type == \"session\"",
            "event.time == \"2026-03-10T14:00:00Z\"",
            "event.id != \"\"",
            "(event.details.s == \"x\") == (event.details.b == false)",
        ];
        let script = "// invites\nlet to = event.details.data.email;\nlet role = event.details.data.role;\n!to.ends_with(\"@example.com\") || role == \"owner\"";
        let actors = [
            r#"{"type":"session","session":{"user":{"id":"user-1","email":"Ann@Example.com"},"ip_address":"203.0.113.7","ip_address_details":{"country":"US"}}}"#,
            r#"{"type":"session","session":{"user":{"id":"user-2","email":"root@example.com"},"ip_address_details":{"country":"GB"}}}"#,
            r#"{"type":"session","session":{"user":{"id":"user-3"}}}"#,
            r#"{"type":"api_key","api_key":{"id":"key_1","type":"service_account","service_account":{"id":"svc_1"}}}"#,
            "null",
        ];
        let details = [
            r#"{"changes_requested":{"role":"owner"},"n":5,"b":true,"s":"abc","data":{"email":"x@gmail.com","role":"reader"}}"#,
            r#"{"changes_requested":{"role":"reader"},"n":6,"b":false,"s":"x","data":{"email":"y@example.com","role":"owner"}}"#,
            r#"{"changes_requested":{"role":null},"n":5.0,"b":"true","s":["ab"],"data":{"email":null}}"#,
            r#"{"n":-3,"b":1,"s":"ab\u00e9","data":{"email":"z@example.com","role":"reader"}}"#,
            r#"{"n":200,"s":"","data":"none"}"#,
            r#"{"n":99999999999999999999,"changes_requested":[]}"#,
            "null",
            "5",
        ];
        let (types, times) = (
            ["user.updated", "invite.sent", "api_key.created"],
            [1773151200, 1773151201, 1773133200, 1773540000],
        );
        let mut scripts: Vec<_> = conditions
            .iter()
            .map(|c| engine.compile_condition(c).unwrap())
            .collect();
        scripts.push(engine.compile_script(script).unwrap());
        let mut needs = ViewNeeds::default();
        for s in &scripts {
            assert!(s.native.is_some(), "{} runs natively", s.source());
            needs.add(s.source());
        }
        let (mut answered, mut left) = (0, 0);
        for (i, actor) in actors.iter().enumerate() {
            for (j, d) in details.iter().enumerate() {
                let ty = types[(i + j) % types.len()];
                let at = times[(i * 3 + j) % times.len()];
                let line = format!(
                    r#"{{"id":"audit_log-{i}{j}","type":"{ty}","effective_at":{at},"project":{{"id":"proj_{j}"}},"actor":{actor},"{ty}":{d}}}"#
                );
                let ev = Event::parse(&line).unwrap();
                for s in &scripts {
                    let rhai = engine.eval(s, &mut event_scope_of(&ev, &needs));
                    match s.native_answer(&ev, engine.business_hours()) {
                        Some(b) => {
                            answered += 1;
                            assert_eq!(Ok(b), rhai, "{} on {line}", s.source());
                        }
                        None => left += 1,
                    }
                }
            }
        }
        assert!(
            answered > 300 && left > 100,
            "{answered} answered, {left} left to Rhai"
        );
    }

    #[test]
    fn the_subset_compiles_and_the_rest_does_not() {
        for src in [
            "!business_hours(event)",
            r#"event.details.changes_requested.role == "owner" && event.actor.email != "root@example.com""#,
            r#"(event.type == "a" || event.type == "b") && !event.actor.email.ends_with("@example.com")"#,
            "event.effective_at >= 1700000000 // a comment",
            "event.project.id.starts_with(\"proj_\")",
        ] {
            assert!(Program::compile(src, true).is_some(), "{src}");
        }
        let script = "// invites\nlet to = event.details.data.email;\nlet role = event.details.data.role;\n!to.ends_with(\"@example.com\") || role == \"owner\"";
        assert!(Program::compile(script, false).is_some());
        for src in [
            "event.actor.email.len() > 3",
            "event.details.x == 1.5",
            r#"event.actor.email == "a\"b""#,
            "event.actor.session.ip_address == \"x\"",
            "let x = 1; x == 1",
            "event.type == \"a\";",
            "event[\"type\"] == \"a\"",
            "a == b == c",
            "event.type in [\"a\"]",
            "event.details?.x == 1",
            "undefined_var == 1",
            "event.effective_at << 2 == 0",
            "/* block */ true",
            "event == 1",
        ] {
            assert!(Program::compile(src, true).is_none(), "{src}");
        }
        // A script's value is its last expression, without a `;` after it.
        assert!(Program::compile("let x = 1; x == 1", false).is_some());
        assert!(Program::compile("let x = 1; x == 1;", false).is_none());
    }
}
