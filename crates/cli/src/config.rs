//! The server's configuration, in layers, lowest to highest: built-in defaults, one TOML
//! file (`--config`), `TRIBUTARY_*` environment variables, flags. Each layer is checked on
//! its own, so an error names the key and where it came from (file line, variable or
//! flag); unknown keys in the file are an error. `--check-config` prints the result with
//! the source of every value.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::{Deserialize, Serialize};

use crate::output::{format_duration_ms, parse_duration};

/// Every key, in the order `--check-config` prints them. Key `k` is the environment
/// variable `TRIBUTARY_K` and the flag `--k` (with `-` for `_`).
pub const KEYS: &[&str] = &[
    "data_dir",
    "listen",
    "metrics_listen",
    "metrics_token_file",
    "metrics_tls_cert",
    "metrics_tls_key",
    "admin_token_file",
    "log",
    "log_format",
    "max_message_bytes",
    "retention_interval",
    "producer_expiry",
    "shutdown_delay",
    "allow_anonymous",
    "tls_cert",
    "tls_key",
    "tls_client_ca",
    "quota_requests_per_sec",
    "quota_produce_bytes_per_sec",
    "quota_fetch_bytes_per_sec",
    "quota_burst",
    "quota_users",
    "kafka_listen",
    "kafka_advertised",
    "kafka_default_stream",
    "kafka_aliases",
    "kafka_max_request_bytes",
    "kafka_group_initial_delay",
];

/// Client-side variables the server ignores without a warning.
const CLIENT_VARS: &[&str] = &[
    "TRIBUTARY_CONFIG",
    "TRIBUTARY_SERVER",
    "TRIBUTARY_TOKEN",
    "TRIBUTARY_CA_CERT",
    "TRIBUTARY_CLIENT_CERT",
    "TRIBUTARY_CLIENT_KEY",
    "TRIBUTARY_BIN",
];

/// The effective configuration. See `deploy/tributary.toml` for what each key does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub metrics_listen: Listen,
    /// A file holding the bearer token a scrape must send (read at each scrape).
    pub metrics_token_file: Option<PathBuf>,
    pub metrics_tls_cert: Option<PathBuf>,
    pub metrics_tls_key: Option<PathBuf>,
    /// A file holding the first cluster admin's token (`trb_<id>.<secret>`).
    pub admin_token_file: Option<PathBuf>,
    pub log: String,
    pub log_format: LogFormat,
    pub max_message_bytes: usize,
    #[serde(with = "duration")]
    pub retention_interval: Duration,
    #[serde(with = "duration")]
    pub producer_expiry: Duration,
    #[serde(with = "duration")]
    pub shutdown_delay: Duration,
    pub allow_anonymous: bool,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_client_ca: Option<PathBuf>,
    /// Per-principal rates (0: unlimited); see `tributary_api::Quotas`.
    pub quota_requests_per_sec: u64,
    pub quota_produce_bytes_per_sec: u64,
    pub quota_fetch_bytes_per_sec: u64,
    #[serde(with = "duration")]
    pub quota_burst: Duration,
    /// Overrides by user name; a rate left out is the default's.
    pub quota_users: BTreeMap<String, UserQuota>,
    /// The Kafka listener, or `off`.
    pub kafka_listen: Listen,
    /// `HOST:PORT` Metadata reports to Kafka clients (the listener's address if unset).
    pub kafka_advertised: Option<String>,
    /// Where flat Kafka topic names resolve when no alias rule or user default does.
    pub kafka_default_stream: Option<String>,
    /// `PATTERN=STREAM` rules, tried in order before any default.
    pub kafka_aliases: Vec<String>,
    pub kafka_max_request_bytes: usize,
    /// How long a new Kafka consumer group's first join phase waits for more members.
    #[serde(with = "duration")]
    pub kafka_group_initial_delay: Duration,
}

/// One user's quota overrides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserQuota {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_per_sec: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub produce_bytes_per_sec: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fetch_bytes_per_sec: Option<u64>,
}

