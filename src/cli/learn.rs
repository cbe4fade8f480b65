//! `auditwatch learn`: seeds the watcher's `first_seen` rules from the
//! history of a time range before it starts (or at any time).

use std::path::PathBuf;

use super::watch::Failure;
use crate::store::SqliteStore;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The config file (default: ./auditwatch.yaml).
    #[arg(short = 'c', long, value_name = "CONFIG")]
    pub config: Option<PathBuf>,
    /// Where the history starts: an RFC 3339 time, a Unix timestamp, or a
    /// duration back from now (`30d`).
    #[arg(long, value_name = "WHEN")]
    pub since: String,
    /// Where it ends (default: now).
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,
}

pub fn run(args: &Args) -> u8 {
    super::run_async("auditwatch learn", learn(args))
}

async fn learn(args: &Args) -> Result<(), Failure> {
    let setup = super::watch::setup(args.config.as_deref())?;
    let (since, until) = super::export::range(&args.since, args.until.as_deref())?;
    let source = crate::source::Source::new(&setup.source).map_err(Failure::usage)?;
    let mut store =
        SqliteStore::open_for_watcher(&setup.config.state.path).map_err(Failure::failed)?;
    let learned = crate::watch::learn::learn(&setup.rules, &source, since, until, &mut store)
        .await
        .map_err(Failure::failed)?;
    let rules = setup
        .rules
        .rules()
        .iter()
        .filter(|r| r.first_seen.is_some())
        .count();
    eprintln!(
        "auditwatch learn: {} read; {} new to {}",
        super::table::plural(learned.events, "event", "events"),
        super::table::plural(learned.values as u64, "value", "values"),
        super::table::plural(rules as u64, "first_seen rule", "first_seen rules"),
    );
    Ok(())
}
