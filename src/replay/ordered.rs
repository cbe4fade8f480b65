//! The ordered half of a replay: chunks taken in read order, bad lines
//! numbered, repeated ids dropped, and hits fed to the rule state in
//! event-time order, by whichever parser thread hands on a chunk while it
//! is free.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use rustc_hash::FxHashSet;

use super::ids::{ChunkIds, ChunkText};
use super::lock;
use super::parse::ChunkResult;
use super::seen::SeenIds;
use super::{BadLine, Input, Report};
use crate::engine::check::Hit;
use crate::engine::tally::{Tally, hit_order};
use crate::engine::{EvalError, EventNo, RuleState};
use crate::rules::RuleSet;

/// The ordered half of a replay: takes the chunks in read order, numbers
/// bad lines, drops events whose id was read before, and feeds the matches
/// to the rule state in event-time order.
///
/// Inputs are usually already in time order; then each chunk's matches are
/// applied as soon as the chunk is taken (all but those of its last second,
/// which the next chunk may share). A match that comes before one already
/// applied shows that the input is not in order, and so does an id read
/// twice whose later reading matched a rule: the state must then be built
/// from all matches, sorted. What happens then depends on [`Keep`].
pub(super) struct Ordered<'r, 'i> {
    rules: &'r RuleSet,
    ids: ChunkIds<'i>,
    /// Which id hashes were read, roughly (see [`SeenIds`]).
    seen: SeenIds,
    events: u64,
    duplicates: u64,
    bad_lines: Vec<BadLine>,
    lines_before: u64,
    current_file: usize,
    state: RuleState,
    tally: Tally<'r>,
    /// Sorted matches not applied yet (those of the latest second).
    held: Vec<Hit>,
    /// Every match taken so far, for a rebuild; the applied ones in order
    /// (only when every match is kept).
    all: Vec<Vec<Hit>>,
    keep: Keep,
    /// Events that matched a rule while their id hash had been read before:
    /// only these can be repeats whose matches were applied.
    suspects_hit: Vec<EventNo>,
    /// The chunks before this one have no key text left (see
    /// [`Ordered::drop_applied_keys`]).
    keys_dropped: usize,
    /// The last match applied, for the order check.
    last: Option<Hit>,
    in_order: bool,
    /// Whether alerts carry their facts.
    facts: bool,
    /// Evaluation errors, by event number.
    errors: Vec<(EventNo, EvalError)>,
}

/// The ordered half as the parser threads share it. Chunks are parsed in
/// any order; whichever thread hands one on while the ordered half is free
/// takes it and applies every chunk that is next in read order, and the
/// other thread goes on parsing. A parser thread never waits for the
/// ordered half, and no thread beside the parser threads is kept busy.
pub(super) struct Handoff<'r, 'i> {
    /// Parsed chunks not applied yet, by index.
    waiting: Mutex<BTreeMap<usize, ChunkResult>>,
    ordered: Mutex<Ordered<'r, 'i>>,
    /// The index of the chunk the ordered half takes next, readable
    /// without its lock.
    next: AtomicUsize,
}

impl<'r, 'i> Handoff<'r, 'i> {
    pub fn new(ordered: Ordered<'r, 'i>) -> Self {
        Handoff {
            waiting: Mutex::new(BTreeMap::new()),
            ordered: Mutex::new(ordered),
            next: AtomicUsize::new(0),
        }
    }

    /// Hands on a parsed chunk, and applies what is next in read order
    /// unless another thread does already; false when the replay must stop
    /// (see [`Ordered::must_sort`]).
    pub fn deliver(&self, r: ChunkResult) -> bool {
        lock(&self.waiting).insert(r.index, r);
        // A chunk handed on by the other thread just before this one let go
        // of the ordered half is taken now rather than with the next chunk.
        while let Ok(mut ordered) = self.ordered.try_lock() {
            apply_ready(&self.waiting, &self.next, &mut ordered);
            if ordered.must_sort() {
                return false;
            }
            drop(ordered);
            if !lock(&self.waiting).contains_key(&self.next.load(Ordering::Acquire)) {
                break;
            }
        }
        true
    }

    /// The ordered half, once no thread hands on chunks any more, with
    /// every chunk applied that can be.
    pub fn into_ordered(self) -> Ordered<'r, 'i> {
        let Handoff {
            waiting,
            ordered,
            next,
        } = self;
        let mut ordered = ordered.into_inner().unwrap_or_else(|e| e.into_inner());
        apply_ready(&waiting, &next, &mut ordered);
        ordered
    }
}

