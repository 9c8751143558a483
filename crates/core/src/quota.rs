//! Per-principal rate quotas, so that one tenant cannot starve another: requests per
//! second, produced bytes per second (request batches in) and fetched bytes per second
//! (record batches out). One [`Quotas`] is built by the server and shared by both doors,
//! so a user's limits cover its gRPC and its Kafka traffic together.
//!
//! Each principal has a token bucket per limit, filled at the limit's rate up to `burst`
//! worth of it. A request takes one token. Byte buckets may go into debt: a call is let in
//! while its bucket is not in debt and is then charged its whole size, so a batch larger
//! than the burst still passes, and the principal waits until the debt is paid (Kafka's
//! quotas work the same way).
//!
//! The doors differ in what a principal over quota gets. gRPC refuses the call
//! ([`Quotas::admit_request`] and the other `admit_*` return a [`Refusal`], which the API
//! answers `RESOURCE_EXHAUSTED` with the time to wait) and delays a `Subscribe` session's
//! pushes. Kafka serves the request, as its brokers do, and charges it
//! ([`Quotas::charge_request`], [`Quotas::charge_produce`], [`Quotas::charge_fetch`]): the
//! debt is the response's `throttle_time_ms`, for which the connection is muted.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// The counter each door increments for a call refused, a response throttled or a
/// subscription push delayed, labelled `quota` with [`QuotaKind::label`].
pub const THROTTLED_METRIC: &str = "tributary_quota_throttled_total";

/// Limits for one principal; 0 means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaLimits {
    pub requests_per_sec: u64,
    pub produce_bytes_per_sec: u64,
    pub fetch_bytes_per_sec: u64,
}

impl QuotaLimits {
    fn unlimited(&self) -> bool {
        *self == QuotaLimits::default()
    }
}

/// The server's quotas: one set of limits for every principal, and overrides by user name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaConfig {
    pub default: QuotaLimits,
    /// How much unused allowance a principal may save up, in time at its rate.
    pub burst: Duration,
    pub users: BTreeMap<String, QuotaLimits>,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        Self {
            default: QuotaLimits::default(),
            burst: Duration::from_secs(1),
            users: BTreeMap::new(),
        }
    }
}

/// Which limit refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaKind {
    Requests,
    ProduceBytes,
    FetchBytes,
}

impl QuotaKind {
    /// The unit in an error message: "100 requests per second".
    pub fn unit(self) -> &'static str {
        match self {
            QuotaKind::Requests => "requests",
            QuotaKind::ProduceBytes => "produced bytes",
            QuotaKind::FetchBytes => "fetched bytes",
        }
    }

    /// The metric label: `requests`, `produce_bytes`, `fetch_bytes`.
    pub fn label(self) -> &'static str {
        match self {
            QuotaKind::Requests => "requests",
            QuotaKind::ProduceBytes => "produce_bytes",
            QuotaKind::FetchBytes => "fetch_bytes",
        }
    }
}

/// Why a call was refused: the limit it is over, and how long until it would be let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub kind: QuotaKind,
    /// The limit, per second.
    pub limit: u64,
    pub retry_after: Duration,
}

/// A token bucket whose balance may go below zero (debt).
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(rate: u64, burst: Duration, now: Instant) -> Bucket {
        Bucket {
            tokens: capacity(rate, burst),
            at: now,
        }
    }

    fn refill(&mut self, rate: u64, burst: Duration, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate as f64).min(capacity(rate, burst));
        self.at = now;
    }

    /// Takes `cost` tokens if at least `need` are there; else the time until they are.
    fn take(
        &mut self,
        rate: u64,
        burst: Duration,
        need: f64,
        cost: f64,
        now: Instant,
    ) -> Result<(), Duration> {
        self.refill(rate, burst, now);
        if self.tokens >= need {
            self.tokens -= cost;
            Ok(())
        } else {
            Err(wait(need - self.tokens, rate))
        }
    }

    /// Charges `cost` unconditionally; the time until the bucket is out of debt, if it is in.
    fn charge(&mut self, rate: u64, burst: Duration, cost: f64, now: Instant) -> Option<Duration> {
        self.refill(rate, burst, now);
        self.tokens -= cost;
        (self.tokens < 0.0).then(|| wait(-self.tokens, rate))
    }

    fn is_full(&self, rate: u64, burst: Duration, now: Instant) -> bool {
        let mut b = *self;
        b.refill(rate, burst, now);
        b.tokens >= capacity(rate, burst)
    }
}

