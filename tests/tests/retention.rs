//! TTL retention on the real server: records past a stream's TTL disappear from reads,
//! the background task and `tributary stream purge` remove them, survivors keep their
//! offsets. Time passing is the thing under test here, so the test polls with a deadline.

use std::time::Duration;

use tributary_client::unkeyed;
use tributary_e2e::{Server, create_stream, wait_until};
use tributary_proto::v1;

#[tokio::test]
async fn expired_records_vanish_and_are_purged() {
    let server = Server::builder()
        .args(&["--retention-interval", "200ms"])
        .start();
    let client = server.client().await;
    let one_second = v1::StreamAttributes {
        ttl_ms: Some(1_000),
        ..Default::default()
    };
    create_stream(&client, "/ret/short", one_second).await;
    let mut admin = client.admin();
    let forever = v1::StreamAttributes {
        ttl_ms: Some(0),
        ..Default::default()
    };
    admin
        .create_stream(v1::CreateStreamRequest {
            path: "/ret/forever".into(),
            attributes: Some(forever),
        })
        .await
        .unwrap();
    for topic in ["/ret/short:t", "/ret/forever:t"] {
        client
            .produce(topic, Some(0), vec![unkeyed("a"), unkeyed("b")])
            .await
            .unwrap();
    }

    // Within the TTL everything is there; after it, the earliest offset moves past the
    // expired batch and the background task purges it.
    assert_eq!(
        client
            .list_offsets("/ret/short:t", &[], false)
            .await
            .unwrap(),
        vec![(0, 0)]
    );
    let purged = wait_until(
        "the expired batch to be purged",
        Duration::from_secs(20),
        || {
            let mut admin = client.admin();
            async move {
                let t = admin
                    .describe_topic(v1::DescribeTopicRequest {
                        path: "/ret/short:t".into(),
                    })
                    .await
                    .ok()?;
                let p = t.into_inner().partition_info[0];
                (p.purged_records == 2).then_some(p)
            }
        },
    )
    .await;
    assert_eq!(
        (purged.earliest_offset, purged.latest_offset, purged.records),
        (2, 2, 0)
    );
    assert!(purged.purged_bytes > 0);
    let err = client
        .fetch("/ret/short:t", 0, 0, 0, Duration::ZERO)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(tonic::Code::OutOfRange), "{err}");

    // Offsets continue after the purge; TTL 0 keeps everything.
    let r = client
        .produce("/ret/short:t", Some(0), vec![unkeyed("c")])
        .await
        .unwrap();
    assert_eq!(r.acks[0].base_offset, 2);
    let f = client
        .fetch("/ret/short:t", 0, 2, 0, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(f.records[0].record.value.as_deref(), Some(&b"c"[..]));
    assert_eq!(
        client
            .fetch("/ret/forever:t", 0, 0, 0, Duration::ZERO)
            .await
            .unwrap()
            .records
            .len(),
        2
    );

    // `stream purge` runs retention on demand (nothing is left to purge here).
    let out = server
        .cli()
        .args(["stream", "purge", "/ret/forever", "--json"])
        .run()
        .ok();
    assert!(
        out.stdout.contains("\"purged_records\":0"),
        "{}",
        out.stdout
    );
}
