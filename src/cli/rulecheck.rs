//! `rulecheck`: dry-run rules over historical events, or run their inline
//! tests, and print what the watcher would have sent.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

use clap::ValueEnum;

use super::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::alert::Alert;
use crate::engine::{Batch, Evaluator, RuleState, RuleStats, testcase};
use crate::event::format_time;
use crate::replay::{self as files, Input, Report};
use crate::rules::RuleSet;
use crate::text::plain;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub source: super::RuleSource,
    /// Only the rule with this id (repeatable).
    #[arg(long = "rule", value_name = "ID")]
    pub rule_ids: Vec<String>,
    /// Output format; default: table on a terminal, jsonl otherwise.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Only events at or after WHEN (RFC 3339, Unix seconds, or a duration back from now like 7d).
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Only events before WHEN.
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,
    /// Run the inline tests of every loaded rule instead.
    #[arg(long)]
    pub test: bool,
    /// With --test: also fail rules without a case that alerts and one that does not.
    #[arg(long)]
    pub require_tests: bool,
    /// Exit with status 1 when an alert was raised.
    #[arg(long)]
    pub fail_on_alert: bool,
    /// Exit with status 1 when a rule failed on an event (a script or a
    /// summary template).
    #[arg(long)]
    pub fail_on_error: bool,
    /// Event types and field paths the audit log schema does not know are
    /// errors (exit 2) instead of warnings.
    #[arg(long)]
    pub deny_warnings: bool,
    /// A malformed input line is an error (exit 2) instead of being skipped.
    #[arg(long)]
    pub strict: bool,
    /// Read the events from the API in the config, for the time range.
    #[arg(long)]
    pub from_api: bool,
    /// Print, for each alert, exactly what a destination of this kind would
    /// be sent (one JSON line per alert).
    #[arg(long, value_enum, value_name = "KIND")]
    pub render: Option<super::render::Medium>,
    /// Add the destinations each alert is routed to (needs a config).
    #[arg(long)]
    pub routes: bool,
    /// Add the incident each alert belongs to (alerts that share an actor
    /// or key close together; the config's `incidents` section).
    #[arg(long)]
    pub incidents: bool,
    /// Colour in the table: auto (on a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, value_enum, default_value_t = super::table::ColorChoice::Auto, value_name = "WHEN")]
    pub color: super::table::ColorChoice,
    /// Also list, in the summary, the rules that matched nothing.
    #[arg(long)]
    pub verbose: bool,
    /// Parsing threads (default: one per core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Event files (JSON Lines, JSON arrays or saved list pages, optionally .gz); `-` is stdin.
    #[arg(value_name = "EVENTS")]
    pub events: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Jsonl,
    Json,
}

/// Runs `rulecheck`; returns the exit status.
pub fn run(args: &Args) -> u8 {
    match run_inner(args) {
        Ok(code) => code,
        Err(Usage(msg)) => {
            eprintln!("{msg}");
            EXIT_USAGE
        }
    }
}

/// An error that is the user's to fix: exit status 2.
struct Usage(String);

impl Usage {
    fn new(msg: impl std::fmt::Display) -> Usage {
        Usage(format!("rulecheck: {msg}"))
    }
}

impl<E: std::fmt::Display> From<E> for Usage {
    fn from(e: E) -> Self {
        Usage::new(e)
    }
}

