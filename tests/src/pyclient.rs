//! The Python client (`clients/python`), installed for a test: pip builds it from a copy
//! of its sources (generating `tributary.v1` from `proto/` with the test venv's
//! grpcio-tools) into a fresh directory, which the test puts on `PYTHONPATH`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{python, repo_root};

/// An installed copy of the Python client; removed when dropped.
pub struct PythonClient {
    dir: tempfile::TempDir,
}

impl PythonClient {
    /// Builds and installs the client; panics with pip's output when that fails.
    pub fn install() -> PythonClient {
        let dir = tempfile::tempdir().expect("temp dir");
        let src = dir.path().join("src");
        copy_sources(&repo_root().join("clients/python"), &src);
        let out = Command::new(python())
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args([
                "--no-index",
                "--no-deps",
                "--no-build-isolation",
                "--target",
            ])
            .arg(dir.path().join("site"))
            .arg(&src)
            .env("TRIBUTARY_PROTO", repo_root().join("proto"))
            .output()
            .expect("pip runs");
        assert!(
            out.status.success(),
            "pip install of clients/python failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        PythonClient { dir }
    }

    /// A Python command with the client importable, running `script` (relative to
    /// `clients/python/tests`).
    pub fn script(&self, script: &str) -> Command {
        let mut cmd = Command::new(python());
        cmd.arg(repo_root().join("clients/python/tests").join(script))
            .env("PYTHONPATH", self.dir.path().join("site"));
        cmd
    }

    /// A scratch directory that goes with the installation.
    pub fn scratch(&self) -> PathBuf {
        self.dir.path().to_owned()
    }
}

/// Copies the client's sources, leaving out what builds, runs and `generate.py` leave.
fn copy_sources(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        let generated = name == "v1" && from.ends_with("tributary");
        if generated || name == "build" || name == "__pycache__" || name.ends_with(".egg-info") {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        if entry.file_type().unwrap().is_dir() {
            copy_sources(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}
