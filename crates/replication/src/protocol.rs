//! What a pull says, as the replication crate's own types: the request a downstream
//! cluster sends, and the responses its upstream streams back. The upstream side makes
//! responses (`upstream.rs`), the downstream side applies them (`downstream.rs`), and only
//! `wire.rs` knows their protobuf form (`tributary.v1.PullRequest` and friends).

use bytes::Bytes;
use tributary_volume::LinkStart;

/// A cluster's id, as batches name their origin.
pub type ClusterId = [u8; 16];

/// A downstream cluster asks for a stream, from its positions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullRequest {
    /// The source stream.
    pub stream: String,
    /// The puller's cluster: batches that originated there are not sent.
    pub puller: Option<ClusterId>,
    /// Where to continue, per partition; partitions not listed start by `start`.
    pub positions: Vec<Position>,
    pub start: LinkStart,
    /// Batch bytes per response; 0 asks for the upstream's default.
    pub max_bytes: u32,
    /// Also send the source's consumer-group cursors (offset-keeping mirrors).
    pub cursors: bool,
}

/// Where a link continues in one partition: the next upstream offset, and the upstream's
/// incarnation when the link got it (0 when unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub topic: String,
    pub partition: u32,
    pub next_offset: u64,
    pub upstream_incarnation: u32,
}

/// One response of a pull: topics when they changed, batches when there are any, cursors
/// when they changed; all empty is a keepalive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullResponse {
    /// The source's topics, all of them: in the first response and whenever they change.
    pub topics: Vec<TopicShape>,
    pub chunks: Vec<PullChunk>,
    /// Every group cursor of the source stream, when `cursors_sent`.
    pub cursors: Vec<ReplicatedCursor>,
    pub cursors_sent: bool,
    /// The source's clock when the response was made.
    pub sent_ms: i64,
    /// The source's incarnation: the positions this response moves are positions in it.
    pub upstream_incarnation: u32,
}

impl PullResponse {
    /// Nothing to say: no topics, chunks or cursors.
    pub fn is_idle(&self) -> bool {
        self.topics.is_empty() && self.chunks.is_empty() && !self.cursors_sent
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicShape {
    pub name: String,
    pub partitions: u32,
}

/// One partition's part of a response: stored batches (none in an announcement of where
/// the partition starts) and the source partition's figures when read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullChunk {
    pub topic: String,
    pub partition: u32,
    /// Stored batches in offset order, byte for byte as the source stores them.
    pub batches: Vec<Bytes>,
    /// Where the next pull of this partition continues.
    pub next_offset: u64,
    pub high_watermark: u64,
    pub log_start: u64,
    pub stored_bytes: u64,
    /// Append time of the source's newest batch (0 when it stores none).
    pub last_append_ms: i64,
}

/// A consumer group's cursor at the source: the next offset it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicatedCursor {
    pub group: String,
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
}
