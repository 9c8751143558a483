//! Stock Kafka clients, run against a server's Kafka listener: kcat (Debian's, on the old
//! librdkafka 2.0.2), confluent-kafka, kafka-python and aiokafka (`tests/kafka/clients.py`)
//! and kafkajs (`tests/kafka/kafkajs.js`). `scripts/kafka-clients.sh` installs them once
//! into the cache directory; a test that needs them fails, never skips, when they cannot be.
//!
//! Every client takes the same JSON spec (client, op, bootstrap, security and the op's
//! arguments) and answers one JSON object, so a test runs one case across all of them with
//! [`run`] (metadata) or [`call`] (any op, records included).

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

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

    /// The spec's `security` object, as the client scripts read it.
    pub fn json(&self) -> Value {
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
    if client == "kcat" {
        return kcat(op, bootstrap, topics, sec);
    }
    let mut spec = json!({ "op": op });
    if let Some(t) = topics {
        spec["topics"] = json!(t);
    }
    call(client, bootstrap, sec, spec)
}

/// Runs `spec` (an op and its arguments, as `tests/kafka/clients.py` describes them) with
/// `client` against `bootstrap`; the client's JSON answer. kcat runs produce and consume.
pub fn call(client: &str, bootstrap: &str, sec: &Security, mut spec: Value) -> Value {
    spec["client"] = json!(client);
    spec["bootstrap"] = json!(bootstrap);
    spec["security"] = sec.json();
    let out = match client {
        "kcat" => return kcat_records(bootstrap, sec, &spec),
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

/// The clients' Python running `script` (in `tests/kafka/`), for scripts beyond
/// `clients.py`'s one-shot operations.
pub fn python_script(script: &str) -> Command {
    let mut cmd = stock(&installed().python);
    cmd.arg(repo_root().join("tests/kafka").join(script));
    cmd
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
        let mut cmd = kcat_command(bootstrap, sec);
        cmd.args(["-L", "-J", "-m", "10"]);
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

/// kcat's produce and consume. It produces one line a record, key and value split at a tab,
/// with the first record's headers on every record and its own timestamps; it consumes
/// from the earliest offsets to the end of every partition.
fn kcat_records(bootstrap: &str, sec: &Security, spec: &Value) -> Value {
    let topic = spec["topic"].as_str().expect("a topic");
    let mut cmd = kcat_command(bootstrap, sec);
    cmd.args(["-t", topic]);
    match spec["op"].as_str() {
        Some("produce") => kcat_produce(cmd, spec),
        Some("consume") => kcat_consume(cmd, spec),
        op => panic!("kcat runs no {op:?}"),
    }
}

fn kcat_produce(mut cmd: Command, spec: &Value) -> Value {
    let records = spec["records"].as_array().expect("records");
    let text = |v: &Value| v.as_str().expect("kcat sends no null").to_owned();
    let mut input = String::new();
    for r in records {
        let line = format!("{}\t{}", text(&r["key"]), text(&r["value"]));
        assert!(
            line.matches('\t').count() == 1 && !line.contains('\n'),
            "kcat: a tab or newline in {r}"
        );
        input += &line;
        input.push('\n');
    }
    let partition = records
        .first()
        .map_or(0, |r| r["partition"].as_i64().unwrap());
    assert!(
        records
            .iter()
            .all(|r| r["partition"].as_i64() == Some(partition)),
        "kcat sends one partition a run"
    );
    cmd.args(["-P", "-K", "\t", "-p", &partition.to_string()]);
    cmd.args(["-z", spec["compression"].as_str().unwrap_or("none")]);
    for h in records
        .first()
        .map_or(&vec![], |r| r["headers"].as_array().unwrap())
    {
        cmd.args(["-H", &format!("{}={}", text(&h[0]), text(&h[1]))]);
    }
    let out = piped(cmd, input.as_bytes());
    if !out.status.success() {
        return json!({ "error": String::from_utf8_lossy(&out.stderr) });
    }
    json!({ "produced": records.len() })
}

fn kcat_consume(mut cmd: Command, spec: &Value) -> Value {
    let count = spec["count"].as_u64().expect("a count");
    cmd.args([
        "-C",
        "-J",
        "-o",
        "beginning",
        "-e",
        "-c",
        &count.to_string(),
    ]);
    let out = cmd.output().expect("kcat runs");
    if !out.status.success() {
        return json!({ "error": String::from_utf8_lossy(&out.stderr) });
    }
    let mut records: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let m: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("kcat -J: {e}: {l}"));
            let flat = m["headers"].as_array().cloned().unwrap_or_default();
            let headers: Vec<Value> = flat.chunks(2).map(|kv| json!(kv)).collect();
            json!({
                "partition": m["partition"],
                "offset": m["offset"],
                "key": m["key"],
                "value": m["payload"],
                "headers": headers,
                "timestamp": m["ts"],
            })
        })
        .collect();
    records.sort_by_key(|r| (r["partition"].as_i64(), r["offset"].as_i64()));
    json!({ "records": records })
}

/// kcat with `args` (after the bootstrap and `sec`'s settings), `input` on its standard
/// input: its output, for tests that produce and consume with it.
pub fn kcat_with(bootstrap: &str, sec: &Security, args: &[&str], input: &[u8]) -> Output {
    let mut cmd = kcat_command(bootstrap, sec);
    cmd.args(args);
    piped(cmd, input)
}

/// kcat on `bootstrap` with `sec`'s settings.
fn kcat_command(bootstrap: &str, sec: &Security) -> Command {
    let mut cmd = stock(&installed().kcat);
    cmd.args(["-b", bootstrap]);
    for x in kcat_settings(sec) {
        cmd.args(["-X", &x]);
    }
    cmd
}

/// Runs `cmd` with `input` on its standard input, written from a thread of its own so a
/// child that answers as it reads never blocks on a full pipe; its output.
fn piped(mut cmd: Command, input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kcat runs");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("kcat ends");
    writer
        .join()
        .expect("the writer thread")
        .expect("kcat reads its input");
    out
}
