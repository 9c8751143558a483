//! The Python client (`clients/python`) against a real server: installed by pip from its
//! sources (see `tributary_e2e::PythonClient`), driven by `clients/python/tests/e2e.py`:
//! admin, produce, a consumer group with a cooperative rebalance, commit, a resume, a
//! member whose user is deleted ending for good, and a member that rejoins by itself after
//! the server is killed and restarted under it. (Its TLS options are tried in `tls.rs`.)

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;

use tributary_e2e::{PythonClient, Server};

#[test]
fn the_python_client_produces_consumes_as_a_group_and_resumes() {
    let client = PythonClient::install();
    let mut server = Server::start();
    let stderr = client.scratch().join("stderr");
    let mut script = client
        .script("e2e.py")
        .args([&server.url, &server.admin_token(), "--restart"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .expect("python runs");
    let mut stdin = script.stdin.take().unwrap();
    let mut steps = Vec::new();
    for line in BufReader::new(script.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line == "RESTART ME" {
            server.kill9();
            server.restart_in_place();
            writeln!(stdin, "RESTARTED").unwrap();
        }
        steps.push(line);
    }
    let status = script.wait().unwrap();
    assert!(
        status.success(),
        "e2e.py failed ({}):\n--- stdout\n{}\n--- stderr\n{}\n--- server log\n{}",
        status,
        steps.join("\n"),
        std::fs::read_to_string(&stderr).unwrap_or_default(),
        server.log()
    );
    let names: Vec<&str> = steps
        .iter()
        .map(|l| l.split(' ').next().unwrap_or(""))
        .collect();
    assert_eq!(
        names,
        [
            "ADMIN",
            "STREAM",
            "ERRORS",
            "PRODUCED",
            "GROUP",
            "COMMITTED",
            "RESUMED",
            "REVOKED",
            "RESTART",
            "RESTARTED",
            "PYTHON"
        ],
        "{}",
        steps.join("\n")
    );
}
