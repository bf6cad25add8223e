//! Entries on disk: written whole to a temporary file and renamed into place (so concurrent
//! runs never see half an entry), each carrying its key and the digest of its body (so a
//! corrupt or truncated entry is detected, removed and recomputed, never trusted).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

/// First line of every entry: the format, so that an older layout is never misread.
const MAGIC: &str = "PROTOREG-CACHE 1";

/// Default bound of the cache's size, in bytes (`PROTOREG_CACHE_MAX_MB` overrides it).
const DEFAULT_MAX_BYTES: u64 = 512 << 20;

/// Errors writing or cleaning the cache.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cache {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The breaking checker's part of the local cache directory (`<dir>/check`).
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
    max_bytes: u64,
}

/// What `protoreg cache clean` removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cleaned {
    pub files: u64,
    pub bytes: u64,
}

impl Cache {
    /// The checker's cache below `dir` (the directory shared with the registry client's
    /// cache), bounded by `PROTOREG_CACHE_MAX_MB` (default 512).
    pub fn new(dir: &Path) -> Cache {
        let max_bytes = std::env::var("PROTOREG_CACHE_MAX_MB")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|mb| mb << 20)
            .unwrap_or(DEFAULT_MAX_BYTES);
        Cache {
            root: dir.join("check"),
            max_bytes,
        }
    }

    /// A key for any name (a registry digest, say): its sha256, in hex.
    pub fn key(name: &str) -> String {
        hex::encode(Sha256::digest(name.as_bytes()))
    }

    /// Where the cache keeps its entries.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, kind: &str, key: &str) -> PathBuf {
        let shard = key.get(..2).unwrap_or("__");
        self.root.join(kind).join(shard).join(key)
    }

    /// The body stored under `key`, if there is a sound entry for it.
    pub fn get(&self, kind: &str, key: &str) -> Option<Vec<u8>> {
        let path = self.path(kind, key);
        let raw = std::fs::read(&path).ok()?;
        match parse_entry(&raw, key) {
            Some(body) => Some(body.to_vec()),
            None => {
                // Corrupt, truncated or another key's: never trusted, recomputed.
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores `body` under `key`, atomically.
    pub fn put(&self, kind: &str, key: &str, body: &[u8]) -> Result<(), CacheError> {
        let path = self.path(kind, key);
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let mut tmp = tempfile_in(&dir).map_err(io(&dir))?;
        let digest = hex::encode(Sha256::digest(body));
        let mut out = Vec::with_capacity(body.len() + 160);
        writeln!(out, "{MAGIC}\n{key}\n{digest}").map_err(io(&path))?;
        out.extend_from_slice(body);
        tmp.1.write_all(&out).map_err(io(&tmp.0))?;
        drop(tmp.1);
        std::fs::rename(&tmp.0, &path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp.0);
            io(&path)(e)
        })
    }

    /// Removes every entry.
    pub fn clean(&self) -> Result<Cleaned, CacheError> {
        let mut cleaned = Cleaned::default();
        for (path, len, _) in entries(&self.root) {
            std::fs::remove_file(&path).map_err(io(&path))?;
            cleaned.files += 1;
            cleaned.bytes += len;
        }
        if self.root.exists() {
            std::fs::remove_dir_all(&self.root).map_err(io(&self.root))?;
        }
        Ok(cleaned)
    }

    /// Keeps the cache under its bound: when it is over, the least recently written entries
    /// go until it is under three quarters of it.
    pub fn evict(&self) {
        let mut all = entries(&self.root);
        let total: u64 = all.iter().map(|e| e.1).sum();
        if total <= self.max_bytes {
            return;
        }
        all.sort_by_key(|e| e.2);
        let mut size = total;
        for (path, len, _) in all {
            if size <= self.max_bytes / 4 * 3 {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                size -= len;
            }
        }
    }
}

/// The body of an entry, if its header names `key` and its digest matches.
fn parse_entry<'a>(raw: &'a [u8], key: &str) -> Option<&'a [u8]> {
    let mut rest = raw;
    let mut line = || {
        let end = rest.iter().position(|&b| b == b'\n')?;
        let l = std::str::from_utf8(&rest[..end]).ok()?;
        rest = &rest[end + 1..];
        Some(l)
    };
    if line()? != MAGIC || line()? != key {
        return None;
    }
    let digest = line()?.to_string();
    (hex::encode(Sha256::digest(rest)) == digest).then_some(rest)
}

/// A new file in `dir` with a name no other process uses.
fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    loop {
        let name = format!(
            ".tmp-{}-{}-{nanos}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let path = dir.join(name);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Every file below `root`: path, size, modification time.
fn entries(root: &Path) -> Vec<(PathBuf, u64, SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                stack.push(e.path());
            } else {
                let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                out.push((e.path(), meta.len(), mtime));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_damaged_ones_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        cache.put("findings", "abcd", b"[1,2,3]").unwrap();
        assert_eq!(
            cache.get("findings", "abcd").as_deref(),
            Some(&b"[1,2,3]"[..])
        );
        assert_eq!(cache.get("findings", "abce"), None);
        // Truncated: the digest no longer matches, and the entry is removed.
        let path = cache.path("findings", "abcd");
        let raw = std::fs::read(&path).unwrap();
        std::fs::write(&path, &raw[..raw.len() - 2]).unwrap();
        assert_eq!(cache.get("findings", "abcd"), None);
        assert!(!path.exists());
        // Another key's entry copied over this one is not taken for it.
        cache.put("findings", "ab01", b"x").unwrap();
        std::fs::copy(
            cache.path("findings", "ab01"),
            cache.path("findings", "ab02"),
        )
        .unwrap();
        assert_eq!(cache.get("findings", "ab02"), None);
        let cleaned = cache.clean().unwrap();
        assert_eq!(cleaned.files, 1);
        assert!(!cache.root().exists());
    }

    #[test]
    fn eviction_keeps_the_newest_entries_under_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = Cache::new(dir.path());
        cache.max_bytes = 4000;
        for i in 0..10 {
            cache
                .put("findings", &format!("k{i:02}"), &[b'x'; 1000])
                .unwrap();
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        cache.evict();
        let kept: u64 = entries(cache.root()).iter().map(|e| e.1).sum();
        assert!(kept <= 3000, "{kept}");
        assert!(cache.get("findings", "k09").is_some(), "newest kept");
        assert!(cache.get("findings", "k00").is_none(), "oldest evicted");
    }
}
