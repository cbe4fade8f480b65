//! The config file: its typed sections (contract v1), validated up front
//! with every problem at its `file:line:col`, and the rule environment
//! built from it.
//!
//! The file is read into a tree first (`tree`); `${NAME}` is replaced in
//! scalar values of the sections a command reads, then each section is
//! deserialized from the tree. Values that must not be shown (keys, tokens,
//! passwords, webhook URLs) are held in [`Secret`].

mod tree;
mod values;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::rules::{BusinessHours, Environment, Lists, Severity};
use tree::{Node, TreeError};
pub use values::{BaseUrl, Located, Seconds, Secret, StartAt};

/// Marks the newtype that [`Located`] deserializes through.
const LOCATED: &str = "$auditwatch::located";

/// A config problem, with its position when known.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read config: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    At {
        path: String,
        line: u64,
        column: u64,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

/// The top-level sections, in the order the reference lists them.
const SECTIONS: [&str; 11] = [
    "source",
    "rules",
    "lists",
    "business_hours",
    "state",
    "smtp",
    "destinations",
    "routing",
    "server",
    "heartbeat",
    "incidents",
];

/// The whole config file, checked.
#[derive(Debug)]
pub struct Config {
    pub path: PathBuf,
    /// The folder of the config file; relative paths start there.
    pub base_dir: PathBuf,
    pub source: Option<SourceConfig>,
    /// Rule files and folders, relative paths resolved.
    pub rules: Vec<PathBuf>,
    pub lists: BTreeMap<String, Vec<String>>,
    pub business_hours: Option<BusinessHoursConfig>,
    pub state: StateConfig,
    pub smtp: Option<SmtpConfig>,
    pub destinations: BTreeMap<String, DestinationConfig>,
    pub routing: RoutingConfig,
    pub server: Option<ServerConfig>,
    pub heartbeat: Option<HeartbeatConfig>,
    pub incidents: Option<IncidentsConfig>,
}

/// Where events come from: the audit log API or a file.
#[derive(Debug, Clone)]
pub enum SourceConfig {
    OpenAi(OpenAiSource),
    File(FileSource),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    openai: Option<OpenAiSource>,
    file: Option<FileSource>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAiSource {
    pub admin_key: Secret,
    #[serde(default)]
    pub base_url: BaseUrl,
    #[serde(default = "values::poll_interval")]
    pub poll_interval: Seconds,
    /// How far back each poll re-reads, for events that the API shows late.
    #[serde(default = "values::lookback")]
    pub lookback: Seconds,
    /// Where the first run begins.
    #[serde(default = "values::start")]
    pub start: StartAt,
    #[serde(
        default = "values::page_size",
        deserialize_with = "values::page_size_in_range"
    )]
    pub page_size: u32,
    #[serde(default = "values::timeout")]
    pub timeout: Seconds,
    #[serde(default)]
    pub project_ids: Vec<String>,
    #[serde(default)]
    pub event_types: Vec<String>,
    /// A second walk with `tenant_only=true`, for tenant-scoped event types.
    #[serde(default = "values::yes")]
    pub tenant_events: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSource {
    pub path: PathBuf,
    /// How often the file is read again for new events.
    #[serde(default = "values::poll_interval")]
    pub poll_interval: Seconds,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessHoursConfig {
    pub timezone: String,
    pub days: String,
    pub hours: String,
    #[serde(default)]
    pub holidays: Vec<String>,
    /// Offices abroad: country code to IANA zone; people signed in from
    /// such a country are judged by the same hours in their own zone.
    #[serde(default)]
    pub countries: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// The state database, created on first run.
    pub path: PathBuf,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    Starttls,
    Tls,
    None,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    pub port: Option<u16>,
    #[serde(default = "values::starttls")]
    pub tls: SmtpTls,
    pub username: Option<Secret>,
    pub password: Option<Secret>,
    pub from: String,
}

/// One named place alerts go.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum DestinationConfig {
    Slack {
        webhook_url: Option<Secret>,
        bot_token: Option<Secret>,
        channel: Option<String>,
        api_url: Option<String>,
    },
    Email {
        to: Vec<String>,
    },
    EmailDigest {
        to: Vec<String>,
        every: Option<Seconds>,
        at: Option<String>,
    },
    Stdout {},
    Webhook {
        url: Secret,
        #[serde(default)]
        headers: BTreeMap<String, Secret>,
    },
}

