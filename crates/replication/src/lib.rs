//! Replication (design §6, docs/replication.md): streams copied between clusters, in any
//! topology, multi-master included, each record applied exactly once at every cluster.
//!
//! - **Links.** A link says "stream S at URL feeds stream D here". It is configured on the
//!   receiving side and pulled from there, authorized upstream by S's `copy` permission.
//!   Its row is in the namespace's catalog (`crates/volume`, `namespace/links.rs`: add,
//!   list, pause, remove, promote, dropped with its stream); [`Links`] (`links.rs`) joins
//!   each row with its live [`LinkStatus`] (`status.rs`), for the API and the metrics.
//! - **Pulling.** The [`Replicator`] (`replicator.rs`) keeps one pull loop per link: it
//!   connects to the upstream through `crates/client`, asks from the link's stored
//!   positions and applies one response at a time; any error ends the pull, and it retries
//!   with jittered back-off. A pull silent for 30 s is cut.
//! - **The upstream side.** A [`PullSession`] (`upstream.rs`) reads the source stream for
//!   one puller, partitions in turn, through the [`PullSource`] the namespace hands out
//!   once it has checked the puller's `copy` permission (and checks again as it goes).
//!   Batches go as stored; the puller's own records are left out (loop prevention); an
//!   idle session sends a keepalive every 5 s.
//! - **The downstream side** (`downstream.rs`) applies a response through the link's
//!   [`ReplicaTarget`]: topics shaped as the source's, each batch read off its framing and
//!   appended through storage's exactly-once write, lost records detected, a mirror's
//!   cursors committed.
//! - **Positions and watermarks.** A link's position per partition (the next upstream
//!   offset, with the upstream's incarnation it was read in) and each partition's watermark
//!   per origin cluster and incarnation (the next origin offset it expects) are written in
//!   the same `WriteBatch` as the records they cover (`crates/storage/src/replication.rs`,
//!   `Store::apply_pulled`: a storage primitive, it stays there). A record below its
//!   origin's watermark came by another path and is skipped; one from this very cluster is
//!   never applied. Every fault resumes from the stored positions, with nothing lost or
//!   duplicated; a position the upstream cannot vouch for after it restarted (it may have
//!   lost a tail, design §6.3) starts over from its log start.
//! - **Lost records.** Origin offsets are not dense, so loss cannot be seen in them: a
//!   link whose position is below the upstream's log start (retention removed records
//!   before they were copied) reports the difference as lost, in its status, a counter and
//!   a WARN line.
//! - **Mirrors.** An offset-keeping mirror keeps the source's offsets, so cursor
//!   translation is the identity, clamped to what the mirror holds; the source's group
//!   cursors are committed for groups with no live member here. The namespace refuses
//!   producers on a mirror until `promote`.
//! - **Lag.** Per partition: records (upstream high-water mark minus position), bytes
//!   (estimated from the upstream's average) and time (the upstream's newest append time
//!   minus that of the last batch read), as of the last contact.
//!
//! Only `wire.rs` converts between the protobuf messages and this crate's types
//! (`protocol.rs`); the doors stay thin: `crates/api/src/replication.rs` serves the
//! Replication service over [`PullSession`] and [`Links`], and `crates/cli/src/upstream.rs`
//! has the `upstream` verbs.
//!
//! The upstream side and [`Links`] answer with the namespace's errors, which the API maps
//! as it maps any namespace call's; [`Error`] says why a link's own pull ended.
//!
//! **Boundary:** replication reaches the upstream only through `crates/client`, and its
//! own cluster only through the namespace's narrow API ([`PullSource`], [`ReplicaTarget`]),
//! like any other caller; it never uses `tributary-storage` itself.

mod downstream;
mod links;
mod protocol;
mod replicator;
mod status;
mod upstream;
pub mod wire;

use std::time::Duration;

pub use links::{LinkInfo, Links};
pub use protocol::{
    ClusterId, Position, PullChunk, PullRequest, PullResponse, ReplicatedCursor, TopicShape,
};
pub use replicator::{PULL_BYTES, Replicator};
pub use status::{LinkState, LinkStatus, PartitionKey, PartitionLag};
pub use upstream::{DEFAULT_PULL_BYTES, MAX_PULL_BYTES, PullSession};

#[doc(no_inline)]
pub use tributary_volume::{PullSource, ReplicaTarget};

/// Why a link's pull ended (each is retried).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Client(#[from] tributary_client::Error),
    #[error("upstream: {}", .0.message())]
    Upstream(#[from] tonic::Status),
    #[error("{0}")]
    Local(#[from] tributary_volume::Error),
    #[error("token file {path}: {source}")]
    TokenFile {
        path: String,
        source: std::io::Error,
    },
    #[error("the upstream said nothing for {0:?}")]
    Silent(Duration),
    #[error("the upstream ended the pull")]
    Ended,
}
