//! Redis Streams driven through the `redis` crate: one stream key per bench log, a batch is
//! one pipeline of `XADD key * v VALUE` commands (one round trip, `--batch-records` deep),
//! and a producer's connection multiplexes up to `--in-flight` pipelines. Reads are
//! `XREAD COUNT n BLOCK ms` on a connection of their own (a blocked `XREAD` holds up every
//! other command on its connection), about 4 MiB at a time like Tributary's fetches.
//!
//! Durability is set on the server at the start of a run: `appendonly yes` and
//! `appendfsync always` (fsync of the append-only file before the replies of each event-loop
//! turn) for `--durability sync`, `everysec` (replies from the page cache) for `buffered`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Value};
use tributary_client::Record;

use super::{peer, prefix, read_batch};
use crate::args::DurabilityArg;
use crate::system::{self, System};
use crate::{BenchArgs, Error, Result};

pub(crate) struct Redis {
    client: redis::Client,
    keys: Arc<[String]>,
    read_batch: usize,
}

impl Redis {
    /// Connects, sets the run's durability and names one stream key per log.
    pub async fn create(url: &str, args: &BenchArgs) -> Result<Redis> {
        let client = redis::Client::open(url).map_err(|e| Error::Connect(Box::new(e)))?;
        let redis = Redis {
            client,
            keys: (0..args.pairs())
                .map(|i| format!("{}-{i}", prefix()))
                .collect(),
            read_batch: read_batch(args.record_size),
        };
        let mut conn = redis.open().await?;
        let fsync = match args.durability {
            DurabilityArg::Sync => "always",
            DurabilityArg::Buffered => "everysec",
        };
        for (name, value) in [("appendonly", "yes"), ("appendfsync", fsync)] {
            let () = redis::cmd("CONFIG")
                .arg("SET")
                .arg(name)
                .arg(value)
                .query_async(&mut conn)
                .await
                .map_err(peer(format!("setting {name} {value}")))?;
        }
        Ok(redis)
    }

    /// Deletes the run's stream keys.
    pub async fn delete(&self) -> Result<()> {
        let mut conn = self.open().await?;
        let _: i64 = redis::cmd("DEL")
            .arg(&self.keys[..])
            .query_async(&mut conn)
            .await
            .map_err(peer("deleting the bench's stream keys"))?;
        Ok(())
    }

    async fn open(&self) -> Result<MultiplexedConnection> {
        open(&self.client).await
    }
}

async fn open(client: &redis::Client) -> Result<MultiplexedConnection> {
    // No response timeout: a deep pipeline or a long XREAD BLOCK is not a failure.
    let config = AsyncConnectionConfig::new().set_response_timeout(None);
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| Error::Connect(Box::new(e)))
}

impl System for Redis {
    type Conn = Conn;

    async fn connect(&self) -> Result<Conn> {
        Ok(Conn {
            client: self.client.clone(),
            conn: self.open().await?,
            keys: self.keys.clone(),
            read_batch: self.read_batch,
        })
    }

    fn pairs(&self) -> usize {
        self.keys.len()
    }
}

#[derive(Clone)]
pub(crate) struct Conn {
    client: redis::Client,
    conn: MultiplexedConnection,
    keys: Arc<[String]>,
    read_batch: usize,
}

impl system::Conn for Conn {
    type Reader = Reader;

