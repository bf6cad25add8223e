//! Which service runs which contract where: recording deployments (by CI, or by instances
//! that report themselves), the consumers of a version, and `can-i-deploy` — the pins about
//! to be deployed checked against every other service deployed in the environment that
//! shares a subject, in the direction that matters. No HTTP here.

use std::collections::BTreeMap;
use std::sync::Arc;

use protoreg_store::{Deployment, NewDeployment, Pin};

use super::error::{Error, Missing, Result};
use super::images::breaking;
use super::{Registry, domain};
use crate::api::{CanIDeployReply, DeployedWarning, FindingBody, MatrixRow, PinBody};

pub const SERVES: &str = "serves";
pub const CALLS: &str = "calls";

/// Longest environment, service or instance name.
const MAX_NAME: usize = 128;
/// How long an instance's report counts by default, and at most.
const DEFAULT_TTL_SECS: u64 = 30;
const MAX_TTL_SECS: u64 = 3600;
/// Most pins a deployment may carry.
const MAX_PINS: usize = 256;

/// Environment, service and instance names: 1-128 of `A-Z a-z 0-9 . _ -`.
pub fn name<'a>(kind: &str, s: &'a str) -> Result<&'a str> {
    let ok = !s.is_empty()
        && s.len() <= MAX_NAME
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(s)
    } else {
        Err(Error::invalid(format!(
            "invalid {kind} name {s:?}: use 1-{MAX_NAME} of A-Z a-z 0-9 . _ -"
        )))
    }
}

/// A deployment to record: who (a service, or one of its instances with how long its report
/// counts) runs which pins with which labels.
pub struct Record<'a> {
    pub service: &'a str,
    /// `Some((instance, ttl_secs))` for an instance's heartbeat.
    pub instance: Option<(&'a str, Option<u64>)>,
    pub pins: &'a [PinBody],
    pub labels: BTreeMap<String, String>,
}

impl Registry {
    /// An environment that must exist (only recording a deployment creates one).
    pub async fn known_environment(&self, env: &str) -> Result<()> {
        name("environment", env)?;
        if self.store.environment_exists(env).await? {
            Ok(())
        } else {
            Err(Error::not_found(
                Missing::Environment,
                format!("no environment {env:?} (record a deployment there first)"),
            ))
        }
    }

    /// Checks pins against the registry: known role, a live version, the digest the lock says.
    async fn resolve_pins(&self, pins: &[PinBody]) -> Result<Vec<Pin>> {
        if pins.is_empty() || pins.len() > MAX_PINS {
            return Err(Error::invalid(format!(
                "pins: 1-{MAX_PINS} pins ({{subject, version, digest, role}})"
            )));
        }
        let mut out: Vec<Pin> = Vec::with_capacity(pins.len());
        for p in pins {
            let subject = p.subject.as_str();
            super::check_subject(subject)?;
            if p.role != SERVES && p.role != CALLS {
                return Err(Error::invalid(format!(
                    "pin {subject}@{}: role {:?} is not \"serves\" or \"calls\"",
                    p.version, p.role
                )));
            }
            if out.iter().any(|o| o.subject == subject && o.role == p.role) {
                return Err(Error::invalid(format!(
                    "pin {subject} ({}) is given twice",
                    p.role
                )));
            }
            let meta = self
                .store
                .version_meta(subject, Some(p.version), false)
                .await?
                .ok_or_else(|| {
                    Error::not_found(
                        Missing::Version,
                        format!("pin {subject}@{}: no such live version", p.version),
                    )
                })?;
            if let Some(d) = &p.digest
                && *d != meta.digest
            {
                return Err(Error::DigestMismatch(format!(
                    "pin {subject}@{}: the lock's digest {d} is not the registry's {} (the lock was made against another registry or the version was replaced)",
                    p.version, meta.digest
                )));
            }
            out.push(Pin {
                subject: subject.to_string(),
                version: p.version,
                digest: meta.digest,
                role: p.role.clone(),
            });
        }
        Ok(out)
    }

