//! The noise report of the default rule pack: a generated month of ordinary
//! activity in a 60-person organization, and the same month with labelled
//! incidents, replayed through the rules and config of
//! `auditwatch.yaml`; prints how many alerts ordinary activity
//! raises, per rule, and which incidents were caught; then the same for a
//! 200-person organization over a year.
//!
//! ```sh
//! cargo run --release --example noise_report
//! cargo run --release --example noise_report -- --write rules/README.md
//! ```
//!
//! With `--write FILE` the report replaces the text between
//! `<!-- noise-report:begin -->` and `<!-- noise-report:end -->` in FILE.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use auditwatch::cli::rules_doc::replace_section;
use auditwatch::config::RuleConfig;
use auditwatch::replay::{self as files, Input, Report};
use auditwatch::rules::RuleSet;
use auditwatch_gen::{Incident, Options, generate};

const SEED: u64 = 7;
const START: &str = "2026-10-05T00:00:00Z";
const DAYS: u32 = 30;
const PEOPLE: u32 = 60;
/// The larger organization, over a year.
const LARGE_PEOPLE: u32 = 200;
const LARGE_DAYS: u32 = 365;
const TIMEZONE: &str = "America/New_York";
const CONFIG: &str = "auditwatch.yaml";
const MARKER: &str = "noise-report";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("noise_report: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), String> {
    let write = parse_args()?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = RuleConfig::load(&root.join(CONFIG)).map_err(|e| e.to_string())?;
    let paths = if config.rules.is_empty() {
        vec![config.base_dir.join("rules")]
    } else {
        config.rules.clone()
    };
    let rules = RuleSet::load(&paths, &config.env).map_err(|e| e.to_string())?;

    let benign = Run::new(&rules, false, PEOPLE, DAYS)?;
    let attacked = Run::new(&rules, true, PEOPLE, DAYS)?;
    let mut report = render(&rules, &benign, &attacked);
    let large = Run::new(&rules, false, LARGE_PEOPLE, LARGE_DAYS)?;
    let large_attacked = Run::new(&rules, true, LARGE_PEOPLE, LARGE_DAYS)?;
    report.push_str(&render_large(&rules, &large, &large_attacked));

    match write {
        None => print!("{report}"),
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let updated = replace_section(&text, MARKER, &report)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            std::fs::write(&path, updated)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            eprintln!("noise_report: wrote the report into {}", path.display());
        }
    }
    Ok(())
}

/// `--write FILE`, or nothing.
fn parse_args() -> Result<Option<PathBuf>, String> {
    let usage = "usage: noise_report [--write FILE]";
    let mut args = std::env::args_os().skip(1);
    let mut write = None;
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--write") => {
                let file = args.next().ok_or(usage)?;
                write = Some(PathBuf::from(file));
            }
            Some("-h" | "--help") => {
                println!("{usage}");
                std::process::exit(0);
            }
            _ => return Err(format!("unexpected argument {arg:?}\n{usage}")),
        }
    }
    Ok(write)
}

/// One generated month, replayed.
struct Run {
    report: Report,
    incidents: Vec<Incident>,
}

impl Run {
    fn new(rules: &RuleSet, incidents: bool, people: u32, days: u32) -> Result<Run, String> {
        let opts = Options {
            seed: SEED,
            start: START.parse().map_err(|e| format!("{START}: {e}"))?,
            days,
            people,
            timezone: TIMEZONE.to_owned(),
            incidents,
            max_events: None,
        };
        let file = tempfile::Builder::new()
            .prefix("noise-report-")
            .suffix(".jsonl")
            .tempfile()
            .map_err(|e| format!("cannot create a temporary file: {e}"))?;
        let incidents =
            generate(&opts, &mut file.as_file()).map_err(|e| format!("generating: {e}"))?;
        let report = files::replay(
            rules,
            &[Input::Path(file.path().to_owned())],
            &files::Options::default(),
            &|_, _| {},
        )
        .map_err(|e| e.to_string())?;
        if !report.bad_lines.is_empty() {
            return Err(format!(
                "{} generated line(s) were not read as events",
                report.bad_lines.len()
            ));
        }
        Ok(Run { report, incidents })
    }
}

