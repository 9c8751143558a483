//! Volumes, streams and topics: create, list, describe, edit, delete, each checked against
//! the caller's rights and the volume's quotas before anything is written.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tributary_core::acl::Acl;
use tributary_core::names::{StreamPath, TopicPath, VolumePath};
use tributary_storage::CatalogTx;
use uuid::Uuid;

use super::{
    Namespace, StreamInfo, TopicInfo, Totals, VolumeInfo, blocking, not_found_if_dropped, volume_of,
};
use crate::auth::Caller;
use crate::model::*;
use crate::{Error, Result};

/// Changes to a volume; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct VolumeEdit {
    pub owner: Option<String>,
    pub admin_perm: Option<Acl>,
    pub quotas: Option<Quotas>,
}

/// A topic to create, as `create_topic_with` takes it.
#[derive(Debug, Clone, Default)]
pub struct NewTopic {
    /// `None`: the stream's `default_partitions`.
    pub partitions: Option<u32>,
    /// Attributes the topic asks of its stream. A stream's attributes are all its topics':
    /// they are applied with the first topic (and the stream's `admin` permission), and
    /// for any later topic they must be the stream's already.
    pub stream_attributes: StreamAttributesPatch,
    /// Check everything, change nothing.
    pub validate_only: bool,
}

impl Namespace {
    // ---- volumes ---------------------------------------------------------------------

    /// Creates a volume (cluster admins only). The owner defaults to the caller and the
    /// admin ACL to `u:OWNER`.
    pub async fn create_volume(
        &self,
        c: &Caller,
        path: &str,
        owner: Option<&str>,
        admin_perm: Option<Acl>,
        quotas: Quotas,
    ) -> Result<VolumeInfo> {
        let path = VolumePath::parse("path", path)?;
        let owner = owner
            .filter(|o| !o.is_empty())
            .unwrap_or(c.name())
            .to_owned();
        crate::auth::check_name("owner", "owner", &owner)?;
        self.check_cluster_admin(c, path.as_str())?;
        let _admin = self.admin.lock().await;
        if self.volumes.read().contains_key(path.as_str()) {
            return Err(Error::AlreadyExists {
                what: "volume",
                path: path.to_string(),
            });
        }
        let row = VolumeRow {
            path: path.to_string(),
            admin_perm: admin_perm.unwrap_or_else(|| Acl::user(&owner)),
            owner,
            created_ms: self.clock.now_ms(),
            quotas,
        };
        self.put_row(&volume_key(&row.path), &row).await?;
        self.usage(&row.path);
        self.volumes
            .write()
            .insert(row.path.clone(), Arc::new(row.clone()));
        Ok(self.volume_info(&row))
    }

    /// Volumes the caller administers or holds a visible stream in.
    pub fn list_volumes(&self, c: &Caller) -> Vec<VolumeInfo> {
        let mut rows: Vec<_> = self.volumes.read().values().cloned().collect();
        rows.sort_by(|a, b| a.path.cmp(&b.path));
        rows.iter()
            .filter(|v| self.can_see_volume(c, &v.path))
            .map(|v| self.volume_info(v))
            .collect()
    }

    pub fn describe_volume(&self, c: &Caller, path: &str) -> Result<VolumeInfo> {
        let path = VolumePath::parse("path", path)?;
        let row = self.volume_row(&path)?;
        if !self.can_see_volume(c, &row.path) {
            return Err(Error::PermissionDenied {
                who: c.name().into(),
                permission: "admin",
                path: row.path.clone(),
            });
        }
        Ok(self.volume_info(&row))
    }

    /// The admin ACL needs the volume's admins; the owner and quotas need a cluster admin.
    pub async fn edit_volume(
        &self,
        c: &Caller,
        path: &str,
        edit: VolumeEdit,
    ) -> Result<VolumeInfo> {
        let path = VolumePath::parse("path", path)?;
        if let Some(o) = &edit.owner {
            crate::auth::check_name("owner", "owner", o)?;
        }
        let _admin = self.admin.lock().await;
        let old = self.volume_row(&path)?;
        self.check_volume_admin(c, &old.path)?;
        if edit.owner.is_some() || edit.quotas.is_some() {
            self.check_cluster_admin(c, &format!("{path} (owner and quotas)"))?;
        }
        let row = VolumeRow {
            path: old.path.clone(),
            owner: edit.owner.unwrap_or_else(|| old.owner.clone()),
            created_ms: old.created_ms,
            admin_perm: edit.admin_perm.unwrap_or_else(|| old.admin_perm.clone()),
            quotas: edit.quotas.unwrap_or(old.quotas),
        };
        self.put_row(&volume_key(&row.path), &row).await?;
        self.volumes
            .write()
            .insert(row.path.clone(), Arc::new(row.clone()));
        self.catalog_changed(); // now that the cache has it: sessions check their access
        Ok(self.volume_info(&row))
    }