impl Settings {
    /// The quotas for the server, with each user's overrides filled in from the defaults.
    pub fn quotas(&self) -> tributary_api::QuotaConfig {
        let default = tributary_api::QuotaLimits {
            requests_per_sec: self.quota_requests_per_sec,
            produce_bytes_per_sec: self.quota_produce_bytes_per_sec,
            fetch_bytes_per_sec: self.quota_fetch_bytes_per_sec,
        };
        let users = self
            .quota_users
            .iter()
            .map(|(name, u)| {
                let limits = tributary_api::QuotaLimits {
                    requests_per_sec: u.requests_per_sec.unwrap_or(default.requests_per_sec),
                    produce_bytes_per_sec: u
                        .produce_bytes_per_sec
                        .unwrap_or(default.produce_bytes_per_sec),
                    fetch_bytes_per_sec: u
                        .fetch_bytes_per_sec
                        .unwrap_or(default.fetch_bytes_per_sec),
                };
                (name.clone(), limits)
            })
            .collect();
        tributary_api::QuotaConfig {
            default,
            burst: self.quota_burst,
            users,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        let server = tributary_server::Config::new("./data");
        Self {
            data_dir: server.data_dir,
            listen: ([127, 0, 0, 1], 7070).into(),
            metrics_listen: Listen::On(([127, 0, 0, 1], 9464).into()),
            metrics_token_file: None,
            metrics_tls_cert: None,
            metrics_tls_key: None,
            admin_token_file: None,
            log: "info".into(),
            log_format: LogFormat::Text,
            max_message_bytes: server.grpc.max_message_bytes,
            retention_interval: server.retention_interval,
            producer_expiry: server.producer_expiry,
            shutdown_delay: Duration::ZERO,
            allow_anonymous: false,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            quota_requests_per_sec: 0,
            quota_produce_bytes_per_sec: 0,
            quota_fetch_bytes_per_sec: 0,
            quota_burst: Duration::from_secs(1),
            quota_users: BTreeMap::new(),
            kafka_listen: Listen::On(([127, 0, 0, 1], 9092).into()),
            kafka_advertised: None,
            kafka_default_stream: None,
            kafka_aliases: Vec::new(),
            kafka_max_request_bytes: tributary_kafka::Options::default().max_request_bytes,
            kafka_group_initial_delay: tributary_server::DEFAULT_GROUP_INITIAL_DELAY,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Where a listener other than gRPC's (the Prometheus endpoint, Kafka's) listens, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    Off,
    On(SocketAddr),
}

impl Serialize for Listen {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Listen::Off => s.serialize_str("off"),
            Listen::On(a) => s.collect_str(a),
        }
    }
}

impl<'de> Deserialize<'de> for Listen {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text == "off" {
            return Ok(Listen::Off);
        }
        text.parse().map(Listen::On).map_err(|_| {
            serde::de::Error::custom(format!(
                "`{text}` is neither `off` nor an address like 127.0.0.1:9464"
            ))
        })
    }
}

