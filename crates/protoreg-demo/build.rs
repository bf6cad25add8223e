//! Compiles the UserService contract from `proto-examples/` with protox (no protoc needed),
//! generates the tonic/prost code, and keeps the descriptor set the binaries are built with.

use std::path::PathBuf;

use prost::Message;

fn main() {
    let root =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../../proto-examples");
    let contract = "acme/users/v1/users.proto";
    println!("cargo:rerun-if-changed={}", root.join("acme").display());
    let fds = protox::compile([contract], [&root]).expect("the UserService contract compiles");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    std::fs::write(out.join("users_descriptor.binpb"), fds.encode_to_vec()).unwrap();
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)
        .expect("code generation");
}
