//! Hot reload: the rules and lists read again on SIGHUP or when their files
//! change, swapped in only when the whole new set loads.
//!
//! A reload reads the config file again for `rules`, `lists`,
//! `business_hours` and `incidents` (the other sections take effect at the
//! next start),
//! loads and compiles every rule, and checks that the destinations rules
//! name exist. Any problem keeps the running set; the problems are logged
//! with their `file:line:col` and reported once to the default route.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::alert::Alert;
use crate::config::Config;
use crate::rules::{RuleSet, Severity};

/// The rule id of the notice that a reload failed.
pub const RELOAD_FAILED: &str = "auditwatch.reload.failed";

/// Why a reload was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Signal,
    FileChange,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Signal => "SIGHUP",
            Trigger::FileChange => "file change",
        }
    }
}

/// Loads the rules of `config` with its lists and business hours, checking
/// the destinations they name against `running` (whose destinations are
/// the ones in use). Every problem is a line of the error.
pub fn load_rules(config: &Config, running: &Config) -> Result<RuleSet, Vec<String>> {
    let env = config.environment().map_err(|e| vec![e.to_string()])?;
    let rules = RuleSet::load(&config.rule_paths(), &env)
        .map_err(|e| e.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>())?;
    crate::notify::check_rule_destinations(&rules, running)?;
    Ok(rules)
}

/// Reads the config at `running.path` again and loads its rules.
pub fn reload(running: &Config) -> Result<(Config, RuleSet), Vec<String>> {
    let config = Config::load(&running.path).map_err(|e| vec![e.to_string()])?;
    let rules = load_rules(&config, running)?;
    Ok((config, rules))
}

/// Reloads `watcher`'s rules and lists from `config`'s file: a set that
/// loads is put in force (and handed to `swapped`), one that does not is
/// logged, counted and reported once to the default route. True when a new
/// set is in force.
pub fn apply(
    trigger: Trigger,
    config: &mut Config,
    watcher: &mut super::Watcher,
    notice: &mut FailureNotice,
    swapped: impl FnOnce(std::sync::Arc<RuleSet>),
) -> Result<bool, super::WatchError> {
    let now = crate::time::now();
    let t = crate::telemetry::telemetry();
    match reload(config) {
        Ok((new_config, rules)) => {
            for w in rules.warnings() {
                tracing::warn!("{}", crate::text::plain(&w.to_string()));
            }
            let rules = std::sync::Arc::new(rules);
            let dropped = watcher.reload(rules.clone());
            for id in &dropped {
                tracing::info!(rule_id = %id, "threshold and suppression state dropped: the rule is gone or its logic changed");
            }
            swapped(rules.clone());
            t.reloaded(now, Ok(rules.len()));
            notice.ok();
            tracing::info!(
                trigger = trigger.as_str(),
                rules = rules.len(),
                state_dropped = dropped.len(),
                "rules reloaded"
            );
            config.rules = new_config.rules;
            config.lists = new_config.lists;
            config.business_hours = new_config.business_hours;
            config.incidents = new_config.incidents;
            Ok(true)
        }
        Err(problems) => {
            for p in &problems {
                tracing::error!(problem = %crate::text::plain(p), "rule reload failed");
            }
            tracing::error!(
                trigger = trigger.as_str(),
                problems = problems.len(),
                rules = watcher.rules().len(),
                "rule reload failed; the rules loaded before stay in force"
            );
            t.reloaded(now, Err(problems.first().cloned().unwrap_or_default()));
            if let Some(alert) = notice.failed(&problems, now) {
                watcher.raise_to_default(alert)?;
            }
            Ok(false)
        }
    }
}

/// Remembers the last failure, so that the same broken set is reported to
/// the default route once, not at every change or signal.
#[derive(Debug, Default)]
pub struct FailureNotice {
    last: Option<Vec<String>>,
}

impl FailureNotice {
    /// A reload succeeded: the next failure is news again.
    pub fn ok(&mut self) {
        self.last = None;
    }

