//! Hostile input over gRPC: malformed and oversized messages, giant and numerous headers,
//! compression bombs, invalid UTF-8, out-of-range numbers and bad names, sent raw over
//! HTTP/2 where our own client would refuse to send them. Each must get the status that
//! design §7 gives it, the store must be exactly as before (a snapshot of everything, read
//! through the API), and the server must go on serving.

use std::io::Write;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::net::TcpStream;
use tonic::{Code, Status};
use tributary_e2e::{Client, Server, create_stream, snapshot};
use tributary_proto::v1;

/// The server's request limit in these tests (its `max_message_bytes`).
const MAX_MESSAGE: usize = 4 << 20;

/// What the server answered to one raw call.
#[derive(Debug)]
enum Answer {
    /// A gRPC status (from the headers of a trailers-only answer, or the trailers).
    Grpc(Status),
    /// An HTTP answer without a gRPC status.
    Http(u16),
    /// The stream or the connection was reset.
    Reset(String),
}

/// One raw gRPC call on its own HTTP/2 connection: `headers` as given, `body` as the
/// request's whole DATA.
async fn raw(server: &Server, path: &str, headers: &[(&str, String)], body: Bytes) -> Answer {
    let addr = server.url.trim_start_matches("http://").to_owned();
    let tcp = TcpStream::connect(&addr).await.expect("connect");
    let (client, conn) = h2::client::handshake(tcp).await.expect("HTTP/2 handshake");
    let conn = tokio::spawn(conn);
    let answer = async {
        let mut client = client.ready().await.map_err(|e| e.to_string())?;
        let mut req = http::Request::post(format!("http://{addr}{path}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers");
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let (response, mut send) = client
            .send_request(req.body(()).unwrap(), false)
            .map_err(|e| e.to_string())?;
        send.send_data(body, true).map_err(|e| e.to_string())?;
        let response = response.await.map_err(|e| e.to_string())?;
        let (parts, mut body) = response.into_parts();
        if let Some(s) = Status::from_header_map(&parts.headers) {
            return Ok(Answer::Grpc(s));
        }
        if parts.status != http::StatusCode::OK {
            return Ok(Answer::Http(parts.status.as_u16()));
        }
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(|e| e.to_string())?;
            let _ = body.flow_control().release_capacity(chunk.len());
        }
        let trailers = body.trailers().await.map_err(|e| e.to_string())?;
        Ok(trailers
            .as_ref()
            .and_then(Status::from_header_map)
            .map_or(Answer::Http(200), Answer::Grpc))
    }
    .await
    .unwrap_or_else(Answer::Reset);
    conn.abort();
    answer
}

/// A gRPC message frame: uncompressed, with its true length.
fn frame(message: &[u8]) -> Bytes {
    frame_as(0, message.len() as u32, message)
}

fn frame_as(flag: u8, len: u32, message: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(5 + message.len());
    b.put_u8(flag);
    b.put_u32(len);
    b.put_slice(message);
    b.freeze()
}

// Hand-made protobuf, for what prost would not encode.
fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn bytes_field(field: u64, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    varint(field << 3 | 2, &mut out);
    varint(value.len() as u64, &mut out);
    out.extend_from_slice(value);
    out
}

fn varint_field(field: u64, value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    varint(field << 3, &mut out);
    varint(value, &mut out);
    out
}

fn expect(answer: Answer, code: Code, fragment: &str, case: &str) {
    match answer {
        Answer::Grpc(s) => {
            assert_eq!(s.code(), code, "{case}: {s:?}");
            assert!(
                s.message().contains(fragment),
                "{case}: `{}` should contain `{fragment}`",
                s.message()
            );
        }
        other => panic!("{case}: expected {code:?}, got {other:?}"),
    }
}

