//! The load: paced producers that pipeline their requests, fetch loops that read each
//! partition, and the measuring window that decides what counts.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use hdrhistogram::Histogram;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tributary_client::Record;
use tributary_core::partitioner::partition_for_key;

use crate::system::{Conn, Reader, System};
use crate::{BenchArgs, Error, Result, Workload};

/// Long-poll of an e2e fetch loop that has caught up.
const FETCH_WAIT: Duration = Duration::from_millis(100);
/// Longest a consume read may find nothing before the end: the log is complete, so
/// nothing more can come.
const CONSUME_WAIT: Duration = Duration::from_secs(5);
/// Keys per partition that a keyed producer cycles through.
const KEYS_PER_PARTITION: usize = 64;

/// What a run measured, before it is turned into figures.
#[derive(Debug)]
pub(crate) struct Figures {
    /// Produce: acknowledged records and produce-ack latency per batch.
    pub produce: Measured,
    /// Consume: records read and latency per fetch. E2e: records delivered and
    /// produce-to-delivery latency per record. Absent for `produce`.
    pub consume: Option<Measured>,
    /// Records acknowledged in the whole run, warmup and drain included.
    pub produced: u64,
    /// Records read in the whole run.
    pub consumed: u64,
}

#[derive(Debug)]
pub(crate) struct Measured {
    pub records: u64,
    pub bytes: u64,
    pub seconds: f64,
    /// Microseconds.
    pub latency: Histogram<u64>,
}

/// Latencies in microseconds, from 1 µs to an hour, to 3 significant digits.
pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("constant bounds are valid")
}

fn record_micros(h: &mut Histogram<u64>, d: Duration) {
    h.saturating_record((d.as_micros() as u64).max(1));
}

fn merge(into: &mut Histogram<u64>, other: &Histogram<u64>) {
    into.add(other)
        .expect("bench histograms share their bounds");
}

/// The measuring window: warmup from `anchor` to `start`, measuring from `start` to `end`.
/// Send timestamps in e2e values are nanoseconds since `anchor`.
#[derive(Debug)]
pub(crate) struct Window {
    anchor: Instant,
    start: Instant,
    end: Instant,
}

impl Window {
    fn new(warmup: Duration, duration: Duration) -> Arc<Window> {
        let anchor = Instant::now();
        Arc::new(Window {
            anchor,
            start: anchor + warmup,
            end: anchor + warmup + duration,
        })
    }

    fn ns(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.anchor).as_nanos() as u64
    }

    fn contains(&self, t: Instant) -> bool {
        t >= self.start && t < self.end
    }

    fn seconds(&self) -> f64 {
        (self.end - self.start).as_secs_f64()
    }
}

