//! The append path. Appends submitted with [`Store::submit`] go through one thread, the
//! appender: it takes every append queued since its last write, checks and stages them
//! into one `WriteBatch`, and writes that once. `sync` appends then pass to a second
//! thread, the syncer, which fsyncs the write-ahead log once for everything written
//! meanwhile and acknowledges them, while the appender stages the next group.
//!
//! Why threads rather than a blocking task per request: concurrent small appends used to
//! queue on the partition lock and again in RocksDB's write group, parking and waking a
//! thread at each step, and those switches cost more CPU than the appends (measured in
//! docs/PERFORMANCE.md). Here an append crosses threads once each way, and a busy appender
//! takes the next group without sleeping.
//!
//! Within a group, appends are staged in queue order, each against the state the ones
//! before it left. An append whose check fails is refused alone; the rest of its group
//! goes on. Unit tests append with the blocking `Store::append_checked` (test builds
//! only), which stages a group of one on the caller's thread, with the same code.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Weak, mpsc};

use parking_lot::{ArcMutexGuard, RawMutex};
use rocksdb::WriteBatch;
use tokio::sync::oneshot;

use crate::db::write_options;
use crate::error::{Error, Result};
use crate::keys::{self, PartitionId, cf};
use crate::producers::{SequenceCheck, appended, check_sequence};
use crate::state::{Job, Partition, Reply, Slot, Store, publish_hwm};
use crate::timeindex::TimeTail;
use crate::types::{AppendCheck, AppendRequest, Appended, Durability, NewBatch, check_batch_size};
use crate::values::{PartitionState, ProducerState};

/// A group stops taking appends once its batches reach this size, so one write (and the
/// memory it holds) stays bounded however much is queued.
const MAX_GROUP_BYTES: usize = 32 << 20;

/// An append staged in a group: what to answer, and the high-water marks to publish once
/// it is written (and, for `sync`, fsynced).
struct Done {
    appended: Vec<Appended>,
    ends: Vec<(Arc<Partition>, u64)>,
}

/// `sync` appends written up to sequence number `seq`, waiting for the syncer.
struct Written {
    seq: u64,
    jobs: Vec<(Done, Reply)>,
}

/// One partition as a group sees it: locked for the whole group, with the state the
/// group's appends so far leave it in.
struct Held {
    slot: ArcMutexGuard<RawMutex, Slot>,
    handle: Arc<Partition>,
    state: PartitionState,
    time: TimeTail,
    /// Producer states the group changed (written with the group, then cached).
    producers: HashMap<u64, ProducerState>,
    changed: bool,
}

/// Appends staged together into one `WriteBatch`.
struct Group {
    wb: WriteBatch,
    held: HashMap<PartitionId, Held>,
    bytes: usize,
}

impl Group {
    fn new() -> Self {
        Group {
            wb: WriteBatch::default(),
            held: HashMap::new(),
            bytes: 0,
        }
    }

    /// Locks `ids` for the group. A group holding nothing waits for the locks (taken in id
    /// order, as every multi-partition locker does); one holding some only tries, and
    /// returns false if a lock is taken, so it cannot wait in a cycle: the caller writes
    /// what it has and starts a new group.
    fn lock(&mut self, store: &Store, ids: &[PartitionId]) -> Result<bool> {
        let wait = self.held.is_empty();
        let mut order: Vec<PartitionId> = ids.to_vec();
        order.sort_unstable();
        let mut taken = Vec::new();
        for id in order {
            if self.held.contains_key(&id) {
                continue;
            }
            let handle = store.partition(id)?;
            let slot = if wait {
                handle.slot.lock_arc()
            } else {
                match handle.slot.try_lock_arc() {
                    Some(s) => s,
                    None => return Ok(false),
                }
            };
            taken.push((id, handle, slot));
        }
        for (id, handle, slot) in taken {
            let (state, time) = (slot.state, slot.time);
            self.held.insert(
                id,
                Held {
                    slot,
                    handle,
                    state,
                    time,
                    producers: HashMap::new(),
                    changed: false,
                },
            );
        }
        Ok(true)
    }

