//! A server whose data directory is a small tmpfs, so a test can fill the disk and give
//! space back. The tmpfs is mounted in a user and mount namespace of the server's own
//! (`unshare -Urm`), which needs no root: only the server sees it, and the test reaches
//! it through `/proc/PID/root`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::{Server, binary};

/// Why this machine cannot run a server on its own tmpfs, or `None` when it can.
fn tmpfs_unsupported(dir: &Path) -> Option<String> {
    let probe = Command::new("unshare")
        .args([
            "-Urm",
            "sh",
            "-c",
            r#"mount -t tmpfs -o size=1m tmpfs "$0""#,
        ])
        .arg(dir)
        .output();
    match probe {
        Err(e) => Some(format!("`unshare` cannot run: {e}")),
        Ok(o) if !o.status.success() => Some(format!(
            "`unshare -Urm` and `mount -t tmpfs` fail here (user namespaces disabled?): {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Ok(_) => None,
    }
}

impl Server {
    /// Starts a server on a fresh tmpfs of `size_bytes`, mounted over a temporary
    /// directory in the server's own user and mount namespace.
    pub fn start_on_tmpfs(size_bytes: u64) -> anyhow::Result<Server> {
        let tmp = tempfile::tempdir()?;
        let mount_point = tmp.path().join("data");
        std::fs::create_dir(&mount_point)?;
        if let Some(why) = tmpfs_unsupported(&mount_point) {
            bail!("{why}");
        }
        let mut cmd = Command::new("unshare");
        cmd.args(["-Urm", "sh", "-c"])
            .arg(format!(
                r#"mount -t tmpfs -o size={size_bytes} tmpfs "$0" && exec "$1" serve --listen 127.0.0.1:0 --data-dir "$0""#
            ))
            .arg(&mount_point)
            .arg(binary());
        let mut s = Self::launch(cmd, &mount_point, &tmp.path().join("server.log"), false)?;
        // The test sees the server's tmpfs through its root.
        s.data_dir = Path::new(&format!("/proc/{}/root", s.pid()))
            .join(mount_point.strip_prefix("/").expect("an absolute path"));
        s._tmp = Some(tmp);
        Ok(s)
    }

    /// Resizes the server's tmpfs (`mount -o remount,size=`), from inside its namespaces.
    pub fn resize_tmpfs(&self, size_bytes: u64) -> anyhow::Result<()> {
        let pid = self.pid().to_string();
        let inside = self.mount_point();
        let out = Command::new("nsenter")
            .args(["-t", &pid, "-U", "-m", "mount", "-o"])
            .arg(format!("remount,size={size_bytes}"))
            .arg(&inside)
            .output()
            .context("running nsenter")?;
        if !out.status.success() {
            bail!("remount failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }

    /// The data directory as the server sees it.
    fn mount_point(&self) -> PathBuf {
        let root = format!("/proc/{}/root", self.pid());
        Path::new("/").join(self.data_dir.strip_prefix(root).expect("a tmpfs server"))
    }
}
