//! The log of refused pushes: a bounded number per subject, newest kept.

use std::collections::BTreeMap;

use serde_json::Value;
use sqlx::Row;

use crate::{Store, StoreError, corrupt, now_ms};

/// Refused pushes kept per subject.
pub const REFUSALS_KEPT: i64 = 50;

/// A refused push.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Refusal {
    /// Unix milliseconds.
    pub created_at: i64,
    pub labels: BTreeMap<String, String>,
    /// The policy it was checked under (`{"mode", "categories"}`).
    pub policy: Value,
    /// The findings, as the API returns them.
    pub findings: Value,
}

impl Store {
    /// Logs a refused push (and drops the oldest beyond [`REFUSALS_KEPT`]).
    pub async fn record_refusal(
        &self,
        subject: &str,
        labels: &BTreeMap<String, String>,
        policy: &Value,
        findings: &Value,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO refusals (subject, created_at, labels, policy, findings) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(subject)
        .bind(now_ms())
        .bind(serde_json::to_string(labels).map_err(corrupt)?)
        .bind(policy.to_string())
        .bind(findings.to_string())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM refusals WHERE subject = $1 AND id NOT IN \
             (SELECT id FROM refusals WHERE subject = $1 ORDER BY id DESC LIMIT $2)",
        )
        .bind(subject)
        .bind(REFUSALS_KEPT)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The subject's refused pushes, newest first.
    pub async fn refusals(&self, subject: &str) -> Result<Vec<Refusal>, StoreError> {
        let rows = sqlx::query(
            "SELECT created_at, labels, policy, findings FROM refusals WHERE subject = $1 ORDER BY id DESC",
        )
        .bind(subject)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let labels: String = r.try_get(1)?;
                let policy: String = r.try_get(2)?;
                let findings: String = r.try_get(3)?;
                Ok(Refusal {
                    created_at: r.try_get(0)?,
                    labels: serde_json::from_str(&labels).map_err(corrupt)?,
                    policy: serde_json::from_str(&policy).map_err(corrupt)?,
                    findings: serde_json::from_str(&findings).map_err(corrupt)?,
                })
            })
            .collect()
    }
}
