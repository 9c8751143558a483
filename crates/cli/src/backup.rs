//! `tributary admin …`: server operations for cluster admins; for now the online backup,
//! `tributary admin checkpoint DIR`.

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
}

pub async fn run(g: &Global, cmd: AdminCmd) -> anyhow::Result<()> {
    let AdminCmd::Checkpoint { dir } = cmd;
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
