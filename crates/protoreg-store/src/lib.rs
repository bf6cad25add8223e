//! Registry storage: subjects with immutable, numbered versions and compatibility config,
//! in SQLite (embedded default: one file, WAL, busy timeout) or PostgreSQL (shared by several
//! server replicas). One `sqlx::AnyPool`, the same SQL for both, migrations from
//! `migrations/{sqlite,postgres}` embedded and run at open.
//!
//! Concurrency: `subjects.last_version` is the only counter. A push reads it, runs the
//! caller's compatibility check against the versions that exist, then advances it with a
//! compare-and-set in the same transaction as the insert. A push that loses the race
//! (another version landed, on this server or another replica) retries from the read, so it
//! is checked against the version that really precedes it and numbers stay gapless.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Row};

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
    #[error("too much contention pushing to {0:?}; try again")]
    Contention(String),
}

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A stored version.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Version {
    pub subject: String,
    pub version: i64,
    pub digest: String,
    pub files: BTreeMap<String, String>,
    #[serde(skip)]
    pub descriptor: Vec<u8>,
    pub labels: BTreeMap<String, String>,
    /// Unix milliseconds.
    pub created_at: i64,
    pub deleted: bool,
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
    pub mode: String,
    pub categories: Vec<String>,
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    Created(Version),
    /// The content is identical to the latest version: nothing was created.
    Unchanged(Version),
}

/// The content of a push.
#[derive(Debug, Clone)]
pub struct NewVersion {
    pub files: BTreeMap<String, String>,
    pub descriptor: Vec<u8>,
    pub labels: BTreeMap<String, String>,
}

