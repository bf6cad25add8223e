//! Rewrites rows of the first schema (files and descriptor set inline in the version row)
//! into content-addressed blobs and a manifest. Run at open, after the migrations; each row
//! is rewritten in its own statement guarded by `manifest IS NULL`, so replicas starting
//! together, or a start interrupted half way, finish the job without doing it twice.

use std::collections::BTreeMap;

use sqlx::Row;

use crate::{Store, StoreError, content, corrupt};

impl Store {
    pub(crate) async fn upgrade_inline_rows(&self) -> Result<(), StoreError> {
        let rows = sqlx::query(
            "SELECT subject, version FROM versions WHERE manifest IS NULL ORDER BY subject, version",
        )
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            let subject: String = r.try_get(0)?;
            let version: i64 = r.try_get(1)?;
            self.upgrade_row(&subject, version).await?;
        }
        if !rows.is_empty() {
            tracing::info!(
                versions = rows.len(),
                "moved versions to content-addressed storage"
            );
        }
        Ok(())
    }

    async fn upgrade_row(&self, subject: &str, version: i64) -> Result<(), StoreError> {
        let Some(row) = sqlx::query(
            "SELECT files, descriptor FROM versions WHERE subject = $1 AND version = $2 AND manifest IS NULL",
        )
        .bind(subject)
        .bind(version)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(());
        };
        let files: String = row.try_get(0)?;
        let descriptor: Vec<u8> = row.try_get(1)?;
        let files: BTreeMap<String, String> = serde_json::from_str(&files).map_err(corrupt)?;
        let addressed = content::address(&files, &descriptor, &BTreeMap::new())?;
        // The manifest must give back exactly the bytes that were stored.
        let rejoined = content::join_descriptor_set(
            addressed
                .entries
                .iter()
                .filter_map(|e| e.descriptor.as_ref())
                .map(|d| addressed.blobs[d].as_slice()),
        );
        if rejoined != descriptor {
            return Err(StoreError::Corrupt(format!(
                "{subject}@{version}: the descriptor set does not split into its files losslessly"
            )));
        }
        let manifest = serde_json::to_string(&addressed.chunks).map_err(corrupt)?;
        self.put_blobs(addressed.blobs).await?;
        sqlx::query(
            "UPDATE versions SET manifest = $1, files = '', descriptor = $2 \
             WHERE subject = $3 AND version = $4 AND manifest IS NULL",
        )
        .bind(manifest)
        .bind(Vec::<u8>::new())
        .bind(subject)
        .bind(version)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Gives every version written before schema ids existed the id of its content.
    pub(crate) async fn assign_missing_schema_ids(&self) -> Result<(), StoreError> {
        let rows = sqlx::query(
            "SELECT subject, version FROM versions WHERE schema_id IS NULL ORDER BY subject, version",
        )
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            let subject: String = r.try_get(0)?;
            let version: i64 = r.try_get(1)?;
            let Some(meta) = self.version_meta(&subject, Some(version), true).await? else {
                continue;
            };
            let files = self.files(&subject, version).await?;
            let digest = crate::schema_digest(&files, &meta.deps);
            let mut tx = self.pool.begin().await?;
            let id = Self::assign_schema_id(&mut tx, &digest, None).await?;
            sqlx::query(
                "UPDATE versions SET schema_id = $1 WHERE subject = $2 AND version = $3 AND schema_id IS NULL",
            )
            .bind(id)
            .bind(&subject)
            .bind(version)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        }
        if !rows.is_empty() {
            tracing::info!(versions = rows.len(), "assigned schema ids");
        }
        Ok(())
    }
}
