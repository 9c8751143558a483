//! `tributary consume`: prints a topic's records, one per line. One fetch loop per partition
//! feeds a printer that stops after `--max` records or `--timeout` without a new one. With
//! `--group`, the server assigns the partitions and the group's cursors are committed.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use clap::Args;
use serde_json::json;
use tokio::sync::mpsc;
use tributary_client::{Client, ConsumedRecord, GroupConfig, GroupConsumer};

use crate::Global;
use crate::output::parse_duration;

#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// Topic, as STREAM_PATH:TOPIC.
    topic: String,
    /// Where to start in each partition: earliest, latest, an offset, or the first record
    /// at or after a time (`@2026-01-01T00:00:00Z`). Default latest; with --group, where
    /// partitions without a committed cursor start (earliest or latest, default earliest).
    #[arg(long)]
    from: Option<String>,
    /// Read as a member of this consumer group: the server shares the topic's partitions
    /// among the group's members, and what is printed is committed as the group's cursor.
    #[arg(long)]
    group: Option<String>,
    /// Read only this partition.
    #[arg(long)]
    partition: Option<u32>,
    /// Stop after this many records.
    #[arg(long)]
    max: Option<u64>,
    /// Stop when no record arrives for this long (default: keep waiting).
    #[arg(long, value_parser = parse_duration)]
    timeout: Option<Duration>,
    /// Print each record's key before its value.
    #[arg(long)]
    print_key: bool,
    /// Print each record's partition and offset (`P:OFFSET`) first.
    #[arg(long)]
    print_offset: bool,
    /// Separator between printed fields.
    #[arg(long, value_name = "SEP", default_value = "\t")]
    key_separator: String,
    /// What a null key or value (an unkeyed record; a tombstone) prints as, so that it
    /// differs from an empty one. With --json a null is `null`.
    #[arg(long, value_name = "TEXT", default_value = "NULL")]
    null: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Earliest,
    Latest,
    Offset(u64),
    /// Milliseconds since the epoch.
    Time(i64),
}

/// `earliest`, `latest`, an offset, or `@RFC3339-time`.
pub fn parse_start(flag: &str, s: &str) -> anyhow::Result<Start> {
    Ok(match s {
        "earliest" => Start::Earliest,
        "latest" => Start::Latest,
        t if t.starts_with('@') => {
            let at = humantime::parse_rfc3339_weak(&t[1..]).with_context(|| {
                format!("{flag} `{t}`: expected a time such as @2026-01-01T00:00:00Z")
            })?;
            let ms = at
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            Start::Time(ms)
        }
        n => Start::Offset(n.parse().with_context(|| {
            format!("{flag} `{n}`: expected earliest, latest, an offset or @TIME")
        })?),
    })
}

pub async fn run(g: &Global, args: ConsumeArgs) -> anyhow::Result<()> {
    if let Some(group) = args.group.clone() {
        return run_group(g, &group, args).await;
    }
    let from = parse_start("--from", args.from.as_deref().unwrap_or("latest"))?;
    let client = g.connect().await?;
    let partitions: Vec<u32> = args.partition.map(|p| vec![p]).unwrap_or_default();
    let starts: Vec<(u32, u64)> = match from {
        Start::Earliest => client.list_offsets(&args.topic, &partitions, false).await?,
        Start::Latest => client.list_offsets(&args.topic, &partitions, true).await?,
        Start::Time(t) => client.offsets_for_time(&args.topic, &partitions, t).await?,
        Start::Offset(o) => {
            let all = client.list_offsets(&args.topic, &partitions, true).await?;
            all.into_iter().map(|(p, _)| (p, o)).collect()
        }
    };
    if starts.is_empty() {
        bail!("{} has no partitions", args.topic);
    }
    if args.max == Some(0) {
        return Ok(());
    }

    let (tx, mut rx) = mpsc::channel::<anyhow::Result<Vec<ConsumedRecord>>>(starts.len() * 2);
    let mut loops = tokio::task::JoinSet::new();
    for (p, offset) in starts {
        loops.spawn(fetch_loop(
            client.clone(),
            args.topic.clone(),
            p,
            offset,
            tx.clone(),
        ));
    }
    drop(tx);

    let mut printed = 0u64;
    let stdout = std::io::stdout();
    loop {
        let next = match args.timeout {
            Some(t) => match tokio::time::timeout(t, rx.recv()).await {
                Ok(n) => n,
                Err(_) => break, // quiet for --timeout
            },
            None => rx.recv().await,
        };
        let Some(records) = next else { break };
        let mut out = stdout.lock();
        for r in records? {
            if let Err(e) = print(&mut out, &r, g.json, &args) {
                if e.kind() == std::io::ErrorKind::BrokenPipe {
                    return Ok(()); // e.g. `| head`
                }
                return Err(e.into());
            }
            printed += 1;
            if Some(printed) == args.max {
                out.flush()?;
                return Ok(());
            }
        }
        if let Err(e) = out.flush() {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(e.into());
        }
    }
    loops.abort_all();
    Ok(())
}

