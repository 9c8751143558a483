//! Tributary's gRPC front: thin tonic handlers over the namespace layer, the server loop,
//! and the single mapping of domain errors to gRPC status codes.
//!
//! **Boundary:** this is the only crate that knows gRPC status codes; handlers decide
//! nothing themselves, they convert and call `tributary-volume` (and, for the Replication
//! service, `tributary-replication`).

mod auth;
mod convert;
mod data;
mod error;
mod health;
pub mod limits;
pub mod metrics;
mod replication;
mod server;
mod services;
mod trace;

pub use error::{ApiError, RETRY_AFTER_MS, request_decoding_status};
pub use health::Health;
pub use server::{ServerOptions, TlsFiles, serve};
pub use services::Services;
pub use tributary_core::quota::{QuotaConfig, QuotaKind, QuotaLimits, Quotas};