    /// Deletes a volume (its admins); refused while it holds streams unless `force`.
    pub async fn delete_volume(&self, c: &Caller, path: &str, force: bool) -> Result<()> {
        let path = VolumePath::parse("path", path)?;
        let _admin = self.admin.lock().await;
        self.volume_row(&path)?;
        self.check_volume_admin(c, path.as_str())?;
        let streams = self.streams_in(path.as_str());
        if !streams.is_empty() && !force {
            return Err(Error::FailedPrecondition(format!(
                "volume {path} still holds {} stream(s), e.g. {}; delete them first or use force",
                streams.len(),
                streams[0].path
            )));
        }
        let mut tx = CatalogTx::default();
        tx.delete(&volume_key(path.as_str()));
        let mut dropped_topics = Vec::new();
        let mut links = Vec::new();
        for s in &streams {
            dropped_topics.extend(self.delete_stream_into(&mut tx, s).await?.0);
            links.extend(self.links_of(s.id));
        }
        self.commit(tx).await?;
        self.forget(&streams, &dropped_topics);
        self.forget_links(&links).await?;
        self.volumes.write().remove(path.as_str());
        self.usage.write().remove(path.as_str());
        Ok(())
    }

    fn volume_row(&self, path: &VolumePath) -> Result<Arc<VolumeRow>> {
        self.volumes
            .read()
            .get(path.as_str())
            .cloned()
            .ok_or_else(|| Error::NotFound {
                what: "volume",
                path: path.to_string(),
            })
    }

    fn can_see_volume(&self, c: &Caller, volume: &str) -> bool {
        self.is_volume_admin(c, volume)
            || self.streams_in(volume).iter().any(|s| self.can_see(c, s))
    }

    fn volume_info(&self, row: &VolumeRow) -> VolumeInfo {
        let usage = self.usage(&row.path);
        VolumeInfo {
            path: row.path.clone(),
            owner: row.owner.clone(),
            created_ms: row.created_ms,
            admin_perm: row.admin_perm.to_string(),
            quotas: row.quotas,
            stream_count: self.streams_in(&row.path).len() as u64,
            topic_count: usage.topics.load(Ordering::Acquire),
            bytes: usage.bytes.load(Ordering::Acquire),
        }
    }

    // ---- streams ---------------------------------------------------------------------

    /// Creates a stream (the volume's admins). Every permission defaults to the creator.
    pub async fn create_stream(
        &self,
        c: &Caller,
        path: &str,
        attrs: &StreamAttributesPatch,
    ) -> Result<StreamInfo> {
        let path = StreamPath::parse("path", path)?;
        let attributes = StreamAttributes::defaults_for(c.name()).apply(attrs)?;
        let _admin = self.admin.lock().await;
        let volume = self.volume_row(&path.volume())?;
        self.check_volume_admin(c, &volume.path)?;
        if self.streams.read().contains_key(path.as_str()) {
            return Err(Error::AlreadyExists {
                what: "stream",
                path: path.to_string(),
            });
        }
        let count = self.streams_in(&volume.path).len() as u64;
        if let Some(limit) = volume.quotas.max_streams.filter(|&l| count + 1 > l) {
            return Err(Error::QuotaExceeded {
                volume: volume.path.clone(),
                quota: "streams",
                limit,
                used: count,
                asked: 1,
            });
        }
        let row = StreamRow {
            id: Uuid::new_v4(),
            path: path.to_string(),
            attributes,
            created_ms: self.clock.now_ms(),
            mirror_of: None,
        };
        self.put_row(&stream_key(&row.path), &row).await?;
        self.streams
            .write()
            .insert(row.path.clone(), Arc::new(row.clone()));
        Ok(StreamInfo {
            path: row.path,
            mirror_of: None,
            attributes: row.attributes,
            created_ms: row.created_ms,
            topic_count: 0,
            partition_count: 0,
            totals: Totals::default(),
        })
    }