pub(crate) async fn run<S: System>(args: &BenchArgs, system: &S) -> Result<Figures> {
    let producers = connect_n(system, args.producers).await?;
    match args.workload {
        Workload::Produce => {
            let window = Window::new(args.warmup, args.duration);
            let p = produce(args, system.pairs(), producers, &window).await?;
            Ok(Figures {
                produced: p.total,
                produce: p.measured(args, &window),
                consume: None,
                consumed: 0,
            })
        }
        Workload::Consume => {
            // Fill: produce for --duration, no warmup; then read it all back.
            let window = Window::new(Duration::ZERO, args.duration);
            let p = produce(args, system.pairs(), producers, &window).await?;
            if args.cold {
                system.cool().await?;
            }
            let consumers = connect_n(system, args.consumers).await?;
            let started = Instant::now();
            let mut loops = JoinSet::new();
            for i in 0..system.pairs() {
                loops.spawn(fetch_loop(
                    consumers[i % consumers.len()].clone(),
                    i,
                    Until::Offset(p.per_pair[i]),
                    None,
                ));
            }
            let read = join_reads(&mut loops).await?;
            let seconds = started.elapsed().as_secs_f64();
            Ok(Figures {
                produced: p.total,
                consumed: read.total,
                produce: p.measured(args, &window),
                consume: Some(Measured {
                    records: read.total,
                    bytes: read.bytes,
                    seconds,
                    latency: read.latency,
                }),
            })
        }
        Workload::E2e => {
            let consumers = connect_n(system, args.consumers).await?;
            let window = Window::new(args.warmup, args.duration);
            let (done_tx, done_rx) = watch::channel(None);
            let mut loops = JoinSet::new();
            for i in 0..system.pairs() {
                loops.spawn(fetch_loop(
                    consumers[i % consumers.len()].clone(),
                    i,
                    Until::Produced(i, done_rx.clone()),
                    Some(window.clone()),
                ));
            }
            // On a producer error the loops are aborted as `loops` drops.
            let p = produce(args, system.pairs(), producers, &window).await?;
            let produce_figures = p.measured(args, &window);
            let produced = p.total;
            let _ = done_tx.send(Some(Arc::new(p.per_pair)));
            let read = join_reads(&mut loops).await?;
            Ok(Figures {
                produced,
                consumed: read.total,
                produce: produce_figures,
                consume: Some(Measured {
                    records: read.in_window,
                    bytes: read.bytes_in_window,
                    seconds: window.seconds(),
                    latency: read.latency,
                }),
            })
        }
    }
}

async fn connect_n<S: System>(system: &S, n: u32) -> Result<Vec<S::Conn>> {
    let mut conns = Vec::with_capacity(n as usize);
    for _ in 0..n {
        conns.push(system.connect().await?);
    }
    Ok(conns)
}

// ---------------------------------------------------------------------------------------
// Producing

/// What all producers did.
struct Produced {
    /// Records acknowledged per pair (so, with offsets from 0, each pair's end offset).
    per_pair: Vec<u64>,
    total: u64,
    in_window: u64,
    latency: Histogram<u64>,
}

impl Produced {
    fn measured(&self, args: &BenchArgs, window: &Window) -> Measured {
        Measured {
            records: self.in_window,
            bytes: self.in_window * args.record_size as u64,
            seconds: window.seconds(),
            latency: self.latency.clone(),
        }
    }
}

/// The pairs producer `i` of `n` writes: every n-th, or one shared pair when there are more
/// producers than pairs.
fn owned_pairs(i: usize, n: usize, pairs: usize) -> Vec<usize> {
    if n <= pairs {
        (i..pairs).step_by(n).collect()
    } else {
        vec![i % pairs]
    }
}

async fn produce<C: Conn>(
    args: &BenchArgs,
    pairs: usize,
    conns: Vec<C>,
    window: &Arc<Window>,
) -> Result<Produced> {
    let keys = args.keyed.then(|| Arc::new(key_pools(args.partitions)));
    let template = template(args.record_size);
    let n = conns.len();
    // --rate is shared evenly; producers are offset by one record interval each so their
    // batches do not all fall due at the same instant.
    let per_producer = args.rate.map(|r| r as f64 / n as f64);
    let mut tasks = JoinSet::new();
    for (i, conn) in conns.into_iter().enumerate() {
        let phase = args.rate.map_or(Duration::ZERO, |r| {
            Duration::from_secs_f64(i as f64 / r as f64)
        });
        tasks.spawn(
            Producer {
                conn,
                pairs: owned_pairs(i, n, pairs),
                partitions: args.partitions,
                keys: keys.clone(),
                template: template.clone(),
                stamp: args.workload == Workload::E2e,
                in_flight: args.in_flight,
                pace: Pace {
                    start: window.anchor + phase,
                    rate: per_producer,
                    linger: args.linger,
                    batch: args.batch_records as u64,
                },
                window: window.clone(),
            }
            .run(pairs),
        );
    }
    let mut all = Produced {
        per_pair: vec![0; pairs],
        total: 0,
        in_window: 0,
        latency: histogram(),
    };
    while let Some(done) = tasks.join_next().await {
        let p = done??;
        for (sum, n) in all.per_pair.iter_mut().zip(&p.per_pair) {
            *sum += n;
        }
        all.total += p.total;
        all.in_window += p.in_window;
        merge(&mut all.latency, &p.latency);
    }
    Ok(all)
}