/// Durations as the CLI writes them (`500ms`, `30s`, `5m`).
mod duration {
    use super::*;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration_ms(d.as_millis() as u64))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        parse_duration(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// The flags of `tributary serve` that set configuration keys (the top layer).
#[derive(Debug, Default, Args, Serialize)]
pub struct Flags {
    /// Data directory (created if absent) [env: TRIBUTARY_DATA_DIR] [default: ./data]
    #[arg(long, value_name = "DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    data_dir: Option<PathBuf>,
    /// gRPC listen address; port 0 picks a free port [env: TRIBUTARY_LISTEN] [default:
    /// 127.0.0.1:7070]
    #[arg(long, value_name = "ADDR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<SocketAddr>,
    /// Prometheus endpoint (`http://ADDR/metrics`), or `off`; port 0 picks a free port
    /// [env: TRIBUTARY_METRICS_LISTEN] [default: 127.0.0.1:9464]
    #[arg(long, value_name = "ADDR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics_listen: Option<String>,
    /// Refuse scrapes without `Authorization: Bearer TOKEN`, TOKEN being this file's content
    /// (read at each scrape, so it may be rotated in place) [env:
    /// TRIBUTARY_METRICS_TOKEN_FILE]
    #[arg(long, value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics_token_file: Option<PathBuf>,
    /// Serve the metrics endpoint over TLS with this certificate chain (PEM); needs
    /// --metrics-tls-key [env: TRIBUTARY_METRICS_TLS_CERT]
    #[arg(long, value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics_tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --metrics-tls-cert [env: TRIBUTARY_METRICS_TLS_KEY]
    #[arg(long, value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics_tls_key: Option<PathBuf>,
    /// At the first start, make the cluster admin with the token in this file
    /// (`trb_<16 hex digits>.<secret>`, e.g. a mounted Secret) instead of a new one, and
    /// write no admin.token; ignored once the cluster has users [env:
    /// TRIBUTARY_ADMIN_TOKEN_FILE]
    #[arg(long, value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    admin_token_file: Option<PathBuf>,
    /// Log filter, RUST_LOG syntax (e.g. `info,tributary_api=debug`) [env: TRIBUTARY_LOG,
    /// else RUST_LOG] [default: info]
    #[arg(long, value_name = "FILTER")]
    #[serde(skip_serializing_if = "Option::is_none")]
    log: Option<String>,
    /// Log format: text or json [env: TRIBUTARY_LOG_FORMAT] [default: text]
    #[arg(long, value_name = "FORMAT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    log_format: Option<String>,
    /// Largest gRPC message received or sent, in bytes [env: TRIBUTARY_MAX_MESSAGE_BYTES]
    /// [default: 67108864]
    #[arg(long, value_name = "BYTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    max_message_bytes: Option<usize>,
    /// How often retention removes records past their stream's TTL (e.g. 30s, 5m) [env:
    /// TRIBUTARY_RETENTION_INTERVAL] [default: 30s]
    #[arg(long, value_name = "DURATION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    retention_interval: Option<String>,
    /// Forget an idle idempotent producer's sequence state after this long; its next
    /// batch is refused and the client starts over with a new producer id [env:
    /// TRIBUTARY_PRODUCER_EXPIRY] [default: 7d]
    #[arg(long, value_name = "DURATION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    producer_expiry: Option<String>,
    /// After SIGTERM/SIGINT, report NOT_SERVING on gRPC health and keep serving this long
    /// before stopping, so load balancers move away first; a second signal stops at once
    /// [env: TRIBUTARY_SHUTDOWN_DELAY] [default: 0]
    #[arg(long, value_name = "DURATION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    shutdown_delay: Option<String>,
    /// Serve requests without credentials, as the user `anonymous` [env:
    /// TRIBUTARY_ALLOW_ANONYMOUS] [default: false]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    #[serde(skip_serializing_if = "Option::is_none")]
    allow_anonymous: Option<bool>,
    /// Serve TLS with this certificate chain (PEM); needs --tls-key [env: TRIBUTARY_TLS_CERT]
    #[arg(long, value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert [env: TRIBUTARY_TLS_KEY]
    #[arg(long, value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_key: Option<PathBuf>,
    /// Accept client certificates signed by this CA (PEM): mutual TLS, the subject CN naming
    /// the user [env: TRIBUTARY_TLS_CLIENT_CA]
    #[arg(long, value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_client_ca: Option<PathBuf>,
    /// Requests per second each principal may make; past it a call is refused with
    /// RESOURCE_EXHAUSTED and a `retry-after-ms` hint; 0 is unlimited [env:
    /// TRIBUTARY_QUOTA_REQUESTS_PER_SEC] [default: 0]
    #[arg(long, value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    quota_requests_per_sec: Option<u64>,
    /// Bytes per second each principal may produce (record batches in); 0 is unlimited
    /// [env: TRIBUTARY_QUOTA_PRODUCE_BYTES_PER_SEC] [default: 0]
    #[arg(long, value_name = "BYTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    quota_produce_bytes_per_sec: Option<u64>,
    /// Bytes per second each principal may fetch (record batches out, by Fetch and
    /// Subscribe); 0 is unlimited [env: TRIBUTARY_QUOTA_FETCH_BYTES_PER_SEC] [default: 0]
    #[arg(long, value_name = "BYTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    quota_fetch_bytes_per_sec: Option<u64>,
    /// How much unused allowance a principal may save up, as time at its rates [env:
    /// TRIBUTARY_QUOTA_BURST] [default: 1s]
    #[arg(long, value_name = "DURATION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    quota_burst: Option<String>,
    /// Per-user overrides, as an inline TOML table, e.g. `{ ingest = { requests_per_sec =
    /// 0 } }` [env: TRIBUTARY_QUOTA_USERS] [default: {}]
    #[arg(long, value_name = "TABLE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    quota_users: Option<String>,
    /// Kafka listener (Kafka clients' bootstrap address), or `off`; port 0 picks a free
    /// port. It serves TLS when --tls-cert does [env: TRIBUTARY_KAFKA_LISTEN] [default:
    /// 127.0.0.1:9092]
    #[arg(long, value_name = "ADDR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    kafka_listen: Option<String>,
    /// HOST:PORT that Metadata tells Kafka clients to connect to (the listener's own
    /// address when unset) [env: TRIBUTARY_KAFKA_ADVERTISED]
    #[arg(long, value_name = "HOST:PORT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    kafka_advertised: Option<String>,
    /// Stream (`/volume/stream`) where flat Kafka topic names resolve when no alias rule
    /// and no user default applies [env: TRIBUTARY_KAFKA_DEFAULT_STREAM]
    #[arg(long, value_name = "STREAM")]
    #[serde(skip_serializing_if = "Option::is_none")]
    kafka_default_stream: Option<String>,
    /// Kafka topic alias rules, tried in order before the defaults, as a TOML array, e.g.
    /// `["orders*=/acme/orders", "audit=/sec/log"]` [env: TRIBUTARY_KAFKA_ALIASES]
    /// [default: []]
    #[arg(long, value_name = "ARRAY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    kafka_aliases: Option<String>,
    /// Largest Kafka request accepted, in bytes; a larger one closes its connection
    /// unread [env: TRIBUTARY_KAFKA_MAX_REQUEST_BYTES] [default: 104857600]
    #[arg(long, value_name = "BYTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    kafka_max_request_bytes: Option<usize>,
    /// How long a new Kafka consumer group's first rebalance waits for more members, and
    /// again while they keep coming, up to the rebalance timeout (Kafka's
    /// `group.initial.rebalance.delay.ms`; 0 for none) [env:
    /// TRIBUTARY_KAFKA_GROUP_INITIAL_DELAY] [default: 3s]
    #[arg(long, value_name = "DURATION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    kafka_group_initial_delay: Option<String>,
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File(PathBuf),
    Env(String),
    Flag(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => write!(f, "default"),
            Source::File(p) => write!(f, "file {}", p.display()),
            Source::Env(v) => write!(f, "env {v}"),
            Source::Flag(k) => write!(f, "flag {k}"),
        }
    }
}

