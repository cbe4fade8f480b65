//! The parser threads: each takes chunks, reads their events (line by line,
//! or as a whole document) and checks them against the rules, keeping only
//! the hits, the ids and the bad lines of the chunk.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, Ordering};

use super::Options;
use super::document::Element;
use super::ids::IdSpans;
use super::input::Chunk;
use crate::engine::EvalError;
use crate::engine::EventNo;
use crate::engine::check::{Candidates, Checker, Hit, Keys, Location};
use crate::event::{Event, EventError, FieldRoom, Parsed};
use crate::rules::RuleSet;

#[derive(Default)]
pub(super) struct ChunkResult {
    pub index: usize,
    pub file: usize,
    pub document: bool,
    pub lines: u64,
    pub events: u64,
    /// The bytes of input the chunk held (uncompressed).
    pub bytes: u64,
    /// The ids of the chunk's events, back to back, with `(start, end, hash)`;
    /// an event's number is its chunk's index and its position here.
    pub ids: String,
    pub id_spans: IdSpans,
    /// The text of the hits' keys.
    pub keys: Keys,
    pub hits: Vec<Hit>,
    pub errors: Vec<(EventNo, EvalError)>,
    /// Line within the chunk (1-based), message.
    pub bad: Vec<(u64, String)>,
}

/// A parser thread: takes chunks from `next` (handing it back the buffer
/// of the chunk before, to read into) until it has none, and hands each
/// one's result to `deliver`, until that returns false or `stop` is set.
pub(super) fn work(
    rules: &RuleSet,
    opts: &Options,
    mut next: impl FnMut(Option<Vec<u8>>) -> Option<Chunk>,
    mut deliver: impl FnMut(ChunkResult) -> bool,
    stop: &AtomicBool,
) {
    let mut checker = Checker::new(rules)
        .with_facts(opts.facts)
        .with_own_scripts();
    let mut spare = None;
    loop {
        let Some(chunk) = next(spare.take()) else {
            return;
        };
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let mut out = ChunkResult {
            index: chunk.index,
            file: chunk.file,
            document: chunk.elements.is_some(),
            bytes: chunk.input_bytes,
            ids: String::with_capacity(chunk.data.len() / 16),
            id_spans: Vec::with_capacity(chunk.data.len() / 256),
            ..Default::default()
        };
        let mut w = Worker {
            opts,
            checker: &mut checker,
            out: &mut out,
            offset: chunk.offset,
        };
        w.out.bad.extend(chunk.bad);
        match &chunk.elements {
            Some(elements) => w.elements(&chunk.data, elements),
            None => {
                w.lines(&chunk.data);
                spare = Some(chunk.data);
            }
        }
        let found = checker.take();
        (out.hits, out.errors, out.keys) = (found.hits, found.errors, found.keys);
        // Matches leave sorted the way the rule state takes them.
        let (ids, spans) = (&out.ids, &out.id_spans);
        let id = |e: EventNo| {
            let (a, b, _) = spans[e.pos()];
            &ids[a as usize..b as usize]
        };
        // The hits of one event share its id: only those of different
        // events need their ids compared.
        let order = |a: &Hit, b: &Hit| {
            a.effective_at
                .cmp(&b.effective_at)
                .then_with(|| match a.event == b.event {
                    true => std::cmp::Ordering::Equal,
                    false => id(a.event).cmp(id(b.event)),
                })
                .then(a.rule.cmp(&b.rule))
        };
        // Input in time order leaves only the matches of one second to put
        // in order.
        if out.hits.is_sorted_by_key(|h| h.effective_at) {
            for same_second in out
                .hits
                .chunk_by_mut(|a, b| a.effective_at == b.effective_at)
            {
                // The hits of one event are already in rule order.
                if same_second.iter().any(|h| h.event != same_second[0].event) {
                    same_second.sort_by(order);
                } else {
                    debug_assert!(same_second.is_sorted_by_key(|h| h.rule));
                }
            }
        } else {
            out.hits.sort_by(order);
        }
        if !deliver(out) {
            return;
        }
    }
}

struct Worker<'r, 'o> {
    opts: &'r Options,
    checker: &'o mut Checker<'r>,
    out: &'o mut ChunkResult,
    offset: Option<u64>,
}