fn run_inner(args: &Args) -> Result<u8, Usage> {
    let rules = load_rules(args)?;
    if args.test {
        return Ok(run_tests(&rules, args.require_tests));
    }
    if args.require_tests {
        return Err(Usage::new("--require-tests goes with --test"));
    }
    let now = crate::time::now();
    let opts = files::Options {
        since: args
            .since
            .as_deref()
            .map(|s| crate::time::parse_when(s, now))
            .transpose()
            .map_err(Usage::new)?,
        until: args
            .until
            .as_deref()
            .map(|s| crate::time::parse_when(s, now))
            .transpose()
            .map_err(Usage::new)?,
        threads: args
            .threads
            .unwrap_or_else(|| files::Options::default().threads),
        facts: args.render.is_some(),
    };
    let started = Instant::now();
    let report = if args.from_api {
        from_api(args, &rules)?
    } else {
        let inputs = inputs(args)?;
        let total = inputs.iter().map(Input::size).sum::<Option<u64>>();
        let bar = progress_bar(total);
        let report = files::replay(&rules, &inputs, &opts, &|n, bytes| {
            if let Some(b) = &bar {
                let secs = started.elapsed().as_secs_f64().max(1e-3);
                b.set_message(format!(
                    "{} events read, {} events/s",
                    n,
                    round_rate(n as f64 / secs)
                ));
                if total.is_some() {
                    b.set_position(bytes);
                }
            }
        })?;
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        report
    };
    let elapsed = started.elapsed();
    report_problems(&rules, &report);
    if args.strict && !report.bad_lines.is_empty() {
        eprintln!(
            "rulecheck: {} with --strict",
            super::table::plural(
                report.bad_lines.len() as u64,
                "malformed input line",
                "malformed input lines"
            )
        );
        return Ok(EXIT_USAGE);
    }
    let format = args.format.unwrap_or(if io::stdout().is_terminal() {
        Format::Table
    } else {
        Format::Jsonl
    });
    let rendering = if args.render.is_some() || args.routes {
        let config = rule_config(args)?;
        Some(super::render::Rendering::new(config.as_ref(), args.routes).map_err(Usage::new)?)
    } else {
        None
    };
    let printed = match (args.render, &rendering) {
        (Some(medium), Some(r)) => {
            let stdout = io::stdout();
            let mut out = io::BufWriter::new(stdout.lock());
            super::render::print(&mut out, r, &rules, &report.evaluation.alerts, medium)
                .and_then(|()| out.flush())
        }
        _ => {
            let routes = |a: &Alert| rendering.as_ref().and_then(|r| r.routes(&rules, a));
            print_alerts(format, &report, &routes, args.incidents, args.color)
        }
    };
    if let Err(e) = printed
        && e.kind() != io::ErrorKind::BrokenPipe
    {
        return Err(Usage::new(format!("cannot write output: {e}")));
    }
    print_summary(&report, elapsed, args.verbose);
    if report.events == 0 && !report.bad_lines.is_empty() {
        eprintln!(
            "rulecheck: not one line of {} read is an audit log event: is this the right file? (JSON Lines of audit log objects, a JSON array of them, or saved list pages)",
            super::table::plural(report.bad_lines.len() as u64, "line", "lines")
        );
        return Ok(EXIT_USAGE);
    }
    let code = if args.fail_on_alert && !report.evaluation.alerts.is_empty() {
        EXIT_FAILED
    } else if args.fail_on_error && !report.evaluation.errors.is_empty() {
        eprintln!(
            "rulecheck: {} with --fail-on-error",
            super::table::plural(
                report.evaluation.errors.len() as u64,
                "evaluation error",
                "evaluation errors"
            )
        );
        EXIT_FAILED
    } else {
        EXIT_OK
    };
    // The process ends now and its memory goes back whole: freeing every
    // alert, id and rule one by one first would only make it end later.
    std::mem::forget(report);
    std::mem::forget(rules);
    Ok(code)
}

/// Reads the events of `--since`/`--until` from the config's source, in
/// ascending slices as `export` does, and evaluates them as one batch.
fn from_api(args: &Args, rules: &RuleSet) -> Result<Report, Usage> {
    if !args.events.is_empty() {
        return Err(Usage::new("--from-api reads the API: give no event files"));
    }
    let since = args
        .since
        .as_deref()
        .ok_or_else(|| Usage::new("--from-api needs --since WHEN"))?;
    let fail = |f: super::watch::Failure| Usage(format!("rulecheck: {}", f.message));
    let source = super::export::source_of(args.source.config.as_deref()).map_err(fail)?;
    let (since, until) = super::export::range(since, args.until.as_deref()).map_err(fail)?;
    let runtime = super::runtime().map_err(Usage::new)?;
    let mut events = Vec::new();
    runtime
        .block_on(crate::source::read_range(
            &source,
            since,
            until,
            |_, slice| {
                events.extend(slice);
                Ok(())
            },
        ))
        .map_err(Usage::new)?;
    let parsed = events
        .iter()
        .filter_map(|e| crate::event::Event::parse(&e.json).ok())
        .collect();
    let batch = Batch::new(parsed);
    let evaluation = Evaluator::new(rules).evaluate(&batch, &mut RuleState::new());
    Ok(Report {
        evaluation,
        events: batch.len() as u64,
        duplicates: batch.duplicates() as u64,
        bad_lines: Vec::new(),
    })
}