/// Applies the waiting chunks that are next in read order, and notes
/// which one is next then.
fn apply_ready(
    waiting: &Mutex<BTreeMap<usize, ChunkResult>>,
    next: &AtomicUsize,
    ordered: &mut Ordered<'_, '_>,
) {
    while !ordered.must_sort() {
        let Some(r) = lock(waiting).remove(&ordered.next_chunk()) else {
            break;
        };
        ordered.release(r);
        next.store(ordered.next_chunk(), Ordering::Release);
    }
}

/// Which matches a replay keeps for a rebuild.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Keep {
    /// Only those not applied yet. The inputs can be read again: a replay
    /// that needs a rebuild stops and is run again with [`Keep::Sorted`].
    Pending,
    /// Every match, for a rebuild at the end (inputs that cannot be read
    /// again, such as a pipe).
    All,
    /// Every match, all applied at the end, sorted: the second reading.
    Sorted,
}

impl<'r, 'i> Ordered<'r, 'i> {
    pub fn new(rules: &'r RuleSet, inputs: &'i [Input], facts: bool, keep: Keep) -> Self {
        Ordered {
            rules,
            ids: ChunkIds::new(inputs),
            // Events are rarely shorter than 512 bytes: a table sized for
            // that seldom has to grow (compressed inputs may make it grow).
            seen: SeenIds::for_ids(inputs.iter().filter_map(Input::size).sum::<u64>() / 512),
            events: 0,
            duplicates: 0,
            bad_lines: Vec::new(),
            lines_before: 0,
            current_file: usize::MAX,
            state: RuleState::new(),
            tally: Tally::new(rules).with_facts(facts),
            facts,
            held: Vec::new(),
            all: Vec::new(),
            keep,
            suspects_hit: Vec::new(),
            keys_dropped: 0,
            last: None,
            in_order: keep != Keep::Sorted,
            errors: Vec::new(),
        }
    }

    /// The index of the chunk to take next.
    pub fn next_chunk(&self) -> usize {
        self.ids.chunks.len()
    }

    /// Takes the next chunk in read order.
    pub fn release(&mut self, r: ChunkResult) {
        if r.file != self.current_file {
            self.current_file = r.file;
            self.lines_before = 0;
        }
        let name = self.ids.inputs[r.file].name();
        for (line, message) in r.bad {
            let line = if r.document {
                line
            } else {
                self.lines_before + line
            };
            self.bad_lines.push(BadLine {
                file: name.clone(),
                line,
                message,
            });
        }
        self.lines_before += r.lines;

        self.events += r.id_spans.len() as u64;
        let marked = self.seen.suspects().len();
        self.seen.mark_chunk(r.index, &r.id_spans);
        // A table that grows later only finds fewer suspects, never others.
        if let [_, ..] = &self.seen.suspects()[marked..] {
            let new: FxHashSet<EventNo> = self.seen.suspects()[marked..].iter().copied().collect();
            let hit = r.hits.iter().map(|h| h.event).filter(|e| new.contains(e));
            self.suspects_hit.extend(hit);
        }
        self.ids.chunks.push(ChunkText {
            ids: r.ids,
            spans: r.id_spans,
            keys: r.keys,
            key_ids: Default::default(),
        });
        if self.seen.is_full() {
            self.seen.grow(&self.ids);
        }
        self.errors.extend(r.errors);
        self.take_hits(r.hits);
        if self.keep == Keep::Pending && self.in_order {
            self.drop_applied_keys();
        }
    }

    /// Frees the key text of the chunks whose matches are all applied: only
    /// the held ones will still be read.
    fn drop_applied_keys(&mut self) {
        let upto = (self.held.iter())
            .map(|h| h.event.chunk())
            .min()
            .unwrap_or(self.ids.chunks.len());
        for chunk in &mut self.ids.chunks[self.keys_dropped.min(upto)..upto] {
            chunk.keys = Default::default();
            chunk.key_ids = Default::default();
        }
        self.keys_dropped = self.keys_dropped.max(upto);
    }

