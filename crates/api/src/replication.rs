//! The Replication service: the upstream side of a pull (a server stream fed by a pull
//! session), and link administration on the destination side. Thin, like every handler:
//! `tributary-replication` does the work, and its `wire` module converts the messages.

use std::pin::Pin;

use futures::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tributary_proto::v1;
use tributary_replication::{PullRequest, PullSession, wire};
use tributary_volume::UpstreamSpec;

use crate::auth::credential;
use crate::services::{Reply, Services, ok};
use crate::trace::caller;
use crate::{ApiError, convert};

type PullStream = Pin<Box<dyn Stream<Item = Result<v1::PullResponse, Status>> + Send>>;

/// Responses a pull keeps ready ahead of the network (each at most the pull's byte budget).
const PULL_AHEAD: usize = 2;

#[tonic::async_trait]
impl v1::replication_server::Replication for Services {
    type PullStream = PullStream;

    async fn pull(&self, r: Request<v1::PullRequest>) -> Reply<Self::PullStream> {
        caller(&r)?; // the principal, in the RPC's span
        let credential = credential(&r);
        let r = r.into_inner();
        let source = self
            .ns
            .pull_source(credential, &r.stream)
            .map_err(ApiError::from)?;
        let req = PullRequest::try_from(r).map_err(ApiError::from)?;
        let mut session = PullSession::open(source, req).map_err(ApiError::from)?;
        let (tx, rx) = tokio::sync::mpsc::channel(PULL_AHEAD);
        tokio::spawn(async move {
            loop {
                // Stop when the puller goes, even while waiting for records.
                let next = tokio::select! {
                    next = session.next() => next,
                    _ = tx.closed() => return,
                };
                let failed = next.is_err();
                if tx
                    .send(next.map(Into::into).map_err(|e| ApiError::from(e).into()))
                    .await
                    .is_err()
                    || failed
                {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn add_upstream(&self, r: Request<v1::AddUpstreamRequest>) -> Reply<v1::Upstream> {
        let c = caller(&r)?;
        let r = r.into_inner();
        let spec = UpstreamSpec {
            stream: r.stream,
            from: r.from,
            token: (!r.token.is_empty()).then_some(r.token),
            token_file: (!r.token_file.is_empty()).then_some(r.token_file),
            ca_cert: (!r.ca_cert.is_empty()).then(|| r.ca_cert.to_vec()),
            start: wire::link_start(r.start).map_err(ApiError::from)?,
            mirror: r.mirror,
            paused: r.paused,
        };
        let l = self.links.add(&c, spec).await.map_err(ApiError::from)?;
        ok(l.into())
    }

    async fn list_upstreams(
        &self,
        r: Request<v1::ListUpstreamsRequest>,
    ) -> Reply<v1::ListUpstreamsResponse> {
        let c = caller(&r)?;
        let links = self
            .links
            .list(&c, &r.get_ref().stream)
            .await
            .map_err(ApiError::from)?;
        ok(v1::ListUpstreamsResponse {
            upstreams: links.into_iter().map(Into::into).collect(),
        })
    }

    async fn pause_upstream(&self, r: Request<v1::UpstreamRef>) -> Reply<v1::Upstream> {
        self.set_paused(r, true).await
    }

    async fn resume_upstream(&self, r: Request<v1::UpstreamRef>) -> Reply<v1::Upstream> {
        self.set_paused(r, false).await
    }

    async fn remove_upstream(
        &self,
        r: Request<v1::UpstreamRef>,
    ) -> Reply<v1::RemoveUpstreamResponse> {
        let c = caller(&r)?;
        let r = r.into_inner();
        self.links
            .remove(&c, &r.stream, &r.from)
            .await
            .map_err(ApiError::from)?;
        ok(v1::RemoveUpstreamResponse {})
    }

    async fn promote_stream(&self, r: Request<v1::PromoteStreamRequest>) -> Reply<v1::Stream> {
        let c = caller(&r)?;
        let s = self
            .ns
            .promote_stream(&c, &r.get_ref().path)
            .await
            .map_err(ApiError::from)?;
        ok(convert::stream(s))
    }
}

impl Services {
    async fn set_paused(&self, r: Request<v1::UpstreamRef>, paused: bool) -> Reply<v1::Upstream> {
        let c = caller(&r)?;
        let r = r.into_inner();
        let l = self
            .links
            .set_paused(&c, &r.stream, &r.from, paused)
            .await
            .map_err(ApiError::from)?;
        ok(l.into())
    }
}
