//! `auditwatch validate`: load the config (every section) and its rules,
//! report every problem or summarize what was loaded, without contacting
//! any server and without printing a secret.

use std::path::PathBuf;

use super::{EXIT_OK, EXIT_USAGE};
use crate::config::SourceConfig;
use crate::rules::RuleSet;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The config file (default: ./auditwatch.yaml).
    #[arg(short = 'c', long, value_name = "CONFIG")]
    pub config: Option<PathBuf>,
}

pub fn run(args: &Args) -> u8 {
    let (path, config) = match super::load_config(args.config.as_deref(), "validate") {
        Ok(c) => c,
        Err(code) => return code,
    };
    let env = match config.environment() {
        Ok(env) => env,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_USAGE;
        }
    };
    let rules = match RuleSet::load(&config.rule_paths(), &env) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            eprintln!(
                "auditwatch validate: {} in the rules",
                super::table::plural(e.problems.len() as u64, "problem", "problems")
            );
            return EXIT_USAGE;
        }
    };
    if !rules.warnings().is_empty() {
        for w in rules.warnings() {
            eprintln!("{w}");
        }
        eprintln!(
            "auditwatch validate: {} in the rules: names the audit log schema does not know",
            super::table::plural(rules.warnings().len() as u64, "warning", "warnings")
        );
        return EXIT_USAGE;
    }
    if let Err(problems) = crate::notify::check_rule_destinations(&rules, &config) {
        for p in &problems {
            eprintln!("{p}");
        }
        return EXIT_USAGE;
    }
    // Builds every destination (addresses, URLs, schedules) without
    // contacting any of them.
    // (The mail pool needs a runtime to exist in, not to run.)
    let runtime = match super::runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("auditwatch validate: {e}");
            return super::EXIT_FAILED;
        }
    };
    let built = {
        let _inside = runtime.enter();
        crate::notify::destinations(&config).map(drop)
    };
    if let Err(e) = built {
        eprintln!("{}: {e}", path.display());
        return EXIT_USAGE;
    }
    let enabled = rules.rules().iter().filter(|r| r.enabled).count();
    let tests: usize = rules.rules().iter().map(|r| r.tests.len()).sum();
    println!("config {}: ok", path.display());
    match &config.source {
        Some(SourceConfig::OpenAi(o)) => println!(
            "source: audit log API at {} (poll every {}s, lookback {}s, {} per page{})",
            o.base_url.0,
            o.poll_interval.0,
            o.lookback.0,
            o.page_size,
            if o.tenant_events {
                ", with tenant events"
            } else {
                ""
            }
        ),
        Some(SourceConfig::File(f)) => println!("source: file {}", f.path.display()),
        None => println!("source: none (only rulecheck can run)"),
    }
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
        let abroad: Vec<String> = bh
            .countries
            .iter()
            .map(|(c, z)| format!("{c} {z}"))
            .collect();
        let abroad = if abroad.is_empty() {
            String::new()
        } else {
            format!(" (local in {})", abroad.join(", "))
        };
        println!(
            "business hours: {} {} {}{abroad}",
            bh.days, bh.hours, bh.timezone
        );
    }
    println!("state: {}", config.state.path.display());
    let destinations: Vec<String> = config
        .destinations
        .iter()
        .map(|(name, d)| format!("{name} ({})", d.kind()))
        .collect();
    println!("destinations: {}", destinations.join(", "));
    let route = |names: &[crate::config::Located<String>]| {
        names
            .iter()
            .map(|n| n.value.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("routing: default [{}]", route(&config.routing.default));
    for (severity, names) in &config.routing.severity {
        println!("routing: {severity} [{}]", route(names));
    }
    EXIT_OK
}
