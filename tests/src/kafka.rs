//! Stock Kafka clients, run against a server's Kafka listener: kcat (Debian's, on the old
//! librdkafka 2.0.2), confluent-kafka, kafka-python and aiokafka (`tests/kafka/clients.py`)
//! and kafkajs (`tests/kafka/kafkajs.js`). `scripts/kafka-clients.sh` installs them once
//! into the cache directory; a test that needs them fails, never skips, when they cannot be.
//!
//! Every client takes the same JSON spec (client, op, bootstrap, topics, security) and
//! answers one JSON object, so a test runs one case across all of them with [`run`].

use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::repo_root;

/// Every client, by the name the specs use.
pub const CLIENTS: &[&str] = &["kcat", "confluent", "kafka-python", "aiokafka", "kafkajs"];

/// Where `scripts/kafka-clients.sh` put the clients.
struct Installed {
    kcat: PathBuf,
    python: PathBuf,
    node_modules: PathBuf,
}

fn installed() -> &'static Installed {
    static INSTALLED: std::sync::OnceLock<Installed> = std::sync::OnceLock::new();
    INSTALLED.get_or_init(|| {
        let script = repo_root().join("scripts/kafka-clients.sh");
        let out = Command::new(&script)
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "{} failed ({}): the Kafka clients could not be installed",
            script.display(),
            out.status
        );
        let text = String::from_utf8(out.stdout).expect("paths");
        let path = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}=")))
                .map(PathBuf::from)
                .unwrap_or_else(|| panic!("{} printed no {name}=: {text}", script.display()))
        };
        Installed {
            kcat: path("kcat"),
            python: path("python"),
            node_modules: path("node_modules"),
        }
    })
}

/// The clients' Python (confluent-kafka, kafka-python, aiokafka), on its own libraries,
/// for a test's own script.
pub fn python() -> Command {
    stock(&installed().python)
}

/// How a client authenticates: the security protocol and, for SASL, the mechanism and
/// credentials (OAUTHBEARER's token is the password); PEM files for SSL.
#[derive(Debug, Clone, Default)]
pub struct Security {
    pub protocol: &'static str,
    pub mechanism: Option<&'static str>,
    pub user: String,
    pub password: String,
    pub ca: Option<PathBuf>,
    pub cert: Option<(PathBuf, PathBuf)>,
}

impl Security {
    pub fn plaintext() -> Security {
        Security {
            protocol: "PLAINTEXT",
            ..Security::default()
        }
    }

    /// SASL_PLAINTEXT with `mechanism`.
    pub fn sasl(mechanism: &'static str, user: &str, password: &str) -> Security {
        Security {
            protocol: "SASL_PLAINTEXT",
            mechanism: Some(mechanism),
            user: user.to_owned(),
            password: password.to_owned(),
            ..Security::default()
        }
    }

    fn json(&self) -> Value {
        let mut v = json!({ "protocol": self.protocol });
        if let Some(m) = self.mechanism {
            v["mechanism"] = json!(m);
            v["user"] = json!(self.user);
            v["password"] = json!(self.password);
        }
        if let Some(ca) = &self.ca {
            v["ca"] = json!(ca);
        }
        if let Some((cert, key)) = &self.cert {
            v["cert"] = json!(cert);
            v["key"] = json!(key);
        }
        v
    }
}

/// Runs `op` with `client` against `bootstrap`; the client's JSON answer.
pub fn run(
    client: &str,
    op: &str,
    bootstrap: &str,
    topics: Option<&[&str]>,
    sec: &Security,
) -> Value {
    let mut spec = json!({
        "client": client,
        "op": op,
        "bootstrap": bootstrap,
        "security": sec.json(),
    });
    if let Some(t) = topics {
        spec["topics"] = json!(t);
    }
    let out = match client {
        "kcat" => return kcat(op, bootstrap, topics, sec),
        "kafkajs" => stock("node")
            .arg(repo_root().join("tests/kafka/kafkajs.js"))
            .arg(spec.to_string())
            .env("NODE_PATH", &installed().node_modules)
            .output(),
        _ => stock(&installed().python)
            .arg(repo_root().join("tests/kafka/clients.py"))
            .arg(spec.to_string())
            .output(),
    }
    .unwrap_or_else(|e| panic!("{client}: {e}"));
    answer(client, &out)
}

/// A stock client's process, on its own libraries: cargo's test runner puts the build's
/// native library directories on `LD_LIBRARY_PATH`, where the `rdkafka` crate's own
/// librdkafka (built without SSL or SASL) would stand in for the client's.
fn stock(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_remove("LD_LIBRARY_PATH");
    cmd
}

fn answer(client: &str, out: &std::process::Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "{client} answered no JSON ({e}; {}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// kcat's librdkafka settings for `sec`.
fn kcat_settings(sec: &Security) -> Vec<String> {
    let mut x = vec![format!("security.protocol={}", sec.protocol)];
    if let Some(m) = sec.mechanism {
        x.push(format!("sasl.mechanisms={m}"));
        x.push(format!("sasl.username={}", sec.user));
        x.push(format!("sasl.password={}", sec.password));
    }
    if let Some(ca) = &sec.ca {
        x.push(format!("ssl.ca.location={}", ca.display()));
    }
    if let Some((cert, key)) = &sec.cert {
        x.push(format!("ssl.certificate.location={}", cert.display()));
        x.push(format!("ssl.key.location={}", key.display()));
    }
    x
}

/// kcat, answering as the other clients do.
fn kcat(op: &str, bootstrap: &str, topics: Option<&[&str]>, sec: &Security) -> Value {
    assert_eq!(op, "metadata", "kcat runs metadata only so far");
    let mut result = serde_json::Map::new();
    let names: Vec<Option<&str>> = match topics {
        None => vec![None],
        Some(t) => t.iter().map(|t| Some(*t)).collect(),
    };
    for name in names {
        let mut cmd = stock(&installed().kcat);
        cmd.args(["-L", "-J", "-m", "10", "-b", bootstrap]);
        for x in kcat_settings(sec) {
            cmd.args(["-X", &x]);
        }
        if let Some(t) = name {
            cmd.args(["-t", t]);
        }
        let out = cmd.output().expect("kcat runs");
        if !out.status.success() {
            return json!({ "error": String::from_utf8_lossy(&out.stderr) });
        }
        let md: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("kcat -J: {e}: {}", String::from_utf8_lossy(&out.stdout)));
        for t in md["topics"].as_array().into_iter().flatten() {
            let name = t["topic"].as_str().expect("a topic name").to_owned();
            let answer = match t.get("error") {
                Some(e) => json!(e),
                None => json!(t["partitions"].as_array().map_or(0, Vec::len)),
            };
            result.insert(name, answer);
        }
    }
    json!({ "topics": result })
}
