//! The ids of a replay's events by number, the key text their hits point
//! into, and the inputs to read an event again from, for the ordered half.

use std::cell::RefCell;
use std::fs::File;

use super::Input;
use crate::engine::EventNo;
use crate::engine::check::{Keys, Location};
use crate::engine::tally::{EventSource, KeyIds};

/// Each event's id as `(start, end, hash)` in its chunk's id text.
pub(super) type IdSpans = Vec<(u32, u32, u64)>;

/// The ids of a replay's events, by number, and their inputs for reading
/// an event again.
pub(super) struct ChunkIds<'i> {
    pub inputs: &'i [Input],
    pub chunks: Vec<ChunkText>,
    /// Inputs opened for reading events again, by index, kept open.
    opened: RefCell<Vec<Option<Option<File>>>>,
}

/// What of a chunk outlives its parse: its events' ids and its hits' keys.
pub(super) struct ChunkText {
    pub ids: String,
    pub spans: IdSpans,
    pub keys: Keys,
    /// The numbers of `keys` in the rule state.
    pub key_ids: RefCell<KeyIds>,
}

impl<'i> ChunkIds<'i> {
    pub fn new(inputs: &'i [Input]) -> ChunkIds<'i> {
        ChunkIds {
            inputs,
            chunks: Vec::new(),
            opened: RefCell::new(Vec::new()),
        }
    }

    /// Where event `event`'s id is, and its hash.
    pub fn span(&self, event: EventNo) -> (u32, u32, u64) {
        self.chunks[event.chunk()].spans[event.pos()]
    }
}

impl EventSource for ChunkIds<'_> {
    fn id(&self, event: EventNo) -> &str {
        let (a, b, _) = self.span(event);
        &self.chunks[event.chunk()].ids[a as usize..b as usize]
    }

    fn keys(&self, event: EventNo) -> &Keys {
        &self.chunks[event.chunk()].keys
    }

    fn key_ids(&self, event: EventNo) -> &RefCell<KeyIds> {
        &self.chunks[event.chunk()].key_ids
    }

    fn read(&self, at: &Location) -> Option<String> {
        let index = at.input as usize;
        let mut opened = self.opened.borrow_mut();
        if opened.len() <= index {
            opened.resize_with(index + 1, || None);
        }
        let file = opened[index].get_or_insert_with(|| match self.inputs.get(index) {
            Some(Input::Path(path)) => File::open(path).ok(),
            _ => None,
        });
        let mut buf = vec![0; at.len as usize];
        read_at(file.as_ref()?, &mut buf, at.offset).ok()?;
        String::from_utf8(buf).ok().map(|s| s.trim().to_owned())
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(not(unix))]
fn read_at(mut file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(buf)
}
