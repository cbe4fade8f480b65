//! Command-line front ends: argument parsing and output only; the work is
//! done by the library modules.

mod export;
mod health;
mod learn;
mod notify_test;
mod outbox;
pub mod render;
pub mod rulecheck;
pub mod rules_doc;
pub mod table;
mod validate;
mod watch;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Exit status: success.
pub const EXIT_OK: u8 = 0;
/// Exit status: a test failed, or `--fail-on-alert` and an alert was raised.
pub const EXIT_FAILED: u8 = 1;
/// Exit status: bad usage, config, rules or (with `--strict`) input.
pub const EXIT_USAGE: u8 = 2;

/// Watches the OpenAI organization audit log and alerts on risky changes.
#[derive(Debug, Parser)]
#[command(name = "auditwatch", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub log: LogArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Dry-run rules against historical events (the same as the `rulecheck` binary).
    Rulecheck(rulecheck::Args),
    /// Poll the audit log, evaluate every new event once, and deliver alerts.
    Watch(watch::Args),
    /// Load the config and rules, and report every problem or what was loaded.
    Validate(validate::Args),
    /// Write the events of a time range as JSON Lines, oldest first.
    Export(export::Args),
    /// Seed the `first_seen` rules from the history of a time range.
    Learn(learn::Args),
    /// List queued and failed deliveries, and queue failed ones again.
    Outbox(outbox::Args),
    /// Send a sample alert to one destination and print what it answered.
    NotifyTest(notify_test::Args),
    /// Ask a running watcher's /healthz (exit 0 healthy, 1 not).
    Health(health::Args),
    /// Print a Markdown table of the rules, or write it between the markers of a file.
    RulesDoc(rules_doc::Args),
}

/// Logging flags shared by every command.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// Log format on stderr (`RUST_LOG` filters what is logged).
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Sets up `tracing` on stderr; `default` is the level when `RUST_LOG` is
/// not set.
pub fn init_logging(args: &LogArgs, default: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match args.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Runs the `auditwatch` binary.
pub fn main_auditwatch() -> ExitCode {
    let cli = Cli::parse();
    let level = match cli.command {
        Command::Watch(_) | Command::Export(_) | Command::Learn(_) => "info",
        _ => "warn",
    };
    init_logging(&cli.log, level);
    ExitCode::from(match cli.command {
        Command::Watch(args) => watch::run(&args),
        Command::Export(args) => export::run(&args),
        Command::Learn(args) => learn::run(&args),
        Command::Outbox(args) => outbox::run(&args),
        Command::NotifyTest(args) => notify_test::run(&args),
        Command::Health(args) => health::run(&args),
        Command::Rulecheck(args) => rulecheck::run(&args),
        Command::Validate(args) => validate::run(&args),
        Command::RulesDoc(args) => rules_doc::run(&args),
    })
}

/// Runs the `rulecheck` binary.
pub fn main_rulecheck() -> ExitCode {
    #[derive(Parser)]
    #[command(
        name = "rulecheck",
        version,
        about = "Dry-run auditwatch rules against historical audit log events"
    )]
    struct RulecheckCli {
        #[command(flatten)]
        log: LogArgs,
        #[command(flatten)]
        args: rulecheck::Args,
    }
    let cli = RulecheckCli::parse();
    init_logging(&cli.log, "warn");
    ExitCode::from(rulecheck::run(&cli.args))
}

/// The async runtime of the commands that talk to servers: two worker
/// threads are plenty for one poller and a few delivery workers.
pub(crate) fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

/// Runs a command's async body on a new runtime; a failure is printed as
/// `PREFIX: message` and gives its exit status.
fn run_async(
    prefix: &str,
    body: impl std::future::Future<Output = Result<(), watch::Failure>>,
) -> u8 {
    let runtime = match runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("auditwatch: cannot start: {e}");
            return EXIT_FAILED;
        }
    };
    match runtime.block_on(body) {
        Ok(()) => EXIT_OK,
        Err(f) => {
            eprintln!("{prefix}: {}", f.message);
            f.code
        }
    }
}

/// The config a command uses: `-c`, else `./auditwatch.yaml` when it exists.
pub(crate) fn config_path(given: Option<&std::path::Path>) -> Result<std::path::PathBuf, String> {
    match given {
        Some(p) => Ok(p.to_owned()),
        None if std::path::Path::new(DEFAULT_CONFIG).is_file() => Ok(DEFAULT_CONFIG.into()),
        None => Err(format!(
            "no config: give one with -c CONFIG (there is no ./{DEFAULT_CONFIG} here)"
        )),
    }
}

/// The config of a command (`-c`, else `./auditwatch.yaml`), or the exit
/// status after saying why it cannot be read.
pub(crate) fn load_config(
    given: Option<&std::path::Path>,
    command: &str,
) -> Result<(std::path::PathBuf, crate::config::Config), u8> {
    let path = config_path(given).map_err(|e| {
        eprintln!("auditwatch {command}: {e}");
        EXIT_USAGE
    })?;
    let config = crate::config::Config::load(&path).map_err(|e| {
        eprintln!("{e}");
        EXIT_USAGE
    })?;
    Ok((path, config))
}

/// Why a command could not load its rules.
pub enum RulesError {
    Config(crate::config::ConfigError),
    Rules(crate::rules::LoadError),
}

/// The config used when no `-c` is given, if it exists.
pub const DEFAULT_CONFIG: &str = "auditwatch.yaml";

/// Where a command's rules come from: `-r` and `-c`, read the same way by
/// every command that loads rules.
#[derive(Debug, Clone, clap::Args)]
pub struct RuleSource {
    /// A rules file or folder (repeatable); default: the config's `rules`, else ./rules.
    #[arg(short = 'r', long = "rules", value_name = "RULES")]
    pub rules: Vec<std::path::PathBuf>,
    /// A config file: lists, business hours, rule folders and, with
    /// --from-api, the API source (default: ./auditwatch.yaml when it exists).
    #[arg(short = 'c', long, value_name = "CONFIG")]
    pub config: Option<std::path::PathBuf>,
}

impl RuleSource {
    /// Loads the rules: the config (`-c`, else `./auditwatch.yaml` when it
    /// exists) gives lists, business hours and the default rule paths; `-r`
    /// paths win; else `./rules`. Returns the rules and the paths they were
    /// read from.
    pub fn load(&self) -> Result<(crate::rules::RuleSet, Vec<std::path::PathBuf>), RulesError> {
        load_rules(self.config.as_deref(), &self.rules)
    }
}

fn load_rules(
    config: Option<&std::path::Path>,
    rules: &[std::path::PathBuf],
) -> Result<(crate::rules::RuleSet, Vec<std::path::PathBuf>), RulesError> {
    use crate::config::RuleConfig;
    use crate::rules::{Environment, RuleSet};
    let default = std::path::Path::new(DEFAULT_CONFIG);
    let config = config.or_else(|| default.is_file().then_some(default));
    let config = config
        .map(RuleConfig::load)
        .transpose()
        .map_err(RulesError::Config)?;
    let env = config
        .as_ref()
        .map(|c| c.env.clone())
        .unwrap_or_else(Environment::default);
    let paths = if !rules.is_empty() {
        rules.to_vec()
    } else if let Some(c) = config.as_ref().filter(|c| !c.rules.is_empty()) {
        c.rules.clone()
    } else {
        vec![std::path::PathBuf::from("rules")]
    };
    let set = RuleSet::load(&paths, &env).map_err(RulesError::Rules)?;
    Ok((set, paths))
}
