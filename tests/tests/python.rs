//! The Python client (`clients/python`) against a real server: pip builds and installs it
//! from a copy of its sources (generating `tributary.v1` from `proto/` with grpcio-tools
//! from the test venv), and `clients/python/tests/e2e.py` drives it: admin, produce, a
//! consumer group with a cooperative rebalance, commit, and a resume.

use std::path::Path;
use std::process::{Command, Output};

use tributary_e2e::{Server, python, repo_root};

/// Copies the client's sources, leaving out what builds and runs leave behind.
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

fn explain(what: &str, out: &Output) -> String {
    format!(
        "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Installs the client into a fresh directory; returns it (for `PYTHONPATH`).
fn install_client() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
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
    assert!(out.status.success(), "{}", explain("pip install", &out));
    dir
}

#[test]
fn the_python_client_produces_consumes_as_a_group_and_resumes() {
    let client = install_client();
    let server = Server::start();
    let out = Command::new(python())
        .arg(repo_root().join("clients/python/tests/e2e.py"))
        .args([&server.url, &server.admin_token()])
        .env("PYTHONPATH", client.path().join("site"))
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{}\n--- server log\n{}",
        explain("e2e.py", &out),
        server.log()
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let steps: Vec<&str> = stdout
        .lines()
        .map(|l| l.split(' ').next().unwrap_or(""))
        .collect();
    assert_eq!(
        steps,
        [
            "ADMIN",
            "STREAM",
            "ERRORS",
            "PRODUCED",
            "GROUP",
            "COMMITTED",
            "RESUMED",
            "PYTHON"
        ],
        "{stdout}"
    );
}
