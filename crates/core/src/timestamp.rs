//! Which timestamp a record carries, a stream attribute every batch codec reads
//! (Tributary's and Kafka's); its own module so the two codecs share it without
//! depending on each other.

use serde::{Deserialize, Serialize};

/// Which timestamp records carry for retention and seek by time (Kafka's
/// `message.timestamp.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestampType {
    /// The producer's timestamp, or the append time for records without one.
    #[default]
    CreateTime,
    /// The server's append time.
    LogAppendTime,
}
