//! A consumer-group application: one member of group GROUP reading TOPIC of STREAM.
//!
//! It prints each record as `PARTITION:OFFSET<TAB>VALUE` and commits after every batch it
//! has printed, so a crash re-delivers at most the batch in hand. Start several copies to
//! share the partitions; kill some, restart the server: together they print every record,
//! and a record appears twice only if a member died between printing and committing it.
//!
//! ```text
//! TRIBUTARY_SERVER=http://127.0.0.1:7070 TRIBUTARY_TOKEN=$(cat data/admin.token) \
//!     cargo run --release -p tributary-examples --bin group-member -- /acme/orders events billing
//! ```

use std::io::Write;

use tributary_client::{Client, GroupConfig, GroupConsumer};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [stream, topic, group] = args.as_slice() else {
        anyhow::bail!("usage: group-member STREAM TOPIC GROUP");
    };
    let url = std::env::var("TRIBUTARY_SERVER").unwrap_or_else(|_| "http://127.0.0.1:7070".into());
    let token = std::env::var("TRIBUTARY_TOKEN").ok();
    let client = Client::connect(&url, token.as_deref()).await?;

    let mut config = GroupConfig::new(stream, group, &[topic]);
    config.auto_commit = None; // commit what we printed, ourselves
    config.session_timeout = std::time::Duration::from_secs(3);
    let mut member = GroupConsumer::join(&client, config).await?;
    let stdout = std::io::stdout();
    loop {
        let records = member.poll().await?;
        let mut out = stdout.lock();
        for r in &records {
            out.write_all(format!("{}:{}\t", r.record.partition, r.record.offset).as_bytes())?;
            out.write_all(r.record.record.value.as_deref().unwrap_or_default())?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        drop(out);
        // A refused commit (a rebalance moved the generation) is retried after the next
        // poll; what it covered may be read again by the partition's next owner.
        if let Err(e) = member.commit().await {
            eprintln!("commit: {e}");
        }
    }
}