/// A record value of `size` bytes that does not compress (xorshift).
fn template(size: usize) -> Bytes {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut v = Vec::with_capacity(size + 8);
    while v.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(size);
    Bytes::from(v)
}

/// For each partition, keys that Kafka's partitioner sends there, so a keyed batch stays
/// on the partition its producer owns while the server still hashes every key.
fn key_pools(partitions: u32) -> Vec<Vec<Bytes>> {
    let mut pools = vec![Vec::new(); partitions as usize];
    let mut full = 0;
    let mut n = 0u64;
    while full < pools.len() {
        let key = format!("key-{n:012}");
        n += 1;
        let pool = &mut pools[partition_for_key(key.as_bytes(), partitions) as usize];
        if pool.len() < KEYS_PER_PARTITION {
            pool.push(Bytes::from(key));
            if pool.len() == KEYS_PER_PARTITION {
                full += 1;
            }
        }
    }
    pools
}

/// When records fall due: all at once without a rate, else record `i` at
/// `start + i / rate`.
#[derive(Debug, Clone, Copy)]
struct Pace {
    start: Instant,
    /// Records per second for this producer.
    rate: Option<f64>,
    linger: Duration,
    batch: u64,
}

impl Pace {
    fn due(&self, i: u64) -> Instant {
        match self.rate {
            Some(r) => self.start + Duration::from_secs_f64(i as f64 / r),
            None => self.start,
        }
    }

    /// When the batch starting at record `next` should leave: once full, or `linger`
    /// after its first record fell due.
    fn ready_at(&self, next: u64) -> Instant {
        match self.rate {
            Some(_) => self
                .due(next + self.batch - 1)
                .min(self.due(next) + self.linger),
            None => self.start,
        }
    }

    /// How many records from `next` are due at `now` (at least 1, at most a batch).
    fn due_count(&self, now: Instant, next: u64) -> u64 {
        match self.rate {
            Some(r) => {
                let due = (now.saturating_duration_since(self.start).as_secs_f64() * r) as u64 + 1;
                due.saturating_sub(next).clamp(1, self.batch)
            }
            None => self.batch,
        }
    }
}

struct Producer<C> {
    conn: C,
    /// The pairs this producer writes, taken round-robin.
    pairs: Vec<usize>,
    /// Partitions per topic (pair `i` is partition `i % partitions`).
    partitions: u32,
    keys: Option<Arc<Vec<Vec<Bytes>>>>,
    template: Bytes,
    /// Start each value with its send time (e2e).
    stamp: bool,
    in_flight: usize,
    pace: Pace,
    window: Arc<Window>,
}

type Sent = (usize, u64, Instant, Result<()>);

impl<C: Conn> Producer<C> {
    async fn run(self, pairs: usize) -> Result<Produced> {
        let mut out = Produced {
            per_pair: vec![0; pairs],
            total: 0,
            in_window: 0,
            latency: histogram(),
        };
        let mut in_flight = FuturesUnordered::new();
        let mut next_record = 0u64;
        let mut turn = 0usize;
        loop {
            let sending = Instant::now() < self.window.end;
            if !sending && in_flight.is_empty() {
                return Ok(out);
            }
            let ready_at = self.pace.ready_at(next_record).min(self.window.end);
            tokio::select! {
                biased;
                Some(sent) = in_flight.next(), if !in_flight.is_empty() => {
                    self.settle(sent, &mut out)?;
                }
                _ = tokio::time::sleep_until(ready_at),
                    if sending && in_flight.len() < self.in_flight =>
                {
                    let now = Instant::now();
                    if now >= self.window.end {
                        continue;
                    }
                    let n = self.pace.due_count(now, next_record);
                    let slot = turn % self.pairs.len();
                    turn += 1;
                    let records = self.batch(slot, next_record, n, now);
                    next_record += n;
                    in_flight.push(self.send(slot, records));
                }
            }
        }
    }

