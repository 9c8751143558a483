//! Runs the gRPC server on a given listener until a shutdown future resolves; in-flight
//! requests finish first (parked long-polls are released at once).
//!
//! Besides the Tributary services it serves, without authentication, the standard
//! `grpc.health.v1.Health` service and server reflection (v1 and v1alpha), so that load
//! balancers, probes and `grpcurl` work with no proto files. Every RPC gets a span
//! (`rpc`, `principal`, `path`) and is metered (`metrics.rs`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tributary_proto::{v1, wire};
use tributary_replication::Links;
use tributary_volume::Namespace;

use crate::auth::Authenticator;
use crate::metrics::RpcMetricsLayer;
use crate::{Health, QuotaConfig, Quotas, Services, limits, request_decoding_status};

/// The server pings every connection this often, and closes one whose ping goes unanswered
/// for [`KEEPALIVE_TIMEOUT`]. An open `Subscribe` stream keeps its group member alive, so
/// this is how a member whose peer vanished (a dead host, a cut link) is found and leaves
/// its group: within about 10 s, the default session timeout (design §5).
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// PEM files for TLS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
    /// With a client CA, clients may authenticate with a certificate it signed; its subject
    /// CN names the user.
    pub client_ca: Option<Vec<u8>>,
}

/// Transport and access settings.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Serve TLS instead of plaintext.
    pub tls: Option<TlsFiles>,
    /// Serve requests without credentials as the `anonymous` user.
    pub allow_anonymous: bool,
    /// Largest request or response message.
    pub max_message_bytes: usize,
    /// HTTP/2 flow-control windows: the 64 KiB default throttles one busy stream.
    pub stream_window_bytes: u32,
    pub connection_window_bytes: u32,
    /// What the health service reports; the server turns it to NOT_SERVING when its
    /// shutdown future resolves, and the caller may do so earlier (to drain).
    pub health: Health,
    /// Per-principal request and byte rates (`tributary_core::quota`); unlimited by
    /// default. The server builds the buckets from them once, for both doors.
    pub quotas: QuotaConfig,
    /// The replica links the replicator runs, whose status the Replication service shows;
    /// a server without a replicator leaves it out and gets links of its own.
    pub links: Option<Arc<Links>>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            tls: None,
            allow_anonymous: false,
            max_message_bytes: 64 << 20,
            stream_window_bytes: 8 << 20,
            connection_window_bytes: 32 << 20,
            health: Health::default(),
            quotas: QuotaConfig::default(),
            links: None,
        }
    }
}

/// Serves the API on `listener` until `shutdown` resolves, charging calls to `quotas` (the
/// buckets built from `options.quotas`, shared with the Kafka door).
pub async fn serve(
    ns: Arc<Namespace>,
    listener: TcpListener,
    options: &ServerOptions,
    quotas: Arc<Quotas>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let links = match &options.links {
        Some(l) => l.clone(),
        None => Links::new(ns.clone()),
    };
    let max = options.max_message_bytes;
    let services = Services::new(ns.clone(), links, quotas.clone(), max);
    let auth = Authenticator::new(ns.clone(), quotas, options.allow_anonymous);
    let admin = v1::admin_server::AdminServer::new(services.clone())
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let producer = wire::producer_server::ProducerServer::new(services.clone())
        .max_decoding_message_size(max)
        .max_encoding_message_size(max)
        .accept_compressed(CompressionEncoding::Gzip);
    let consumer = wire::consumer_server::ConsumerServer::new(services.clone())
        .max_decoding_message_size(max)
        .max_encoding_message_size(max)
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip);
    let replication = v1::replication_server::ReplicationServer::new(services.clone())
        .max_decoding_message_size(max)
        .max_encoding_message_size(max)
        .send_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Gzip);
    let replication = InterceptedService::new(replication, auth.clone());
    let admin = InterceptedService::new(admin, auth.clone());
    let producer = InterceptedService::new(producer, auth.clone());
    let consumer = InterceptedService::new(consumer, auth);
    let health = options.health.clone();
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let shutdown = async move {
        shutdown.await;
        tracing::info!("shutting down: finishing in-flight requests");
        health.set_not_serving();
        ns.close();
    };
    let mut builder = Server::builder();
    if let Some(tls) = &options.tls {
        let mut config = ServerTlsConfig::new().identity(Identity::from_pem(&tls.cert, &tls.key));
        if let Some(ca) = &tls.client_ca {
            config = config
                .client_ca_root(Certificate::from_pem(ca))
                .client_auth_optional(true);
        }
        builder = builder.tls_config(config)?;
    }
    builder
        .initial_stream_window_size(options.stream_window_bytes)
        .initial_connection_window_size(options.connection_window_bytes)
        .max_frame_size(limits::HTTP2_MAX_FRAME_BYTES)
        .http2_max_header_list_size(limits::HTTP2_MAX_HEADER_LIST_BYTES)
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .trace_fn(|req| {
            tracing::info_span!(
                "rpc",
                rpc = %req.uri().path().trim_start_matches('/'),
                principal = tracing::field::Empty,
                path = tracing::field::Empty,
            )
        })
        .layer(RpcMetricsLayer)
        .layer(tower::util::MapResponseLayer::new(design_status))
        .add_service(admin)
        .add_service(producer)
        .add_service(consumer)
        .add_service(replication)
        .add_service(options.health.server())
        // v1 for grpcurl and current clients; v1alpha for the many (grpcio's among them)
        // that still ask for it. The descriptors are checked by a test.
        .add_service(reflection().build_v1().expect("valid descriptor sets"))
        .add_service(reflection().build_v1alpha().expect("valid descriptor sets"))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}

/// Rewrites the status of a call that tonic refused while reading its request to the code
/// design §7 gives it (see `request_decoding_status`). Such refusals are trailers-only
/// responses: the status is in the response headers.
fn design_status<B>(mut res: http::Response<B>) -> http::Response<B> {
    let Some(status) = tonic::Status::from_header_map(res.headers()) else {
        return res;
    };
    if let Some(mapped) = request_decoding_status(&status) {
        tracing::debug!(from = ?status.code(), to = ?mapped.code(), "request refused while decoding");
        if mapped.add_header(res.headers_mut()).is_err() {
            tracing::warn!("could not rewrite a request decoding status");
        }
    }
    res
}

fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tributary_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reflection_accepts_the_embedded_descriptors() {
        super::reflection().build_v1().unwrap();
        super::reflection().build_v1alpha().unwrap();
    }
}
