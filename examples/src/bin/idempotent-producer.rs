//! An idempotent, batching producer: sends N numbered records to TOPIC and prints each
//! acknowledged offset. Retries after lost responses or a server restart never append a
//! record twice.
//!
//! ```text
//! TRIBUTARY_SERVER=http://127.0.0.1:7070 TRIBUTARY_TOKEN=$(cat data/admin.token) \
//!     cargo run --release -p tributary-examples --bin idempotent-producer -- /acme/orders:events 1000
//! ```

use tributary_client::{Client, Producer, ProducerConfig, record};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [topic, n] = args.as_slice() else {
        anyhow::bail!("usage: idempotent-producer STREAM:TOPIC COUNT");
    };
    let n: u64 = n.parse()?;
    let url = std::env::var("TRIBUTARY_SERVER").unwrap_or_else(|_| "http://127.0.0.1:7070".into());
    let token = std::env::var("TRIBUTARY_TOKEN").ok();
    let client = Client::connect(&url, token.as_deref()).await?;
    let producer = Producer::new(client, ProducerConfig::default()).await?;
    let mut acks = Vec::new();
    for i in 0..n {
        acks.push(
            producer
                .send(topic, record(format!("k{i}"), format!("record-{i}")))
                .await?,
        );
    }
    producer.flush().await?;
    for a in acks {
        let d = a.await?.map_err(anyhow::Error::msg)?;
        println!("{}:{}", d.partition, d.offset);
    }
    Ok(())
}