/// A bucket holds `burst` worth of its rate, and at least one request or byte.
fn capacity(rate: u64, burst: Duration) -> f64 {
    (rate as f64 * burst.as_secs_f64()).max(1.0)
}

/// Time to earn `tokens` at `rate` per second, rounded up to the millisecond.
fn wait(tokens: f64, rate: u64) -> Duration {
    let ms = (tokens * 1000.0 / rate as f64).ceil().max(1.0);
    Duration::from_millis(ms as u64)
}

#[derive(Debug)]
struct Buckets {
    limits: QuotaLimits,
    requests: Bucket,
    produce: Bucket,
    fetch: Bucket,
}

/// Principals tracked before idle ones (full buckets, the same as new ones) are dropped.
const PRUNE_AT: usize = 10_000;

/// The live buckets of every principal that has called.
#[derive(Debug)]
pub struct Quotas {
    config: QuotaConfig,
    enabled: bool,
    principals: Mutex<HashMap<String, Buckets>>,
}

impl Quotas {
    pub fn new(config: QuotaConfig) -> Quotas {
        let enabled = !config.default.unlimited() || config.users.values().any(|l| !l.unlimited());
        Quotas {
            config,
            enabled,
            principals: Mutex::new(HashMap::new()),
        }
    }

    fn limits(&self, principal: &str) -> QuotaLimits {
        self.config
            .users
            .get(principal)
            .copied()
            .unwrap_or(self.config.default)
    }

    /// Runs `f` on the principal's buckets, unless none of its limits is set.
    fn with<T>(
        &self,
        principal: &str,
        now: Instant,
        f: impl FnOnce(&mut Buckets, Duration) -> Option<T>,
    ) -> Option<T> {
        if !self.enabled {
            return None;
        }
        let limits = self.limits(principal);
        if limits.unlimited() {
            return None;
        }
        let burst = self.config.burst;
        let mut map = self.principals.lock();
        if !map.contains_key(principal) && map.len() >= PRUNE_AT {
            map.retain(|_, b| {
                !(b.requests.is_full(b.limits.requests_per_sec, burst, now)
                    && b.produce
                        .is_full(b.limits.produce_bytes_per_sec, burst, now)
                    && b.fetch.is_full(b.limits.fetch_bytes_per_sec, burst, now))
            });
        }
        let b = map.entry(principal.to_owned()).or_insert_with(|| Buckets {
            limits,
            requests: Bucket::full(limits.requests_per_sec, burst, now),
            produce: Bucket::full(limits.produce_bytes_per_sec, burst, now),
            fetch: Bucket::full(limits.fetch_bytes_per_sec, burst, now),
        });
        f(b, burst)
    }

    /// One request by `principal`: refused while it is over its request rate.
    pub fn admit_request(&self, principal: &str) -> Result<(), Refusal> {
        self.admit_request_at(principal, Instant::now())
    }

    fn admit_request_at(&self, principal: &str, now: Instant) -> Result<(), Refusal> {
        self.refusal(principal, QuotaKind::Requests, now, |b, burst| {
            let rate = b.limits.requests_per_sec;
            (rate > 0)
                .then(|| b.requests.take(rate, burst, 1.0, 1.0, now).err())
                .flatten()
        })
    }

    /// A produce of `bytes`: refused while the principal's produce bytes are in debt,
    /// else charged.
    pub fn admit_produce(&self, principal: &str, bytes: u64) -> Result<(), Refusal> {
        self.admit_produce_at(principal, bytes, Instant::now())
    }

    fn admit_produce_at(&self, principal: &str, bytes: u64, now: Instant) -> Result<(), Refusal> {
        self.refusal(principal, QuotaKind::ProduceBytes, now, |b, burst| {
            let rate = b.limits.produce_bytes_per_sec;
            (rate > 0)
                .then(|| b.produce.take(rate, burst, 0.0, bytes as f64, now).err())
                .flatten()
        })
    }

    /// A fetch: refused while the principal's fetched bytes are in debt. The bytes are
    /// charged with [`Quotas::charge_fetch`] once known.
    pub fn admit_fetch(&self, principal: &str) -> Result<(), Refusal> {
        self.admit_fetch_at(principal, Instant::now())
    }