impl DestinationConfig {
    /// Whether the destination posts repeats as thread replies (a Slack bot).
    pub fn threads_repeats(&self) -> bool {
        matches!(
            self,
            DestinationConfig::Slack {
                bot_token: Some(_),
                ..
            }
        )
    }

    /// The destination's kind as written in `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            DestinationConfig::Slack { .. } => "slack",
            DestinationConfig::Email { .. } => "email",
            DestinationConfig::EmailDigest { .. } => "email_digest",
            DestinationConfig::Stdout {} => "stdout",
            DestinationConfig::Webhook { .. } => "webhook",
        }
    }
}

/// Where alerts go when their rule does not say.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    #[serde(default)]
    pub default: Vec<Located<String>>,
    #[serde(default)]
    pub severity: BTreeMap<Severity, Vec<Located<String>>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: String,
    pub token: Option<Secret>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatConfig {
    pub api_failing_for: Option<Seconds>,
    pub silent_for: Option<Seconds>,
}

/// How alerts are grouped into incidents.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentsConfig {
    /// How long after its last alert an incident takes more.
    #[serde(default = "values::incident_window")]
    pub window: Seconds,
    /// The field paths whose values tie alerts together.
    #[serde(default = "values::incident_by")]
    pub by: Vec<String>,
}

/// What `rulecheck` takes from a config.
#[derive(Debug)]
pub struct RuleConfig {
    pub rules: Vec<PathBuf>,
    pub env: Environment,
    pub base_dir: PathBuf,
    /// The API source, when asked for.
    pub source: Option<SourceConfig>,
    /// `routing`, for `rulecheck --routes`.
    pub routing: RoutingConfig,
    /// The destinations' names and `type`s (their other keys, which may
    /// use variables that are not set, are not read).
    pub destination_kinds: BTreeMap<String, String>,
    /// The business-hours zone, for times in rendered alerts.
    pub timezone: Option<String>,
}

/// A config file read into a tree, with its path for messages.
struct Document {
    path: PathBuf,
    base_dir: PathBuf,
    root: Node,
}

