//! A link's live status: its state, last error and contact, what it applied, skipped and
//! lost, and per partition how far behind the upstream it is. Only the link's pull loop
//! changes it, through the methods below, each one state change; the times they take come
//! from the namespace's injected clock. Nothing here is stored: positions are (with the
//! records), and a restarted server starts each status afresh.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use uuid::Uuid;

use crate::protocol::PullChunk;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LinkState {
    Paused,
    /// Connecting, or waiting to retry after an error (then `last_error` says which).
    #[default]
    Connecting,
    Running,
}

/// A topic's partition, by name and number.
pub type PartitionKey = (String, u32);

/// A link's live figures (a copy; the live one is behind [`Statuses`]).
#[derive(Debug, Clone, Default)]
pub struct LinkStatus {
    state: LinkState,
    last_error: Option<(i64, String)>,
    last_contact_ms: i64,
    records_applied: u64,
    records_skipped: u64,
    lost_records: u64,
    partitions: BTreeMap<PartitionKey, PartitionLag>,
}

/// One partition of a link, as last seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionLag {
    /// The next upstream offset the link reads.
    position: u64,
    upstream_high_watermark: u64,
    upstream_log_start: u64,
    upstream_bytes: u64,
    upstream_last_append_ms: i64,
    /// Append time of the last batch read from the upstream.
    read_append_ms: i64,
    lost_records: u64,
}

impl LinkStatus {
    pub fn state(&self) -> LinkState {
        self.state
    }

    /// When (ms since the epoch) and why the last pull failed; cleared by the next answer.
    pub fn last_error(&self) -> Option<(i64, &str)> {
        self.last_error.as_ref().map(|(t, e)| (*t, e.as_str()))
    }

    /// When the upstream last answered (0: not since the server started).
    pub fn last_contact_ms(&self) -> i64 {
        self.last_contact_ms
    }

    /// Records appended since the server started.
    pub fn records_applied(&self) -> u64 {
        self.records_applied
    }

    /// Records pulled that were already here (they came by another path first).
    pub fn records_skipped(&self) -> u64 {
        self.records_skipped
    }

    /// Records removed upstream before the link copied them.
    pub fn lost_records(&self) -> u64 {
        self.lost_records
    }

    pub fn partitions(&self) -> &BTreeMap<PartitionKey, PartitionLag> {
        &self.partitions
    }

    pub fn lag_records(&self) -> u64 {
        self.partitions.values().map(|p| p.lag_records()).sum()
    }

    pub fn lag_bytes(&self) -> u64 {
        self.partitions.values().map(|p| p.lag_bytes()).sum()
    }

    /// The most any partition is behind, in append time, as last seen.
    pub fn lag_ms(&self) -> i64 {
        self.partitions
            .values()
            .map(|p| p.lag_ms())
            .max()
            .unwrap_or(0)
    }

    /// The lag in time at `now_ms`, for alerting: [`LinkStatus::lag_ms`] while the link
    /// runs; while it cannot reach its upstream (connecting, retrying, paused) that plus the
    /// time since the last contact, so that it grows during an outage, when nothing new can
    /// be seen, and falls back at the next answer. Before any contact since the start there
    /// is no figure: `lag_ms`.
    pub fn lag_ms_at(&self, now_ms: i64) -> i64 {
        let seen = self.lag_ms();
        match self.state {
            LinkState::Running => seen,
            _ if self.last_contact_ms > 0 => seen + (now_ms - self.last_contact_ms).max(0),
            _ => seen,
        }
    }

    // ---- state changes -------------------------------------------------------------------

    /// The link is paused: no loop pulls it.
    pub(crate) fn paused(&mut self) {
        self.state = LinkState::Paused;
    }

    /// A pull is being set up (the last error, if any, stays until an answer comes).
    pub(crate) fn connecting(&mut self) {
        self.state = LinkState::Connecting;
    }

    /// The upstream answered.
    pub(crate) fn running(&mut self) {
        self.state = LinkState::Running;
        self.last_error = None;
    }

    /// A pull failed at `now_ms`; the loop retries.
    pub(crate) fn failed(&mut self, now_ms: i64, error: String) {
        self.state = LinkState::Connecting;
        self.last_error = Some((now_ms, error));
    }

    /// A response was applied at `now_ms`.
    pub(crate) fn contacted(&mut self, now_ms: i64) {
        self.last_contact_ms = now_ms;
    }

    /// The link's stored positions, as a pull starts from them.
    pub(crate) fn positions(&mut self, positions: impl IntoIterator<Item = (PartitionKey, u64)>) {
        for (key, next) in positions {
            self.partitions.entry(key).or_default().position = next;
        }
    }

    /// The next upstream offset of a partition, when the link knows it.
    pub(crate) fn position(&self, key: &PartitionKey) -> Option<u64> {
        self.partitions.get(key).map(|p| p.position)
    }

    /// `n` records of a partition were removed upstream before the link copied them.
    pub(crate) fn lost(&mut self, key: PartitionKey, n: u64) {
        self.lost_records += n;
        self.partitions.entry(key).or_default().lost_records += n;
    }

