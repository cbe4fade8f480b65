//! `auditwatch watch`: set up the watcher from the config and run it until
//! SIGINT/SIGTERM (or one cycle with `--once`), with one delivery worker per
//! destination.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{EXIT_FAILED, EXIT_USAGE};
use crate::config::{Config, SourceConfig, StartAt};
use crate::notify::{self, Destination, Destinations, Routes, SharedStore};
use crate::rules::RuleSet;
use crate::source::Source;
use crate::store::{SqliteStore, Store};
use crate::watch::reload::{FailureNotice, Trigger};
use crate::watch::{Timing, WatchError, Watcher};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The config file (default: ./auditwatch.yaml).
    #[arg(short = 'c', long, value_name = "CONFIG")]
    pub config: Option<PathBuf>,
    /// Run one poll cycle, deliver what it raised, and exit.
    #[arg(long)]
    pub once: bool,
    /// Print alerts to stdout instead of delivering them, and leave the
    /// state file as it was.
    #[arg(long)]
    pub dry_run: bool,
}

/// A reason to stop, with its exit status.
pub(super) struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn usage(message: impl std::fmt::Display) -> Failure {
        Failure {
            code: EXIT_USAGE,
            message: message.to_string(),
        }
    }

    pub fn failed(message: impl std::fmt::Display) -> Failure {
        Failure {
            code: EXIT_FAILED,
            message: message.to_string(),
        }
    }
}

pub fn run(args: &Args) -> u8 {
    super::run_async("auditwatch", watch(args))
}

/// What `watch` and the other commands that poll need from a config.
pub(super) struct Setup {
    pub config: Config,
    pub rules: Arc<RuleSet>,
    pub source: SourceConfig,
}

/// Loads the config, its rules and its source; every problem is a usage
/// error.
pub(super) fn setup(config: Option<&std::path::Path>) -> Result<Setup, Failure> {
    let path = super::config_path(config).map_err(Failure::usage)?;
    let config = Config::load(&path).map_err(Failure::usage)?;
    let rules = crate::watch::reload::load_rules(&config, &config).map_err(|problems| {
        let n = problems.len();
        Failure::usage(format!(
            "{}\nauditwatch: {} in the rules; nothing was run",
            problems.join("\n"),
            super::table::plural(n as u64, "problem", "problems")
        ))
    })?;
    for w in rules.warnings() {
        tracing::warn!("{}", crate::text::plain(&w.to_string()));
    }
    let source = config.source.clone().ok_or_else(|| {
        Failure::usage(format!(
            "{}: the config has no `source`: add `source.openai` (the audit log API) or `source.file`",
            path.display()
        ))
    })?;
    Ok(Setup {
        config,
        rules: Arc::new(rules),
        source,
    })
}

/// How often and how far back the source is read.
pub(super) fn timing(source: &SourceConfig) -> Timing {
    match source {
        SourceConfig::OpenAi(o) => Timing {
            lookback: o.lookback.0,
            start: o.start,
            poll_interval: o.poll_interval.duration(),
        },
        SourceConfig::File(f) => Timing {
            lookback: 15 * 60,
            start: StartAt::At(0),
            poll_interval: f.poll_interval.duration(),
        },
    }
}