/// The configuration with the source of each key that has a value.
#[derive(Debug)]
pub struct Loaded {
    pub settings: Settings,
    pub sources: BTreeMap<&'static str, Source>,
    /// `TRIBUTARY_*` variables that name no key (probably a typo).
    pub unknown_vars: Vec<String>,
}

fn env_var(key: &str) -> String {
    format!("TRIBUTARY_{}", key.to_uppercase())
}

fn flag(key: &str) -> String {
    format!("--{}", key.replace('_', "-"))
}

/// Checks one key's value alone, so the error is about that key only.
fn check_one(key: &str, value: &toml::Value) -> Result<(), String> {
    let mut t = toml::Table::new();
    t.insert(key.into(), value.clone());
    t.try_into::<Settings>()
        .map(drop)
        .map_err(|e| e.to_string())
}

/// An environment or flag value as TOML: a boolean, integer or inline table when it reads
/// as one and the key takes one, else a string.
fn typed_value(key: &str, text: &str) -> Result<toml::Value, String> {
    let typed = if let Ok(b) = text.parse::<bool>() {
        Some(toml::Value::Boolean(b))
    } else if let Ok(i) = text.parse::<i64>() {
        Some(toml::Value::Integer(i))
    } else if text.trim_start().starts_with(['{', '[']) {
        // Only table- and array-valued keys take this form: their error is the value's.
        let mut t = format!("v = {text}")
            .parse::<toml::Table>()
            .map_err(|e| format!("`{text}` is not an inline TOML value: {}", e.message()))?;
        let v = t.remove("v").expect("parsed as `v = ...`");
        return check_one(key, &v).map(|()| v);
    } else {
        None
    };
    if let Some(v) = typed.filter(|v| check_one(key, v).is_ok()) {
        return Ok(v);
    }
    let v = toml::Value::String(text.to_owned());
    check_one(key, &v)?;
    Ok(v)
}

