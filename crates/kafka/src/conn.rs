//! One Kafka connection. Requests are handled one at a time in the order they arrived, as
//! Kafka brokers do: responses then leave in request order by construction (a long-poll
//! Fetch next to a Metadata included), and an idempotent producer's pipelined batches are
//! appended in the order it sent them. One request is read ahead while another is
//! handled, so a connection holds at most two requests (each within the size limit) and
//! the response being written; a peer that stops reading stalls its own connection only.

use std::net::SocketAddr;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use crate::frame::{self, Request};
use tributary_volume::{Caller, Credential};

use crate::{Door, Error, Result, apis};

pub(crate) async fn run(
    socket: TcpStream,
    peer: SocketAddr,
    door: &Door,
    mut stopping: watch::Receiver<bool>,
) -> Result<()> {
    let (mut rd, mut wr) = socket.into_split();
    let (tx, mut rx) = mpsc::channel::<Result<Request>>(1);
    let max = door.options.max_request_bytes;
    let mut session = Session::new(door.options.allow_anonymous, peer);
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
        loop {
            let next = tokio::select! {
                next = rx.recv() => next,
                _ = stopping.wait_for(|s| *s) => None,
            };
            let Some(req) = next else { return Ok(()) };
            let req = req?;
            tracing::trace!(%peer, key = req.api_key, version = req.api_version, "kafka: request");
            if let Some(response) = apis::handle(door, &mut session, req).await? {
                wr.write_all(&response).await.map_err(Error::Io)?;
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

/// What a connection knows of its client: who it is, and where its SASL exchange stands.
pub(crate) struct Session {
    /// Who the requests act as: anonymous until authenticated when the listener allows
    /// it, else nobody.
    pub caller: Option<Caller>,
    /// How the caller proved who it is, for long-running calls to check again.
    pub credential: Option<Credential>,
    /// The mechanism SaslHandshake chose.
    pub mechanism: Option<&'static str>,
    pub authenticated: bool,
    /// Close once the response being written is out (a failed authentication).
    pub close: bool,
    /// The peer's address as Kafka shows it (`/127.0.0.1`), for DescribeGroups.
    pub client_host: String,
}

impl Session {
    fn new(allow_anonymous: bool, peer: SocketAddr) -> Session {
        Session {
            caller: allow_anonymous.then(Caller::anonymous),
            credential: allow_anonymous.then_some(Credential::Anonymous),
            mechanism: None,
            authenticated: false,
            close: false,
            client_host: format!("/{}", peer.ip()),
        }
    }
}
