//! Measures replication between two running clusters (see `bench/replication.sh`):
//!
//! 1. **Lag at a steady rate:** records are produced to the source at `--rate` for
//!    `--duration`, each carrying its send time; a reader on the destination notes when each
//!    one becomes readable there. Prints the produce-to-replica latency percentiles.
//! 2. **Catch-up after a cut:** the link is paused, `--backlog` records are produced, the
//!    link is resumed, and the time until the destination holds them all gives the
//!    catch-up throughput.
//!
//! ```text
//! replication-lag --source URL --source-token T --dest URL --dest-token T
//! ```

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use tributary_client::{Client, Record, record};
use tributary_proto::v1;

const STREAM: &str = "/replbench/s";
const TOPIC: &str = "/replbench/s:t";
const PARTITIONS: u32 = 4;

struct Args {
    source: String,
    source_token: String,
    dest: String,
    dest_token: String,
    rate: u64,
    duration: Duration,
    record_size: usize,
    backlog: u64,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        source: String::new(),
        source_token: String::new(),
        dest: String::new(),
        dest_token: String::new(),
        rate: 20_000,
        duration: Duration::from_secs(20),
        record_size: 100,
        backlog: 1_000_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--source" => a.source = value()?,
            "--source-token" => a.source_token = value()?,
            "--dest" => a.dest = value()?,
            "--dest-token" => a.dest_token = value()?,
            "--rate" => a.rate = value()?.parse()?,
            "--duration" => a.duration = Duration::from_secs(value()?.parse()?),
            "--record-size" => a.record_size = value()?.parse()?,
            "--backlog" => a.backlog = value()?.parse()?,
            other => bail!("unknown flag {other}"),
        }
    }
    if a.source.is_empty() || a.dest.is_empty() {
        bail!(
            "usage: replication-lag --source URL --source-token T --dest URL --dest-token T [--rate N] [--duration SECS] [--record-size BYTES] [--backlog N]"
        );
    }
    Ok(a)
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_micros() as u64
}

async fn setup(c: &Client, topic: bool) -> anyhow::Result<()> {
    let mut admin = c.admin();
    let _ = admin
        .create_volume(v1::CreateVolumeRequest {
            path: "/replbench".into(),
            ..Default::default()
        })
        .await;
    admin
        .create_stream(v1::CreateStreamRequest {
            path: STREAM.into(),
            attributes: Some(v1::StreamAttributes {
                ttl_ms: Some(0),
                durability: v1::Durability::Buffered as i32,
                ..Default::default()
            }),
        })
        .await
        .context("create the stream (delete /replbench first if it exists)")?;
    if topic {
        admin
            .create_topic(v1::CreateTopicRequest {
                path: TOPIC.into(),
                partitions: Some(PARTITIONS),
            })
            .await?;
    }
    Ok(())
}

async fn held(c: &Client) -> anyhow::Result<u64> {
    Ok(c.list_offsets(TOPIC, &[], true)
        .await?
        .iter()
        .map(|p| p.1)
        .sum())
}

fn batch(n: usize, size: usize) -> Vec<Record> {
    let ts = now_us().to_be_bytes();
    (0..n)
        .map(|i| {
            let mut v = vec![b'x'; size.max(8)];
            v[..8].copy_from_slice(&ts);
            record(format!("k{i}"), v)
        })
        .collect()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let src = Client::connect(&a.source, Some(&a.source_token)).await?;
    let dst = Client::connect(&a.dest, Some(&a.dest_token)).await?;
    setup(&src, true).await?;
    setup(&dst, false).await?;
    let from = format!("{}{STREAM}", a.source);
    dst.replication()
        .add_upstream(v1::AddUpstreamRequest {
            stream: STREAM.into(),
            from: from.clone(),
            token: a.source_token.clone(),
            ..Default::default()
        })
        .await?;

    // 1. Steady rate: a batch every 10 ms.
    let per_tick = (a.rate / 100).max(1) as usize;
    let producer = {
        let src = src.clone();
        let (duration, size) = (a.duration, a.record_size);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            let end = Instant::now() + duration;
            let mut sent = 0u64;
            let mut p = 0;
            while Instant::now() < end {
                tick.tick().await;
                src.produce(TOPIC, Some(p), batch(per_tick, size)).await?;
                p = (p + 1) % PARTITIONS;
                sent += per_tick as u64;
            }
            anyhow::Ok(sent)
        })
    };
    let mut readers = Vec::new();
    for p in 0..PARTITIONS {
        let dst = dst.clone();
        let end = Instant::now() + a.duration + Duration::from_secs(10);
        readers.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new(3)?;
            let mut offset = 0;
            while Instant::now() < end {
                let f = match dst
                    .fetch(TOPIC, p, offset, 4 << 20, Duration::from_millis(500))
                    .await
                {
                    Ok(f) => f,
                    Err(e) if e.code() == Some(tonic::Code::NotFound) => {
                        tokio::time::sleep(Duration::from_millis(10)).await; // topic not replicated yet
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                let now = now_us();
                for r in &f.records {
                    let value = r.record.value.as_deref().unwrap_or_default();
                    let ts =
                        u64::from_be_bytes(value.get(..8).context("a stamped value")?.try_into()?);
                    h.record(now.saturating_sub(ts).max(1))?;
                }
                offset = f.next_offset;
            }
            anyhow::Ok(h)
        }));
    }
    let sent = producer.await??;
    let mut lat = Histogram::<u64>::new(3)?;
    for r in readers {
        lat.add(r.await??)?;
    }
    let ms = |q: f64| lat.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "steady: {sent} records at {} records/s ({} B each) for {:?}; replicated {} records; \
         produce-to-replica latency p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
        a.rate,
        a.record_size,
        a.duration,
        lat.len(),
        ms(0.5),
        ms(0.99),
        ms(0.999),
        lat.max() as f64 / 1000.0
    );

    // 2. Catch-up: a backlog built while the link is paused.
    let link = v1::UpstreamRef {
        stream: STREAM.into(),
        from,
    };
    dst.replication().pause_upstream(link.clone()).await?;
    let before = held(&src).await?;
    let mut produced = 0u64;
    let mut p = 0;
    while produced < a.backlog {
        let n = (a.backlog - produced).min(1000) as usize;
        src.produce(TOPIC, Some(p), batch(n, a.record_size)).await?;
        p = (p + 1) % PARTITIONS;
        produced += n as u64;
    }
    let target = before + produced;
    let start = Instant::now();
    dst.replication().resume_upstream(link).await?;
    while held(&dst).await? < target {
        tokio::time::sleep(Duration::from_millis(5)).await; // poll interval
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "catch-up: {produced} records ({:.0} MB) copied in {secs:.2} s: {:.0} records/s, {:.1} MB/s",
        (produced * a.record_size as u64) as f64 / 1e6,
        produced as f64 / secs,
        (produced * a.record_size as u64) as f64 / 1e6 / secs
    );
    Ok(())
}
