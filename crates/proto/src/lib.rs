//! Generated code for the `tributary.v1` gRPC API, the server's zero-copy wire view of
//! record batches, and the one walker over protobuf framing that reads encoded batches
//! without decoding them. Nothing hand-written here beyond those two.

#![allow(clippy::all, clippy::pedantic, rust_2018_idioms)]

/// Messages, clients and the Admin server generated from `proto/tributary/v1/*.proto`.
pub mod v1 {
    tonic::include_proto!("tributary.v1");
}

/// Encoded `FileDescriptorSet` of the API, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("tributary_descriptor");

pub mod walk;
pub mod wire;