    /// A reload failed with `problems`: the notice to send, unless the same
    /// problems were reported last time.
    pub fn failed(&mut self, problems: &[String], now: i64) -> Option<Alert> {
        if self.last.as_deref() == Some(problems) {
            return None;
        }
        self.last = Some(problems.to_vec());
        let shown: Vec<String> = problems
            .iter()
            .take(20)
            .map(|p| crate::text::plain(p).into_owned())
            .collect();
        let more = problems.len().saturating_sub(shown.len());
        let mut summary = format!(
            "{} in the new rules; the rules loaded before stay in force until the files are fixed.\n{}",
            if problems.len() == 1 {
                "1 problem".to_owned()
            } else {
                format!("{} problems", problems.len())
            },
            shown.join("\n")
        );
        if more > 0 {
            summary.push_str(&format!("\n… and {more} more (see the watcher's log)"));
        }
        Some(super::heartbeat::watcher_alert(
            RELOAD_FAILED,
            Severity::High,
            "Rule reload failed",
            summary,
            "Raised by the watcher itself when the rules or lists could not be reloaded, not by an audit event.",
            now,
        ))
    }
}

/// Watches the config file and the rule files and folders, and sends one
/// [`Trigger::FileChange`] per burst of changes (debounced by `quiet`).
/// Only the config file itself and `*.yaml`, `*.yml` and `*.rhai` files
/// under the rule paths count, so the state file beside them does not.
pub fn watch_files(
    config: &Config,
    quiet: Duration,
    tx: tokio::sync::mpsc::Sender<Trigger>,
) -> Result<FileWatch, notify::Error> {
    use notify::RecursiveMode;
    let config_file = absolute(&config.path);
    let config_named = std::path::absolute(&config.path).unwrap_or_default();
    let rule_paths: Vec<PathBuf> = config.rule_paths().iter().map(|p| absolute(p)).collect();
    let relevant = {
        let config_file = config_file.clone();
        let rule_paths = rule_paths.clone();
        move |path: &Path| {
            path == config_file
                || path == config_named
                || (rule_paths.iter().any(|r| path.starts_with(r))
                    && matches!(
                        path.extension().and_then(|e| e.to_str()),
                        Some("yaml" | "yml" | "rhai")
                    ))
        }
    };
    let mut debouncer = notify_debouncer_mini::new_debouncer(
        quiet,
        move |events: notify_debouncer_mini::DebounceEventResult| {
            let Ok(events) = events else { return };
            if events.iter().any(|e| relevant(&e.path)) {
                // A full channel already holds a reload request.
                let _ = tx.try_send(Trigger::FileChange);
            }
        },
    )?;
    let watcher = debouncer.watcher();
    if let Some(dir) = config_file.parent() {
        watcher.watch(dir, RecursiveMode::NonRecursive)?;
    }
    for path in &rule_paths {
        if path.exists() {
            watcher.watch(path, RecursiveMode::Recursive)?;
        }
    }
    Ok(FileWatch {
        _debouncer: debouncer,
    })
}

/// Keeps the file watch alive; dropping it stops the watch.
pub struct FileWatch {
    _debouncer: notify_debouncer_mini::Debouncer<notify::RecommendedWatcher>,
}

fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| std::path::absolute(path).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_failure_is_reported_once_until_a_reload_succeeds() {
        let mut n = FailureNotice::default();
        let p = vec!["rules/a.yaml:3:7: unknown key".to_owned()];
        let a = n.failed(&p, 100).expect("first failure is reported");
        assert_eq!(a.rule_id, RELOAD_FAILED);
        assert!(a.summary.contains("rules/a.yaml:3:7: unknown key"));
        assert!(n.failed(&p, 200).is_none(), "same problems: once");
        let q = vec!["rules/a.yaml:4:1: other".to_owned()];
        assert!(n.failed(&q, 300).is_some(), "new problems are news");
        n.ok();
        assert!(n.failed(&q, 400).is_some(), "after a success, again");
    }
}
