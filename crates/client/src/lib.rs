//! The Rust client for Tributary's gRPC API: a connection with the transport tuned for
//! bulk records, typed produce/fetch helpers, and the raw generated clients for the rest.

use std::time::Duration;

use bytes::Bytes;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tower::util::MapRequest;
use tributary_proto::v1::{
    self, admin_client::AdminClient, consumer_client::ConsumerClient,
    producer_client::ProducerClient, replication_client::ReplicationClient,
};
use tributary_proto::wire;

pub use tributary_proto::v1::{Header, Record, RecordBatch};

mod eager;
mod group;
mod producer;

pub use group::{GroupConfig, GroupConsumer, GroupRecord, Start};
pub use producer::{Delivery, Producer, ProducerConfig};

/// Largest message the client sends or accepts.
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid server URL `{url}`: {reason}")]
    InvalidUrl { url: String, reason: String },

    #[error("cannot connect to {url}")]
    Connect {
        url: String,
        #[source]
        source: tonic::transport::Error,
    },

    #[error("token is not a valid header value")]
    InvalidToken,

    /// A fetched batch the server sent is not a `RecordBatch`.
    #[error("a fetched record batch does not decode: {0}")]
    Decode(#[from] prost::DecodeError),

    /// The server's refusal, shown as `CODE: message`.
    #[error("{}: {}", code_name(.0.code()), .0.message())]
    Status(tonic::Status),
}

impl From<tonic::Status> for Error {
    fn from(s: tonic::Status) -> Self {
        Error::Status(s)
    }
}

impl Error {
    /// The gRPC code, when the server answered.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            Error::Status(s) => Some(s.code()),
            _ => None,
        }
    }
}

