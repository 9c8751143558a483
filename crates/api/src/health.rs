//! The standard `grpc.health.v1.Health` service, so load balancers, Kubernetes probes and
//! `grpcurl` can ask whether the server takes requests, with no proto files and no token.
//!
//! It is our own implementation of tonic-health's generated trait because shutdown needs
//! two things the stock one does not do: report NOT_SERVING while the server drains, and
//! end every open `Watch` stream so that the graceful shutdown is not held up by them.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tokio::sync::watch;
use tonic::{Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_server::{self, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

/// The services whose health is reported; `""` stands for the server as a whole.
pub const SERVICES: &[&str] = &[
    "",
    "tributary.v1.Admin",
    "tributary.v1.Producer",
    "tributary.v1.Consumer",
];

/// Whether the server takes requests: SERVING from start until shutdown begins, then
/// NOT_SERVING for good. Cloning shares the state.
#[derive(Debug, Clone)]
pub struct Health {
    serving: Arc<watch::Sender<bool>>,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            serving: Arc::new(watch::Sender::new(true)),
        }
    }
}

impl Health {
    /// Reports NOT_SERVING from now on and ends open `Watch` streams after telling them.
    pub fn set_not_serving(&self) {
        self.serving.send_replace(false);
    }

    pub fn is_serving(&self) -> bool {
        *self.serving.borrow()
    }

    pub(crate) fn server(&self) -> HealthServer<Self> {
        HealthServer::new(self.clone())
    }
}

fn status(known: bool, serving: bool) -> HealthCheckResponse {
    let s = match (known, serving) {
        (false, _) => ServingStatus::ServiceUnknown,
        (true, true) => ServingStatus::Serving,
        (true, false) => ServingStatus::NotServing,
    };
    HealthCheckResponse { status: s as i32 }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

#[tonic::async_trait]
impl health_server::Health for Health {
    async fn check(
        &self,
        r: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let service = r.into_inner().service;
        if !SERVICES.contains(&service.as_str()) {
            return Err(Status::not_found(format!("unknown service `{service}`")));
        }
        Ok(Response::new(status(true, self.is_serving())))
    }

    type WatchStream = WatchStream;

    /// Sends the current status, then the change to NOT_SERVING when shutdown begins, and
    /// ends. An unknown service gets SERVICE_UNKNOWN and, as the protocol asks, the call
    /// stays open (until shutdown).
    async fn watch(&self, r: Request<HealthCheckRequest>) -> Result<Response<WatchStream>, Status> {
        let known = SERVICES.contains(&r.into_inner().service.as_str());
        let rx = self.serving.subscribe();
        // State: the receiver and the last status sent (none yet).
        let stream = futures::stream::unfold((rx, None), move |(mut rx, sent)| async move {
            let serving = match sent {
                None => *rx.borrow_and_update(),
                Some(false) => return None,
                Some(true) => loop {
                    // The sender lives as long as the server: an error means it is gone.
                    rx.changed().await.ok()?;
                    if !*rx.borrow_and_update() {
                        break false;
                    }
                },
            };
            Some((Ok(status(known, serving)), (rx, Some(serving))))
        });
        Ok(Response::new(Box::pin(stream)))
    }
}
