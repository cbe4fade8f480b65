//! `rulecheck`'s parallel path over event files: JSON Lines, JSON arrays
//! and saved list pages, plain or gzip, parsed on several threads, then
//! evaluated in event-time order by the engine's ordered half.
//!
//! The parser threads take each input in chunks of whole lines (`input`):
//! a plain file of JSON Lines is read by the thread that takes the chunk,
//! anything else (compressed input, a pipe, a JSON document) is cut by a
//! reader thread. Each parser thread parses its chunk and runs the
//! stateless half of every rule, keeping only the hits (`parse`), then
//! hands the chunk on to the ordered half (`ordered`), which restores read
//! order for line numbers and de-duplication and applies thresholds and
//! suppression in time order: whichever thread finds it free applies every
//! chunk that is next, while the other goes on parsing (`seen` finds
//! repeated ids, `ids` keeps the ids and key text the hits point into).
//! Chunks are dropped as soon as they are parsed, so memory stays bounded
//! by the hits and the ids, not by the input.

mod document;
mod ids;
mod input;
mod ordered;
mod parse;
mod seen;

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, mpsc};

use crate::engine::Evaluation;
use crate::rules::RuleSet;
use input::{Item, Source, read_inputs};
use ordered::{Handoff, Keep, Ordered};
use parse::{ChunkResult, work};

/// Where events come from.
#[derive(Debug, Clone)]
pub enum Input {
    Path(PathBuf),
    Stdin,
}

impl Input {
    pub fn name(&self) -> String {
        match self {
            Input::Path(p) => p.display().to_string(),
            Input::Stdin => "<stdin>".into(),
        }
    }

    /// The input's size in bytes (compressed, for `.gz`), when it is known
    /// before reading it: a regular file.
    pub fn size(&self) -> Option<u64> {
        match self {
            Input::Path(p) => std::fs::metadata(p)
                .ok()
                .filter(|m| m.is_file())
                .map(|m| m.len()),
            Input::Stdin => None,
        }
    }

    /// Whether the input can be read a second time: a regular file (not
    /// stdin, a pipe or a device).
    fn can_read_again(&self) -> bool {
        matches!(self, Input::Path(p) if std::fs::metadata(p).is_ok_and(|m| m.is_file()))
    }

    fn is_gzip(&self) -> bool {
        matches!(self, Input::Path(p) if p.extension().is_some_and(|x| x == "gz"))
    }
}

/// What to replay.
#[derive(Debug, Clone)]
pub struct Options {
    /// Only events at or after this time (Unix seconds).
    pub since: Option<i64>,
    /// Only events before this time (Unix seconds).
    pub until: Option<i64>,
    /// Parsing threads.
    pub threads: usize,
    /// Whether alerts carry the [`Facts`](crate::alert::Facts) of their
    /// event (for `--render`); the alert lines do not show them.
    pub facts: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            since: None,
            until: None,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            facts: false,
        }
    }
}

/// An input line that is not an audit log event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    pub file: String,
    pub line: u64,
    pub message: String,
}

/// The result of a replay.
#[derive(Debug, Default)]
pub struct Report {
    pub evaluation: Evaluation,
    /// Distinct events evaluated.
    pub events: u64,
    /// Events skipped because their id was read before.
    pub duplicates: u64,
    pub bad_lines: Vec<BadLine>,
}

/// An input that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{name}: {source}")]
pub struct ReadError {
    pub name: String,
    #[source]
    pub source: io::Error,
}

/// Replays `inputs` through `rules`. `progress` is called now and then with
/// the events and the bytes read so far.
///
/// Inputs that can be read again (regular files) keep only the matches
/// not applied yet; when they turn out not to be in time order, or to
/// repeat ids that matched, the replay stops and reads them again, sorting
/// every match. Other inputs (pipes) keep every match for that case.
pub fn replay(
    rules: &RuleSet,
    inputs: &[Input],
    opts: &Options,
    progress: &dyn Fn(u64, u64),
) -> Result<Report, ReadError> {
    let keep = if inputs.iter().all(Input::can_read_again) {
        Keep::Pending
    } else {
        Keep::All
    };
    if let Some(report) = run(rules, inputs, opts, progress, keep)? {
        return Ok(report);
    }
    tracing::info!(
        "the input is not in event-time order, or repeats events that matched: reading it again to sort every match"
    );
    Ok(run(rules, inputs, opts, progress, Keep::Sorted)?
        .expect("a replay that sorts every match needs no other reading"))
}

