//! What the service keeps in memory in front of the store: versions read (kept true on
//! PostgreSQL by listening for every replica's changes) and decoded images of versions.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use protoreg_store::{Store, Version};

/// Versions are immutable, so their contents are cached by (subject, number, digest). On
/// SQLite a cheap query still confirms each read (the version is live, the number resolves
/// `latest`). On PostgreSQL every replica listens for the changes any replica commits
/// ([`protoreg_store::ChangeListener`]): while it listens, reads are served from the cache
/// alone and a change of a subject drops that subject's entries, so a delete or a new
/// version on another replica is seen as soon as it commits. When the database is down,
/// versions named by number are served from here.
#[derive(Default)]
pub struct VersionCache {
    entries: std::sync::Mutex<HashMap<(String, i64), CachedVersion>>,
    /// Subject -> its latest live version number (only while `watching`).
    latest: std::sync::Mutex<HashMap<String, i64>>,
    /// Whether changes are being listened for (reads may then skip the database).
    watching: std::sync::atomic::AtomicBool,
    /// Bumped by every change heard: a read that queried the database before a change may
    /// not cache what it found after it.
    generation: std::sync::atomic::AtomicU64,
}

/// Digest, the version, and its descriptor set as cheaply cloned bytes.
type CachedVersion = (String, Arc<Version>, Bytes);

impl VersionCache {
    const CAPACITY: usize = 512;

    pub(crate) fn get(
        &self,
        subject: &str,
        n: i64,
        digest: Option<&str>,
    ) -> Option<(Arc<Version>, Bytes)> {
        let map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&(subject.to_string(), n))
            .filter(|(d, _, _)| digest.is_none_or(|want| d == want))
            .map(|(_, v, b)| (v.clone(), b.clone()))
    }

    /// A cached version, when changes are listened for (no query needed).
    pub(crate) fn watched(&self, subject: &str, n: Option<i64>) -> Option<(Arc<Version>, Bytes)> {
        use std::sync::atomic::Ordering;
        if !self.watching.load(Ordering::Acquire) {
            return None;
        }
        let n = match n {
            Some(n) => n,
            None => *self
                .latest
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(subject)?,
        };
        self.get(subject, n, None)
    }

    /// Whether every change is heard: PostgreSQL while its listener is up; SQLite always
    /// (one server owns the file; its own changes are all it has to hear).
    pub(crate) fn hears_all_changes(&self, backend: protoreg_store::Backend) -> bool {
        backend == protoreg_store::Backend::Sqlite
            || self.watching.load(std::sync::atomic::Ordering::Acquire)
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Caches a version read at `generation` (dropped when a change was heard since).
    pub(crate) fn put(
        &self,
        v: Version,
        generation: u64,
        is_latest: bool,
    ) -> (Arc<Version>, Bytes) {
        let bytes = Bytes::from(v.descriptor.clone());
        let v = Arc::new(v);
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if self.generation() != generation {
            return (v, bytes);
        }
        if map.len() >= Self::CAPACITY {
            map.clear();
        }
        map.insert(
            (v.meta.subject.clone(), v.meta.version),
            (v.meta.digest.clone(), v.clone(), bytes.clone()),
        );
        if is_latest {
            self.latest
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(v.meta.subject.clone(), v.meta.version);
        }
        (v, bytes)
    }

    /// Remembers `n` as the latest version of `subject`, read at `generation`.
    pub(crate) fn note_latest(&self, subject: &str, n: i64, generation: u64) {
        let mut latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        if self.generation() == generation {
            latest.insert(subject.to_string(), n);
        }
    }

    /// A subject changed (on any replica): drop what is cached of it.
    pub fn changed(&self, subject: &str) {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        map.retain(|(s, _), _| s != subject);
        self.latest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(subject);
    }

    /// Starts or stops trusting the cache without queries. Starting empties it (changes may
    /// have been missed while not listening); stopping keeps the immutable contents, which
    /// reads then confirm with a query again (or serve by number while the database is down).
    pub fn set_watching(&self, on: bool) {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        if on {
            map.clear();
        }
        self.latest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.watching
            .store(on, std::sync::atomic::Ordering::Release);
    }
}

/// Listens for changes committed by any replica and keeps the cache true to them; while the
/// connection is down the cache is not trusted without a query.
pub(crate) async fn watch_changes(store: Store, cache: Arc<VersionCache>) {
    loop {
        match store.listen_changes().await {
            Ok(Some(mut listener)) => {
                cache.set_watching(true);
                loop {
                    match listener.next().await {
                        Ok(subject) => cache.changed(&subject),
                        Err(e) => {
                            tracing::warn!(error = %e, "change listener lost; reads query the database until it is back");
                            break;
                        }
                    }
                }
                cache.set_watching(false);
            }
            Ok(None) => return,
            Err(e) => tracing::warn!(error = %e, "cannot listen for changes; retrying"),
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// Decoded images of versions that pushes are checked against, by (subject, number,
/// digest): a push to a large subject decodes the previous version once, not per push.
/// Bounded by the size of the descriptor sets they were decoded from (a decoded image takes
/// a few times that), oldest out first.
#[derive(Default)]
pub struct ImageCache {
    entries: std::sync::Mutex<
        std::collections::VecDeque<(ImageKey, usize, Arc<protoreg_schema::Image>)>,
    >,
}

/// Subject, version number, digest.
type ImageKey = (String, i64, String);

impl ImageCache {
    /// Total descriptor bytes of the cached images.
    const BUDGET: usize = 128 << 20;

    pub(crate) fn get(
        &self,
        subject: &str,
        n: i64,
        digest: &str,
    ) -> Option<Arc<protoreg_schema::Image>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .iter()
            .find(|((s, v, d), _, _)| s == subject && *v == n && d == digest)
            .map(|(_, _, i)| i.clone())
    }

    pub(crate) fn put(
        &self,
        subject: &str,
        n: i64,
        digest: &str,
        size: usize,
        image: Arc<protoreg_schema::Image>,
    ) -> Arc<protoreg_schema::Image> {
        if size > Self::BUDGET {
            return image;
        }
        let mut evicted = Vec::new();
        {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            while entries.iter().map(|(_, s, _)| s).sum::<usize>() + size > Self::BUDGET {
                evicted.extend(entries.pop_front());
            }
            entries.push_back(((subject.into(), n, digest.into()), size, image.clone()));
        }
        // Freeing a large image takes a while (hundreds of ms for googleapis): not under the
        // lock, nor on the caller's (async) thread.
        if !evicted.is_empty() {
            std::thread::spawn(move || drop(evicted));
        }
        image
    }
}