    fn produce(
        &self,
        pair: usize,
        records: Vec<Record>,
    ) -> impl Future<Output = Result<()>> + Send + 'static + use<> {
        let mut conn = self.conn.clone();
        let key = self.keys[pair].clone();
        async move {
            let mut pipe = redis::pipe();
            for r in &records {
                pipe.cmd("XADD")
                    .arg(&key)
                    .arg("*")
                    .arg("v")
                    .arg(r.value.as_deref().unwrap_or_default());
            }
            let ids: Vec<Value> = pipe
                .query_async(&mut conn)
                .await
                .map_err(peer(format!("XADD to {key}")))?;
            if ids.len() != records.len() {
                return Err(Error::Check(format!(
                    "{} XADDs to {key} got {} replies",
                    records.len(),
                    ids.len()
                )));
            }
            Ok(())
        }
    }

    async fn reader(&self, pair: usize) -> Result<Reader> {
        Ok(Reader {
            conn: open(&self.client).await?,
            key: self.keys[pair].clone(),
            last: "0-0".into(),
            count: self.read_batch,
        })
    }

    fn describe(&self, pair: usize) -> String {
        format!("Redis stream {}", self.keys[pair])
    }
}

pub(crate) struct Reader {
    conn: MultiplexedConnection,
    key: String,
    /// The id of the last entry read.
    last: String,
    count: usize,
}

impl system::Reader for Reader {
    async fn read(&mut self, wait: Duration) -> Result<Vec<Bytes>> {
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT").arg(self.count);
        if !wait.is_zero() {
            cmd.arg("BLOCK").arg(wait.as_millis().max(1) as u64);
        }
        cmd.arg("STREAMS").arg(&self.key).arg(&self.last);
        let reply: Value = cmd
            .query_async(&mut self.conn)
            .await
            .map_err(peer(format!("XREAD from {}", self.key)))?;
        let (values, last) = entries(reply)
            .map_err(|what| Error::Check(format!("XREAD from {} replied {what}", self.key)))?;
        if let Some(last) = last {
            self.last = last;
        }
        Ok(values)
    }
}

/// The values and the last id of an `XREAD` reply on one stream: nil when nothing came,
/// else `[[key, [[id, [field, value]], ...]]]`.
fn entries(reply: Value) -> Result<(Vec<Bytes>, Option<String>), String> {
    let streams = match reply {
        Value::Nil => return Ok((Vec::new(), None)),
        Value::Array(s) => s,
        other => return Err(format!("{other:?} instead of an array of streams")),
    };
    let Some(Value::Array(stream)) = streams.into_iter().next() else {
        return Err("no stream".into());
    };
    let Some(Value::Array(list)) = stream.into_iter().nth(1) else {
        return Err("a stream without entries".into());
    };
    let mut values = Vec::with_capacity(list.len());
    let mut last = None;
    for entry in list {
        let mut parts = match entry {
            Value::Array(p) => p.into_iter(),
            other => return Err(format!("an entry {other:?}")),
        };
        let (Some(Value::BulkString(id)), Some(Value::Array(fields))) =
            (parts.next(), parts.next())
        else {
            return Err("an entry without id and fields".into());
        };
        let Some(Value::BulkString(value)) = fields.into_iter().nth(1) else {
            return Err("an entry without a value".into());
        };
        values.push(Bytes::from(value));
        last = Some(String::from_utf8(id).map_err(|_| "an id that is not UTF-8".to_owned())?);
    }
    Ok((values, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn xread_replies_are_parsed() {
        assert_eq!(entries(Value::Nil).unwrap(), (Vec::new(), None));
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("k"),
            Value::Array(vec![
                Value::Array(vec![bulk("1-0"), Value::Array(vec![bulk("v"), bulk("a")])]),
                Value::Array(vec![bulk("1-1"), Value::Array(vec![bulk("v"), bulk("bc")])]),
            ]),
        ])]);
        let (values, last) = entries(reply).unwrap();
        assert_eq!(values, vec![Bytes::from("a"), Bytes::from("bc")]);
        assert_eq!(last.as_deref(), Some("1-1"));
        assert!(entries(Value::Int(3)).is_err());
        let no_value = Value::Array(vec![Value::Array(vec![
            bulk("k"),
            Value::Array(vec![Value::Array(vec![
                bulk("1-0"),
                Value::Array(vec![bulk("v")]),
            ])]),
        ])]);
        assert!(entries(no_value).is_err());
    }
}
