//! What the API reports through the `metrics` facade: a request count and a latency
//! histogram per RPC and status code (a tower layer around every service), and records and
//! bytes in and out per volume and stream (called by the produce and fetch handlers).
//!
//! Labels are bounded: an RPC is a method the server implements (anything else is
//! `unknown`), and data is aggregated per stream, never per topic or partition, so a
//! million topics cost nothing here. Without an installed recorder every call is a no-op.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use http_body::{Body as HttpBody, Frame, SizeHint};
use tonic::Code;
use tonic::body::Body;
use tributary_proto::wire;

pub const RPC_REQUESTS: &str = "tributary_rpc_requests_total";
pub const RPC_DURATION: &str = "tributary_rpc_duration_seconds";
pub const RECORDS_IN: &str = "tributary_records_in_total";
pub const BYTES_IN: &str = "tributary_bytes_in_total";
pub const RECORDS_OUT: &str = "tributary_records_out_total";
pub const BYTES_OUT: &str = "tributary_bytes_out_total";
/// Calls refused, and subscription pushes delayed, by a rate quota, per quota (the Kafka
/// door counts its throttled responses in the same counter).
pub const QUOTA_THROTTLED: &str = tributary_core::quota::THROTTLED_METRIC;

/// `(volume, stream)` of a topic path: `/acme/iot/s:t` gives `("/acme", "/acme/iot/s")`.
fn stream_labels(topic: &str) -> [(&'static str, String); 2] {
    let stream = topic.split_once(':').map_or(topic, |(s, _)| s);
    let volume_end = stream
        .get(1..)
        .and_then(|rest| rest.find('/'))
        .map_or(stream.len(), |i| i + 1);
    [
        ("volume", stream[..volume_end].to_owned()),
        ("stream", stream.to_owned()),
    ]
}

/// Counts a call refused, or a subscription push delayed, by a rate quota.
pub(crate) fn throttled(kind: crate::QuotaKind) {
    metrics::counter!(QUOTA_THROTTLED, "quota" => kind.label()).increment(1);
}

/// Counts a successful produce to `topic` (a path the namespace accepted).
pub(crate) fn produced(topic: &str, records: u64, bytes: u64) {
    let labels = stream_labels(topic);
    metrics::counter!(RECORDS_IN, &labels).increment(records);
    metrics::counter!(BYTES_IN, &labels).increment(bytes);
}

/// Counts a successful fetch from `topic`: the stored batches it returned. Returns their
/// bytes.
pub(crate) fn fetched(topic: &str, batches: &[bytes::Bytes]) -> u64 {
    if batches.is_empty() {
        return 0;
    }
    let labels = stream_labels(topic);
    let records: u64 = batches.iter().map(|b| wire::record_count(b)).sum();
    let bytes: u64 = batches.iter().map(|b| b.len() as u64).sum();
    metrics::counter!(RECORDS_OUT, &labels).increment(records);
    metrics::counter!(BYTES_OUT, &labels).increment(bytes);
    bytes
}

/// The Prometheus-conventional name of a gRPC status code (as Go's `codes.Code` prints).
fn code_label(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

fn grpc_status(headers: &http::HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .map(|v| Code::from_bytes(v.as_bytes()))
}

/// One RPC in flight: reported once, when its status is known (a trailers-only response,
/// the trailers at the end of the body, or the body dropped before them).
struct Call {
    rpc: String,
    start: Instant,
    span: tracing::Span,
}

impl Call {
    fn finish(self, code: Code) {
        // A method we do not serve is one series, whatever path the client made up.
        let rpc = if code == Code::Unimplemented {
            "unknown".to_owned()
        } else {
            self.rpc
        };
        let elapsed = self.start.elapsed();
        let code = code_label(code);
        self.span
            .in_scope(|| tracing::debug!(code, elapsed_us = elapsed.as_micros() as u64, "rpc"));
        metrics::counter!(RPC_REQUESTS, "rpc" => rpc.clone(), "code" => code).increment(1);
        metrics::histogram!(RPC_DURATION, "rpc" => rpc).record(elapsed.as_secs_f64());
    }
}

/// The tower layer that meters every RPC.
#[derive(Debug, Clone, Copy, Default)]
pub struct RpcMetricsLayer;

impl<S> tower_layer::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;
    fn layer(&self, inner: S) -> RpcMetrics<S> {
        RpcMetrics { inner }
    }
}

#[derive(Debug, Clone)]
pub struct RpcMetrics<S> {
    inner: S,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B> tower_service::Service<http::Request<B>> for RpcMetrics<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
    S::Error: 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let rpc = req.uri().path().trim_start_matches('/').to_owned();
        let start = Instant::now();
        let fut = self.inner.call(req);
        Box::pin(async move {
            // Polled inside the server's per-RPC span.
            let call = Call {
                rpc,
                start,
                span: tracing::Span::current(),
            };
            let res = fut.await;
            let Ok(res) = res else {
                call.finish(Code::Internal);
                return res;
            };
            Ok(match grpc_status(res.headers()) {
                Some(code) => {
                    call.finish(code);
                    res
                }
                None => res.map(|body| {
                    Body::new(MeteredBody {
                        inner: body,
                        call: Some(call),
                    })
                }),
            })
        })
    }
}

/// A response body that reports its RPC when the trailers carry the status.
struct MeteredBody {
    inner: Body,
    call: Option<Call>,
}

impl MeteredBody {
    fn finish(&mut self, code: Code) {
        if let Some(call) = self.call.take() {
            call.finish(code);
        }
    }
}

impl HttpBody for MeteredBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(grpc_status) {
                    self.finish(code);
                }
            }
            Poll::Ready(Some(Err(_))) => self.finish(Code::Internal),
            // A body that ends without trailers is not a complete gRPC response.
            Poll::Ready(None) => self.finish(Code::Unknown),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for MeteredBody {
    /// The client went away (or the connection broke) before the status was sent.
    fn drop(&mut self) {
        self.finish(Code::Cancelled);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_the_volume_and_the_stream() {
        let [(_, v), (_, s)] = stream_labels("/acme/iot/sensors:temperature");
        assert_eq!((v.as_str(), s.as_str()), ("/acme", "/acme/iot/sensors"));
        let [(_, v), (_, s)] = stream_labels("/acme/s:t");
        assert_eq!((v.as_str(), s.as_str()), ("/acme", "/acme/s"));
    }
}
