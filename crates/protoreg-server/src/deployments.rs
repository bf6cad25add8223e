//! Which service runs which contract where: recording deployments (by CI, or by instances
//! that report themselves), listing environments, the consumers of a version, and
//! `can-i-deploy` — the pins about to be deployed checked against every other service
//! deployed in the environment that shares a subject, in the direction that matters.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use protoreg_store::{Deployment, NewDeployment, Pin};

use crate::api::{
    CanIDeployReply, CanIDeployRequest, DeploymentBody, DeploymentRequest, EnvironmentBody,
    EnvironmentSummary, FindingBody, HistoryEntry, InstanceReport, MatrixRow, PinBody,
    ServiceHistory,
};
use crate::error::{ApiError, ApiResult};
use crate::push::{breaking, version_image};
use crate::v1::{effective_config, parse_version, subject_name};
use crate::{AppState, domain};

pub const SERVES: &str = "serves";
pub const CALLS: &str = "calls";

/// Longest environment, service or instance name.
const MAX_NAME: usize = 128;
/// How long an instance's report counts by default, and at most.
const DEFAULT_TTL_SECS: u64 = 30;
const MAX_TTL_SECS: u64 = 3600;
/// Most pins a deployment may carry.
const MAX_PINS: usize = 256;

/// A JSON body (gzip or not), with a clear error naming what is wrong.
fn read_json<T: serde::de::DeserializeOwned>(
    state: &AppState,
    headers: &HeaderMap,
    raw: Bytes,
) -> ApiResult<T> {
    let body = crate::push::inflate(headers, raw, state.limits.max_inflated)?;
    serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
}

/// Environment, service and instance names: 1-128 of `A-Z a-z 0-9 . _ -`.
pub(crate) fn name<'a>(kind: &str, s: &'a str) -> ApiResult<&'a str> {
    let ok = !s.is_empty()
        && s.len() <= MAX_NAME
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(s)
    } else {
        Err(ApiError::bad_request(format!(
            "invalid {kind} name {s:?}: use 1-{MAX_NAME} of A-Z a-z 0-9 . _ -"
        )))
    }
}

/// An environment that must exist (only recording a deployment creates one).
pub(crate) async fn known_environment(state: &AppState, env: &str) -> ApiResult<()> {
    if state.store.environment_exists(env).await? {
        Ok(())
    } else {
        Err(ApiError::not_found(format!(
            "no environment {env:?} (record a deployment there first)"
        )))
    }
}

