//! The links of this cluster as operators see them: each catalog row (kept by the
//! namespace, which authorizes every call) joined with the link's live status (kept here,
//! by its pull loop). The API's `upstream` calls and the metrics endpoint go through
//! [`Links`], so the join is made in this one place; the replicator takes each loop's
//! status from it.

use std::sync::Arc;

use tributary_volume::{Caller, LinkRow, LinkStart, Namespace, Result, UpstreamSpec};
use uuid::Uuid;

use crate::status::{LinkState, LinkStatus, LiveStatus, Statuses};

/// The replica links into this cluster's streams, with their live status.
pub struct Links {
    ns: Arc<Namespace>,
    statuses: Statuses,
}

impl std::fmt::Debug for Links {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Links").finish_non_exhaustive()
    }
}

/// A link as `upstream list` shows it (never its token).
#[derive(Debug, Clone)]
pub struct LinkInfo {
    pub id: Uuid,
    pub stream: String,
    pub from: String,
    pub mirror: bool,
    pub start: LinkStart,
    pub paused: bool,
    pub created_ms: i64,
    pub status: LinkStatus,
}

impl Links {
    pub fn new(ns: Arc<Namespace>) -> Arc<Links> {
        Arc::new(Links {
            ns,
            statuses: Statuses::default(),
        })
    }

    pub fn namespace(&self) -> &Arc<Namespace> {
        &self.ns
    }

    /// Adds a link into a stream of this cluster (its `admin` permission).
    pub async fn add(&self, c: &Caller, spec: UpstreamSpec) -> Result<LinkInfo> {
        let row = self.ns.add_upstream(c, spec).await?;
        Ok(self.info(&row))
    }

    /// Links into `stream` (or into every stream, when empty) whose stream the caller
    /// administers, by stream and source.
    pub async fn list(&self, c: &Caller, stream: &str) -> Result<Vec<LinkInfo>> {
        let rows = self.ns.list_upstreams(c, stream).await?;
        Ok(rows.iter().map(|r| self.info(r)).collect())
    }

    /// Pauses a link (its positions stay) or resumes it.
    pub async fn set_paused(
        &self,
        c: &Caller,
        stream: &str,
        from: &str,
        paused: bool,
    ) -> Result<LinkInfo> {
        let row = self.ns.set_upstream_paused(c, stream, from, paused).await?;
        Ok(self.info(&row))
    }

    /// Removes a link and its positions; what it copied stays.
    pub async fn remove(&self, c: &Caller, stream: &str, from: &str) -> Result<()> {
        let row = self.ns.remove_upstream(c, stream, from).await?;
        self.statuses.retain(|id| *id != row.id);
        Ok(())
    }

    /// The live status of a link, for its pull loop.
    pub(crate) fn status(&self, id: Uuid) -> Arc<LiveStatus> {
        self.statuses.of(id)
    }

    /// Forgets the statuses of links that are no longer in `rows` (removed, or their stream
    /// deleted or promoted).
    pub(crate) fn keep_only(&self, rows: &[Arc<LinkRow>]) {
        self.statuses.retain(|id| rows.iter().any(|r| r.id == *id));
    }

    fn info(&self, l: &LinkRow) -> LinkInfo {
        let mut status = self.statuses.get(l.id);
        if l.paused {
            status.paused();
        }
        LinkInfo {
            id: l.id,
            stream: l.stream.clone(),
            from: l.from.clone(),
            mirror: l.mirror,
            start: l.start,
            paused: l.paused,
            created_ms: l.created_ms,
            status,
        }
    }
}

impl LinkInfo {
    /// Whether the link is pulling (the `link_up` gauge).
    pub fn is_up(&self) -> bool {
        self.status.state() == LinkState::Running
    }
}
