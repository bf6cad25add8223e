//! The registry service: every registry operation (push and dry run, registration,
//! compatibility tests, deletes, policy and write-mode changes, lookups, diffs, deployments
//! and can-i-deploy) and every rule they obey, whichever front door asks. Front doors
//! (`/v1`, the Confluent API, the UI) parse a request into a call here and map [`Error`] to
//! their own answer in one place. This module knows no HTTP and imports no front door.

use std::sync::Arc;

use protoreg_store::Store;

pub use error::{At, Error, Missing, Result, deployment_names};
pub use push::{BUILTINS_LABEL, Checked, Push, Pushed};

use crate::cache::{ImageCache, VersionCache};
use crate::metrics::Metrics;

mod delete;
pub mod deployments;
pub mod deps;
mod diffs;
pub mod domain;
mod error;
mod images;
mod lookup;
mod policy;
mod push;

pub use delete::Delete;
pub use diffs::VersionKey;
pub(crate) use images::blocking;
pub use lookup::Loaded;
pub use policy::PolicyUpdate;

/// Access levels: each includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Read,
    Write,
    Admin,
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "read" => Ok(Role::Read),
            "write" => Ok(Role::Write),
            "admin" => Ok(Role::Admin),
            _ => Err(format!("unknown role {s:?} (read, write, admin)")),
        }
    }
}

/// Who asks: their role, and their name (recorded as who accepted a break).
#[derive(Debug, Clone)]
pub struct Caller {
    pub role: Role,
    /// The name the token was issued to (`TOKEN ROLE NAME`), else the HTTP Basic user name
    /// it came with, else its fingerprint (`token:` and 8 hex digits of its sha256), or
    /// `anonymous` without tokens.
    pub who: String,
}

/// The service's state: the store and what is kept in memory in front of it. Cheap to clone.
#[derive(Clone)]
pub struct Registry {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    /// Versions read, kept true on PostgreSQL by listening for every replica's changes.
    pub cache: Arc<VersionCache>,
    /// Decoded images of versions that pushes are checked against.
    pub images: Arc<ImageCache>,
    /// Dependency closures pushes compile against.
    pub closures: Arc<deps::ClosureCache>,
}

impl Registry {
    pub fn new(store: Store) -> Registry {
        Registry {
            store,
            metrics: Arc::default(),
            cache: Arc::default(),
            images: Arc::default(),
            closures: Arc::default(),
        }
    }
}

/// A subject name, or [`Error::Invalid`] saying what one may hold.
pub fn check_subject(s: &str) -> Result<&str> {
    if crate::api::valid_subject(s) {
        Ok(s)
    } else {
        Err(Error::invalid(format!(
            "invalid subject name {s:?}: use {}",
            crate::api::SUBJECT_RULE
        )))
    }
}