fn load_rules(args: &Args) -> Result<RuleSet, Usage> {
    let (mut rules, _) = args.source.load().map_err(|e| match e {
        super::RulesError::Config(e) => Usage::new(e),
        super::RulesError::Rules(e) => {
            let n = e.problems.len();
            Usage(format!(
                "{e}\nrulecheck: {} in the rules; nothing was run",
                super::table::plural(n as u64, "problem", "problems")
            ))
        }
    })?;
    for w in rules.warnings() {
        eprintln!("{w}");
    }
    if args.deny_warnings && !rules.warnings().is_empty() {
        return Err(Usage(format!(
            "rulecheck: {} in the rules with --deny-warnings; nothing was run",
            super::table::plural(rules.warnings().len() as u64, "warning", "warnings")
        )));
    }
    if !args.rule_ids.is_empty() {
        let ids: Vec<String> = rules.rules().iter().map(|r| r.id.clone()).collect();
        let unknown = rules.retain_ids(&args.rule_ids);
        if !unknown.is_empty() {
            let said: Vec<String> = unknown
                .iter()
                .map(
                    |u| match crate::rules::schema::suggest(u, ids.iter().map(String::as_str)) {
                        Some(s) => format!("`{u}` (did you mean `{s}`?)"),
                        None => format!("`{u}`"),
                    },
                )
                .collect();
            return Err(Usage::new(format!("no rule with id {}", said.join(", "))));
        }
    }
    Ok(rules)
}

fn inputs(args: &Args) -> Result<Vec<Input>, Usage> {
    if args.events.is_empty() {
        if io::stdin().is_terminal() {
            return Err(Usage::new(
                "no events: give event files, or `-` to read standard input",
            ));
        }
        return Ok(vec![Input::Stdin]);
    }
    Ok(args
        .events
        .iter()
        .map(|e| {
            if e == "-" {
                Input::Stdin
            } else {
                Input::Path(PathBuf::from(e))
            }
        })
        .collect())
}

/// Progress on a terminal: a percentage and an ETA when the input's size
/// is known (plain files), a spinner otherwise; never on a pipe.
fn progress_bar(total: Option<u64>) -> Option<indicatif::ProgressBar> {
    if !io::stderr().is_terminal() {
        return None;
    }
    let (bar, template) = match total {
        Some(t) => (
            indicatif::ProgressBar::new(t),
            "{spinner} {percent:>3}% [{bar:24}] {msg}, {elapsed} (ETA {eta})",
        ),
        None => (
            indicatif::ProgressBar::new_spinner(),
            "{spinner} {msg}, {elapsed}",
        ),
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner())
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    Some(bar)
}

/// A rate rounded to two significant digits: `1.3M`, `840k`, `95`.
fn round_rate(rate: f64) -> String {
    let round2 = |x: f64| {
        let digits = x.abs().log10().floor() as i32;
        let f = 10f64.powi(digits - 1);
        (x / f).round() * f
    };
    match rate {
        r if r >= 1e6 => format!("{:.1}M", round2(r) / 1e6),
        r if r >= 1e3 => format!("{:.0}k", round2(r) / 1e3),
        r if r >= 1.0 => format!("{:.0}", round2(r)),
        _ => "0".into(),
    }
}

/// Bad lines and evaluation errors, on stderr, a few of each.
fn report_problems(rules: &RuleSet, report: &Report) {
    const SHOWN: usize = 20;
    for b in report.bad_lines.iter().take(SHOWN) {
        eprintln!("{}:{}: {}", plain(&b.file), b.line, plain(&b.message));
    }
    if report.bad_lines.len() > SHOWN {
        eprintln!(
            "... and {} more malformed lines",
            report.bad_lines.len() - SHOWN
        );
    }
    let mut per_rule = vec![0usize; rules.len()];
    for e in &report.evaluation.errors {
        per_rule[e.rule] += 1;
        if per_rule[e.rule] <= 3 {
            eprintln!(
                "rule {}: event {}: evaluation error: {}",
                rules.rules()[e.rule].id,
                plain(&e.event_id),
                plain(&e.message)
            );
        }
    }
    for (i, n) in per_rule.iter().enumerate() {
        if *n > 3 {
            eprintln!(
                "rule {}: ... {} evaluation errors in all",
                rules.rules()[i].id,
                n
            );
        }
    }
}

/// The config `-c` names (else `./auditwatch.yaml` when it exists).
fn rule_config(args: &Args) -> Result<Option<crate::config::RuleConfig>, Usage> {
    let default = std::path::Path::new(super::DEFAULT_CONFIG);
    let path = args
        .source
        .config
        .as_deref()
        .or_else(|| default.is_file().then_some(default));
    path.map(crate::config::RuleConfig::load)
        .transpose()
        .map_err(Usage::new)
}

/// An alert line with its destinations (`--routes`).
#[derive(serde::Serialize)]
struct Routed<'a> {
    #[serde(flatten)]
    alert: &'a Alert,
    #[serde(skip_serializing_if = "Option::is_none")]
    destinations: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    incident: Option<&'a str>,
}