/// Builds the configuration from its layers. `env` reads a variable (injected for tests).
pub fn load(
    file: Option<&Path>,
    flags: &Flags,
    env: &dyn Fn(&str) -> Option<String>,
    vars: impl IntoIterator<Item = String>,
) -> anyhow::Result<Loaded> {
    let mut merged = toml::Table::try_from(Settings::default())?;
    let mut sources: BTreeMap<&'static str, Source> = KEYS
        .iter()
        .filter(|k| merged.contains_key(**k))
        .map(|k| (*k, Source::Default))
        .collect();
    let key_of = |k: &str| KEYS.iter().copied().find(|known| *known == k);

    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        // Parsed whole first: the error names the key and its line.
        toml::from_str::<Settings>(&text)
            .map_err(|e| anyhow::anyhow!("in {}: {e}", path.display()))?;
        for (k, v) in text.parse::<toml::Table>()? {
            let key = key_of(&k).expect("the file parsed, so every key is known");
            merged.insert(k, v);
            sources.insert(key, Source::File(path.to_owned()));
        }
    }

    for key in KEYS {
        let var = env_var(key);
        let (name, text) = match env(&var) {
            Some(t) => (var, t),
            // RUST_LOG is the usual way to set a log filter; TRIBUTARY_LOG beats it.
            None if *key == "log" => match env("RUST_LOG") {
                Some(t) => ("RUST_LOG".into(), t),
                None => continue,
            },
            None => continue,
        };
        let v = typed_value(key, &text).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        merged.insert((*key).into(), v);
        sources.insert(key, Source::Env(name));
    }

    for (k, v) in toml::Table::try_from(flags)? {
        let key = key_of(&k).expect("every flag is a key");
        let v = match v {
            toml::Value::String(text) => typed_value(key, &text),
            v => check_one(key, &v).map(|()| v),
        }
        .map_err(|e| anyhow::anyhow!("{}: {e}", flag(key)))?;
        merged.insert(k, v);
        sources.insert(key, Source::Flag(flag(key)));
    }

    let settings: Settings = merged.try_into()?;
    validate(&settings)?;
    let known: Vec<String> = KEYS.iter().map(|k| env_var(k)).collect();
    let unknown_vars = vars
        .into_iter()
        .filter(|v| v.starts_with("TRIBUTARY_"))
        .filter(|v| !known.contains(v) && !CLIENT_VARS.contains(&v.as_str()))
        .collect();
    Ok(Loaded {
        settings,
        sources,
        unknown_vars,
    })
}

/// Checks that involve several keys or the filesystem, naming the keys at fault.
fn validate(s: &Settings) -> anyhow::Result<()> {
    use anyhow::bail;
    if s.retention_interval.is_zero() {
        bail!("retention_interval: must be above zero");
    }
    if s.max_message_bytes < 1024 {
        bail!(
            "max_message_bytes: {} is below the 1024-byte minimum",
            s.max_message_bytes
        );
    }
    if s.tls_cert.is_some() != s.tls_key.is_some() {
        bail!("tls_cert and tls_key go together: give both or neither");
    }
    let protects = s.metrics_token_file.is_some() || s.metrics_tls_cert.is_some();
    if s.metrics_listen == Listen::Off && protects {
        bail!("metrics_token_file and metrics_tls_*: the metrics endpoint is off (metrics_listen)");
    }
    if s.metrics_tls_cert.is_some() != s.metrics_tls_key.is_some() {
        bail!("metrics_tls_cert and metrics_tls_key go together: give both or neither");
    }
    if s.tls_client_ca.is_some() && s.tls_cert.is_none() {
        bail!("tls_client_ca: needs tls_cert and tls_key");
    }
    if s.quota_burst.is_zero() {
        bail!("quota_burst: must be above zero");
    }
    if s.quota_users.contains_key("") {
        bail!("quota_users: a user name is empty");
    }
    kafka_names(s)?;
    tracing_subscriber::EnvFilter::try_new(&s.log)
        .map_err(|e| anyhow::anyhow!("log: `{}` is not a log filter: {e}", s.log))?;
    for (key, path) in [
        ("tls_cert", &s.tls_cert),
        ("tls_key", &s.tls_key),
        ("tls_client_ca", &s.tls_client_ca),
        ("metrics_token_file", &s.metrics_token_file),
        ("metrics_tls_cert", &s.metrics_tls_cert),
        ("metrics_tls_key", &s.metrics_tls_key),
        ("admin_token_file", &s.admin_token_file),
    ] {
        if let Some(p) = path {
            std::fs::metadata(p).map_err(|e| anyhow::anyhow!("{key}: {}: {e}", p.display()))?;
        }
    }
    Ok(())
}

