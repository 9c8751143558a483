//! Replica links (design §6) as the namespace's catalog holds them: link rows, under the
//! admin lock and the destination stream's `admin` permission, and offset-keeping mirrors
//! (read-only streams, promoted on failover).
//!
//! Replication itself (the pull loops, the live status of each link, the upstream's pull
//! sessions) is `crates/replication`; what it may do with this cluster's streams is the
//! narrow API of `source.rs` (the upstream side) and `replica.rs` (the downstream side).

use std::collections::BTreeMap;
use std::sync::Arc;

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

/// The link rows of this cluster, cached (there are few).
#[derive(Default)]
pub(super) struct Links {
    rows: parking_lot::RwLock<BTreeMap<Uuid, Arc<LinkRow>>>,
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
    pub async fn add_upstream(&self, c: &Caller, spec: UpstreamSpec) -> Result<Arc<LinkRow>> {
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
        Ok(row)
    }

    /// Links into `stream` (or into every stream, when empty) whose stream the caller
    /// administers, by stream and source.
    pub async fn list_upstreams(&self, c: &Caller, stream: &str) -> Result<Vec<Arc<LinkRow>>> {
        let only = if stream.is_empty() {
            None
        } else {
            let path = StreamPath::parse("stream", stream)?;
            let s = self.stream(&path)?;
            self.check(c, &s, Perm::Admin)?;
            Some(s.id)
        };
        let rows: Vec<_> = self.links.rows.read().values().cloned().collect();
        let mut out: Vec<Arc<LinkRow>> = rows
            .into_iter()
            .filter(|l| only.is_none_or(|id| l.stream_id == id))
            .filter(|l| {
                self.streams
                    .read()
                    .get(&l.stream)
                    .is_some_and(|s| self.check(c, s, Perm::Admin).is_ok())
            })
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
    ) -> Result<Arc<LinkRow>> {
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
        Ok(row)
    }

    /// Removes a link and its positions; what it copied stays (a mirror stays read-only
    /// until promoted). Returns the removed row.
    pub async fn remove_upstream(
        &self,
        c: &Caller,
        stream: &str,
        from: &str,
    ) -> Result<Arc<LinkRow>> {
        let _admin = self.admin.lock().await;
        let row = self.find_link(c, stream, from)?;
        self.drop_links(std::slice::from_ref(&row)).await?;
        Ok(row)
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

    /// Forgets committed link deletions: cache and stored positions.
    pub(super) async fn forget_links(&self, rows: &[Arc<LinkRow>]) -> Result<()> {
        {
            let mut map = self.links.rows.write();
            for l in rows {
                map.remove(&l.id);
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
}
