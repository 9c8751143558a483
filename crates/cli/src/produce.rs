//! `tributary produce`: records from standard input, one per line, sent in batches. A
//! reader fills batches (by count, size or linger time) while a sender sends them in
//! order; the first failure stops both and exits non-zero. A key or value equal to the
//! `--null` text is sent as null (an unkeyed record; a tombstone), since a line cannot
//! otherwise tell null from empty.

use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use clap::Args;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;
use tributary_client::{Client, Record};

use crate::Global;
use crate::output::{json, parse_duration};

#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// Topic, as STREAM_PATH:TOPIC.
    topic: String,
    /// Split each line at the first SEP into key and value; lines without SEP are unkeyed.
    /// An empty key (a line starting with SEP) is a key, routed by its hash as in Kafka.
    #[arg(long, value_name = "SEP")]
    key_separator: Option<String>,
    /// A key or value that is exactly TEXT is sent as null: a null key is unkeyed, a null
    /// value a tombstone (it deletes its key on a compacted stream). An empty value is sent
    /// as empty.
    #[arg(long, value_name = "TEXT")]
    null: Option<String>,
    /// Send every record to this partition (default: by key, else round-robin per batch).
    #[arg(long)]
    partition: Option<u32>,
    /// Most records per request.
    #[arg(long, default_value_t = 1000)]
    batch_records: usize,
    /// Most bytes per request.
    #[arg(long, default_value_t = 1 << 20)]
    batch_bytes: usize,
    /// Longest a partial batch waits for more lines before it is sent.
    #[arg(long, default_value = "10ms", value_parser = parse_duration)]
    linger: Duration,
}

struct Batch {
    records: Vec<Record>,
    bytes: usize,
}

pub async fn run(g: &Global, args: ProduceArgs) -> anyhow::Result<()> {
    let client = g.connect().await?;
    let (tx, rx) = mpsc::channel::<Vec<Record>>(4);
    let sender = tokio::spawn(send_all(
        client,
        args.topic.clone(),
        args.partition,
        rx,
        g.json,
    ));

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut batch = Batch {
        records: Vec::new(),
        bytes: 0,
    };
    let mut line_no = 0u64;
    loop {
        let next = if batch.records.is_empty() {
            lines.next_line().await
        } else {
            match tokio::time::timeout(args.linger, lines.next_line()).await {
                Ok(r) => r,
                Err(_) => {
                    // Linger expired: ship what we have and wait for more input.
                    if tx.send(std::mem::take(&mut batch.records)).await.is_err() {
                        break;
                    }
                    batch.bytes = 0;
                    continue;
                }
            }
        };
        let Some(line) =
            next.with_context(|| format!("reading standard input after line {line_no}"))?
        else {
            break;
        };
        line_no += 1;
        let (key, value) = match args
            .key_separator
            .as_deref()
            .map(|sep| line.split_once(sep))
        {
            Some(Some((k, v))) => (Some(k), v),
            _ => (None, line.as_str()),
        };
        let field = |s: &str| {
            (args.null.as_deref() != Some(s)).then(|| Bytes::copy_from_slice(s.as_bytes()))
        };
        let r = Record {
            key: key.and_then(field),
            value: field(value),
            headers: Vec::new(),
            timestamp_ms: None,
        };
        batch.bytes += [&r.key, &r.value]
            .iter()
            .map(|b| b.as_ref().map_or(0, Bytes::len))
            .sum::<usize>();
        batch.records.push(r);
        if batch.records.len() >= args.batch_records || batch.bytes >= args.batch_bytes {
            if tx.send(std::mem::take(&mut batch.records)).await.is_err() {
                break; // the sender failed; its error is reported below
            }
            batch.bytes = 0;
        }
    }
    if !batch.records.is_empty() {
        let _ = tx.send(batch.records).await;
    }
    drop(tx);
    sender.await?
}

async fn send_all(
    client: Client,
    topic: String,
    partition: Option<u32>,
    mut rx: mpsc::Receiver<Vec<Record>>,
    print_json: bool,
) -> anyhow::Result<()> {
    let mut sent = 0u64;
    while let Some(records) = rx.recv().await {
        let n = records.len() as u64;
        let r = client
            .produce(&topic, partition, records)
            .await
            .with_context(|| {
                format!("producing to {topic} ({sent} records were acknowledged before)")
            })?;
        sent += n;
        if print_json {
            for a in r.acks {
                json(
                    &json!({ "partition": a.partition, "base_offset": a.base_offset, "records": a.record_count }),
                );
            }
        }
    }
    Ok(())
}