fn expect_status<T: std::fmt::Debug>(
    r: Result<tonic::Response<T>, Status>,
    code: Code,
    fragment: &str,
    case: &str,
) {
    match r {
        Ok(r) => panic!("{case}: expected {code:?}, got {r:?}"),
        Err(s) => expect(Answer::Grpc(s), code, fragment, case),
    }
}

const PRODUCE: &str = "/tributary.v1.Producer/Produce";
const FETCH: &str = "/tributary.v1.Consumer/Fetch";
const CREATE_VOLUME: &str = "/tributary.v1.Admin/CreateVolume";
const TOPIC: &str = "/v/s:t";

/// A server with a little of everything stored: a user, a volume, a stream, a topic of two
/// partitions with records in both.
async fn populated() -> (Server, Client) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tributary.toml");
    std::fs::write(&config, format!("max_message_bytes = {MAX_MESSAGE}\n")).unwrap();
    let server = Server::builder()
        .args(&["--config", config.to_str().unwrap()])
        .start();
    let admin = server.client().await;
    create_stream(&admin, "/v/s", v1::StreamAttributes::default()).await;
    admin
        .admin()
        .create_topic(v1::CreateTopicRequest {
            path: TOPIC.into(),
            partitions: Some(2),
        })
        .await
        .unwrap();
    admin
        .admin()
        .create_user(v1::CreateUserRequest {
            name: "bob".into(),
            groups: vec!["dev".into()],
            cluster_admin: false,
        })
        .await
        .unwrap();
    for p in 0..2 {
        let records = (0..3)
            .map(|i| tributary_client::record(format!("k{i}"), format!("p{p} v{i}")))
            .collect();
        admin.produce(TOPIC, Some(p), records).await.unwrap();
    }
    (server, admin)
}

