//! Fills a running cluster with many topics (see `bench/many-topics.sh`): `--topics` topics
//! of one partition each, spread over `--streams` streams of the volume `/many`, created by
//! `--concurrency` concurrent `CreateTopic` calls. Prints the creation rate as it goes and
//! at the end; the script then measures the server's memory and a hot topic's latency.
//!
//! ```text
//! many-topics --server URL --token T [--topics 1000000] [--streams 1000] [--concurrency 32]
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tributary_client::Client;
use tributary_proto::v1;

struct Args {
    server: String,
    token: String,
    topics: u64,
    streams: u64,
    concurrency: u64,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        server: String::new(),
        token: String::new(),
        topics: 1_000_000,
        streams: 1_000,
        concurrency: 32,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--server" => a.server = value()?,
            "--token" => a.token = value()?,
            "--topics" => a.topics = value()?.parse()?,
            "--streams" => a.streams = value()?.parse()?,
            "--concurrency" => a.concurrency = value()?.parse()?,
            other => bail!("unknown flag {other}"),
        }
    }
    if a.server.is_empty() || a.streams == 0 || a.concurrency == 0 {
        bail!(
            "usage: many-topics --server URL --token T [--topics N] [--streams N] [--concurrency N]"
        );
    }
    Ok(a)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let client = Client::connect(&a.server, Some(&a.token)).await?;
    let mut admin = client.admin();
    admin
        .create_volume(v1::CreateVolumeRequest {
            path: "/many".into(),
            ..Default::default()
        })
        .await
        .context("create the volume /many (start from an empty server)")?;
    let started = Instant::now();
    for s in 0..a.streams {
        admin
            .create_stream(v1::CreateStreamRequest {
                path: format!("/many/s{s}"),
                attributes: Some(v1::StreamAttributes {
                    default_partitions: Some(1),
                    durability: v1::Durability::Buffered as i32,
                    ..Default::default()
                }),
            })
            .await?;
    }
    println!(
        "{} streams in {:.1} s",
        a.streams,
        started.elapsed().as_secs_f64()
    );

    // Topic i goes to stream i % streams; each task takes the next i until all are made.
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..a.concurrency {
        let (next, done, streams, topics) = (next.clone(), done.clone(), a.streams, a.topics);
        let mut admin = client.admin();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= topics {
                    return anyhow::Ok(());
                }
                admin
                    .create_topic(v1::CreateTopicRequest {
                        path: format!("/many/s{}:t{}", i % streams, i / streams),
                        partitions: Some(1),
                    })
                    .await
                    .with_context(|| format!("topic {i}"))?;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let report = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(10));
            tick.tick().await;
            let (mut last, mut at) = (0, Instant::now());
            loop {
                tick.tick().await;
                let now = done.load(Ordering::Relaxed);
                println!(
                    "{now} topics after {:.0} s ({:.0}/s over the last {:.0} s)",
                    started.elapsed().as_secs_f64(),
                    (now - last) as f64 / at.elapsed().as_secs_f64(),
                    at.elapsed().as_secs_f64()
                );
                (last, at) = (now, Instant::now());
            }
        })
    };
    for t in tasks {
        t.await??;
    }
    report.abort();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "created {} topics in {secs:.1} s: {:.0} topics/s ({} at a time)",
        a.topics,
        a.topics as f64 / secs,
        a.concurrency
    );
    Ok(())
}