    fn batch(&self, slot: usize, first: u64, n: u64, now: Instant) -> Vec<Record> {
        let keys = self
            .keys
            .as_ref()
            .map(|k| &k[self.pairs[slot] % self.partitions as usize]);
        let key = |i: u64| keys.map(|k| k[(first + i) as usize % k.len()].clone());
        let record = |key, value| Record {
            key,
            value: Some(value),
            headers: Vec::new(),
            timestamp_ms: None,
        };
        if !self.stamp {
            return (0..n)
                .map(|i| record(key(i), self.template.clone()))
                .collect();
        }
        // One buffer for the batch; each value is a slice of it starting with its send time.
        let size = self.template.len();
        let mut buf = BytesMut::with_capacity(size * n as usize);
        for i in 0..n {
            let sent = match self.pace.rate {
                Some(_) => self.pace.due(first + i),
                None => now,
            };
            buf.put_u64_le(self.window.ns(sent));
            buf.put_slice(&self.template[8..]);
        }
        let buf = buf.freeze();
        (0..n as usize)
            .map(|i| record(key(i as u64), buf.slice(i * size..(i + 1) * size)))
            .collect()
    }

    fn send(&self, slot: usize, records: Vec<Record>) -> impl Future<Output = Sent> + use<C> {
        let n = records.len() as u64;
        let sent_at = Instant::now();
        let acked = self.conn.produce(self.pairs[slot], records);
        async move { (slot, n, sent_at, acked.await) }
    }

