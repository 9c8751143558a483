//! Replica links (DESIGN §6) as the namespace sees them: link rows in the catalog, their
//! live status, and offset-keeping mirrors (read-only streams, promoted on failover).
//!
//! The upstream side of a pull is `pull.rs`; applying what was pulled is `apply.rs`; the
//! loop that connects the two clusters is `crates/replication`.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tributary_core::names::StreamPath;
use tributary_storage::{CatalogTx, LinkId};
use uuid::Uuid;

use super::{Namespace, blocking};
use crate::auth::Caller;
use crate::model::*;
use crate::{Error, Result};

/// What `upstream add` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamSpec {
    pub stream: String,
    /// `URL/SOURCE_STREAM`.
    pub from: String,
    pub token: Option<String>,
    pub token_file: Option<String>,
    /// PEM text, as sent.
    pub ca_cert: Option<Vec<u8>>,
    pub start: LinkStart,
    pub mirror: bool,
    pub paused: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LinkState {
    Paused,
    #[default]
    Connecting,
    Running,
}

/// A link's live figures, kept by the replicator (not persisted: positions are).
#[derive(Debug, Clone, Default)]
pub struct LinkStatus {
    pub state: LinkState,
    pub last_error: Option<(i64, String)>,
    pub last_contact_ms: i64,
    pub records_applied: u64,
    pub records_skipped: u64,
    pub lost_records: u64,
    pub partitions: BTreeMap<(String, u32), PartitionLag>,
}

/// One partition of a link, as last seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionLag {
    /// The next upstream offset the link reads.
    pub position: u64,
    pub upstream_high_watermark: u64,
    pub upstream_log_start: u64,
    pub upstream_bytes: u64,
    pub upstream_last_append_ms: i64,
    /// Append time of the last batch read from the upstream.
    pub read_append_ms: i64,
    pub lost_records: u64,
}

impl PartitionLag {
    pub fn lag_records(&self) -> u64 {
        self.upstream_high_watermark.saturating_sub(self.position)
    }

    /// Estimated from the upstream's average stored bytes per record.
    pub fn lag_bytes(&self) -> u64 {
        let stored = self
            .upstream_high_watermark
            .saturating_sub(self.upstream_log_start);
        match stored {
            0 => 0,
            n => {
                (u128::from(self.lag_records()) * u128::from(self.upstream_bytes) / u128::from(n))
                    as u64
            }
        }
    }

