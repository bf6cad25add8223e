//! Breaks accepted on purpose: a version an admin pushed despite breaking changes, with why
//! and the findings it broke (see `migrations/*/0005_accepted_breaks.sql`).

use std::collections::BTreeMap;

use serde_json::Value;
use sqlx::Row;

use crate::{Store, StoreError, corrupt};

/// Why a version was let through despite breaking changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedBreak {
    pub reason: String,
    /// Who accepted it (as the server identified the caller).
    pub by: String,
    /// The findings, as the API returns them (a JSON array).
    pub findings: Value,
}

impl Store {
    /// The accepted break recorded with a version, if any.
    pub async fn accepted_break(
        &self,
        subject: &str,
        version: i64,
    ) -> Result<Option<AcceptedBreak>, StoreError> {
        Ok(self
            .accepted_breaks(subject, Some(version))
            .await?
            .into_values()
            .next())
    }

    /// The accepted breaks of a subject's versions (all, or one), by version.
    pub async fn accepted_breaks(
        &self,
        subject: &str,
        version: Option<i64>,
    ) -> Result<BTreeMap<i64, AcceptedBreak>, StoreError> {
        let rows = sqlx::query(
            "SELECT version, reason, accepted_by, findings FROM accepted_breaks \
             WHERE subject = $1 AND ($2 < 0 OR version = $2)",
        )
        .bind(subject)
        .bind(version.unwrap_or(-1))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let findings: String = r.try_get(3)?;
                Ok((
                    r.try_get(0)?,
                    AcceptedBreak {
                        reason: r.try_get(1)?,
                        by: r.try_get(2)?,
                        findings: serde_json::from_str(&findings).map_err(corrupt)?,
                    },
                ))
            })
            .collect()
    }
}

/// Records an accepted break in the version's commit transaction.
pub(crate) async fn insert(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    subject: &str,
    version: i64,
    accepted: &AcceptedBreak,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO accepted_breaks (subject, version, reason, accepted_by, findings) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(subject)
    .bind(version)
    .bind(&accepted.reason)
    .bind(&accepted.by)
    .bind(accepted.findings.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
