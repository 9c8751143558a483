//! Backup of the whole store by checkpoint, for cluster admins. The target is a directory
//! on the server's filesystem, checked here so that a bad one is a clear
//! `INVALID_ARGUMENT` that changes nothing.

use std::path::{Path, PathBuf};

use tributary_storage::CheckpointInfo;

use super::{Namespace, blocking};
use crate::auth::Caller;
use crate::{Error, Result};

impl Namespace {
    /// Writes a consistent copy of the store into `dir`, which must be an absolute path
    /// that does not exist yet, in an existing directory. The copy is a data directory.
    pub async fn checkpoint(&self, c: &Caller, dir: &str) -> Result<CheckpointInfo> {
        self.check_cluster_admin(c, "the cluster (checkpoint)")?;
        let dir = PathBuf::from(dir);
        let invalid = |why: &str| Error::invalid("dir", format!("{}: {why}", dir.display()));
        if dir.as_os_str().is_empty() {
            return Err(Error::invalid("dir", "must not be empty".into()));
        }
        if !dir.is_absolute() {
            return Err(invalid("must be an absolute path on the server"));
        }
        if !dir.parent().is_some_and(Path::is_dir) {
            return Err(invalid("its parent directory does not exist"));
        }
        // Creating the directory claims it: of two checkpoints to one path, one fails here.
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(invalid(
                    "already exists; a checkpoint goes to a new directory",
                ));
            }
            Err(e) => return Err(invalid(&format!("cannot be created: {e}"))),
        }
        let store = self.store.clone();
        let target = dir.clone();
        let made = blocking(move || Ok(store.checkpoint(&target)?)).await;
        if made.is_err() {
            // Leave nothing half-written behind.
            let _ = std::fs::remove_dir_all(&dir);
        }
        let info = made?;
        tracing::info!(dir = %dir.display(), bytes = info.bytes, "checkpoint written");
        Ok(info)
    }
}
