//! Generated code for the `tributary.v1` gRPC API, and the server's zero-copy wire view of
//! record batches. Nothing hand-written here beyond that view.

#![allow(clippy::all, clippy::pedantic, rust_2018_idioms)]

/// Messages, clients and the Admin server generated from `proto/tributary/v1/*.proto`.
pub mod v1 {
    tonic::include_proto!("tributary.v1");
}

/// Encoded `FileDescriptorSet` of the API, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("tributary_descriptor");

pub mod wire;
