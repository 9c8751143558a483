//! Fuzzes the server's wire view of the two messages that carry record batches
//! (`tributary_proto::wire`): the server reads `ProduceRequest.batch` and writes
//! `FetchResponse.batches` as opaque bytes while clients see `RecordBatch` messages. The two
//! views must agree: whatever a client's view decodes, the server's does too, with the same
//! fields, and stored batches served as bytes reach a client as the batches they encode.
//!
//! (A request repeating field 3 is read differently: a message field merges its
//! occurrences, a bytes field keeps the last. The server validates and stores that last
//! one, so what it acknowledges is what it serves; the checks below compare the views on
//! the server's own re-encoding.)

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use prost::Message;
use tributary_proto::{v1, wire};

fuzz_target!(|data: &[u8]| {
    let client = v1::ProduceRequest::decode(data);
    let server = wire::ProduceRequest::decode(data);
    if let Ok(c) = &client {
        let s = server
            .as_ref()
            .expect("the server reads what a client's view reads");
        assert_eq!((&s.topic, s.partition), (&c.topic, c.partition));
    }
    if let Ok(s) = &server {
        let again = v1::ProduceRequest::decode(s.encode_to_vec().as_slice());
        match v1::RecordBatch::decode(s.batch.clone()) {
            Ok(batch) => {
                let again = again.expect("a valid batch makes a valid request");
                assert_eq!(again.batch.unwrap_or_default(), batch);
                assert_eq!((&again.topic, again.partition), (&s.topic, s.partition));
            }
            Err(_) => assert!(again.is_err(), "a broken batch breaks the request"),
        }
    }

    // Stored batches served as bytes are, to a client, the batches they encode.
    if let Ok(batch) = v1::RecordBatch::decode(data) {
        let stored = Bytes::copy_from_slice(data);
        let served = wire::FetchResponse {
            batches: vec![stored.clone(), stored],
            high_watermark: batch.base_offset,
            log_start_offset: 0,
            next_offset: batch.base_offset,
        };
        let seen = v1::FetchResponse::decode(served.encode_to_vec().as_slice())
            .expect("a fetch response of valid batches decodes");
        assert_eq!(seen.batches, vec![batch.clone(), batch]);
        assert_eq!(
            (seen.high_watermark, seen.next_offset),
            (served.high_watermark, served.next_offset)
        );
    }
});