/// One reading of `inputs`; `None` when it stopped because it must be run
/// again with [`Keep::Sorted`].
fn run(
    rules: &RuleSet,
    inputs: &[Input],
    opts: &Options,
    progress: &dyn Fn(u64, u64),
    keep: Keep,
) -> Result<Option<Report>, ReadError> {
    let threads = opts.threads.max(1);
    let started = std::time::Instant::now();
    let (item_tx, item_rx) = mpsc::sync_channel::<Item>(threads * 2);
    // Parsed chunks' buffers go back to the reader, so that memory is
    // reused instead of being faulted in afresh for every chunk.
    let (free_tx, free_rx) = mpsc::channel::<Vec<u8>>();
    let source = Mutex::new(Source::new(inputs, item_rx, free_tx));
    let stop = AtomicBool::new(false);
    let handoff = Handoff::new(Ordered::new(rules, inputs, opts.facts, keep));
    let (events, bytes) = (AtomicU64::new(0), AtomicU64::new(0));
    let read = std::thread::scope(|s| {
        let spawn = |name: &str| std::thread::Builder::new().name(name.to_owned());
        let reader = spawn("read")
            .spawn_scoped(s, move || read_inputs(inputs, item_tx, free_rx))
            .expect("spawn the reader thread");
        // Dropped by each parser thread as it stops.
        let (running, stopped) = mpsc::channel::<()>();
        for _ in 0..threads {
            let (source, handoff, stop, running) = (&source, &handoff, &stop, running.clone());
            let (events, bytes) = (&events, &bytes);
            spawn("parse")
                .spawn_scoped(s, move || {
                    // When this thread stops (the input is read, the replay
                    // stops, or a panic), the reader thread may stop too.
                    let _close = CloseOnExit(source);
                    let next = |spare| lock(source).next(spare);
                    let deliver = |r: ChunkResult| {
                        events.fetch_add(r.events, Ordering::Relaxed);
                        bytes.fetch_add(r.bytes, Ordering::Relaxed);
                        let go = handoff.deliver(r);
                        if !go {
                            stop.store(true, Ordering::Relaxed);
                        }
                        go
                    };
                    work(rules, opts, next, deliver, stop);
                    drop(running);
                })
                .expect("spawn a parser thread");
        }
        drop(running);
        let report = || {
            progress(
                events.load(Ordering::Relaxed),
                bytes.load(Ordering::Relaxed),
            )
        };
        while let Err(mpsc::RecvTimeoutError::Timeout) =
            stopped.recv_timeout(std::time::Duration::from_millis(100))
        {
            report();
        }
        report();
        reader.join().expect("reader thread panicked")
    });
    let ordered = handoff.into_ordered();
    if ordered.must_sort() {
        return Ok(None);
    }
    if let Some(e) = lock(&source).take_error() {
        return Err(e);
    }
    read?;
    let parsed = started.elapsed();
    let report = ordered.finish();
    tracing::debug!(
        parse_ms = parsed.as_millis() as u64,
        ordered_ms = (started.elapsed() - parsed).as_millis() as u64,
        "replay phases"
    );
    Ok(report)
}

/// Locks `m`; a thread that panicked holding it leaves nothing half done
/// that matters here (the panic ends the replay).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Closes a [`Source`] when dropped.
struct CloseOnExit<'a, 'i>(&'a Mutex<Source<'i>>);

impl Drop for CloseOnExit<'_, '_> {
    fn drop(&mut self) {
        lock(self.0).close();
    }
}
