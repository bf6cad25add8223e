//! Which service runs which contract where: environments, recorded deployments and the
//! instances that report themselves (see `migrations/*/0006_deployments.sql`).

use std::collections::BTreeMap;

use sqlx::Row;

use crate::{Store, StoreError, corrupt, is_retryable, now_ms};

/// One pinned contract of a deployed service.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pin {
    pub subject: String,
    pub version: i64,
    pub digest: String,
    /// `serves` or `calls`.
    pub role: String,
}

/// A service running in an environment (one CI-recorded deployment or one reporting
/// instance).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    pub environment: String,
    pub service: String,
    /// Empty for a deployment recorded by CI; the instance id for one that reports itself.
    pub instance: String,
    pub pins: Vec<Pin>,
    pub labels: BTreeMap<String, String>,
    /// Unix milliseconds.
    pub deployed_at: i64,
    /// For reporting instances: when it stops counting without another heartbeat.
    pub expires_at: Option<i64>,
}

/// An environment in listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    pub name: String,
    pub created_at: i64,
    /// Services currently deployed there.
    pub services: i64,
}

/// A new deployment: what [`Store::record_deployment`] takes.
#[derive(Debug, Clone)]
pub struct NewDeployment {
    pub service: String,
    pub instance: String,
    pub pins: Vec<Pin>,
    pub labels: BTreeMap<String, String>,
    /// For reporting instances: how long the report counts.
    pub ttl_ms: Option<i64>,
}

/// How often a write racing another one on the same service is tried.
const ATTEMPTS: u32 = 50;

/// `deployments` rows that count now (the `d` alias), with `$N` the current time.
fn current(now_param: usize) -> String {
    format!("d.ended_at IS NULL AND (d.instance = '' OR d.expires_at > ${now_param})")
}