impl Worker<'_, '_> {
    fn lines(&mut self, data: &[u8]) {
        // Validating a chunk's UTF-8 at once is much faster than string by
        // string; a chunk with bad bytes is checked line by line instead.
        let text = simdutf8::basic::from_utf8(data).ok();
        let mut room = FieldRoom::default();
        let mut start = 0;
        let mut line_no = 0;
        for end in memchr::memchr_iter(b'\n', data).chain(std::iter::once(data.len())) {
            if start > data.len() || (end == data.len() && start == end) {
                break;
            }
            line_no += 1;
            let range_start = start;
            let range = start..end;
            start = end + 1;
            // Lines are cut at ASCII bytes, so slicing valid text stays valid.
            let line = match text {
                Some(text) => Some(&text[range]),
                None => simdutf8::basic::from_utf8(&data[range]).ok(),
            };
            match line.map(str::trim) {
                Some("") => {}
                Some(line) => {
                    let at = self.offset.map(|o| Location {
                        input: self.out.file as u32,
                        offset: o + range_start as u64,
                        len: (end - range_start) as u32,
                    });
                    self.object(line, line_no, at, &mut room)
                }
                None => self.out.bad.push((line_no, "not UTF-8 text".into())),
            }
        }
        self.out.lines = line_no;
    }

    /// The elements of a document (see [`super::document`]), each at the
    /// line of the input it starts on.
    fn elements(&mut self, data: &[u8], elements: &[Element]) {
        let mut room = FieldRoom::default();
        for el in elements {
            match std::str::from_utf8(&data[el.start..el.end]) {
                Ok(text) => self.object(text, el.line, None, &mut room),
                Err(_) => self.out.bad.push((el.line, "not UTF-8 text".into())),
            }
        }
    }

    /// One JSON object: an event or a list page.
    fn object<'d>(
        &mut self,
        json: &'d str,
        line: u64,
        at: Option<Location>,
        room: &mut FieldRoom<'d>,
    ) {
        let checker = &mut *self.checker;
        // The rules for the event's type, when the parse already looked them up.
        let mut candidates = None;
        let mut wants_actor = |ty: &str| {
            let (c, any) = checker.any_candidate(ty);
            candidates = Some(c);
            any
        };
        // Events are looked at where they were parsed: moving them would
        // copy a few hundred bytes each time.
        let mut parsed = Event::parse_in(json, &mut wants_actor, room);
        match &parsed {
            Ok(Parsed::Event(ev)) => self.event(ev, at, candidates),
            Ok(Parsed::Page(items)) => {
                for (i, item) in items.iter().enumerate() {
                    match &Event::parse_any(item.get()) {
                        Ok(Parsed::Event(ev)) => self.event(ev, None, None),
                        Ok(Parsed::Page(_)) => self
                            .out
                            .bad
                            .push((line, format!("list item {}: a list inside a list", i + 1))),
                        Err(e) => self
                            .out
                            .bad
                            .push((line, format!("list item {}: {}", i + 1, event_message(e)))),
                    }
                }
            }
            Err(e) => self.out.bad.push((line, event_message(e))),
        }
        if let Ok(Parsed::Event(ev)) = &mut parsed {
            ev.recycle(room);
        }
    }

    fn event(&mut self, ev: &Event<'_>, at: Option<Location>, candidates: Option<Candidates>) {
        let t = ev.effective_at();
        if self.opts.since.is_some_and(|s| t < s) || self.opts.until.is_some_and(|u| t >= u) {
            return;
        }
        let no = EventNo::new(self.out.index, self.out.id_spans.len());
        self.out.events += 1;
        let start = self.out.ids.len() as u32;
        self.out.ids.push_str(ev.id());
        let hash = rustc_hash::FxBuildHasher.hash_one(ev.id());
        self.out
            .id_spans
            .push((start, self.out.ids.len() as u32, hash));
        self.checker.check(ev, no, at, candidates);
    }
}

fn json_message(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let msg = match msg.rfind(" at line ") {
        Some(i) => &msg[..i],
        None => &msg,
    };
    format!("invalid JSON: {msg} (column {})", e.column())
}

fn event_message(e: &EventError) -> String {
    match e {
        EventError::Json(j) => json_message(j),
        other => format!("not an audit log event: {other}"),
    }
}
