//! Compiles the UserService contract from `proto-examples/users` (importing
//! `proto-examples/common`) with protox (no protoc needed),
//! generates the tonic/prost code, and keeps the descriptor set the binaries are built with.

use std::path::PathBuf;

use prost::Message;

fn main() {
    let estate =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../../proto-examples");
    // The acme.users.v1 module and the acme.common.v1 module it depends on.
    let roots = [estate.join("users"), estate.join("common")];
    let contract = "acme/users/v1/users.proto";
    for r in &roots {
        println!("cargo:rerun-if-changed={}", r.display());
    }
    let fds = protox::compile([contract], &roots).expect("the UserService contract compiles");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    std::fs::write(out.join("users_descriptor.binpb"), fds.encode_to_vec()).unwrap();
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)
        .expect("code generation");
}