async fn watch(args: &Args) -> Result<(), Failure> {
    let Setup {
        config,
        rules,
        source,
    } = setup(args.config.as_deref())?;
    let store: Box<dyn Store> = if args.dry_run {
        Box::new(SqliteStore::copy_in_memory(&config.state.path).map_err(Failure::failed)?)
    } else {
        Box::new(SqliteStore::open_for_watcher(&config.state.path).map_err(Failure::failed)?)
    };
    let store: SharedStore = Arc::new(Mutex::new(store));
    let (destinations, routes): (Destinations, Routes) = if args.dry_run {
        (
            Destinations {
                immediate: vec![Arc::new(notify::Stdout::new("dry-run")) as Arc<dyn Destination>],
                digests: Vec::new(),
            },
            Routes::only("dry-run"),
        )
    } else {
        if config.destinations.is_empty() {
            return Err(Failure::usage(format!(
                "{}: no destinations: add one (for example `console: {{type: stdout}}`) and route to it with `routing.default`",
                config.path.display()
            )));
        }
        (
            notify::destinations(&config).map_err(Failure::usage)?,
            Routes::new(&config),
        )
    };
    let timing = timing(&source);
    let source = Source::new(&source).map_err(Failure::usage)?;
    let mut watcher = Watcher::new(rules.clone(), source, store.clone(), routes, timing)
        .map_err(Failure::failed)?;
    tracing::info!(
        rules = rules.len(),
        state = %config.state.path.display(),
        dry_run = args.dry_run,
        "watcher started"
    );

    keep_writes_failing_not_fatal();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    tokio::spawn(shutdown_signal(stop_tx.clone()));

    if args.once {
        let mut stop = stop_rx.clone();
        let polled = tokio::select! {
            r = watcher.poll() => Some(r),
            _ = stop.changed() => None,
        };
        match polled {
            None => tracing::info!("stopped before the poll finished; nothing of it was committed"),
            Some(r) => {
                let polled = r.map_err(failure)?;
                crate::telemetry::telemetry().poll_ok(
                    crate::time::now(),
                    polled.read,
                    polled.evaluated,
                    polled.newest,
                );
                tracing::info!(
                    events = polled.evaluated,
                    alerts = polled.alerts,
                    "poll committed"
                );
            }
        }
        for d in &destinations.immediate {
            notify::deliver_due(d.as_ref(), &store)
                .await
                .map_err(Failure::failed)?;
        }
        for d in &destinations.digests {
            d.send_if_due(&store).await.map_err(Failure::failed)?;
        }
        return Ok(());
    }

    let server = match (&config.server, args.dry_run) {
        (Some(s), false) => {
            let status = Arc::new(crate::server::Status {
                store: store.clone(),
                rules: std::sync::RwLock::new(rules.clone()),
                destinations: config.destinations.keys().cloned().collect(),
                poll_interval: timing.poll_interval,
                token: s.token.clone(),
            });
            Some((
                crate::server::serve(&s.listen, status.clone(), stop_rx.clone())
                    .await
                    .map_err(Failure::usage)?,
                status,
            ))
        }
        _ => None,
    };
    let mut workers: Vec<_> = destinations
        .immediate
        .iter()
        .map(|d| {
            tokio::spawn(notify::run_worker(
                d.clone(),
                store.clone(),
                watcher.wake.clone(),
                stop_rx.clone(),
            ))
        })
        .collect();
    for d in &destinations.digests {
        workers.push(tokio::spawn(notify::digest::run(
            d.clone(),
            store.clone(),
            stop_rx.clone(),
        )));
    }
    let mut heartbeat =
        crate::watch::heartbeat::Heartbeat::new(config.heartbeat.as_ref(), crate::time::now());
    crate::telemetry::telemetry().rules_loaded(rules.len());
    // Reload requests: SIGHUP and changes to the config or rule files.
    let (reload_tx, mut reload_rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(hangup_signal(reload_tx.clone()));
    let mut files = watch_files(&config, reload_tx.clone());
    let mut failure_notice = FailureNotice::default();
    let mut config = config;
    let mut stop = stop_rx.clone();
    let result = loop {
        let polled = tokio::select! {
            r = watcher.poll() => r,
            _ = stop.changed() => {
                tracing::info!("stopping: the poll in progress is abandoned without a commit");
                break Ok(());
            }
        };
        match polled {
            Ok(p) => {
                let now = crate::time::now();
                crate::telemetry::telemetry().poll_ok(now, p.read, p.evaluated, p.newest);
                let notices = heartbeat.poll_ok(now, p.evaluated);
                if !notices.is_empty()
                    && let Err(e) = watcher.raise(notices)
                {
                    break Err(failure(e));
                }
                tracing::info!(
                    read = p.read,
                    events = p.evaluated,
                    alerts = p.alerts,
                    "poll committed"
                )
            }
            Err(e) if is_fatal(&e) => break Err(failure(e)),
            Err(e) => {
                let notices = heartbeat.poll_failed(crate::time::now(), &e.to_string());
                if !notices.is_empty()
                    && let Err(e) = watcher.raise(notices)
                {
                    break Err(failure(e));
                }
                crate::telemetry::telemetry().poll_failed(
                    match &e {
                        WatchError::Source(_) => "source_error",
                        WatchError::Store(_) => "store_error",
                        WatchError::State(_) => "state_error",
                    },
                    &e.to_string(),
                );
                tracing::warn!(error = %e, "poll failed; nothing of it was committed, the same window is read again next time")
            }
        }
        let next_poll = tokio::time::Instant::now() + timing.poll_interval;
        let stopped = loop {
            tokio::select! {
                _ = tokio::time::sleep_until(next_poll) => break None,
                _ = stop.changed() => break Some(Ok(())),
                Some(trigger) = reload_rx.recv() => {
                    let reloaded = crate::watch::reload::apply(
                        trigger,
                        &mut config,
                        &mut watcher,
                        &mut failure_notice,
                        |rules| {
                            if let Some((_, status)) = &server {
                                status.set_rules(rules);
                            }
                        },
                    );
                    match reloaded {
                        Ok(true) => files = watch_files(&config, reload_tx.clone()),
                        Ok(false) => {}
                        Err(e) => break Some(Err(failure(e))),
                    }
                }
            }
        };
        if let Some(result) = stopped {
            break result;
        }
    };
    // Workers stop too (on a fatal error as well), after their in-flight send.
    let _ = stop_tx.send(true);
    for w in workers {
        match tokio::time::timeout(Duration::from_secs(30), w).await {
            Ok(Ok(Err(e))) => tracing::error!(error = %e, "a delivery worker stopped"),
            Ok(_) => {}
            Err(_) => tracing::warn!("a delivery did not finish in time; it stays queued"),
        }
    }
    drop(files);
    if let Some((server, _)) = server {
        let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    }
    tracing::info!("watcher stopped");
    result
}

/// Watches the config and rule files for changes; a watch that cannot be
/// set up is logged, and SIGHUP still reloads.
fn watch_files(
    config: &Config,
    tx: tokio::sync::mpsc::Sender<Trigger>,
) -> Option<crate::watch::reload::FileWatch> {
    match crate::watch::reload::watch_files(config, Duration::from_millis(500), tx) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the rule files for changes; reload with SIGHUP");
            None
        }
    }
}

/// Asks for a reload at every SIGHUP.
async fn hangup_signal(tx: tokio::sync::mpsc::Sender<Trigger>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the rules");
            let _ = tx.try_send(Trigger::Signal);
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tx;
    }
}

fn is_fatal(e: &WatchError) -> bool {
    match e {
        WatchError::Source(s) => s.is_fatal(),
        WatchError::Store(_) | WatchError::State(_) => true,
    }
}

fn failure(e: WatchError) -> Failure {
    Failure::failed(e)
}

/// A file size limit (`ulimit -f`) that a state file write exceeds sends
/// SIGXFSZ, which would kill the process without a word: take the signal,
/// so that the write fails and the store reports a full disk instead.
fn keep_writes_failing_not_fatal() {
    #[cfg(unix)]
    {
        const SIGXFSZ: i32 = 25;
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut s) = signal(SignalKind::from_raw(SIGXFSZ)) {
            tokio::spawn(async move { while s.recv().await.is_some() {} });
        }
    }
}

/// Turns the stop flag on at SIGINT or SIGTERM.
async fn shutdown_signal(stop: Arc<tokio::sync::watch::Sender<bool>>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("stop requested");
    let _ = stop.send(true);
}
