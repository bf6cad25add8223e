//! Global schema ids (one per distinct schema content, across subjects; what the Confluent
//! API calls a schema's id) and the Confluent API's modes.

use sqlx::Row;

use crate::{Store, StoreError, VersionMeta, WriteMode};

/// Where a schema id is used: `(subject, version, soft-deleted)`.
pub type SchemaUse = (String, i64, bool);

impl Store {
    /// The id of the schema content `digest`: the one it has, else `explicit` (an import
    /// keeping a previous registry's id) or the next free one. Within the commit's transaction.
    pub(crate) async fn assign_schema_id(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        digest: &str,
        explicit: Option<i64>,
    ) -> Result<i64, StoreError> {
        let existing: Option<i64> = sqlx::query("SELECT id FROM schema_ids WHERE digest = $1")
            .bind(digest)
            .fetch_optional(&mut **tx)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
        if let Some(id) = existing {
            return match explicit {
                Some(want) if want != id => Err(StoreError::Invalid(format!(
                    "this schema is already registered with id {id}, not {want}"
                ))),
                _ => Ok(id),
            };
        }
        let id = match explicit {
            Some(want) => {
                let taken = sqlx::query("SELECT 1 FROM schema_ids WHERE id = $1")
                    .bind(want)
                    .fetch_optional(&mut **tx)
                    .await?;
                if taken.is_some() {
                    return Err(StoreError::Invalid(format!(
                        "schema id {want} is already used by another schema"
                    )));
                }
                want
            }
            None => sqlx::query("SELECT COALESCE(MAX(id), 0) + 1 FROM schema_ids")
                .fetch_one(&mut **tx)
                .await?
                .try_get(0)?,
        };
        // A racing commit that takes the same id or digest fails this insert; the push
        // then retries and finds it.
        sqlx::query("INSERT INTO schema_ids (id, digest) VALUES ($1, $2)")
            .bind(id)
            .bind(digest)
            .execute(&mut **tx)
            .await?;
        Ok(id)
    }

    /// Every version whose content has schema id `id`, live ones first.
    pub async fn schema_uses(&self, id: i64) -> Result<Vec<SchemaUse>, StoreError> {
        let rows = sqlx::query(
            "SELECT subject, version, deleted FROM versions WHERE schema_id = $1 \
             ORDER BY deleted, subject, version",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get::<i64, _>(2)? != 0)))
            .collect()
    }

    /// The first version of `subject` whose content has schema digest `digest`.
    pub async fn find_schema(
        &self,
        subject: &str,
        digest: &str,
        include_deleted: bool,
    ) -> Result<Option<VersionMeta>, StoreError> {
        let sql = format!(
            "SELECT v.version FROM versions v JOIN schema_ids s ON s.id = v.schema_id \
             WHERE v.subject = $1 AND s.digest = $2 {} ORDER BY v.version LIMIT 1",
            if include_deleted {
                ""
            } else {
                "AND v.deleted = 0"
            }
        );
        let n: Option<i64> = sqlx::query(&sql)
            .bind(subject)
            .bind(digest)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
        match n {
            Some(n) => self.version_meta(subject, Some(n), true).await,
            None => Ok(None),
        }
    }

    /// The Confluent mode of a scope (`""`: global); `None` when none is set.
    pub async fn mode(&self, scope: &str) -> Result<Option<WriteMode>, StoreError> {
        sqlx::query("SELECT mode FROM modes WHERE scope = $1")
            .bind(scope)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| -> Result<WriteMode, StoreError> {
                let name: String = r.try_get(0)?;
                name.parse()
                    .map_err(|e| StoreError::Corrupt(format!("{e}")))
            })
            .transpose()
    }

    pub async fn set_mode(&self, scope: &str, mode: WriteMode) -> Result<(), StoreError> {
        let mode = mode.as_str();
        sqlx::query(
            "INSERT INTO modes (scope, mode) VALUES ($1, $2) \
             ON CONFLICT (scope) DO UPDATE SET mode = excluded.mode",
        )
        .bind(scope)
        .bind(mode)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes a scope's mode; returns the one it had.
    pub async fn delete_mode(&self, scope: &str) -> Result<Option<WriteMode>, StoreError> {
        let had = self.mode(scope).await?;
        sqlx::query("DELETE FROM modes WHERE scope = $1")
            .bind(scope)
            .execute(&self.pool)
            .await?;
        Ok(had)
    }

    /// Removes a scope's policy; returns the one it had.
    pub async fn delete_config(&self, scope: &str) -> Result<Option<crate::Config>, StoreError> {
        let had = self.config(scope).await?;
        sqlx::query("DELETE FROM config WHERE scope = $1")
            .bind(scope)
            .execute(&self.pool)
            .await?;
        Ok(had)
    }
}