    /// Checks and stages one append to `partitions` (locked with [`Group::lock`]). On an
    /// error nothing of it is staged.
    fn add(
        &mut self,
        store: &Store,
        partitions: &[PartitionId],
        checks: &[AppendCheck],
        build: &mut dyn FnMut(usize, u64) -> NewBatch,
    ) -> Result<Done> {
        // Checks first, for every partition, so a refusal stages nothing anywhere.
        let mut duplicates = Vec::new();
        let mut producers = Vec::with_capacity(partitions.len());
        for (i, &id) in partitions.iter().enumerate() {
            let held = self.held.get_mut(&id).expect("locked by Group::lock");
            if held.slot.dropped {
                return Err(Error::UnknownPartition(id));
            }
            let check = checks.get(i).copied().unwrap_or_default();
            let mut producer = None;
            if let Some(seq) = check.producer {
                let state = match held.producers.get(&seq.id) {
                    Some(s) => Some(s.clone()),
                    None => store.producer_state(id, &mut held.slot, seq.id)?,
                };
                match check_sequence(id, state.as_ref(), seq)? {
                    SequenceCheck::Duplicate(b) => {
                        duplicates.push(Appended {
                            base_offset: b.base_offset,
                            record_count: b.record_count,
                            append_time_ms: b.append_time_ms,
                            bytes: 0,
                            duplicate: true,
                        });
                        continue;
                    }
                    SequenceCheck::Next => producer = Some((seq, state)),
                }
            }
            if let Some(expected) = check.expect_next_offset
                && expected != held.state.next_offset
            {
                return Err(Error::OffsetMismatch {
                    partition: id,
                    expected,
                    actual: held.state.next_offset,
                });
            }
            producers.push(producer);
        }
        if !duplicates.is_empty() {
            // A retry is all or nothing: one request's batches were appended together.
            if duplicates.len() != partitions.len() {
                return Err(Error::corrupt(
                    "idempotent append",
                    "a retry matched some partitions' earlier batches but not others".into(),
                ));
            }
            return Ok(Done {
                appended: duplicates,
                ends: Vec::new(),
            });
        }

        let batches: Vec<NewBatch> = partitions
            .iter()
            .enumerate()
            .map(|(i, id)| build(i, self.held[id].state.next_offset))
            .collect();
        for batch in &batches {
            check_batch_size(batch)?;
        }
        let mut done = Done {
            appended: Vec::with_capacity(partitions.len()),
            ends: Vec::with_capacity(partitions.len()),
        };
        for ((&id, batch), producer) in partitions.iter().zip(&batches).zip(producers) {
            let held = self.held.get_mut(&id).expect("locked");
            let base = held.state.next_offset;
            held.state =
                store.stage_batch(&mut self.wb, id, &held.state, &mut held.time, base, batch);
            held.changed = true;
            if let Some((seq, state)) = producer {
                let state = appended(state, seq, base, batch.append_time_ms);
                held.producers.insert(seq.id, state);
            }
            self.bytes += batch.value.len();
            done.appended.push(Appended {
                base_offset: base,
                record_count: batch.record_count,
                append_time_ms: batch.append_time_ms,
                bytes: batch.value.len() as u64,
                duplicate: false,
            });
            done.ends
                .push((held.handle.clone(), held.state.next_offset));
        }
        Ok(done)
    }

    /// Writes the group (without fsync) and unlocks its partitions, returning the sequence
    /// number the write-ahead log must be durable to for the group to be.
    fn write(mut self, store: &Store) -> std::result::Result<u64, rocksdb::Error> {
        let mut any = false;
        for (&id, held) in &self.held {
            if !held.changed {
                continue;
            }
            any = true;
            // Each partition's state and producers once per group, however many of its
            // appends the group holds.
            self.wb.put_cf(
                store.cf(cf::META),
                keys::partition_state(id),
                held.state.encode(),
            );
            for (producer, state) in &held.producers {
                self.wb.put_cf(
                    store.cf(cf::PRODUCERS),
                    keys::producer(id, *producer),
                    state.encode(),
                );
            }
        }
        if any {
            store
                .db()
                .write_opt(self.wb, &write_options(Durability::Buffered))?;
        }
        let seq = store.db().latest_sequence_number();
        for held in self.held.into_values() {
            let Held {
                mut slot,
                state,
                time,
                producers,
                changed,
                ..
            } = held;
            if changed {
                slot.state = state;
                slot.time = time;
                slot.producers.extend(producers);
            }
        }
        Ok(seq)
    }
}

