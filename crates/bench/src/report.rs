//! A run's figures: a table for people (`Display`) and one JSON object for scripts.

use std::fmt;

use hdrhistogram::Histogram;
use humantime::format_duration;
use serde_json::{Value, json};

use crate::load::{Figures, Measured};
use crate::{BenchArgs, Workload};

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Latency {
    /// Samples: batches (produce), fetches (consume) or records (e2e).
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    fn from_micros(h: &Histogram<u64>) -> Latency {
        let ms = |us: u64| us as f64 / 1e3;
        Latency {
            count: h.len(),
            mean_ms: h.mean() / 1e3,
            p50_ms: ms(h.value_at_quantile(0.50)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "count": self.count,
            "mean": round3(self.mean_ms),
            "p50": round3(self.p50_ms),
            "p99": round3(self.p99_ms),
            "p99_9": round3(self.p999_ms),
            "max": round3(self.max_ms),
        })
    }
}

/// Records and bytes over a time, and the latency of what was measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Throughput {
    pub records: u64,
    /// Bytes of record values.
    pub bytes: u64,
    pub seconds: f64,
    pub latency: Latency,
}

impl Throughput {
    fn new(m: &Measured) -> Throughput {
        Throughput {
            records: m.records,
            bytes: m.bytes,
            seconds: m.seconds,
            latency: Latency::from_micros(&m.latency),
        }
    }

    pub fn records_per_sec(&self) -> f64 {
        self.records as f64 / self.seconds.max(1e-9)
    }

    /// 10^6 bytes of values per second.
    pub fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.seconds.max(1e-9)
    }

    fn to_json(&self, latency_key: &str) -> Value {
        json!({
            "records": self.records,
            "bytes": self.bytes,
            "seconds": round3(self.seconds),
            "records_per_sec": self.records_per_sec().round(),
            "mb_per_sec": round3(self.mb_per_sec()),
            latency_key: self.latency.to_json(),
        })
    }
}

/// The result of one `tributary bench` run.
#[derive(Debug, Clone)]
pub struct Report {
    pub workload: Workload,
    /// `tributary`, `nats` or `redis`.
    pub system: &'static str,
    /// `embedded` or `server` for Tributary; the peer's URL otherwise.
    pub target: String,
    params: Value,
    summary: String,
    /// Acknowledged produce throughput and produce-ack latency per batch (for `consume`,
    /// the fill).
    pub produce: Throughput,
    /// `consume`: read throughput and latency per fetch. `e2e`: delivered throughput and
    /// produce-to-delivery latency per record.
    pub consume: Option<Throughput>,
    /// Records acknowledged and read in the whole run (warmup and drain included).
    pub produced: u64,
    pub consumed: u64,
}

impl Report {
    pub(crate) fn new(
        args: &BenchArgs,
        system: &'static str,
        target: String,
        f: Figures,
    ) -> Report {
        Report {
            workload: args.workload,
            summary: summary(args, system, &target),
            system,
            target,
            params: args.to_json(),
            produce: Throughput::new(&f.produce),
            consume: f.consume.as_ref().map(Throughput::new),
            produced: f.produced,
            consumed: f.consumed,
        }
    }

    /// One JSON object with the parameters and every figure (latencies in ms).
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "workload": self.workload.name(),
            "system": self.system,
            "target": self.target,
            "params": self.params,
            "produce": self.produce.to_json("ack_latency_ms"),
            "produced": self.produced,
            "consumed": self.consumed,
        });
        match (self.workload, &self.consume) {
            (Workload::Consume, Some(c)) => v["consume"] = c.to_json("fetch_latency_ms"),
            (Workload::E2e, Some(c)) => v["e2e"] = c.to_json("latency_ms"),
            _ => {}
        }
        v
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.summary)?;
        let mut rows = vec![row(
            if self.workload == Workload::Consume {
                "produce (fill)"
            } else {
                "produce"
            },
            &self.produce,
            "ack, per batch",
        )];
        match (self.workload, &self.consume) {
            (Workload::Consume, Some(c)) => rows.push(row("consume", c, "fetch, per request")),
            (Workload::E2e, Some(c)) => rows.push(row("e2e", c, "produce to delivery, per record")),
            _ => {}
        }
        let header = [
            "",
            "records/s",
            "MB/s",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms",
            "latency of",
        ];
        let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.len());
            }
        }
        let mut line = |cells: Vec<&str>| {
            let mut out = String::new();
            for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
                match i {
                    0 => out.push_str(&format!("{c:<w$}")),
                    7 => out.push_str(&format!("  {c}")),
                    _ => out.push_str(&format!("  {c:>w$}")),
                }
            }
            writeln!(f, "{}", out.trim_end())
        };
        line(header.to_vec())?;
        for r in &rows {
            line(r.iter().map(String::as_str).collect())?;
        }
        write!(f, "records: {} produced", group(self.produced))?;
        if self.workload != Workload::Produce {
            write!(f, ", {} consumed", group(self.consumed))?;
        }
        writeln!(f)
    }
}

fn row(name: &str, t: &Throughput, latency_of: &str) -> Vec<String> {
    let l = &t.latency;
    vec![
        name.into(),
        group(t.records_per_sec().round() as u64),
        format!("{:.1}", t.mb_per_sec()),
        format!("{:.3}", l.p50_ms),
        format!("{:.3}", l.p99_ms),
        format!("{:.3}", l.p999_ms),
        format!("{:.3}", l.max_ms),
        latency_of.into(),
    ]
}

fn summary(a: &BenchArgs, system: &str, target: &str) -> String {
    let plural = |n: u32, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let mut s = format!(
        "bench {} on {system} ({target}): {}",
        a.workload.name(),
        plural(a.producers, "producer"),
    );
    if a.workload != Workload::Produce {
        s += &format!(", {}", plural(a.consumers, "consumer"));
    }
    s += &format!(
        ", {} x {}, {} B records, batches of {}",
        plural(a.topics, "topic"),
        plural(a.partitions, "partition"),
        a.record_size,
        a.batch_records,
    );
    if a.rate.is_some() {
        s += &format!(" (linger {})", format_duration(a.linger));
    }
    s += &format!(
        ", {}, {}, {} in flight, rate {}",
        if a.keyed { "keyed" } else { "unkeyed" },
        a.durability.name(),
        a.in_flight,
        a.rate
            .map_or_else(|| "unlimited".into(), |r| format!("{}/s", group(r))),
    );
    if a.workload == Workload::Consume {
        s += &format!(
            ", filled for {}, then read back{}",
            format_duration(a.duration),
            if a.cold { " from disk (--cold)" } else { "" }
        );
    } else {
        s += &format!(
            ", {} after {} warmup",
            format_duration(a.duration),
            format_duration(a.warmup)
        );
    }
    s
}

/// `1234567` as `1,234,567`.
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn round3(x: f64) -> f64 {
    (x * 1e3).round() / 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1_000), "1,000");
        assert_eq!(group(2_040_000), "2,040,000");
    }

    #[test]
    fn percentiles_come_from_the_histogram() {
        let mut h = crate::load::histogram();
        for us in 1..=1000 {
            h.record(us).unwrap();
        }
        let l = Latency::from_micros(&h);
        assert_eq!(l.count, 1000);
        assert!((l.p50_ms - 0.5).abs() < 0.01, "{l:?}");
        assert!((l.p99_ms - 0.99).abs() < 0.01, "{l:?}");
        assert!((l.max_ms - 1.0).abs() < 0.01, "{l:?}");
    }
}