    /// Streams the caller can see at or under `prefix` (a volume or a path inside one;
    /// empty for all), with attributes and topic counts; records and bytes are filled by
    /// `describe_stream`.
    pub async fn list_streams(&self, c: &Caller, prefix: &str) -> Result<Vec<StreamInfo>> {
        let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
        if !prefix.is_empty() && VolumePath::parse("prefix", prefix).is_err() {
            StreamPath::parse("prefix", prefix)?;
        }
        let mut out = Vec::new();
        for s in self
            .streams_in(prefix)
            .into_iter()
            .filter(|s| self.can_see(c, s))
        {
            let topics = self.topic_rows(&s).await?;
            out.push(StreamInfo {
                path: s.path.clone(),
                mirror_of: s.mirror_of.clone(),
                attributes: s.attributes.clone(),
                created_ms: s.created_ms,
                topic_count: topics.len() as u64,
                partition_count: topics.iter().map(|t| t.partitions.len() as u64).sum(),
                totals: Totals::default(),
            });
        }
        Ok(out)
    }

    pub async fn describe_stream(&self, c: &Caller, path: &str) -> Result<StreamInfo> {
        let path = StreamPath::parse("path", path)?;
        let s = self.stream(&path)?;
        self.check_visible(c, &s)?;
        let topics = self.topic_rows(&s).await?;
        let ids: Vec<_> = topics
            .iter()
            .flat_map(|t| t.partitions.iter().copied())
            .collect();
        let totals = self.partition_totals(ids, self.expire_before(&s)).await?;
        Ok(StreamInfo {
            path: s.path.clone(),
            mirror_of: s.mirror_of.clone(),
            attributes: s.attributes.clone(),
            created_ms: s.created_ms,
            topic_count: topics.len() as u64,
            partition_count: topics.iter().map(|t| t.partitions.len() as u64).sum(),
            totals,
        })
    }

    /// Changes the given attributes (the stream's `admin` permission).
    pub async fn edit_stream(
        &self,
        c: &Caller,
        path: &str,
        attrs: &StreamAttributesPatch,
    ) -> Result<StreamInfo> {
        self.edit_stream_with(c, path, attrs, false).await
    }

    /// `edit_stream`, or with `validate_only` every check it makes and no change.
    pub async fn edit_stream_with(
        &self,
        c: &Caller,
        path: &str,
        attrs: &StreamAttributesPatch,
        validate_only: bool,
    ) -> Result<StreamInfo> {
        let path = StreamPath::parse("path", path)?;
        {
            let _admin = self.admin.lock().await;
            let old = self.stream(&path)?;
            self.check(c, &old, Perm::Admin)?;
            let row = StreamRow {
                attributes: old.attributes.apply(attrs)?,
                ..(*old).clone()
            };
            if validate_only {
                return Ok(StreamInfo {
                    path: row.path,
                    mirror_of: row.mirror_of,
                    attributes: row.attributes,
                    created_ms: row.created_ms,
                    topic_count: 0,
                    partition_count: 0,
                    totals: Totals::default(),
                });
            }
            let mut tx = CatalogTx::default();
            tx.put(&stream_key(&row.path), encode(&row));
            self.commit(tx).await?;
            let row = Arc::new(row);
            self.streams.write().insert(row.path.clone(), row.clone());
            // Cached topics point at the old row; drop them so the new attributes apply.
            self.topics.write().retain(|(id, _), _| *id != row.id);
            self.catalog_changed(); // now that the caches have it: sessions check their access
        }
        self.describe_stream(c, path.as_str()).await
    }

    /// Deletes a stream with its topics and records (the stream's `admin` permission).
    pub async fn delete_stream(&self, c: &Caller, path: &str) -> Result<()> {
        let path = StreamPath::parse("path", path)?;
        let _admin = self.admin.lock().await;
        let s = self.stream(&path)?;
        self.check(c, &s, Perm::Admin)?;
        let mut tx = CatalogTx::default();
        let (topics, ids) = self.delete_stream_into(&mut tx, &s).await?;
        let bytes = self.partition_totals(ids, None).await?.bytes;
        let links = self.links_of(s.id);
        self.commit(tx).await?;
        self.forget_links(&links).await?;
        let usage = self.usage(volume_of(&s.path));
        usage.bytes.fetch_sub(
            bytes.min(usage.bytes.load(Ordering::Acquire)),
            Ordering::AcqRel,
        );
        usage
            .topics
            .fetch_sub(topics.len() as u64, Ordering::AcqRel);
        self.forget(&[s], &topics);
        Ok(())
    }

