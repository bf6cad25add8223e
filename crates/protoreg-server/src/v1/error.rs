//! The `/v1` door's one error shape, `{"error": {"code", "message", "details"}}`, and how
//! the service's errors map onto it.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use protoreg_store::StoreError;
use serde_json::{Value, json};

use crate::api::{DeploymentBody, DiagnosticBody, FindingBody, VersionRef};
use crate::service;

/// Every error of the API: `{"error": {"code", "message", "details"}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Value,
    /// Seconds, for `Retry-After` (503s).
    retry_after: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: Value::Null,
            retry_after: None,
        }
    }
    pub(crate) fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }
    pub(crate) fn internal(code: &'static str, msg: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, code, msg)
    }
    pub(crate) fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }
    pub(crate) fn bad_request(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", msg)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body =
            json!({"error": {"code": self.code, "message": self.message, "details": self.details}});
        if self.code == "incompatible"
            && let Some(f) = self.details.get("findings")
        {
            body["findings"] = f.clone();
        }
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(s) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        service::Error::from(e).into()
    }
}

/// The `/v1` answer to each of the service's errors: the one place they are mapped.
impl From<service::Error> for ApiError {
    fn from(e: service::Error) -> Self {
        use service::Error as E;
        let message = e.to_string();
        let (status, code, details) = match e {
            E::Invalid(_) => (StatusCode::BAD_REQUEST, "bad_request", Value::Null),
            E::NotFound { .. } => (StatusCode::NOT_FOUND, "not_found", Value::Null),
            E::Compile(diags) => {
                let list: Vec<DiagnosticBody> = diags.iter().map(DiagnosticBody::from).collect();
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "compile_error",
                    json!({"diagnostics": list}),
                )
            }
            E::Incompatible { policy, findings } => {
                let list: Vec<FindingBody> = findings.iter().map(FindingBody::from).collect();
                (
                    StatusCode::CONFLICT,
                    "incompatible",
                    json!({"mode": policy.mode, "categories": policy.categories, "findings": list}),
                )
            }
            E::BreaksDeployed { deployed } => (
                StatusCode::CONFLICT,
                "breaks_deployed",
                json!({"deployed": deployed}),
            ),
            E::HasDependents { dependents, .. } => {
                let refs: Vec<VersionRef> = dependents
                    .into_iter()
                    .map(|a| VersionRef {
                        subject: a.subject,
                        version: a.version,
                    })
                    .collect();
                (
                    StatusCode::CONFLICT,
                    "has_dependents",
                    json!({"dependents": refs}),
                )
            }
            E::RunningIn { deployments, .. } => {
                let list: Vec<DeploymentBody> =
                    deployments.iter().map(DeploymentBody::from).collect();
                (
                    StatusCode::CONFLICT,
                    "deployed",
                    json!({"deployments": list}),
                )
            }
            E::ReadOnly { scope } => (StatusCode::CONFLICT, "read_only", json!({"scope": scope})),
            E::ImportNeedsId { scope } => {
                (StatusCode::CONFLICT, "import_mode", json!({"scope": scope}))
            }
            E::ExplicitOutsideImport | E::ImportNotEmpty => {
                (StatusCode::CONFLICT, "import_mode", Value::Null)
            }
            E::NotSoftDeleted { .. } => (StatusCode::CONFLICT, "not_soft_deleted", Value::Null),
            E::AlreadyDeleted { .. } => (StatusCode::NOT_FOUND, "not_found", Value::Null),
            E::DependencyCycle(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "dependency_cycle",
                Value::Null,
            ),
            E::DependencyConflict {
                path,
                first,
                second,
            } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "dependency_conflict",
                json!({"path": path, "providers": [first, second]}),
            ),
            E::DependencyGone(_) => (StatusCode::CONFLICT, "dependency_deleted", Value::Null),
            E::ImportConflict(_) => (StatusCode::CONFLICT, "import_conflict", Value::Null),
            E::DigestMismatch(_) => (StatusCode::CONFLICT, "digest_mismatch", Value::Null),
            E::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", Value::Null),
            E::LostRace(_) => {
                return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "contention", message)
                    .retry_after(1);
            }
            E::Unavailable => {
                return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
                    .retry_after(5);
            }
            E::Internal(_) => {
                return ApiError::internal("internal", "internal error");
            }
        };
        ApiError::new(status, code, message).details(details)
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;
