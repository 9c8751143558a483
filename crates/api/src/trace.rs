//! What the per-RPC span says about a request: who called (`principal`) and on what
//! (`path`: the volume, stream or topic path the request names). The span itself is made
//! by the server for every RPC (`server.rs`); handlers fill it in through [`caller`].
//!
//! Only names go into the span, never record payloads, tokens or other secrets.

use tonic::{Request, Status};
use tributary_proto::{v1, wire};
use tributary_volume::Caller;

/// The path a request acts on, for the RPC span.
pub trait Subject {
    fn subject(&self) -> Option<&str>;
}

macro_rules! subject {
    ($($ty:ty => $field:ident),* $(,)?) => {
        $(impl Subject for $ty {
            fn subject(&self) -> Option<&str> {
                Some(&self.$field)
            }
        })*
    };
}

macro_rules! no_subject {
    ($($ty:ty),* $(,)?) => {
        $(impl Subject for $ty {
            fn subject(&self) -> Option<&str> {
                None
            }
        })*
    };
}

// Every request a handler takes is listed here: a new RPC adds its request type.
subject!(
    v1::CreateVolumeRequest => path,
    v1::DescribeVolumeRequest => path,
    v1::EditVolumeRequest => path,
    v1::DeleteVolumeRequest => path,
    v1::CreateStreamRequest => path,
    v1::ListStreamsRequest => prefix,
    v1::DescribeStreamRequest => path,
    v1::EditStreamRequest => path,
    v1::PurgeStreamRequest => path,
    v1::DeleteStreamRequest => path,
    v1::CreateTopicRequest => path,
    v1::ListTopicsRequest => stream,
    v1::DescribeTopicRequest => path,
    v1::EditTopicRequest => path,
    v1::DeleteTopicRequest => path,
    wire::ProduceRequest => topic,
    v1::FetchRequest => topic,
    v1::ListOffsetsRequest => topic,
    v1::CheckpointRequest => dir,
    v1::GetPartitionsRequest => topic,
    v1::CommitOffsetsRequest => stream,
    v1::ListGroupsRequest => stream,
    v1::DescribeGroupRequest => stream,
    v1::ResetGroupRequest => stream,
    v1::DeleteGroupRequest => stream,
    v1::PullRequest => stream,
    v1::AddUpstreamRequest => stream,
    v1::ListUpstreamsRequest => stream,
    v1::UpstreamRef => stream,
    v1::PromoteStreamRequest => path,
);

// Requests about users or the cluster name no path.
no_subject!(
    v1::GetClusterRequest,
    v1::WhoAmIRequest,
    v1::CreateUserRequest,
    v1::ListUsersRequest,
    v1::DeleteUserRequest,
    v1::RotateTokenRequest,
    v1::EditUserRequest,
    v1::ListVolumesRequest,
    v1::InitProducerRequest,
    // The stream is named in the session's first message, read after authentication.
    tonic::Streaming<v1::SubscribeRequest>,
);

/// The caller the interceptor authenticated; records it and the request's path in the
/// current RPC span.
pub fn caller<T: Subject>(req: &Request<T>) -> Result<Caller, Status> {
    let c = crate::auth::caller(req)?;
    let span = tracing::Span::current();
    span.record("principal", c.name());
    if let Some(path) = req.get_ref().subject() {
        span.record("path", path);
    }
    Ok(c)
}