/// The columns of `rows` at `cols`, in that order.
fn pick<const N: usize>(rows: &[[String; 6]], cols: [usize; N]) -> Vec<[String; N]> {
    rows.iter().map(|r| cols.map(|c| r[c].clone())).collect()
}

fn print_alerts(
    format: Format,
    report: &Report,
    routes: &(dyn Fn(&Alert) -> Option<Vec<String>> + Sync),
    incidents: bool,
    color: super::table::ColorChoice,
) -> io::Result<()> {
    let incident = |a: &'_ Alert| -> Option<String> {
        incidents.then(|| a.facts.incident.clone().unwrap_or_default())
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let alerts = &report.evaluation.alerts;
    match format {
        Format::Jsonl => {
            let line = |out: &mut dyn Write, a: &Alert| -> io::Result<()> {
                serde_json::to_writer(
                    &mut *out,
                    &Routed {
                        alert: a,
                        destinations: routes(a),
                        incident: incidents.then_some(a.facts.incident.as_deref()).flatten(),
                    },
                )?;
                out.write_all(b"\n")
            };
            // Many alerts are written as text on two threads, the second
            // half into memory while the first goes out.
            let (first, second) = match alerts.len() {
                n if n >= 4096 => alerts.split_at(n / 2),
                _ => (&alerts[..], &alerts[..0]),
            };
            let second = std::thread::scope(|s| {
                let rest = (!second.is_empty()).then(|| {
                    s.spawn(|| {
                        let mut text = Vec::new();
                        second.iter().try_for_each(|a| line(&mut text, a))?;
                        Ok::<_, io::Error>(text)
                    })
                });
                first.iter().try_for_each(|a| line(&mut out, a))?;
                rest.map_or(Ok(Vec::new()), |h| {
                    h.join().expect("the alert writer thread panicked")
                })
            })?;
            out.write_all(&second)?;
        }
        Format::Json => {
            #[derive(serde::Serialize)]
            struct Doc<'a> {
                alerts: Vec<Routed<'a>>,
                rules: &'a [RuleStats],
                events: u64,
                bad_lines: usize,
            }
            let doc = Doc {
                alerts: alerts
                    .iter()
                    .map(|a| Routed {
                        alert: a,
                        destinations: routes(a),
                        incident: incidents.then_some(a.facts.incident.as_deref()).flatten(),
                    })
                    .collect(),
                rules: &report.evaluation.stats,
                events: report.events,
                bad_lines: report.bad_lines.len(),
            };
            serde_json::to_writer_pretty(&mut out, &doc)?;
            out.write_all(b"\n")?;
        }
        Format::Table => {
            let rows: Vec<[String; 6]> = alerts
                .iter()
                .map(|a| {
                    // Values from events never reach the terminal raw.
                    let mut summary = plain(&a.summary).into_owned();
                    if a.suppressed > 0 {
                        summary.push_str(&format!(" (+{} suppressed)", a.suppressed));
                    }
                    [
                        format_time(a.effective_at),
                        a.severity.to_string(),
                        a.rule_id.clone(),
                        routes(a).map(|r| r.join(",")).unwrap_or_default(),
                        plain(&incident(a).unwrap_or_default()).into_owned(),
                        summary,
                    ]
                })
                .collect();
            let width = super::table::width();
            let color = color.enabled();
            let paint =
                |col: usize, cell: &str| (col == 1).then(|| super::table::severity_style(cell));
            let paint: Option<super::table::Paint<'_>> = if color { Some(&paint) } else { None };
            let with_routes = alerts.first().is_some_and(|a| routes(a).is_some());
            let w = &mut out;
            match (with_routes, incidents) {
                (true, true) => super::table::write(
                    w,
                    ["TIME", "SEVERITY", "RULE", "ROUTES", "INCIDENT", "SUMMARY"],
                    &rows,
                    width,
                    paint,
                )?,
                (true, false) => super::table::write(
                    w,
                    ["TIME", "SEVERITY", "RULE", "ROUTES", "SUMMARY"],
                    &pick(&rows, [0, 1, 2, 3, 5]),
                    width,
                    paint,
                )?,
                (false, true) => super::table::write(
                    w,
                    ["TIME", "SEVERITY", "RULE", "INCIDENT", "SUMMARY"],
                    &pick(&rows, [0, 1, 2, 4, 5]),
                    width,
                    paint,
                )?,
                (false, false) => super::table::write(
                    w,
                    ["TIME", "SEVERITY", "RULE", "SUMMARY"],
                    &pick(&rows, [0, 1, 2, 5]),
                    width,
                    paint,
                )?,
            }
        }
    }
    out.flush()
}