    fn admit_fetch_at(&self, principal: &str, now: Instant) -> Result<(), Refusal> {
        self.refusal(principal, QuotaKind::FetchBytes, now, |b, burst| {
            let rate = b.limits.fetch_bytes_per_sec;
            (rate > 0)
                .then(|| b.fetch.take(rate, burst, 0.0, 0.0, now).err())
                .flatten()
        })
    }

    /// Charges `bytes` fetched; how long the principal should now wait (its debt), if
    /// at all. `Subscribe` sessions sleep that long before their next push.
    pub fn charge_fetch(&self, principal: &str, bytes: u64) -> Option<Duration> {
        self.charge_fetch_at(principal, bytes, Instant::now())
    }

    fn charge_fetch_at(&self, principal: &str, bytes: u64, now: Instant) -> Option<Duration> {
        self.with(principal, now, |b, burst| {
            let rate = b.limits.fetch_bytes_per_sec;
            (rate > 0)
                .then(|| b.fetch.charge(rate, burst, bytes as f64, now))
                .flatten()
        })
    }

    /// One request served whatever the rate (Kafka's way): how long the principal should
    /// now wait, if its request bucket is short of a token.
    pub fn charge_request(&self, principal: &str) -> Option<Duration> {
        self.charge_request_at(principal, Instant::now())
    }

    fn charge_request_at(&self, principal: &str, now: Instant) -> Option<Duration> {
        self.with(principal, now, |b, burst| {
            let rate = b.limits.requests_per_sec;
            // The debt is paid when a whole token is back, as `admit_request` lets in.
            (rate > 0)
                .then(|| b.requests.charge(rate, burst, 1.0, now))
                .flatten()
        })
    }

    /// `bytes` produced whatever the rate (Kafka's way): how long the principal should
    /// now wait (its debt), if at all.
    pub fn charge_produce(&self, principal: &str, bytes: u64) -> Option<Duration> {
        self.charge_produce_at(principal, bytes, Instant::now())
    }

    fn charge_produce_at(&self, principal: &str, bytes: u64, now: Instant) -> Option<Duration> {
        self.with(principal, now, |b, burst| {
            let rate = b.limits.produce_bytes_per_sec;
            (rate > 0)
                .then(|| b.produce.charge(rate, burst, bytes as f64, now))
                .flatten()
        })
    }