    /// Applies a chunk's matches (sorted by its worker) while the input is
    /// in order.
    fn take_hits(&mut self, mut hits: Vec<Hit>) {
        if !self.in_order {
            if self.keep != Keep::Pending {
                self.all.push(hits);
            }
            return;
        }
        let ids = &self.ids;
        let order = |a: &Hit, b: &Hit| hit_order(a, b, ids);
        if let (Some(last), Some(first)) = (&self.last, hits.first())
            && order(first, last).is_lt()
        {
            self.in_order = false;
            let held = std::mem::take(&mut self.held);
            if self.keep != Keep::Pending {
                self.all.push(held);
                self.all.push(hits);
            }
            return;
        }
        // Usually nothing is held or the held matches all come first, and
        // the chunk's matches are applied where they are, without a copy.
        if self
            .held
            .last()
            .is_some_and(|h| hits.first().is_some_and(|f| order(h, f).is_gt()))
        {
            hits = self.merge_held(hits);
        }
        let Some(newest) = hits.last().map(|h| h.effective_at) else {
            return;
        };
        // The matches of the newest second wait for the next chunk, which
        // may hold more of that second.
        if self.held.last().is_some_and(|h| h.effective_at == newest) {
            // The whole chunk is of the held second.
            self.held.append(&mut hits);
            return;
        }
        let split = hits.partition_point(|h| h.effective_at < newest);
        let newest_second = hits.split_off(split);
        let held = std::mem::replace(&mut self.held, newest_second);
        if let Some(last) = hits.last().or(held.last()) {
            self.last = Some(last.clone());
        }
        self.tally.apply_all(&mut self.state, &held, &self.ids);
        self.tally.apply_all(&mut self.state, &hits, &self.ids);
        if self.keep != Keep::Pending {
            self.all.push(held);
            self.all.push(hits);
        }
    }

    /// Whether this replay must stop and be run again sorted: its input is
    /// out of order and its matches were not kept.
    pub fn must_sort(&self) -> bool {
        self.keep == Keep::Pending && !self.in_order
    }

    /// Merges the held matches with a chunk's, both sorted.
    fn merge_held(&mut self, hits: Vec<Hit>) -> Vec<Hit> {
        let ids = &self.ids;
        let order = |a: &Hit, b: &Hit| hit_order(a, b, ids);
        let mut merged = Vec::with_capacity(self.held.len() + hits.len());
        let mut held = std::mem::take(&mut self.held).into_iter().peekable();
        let mut new = hits.into_iter().peekable();
        loop {
            let next = match (held.peek(), new.peek()) {
                (Some(x), Some(y)) if order(x, y).is_le() => held.next(),
                (Some(_), Some(_)) | (None, Some(_)) => new.next(),
                (Some(_), None) => held.next(),
                (None, None) => break,
            };
            merged.extend(next);
        }
        merged
    }

    /// Settles duplicates, applies what is held, and closes the replay;
    /// `None` when it must be run again with [`Keep::Sorted`].
    ///
    /// Matches were applied assuming that no id repeats; an id that did
    /// repeat and whose later reading matched or failed a rule makes the
    /// state be rebuilt without it.
    pub fn finish(mut self) -> Option<Report> {
        if self.must_sort() {
            return None;
        }
        let dups = self.seen.duplicates(&self.ids);
        self.events -= dups.len() as u64;
        self.duplicates = dups.len() as u64;
        let keep = |no: &EventNo| !dups.contains(no);
        let had_effect = !dups.is_empty()
            && (self.errors.iter().any(|(seq, _)| !keep(seq))
                || self.suspects_hit.iter().any(|e| !keep(e)));
        if had_effect && self.keep == Keep::Pending {
            return None;
        }
        let errors = self
            .errors
            .into_iter()
            .filter(|(seq, _)| keep(seq))
            .map(|(_, e)| e)
            .collect();
        let evaluation = if self.in_order && !had_effect {
            self.tally.apply_all(&mut self.state, &self.held, &self.ids);
            self.tally.finish(errors)
        } else {
            let mut hits: Vec<Hit> = (self.all.into_iter().flatten().chain(self.held))
                .filter(|h| keep(&h.event))
                .collect();
            hits.sort_by(|a, b| hit_order(a, b, &self.ids));
            let mut tally = Tally::new(self.rules).with_facts(self.facts);
            let mut state = RuleState::new();
            // In slices, so that the state is pruned now and then.
            for slice in hits.chunks(1 << 16) {
                tally.apply_all(&mut state, slice, &self.ids);
            }
            tally.finish(errors)
        };
        Some(Report {
            evaluation,
            events: self.events,
            duplicates: self.duplicates,
            bad_lines: self.bad_lines,
        })
    }
}