    /// A pulled chunk of a partition was applied: `appended` records appended and
    /// `skipped` already here. `read_append_ms` is the append time of its last batch.
    pub(crate) fn applied(
        &mut self,
        chunk: &PullChunk,
        appended: u64,
        skipped: u64,
        read_append_ms: Option<i64>,
    ) {
        self.records_applied += appended;
        self.records_skipped += skipped;
        let p = self
            .partitions
            .entry((chunk.topic.clone(), chunk.partition))
            .or_default();
        // Back below its position: the upstream lost a tail and sends its log again
        // (design §6.3), so its end is lower too.
        let back = chunk.next_offset < p.position;
        p.position = chunk.next_offset;
        if back {
            p.upstream_high_watermark = chunk.high_watermark;
        } else if chunk.high_watermark > 0 || chunk.next_offset == 0 {
            p.upstream_high_watermark = chunk.high_watermark.max(p.upstream_high_watermark);
        }
        p.upstream_log_start = chunk.log_start;
        if chunk.stored_bytes > 0 || chunk.last_append_ms > 0 {
            p.upstream_bytes = chunk.stored_bytes;
            p.upstream_last_append_ms = chunk.last_append_ms;
        }
        if let Some(ms) = read_append_ms {
            p.read_append_ms = ms;
        }
    }
}

impl PartitionLag {
    /// The next upstream offset the link reads.
    pub fn position(&self) -> u64 {
        self.position
    }

    pub fn upstream_high_watermark(&self) -> u64 {
        self.upstream_high_watermark
    }

    pub fn upstream_log_start(&self) -> u64 {
        self.upstream_log_start
    }

    pub fn lost_records(&self) -> u64 {
        self.lost_records
    }

    pub fn lag_records(&self) -> u64 {
        self.upstream_high_watermark.saturating_sub(self.position)
    }

    /// Estimated from the upstream's average stored bytes per record.
    pub fn lag_bytes(&self) -> u64 {
        let stored = self
            .upstream_high_watermark
            .saturating_sub(self.upstream_log_start);
        match stored {
            0 => 0,
            n => {
                (u128::from(self.lag_records()) * u128::from(self.upstream_bytes) / u128::from(n))
                    as u64
            }
        }
    }

    /// The upstream's newest append time minus that of the last batch read (0 when caught
    /// up).
    pub fn lag_ms(&self) -> i64 {
        if self.lag_records() == 0 {
            return 0;
        }
        (self.upstream_last_append_ms - self.read_append_ms).max(0)
    }
}

/// One link's live status, shared by its pull loop (which changes it) and the readers.
#[derive(Debug, Default)]
pub(crate) struct LiveStatus(Mutex<LinkStatus>);

impl LiveStatus {
    /// A copy, as of now.
    pub(crate) fn get(&self) -> LinkStatus {
        self.0.lock().clone()
    }

    /// Makes one change (one of `LinkStatus`'s state changes) under the lock.
    pub(crate) fn change<T>(&self, f: impl FnOnce(&mut LinkStatus) -> T) -> T {
        f(&mut self.0.lock())
    }
}

/// The live status of every link, by link id.
#[derive(Debug, Default)]
pub(crate) struct Statuses(Mutex<BTreeMap<Uuid, Arc<LiveStatus>>>);

impl Statuses {
    /// The live status of a link, made when first asked for.
    pub(crate) fn of(&self, id: Uuid) -> Arc<LiveStatus> {
        self.0.lock().entry(id).or_default().clone()
    }

    /// A copy of a link's status (the default when no loop ever ran it).
    pub(crate) fn get(&self, id: Uuid) -> LinkStatus {
        let live = self.0.lock().get(&id).cloned();
        live.map(|s| s.get()).unwrap_or_default()
    }

    /// Forgets the statuses of links that are gone.
    pub(crate) fn retain(&self, mut keep: impl FnMut(&Uuid) -> bool) {
        self.0.lock().retain(|id, _| keep(id));
    }
}

#[cfg(test)]
mod tests {
    use tributary_volume::{Clock, ManualClock};

    use super::*;

    fn chunk(partition: u32, next_offset: u64, high_watermark: u64) -> PullChunk {
        PullChunk {
            topic: "t".into(),
            partition,
            batches: Vec::new(),
            next_offset,
            high_watermark,
            log_start: 0,
            stored_bytes: high_watermark * 100,
            last_append_ms: 0,
        }
    }

    #[test]
    fn lag_is_estimated_from_upstream_figures() {
        let p = PartitionLag {
            position: 60,
            upstream_high_watermark: 100,
            upstream_log_start: 0,
            upstream_bytes: 10_000,
            upstream_last_append_ms: 5_000,
            read_append_ms: 3_000,
            lost_records: 0,
        };
        assert_eq!(
            (p.lag_records(), p.lag_bytes(), p.lag_ms()),
            (40, 4_000, 2_000)
        );
        let caught_up = PartitionLag { position: 100, ..p };
        assert_eq!((caught_up.lag_records(), caught_up.lag_ms()), (0, 0));
    }

