//! The gRPC handlers: decode the request, call the namespace, convert the result. No
//! decisions are made here.

use std::sync::Arc;
use std::time::Duration;

use tonic::{Request, Response, Status};
use tributary_proto::{v1, wire};
use tributary_volume::{Namespace, OffsetSpec};

use crate::{ApiError, convert};

type Reply<T> = Result<Response<T>, Status>;

fn ok<T>(t: T) -> Reply<T> {
    Ok(Response::new(t))
}

/// The Admin, Producer and Consumer services over one namespace.
#[derive(Debug, Clone)]
pub struct Services {
    ns: Arc<Namespace>,
    version: &'static str,
}

impl Services {
    pub fn new(ns: Arc<Namespace>) -> Self {
        Self {
            ns,
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}

#[tonic::async_trait]
impl v1::admin_server::Admin for Services {
    async fn get_cluster(&self, _: Request<v1::GetClusterRequest>) -> Reply<v1::Cluster> {
        let id = self.ns.store().identity();
        ok(v1::Cluster {
            cluster_id: id.cluster_id.to_string(),
            name: String::new(),
            version: self.version.into(),
        })
    }

    async fn create_volume(&self, r: Request<v1::CreateVolumeRequest>) -> Reply<v1::Volume> {
        let r = r.into_inner();
        // Until authentication lands (the namespace/security issue) the owner is as given.
        let owner = if r.owner.is_empty() {
            "admin".to_owned()
        } else {
            r.owner
        };
        let v = self
            .ns
            .create_volume(&r.path, &owner)
            .await
            .map_err(ApiError::from)?;
        ok(convert::volume(v))
    }

    async fn list_volumes(
        &self,
        _: Request<v1::ListVolumesRequest>,
    ) -> Reply<v1::ListVolumesResponse> {
        let v = self.ns.list_volumes().await.map_err(ApiError::from)?;
        ok(v1::ListVolumesResponse {
            volumes: v.into_iter().map(convert::volume).collect(),
        })
    }

    async fn describe_volume(&self, r: Request<v1::DescribeVolumeRequest>) -> Reply<v1::Volume> {
        let v = self
            .ns
            .describe_volume(&r.into_inner().path)
            .await
            .map_err(ApiError::from)?;
        ok(convert::volume(v))
    }

    async fn delete_volume(
        &self,
        r: Request<v1::DeleteVolumeRequest>,
    ) -> Reply<v1::DeleteVolumeResponse> {
        let r = r.into_inner();
        self.ns
            .delete_volume(&r.path, r.force)
            .await
            .map_err(ApiError::from)?;
        ok(v1::DeleteVolumeResponse {})
    }

    async fn create_stream(&self, r: Request<v1::CreateStreamRequest>) -> Reply<v1::Stream> {
        let r = r.into_inner();
        let patch = convert::patch(r.attributes)?;
        let s = self
            .ns
            .create_stream(&r.path, &patch)
            .await
            .map_err(ApiError::from)?;
        ok(convert::stream(s))
    }

    async fn list_streams(
        &self,
        r: Request<v1::ListStreamsRequest>,
    ) -> Reply<v1::ListStreamsResponse> {
        let s = self
            .ns
            .list_streams(&r.into_inner().prefix)
            .await
            .map_err(ApiError::from)?;
        ok(v1::ListStreamsResponse {
            streams: s.into_iter().map(convert::stream).collect(),
        })
    }

    async fn describe_stream(&self, r: Request<v1::DescribeStreamRequest>) -> Reply<v1::Stream> {
        let s = self
            .ns
            .describe_stream(&r.into_inner().path)
            .await
            .map_err(ApiError::from)?;
        ok(convert::stream(s))
    }

    async fn delete_stream(
        &self,
        r: Request<v1::DeleteStreamRequest>,
    ) -> Reply<v1::DeleteStreamResponse> {
        self.ns
            .delete_stream(&r.into_inner().path)
            .await
            .map_err(ApiError::from)?;
        ok(v1::DeleteStreamResponse {})
    }

    async fn create_topic(&self, r: Request<v1::CreateTopicRequest>) -> Reply<v1::Topic> {
        let r = r.into_inner();
        let t = self
            .ns
            .create_topic(&r.path, r.partitions)
            .await
            .map_err(ApiError::from)?;
        ok(convert::topic(t))
    }

    async fn list_topics(
        &self,
        r: Request<v1::ListTopicsRequest>,
    ) -> Reply<v1::ListTopicsResponse> {
        let t = self
            .ns
            .list_topics(&r.into_inner().stream)
            .await
            .map_err(ApiError::from)?;
        ok(v1::ListTopicsResponse {
            topics: t.into_iter().map(convert::topic).collect(),
        })
    }

    async fn describe_topic(&self, r: Request<v1::DescribeTopicRequest>) -> Reply<v1::Topic> {
        let t = self
            .ns
            .describe_topic(&r.into_inner().path)
            .await
            .map_err(ApiError::from)?;
        ok(convert::topic(t))
    }

    async fn delete_topic(
        &self,
        r: Request<v1::DeleteTopicRequest>,
    ) -> Reply<v1::DeleteTopicResponse> {
        self.ns
            .delete_topic(&r.into_inner().path)
            .await
            .map_err(ApiError::from)?;
        ok(v1::DeleteTopicResponse {})
    }
}

#[tonic::async_trait]
impl wire::producer_server::Producer for Services {
    async fn produce(&self, r: Request<wire::ProduceRequest>) -> Reply<v1::ProduceResponse> {
        let r = r.into_inner();
        let res = self
            .ns
            .produce(&r.topic, r.partition, r.batch)
            .await
            .map_err(ApiError::from)?;
        ok(v1::ProduceResponse {
            acks: res
                .acks
                .into_iter()
                .map(|a| v1::PartitionAck {
                    partition: a.partition,
                    base_offset: a.base_offset,
                    record_count: a.record_count,
                    append_time_ms: a.append_time_ms,
                })
                .collect(),
            record_partitions: res.record_partitions,
        })
    }
}

#[tonic::async_trait]
impl wire::consumer_server::Consumer for Services {
    async fn fetch(&self, r: Request<v1::FetchRequest>) -> Reply<wire::FetchResponse> {
        let r = r.into_inner();
        let res = self
            .ns
            .fetch(
                &r.topic,
                r.partition,
                r.offset,
                r.max_bytes as usize,
                Duration::from_millis(r.max_wait_ms.into()),
            )
            .await
            .map_err(ApiError::from)?;
        ok(wire::FetchResponse {
            batches: res.batches,
            high_watermark: res.high_watermark,
            log_start_offset: res.log_start,
        })
    }

    async fn list_offsets(
        &self,
        r: Request<v1::ListOffsetsRequest>,
    ) -> Reply<v1::ListOffsetsResponse> {
        let r = r.into_inner();
        let spec = match v1::OffsetSpec::try_from(r.spec) {
            Ok(v1::OffsetSpec::Earliest) => OffsetSpec::Earliest,
            Ok(v1::OffsetSpec::Latest) => OffsetSpec::Latest,
            _ => {
                return Err(ApiError::InvalidArgument {
                    field: "spec",
                    message: "must be OFFSET_SPEC_EARLIEST or OFFSET_SPEC_LATEST".into(),
                }
                .into());
            }
        };
        let offsets = self
            .ns
            .list_offsets(&r.topic, &r.partitions, spec)
            .await
            .map_err(ApiError::from)?;
        ok(v1::ListOffsetsResponse {
            offsets: offsets
                .into_iter()
                .map(|(partition, offset)| v1::PartitionOffset { partition, offset })
                .collect(),
        })
    }
}
