//! Inputs that are not JSON Lines (a JSON array of events, pretty-printed
//! list pages, several documents one after another), cut into their
//! elements as they stream in, never held whole.
//!
//! The splitter only tracks strings and brackets: each element of a
//! top-level array, and each top-level object, goes to the parser threads
//! with the line it starts on. A malformed element is reported on its own
//! and the others are kept; an element longer than [`MAX_ELEMENT`] is
//! skipped and reported, so a stream of whitespace or one endless value
//! cannot exhaust memory.

use std::io::{self, Read};

/// The longest element (or line) read; longer ones are reported and skipped.
pub(super) const MAX_ELEMENT: usize = 64 << 20;

/// One element of a document chunk: where its bytes are in the chunk's
/// data, and the input line it starts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Element {
    pub start: usize,
    pub end: usize,
    pub line: u64,
}

/// A chunk's worth of elements, with problems the splitter found
/// (input line, message).
#[derive(Debug, Default)]
pub(super) struct Elements {
    pub data: Vec<u8>,
    pub elements: Vec<Element>,
    pub bad: Vec<(u64, String)>,
}

/// The splitter's place in the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Between top-level values.
    Top,
    /// Inside a top-level array, between elements.
    Array,
    /// Inside an element.
    Element,
}

pub(super) struct Splitter {
    place: Place,
    /// Bracket depth inside the current element.
    depth: u32,
    in_string: bool,
    escaped: bool,
    /// The current element is a scalar (no brackets): it ends at a
    /// delimiter.
    scalar: bool,
    /// The current element is inside a top-level array.
    in_array: bool,
    line: u64,
    start_line: u64,
    start: usize,
    /// The current element grew past the limit: its bytes are dropped.
    too_long: bool,
    /// A UTF-8 byte order mark may still come first.
    at_start: bool,
}

impl Splitter {
    pub fn new() -> Splitter {
        Splitter {
            place: Place::Top,
            depth: 0,
            in_string: false,
            escaped: false,
            scalar: false,
            in_array: false,
            line: 1,
            start_line: 1,
            start: 0,
            too_long: false,
            at_start: true,
        }
    }

