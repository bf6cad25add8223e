//! Registry storage: subjects with immutable, numbered versions, their dependencies and
//! compatibility config, in SQLite (embedded default: one file, WAL, busy timeout) or
//! PostgreSQL (shared by several server replicas). One `sqlx::AnyPool`, the same SQL for
//! both, migrations from `migrations/{sqlite,postgres}` embedded and run at open.
//!
//! Content is addressed ([`content`]): file texts, per-file descriptors and manifest chunks
//! are blobs keyed by their sha256, stored once and shared by every version and subject; a
//! version row holds its manifest (chunk digests), labels and resolved dependencies.
//!
//! Concurrency: `subjects.last_version` is the only counter. A push takes a [`Snapshot`]
//! (the counter and the live versions), the caller checks its policy against it, and
//! [`Store::commit`] advances the counter with a compare-and-set in the same transaction as
//! the insert. A commit that loses the race (another version landed, on this server or
//! another replica) returns `None` and the caller takes a new snapshot, so every version is
//! checked against the version that really precedes it and numbers stay gapless.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Row};

mod accepted;
pub mod content;
mod deployments;
mod diffs;
pub mod policy;
mod refusals;
mod schemas;
mod upgrade;
mod versions;

pub use accepted::AcceptedBreak;
pub use deployments::{Deployment, Environment, NewDeployment, Pin};
pub use policy::{DeployedPolicy, Mode, UnknownName, WriteMode};
pub use refusals::{REFUSALS_KEPT, Refusal};
pub use schemas::SchemaUse;
pub use versions::{Explicit, NewVersion, PackedTexts, Prepared, Snapshot};

/// Storage errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL {0:?} (use sqlite://PATH or postgres://...)")]
    Url(String),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// A request the stored state refuses (an import's id or version already taken).
    #[error("{0}")]
    Invalid(String),
    /// A dependency of the version being committed was deleted since it was resolved.
    #[error("dependency {subject}@{version} was deleted during the push")]
    DependencyGone { subject: String, version: i64 },
}

impl StoreError {
    /// Whether the database could not be reached (as opposed to a bad row or query).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Db(
                sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Io(_)
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::WorkerCrashed
            )
        ) || matches!(self, StoreError::Db(sqlx::Error::Database(d)) if d.code().is_some_and(|c| c.starts_with("08") || c == "57P01" || c == "57P03"))
    }
}

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A version another version was built against.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct DepRef {
    pub subject: String,
    pub version: i64,
    pub digest: String,
    /// The import path its file is known by (a Confluent reference's `name`); `None`: the
    /// dependency's files keep their own paths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// What every listing says about a version.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VersionMeta {
    pub subject: String,
    pub version: i64,
    pub digest: String,
    pub labels: BTreeMap<String, String>,
    /// Unix milliseconds.
    pub created_at: i64,
    pub deleted: bool,
    pub deps: Vec<DepRef>,
    /// The global schema id of its content (see [`schema_digest`]).
    pub schema_id: i64,
}

/// A stored version with its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub meta: VersionMeta,
    /// The version's own files: path -> text.
    pub files: BTreeMap<String, String>,
    /// Its `FileDescriptorSet`: its own files and everything they import.
    pub descriptor: Vec<u8>,
}

/// A version's descriptor set and which of its files are the version's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDescriptor {
    pub bytes: Vec<u8>,
    pub own: std::collections::BTreeSet<String>,
}

/// A subject in listings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SubjectSummary {
    pub name: String,
    pub latest_version: Option<i64>,
    pub versions: i64,
}

/// A compatibility policy: Confluent's mode and buf rule categories or ids.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Config {
    pub mode: Mode,
    pub categories: Vec<String>,
    /// A push incompatible with a version still deployed somewhere: `warn` (the default)
    /// or `enforce` (refused).
    #[serde(default)]
    pub deployed: DeployedPolicy,
}

/// sha256 of the canonical content: every `path\0len text\0` in path order.
pub fn digest(files: &BTreeMap<String, String>) -> String {
    format!("sha256:{}", hex::encode(files_hasher(files).finalize()))
}

fn files_hasher(files: &BTreeMap<String, String>) -> Sha256 {
    let mut h = Sha256::new();
    for (p, t) in files {
        h.update(p.as_bytes());
        h.update([0]);
        h.update((t.len() as u64).to_be_bytes());
        h.update(t.as_bytes());
        h.update([0]);
    }
    h
}