/// The Kafka listener's names, checked: the advertised address, the default stream and the
/// alias rules, each error naming its key.
pub fn kafka_names(s: &Settings) -> anyhow::Result<KafkaNames> {
    let advertised = match &s.kafka_advertised {
        None => None,
        Some(a) => {
            let bad = || anyhow::anyhow!("kafka_advertised: `{a}` is not HOST:PORT");
            let (host, port) = a.rsplit_once(':').ok_or_else(bad)?;
            let port: u16 = port.parse().map_err(|_| bad())?;
            if host.is_empty() || port == 0 {
                return Err(bad());
            }
            Some((host.trim_matches(['[', ']']).to_owned(), port))
        }
    };
    let default_stream = s
        .kafka_default_stream
        .as_deref()
        .map(|p| tributary_core::names::StreamPath::parse("kafka_default_stream", p))
        .transpose()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let aliases = s
        .kafka_aliases
        .iter()
        .map(|r| tributary_core::kafka_names::AliasRule::parse("kafka_aliases", r))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if s.kafka_max_request_bytes < 1024 {
        anyhow::bail!(
            "kafka_max_request_bytes: {} is below the 1024-byte minimum",
            s.kafka_max_request_bytes
        );
    }
    Ok(KafkaNames {
        advertised,
        default_stream,
        aliases,
    })
}

/// What [`kafka_names`] reads from the settings.
#[derive(Debug)]
pub struct KafkaNames {
    pub advertised: Option<(String, u16)>,
    pub default_stream: Option<tributary_core::names::StreamPath>,
    pub aliases: Vec<tributary_core::kafka_names::AliasRule>,
}

