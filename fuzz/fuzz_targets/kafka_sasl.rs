//! Fuzzes the SASL exchanges a Kafka client drives before it is anyone (PLAIN,
//! SCRAM-SHA-256/512, OAUTHBEARER), over a real namespace whose user `alice` holds a
//! token: nothing may panic, only alice is ever authenticated, and no SCRAM proof passes
//! that was not computed from her token (`tributary_kafka::fuzzing::Sasl` says how inputs
//! become messages).

#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use tributary_kafka::fuzzing::Sasl;
use tributary_storage::{Store, StoreOptions};
use tributary_volume::{Namespace, SystemClock};

struct World {
    sasl: Sasl,
    token: String,
    runtime: tokio::runtime::Runtime,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // One directory per process; those of processes gone are removed.
        let tmp = std::env::temp_dir();
        for e in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("tributary-fuzz-sasl-")
                && !std::path::Path::new(&format!("/proc/{pid}")).exists()
            {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        let dir = tmp.join(format!("tributary-fuzz-sasl-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (ns, token) = runtime.block_on(async {
            let store = Arc::new(Store::open(&dir, &StoreOptions::default()).unwrap());
            let ns = Arc::new(Namespace::open(store, Arc::new(SystemClock)).await.unwrap());
            let admin_token = ns.ensure_admin().await.unwrap().unwrap();
            let admin = ns.authenticate(&admin_token).unwrap();
            let (_, token) = ns
                .create_user(&admin, "alice", vec![], false)
                .await
                .unwrap();
            (ns, token)
        });
        World {
            sasl: Sasl::new(ns, "alice"),
            token,
            runtime,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let _guard = w.runtime.enter();
    w.sasl.run(&w.token, data);
});