    /// Records that a service (or one of its instances) runs these pins in `env`, which is
    /// created on first use; it replaces the service's (instance's) current deployment there.
    pub async fn record_deployment(&self, env: &str, r: Record<'_>) -> Result<Deployment> {
        name("environment", env)?;
        name("service", r.service)?;
        domain::check_labels(&r.labels).map_err(Error::Invalid)?;
        let (instance, ttl_ms) = match r.instance {
            None => (String::new(), None),
            Some((instance, ttl)) => {
                name("instance", instance)?;
                let ttl = ttl.unwrap_or(DEFAULT_TTL_SECS);
                if ttl == 0 || ttl > MAX_TTL_SECS {
                    return Err(Error::invalid(format!("ttl_secs must be 1-{MAX_TTL_SECS}")));
                }
                (instance.to_string(), Some(ttl as i64 * 1000))
            }
        };
        let pins = self.resolve_pins(r.pins).await?;
        Ok(self
            .store
            .record_deployment(
                env,
                &NewDeployment {
                    service: r.service.to_string(),
                    instance,
                    pins,
                    labels: r.labels,
                    ttl_ms,
                },
            )
            .await?)
    }

    /// The service no longer runs in `env`.
    pub async fn undeploy(&self, env: &str, service: &str) -> Result<()> {
        name("service", service)?;
        self.known_environment(env).await?;
        if self.store.undeploy(env, service).await? {
            Ok(())
        } else {
            Err(Error::not_found(
                Missing::Deployment,
                format!("service {service:?} is not deployed in {env:?}"),
            ))
        }
    }

    /// A service's deployment log in `env`, newest first (the last 100), each with when it
    /// ended (`None`: current).
    pub async fn deployment_history(
        &self,
        env: &str,
        service: &str,
    ) -> Result<Vec<(Deployment, Option<i64>)>> {
        name("service", service)?;
        self.known_environment(env).await?;
        let list = self.store.deployment_history(env, service, 100).await?;
        if list.is_empty() {
            return Err(Error::not_found(
                Missing::Deployment,
                format!("service {service:?} was never deployed in {env:?}"),
            ));
        }
        Ok(list)
    }

    /// What runs in `env` now.
    pub async fn current_deployments(&self, env: &str) -> Result<Vec<Deployment>> {
        self.known_environment(env).await?;
        Ok(self.store.current_deployments(env).await?)
    }

    /// The deployments that run a version now, in every environment.
    pub async fn consumers(&self, subject: &str, version: Option<i64>) -> Result<Vec<Deployment>> {
        super::check_subject(subject)?;
        let (n, _) = self
            .store
            .version_ref(subject, version)
            .await?
            .ok_or_else(|| {
                Error::no_version(subject, version.map_or("latest".into(), |n| n.to_string()))
            })?;
        Ok(self.store.consumers(subject, n).await?)
    }

    /// May `service`, built with `pins`, be deployed to `env`? `yes`, `no` or `unknown`, with
    /// the matrix of the deployed counterparts that share a subject with it.
    pub async fn can_i_deploy(
        &self,
        env: &str,
        service: &str,
        pins: &[PinBody],
    ) -> Result<CanIDeployReply> {
        name("service", service)?;
        self.known_environment(env).await?;
        let pins = self.resolve_pins(pins).await?;
        let deployed = self.store.current_deployments(env).await?;
        let mut matrix = Vec::new();
        for d in deployed.iter().filter(|d| d.service != service) {
            for theirs in &d.pins {
                for mine in pins
                    .iter()
                    .filter(|p| p.subject == theirs.subject && p.role != theirs.role)
                {
                    matrix.push(self.counterpart(d, theirs, mine).await?);
                }
            }
        }
        let answer = if matrix.iter().any(|r| r.status == "unknown") {
            "unknown"
        } else if matrix.iter().any(|r| r.status == "incompatible") {
            "no"
        } else {
            "yes"
        };
        Ok(CanIDeployReply {
            answer: answer.into(),
            environment: env.to_string(),
            service: service.to_string(),
            matrix,
        })
    }

