//! Tributary's gRPC front: thin tonic handlers over the namespace layer, the server loop,
//! and the single mapping of domain errors to gRPC status codes.
//!
//! **Boundary:** this is the only crate that knows gRPC status codes; handlers decide
//! nothing themselves, they convert and call `tributary-volume`.

mod auth;
mod convert;
mod error;
pub mod limits;
mod server;
mod services;

pub use error::{ApiError, request_decoding_status};
pub use server::{ServerOptions, TlsFiles, serve};
pub use services::Services;