impl Document {
    fn read(path: &Path) -> Result<Document, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let doc = Document {
            path: path.to_owned(),
            base_dir: base_dir(path),
            root: Node {
                kind: tree::Kind::Null,
                line: 0,
                column: 0,
            },
        };
        let root = tree::parse(&text).map_err(|e| doc.error(e))?;
        let root = match root.kind {
            tree::Kind::Null => Node {
                kind: tree::Kind::Map(Vec::new()),
                ..root
            },
            tree::Kind::Map(_) => root,
            _ => {
                return Err(doc.error(TreeError {
                    message: "the config must be a map of sections (source, rules, lists, ...)"
                        .into(),
                    line: root.line,
                    column: root.column,
                }));
            }
        };
        let doc = Document { root, ..doc };
        for (key, node) in doc.root.keys() {
            if !SECTIONS.contains(&key) {
                return Err(doc.error(TreeError {
                    message: format!(
                        "unknown section `{key}`: expected one of {}",
                        SECTIONS.join(", ")
                    ),
                    line: node.line,
                    column: node.column,
                }));
            }
        }
        Ok(doc)
    }

    fn error(&self, e: TreeError) -> ConfigError {
        ConfigError::At {
            path: self.path.display().to_string(),
            line: e.line,
            column: e.column,
            message: e.message,
        }
    }

    fn invalid(&self, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.display().to_string(),
            message: message.into(),
        }
    }

    /// Reads section `name` with its variables replaced; `None` when absent.
    fn section<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<Option<T>, ConfigError> {
        let Some(node) = self.root.get(name) else {
            return Ok(None);
        };
        if matches!(node.kind, tree::Kind::Null) {
            return Ok(None);
        }
        let mut node = node.clone();
        node.substitute(&|var| std::env::var(var).ok())
            .map_err(|e| self.error(e))?;
        node.deserialize().map(Some).map_err(|e| self.error(e))
    }

    fn source(&self) -> Result<Option<SourceConfig>, ConfigError> {
        let Some(raw) = self.section::<RawSource>("source")? else {
            return Ok(None);
        };
        let at = self.root.get("source").expect("read above");
        match (raw.openai, raw.file) {
            (Some(o), None) => Ok(Some(SourceConfig::OpenAi(o))),
            (None, Some(mut f)) => {
                f.path = self.base_dir.join(&f.path);
                Ok(Some(SourceConfig::File(f)))
            }
            (o, _) => Err(self.error(TreeError {
                message: if o.is_some() {
                    "`source` takes one of `openai` and `file`, not both".into()
                } else {
                    "`source` needs `openai` (the audit log API) or `file`".into()
                },
                line: at.line,
                column: at.column,
            })),
        }
    }

    fn rules(&self) -> Result<Vec<PathBuf>, ConfigError> {
        let rules: Vec<PathBuf> = self.section("rules")?.unwrap_or_default();
        Ok(rules.iter().map(|r| self.base_dir.join(r)).collect())
    }

    fn environment(
        &self,
        lists: &BTreeMap<String, Vec<String>>,
        business_hours: Option<&BusinessHoursConfig>,
        incidents: Option<&IncidentsConfig>,
    ) -> Result<Environment, ConfigError> {
        environment(lists, business_hours, incidents).map_err(|m| self.invalid(m))
    }
}

