//! Replaying event files: JSON Lines, JSON arrays and saved list pages, plain
//! or gzip, parsed in parallel, then evaluated in event-time order.
//!
//! A reader thread cuts each input into chunks of whole lines (mapped from
//! plain files, read from pipes and compressed input); worker threads parse
//! them and run the stateless half of every rule, keeping only the matches;
//! the calling thread restores read order for line numbers and
//! de-duplication and applies thresholds and suppression in time order.
//! Chunks are dropped as soon as they are parsed, so memory stays bounded by
//! the matches and the ids, not by the input.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use std::hash::BuildHasher;

use rustc_hash::FxHashSet;
use serde_json::value::RawValue;

use super::{Batch, Replayed, Tally, hit_order};
use crate::event::{Event, EventError, FieldRoom, Parsed};
use crate::rules::{EvalError, EventSource, Hit, Key, Location, RuleSet, RuleState, Scratch};

const CHUNK_SIZE: usize = 4 << 20;

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
}

impl Default for Options {
    fn default() -> Self {
        Options {
            since: None,
            until: None,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
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
    pub replayed: Replayed,
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

struct Chunk {
    index: u64,
    file: usize,
    /// Where the chunk starts in its input, when the input can be read again
    /// (a plain file).
    offset: Option<u64>,
    /// A whole input that is not JSON Lines (a JSON array, pretty list pages).
    document: bool,
    data: Bytes,
}

/// A chunk's bytes: read into a buffer (pipes, compressed input, documents)
/// or mapped from a plain file, which spares copying them and lets the
/// kernel drop them as soon as the chunk is unmapped.
enum Bytes {
    Read(Vec<u8>),
    Mapped {
        map: memmap2::Mmap,
        skip: usize,
        len: usize,
    },
}

impl std::ops::Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Read(v) => v,
            Bytes::Mapped { map, skip, len } => &map[*skip..*skip + *len],
        }
    }
}

#[derive(Default)]
struct ChunkResult {
    index: u64,
    file: usize,
    document: bool,
    lines: u64,
    events: u64,
    /// The ids of the chunk's events, back to back, with `(start, end, hash)`;
    /// an event's number is its chunk's index and its position here.
    ids: String,
    id_spans: IdSpans,
    /// The text of the hits' keys.
    keys: String,
    hits: Vec<Hit>,
    errors: Vec<(u64, EvalError)>,
    /// Line within the chunk (1-based), message.
    bad: Vec<(u64, String)>,
}

/// Replays `inputs` through `rules`. `progress` is called now and then with
/// the number of events read so far.
pub fn replay(
    rules: &RuleSet,
    inputs: &[Input],
    opts: &Options,
    progress: &dyn Fn(u64),
) -> Result<Report, ReadError> {
    let threads = opts.threads.max(1);
    let started = std::time::Instant::now();
    let (chunk_tx, chunk_rx) = mpsc::sync_channel::<Chunk>(threads * 2);
    let chunk_rx = Mutex::new(chunk_rx);
    let mut ordered = Ordered::new(rules, inputs);
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
            let (rx, tx, free) = (&chunk_rx, res_tx.clone(), free_tx.clone());
            spawn("parse")
                .spawn_scoped(s, move || work(rules, opts, rx, tx, free))
                .expect("spawn a parser thread");
        }
        drop(free_tx);
        drop(res_tx);
        // Chunks finish in any order; they are taken in read order, and their
        // matches go to the rule state while later chunks are still parsed.
        let mut waiting: BTreeMap<u64, ChunkResult> = BTreeMap::new();
        let mut events = 0;
        for r in res_rx {
            events += r.events;
            progress(events);
            waiting.insert(r.index, r);
            while let Some(r) = waiting.remove(&(ordered.ids.chunks.len() as u64)) {
                ordered.release(r);
            }
        }
        reader.join().expect("reader thread panicked")
    });
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