fn render(rules: &RuleSet, benign: &Run, attacked: &Run) -> String {
    let days = f64::from(DAYS);
    let alerts = &benign.report.evaluation.alerts;
    let per_day = alerts.len() as f64 / days;
    let mut out = String::new();

    let _ = writeln!(
        out,
        "Generated with `auditwatch-gen` (seed {SEED}, {PEOPLE} people, {DAYS} days from {}, \
         {TIMEZONE}) and replayed with the rules and config of `{CONFIG}`.\n",
        &START[..10]
    );
    let _ = writeln!(out, "### Ordinary activity\n");
    let _ = writeln!(
        out,
        "{} events, {} alerts: **{per_day:.1} alerts/day**.\n",
        benign.report.events,
        alerts.len()
    );

    let mut by_rule: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for s in &benign.report.evaluation.stats {
        if s.alerts > 0 {
            by_rule.insert(&s.id, (s.alerts, s.suppressed));
        }
    }
    let mut rows: Vec<(&str, u64, u64)> =
        by_rule.into_iter().map(|(id, (a, s))| (id, a, s)).collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    if rows.is_empty() {
        let _ = writeln!(out, "No rule raised an alert.\n");
    } else {
        let _ = writeln!(
            out,
            "| rule | severity | alerts | per day | repeats quieted by `suppress` |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|");
        for (id, alerts, suppressed) in &rows {
            let severity = rules
                .rules()
                .iter()
                .find(|r| r.id == *id)
                .map_or("?", |r| r.severity.as_str());
            let _ = writeln!(
                out,
                "| `{id}` | {severity} | {alerts} | {:.2} | {suppressed} |",
                *alerts as f64 / days
            );
        }
        let quiet = rules.len() - rows.len();
        let _ = writeln!(out, "\nThe other {quiet} rules raised no alert.\n");
    }

    let _ = writeln!(out, "### Incidents\n");
    let attacked_alerts = &attacked.report.evaluation.alerts;
    let incident_ids: HashSet<&str> = attacked
        .incidents
        .iter()
        .flat_map(|i| i.event_ids.iter().map(String::as_str))
        .collect();
    let on_incidents = attacked_alerts
        .iter()
        .filter(|a| {
            a.event_ids
                .iter()
                .any(|e| incident_ids.contains(e.as_str()))
        })
        .count();
    let _ = writeln!(
        out,
        "The same month with {} labelled incidents: {} events, {} alerts, {} of them on \
         incident events.\n",
        attacked.incidents.len(),
        attacked.report.events,
        attacked_alerts.len(),
        on_incidents
    );
    let _ = writeln!(out, "| incident | when ({TIMEZONE}) | events | caught by |");
    let _ = writeln!(out, "|---|---|---:|---|");
    let mut caught = 0;
    for incident in &attacked.incidents {
        let ids: HashSet<&str> = incident.event_ids.iter().map(String::as_str).collect();
        let by: BTreeSet<&str> = attacked_alerts
            .iter()
            .filter(|a| a.event_ids.iter().any(|e| ids.contains(e.as_str())))
            .map(|a| a.rule_id.as_str())
            .collect();
        let by = if by.is_empty() {
            "**missed**".to_owned()
        } else {
            caught += 1;
            by.iter()
                .map(|r| format!("`{r}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {by} |",
            incident.name,
            local_time(incident.effective_at),
            incident.event_ids.len()
        );
    }
    let _ = writeln!(
        out,
        "\n**{caught} of {} incidents caught; {per_day:.1} benign alerts/day.**",
        attacked.incidents.len()
    );
    out
}

/// The larger organization: benign alerts per day, per rule and in all, the
/// busiest day, and how many of its incidents were caught.
fn render_large(rules: &RuleSet, benign: &Run, attacked: &Run) -> String {
    let days = f64::from(LARGE_DAYS);
    let alerts = &benign.report.evaluation.alerts;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n### A {LARGE_PEOPLE}-person organization over {LARGE_DAYS} days\n\n\
         The same generator and seed, {LARGE_PEOPLE} people from {}: {} events, {} benign alerts: \
         **{:.2} alerts/day**.\n",
        &START[..10],
        benign.report.events,
        alerts.len(),
        alerts.len() as f64 / days
    );
    let mut per_day: BTreeMap<i64, u64> = BTreeMap::new();
    for a in alerts {
        *per_day
            .entry(a.effective_at.div_euclid(86_400))
            .or_default() += 1;
    }
    let busiest = per_day.values().max().copied().unwrap_or(0);
    let quiet_days = LARGE_DAYS as usize - per_day.len().min(LARGE_DAYS as usize);
    let _ = writeln!(
        out,
        "The busiest day had {busiest} alerts; {quiet_days} of the {LARGE_DAYS} days had none.\n"
    );
    let mut rows: Vec<(&str, u64)> = benign
        .report
        .evaluation
        .stats
        .iter()
        .filter(|s| s.alerts > 0)
        .map(|s| (s.id.as_str(), s.alerts))
        .collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let _ = writeln!(out, "| rule | severity | alerts | per day |");
    let _ = writeln!(out, "|---|---|---:|---:|");
    for (id, n) in &rows {
        let severity = rules
            .rules()
            .iter()
            .find(|r| r.id == *id)
            .map_or("?", |r| r.severity.as_str());
        let _ = writeln!(
            out,
            "| `{id}` | {severity} | {n} | {:.2} |",
            *n as f64 / days
        );
    }
    let attacked_alerts = &attacked.report.evaluation.alerts;
    let missed: Vec<&str> = attacked
        .incidents
        .iter()
        .filter(|incident| {
            let ids: HashSet<&str> = incident.event_ids.iter().map(String::as_str).collect();
            !attacked_alerts
                .iter()
                .any(|a| a.event_ids.iter().any(|e| ids.contains(e.as_str())))
        })
        .map(|incident| incident.name.as_str())
        .collect();
    let caught = attacked.incidents.len() - missed.len();
    let _ = writeln!(
        out,
        "\nWith its {} labelled incidents: **{caught} of {} caught; {:.2} benign alerts/day.**",
        attacked.incidents.len(),
        attacked.incidents.len(),
        alerts.len() as f64 / days
    );
    if !missed.is_empty() {
        let _ = writeln!(out, "\nMissed: {}.", missed.join(", "));
    }
    out
}

/// `Wed 2026-10-21 14:20` in the organization's time zone.
fn local_time(ts: i64) -> String {
    jiff::Timestamp::from_second(ts)
        .ok()
        .and_then(|t| {
            let tz = jiff::tz::TimeZone::get(TIMEZONE).ok()?;
            Some(t.to_zoned(tz).strftime("%a %Y-%m-%d %H:%M").to_string())
        })
        .unwrap_or_else(|| ts.to_string())
}