/// A version's digest: [`digest`] of its files when it has no dependencies (so versions
/// without any keep the digest they always had), else that content followed by each
/// dependency's subject, version and digest.
pub fn version_digest(files: &BTreeMap<String, String>, deps: &[DepRef]) -> String {
    if deps.is_empty() {
        return digest(files);
    }
    let mut h = files_hasher(files);
    h.update(b"deps\0");
    hash_deps(&mut h, deps);
    format!("sha256:{}", hex::encode(h.finalize()))
}

fn hash_deps(h: &mut Sha256, deps: &[DepRef]) {
    for d in deps {
        h.update(d.subject.as_bytes());
        h.update([0]);
        h.update(d.version.to_be_bytes());
        h.update(d.digest.as_bytes());
        h.update([0]);
        // Named references only (so versions without names keep their digests).
        if let Some(name) = &d.name {
            h.update(b"name\0");
            h.update(name.as_bytes());
            h.update([0]);
        }
    }
}

/// What a global schema id stands for: a one-file version's text (not its path: the same
/// schema under two subjects, whatever they call the file, has one id) or a several-file
/// version's paths and texts, with the references in either case.
pub fn schema_digest(files: &BTreeMap<String, String>, deps: &[DepRef]) -> String {
    let mut h = Sha256::new();
    match files.values().next() {
        Some(text) if files.len() == 1 => {
            h.update(b"schema\0");
            h.update(text.as_bytes());
        }
        _ => h = files_hasher(files),
    }
    h.update(b"refs\0");
    hash_deps(&mut h, deps);
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// Now, in Unix milliseconds (the clock every stored time uses).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub(crate) fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// The store.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// The PostgreSQL URL, for [`Store::listen_changes`].
    postgres_url: Option<String>,
}

/// The PostgreSQL channel on which every change of a subject's versions (a new version, a
/// delete) is announced with the subject's name, when the change commits.
pub const CHANGES_CHANNEL: &str = "protoreg_changes";

/// Changes announced by any replica (PostgreSQL only): each is a subject's name.
pub struct ChangeListener(sqlx::postgres::PgListener);

impl ChangeListener {
    /// The next changed subject; an error means the connection is gone (and changes may
    /// have been missed).
    pub async fn next(&mut self) -> Result<String, StoreError> {
        Ok(self.0.recv().await?.payload().to_string())
    }
}