    fn refusal(
        &self,
        principal: &str,
        kind: QuotaKind,
        now: Instant,
        f: impl FnOnce(&mut Buckets, Duration) -> Option<Duration>,
    ) -> Result<(), Refusal> {
        let mut limit = 0;
        let refused = self.with(principal, now, |b, burst| {
            limit = match kind {
                QuotaKind::Requests => b.limits.requests_per_sec,
                QuotaKind::ProduceBytes => b.limits.produce_bytes_per_sec,
                QuotaKind::FetchBytes => b.limits.fetch_bytes_per_sec,
            };
            f(b, burst)
        });
        match refused {
            None => Ok(()),
            Some(retry_after) => Err(Refusal {
                kind,
                limit,
                retry_after,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quotas(default: QuotaLimits) -> Quotas {
        Quotas::new(QuotaConfig {
            default,
            ..QuotaConfig::default()
        })
    }

    fn retry(r: Result<(), Refusal>) -> Duration {
        match r {
            Err(Refusal { retry_after, .. }) => retry_after,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn requests_are_let_in_at_the_rate_after_the_burst() {
        let q = quotas(QuotaLimits {
            requests_per_sec: 10,
            ..Default::default()
        });
        let t0 = Instant::now();
        for i in 0..10 {
            q.admit_request_at("a", t0)
                .unwrap_or_else(|e| panic!("{i}: {e:?}"));
        }
        assert_eq!(
            retry(q.admit_request_at("a", t0)),
            Duration::from_millis(100)
        );
        // Another principal has its own bucket.
        q.admit_request_at("b", t0).unwrap();
        let t1 = t0 + Duration::from_millis(250);
        q.admit_request_at("a", t1).unwrap();
        q.admit_request_at("a", t1).unwrap();
        assert_eq!(
            retry(q.admit_request_at("a", t1)),
            Duration::from_millis(50)
        );
        // Saved-up allowance never exceeds the burst.
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..10 {
            q.admit_request_at("a", t2).unwrap();
        }
        retry(q.admit_request_at("a", t2));
    }

    #[test]
    fn byte_debt_is_paid_before_the_next_call() {
        let q = quotas(QuotaLimits {
            produce_bytes_per_sec: 1000,
            fetch_bytes_per_sec: 1000,
            ..Default::default()
        });
        let t0 = Instant::now();
        // A batch far over the burst passes once, then the debt is paid off.
        q.admit_produce_at("a", 3000, t0).unwrap();
        assert_eq!(
            retry(q.admit_produce_at("a", 1, t0)),
            Duration::from_secs(2)
        );
        let t1 = t0 + Duration::from_secs(2);
        q.admit_produce_at("a", 10, t1).unwrap();

        q.admit_fetch_at("a", t0).unwrap();
        assert_eq!(q.charge_fetch_at("a", 500, t0), None);
        assert_eq!(
            q.charge_fetch_at("a", 1000, t0),
            Some(Duration::from_millis(500))
        );
        assert_eq!(retry(q.admit_fetch_at("a", t0)), Duration::from_millis(500));
        q.admit_fetch_at("a", t0 + Duration::from_millis(500))
            .unwrap();
        // Requests are not limited here.
        for _ in 0..1000 {
            q.admit_request_at("a", t0).unwrap();
        }
    }

    #[test]
    fn users_override_the_default() {
        let mut config = QuotaConfig {
            default: QuotaLimits {
                requests_per_sec: 1,
                ..Default::default()
            },
            ..QuotaConfig::default()
        };
        config.users.insert("ingest".into(), QuotaLimits::default());
        config.users.insert(
            "slow".into(),
            QuotaLimits {
                requests_per_sec: 2,
                ..Default::default()
            },
        );
        let q = Quotas::new(config);
        let t0 = Instant::now();
        for _ in 0..1000 {
            q.admit_request_at("ingest", t0).unwrap();
        }
        q.admit_request_at("slow", t0).unwrap();
        q.admit_request_at("slow", t0).unwrap();
        retry(q.admit_request_at("slow", t0));
        q.admit_request_at("other", t0).unwrap();
        assert_eq!(
            q.admit_request_at("other", t0),
            Err(Refusal {
                kind: QuotaKind::Requests,
                limit: 1,
                retry_after: Duration::from_secs(1),
            })
        );
    }

    #[test]
    fn charged_calls_are_served_and_owe_the_same_wait_as_a_refusal() {
        let q = quotas(QuotaLimits {
            requests_per_sec: 10,
            produce_bytes_per_sec: 1000,
            ..Default::default()
        });
        let t0 = Instant::now();
        for _ in 0..10 {
            assert_eq!(q.charge_request_at("a", t0), None);
        }
        // The eleventh is served, and owes what `admit_request` would have refused with.
        assert_eq!(
            q.charge_request_at("a", t0),
            Some(Duration::from_millis(100))
        );
        assert_eq!(
            retry(q.admit_request_at("a", t0)),
            Duration::from_millis(200)
        );
        // One budget for both ways of calling: a charged produce's debt refuses an admit.
        assert_eq!(
            q.charge_produce_at("a", 3000, t0),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry(q.admit_produce_at("a", 1, t0)),
            Duration::from_secs(2)
        );
        assert_eq!(
            q.charge_produce_at("a", 500, t0 + Duration::from_secs(2)),
            Some(Duration::from_millis(500))
        );
    }

    #[test]
    fn without_limits_nothing_is_tracked() {
        let q = Quotas::new(QuotaConfig::default());
        for _ in 0..10_000 {
            q.admit_request("a").unwrap();
            q.admit_produce("a", 1 << 30).unwrap();
            assert_eq!(q.charge_fetch("a", 1 << 30), None);
            assert_eq!(q.charge_request("a"), None);
            assert_eq!(q.charge_produce("a", 1 << 30), None);
        }
        assert!(q.principals.lock().is_empty());
    }

    #[test]
    fn idle_principals_are_forgotten_past_the_prune_size() {
        let q = quotas(QuotaLimits {
            requests_per_sec: 1000,
            ..Default::default()
        });
        let t0 = Instant::now();
        for i in 0..PRUNE_AT {
            q.admit_request_at(&format!("u{i}"), t0).unwrap();
        }
        let later = t0 + Duration::from_secs(5);
        q.admit_request_at("new", later).unwrap();
        assert_eq!(q.principals.lock().len(), 1);
    }
}
