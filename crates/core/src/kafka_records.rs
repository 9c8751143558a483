//! Records crossing between the two protocols: a Kafka record as a `tributary.v1.Record`,
//! and Tributary records as a Kafka batch. Every conversion is here, so how null and empty
//! keys, values and header values cross is decided in one place (design §9).

use bytes::Bytes;
use tributary_proto::v1::{Header, Record};

use crate::kafka_batch::{self, Draft, HeaderRef};
use crate::timestamp::TimestampType;

/// A Kafka record as a Tributary record, with its absolute timestamp. Null and empty stay
/// apart: keys, values and header values are `optional` on both sides.
pub fn to_record(r: kafka_batch::Record, base_timestamp: i64) -> Record {
    Record {
        key: r.key,
        value: r.value,
        headers: r
            .headers
            .into_iter()
            .map(|h| Header {
                // Validated as UTF-8 when produced.
                key: String::from_utf8_lossy(&h.key).into_owned(),
                value: h.value,
            })
            .collect(),
        timestamp_ms: Some(base_timestamp.saturating_add(r.timestamp_delta)),
    }
}

/// Tributary records as one uncompressed Kafka batch at `base_offset`, the form a Kafka
/// consumer reads them in. A record without a timestamp takes `append_time_ms`, and under
/// `LogAppendTime` the batch carries the append time. Null keys, values and header values
/// stay null, empty ones empty.
pub fn encode(
    base_offset: i64,
    timestamp_type: TimestampType,
    append_time_ms: i64,
    records: &[Record],
) -> Bytes {
    let headers: Vec<Vec<HeaderRef<'_>>> = records
        .iter()
        .map(|r| {
            r.headers
                .iter()
                .map(|h| (h.key.as_bytes(), h.value.as_deref()))
                .collect()
        })
        .collect();
    let drafts: Vec<Draft<'_>> = records
        .iter()
        .zip(&headers)
        .map(|(r, headers)| Draft {
            timestamp_ms: r.timestamp_ms.unwrap_or(append_time_ms),
            key: r.key.as_deref(),
            value: r.value.as_deref(),
            headers,
        })
        .collect();
    let batch = kafka_batch::encode(base_offset, timestamp_type, &drafts);
    match timestamp_type {
        TimestampType::CreateTime => batch,
        TimestampType::LogAppendTime => {
            let mut b = batch.to_vec();
            kafka_batch::finish(&mut b, base_offset, timestamp_type, append_time_ms, 0);
            b.into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka_batch::{BatchHeader, Limits, validate};

    fn bytes(s: Option<&str>) -> Option<Bytes> {
        s.map(|s| Bytes::copy_from_slice(s.as_bytes()))
    }

    fn record(key: Option<&str>, value: Option<&str>, ts: Option<i64>) -> Record {
        Record {
            key: bytes(key),
            value: bytes(value),
            headers: vec![
                Header {
                    key: "h".into(),
                    value: bytes(Some("1")),
                },
                Header {
                    key: "h".into(),
                    value: bytes(Some("")),
                },
                Header {
                    key: "h".into(),
                    value: None,
                },
            ],
            timestamp_ms: ts,
        }
    }

    #[test]
    fn records_cross_to_kafka_and_back_unchanged() {
        let records = vec![
            record(Some("k"), Some("v"), Some(50)),
            record(Some("k2"), Some(""), Some(40)),
            record(Some(""), None, Some(45)),
            record(None, Some("v"), Some(41)),
        ];
        let batch = encode(7, TimestampType::CreateTime, 99, &records);
        let checked = validate(&batch, &Limits::default()).unwrap();
        assert_eq!(checked.header.base_offset, 7);
        assert_eq!(checked.max_timestamp, 50);
        let base = checked.header.base_timestamp;
        let back: Vec<Record> = checked
            .records
            .into_iter()
            .map(|r| to_record(r, base))
            .collect();
        assert_eq!(
            back, records,
            "null and empty stay apart; duplicate header keys keep their order"
        );
    }

    #[test]
    fn unkeyed_records_and_append_time() {
        let records = vec![record(None, Some("v"), None), record(Some(""), None, None)];
        let batch = encode(0, TimestampType::LogAppendTime, 99, &records);
        let checked = validate(&batch, &Limits::default()).unwrap();
        assert_eq!(checked.records[0].key, None, "a null key is unkeyed");
        assert_eq!(
            (
                checked.records[1].key.as_deref(),
                checked.records[1].value.as_deref()
            ),
            (Some(&b""[..]), None),
            "an empty key is a key; a null value a tombstone"
        );
        let h = BatchHeader::parse(&batch).unwrap();
        assert_eq!(
            (h.timestamp_type(), h.max_timestamp),
            (TimestampType::LogAppendTime, 99)
        );
        assert_eq!(
            to_record(checked.records[0].clone(), h.base_timestamp).timestamp_ms,
            Some(99),
            "a record without a timestamp takes the append time"
        );
    }
}