impl Store {
    /// Opens (creating if needed) and migrates a database: `sqlite://PATH` (or a bare path)
    /// or `postgres://...`. Rows of an older schema are rewritten to the current one.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Self::open_with(url, true).await
    }

    /// Opens without running migrations or upgrades (tests that build an old schema).
    pub async fn open_with(url: &str, migrate: bool) -> Result<Store, StoreError> {
        install_default_drivers();
        let (url, backend) = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (url.to_string(), Backend::Postgres)
        } else if let Some(path) = url
            .strip_prefix("sqlite://")
            .or(Some(url))
            .filter(|p| !p.contains("://"))
        {
            (format!("sqlite://{path}?mode=rwc"), Backend::Sqlite)
        } else {
            return Err(StoreError::Url(url.to_string()));
        };
        let opts = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 8 } else { 16 })
            .acquire_timeout(Duration::from_secs(5));
        let opts = if backend == Backend::Sqlite {
            opts.after_connect(|conn, _| {
                Box::pin(async move {
                    use sqlx::Executor;
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    conn.execute("PRAGMA synchronous = FULL").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    Ok(())
                })
            })
        } else {
            opts
        };
        let pool = opts.connect(&url).await?;
        let postgres_url = (backend == Backend::Postgres).then(|| url.clone());
        let store = Store {
            pool,
            backend,
            postgres_url,
        };
        if migrate {
            match backend {
                Backend::Sqlite => SQLITE_MIGRATIONS.run(&store.pool).await?,
                Backend::Postgres => POSTGRES_MIGRATIONS.run(&store.pool).await?,
            }
            store.upgrade_inline_rows().await?;
            store.assign_missing_schema_ids().await?;
        }
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Opens a database migrated only up to schema `version` (`migrations/*/NNNN_…`), without
    /// upgrading rows: tests use it to build a database as an older release left it.
    #[doc(hidden)]
    pub async fn open_at_schema(url: &str, version: i64) -> Result<Store, StoreError> {
        let store = Self::open_with(url, false).await?;
        let all = match store.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        let upto = sqlx::migrate::Migrator {
            migrations: all
                .iter()
                .filter(|m| m.version <= version)
                .cloned()
                .collect::<Vec<_>>()
                .into(),
            ..sqlx::migrate::Migrator::DEFAULT
        };
        upto.run(&store.pool).await?;
        Ok(store)
    }

    /// The pool, for tests that write rows as an older release did.
    #[doc(hidden)]
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Listens for changes made through any replica (`None` on SQLite, whose one server
    /// process sees its own changes).
    pub async fn listen_changes(&self) -> Result<Option<ChangeListener>, StoreError> {
        let Some(url) = &self.postgres_url else {
            return Ok(None);
        };
        let mut listener = sqlx::postgres::PgListener::connect(url).await?;
        listener.listen(CHANGES_CHANNEL).await?;
        Ok(Some(ChangeListener(listener)))
    }

    /// Announces a change of `subject` (PostgreSQL; delivered when `conn`'s transaction
    /// commits).
    pub(crate) async fn announce(
        &self,
        conn: &mut sqlx::AnyConnection,
        subject: &str,
    ) -> Result<(), StoreError> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANGES_CHANNEL)
                .bind(subject)
                .execute(conn)
                .await?;
        }
        Ok(())
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Subjects with at least one version ever pushed, by name, after `after`, at most `limit`.
    pub async fn subjects(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<SubjectSummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT s.name, \
               (SELECT MAX(v.version) FROM versions v WHERE v.subject = s.name AND v.deleted = 0), \
               (SELECT COUNT(*) FROM versions v WHERE v.subject = s.name AND v.deleted = 0) \
             FROM subjects s WHERE s.name > $1 ORDER BY s.name LIMIT $2",
        )
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SubjectSummary {
                    name: r.try_get(0)?,
                    latest_version: r.try_get::<Option<i64>, _>(1)?,
                    versions: r.try_get(2)?,
                })
            })
            .collect()
    }

    /// Whether a subject exists (has had a version).
    pub async fn subject_exists(&self, subject: &str) -> Result<bool, StoreError> {
        Ok(sqlx::query("SELECT 1 FROM subjects WHERE name = $1")
            .bind(subject)
            .fetch_optional(&self.pool)
            .await?
            .is_some())
    }

    /// The policy of a subject (`None`: the subject has none of its own), or the global one
    /// with `subject = ""`.
    pub async fn config(&self, scope: &str) -> Result<Option<Config>, StoreError> {
        let row = sqlx::query("SELECT mode, categories, deployed FROM config WHERE scope = $1")
            .bind(scope)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| -> Result<Config, StoreError> {
            let cats: String = r.try_get(1)?;
            let (mode, deployed): (String, String) = (r.try_get(0)?, r.try_get(2)?);
            Ok(Config {
                mode: mode.parse().map_err(corrupt)?,
                categories: serde_json::from_str(&cats).map_err(corrupt)?,
                deployed: deployed.parse().map_err(corrupt)?,
            })
        })
        .transpose()
    }

    pub async fn set_config(&self, scope: &str, config: &Config) -> Result<(), StoreError> {
        let cats = serde_json::to_string(&config.categories).map_err(corrupt)?;
        sqlx::query(
            "INSERT INTO config (scope, mode, categories, deployed) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (scope) DO UPDATE SET mode = excluded.mode, categories = excluded.categories, deployed = excluded.deployed",
        )
        .bind(scope)
        .bind(config.mode.as_str())
        .bind(cats)
        .bind(config.deployed.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

pub(crate) fn is_retryable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            let code = d.code().unwrap_or_default();
            let msg = d.message();
            // SQLite busy/locked (5, 6, 517 BUSY_SNAPSHOT), PostgreSQL serialization (40001),
            // deadlock (40P01) and unique violation (23505) on a racing insert.
            matches!(
                code.as_ref(),
                "5" | "6" | "517" | "261" | "40001" | "40P01" | "23505" | "2067" | "1555"
            ) || msg.contains("database is locked")
                || msg.contains("busy")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(text: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("a.proto".to_string(), text.to_string())])
    }

    /// A descriptor set naming `a.proto` (the store only splits it by file).
    fn descriptor(text: &str) -> Vec<u8> {
        let mut file = vec![0x0a, 7];
        file.extend_from_slice(b"a.proto");
        file.extend_from_slice(&[0x12, text.len() as u8]);
        file.extend_from_slice(text.as_bytes());
        content::join_descriptor_set([file.as_slice()])
    }

    async fn push(store: &Store, s: &str, text: &str, deps: Vec<DepRef>) -> Option<VersionMeta> {
        let prepared = store
            .prepare(
                s,
                NewVersion {
                    files: files(text),
                    descriptor: descriptor(text),
                    labels: BTreeMap::new(),
                    deps,
                    explicit: Default::default(),
                },
            )
            .await
            .unwrap();
        let snap = store.snapshot(s).await.unwrap();
        store.commit(s, &snap, &prepared).await.unwrap()
    }

    async fn push_explicit(
        store: &Store,
        s: &str,
        text: &str,
        explicit: Explicit,
    ) -> Result<Option<VersionMeta>, StoreError> {
        let prepared = store
            .prepare(
                s,
                NewVersion {
                    files: files(text),
                    descriptor: descriptor(text),
                    explicit,
                    ..Default::default()
                },
            )
            .await?;
        let snap = store.snapshot(s).await?;
        store.commit(s, &snap, &prepared).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn diff_findings_are_kept_and_files_listed_from_manifests() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("r.db").to_string_lossy())
            .await
            .unwrap();
        let a = push(&store, "s", "one", vec![]).await.unwrap();
        let b = push(&store, "s", "two", vec![]).await.unwrap();
        let (old, new) = (
            store.version_text_digests("s", 1).await.unwrap().unwrap(),
            store.version_text_digests("s", 2).await.unwrap().unwrap(),
        );
        assert_eq!(
            old.keys().collect::<Vec<_>>(),
            new.keys().collect::<Vec<_>>()
        );
        assert_ne!(old, new, "the text changed");
        let digests: Vec<String> = old.values().chain(new.values()).cloned().collect();
        let texts = store.texts(&digests).await.unwrap();
        let full = store.version("s", Some(2), false).await.unwrap().unwrap();
        for (path, d) in &new {
            assert_eq!(&texts[d], &full.files[path], "{path}");
        }
        assert_eq!(
            store.version_paths("s", 2).await.unwrap().unwrap(),
            full.files.keys().cloned().collect::<Vec<_>>()
        );
        let policy = "[\"FILE\"]";
        assert_eq!(
            store
                .diff_findings("s", &a.digest, &b.digest, policy)
                .await
                .unwrap(),
            None
        );
        let first = serde_json::json!([{"type": "FIELD_NO_DELETE"}]);
        store
            .put_diff_findings("s", &a.digest, &b.digest, policy, &first)
            .await
            .unwrap();
        // The first writer wins; another policy is another entry.
        let other = serde_json::json!([]);
        store
            .put_diff_findings("s", &a.digest, &b.digest, policy, &other)
            .await
            .unwrap();
        assert_eq!(
            store
                .diff_findings("s", &a.digest, &b.digest, policy)
                .await
                .unwrap(),
            Some(first)
        );
        assert_eq!(
            store
                .diff_findings("s", &a.digest, &b.digest, "[\"WIRE\"]")
                .await
                .unwrap(),
            None
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn schema_ids_are_global_and_imports_keep_theirs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("r.db").to_string_lossy())
            .await
            .unwrap();
        let a = push(&store, "a", "one", vec![]).await.unwrap();
        let b = push(&store, "b", "one", vec![]).await.unwrap();
        let c = push(&store, "a", "two", vec![]).await.unwrap();
        assert_eq!(a.schema_id, b.schema_id, "same content, one id");
        assert_ne!(a.schema_id, c.schema_id);
        let uses = store.schema_uses(a.schema_id).await.unwrap();
        assert_eq!(uses, vec![("a".into(), 1, false), ("b".into(), 1, false)]);
        let digest = schema_digest(&files("one"), &[]);
        assert_eq!(
            store
                .find_schema("b", &digest, false)
                .await
                .unwrap()
                .unwrap()
                .version,
            1
        );
        // An import keeps the id and version it had elsewhere...
        let imported = push_explicit(
            &store,
            "i",
            "three",
            Explicit {
                schema_id: Some(500),
                version: Some(7),
            },
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!((imported.schema_id, imported.version), (500, 7));
        // ...but cannot take an id another content has, give known content another id, or
        // go below the subject's last version.
        for (text, explicit) in [
            (
                "four",
                Explicit {
                    schema_id: Some(a.schema_id),
                    version: None,
                },
            ),
            (
                "one",
                Explicit {
                    schema_id: Some(900),
                    version: None,
                },
            ),
            (
                "five",
                Explicit {
                    schema_id: None,
                    version: Some(3),
                },
            ),
        ] {
            let e = push_explicit(&store, "i", text, explicit)
                .await
                .unwrap_err();
            assert!(matches!(e, StoreError::Invalid(_)), "{text}: {e}");
        }
        // Later ids continue above imported ones.
        let next = push(&store, "i", "six", vec![]).await.unwrap();
        assert!(next.schema_id > 500 && next.version == 8, "{next:?}");
        // Modes.
        assert_eq!(store.mode("").await.unwrap(), None);
        store.set_mode("i", WriteMode::ReadOnly).await.unwrap();
        assert_eq!(store.mode("i").await.unwrap(), Some(WriteMode::ReadOnly));
        assert_eq!(
            store.delete_mode("i").await.unwrap(),
            Some(WriteMode::ReadOnly)
        );
        assert_eq!(store.mode("i").await.unwrap(), None);
    }

    #[test]
    fn digest_is_canonical() {
        let a = files("x");
        assert_eq!(digest(&a), digest(&a.clone()));
        assert_ne!(digest(&a), digest(&files("y")));
        // Moving bytes between path and text changes the digest.
        let b = BTreeMap::from([("a.prot".to_string(), "ox".to_string())]);
        assert_ne!(digest(&a), digest(&b));
        assert_eq!(version_digest(&a, &[]), digest(&a));
        let dep = DepRef {
            subject: "c".into(),
            version: 1,
            digest: "sha256:00".into(),
            name: None,
        };
        assert_ne!(version_digest(&a, &[dep]), digest(&a));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_push_versions_deps_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("r.db").to_string_lossy())
            .await
            .unwrap();
        let v1 = push(&store, "s", "one", vec![]).await.unwrap();
        assert_eq!(v1.version, 1);
        let full = store.version("s", Some(1), false).await.unwrap().unwrap();
        assert_eq!(full.files, files("one"));
        assert_eq!(full.descriptor, descriptor("one"));
        // A stale snapshot loses the race.
        let stale = store.snapshot("s").await.unwrap();
        push(&store, "s", "two", vec![]).await.unwrap();
        let prepared = store
            .prepare(
                "s",
                NewVersion {
                    files: files("three"),
                    descriptor: descriptor("three"),
                    labels: BTreeMap::new(),
                    deps: vec![],
                    explicit: Default::default(),
                },
            )
            .await
            .unwrap();
        assert_eq!(store.commit("s", &stale, &prepared).await.unwrap(), None);
        // Dependencies are recorded and make dependents.
        let dep = DepRef {
            subject: "s".into(),
            version: 1,
            digest: v1.digest.clone(),
            name: None,
        };
        let t1 = push(&store, "t", "uses s", vec![dep.clone()])
            .await
            .unwrap();
        assert_eq!(t1.deps, vec![dep]);
        assert_eq!(
            store.dependents("s", 1).await.unwrap(),
            vec![("t".into(), 1)]
        );
        assert_eq!(store.latest_dependents("s").await.unwrap()[0].subject, "t");
        assert!(store.delete("s", 2, false).await.unwrap());
        assert_eq!(store.version_ref("s", None).await.unwrap().unwrap().0, 1);
        assert!(
            !store.delete("s", 1, true).await.unwrap(),
            "permanent needs a soft delete first"
        );
        assert!(store.delete("s", 2, true).await.unwrap());
        let v3 = push(&store, "s", "three", vec![]).await.unwrap();
        assert_eq!(v3.version, 3, "numbers are never reused");
        assert_eq!(
            store.find_digest(&digest(&files("three"))).await.unwrap(),
            vec![("s".to_string(), 3)]
        );
        let subjects = store.subjects(None, 10).await.unwrap();
        assert_eq!(subjects[0].latest_version, Some(3));
        assert_eq!(subjects[0].versions, 2);
        assert_eq!(store.subjects(Some("s"), 10).await.unwrap()[0].name, "t");
        // Identical texts are stored once.
        let blobs: i64 = sqlx::query("SELECT COUNT(*) FROM blobs")
            .fetch_one(store.pool())
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        push(&store, "u", "one", vec![]).await.unwrap();
        let after: i64 = sqlx::query("SELECT COUNT(*) FROM blobs")
            .fetch_one(store.pool())
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        assert_eq!(blobs, after, "same content, no new blobs");
    }

    /// Many files, one changed: the new row stores a delta of the previous full manifest
    /// and reads back the same content; adding a file makes a full manifest again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn small_changes_store_deltas() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("r.db").to_string_lossy())
            .await
            .unwrap();
        let version = |n: usize, changed: &str| -> NewVersion {
            let names: Vec<String> = (0..n).map(|i| format!("pkg/f{i:04}.proto")).collect();
            let files: BTreeMap<String, String> = names
                .iter()
                .map(|p| {
                    let text = if p == changed { "changed" } else { "same" };
                    (p.clone(), format!("// {p} {text}\n"))
                })
                .collect();
            let parts: Vec<Vec<u8>> = names
                .iter()
                .map(|p| {
                    let mut f = vec![0x0a, p.len() as u8];
                    f.extend_from_slice(p.as_bytes());
                    f.extend_from_slice(&[0x12, 1, if p == changed { b'c' } else { b's' }]);
                    f
                })
                .collect();
            NewVersion {
                files,
                descriptor: content::join_descriptor_set(parts.iter().map(Vec::as_slice)),
                labels: BTreeMap::new(),
                deps: vec![],
                explicit: Default::default(),
            }
        };
        let manifest_of = |n: i64| {
            let store = store.clone();
            async move {
                let r = sqlx::query(
                    "SELECT manifest FROM versions WHERE subject = 's' AND version = $1",
                )
                .bind(n)
                .fetch_one(store.pool())
                .await
                .unwrap();
                let text: String = r.try_get(0).unwrap();
                serde_json::from_str::<content::Manifest>(&text).unwrap()
            }
        };
        for (i, new) in [
            version(500, ""),
            version(500, "pkg/f0123.proto"),
            version(501, ""),
        ]
        .into_iter()
        .enumerate()
        {
            let expected = (new.files.clone(), new.descriptor.clone());
            let prepared = store.prepare("s", new).await.unwrap();
            let snap = store.snapshot("s").await.unwrap();
            store.commit("s", &snap, &prepared).await.unwrap().unwrap();
            let n = i as i64 + 1;
            let v = store.version("s", Some(n), false).await.unwrap().unwrap();
            assert_eq!((v.files, v.descriptor), expected, "@{n} reads back");
        }
        assert!(matches!(manifest_of(1).await, content::Manifest::Full(_)));
        match manifest_of(2).await {
            content::Manifest::Delta { changes, .. } => {
                assert_eq!(changes.len(), 1);
                assert_eq!(changes[0].path, "pkg/f0123.proto");
            }
            m => panic!("expected a delta, got {m:?}"),
        }
        assert!(
            matches!(manifest_of(3).await, content::Manifest::Full(_)),
            "a file added"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rows_of_the_first_schema_are_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("r.db").to_string_lossy().to_string();
        let old = Store::open_at_schema(&url, 1).await.unwrap();
        sqlx::query("INSERT INTO subjects (name, last_version, created_at) VALUES ('s', 2, 5)")
            .execute(old.pool())
            .await
            .unwrap();
        for (n, text) in [(1i64, "one"), (2, "two")] {
            sqlx::query(
                "INSERT INTO versions (subject, version, digest, files, descriptor, labels, created_at, deleted) \
                 VALUES ('s', $1, $2, $3, $4, '{\"k\":\"v\"}', 7, $5)",
            )
            .bind(n)
            .bind(digest(&files(text)))
            .bind(serde_json::to_string(&files(text)).unwrap())
            .bind(descriptor(text))
            .bind(n - 1)
            .execute(old.pool())
            .await
            .unwrap();
        }
        old.close().await;
        let store = Store::open(&url).await.unwrap();
        for (n, text) in [(1i64, "one"), (2, "two")] {
            let v = store.version("s", Some(n), true).await.unwrap().unwrap();
            assert_eq!(v.files, files(text));
            assert_eq!(v.descriptor, descriptor(text));
            assert_eq!(v.meta.digest, digest(&files(text)));
            assert_eq!(v.meta.labels["k"], "v");
            assert_eq!((v.meta.created_at, v.meta.deleted), (7, n == 2));
        }
        // Opening again finds nothing left to move.
        store.close().await;
        Store::open(&url).await.unwrap();
    }
}
