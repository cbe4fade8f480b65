//! A file as a source: JSON Lines (events or saved list pages, one per
//! line) or one JSON array, read whole at every poll, so that a file that
//! grows behaves like an audit log that gains events.

use std::path::{Path, PathBuf};

use serde_json::value::RawValue;

use super::{RawEvent, Read, SourceError, Window};
use crate::event::{Event, Parsed};

pub struct FileSource {
    path: PathBuf,
}

impl FileSource {
    pub fn new(path: &Path) -> FileSource {
        FileSource {
            path: path.to_owned(),
        }
    }

    pub fn read(&self, window: Window) -> Result<Read, SourceError> {
        let text = std::fs::read_to_string(&self.path).map_err(|e| SourceError::File {
            path: self.path.display().to_string(),
            message: e.to_string(),
        })?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let mut read = Read::default();
        let mut ids = std::collections::HashSet::new();
        let mut take = |json: &str, line: usize, read: &mut Read| match Event::parse_any(json) {
            Ok(Parsed::Event(ev)) => {
                if window.contains(ev.effective_at()) && ids.insert(ev.id().to_owned()) {
                    read.events.push(RawEvent {
                        id: ev.id().to_owned(),
                        effective_at: ev.effective_at(),
                        json: json.to_owned(),
                    });
                }
            }
            Ok(Parsed::Page(items)) => {
                for item in items {
                    match Event::parse(item.get()) {
                        Ok(ev)
                            if window.contains(ev.effective_at())
                                && ids.insert(ev.id().to_owned()) =>
                        {
                            read.events.push(RawEvent {
                                id: ev.id().to_owned(),
                                effective_at: ev.effective_at(),
                                json: item.get().to_owned(),
                            });
                        }
                        Ok(_) => {}
                        Err(e) => {
                            read.bad += 1;
                            tracing::warn!(file = %self.path.display(), line, error = %crate::text::plain(&e.to_string()), "skipped a list item that is not an event");
                        }
                    }
                }
            }
            Err(e) => {
                read.bad += 1;
                tracing::warn!(file = %self.path.display(), line, error = %crate::text::plain(&e.to_string()), "skipped a line that is not an event");
            }
        };
        if text.trim_start().starts_with('[') {
            match serde_json::from_str::<Vec<&RawValue>>(text) {
                Ok(items) => {
                    for item in items {
                        take(item.get(), 0, &mut read);
                    }
                }
                Err(e) => {
                    return Err(SourceError::File {
                        path: self.path.display().to_string(),
                        message: format!("not a JSON array of events: {e}"),
                    });
                }
            }
        } else {
            for (i, line) in text.lines().enumerate() {
                let line_text = line.trim();
                if !line_text.is_empty() {
                    take(line_text, i + 1, &mut read);
                }
            }
        }
        Ok(read)
    }
}
