//! Tributary as a system under test: the run's fixture (`fixture.rs`), produced to and
//! fetched from through `tributary-client` over gRPC.

use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tributary_client::{Client, PartitionReader, Record};
use tributary_proto::v1;

use crate::fixture::Pair;
use crate::system::{self, System};
use crate::{BoxError, Error, Result};

/// Byte budget of one fetch.
pub(crate) const FETCH_MAX_BYTES: u32 = 4 << 20;

pub(crate) struct Tributary<'a, F> {
    pub connect: &'a F,
    pub pairs: Arc<[Pair]>,
    /// Keyed batches are routed by the server from their keys, not by partition.
    pub keyed: bool,
}

impl<F: AsyncFn() -> Result<Client, BoxError>> System for Tributary<'_, F> {
    type Conn = Conn;

    async fn connect(&self) -> Result<Conn> {
        Ok(Conn {
            client: (self.connect)().await.map_err(Error::Connect)?,
            pairs: self.pairs.clone(),
            keyed: self.keyed,
        })
    }

    fn pairs(&self) -> usize {
        self.pairs.len()
    }

    /// A checkpoint flushes the server's memtables to SST and blob files, as hard links
    /// in a directory of ours (on the server's file system): through those links the
    /// server's files are written back and dropped from the page cache, then the links go.
    async fn cool(&self) -> Result<()> {
        let client = (self.connect)().await.map_err(Error::Connect)?;
        let dir = std::env::temp_dir().join(format!("tributary-bench-cold-{}", std::process::id()));
        client
            .admin()
            .checkpoint(v1::CheckpointRequest {
                dir: dir.to_string_lossy().into_owned(),
            })
            .await
            .map_err(|s| {
                Error::Check(format!(
                    "flushing the server's memtables (a checkpoint): {s}"
                ))
            })?;
        let evicted = evict(&dir);
        std::fs::remove_dir_all(&dir)
            .map_err(|e| Error::Check(format!("removing the checkpoint {}: {e}", dir.display())))?;
        match evicted? {
            Evicted { tables, linked } if tables > 0 && linked == 0 => {
                Err(Error::Invalid(format!(
                    "--cold evicts the server's files through a checkpoint's hard links, but \
                     RocksDB copied them: the temp dir ({}) must be on the server's file \
                     system (set TMPDIR)",
                    std::env::temp_dir().display()
                )))
            }
            _ => Ok(()),
        }
    }
}

/// Table and blob files a checkpoint held, and how many of them were links.
#[derive(Default)]
struct Evicted {
    tables: usize,
    linked: usize,
}

/// Writes each file under `dir` back and drops its pages from the page cache. The page
/// cache is per inode, so evicting a hard link evicts the server's file. RocksDB links
/// table and blob files, and copies them across file systems (a file a compaction has
/// deleted since is down to our link).
fn evict(dir: &std::path::Path) -> Result<Evicted> {
    let fail = |what: &str, path: &std::path::Path, e: std::io::Error| {
        Error::Check(format!("{what} {}: {e}", path.display()))
    };
    let mut seen = Evicted::default();
    for entry in std::fs::read_dir(dir).map_err(|e| fail("listing", dir, e))? {
        let entry = entry.map_err(|e| fail("listing", dir, e))?;
        let path = entry.path();
        if entry
            .file_type()
            .map_err(|e| fail("reading", &path, e))?
            .is_dir()
        {
            let sub = evict(&path)?;
            seen.tables += sub.tables;
            seen.linked += sub.linked;
            continue;
        }
        let file = std::fs::File::open(&path).map_err(|e| fail("opening", &path, e))?;
        if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("sst" | "blob")
        ) {
            seen.tables += 1;
            if file
                .metadata()
                .map_err(|e| fail("reading", &path, e))?
                .nlink()
                > 1
            {
                seen.linked += 1;
            }
        }
        file.sync_data()
            .map_err(|e| fail("writing back", &path, e))?;
        rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed)
            .map_err(|e| fail("evicting", &path, e.into()))?;
    }
    Ok(seen)
}

#[derive(Clone)]
pub(crate) struct Conn {
    client: Client,
    pairs: Arc<[Pair]>,
    keyed: bool,
}

impl system::Conn for Conn {
    type Reader = Fetcher;

    fn produce(
        &self,
        pair: usize,
        records: Vec<Record>,
    ) -> impl Future<Output = Result<()>> + Send + 'static + use<> {
        let client = self.client.clone();
        let pair = self.pairs[pair].clone();
        let partition = (!self.keyed).then_some(pair.partition);
        async move {
            let n = records.len() as u64;
            let r = client
                .produce(&pair.topic, partition, records)
                .await
                .map_err(Error::client(format!(
                    "producing to {} partition {}",
                    pair.topic, pair.partition
                )))?;
            match r.acks.as_slice() {
                [a] if a.partition == pair.partition && u64::from(a.record_count) == n => Ok(()),
                acks => Err(Error::Check(format!(
                    "{n} records sent to {} partition {} were acknowledged as {acks:?}",
                    pair.topic, pair.partition
                ))),
            }
        }
    }

    async fn reader(&self, pair: usize) -> Result<Fetcher> {
        Ok(Fetcher {
            client: self.client.clone(),
            pair: self.pairs[pair].clone(),
            reader: None,
        })
    }

    fn describe(&self, pair: usize) -> String {
        let p = &self.pairs[pair];
        format!("{} partition {}", p.topic, p.partition)
    }
}

/// A fetch loop's reader of one partition, from offset 0, one fetch ahead (as a consumer
/// application reads).
pub(crate) struct Fetcher {
    client: Client,
    pair: Pair,
    /// Made by the first read, which knows the long-poll wait.
    reader: Option<(PartitionReader, u64)>,
}

impl system::Reader for Fetcher {
    async fn read(&mut self, wait: Duration) -> Result<Vec<Bytes>> {
        let p = &self.pair;
        let (reader, offset) = self.reader.get_or_insert_with(|| {
            let r = self
                .client
                .reader(&p.topic, p.partition, 0, FETCH_MAX_BYTES, wait);
            (r, 0)
        });
        let f = reader.next().await.map_err(Error::client(format!(
            "fetching {} partition {} at offset {offset}",
            p.topic, p.partition
        )))?;
        *offset = f.next_offset;
        Ok(f.records
            .into_iter()
            .map(|r| r.record.value.unwrap_or_default())
            .collect())
    }
}
