//! Versions: reading them back from their manifests, pushing (snapshot, blobs, commit),
//! deleting, and who depends on whom.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sqlx::Row;

use crate::content::{self, Entry, Manifest};
use crate::{
    DepRef, Store, StoreError, StoredDescriptor, Version, VersionMeta, corrupt, is_retryable,
    now_ms,
};

/// The content of a push.
#[derive(Debug, Clone, Default)]
pub struct NewVersion {
    pub files: BTreeMap<String, String>,
    /// The compiled `FileDescriptorSet`: the files and everything they import.
    pub descriptor: Vec<u8>,
    pub labels: BTreeMap<String, String>,
    /// Resolved dependencies (concrete versions), in the order pushed.
    pub deps: Vec<DepRef>,
    pub explicit: Explicit,
}

/// Numbers an import from another registry keeps (Confluent's IMPORT mode): `None` means
/// the next free one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Explicit {
    pub schema_id: Option<i64>,
    /// Must be above every version number the subject has had.
    pub version: Option<i64>,
}

/// A push whose blobs are stored: what [`Store::commit`] needs.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub digest: String,
    /// See [`crate::schema_digest`].
    pub schema_digest: String,
    manifest: content::Manifest,
    labels: BTreeMap<String, String>,
    deps: Vec<DepRef>,
    explicit: Explicit,
    /// Small pushes' new blobs, packed: written by the commit (see [`INLINE_BLOBS`]).
    pending_blobs: Vec<(String, Vec<u8>)>,
    /// Set when the version is let through despite breaking changes: recorded by the
    /// commit, with the version.
    pub accepted: Option<crate::AcceptedBreak>,
}

/// What a push is checked against: the version counter and the live versions, oldest first
/// (their `deps` are not read: numbers and digests are what a check needs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub last: i64,
    pub live: Vec<VersionMeta>,
}

/// Texts of a push hashed, and packed for storing where the store lacks them
/// ([`Store::pack_texts`]).
#[derive(Debug, Default)]
pub struct PackedTexts {
    /// Path -> digest of every text.
    digests: BTreeMap<String, String>,
    /// Digest -> packed text.
    packed: BTreeMap<String, Vec<u8>>,
}

/// Blobs are read and written in batches of this many.
const BATCH: usize = 400;

/// New blobs of a push up to this many bytes (packed) are written by the commit's own
/// transaction instead of one of their own: one durable write (fsync) per small push.
const INLINE_BLOBS: usize = 256 << 10;

