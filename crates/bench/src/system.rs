//! What a workload drives: a system under test, set up for one run, with its connections and
//! per-partition readers. Tributary is one (`tributary.rs`); NATS JetStream and Redis Streams
//! (`peers/`) are others, so every system gets the very same load, pacing and measuring.
//!
//! A run writes `pairs()` separate logs (Tributary's topic partitions, a JetStream stream or
//! a Redis stream key each), and every log starts empty, so a reader counts records from 0.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use tributary_client::Record;

use crate::{Error, Result};

/// A system set up for one run.
pub trait System {
    type Conn: Conn;

    /// Opens one connection (one per producer and one per consumer).
    fn connect(&self) -> impl Future<Output = Result<Self::Conn>>;

    /// How many separate logs the run writes.
    fn pairs(&self) -> usize;

    /// Moves what was written out of memory, so that reads come from the disk (`--cold`).
    /// Only Tributary can; the peers refuse the flag before a run.
    fn cool(&self) -> impl Future<Output = Result<()>> {
        async { Err(Error::Invalid("--cold is Tributary's".into())) }
    }
}

/// One connection to the system; clones share it.
pub trait Conn: Clone + Send + Sync + 'static {
    type Reader: Reader;

    /// Sends one batch to log `pair`; resolves once the system acknowledged all of it with
    /// the run's durability.
    fn produce(
        &self,
        pair: usize,
        records: Vec<Record>,
    ) -> impl Future<Output = Result<()>> + Send + 'static + use<Self>;

    /// A reader of log `pair` from its first record.
    fn reader(&self, pair: usize) -> impl Future<Output = Result<Self::Reader>> + Send;

    /// Log `pair` as error messages name it.
    fn describe(&self, pair: usize) -> String;
}

/// Reads one log in order.
pub trait Reader: Send + 'static {
    /// The values of the next records. With none ready it waits up to `wait` (zero: not at
    /// all); an empty result means none came.
    fn read(&mut self, wait: Duration) -> impl Future<Output = Result<Vec<Bytes>>> + Send;
}
