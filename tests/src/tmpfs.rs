//! A server whose data directory is a small tmpfs, so a test can fill the disk and give
//! space back. The tmpfs is mounted in a user and mount namespace of the server's own
//! (`unshare -Urm`), which needs no root: only the server sees it, and the test reaches
//! it through `/proc/PID/root`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::{Builder, Server, binary};

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

/// Starts a server (as `builder` says) on a fresh tmpfs of `size_bytes`, mounted over a
/// directory in `tmp` in the server's own user and mount namespace.
pub(crate) fn launch(tmp: &Path, size_bytes: u64, builder: &Builder) -> anyhow::Result<Server> {
    let mount_point = tmp.join("data");
    std::fs::create_dir(&mount_point)?;
    if let Some(why) = tmpfs_unsupported(&mount_point) {
        bail!("{why}");
    }
    // The mount point is the same path inside: `$0` is it, `$@` the server's command.
    let mut cmd = Command::new("unshare");
    cmd.args(["-Urm", "sh", "-c"])
        .arg(format!(
            r#"mount -t tmpfs -o size={size_bytes} tmpfs "$0" && exec "$@""#
        ))
        .arg(&mount_point)
        .arg(binary())
        .arg("serve")
        .args(builder.serve_args(&mount_point));
    let log = tmp.join("server.log");
    let mut s = Server::launch(builder.with_env(cmd), &mount_point, &log, builder.tls())?;
    // The test sees the server's tmpfs through its root.
    s.data_dir = Path::new(&format!("/proc/{}/root", s.pid()))
        .join(mount_point.strip_prefix("/").expect("an absolute path"));
    Ok(s)
}

impl Server {
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
