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
//! - `session`: what a connection knows of its client (who it is, how it proved it, its
//!   SASL exchange), checked again before each request;
//! - `throttle`: a request over its principal's rate quotas is served and answered with
//!   `throttle_time_ms`, and its connection muted that long, as Kafka brokers do (KIP-219);
//! - `scram`: SCRAM-SHA-256/512's messages, server side;
//! - `apis`: a handler per API;
//! - `configs`: Kafka's topic configs as a stream's attributes, both ways, and the
//!   broker's read-only configs;
//! - `error`: the crate's one error enum, and the one place the namespace's refusals become
//!   Kafka error codes (handlers answer states only the protocol has, such as an unknown
//!   name or a SASL exchange out of turn, with Kafka's own codes directly).

mod apis;
mod configs;
mod conn;
mod error;
mod frame;
mod schema;
mod scram;
mod session;
mod throttle;
mod versions;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tributary_core::kafka_names::AliasRule;
use tributary_core::names::StreamPath;
use tributary_core::quota::{QuotaConfig, Quotas};
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
    /// Serve TLS (SSL, and SASL_SSL): the server's certificates and, when it takes client
    /// certificates, their CA; a verified client certificate's subject CN names the user.
    pub tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    /// Per-principal rate quotas: the server shares the gRPC door's buckets, so one
    /// user's limits cover both doors.
    pub quotas: Arc<Quotas>,
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
            tls: None,
            quotas: Arc::new(Quotas::new(QuotaConfig::default())),
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
/// connection after the request it is handling, and returns once all are closed.
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
            if let Err(e) = connection(socket, peer, &door, stopping).await {
                tracing::debug!(%peer, error = %e, "kafka: connection closed");
            }
            drop(slot);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    // Every connection holds a slot until it ends.
    let all = u32::try_from(door.options.max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
    Ok(())
}

/// How long a client has to finish the TLS handshake.
const TLS_HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);

/// One accepted connection: the TLS handshake when the listener serves TLS (a client
/// certificate naming the user it acts as), then the requests.
async fn connection(
    socket: TcpStream,
    peer: SocketAddr,
    door: &Door,
    stopping: watch::Receiver<bool>,
) -> Result<()> {
    let Some(config) = &door.options.tls else {
        let session = session::Session::new(door.options.allow_anonymous);
        return conn::run(socket, peer, door, session, stopping).await;
    };
    let acceptor = TlsAcceptor::from(config.clone());
    let tls = tokio::time::timeout(TLS_HANDSHAKE_LIMIT, acceptor.accept(socket))
        .await
        .map_err(|_| Error::Tls("the TLS handshake took too long".into()))?
        .map_err(|e| Error::Tls(format!("TLS handshake: {e}")))?;
    let certificate = tls.get_ref().1.peer_certificates().and_then(|c| c.first());
    let session = match certificate {
        None => session::Session::new(door.options.allow_anonymous),
        Some(der) => {
            let name = common_name(der)?;
            let caller = door.ns.authenticate_user(&name).map_err(|e| {
                tracing::warn!(%peer, user = %name, error = %e, "kafka: client certificate names no user; closing");
                Error::Tls(format!("client certificate for `{name}`: {e}"))
            })?;
            session::Session::with_certificate(caller)
        }
    };
    conn::run(tls, peer, door, session, stopping).await
}

/// The subject CN of a client certificate the handshake verified.
fn common_name(der: &[u8]) -> Result<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| Error::Tls(format!("unreadable client certificate: {e}")))?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok());
    cn.map(str::to_owned)
        .ok_or_else(|| Error::Tls("the client certificate has no subject CN".into()))
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
    /// if the walk passed, `kafka-protocol`'s decoding, which must then succeed and end
    /// the body where the walk did (bytes after the body are ignored, as Kafka does).
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
        let Ok(walked) = schema::check(shape, req.api_version, &req.body) else {
            return;
        };
        let mut body = req.body.clone();
        if let Err(e) = RequestKind::decode(key, &mut body, req.api_version) {
            panic!(
                "{key:?} v{}: the walk passed but decoding failed: {e}",
                req.api_version
            );
        }
        assert_eq!(
            req.body.len() - body.len(),
            walked,
            "{key:?} v{}: decoding and the walk ended the body at different bytes",
            req.api_version
        );
    }

    /// A SASL exchange as `SaslAuthenticate` carries it, on a door over `ns`, whose user
    /// `user` holds `token`. `data`: a byte choosing the mechanism, then up to three
    /// messages split at 0xFF, in which `\x01T` stands for the token, `\x01R` for the
    /// nonce the server's first SCRAM message gave and `\x01C` for the base64 GS2 header
    /// of the first message, so the fuzzer reaches the later checks. Nothing may panic; a
    /// failure ends the exchange; only the token's user is ever authenticated, and a SCRAM
    /// proof (which no substitution can forge) never passes.
    pub struct Sasl {
        door: crate::Door,
        user: String,
    }

    impl Sasl {
        pub fn new(ns: std::sync::Arc<tributary_volume::Namespace>, user: &str) -> Sasl {
            let door = crate::Door {
                ns,
                options: crate::Options::default(),
                advertised: ("127.0.0.1".into(), 9092),
            };
            Sasl {
                door,
                user: user.to_owned(),
            }
        }

        pub fn run(&self, token: &str, data: &[u8]) {
            use base64::Engine;

            let Some((choice, rest)) = data.split_first() else {
                return;
            };
            let mechanism = crate::apis::sasl::MECHANISMS[usize::from(*choice) % 4];
            let mut session = crate::session::Session::new(false);
            session.mechanism = Some(mechanism);
            let (mut nonce, mut gs2) = (Vec::new(), Vec::new());
            for (i, message) in rest.split(|b| *b == 0xFF).take(3).enumerate() {
                let message = substitute(message, token.as_bytes(), &nonce, &gs2);
                if i == 0 {
                    let mut commas = message.iter().enumerate().filter(|(_, b)| **b == b',');
                    if let Some((end, _)) = commas.nth(1) {
                        gs2 = base64::engine::general_purpose::STANDARD
                            .encode(&message[..=end])
                            .into_bytes();
                    }
                }
                let was_authenticated = session.authenticated;
                match crate::apis::sasl::step(&self.door, &mut session, &message) {
                    Ok(reply) => {
                        assert!(!was_authenticated, "a second exchange on one connection");
                        if let Some(r) = reply.strip_prefix(b"r=") {
                            nonce = r.split(|b| *b == b',').next().unwrap_or_default().to_vec();
                        }
                    }
                    Err(_) => return,
                }
            }
            if session.authenticated {
                let caller = session.caller.as_ref().expect("an authenticated caller");
                assert_eq!(caller.name(), self.user);
                assert!(
                    !mechanism.starts_with("SCRAM"),
                    "a SCRAM proof passed that was not computed from the token"
                );
            }
        }
    }

    fn substitute(message: &[u8], token: &[u8], nonce: &[u8], gs2: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(message.len());
        let mut i = 0;
        while i < message.len() {
            let by = match (message[i], message.get(i + 1)) {
                (1, Some(b'T')) => Some(token),
                (1, Some(b'R')) => Some(nonce),
                (1, Some(b'C')) => Some(gs2),
                _ => None,
            };
            match by {
                Some(with) => {
                    out.extend_from_slice(with);
                    i += 2;
                }
                None => {
                    out.push(message[i]);
                    i += 1;
                }
            }
        }
        out
    }
}