impl Config {
    /// Reads and checks the whole config file: every section, every
    /// variable, and that routing names only destinations that exist.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let doc = Document::read(path)?;
        let state = doc
            .section::<StateConfig>("state")?
            .unwrap_or_else(|| StateConfig {
                path: PathBuf::from("auditwatch.db"),
            });
        let config = Config {
            source: doc.source()?,
            rules: doc.rules()?,
            lists: doc.section("lists")?.unwrap_or_default(),
            business_hours: doc.section("business_hours")?,
            state: StateConfig {
                path: doc.base_dir.join(state.path),
            },
            smtp: doc.section("smtp")?,
            destinations: doc.section("destinations")?.unwrap_or_default(),
            routing: doc.section("routing")?.unwrap_or_default(),
            server: doc.section("server")?,
            incidents: doc.section("incidents")?,
            heartbeat: doc.section("heartbeat")?,
            path: doc.path.clone(),
            base_dir: doc.base_dir.clone(),
        };
        doc.environment(
            &config.lists,
            config.business_hours.as_ref(),
            config.incidents.as_ref(),
        )?;
        config.check_destinations(&doc)?;
        Ok(config)
    }

    /// The rule environment (lists, business hours) of the config.
    pub fn environment(&self) -> Result<Environment, ConfigError> {
        environment(
            &self.lists,
            self.business_hours.as_ref(),
            self.incidents.as_ref(),
        )
        .map_err(|message| ConfigError::Invalid {
            path: self.path.display().to_string(),
            message,
        })
    }

    /// The rule paths: the config's `rules`, else `rules/` beside it.
    pub fn rule_paths(&self) -> Vec<PathBuf> {
        if self.rules.is_empty() {
            vec![self.base_dir.join("rules")]
        } else {
            self.rules.clone()
        }
    }

    fn check_destinations(&self, doc: &Document) -> Result<(), ConfigError> {
        let names = || {
            self.destinations
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        };
        let routed = self
            .routing
            .default
            .iter()
            .chain(self.routing.severity.values().flatten());
        for name in routed {
            if !self.destinations.contains_key(&name.value) {
                return Err(doc.error(TreeError {
                    message: format!(
                        "routing names destination `{}`, which is not defined (destinations: {})",
                        name.value,
                        if self.destinations.is_empty() {
                            "none".into()
                        } else {
                            names()
                        }
                    ),
                    line: name.line,
                    column: name.column,
                }));
            }
        }
        let needs_smtp = self.destinations.iter().find(|(_, d)| {
            matches!(
                d,
                DestinationConfig::Email { .. } | DestinationConfig::EmailDigest { .. }
            )
        });
        if let (Some((name, _)), None) = (needs_smtp, &self.smtp) {
            return Err(doc.invalid(format!(
                "destination `{name}` sends email: add an `smtp` section"
            )));
        }
        for (name, d) in &self.destinations {
            if let DestinationConfig::Slack {
                webhook_url,
                bot_token,
                channel,
                ..
            } = d
            {
                match (webhook_url, bot_token, channel) {
                    (Some(_), None, _) | (None, Some(_), Some(_)) => {}
                    (None, Some(_), None) => {
                        return Err(doc.invalid(format!(
                            "destination `{name}`: a bot token needs a `channel`"
                        )));
                    }
                    _ => {
                        return Err(doc.invalid(format!(
                            "destination `{name}`: give `webhook_url`, or `bot_token` with `channel`"
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

impl RuleConfig {
    /// Reads the sections that rules need (`rules`, `lists`,
    /// `business_hours`, and `source` when `with_source`); the others may use
    /// variables that are not set, and are not checked beyond their names.
    pub fn load(path: &Path) -> Result<RuleConfig, ConfigError> {
        Self::load_with(path, false)
    }

    /// Like [`RuleConfig::load`], with the event source too.
    pub fn load_with(path: &Path, with_source: bool) -> Result<RuleConfig, ConfigError> {
        let doc = Document::read(path)?;
        let lists = doc.section("lists")?.unwrap_or_default();
        let business_hours: Option<BusinessHoursConfig> = doc.section("business_hours")?;
        let incidents: Option<IncidentsConfig> = doc.section("incidents")?;
        let env = doc.environment(&lists, business_hours.as_ref(), incidents.as_ref())?;
        let mut destination_kinds = BTreeMap::new();
        if let Some(d) = doc.root.get("destinations") {
            for (name, _) in d.keys() {
                let kind = d
                    .get(name)
                    .and_then(|n| n.get("type"))
                    .and_then(|t| t.deserialize::<String>().ok())
                    .unwrap_or_default();
                destination_kinds.insert(name.to_owned(), kind);
            }
        }
        Ok(RuleConfig {
            rules: doc.rules()?,
            env,
            source: if with_source { doc.source()? } else { None },
            base_dir: doc.base_dir.clone(),
            routing: doc.section("routing")?.unwrap_or_default(),
            destination_kinds,
            timezone: business_hours.map(|b| b.timezone),
        })
    }
}

/// Compiles the lists and business hours that rules use.
pub fn environment(
    lists: &BTreeMap<String, Vec<String>>,
    business_hours: Option<&BusinessHoursConfig>,
    incidents: Option<&IncidentsConfig>,
) -> Result<Environment, String> {
    let lists = Lists::compile(lists).map_err(|e| e.join("; "))?;
    let business_hours = match business_hours {
        Some(bh) => Some(Arc::new(
            BusinessHours::new(&bh.timezone, &bh.days, &bh.hours, &bh.holidays)
                .and_then(|b| {
                    b.with_countries(bh.countries.iter().map(|(c, z)| (c.as_str(), z.as_str())))
                })
                .map_err(|e| format!("business_hours: {e}"))?,
        )),
        None => None,
    };
    let default;
    let incidents = match incidents {
        Some(i) => i,
        None => {
            default = IncidentsConfig {
                window: values::incident_window(),
                by: values::incident_by(),
            };
            &default
        }
    };
    let mut by = Vec::new();
    for p in &incidents.by {
        by.push(
            crate::event::FieldPath::parse(p)
                .ok_or_else(|| format!("incidents.by: bad field path {p:?}"))?,
        );
    }
    Ok(Environment {
        lists,
        business_hours,
        incidents: Some(Arc::new(crate::rules::IncidentRules {
            window: incidents.window.0,
            by,
        })),
    })
}

fn base_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auditwatch.yaml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn the_documented_example_loads() {
        // SAFETY: no other test reads or writes these variables.
        unsafe {
            std::env::set_var("AW_CFG_TEST_KEY", "sk-admin-abc");
            std::env::set_var("AW_CFG_TEST_HOOK", "https://hooks.slack.com/services/T/B/X");
            std::env::set_var("AW_CFG_TEST_PORT", "2525");
        }
        let (_dir, path) = write(
            "source:\n  openai:\n    admin_key: ${AW_CFG_TEST_KEY}\n    lookback: 10m\n    start: 2026-11-01T00:00:00Z\n\
             rules: [rules/]\nstate: {path: state/aw.db}\n\
             smtp: {host: localhost, port: \"${AW_CFG_TEST_PORT}\", tls: none, from: a@example.com, password: \"${AW_CFG_TEST_NOPE:-}\"}\n\
             destinations:\n  slack: {type: slack, webhook_url: \"${AW_CFG_TEST_HOOK}\"}\n  mail: {type: email, to: [a@example.com]}\n  out: {type: stdout}\n\
             routing: {default: [slack], severity: {critical: [slack, mail]}}\n",
        );
        let c = Config::load(&path).unwrap();
        let Some(SourceConfig::OpenAi(o)) = &c.source else {
            panic!("{c:?}")
        };
        assert_eq!(o.admin_key.expose(), "sk-admin-abc");
        assert_eq!(o.lookback.0, 600);
        assert_eq!(o.poll_interval.0, 30);
        assert_eq!(o.page_size, 100);
        assert!(o.tenant_events);
        assert_eq!(c.smtp.as_ref().unwrap().port, Some(2525));
        assert!(c.state.path.ends_with("state/aw.db"));
        assert!(c.state.path.starts_with(path.parent().unwrap()));
        // Secrets are never printed.
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("sk-admin-abc") && !shown.contains("hooks.slack.com"),
            "{shown}"
        );
    }

    #[test]
    fn routing_to_an_unknown_destination_is_an_error_at_its_line() {
        let (_dir, path) = write(
            "destinations:\n  out: {type: stdout}\nrouting:\n  default: [out]\n  severity:\n    high: [pager]\n",
        );
        let e = Config::load(&path).unwrap_err().to_string();
        assert!(
            e.contains(":6:") && e.contains("pager") && e.contains("out"),
            "{e}"
        );
    }

    #[test]
    fn bad_values_are_errors_at_their_line() {
        for (text, line, word) in [
            (
                "source:\n  openai:\n    admin_key: k\n    page_size: 500\n",
                4,
                "page_size",
            ),
            (
                "source:\n  openai:\n    admin_key: k\n    lookback: soon\n",
                4,
                "soon",
            ),
            (
                "source:\n  openai:\n    admin_key: k\n    colour: red\n",
                4,
                "colour",
            ),
            (
                "source:\n  openai:\n    admin_key: k\n  file: {path: x}\n",
                2,
                "not both",
            ),
            ("sauce: {}\n", 1, "sauce"),
        ] {
            let (_dir, path) = write(text);
            let e = Config::load(&path).unwrap_err().to_string();
            assert!(
                e.contains(&format!(":{line}:")) && e.contains(word),
                "{text}: {e}"
            );
        }
    }
}