/// Writes aligned columns; the last column is not padded.
fn write_table<const N: usize>(
    out: &mut impl Write,
    head: [&str; N],
    rows: &[[String; N]],
) -> io::Result<()> {
    let mut widths = head.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |out: &mut dyn Write, cells: [&str; N]| -> io::Result<()> {
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == N {
                writeln!(out, "{cell}")?;
            } else {
                write!(out, "{cell:<w$}  ", w = widths[i])?;
            }
        }
        Ok(())
    };
    line(out, head)?;
    for row in rows {
        line(out, std::array::from_fn(|i| row[i].as_str()))?;
    }
    Ok(())
}

/// The per-rule summary, on stderr.
fn print_summary(report: &Report, elapsed: std::time::Duration, verbose: bool) {
    use super::table::plural;
    let stats = &report.evaluation.stats;
    // Most alerts first; rules that matched nothing only when asked.
    let mut shown: Vec<&RuleStats> = stats
        .iter()
        .filter(|s| verbose || s.matched + s.errors > 0)
        .collect();
    shown.sort_by(|a, b| {
        (b.alerts, b.matched, b.errors)
            .cmp(&(a.alerts, a.matched, a.errors))
            .then(a.id.cmp(&b.id))
    });
    let rows: Vec<[String; 5]> = shown
        .iter()
        .map(|s| {
            [
                s.id.clone(),
                s.matched.to_string(),
                s.alerts.to_string(),
                s.suppressed.to_string(),
                s.errors.to_string(),
            ]
        })
        .collect();
    // One write for the whole table: stderr is not buffered.
    let mut err = io::BufWriter::new(io::stderr().lock());
    let _ = writeln!(err);
    let _ = write_table(
        &mut err,
        ["RULE", "MATCHED", "ALERTS", "SUPPRESSED", "ERRORS"],
        &rows,
    );
    let quiet = stats.iter().filter(|s| s.matched + s.errors == 0).count();
    let secs = elapsed.as_secs_f64().max(1e-9);
    let _ = writeln!(
        err,
        "\n{} ({} skipped, {}), {} ({} matched nothing{}), {}, in {:.2}s ({:.0} events/s{})",
        plural(report.events, "event", "events"),
        plural(report.duplicates, "duplicate", "duplicates"),
        plural(
            report.bad_lines.len() as u64,
            "malformed line",
            "malformed lines"
        ),
        plural(stats.len() as u64, "rule", "rules"),
        quiet,
        if verbose || quiet == 0 {
            ""
        } else {
            "; --verbose lists them"
        },
        plural(report.evaluation.alerts.len() as u64, "alert", "alerts"),
        secs,
        report.events as f64 / secs,
        peak_memory()
            .map(|kib| format!(", peak memory {} MiB", kib / 1024))
            .unwrap_or_default(),
    );
}

/// The process's peak resident memory in KiB, where the system tells it.
fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs every inline test; prints one line per case and a closing count.
fn run_tests(rules: &RuleSet, require: bool) -> u8 {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let (mut passed, mut failed) = (0usize, 0usize);
    for (i, rule) in rules.rules().iter().enumerate() {
        for r in testcase::run_rule(rules, i) {
            if r.passed {
                passed += 1;
                let _ = writeln!(out, "ok    {} :: {}", r.rule_id, r.name);
            } else {
                failed += 1;
                let _ = writeln!(out, "FAIL  {} :: {}: {}", r.rule_id, r.name, r.detail);
            }
        }
        if require {
            let alerts = rule.tests.iter().any(|t| t.expects_alert());
            let quiet = rule.tests.iter().any(|t| t.expects_quiet());
            if !(alerts && quiet) {
                failed += 1;
                let missing = match (alerts, quiet) {
                    (false, false) => "a case that alerts and a case that does not",
                    (false, true) => "a case that alerts",
                    _ => "a case that does not alert",
                };
                let _ = writeln!(
                    out,
                    "FAIL  {} :: needs {missing} ({}:{})",
                    rule.id,
                    rule.file.display(),
                    rule.line
                );
            }
        }
    }
    let _ = writeln!(out, "rulecheck: {passed} passed, {failed} failed");
    if failed > 0 { EXIT_FAILED } else { EXIT_OK }
}

#[cfg(test)]
mod tests {
    use super::round_rate;

    #[test]
    fn rates_are_rounded_to_two_digits() {
        assert_eq!(round_rate(1_460_828.0), "1.5M");
        assert_eq!(round_rate(843_210.0), "840k");
        assert_eq!(round_rate(95.4), "95");
        assert_eq!(round_rate(0.2), "0");
    }
}
