//! Command line front end of the audit log history generator.
//! Parses options, writes the JSON Lines history and, on request, the incident labels.

use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use auditwatch_gen::{Incident, Options, generate};
use clap::Parser;
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

/// Generate a realistic OpenAI organization audit log history as JSON Lines.
#[derive(Parser, Debug)]
#[command(name = "auditwatch-gen", version)]
struct Args {
    /// Random seed; the same arguments always give the same output.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// First day, as a date (2026-10-19) or an RFC 3339 instant.
    #[arg(long, default_value = "2026-10-19")]
    start: String,
    /// Number of days.
    #[arg(long, default_value_t = 28)]
    days: u32,
    /// Organization size.
    #[arg(long, default_value_t = 60)]
    people: u32,
    /// The organization's IANA time zone.
    #[arg(long, default_value = "America/New_York")]
    timezone: String,
    /// Inject labelled incidents.
    #[arg(long)]
    incidents: bool,
    /// Stop after this many events.
    #[arg(long)]
    max_events: Option<u64>,
    /// Output file for the events; `-` writes to standard output.
    #[arg(long, default_value = "-")]
    out: String,
    /// Write the incident labels as a JSON array to this file.
    #[arg(long)]
    labels: Option<PathBuf>,
}

fn parse_start(s: &str) -> Result<Timestamp, String> {
    if let Ok(ts) = s.parse::<Timestamp>() {
        return Ok(ts);
    }
    let date: Date = s
        .parse()
        .map_err(|e| format!("--start {s:?}: expected a date or an RFC 3339 instant: {e}"))?;
    date.to_zoned(TimeZone::UTC)
        .map(|z| z.timestamp())
        .map_err(|e| format!("--start {s:?}: {e}"))
}

fn run(args: Args) -> Result<(), String> {
    let opts = Options {
        seed: args.seed,
        start: parse_start(&args.start)?,
        days: args.days,
        people: args.people,
        timezone: args.timezone,
        incidents: args.incidents,
        max_events: args.max_events,
    };
    let began = Instant::now();
    let inner: Box<dyn Write> = if args.out == "-" {
        Box::new(io::stdout().lock())
    } else {
        Box::new(File::create(&args.out).map_err(|e| format!("cannot create {}: {e}", args.out))?)
    };
    let mut counter = Counter {
        inner,
        lines: 0,
        bytes: 0,
    };
    let incidents = match generate(&opts, &mut counter) {
        Ok(incidents) => incidents,
        // A closed pipe (`| head`) is a normal way to stop reading.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => return Err(e.to_string()),
        Err(e) => return Err(format!("writing events: {e}")),
    };
    let secs = began.elapsed().as_secs_f64();
    eprintln!(
        "wrote {} events ({:.1} MB, {:.0} bytes/event) in {:.2} s ({:.0} events/s), {} incidents",
        counter.lines,
        counter.bytes as f64 / 1e6,
        counter.bytes as f64 / counter.lines.max(1) as f64,
        secs,
        counter.lines as f64 / secs.max(1e-9),
        incidents.len()
    );
    if let Some(path) = args.labels {
        std::fs::write(&path, labels_json(&incidents))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

/// The labels as a pretty JSON array, keys in a fixed order:
/// `name`, `description`, `effective_at`, `time` (RFC 3339, UTC), `event_ids`.
fn labels_json(incidents: &[Incident]) -> String {
    let q = |s: &str| serde_json::to_string(s).expect("strings serialize");
    let mut out = String::from("[");
    for (n, i) in incidents.iter().enumerate() {
        let time = Timestamp::from_second(i.effective_at)
            .map(|t| t.to_string())
            .unwrap_or_default();
        let ids: Vec<String> = i
            .event_ids
            .iter()
            .map(|id| format!("      {}", q(id)))
            .collect();
        out.push_str(if n == 0 { "\n" } else { ",\n" });
        out.push_str(&format!(
            "  {{\n    \"name\": {},\n    \"description\": {},\n    \"effective_at\": {},\n    \"time\": {},\n    \"event_ids\": [\n{}\n    ]\n  }}",
            q(&i.name),
            q(&i.description),
            i.effective_at,
            q(&time),
            ids.join(",\n")
        ));
    }
    out.push_str(if incidents.is_empty() { "]\n" } else { "\n]\n" });
    out
}

/// Counts lines and bytes on their way to the real output.
struct Counter {
    inner: Box<dyn Write>,
    lines: u64,
    bytes: u64,
}

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        self.lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("auditwatch-gen: {e}");
            ExitCode::FAILURE
        }
    }
}
