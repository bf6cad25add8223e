//! `/v1/environments/…` and a version's consumers: bodies read, service called, typed
//! answers. The rules (names, pins, TTLs, can-i-deploy's matrix) are the service's.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};

use super::{ApiError, ApiResult, subject_name, version_number};
use crate::AppState;
use crate::api::{
    CanIDeployReply, CanIDeployRequest, DeploymentBody, DeploymentRequest, EnvironmentBody,
    EnvironmentSummary, HistoryEntry, InstanceReport, ServiceHistory, rfc3339,
};
use crate::service::deployments::Record;

/// A JSON body (gzip or not), with a clear error naming what is wrong.
fn read_json<T: serde::de::DeserializeOwned>(
    state: &AppState,
    headers: &HeaderMap,
    raw: Bytes,
) -> ApiResult<T> {
    let body = super::push::inflate(headers, raw, state.limits.max_inflated)?;
    serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
}

pub(crate) async fn record(
    State(state): State<AppState>,
    Path(env): Path<String>,
    headers: HeaderMap,
    raw: Bytes,
) -> ApiResult<(StatusCode, Json<DeploymentBody>)> {
    let body: DeploymentRequest = read_json(&state, &headers, raw)?;
    let d = state
        .record_deployment(
            &env,
            Record {
                service: &body.service,
                instance: None,
                pins: &body.pins,
                labels: body.labels.clone(),
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
    let d = state
        .record_deployment(
            &env,
            Record {
                service: &body.service,
                instance: Some((&body.instance, body.ttl_secs)),
                pins: &body.pins,
                labels: body.labels.clone(),
            },
        )
        .await?;
    Ok(Json(DeploymentBody::from(&d)))
}

pub(crate) async fn undeploy(
    State(state): State<AppState>,
    Path((env, service)): Path<(String, String)>,
) -> ApiResult<Json<serde_json::Value>> {
    state.undeploy(&env, &service).await?;
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
    let list = state.deployment_history(&env, &service).await?;
    let now = protoreg_store::now_ms();
    Ok(Json(ServiceHistory {
        environment: env,
        service,
        deployments: list
            .iter()
            .map(|(d, ended)| HistoryEntry {
                current: ended.is_none() && d.expires_at.is_none_or(|e| e > now),
                ended_at: ended.map(rfc3339),
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
                created_at: rfc3339(e.created_at),
                services: e.services,
            })
            .collect(),
    ))
}

pub(crate) async fn get_environment(
    State(state): State<AppState>,
    Path(env): Path<String>,
) -> ApiResult<Json<EnvironmentBody>> {
    let deployments = state.current_deployments(&env).await?;
    Ok(Json(EnvironmentBody {
        name: env,
        deployments: deployments.iter().map(DeploymentBody::from).collect(),
    }))
}

pub(crate) async fn consumers(
    State(state): State<AppState>,
    Path((subject, version)): Path<(String, String)>,
) -> ApiResult<Json<Vec<DeploymentBody>>> {
    let subject = subject_name(&subject)?;
    let list = state.consumers(subject, version_number(&version)?).await?;
    Ok(Json(list.iter().map(DeploymentBody::from).collect()))
}

pub(crate) async fn can_i_deploy(
    State(state): State<AppState>,
    Path(env): Path<String>,
    headers: HeaderMap,
    raw: Bytes,
) -> ApiResult<Json<CanIDeployReply>> {
    let body: CanIDeployRequest = read_json(&state, &headers, raw)?;
    Ok(Json(
        state.can_i_deploy(&env, &body.service, &body.pins).await?,
    ))
}