    /// Splits all of `reader`, handing a chunk to `send` whenever it holds
    /// about `chunk_size` bytes of elements; `send` returns false to stop.
    pub fn run(
        mut self,
        reader: &mut dyn Read,
        chunk_size: usize,
        send: &mut dyn FnMut(Elements) -> bool,
    ) -> io::Result<()> {
        let mut buf = vec![0u8; 1 << 20];
        let mut out = Elements::default();
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let mut bytes = &buf[..n];
            if self.at_start {
                self.at_start = false;
                bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
            }
            self.feed(bytes, &mut out);
            if out.data.len() >= chunk_size && self.place != Place::Element {
                if !send(std::mem::take(&mut out)) {
                    return Ok(());
                }
            } else if out.data.len() >= chunk_size && self.start > 0 {
                // Hand over the complete elements; the one in progress
                // moves to the front of the next chunk.
                let rest = out.data.split_off(self.start);
                let done = std::mem::replace(
                    &mut out,
                    Elements {
                        data: rest,
                        ..Elements::default()
                    },
                );
                self.start = 0;
                if !send(done) {
                    return Ok(());
                }
            }
        }
        if self.place == Place::Element {
            if self.scalar && !self.in_string {
                self.close(&mut out);
            } else {
                out.bad.push((
                    self.start_line,
                    "the input ends inside this value; the rest of the input is skipped".into(),
                ));
            }
        } else if self.in_array {
            out.bad.push((
                self.line,
                "the input ends inside a JSON array (no `]`)".into(),
            ));
        }
        if !out.data.is_empty() || !out.bad.is_empty() {
            send(out);
        }
        Ok(())
    }

    fn feed(&mut self, bytes: &[u8], out: &mut Elements) {
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            match self.place {
                Place::Top | Place::Array => {
                    match b {
                        b'\n' => self.line += 1,
                        b' ' | b'\t' | b'\r' => {}
                        b',' if self.place == Place::Array => {}
                        b']' if self.place == Place::Array => {
                            self.place = Place::Top;
                            self.in_array = false;
                        }
                        b'[' if self.place == Place::Top => {
                            self.place = Place::Array;
                            self.in_array = true;
                        }
                        _ => {
                            self.begin(out);
                            continue;
                        }
                    }
                    i += 1;
                }
                Place::Element => {
                    // Copy a run of plain bytes at once.
                    let run = bytes[i..]
                        .iter()
                        .position(|&c| {
                            matches!(
                                c,
                                b'"' | b'\\'
                                    | b'{'
                                    | b'}'
                                    | b'['
                                    | b']'
                                    | b'\n'
                                    | b','
                                    | b' '
                                    | b'\t'
                                    | b'\r'
                            )
                        })
                        .unwrap_or(bytes.len() - i);
                    if run > 0 {
                        self.push(&bytes[i..i + run], out);
                        i += run;
                        continue;
                    }
                    if self.step(b, out) {
                        // The element ended before `b`, which is read again
                        // outside it.
                        continue;
                    }
                    i += 1;
                }
            }
        }
    }

    /// Starts an element at the current byte.
    fn begin(&mut self, out: &mut Elements) {
        self.place = Place::Element;
        self.depth = 0;
        self.in_string = false;
        self.escaped = false;
        self.scalar = true;
        self.too_long = false;
        self.start = out.data.len();
        self.start_line = self.line;
    }

    /// Reads one structural byte of an element; true when the element
    /// ended before it (the byte is not consumed).
    fn step(&mut self, b: u8, out: &mut Elements) -> bool {
        if b == b'\n' {
            self.line += 1;
        }
        if self.in_string {
            self.push(&[b], out);
            if self.escaped {
                self.escaped = false;
            } else if b == b'\\' {
                self.escaped = true;
            } else if b == b'"' {
                self.in_string = false;
                if self.scalar && self.depth == 0 {
                    self.close(out);
                }
            }
            return false;
        }
        match b {
            b'"' => {
                self.in_string = true;
                self.push(&[b], out);
            }
            b'{' | b'[' => {
                self.scalar = false;
                self.depth += 1;
                self.push(&[b], out);
            }
            b'}' | b']' if self.depth > 0 => {
                self.depth -= 1;
                self.push(&[b], out);
                if self.depth == 0 {
                    self.close(out);
                }
            }
            b'}' | b']' | b',' | b' ' | b'\t' | b'\r' | b'\n' if self.depth == 0 => {
                // A scalar element ends at a delimiter.
                self.close(out);
                if b == b'\n' {
                    // Counted again when read outside the element.
                    self.line -= 1;
                }
                return true;
            }
            _ => self.push(&[b], out),
        }
        false
    }

    fn push(&mut self, bytes: &[u8], out: &mut Elements) {
        if self.too_long {
            return;
        }
        if out.data.len() - self.start + bytes.len() > MAX_ELEMENT {
            self.too_long = true;
            out.data.truncate(self.start);
            out.bad.push((
                self.start_line,
                format!("a value longer than {} MiB is skipped", MAX_ELEMENT >> 20),
            ));
            return;
        }
        out.data.extend_from_slice(bytes);
    }

    /// Ends the current element where the data ends.
    fn close(&mut self, out: &mut Elements) {
        let end = out.data.len();
        if !self.too_long {
            out.elements.push(Element {
                start: self.start,
                end,
                line: self.start_line,
            });
        }
        self.place = if self.in_array {
            Place::Array
        } else {
            Place::Top
        };
        self.start = out.data.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Elements and problems, each with its line.
    type Lines = Vec<(u64, String)>;

    fn split(text: &[u8], chunk: usize) -> (Lines, Lines) {
        let mut elements = Vec::new();
        let mut bad = Vec::new();
        Splitter::new()
            .run(&mut &text[..], chunk, &mut |e: Elements| {
                for el in &e.elements {
                    elements.push((
                        el.line,
                        String::from_utf8_lossy(&e.data[el.start..el.end]).into_owned(),
                    ));
                }
                bad.extend(e.bad);
                true
            })
            .unwrap();
        (elements, bad)
    }

    #[test]
    fn arrays_objects_and_scalars_are_cut_at_their_ends() {
        let text = b"\xef\xbb\xbf[\n  {\"id\": \"a\", \"s\": \"x]}\\\"\"},\n  {\"id\": \"b\", \"n\": [1, {\"c\": 2}]}, 42, \"str\", nul\n]\n{\"object\": \"list\",\n \"data\": []}\n";
        for chunk in [1, 7, 1 << 20] {
            let (elements, bad) = split(text, chunk);
            let texts: Vec<&str> = elements.iter().map(|(_, t)| t.as_str()).collect();
            assert_eq!(
                texts,
                [
                    "{\"id\": \"a\", \"s\": \"x]}\\\"\"}",
                    "{\"id\": \"b\", \"n\": [1, {\"c\": 2}]}",
                    "42",
                    "\"str\"",
                    "nul",
                    "{\"object\": \"list\",\n \"data\": []}",
                ],
                "chunk {chunk}"
            );
            let lines: Vec<u64> = elements.iter().map(|(l, _)| *l).collect();
            assert_eq!(lines, [2, 3, 3, 3, 3, 5]);
            assert!(bad.is_empty(), "{bad:?}");
        }
    }

    #[test]
    fn a_broken_value_keeps_the_good_ones_before_it() {
        let (elements, bad) = split(b"[{\"id\":\"a\"},\n{\"id\":\"b\",\n{\"id\":\"c\"}", 1 << 20);
        assert_eq!(elements.len(), 1);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].0, 2);
    }

    #[test]
    fn whitespace_and_endless_values_do_not_grow_memory() {
        struct Endless(u8, usize);
        impl Read for Endless {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.1 == 0 {
                    return Ok(0);
                }
                let n = buf.len().min(self.1);
                buf[..n].fill(self.0);
                self.1 -= n;
                Ok(n)
            }
        }
        let mut most = 0;
        let mut count = |e: Elements| {
            most = most.max(e.data.capacity());
            true
        };
        // 200 MB of spaces inside an array.
        let mut r = (&b"["[..]).chain(Endless(b' ', 200 << 20));
        Splitter::new().run(&mut r, 4 << 20, &mut count).unwrap();
        // An endless string.
        let mut r = (&b"[\""[..]).chain(Endless(b'a', 200 << 20));
        Splitter::new().run(&mut r, 4 << 20, &mut count).unwrap();
        assert!(most <= 2 * MAX_ELEMENT, "{most}");
    }
}
