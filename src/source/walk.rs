//! One walk of a time window of the audit log, page by page with
//! `after=last_id`, guarded against a cursor that does not advance, an
//! order that is not newest first and runaway walks; when the cursor is
//! stuck, the rest of the window is walked by time instead.

use std::collections::HashSet;

use super::openai::{ApiError, Client, Page, Query};
use super::{RawEvent, Window};

/// The most pages one walk reads before it stops and warns.
pub const PAGE_CAP: usize = 20_000;

/// What one walk found.
#[derive(Debug, Default)]
pub struct Walked {
    pub events: Vec<RawEvent>,
    pub pages: usize,
    /// Page items that were not audit log events.
    pub bad_items: usize,
    /// The walk could not be completed as documented; some events may be
    /// missing (a warning says which).
    pub incomplete: bool,
}

/// Walks `window` with the given filters, newest first.
pub async fn walk(
    client: &Client,
    window: Window,
    tenant_only: bool,
    event_types: &[String],
) -> Result<Walked, ApiError> {
    let base = Query {
        gte: Some(window.since),
        lt: window.until,
        tenant_only,
        event_types: event_types.to_vec(),
        ..Query::default()
    };
    let mut w = Walk {
        window,
        ids: HashSet::new(),
        out: Walked::default(),
    };
    let mut q = base.clone();
    let mut prev_oldest: Option<i64> = None;
    let mut order_warned = false;
    loop {
        let page = client.page(&q).await?;
        let (_, repeated) = w.take(&page);
        let newest = page.events.iter().map(|e| e.effective_at).max();
        let oldest = page.events.iter().map(|e| e.effective_at).min();
        if !page.events.is_empty() && repeated == page.events.len() && page.has_more {
            tracing::warn!(
                cursor = q.after.as_deref().unwrap_or(""),
                "the audit log cursor did not advance; walking the rest of the window by time"
            );
            let below = oldest.into_iter().chain(prev_oldest).min();
            return w.by_time(client, base, below).await;
        }
        if let (Some(prev), Some(newest)) = (prev_oldest, newest)
            && newest > prev
            && !order_warned
        {
            order_warned = true;
            tracing::warn!(
                "the audit log did not answer newest first; the walk goes on by cursor and every event is still sorted before evaluation"
            );
        }
        if w.out.pages >= PAGE_CAP {
            tracing::warn!(
                pages = w.out.pages,
                "the walk of one window reached the page cap and stopped: some events may be missing"
            );
            w.out.incomplete = true;
            break;
        }
        // A page wholly below the window start: the server ignored the filter.
        if !page.has_more || page.events.is_empty() || newest.is_some_and(|n| n < window.since) {
            break;
        }
        prev_oldest = oldest.into_iter().chain(prev_oldest).min();
        match page.last_id {
            Some(id) => q.after = Some(id),
            None => break,
        }
    }
    Ok(w.out)
}

struct Walk {
    window: Window,
    /// Every id this walk was shown, inside the window or not.
    ids: HashSet<String>,
    out: Walked,
}

impl Walk {
    /// Keeps a page's new events of the window; returns how many were new
    /// and how many the walk had already been shown.
    fn take(&mut self, page: &Page) -> (usize, usize) {
        self.out.pages += 1;
        self.out.bad_items += page.bad_items.len();
        let (mut fresh, mut repeated) = (0, 0);
        for e in &page.events {
            if !self.ids.insert(e.id.clone()) {
                repeated += 1;
                continue;
            }
            if self.window.contains(e.effective_at) {
                self.out.events.push(e.clone());
                fresh += 1;
            }
        }
        (fresh, repeated)
    }

    /// Walks down from `below` (inclusive) by time: each request asks for
    /// the newest events at or before the oldest second seen so far, and
    /// drops the ids already taken. Stalls only when more than a page of
    /// events share one second, which is reported.
    async fn by_time(
        mut self,
        client: &Client,
        base: Query,
        below: Option<i64>,
    ) -> Result<Walked, ApiError> {
        let mut lte = below.or(self.window.until.map(|u| u - 1));
        loop {
            let q = Query {
                lte,
                ..base.clone()
            };
            let page = client.page(&q).await?;
            let (fresh, _) = self.take(&page);
            let Some(oldest) = page.events.iter().map(|e| e.effective_at).min() else {
                break;
            };
            if page.events.len() < client.page_size() || !page.has_more {
                break;
            }
            let next = match lte {
                Some(l) if fresh == 0 && oldest >= l => {
                    tracing::warn!(
                        second = l,
                        limit = client.page_size(),
                        "more events than one page share one second of the audit log; some of that second may be missed"
                    );
                    self.out.incomplete = true;
                    l - 1
                }
                _ => oldest,
            };
            if next < self.window.since || self.out.pages >= PAGE_CAP {
                break;
            }
            lte = Some(next);
        }
        Ok(self.out)
    }
}