    fn settle(&self, (slot, n, sent_at, r): Sent, out: &mut Produced) -> Result<()> {
        let now = Instant::now();
        r?;
        out.per_pair[self.pairs[slot]] += n;
        out.total += n;
        if self.window.contains(now) {
            out.in_window += n;
        }
        if self.window.contains(sent_at) {
            record_micros(&mut out.latency, now - sent_at);
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Reading

/// Where a fetch loop stops.
enum Until {
    /// A known end offset (consume: the topics were filled before).
    Offset(u64),
    /// The end offset of pair `.0`, once every producer has finished (e2e).
    Produced(usize, watch::Receiver<Option<Arc<Vec<u64>>>>),
}

struct Read {
    total: u64,
    bytes: u64,
    in_window: u64,
    bytes_in_window: u64,
    latency: Histogram<u64>,
}

impl Read {
    fn new() -> Read {
        Read {
            total: 0,
            bytes: 0,
            in_window: 0,
            bytes_in_window: 0,
            latency: histogram(),
        }
    }
}

/// Reads one log from its first record up to its end. Without a window (consume), records
/// the latency of each read; with one (e2e), each record's produce-to-delivery latency.
async fn fetch_loop<C: Conn>(
    conn: C,
    pair: usize,
    until: Until,
    e2e: Option<Arc<Window>>,
) -> Result<Read> {
    let mut read = Read::new();
    let mut reader = conn.reader(pair).await?;
    let wait = if e2e.is_some() {
        FETCH_WAIT
    } else {
        CONSUME_WAIT
    };
    // Logs start empty, so the records read so far are the next offset.
    let mut offset = 0u64;
    loop {
        let end = match &until {
            Until::Offset(end) => Some(*end),
            Until::Produced(i, rx) => rx.borrow().as_ref().map(|ends| ends[*i]),
        };
        match end {
            Some(end) if offset == end => break,
            Some(end) if offset > end => {
                return Err(Error::Check(format!(
                    "read {} up to offset {offset}, past its end {end}",
                    conn.describe(pair)
                )));
            }
            _ => {}
        }
        let asked = Instant::now();
        let values = reader.read(wait).await?;
        let now = Instant::now();
        let n = values.len() as u64;
        if n == 0 && e2e.is_none() {
            return Err(Error::Check(format!(
                "{} ends at offset {offset}, before the {end:?} produced",
                conn.describe(pair)
            )));
        }
        let bytes: u64 = values.iter().map(|v| v.len() as u64).sum();
        match &e2e {
            None => record_micros(&mut read.latency, now - asked),
            Some(w) => {
                let now_ns = w.ns(now);
                let start_ns = w.ns(w.start);
                for (i, v) in values.iter().enumerate() {
                    let Some(stamp) = v.get(..8) else {
                        return Err(Error::Check(format!(
                            "a record at {} offset {} has no timestamp",
                            conn.describe(pair),
                            offset + i as u64
                        )));
                    };
                    let sent = u64::from_le_bytes(stamp.try_into().expect("8 bytes"));
                    if sent >= start_ns && sent < w.ns(w.end) {
                        let micros = now_ns.saturating_sub(sent) / 1_000;
                        read.latency.saturating_record(micros.max(1));
                    }
                }
                if w.contains(now) {
                    read.in_window += n;
                    read.bytes_in_window += bytes;
                }
            }
        }
        read.total += n;
        read.bytes += bytes;
        offset += n;
    }
    Ok(read)
}

async fn join_reads(loops: &mut JoinSet<Result<Read>>) -> Result<Read> {
    let mut all = Read::new();
    while let Some(done) = loops.join_next().await {
        let r = done??;
        all.total += r.total;
        all.bytes += r.bytes;
        all.in_window += r.in_window;
        all.bytes_in_window += r.bytes_in_window;
        merge(&mut all.latency, &r.latency);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producers_split_the_pairs_evenly() {
        assert_eq!(owned_pairs(0, 2, 2), vec![0]);
        assert_eq!(owned_pairs(1, 2, 2), vec![1]);
        assert_eq!(owned_pairs(0, 2, 5), vec![0, 2, 4]);
        assert_eq!(owned_pairs(1, 2, 5), vec![1, 3]);
        assert_eq!(owned_pairs(2, 3, 1), vec![0]);
    }

    #[test]
    fn pacing_releases_full_batches_or_lingered_ones() {
        let start = Instant::now();
        let pace = Pace {
            start,
            rate: Some(1000.0), // one record per ms
            linger: Duration::from_millis(5),
            batch: 100,
        };
        // A batch of 100 would take 99 ms to fill; linger lets it go after 5 ms.
        assert_eq!(pace.ready_at(0), start + Duration::from_millis(5));
        assert_eq!(pace.due_count(start + Duration::from_millis(5), 0), 6);
        // Behind schedule, a batch is full at once.
        assert_eq!(pace.due_count(start + Duration::from_secs(1), 6), 100);
        // Never zero, even on a rounding edge.
        assert_eq!(pace.due_count(start, 6), 1);
        let unpaced = Pace { rate: None, ..pace };
        assert_eq!(unpaced.ready_at(1_000_000), start);
        assert_eq!(unpaced.due_count(start, 1_000_000), 100);
    }

    #[test]
    fn keys_land_on_their_partition() {
        let pools = key_pools(7);
        for (p, pool) in pools.iter().enumerate() {
            assert_eq!(pool.len(), KEYS_PER_PARTITION);
            for k in pool {
                assert_eq!(k.len(), 16);
                assert_eq!(partition_for_key(k, 7), p as u32);
            }
        }
    }

    #[test]
    fn values_have_the_asked_size() {
        assert_eq!(template(100).len(), 100);
        assert_eq!(template(3).len(), 3);
        assert_ne!(template(64)[..8], template(64)[8..16]);
    }
}