    #[test]
    fn a_link_goes_from_connecting_to_running_and_back_on_failure() {
        let clock = ManualClock::new(1_000);
        let mut st = LinkStatus::default();
        assert_eq!((st.state(), st.last_error()), (LinkState::Connecting, None));

        st.running();
        assert_eq!(st.state(), LinkState::Running);

        clock.advance_ms(500);
        st.failed(clock.now_ms(), "cut".into());
        assert_eq!(st.state(), LinkState::Connecting);
        assert_eq!(st.last_error(), Some((1_500, "cut")));

        // Retrying keeps the error on show until the upstream answers again.
        st.connecting();
        assert_eq!(st.last_error(), Some((1_500, "cut")));
        clock.advance_ms(100);
        st.running();
        st.contacted(clock.now_ms());
        assert_eq!(
            (st.state(), st.last_error(), st.last_contact_ms()),
            (LinkState::Running, None, 1_600)
        );

        st.paused();
        assert_eq!(st.state(), LinkState::Paused);
    }

    #[test]
    fn lag_in_time_grows_while_the_upstream_is_out_of_reach() {
        let clock = ManualClock::new(10_000);
        let mut st = LinkStatus::default();
        // No contact yet: nothing to grow from.
        clock.advance_ms(1_000);
        assert_eq!(st.lag_ms_at(clock.now_ms()), 0);

        // Running, 40 records and 2s behind.
        st.running();
        st.contacted(clock.now_ms());
        let mut c = chunk(0, 60, 100);
        c.last_append_ms = clock.now_ms();
        st.applied(&c, 60, 0, Some(clock.now_ms() - 2_000));
        clock.advance_ms(5_000);
        assert_eq!(st.lag_ms_at(clock.now_ms()), 2_000, "running: as seen");

        // Cut: the lag as last seen plus the time since the last answer, rising with the clock.
        st.failed(clock.now_ms(), "cut".into());
        assert_eq!(st.lag_ms_at(clock.now_ms()), 2_000 + 5_000);
        clock.advance_ms(3_000);
        st.connecting();
        assert_eq!(st.lag_ms_at(clock.now_ms()), 2_000 + 8_000);
        assert_eq!(
            (st.lag_records(), st.lag_bytes()),
            (40, 4_000),
            "as last seen"
        );
        st.paused();
        clock.advance_ms(1_000);
        assert_eq!(st.lag_ms_at(clock.now_ms()), 2_000 + 9_000);

        // Back: the next answer says where it stands.
        st.running();
        st.contacted(clock.now_ms());
        st.applied(&chunk(0, 100, 100), 40, 0, Some(clock.now_ms()));
        assert_eq!(st.lag_ms_at(clock.now_ms()), 0);
    }

    #[test]
    fn applying_moves_positions_counts_and_lag() {
        let clock = ManualClock::new(10_000);
        let mut st = LinkStatus::default();
        st.positions([(("t".into(), 0), 5), (("t".into(), 1), 0)]);
        assert_eq!(st.position(&("t".into(), 0)), Some(5));
        assert_eq!(st.position(&("t".into(), 2)), None);

        // The upstream holds 100 records in partition 0, written until now; the link read
        // up to 60, whose last batch was appended two seconds ago.
        let mut c = chunk(0, 60, 100);
        c.last_append_ms = clock.now_ms();
        st.applied(&c, 50, 5, Some(clock.now_ms() - 2_000));
        assert_eq!((st.records_applied(), st.records_skipped()), (50, 5));
        let p = st.partitions()[&("t".into(), 0)];
        assert_eq!(
            (p.position(), p.upstream_high_watermark(), p.lag_records()),
            (60, 100, 40)
        );
        assert_eq!((p.lag_bytes(), p.lag_ms()), (4_000, 2_000));
        assert_eq!((st.lag_records(), st.lag_ms()), (40, 2_000));

        // An idle answer (no figures) leaves the upstream's last figures as they were.
        clock.advance_ms(5_000);
        st.applied(&chunk(0, 60, 0), 0, 0, None);
        assert_eq!(st.partitions()[&("t".into(), 0)], p);

        // Caught up: no lag, whatever the append times say.
        st.applied(&chunk(0, 100, 100), 40, 0, Some(clock.now_ms() - 7_000));
        assert_eq!((st.lag_records(), st.lag_bytes(), st.lag_ms()), (0, 0, 0));
        assert_eq!(st.records_applied(), 90);
    }

    #[test]
    fn lost_records_add_up_per_partition_and_link() {
        let mut st = LinkStatus::default();
        st.lost(("t".into(), 0), 7);
        st.lost(("t".into(), 1), 3);
        st.lost(("t".into(), 0), 1);
        assert_eq!(st.lost_records(), 11);
        assert_eq!(st.partitions()[&("t".into(), 0)].lost_records(), 8);
    }

    #[test]
    fn statuses_are_made_on_demand_and_forgotten_with_their_link() {
        let statuses = Statuses::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        statuses.of(a).change(|s| s.running());
        assert_eq!(statuses.get(a).state(), LinkState::Running);
        assert_eq!(statuses.get(b).state(), LinkState::Connecting);
        statuses.retain(|id| *id == b);
        assert_eq!(statuses.get(a).state(), LinkState::Connecting);
    }
}
