//! The gRPC handlers: decode the request, call the namespace, convert the result. No
//! decisions are made here.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use tributary_proto::v1;
use tributary_replication::Links;
use tributary_volume::{Namespace, VolumeEdit};

use crate::trace::caller;
use crate::{ApiError, Quotas, convert};

pub(crate) type Reply<T> = Result<Response<T>, Status>;

pub(crate) fn ok<T>(t: T) -> Reply<T> {
    Ok(Response::new(t))
}

/// The Admin, Producer, Consumer and Replication services over one namespace.
#[derive(Debug, Clone)]
pub struct Services {
    pub(crate) ns: Arc<Namespace>,
    /// The replica links into this cluster, with their live status.
    pub(crate) links: Arc<Links>,
    /// Byte-rate quotas (request rates are checked at authentication).
    pub(crate) quotas: Arc<Quotas>,
    /// The largest message the server sends: fetch responses are kept within it.
    pub(crate) max_message_bytes: usize,
    version: &'static str,
}

impl Services {
    pub fn new(
        ns: Arc<Namespace>,
        links: Arc<Links>,
        quotas: Arc<Quotas>,
        max_message_bytes: usize,
    ) -> Self {
        Self {
            ns,
            links,
            quotas,
            max_message_bytes,
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

    async fn who_am_i(&self, r: Request<v1::WhoAmIRequest>) -> Reply<v1::User> {
        let c = caller(&r)?;
        ok(convert::user(self.ns.whoami(&c)))
    }

    async fn create_user(
        &self,
        r: Request<v1::CreateUserRequest>,
    ) -> Reply<v1::CreateUserResponse> {
        let c = caller(&r)?;
        let r = r.into_inner();
        let (u, token) = self
            .ns
            .create_user(&c, &r.name, r.groups, r.cluster_admin)
            .await
            .map_err(ApiError::from)?;
        ok(v1::CreateUserResponse {
            user: Some(convert::user(u)),
            token,
        })
    }

    async fn list_users(&self, r: Request<v1::ListUsersRequest>) -> Reply<v1::ListUsersResponse> {
        let c = caller(&r)?;
        let users = self.ns.list_users(&c).map_err(ApiError::from)?;
        ok(v1::ListUsersResponse {
            users: users.into_iter().map(convert::user).collect(),
        })
    }

    async fn delete_user(
        &self,
        r: Request<v1::DeleteUserRequest>,
    ) -> Reply<v1::DeleteUserResponse> {
        let c = caller(&r)?;
        self.ns
            .delete_user(&c, &r.into_inner().name)
            .await
            .map_err(ApiError::from)?;
        ok(v1::DeleteUserResponse {})
    }

    async fn edit_user(&self, r: Request<v1::EditUserRequest>) -> Reply<v1::User> {
        let c = caller(&r)?;
        let r = r.into_inner();
        let u = self
            .ns
            .edit_user(&c, &r.name, r.kafka_default_stream.as_deref())
            .await
            .map_err(ApiError::from)?;
        ok(convert::user(u))
    }

    async fn rotate_token(
        &self,
        r: Request<v1::RotateTokenRequest>,
    ) -> Reply<v1::RotateTokenResponse> {
        let c = caller(&r)?;
        let token = self
            .ns
            .rotate_token(&c, &r.into_inner().name)
            .await
            .map_err(ApiError::from)?;
        ok(v1::RotateTokenResponse { token })
    }

    async fn create_volume(&self, r: Request<v1::CreateVolumeRequest>) -> Reply<v1::Volume> {
        let c = caller(&r)?;
        let r = r.into_inner();
        let admin_perm = convert::acl("admin_perm", r.admin_perm.as_deref())?;
        let v = self
            .ns
            .create_volume(
                &c,
                &r.path,
                Some(&r.owner),
                admin_perm,
                convert::quotas(r.quotas),
            )
            .await
            .map_err(ApiError::from)?;
        ok(convert::volume(v))
    }

    async fn list_volumes(
        &self,
        r: Request<v1::ListVolumesRequest>,
    ) -> Reply<v1::ListVolumesResponse> {
        let c = caller(&r)?;
        ok(v1::ListVolumesResponse {
            volumes: self
                .ns
                .list_volumes(&c)
                .into_iter()
                .map(convert::volume)
                .collect(),
        })
    }

    async fn describe_volume(&self, r: Request<v1::DescribeVolumeRequest>) -> Reply<v1::Volume> {
        let c = caller(&r)?;
        let v = self
            .ns
            .describe_volume(&c, &r.into_inner().path)
            .map_err(ApiError::from)?;
        ok(convert::volume(v))
    }

    async fn edit_volume(&self, r: Request<v1::EditVolumeRequest>) -> Reply<v1::Volume> {
        let c = caller(&r)?;
        let r = r.into_inner();
        let edit = VolumeEdit {
            owner: r.owner,
            admin_perm: convert::acl("admin_perm", r.admin_perm.as_deref())?,
            quotas: r.quotas.map(|q| convert::quotas(Some(q))),
        };
        let v = self
            .ns
            .edit_volume(&c, &r.path, edit)
            .await
            .map_err(ApiError::from)?;
        ok(convert::volume(v))
    }

    async fn delete_volume(
        &self,
        r: Request<v1::DeleteVolumeRequest>,
    ) -> Reply<v1::DeleteVolumeResponse> {
        let c = caller(&r)?;
        let r = r.into_inner();
        self.ns
            .delete_volume(&c, &r.path, r.force)
            .await
            .map_err(ApiError::from)?;
        ok(v1::DeleteVolumeResponse {})
    }

    async fn create_stream(&self, r: Request<v1::CreateStreamRequest>) -> Reply<v1::Stream> {
        let c = caller(&r)?;
        let r = r.into_inner();
        let patch = convert::patch(r.attributes)?;
        let s = self
            .ns
            .create_stream(&c, &r.path, &patch)
            .await
            .map_err(ApiError::from)?;
        ok(convert::stream(s))
    }

    async fn list_streams(
        &self,
        r: Request<v1::ListStreamsRequest>,
    ) -> Reply<v1::ListStreamsResponse> {
        let c = caller(&r)?;
        let s = self
            .ns
            .list_streams(&c, &r.into_inner().prefix)
            .await
            .map_err(ApiError::from)?;
        ok(v1::ListStreamsResponse {
            streams: s.into_iter().map(convert::stream).collect(),
        })
    }

    async fn describe_stream(&self, r: Request<v1::DescribeStreamRequest>) -> Reply<v1::Stream> {
        let c = caller(&r)?;
        let s = self
            .ns
            .describe_stream(&c, &r.into_inner().path)
            .await
            .map_err(ApiError::from)?;
        ok(convert::stream(s))
    }

    async fn edit_stream(&self, r: Request<v1::EditStreamRequest>) -> Reply<v1::Stream> {
        let c = caller(&r)?;
        let r = r.into_inner();
        let patch = convert::patch(r.attributes)?;
        let s = self
            .ns
            .edit_stream(&c, &r.path, &patch)
            .await
            .map_err(ApiError::from)?;
        ok(convert::stream(s))
    }

    async fn purge_stream(
        &self,
        r: Request<v1::PurgeStreamRequest>,
    ) -> Reply<v1::PurgeStreamResponse> {
        let c = caller(&r)?;
        let p = self
            .ns
            .purge_stream(&c, &r.into_inner().path)
            .await
            .map_err(ApiError::from)?;
        ok(v1::PurgeStreamResponse {
            purged_records: p.records,
            purged_bytes: p.bytes,
        })
    }

    async fn delete_stream(
        &self,
        r: Request<v1::DeleteStreamRequest>,
    ) -> Reply<v1::DeleteStreamResponse> {
        let c = caller(&r)?;
        self.ns
            .delete_stream(&c, &r.into_inner().path)
            .await
            .map_err(ApiError::from)?;
        ok(v1::DeleteStreamResponse {})
    }

    async fn create_topic(&self, r: Request<v1::CreateTopicRequest>) -> Reply<v1::Topic> {
        let c = caller(&r)?;
        let r = r.into_inner();
        let t = self
            .ns
            .create_topic(&c, &r.path, r.partitions)
            .await
            .map_err(ApiError::from)?;
        ok(convert::topic(t))
    }

    async fn list_topics(
        &self,
        r: Request<v1::ListTopicsRequest>,
    ) -> Reply<v1::ListTopicsResponse> {
        let c = caller(&r)?;
        let t = self
            .ns
            .list_topics(&c, &r.into_inner().stream)
            .await
            .map_err(ApiError::from)?;
        ok(v1::ListTopicsResponse {
            topics: t.into_iter().map(convert::topic).collect(),
        })
    }

    async fn describe_topic(&self, r: Request<v1::DescribeTopicRequest>) -> Reply<v1::Topic> {
        let c = caller(&r)?;
        let t = self
            .ns
            .describe_topic(&c, &r.into_inner().path)
            .await
            .map_err(ApiError::from)?;
        ok(convert::topic(t))
    }

    async fn edit_topic(&self, r: Request<v1::EditTopicRequest>) -> Reply<v1::Topic> {
        let c = caller(&r)?;
        let r = r.into_inner();
        let t = self
            .ns
            .edit_topic(&c, &r.path, r.partitions)
            .await
            .map_err(ApiError::from)?;
        ok(convert::topic(t))
    }

    async fn delete_topic(
        &self,
        r: Request<v1::DeleteTopicRequest>,
    ) -> Reply<v1::DeleteTopicResponse> {
        let c = caller(&r)?;
        self.ns
            .delete_topic(&c, &r.into_inner().path)
            .await
            .map_err(ApiError::from)?;
        ok(v1::DeleteTopicResponse {})
    }

    async fn checkpoint(&self, r: Request<v1::CheckpointRequest>) -> Reply<v1::CheckpointResponse> {
        let c = caller(&r)?;
        let dir = r.into_inner().dir;
        let info = self.ns.checkpoint(&c, &dir).await.map_err(ApiError::from)?;
        ok(v1::CheckpointResponse {
            dir,
            bytes: info.bytes,
        })
    }
}
