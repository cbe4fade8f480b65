//! Opening inputs and cutting them into chunks for the parser threads:
//! JSON Lines in chunks of whole lines (a line longer than a chunk read to
//! its end), and inputs that are not JSON Lines (a JSON array, pretty list
//! pages) as the elements the document splitter cuts out. Inputs are read,
//! not mapped, so a file cut short while it is read only ends early.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};

use super::document::{Element, Elements, MAX_ELEMENT, Splitter};
use super::{Input, ReadError};

/// The bytes of whole lines a chunk holds. Small enough that a parser
/// thread's passes over it (UTF-8, line ends, quotes, fields) find it in the
/// core's cache after the first; large enough that per-chunk work stays
/// rare (measured: 512 KiB is 7-10 % faster than 4 MiB on both bench mixes).
pub(super) const CHUNK_SIZE: usize = 512 << 10;

pub(super) struct Chunk {
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

/// Cuts every input into chunks of whole lines (or of document elements)
/// and sends them, in read order.
pub(super) fn read_inputs(
    inputs: &[Input],
    tx: SyncSender<Chunk>,
    free: Receiver<Vec<u8>>,
) -> Result<(), ReadError> {
    let mut index = 0usize;
    for (file, input) in inputs.iter().enumerate() {
        let err = |source| ReadError {
            name: input.name(),
            source,
        };
        let raw: Box<dyn Read> = match input {
            Input::Path(p) => Box::new(File::open(p).map_err(err)?),
            Input::Stdin => Box::new(io::stdin()),
        };
        let mut progress = Progress {
            compressed: input.is_gzip().then(|| Arc::new(AtomicU64::new(0))),
            reported: 0,
        };
        let raw: Box<dyn Read> = match &progress.compressed {
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
                        index,
                        file,
                        offset: None,
                        input_bytes: progress.bytes(e.data.len() as u64),
                        data: e.data,
                        elements: Some(e.elements),
                        bad: e.bad,
                    };
                    index += 1;
                    more = tx.send(chunk).is_ok();
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
        // Past the first look, read straight into the chunks: going through
        // the buffer would copy every byte once more.
        // What the first look buffered starts the first chunk.
        let mut carry: Vec<u8> = reader.buffer().to_vec();
        let mut reader = reader.into_inner();
        let mut offset = if bom { 3u64 } else { 0 };
        loop {
            let mut data = free.try_recv().unwrap_or_default();
            data.clear();
            data.reserve(CHUNK_SIZE + carry.len() + 128 * 1024);
            data.append(&mut carry);
            let mut bad = Vec::new();
            let mut dropped = 0;
            let mut eof = fill(&mut reader, &mut data, CHUNK_SIZE).map_err(err)?;
            if !eof {
                match memchr::memrchr(b'\n', &data) {
                    Some(nl) => {
                        carry.extend_from_slice(&data[nl + 1..]);
                        data.truncate(nl + 1);
                    }
                    // One line longer than a chunk: read on to its end.
                    None => {
                        (eof, dropped) = finish_line(&mut reader, &mut data, &mut carry, &mut bad)
                            .map_err(err)?;
                    }
                }
            }
            if !data.is_empty() || !bad.is_empty() {
                let len = data.len() as u64 + dropped;
                let chunk = Chunk {
                    index,
                    file,
                    offset: seekable.then_some(offset),
                    input_bytes: progress.bytes(len),
                    data,
                    elements: None,
                    bad,
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// Every chunk a replay of `text` (as a file) gets.
    fn chunks_of(text: &[u8]) -> Vec<Chunk> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        std::fs::write(&path, text).unwrap();
        let (tx, rx) = mpsc::sync_channel(4096);
        let (_free_tx, free_rx) = mpsc::channel();
        read_inputs(&[Input::Path(path)], tx, free_rx).unwrap();
        rx.into_iter().collect()
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
