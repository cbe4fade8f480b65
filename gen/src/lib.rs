//! Generator of realistic OpenAI organization audit log history for demos, tests and benchmarks.
//! Owns the public API (`Options`, `Incident`, `generate`) and the day-by-day streaming writer.

mod benign;
mod clock;
mod event;
mod habits;
mod incidents;
mod net;
mod org;
mod people;
mod rng;

use std::io::{self, BufWriter, Write};

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::clock::Clock;
use crate::event::{Batch, NO_INCIDENT};
use crate::org::Org;

/// What to generate.
#[derive(Clone, Debug)]
pub struct Options {
    /// Seed; the same options always give byte-identical output.
    pub seed: u64,
    /// The history begins at this instant. Its UTC calendar date names the first local day;
    /// days run midnight to midnight in `timezone`, and no event is earlier than `start`.
    pub start: Timestamp,
    /// Number of local days.
    pub days: u32,
    /// Organization size at the start (at least 12 are generated). Volume scales linearly.
    pub people: u32,
    /// The organization's IANA time zone; working hours follow it, daylight saving included.
    pub timezone: String,
    /// Inject the labelled incidents.
    pub incidents: bool,
    /// Stop after writing this many events.
    pub max_events: Option<u64>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            seed: 7,
            start: "2026-10-19T00:00:00Z".parse().expect("valid timestamp"),
            days: 28,
            people: 60,
            timezone: "America/New_York".to_string(),
            incidents: false,
            max_events: None,
        }
    }
}

/// A labelled incident: the events (by id, oldest first) that make it up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incident {
    pub name: String,
    pub description: String,
    /// Unix seconds of the first event.
    pub effective_at: i64,
    pub event_ids: Vec<String>,
}

/// Writes events as JSON Lines (one compact JSON object + '\n' each), oldest first
/// (ascending effective_at), and returns the incidents injected.
///
/// Only incidents whose events were all written are returned (`max_events` may cut the
/// history short).
pub fn generate(opts: &Options, out: &mut impl Write) -> io::Result<Vec<Incident>> {
    let tz = TimeZone::get(&opts.timezone).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("time zone {:?}: {e}", opts.timezone),
        )
    })?;
    let clock = Clock::new(tz, opts.start, opts.days);
    let mut rng = rng::stream(opts.seed, 1);
    let mut irng = rng::stream(opts.seed, 2);
    let mut org = Org::new(&mut rng::stream(opts.seed, 3), opts.people);
    if opts.days >= habits::MIN_DAYS {
        habits::plan(&mut org, &clock, &mut rng::stream(opts.seed, 4));
    } else {
        benign::plan_trips(&mut org, &clock, &mut rng::stream(opts.seed, 4));
    }
    let plan = if opts.incidents {
        incidents::plan(&clock)
    } else {
        Vec::new()
    };

    let mut sink = Sink {
        w: BufWriter::with_capacity(1 << 20, out),
        written: 0,
        max: opts.max_events.unwrap_or(u64::MAX),
        start: clock.start,
        end: clock.end,
        per_incident: Vec::new(),
    };
    let mut labels: Vec<Incident> = Vec::new();
    let mut batch = Batch::default();
    for day in 0..opts.days {
        if sink.full() {
            break;
        }
        for p in plan.iter().filter(|p| p.day == day) {
            batch.tag = Some(labels.len() as u32);
            labels.push(incidents::inject(
                &mut org, &clock, &mut irng, &mut batch, p,
            ));
            sink.per_incident.push(0);
        }
        batch.tag = None;
        benign::day(&mut org, &clock, &mut rng, &mut batch, day);
        // A day of staff in zones ahead starts before the head office's: events are
        // written a day behind, so that the output still ascends.
        sink.write_until(&mut batch, clock.day_start(day))?;
    }
    sink.write_until(&mut batch, i64::MAX)?;
    sink.w.flush()?;
    let mut complete: Vec<Incident> = labels
        .into_iter()
        .zip(&sink.per_incident)
        .filter(|(inc, n)| **n as usize == inc.event_ids.len())
        .map(|(inc, _)| inc)
        .collect();
    complete.sort_by_key(|i| i.effective_at);
    Ok(complete)
}

struct Sink<W: Write> {
    w: BufWriter<W>,
    written: u64,
    max: u64,
    start: i64,
    end: i64,
    per_incident: Vec<u32>,
}

impl<W: Write> Sink<W> {
    fn full(&self) -> bool {
        self.written >= self.max
    }

    /// Sorts what is pending and writes every event earlier than `until`.
    fn write_until(&mut self, batch: &mut Batch, until: i64) -> io::Result<()> {
        batch.pending.sort_unstable_by_key(|e| (e.t, e.seq));
        let n = batch.pending.partition_point(|e| e.t < until);
        for e in batch.pending.drain(..n) {
            if self.written >= self.max || e.t < self.start || e.t >= self.end {
                continue;
            }
            self.w.write_all(e.line.as_bytes())?;
            self.written += 1;
            if e.incident != NO_INCIDENT {
                self.per_incident[e.incident as usize] += 1;
            }
        }
        Ok(())
    }
}