fn work(
    rules: &RuleSet,
    opts: &Options,
    rx: &Mutex<Receiver<Chunk>>,
    tx: mpsc::Sender<ChunkResult>,
    free: mpsc::Sender<Vec<u8>>,
) {
    let mut scratch = Scratch::default();
    loop {
        let chunk = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(chunk) = chunk else { return };
        let mut out = ChunkResult {
            index: chunk.index,
            file: chunk.file,
            document: chunk.document,
            ids: String::with_capacity(chunk.data.len() / 16),
            id_spans: Vec::with_capacity(chunk.data.len() / 256),
            ..Default::default()
        };
        let mut w = Worker {
            rules,
            opts,
            scratch: &mut scratch,
            out: &mut out,
            offset: chunk.offset,
            seq_base: chunk.index << 32,
            next: 0,
        };
        if chunk.document {
            w.document(&chunk.data);
        } else {
            w.lines(&chunk.data);
        }
        if let (false, Bytes::Read(data)) = (chunk.document, chunk.data) {
            let _ = free.send(data);
        }
        out.keys = scratch.take_keys();
        // Matches leave sorted the way the rule state takes them.
        let (ids, spans) = (&out.ids, &out.id_spans);
        let id = |e: u64| {
            let (a, b, _) = spans[(e & 0xffff_ffff) as usize];
            &ids[a as usize..b as usize]
        };
        let order = |a: &Hit, b: &Hit| {
            a.effective_at
                .cmp(&b.effective_at)
                .then_with(|| id(a.event).cmp(id(b.event)))
                .then(a.rule.cmp(&b.rule))
        };
        // Input in time order leaves only the matches of one second to put
        // in order.
        if out.hits.is_sorted_by_key(|h| h.effective_at) {
            for same_second in out
                .hits
                .chunk_by_mut(|a, b| a.effective_at == b.effective_at)
            {
                if same_second.len() > 1 {
                    same_second.sort_by(order);
                }
            }
        } else {
            out.hits.sort_by(order);
        }
        if tx.send(out).is_err() {
            return;
        }
    }
}

struct Worker<'r, 'o> {
    rules: &'r RuleSet,
    opts: &'r Options,
    scratch: &'o mut Scratch,
    out: &'o mut ChunkResult,
    offset: Option<u64>,
    seq_base: u64,
    next: u64,
}

impl Worker<'_, '_> {
    fn lines(&mut self, data: &[u8]) {
        // Validating a chunk's UTF-8 at once is much faster than string by
        // string; a chunk with bad bytes is checked line by line instead.
        let text = std::str::from_utf8(data).ok();
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
                None => std::str::from_utf8(&data[range]).ok(),
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

    /// A whole input holding JSON values: arrays of events, list pages or events.
    fn document(&mut self, data: &[u8]) {
        let mut counted = (0usize, 1u64);
        let mut line_at = |offset: usize| {
            counted.1 += memchr::memchr_iter(b'\n', &data[counted.0..offset]).count() as u64;
            counted.0 = offset;
            counted.1
        };
        let text = match std::str::from_utf8(data) {
            Ok(t) => t,
            Err(e) => {
                let line = line_at(e.valid_up_to());
                self.out.bad.push((
                    line,
                    "not UTF-8 text; the rest of the input is skipped".into(),
                ));
                self.out.lines = line_at(data.len());
                return;
            }
        };
        let mut room = FieldRoom::default();
        let stream = serde_json::Deserializer::from_str(text).into_iter::<&RawValue>();
        for item in stream {
            let raw = match item {
                Ok(raw) => raw,
                Err(e) => {
                    self.out.bad.push((e.line() as u64, json_message(&e)));
                    break;
                }
            };
            let offset = raw.get().as_ptr() as usize - data.as_ptr() as usize;
            let line = line_at(offset);
            if raw.get().starts_with('[') {
                match serde_json::from_str::<Vec<&RawValue>>(raw.get()) {
                    Ok(items) => {
                        for item in items {
                            let off = item.get().as_ptr() as usize - data.as_ptr() as usize;
                            let l = line_at(off);
                            self.object(item.get(), l, None, &mut room);
                        }
                    }
                    Err(e) => self.out.bad.push((line, json_message(&e))),
                }
            } else {
                self.object(raw.get(), line, None, &mut room);
            }
        }
        self.out.lines = line_at(data.len());
    }

    /// One JSON object: an event or a list page.
    fn object<'d>(
        &mut self,
        json: &'d str,
        line: u64,
        at: Option<Location>,
        room: &mut FieldRoom<'d>,
    ) {
        let (rules, scratch) = (self.rules, &mut *self.scratch);
        // The rules for the event's type, when the parse already looked them up.
        let mut candidates = None;
        let mut wants_actor = |ty: &str| {
            let c = rules.candidates(ty, scratch);
            let wanted = !c.is_empty();
            candidates = Some(c);
            wanted
        };
        // Events are looked at where they were parsed: moving them would
        // copy a few hundred bytes each time.
        let parsed = Event::parse_in(json, &mut wants_actor, room);
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
        if let Ok(Parsed::Event(ev)) = parsed {
            ev.recycle(room);
        }
    }

