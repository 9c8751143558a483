//! Test kit for end-to-end tests: start real `tributary` processes on ephemeral loopback
//! ports with their own data directories (`Server::builder()`), run CLI verbs against them,
//! kill them; or, where no process of its own is needed, a server inside the test's runtime
//! (`InProcess`).
//!
//! The binary is the one built next to the test executable (`target/<profile>/tributary`),
//! or `$TRIBUTARY_BIN`; `scripts/test.sh` builds it before running the tests.
//!
//! Longer scenarios that also run by hand live here too: the crash loop (`crashloop`,
//! binary `crashloop`).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

pub use tributary_client::Client;

pub mod crashloop;
mod inprocess;
pub use inprocess::InProcess;
pub mod kafka;
mod pki;
pub use pki::Pki;
mod proxy;
pub use proxy::Proxy;
pub mod prometheus;
mod pyclient;
pub use pyclient::PythonClient;
pub mod replication;
mod snapshot;
mod tmpfs;
pub use snapshot::{Snapshot, snapshot};

/// Path of the `tributary` binary under test.
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("TRIBUTARY_BIN") {
        return p.into();
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/tributary; a binary of this crate
    // (target/<profile>/crashloop) has it beside itself.
    let dir = exe.parent().expect("target dir");
    let bin = match dir.join("tributary") {
        beside if beside.exists() => beside,
        _ => dir.parent().expect("target dir").join("tributary"),
    };
    assert!(
        bin.exists(),
        "{} not found: build it first (scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// A running server. Killed (SIGKILL) when dropped.
pub struct Server {
    child: Option<Child>,
    pub url: String,
    /// `HOST:PORT` of the Prometheus endpoint, unless started with `--metrics-listen off`.
    pub metrics_addr: Option<String>,
    /// `HOST:PORT` of the Kafka listener, unless started with `--kafka-listen off`.
    pub kafka_addr: Option<String>,
    pub data_dir: PathBuf,
    log: PathBuf,
    /// How it was started; restarts keep its flags and environment.
    started: Builder,
    _tmp: Option<tempfile::TempDir>,
}

/// How to start a server: `Server::builder().args(&[..]).env(&[..]).data_dir(dir).start()`.
/// By default it runs on a fresh temporary data directory, on `127.0.0.1:0` with its
/// metrics endpoint and its Kafka listener on ports of their own too.
#[derive(Debug, Clone, Default)]
pub struct Builder {
    args: Vec<String>,
    env: Vec<(String, String)>,
    data_dir: Option<PathBuf>,
    tmpfs_bytes: Option<u64>,
}

impl Builder {
    /// Extra `serve` flags.
    pub fn args(mut self, args: &[&str]) -> Builder {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Environment variables of the server process.
    pub fn env(mut self, env: &[(&str, &str)]) -> Builder {
        let pairs = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        self.env.extend(pairs);
        self
    }

    /// Runs on `dir` (created if absent, kept after the server ends).
    pub fn data_dir(mut self, dir: &Path) -> Builder {
        self.data_dir = Some(dir.to_owned());
        self
    }

    /// Runs on a fresh tmpfs of `size_bytes` (`tmpfs.rs`), so the test can fill the disk.
    pub fn tmpfs(mut self, size_bytes: u64) -> Builder {
        self.tmpfs_bytes = Some(size_bytes);
        self
    }

    /// Starts the server and waits until it listens; panics if it does not.
    pub fn start(self) -> Server {
        self.try_start().expect("server starts")
    }

    /// [`Builder::start`], returning why the server did not start.
    pub fn try_start(self) -> anyhow::Result<Server> {
        let tmp = match &self.data_dir {
            Some(_) if self.tmpfs_bytes.is_some() => {
                bail!("a tmpfs server has a data directory of its own")
            }
            Some(_) => None,
            None => Some(tempfile::tempdir()?),
        };
        let mut s = match (&self.data_dir, &tmp) {
            (Some(dir), _) => self.spawn(dir)?,
            (None, Some(tmp)) => match self.tmpfs_bytes {
                Some(size) => tmpfs::launch(tmp.path(), size, &self)?,
                None => self.spawn(tmp.path())?,
            },
            (None, None) => unreachable!("a temporary directory when none is given"),
        };
        s._tmp = tmp;
        s.started = self;
        Ok(s)
    }

    /// Spawns `tributary serve` on `data_dir` and waits until it listens.
    fn spawn(&self, data_dir: &Path) -> anyhow::Result<Server> {
        std::fs::create_dir_all(data_dir)?;
        let mut cmd = Command::new(binary());
        cmd.arg("serve").args(self.serve_args(data_dir));
        let log = data_dir.join("server.log");
        Server::launch(self.with_env(cmd), data_dir, &log, self.tls())
    }

    /// The `serve` flags: on `127.0.0.1:0` unless the extra ones say where, on `data_dir`.
    fn serve_args(&self, data_dir: &Path) -> Vec<std::ffi::OsString> {
        let mut out: Vec<std::ffi::OsString> = Vec::new();
        if !self.args.iter().any(|a| a == "--listen") {
            out.extend(["--listen".into(), "127.0.0.1:0".into()]);
        }
        out.extend(["--data-dir".into(), data_dir.into()]);
        out.extend(self.args.iter().map(Into::into));
        out
    }

    /// Whether it serves TLS (its URL is `https://`).
    fn tls(&self) -> bool {
        self.args.iter().any(|a| a == "--tls-cert")
    }

    fn with_env(&self, mut cmd: Command) -> Command {
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }
}

impl Server {
    /// How to start a server; [`Server::start`] is `Server::builder().start()`.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Starts a server on a fresh temporary data directory.
    pub fn start() -> Server {
        Self::builder().start()
    }

    /// Spawns `cmd` (a `tributary serve` whose data directory is `data_dir`, as this
    /// process sees it), its stderr going to `log`, and waits until it listens.
    fn launch(mut cmd: Command, data_dir: &Path, log: &Path, tls: bool) -> anyhow::Result<Server> {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        // Servers run side by side: each gets its own metrics and Kafka ports unless the
        // test says.
        for flag in ["--metrics-listen", "--kafka-listen"] {
            if !cmd.get_args().any(|a| a == flag) {
                cmd.args([flag, "127.0.0.1:0"]);
            }
        }
        let mut child = cmd
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .context("spawning tributary serve")?;
        // The server prints `tributary metrics on ADDR` and `tributary kafka on ADDR` (for
        // the listeners that are on), then `tributary listening on ADDR` once it accepts
        // connections.
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let (mut metrics_addr, mut kafka_addr) = (None, None);
        let addr = loop {
            let mut line = String::new();
            stdout.read_line(&mut line)?;
            if let Some(a) = line.trim().strip_prefix("tributary metrics on ") {
                metrics_addr = Some(a.to_owned());
                continue;
            }
            if let Some(a) = line.trim().strip_prefix("tributary kafka on ") {
                kafka_addr = Some(a.to_owned());
                continue;
            }
            match line.trim().strip_prefix("tributary listening on ") {
                Some(a) => break a.to_owned(),
                None => {
                    let status = child.wait()?;
                    let log = std::fs::read_to_string(log).unwrap_or_default();
                    bail!("server did not start ({status}); its log:\n{log}");
                }
            }
        };
        let scheme = if tls { "https" } else { "http" };
        Ok(Server {
            url: format!("{scheme}://{addr}"),
            metrics_addr,
            kafka_addr,
            child: Some(child),
            data_dir: data_dir.to_owned(),
            log: log.to_owned(),
            started: Builder::default(),
            _tmp: None,
        })
    }

    /// The cluster admin's token, written by the server at its first start.
    pub fn admin_token(&self) -> String {
        let path = self.data_dir.join("admin.token");
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .trim()
            .to_owned()
    }

    /// A client acting as the cluster admin.
    pub async fn client(&self) -> Client {
        self.client_as(Some(&self.admin_token())).await
    }

    /// A client acting as the holder of `token` (anonymous when `None`).
    pub async fn client_as(&self, token: Option<&str>) -> Client {
        Client::connect(&self.url, token).await.expect("connect")
    }

    /// `kill -9`: no shutdown code runs.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("SIGKILL");
            c.wait().expect("reap");
        }
    }

    /// Sends `signal` (e.g. `TERM`) without waiting for the process.
    pub fn signal(&self, signal: &str) {
        let c = self.child.as_ref().expect("server running");
        let ok = Command::new("kill")
            .args([&format!("-{signal}"), &c.id().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{signal} failed");
    }

    /// Waits for the process to exit.
    pub fn wait(&mut self) -> ExitStatus {
        self.child
            .take()
            .expect("server running")
            .wait()
            .expect("wait")
    }

    /// The Prometheus exposition text from `GET /metrics`, over a plain TCP connection,
    /// with the token of `--metrics-token-file` when the server was started with one.
    pub fn scrape(&self) -> String {
        let addr = self.metrics_addr.as_deref().expect("metrics endpoint on");
        let token = self.metrics_token();
        let auth = HttpAuth {
            token: token.as_deref(),
            ..HttpAuth::default()
        };
        let (status, body) = http_get_as(addr, "/metrics", auth).expect("scrape");
        assert_eq!(status, 200, "{body}");
        body
    }

    /// The content of the server's `--metrics-token-file`, if it has one.
    pub fn metrics_token(&self) -> Option<String> {
        let args = &self.started.args;
        let i = args.iter().position(|a| a == "--metrics-token-file")?;
        let path = args.get(i + 1).expect("a file after --metrics-token-file");
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        Some(text.trim().to_owned())
    }

    /// SIGTERM, then waits for the process to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut c = self.child.take().expect("server running");
        let ok = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -TERM failed");
        c.wait().expect("wait")
    }

    /// Restarts on the same data directory with the same flags (a new port).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the server before restarting it");
        let args = self.args_without_listen();
        self.restart_with(args).expect("server restarts");
    }

    /// Restarts on the same data directory and the same addresses (gRPC's and Kafka's), so
    /// clients that keep reconnecting to it find it again.
    pub fn restart_in_place(&mut self) {
        self.try_restart_in_place().expect("server restarts");
    }

    /// [`Server::restart_in_place`], returning why the server did not start.
    pub fn try_restart_in_place(&mut self) -> anyhow::Result<()> {
        assert!(self.child.is_none(), "stop the server before restarting it");
        let addr = self.url.rsplit("://").next().expect("a URL").to_owned();
        let mut args = self.args_without_listen();
        args.extend(["--listen".to_owned(), addr]);
        if let Some(kafka) = &self.kafka_addr
            && !args.iter().any(|a| a == "--kafka-listen")
        {
            args.extend(["--kafka-listen".to_owned(), kafka.clone()]);
        }
        self.restart_with(args)
    }

    /// Starts again on this data directory, with `args` for the first start's flags.
    fn restart_with(&mut self, args: Vec<String>) -> anyhow::Result<()> {
        let again = Builder {
            args,
            data_dir: Some(self.data_dir.clone()),
            ..self.started.clone()
        };
        let mut next = again.try_start()?;
        self.log = std::mem::take(&mut next.log);
        self.url = std::mem::take(&mut next.url);
        self.metrics_addr = next.metrics_addr.take();
        self.kafka_addr = next.kafka_addr.take();
        self.child = next.child.take();
        Ok(())
    }

    /// The flags the server was started with, less `--listen ADDR` (a restart picks its own).
    fn args_without_listen(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut args = self.started.args.iter();
        while let Some(a) = args.next() {
            if a == "--listen" {
                args.next();
            } else {
                out.push(a.clone());
            }
        }
        out
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server running").id()
    }

    /// A line of the server's `/proc/PID/status` in bytes (`VmRSS`, `VmHWM`).
    pub fn memory(&self, field: &str) -> u64 {
        proc_status_kib(self.pid(), field) * 1024
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A `tributary` CLI command aimed at this server.
    pub fn cli(&self) -> Cli {
        self.cli_as(Some(&self.admin_token()))
    }

    /// A `tributary` CLI command aimed at this server, as the holder of `token`.
    pub fn cli_as(&self, token: Option<&str>) -> Cli {
        Cli::new(&self.url, token)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Creates a volume and a stream in it as `client`'s user.
pub async fn create_stream(
    client: &Client,
    stream: &str,
    attributes: tributary_proto::v1::StreamAttributes,
) {
    use tributary_proto::v1;
    let volume = format!("/{}", stream[1..].split('/').next().expect("a stream path"));
    let mut admin = client.admin();
    admin
        .create_volume(v1::CreateVolumeRequest {
            path: volume,
            ..Default::default()
        })
        .await
        .expect("create volume");
    admin
        .create_stream(v1::CreateStreamRequest {
            path: stream.into(),
            attributes: Some(attributes),
        })
        .await
        .expect("create stream");
}

/// A CLI invocation being built.
pub struct Cli {
    cmd: Command,
}

/// What a CLI run printed.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Panics with the output unless the command succeeded.
    pub fn ok(self) -> Run {
        assert!(
            self.status.success(),
            "command failed: {}\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Panics unless the command failed; returns it for inspection.
    pub fn failed(self) -> Run {
        assert!(
            !self.status.success(),
            "command unexpectedly succeeded:\n{}",
            self.stdout
        );
        self
    }
}

impl Cli {
    /// The CLI aimed at `url`, as the holder of `token`.
    fn new(url: &str, token: Option<&str>) -> Cli {
        let mut cmd = Command::new(binary());
        // Run where no ./data/admin.token can be picked up by accident.
        cmd.env("TRIBUTARY_SERVER", url)
            .env_remove("TRIBUTARY_TOKEN")
            .current_dir(std::env::temp_dir());
        if let Some(t) = token {
            cmd.env("TRIBUTARY_TOKEN", t);
        }
        Cli { cmd }
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// Runs with empty standard input.
    pub fn run(self) -> Run {
        self.run_with_stdin(b"")
    }

    /// Runs with `input` on standard input.
    pub fn run_with_stdin(mut self, input: &[u8]) -> Run {
        let mut child = self
            .cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tributary");
        let mut stdin = child.stdin.take().expect("piped stdin");
        let input = input.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let Output {
            status,
            stdout,
            stderr,
        } = child.wait_with_output().expect("wait");
        writer.join().expect("stdin writer");
        Run {
            status,
            stdout: String::from_utf8_lossy(&stdout).into(),
            stderr: String::from_utf8_lossy(&stderr).into(),
        }
    }
}

/// A `kB` field of `/proc/PID/status`, in KiB.
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().strip_suffix(" kB")?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// A minimal HTTP/1.1 GET (the server closes the connection after its answer): the
/// status code and the body.
pub fn http_get(addr: &str, path: &str) -> anyhow::Result<(u16, String)> {
    http_get_as(addr, path, HttpAuth::default())
}

/// How [`http_get_as`] connects: with a bearer token, and over TLS trusting a CA (PEM)
/// for the name `localhost`.
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpAuth<'a> {
    pub token: Option<&'a str>,
    pub tls_ca_pem: Option<&'a [u8]>,
}

/// [`http_get`] with a token, or over TLS.
pub fn http_get_as(addr: &str, path: &str, auth: HttpAuth<'_>) -> anyhow::Result<(u16, String)> {
    use std::io::Read;
    use tokio_rustls::rustls;
    let tcp = std::net::TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut conn: Box<dyn ReadWrite> = match auth.tls_ca_pem {
        None => Box::new(tcp),
        Some(ca) => {
            use rustls::pki_types::pem::PemObject;
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca) {
                roots.add(cert?)?;
            }
            let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots)
                .with_no_client_auth();
            let name = rustls::pki_types::ServerName::try_from("localhost")?;
            let tls = rustls::ClientConnection::new(std::sync::Arc::new(config), name)?;
            Box::new(rustls::StreamOwned::new(tls, tcp))
        }
    };
    let authorization = auth
        .token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/plain\r\n{authorization}\r\n"
    )?;
    conn.flush()?;
    let mut response = String::new();
    conn.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").context("a response head")?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("a status code")?;
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|l| l.trim().parse().ok())
        .context("a Content-Length")?;
    anyhow::ensure!(
        body.len() == length,
        "body of {} bytes, Content-Length {length}",
        body.len()
    );
    Ok((status, body.to_owned()))
}

/// A plain or TLS connection.
trait ReadWrite: std::io::Read + Write {}
impl<T: std::io::Read + Write> ReadWrite for T {}

/// The Python interpreter of the test venv (grpcio, health and reflection clients,
/// PyYAML), made by `scripts/python-env.sh` on first use. Panics with the reason when it
/// cannot be made: tests that need it fail, they are never skipped.
pub fn python() -> PathBuf {
    static PYTHON: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let script = repo_root().join("scripts/python-env.sh");
            let out = Command::new(&script)
                .stderr(Stdio::inherit())
                .output()
                .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
            assert!(
                out.status.success(),
                "{} failed ({}): the Python test clients could not be installed",
                script.display(),
                out.status
            );
            PathBuf::from(String::from_utf8(out.stdout).expect("a path").trim())
        })
        .clone()
}

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the repository")
        .to_owned()
}

/// Polls `check` until it returns `Some`, or panics after `timeout` naming `what`.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(20)).await; // poll interval, not synchronisation
    }
}
