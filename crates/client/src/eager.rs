//! Request bodies that say they have ended as soon as they have.
//!
//! tonic's request body learns it is over only when polled once more after its message,
//! so hyper sends a unary call as HEADERS, DATA, and then an empty DATA frame carrying
//! END_STREAM, often in writes of their own. [`eager_end`] wraps each request body so
//! that it looks one frame ahead: the last DATA frame carries END_STREAM itself, one frame
//! (and usually one `writev`) less per call.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tonic::Status;

type Polled = Result<Frame<Bytes>, Status>;

/// A body that polls its inner body one frame ahead, to know when it is over.
struct EagerEnd {
    inner: tonic::body::Body,
    peeked: Option<Polled>,
    done: bool,
}

impl Body for EagerEnd {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Polled>> {
        let this = &mut *self;
        let frame = match this.peeked.take() {
            Some(frame) => frame,
            None if this.done => return Poll::Ready(None),
            None => match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(frame) => frame,
                None => {
                    this.done = true;
                    return Poll::Ready(None);
                }
            },
        };
        if frame.is_ok() {
            // Pending registers the waker, and the next poll asks again.
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(None) => this.done = true,
                Poll::Ready(Some(next)) => this.peeked = Some(next),
                Poll::Pending => {}
            }
        }
        Poll::Ready(Some(frame))
    }

    fn is_end_stream(&self) -> bool {
        self.peeked.is_none() && (self.done || self.inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// Wraps a request's body so that its last frame ends the stream (see the module docs).
pub(crate) fn eager_end(req: http::Request<tonic::body::Body>) -> http::Request<tonic::body::Body> {
    req.map(|inner| {
        tonic::body::Body::new(EagerEnd {
            inner,
            peeked: None,
            done: false,
        })
    })
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    /// A one-message body, as tonic makes for a unary call: the wrapper reports the end
    /// right after the message, where the inner body cannot yet.
    #[tokio::test]
    async fn the_last_frame_ends_the_stream() {
        let message = Bytes::from_static(b"one message");
        let stream = tokio_stream::once(Ok::<_, Status>(Frame::data(message.clone())));
        let inner = tonic::body::Body::new(http_body_util::StreamBody::new(stream));
        assert!(!inner.is_end_stream());
        let mut body = eager_end(http::Request::new(inner)).into_body();
        assert!(!body.is_end_stream(), "the message is still to come");
        let frame = body.frame().await.expect("a frame").expect("no error");
        assert_eq!(frame.into_data().expect("data"), message);
        assert!(body.is_end_stream(), "known to be over with its last frame");
        assert!(body.frame().await.is_none());
    }

    /// Errors and later frames pass through in order.
    #[tokio::test]
    async fn frames_and_errors_keep_their_order() {
        let frames = vec![
            Ok(Frame::data(Bytes::from_static(b"a"))),
            Ok(Frame::data(Bytes::from_static(b"b"))),
            Err(Status::internal("broken")),
        ];
        let inner =
            tonic::body::Body::new(http_body_util::StreamBody::new(tokio_stream::iter(frames)));
        let mut body = eager_end(http::Request::new(inner)).into_body();
        for want in [b"a", b"b"] {
            let frame = body.frame().await.expect("a frame").expect("no error");
            assert_eq!(frame.into_data().expect("data"), &want[..]);
            assert!(!body.is_end_stream());
        }
        let err = body
            .frame()
            .await
            .expect("the error")
            .expect_err("an error");
        assert_eq!(err.message(), "broken");
    }
}
