//! Repeated event ids: one bit per id hash while reading, and an exact
//! check at the end of only the ids whose bit was already set.

use rustc_hash::FxHashSet;

use super::ids::{ChunkIds, IdSpans};
use crate::engine::EventNo;
use crate::engine::tally::EventSource;

/// The id hashes read so far, one bit each in a table that stays in cache,
/// and the events whose bit was already set: only those can repeat an
/// earlier id, and they are checked exactly at the end.
pub(super) struct SeenIds {
    bits: Vec<u64>,
    /// log2 of the number of bits.
    order: u32,
    marked: u64,
    suspects: Vec<EventNo>,
}

impl SeenIds {
    /// The table starts at 2^16 bits (or more, see [`SeenIds::for_ids`])
    /// and doubles whenever it holds more than one id per 16 bits, up to
    /// 2^28 bits (32 MiB); past 16 million ids, more of them are checked at
    /// the end, still exactly.
    const FIRST_ORDER: u32 = 16;
    const MAX_ORDER: u32 = 28;

    /// A table big enough for about `ids` ids without growing.
    pub fn for_ids(ids: u64) -> Self {
        let order =
            (ids.saturating_mul(16).max(1).ilog2() + 1).clamp(Self::FIRST_ORDER, Self::MAX_ORDER);
        SeenIds {
            bits: vec![0; 1 << (order - 6)],
            order,
            marked: 0,
            suspects: Vec::new(),
        }
    }

    /// Marks the ids of chunk `index` (see [`IdSpans`]).
    pub fn mark_chunk(&mut self, index: usize, spans: &IdSpans) {
        // The table is larger than the caches: its words are asked for a
        // few ids ahead of their use.
        const AHEAD: usize = 8;
        for (pos, &(_, _, hash)) in spans.iter().enumerate() {
            if let Some(&(_, _, next)) = spans.get(pos + AHEAD) {
                self.prefetch(next);
            }
            self.mark(hash, EventNo::new(index, pos));
        }
    }

    #[inline]
    fn prefetch(&self, hash: u64) {
        let word = (hash >> (64 - self.order) >> 6) as usize;
        if let Some(w) = self.bits.get(word) {
            crate::engine::prefetch(w);
        }
    }

    fn mark(&mut self, hash: u64, seq: EventNo) {
        let bit = hash >> (64 - self.order);
        let word = &mut self.bits[(bit >> 6) as usize];
        let mask = 1 << (bit & 63);
        if *word & mask != 0 {
            self.suspects.push(seq);
        }
        *word |= mask;
        self.marked += 1;
    }

    /// The events whose id hash was read before, so far (in read order,
    /// until the table grows).
    pub fn suspects(&self) -> &[EventNo] {
        &self.suspects
    }

    /// More ids than the table is meant to hold.
    pub fn is_full(&self) -> bool {
        self.order < Self::MAX_ORDER && self.marked << 4 > 1 << self.order
    }

    /// Doubles the table and marks every id read so far again.
    pub fn grow(&mut self, ids: &ChunkIds<'_>) {
        self.order += 1;
        self.bits = vec![0; 1 << (self.order - 6)];
        self.marked = 0;
        self.suspects.clear();
        for (index, chunk) in ids.chunks.iter().enumerate() {
            self.mark_chunk(index, &chunk.spans);
        }
    }

    /// The events whose id was read before (the first reading wins),
    /// exactly: ids are compared as text.
    pub fn duplicates(&self, ids: &ChunkIds<'_>) -> FxHashSet<EventNo> {
        let mut dups = FxHashSet::default();
        if self.suspects.is_empty() {
            return dups;
        }
        let hashes: FxHashSet<u64> = self.suspects.iter().map(|&s| ids.span(s).2).collect();
        // A small table of the suspects' hashes, by bits the big table does
        // not use, spares most ids the set lookup.
        const ORDER: u32 = 20;
        let mut near = vec![0u64; 1 << (ORDER - 6)];
        let bit = |hash: u64| (hash & ((1 << ORDER) - 1)) as usize;
        for &h in &hashes {
            near[bit(h) >> 6] |= 1 << (bit(h) & 63);
        }
        let mut first: FxHashSet<&str> = FxHashSet::default();
        for (index, chunk) in ids.chunks.iter().enumerate() {
            for (pos, &(_, _, hash)) in chunk.spans.iter().enumerate() {
                if near[bit(hash) >> 6] & (1 << (bit(hash) & 63)) == 0 {
                    continue;
                }
                let seq = EventNo::new(index, pos);
                if hashes.contains(&hash) && !first.insert(ids.id(seq)) {
                    dups.insert(seq);
                }
            }
        }
        dups
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;
    use crate::replay::ids::ChunkText;

    /// Chunks of ids with the given hashes, as a replay keeps them.
    fn chunk_ids(chunks: &[Vec<(&str, u64)>]) -> ChunkIds<'static> {
        let mut ids = ChunkIds::new(&[]);
        ids.chunks = chunks
            .iter()
            .map(|ids| {
                let mut text = String::new();
                let mut spans = Vec::new();
                for (id, hash) in ids {
                    let start = text.len() as u32;
                    text.push_str(id);
                    spans.push((start, text.len() as u32, *hash));
                }
                ChunkText {
                    ids: text,
                    spans,
                    keys: Default::default(),
                    key_ids: Default::default(),
                }
            })
            .collect();
        ids
    }

    /// Repeated ids are found exactly (the first reading wins), also when
    /// different ids share a hash and when the table grows on the way.
    #[test]
    fn seen_ids_finds_exactly_the_repeated_ids() {
        let names: Vec<String> = (0..20_000).map(|i| format!("audit_log-{i}")).collect();
        let colliding: Vec<String> = (0..100).map(|i| format!("collides-{i}")).collect();
        let hash = |i: usize| rustc_hash::FxBuildHasher.hash_one(i);
        let mut chunks: Vec<Vec<(&str, u64)>> = vec![Vec::new(); 4];
        for (i, name) in names.iter().enumerate() {
            chunks[i % 3].push((name, hash(i)));
        }
        // Different ids with one hash: none repeats another.
        for name in &colliding {
            chunks[2].push((name, 42));
        }
        // Later: every 7th id again, and one of the colliding ones.
        let mut want = FxHashSet::default();
        for i in (0..20_000).step_by(7) {
            want.insert(EventNo::new(3, chunks[3].len()));
            chunks[3].push((&names[i], hash(i)));
        }
        want.insert(EventNo::new(3, chunks[3].len()));
        chunks[3].push((&colliding[5], 42));
        let ids = chunk_ids(&chunks);
        let mut seen = SeenIds::for_ids(0);
        for (index, chunk) in ids.chunks.iter().enumerate() {
            seen.mark_chunk(index, &chunk.spans);
            if seen.is_full() {
                seen.grow(&ids);
            }
        }
        assert!(seen.order > 16, "the table grew");
        let dups = seen.duplicates(&ids);
        let (extra, missed) = (
            dups.difference(&want).count(),
            want.difference(&dups).count(),
        );
        assert!(
            extra + missed == 0,
            "{extra} wrongly found, {missed} missed"
        );
    }
}
