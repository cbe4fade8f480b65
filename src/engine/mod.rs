//! Evaluation: events through compiled rules into alerts, with the threshold
//! and suppression state that carries over from batch to batch.
//!
//! The one call is [`Evaluator::evaluate`]: an ordered, de-duplicated
//! [`Batch`] against a [`RuleState`] that persists across batches and, saved
//! and restored, across processes. The watcher, `rulecheck` and the inline
//! tests all go through it (`rulecheck`'s parallel file path runs the same
//! two halves, [`check`] on its parser threads and [`tally`] on one of them
//! at a time, in read order), so that a replay and the live bot always
//! agree.
//!
//! Evaluation has two halves. Checking (match, condition, script) is
//! stateless and may run on events in any order; its hits are then sorted
//! by `(effective_at, event id, rule)` and fed to the state in that order.

pub(crate) mod check;
mod state;
pub(crate) mod tally;
pub mod testcase;
mod text;

use std::cell::RefCell;

use rustc_hash::FxHashSet;

pub use state::{RuleState, STATE_VERSION, StateError};
pub use tally::{Evaluation, RuleStats};

use crate::event::Event;
use crate::rules::RuleSet;
use check::{Checker, Keys, Location};
use tally::{EventSource, KeyIds, Tally, hit_order};

/// Asks for the cache line of `at` to be loaded, without waiting for it:
/// for lookups known ahead, so that their waits for memory overlap.
#[inline(always)]
pub(crate) fn prefetch<T>(at: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: SSE is part of every x86_64 target, and a prefetch only
        // hints the cache: it reads nothing.
        unsafe { _mm_prefetch::<_MM_HINT_T0>((at as *const T).cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

/// A rule that failed on one event (a script error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalError {
    /// Index of the rule in its [`RuleSet`].
    pub rule: usize,
    pub event_id: String,
    pub message: String,
}

/// An event's number within what produced it: a chunk and a position in
/// it. A batch in memory is one chunk; `rulecheck` numbers the chunks of
/// its inputs in read order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct EventNo(u64);

impl EventNo {
    pub fn new(chunk: usize, pos: usize) -> EventNo {
        debug_assert!(chunk <= u32::MAX as usize && pos <= u32::MAX as usize);
        EventNo((chunk as u64) << 32 | pos as u64)
    }

    pub fn chunk(self) -> usize {
        (self.0 >> 32) as usize
    }

    pub fn pos(self) -> usize {
        (self.0 & 0xffff_ffff) as usize
    }
}

/// Events ready for evaluation: in `(effective_at, id)` order, each id once
/// (the first one given wins).
#[derive(Debug, Default)]
pub struct Batch<'a> {
    events: Vec<Event<'a>>,
    duplicates: usize,
}

impl<'a> Batch<'a> {
    /// Orders `events` and drops every event whose id came before.
    pub fn new(mut events: Vec<Event<'a>>) -> Batch<'a> {
        let before = events.len();
        let mut seen = FxHashSet::default();
        let keep: Vec<bool> = events
            .iter()
            .map(|e| seen.insert(e.id().to_owned()))
            .collect();
        let mut keep = keep.into_iter();
        events.retain(|_| keep.next().unwrap_or(false));
        events.sort_by(|a, b| (a.effective_at(), a.id()).cmp(&(b.effective_at(), b.id())));
        Batch {
            duplicates: before - events.len(),
            events,
        }
    }

    /// The events, in evaluation order.
    pub fn events(&self) -> &[Event<'a>] {
        &self.events
    }

    /// Events dropped because their id came before.
    pub fn duplicates(&self) -> usize {
        self.duplicates
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

/// Evaluates batches of events with one rule set.
pub struct Evaluator<'r> {
    checker: Checker<'r>,
    repeats: bool,
}

impl<'r> Evaluator<'r> {
    pub fn new(rules: &'r RuleSet) -> Evaluator<'r> {
        Evaluator {
            checker: Checker::new(rules),
            repeats: false,
        }
    }

    /// Also returns the repeats that `suppress` quiets, as alerts marked
    /// [`Facts::repeat`](crate::alert::Facts::repeat), after the alert they
    /// repeat: the watcher threads them under it on Slack. They are not
    /// counted as alerts.
    pub fn with_repeats(mut self) -> Evaluator<'r> {
        self.repeats = true;
        self
    }

    /// An evaluator of rule `rule` alone (inline tests).
    pub(crate) fn for_rule(rules: &'r RuleSet, rule: usize) -> Evaluator<'r> {
        Evaluator {
            checker: Checker::for_rule(rules, rule),
            repeats: false,
        }
    }

    /// Evaluates `batch` against `state`, which it updates: the alerts that
    /// go out, per-rule counts and the rules that failed on an event.
    /// Evaluating events as one batch or as consecutive batches (with the
    /// state carried, or saved and restored, between them) gives the same
    /// alerts.
    pub fn evaluate(&mut self, batch: &Batch<'_>, state: &mut RuleState) -> Evaluation {
        for (pos, event) in batch.events.iter().enumerate() {
            self.checker.check(event, EventNo::new(0, pos), None, None);
        }
        let mut found = self.checker.take();
        let events = InMemory {
            events: &batch.events,
            keys: &found.keys,
            key_ids: Default::default(),
        };
        // Events come in order, so this only orders rules within an event.
        found.hits.sort_by(|a, b| hit_order(a, b, &events));
        let rules = self.checker.rules();
        let mut tally = Tally::new(rules).with_repeats(self.repeats);
        // In slices, so that a long batch (a first run, `learn`) prunes the
        // state now and then.
        for slice in found.hits.chunks(1 << 16) {
            tally.apply_all(state, slice, &events);
        }
        tally.finish(found.errors.into_iter().map(|(_, e)| e).collect())
    }
}

/// A batch in memory, numbered by position, with its hits' key text.
struct InMemory<'b, 'a> {
    events: &'b [Event<'a>],
    keys: &'b Keys,
    key_ids: RefCell<KeyIds>,
}

impl EventSource for InMemory<'_, '_> {
    fn id(&self, event: EventNo) -> &str {
        self.events[event.pos()].id()
    }

    fn keys(&self, _: EventNo) -> &Keys {
        self.keys
    }

    fn key_ids(&self, _: EventNo) -> &RefCell<KeyIds> {
        &self.key_ids
    }

    fn read(&self, _: &Location) -> Option<String> {
        None
    }
}
