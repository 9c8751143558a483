//! Fuzzes what the Kafka door does with a request's bytes before a handler runs: the
//! header, the version, the walk over the request's shape, and `kafka-protocol`'s decoding
//! of what the walk passed. Nothing may panic or allocate without bound (the walk exists
//! because the decoder sizes vectors by counts off the wire), and whatever the walk
//! passes must decode, ending the body where the walk ended it (the bytes after a body
//! are ignored, as Kafka's broker ignores them).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tributary_kafka::fuzzing::request(data);
});