/// Checks pins against the registry: known role, a live version, the digest the lock says.
async fn resolve_pins(state: &AppState, pins: &[PinBody]) -> ApiResult<Vec<Pin>> {
    if pins.is_empty() || pins.len() > MAX_PINS {
        return Err(ApiError::bad_request(format!(
            "pins: 1-{MAX_PINS} pins ({{subject, version, digest, role}})"
        )));
    }
    let mut out: Vec<Pin> = Vec::with_capacity(pins.len());
    for p in pins {
        let subject = subject_name(&p.subject)?;
        if p.role != SERVES && p.role != CALLS {
            return Err(ApiError::bad_request(format!(
                "pin {subject}@{}: role {:?} is not \"serves\" or \"calls\"",
                p.version, p.role
            )));
        }
        if out.iter().any(|o| o.subject == subject && o.role == p.role) {
            return Err(ApiError::bad_request(format!(
                "pin {subject} ({}) is given twice",
                p.role
            )));
        }
        let meta = state
            .store
            .version_meta(subject, Some(p.version), false)
            .await?
            .ok_or_else(|| {
                ApiError::not_found(format!("pin {subject}@{}: no such live version", p.version))
            })?;
        if let Some(d) = &p.digest
            && *d != meta.digest
        {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "digest_mismatch",
                format!(
                    "pin {subject}@{}: the lock's digest {d} is not the registry's {} (the lock was made against another registry or the version was replaced)",
                    p.version, meta.digest
                ),
            ));
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

fn labels(l: &BTreeMap<String, String>) -> ApiResult<()> {
    domain::check_labels(l).map_err(ApiError::bad_request)
}

pub(crate) async fn record(
    State(state): State<AppState>,
    Path(env): Path<String>,
    headers: HeaderMap,
    raw: Bytes,
) -> ApiResult<(StatusCode, Json<DeploymentBody>)> {
    let body: DeploymentRequest = read_json(&state, &headers, raw)?;
    let env = name("environment", &env)?;
    let service = name("service", &body.service)?;
    labels(&body.labels)?;
    let pins = resolve_pins(&state, &body.pins).await?;
    let d = state
        .store
        .record_deployment(
            env,
            &NewDeployment {
                service: service.to_string(),
                instance: String::new(),
                pins,
                labels: body.labels,
                ttl_ms: None,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(DeploymentBody::from(&d))))
}

pub(crate) async fn report_instance(
    State(state): State<AppState>,
    Path(env): Path<String>,
    headers: HeaderMap,
    raw: Bytes,
) -> ApiResult<Json<DeploymentBody>> {
    let body: InstanceReport = read_json(&state, &headers, raw)?;
    let env = name("environment", &env)?;
    let service = name("service", &body.service)?;
    let instance = name("instance", &body.instance)?;
    labels(&body.labels)?;
    let ttl = body.ttl_secs.unwrap_or(DEFAULT_TTL_SECS);
    if ttl == 0 || ttl > MAX_TTL_SECS {
        return Err(ApiError::bad_request(format!(
            "ttl_secs must be 1-{MAX_TTL_SECS}"
        )));
    }
    let pins = resolve_pins(&state, &body.pins).await?;
    let d = state
        .store
        .record_deployment(
            env,
            &NewDeployment {
                service: service.to_string(),
                instance: instance.to_string(),
                pins,
                labels: body.labels,
                ttl_ms: Some(ttl as i64 * 1000),
            },
        )
        .await?;
    Ok(Json(DeploymentBody::from(&d)))
}

pub(crate) async fn undeploy(
    State(state): State<AppState>,
    Path((env, service)): Path<(String, String)>,
) -> ApiResult<Json<serde_json::Value>> {
    let env = name("environment", &env)?;
    let service = name("service", &service)?;
    known_environment(&state, env).await?;
    if !state.store.undeploy(env, service).await? {
        return Err(ApiError::not_found(format!(
            "service {service:?} is not deployed in {env:?}"
        )));
    }
    Ok(Json(
        serde_json::json!({"environment": env, "service": service, "undeployed": true}),
    ))
}

/// The deployment log of a service in an environment: its current deployment(s) and
/// the ones they replaced, newest first (the last 100).
pub(crate) async fn service_history(
    State(state): State<AppState>,
    Path((env, service)): Path<(String, String)>,
) -> ApiResult<Json<ServiceHistory>> {
    let env = name("environment", &env)?;
    let service = name("service", &service)?;
    known_environment(&state, env).await?;
    let list = state.store.deployment_history(env, service, 100).await?;
    if list.is_empty() {
        return Err(ApiError::not_found(format!(
            "service {service:?} was never deployed in {env:?}"
        )));
    }
    let now = protoreg_store::now_ms();
    Ok(Json(ServiceHistory {
        environment: env.to_string(),
        service: service.to_string(),
        deployments: list
            .iter()
            .map(|(d, ended)| HistoryEntry {
                current: ended.is_none() && d.expires_at.is_none_or(|e| e > now),
                ended_at: ended.map(crate::rfc3339),
                deployment: DeploymentBody::from(d),
            })
            .collect(),
    }))
}

pub(crate) async fn list_environments(
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<EnvironmentSummary>>> {
    Ok(Json(
        state
            .store
            .environments()
            .await?
            .into_iter()
            .map(|e| EnvironmentSummary {
                name: e.name,
                created_at: crate::rfc3339(e.created_at),
                services: e.services,
            })
            .collect(),
    ))
}

pub(crate) async fn get_environment(
    State(state): State<AppState>,
    Path(env): Path<String>,
) -> ApiResult<Json<EnvironmentBody>> {
    let env = name("environment", &env)?;
    known_environment(&state, env).await?;
    let deployments = state.store.current_deployments(env).await?;
    Ok(Json(EnvironmentBody {
        name: env.to_string(),
        deployments: deployments.iter().map(DeploymentBody::from).collect(),
    }))
}

pub(crate) async fn consumers(
    State(state): State<AppState>,
    Path((subject, version)): Path<(String, String)>,
) -> ApiResult<Json<Vec<DeploymentBody>>> {
    let subject = subject_name(&subject)?;
    let n = parse_version(&version)?;
    let (n, _) = state.store.version_ref(subject, n).await?.ok_or_else(|| {
        ApiError::not_found(format!("no version {version} of subject {subject:?}"))
    })?;
    let list = state.store.consumers(subject, n).await?;
    Ok(Json(list.iter().map(DeploymentBody::from).collect()))
}

/// `service@env` names of deployments, for messages.
pub(crate) fn deployment_names(list: &[Deployment]) -> Vec<String> {
    list.iter()
        .map(|d| {
            if d.instance.is_empty() {
                format!("{}'s {}", d.environment, d.service)
            } else {
                format!(
                    "{}'s {} (instance {})",
                    d.environment, d.service, d.instance
                )
            }
        })
        .collect()
}

pub(crate) async fn can_i_deploy(
    State(state): State<AppState>,
    Path(env): Path<String>,
    headers: HeaderMap,
    raw: Bytes,
) -> ApiResult<Json<CanIDeployReply>> {
    let body: CanIDeployRequest = read_json(&state, &headers, raw)?;
    let env = name("environment", &env)?;
    let service = name("service", &body.service)?;
    known_environment(&state, env).await?;
    let pins = resolve_pins(&state, &body.pins).await?;
    let deployed = state.store.current_deployments(env).await?;
    let mut matrix = Vec::new();
    for d in deployed.iter().filter(|d| d.service != service) {
        for theirs in &d.pins {
            for mine in pins
                .iter()
                .filter(|p| p.subject == theirs.subject && p.role != theirs.role)
            {
                matrix.push(counterpart(&state, d, theirs, mine).await?);
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
    Ok(Json(CanIDeployReply {
        answer: answer.into(),
        environment: env.to_string(),
        service: service.to_string(),
        matrix,
    }))
}

/// One cell of the matrix: the server side's contract (current) against the caller side's
/// (previous) — a new server must still accept what deployed callers send, and a new
/// caller must only use what the deployed server serves.
pub(crate) async fn counterpart(
    state: &AppState,
    d: &Deployment,
    theirs: &Pin,
    mine: &Pin,
) -> ApiResult<MatrixRow> {
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
    let meta = state
        .store
        .version_meta(&theirs.subject, Some(theirs.version), true)
        .await?;
    let unknown = match meta {
        None => Some(format!(
            "{}@{} is not in the registry",
            theirs.subject, theirs.version
        )),
        Some(m) if m.deleted => Some(format!("{}@{} was deleted", theirs.subject, theirs.version)),
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
    let current = version_image(state, &server.subject, server.version, &server.digest).await?;
    let previous = version_image(state, &caller.subject, caller.version, &caller.digest).await?;
    let (Some(current), Some(previous)) = (current, previous) else {
        row.status = "unknown".into();
        row.reason = Some(format!(
            "{}@{} or @{} cannot be read",
            server.subject, server.version, caller.version
        ));
        return Ok(row);
    };
    let config = effective_config(&state.store, &theirs.subject).await?;
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
    state: &AppState,
    subject: &str,
    image: &Arc<protoreg_schema::Image>,
    config: &protoreg_store::Config,
) -> ApiResult<Vec<crate::api::DeployedWarning>> {
    let mut out = Vec::new();
    for d in state.store.subject_consumers(subject).await? {
        for p in d.pins.iter().filter(|p| p.subject == subject) {
            let Some(pinned) = version_image(state, subject, p.version, &p.digest).await? else {
                continue;
            };
            let findings = breaking(image.clone(), pinned, config.clone()).await?;
            if findings.is_empty() {
                continue;
            }
            out.push(crate::api::DeployedWarning {
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
