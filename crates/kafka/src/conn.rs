//! One Kafka connection. Requests are handled one at a time in the order they arrived, as
//! Kafka brokers do: responses then leave in request order by construction (a long-poll
//! Fetch next to a Metadata included), and an idempotent producer's pipelined batches are
//! appended in the order it sent them. One request is read ahead while another is
//! handled, so a connection holds at most two requests (each within the size limit) and
//! the response being written; a peer that stops reading stalls its own connection only.
//! A throttled response (`throttle`) mutes the connection: no request is handled, and
//! none read beyond the one read ahead, until the throttle time has passed.

use std::net::SocketAddr;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};

use crate::frame::{self, Request};
use crate::session::Session;
use crate::{Door, Error, Result, apis};

/// Serves one connection (plain TCP or TLS) as `session` begins it.
pub(crate) async fn run<S>(
    socket: S,
    peer: SocketAddr,
    door: &Door,
    mut session: Session,
    mut stopping: watch::Receiver<bool>,
) -> Result<()>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(socket);
    let (tx, mut rx) = mpsc::channel::<Result<Bytes>>(1);
    let max = door.options.max_request_bytes;
    session.client_host = format!("/{}", peer.ip());
    let reader = tokio::spawn(async move {
        loop {
            let next = frame::read(&mut rd, max).await;
            let last = !matches!(next, Ok(Some(_)));
            let Some(next) = next.transpose() else { break };
            if tx.send(next).await.is_err() || last {
                break;
            }
        }
    });
    let result = async {
        let mut muted_until = None;
        loop {
            if let Some(until) = muted_until.take() {
                tokio::select! {
                    () = tokio::time::sleep_until(until) => {}
                    _ = stopping.wait_for(|s| *s) => return Ok(()),
                }
            }
            let next = tokio::select! {
                next = rx.recv() => next,
                _ = stopping.wait_for(|s| *s) => None,
            };
            let Some(bytes) = next else { return Ok(()) };
            let bytes = bytes?;
            if session.raw_sasl {
                // After SaslHandshake v0, SASL's tokens travel bare, each in a frame.
                let reply = apis::sasl_token(door, &mut session, &bytes);
                if let Some(reply) = reply {
                    wr.write_all(&reply).await.map_err(Error::Io)?;
                    wr.flush().await.map_err(Error::Io)?;
                }
                if session.close {
                    return Ok(());
                }
                continue;
            }
            let req: Request = frame::parse(bytes)?;
            tracing::trace!(%peer, key = req.api_key, version = req.api_version, "kafka: request");
            let answer = apis::handle(door, &mut session, req).await?;
            if answer.delay {
                // A client before KIP-219 learns of its throttle by waiting for the answer.
                tokio::time::sleep(answer.throttle).await;
            } else if !answer.throttle.is_zero() {
                muted_until = Some(tokio::time::Instant::now() + answer.throttle);
            }
            if let Some(response) = answer.response {
                wr.write_all(&response).await.map_err(Error::Io)?;
                wr.flush().await.map_err(Error::Io)?;
            }
            if session.close {
                return Ok(());
            }
        }
    }
    .await;
    reader.abort();
    result
}
