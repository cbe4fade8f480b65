//! Opening inputs and cutting them into chunks for the parser threads:
//! JSON Lines in chunks of whole lines (a line longer than a chunk read to
//! its end), and inputs that are not JSON Lines (a JSON array, pretty list
//! pages) as the elements the document splitter cuts out. Inputs are read,
//! not mapped, so a file cut short while it is read only ends early.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender};

use super::document::{Element, Elements, MAX_ELEMENT, Splitter};
use super::{Input, ReadError};

/// The bytes of whole lines a chunk holds. Small enough that a parser
/// thread's passes over it (UTF-8, line ends, quotes, fields) find it in the
/// core's cache after the first; large enough that per-chunk work stays
/// rare (measured: 512 KiB is 7-10 % faster than 4 MiB on both bench mixes).
pub(super) const CHUNK_SIZE: usize = 512 << 10;

pub(super) struct Chunk {
    /// Its place in read order, given by the [`Source`] that hands it out.
    pub index: usize,
    pub file: usize,
    /// Where the chunk starts in its input, when the input can be read again
    /// (a plain file).
    pub offset: Option<u64>,
    /// Whole lines of JSON Lines, or the elements of a document.
    pub data: Vec<u8>,
    /// Bytes of the input file (compressed, for `.gz`) read since the
    /// previous chunk, for progress.
    pub input_bytes: u64,
    /// The elements of a document chunk; `None` for JSON Lines.
    pub elements: Option<Vec<Element>>,
    /// Problems the reader found: line (within the chunk for JSON Lines,
    /// of the input for documents) and message.
    pub bad: Vec<(u64, String)>,
}

