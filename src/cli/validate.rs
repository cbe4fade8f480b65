//! `auditwatch validate`: load the config and its rules, report every
//! problem or summarize what was loaded, without contacting any server.

use std::path::PathBuf;

use super::{EXIT_OK, EXIT_USAGE};
use crate::config::{self, Config};
use crate::rules::RuleSet;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The config file.
    #[arg(short = 'c', long, value_name = "CONFIG")]
    pub config: PathBuf,
}

pub fn run(args: &Args) -> u8 {
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_USAGE;
        }
    };
    let env = match config::environment(&config.lists, config.business_hours.as_ref()) {
        Ok(env) => env,
        Err(e) => {
            eprintln!("{}: {e}", args.config.display());
            return EXIT_USAGE;
        }
    };
    let paths = if config.rules.is_empty() {
        vec![config.base_dir.join("rules")]
    } else {
        config.rules.clone()
    };
    let rules = match RuleSet::load(&paths, &env) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_USAGE;
        }
    };
    let enabled = rules.rules().iter().filter(|r| r.enabled).count();
    let tests: usize = rules.rules().iter().map(|r| r.tests.len()).sum();
    println!("config {}: ok", args.config.display());
    println!(
        "rules: {} loaded ({} enabled), {} inline tests",
        rules.len(),
        enabled,
        tests
    );
    println!(
        "lists: {}",
        env.lists.names().collect::<Vec<_>>().join(", ")
    );
    if let Some(bh) = &config.business_hours {
        println!("business hours: {} {} {}", bh.days, bh.hours, bh.timezone);
    }
    println!(
        "destinations: {}",
        config
            .destinations
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    );
    EXIT_OK
}