async fn fetch_loop(
    client: Client,
    topic: String,
    partition: u32,
    mut offset: u64,
    tx: mpsc::Sender<anyhow::Result<Vec<ConsumedRecord>>>,
) {
    let mut reader = client.reader(&topic, partition, offset, 1 << 20, Duration::from_secs(5));
    loop {
        let r = reader
            .next()
            .await
            .with_context(|| format!("fetching {topic} partition {partition} at offset {offset}"));
        match r {
            Ok(f) => {
                offset = f.next_offset;
                if !f.records.is_empty() && tx.send(Ok(f.records)).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        }
    }
}

/// `consume --group`: a group member that prints, and commits what it printed.
async fn run_group(g: &Global, group: &str, args: ConsumeArgs) -> anyhow::Result<()> {
    let Some((stream, topic)) = args.topic.split_once(':') else {
        bail!("{}: expected STREAM_PATH:TOPIC", args.topic);
    };
    if args.partition.is_some() {
        bail!("--partition and --group do not go together: the group assigns partitions");
    }
    let start = match parse_start("--from", args.from.as_deref().unwrap_or("earliest"))? {
        Start::Earliest => tributary_client::Start::Earliest,
        Start::Latest => tributary_client::Start::Latest,
        _ => bail!(
            "with --group, --from is earliest or latest (for partitions without a cursor); move a group's cursors with `tributary group reset`"
        ),
    };
    let client = g.connect().await?;
    let mut config = GroupConfig::new(stream, group, &[topic]);
    config.start = start;
    config.auto_commit = Some(Duration::from_secs(1));
    config.client_id = format!("tributary-cli@{}", std::process::id());
    let mut consumer = GroupConsumer::join(&client, config).await?;
    let mut printed = 0u64;
    let stdout = std::io::stdout();
    let outcome: anyhow::Result<()> = async {
        if args.max == Some(0) {
            return Ok(());
        }
        loop {
            let next = match args.timeout {
                Some(t) => match tokio::time::timeout(t, consumer.poll()).await {
                    Ok(n) => n,
                    Err(_) => return Ok(()),
                },
                None => consumer.poll().await,
            };
            let records = next?;
            let mut out = stdout.lock();
            for (i, r) in records.iter().enumerate() {
                print(&mut out, &r.record, g.json, &args)?;
                printed += 1;
                if Some(printed) == args.max {
                    out.flush()?;
                    // Records fetched but not printed stay for the group's next reader.
                    consumer.rewind(&records[i + 1..]);
                    return Ok(());
                }
            }
            out.flush()?;
        }
    }
    .await;
    let broken_pipe = matches!(&outcome, Err(e) if e.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe));
    consumer.close().await?;
    if broken_pipe { Ok(()) } else { outcome }
}

fn text(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

/// One record: in JSON a null key, value or header value is `null` and an empty one `""`;
/// in text a null prints as `--null`.
fn print(
    out: &mut impl Write,
    r: &ConsumedRecord,
    as_json: bool,
    args: &ConsumeArgs,
) -> std::io::Result<()> {
    if as_json {
        let mut o = json!({
            "partition": r.partition,
            "offset": r.offset,
            "timestamp_ms": r.timestamp_ms,
        });
        for (name, bytes) in [("key", &r.record.key), ("value", &r.record.value)] {
            let Some(bytes) = bytes else {
                o[name] = serde_json::Value::Null;
                continue;
            };
            match std::str::from_utf8(bytes) {
                Ok(s) => o[name] = json!(s),
                Err(_) => {
                    o[format!("{name}_base64")] =
                        json!(base64::engine::general_purpose::STANDARD.encode(bytes))
                }
            }
        }
        if !r.record.headers.is_empty() {
            o["headers"] = r
                .record
                .headers
                .iter()
                .map(|h| json!([h.key, h.value.as_deref().map(text)]))
                .collect();
        }
        return writeln!(out, "{o}");
    }
    let sep = &args.key_separator;
    if args.print_offset {
        write!(out, "{}:{}{sep}", r.partition, r.offset)?;
    }
    let null = args.null.as_bytes();
    if args.print_key {
        match &r.record.key {
            Some(key) => write!(out, "{}", text(key))?,
            None => out.write_all(null)?,
        }
        out.write_all(sep.as_bytes())?;
    }
    out.write_all(r.record.value.as_deref().unwrap_or(null))?;
    out.write_all(b"\n")
}
