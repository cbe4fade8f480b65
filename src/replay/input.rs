//! Opening inputs and cutting them into chunks for the parser threads:
//! plain JSON Lines files are mapped in windows of whole lines, pipes and
//! compressed inputs are read, and an input that is not JSON Lines (a JSON
//! array, pretty-printed list pages) goes as one document.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::sync::mpsc::{Receiver, SyncSender};

use super::{Input, ReadError};

pub(super) const CHUNK_SIZE: usize = 4 << 20;

pub(super) struct Chunk {
    pub index: usize,
    pub file: usize,
    /// Where the chunk starts in its input, when the input can be read again
    /// (a plain file).
    pub offset: Option<u64>,
    /// A whole input that is not JSON Lines (a JSON array, pretty list pages).
    pub document: bool,
    pub data: Bytes,
}

/// A chunk's bytes: read into a buffer (pipes, compressed input, documents)
/// or mapped from a plain file, which spares copying them and lets the
/// kernel drop them as soon as the chunk is unmapped.
pub(super) enum Bytes {
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

/// Cuts every input into chunks of whole lines (or one chunk per input that
/// is not JSON Lines) and sends them, in read order.
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
    index: &mut usize,
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::mpsc;

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
                assert_eq!(chunk.index, n);
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