impl Loaded {
    /// The effective configuration as TOML, each value followed by its source; keys
    /// without a value are listed as comments. The output is itself a valid config file.
    pub fn render(&self) -> String {
        let table = toml::Table::try_from(&self.settings).expect("settings serialize");
        let mut out = String::from(
            "# Effective configuration of `tributary serve` (each value's source follows it).\n",
        );
        for key in KEYS {
            match (table.get(*key), self.sources.get(key)) {
                (Some(v), Some(src)) => out.push_str(&format!("{key} = {v}  # {src}\n")),
                _ => out.push_str(&format!("# {key} is not set\n")),
            }
        }
        for v in &self.unknown_vars {
            out.push_str(&format!("# warning: {v} is set but names no setting\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn defaults_alone() {
        let l = load(None, &Flags::default(), &env(&[]), []).unwrap();
        assert_eq!(l.settings, Settings::default());
        assert_eq!(l.sources["listen"], Source::Default);
        assert!(!l.sources.contains_key("tls_cert"));
    }

    #[test]
    fn file_then_env_then_flags() {
        let f = file(
            "listen = \"127.0.0.1:1\"\nlog = \"warn\"\nretention_interval = \"1m\"\nallow_anonymous = true\n",
        );
        let vars = env(&[
            ("TRIBUTARY_LOG", "debug"),
            ("TRIBUTARY_RETENTION_INTERVAL", "2m"),
            ("TRIBUTARY_ALLOW_ANONYMOUS", "false"),
            ("TRIBUTARY_MAX_MESSAGE_BYTES", "4096"),
            ("RUST_LOG", "error"),
        ]);
        let flags = Flags {
            retention_interval: Some("3m".into()),
            ..Flags::default()
        };
        let l = load(Some(f.path()), &flags, &vars, []).unwrap();
        let s = &l.settings;
        assert_eq!(
            s.listen,
            "127.0.0.1:1".parse().unwrap(),
            "file beats default"
        );
        assert_eq!(
            s.log, "debug",
            "env beats file, TRIBUTARY_LOG beats RUST_LOG"
        );
        assert!(!s.allow_anonymous, "env beats file");
        assert_eq!(s.max_message_bytes, 4096);
        assert_eq!(
            s.retention_interval,
            Duration::from_secs(180),
            "flag beats env"
        );
        assert_eq!(l.sources["listen"], Source::File(f.path().to_owned()));
        assert_eq!(l.sources["log"], Source::Env("TRIBUTARY_LOG".into()));
        assert_eq!(
            l.sources["retention_interval"],
            Source::Flag("--retention-interval".into())
        );
        // A string-typed key keeps a numeric-looking value as a string.
        let l = load(None, &Flags::default(), &env(&[("TRIBUTARY_LOG", "7")]), []).unwrap();
        assert_eq!(l.settings.log, "7".to_string());
    }

    #[test]
    fn errors_name_the_key_and_its_source() {
        let f = file("listen = \"127.0.0.1:1\"\nlisten_addr = \"x\"\n");
        let e = load(Some(f.path()), &Flags::default(), &env(&[]), [])
            .unwrap_err()
            .to_string();
        assert!(e.contains("listen_addr"), "{e}");
        assert!(e.contains("line 2"), "{e}");

        let e = load(
            None,
            &Flags::default(),
            &env(&[("TRIBUTARY_LISTEN", "nope")]),
            [],
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("TRIBUTARY_LISTEN: "), "{e}");

        let flags = Flags {
            shutdown_delay: Some("soon".into()),
            ..Flags::default()
        };
        let e = load(None, &flags, &env(&[]), []).unwrap_err().to_string();
        assert!(e.starts_with("--shutdown-delay: "), "{e}");

        let f = file("tls_cert = \"/x\"\n");
        let e = load(Some(f.path()), &Flags::default(), &env(&[]), [])
            .unwrap_err()
            .to_string();
        assert!(e.contains("tls_key"), "{e}");
    }

    #[test]
    fn metrics_listen_may_be_off() {
        let vars = env(&[("TRIBUTARY_METRICS_LISTEN", "off")]);
        let l = load(None, &Flags::default(), &vars, []).unwrap();
        assert_eq!(l.settings.metrics_listen, Listen::Off);
        // Protecting an endpoint that is off is a mistake worth naming.
        let f = file("metrics_listen = \"off\"\nmetrics_token_file = \"/t\"\n");
        let e = load(Some(f.path()), &Flags::default(), &env(&[]), [])
            .unwrap_err()
            .to_string();
        assert!(e.contains("the metrics endpoint is off"), "{e}");
    }

    #[test]
    fn render_is_a_config_file_with_sources() {
        let vars = env(&[("TRIBUTARY_LISTEN", "127.0.0.1:0")]);
        let l = load(None, &Flags::default(), &vars, ["TRIBUTARY_LISTN".into()]).unwrap();
        let text = l.render();
        assert!(
            text.contains("listen = \"127.0.0.1:0\"  # env TRIBUTARY_LISTEN"),
            "{text}"
        );
        assert!(text.contains("# tls_cert is not set"), "{text}");
        assert!(text.contains("TRIBUTARY_LISTN"), "{text}");
        let back: Settings = toml::from_str(&text).unwrap();
        assert_eq!(back, l.settings);
    }

    #[test]
    fn quotas_from_every_layer_with_user_overrides() {
        let f = file(
            "quota_requests_per_sec = 100\nquota_fetch_bytes_per_sec = 1000\n\n[quota_users.ingest]\nrequests_per_sec = 0\n\n[quota_users.slow]\nproduce_bytes_per_sec = 10\n",
        );
        let l = load(Some(f.path()), &Flags::default(), &env(&[]), []).unwrap();
        let q = l.settings.quotas();
        assert_eq!(q.default.requests_per_sec, 100);
        assert_eq!(q.burst, Duration::from_secs(1));
        let ingest = q.users["ingest"];
        assert_eq!(
            (ingest.requests_per_sec, ingest.fetch_bytes_per_sec),
            (0, 1000),
            "an override keeps the defaults it does not name"
        );
        assert_eq!(q.users["slow"].produce_bytes_per_sec, 10);
        assert_eq!(q.users["slow"].requests_per_sec, 100);
        // Printed as a config file that reads back the same.
        let text = l.render();
        let back: Settings = toml::from_str(&text).unwrap();
        assert_eq!(back, l.settings, "{text}");

        let vars = env(&[
            (
                "TRIBUTARY_QUOTA_USERS",
                "{ b = { fetch_bytes_per_sec = 5 } }",
            ),
            ("TRIBUTARY_QUOTA_BURST", "250ms"),
        ]);
        let flags = Flags {
            quota_produce_bytes_per_sec: Some(7),
            ..Flags::default()
        };
        let l = load(Some(f.path()), &flags, &vars, []).unwrap();
        let q = l.settings.quotas();
        assert_eq!(q.users.keys().collect::<Vec<_>>(), ["b"], "env beats file");
        assert_eq!(q.users["b"].fetch_bytes_per_sec, 5);
        assert_eq!(q.default.produce_bytes_per_sec, 7);
        assert_eq!(q.burst, Duration::from_millis(250));
        assert_eq!(
            l.sources["quota_users"],
            Source::Env("TRIBUTARY_QUOTA_USERS".into())
        );

        let flags = Flags {
            quota_users: Some("{ c = { requests_per_sec = 3 } }".into()),
            ..Flags::default()
        };
        let l = load(None, &flags, &env(&[]), []).unwrap();
        assert_eq!(l.settings.quotas().users["c"].requests_per_sec, 3);
    }

    #[test]
    fn bad_quotas_name_the_key() {
        let f = file("[quota_users.a]\nrequests = 1\n");
        let e = load(Some(f.path()), &Flags::default(), &env(&[]), [])
            .unwrap_err()
            .to_string();
        assert!(e.contains("requests"), "{e}");
        let vars = env(&[("TRIBUTARY_QUOTA_USERS", "{ a = { requests = 1 } }")]);
        let e = load(None, &Flags::default(), &vars, [])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("TRIBUTARY_QUOTA_USERS: ") && e.contains("unknown field `requests`"),
            "{e}"
        );
        let vars = env(&[("TRIBUTARY_QUOTA_USERS", "{ a = ")]);
        let e = load(None, &Flags::default(), &vars, [])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("TRIBUTARY_QUOTA_USERS: "), "{e}");
        let vars = env(&[("TRIBUTARY_QUOTA_REQUESTS_PER_SEC", "-1")]);
        let e = load(None, &Flags::default(), &vars, [])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("TRIBUTARY_QUOTA_REQUESTS_PER_SEC: "), "{e}");
        let flags = Flags {
            quota_burst: Some("0s".into()),
            ..Flags::default()
        };
        let e = load(None, &flags, &env(&[]), []).unwrap_err().to_string();
        assert!(e.contains("quota_burst"), "{e}");
    }

