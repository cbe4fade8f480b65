//! `auditwatch learn`: seeds the `first_seen` rules of a watcher's state
//! from history, so that a new watcher does not start blind.
//!
//! The history is evaluated as a replay would (in event order, each id
//! once), into a state of its own; its alerts are dropped, and only the
//! values the `first_seen` rules learned are merged into the saved state.

use std::collections::HashSet;

use crate::engine::{Batch, Evaluator, RuleState};
use crate::event::Event;
use crate::rules::RuleSet;
use crate::source::{self, Source};
use crate::store::Store;

use super::WatchError;

/// What a learning run read and kept.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Learned {
    /// Events read from the history.
    pub events: u64,
    /// Values new to the saved state.
    pub values: usize,
}

/// Reads `since..until` from `source`, evaluates it with `rules`, and
/// merges what the `first_seen` rules learned into the state in `store`.
pub async fn learn(
    rules: &RuleSet,
    source: &Source,
    since: i64,
    until: i64,
    store: &mut dyn Store,
) -> Result<Learned, WatchError> {
    let mut state = RuleState::new();
    let mut known: HashSet<String> = HashSet::new();
    let mut events = 0u64;
    let mut evaluator = Evaluator::new(rules);
    source::read_range(source, since, until, |window, read| {
        let fresh: Vec<_> = read.iter().filter(|e| known.insert(e.id.clone())).collect();
        let parsed: Vec<Event<'_>> = fresh
            .iter()
            .filter_map(|e| Event::parse(&e.json).ok())
            .collect();
        events += parsed.len() as u64;
        evaluator.evaluate(&Batch::new(parsed), &mut state);
        tracing::info!(
            up_to = %crate::event::format_time(window.until.unwrap_or(until)),
            events,
            "learned"
        );
        Ok(())
    })
    .await
    .map_err(|e| match e {
        source::RangeError::Source(s) => WatchError::Source(s),
        other => WatchError::State(other.to_string()),
    })?;
    let checkpoint = store.checkpoint()?;
    let mut saved = match &checkpoint.rule_state {
        Some(bytes) => {
            RuleState::restore(bytes, rules)
                .map_err(|e| {
                    WatchError::State(format!("{e}: delete the state file to start over"))
                })?
                .0
        }
        None => RuleState::new(),
    };
    let values = saved.learn_from(&state, rules);
    store.save_rule_state(&saved.save(), crate::time::now())?;
    Ok(Learned { events, values })
}
