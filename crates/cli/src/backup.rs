//! `tributary admin …`: server operations: the online backup (`checkpoint DIR`, cluster
//! admins) and the standard gRPC health check (`health`, anyone: for container health
//! checks and scripts).

use clap::Subcommand;
use serde_json::json;
use tributary_proto::v1;

use crate::Global;
use crate::output::json;

#[derive(Debug, Subcommand)]
pub enum AdminCmd {
    /// Write a consistent copy of the live store into DIR, on the server's filesystem
    /// (cluster admins). DIR must be an absolute path that does not exist yet. The copy is
    /// a data directory: `tributary serve --data-dir DIR` runs it, as the same cluster.
    Checkpoint {
        /// Absolute path on the server, e.g. /var/backups/tributary/2024-05-01.
        dir: String,
    },
    /// Ask the server's standard gRPC health service whether it serves (no token needed).
    /// Exits 0 when SERVING, 1 otherwise.
    Health {
        /// The service to ask about; the server as a whole by default.
        #[arg(long, default_value = "")]
        service: String,
    },
}

pub async fn run(g: &Global, cmd: AdminCmd) -> anyhow::Result<()> {
    match cmd {
        AdminCmd::Checkpoint { dir } => checkpoint(g, dir).await,
        AdminCmd::Health { service } => health(g, service).await,
    }
}

async fn health(g: &Global, service: String) -> anyhow::Result<()> {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let client = g.connect().await?;
    let r = HealthClient::new(client.service())
        .check(HealthCheckRequest { service })
        .await?
        .into_inner();
    let status = ServingStatus::try_from(r.status).unwrap_or(ServingStatus::Unknown);
    if g.json {
        json(&json!({ "status": status.as_str_name() }));
    } else {
        println!("{}", status.as_str_name());
    }
    anyhow::ensure!(
        status == ServingStatus::Serving,
        "the server is not serving"
    );
    Ok(())
}

async fn checkpoint(g: &Global, dir: String) -> anyhow::Result<()> {
    let r = g
        .connect()
        .await?
        .admin()
        .checkpoint(v1::CheckpointRequest { dir })
        .await?
        .into_inner();
    if g.json {
        json(&json!({ "dir": r.dir, "bytes": r.bytes }));
    } else {
        println!("checkpoint written to {} ({} bytes)", r.dir, r.bytes);
    }
    Ok(())
}
