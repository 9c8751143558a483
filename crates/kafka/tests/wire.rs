//! The Kafka door on a real socket: version negotiation (KIP-511 included), responses in
//! request order, and hostile frames that close one connection and leave the listener
//! serving.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tributary_kafka::{ADVERTISED, Options, serve};

/// A listener on 127.0.0.1:0, stopped when the guard drops.
struct Door {
    addr: std::net::SocketAddr,
    _stop: oneshot::Sender<()>,
}

async fn door(options: Options) -> Door {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve(listener, options, async {
        let _ = stopped.await;
    }));
    Door { addr, _stop: stop }
}

fn request(correlation_id: i32, version: i16) -> Bytes {
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::ApiVersions as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("wire-test")));
    let body = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("wire-test"))
        .with_client_software_version(StrBytes::from_static_str("1.0"));
    // A version past what kafka-protocol knows is framed as its newest.
    let known = version.min(ApiKey::ApiVersions.valid_versions().max);
    let hv = ApiKey::ApiVersions.request_header_version(known);
    let mut b = BytesMut::new();
    b.put_i32(0);
    header.encode(&mut b, hv).unwrap();
    body.encode(&mut b, known).unwrap();
    let size = (b.len() - 4) as i32;
    b[..4].copy_from_slice(&size.to_be_bytes());
    b.freeze()
}

async fn read_response(s: &mut TcpStream) -> Option<Bytes> {
    let mut size = [0u8; 4];
    s.read_exact(&mut size).await.ok()?;
    let mut b = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut b).await.ok()?;
    Some(Bytes::from(b))
}

/// The correlation id and the body of an ApiVersions response read at `version`.
fn decode(mut b: Bytes, version: i16) -> (i32, ApiVersionsResponse) {
    let header = ResponseHeader::decode(&mut b, 0).unwrap();
    let body = ApiVersionsResponse::decode(&mut b, version).unwrap();
    assert!(!b.has_remaining(), "{} bytes left over", b.remaining());
    (header.correlation_id, body)
}

/// The peer closed the connection: a read returns end of file (or a reset).
async fn closed(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    matches!(
        tokio::time::timeout(Duration::from_secs(10), s.read(&mut b)).await,
        Ok(Ok(0) | Err(_))
    )
}

async fn still_serves(addr: std::net::SocketAddr) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&request(9, 3)).await.unwrap();
    let (id, body) = decode(read_response(&mut s).await.expect("a response"), 3);
    assert_eq!((id, body.error_code), (9, 0));
}

#[tokio::test]
async fn api_versions_at_every_version_lists_what_is_served() {
    let d = door(Options::default()).await;
    for version in 0..=4 {
        let mut s = TcpStream::connect(d.addr).await.unwrap();
        s.write_all(&request(100 + i32::from(version), version))
            .await
            .unwrap();
        let (id, body) = decode(read_response(&mut s).await.unwrap(), version);
        assert_eq!(id, 100 + i32::from(version));
        assert_eq!(body.error_code, 0, "v{version}");
        let listed: Vec<(i16, i16, i16)> = body
            .api_keys
            .iter()
            .map(|k| (k.api_key, k.min_version, k.max_version))
            .collect();
        let advertised: Vec<(i16, i16, i16)> = ADVERTISED
            .iter()
            .map(|s| (s.key as i16, s.min, s.max))
            .collect();
        assert_eq!(listed, advertised, "v{version}");
    }
}

#[tokio::test]
async fn an_unknown_api_versions_version_is_answered_at_v0_with_unsupported_version() {
    let d = door(Options::default()).await;
    let mut s = TcpStream::connect(d.addr).await.unwrap();
    s.write_all(&request(7, 99)).await.unwrap();
    let (id, body) = decode(read_response(&mut s).await.unwrap(), 0);
    assert_eq!((id, body.error_code), (7, 35));
    assert!(
        body.api_keys
            .iter()
            .any(|k| k.api_key == ApiKey::ApiVersions as i16 && k.max_version == 4)
    );
    // The connection stays open for the retry.
    s.write_all(&request(8, 4)).await.unwrap();
    let (id, body) = decode(read_response(&mut s).await.unwrap(), 4);
    assert_eq!((id, body.error_code), (8, 0));
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let d = door(Options::default()).await;
    let mut s = TcpStream::connect(d.addr).await.unwrap();
    let mut all = BytesMut::new();
    for id in 1..=20 {
        all.put_slice(&request(id, (id % 5) as i16));
    }
    s.write_all(&all).await.unwrap();
    for id in 1..=20 {
        let (got, _) = decode(read_response(&mut s).await.unwrap(), (id % 5) as i16);
        assert_eq!(got, id);
    }
}

#[tokio::test]
async fn hostile_frames_close_their_connection_only() {
    let d = door(Options {
        max_request_bytes: 1 << 20,
        ..Options::default()
    })
    .await;
    let hostile: Vec<(&str, Vec<u8>)> = vec![
        // 2 GiB announced: closed before anything is read or allocated.
        ("huge size", i32::MAX.to_be_bytes().to_vec()),
        (
            "just over the limit",
            ((1 << 20) + 1i32).to_be_bytes().to_vec(),
        ),
        ("negative size", (-5i32).to_be_bytes().to_vec()),
        // API key 999, version 0.
        (
            "unknown key",
            [
                &10i32.to_be_bytes()[..],
                &[0x03, 0xe7, 0, 0, 0, 0, 0, 1, 0xff, 0xff],
            ]
            .concat(),
        ),
        // Metadata is not served (yet): a known key outside the table closes too.
        (
            "unserved key",
            [
                &10i32.to_be_bytes()[..],
                &[0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xff],
            ]
            .concat(),
        ),
        (
            "short header",
            [&3i32.to_be_bytes()[..], &[0, 18, 0]].concat(),
        ),
        // A client id length past the frame.
        (
            "broken header",
            [
                &10i32.to_be_bytes()[..],
                &[0, 18, 0, 0, 0, 0, 0, 1, 0x7f, 0xff],
            ]
            .concat(),
        ),
    ];
    for (what, bytes) in hostile {
        let mut s = TcpStream::connect(d.addr).await.unwrap();
        s.write_all(&bytes).await.unwrap();
        assert!(closed(&mut s).await, "{what}: the connection stays open");
        still_serves(d.addr).await;
    }
    // A frame cut short by the peer closing.
    let mut s = TcpStream::connect(d.addr).await.unwrap();
    s.write_all(&100i32.to_be_bytes()).await.unwrap();
    s.write_all(&[0, 18, 0, 3]).await.unwrap();
    drop(s);
    still_serves(d.addr).await;
}

#[tokio::test]
async fn connections_past_the_limit_are_closed() {
    let d = door(Options {
        max_connections: 1,
        ..Options::default()
    })
    .await;
    let mut first = TcpStream::connect(d.addr).await.unwrap();
    first.write_all(&request(1, 3)).await.unwrap();
    read_response(&mut first).await.unwrap();
    let mut second = TcpStream::connect(d.addr).await.unwrap();
    assert!(closed(&mut second).await);
    // The first is still served; once it closes, a new one is.
    first.write_all(&request(2, 3)).await.unwrap();
    read_response(&mut first).await.unwrap();
    drop(first);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut s = TcpStream::connect(d.addr).await.unwrap();
        s.write_all(&request(3, 3)).await.unwrap();
        if read_response(&mut s).await.is_some() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot was never freed"
        );
        tokio::task::yield_now().await;
    }
}
