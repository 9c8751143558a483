//! The Kafka front door: Kafka clients (librdkafka, the Java client, kafka-python, kafkajs…)
//! reach the namespace through it, as gRPC clients do through `tributary-api`
//! (design §9). Its handlers call the namespace as the gRPC ones do, so ACLs, quotas and
//! validation apply unchanged.
//!
//! - `frame`: a request off the socket: the size prefix (bounded before anything is
//!   allocated), the request header, and a response's framing;
//! - `schema`: the shape of each request, walked before `kafka-protocol` decodes it, so
//!   that no count read off the wire sizes an allocation the bytes do not back;
//! - `versions`: the APIs and version ranges advertised in ApiVersions, exactly those
//!   implemented;
//! - `conn`: one connection: requests handled one at a time in arrival order, as Kafka
//!   brokers do, so responses leave in request order (a long-poll Fetch included) and a
//!   slow reader holds back its own connection only;
//! - `apis`: a handler per API;
//! - `error`: the crate's one error enum, and the one place the namespace's refusals become
//!   Kafka error codes (handlers answer states only the protocol has, such as an unknown
//!   name or a SASL exchange out of turn, with Kafka's own codes directly).

mod apis;
mod conn;
mod error;
mod frame;
mod schema;
mod versions;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tributary_core::kafka_names::AliasRule;
use tributary_core::names::StreamPath;
use tributary_volume::Namespace;

pub use error::{Error, Result};
pub use versions::ADVERTISED;

/// How the Kafka listener runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The largest request accepted; a larger size prefix closes the connection before
    /// anything is read or allocated (Kafka's `socket.request.max.bytes`).
    pub max_request_bytes: usize,
    /// Connections served at once; one more is closed as soon as it is accepted.
    pub max_connections: usize,
    /// What Metadata reports as this broker's address; the listener's own when `None`.
    pub advertised: Option<(String, u16)>,
    /// Where flat topic names resolve when no alias rule and no user default matches.
    pub default_stream: Option<StreamPath>,
    /// `PATTERN=STREAM` rules, tried first.
    pub aliases: Vec<AliasRule>,
    /// Requests without credentials act as the anonymous user.
    pub allow_anonymous: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_request_bytes: 100 << 20,
            max_connections: 10_000,
            advertised: None,
            default_stream: None,
            aliases: Vec::new(),
            allow_anonymous: false,
        }
    }
}

/// What every connection shares: the namespace and the listener's settings.
pub struct Door {
    ns: Arc<Namespace>,
    options: Options,
    /// Host and port Metadata reports.
    advertised: (String, u16),
}

/// Serves Kafka clients on `listener` until `shutdown` resolves; then closes every
/// connection after the request it is handling.
pub async fn serve(
    listener: TcpListener,
    ns: Arc<Namespace>,
    options: Options,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let local = local_addr(&listener)?;
    let advertised = options
        .advertised
        .clone()
        .unwrap_or_else(|| (local.ip().to_string(), local.port()));
    let door = Arc::new(Door {
        ns,
        options,
        advertised,
    });
    let slots = Arc::new(Semaphore::new(door.options.max_connections));
    let (stop, stopping) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (socket, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                // A failed accept (out of file descriptors, a reset before accept) ends
                // that connection only.
                Err(e) => {
                    tracing::warn!(error = %e, "kafka: accept failed");
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, limit = door.options.max_connections, "kafka: connection limit reached; closing");
            continue;
        };
        let _ = socket.set_nodelay(true);
        let door = door.clone();
        let stopping = stopping.clone();
        tokio::spawn(async move {
            if let Err(e) = conn::run(socket, peer, &door, stopping).await {
                tracing::debug!(%peer, error = %e, "kafka: connection closed");
            }
            drop(slot);
        });
    }
    let _ = stop.send(true);
    Ok(())
}

/// Where a listener is bound, for a caller that bound port 0.
pub fn local_addr(listener: &TcpListener) -> Result<SocketAddr> {
    listener.local_addr().map_err(Error::Io)
}

/// Entry points for the fuzz targets in `fuzz/`; not an API.
#[doc(hidden)]
pub mod fuzzing {
    use bytes::Bytes;
    use kafka_protocol::messages::{ApiKey, RequestKind};

    use crate::versions::{closed, served};
    use crate::{frame, schema};

    /// What the door does with a request's bytes before a handler runs: the header, the
    /// version against the advertised range, the walk over the request's shape and, only
    /// if the walk passed, `kafka-protocol`'s decoding, which must then succeed.
    pub fn request(bytes: &[u8]) {
        let Ok(req) = frame::parse(Bytes::copy_from_slice(bytes)) else {
            return;
        };
        let Ok(key) = ApiKey::try_from(req.api_key) else {
            return;
        };
        let Some(range) = served(key) else { return };
        if !(range.min..=range.max).contains(&req.api_version) || closed(key, req.api_version) {
            return;
        }
        let shape = schema::shape(key).expect("every served API has a shape");
        if schema::check(shape, req.api_version, &req.body).is_err() {
            return;
        }
        let mut body = req.body.clone();
        if let Err(e) = RequestKind::decode(key, &mut body, req.api_version) {
            panic!(
                "{key:?} v{}: the walk passed but decoding failed: {e}",
                req.api_version
            );
        }
        assert!(
            body.is_empty(),
            "{key:?} v{}: decoding left bytes",
            req.api_version
        );
    }
}
