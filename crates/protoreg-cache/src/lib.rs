//! The local cache (`$PROTOREG_CACHE_DIR`, shared with the registry client's): breaking
//! checks that redo only what changed.
//!
//! [`check`] cuts a comparison into units of packages, takes the findings of every unit
//! whose files and imports are unchanged from the cache, and compiles and checks the rest
//! (see [`incremental`]); [`Cache`] keeps the entries (atomic writes, checked digests,
//! bounded size).

pub mod incremental;
mod store;

pub use incremental::{Error, Report, Stats, check};
pub use store::{Cache, CacheError, Cleaned};