    /// Adds the removal of a stream, its topics and their partitions to `tx`; returns the
    /// topic cache keys to forget once committed, and the partitions dropped.
    #[allow(clippy::type_complexity)]
    async fn delete_stream_into(
        &self,
        tx: &mut CatalogTx,
        s: &StreamRow,
    ) -> Result<(Vec<(Uuid, String)>, Vec<tributary_storage::PartitionId>)> {
        tx.delete(&stream_key(&s.path));
        tx.drop_cursor_scope(*s.id.as_bytes());
        for l in self.links_of(s.id) {
            tx.delete(&link_key(s.id, l.id));
        }
        let topics = self.topic_rows(s).await?;
        let mut ids = Vec::new();
        for t in &topics {
            tx.delete(&topic_key(s.id, &t.name));
            t.partitions.iter().for_each(|&id| tx.drop_partition(id));
            ids.extend(&t.partitions);
        }
        Ok((topics.into_iter().map(|t| (s.id, t.name)).collect(), ids))
    }

    fn forget(&self, streams: &[Arc<StreamRow>], topics: &[(Uuid, String)]) {
        let mut map = self.streams.write();
        for s in streams {
            map.remove(&s.path);
        }
        let mut map = self.topics.write();
        for t in topics {
            map.remove(t);
        }
    }

    // ---- topics ----------------------------------------------------------------------

    /// Creates a topic (the stream's `topic` permission).
    pub async fn create_topic(
        &self,
        c: &Caller,
        path: &str,
        partitions: Option<u32>,
    ) -> Result<TopicInfo> {
        let new = NewTopic {
            partitions,
            ..NewTopic::default()
        };
        self.create_topic_with(c, path, &new).await
    }

    /// Creates a topic (the stream's `topic` permission) with the attributes it asks of
    /// its stream: set with the stream's first topic, in the same write (and the stream's
    /// `admin` permission), else already the stream's. With `validate_only`, every check
    /// and no change.
    pub async fn create_topic_with(
        &self,
        c: &Caller,
        path: &str,
        new: &NewTopic,
    ) -> Result<TopicInfo> {
        let path = TopicPath::parse("path", path)?;
        let s = self.stream(&path.stream)?;
        self.check(c, &s, Perm::Topic)?;
        super::data::refuse_mirror(&s, "create a topic in")?;
        let n = new.partitions.unwrap_or(s.attributes.default_partitions);
        check_partitions("partitions", n)?;
        let _admin = self.admin.lock().await;
        let s = self.stream(&path.stream)?; // may have been replaced while we waited
        if self.get(topic_key(s.id, &path.topic)).await?.is_some() {
            return Err(Error::AlreadyExists {
                what: "topic",
                path: path.to_string(),
            });
        }
        let attributes = s.attributes.apply(&new.stream_attributes)?;
        let changed = (attributes != s.attributes).then(|| StreamRow {
            attributes,
            ..(*s).clone()
        });
        if changed.is_some() {
            self.check(c, &s, Perm::Admin)?;
            if !self.topic_rows(&s).await?.is_empty() {
                return Err(Error::invalid(
                    "attributes",
                    format!(
                        "{} has topics already, and a stream's attributes are all its \
                         topics': a new topic takes them as they are (edit the stream to \
                         change them, or create the topic in a stream of its own)",
                        s.path
                    ),
                ));
            }
        }
        if new.validate_only {
            self.topic_quota(&s)?;
            return Ok(TopicInfo {
                path: path.to_string(),
                partitions: n,
                created_ms: self.clock.now_ms(),
                partition_stats: vec![],
            });
        }
        let row = self.insert_topic(&s, &path.topic, n, changed).await?;
        Ok(TopicInfo {
            path: path.to_string(),
            partitions: n,
            created_ms: row.created_ms,
            partition_stats: vec![],
        })
    }

    pub async fn list_topics(&self, c: &Caller, stream: &str) -> Result<Vec<TopicInfo>> {
        let path = StreamPath::parse("stream", stream)?;
        let s = self.stream(&path)?;
        self.check_visible(c, &s)?;
        Ok(self
            .topic_rows(&s)
            .await?
            .into_iter()
            .map(|t| TopicInfo {
                path: format!("{}:{}", s.path, t.name),
                partitions: t.partitions.len() as u32,
                created_ms: t.created_ms,
                partition_stats: vec![],
            })
            .collect())
    }