impl Store {
    /// Appends one batch to each of `req.partitions` atomically, through the appender
    /// thread (see the module docs); resolves once the append is acknowledged: written,
    /// and for `sync` fsynced, with its partitions' high-water marks moved past it.
    ///
    /// Every batch, its summary and each partition's new state go to RocksDB in one
    /// `WriteBatch`. The checks (`req.checks`) run under the append locks before anything
    /// is written: a conditional append whose expected high-water mark is wrong, or an
    /// idempotent producer's sequence gap, fails and writes nothing. An idempotent retry of
    /// a batch already appended returns the original offsets, marked `duplicate`, once it
    /// is as durable as the original's answer would have been. `build` runs on the
    /// appender thread under the partitions' locks, so it should only encode.
    pub fn submit(
        self: &Arc<Self>,
        req: AppendRequest,
    ) -> impl Future<Output = Result<Vec<Appended>>> + Send + use<> {
        assert_distinct(&req.partitions);
        let (reply, answer) = oneshot::channel();
        let queued = self
            .appender
            .get_or_init(|| start(Arc::downgrade(self)))
            .send(Job { req, reply });
        // Held until the answer: the appender works on a store someone keeps open.
        let store = self.clone();
        async move {
            queued.map_err(|_| Error::AppenderStopped)?;
            let answer = answer.await.map_err(|_| Error::AppenderStopped)?;
            drop(store);
            answer
        }
    }

    /// One round of the appender: stages queued appends in order until the group is full
    /// or a lock is contended, writes the group, then answers its `buffered` appends and
    /// passes its `sync` ones to the syncer. Returns the answers to send; the caller sends
    /// them once it has let go of the store, so that whoever holds the last answer also
    /// holds the last reference to the store.
    fn append_group(&self, queue: &mut VecDeque<Job>, syncer: &mpsc::Sender<Written>) -> Answers {
        let mut group = Group::new();
        let mut staged: Vec<(Done, Job)> = Vec::new();
        let mut answers = Vec::new();
        while let Some(job) = queue.front() {
            if group.bytes >= MAX_GROUP_BYTES {
                break;
            }
            match group.lock(self, &job.req.partitions) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    let job = queue.pop_front().expect("front");
                    answers.push((job.reply, Err(e)));
                    continue;
                }
            }
            let mut job = queue.pop_front().expect("front");
            let req = &mut job.req;
            match group.add(self, &req.partitions, &req.checks, &mut *req.build) {
                Ok(done) => staged.push((done, job)),
                Err(e) => answers.push((job.reply, Err(e))),
            }
        }
        let seq = match group.write(self) {
            Ok(seq) => seq,
            Err(e) => {
                for (_, job) in staged {
                    answers.push((job.reply, Err(e.clone().into())));
                }
                return answers;
            }
        };
        let mut sync = Vec::new();
        let mut published = false;
        for (done, job) in staged {
            if job.req.durability == Durability::Sync {
                sync.push((done, job.reply));
            } else {
                answers.push((job.reply, Ok(acknowledge(done))));
                published = true;
            }
        }
        if published {
            self.notify_appended();
        }
        if !sync.is_empty()
            && let Err(mpsc::SendError(w)) = syncer.send(Written { seq, jobs: sync })
        {
            // The syncer is gone (it panicked): fsync here rather than not at all.
            answers.extend(self.sync_group(vec![w]));
        }
        answers
    }

    /// The syncer's round: one fsync for every group written so far, then the answers.
    fn sync_group(&self, written: Vec<Written>) -> Answers {
        let seq = written.iter().map(|w| w.seq).max().unwrap_or(0);
        let jobs = written.into_iter().flat_map(|w| w.jobs);
        match self.sync_through(seq) {
            Ok(()) => {
                let answers = jobs
                    .map(|(done, reply)| (reply, Ok(acknowledge(done))))
                    .collect();
                self.notify_appended();
                answers
            }
            Err(e) => jobs.map(|(_, reply)| (reply, Err(e.again()))).collect(),
        }
    }
}

