//! What a diff between two versions needs without reading whole versions: the text digests
//! of their own files (from the manifests), the texts of chosen files, and the findings
//! kept per (contents, policy) (see `migrations/*/0007_diff_results.sql`).

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;
use sqlx::Row;

use crate::{Store, StoreError, corrupt, now_ms};

impl Store {
    /// A version's own files with the digests of their texts, from its manifest alone.
    pub async fn version_text_digests(
        &self,
        subject: &str,
        n: i64,
    ) -> Result<Option<BTreeMap<String, String>>, StoreError> {
        Ok(self.manifest(subject, n).await?.map(|entries| {
            entries
                .into_iter()
                .filter_map(|e| e.text.map(|t| (e.path, t)))
                .collect()
        }))
    }

    /// Texts by digest (the digests of [`Store::version_text_digests`]).
    pub async fn texts(&self, digests: &[String]) -> Result<HashMap<String, String>, StoreError> {
        self.blobs(digests)
            .await?
            .into_iter()
            .map(|(d, bytes)| Ok((d, String::from_utf8(bytes).map_err(corrupt)?)))
            .collect()
    }

    /// The findings kept for a diff, if computed before.
    pub async fn diff_findings(
        &self,
        subject: &str,
        from_digest: &str,
        to_digest: &str,
        policy: &str,
    ) -> Result<Option<Value>, StoreError> {
        let row = sqlx::query(
            "SELECT findings FROM diff_results WHERE subject = $1 AND from_digest = $2 AND to_digest = $3 AND policy = $4",
        )
        .bind(subject)
        .bind(from_digest)
        .bind(to_digest)
        .bind(policy)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| -> Result<Value, StoreError> {
            let text: String = r.try_get(0)?;
            serde_json::from_str(&text).map_err(corrupt)
        })
        .transpose()
    }

    /// Keeps a diff's findings (the first writer wins; they are equal anyway).
    pub async fn put_diff_findings(
        &self,
        subject: &str,
        from_digest: &str,
        to_digest: &str,
        policy: &str,
        findings: &Value,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO diff_results (subject, from_digest, to_digest, policy, findings, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (subject, from_digest, to_digest, policy) DO NOTHING",
        )
        .bind(subject)
        .bind(from_digest)
        .bind(to_digest)
        .bind(policy)
        .bind(findings.to_string())
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