    fn event(&mut self, ev: &Event<'_>, at: Option<Location>, candidates: Option<Arc<[u32]>>) {
        let t = ev.effective_at();
        if self.opts.since.is_some_and(|s| t < s) || self.opts.until.is_some_and(|u| t >= u) {
            return;
        }
        let seq = self.seq_base | self.next;
        self.next += 1;
        self.out.events += 1;
        let start = self.out.ids.len() as u32;
        self.out.ids.push_str(ev.id());
        let hash = rustc_hash::FxBuildHasher.hash_one(ev.id());
        self.out
            .id_spans
            .push((start, self.out.ids.len() as u32, hash));
        let candidates =
            candidates.unwrap_or_else(|| self.rules.candidates(ev.kind(), self.scratch));
        let mut errors = Vec::new();
        let out = &mut *self.out;
        self.rules.check(
            ev,
            &candidates,
            seq,
            at,
            self.scratch,
            &mut out.hits,
            &mut errors,
        );
        out.errors.extend(errors.into_iter().map(|e| (seq, e)));
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

/// Cuts every input into chunks of whole lines (or one chunk per input that
/// is not JSON Lines) and sends them, in read order.
fn read_inputs(
    inputs: &[Input],
    tx: SyncSender<Chunk>,
    free: Receiver<Vec<u8>>,
) -> Result<(), ReadError> {
    let mut index = 0u64;
    for (file, input) in inputs.iter().enumerate() {
        let err = |source| ReadError {
            name: input.name(),
            source,
        };
        let raw: Box<dyn Read> = match input {
            Input::Path(p) => Box::new(File::open(p).map_err(err)?),
            Input::Stdin => Box::new(io::stdin()),
        };
        let raw: Box<dyn Read> = if input.is_gzip() {
            Box::new(flate2::read::MultiGzDecoder::new(raw))
        } else {
            raw
        };
        let mut reader = BufReader::with_capacity(1 << 20, raw);
        if !is_json_lines(&mut reader).map_err(err)? {
            let mut data = Vec::new();
            reader.read_to_end(&mut data).map_err(err)?;
            if tx
                .send(Chunk {
                    index,
                    file,
                    offset: None,
                    document: true,
                    data: Bytes::Read(data),
                })
                .is_err()
            {
                return Ok(());
            }
            index += 1;
            continue;
        }
        // Only a regular file can be read again for a summary (not a pipe,
        // not a compressed stream); it is mapped rather than read.
        let seekable = !input.is_gzip()
            && matches!(input, Input::Path(p) if std::fs::metadata(p).is_ok_and(|m| m.is_file()));
        if seekable && let Input::Path(path) = input {
            let opened = File::open(path).map_err(err)?;
            let before = index;
            match map_chunks(&opened, file, CHUNK_SIZE as u64, &mut index, &tx) {
                Ok(true) => continue,
                Ok(false) => return Ok(()),
                // A file that cannot be mapped is read instead.
                Err(_) if index == before => {}
                Err(e) => return Err(err(e)),
            }
        }
        // Past the first look, read straight into the chunks: going through
        // the buffer would copy every byte once more.
        let head = reader.buffer().to_vec();
        let mut reader = io::Cursor::new(head).chain(reader.into_inner());
        let mut carry: Vec<u8> = Vec::new();
        let mut offset = 0u64;
        loop {
            let mut data = free.try_recv().unwrap_or_default();
            data.clear();
            data.reserve(CHUNK_SIZE + carry.len() + 128 * 1024);
            data.append(&mut carry);
            let eof = fill(&mut reader, &mut data, CHUNK_SIZE).map_err(err)?;
            if !eof && let Some(nl) = memchr::memrchr(b'\n', &data) {
                carry.extend_from_slice(&data[nl + 1..]);
                data.truncate(nl + 1);
            }
            if !data.is_empty() {
                let len = data.len() as u64;
                let chunk = Chunk {
                    index,
                    file,
                    offset: seekable.then_some(offset),
                    document: false,
                    data: Bytes::Read(data),
                };
                if tx.send(chunk).is_err() {
                    return Ok(());
                }
                index += 1;
                offset += len;
            }
            if eof {
                break;
            }
        }
    }
    Ok(())
}

/// Sends the chunks of a plain JSON Lines file as mappings of whole lines;
/// false when the replay stopped taking them. An error before the first
/// chunk leaves the file to be read instead.
fn map_chunks(
    file: &File,
    input: usize,
    chunk_size: u64,
    index: &mut u64,
    tx: &SyncSender<Chunk>,
) -> io::Result<bool> {
    // Mappings start at multiples of 64 KiB, a multiple of every page size.
    const ALIGN: u64 = 64 << 10;
    let size = file.metadata()?.len();
    let mut start = 0u64;
    while start < size {
        let base = start & !(ALIGN - 1);
        let skip = (start - base) as usize;
        let mut want = chunk_size;
        let (map, end) = loop {
            let len = (skip as u64 + want).min(size - base);
            // SAFETY: the mapping is only read. Inputs are expected not to
            // change while they are replayed (a file cut short meanwhile
            // would fault, as with any tool that maps its input).
            let map = unsafe {
                memmap2::MmapOptions::new()
                    .offset(base)
                    .len(len as usize)
                    .populate()
                    .map(file)?
            };
            if base + len == size {
                break (map, size);
            }
            if let Some(nl) = memchr::memrchr(b'\n', &map[skip..]) {
                break (map, start + nl as u64 + 1);
            }
            want *= 2;
        };
        let chunk = Chunk {
            index: *index,
            file: input,
            offset: Some(start),
            document: false,
            data: Bytes::Mapped {
                map,
                skip,
                len: (end - start) as usize,
            },
        };
        if tx.send(chunk).is_err() {
            return Ok(false);
        }
        *index += 1;
        start = end;
    }
    Ok(true)
}

/// Reads until `data` holds at least `size` bytes; true at end of input.
fn fill(reader: &mut impl Read, data: &mut Vec<u8>, size: usize) -> io::Result<bool> {
    while data.len() < size {
        let before = data.len();
        let n = reader
            .by_ref()
            .take((size - before) as u64 + 64 * 1024)
            .read_to_end(data)?;
        if n == 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// True when the input is JSON Lines. A JSON array, or an object whose first
/// line is cut where pretty-printing cuts lines (after `{`, `[` or `,`), is
/// read as a document; any other first line, even a malformed one, means
/// JSON Lines, so that one bad line never hides the lines after it.
fn is_json_lines(reader: &mut BufReader<Box<dyn Read>>) -> io::Result<bool> {
    let capacity = reader.capacity();
    let buf = reader.fill_buf()?;
    let Some(first) = buf.iter().position(|b| !b.is_ascii_whitespace()) else {
        return Ok(true);
    };
    if buf[first] == b'[' {
        return Ok(false);
    }
    let rest = &buf[first..];
    let line = match memchr::memchr(b'\n', rest) {
        Some(nl) => &rest[..nl],
        None if buf.len() < capacity => rest,
        None => return Ok(true),
    };
    let line = line.trim_ascii();
    Ok(
        serde_json::from_slice::<serde::de::IgnoredAny>(line).is_ok()
            || !line.ends_with(b"{") && !line.ends_with(b"[") && !line.ends_with(b","),
    )
}

/// The calling thread's side of a replay: takes the chunks in read order,
/// numbers bad lines, drops events whose id was read before, and feeds the
/// matches to the rule state in event-time order.
///
/// Inputs are usually already in time order; then each chunk's matches are
/// applied as soon as the chunk is taken (all but those of its last second,
/// which the next chunk may share). A match that comes before one already
/// applied shows that the input is not in order: the state is then rebuilt
/// at the end from all matches, sorted.
struct Ordered<'r, 'i> {
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
    tally: Tally,
    /// Sorted matches not applied yet (those of the latest second).
    held: Vec<Hit>,
    /// Every match taken so far, for a rebuild; the applied ones in order.
    all: Vec<Vec<Hit>>,
    /// The last match applied, for the order check.
    last: Option<Hit>,
    in_order: bool,
    /// Evaluation errors, by event number.
    errors: Vec<(u64, EvalError)>,
}

impl<'r, 'i> Ordered<'r, 'i> {
    fn new(rules: &'r RuleSet, inputs: &'i [Input]) -> Self {
        Ordered {
            rules,
            ids: ChunkIds {
                inputs,
                chunks: Vec::new(),
            },
            seen: SeenIds::new(),
            events: 0,
            duplicates: 0,
            bad_lines: Vec::new(),
            lines_before: 0,
            current_file: usize::MAX,
            state: RuleState::new(),
            tally: Tally::new(rules),
            held: Vec::new(),
            all: Vec::new(),
            last: None,
            in_order: true,
            errors: Vec::new(),
        }
    }

    /// Takes the next chunk in read order.
    fn release(&mut self, r: ChunkResult) {
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
        self.seen.mark_chunk(r.index, &r.id_spans);
        self.ids.chunks.push(ChunkText {
            ids: r.ids,
            spans: r.id_spans,
            keys: r.keys,
        });
        if self.seen.is_full() {
            self.seen.grow(&self.ids);
        }
        self.errors.extend(r.errors);
        self.take_hits(r.hits);
    }

    /// Applies a chunk's matches (sorted by its worker) while the input is
    /// in order.
    fn take_hits(&mut self, hits: Vec<Hit>) {
        if !self.in_order {
            self.all.push(hits);
            return;
        }
        let ids = &self.ids;
        let order = |a: &Hit, b: &Hit| hit_order(a, b, ids);
        if let (Some(last), Some(first)) = (&self.last, hits.first())
            && order(first, last).is_lt()
        {
            self.in_order = false;
            self.all.push(std::mem::take(&mut self.held));
            self.all.push(hits);
            return;
        }
        // Usually nothing is held or the held matches all come first: no merge.
        let merged = if self
            .held
            .last()
            .is_none_or(|h| hits.first().is_none_or(|f| order(h, f).is_le()))
        {
            let mut merged = std::mem::take(&mut self.held);
            merged.extend(hits);
            merged
        } else {
            self.merge_held(hits)
        };
        let mut merged = merged;
        let Some(newest) = merged.last().map(|h| h.effective_at) else {
            return;
        };
        let split = merged.partition_point(|h| h.effective_at < newest);
        self.held = merged.split_off(split);
        for hit in &merged {
            self.tally
                .apply(self.rules, &mut self.state, hit, &self.ids);
        }
        if let Some(last) = merged.last() {
            self.last = Some(last.clone());
        }
        self.all.push(merged);
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

    /// Settles duplicates, applies what is held, and closes the replay.
    ///
    /// Matches were applied assuming that no id repeats; an id that did
    /// repeat and whose later reading matched or failed a rule makes the
    /// state be rebuilt without it.
    fn finish(mut self) -> Report {
        let dups = self.seen.duplicates(&self.ids);
        self.events -= dups.len() as u64;
        self.duplicates = dups.len() as u64;
        let keep = |seq: &u64| !dups.contains(seq);
        let had_effect = !dups.is_empty()
            && (self.errors.iter().any(|(seq, _)| !keep(seq))
                || self
                    .all
                    .iter()
                    .flatten()
                    .chain(&self.held)
                    .any(|h| !keep(&h.event)));
        let errors = self
            .errors
            .into_iter()
            .filter(|(seq, _)| keep(seq))
            .map(|(_, e)| e)
            .collect();
        let replayed = if self.in_order && !had_effect {
            for hit in &self.held {
                self.tally
                    .apply(self.rules, &mut self.state, hit, &self.ids);
            }
            self.tally.finish(errors)
        } else {
            let hits = self.all.into_iter().flatten().chain(self.held);
            let batch = Batch {
                hits: hits.filter(|h| keep(&h.event)).collect(),
                errors,
            };
            batch.finish(self.rules, &mut RuleState::new(), &self.ids)
        };
        Report {
            replayed,
            events: self.events,
            duplicates: self.duplicates,
            bad_lines: self.bad_lines,
        }
    }
}

/// The id hashes read so far, one bit each in a table that stays in cache,
/// and the events whose bit was already set: only those can repeat an
/// earlier id, and they are checked exactly at the end.
struct SeenIds {
    bits: Vec<u64>,
    /// log2 of the number of bits.
    order: u32,
    marked: u64,
    suspects: Vec<u64>,
}

impl SeenIds {
    /// The table starts at 2^16 bits and doubles whenever it holds more
    /// than one id per 16 bits, up to 2^28 bits (32 MiB); past 16 million
    /// ids, more of them are checked at the end, still exactly.
    const FIRST_ORDER: u32 = 16;
    const MAX_ORDER: u32 = 28;

    fn new() -> Self {
        SeenIds {
            bits: vec![0; 1 << (Self::FIRST_ORDER - 6)],
            order: Self::FIRST_ORDER,
            marked: 0,
            suspects: Vec::new(),
        }
    }

    /// Marks the ids of chunk `index` (see [`IdSpans`]).
    fn mark_chunk(&mut self, index: u64, spans: &IdSpans) {
        for (pos, &(_, _, hash)) in spans.iter().enumerate() {
            self.mark(hash, event_number(index, pos));
        }
    }

    fn mark(&mut self, hash: u64, seq: u64) {
        let bit = hash >> (64 - self.order);
        let word = &mut self.bits[(bit >> 6) as usize];
        let mask = 1 << (bit & 63);
        if *word & mask != 0 {
            self.suspects.push(seq);
        }
        *word |= mask;
        self.marked += 1;
    }

    /// More ids than the table is meant to hold.
    fn is_full(&self) -> bool {
        self.order < Self::MAX_ORDER && self.marked << 4 > 1 << self.order
    }

    /// Doubles the table and marks every id read so far again.
    fn grow(&mut self, ids: &ChunkIds<'_>) {
        self.order += 1;
        self.bits = vec![0; 1 << (self.order - 6)];
        self.marked = 0;
        self.suspects.clear();
        for (index, chunk) in ids.chunks.iter().enumerate() {
            self.mark_chunk(index as u64, &chunk.spans);
        }
    }

    /// The events whose id was read before (the first reading wins),
    /// exactly: ids are compared as text.
    fn duplicates(&self, ids: &ChunkIds<'_>) -> FxHashSet<u64> {
        let mut dups = FxHashSet::default();
        if self.suspects.is_empty() {
            return dups;
        }
        let hashes: FxHashSet<u64> = self.suspects.iter().map(|&s| ids.span(s).2).collect();
        let mut first: FxHashSet<&str> = FxHashSet::default();
        for (index, chunk) in ids.chunks.iter().enumerate() {
            for (pos, &(_, _, hash)) in chunk.spans.iter().enumerate() {
                let seq = event_number(index as u64, pos);
                if hashes.contains(&hash) && !first.insert(ids.id(seq)) {
                    dups.insert(seq);
                }
            }
        }
        dups
    }
}

/// An event's number: its chunk's index in the high half, its position in
/// the chunk in the low half.
fn event_number(index: u64, pos: usize) -> u64 {
    index << 32 | pos as u64
}

/// Each event's id as `(start, end, hash)` in its chunk's id text.
type IdSpans = Vec<(u32, u32, u64)>;

/// The ids of a replay's events, by number (chunk index in the high half,
/// position in the chunk in the low half), and their inputs for reading an
/// event again.
struct ChunkIds<'i> {
    inputs: &'i [Input],
    chunks: Vec<ChunkText>,
}

/// What of a chunk outlives its parse: its events' ids and its hits' keys.
struct ChunkText {
    ids: String,
    spans: IdSpans,
    keys: String,
}

impl ChunkIds<'_> {
    /// Where event number `event`'s id is, and its hash.
    fn span(&self, event: u64) -> (u32, u32, u64) {
        self.chunks[(event >> 32) as usize].spans[(event & 0xffff_ffff) as usize]
    }
}

impl EventSource for ChunkIds<'_> {
    fn id(&self, event: u64) -> &str {
        let (a, b, _) = self.span(event);
        &self.chunks[(event >> 32) as usize].ids[a as usize..b as usize]
    }

    fn key(&self, event: u64, key: Key) -> &str {
        key.text(&self.chunks[(event >> 32) as usize].keys)
    }

    fn read(&self, at: &Location) -> Option<String> {
        use std::io::{Seek, SeekFrom};
        let Input::Path(path) = self.inputs.get(at.input as usize)? else {
            return None;
        };
        let mut file = File::open(path).ok()?;
        file.seek(SeekFrom::Start(at.offset)).ok()?;
        let mut buf = vec![0; at.len as usize];
        file.read_exact(&mut buf).ok()?;
        String::from_utf8(buf).ok().map(|s| s.trim().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Chunks of ids with the given hashes, as a replay keeps them.
    fn chunk_ids(chunks: &[Vec<(&str, u64)>]) -> ChunkIds<'static> {
        let chunks = chunks
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
                    keys: String::new(),
                }
            })
            .collect();
        ChunkIds {
            inputs: &[],
            chunks,
        }
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
            want.insert(3u64 << 32 | chunks[3].len() as u64);
            chunks[3].push((&names[i], hash(i)));
        }
        want.insert(3u64 << 32 | chunks[3].len() as u64);
        chunks[3].push((&colliding[5], 42));
        let ids = chunk_ids(&chunks);
        let mut seen = SeenIds::new();
        for (index, chunk) in ids.chunks.iter().enumerate() {
            seen.mark_chunk(index as u64, &chunk.spans);
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

    /// Mapped chunks hold whole lines, start where the last one ended, and
    /// cover the file exactly, also across mapping alignments and for lines
    /// longer than a chunk.
    #[test]
    fn mapped_chunks_cut_a_file_at_line_ends() {
        let mut text = Vec::new();
        for i in 0..400 {
            let len = [10, 150, 70_000, 3][i % 4] + i % 7;
            text.extend(std::iter::repeat_n(b'a' + (i % 26) as u8, len));
            text.push(b'\n');
        }
        text.extend_from_slice(b"last line without a newline");
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&text).unwrap();
        for chunk_size in [100, 4096, 1 << 20] {
            let (tx, rx) = mpsc::sync_channel(4096);
            let mut index = 0;
            assert!(map_chunks(&file, 3, chunk_size, &mut index, &tx).unwrap());
            drop(tx);
            let mut joined = Vec::new();
            let mut chunks = 0;
            for (n, chunk) in rx.into_iter().enumerate() {
                chunks += 1;
                assert_eq!(chunk.index, n as u64);
                assert_eq!(chunk.file, 3);
                assert_eq!(chunk.offset, Some(joined.len() as u64));
                let data: &[u8] = &chunk.data;
                assert!(!data.is_empty());
                if (joined.len() + data.len()) < text.len() {
                    assert_eq!(data.last(), Some(&b'\n'), "chunk {n} ends mid-line");
                }
                joined.extend_from_slice(data);
            }
            assert_eq!(index, chunks);
            assert!(
                joined == text,
                "chunks of {chunk_size} bytes differ from the file"
            );
        }
    }
}
