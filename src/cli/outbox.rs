//! `auditwatch outbox`: the deliveries still queued or failed, and putting
//! failed ones back in the queue; the watcher sends them at its next round.

use std::path::PathBuf;

use super::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::store::{SqliteStore, Store};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The config file (default: ./auditwatch.yaml); its `state` is read.
    #[arg(short = 'c', long, value_name = "CONFIG")]
    pub config: Option<PathBuf>,
    /// Only failed deliveries.
    #[arg(long)]
    pub failed: bool,
    /// Queue a failed delivery again: its id, or `all`.
    #[arg(long, value_name = "ID|all")]
    pub retry: Option<String>,
}

pub fn run(args: &Args) -> u8 {
    let (_, config) = match super::load_config(args.config.as_deref(), "outbox") {
        Ok(c) => c,
        Err(code) => return code,
    };
    if !config.state.path.exists() {
        eprintln!(
            "auditwatch outbox: no state file at {} yet: the watcher creates it on its first run",
            config.state.path.display()
        );
        return EXIT_USAGE;
    }
    let mut store = match SqliteStore::open(&config.state.path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("auditwatch outbox: {e}");
            return EXIT_FAILED;
        }
    };
    if let Some(which) = &args.retry {
        let id = match which.as_str() {
            "all" => None,
            n => match n.parse::<i64>() {
                Ok(id) => Some(id),
                Err(_) => {
                    eprintln!("auditwatch outbox: --retry takes a delivery id or `all`, not {n:?}");
                    return EXIT_USAGE;
                }
            },
        };
        return match store.requeue(id, crate::time::now()) {
            Ok(n) => {
                println!("{n} failed deliveries queued again");
                EXIT_OK
            }
            Err(e) => {
                eprintln!("auditwatch outbox: {e}");
                EXIT_FAILED
            }
        };
    }
    let deliveries = match store.deliveries(args.failed) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("auditwatch outbox: {e}");
            return EXIT_FAILED;
        }
    };
    println!("ID\tSTATUS\tDESTINATION\tATTEMPTS\tRULE\tEVENT\tLAST ERROR");
    for d in &deliveries {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
            d.id,
            d.status.as_str(),
            d.destination,
            d.attempts,
            d.alert.rule_id,
            crate::text::plain(&d.alert.event_id),
            crate::text::plain(d.last_error.as_deref().unwrap_or("")),
        );
    }
    eprintln!("{} deliveries", deliveries.len());
    EXIT_OK
}