    #[test]
    fn kafka_keys_are_checked_and_layered() {
        let f = file(
            "kafka_listen = \"off\"\nkafka_aliases = [\"orders*=/acme/orders\"]\nkafka_default_stream = \"/acme/s\"\n",
        );
        let l = load(Some(f.path()), &Flags::default(), &env(&[]), []).unwrap();
        assert_eq!(l.settings.kafka_listen, Listen::Off);
        let names = kafka_names(&l.settings).unwrap();
        assert_eq!(names.aliases.len(), 1);
        assert_eq!(names.default_stream.unwrap().as_str(), "/acme/s");
        let vars = env(&[
            ("TRIBUTARY_KAFKA_ALIASES", "[\"a=/v/s\", \"b*=/v/t\"]"),
            ("TRIBUTARY_KAFKA_LISTEN", "127.0.0.1:0"),
        ]);
        let flags = Flags {
            kafka_advertised: Some("kafka.example.com:9093".into()),
            ..Flags::default()
        };
        let l = load(Some(f.path()), &flags, &vars, []).unwrap();
        assert_eq!(l.settings.kafka_aliases.len(), 2, "env beats file");
        let names = kafka_names(&l.settings).unwrap();
        assert_eq!(
            names.advertised,
            Some(("kafka.example.com".to_string(), 9093))
        );
        let back: Settings = toml::from_str(&l.render()).unwrap();
        assert_eq!(back, l.settings);
        for (key, value, needle) in [
            (
                "TRIBUTARY_KAFKA_ALIASES",
                "[\"nopattern\"]",
                "kafka_aliases",
            ),
            (
                "TRIBUTARY_KAFKA_DEFAULT_STREAM",
                "acme",
                "kafka_default_stream",
            ),
            ("TRIBUTARY_KAFKA_ADVERTISED", "host", "kafka_advertised"),
            (
                "TRIBUTARY_KAFKA_LISTEN",
                "nowhere",
                "TRIBUTARY_KAFKA_LISTEN",
            ),
            (
                "TRIBUTARY_KAFKA_MAX_REQUEST_BYTES",
                "10",
                "kafka_max_request_bytes",
            ),
        ] {
            let e = load(None, &Flags::default(), &env(&[(key, value)]), [])
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{key}={value}: {e}");
        }
    }

    #[test]
    fn every_key_is_listed_once() {
        let full = Settings {
            tls_cert: Some("/c".into()),
            tls_key: Some("/k".into()),
            tls_client_ca: Some("/ca".into()),
            metrics_token_file: Some("/t".into()),
            metrics_tls_cert: Some("/mc".into()),
            metrics_tls_key: Some("/mk".into()),
            admin_token_file: Some("/a".into()),
            kafka_advertised: Some("h:1".into()),
            kafka_default_stream: Some("/v/s".into()),
            ..Settings::default()
        };
        let table = toml::Table::try_from(full).unwrap();
        let mut keys: Vec<&str> = table.keys().map(String::as_str).collect();
        let mut listed = KEYS.to_vec();
        keys.sort_unstable();
        listed.sort_unstable();
        assert_eq!(keys, listed);
    }
}