fn code_name(c: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match c {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The metadata key of a throttled call's retry hint, in milliseconds.
pub const RETRY_AFTER_MS: &str = "retry-after-ms";

/// How long to wait before retrying a call the server refused for a rate quota
/// (`RESOURCE_EXHAUSTED` with a `retry-after-ms` hint); `None` for any other status.
pub fn retry_after(s: &tonic::Status) -> Option<Duration> {
    if s.code() != tonic::Code::ResourceExhausted {
        return None;
    }
    let ms = s
        .metadata()
        .get(RETRY_AFTER_MS)?
        .to_str()
        .ok()?
        .parse()
        .ok()?;
    Some(Duration::from_millis(ms))
}

/// Adds `authorization: Bearer TOKEN` to every call when a token is set.
#[derive(Debug, Clone)]
pub struct Auth(Option<MetadataValue<Ascii>>);

impl Interceptor for Auth {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

/// Each call's request body wrapped by [`eager::eager_end`], the token added by [`Auth`].
type Svc = InterceptedService<MapRequest<Channel, BodyMap>, Auth>;
type BodyMap = fn(http::Request<tonic::body::Body>) -> http::Request<tonic::body::Body>;

/// A connection to one Tributary server. Cheap to clone; clones share the connection.
#[derive(Debug, Clone)]
pub struct Client {
    /// The authenticated channel, for services beyond Tributary's own (e.g. health).
    service: Svc,
    admin: AdminClient<Svc>,
    producer: ProducerClient<Svc>,
    consumer: ConsumerClient<Svc>,
    /// The Consumer service over the wire types, for fetches decoded batch by batch.
    fetcher: wire::consumer_client::ConsumerClient<Svc>,
    replication: ReplicationClient<Svc>,
}

/// How to reach and authenticate to a server.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// Bearer token sent with every call.
    pub token: Option<String>,
    /// PEM CA certificate(s) to verify the server with, besides the system's roots.
    pub ca_cert: Option<Vec<u8>>,
    /// PEM client certificate and key for mutual TLS.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

/// One record read back, with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumedRecord {
    pub partition: u32,
    pub offset: u64,
    /// The record's own timestamp, or its batch's append time.
    pub timestamp_ms: i64,
    pub record: Record,
}

/// The records of one fetch, already trimmed to those at or after the asked offset.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    pub records: Vec<ConsumedRecord>,
    /// Where the next fetch should start.
    pub next_offset: u64,
    pub high_watermark: u64,
    pub log_start_offset: u64,
}

impl Client {
    /// Connects to `url` (`http://host:port`), sending `token` with every call if given.
    pub async fn connect(url: &str, token: Option<&str>) -> Result<Client> {
        Self::connect_with(
            url,
            &ConnectOptions {
                token: token.map(str::to_owned),
                ..Default::default()
            },
        )
        .await
    }

    /// Connects with TLS settings: an `https://` URL is verified against `ca_cert` (or the
    /// system's roots), and `identity` presents a client certificate for mutual TLS.
    pub async fn connect_with(url: &str, options: &ConnectOptions) -> Result<Client> {
        let mut endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|e| Error::InvalidUrl {
                url: url.into(),
                reason: e.to_string(),
            })?
            .tcp_nodelay(true)
            .initial_stream_window_size(8 << 20)
            .initial_connection_window_size(32 << 20)
            .max_frame_size(HTTP2_MAX_FRAME_BYTES)
            .connect_timeout(Duration::from_secs(10))
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true);
        let tls_asked = options.ca_cert.is_some() || options.identity.is_some();
        if url.starts_with("https://") || tls_asked {
            if !url.starts_with("https://") {
                return Err(Error::InvalidUrl {
                    url: url.into(),
                    reason: "TLS settings need an https:// URL".into(),
                });
            }
            let mut tls = ClientTlsConfig::new().with_native_roots();
            if let Some(ca) = &options.ca_cert {
                tls = tls.ca_certificate(Certificate::from_pem(ca));
            }
            if let Some((cert, key)) = &options.identity {
                tls = tls.identity(Identity::from_pem(cert, key));
            }
            endpoint = endpoint.tls_config(tls).map_err(|e| Error::InvalidUrl {
                url: url.into(),
                reason: format!("TLS settings: {e}"),
            })?;
        }
        let channel = endpoint.connect().await.map_err(|source| Error::Connect {
            url: url.into(),
            source,
        })?;
        let auth = Auth(match &options.token {
            Some(t) => Some(
                format!("Bearer {t}")
                    .parse()
                    .map_err(|_| Error::InvalidToken)?,
            ),
            None => None,
        });
        let svc =
            InterceptedService::new(MapRequest::new(channel, eager::eager_end as BodyMap), auth);
        Ok(Client {
            service: svc.clone(),
            admin: AdminClient::new(svc.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            producer: ProducerClient::new(svc.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            consumer: ConsumerClient::new(svc.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            fetcher: wire::consumer_client::ConsumerClient::new(svc.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            // Uncompressed, like fetches: payloads are often compressed by their producers,
            // and gzip would cost more CPU than a datacenter link saves.
            replication: ReplicationClient::new(svc)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        })
    }

    /// The connection, for clients of other gRPC services on the same server (e.g. the
    /// standard `grpc.health.v1.Health`).
    pub fn service(&self) -> Svc {
        self.service.clone()
    }

    /// The generated Admin client, for namespace calls.
    pub fn admin(&self) -> AdminClient<Svc> {
        self.admin.clone()
    }

    /// The generated Replication client: links and the pull between clusters.
    pub fn replication(&self) -> ReplicationClient<Svc> {
        self.replication.clone()
    }

    pub fn producer(&self) -> ProducerClient<Svc> {
        self.producer.clone()
    }

    pub fn consumer(&self) -> ConsumerClient<Svc> {
        self.consumer.clone()
    }

    /// Produces `records` to `topic` in one request.
    pub async fn produce(
        &self,
        topic: &str,
        partition: Option<u32>,
        records: Vec<Record>,
    ) -> Result<v1::ProduceResponse> {
        let req = v1::ProduceRequest {
            topic: topic.to_owned(),
            partition,
            batch: Some(RecordBatch {
                records,
                ..Default::default()
            }),
            ..Default::default()
        };
        Ok(self.producer.clone().produce(req).await?.into_inner())
    }

    /// Fetches from `offset` and unpacks the records at or after it.
    pub async fn fetch(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        max_bytes: u32,
        max_wait: Duration,
    ) -> Result<Fetched> {
        let req = fetch_request(topic, partition, offset, max_bytes, max_wait);
        let raw = self.fetch_raw(req).await?;
        unpack_fetch(partition, offset, raw)
    }

    /// Reads `partition` from `offset` onwards, one fetch ahead (see [`PartitionReader`]).
    pub fn reader(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        max_bytes: u32,
        max_wait: Duration,
    ) -> PartitionReader {
        PartitionReader {
            client: self.clone(),
            req: fetch_request(topic, partition, offset, max_bytes, max_wait),
            ahead: None,
        }
    }

    /// One `Fetch` call, its batches left encoded (slices of the response buffer).
    async fn fetch_raw(&self, req: v1::FetchRequest) -> Result<wire::FetchResponse> {
        Ok(self.fetcher.clone().fetch(req).await?.into_inner())
    }

    /// Earliest or latest offset of each partition (all when `partitions` is empty).
    pub async fn list_offsets(
        &self,
        topic: &str,
        partitions: &[u32],
        latest: bool,
    ) -> Result<Vec<(u32, u64)>> {
        let spec = if latest {
            v1::OffsetSpec::Latest
        } else {
            v1::OffsetSpec::Earliest
        };
        self.offsets(topic, partitions, spec, 0).await
    }

    /// The earliest offset of each partition whose record timestamp is at or after
    /// `timestamp_ms` (the high-water mark where every record is older).
    pub async fn offsets_for_time(
        &self,
        topic: &str,
        partitions: &[u32],
        timestamp_ms: i64,
    ) -> Result<Vec<(u32, u64)>> {
        self.offsets(topic, partitions, v1::OffsetSpec::Timestamp, timestamp_ms)
            .await
    }

    async fn offsets(
        &self,
        topic: &str,
        partitions: &[u32],
        spec: v1::OffsetSpec,
        timestamp_ms: i64,
    ) -> Result<Vec<(u32, u64)>> {
        let req = v1::ListOffsetsRequest {
            topic: topic.to_owned(),
            partitions: partitions.to_vec(),
            spec: spec as i32,
            timestamp_ms,
        };
        let r = self.consumer.clone().list_offsets(req).await?.into_inner();
        Ok(r.offsets
            .into_iter()
            .map(|o| (o.partition, o.offset))
            .collect())
    }
}

/// Largest HTTP/2 frame the server may send this client (the default is 16 KiB): a 4 MiB
/// fetch response arrives in 16 frames, not 256, and each frame costs both sides a parse
/// and a wakeup. Kept well below a fetch so that one response does not hold up the other
/// calls on the connection for long (256 KiB is 2 ms at 1 Gbit/s).
const HTTP2_MAX_FRAME_BYTES: u32 = 256 << 10;

fn fetch_request(
    topic: &str,
    partition: u32,
    offset: u64,
    max_bytes: u32,
    max_wait: Duration,
) -> v1::FetchRequest {
    v1::FetchRequest {
        topic: topic.to_owned(),
        partition,
        offset,
        max_bytes,
        max_wait_ms: max_wait.as_millis().min(u32::MAX as u128) as u32,
    }
}

/// Where the fetch after `raw` starts, when the server said (it does from the version that
/// added `next_offset`; an older one leaves it 0).
fn said_next(offset: u64, raw: &wire::FetchResponse) -> Option<u64> {
    match raw.batches.is_empty() {
        true => Some(offset.max(raw.next_offset)),
        false => (raw.next_offset > offset).then_some(raw.next_offset),
    }
}

/// Decodes a fetch's batches and keeps the records at or after `offset`. Each batch is
/// moved out while its records are still in the CPU's cache, into a vector sized from
/// the batches' record counts.
fn unpack_fetch(partition: u32, offset: u64, raw: wire::FetchResponse) -> Result<Fetched> {
    let records = raw
        .batches
        .iter()
        .map(|b| wire::record_count(b))
        .sum::<u64>();
    let mut fetched = Fetched {
        records: Vec::with_capacity(records as usize),
        next_offset: offset.max(raw.next_offset),
        high_watermark: raw.high_watermark,
        log_start_offset: raw.log_start_offset,
    };
    for b in raw.batches {
        for c in unpack(partition, wire::decode_batch(b)?) {
            if c.offset >= offset {
                fetched.next_offset = fetched.next_offset.max(c.offset + 1);
                fetched.records.push(c);
            }
        }
    }
    Ok(fetched)
}

/// One partition read in order from an offset, one fetch ahead of its caller.
///
/// Each response says where the next fetch starts, so [`next`](Self::next) sends that fetch
/// before it decodes the batches it returns: the server reads the next batches while this
/// side decodes and the caller works on the records (a Kafka consumer prefetches the same
/// way). An error of the fetch ahead is returned by the `next` call that would have
/// returned its records; a response whose batches do not decode leaves the reader where it
/// was. Dropping the reader cancels the fetch ahead.
#[derive(Debug)]
pub struct PartitionReader {
    client: Client,
    /// The fetch ahead's request, or the next one to send.
    req: v1::FetchRequest,
    ahead: Option<tokio::task::JoinHandle<Result<wire::FetchResponse>>>,
}

impl PartitionReader {
    /// The records from the reader's offset on (none when a long-poll ran out), and the
    /// offset it continues from.
    pub async fn next(&mut self) -> Result<Fetched> {
        let offset = self.req.offset;
        let raw = match self.ahead.take() {
            Some(ahead) => match ahead.await {
                Ok(r) => r?,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => {
                    return Err(Error::Status(tonic::Status::cancelled(
                        "the runtime shut down during a fetch",
                    )));
                }
            },
            None => self.client.fetch_raw(self.req.clone()).await?,
        };
        let said = said_next(offset, &raw);
        if let Some(next) = said {
            self.send_ahead(next);
        }
        let fetched = match unpack_fetch(self.req.partition, offset, raw) {
            Ok(f) => f,
            Err(e) => {
                // Not past records the caller never got: the next call fetches them again.
                self.cancel_ahead();
                self.req.offset = offset;
                return Err(e);
            }
        };
        if said.is_none() {
            self.send_ahead(fetched.next_offset);
        }
        Ok(fetched)
    }

    fn cancel_ahead(&mut self) {
        if let Some(ahead) = self.ahead.take() {
            ahead.abort();
        }
    }

    fn send_ahead(&mut self, offset: u64) {
        self.req.offset = offset;
        let client = self.client.clone();
        let req = self.req.clone();
        self.ahead = Some(tokio::spawn(async move { client.fetch_raw(req).await }));
    }
}

impl Drop for PartitionReader {
    fn drop(&mut self) {
        self.cancel_ahead();
    }
}

/// The records of a fetched batch with their offsets and effective timestamps (the
/// append time on log-append-time streams and for records without their own).
pub fn unpack(partition: u32, b: RecordBatch) -> impl Iterator<Item = ConsumedRecord> {
    let append_time = b.timestamp_type == v1::TimestampType::LogAppendTime as i32;
    b.records
        .into_iter()
        .enumerate()
        .map(move |(i, record)| ConsumedRecord {
            partition,
            offset: b.base_offset + i as u64,
            timestamp_ms: match record.timestamp_ms {
                Some(t) if !append_time => t,
                _ => b.append_time_ms,
            },
            record,
        })
}

/// A record with just a key and a value. Either may be empty, which is not null: an empty
/// key is hashed to its partition like any other, as in Kafka.
pub fn record(key: impl Into<Bytes>, value: impl Into<Bytes>) -> Record {
    Record {
        key: Some(key.into()),
        value: Some(value.into()),
        headers: Vec::new(),
        timestamp_ms: None,
    }
}

/// A record with a value and no key (null): spread over the partitions, and refused by a
/// compacted stream.
pub fn unkeyed(value: impl Into<Bytes>) -> Record {
    Record {
        key: None,
        ..record(Bytes::new(), value)
    }
}

/// A tombstone: `key` with no value (null), which deletes the key on a compacted stream.
pub fn tombstone(key: impl Into<Bytes>) -> Record {
    Record {
        value: None,
        ..record(key, Bytes::new())
    }
}