    /// One cell of the matrix: the server side's contract (current) against the caller
    /// side's (previous) — a new server must still accept what deployed callers send, and a
    /// new caller must only use what the deployed server serves.
    pub async fn counterpart(&self, d: &Deployment, theirs: &Pin, mine: &Pin) -> Result<MatrixRow> {
        let mut row = MatrixRow {
            service: d.service.clone(),
            instance: (!d.instance.is_empty()).then(|| d.instance.clone()),
            subject: theirs.subject.clone(),
            role: theirs.role.clone(),
            version: theirs.version,
            deploying: mine.version,
            status: "compatible".into(),
            reason: None,
            findings: Vec::new(),
        };
        // Their pinned version must still be there, as it was.
        let meta = self
            .store
            .version_meta(&theirs.subject, Some(theirs.version), true)
            .await?;
        let unknown = match meta {
            None => Some(format!(
                "{}@{} is not in the registry",
                theirs.subject, theirs.version
            )),
            Some(m) if m.deleted => {
                Some(format!("{}@{} was deleted", theirs.subject, theirs.version))
            }
            Some(m) if m.digest != theirs.digest => Some(format!(
                "{}@{} no longer has the digest it was deployed with",
                theirs.subject, theirs.version
            )),
            Some(_) => None,
        };
        if let Some(reason) = unknown {
            row.status = "unknown".into();
            row.reason = Some(reason);
            return Ok(row);
        }
        if theirs.digest == mine.digest {
            return Ok(row);
        }
        let (server, caller) = if mine.role == SERVES {
            (mine, theirs)
        } else {
            (theirs, mine)
        };
        let current = self
            .version_image(&server.subject, server.version, &server.digest)
            .await?;
        let previous = self
            .version_image(&caller.subject, caller.version, &caller.digest)
            .await?;
        let (Some(current), Some(previous)) = (current, previous) else {
            row.status = "unknown".into();
            row.reason = Some(format!(
                "{}@{} or @{} cannot be read",
                server.subject, server.version, caller.version
            ));
            return Ok(row);
        };
        let config = self.effective_config(&theirs.subject).await?;
        let findings = breaking(current, previous, config).await?;
        if !findings.is_empty() {
            row.status = "incompatible".into();
            row.findings = findings.iter().map(FindingBody::from).collect();
        }
        Ok(row)
    }

    /// What a new version of a subject would break among its current deployments: the new
    /// version checked (as a push is, new against old) against every version of it that a
    /// service runs somewhere now, under the subject's categories.
    pub(crate) async fn deployed_impact(
        &self,
        subject: &str,
        image: &Arc<protoreg_schema::Image>,
        config: &protoreg_store::Config,
    ) -> Result<Vec<DeployedWarning>> {
        let mut out = Vec::new();
        for d in self.store.subject_consumers(subject).await? {
            for p in d.pins.iter().filter(|p| p.subject == subject) {
                let Some(pinned) = self.version_image(subject, p.version, &p.digest).await? else {
                    continue;
                };
                let findings = breaking(image.clone(), pinned, config.clone()).await?;
                if findings.is_empty() {
                    continue;
                }
                out.push(DeployedWarning {
                    environment: d.environment.clone(),
                    service: d.service.clone(),
                    role: p.role.clone(),
                    version: p.version,
                    message: format!(
                        "{}'s {} {} {subject}@{} and would break ({} breaking change(s))",
                        d.environment,
                        d.service,
                        p.role,
                        p.version,
                        findings.len()
                    ),
                    findings: findings.iter().map(FindingBody::from).collect(),
                });
            }
        }
        Ok(out)
    }
}