impl Store {
    /// Records that a service runs in an environment (created on first use), replacing the
    /// service's (or the instance's) current deployment there. Concurrent records of the
    /// same service are serialised: the last to commit is current, every one is kept.
    pub async fn record_deployment(
        &self,
        environment: &str,
        new: &NewDeployment,
    ) -> Result<Deployment, StoreError> {
        let mut attempt = 0;
        loop {
            match self.try_record(environment, new).await {
                Err(StoreError::Db(e)) if is_retryable(&e) && attempt < ATTEMPTS => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(
                        2 + u64::from(attempt % 8) * 3,
                    ))
                    .await;
                }
                other => return other,
            }
        }
    }

    async fn try_record(
        &self,
        environment: &str,
        new: &NewDeployment,
    ) -> Result<Deployment, StoreError> {
        let now = now_ms();
        let expires_at = new.ttl_ms.map(|t| now + t);
        let labels = serde_json::to_string(&new.labels).map_err(corrupt)?;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO environments (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(environment)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        // A heartbeat with the pins it reported before only extends the report.
        if expires_at.is_some() {
            let row = sqlx::query(
                "SELECT id FROM deployments WHERE environment = $1 AND service = $2 AND instance = $3 AND ended_at IS NULL",
            )
            .bind(environment)
            .bind(&new.service)
            .bind(&new.instance)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(row) = row {
                let id: i64 = row.try_get(0)?;
                let mut pins = pins_of(&mut tx, id).await?;
                pins.sort();
                let mut wanted = new.pins.clone();
                wanted.sort();
                if pins == wanted {
                    sqlx::query("UPDATE deployments SET expires_at = $1 WHERE id = $2")
                        .bind(expires_at)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    return self.deployment_by_id(id).await;
                }
            }
        }
        sqlx::query(
            "UPDATE deployments SET ended_at = $1 WHERE environment = $2 AND service = $3 AND instance = $4 AND ended_at IS NULL",
        )
        .bind(now)
        .bind(environment)
        .bind(&new.service)
        .bind(&new.instance)
        .execute(&mut *tx)
        .await?;
        let id: i64 = sqlx::query(
            "INSERT INTO deployments (environment, service, instance, labels, deployed_at, ended_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, NULL, $6) RETURNING id",
        )
        .bind(environment)
        .bind(&new.service)
        .bind(&new.instance)
        .bind(labels)
        .bind(now)
        .bind(expires_at)
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        for p in &new.pins {
            sqlx::query(
                "INSERT INTO deployment_pins (deployment_id, subject, version, digest, role) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(id)
            .bind(&p.subject)
            .bind(p.version)
            .bind(&p.digest)
            .bind(&p.role)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.deployment_by_id(id).await
    }

    async fn deployment_by_id(&self, id: i64) -> Result<Deployment, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM deployments d WHERE d.id = $1");
        let rows = sqlx::query(&sql).bind(id).fetch_all(&self.pool).await?;
        self.with_pins(&rows)
            .await?
            .into_iter()
            .next()
            .map(|(d, _)| d)
            .ok_or_else(|| StoreError::Corrupt(format!("deployment {id} vanished")))
    }

    /// [`Store::with_pins`] without the `ended_at`s (current deployments have none).
    async fn deployments(&self, rows: &[sqlx::any::AnyRow]) -> Result<Vec<Deployment>, StoreError> {
        Ok(self
            .with_pins(rows)
            .await?
            .into_iter()
            .map(|(d, _)| d)
            .collect())
    }

    /// Deployments from rows of [`COLUMNS`], their pins read in one query, each with its
    /// `ended_at`.
    async fn with_pins(
        &self,
        rows: &[sqlx::any::AnyRow],
    ) -> Result<Vec<(Deployment, Option<i64>)>, StoreError> {
        let ids: Vec<i64> = rows
            .iter()
            .map(|r| r.try_get(6))
            .collect::<Result<_, _>>()?;
        let mut pins: BTreeMap<i64, Vec<Pin>> = BTreeMap::new();
        if !ids.is_empty() {
            // The ids are integers read from the database: safe to inline.
            let list: Vec<String> = ids.iter().map(i64::to_string).collect();
            let sql = format!(
                "SELECT deployment_id, subject, version, digest, role FROM deployment_pins \
                 WHERE deployment_id IN ({}) ORDER BY deployment_id, subject, role",
                list.join(",")
            );
            for r in sqlx::query(&sql).fetch_all(&self.pool).await? {
                pins.entry(r.try_get(0)?).or_default().push(Pin {
                    subject: r.try_get(1)?,
                    version: r.try_get(2)?,
                    digest: r.try_get(3)?,
                    role: r.try_get(4)?,
                });
            }
        }
        rows.iter()
            .zip(ids)
            .map(|(r, id)| {
                let ended: Option<i64> = r.try_get(7)?;
                Ok((deployment(r, pins.remove(&id).unwrap_or_default())?, ended))
            })
            .collect()
    }

    /// Ends a service's deployment (CI-recorded and reporting instances) in an
    /// environment. Returns whether one was current.
    pub async fn undeploy(&self, environment: &str, service: &str) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE deployments SET ended_at = $1 WHERE environment = $2 AND service = $3 AND ended_at IS NULL",
        )
        .bind(now_ms())
        .bind(environment)
        .bind(service)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    pub async fn environment_exists(&self, environment: &str) -> Result<bool, StoreError> {
        Ok(sqlx::query("SELECT 1 FROM environments WHERE name = $1")
            .bind(environment)
            .fetch_optional(&self.pool)
            .await?
            .is_some())
    }

    /// Every environment, by name, with how many services run there now.
    pub async fn environments(&self) -> Result<Vec<Environment>, StoreError> {
        let sql = format!(
            "SELECT e.name, e.created_at, \
               (SELECT COUNT(DISTINCT d.service) FROM deployments d WHERE d.environment = e.name AND {}) \
             FROM environments e ORDER BY e.name",
            current(1)
        );
        let rows = sqlx::query(&sql)
            .bind(now_ms())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Environment {
                    name: r.try_get(0)?,
                    created_at: r.try_get(1)?,
                    services: r.try_get(2)?,
                })
            })
            .collect()
    }

    /// What runs in an environment now, by service (then instance).
    pub async fn current_deployments(
        &self,
        environment: &str,
    ) -> Result<Vec<Deployment>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM deployments d WHERE d.environment = $1 AND {} \
             ORDER BY d.service, d.instance",
            current(2)
        );
        let rows = sqlx::query(&sql)
            .bind(environment)
            .bind(now_ms())
            .fetch_all(&self.pool)
            .await?;
        self.deployments(&rows).await
    }

    /// A service's deployments in an environment, newest first (at most `limit`), current
    /// or not, each with when it ended: the deployment log.
    pub async fn deployment_history(
        &self,
        environment: &str,
        service: &str,
        limit: i64,
    ) -> Result<Vec<(Deployment, Option<i64>)>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM deployments d WHERE d.environment = $1 AND d.service = $2 \
             ORDER BY d.id DESC LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(environment)
            .bind(service)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        self.with_pins(&rows).await
    }

    /// The deployments running a version now, in every environment.
    pub async fn consumers(
        &self,
        subject: &str,
        version: i64,
    ) -> Result<Vec<Deployment>, StoreError> {
        self.running(subject, Some(version)).await
    }

    /// The deployments running any version of a subject now.
    pub async fn subject_consumers(&self, subject: &str) -> Result<Vec<Deployment>, StoreError> {
        self.running(subject, None).await
    }

    /// Current deployments with a pin of `subject` (at `version`, or any).
    async fn running(
        &self,
        subject: &str,
        version: Option<i64>,
    ) -> Result<Vec<Deployment>, StoreError> {
        // A service pinning the subject twice (serves and calls) is one deployment.
        let sql = format!(
            "SELECT {COLUMNS} FROM deployments d WHERE {} AND d.id IN \
               (SELECT p.deployment_id FROM deployment_pins p \
                WHERE p.subject = $1 AND ($2 < 0 OR p.version = $2)) \
             ORDER BY d.environment, d.service, d.instance",
            current(3)
        );
        let rows = sqlx::query(&sql)
            .bind(subject)
            .bind(version.unwrap_or(-1))
            .bind(now_ms())
            .fetch_all(&self.pool)
            .await?;
        self.deployments(&rows).await
    }
}

/// The columns [`deployment`] and [`Store::with_pins`] read, in order (alias `d`).
const COLUMNS: &str =
    "d.environment, d.service, d.instance, d.labels, d.deployed_at, d.expires_at, d.id, d.ended_at";

async fn pins_of(conn: &mut sqlx::AnyConnection, id: i64) -> Result<Vec<Pin>, StoreError> {
    let rows = sqlx::query(
        "SELECT subject, version, digest, role FROM deployment_pins WHERE deployment_id = $1 ORDER BY subject, role",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Pin {
                subject: r.try_get(0)?,
                version: r.try_get(1)?,
                digest: r.try_get(2)?,
                role: r.try_get(3)?,
            })
        })
        .collect()
}

fn deployment(r: &sqlx::any::AnyRow, pins: Vec<Pin>) -> Result<Deployment, StoreError> {
    let labels: String = r.try_get(3)?;
    Ok(Deployment {
        environment: r.try_get(0)?,
        service: r.try_get(1)?,
        instance: r.try_get(2)?,
        labels: serde_json::from_str(&labels).map_err(corrupt)?,
        deployed_at: r.try_get(4)?,
        expires_at: r.try_get(5)?,
        pins,
    })
}