#[tokio::test]
async fn malformed_oversized_and_out_of_range_requests_get_their_status_and_change_nothing() {
    let (server, admin) = populated().await;
    let before = snapshot(&admin).await.unwrap();
    assert_eq!(before.batches(), 2);
    let auth = [("authorization", format!("Bearer {}", server.admin_token()))];

    // ---- bodies that are not the message they claim to be ----
    expect(
        raw(&server, PRODUCE, &auth, frame(&[0xff, 0xff, 0xff])).await,
        Code::InvalidArgument,
        "request: failed to decode Protobuf message",
        "garbage body",
    );
    expect(
        raw(&server, CREATE_VOLUME, &auth, frame(&[0x0a, 0x10, b'/'])).await,
        Code::InvalidArgument,
        "failed to decode Protobuf message",
        "a length past the end",
    );
    let garbage_batch = [
        bytes_field(1, TOPIC.as_bytes()),
        bytes_field(3, &[0x0a, 0x7f]),
    ]
    .concat();
    expect(
        raw(&server, PRODUCE, &auth, frame(&garbage_batch)).await,
        Code::InvalidArgument,
        "batch: not a valid RecordBatch",
        "a valid request around a broken batch",
    );
    expect(
        raw(&server, PRODUCE, &auth, frame_as(0, 100, b"short")).await,
        Code::InvalidArgument,
        "Unexpected EOF",
        "a body ending inside its message",
    );
    expect(
        raw(&server, PRODUCE, &auth, Bytes::new()).await,
        Code::InvalidArgument,
        "Missing request message",
        "no message at all",
    );
    expect(
        raw(&server, PRODUCE, &auth, frame_as(7, 5, b"hello")).await,
        Code::InvalidArgument,
        "invalid compression flag",
        "an unknown compression flag",
    );
    expect(
        raw(&server, "/tributary.v1.Admin/NoSuchCall", &auth, frame(&[])).await,
        Code::Unimplemented,
        "",
        "an unknown method",
    );

    // ---- invalid UTF-8 in names: prost refuses the string ----
    let bad_topic = [bytes_field(1, b"/v/s:\xff\xfe"), varint_field(3, 0)].concat();
    expect(
        raw(&server, FETCH, &auth, frame(&bad_topic)).await,
        Code::InvalidArgument,
        "FetchRequest.topic: invalid string value: data is not UTF-8 encoded",
        "invalid UTF-8 in a topic",
    );
    expect(
        raw(
            &server,
            CREATE_VOLUME,
            &auth,
            frame(&bytes_field(1, b"/w\xc3")),
        )
        .await,
        Code::InvalidArgument,
        "CreateVolumeRequest.path: invalid string value",
        "invalid UTF-8 in a volume path",
    );
    let header = [bytes_field(1, b"\xed\xa0\x80"), bytes_field(2, b"v")].concat();
    let record = [bytes_field(2, b"value"), bytes_field(3, &header)].concat();
    let batch = bytes_field(1, &record);
    let produce = [bytes_field(1, TOPIC.as_bytes()), bytes_field(3, &batch)].concat();
    expect(
        raw(&server, PRODUCE, &auth, frame(&produce)).await,
        Code::InvalidArgument,
        "batch: not a valid RecordBatch",
        "invalid UTF-8 in a record header's key",
    );

    // ---- too large ----
    let huge = [
        bytes_field(1, TOPIC.as_bytes()),
        bytes_field(3, &vec![0; MAX_MESSAGE]),
    ]
    .concat();
    expect(
        raw(&server, PRODUCE, &auth, frame(&huge)).await,
        Code::ResourceExhausted,
        &format!("the limit is: {MAX_MESSAGE} bytes"),
        "a message over max_message_bytes",
    );
    expect(
        raw(&server, PRODUCE, &auth, frame_as(0, u32::MAX, b"")).await,
        Code::ResourceExhausted,
        "request message too large (decoded message length too large: found 4294967295 bytes",
        "a frame claiming 4 GiB",
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![0; MAX_MESSAGE + 1]).unwrap();
    let bomb = gz.finish().unwrap();
    assert!(
        bomb.len() < 64 << 10,
        "a small body that inflates past the limit"
    );
    let gzip = [auth[0].clone(), ("grpc-encoding", "gzip".into())];
    expect(
        raw(
            &server,
            PRODUCE,
            &gzip,
            frame_as(1, bomb.len() as u32, &bomb),
        )
        .await,
        Code::ResourceExhausted,
        "exceeded while decompressing",
        "a gzip bomb",
    );
    expect(
        raw(&server, PRODUCE, &gzip, frame_as(1, 6, b"notgz!")).await,
        Code::InvalidArgument,
        "Error decompressing",
        "a broken gzip body",
    );

    // ---- headers ----
    let big_value = "x".repeat(20 << 10);
    for (case, auth) in [("with a token", Some(&auth[0])), ("without one", None)] {
        let mut headers: Vec<(&str, String)> = auth.into_iter().cloned().collect();
        headers.push(("x-big", big_value.clone()));
        expect(
            raw(&server, FETCH, &headers, frame(&[])).await,
            Code::ResourceExhausted,
            "request headers: 20",
            &format!("a 20 KiB header, {case}"),
        );
    }
    let mut many = auth.to_vec();
    many.extend((0..100).map(|i| ("x-many", i.to_string())));
    expect(
        raw(&server, FETCH, &many, frame(&[])).await,
        Code::ResourceExhausted,
        "entries; the limit is 64",
        "a hundred headers",
    );
    // Past HTTP/2's own limit the transport refuses the stream (431) or the connection.
    for (case, headers) in [
        ("a 200 KiB header", vec![("x-huge", "y".repeat(200 << 10))]),
        (
            "ten thousand headers",
            (0..10_000).map(|i| ("x-n", i.to_string())).collect(),
        ),
    ] {
        match raw(&server, FETCH, &headers, frame(&[])).await {
            Answer::Http(431) => {}
            Answer::Reset(why) => assert!(!why.is_empty()),
            other => panic!("{case}: expected a refused stream, got {other:?}"),
        }
    }
    let garbled_tokens = [
        "Bearer garbage",
        "Basic YWxhZGRpbjpvcGVuc2VzYW1l",
        "Bearer trb_0123456789abcdef.wrong",
    ];
    for t in garbled_tokens {
        expect(
            raw(&server, FETCH, &[("authorization", t.into())], frame(&[])).await,
            Code::Unauthenticated,
            "",
            t,
        );
    }

    // ---- out-of-range numbers, through the typed client ----
    let mut consumer = admin.consumer();
    let fetch = |partition, offset| v1::FetchRequest {
        topic: TOPIC.into(),
        partition,
        offset,
        max_bytes: 0,
        max_wait_ms: 0,
    };
    expect_status(
        consumer.fetch(fetch(0, u64::MAX)).await,
        Code::OutOfRange,
        "valid offsets are 0 to 3",
        "offset -1 (2^64 - 1)",
    );
    expect_status(
        consumer.fetch(fetch(0, 4)).await,
        Code::OutOfRange,
        "offset 4 is out of range for /v/s:t #0",
        "an offset past the end",
    );
    expect_status(
        consumer.fetch(fetch(u32::MAX, 0)).await,
        Code::NotFound,
        "partition /v/s:t #4294967295 (of 2)",
        "partition 2^32 - 1",
    );
    // A negative int64 varint where the field is uint32: read as 2^32 - 1.
    let negative = [bytes_field(1, TOPIC.as_bytes()), varint_field(2, u64::MAX)].concat();
    expect(
        raw(&server, FETCH, &auth, frame(&negative)).await,
        Code::NotFound,
        "#4294967295",
        "partition -1",
    );
    let lo = |partitions: Vec<u32>, spec: v1::OffsetSpec| v1::ListOffsetsRequest {
        topic: TOPIC.into(),
        partitions,
        spec: spec as i32,
        timestamp_ms: 0,
    };
    expect_status(
        consumer
            .list_offsets(lo(vec![0, u32::MAX], v1::OffsetSpec::Latest))
            .await,
        Code::NotFound,
        "#4294967295",
        "ListOffsets of partition 2^32 - 1",
    );
    expect_status(
        consumer
            .list_offsets(lo(vec![0; 10_001], v1::OffsetSpec::Latest))
            .await,
        Code::InvalidArgument,
        "partitions: 10001 partitions in one request; the limit is 10000",
        "ListOffsets of 10001 partitions",
    );
    let mut unknown_spec = lo(vec![], v1::OffsetSpec::Latest);
    unknown_spec.spec = 99;
    expect_status(
        consumer.list_offsets(unknown_spec).await,
        Code::InvalidArgument,
        "spec",
        "an unknown OffsetSpec",
    );
    let mut a = admin.admin();
    expect_status(
        a.edit_topic(v1::EditTopicRequest {
            path: TOPIC.into(),
            partitions: Some(u32::MAX),
        })
        .await,
        Code::InvalidArgument,
        "4294967295 partitions is outside 1 to 10000",
        "growing a topic to 2^32 - 1 partitions",
    );
    expect_status(
        a.create_topic(v1::CreateTopicRequest {
            path: "/v/s:many".into(),
            partitions: Some(10_001),
        })
        .await,
        Code::InvalidArgument,
        "partitions",
        "a topic of 10001 partitions",
    );
    let one = || vec![tributary_client::record("k", "v")];
    expect_status(
        admin
            .producer()
            .produce(v1::ProduceRequest {
                topic: "/v/s:fresh".into(),
                partition: Some(u32::MAX),
                batch: Some(v1::RecordBatch {
                    records: one(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await,
        Code::NotFound,
        "#4294967295",
        "producing to partition 2^32 - 1 of a topic that would be auto-created",
    );
    let empties = vec![v1::Record::default(); 100_001];
    match admin.produce(TOPIC, Some(0), empties).await {
        Err(e) => assert!(
            e.to_string()
                == "INVALID_ARGUMENT: batch.records: 100001 records in one request; the limit is 100000",
            "{e}"
        ),
        Ok(r) => panic!("100001 records were accepted: {r:?}"),
    }
    let mut late = tributary_client::unkeyed("v");
    late.timestamp_ms = Some(i64::MIN);
    match admin.produce(TOPIC, Some(0), vec![late]).await {
        Err(e) => assert_eq!(e.code(), Some(Code::InvalidArgument), "{e}"),
        Ok(r) => panic!("a negative timestamp was accepted: {r:?}"),
    }

    // ---- bad names ----
    let long_path = format!("/v{}", "/ssssssss".repeat(500));
    let long_topic = format!("/v/s:{}", "t".repeat(250));
    for (path, fragment) in [
        (long_path.as_str(), "limit is 4096"),
        ("/v/s p", "contains ' '"),
        ("/v/../s", "`..` is not allowed"),
        ("/v//s", "empty segment"),
        ("v/s", "must start with `/`"),
        ("/v/s\u{0}", "contains '\\0'"),
        ("/v/stréam", "contains 'é'"),
    ] {
        expect_status(
            a.create_stream(v1::CreateStreamRequest {
                path: path.into(),
                attributes: None,
            })
            .await,
            Code::InvalidArgument,
            fragment,
            &format!("stream path {path:.40?}"),
        );
    }
    for topic in [
        long_topic.as_str(),
        "/v/s:t t",
        "/v/s:",
        "/v/s:..",
        "/v/s:a:b/c",
    ] {
        match admin.produce(topic, None, one()).await {
            Err(e) => assert_eq!(e.code(), Some(Code::InvalidArgument), "{topic:.40}: {e}"),
            Ok(r) => panic!("{topic:.40}: accepted: {r:?}"),
        }
    }
    expect_status(
        a.create_user(v1::CreateUserRequest {
            name: "carol".into(),
            groups: (0..257).map(|i| format!("g{i}")).collect(),
            cluster_admin: false,
        })
        .await,
        Code::InvalidArgument,
        "groups: 257 groups in one request; the limit is 256",
        "a user in 257 groups",
    );
    expect_status(
        a.create_stream(v1::CreateStreamRequest {
            path: "/v/s2".into(),
            attributes: Some(v1::StreamAttributes {
                produce_perm: Some(format!("{}u:a", "(".repeat(100))),
                ..Default::default()
            }),
        })
        .await,
        Code::InvalidArgument,
        "attributes.produce_perm: column",
        "an ACL nested 100 deep",
    );

    // Nothing above changed anything.
    let after = snapshot(&admin).await.unwrap();
    assert_eq!(
        after,
        before,
        "checksum {:x} -> {:x}",
        before.checksum(),
        after.checksum()
    );

    // ---- and the server still serves ----
    let r = admin
        .fetch(TOPIC, 1, 0, u32::MAX, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        r.records.len(),
        3,
        "a huge max_bytes is capped, not refused"
    );
    let poll = tokio::spawn({
        let admin = admin.clone();
        async move {
            // u32::MAX milliseconds is 49 days; the server caps it to its MAX_FETCH_WAIT.
            admin
                .consumer()
                .fetch(v1::FetchRequest {
                    topic: TOPIC.into(),
                    partition: 0,
                    offset: 3,
                    max_bytes: 0,
                    max_wait_ms: u32::MAX,
                })
                .await
        }
    });
    let ack = admin.produce(TOPIC, Some(0), one()).await.unwrap();
    assert_eq!(ack.acks[0].base_offset, 3);
    let woken = tokio::time::timeout(Duration::from_secs(30), poll)
        .await
        .expect("the long-poll returns once a record arrives")
        .unwrap()
        .unwrap()
        .into_inner();
    assert_eq!(woken.batches.len(), 1);
    assert_eq!(woken.high_watermark, 4);
}
