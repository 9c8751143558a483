//! The replicator the server starts: one pull loop per link into this cluster, kept in
//! step with the catalog's link rows by a supervisor. A loop connects to the upstream,
//! sends a pull from the link's stored positions and applies each response
//! (`downstream.rs`); any fault (either side killed or restarted, a cut link) ends the
//! pull, and the loop backs off with jitter and resumes from the stored positions.
//!
//! Memory per link is bounded: one pull response (at most the pull's byte budget) is
//! applied at a time, and the upstream keeps at most two more ready, behind HTTP/2 flow
//! control.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tributary_client::{Client, ConnectOptions};
use tributary_proto::v1;
use tributary_volume::{LinkRow, Namespace};
use uuid::Uuid;

use crate::Error;
use crate::downstream;
use crate::links::Links;
use crate::protocol::PullRequest;
use crate::status::LiveStatus;

/// Batch bytes asked per pull response.
pub const PULL_BYTES: u32 = 4 << 20;
/// Back-off after an error: doubles from the first to the last, with jitter.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// A pull that hears nothing (not even a keepalive) for this long is cut and retried.
const SILENCE: Duration = Duration::from_secs(30);

/// Runs the pull loops of every link until stopped.
pub struct Replicator {
    stop: tokio::sync::watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Replicator {
    pub fn start(links: Arc<Links>) -> Self {
        let stop = tokio::sync::watch::Sender::new(false);
        Self {
            task: tokio::spawn(supervise(links, stop.subscribe())),
            stop,
        }
    }

    /// Stops every pull loop and waits until they are gone (positions are stored with the
    /// records, so stopping anywhere loses nothing).
    pub async fn stop(self) {
        self.stop.send_replace(true);
        let _ = self.task.await;
    }
}

/// Keeps one pull loop per link, restarting a loop whose link changed.
async fn supervise(links: Arc<Links>, mut stop: tokio::sync::watch::Receiver<bool>) {
    struct Running {
        row: Arc<LinkRow>,
        task: JoinHandle<()>,
    }
    let ns = links.namespace().clone();
    let mut running: HashMap<Uuid, Running> = HashMap::new();
    loop {
        let (rows, mut changed) = ns.links();
        let mut gone = Vec::new();
        running.retain(|id, r| {
            let keep = rows.iter().any(|l| l.id == *id && **l == *r.row);
            if !keep {
                r.task.abort();
                gone.push(std::mem::replace(&mut r.task, tokio::spawn(async {})));
            }
            keep
        });
        for t in gone {
            let _ = t.await;
        }
        links.keep_only(&rows);
        for row in rows {
            running.entry(row.id).or_insert_with(|| Running {
                row: row.clone(),
                task: tokio::spawn(run_link(links.clone(), row)),
            });
        }
        tokio::select! {
            c = changed.changed() => if c.is_err() { break },
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    for r in running.values() {
        r.task.abort();
    }
    for (_, r) in running {
        let _ = r.task.await;
    }
}

/// One link's loop: pull until an error, back off, pull again.
async fn run_link(links: Arc<Links>, row: Arc<LinkRow>) {
    let ns = links.namespace();
    let status = links.status(row.id);
    if row.paused {
        status.change(|s| s.paused());
        return;
    }
    let mut backoff = BACKOFF_FIRST;
    loop {
        status.change(|s| s.connecting());
        let mut progressed = false;
        let err = pull(ns, &row, &status, &mut progressed).await;
        if !ns.link_current(&row) {
            return;
        }
        tracing::warn!(stream = %row.stream, from = %row.from, error = %err, "replication link: pull failed; retrying");
        let now = ns.clock().now_ms();
        status.change(|s| s.failed(now, err.to_string()));
        metrics::counter!("tributary_replication_errors_total",
            "stream" => row.stream.clone(), "from" => row.from.clone())
        .increment(1);
        if progressed {
            backoff = BACKOFF_FIRST;
        }
        tokio::time::sleep(jitter(backoff)).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// One pull: connect, ask from the stored positions, apply responses until it fails.
async fn pull(ns: &Namespace, row: &LinkRow, status: &LiveStatus, progressed: &mut bool) -> Error {
    match pull_inner(ns, row, status, progressed).await {
        Ok(()) => Error::Ended,
        Err(e) => e,
    }
}

async fn pull_inner(
    ns: &Namespace,
    row: &LinkRow,
    status: &LiveStatus,
    progressed: &mut bool,
) -> Result<(), Error> {
    let token = match (&row.token, &row.token_file) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(f)) => Some(
            tokio::fs::read_to_string(f)
                .await
                .map_err(|source| Error::TokenFile {
                    path: f.clone(),
                    source,
                })?
                .trim()
                .to_owned(),
        ),
        (None, None) => None,
    };
    let client = Client::connect_with(
        &row.url,
        &ConnectOptions {
            token,
            ca_cert: row.ca_cert.clone().map(String::into_bytes),
            identity: None,
        },
    )
    .await?;
    let positions = downstream::positions(ns, row, status).await?;
    let req = PullRequest {
        stream: row.source.clone(),
        puller: Some(*ns.cluster_id().as_bytes()),
        positions,
        start: row.start,
        max_bytes: PULL_BYTES,
        cursors: row.mirror,
    };
    let mut stream = client
        .replication()
        .pull(v1::PullRequest::from(req))
        .await?
        .into_inner();
    loop {
        let msg = match tokio::time::timeout(SILENCE, stream.message()).await {
            Err(_) => return Err(Error::Silent(SILENCE)),
            Ok(m) => m?,
        };
        let Some(resp) = msg else {
            return Ok(());
        };
        status.change(|s| s.running());
        downstream::apply(ns, row, status, resp.into()).await?;
        *progressed = true;
        if !ns.link_current(row) {
            return Ok(());
        }
    }
}

/// `d` scaled by a random factor in [0.5, 1.5), so links retrying together spread out.
fn jitter(d: Duration) -> Duration {
    let r = getrandom::u32().unwrap_or(u32::MAX / 2);
    d.mul_f64(0.5 + f64::from(r) / f64::from(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_half_and_one_and_a_half() {
        for _ in 0..1000 {
            let j = jitter(Duration::from_millis(1000));
            assert!(j >= Duration::from_millis(500) && j <= Duration::from_millis(1500));
        }
    }
}