    pub async fn describe_topic(&self, c: &Caller, path: &str) -> Result<TopicInfo> {
        let path = TopicPath::parse("path", path)?;
        self.check_visible(c, &*self.stream(&path.stream)?)?;
        let t = self.topic(&path, false).await?;
        let ids = t.row.partitions.clone();
        let store = self.store.clone();
        let cutoff = self.expire_before(&t.stream);
        let partition_stats = blocking(move || {
            ids.iter()
                .map(|&id| store.partition_stats(id, cutoff).map_err(Error::from))
                .collect()
        })
        .await
        .map_err(|e| not_found_if_dropped(e, &path))?;
        Ok(TopicInfo {
            path: path.to_string(),
            partitions: t.row.partitions.len() as u32,
            created_ms: t.row.created_ms,
            partition_stats,
        })
    }

    /// Grows a topic to `partitions` (the stream's `topic` permission); never shrinks it.
    pub async fn edit_topic(
        &self,
        c: &Caller,
        path: &str,
        partitions: Option<u32>,
    ) -> Result<TopicInfo> {
        self.edit_topic_with(c, path, partitions, false).await
    }

    /// `edit_topic`, or with `validate_only` every check it makes and no change.
    pub async fn edit_topic_with(
        &self,
        c: &Caller,
        path: &str,
        partitions: Option<u32>,
        validate_only: bool,
    ) -> Result<TopicInfo> {
        let path = TopicPath::parse("path", path)?;
        let s = self.stream(&path.stream)?;
        self.check(c, &s, Perm::Topic)?;
        if partitions.is_some() {
            super::data::refuse_mirror(&s, "add partitions to")?;
        }
        if let Some(n) = partitions {
            check_partitions("partitions", n)?;
            let _admin = self.admin.lock().await;
            let t = self.topic(&path, false).await?;
            let have = t.row.partitions.len() as u32;
            if n < have {
                return Err(Error::invalid(
                    "partitions",
                    format!("a topic never shrinks: {path} has {have} partitions, asked for {n}"),
                ));
            }
            if n > have && !validate_only {
                self.grow_topic(&t.stream, t.row.clone(), n).await?;
            }
        }
        self.describe_topic(c, &path.to_string()).await
    }

    /// Grows a topic row to `n` partitions; the caller holds the admin lock.
    pub(super) async fn grow_topic(&self, s: &StreamRow, mut row: TopicRow, n: u32) -> Result<()> {
        let have = row.partitions.len() as u32;
        if n <= have {
            return Ok(());
        }
        let new = self.store.reserve_partition_ids((n - have) as usize);
        row.partitions.extend(&new);
        let mut tx = CatalogTx::default();
        tx.put(&topic_key(s.id, &row.name), encode(&row));
        new.iter().for_each(|&id| tx.create_partition(id));
        self.commit(tx).await?;
        self.topics.write().remove(&(s.id, row.name.clone()));
        Ok(())
    }

    /// Deletes a topic and its records (the stream's `topic` permission).
    pub async fn delete_topic(&self, c: &Caller, path: &str) -> Result<()> {
        let path = TopicPath::parse("path", path)?;
        let s = self.stream(&path.stream)?;
        self.check(c, &s, Perm::Topic)?;
        super::data::refuse_mirror(&s, "delete a topic of")?;
        let _admin = self.admin.lock().await;
        let t = self.topic(&path, false).await?;
        let mut tx = CatalogTx::default();
        tx.delete(&topic_key(t.stream.id, &path.topic));
        t.row
            .partitions
            .iter()
            .for_each(|&id| tx.drop_partition(id));
        let bytes = self
            .partition_totals(t.row.partitions.clone(), None)
            .await?
            .bytes;
        self.commit(tx).await?;
        self.topics
            .write()
            .remove(&(t.stream.id, path.topic.clone()));
        let usage = self.usage(volume_of(&t.stream.path));
        usage.bytes.fetch_sub(
            bytes.min(usage.bytes.load(Ordering::Acquire)),
            Ordering::AcqRel,
        );
        usage.topics.fetch_sub(1, Ordering::AcqRel);
        Ok(())
    }
}
