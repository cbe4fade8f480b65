//! `rulecheck`'s parallel path over event files: JSON Lines, JSON arrays
//! and saved list pages, plain or gzip, parsed on several threads, then
//! evaluated in event-time order by the engine's ordered half.
//!
//! A reader thread cuts each input into chunks of whole lines (`input`:
//! mapped from plain files, read from pipes and compressed input); parser
//! threads parse them and run the stateless half of every rule, keeping
//! only the hits (`parse`); the calling thread restores read order for line
//! numbers and de-duplication and applies thresholds and suppression in
//! time order (`ordered`, with `seen` for repeated ids and `ids` for the
//! ids and key text the hits point into). Chunks are dropped as soon as
//! they are parsed, so memory stays bounded by the hits and the ids, not by
//! the input.

mod document;
mod ids;
mod input;
mod ordered;
mod parse;
mod seen;

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use crate::engine::Evaluation;
use crate::rules::RuleSet;
use input::{Chunk, read_inputs};
use ordered::{Keep, Ordered};
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
    let (chunk_tx, chunk_rx) = mpsc::sync_channel::<Chunk>(threads * 2);
    // Held by the parser threads only, so that the reader sees the channel
    // close when they stop early.
    let chunk_rx = Arc::new(Mutex::new(chunk_rx));
    let stop = AtomicBool::new(false);
    let mut ordered = Ordered::new(rules, inputs, opts.facts, keep);
    let read = std::thread::scope(|s| {
        let (res_tx, res_rx) = mpsc::channel::<ChunkResult>();
        // Parsed chunks' buffers go back to the reader, so that memory is
        // reused instead of being faulted in afresh for every chunk.
        let (free_tx, free_rx) = mpsc::channel::<Vec<u8>>();
        let spawn = |name: &str| std::thread::Builder::new().name(name.to_owned());
        let reader = spawn("read")
            .spawn_scoped(s, move || read_inputs(inputs, chunk_tx, free_rx))
            .expect("spawn the reader thread");
        for _ in 0..threads {
            let (rx, tx, free, stop) = (chunk_rx.clone(), res_tx.clone(), free_tx.clone(), &stop);
            spawn("parse")
                .spawn_scoped(s, move || work(rules, opts, &rx, tx, free, stop))
                .expect("spawn a parser thread");
        }
        drop(chunk_rx);
        drop(free_tx);
        drop(res_tx);
        // Chunks finish in any order; they are taken in read order, and their
        // matches go to the rule state while later chunks are still parsed.
        let mut waiting: BTreeMap<usize, ChunkResult> = BTreeMap::new();
        let (mut events, mut bytes) = (0, 0);
        for r in res_rx {
            events += r.events;
            bytes += r.bytes;
            progress(events, bytes);
            waiting.insert(r.index, r);
            while let Some(r) = waiting.remove(&ordered.next_chunk()) {
                ordered.release(r);
            }
            if ordered.must_sort() {
                stop.store(true, Ordering::Relaxed);
                break;
            }
        }
        reader.join().expect("reader thread panicked")
    });
    if ordered.must_sort() {
        return Ok(None);
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
