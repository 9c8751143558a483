//! The bench's own corner of the namespace: a volume `/bench-<random>` holding one stream
//! `/bench-<random>/s` and topics `t0..tN`, created before a run and deleted after it.

use std::sync::Arc;

use tributary_client::Client;
use tributary_proto::v1;

use crate::args::DurabilityArg;
use crate::{BenchArgs, Error, Result};

/// The stream's default largest record (1 MiB); larger records raise it.
const DEFAULT_MAX_MESSAGE_BYTES: usize = 1 << 20;

/// One topic partition the bench writes and reads.
#[derive(Debug, Clone)]
pub(crate) struct Pair {
    /// `STREAM:tN`.
    pub topic: Arc<str>,
    pub partition: u32,
}

#[derive(Debug)]
pub(crate) struct Fixture {
    volume: String,
    /// Every topic partition, topic-major (see `BenchArgs::pairs`).
    pub pairs: Vec<Pair>,
}

impl Fixture {
    pub async fn create(admin: &Client, args: &BenchArgs) -> Result<Fixture> {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let volume = format!("/bench-{}", &suffix[..12]);
        let stream = format!("{volume}/s");
        let mut a = admin.admin();
        a.create_volume(v1::CreateVolumeRequest {
            path: volume.clone(),
            ..Default::default()
        })
        .await
        .map_err(|s| Error::client(format!("creating volume {volume}"))(s.into()))?;
        let fixture = Fixture {
            volume,
            pairs: Vec::new(),
        };
        match fixture.populate(admin, args, &stream).await {
            Ok(pairs) => Ok(Fixture { pairs, ..fixture }),
            Err(e) => {
                let _ = fixture.delete(admin).await;
                Err(e)
            }
        }
    }

    async fn populate(&self, admin: &Client, args: &BenchArgs, stream: &str) -> Result<Vec<Pair>> {
        let mut a = admin.admin();
        let key_bytes = if args.keyed { 16 } else { 0 };
        let max_message_bytes = (args.record_size + key_bytes + 64).max(DEFAULT_MAX_MESSAGE_BYTES);
        let attributes = v1::StreamAttributes {
            default_partitions: Some(args.partitions),
            autocreate_topics: Some(false),
            durability: match args.durability {
                DurabilityArg::Sync => v1::Durability::Sync,
                DurabilityArg::Buffered => v1::Durability::Buffered,
            } as i32,
            max_message_bytes: Some(u32::try_from(max_message_bytes).unwrap_or(u32::MAX)),
            ..Default::default()
        };
        a.create_stream(v1::CreateStreamRequest {
            path: stream.to_owned(),
            attributes: Some(attributes),
        })
        .await
        .map_err(|s| Error::client(format!("creating stream {stream}"))(s.into()))?;
        let mut pairs = Vec::with_capacity(args.pairs());
        for t in 0..args.topics {
            let topic: Arc<str> = format!("{stream}:t{t}").into();
            a.create_topic(v1::CreateTopicRequest {
                path: topic.to_string(),
                partitions: Some(args.partitions),
            })
            .await
            .map_err(|s| Error::client(format!("creating topic {topic}"))(s.into()))?;
            pairs.extend((0..args.partitions).map(|partition| Pair {
                topic: topic.clone(),
                partition,
            }));
        }
        Ok(pairs)
    }

    /// Deletes the volume with everything in it.
    pub async fn delete(&self, admin: &Client) -> Result<()> {
        admin
            .admin()
            .delete_volume(v1::DeleteVolumeRequest {
                path: self.volume.clone(),
                force: true,
            })
            .await
            .map_err(|s| Error::client(format!("deleting volume {}", self.volume))(s.into()))?;
        Ok(())
    }
}