/// A reader that counts the bytes read through it.
struct Counted<R> {
    inner: R,
    n: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// The bytes of one input read, for progress: compressed input counts its
/// compressed bytes (through [`Counted`]); plain input counts what its
/// chunks hold, and is read straight into them (a wrapper would make every
/// read zero its buffer first).
struct Progress {
    compressed: Option<Arc<AtomicU64>>,
    reported: u64,
}

impl Progress {
    /// The bytes read since the last call, for a chunk of `len` bytes.
    fn bytes(&mut self, len: u64) -> u64 {
        let Some(counter) = &self.compressed else {
            return len;
        };
        let now = counter.load(Ordering::Relaxed);
        let d = now.saturating_sub(self.reported);
        self.reported = now;
        d
    }
}

/// What the reader thread hands on, in read order: a chunk it read, or a
/// plain JSON Lines file for the parser threads to read themselves.
pub(super) enum Item {
    Chunk(Chunk),
    Lines(Lines),
}

/// Opens every input in turn and hands on what the parser threads take
/// (see [`Source`]): a regular file of JSON Lines as a [`Lines`] reader,
/// read by the parser threads themselves straight into their chunks, and
/// any other input (a JSON document, compressed input, a pipe) cut into
/// chunks here. Chunk indices are given by the [`Source`].
pub(super) fn read_inputs(
    inputs: &[Input],
    tx: SyncSender<Item>,
    free: Receiver<Vec<u8>>,
) -> Result<(), ReadError> {
    for (file, input) in inputs.iter().enumerate() {
        let err = |source| ReadError {
            name: input.name(),
            source,
        };
        let raw: Box<dyn Read + Send> = match input {
            Input::Path(p) => Box::new(File::open(p).map_err(err)?),
            Input::Stdin => Box::new(io::stdin()),
        };
        let mut progress = Progress {
            compressed: input.is_gzip().then(|| Arc::new(AtomicU64::new(0))),
            reported: 0,
        };
        let raw: Box<dyn Read + Send> = match &progress.compressed {
            Some(counter) => Box::new(flate2::read::MultiGzDecoder::new(Counted {
                inner: raw,
                n: counter.clone(),
            })),
            None => raw,
        };
        let mut reader = BufReader::with_capacity(1 << 20, raw);
        // A byte order mark is not part of the first line.
        let bom = reader.fill_buf().map_err(err)?.starts_with(b"\xef\xbb\xbf");
        if bom {
            reader.consume(3);
        }
        if !is_json_lines(&mut reader).map_err(err)? {
            let mut more = true;
            Splitter::new()
                .run(&mut reader, CHUNK_SIZE, &mut |e: Elements| {
                    let chunk = Chunk {
                        index: 0,
                        file,
                        offset: None,
                        input_bytes: progress.bytes(e.data.len() as u64),
                        data: e.data,
                        elements: Some(e.elements),
                        bad: e.bad,
                    };
                    more = tx.send(Item::Chunk(chunk)).is_ok();
                    more
                })
                .map_err(err)?;
            if !more {
                return Ok(());
            }
            continue;
        }
        // Only a regular file can be read again for a summary (not a pipe,
        // not a compressed stream).
        let seekable = !input.is_gzip() && input.can_read_again();
        let mut lines = Lines {
            file,
            // What the first look buffered starts the first chunk.
            carry: reader.buffer().to_vec(),
            reader: reader.into_inner(),
            offset: seekable.then_some(if bom { 3 } else { 0 }),
            progress,
            eof: false,
        };
        if seekable {
            if tx.send(Item::Lines(lines)).is_err() {
                return Ok(());
            }
            continue;
        }
        loop {
            let data = free.try_recv().unwrap_or_default();
            let Some(chunk) = lines.next(data).map_err(err)? else {
                break;
            };
            if tx.send(Item::Chunk(chunk)).is_err() {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// One input of JSON Lines, cut into chunks of whole lines; past the first
/// look, read straight into the chunks (going through a buffer would copy
/// every byte once more).
pub(super) struct Lines {
    file: usize,
    reader: Box<dyn Read + Send>,
    /// The start of a line that the last chunk cut.
    carry: Vec<u8>,
    /// Where the next chunk starts in the input, when it can be read again.
    offset: Option<u64>,
    progress: Progress,
    eof: bool,
}

impl Lines {
    /// The input's index among the inputs.
    pub fn file(&self) -> usize {
        self.file
    }

    /// The next chunk, read into `data` (a spare buffer); `None` at the end
    /// of the input.
    pub fn next(&mut self, mut data: Vec<u8>) -> io::Result<Option<Chunk>> {
        while !self.eof {
            data.clear();
            data.reserve(CHUNK_SIZE + self.carry.len() + 128 * 1024);
            data.append(&mut self.carry);
            let mut bad = Vec::new();
            let mut dropped = 0;
            self.eof = fill(&mut self.reader, &mut data, CHUNK_SIZE)?;
            if !self.eof {
                match memchr::memrchr(b'\n', &data) {
                    Some(nl) => {
                        self.carry.extend_from_slice(&data[nl + 1..]);
                        data.truncate(nl + 1);
                    }
                    // One line longer than a chunk: read on to its end.
                    None => {
                        (self.eof, dropped) =
                            finish_line(&mut self.reader, &mut data, &mut self.carry, &mut bad)?;
                    }
                }
            }
            if !data.is_empty() || !bad.is_empty() {
                let len = data.len() as u64 + dropped;
                let chunk = Chunk {
                    index: 0,
                    file: self.file,
                    offset: self.offset,
                    input_bytes: self.progress.bytes(len),
                    data,
                    elements: None,
                    bad,
                };
                if let Some(o) = &mut self.offset {
                    *o += len;
                }
                return Ok(Some(chunk));
            }
        }
        Ok(None)
    }
}

/// Where the parser threads take their chunks, one at a time and in read
/// order (they share it behind a lock): from the reader thread, or, for a
/// regular file of JSON Lines, from the file itself, read by the thread
/// that takes the chunk. That thread then finds the chunk in its own
/// core's cache, and a run over plain files keeps no thread busy beside
/// the parser threads.
pub(super) struct Source<'i> {
    inputs: &'i [Input],
    items: Option<Receiver<Item>>,
    /// Spare buffers for the reader thread.
    free: Sender<Vec<u8>>,
    lines: Option<Lines>,
    /// The index of the next chunk.
    index: usize,
    /// A plain file that could not be read.
    error: Option<ReadError>,
}

impl<'i> Source<'i> {
    pub fn new(inputs: &'i [Input], items: Receiver<Item>, free: Sender<Vec<u8>>) -> Self {
        Source {
            inputs,
            items: Some(items),
            free,
            lines: None,
            index: 0,
            error: None,
        }
    }

    /// The next chunk in read order, read into `spare` when it is read
    /// here; `None` once every input is read, after a read error, or after
    /// [`Source::close`].
    pub fn next(&mut self, mut spare: Option<Vec<u8>>) -> Option<Chunk> {
        loop {
            if let Some(lines) = &mut self.lines {
                match lines.next(spare.take().unwrap_or_default()) {
                    Ok(Some(chunk)) => return Some(self.numbered(chunk)),
                    Ok(None) => self.lines = None,
                    Err(source) => {
                        self.error = Some(ReadError {
                            name: self.inputs[lines.file()].name(),
                            source,
                        });
                        self.close();
                        return None;
                    }
                }
                continue;
            }
            if let Some(buf) = spare.take() {
                let _ = self.free.send(buf);
            }
            match self.items.as_ref()?.recv() {
                Ok(Item::Chunk(chunk)) => return Some(self.numbered(chunk)),
                Ok(Item::Lines(lines)) => self.lines = Some(lines),
                Err(_) => {
                    self.close();
                    return None;
                }
            }
        }
    }

    fn numbered(&mut self, mut chunk: Chunk) -> Chunk {
        chunk.index = self.index;
        self.index += 1;
        chunk
    }

    /// Stops taking chunks: the reader thread then stops too.
    pub fn close(&mut self) {
        self.items = None;
        self.lines = None;
    }

    /// The error that ended reading a plain file, if one did.
    pub fn take_error(&mut self) -> Option<ReadError> {
        self.error.take()
    }
}

/// Reads on until the line that fills `data` ends, and moves what follows
/// it to `carry`. A line longer than [`MAX_ELEMENT`] is replaced by an empty
/// line (keeping the line count) and reported in `bad`. Returns whether the
/// input ended, and how many bytes of the line were dropped.
fn finish_line(
    reader: &mut impl Read,
    data: &mut Vec<u8>,
    carry: &mut Vec<u8>,
    bad: &mut Vec<(u64, String)>,
) -> io::Result<(bool, u64)> {
    let mut searched = 0;
    loop {
        if let Some(nl) = memchr::memchr(b'\n', &data[searched..]) {
            let end = searched + nl + 1;
            carry.extend_from_slice(&data[end..]);
            data.truncate(end);
            return Ok((false, 0));
        }
        if data.len() > MAX_ELEMENT {
            bad.push((
                1,
                format!("a line longer than {} MiB is skipped", MAX_ELEMENT >> 20),
            ));
            let mut dropped = data.len() as u64;
            data.clear();
            let mut buf = vec![0u8; 64 << 10];
            loop {
                let n = reader.read(&mut buf)?;
                if n == 0 {
                    return Ok((true, dropped));
                }
                if let Some(nl) = memchr::memchr(b'\n', &buf[..n]) {
                    carry.extend_from_slice(&buf[nl + 1..n]);
                    // The line's own newline is kept.
                    data.push(b'\n');
                    return Ok((false, dropped + nl as u64));
                }
                dropped += n as u64;
            }
        }
        searched = data.len();
        let before = data.len();
        reader.by_ref().take(CHUNK_SIZE as u64).read_to_end(data)?;
        if data.len() == before {
            return Ok((true, 0));
        }
    }
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
fn is_json_lines(reader: &mut BufReader<Box<dyn Read + Send>>) -> io::Result<bool> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// Every chunk a replay of `text` (as a file) gets.
    fn chunks_of(text: &[u8]) -> Vec<Chunk> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        std::fs::write(&path, text).unwrap();
        let inputs = [Input::Path(path)];
        let (tx, rx) = mpsc::sync_channel(4096);
        let (free_tx, free_rx) = mpsc::channel();
        read_inputs(&inputs, tx, free_rx).unwrap();
        let mut source = Source::new(&inputs, rx, free_tx);
        let chunks = std::iter::from_fn(|| source.next(None)).collect();
        assert!(source.take_error().is_none());
        chunks
    }

    /// Plain files of JSON Lines (read by the threads that take their
    /// chunks) and inputs cut by the reader thread (a JSON document,
    /// compressed lines) come out of one source in input order, numbered
    /// in a row, each chunk naming its input.
    #[test]
    fn a_source_hands_out_every_input_in_order() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let line = |f: usize, i: usize| {
            format!("{{\"f\":{f},\"i\":{i},\"pad\":\"{}\"}}\n", "x".repeat(200))
        };
        let lines = |f: usize, n: usize| (0..n).map(|i| line(f, i)).collect::<String>();
        let plain_a = dir.path().join("a.jsonl");
        std::fs::write(&plain_a, lines(0, 6000)).unwrap();
        let doc = dir.path().join("b.json");
        std::fs::write(&doc, "[\n{\"f\":1}\n,\n{\"f\":1}\n]\n").unwrap();
        let gz = dir.path().join("c.jsonl.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(lines(2, 5000).as_bytes()).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        let plain_d = dir.path().join("d.jsonl");
        std::fs::write(&plain_d, lines(3, 100)).unwrap();
        let inputs = [plain_a, doc, gz, plain_d].map(Input::Path);
        let (tx, rx) = mpsc::sync_channel(1);
        let (free_tx, free_rx) = mpsc::channel();
        let mut source = Source::new(&inputs, rx, free_tx);
        let chunks: Vec<Chunk> = std::thread::scope(|s| {
            let reader = s.spawn(|| read_inputs(&inputs, tx, free_rx));
            let chunks = std::iter::from_fn(|| source.next(None)).collect();
            reader.join().unwrap().unwrap();
            chunks
        });
        assert!(source.take_error().is_none());
        let mut text: Vec<String> = vec![String::new(); 4];
        let mut elements = 0;
        for (n, chunk) in chunks.iter().enumerate() {
            assert_eq!(chunk.index, n);
            assert!(
                n == 0 || chunks[n - 1].file <= chunk.file,
                "inputs out of order"
            );
            match &chunk.elements {
                Some(e) => elements += e.len(),
                None => text[chunk.file].push_str(std::str::from_utf8(&chunk.data).unwrap()),
            }
            // Only plain files can be read again.
            assert_eq!(chunk.offset.is_some(), chunk.file == 0 || chunk.file == 3);
        }
        assert!(chunks.iter().filter(|c| c.file == 0).count() > 1);
        assert!(chunks.iter().filter(|c| c.file == 2).count() > 1);
        assert_eq!(elements, 2);
        assert!(text[0] == lines(0, 6000) && text[2] == lines(2, 5000) && text[3] == lines(3, 100));
    }

    /// Chunks hold whole lines, start where the last one ended and cover
    /// the file exactly, also for lines longer than a chunk; a byte order
    /// mark is left out.
    #[test]
    fn chunks_cut_a_file_at_line_ends() {
        let mut text = b"\xef\xbb\xbf".to_vec();
        for i in 0..40 {
            let len = [10, 150, 700_000, 3, CHUNK_SIZE + 5][i % 5] + i % 7;
            text.extend(std::iter::repeat_n(b'a' + (i % 26) as u8, len));
            text.push(b'\n');
        }
        text.extend_from_slice(b"last line without a newline");
        let chunks = chunks_of(&text);
        let mut joined = Vec::new();
        for (n, chunk) in chunks.iter().enumerate() {
            assert_eq!(chunk.index, n);
            assert_eq!(chunk.offset, Some(3 + joined.len() as u64));
            assert!(chunk.bad.is_empty());
            if 3 + joined.len() + chunk.data.len() < text.len() {
                assert_eq!(chunk.data.last(), Some(&b'\n'), "chunk {n} ends mid-line");
            }
            joined.extend_from_slice(&chunk.data);
        }
        assert!(joined == text[3..], "the chunks differ from the file");
    }
}
