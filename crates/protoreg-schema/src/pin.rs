//! `protoreg.lock`: the registered version a service's contract is pinned to, and a cached
//! copy of its descriptor set for starting while the registry is down.

use std::path::{Path, PathBuf};

use crate::SchemaError;

/// The pin: which version of which subject, its content digest, and the registry it is in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Lock {
    pub subject: String,
    pub version: i64,
    /// The registry's content digest of the version (`sha256:…`).
    pub digest: String,
    pub registry: String,
    /// sha256 of the cached descriptor set bytes (checked before the cache is trusted).
    pub descriptor_sha256: String,
    /// Whether the service `serves` the contract or `calls` it (absent: serves).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// Hex sha256 of bytes (the lock's `descriptor_sha256`).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

impl Lock {
    /// `serves` or `calls`.
    pub fn role(&self) -> &str {
        self.role.as_deref().unwrap_or("serves")
    }

    /// Where the cached descriptor set of a lock file lives (`protoreg.lock.binpb`).
    pub fn cache_path(lock_path: &Path) -> PathBuf {
        let mut p = lock_path.as_os_str().to_owned();
        p.push(".binpb");
        PathBuf::from(p)
    }

    pub fn read(path: &Path) -> Result<Lock, SchemaError> {
        let text = std::fs::read_to_string(path).map_err(|e| SchemaError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        serde_json::from_str(&text).map_err(|e| SchemaError::Input {
            path: path.display().to_string(),
            message: format!("not a protoreg lock file: {e}"),
        })
    }

    /// Writes the lock and its cached descriptor (each through a temporary file).
    pub fn write(&self, path: &Path, descriptor: &[u8]) -> Result<(), SchemaError> {
        let io = |p: &Path, e: std::io::Error| SchemaError::Io {
            path: p.display().to_string(),
            message: e.to_string(),
        };
        let cache = Self::cache_path(path);
        let tmp = cache.with_extension("binpb.tmp");
        std::fs::write(&tmp, descriptor).map_err(|e| io(&tmp, e))?;
        std::fs::rename(&tmp, &cache).map_err(|e| io(&cache, e))?;
        let text = serde_json::to_string_pretty(self).map_err(|e| SchemaError::Input {
            path: path.display().to_string(),
            message: e.to_string(),
        })? + "\n";
        let tmp = path.with_extension("lock.tmp");
        std::fs::write(&tmp, text).map_err(|e| io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| io(path, e))
    }
}
