//! Compiles `proto/` with a pure-Rust protobuf compiler (protox), so a fresh machine needs
//! no `protoc`, then generates prost structs and pbjson serde impls (proto3 canonical JSON).

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/cdr/v1/cdr.proto");
    println!("cargo:rerun-if-changed=build.rs");

    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let file_descriptors = protox::compile(["cdr/v1/cdr.proto"], ["proto"])?;
    let bytes = prost::Message::encode_to_vec(&file_descriptors);
    std::fs::write(out_dir.join("cdr_descriptor.bin"), &bytes)?;

    prost_build::Config::new()
        .extern_path(".google.protobuf.Timestamp", "crate::schema::Timestamp")
        .btree_map(["."])
        .compile_fds(file_descriptors)?;

    pbjson_build::Builder::new()
        .register_descriptors(&bytes)?
        .ignore_unknown_fields()
        .btree_map(["."])
        .build(&[".cdr.v1"])?;
    Ok(())
}
