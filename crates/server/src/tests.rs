//! The server started in-process on port 0: it serves, stops on its shutdown future or on
//! `stop`, and closes its store so that the next start reopens it.

use tokio::net::TcpListener;
use tributary_client::Client;
use tributary_proto::v1;

use crate::{Config, start};

async fn loopback() -> TcpListener {
    TcpListener::bind(("127.0.0.1", 0)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_until_stopped_and_reopens_its_store() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(
        Config::new(dir.path()),
        loopback().await,
        std::future::pending(),
    )
    .await
    .unwrap();
    let token = running
        .admin_token
        .clone()
        .expect("a fresh store makes the admin");
    let url = format!("http://{}", running.addr);
    let admin = Client::connect(&url, Some(&token)).await.unwrap();
    let who = admin.admin().who_am_i(v1::WhoAmIRequest {}).await.unwrap();
    assert!(who.into_inner().cluster_admin);
    admin
        .admin()
        .create_volume(v1::CreateVolumeRequest {
            path: "/v".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let cluster_id = running.cluster_id;
    running.stop().await.unwrap();

    // The shutdown future stops it too.
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let again = start(Config::new(dir.path()), loopback().await, async {
        let _ = rx.await;
    })
    .await
    .unwrap();
    assert_eq!(again.admin_token, None, "the admin exists already");
    assert_eq!(again.cluster_id, cluster_id);
    let admin = Client::connect(&format!("http://{}", again.addr), Some(&token))
        .await
        .unwrap();
    let volumes = admin
        .admin()
        .list_volumes(v1::ListVolumesRequest {})
        .await
        .unwrap()
        .into_inner()
        .volumes;
    assert_eq!(volumes.len(), 1, "the volume made before the stop is kept");
    drop(admin);
    tx.send(()).unwrap();
    again.closed().await.unwrap();
}
