//! `/v1` pushes and dry runs: the body (gzip included) read into a [`Push`], the answer
//! built from what the service did.

use std::io::Read;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{ApiError, ApiResult, subject_name};
use crate::AppState;
use crate::api::{AcceptedBreakBody, CheckReply, Dep, FindingBody, PushReply, PushRequest};
use crate::service::{Caller, Push};

/// The request body, inflated when it came with `Content-Encoding: gzip` (at most
/// `max_inflated` bytes once inflated).
pub(crate) fn inflate(headers: &HeaderMap, body: Bytes, max_inflated: usize) -> ApiResult<Bytes> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("identity") => Ok(body),
        Some("gzip") => {
            let mut out = Vec::new();
            let read = flate2::read::GzDecoder::new(body.as_ref())
                .take(max_inflated as u64 + 1)
                .read_to_end(&mut out);
            match read {
                Err(e) => Err(ApiError::bad_request(format!(
                    "body is not valid gzip: {e}"
                ))),
                Ok(n) if n > max_inflated => Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    format!("the inflated body is larger than {max_inflated} bytes"),
                )),
                Ok(_) => Ok(out.into()),
            }
        }
        Some(other) => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_encoding",
            format!("Content-Encoding {other:?} is not supported (gzip or identity)"),
        )),
    }
}

/// Inflates and parses a push's body and resolves its dependencies.
async fn read_push(
    state: &AppState,
    subject: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> ApiResult<Push> {
    let body = inflate(headers, body, state.limits.max_inflated)?;
    let b: PushRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "body must be {{\"files\": {{\"path.proto\": \"text\"}}, \"labels\": {{}}, \"deps\": [\"subject@N\"]}}: {e}"
        ))
    })?;
    drop(body);
    let deps = state.resolve_deps(subject, &b.deps).await?;
    Ok(Push {
        files: b.files,
        labels: b.labels,
        deps,
        accept_reason: b.accept_breaking.map(|a| a.reason),
        explicit: Default::default(),
    })
}

pub(crate) async fn push(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    axum::Extension(caller): axum::Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let subject = subject_name(&subject)?;
    let push = read_push(&state, subject, &headers, body).await?;
    let (files, deps) = (push.files.clone(), push.deps.clone());
    let pushed = state.push(subject, push, &caller).await?;
    let v = &pushed.version;
    let mut reply = PushReply {
        subject: v.subject.clone(),
        version: v.version,
        digest: v.digest.clone(),
        accepted_break: pushed.accepted.as_ref().map(AcceptedBreakBody::from_store),
        deployed: pushed.deployed,
        deps: v.deps.iter().map(Dep::from).collect(),
        dependents: None,
    };
    if !pushed.created {
        return Ok(Json(reply).into_response());
    }
    reply.dependents = Some(state.impact(subject, &files, &deps).await?);
    Ok((StatusCode::CREATED, Json(reply)).into_response())
}

pub(crate) async fn check(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    axum::Extension(caller): axum::Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<CheckReply>> {
    let subject = subject_name(&subject)?;
    let push = read_push(&state, subject, &headers, body).await?;
    let deps = push.deps.clone();
    let checked = state.check(subject, push, &caller).await?;
    Ok(Json(CheckReply {
        deployed: checked.deployed,
        compatible: checked.findings.is_empty(),
        findings: checked.findings.iter().map(FindingBody::from).collect(),
        deps: deps.iter().map(Dep::from).collect(),
        dependents: checked.dependents,
    }))
}
