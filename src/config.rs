//! The config file: `${NAME}` substitution, the typed sections of contract v1
//! with unknown keys rejected, and the rule environment built from it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::rules::{BusinessHours, Environment, Lists, Severity};

/// A config problem, with its position when known.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read config: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{path}:{line}: environment variable {name} is not set (set it, or give a default with ${{{name}:-default}})"
    )]
    MissingVar {
        path: String,
        line: usize,
        name: String,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Yaml {
        path: String,
        line: u64,
        column: u64,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

/// The whole config file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub source: Option<SourceConfig>,
    #[serde(default)]
    pub rules: Vec<PathBuf>,
    #[serde(default)]
    pub lists: BTreeMap<String, Vec<String>>,
    pub business_hours: Option<BusinessHoursConfig>,
    pub state: Option<StateConfig>,
    pub smtp: Option<SmtpConfig>,
    #[serde(default)]
    pub destinations: BTreeMap<String, DestinationConfig>,
    pub routing: Option<RoutingConfig>,
    pub server: Option<ServerConfig>,
    /// The folder of the config file; relative paths start there.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// Only the sections that `rulecheck` reads; the others are not checked.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulecheckConfig {
    source: Option<SourceConfig>,
    #[serde(default)]
    rules: Vec<PathBuf>,
    #[serde(default)]
    lists: BTreeMap<String, Vec<String>>,
    business_hours: Option<BusinessHoursConfig>,
    state: Option<IgnoredAny>,
    smtp: Option<IgnoredAny>,
    destinations: Option<IgnoredAny>,
    routing: Option<IgnoredAny>,
    server: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub openai: Option<OpenAiSource>,
    pub file: Option<FileSource>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAiSource {
    pub admin_key: String,
    pub base_url: Option<String>,
    pub poll_interval: Option<String>,
    pub lookback: Option<String>,
    pub start: Option<String>,
    pub page_size: Option<u32>,
    pub timeout: Option<String>,
    #[serde(default)]
    pub project_ids: Vec<String>,
    #[serde(default)]
    pub event_types: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSource {
    pub path: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessHoursConfig {
    pub timezone: String,
    pub days: String,
    pub hours: String,
    #[serde(default)]
    pub holidays: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    pub path: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    pub port: Option<u16>,
    pub tls: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub from: String,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum DestinationConfig {
    Slack {
        webhook_url: Option<String>,
        bot_token: Option<String>,
        channel: Option<String>,
        api_url: Option<String>,
    },
    Email {
        to: Vec<String>,
    },
    EmailDigest {
        to: Vec<String>,
        every: Option<String>,
        at: Option<String>,
    },
    Stdout {},
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    #[serde(default)]
    pub default: Vec<String>,
    #[serde(default)]
    pub severity: BTreeMap<Severity, Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: String,
}

/// What `rulecheck` takes from a config.
#[derive(Debug)]
pub struct RuleConfig {
    pub rules: Vec<PathBuf>,
    pub env: Environment,
    pub base_dir: PathBuf,
}

impl Config {
    /// Reads and checks the whole config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = read(path)?;
        let text = substitute(&text, path)?;
        let mut config: Config = parse_yaml(&text, path)?;
        config.base_dir = base_dir(path);
        config.rules = config
            .rules
            .iter()
            .map(|r| config.base_dir.join(r))
            .collect();
        Ok(config)
    }
}

impl RuleConfig {
    /// Reads the sections that rules need (`rules`, `lists`,
    /// `business_hours`); the rest of the file may use variables that are
    /// not set.
    pub fn load(path: &Path) -> Result<RuleConfig, ConfigError> {
        let text = read(path)?;
        let (text, missing) = expand(&text);
        let raw: RulecheckConfig = parse_yaml(&text, path)?;
        let _ = (
            &raw.source,
            &raw.state,
            &raw.smtp,
            &raw.destinations,
            &raw.routing,
            &raw.server,
        );
        // A variable left unset may only sit in sections rulecheck ignores.
        let mut used: Vec<&str> = raw.lists.values().flatten().map(String::as_str).collect();
        used.extend(raw.rules.iter().filter_map(|p| p.to_str()));
        if let Some(bh) = &raw.business_hours {
            used.extend([bh.timezone.as_str(), bh.days.as_str(), bh.hours.as_str()]);
            used.extend(bh.holidays.iter().map(String::as_str));
        }
        if let Some((name, line)) = missing
            .into_iter()
            .find(|(name, _)| used.iter().any(|u| u.contains(&format!("${{{name}}}"))))
        {
            return Err(ConfigError::MissingVar {
                path: path.display().to_string(),
                line,
                name,
            });
        }
        let invalid = |message: String| ConfigError::Invalid {
            path: path.display().to_string(),
            message,
        };
        let base = base_dir(path);
        let env = environment(&raw.lists, raw.business_hours.as_ref()).map_err(invalid)?;
        Ok(RuleConfig {
            rules: raw.rules.iter().map(|r| base.join(r)).collect(),
            env,
            base_dir: base,
        })
    }
}

/// Compiles the lists and business hours that rules use.
pub fn environment(
    lists: &BTreeMap<String, Vec<String>>,
    business_hours: Option<&BusinessHoursConfig>,
) -> Result<Environment, String> {
    let lists = Lists::compile(lists).map_err(|e| e.join("; "))?;
    let business_hours = match business_hours {
        Some(bh) => Some(Arc::new(
            BusinessHours::new(&bh.timezone, &bh.days, &bh.hours, &bh.holidays)
                .map_err(|e| format!("business_hours: {e}"))?,
        )),
        None => None,
    };
    Ok(Environment {
        lists,
        business_hours,
    })
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn base_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

fn parse_yaml<T: serde::de::DeserializeOwned>(text: &str, path: &Path) -> Result<T, ConfigError> {
    serde_saphyr::from_str_with_options(text, crate::rules::yaml_options()).map_err(|e| {
        let loc = e.location();
        ConfigError::Yaml {
            path: path.display().to_string(),
            line: loc.map_or(0, |l| l.line()),
            column: loc.map_or(0, |l| l.column()),
            message: crate::rules::yaml_message(&e),
        }
    })
}

/// Replaces `${NAME}` and `${NAME:-default}` with environment variables; a
/// variable that is not set is an error naming it and its line.
pub fn substitute(text: &str, path: &Path) -> Result<String, ConfigError> {
    let (out, missing) = expand(text);
    match missing.into_iter().next() {
        Some((name, line)) => Err(ConfigError::MissingVar {
            path: path.display().to_string(),
            line,
            name,
        }),
        None => Ok(out),
    }
}

/// Like [`substitute`], but a variable that is not set stays as written and
/// is returned with its line.
fn expand(text: &str) -> (String, Vec<(String, usize)>) {
    let mut out = String::with_capacity(text.len());
    let mut missing = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        match (std::env::var(name), default) {
            (Ok(v), _) => out.push_str(&v),
            (Err(_), Some(d)) => out.push_str(d),
            (Err(_), None) => {
                let line = text[..text.len() - rest.len() + start]
                    .matches('\n')
                    .count()
                    + 1;
                missing.push((name.to_owned(), line));
                out.push_str(&rest[start..start + 3 + end]);
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    (out, missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutes_variables_and_defaults() {
        // SAFETY: tests in this module do not read this variable concurrently.
        unsafe { std::env::set_var("AUDITWATCH_TEST_PORT", "2525") };
        let p = Path::new("c.yaml");
        assert_eq!(
            substitute("port: ${AUDITWATCH_TEST_PORT}", p).unwrap(),
            "port: 2525"
        );
        assert_eq!(substitute("u: ${AUDITWATCH_NOPE:-x}", p).unwrap(), "u: x");
        assert_eq!(substitute("u: ${AUDITWATCH_NOPE:-}", p).unwrap(), "u: ");
        let err = substitute("a: 1\nu: ${AUDITWATCH_NOPE}", p)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("c.yaml:2") && err.contains("AUDITWATCH_NOPE"),
            "{err}"
        );
        let (text, missing) = expand("a: 1\nu: ${AUDITWATCH_NOPE}");
        assert_eq!(text, "a: 1\nu: ${AUDITWATCH_NOPE}");
        assert_eq!(missing, vec![("AUDITWATCH_NOPE".to_owned(), 2)]);
    }
}
