//! Generates the tributary.v1 messages, clients and the Admin server from `proto/`, and the
//! Producer/Consumer servers and clients over the zero-copy wire types of `src/wire.rs`.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "tributary/v1/records.proto",
    "tributary/v1/admin.proto",
    "tributary/v1/producer.proto",
    "tributary/v1/consumer.proto",
    "tributary/v1/replication.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time, not with env!(): a compiled build script is reused by every clone
    // that shares the target directory, and must look at its own clone's files.
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let protos: Vec<PathBuf> = PROTOS.iter().map(|p| root.join(p)).collect();
    for p in &protos {
        println!("cargo:rerun-if-changed={}", p.display());
    }

    // protoc comes from the protoc-bin-vendored crate: no system protoc needed.
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    // Payload fields decode as `Bytes` slices of the request buffer instead of copies.
    config.bytes(["."]);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("tributary_descriptor.bin"))
        .compile_with_config(config, &protos, &[root])?;

    // The server side of Produce and Fetch treats record batches as opaque bytes.
    let wire_out = out.join("wire");
    std::fs::create_dir_all(&wire_out)?;
    let method = |name: &str, route: &str, input: &str, output: &str| {
        tonic_build::manual::Method::builder()
            .name(name)
            .route_name(route)
            .input_type(input)
            .output_type(output)
            .codec_path("crate::wire::Codec")
            .build()
    };
    let producer = tonic_build::manual::Service::builder()
        .name("Producer")
        .package("tributary.v1")
        .method(method(
            "produce",
            "Produce",
            "crate::wire::ProduceRequest",
            "crate::v1::ProduceResponse",
        ))
        .method(method(
            "init_producer",
            "InitProducer",
            "crate::v1::InitProducerRequest",
            "crate::v1::InitProducerResponse",
        ))
        .method(method(
            "get_partitions",
            "GetPartitions",
            "crate::v1::GetPartitionsRequest",
            "crate::v1::GetPartitionsResponse",
        ))
        .build();
    let consumer = tonic_build::manual::Service::builder()
        .name("Consumer")
        .package("tributary.v1")
        .method(method(
            "fetch",
            "Fetch",
            "crate::v1::FetchRequest",
            "crate::wire::FetchResponse",
        ))
        .method(method(
            "list_offsets",
            "ListOffsets",
            "crate::v1::ListOffsetsRequest",
            "crate::v1::ListOffsetsResponse",
        ))
        .method(
            tonic_build::manual::Method::builder()
                .name("subscribe")
                .route_name("Subscribe")
                .input_type("crate::v1::SubscribeRequest")
                .output_type("crate::wire::SubscribeResponse")
                .codec_path("crate::wire::Codec")
                .client_streaming()
                .server_streaming()
                .build(),
        )
        .method(method(
            "commit_offsets",
            "CommitOffsets",
            "crate::v1::CommitOffsetsRequest",
            "crate::v1::CommitOffsetsResponse",
        ))
        .method(method(
            "list_groups",
            "ListGroups",
            "crate::v1::ListGroupsRequest",
            "crate::v1::ListGroupsResponse",
        ))
        .method(method(
            "describe_group",
            "DescribeGroup",
            "crate::v1::DescribeGroupRequest",
            "crate::v1::GroupDescription",
        ))
        .method(method(
            "reset_group",
            "ResetGroup",
            "crate::v1::ResetGroupRequest",
            "crate::v1::GroupDescription",
        ))
        .method(method(
            "delete_group",
            "DeleteGroup",
            "crate::v1::DeleteGroupRequest",
            "crate::v1::DeleteGroupResponse",
        ))
        .build();
    // The clients too: the Rust client fetches over the wire types, so it can send the next
    // fetch before it decodes this one's batches.
    tonic_build::manual::Builder::new()
        .out_dir(&wire_out)
        .compile(&[producer, consumer]);
    Ok(())
}
