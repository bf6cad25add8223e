//! The protoreg gRPC demo: `acme.users.v1.UserService` on an in-memory store, with its
//! contract pinned to a registered version (`protoreg.lock`). The server refuses to start when
//! the contract it was built with drifted from the pin; the client compares pins on connect.

pub mod pin;
pub mod service;

/// Generated code for the contract.
pub mod pb {
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    pub mod acme {
        pub mod common {
            pub mod v1 {
                tonic::include_proto!("acme.common.v1");
            }
        }
        pub mod users {
            pub mod v1 {
                tonic::include_proto!("acme.users.v1");
            }
        }
    }
}

/// The descriptor set the binaries were built with (users.proto and its imports).
pub const BUILT_DESCRIPTOR: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/users_descriptor.binpb"));

/// The fully-qualified service name.
pub const SERVICE: &str = "acme.users.v1.UserService";

/// Response metadata key carrying the server's pin: `SUBJECT@VERSION DIGEST`.
pub const PIN_HEADER: &str = "x-protoreg-pin";