/// sha256 of the canonical content: every `path\0text\0` in path order.
pub fn digest(files: &BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    for (p, t) in files {
        h.update(p.as_bytes());
        h.update([0]);
        h.update((t.len() as u64).to_be_bytes());
        h.update(t.as_bytes());
        h.update([0]);
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// The store.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Pushes to one subject from this process queue here first (fewer database retries).
    locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

const VERSION_COLUMNS: &str =
    "subject, version, digest, files, descriptor, labels, created_at, deleted";

impl Store {
    /// Opens (creating if needed) and migrates a database: `sqlite://PATH` (or a bare path)
    /// or `postgres://...`.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
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
            .acquire_timeout(Duration::from_secs(30));
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
        match backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&pool).await?,
        }
        Ok(Store {
            pool,
            backend,
            locks: Arc::default(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Every subject with at least one version ever pushed.
    pub async fn subjects(&self) -> Result<Vec<SubjectSummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT s.name, \
               (SELECT MAX(v.version) FROM versions v WHERE v.subject = s.name AND v.deleted = 0), \
               (SELECT COUNT(*) FROM versions v WHERE v.subject = s.name AND v.deleted = 0) \
             FROM subjects s ORDER BY s.name",
        )
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

    /// Live versions of a subject, oldest first (`include_deleted` adds soft-deleted ones).
    pub async fn versions(
        &self,
        subject: &str,
        include_deleted: bool,
    ) -> Result<Vec<Version>, StoreError> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM versions WHERE subject = $1 {} ORDER BY version",
            if include_deleted {
                ""
            } else {
                "AND deleted = 0"
            }
        );
        let rows = sqlx::query(&sql)
            .bind(subject)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row_to_version).collect()
    }

    /// One version (`None` = the latest live one). Soft-deleted versions are found only by
    /// number with `include_deleted`.
    pub async fn version(
        &self,
        subject: &str,
        n: Option<i64>,
        include_deleted: bool,
    ) -> Result<Option<Version>, StoreError> {
        let row = match n {
            Some(n) => {
                let sql = format!(
                    "SELECT {VERSION_COLUMNS} FROM versions WHERE subject = $1 AND version = $2 {}",
                    if include_deleted {
                        ""
                    } else {
                        "AND deleted = 0"
                    }
                );
                sqlx::query(&sql)
                    .bind(subject)
                    .bind(n)
                    .fetch_optional(&self.pool)
                    .await?
            }
            None => {
                let sql = format!(
                    "SELECT {VERSION_COLUMNS} FROM versions WHERE subject = $1 AND deleted = 0 ORDER BY version DESC LIMIT 1"
                );
                sqlx::query(&sql)
                    .bind(subject)
                    .fetch_optional(&self.pool)
                    .await?
            }
        };
        row.as_ref().map(row_to_version).transpose()
    }

    /// The number and digest of a live version (`None` = the latest): a cheap lookup that
    /// lets callers cache immutable version contents.
    pub async fn version_ref(
        &self,
        subject: &str,
        n: Option<i64>,
    ) -> Result<Option<(i64, String)>, StoreError> {
        let row = match n {
            Some(n) => {
                sqlx::query("SELECT version, digest FROM versions WHERE subject = $1 AND version = $2 AND deleted = 0")
                    .bind(subject)
                    .bind(n)
                    .fetch_optional(&self.pool)
                    .await?
            }
            None => {
                sqlx::query(
                    "SELECT version, digest FROM versions WHERE subject = $1 AND deleted = 0 ORDER BY version DESC LIMIT 1",
                )
                .bind(subject)
                .fetch_optional(&self.pool)
                .await?
            }
        };
        row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
    }

    /// Where content with this digest is registered (live versions).
    pub async fn find_digest(&self, digest: &str) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query("SELECT subject, version FROM versions WHERE digest = $1 AND deleted = 0 ORDER BY subject, version")
            .bind(digest)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Pushes a version. `check` sees the live versions before it (oldest first) and refuses
    /// with `Err(R)`; it may run more than once when pushes race.
    pub async fn push<R>(
        &self,
        subject: &str,
        new: NewVersion,
        mut check: impl FnMut(&[Version]) -> Result<(), R>,
    ) -> Result<Result<PushOutcome, R>, StoreError> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            locks.entry(subject.to_string()).or_default().clone()
        };
        let _guard = lock.lock().await;
        let digest = digest(&new.files);
        let files_json =
            serde_json::to_string(&new.files).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let labels_json =
            serde_json::to_string(&new.labels).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO subjects (name, last_version, created_at) VALUES ($1, 0, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(subject)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        for attempt in 0..200u32 {
            match self
                .try_push(
                    subject,
                    &new,
                    &digest,
                    &files_json,
                    &labels_json,
                    &mut check,
                )
                .await
            {
                Ok(Some(outcome)) => return Ok(outcome),
                Ok(None) => {}
                Err(StoreError::Db(e)) if is_retryable(&e) => {}
                Err(e) => return Err(e),
            }
            tokio::time::sleep(Duration::from_millis(2 + u64::from(attempt % 16) * 3)).await;
        }
        Err(StoreError::Contention(subject.to_string()))
    }

    /// One attempt: `None` when another push won the race.
    async fn try_push<R>(
        &self,
        subject: &str,
        new: &NewVersion,
        digest: &str,
        files_json: &str,
        labels_json: &str,
        check: &mut impl FnMut(&[Version]) -> Result<(), R>,
    ) -> Result<Option<Result<PushOutcome, R>>, StoreError> {
        let last: i64 = sqlx::query("SELECT last_version FROM subjects WHERE name = $1")
            .bind(subject)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        let prior = self.versions(subject, false).await?;
        if let Some(latest) = prior.last()
            && latest.digest == digest
        {
            return Ok(Some(Ok(PushOutcome::Unchanged(latest.clone()))));
        }
        if let Err(refusal) = check(&prior) {
            return Ok(Some(Err(refusal)));
        }
        let next = last + 1;
        let created_at = now_ms();
        let mut tx = self.pool.begin().await?;
        let moved = sqlx::query(
            "UPDATE subjects SET last_version = $1 WHERE name = $2 AND last_version = $3",
        )
        .bind(next)
        .bind(subject)
        .bind(last)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved != 1 {
            tx.rollback().await?;
            return Ok(None);
        }
        // A version deleted between our read and the CAS changes what "latest" is: re-check.
        let live_now: i64 =
            sqlx::query("SELECT COUNT(*) FROM versions WHERE subject = $1 AND deleted = 0")
                .bind(subject)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
        if live_now != prior.len() as i64 {
            tx.rollback().await?;
            return Ok(None);
        }
        sqlx::query(
            "INSERT INTO versions (subject, version, digest, files, descriptor, labels, created_at, deleted) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0)",
        )
        .bind(subject)
        .bind(next)
        .bind(digest)
        .bind(files_json)
        .bind(new.descriptor.clone())
        .bind(labels_json)
        .bind(created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(Ok(PushOutcome::Created(Version {
            subject: subject.to_string(),
            version: next,
            digest: digest.to_string(),
            files: new.files.clone(),
            descriptor: new.descriptor.clone(),
            labels: new.labels.clone(),
            created_at,
            deleted: false,
        }))))
    }

    /// Soft-deletes a live version, or permanently deletes a soft-deleted one. Returns
    /// whether something changed.
    pub async fn delete(&self, subject: &str, n: i64, permanent: bool) -> Result<bool, StoreError> {
        let affected = if permanent {
            sqlx::query("DELETE FROM versions WHERE subject = $1 AND version = $2 AND deleted = 1")
                .bind(subject)
                .bind(n)
                .execute(&self.pool)
                .await?
                .rows_affected()
        } else {
            sqlx::query("UPDATE versions SET deleted = 1 WHERE subject = $1 AND version = $2 AND deleted = 0")
                .bind(subject)
                .bind(n)
                .execute(&self.pool)
                .await?
                .rows_affected()
        };
        Ok(affected == 1)
    }

    /// The policy of a subject (`None`: the subject has none of its own), or the global one
    /// with `subject = ""`.
    pub async fn config(&self, scope: &str) -> Result<Option<Config>, StoreError> {
        let row = sqlx::query("SELECT mode, categories FROM config WHERE scope = $1")
            .bind(scope)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| -> Result<Config, StoreError> {
            let cats: String = r.try_get(1)?;
            Ok(Config {
                mode: r.try_get(0)?,
                categories: serde_json::from_str(&cats)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            })
        })
        .transpose()
    }

    pub async fn set_config(&self, scope: &str, config: &Config) -> Result<(), StoreError> {
        let cats = serde_json::to_string(&config.categories)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO config (scope, mode, categories) VALUES ($1, $2, $3) \
             ON CONFLICT (scope) DO UPDATE SET mode = excluded.mode, categories = excluded.categories",
        )
        .bind(scope)
        .bind(&config.mode)
        .bind(cats)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