/// Blocking appends for unit tests: the appender's code, as a group of one on the caller's
/// thread. The server, tools and benches append with [`Store::submit`].
#[cfg(test)]
impl Store {
    /// Appends one batch to each of `partitions` (distinct ids) atomically, on the calling
    /// thread. `build(i, base_offset)` makes the batch for `partitions[i]`.
    pub(crate) fn append(
        &self,
        durability: Durability,
        partitions: &[PartitionId],
        build: impl FnMut(usize, u64) -> NewBatch,
    ) -> Result<Vec<Appended>> {
        self.append_checked(durability, partitions, &[], build)
    }

    /// [`Store::append`] with conditions per partition (`checks[i]` for `partitions[i]`;
    /// missing entries check nothing), under the rules of [`Store::submit`].
    pub(crate) fn append_checked(
        &self,
        durability: Durability,
        partitions: &[PartitionId],
        checks: &[AppendCheck],
        mut build: impl FnMut(usize, u64) -> NewBatch,
    ) -> Result<Vec<Appended>> {
        assert_distinct(partitions);
        let mut group = Group::new();
        group.lock(self, partitions)?;
        let done = group.add(self, partitions, checks, &mut build)?;
        let seq = group.write(self)?;
        if durability == Durability::Sync {
            self.sync_through(seq)?;
        }
        let appended = acknowledge(done);
        self.notify_appended();
        Ok(appended)
    }
}

/// An append names each of its partitions once (a caller's bug otherwise, caught on the
/// caller's thread rather than the appender's).
fn assert_distinct(partitions: &[PartitionId]) {
    assert!(!partitions.is_empty(), "an append writes a partition");
    let mut ids = partitions.to_vec();
    ids.sort_unstable();
    assert!(ids.windows(2).all(|w| w[0] != w[1]), "distinct partitions");
}

/// Answers to send, each to its waiting [`Store::submit`].
type Answers = Vec<(Reply, Result<Vec<Appended>>)>;

/// Publishes an append's high-water marks and returns its answer.
fn acknowledge(done: Done) -> Vec<Appended> {
    for (p, end) in &done.ends {
        publish_hwm(p, *end);
    }
    done.appended
}

/// Runs `round` on the store if it is still open, then sends the answers (after letting
/// go of the store: see [`Store::append_group`]). False once the store is gone.
fn run_round(store: &Weak<Store>, round: impl FnOnce(&Store) -> Answers) -> bool {
    let Some(strong) = store.upgrade() else {
        return false;
    };
    // A panic would be a bug; it fails the round's appends (their answers are dropped,
    // which their callers see as `AppenderStopped`), not every append after it.
    let answers = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| round(&strong)));
    drop(strong);
    match answers {
        Ok(answers) => {
            for (reply, answer) in answers {
                let _ = reply.send(answer);
            }
        }
        Err(_) => tracing::error!("the appender panicked; the appends of its round failed"),
    }
    true
}

/// Starts the appender and syncer threads. They hold the store weakly, so they stop once it
/// is dropped (its sender with it); each round upgrades it for as long as the round runs.
fn start(store: Weak<Store>) -> mpsc::Sender<Job> {
    let (jobs, queued) = mpsc::channel::<Job>();
    let (written, to_sync) = mpsc::channel::<Written>();
    let s = store.clone();
    std::thread::Builder::new()
        .name("tributary-sync".into())
        .spawn(move || {
            while let Ok(first) = to_sync.recv() {
                let mut round = vec![first];
                round.extend(to_sync.try_iter());
                if !run_round(&s, |store| store.sync_group(round)) {
                    return;
                }
            }
        })
        .expect("spawning the syncer thread");
    std::thread::Builder::new()
        .name("tributary-append".into())
        .spawn(move || {
            let mut queue = VecDeque::new();
            loop {
                if queue.is_empty() {
                    match queued.recv() {
                        Ok(job) => queue.push_back(job),
                        Err(_) => return,
                    }
                }
                queue.extend(queued.try_iter());
                if !run_round(&store, |s| s.append_group(&mut queue, &written)) {
                    return;
                }
            }
        })
        .expect("spawning the appender thread");
    jobs
}