/// Inserts packed blobs (present ones are left as they are).
async fn insert_packed(
    conn: &mut sqlx::AnyConnection,
    packed: Vec<(String, Vec<u8>)>,
) -> Result<(), StoreError> {
    let mut packed = packed.into_iter().peekable();
    while packed.peek().is_some() {
        let batch: Vec<(String, Vec<u8>)> = packed.by_ref().take(BATCH / 2).collect();
        let values: Vec<String> = (0..batch.len())
            .map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2))
            .collect();
        let sql = format!(
            "INSERT INTO blobs (digest, content) VALUES {} ON CONFLICT (digest) DO NOTHING",
            values.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for (d, p) in batch {
            q = q.bind(d).bind(p);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

const META_COLUMNS: &str =
    "subject, version, digest, labels, created_at, deleted, COALESCE(schema_id, 0)";

fn row_to_meta(r: &sqlx::any::AnyRow) -> Result<VersionMeta, StoreError> {
    let labels: String = r.try_get(3)?;
    Ok(VersionMeta {
        subject: r.try_get(0)?,
        version: r.try_get(1)?,
        digest: r.try_get(2)?,
        labels: serde_json::from_str(&labels).map_err(corrupt)?,
        created_at: r.try_get(4)?,
        deleted: r.try_get::<i64, _>(5)? != 0,
        deps: Vec::new(),
        schema_id: r.try_get(6)?,
    })
}

/// The columns [`row_to_dep`] reads, in its order.
const DEP_COLUMNS: &str = "dep_subject, dep_version, dep_digest, name";

/// A dependency from [`DEP_COLUMNS`] starting at column `at`.
fn row_to_dep(r: &sqlx::any::AnyRow, at: usize) -> Result<DepRef, StoreError> {
    Ok(DepRef {
        subject: r.try_get(at)?,
        version: r.try_get(at + 1)?,
        digest: r.try_get(at + 2)?,
        name: r.try_get(at + 3)?,
    })
}

fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// Versions of a subject, oldest first (`include_deleted` adds soft-deleted ones).
    pub async fn versions(
        &self,
        subject: &str,
        include_deleted: bool,
    ) -> Result<Vec<VersionMeta>, StoreError> {
        let mut out = self.versions_without_deps(subject, include_deleted).await?;
        let mut deps = self.deps_of_subject(subject).await?;
        for v in &mut out {
            v.deps = deps.remove(&v.version).unwrap_or_default();
        }
        Ok(out)
    }

    /// [`Store::versions`] with `deps` left empty (a snapshot needs numbers and digests).
    async fn versions_without_deps(
        &self,
        subject: &str,
        include_deleted: bool,
    ) -> Result<Vec<VersionMeta>, StoreError> {
        let sql = format!(
            "SELECT {META_COLUMNS} FROM versions WHERE subject = $1 {} ORDER BY version",
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
        rows.iter().map(row_to_meta).collect()
    }

    async fn deps_of_subject(
        &self,
        subject: &str,
    ) -> Result<HashMap<i64, Vec<DepRef>>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT version, {DEP_COLUMNS} FROM version_deps \
                 WHERE subject = $1 ORDER BY version, position"
        ))
        .bind(subject)
        .fetch_all(&self.pool)
        .await?;
        let mut out: HashMap<i64, Vec<DepRef>> = HashMap::new();
        for r in &rows {
            out.entry(r.try_get(0)?)
                .or_default()
                .push(row_to_dep(r, 1)?);
        }
        Ok(out)
    }

    /// The metadata of one version (`None` = the latest live one). Soft-deleted versions are
    /// found only by number with `include_deleted`.
    pub async fn version_meta(
        &self,
        subject: &str,
        n: Option<i64>,
        include_deleted: bool,
    ) -> Result<Option<VersionMeta>, StoreError> {
        let row = self
            .select_version(META_COLUMNS, subject, n, include_deleted)
            .await?;
        let Some(mut meta) = row.as_ref().map(row_to_meta).transpose()? else {
            return Ok(None);
        };
        let rows = sqlx::query(&format!(
            "SELECT {DEP_COLUMNS} FROM version_deps \
             WHERE subject = $1 AND version = $2 ORDER BY position"
        ))
        .bind(subject)
        .bind(meta.version)
        .fetch_all(&self.pool)
        .await?;
        meta.deps = rows
            .iter()
            .map(|r| row_to_dep(r, 0))
            .collect::<Result<_, _>>()?;
        Ok(Some(meta))
    }

    /// `columns` of version `n` of `subject`, or of its latest live version when `n` is
    /// `None` (soft-deleted versions only by number, with `include_deleted`).
    async fn select_version(
        &self,
        columns: &str,
        subject: &str,
        n: Option<i64>,
        include_deleted: bool,
    ) -> Result<Option<sqlx::any::AnyRow>, StoreError> {
        let live = if include_deleted {
            ""
        } else {
            "AND deleted = 0"
        };
        let row = match n {
            Some(n) => {
                let sql = format!(
                    "SELECT {columns} FROM versions WHERE subject = $1 AND version = $2 {live}"
                );
                sqlx::query(&sql)
                    .bind(subject)
                    .bind(n)
                    .fetch_optional(&self.pool)
                    .await?
            }
            None => {
                let sql = format!(
                    "SELECT {columns} FROM versions WHERE subject = $1 AND deleted = 0 ORDER BY version DESC LIMIT 1"
                );
                sqlx::query(&sql)
                    .bind(subject)
                    .fetch_optional(&self.pool)
                    .await?
            }
        };
        Ok(row)
    }

    /// One version with its files and descriptor set (`None` = the latest live one).
    pub async fn version(
        &self,
        subject: &str,
        n: Option<i64>,
        include_deleted: bool,
    ) -> Result<Option<Version>, StoreError> {
        let Some(meta) = self.version_meta(subject, n, include_deleted).await? else {
            return Ok(None);
        };
        let Some(entries) = self.manifest(subject, meta.version).await? else {
            return Ok(None);
        };
        let (files, descriptor) = self.read_content(&entries, true, true).await?;
        Ok(Some(Version {
            meta,
            files,
            descriptor,
        }))
    }

    /// A version's own files (path -> text), without its descriptors.
    pub async fn files(
        &self,
        subject: &str,
        n: i64,
    ) -> Result<BTreeMap<String, String>, StoreError> {
        let entries = self
            .manifest(subject, n)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("no version {subject}@{n}")))?;
        Ok(self.read_content(&entries, true, false).await?.0)
    }

    /// A version's descriptor set and the names of its own files, without reading texts.
    pub async fn descriptor(
        &self,
        subject: &str,
        n: i64,
    ) -> Result<Option<StoredDescriptor>, StoreError> {
        let Some(entries) = self.manifest(subject, n).await? else {
            return Ok(None);
        };
        let (_, bytes) = self.read_content(&entries, false, true).await?;
        Ok(Some(StoredDescriptor {
            bytes,
            own: entries
                .iter()
                .filter(|e| e.text.is_some())
                .map(|e| e.path.clone())
                .collect(),
        }))
    }

    /// The texts (own files) and the joined descriptor set that manifest entries name; each
    /// part only when asked for.
    async fn read_content(
        &self,
        entries: &[Entry],
        texts: bool,
        descriptors: bool,
    ) -> Result<(BTreeMap<String, String>, Vec<u8>), StoreError> {
        let wanted: BTreeSet<String> = entries
            .iter()
            .flat_map(|e| {
                let t = e.text.iter().filter(|_| texts);
                t.chain(e.descriptor.iter().filter(|_| descriptors))
            })
            .cloned()
            .collect();
        let blobs = self.blobs(&wanted.into_iter().collect::<Vec<_>>()).await?;
        let get = |d: &String| {
            blobs
                .get(d)
                .ok_or_else(|| StoreError::Corrupt(format!("missing blob {d}")))
        };
        let mut files = BTreeMap::new();
        let mut parts = Vec::new();
        for e in entries {
            if let (true, Some(t)) = (texts, &e.text) {
                let text = String::from_utf8(get(t)?.clone()).map_err(corrupt)?;
                files.insert(e.path.clone(), text);
            }
            if let (true, Some(d)) = (descriptors, &e.descriptor) {
                parts.push(get(d)?.as_slice());
            }
        }
        Ok((files, content::join_descriptor_set(parts)))
    }

    /// The import paths of a version's own files, sorted, read from its manifest alone (no
    /// file text or descriptor is read): what a listing of the version needs.
    pub async fn version_paths(
        &self,
        subject: &str,
        n: i64,
    ) -> Result<Option<Vec<String>>, StoreError> {
        Ok(self.manifest(subject, n).await?.map(|entries| {
            let mut paths: Vec<String> = entries
                .into_iter()
                .filter(|e| e.text.is_some())
                .map(|e| e.path)
                .collect();
            paths.sort();
            paths
        }))
    }

    /// A version's manifest entries, in descriptor-set order (`None`: no such version).
    pub(crate) async fn manifest(
        &self,
        subject: &str,
        n: i64,
    ) -> Result<Option<Vec<Entry>>, StoreError> {
        let row = sqlx::query("SELECT manifest FROM versions WHERE subject = $1 AND version = $2")
            .bind(subject)
            .bind(n)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let text: Option<String> = row.try_get(0)?;
        let text =
            text.ok_or_else(|| StoreError::Corrupt(format!("{subject}@{n} has no manifest")))?;
        match serde_json::from_str(&text).map_err(corrupt)? {
            Manifest::Full(chunks) => self.chunk_entries(&chunks).await.map(Some),
            Manifest::Delta { root, changes } => {
                let (_, entries) = self.root(&root).await?;
                content::apply(entries, &changes).map(Some)
            }
        }
    }

    /// The entries of a root: a blob listing chunk digests.
    async fn root(&self, digest: &str) -> Result<(Vec<String>, Vec<Entry>), StoreError> {
        let blob = self.blobs(&[digest.to_string()]).await?;
        let bytes = blob
            .get(digest)
            .ok_or_else(|| StoreError::Corrupt(format!("missing manifest root {digest}")))?;
        let chunks: Vec<String> = serde_json::from_slice(bytes).map_err(corrupt)?;
        let entries = self.chunk_entries(&chunks).await?;
        Ok((chunks, entries))
    }

    async fn chunk_entries(&self, chunks: &[String]) -> Result<Vec<Entry>, StoreError> {
        let blobs = self.blobs(chunks).await?;
        let mut out = Vec::new();
        for c in chunks {
            let bytes = blobs
                .get(c)
                .ok_or_else(|| StoreError::Corrupt(format!("missing manifest chunk {c}")))?;
            let part: Vec<Entry> = serde_json::from_slice(bytes).map_err(corrupt)?;
            out.extend(part);
        }
        Ok(out)
    }

    /// The root a new version of `subject` can be a delta of: the latest live version's
    /// root, or its full manifest made a root. `None` when the subject has no version.
    async fn base_root(
        &self,
        subject: &str,
    ) -> Result<Option<(String, Vec<u8>, Vec<Entry>)>, StoreError> {
        let row = sqlx::query(
            "SELECT manifest FROM versions WHERE subject = $1 AND deleted = 0 AND manifest IS NOT NULL ORDER BY version DESC LIMIT 1",
        )
        .bind(subject)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let text: String = row.try_get(0)?;
        let (chunks, entries) = match serde_json::from_str(&text).map_err(corrupt)? {
            Manifest::Full(chunks) => {
                let entries = self.chunk_entries(&chunks).await?;
                (chunks, entries)
            }
            Manifest::Delta { root, .. } => self.root(&root).await?,
        };
        let bytes = serde_json::to_vec(&chunks).map_err(corrupt)?;
        Ok(Some((content::sha256(&bytes), bytes, entries)))
    }

    /// Rows of `SELECT {columns} FROM blobs` whose digest is one of `digests` (in batches).
    async fn blob_rows(
        &self,
        columns: &str,
        digests: &[String],
    ) -> Result<Vec<sqlx::any::AnyRow>, StoreError> {
        let mut rows = Vec::with_capacity(digests.len());
        for batch in digests.chunks(BATCH) {
            let sql = format!(
                "SELECT {columns} FROM blobs WHERE digest IN ({})",
                placeholders(1, batch.len())
            );
            let mut q = sqlx::query(&sql);
            for d in batch {
                q = q.bind(d);
            }
            rows.extend(q.fetch_all(&self.pool).await?);
        }
        Ok(rows)
    }

    /// Blobs by digest, uncompressed and checked.
    pub(crate) async fn blobs(
        &self,
        digests: &[String],
    ) -> Result<HashMap<String, Vec<u8>>, StoreError> {
        let mut out = HashMap::with_capacity(digests.len());
        for r in self.blob_rows("digest, content", digests).await? {
            let d: String = r.try_get(0)?;
            let stored: Vec<u8> = r.try_get(1)?;
            let content = content::unpack(&d, &stored)?;
            out.insert(d, content);
        }
        Ok(out)
    }

    /// Stores the blobs that are not stored yet.
    pub(crate) async fn put_blobs(
        &self,
        blobs: BTreeMap<String, Vec<u8>>,
    ) -> Result<(), StoreError> {
        let packed = self.pack_missing(blobs, PackedTexts::default()).await?;
        let mut conn = self.pool.acquire().await?;
        insert_packed(&mut conn, packed).await
    }

    /// The blobs the store does not hold yet, packed (compressed) for storing; those in
    /// `packed` are packed already.
    async fn pack_missing(
        &self,
        mut blobs: BTreeMap<String, Vec<u8>>,
        mut packed: PackedTexts,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let digests: Vec<String> = blobs.keys().cloned().collect();
        for r in self.blob_rows("digest", &digests).await? {
            blobs.remove(&r.try_get::<String, _>(0)?);
        }
        let ready: Vec<(String, Vec<u8>)> = blobs
            .keys()
            .filter_map(|d| Some((d.clone(), packed.packed.remove(d)?)))
            .collect();
        for (d, _) in &ready {
            blobs.remove(d);
        }
        if blobs.is_empty() {
            return Ok(ready);
        }
        // Compressing is CPU work: off the async workers, on every core.
        let mut out = tokio::task::spawn_blocking(move || {
            content::pack_all(blobs.into_iter().collect(), content::Effort::Fast)
        })
        .await
        .map_err(corrupt)?;
        out.extend(ready);
        Ok(out)
    }

    /// The texts of a push the store does not hold yet, packed: done while the push
    /// compiles (on one thread: the compile has the others), and written only with the
    /// version ([`Store::prepare_with`]), so a push that does not compile stores nothing.
    pub async fn pack_texts(
        &self,
        files: std::sync::Arc<BTreeMap<String, String>>,
    ) -> Result<PackedTexts, StoreError> {
        let hashed = files.clone();
        let digests: Vec<String> = tokio::task::spawn_blocking(move || {
            hashed
                .values()
                .map(|t| content::sha256(t.as_bytes()))
                .collect()
        })
        .await
        .map_err(corrupt)?;
        let mut missing: std::collections::BTreeSet<String> = digests.iter().cloned().collect();
        for r in self.blob_rows("digest", &digests).await? {
            missing.remove(&r.try_get::<String, _>(0)?);
        }
        tokio::task::spawn_blocking(move || {
            let mut packed = BTreeMap::new();
            for (d, text) in digests.iter().zip(files.values()) {
                if missing.remove(d) {
                    packed.insert(
                        d.clone(),
                        content::pack(text.as_bytes(), content::Effort::Small),
                    );
                }
            }
            PackedTexts {
                digests: files.keys().cloned().zip(digests).collect(),
                packed,
            }
        })
        .await
        .map_err(corrupt)
    }

    /// The number and digest of a live version (`None` = the latest): a cheap lookup that
    /// lets callers cache immutable version contents.
    pub async fn version_ref(
        &self,
        subject: &str,
        n: Option<i64>,
    ) -> Result<Option<(i64, String)>, StoreError> {
        let row = self
            .select_version("version, digest", subject, n, false)
            .await?;
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

    /// The version counter and live versions of a subject, for checking a push.
    pub async fn snapshot(&self, subject: &str) -> Result<Snapshot, StoreError> {
        let last: i64 = sqlx::query("SELECT last_version FROM subjects WHERE name = $1")
            .bind(subject)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?
            .unwrap_or(0);
        Ok(Snapshot {
            last,
            live: self.versions_without_deps(subject, false).await?,
        })
    }

    /// Stores a push's blobs (texts, per-file descriptors, manifest chunks) and chooses its
    /// manifest: a delta of the latest version's root when few files changed, else full.
    /// Blobs no version ends up naming are harmless: content-addressed, never served alone.
    pub async fn prepare(&self, subject: &str, new: NewVersion) -> Result<Prepared, StoreError> {
        self.prepare_with(subject, new, PackedTexts::default())
            .await
    }

    /// [`Store::prepare`] with the texts hashed and packed already ([`Store::pack_texts`] of
    /// the same files).
    pub async fn prepare_with(
        &self,
        subject: &str,
        new: NewVersion,
        packed: PackedTexts,
    ) -> Result<Prepared, StoreError> {
        let NewVersion {
            files,
            descriptor,
            labels,
            deps,
            explicit,
        } = new;
        let digest = crate::version_digest(&files, &deps);
        let schema_digest = crate::schema_digest(&files, &deps);
        // Hashing and splitting a large push is CPU work: off the async workers.
        let mut packed = packed;
        let text_digests = std::mem::take(&mut packed.digests);
        let mut addressed = tokio::task::spawn_blocking(move || {
            content::address(&files, &descriptor, &text_digests)
        })
        .await
        .map_err(corrupt)??;
        let base = self.base_root(subject).await?;
        let delta = base
            .as_ref()
            .and_then(|(_, _, root)| content::delta(root, &addressed.entries));
        let manifest = match (base, delta) {
            (Some((root, root_bytes, _)), Some(changes)) => {
                // Only what the changes name (and the root) needs storing.
                let named: std::collections::BTreeSet<&String> = changes
                    .iter()
                    .flat_map(|e| e.text.iter().chain(e.descriptor.iter()))
                    .collect();
                addressed.blobs.retain(|d, _| named.contains(d));
                addressed.blobs.insert(root.clone(), root_bytes);
                Manifest::Delta { root, changes }
            }
            _ => Manifest::Full(addressed.chunks),
        };
        let mut pending_blobs = self.pack_missing(addressed.blobs, packed).await?;
        if pending_blobs.iter().map(|(_, b)| b.len()).sum::<usize>() > INLINE_BLOBS {
            let mut conn = self.pool.acquire().await?;
            insert_packed(&mut conn, std::mem::take(&mut pending_blobs)).await?;
        }
        Ok(Prepared {
            digest,
            schema_digest,
            manifest,
            labels,
            deps,
            explicit,
            pending_blobs,
            accepted: None,
        })
    }

    /// Creates the next version if the subject is still as `snap` saw it and every
    /// dependency is still live; `None` when it changed (take a new snapshot, check again).
    pub async fn commit(
        &self,
        subject: &str,
        snap: &Snapshot,
        new: &Prepared,
    ) -> Result<Option<VersionMeta>, StoreError> {
        match self.try_commit(subject, snap, new).await {
            Err(StoreError::Db(e)) if is_retryable(&e) => Ok(None),
            other => other,
        }
    }

    async fn try_commit(
        &self,
        subject: &str,
        snap: &Snapshot,
        new: &Prepared,
    ) -> Result<Option<VersionMeta>, StoreError> {
        sqlx::query(
            "INSERT INTO subjects (name, last_version, created_at) VALUES ($1, 0, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(subject)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        let next = match new.explicit.version {
            Some(n) if n <= snap.last => {
                return Err(StoreError::Invalid(format!(
                    "version {n} is not above {subject}'s last version {}",
                    snap.last
                )));
            }
            Some(n) => n,
            None => snap.last + 1,
        };
        let created_at = now_ms();
        let mut tx = self.pool.begin().await?;
        let moved = sqlx::query(
            "UPDATE subjects SET last_version = $1 WHERE name = $2 AND last_version = $3",
        )
        .bind(next)
        .bind(subject)
        .bind(snap.last)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved != 1 {
            tx.rollback().await?;
            return Ok(None);
        }
        insert_packed(&mut tx, new.pending_blobs.clone()).await?;
        // A version deleted between the snapshot and the CAS changes what "latest" is.
        let live_now: i64 =
            sqlx::query("SELECT COUNT(*) FROM versions WHERE subject = $1 AND deleted = 0")
                .bind(subject)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
        if live_now != snap.live.len() as i64 {
            tx.rollback().await?;
            return Ok(None);
        }
        for d in &new.deps {
            let live = sqlx::query(
                "SELECT 1 FROM versions WHERE subject = $1 AND version = $2 AND digest = $3 AND deleted = 0",
            )
            .bind(&d.subject)
            .bind(d.version)
            .bind(&d.digest)
            .fetch_optional(&mut *tx)
            .await?;
            if live.is_none() {
                tx.rollback().await?;
                return Err(StoreError::DependencyGone {
                    subject: d.subject.clone(),
                    version: d.version,
                });
            }
        }
        let labels = serde_json::to_string(&new.labels).map_err(corrupt)?;
        let manifest = serde_json::to_string(&new.manifest).map_err(corrupt)?;
        let schema_id =
            Self::assign_schema_id(&mut tx, &new.schema_digest, new.explicit.schema_id).await?;
        sqlx::query(
            "INSERT INTO versions (subject, version, digest, files, descriptor, labels, created_at, deleted, manifest, schema_id) \
             VALUES ($1, $2, $3, '', $4, $5, $6, 0, $7, $8)",
        )
        .bind(subject)
        .bind(next)
        .bind(&new.digest)
        .bind(Vec::<u8>::new())
        .bind(labels)
        .bind(created_at)
        .bind(manifest)
        .bind(schema_id)
        .execute(&mut *tx)
        .await?;
        for (i, d) in new.deps.iter().enumerate() {
            sqlx::query(
                "INSERT INTO version_deps (subject, version, dep_subject, dep_version, dep_digest, position, name) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(subject)
            .bind(next)
            .bind(&d.subject)
            .bind(d.version)
            .bind(&d.digest)
            .bind(i as i64)
            .bind(&d.name)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(accepted) = &new.accepted {
            crate::accepted::insert(&mut tx, subject, next, accepted).await?;
        }
        self.announce(&mut tx, subject).await?;
        tx.commit().await?;
        Ok(Some(VersionMeta {
            subject: subject.to_string(),
            version: next,
            digest: new.digest.clone(),
            labels: new.labels.clone(),
            created_at,
            deleted: false,
            deps: new.deps.clone(),
            schema_id,
        }))
    }

    /// Live versions of other subjects that name this version as a dependency.
    pub async fn dependents(
        &self,
        subject: &str,
        n: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT d.subject, d.version FROM version_deps d JOIN versions v \
               ON v.subject = d.subject AND v.version = d.version \
             WHERE d.dep_subject = $1 AND d.dep_version = $2 AND v.deleted = 0 \
             ORDER BY d.subject, d.version",
        )
        .bind(subject)
        .bind(n)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// How many other subjects have a live version depending on some version of `subject`.
    pub async fn dependent_count(&self, subject: &str) -> Result<i64, StoreError> {
        Ok(sqlx::query(
            "SELECT COUNT(DISTINCT d.subject) FROM version_deps d JOIN versions v \
               ON v.subject = d.subject AND v.version = d.version \
             WHERE d.dep_subject = $1 AND d.subject <> $1 AND v.deleted = 0",
        )
        .bind(subject)
        .fetch_one(&self.pool)
        .await?
        .try_get(0)?)
    }

    /// The latest live version of every other subject whose latest live version depends on
    /// some version of `subject`.
    pub async fn latest_dependents(&self, subject: &str) -> Result<Vec<VersionMeta>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT d.subject FROM version_deps d WHERE d.dep_subject = $1 AND d.subject <> $1 ORDER BY d.subject",
        )
        .bind(subject)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            let s: String = r.try_get(0)?;
            if let Some(meta) = self.version_meta(&s, None, false).await?
                && meta.deps.iter().any(|d| d.subject == subject)
            {
                out.push(meta);
            }
        }
        Ok(out)
    }

    /// Soft-deletes a live version, or permanently deletes a soft-deleted one. Returns
    /// whether something changed.
    pub async fn delete(&self, subject: &str, n: i64, permanent: bool) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let affected = if permanent {
            sqlx::query("DELETE FROM versions WHERE subject = $1 AND version = $2 AND deleted = 1")
                .bind(subject)
                .bind(n)
                .execute(&mut *tx)
                .await?
                .rows_affected()
        } else {
            sqlx::query("UPDATE versions SET deleted = 1 WHERE subject = $1 AND version = $2 AND deleted = 0")
                .bind(subject)
                .bind(n)
                .execute(&mut *tx)
                .await?
                .rows_affected()
        };
        if affected == 1 {
            if permanent {
                sqlx::query("DELETE FROM accepted_breaks WHERE subject = $1 AND version = $2")
                    .bind(subject)
                    .bind(n)
                    .execute(&mut *tx)
                    .await?;
            }
            self.announce(&mut tx, subject).await?;
        }
        tx.commit().await?;
        Ok(affected == 1)
    }
}
