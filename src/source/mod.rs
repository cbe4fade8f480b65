//! Where events come from: the audit log API (`openai`, walked window by
//! window in `walk`) or a file (`file`), read the same way by the watcher,
//! `export` and `rulecheck --from-api`.
//!
//! A source answers one question: the events with `effective_at` in a time
//! window, as far as it shows them now. The watcher decides which windows.

mod file;
pub mod openai;
pub mod walk;

pub use openai::{ApiError, Client};

use crate::config::SourceConfig;

/// One audit log event as the source gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEvent {
    pub id: String,
    pub effective_at: i64,
    /// The event's JSON text.
    pub json: String,
}

/// Event times `since <= t < until` (no upper bound without `until`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub since: i64,
    pub until: Option<i64>,
}

impl Window {
    pub fn contains(&self, t: i64) -> bool {
        t >= self.since && self.until.is_none_or(|u| t < u)
    }
}

/// Why a source could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("{path}: cannot read the event file: {message}")]
    File { path: String, message: String },
}

impl SourceError {
    /// True when trying again cannot help.
    pub fn is_fatal(&self) -> bool {
        match self {
            SourceError::Api(e) => e.is_fatal(),
            SourceError::File { .. } => false,
        }
    }
}

/// What reading a window gave.
#[derive(Debug, Default)]
pub struct Read {
    /// In no particular order; an id may appear once only.
    pub events: Vec<RawEvent>,
    pub pages: usize,
    /// Items or lines that are not audit log events.
    pub bad: usize,
    /// Some events may be missing (a warning said why).
    pub incomplete: bool,
}

/// A configured source of events.
pub enum Source {
    Api {
        client: Client,
        /// The configured type filter without tenant-scoped types.
        event_types: Vec<String>,
        /// `None`: no tenant walk; else its type filter.
        tenant_types: Option<Vec<String>>,
    },
    File(file::FileSource),
}

/// Tenant-scoped event types: only a walk with `tenant_only=true` shows them.
pub fn is_tenant_scoped(event_type: &str) -> bool {
    event_type.starts_with("tenant.")
        || matches!(
            event_type,
            "role.bound_to_resource" | "role.unbound_from_resource"
        )
}

impl Source {
    pub fn new(cfg: &SourceConfig) -> Result<Source, SourceError> {
        Ok(match cfg {
            SourceConfig::OpenAi(o) => {
                let (tenant, plain): (Vec<String>, Vec<String>) = o
                    .event_types
                    .iter()
                    .cloned()
                    .partition(|t| is_tenant_scoped(t));
                let tenant_types = match (o.tenant_events, o.event_types.is_empty()) {
                    (false, _) => None,
                    (true, true) => Some(Vec::new()),
                    (true, false) => (!tenant.is_empty()).then_some(tenant),
                };
                Source::Api {
                    client: Client::new(o)?,
                    event_types: plain,
                    tenant_types,
                }
            }
            SourceConfig::File(f) => Source::File(file::FileSource::new(&f.path)),
        })
    }

    /// Reads every event of `window` that the source shows now: for the
    /// API, a walk and, when configured, a second walk of tenant-scoped
    /// events.
    pub async fn read(&self, window: Window) -> Result<Read, SourceError> {
        match self {
            Source::Api {
                client,
                event_types,
                tenant_types,
            } => {
                let mut read = Read::default();
                let only_tenant =
                    event_types.is_empty() && tenant_types.as_ref().is_some_and(|t| !t.is_empty());
                let mut walks = Vec::new();
                if !only_tenant {
                    walks.push((false, event_types.as_slice()));
                }
                if let Some(t) = tenant_types {
                    walks.push((true, t.as_slice()));
                }
                let mut ids = std::collections::HashSet::new();
                for (tenant_only, types) in walks {
                    let walked = walk::walk(client, window, tenant_only, types).await?;
                    read.pages += walked.pages;
                    read.bad += walked.bad_items;
                    read.incomplete |= walked.incomplete;
                    for e in walked.events {
                        if ids.insert(e.id.clone()) {
                            read.events.push(e);
                        }
                    }
                }
                Ok(read)
            }
            Source::File(f) => f.read(window),
        }
    }

    /// The longest window one read should cover before a backlog is cut
    /// into slices.
    pub fn slice(&self) -> Option<i64> {
        match self {
            Source::Api { .. } => Some(6 * 3600),
            Source::File(_) => None,
        }
    }
}

/// Reads `since <= t < until` in ascending slices of at most `slice`
/// seconds, handing each slice's events, sorted by `(effective_at, id)`, to
/// `each` before the next slice is read.
pub async fn read_range(
    source: &Source,
    since: i64,
    until: i64,
    mut each: impl FnMut(Window, Vec<RawEvent>) -> std::io::Result<()>,
) -> Result<(), RangeError> {
    let slice = source.slice().unwrap_or(i64::MAX);
    let mut t = since;
    while t < until {
        let end = t.saturating_add(slice).min(until);
        let window = Window {
            since: t,
            until: Some(end),
        };
        let mut read = source.read(window).await?;
        if read.bad > 0 {
            tracing::warn!(
                items = read.bad,
                "items that are not audit log events were skipped"
            );
        }
        read.events
            .sort_by(|a, b| (a.effective_at, &a.id).cmp(&(b.effective_at, &b.id)));
        each(window, read.events).map_err(RangeError::Write)?;
        t = end;
    }
    Ok(())
}

/// Why a range could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RangeError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("cannot write the events: {0}")]
    Write(std::io::Error),
}