    pub fn lag_ms(&self) -> i64 {
        if self.lag_records() == 0 {
            return 0;
        }
        (self.upstream_last_append_ms - self.read_append_ms).max(0)
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

impl LinkInfo {
    pub fn lag_records(&self) -> u64 {
        self.status
            .partitions
            .values()
            .map(|p| p.lag_records())
            .sum()
    }

    pub fn lag_bytes(&self) -> u64 {
        self.status.partitions.values().map(|p| p.lag_bytes()).sum()
    }

    pub fn lag_ms(&self) -> i64 {
        self.status
            .partitions
            .values()
            .map(|p| p.lag_ms())
            .max()
            .unwrap_or(0)
    }
}

/// The links of this cluster, cached (there are few), and their live status.
#[derive(Default)]
pub(super) struct Links {
    rows: parking_lot::RwLock<BTreeMap<Uuid, Arc<LinkRow>>>,
    status: Mutex<BTreeMap<Uuid, Arc<Mutex<LinkStatus>>>>,
    /// Bumped whenever a link is added, changed or removed: the replicator follows it.
    pub(super) changed: tokio::sync::watch::Sender<u64>,
}

impl Links {
    pub(super) fn load(&self, rows: Vec<LinkRow>) {
        let mut map = self.rows.write();
        for r in rows {
            map.insert(r.id, Arc::new(r));
        }
    }
}

impl LinkStart {
    /// From the API's `PullStart` (the `start` field of a request).
    pub fn from_proto(start: i32) -> Result<Self> {
        match tributary_proto::v1::PullStart::try_from(start) {
            Ok(tributary_proto::v1::PullStart::Earliest) => Ok(LinkStart::Earliest),
            Ok(tributary_proto::v1::PullStart::Latest) => Ok(LinkStart::Latest),
            Err(_) => Err(Error::invalid(
                "start",
                format!("{start} is not a PullStart"),
            )),
        }
    }
}

/// Splits `URL/SOURCE_STREAM` at the start of the URL's path.
pub fn parse_from(from: &str) -> Result<(String, StreamPath)> {
    let bad = |why: &str| {
        Error::invalid(
            "from",
            format!("{from:?} is not URL/SOURCE_STREAM (e.g. http://dc1:7070/acme/orders): {why}"),
        )
    };
    let rest = from
        .strip_prefix("http://")
        .or_else(|| from.strip_prefix("https://"))
        .ok_or_else(|| bad("the URL must start with http:// or https://"))?;
    let slash = rest
        .find('/')
        .ok_or_else(|| bad("no source stream after the host"))?;
    if slash == 0 {
        return Err(bad("no host"));
    }
    let url = &from[..from.len() - rest.len() + slash];
    let source = StreamPath::parse("from", &rest[slash..])?;
    Ok((url.to_owned(), source))
}

impl Namespace {
    /// Adds a link into a stream of this cluster (its `admin` permission).
    pub async fn add_upstream(&self, c: &Caller, spec: UpstreamSpec) -> Result<LinkInfo> {
        let path = StreamPath::parse("stream", &spec.stream)?;
        let (url, source) = parse_from(&spec.from)?;
        let from = format!("{url}{source}");
        if spec.token.is_some() && spec.token_file.is_some() {
            return Err(Error::invalid(
                "token_file",
                "give a token or a token file, not both".into(),
            ));
        }
        if let Some(f) = &spec.token_file
            && !std::path::Path::new(f).is_absolute()
        {
            return Err(Error::invalid(
                "token_file",
                format!("{f:?} must be an absolute path on the server"),
            ));
        }
        let ca_cert = match spec.ca_cert {
            Some(pem) => Some(
                String::from_utf8(pem)
                    .map_err(|_| Error::invalid("ca_cert", "is not PEM text".into()))?,
            ),
            None => None,
        };
        let _admin = self.admin.lock().await;
        let s = self.stream(&path)?;
        self.check(c, &s, Perm::Admin)?;
        let existing = self.links_of(s.id);
        if existing.iter().any(|l| l.from == from) {
            return Err(Error::AlreadyExists {
                what: "upstream",
                path: format!("{from} of {path}"),
            });
        }
        if let Some(m) = &s.mirror_of {
            return Err(Error::FailedPrecondition(format!(
                "{path} is a mirror of {m}; it takes no other upstream (promote it first)"
            )));
        }
        let mut tx = CatalogTx::default();
        if spec.mirror {
            if !existing.is_empty() {
                return Err(Error::FailedPrecondition(format!(
                    "{path} already has {} upstream(s); a mirror has exactly one",
                    existing.len()
                )));
            }
            let topics = self.topic_rows(&s).await?;
            let ids = topics.iter().flat_map(|t| t.partitions.clone()).collect();
            let stored = self.partition_totals(ids, None).await?.records;
            if stored > 0 {
                return Err(Error::FailedPrecondition(format!(
                    "{path} stores {stored} records; a mirror starts empty, so that offsets \
                     match the source"
                )));
            }
            let row = StreamRow {
                mirror_of: Some(from.clone()),
                ..(*s).clone()
            };
            tx.put(&stream_key(&row.path), encode(&row));
        }
        let row = LinkRow {
            id: Uuid::new_v4(),
            stream_id: s.id,
            stream: s.path.clone(),
            from,
            url,
            source: source.to_string(),
            token: spec.token,
            token_file: spec.token_file,
            ca_cert,
            start: spec.start,
            mirror: spec.mirror,
            paused: spec.paused,
            created_ms: self.clock.now_ms(),
        };
        tx.put(&link_key(s.id, row.id), encode(&row));
        self.commit(tx).await?;
        if spec.mirror {
            self.replace_stream_row(StreamRow {
                mirror_of: Some(row.from.clone()),
                ..(*s).clone()
            });
        }
        let row = Arc::new(row);
        self.links.rows.write().insert(row.id, row.clone());
        self.links.changed.send_modify(|v| *v += 1);
        Ok(self.link_info(&row))
    }

    /// Links into `stream` (or into every stream, when empty) whose stream the caller
    /// administers.
    pub async fn list_upstreams(&self, c: &Caller, stream: &str) -> Result<Vec<LinkInfo>> {
        let only = if stream.is_empty() {
            None
        } else {
            let path = StreamPath::parse("stream", stream)?;
            let s = self.stream(&path)?;
            self.check(c, &s, Perm::Admin)?;
            Some(s.id)
        };
        let rows: Vec<_> = self.links.rows.read().values().cloned().collect();
        let mut out: Vec<LinkInfo> = rows
            .iter()
            .filter(|l| only.is_none_or(|id| l.stream_id == id))
            .filter(|l| {
                self.streams
                    .read()
                    .get(&l.stream)
                    .is_some_and(|s| self.check(c, s, Perm::Admin).is_ok())
            })
            .map(|l| self.link_info(l))
            .collect();
        out.sort_by(|a, b| (&a.stream, &a.from).cmp(&(&b.stream, &b.from)));
        Ok(out)
    }

    pub async fn set_upstream_paused(
        &self,
        c: &Caller,
        stream: &str,
        from: &str,
        paused: bool,
    ) -> Result<LinkInfo> {
        let _admin = self.admin.lock().await;
        let old = self.find_link(c, stream, from)?;
        let row = Arc::new(LinkRow {
            paused,
            ..(*old).clone()
        });
        if paused != old.paused {
            self.put_row(&link_key(row.stream_id, row.id), &*row)
                .await?;
            self.links.rows.write().insert(row.id, row.clone());
            self.links.changed.send_modify(|v| *v += 1);
        }
        Ok(self.link_info(&row))
    }

    /// Removes a link and its positions; what it copied stays (a mirror stays read-only
    /// until promoted).
    pub async fn remove_upstream(&self, c: &Caller, stream: &str, from: &str) -> Result<()> {
        let _admin = self.admin.lock().await;
        let row = self.find_link(c, stream, from)?;
        self.drop_links(&[row]).await
    }

    /// Makes an offset-keeping mirror a normal writable stream (its `admin` permission):
    /// its mirror link goes, and producers are accepted.
    pub async fn promote_stream(&self, c: &Caller, path: &str) -> Result<super::StreamInfo> {
        let path = StreamPath::parse("path", path)?;
        {
            let _admin = self.admin.lock().await;
            let s = self.stream(&path)?;
            self.check(c, &s, Perm::Admin)?;
            if s.mirror_of.is_none() {
                return Err(Error::FailedPrecondition(format!(
                    "{path} is not a mirror; only a mirror is promoted"
                )));
            }
            let mirrors: Vec<_> = self
                .links_of(s.id)
                .into_iter()
                .filter(|l| l.mirror)
                .collect();
            let row = StreamRow {
                mirror_of: None,
                ..(*s).clone()
            };
            let mut tx = CatalogTx::default();
            tx.put(&stream_key(&row.path), encode(&row));
            mirrors
                .iter()
                .for_each(|l| tx.delete(&link_key(l.stream_id, l.id)));
            self.commit(tx).await?;
            self.replace_stream_row(row);
            self.forget_links(&mirrors).await?;
        }
        self.describe_stream(c, path.as_str()).await
    }

    // ---- for the replicator ------------------------------------------------------------

    /// Every link, for the replicator, with a receiver that changes when any does.
    pub fn links(&self) -> (Vec<Arc<LinkRow>>, tokio::sync::watch::Receiver<u64>) {
        let rx = self.links.changed.subscribe();
        (self.links.rows.read().values().cloned().collect(), rx)
    }

    /// The live status of a link, which its pull loop updates.
    pub fn link_status(&self, id: Uuid) -> Arc<Mutex<LinkStatus>> {
        self.links.status.lock().entry(id).or_default().clone()
    }

    /// Whether the link still exists as `row` says (a pull loop stops when not).
    pub fn link_current(&self, row: &LinkRow) -> bool {
        self.links
            .rows
            .read()
            .get(&row.id)
            .is_some_and(|r| **r == *row)
    }

    // ---- helpers -----------------------------------------------------------------------

    pub(super) fn links_of(&self, stream: Uuid) -> Vec<Arc<LinkRow>> {
        self.links
            .rows
            .read()
            .values()
            .filter(|l| l.stream_id == stream)
            .cloned()
            .collect()
    }

    /// Resolves `(stream, from)` to a link the caller administers; `from` may be empty
    /// when the stream has one upstream.
    fn find_link(&self, c: &Caller, stream: &str, from: &str) -> Result<Arc<LinkRow>> {
        let path = StreamPath::parse("stream", stream)?;
        let s = self.stream(&path)?;
        self.check(c, &s, Perm::Admin)?;
        let links = self.links_of(s.id);
        if from.is_empty() {
            return match links.len() {
                1 => Ok(links[0].clone()),
                0 => Err(Error::NotFound {
                    what: "upstream",
                    path: format!("of {path}"),
                }),
                n => Err(Error::invalid(
                    "from",
                    format!("{path} has {n} upstreams; name one (URL/SOURCE_STREAM)"),
                )),
            };
        }
        let (url, source) = parse_from(from)?;
        let from = format!("{url}{source}");
        links
            .into_iter()
            .find(|l| l.from == from)
            .ok_or_else(|| Error::NotFound {
                what: "upstream",
                path: format!("{from} of {path}"),
            })
    }

    /// Deletes link rows and their positions.
    pub(super) async fn drop_links(&self, rows: &[Arc<LinkRow>]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = CatalogTx::default();
        rows.iter()
            .for_each(|l| tx.delete(&link_key(l.stream_id, l.id)));
        self.commit(tx).await?;
        self.forget_links(rows).await
    }

    /// Forgets committed link deletions: cache, status and stored positions.
    pub(super) async fn forget_links(&self, rows: &[Arc<LinkRow>]) -> Result<()> {
        {
            let mut map = self.links.rows.write();
            let mut status = self.links.status.lock();
            for l in rows {
                map.remove(&l.id);
                status.remove(&l.id);
            }
        }
        self.links.changed.send_modify(|v| *v += 1);
        let store = self.store.clone();
        let ids: Vec<LinkId> = rows.iter().map(|l| *l.id.as_bytes()).collect();
        blocking(move || {
            ids.iter()
                .try_for_each(|id| store.drop_link(id))
                .map_err(Error::from)
        })
        .await
    }

    fn replace_stream_row(&self, row: StreamRow) {
        let row = Arc::new(row);
        self.streams.write().insert(row.path.clone(), row.clone());
        // Cached topics point at the old row.
        self.topics.write().retain(|(id, _), _| *id != row.id);
    }

    fn link_info(&self, l: &LinkRow) -> LinkInfo {
        let mut status = self.link_status(l.id).lock().clone();
        if l.paused {
            status.state = LinkState::Paused;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_splits_at_the_url_path() {
        let (url, s) = parse_from("http://127.0.0.1:7070/acme/orders").unwrap();
        assert_eq!(
            (url.as_str(), s.as_str()),
            ("http://127.0.0.1:7070", "/acme/orders")
        );
        let (url, _) = parse_from("https://dc1.example/a/b").unwrap();
        assert_eq!(url, "https://dc1.example");
        for bad in [
            "dc1:7070/a/b",
            "http://dc1:7070",
            "http:///a/b",
            "http://h/a/../b",
        ] {
            assert!(parse_from(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lag_is_estimated_from_upstream_figures() {
        let p = PartitionLag {
            position: 60,
            upstream_high_watermark: 100,
            upstream_log_start: 0,
            upstream_bytes: 10_000,
            upstream_last_append_ms: 5_000,
            read_append_ms: 3_000,
            lost_records: 0,
        };
        assert_eq!(
            (p.lag_records(), p.lag_bytes(), p.lag_ms()),
            (40, 4_000, 2_000)
        );
        let caught_up = PartitionLag { position: 100, ..p };
        assert_eq!((caught_up.lag_records(), caught_up.lag_ms()), (0, 0));
    }
}