fn is_retryable(e: &sqlx::Error) -> bool {
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
        sqlx::Error::PoolTimedOut => true,
        _ => false,
    }
}

fn row_to_version(r: &sqlx::any::AnyRow) -> Result<Version, StoreError> {
    let files: String = r.try_get(3)?;
    let labels: String = r.try_get(5)?;
    let bad = |e: serde_json::Error| StoreError::Corrupt(e.to_string());
    Ok(Version {
        subject: r.try_get(0)?,
        version: r.try_get(1)?,
        digest: r.try_get(2)?,
        files: serde_json::from_str(&files).map_err(bad)?,
        descriptor: r.try_get(4)?,
        labels: serde_json::from_str(&labels).map_err(bad)?,
        created_at: r.try_get(6)?,
        deleted: r.try_get::<i64, _>(7)? != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(text: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("a.proto".to_string(), text.to_string())])
    }

    #[test]
    fn digest_is_canonical() {
        let a = files("x");
        assert_eq!(digest(&a), digest(&a.clone()));
        assert_ne!(digest(&a), digest(&files("y")));
        // Moving bytes between path and text changes the digest.
        let b = BTreeMap::from([("a.prot".to_string(), "ox".to_string())]);
        assert_ne!(digest(&a), digest(&b));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_push_versions_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("r.db").to_string_lossy())
            .await
            .unwrap();
        let new = |t: &str| NewVersion {
            files: files(t),
            descriptor: vec![1, 2, 3],
            labels: BTreeMap::new(),
        };
        let ok = |_: &[Version]| Ok::<(), ()>(());
        let v1 = store.push("s", new("one"), ok).await.unwrap().unwrap();
        assert!(matches!(&v1, PushOutcome::Created(v) if v.version == 1));
        let same = store.push("s", new("one"), ok).await.unwrap().unwrap();
        assert!(matches!(&same, PushOutcome::Unchanged(v) if v.version == 1));
        let refused = store.push("s", new("two"), |prior: &[Version]| {
            assert_eq!(prior.len(), 1);
            Err("no")
        });
        assert_eq!(refused.await.unwrap(), Err("no"));
        store.push("s", new("two"), ok).await.unwrap().unwrap();
        assert!(store.delete("s", 2, false).await.unwrap());
        assert_eq!(
            store
                .version("s", None, false)
                .await
                .unwrap()
                .unwrap()
                .version,
            1
        );
        assert!(
            !store.delete("s", 1, true).await.unwrap(),
            "permanent needs a soft delete first"
        );
        assert!(store.delete("s", 2, true).await.unwrap());
        let v3 = store.push("s", new("three"), ok).await.unwrap().unwrap();
        assert!(
            matches!(&v3, PushOutcome::Created(v) if v.version == 3),
            "numbers are never reused"
        );
        assert_eq!(
            store.find_digest(&digest(&files("three"))).await.unwrap(),
            vec![("s".to_string(), 3)]
        );
        let subjects = store.subjects().await.unwrap();
        assert_eq!(subjects[0].latest_version, Some(3));
        assert_eq!(subjects[0].versions, 2);
    }
}
