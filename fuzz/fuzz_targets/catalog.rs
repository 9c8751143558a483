//! Fuzzes the decoding of the namespace's catalog rows (users, volumes, streams, topics;
//! JSON) and the store's cluster identity: they are read from disk at every start. A row
//! that decodes must encode and decode back to itself; one that does not is reported as
//! corrupt, naming the row.

#![no_main]

use std::fmt::Debug;

use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tributary_storage::ClusterIdentity;
use tributary_volume::auth::UserRow;
use tributary_volume::model::{self, StreamRow, TopicRow, VolumeRow};

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(what: &'static str, v: &[u8]) {
    match model::decode::<T>(what, v) {
        Ok(row) => {
            let json = model::encode(&row);
            let back: T = model::decode(what, &json).expect("an encoded row decodes");
            assert_eq!(back, row);
            assert_eq!(model::encode(&back), json, "one encoding per row");
        }
        Err(e) => {
            let m = e.to_string();
            assert!(
                m.starts_with(&format!("corrupt {what} in the store")),
                "{m}"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, v)) = data.split_first() else {
        return;
    };
    match which % 5 {
        0 => round_trip::<UserRow>("user row", v),
        1 => round_trip::<VolumeRow>("volume row", v),
        2 => round_trip::<StreamRow>("stream row", v),
        3 => round_trip::<TopicRow>("topic row", v),
        _ => {
            if let Ok(id) = serde_json::from_slice::<ClusterIdentity>(v) {
                let json = serde_json::to_vec(&id).unwrap();
                assert_eq!(
                    serde_json::from_slice::<ClusterIdentity>(&json).unwrap(),
                    id
                );
            }
        }
    }
});
