//! What the Kafka door's tests share: a listener over a real namespace (RocksDB in a
//! temporary directory), requests framed and sent with `kafka-protocol`, and SASL PLAIN.

#![allow(dead_code, reason = "each test file uses some of these")]

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, RequestHeader, ResponseHeader, SaslAuthenticateRequest, SaslAuthenticateResponse,
    SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tributary_core::acl::Acl;
use tributary_core::names::StreamPath;
use tributary_kafka::{Options, serve};
use tributary_storage::{Store, StoreOptions};
use tributary_volume::{Namespace, StreamAttributesPatch, SystemClock};

/// A listener on 127.0.0.1:0 over a namespace with `/acme/s` (topics `orders`, 3
/// partitions, and `clicks`, 1) that anyone may see, and `/acme/private` (topic `secret`)
/// that only its owner may; stopped when the guard drops.
pub struct Door {
    pub addr: std::net::SocketAddr,
    pub ns: Arc<Namespace>,
    /// The cluster admin's token (user `admin`).
    pub token: String,
    _stop: oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

pub async fn door(options: Options) -> Door {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("db"), &StoreOptions::default()).unwrap());
    let ns = Arc::new(Namespace::open(store, Arc::new(SystemClock)).await.unwrap());
    let token = ns.ensure_admin().await.unwrap().unwrap();
    let admin = ns.authenticate(&token).unwrap();
    ns.create_volume(&admin, "/acme", None, None, Default::default())
        .await
        .unwrap();
    let open = StreamAttributesPatch {
        consume_perm: Some(Acl::parse("p").unwrap()),
        ..Default::default()
    };
    ns.create_stream(&admin, "/acme/s", &open).await.unwrap();
    ns.create_topic(&admin, "/acme/s:orders", Some(3))
        .await
        .unwrap();
    ns.create_topic(&admin, "/acme/s:clicks", Some(1))
        .await
        .unwrap();
    ns.create_stream(&admin, "/acme/private", &StreamAttributesPatch::default())
        .await
        .unwrap();
    ns.create_topic(&admin, "/acme/private:secret", Some(1))
        .await
        .unwrap();

    let (addr, stop) = listen(ns.clone(), options).await;
    Door {
        addr,
        ns,
        token,
        _stop: stop,
        _dir: dir,
    }
}

/// Serves `ns` with `options` on 127.0.0.1:0: the address, and what stops the listener
/// when dropped.
pub async fn listen(ns: Arc<Namespace>, options: Options) -> (SocketAddr, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve(listener, ns, options, async {
        let _ = stopped.await;
    }));
    (addr, stop)
}

/// Anyone may connect; flat names resolve in `/acme/s`.
pub fn anonymous() -> Options {
    Options {
        allow_anonymous: true,
        default_stream: Some(StreamPath::parse("s", "/acme/s").unwrap()),
        ..Options::default()
    }
}

pub async fn read_response(s: &mut TcpStream) -> Option<Bytes> {
    let mut size = [0u8; 4];
    s.read_exact(&mut size).await.ok()?;
    let mut b = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut b).await.ok()?;
    Some(Bytes::from(b))
}

/// Frames `body` as a request of `key` at `version`.
pub fn framed<M: Encodable>(key: ApiKey, version: i16, correlation_id: i32, body: &M) -> Bytes {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("wire-test")));
    let mut b = BytesMut::new();
    b.put_i32(0);
    header
        .encode(&mut b, key.request_header_version(version))
        .unwrap();
    body.encode(&mut b, version).unwrap();
    let size = (b.len() - 4) as i32;
    b[..4].copy_from_slice(&size.to_be_bytes());
    b.freeze()
}

/// Sends `body` and reads the response's body.
pub async fn call<Req: Encodable, Resp: Decodable>(
    s: &mut TcpStream,
    key: ApiKey,
    version: i16,
    body: &Req,
) -> Resp {
    s.write_all(&framed(key, version, 5, body)).await.unwrap();
    let mut b = read_response(s).await.expect("a response");
    let header = ResponseHeader::decode(&mut b, key.response_header_version(version)).unwrap();
    assert_eq!(header.correlation_id, 5);
    let r = Resp::decode(&mut b, version).unwrap();
    assert!(b.is_empty(), "{} bytes left over", b.len());
    r
}

pub async fn handshake(s: &mut TcpStream, mechanism: &'static str) -> SaslHandshakeResponse {
    let r = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism));
    call(s, ApiKey::SaslHandshake, 1, &r).await
}

pub async fn plain(
    s: &mut TcpStream,
    version: i16,
    user: &str,
    token: &str,
) -> SaslAuthenticateResponse {
    let message = format!("\0{user}\0{token}");
    let r = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(message.into_bytes()));
    call(s, ApiKey::SaslAuthenticate, version, &r).await
}

pub fn private() -> Options {
    Options {
        allow_anonymous: false,
        ..anonymous()
    }
}
