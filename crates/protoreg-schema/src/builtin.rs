//! The option schemas built in beside the well-known types, so that imports of them
//! compile with no setup: googleapis' HTTP, field-behavior, resource and client annotations
//! (`google/api/*.proto`) and protovalidate's `buf/validate/validate.proto`.
//!
//! Imports resolve against the module's own files, then its registry dependencies and
//! include paths, then these, then the well-known types. The texts (in `builtin/`) were
//! written for protoreg to be wire- and name-compatible with the upstream files at the
//! versions [`VERSION`] names; they carry no documentation.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use protox::file::{File, FileResolver};

/// The version of the built-in set, recorded with a registry version that used it.
pub const VERSION: &str =
    "protoreg-builtins/1 (googleapis google/api 2026-11, protovalidate v1.2.2)";

/// The built-in files by import path.
pub const FILES: &[(&str, &str)] = &[
    (
        "google/api/annotations.proto",
        include_str!("../builtin/google/api/annotations.proto"),
    ),
    (
        "google/api/client.proto",
        include_str!("../builtin/google/api/client.proto"),
    ),
    (
        "google/api/field_behavior.proto",
        include_str!("../builtin/google/api/field_behavior.proto"),
    ),
    (
        "google/api/http.proto",
        include_str!("../builtin/google/api/http.proto"),
    ),
    (
        "google/api/launch_stage.proto",
        include_str!("../builtin/google/api/launch_stage.proto"),
    ),
    (
        "google/api/resource.proto",
        include_str!("../builtin/google/api/resource.proto"),
    ),
    (
        "buf/validate/validate.proto",
        include_str!("../builtin/buf/validate/validate.proto"),
    ),
];

/// The text of a built-in file.
pub fn text(name: &str) -> Option<&'static str> {
    FILES.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// Serves the built-in files and remembers which were opened.
pub(crate) struct BuiltinResolver {
    pub used: Arc<Mutex<BTreeSet<String>>>,
}

impl FileResolver for BuiltinResolver {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match text(name) {
            Some(t) => {
                if let Ok(mut used) = self.used.lock() {
                    used.insert(name.to_string());
                }
                File::from_source(name, t)
            }
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_compiles() {
        for (name, _) in FILES {
            let mut chain = protox::file::ChainFileResolver::new();
            chain.add(BuiltinResolver {
                used: Default::default(),
            });
            chain.add(protox::file::GoogleFileResolver::new());
            let mut c = protox::Compiler::with_file_resolver(chain);
            c.open_file(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
