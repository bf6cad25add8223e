//! The Confluent Schema Registry API (Protobuf), at the root paths Confluent's clients use
//! (`schema.registry.url=http://host:8080`): a translator over the same registry service as
//! `/v1`.
//!
//! A Confluent schema is a version with one file and named dependencies (its references).
//! Schemas arrive as `.proto` text or as a base64 `FileDescriptorProto` (rendered to text);
//! both are compiled and linked fully, so a missing reference is refused. Errors use
//! Confluent's body and codes (`{"error_code": 40401, "message": …}`): [`CfError`], made
//! from the service's errors in one place.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use base64::Engine;
use prost::Message;
use protoreg_store::{DepRef, Explicit, VersionMeta};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::edge::{EdgeError, Route};
use crate::service::{self, Role};

mod policy;
mod schema;
mod subjects;

use policy::*;
pub use schema::ViewCache;
use schema::*;
use subjects::*;

/// Confluent's media type, returned on every answer of these routes.
pub const MEDIA_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// The only schema type served.
const PROTOBUF: &str = "PROTOBUF";

/// The Confluent routes, declared once: the router and auth's roles read them. Reading
/// for GETs, lookups and compatibility tests; writing to register and delete; admin for
/// levels and modes.
pub static ROUTES: &[Route] = &[
    Route {
        method: "GET",
        path: "/subjects",
        role: Some(Role::Read),
        handler: || get(list_subjects),
    },
    Route {
        method: "POST",
        path: "/subjects/{subject}",
        role: Some(Role::Read),
        handler: || post(lookup),
    },
    Route {
        method: "DELETE",
        path: "/subjects/{subject}",
        role: Some(Role::Write),
        handler: || delete(delete_subject),
    },
    Route {
        method: "GET",
        path: "/subjects/{subject}/versions",
        role: Some(Role::Read),
        handler: || get(list_versions),
    },
    Route {
        method: "POST",
        path: "/subjects/{subject}/versions",
        role: Some(Role::Write),
        handler: || post(register),
    },
    Route {
        method: "GET",
        path: "/subjects/{subject}/versions/{version}",
        role: Some(Role::Read),
        handler: || get(get_version),
    },
    Route {
        method: "DELETE",
        path: "/subjects/{subject}/versions/{version}",
        role: Some(Role::Write),
        handler: || delete(delete_version),
    },
    Route {
        method: "GET",
        path: "/subjects/{subject}/versions/{version}/schema",
        role: Some(Role::Read),
        handler: || get(get_version_schema),
    },
    Route {
        method: "GET",
        path: "/subjects/{subject}/versions/{version}/referencedby",
        role: Some(Role::Read),
        handler: || get(referenced_by),
    },
    Route {
        method: "GET",
        path: "/schemas/types",
        role: Some(Role::Read),
        handler: || get(|| async { Json(json!([PROTOBUF])) }),
    },
    Route {
        method: "GET",
        path: "/schemas/ids/{id}",
        role: Some(Role::Read),
        handler: || get(get_schema_by_id),
    },
    Route {
        method: "GET",
        path: "/schemas/ids/{id}/versions",
        role: Some(Role::Read),
        handler: || get(schema_versions),
    },
    Route {
        method: "GET",
        path: "/schemas/ids/{id}/subjects",
        role: Some(Role::Read),
        handler: || get(schema_subjects),
    },
    Route {
        method: "GET",
        path: "/config",
        role: Some(Role::Read),
        handler: || get(get_global_config),
    },
    Route {
        method: "PUT",
        path: "/config",
        role: Some(Role::Admin),
        handler: || put(put_global_config),
    },
    Route {
        method: "DELETE",
        path: "/config",
        role: Some(Role::Admin),
        handler: || delete(delete_global_config),
    },
    Route {
        method: "GET",
        path: "/config/{subject}",
        role: Some(Role::Read),
        handler: || get(get_subject_config),
    },
    Route {
        method: "PUT",
        path: "/config/{subject}",
        role: Some(Role::Admin),
        handler: || put(put_subject_config),
    },
    Route {
        method: "DELETE",
        path: "/config/{subject}",
        role: Some(Role::Admin),
        handler: || delete(delete_subject_config),
    },
    Route {
        method: "POST",
        path: "/compatibility/subjects/{subject}/versions/{version}",
        role: Some(Role::Read),
        handler: || post(test_compatibility_version),
    },
    Route {
        method: "POST",
        path: "/compatibility/subjects/{subject}/versions",
        role: Some(Role::Read),
        handler: || post(test_compatibility_all),
    },
    Route {
        method: "GET",
        path: "/mode",
        role: Some(Role::Read),
        handler: || get(get_global_mode),
    },
    Route {
        method: "PUT",
        path: "/mode",
        role: Some(Role::Admin),
        handler: || put(put_global_mode),
    },
    Route {
        method: "GET",
        path: "/mode/{subject}",
        role: Some(Role::Read),
        handler: || get(get_subject_mode),
    },
    Route {
        method: "PUT",
        path: "/mode/{subject}",
        role: Some(Role::Admin),
        handler: || put(put_subject_mode),
    },
    Route {
        method: "DELETE",
        path: "/mode/{subject}",
        role: Some(Role::Admin),
        handler: || delete(delete_subject_mode),
    },
];

/// The Confluent routes (merged into the main router), their JSON answers in Confluent's
/// media type.
pub fn routes() -> Router<AppState> {
    let mut router = Router::new();
    for r in ROUTES {
        router = router.route(r.path, (r.handler)());
    }
    router.layer(axum::middleware::from_fn(media_type))
}

/// Gives the JSON answers of these routes Confluent's media type.
async fn media_type(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
    }
    resp
}

/// A Confluent error: `{"error_code": …, "message": …}` with its HTTP status.
#[derive(Debug)]
pub struct CfError {
    status: StatusCode,
    error_code: u32,
    message: String,
}

type CfResult<T> = Result<T, CfError>;

impl CfError {
    fn new(status: StatusCode, error_code: u32, message: impl Into<String>) -> Self {
        CfError {
            status,
            error_code,
            message: message.into(),
        }
    }

    fn internal(message: impl Into<String>) -> Self {
        let message = message.into();
        tracing::error!(%message, "internal error");
        CfError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            50001,
            "Error in the backend data store",
        )
    }

    /// An error made before a handler (auth, limits, an unknown route).
    pub(crate) fn from_edge(e: &EdgeError) -> Self {
        let status = e.status;
        match (status, e.code) {
            (StatusCode::NOT_FOUND, _) => CfError::new(status, 404, "HTTP 404 Not Found"),
            (s, _) if s.is_server_error() => CfError::new(s, 50001, e.message.clone()),
            (s, _) => CfError::new(s, u32::from(s.as_u16()), e.message.clone()),
        }
    }
}

impl IntoResponse for CfError {
    fn into_response(self) -> Response {
        let body = json!({"error_code": self.error_code, "message": self.message});
        (
            self.status,
            [(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE))],
            body.to_string(),
        )
            .into_response()
    }
}

impl From<protoreg_store::StoreError> for CfError {
    fn from(e: protoreg_store::StoreError) -> Self {
        service::Error::from(e).into()
    }
}

/// The Confluent answer to each of the service's errors: the one place they are mapped.
impl From<service::Error> for CfError {
    fn from(e: service::Error) -> Self {
        use service::{Error as E, Missing};
        const UNPROCESSABLE: StatusCode = StatusCode::UNPROCESSABLE_ENTITY;
        let message = e.to_string();
        match e {
            E::Invalid(_) => CfError::new(StatusCode::BAD_REQUEST, 400, message),
            E::NotFound { what, .. } => {
                let code = match what {
                    Missing::Subject => 40401,
                    Missing::Version => 40402,
                    Missing::Schema => 40403,
                    Missing::Environment | Missing::Deployment => 404,
                };
                CfError::new(StatusCode::NOT_FOUND, code, message)
            }
            E::Compile(_) | E::DependencyCycle(_) | E::DependencyConflict { .. } => {
                CfError::new(UNPROCESSABLE, 42201, format!("Invalid schema: {message}"))
            }
            E::Incompatible { ref findings, .. } => {
                // The findings, one per line, as Confluent's messages are.
                let mut text = message.clone();
                for f in findings {
                    text.push('\n');
                    text.push_str(&finding_line(f));
                }
                CfError::new(StatusCode::CONFLICT, 409, text)
            }
            E::BreaksDeployed { .. } | E::DependencyGone(_) | E::DigestMismatch(_) => {
                CfError::new(StatusCode::CONFLICT, 409, message)
            }
            E::HasDependents {
                version,
                dependents,
            } => {
                let names: Vec<String> = dependents.iter().map(ToString::to_string).collect();
                CfError::new(
                    UNPROCESSABLE,
                    42206,
                    format!(
                        "One or more references exist to the schema {{subject={},version={}}}: {}",
                        version.subject,
                        version.version,
                        names.join(", ")
                    ),
                )
            }
            E::RunningIn { .. } => CfError::new(UNPROCESSABLE, 42206, message),
            E::ReadOnly { .. }
            | E::ImportNeedsId { .. }
            | E::ExplicitOutsideImport
            | E::ImportNotEmpty => CfError::new(UNPROCESSABLE, 42205, message),
            E::NotSoftDeleted { subject, version } => match version {
                Some(n) => CfError::new(
                    StatusCode::NOT_FOUND,
                    40407,
                    format!(
                        "Subject '{subject}' Version {n} was not deleted first before being permanently deleted"
                    ),
                ),
                None => CfError::new(
                    StatusCode::NOT_FOUND,
                    40405,
                    format!(
                        "Subject '{subject}' was not deleted first before being permanently deleted"
                    ),
                ),
            },
            E::AlreadyDeleted { subject, version } => match version {
                Some(n) => CfError::new(
                    StatusCode::NOT_FOUND,
                    40406,
                    format!(
                        "Subject '{subject}' Version {n} was soft deleted. Set permanent=true to delete permanently"
                    ),
                ),
                None => CfError::new(
                    StatusCode::NOT_FOUND,
                    40404,
                    format!(
                        "Subject '{subject}' was soft deleted. Set permanent=true to delete permanently"
                    ),
                ),
            },
            E::ImportConflict(_) => CfError::new(UNPROCESSABLE, 42207, message),
            E::Forbidden(_) => CfError::new(StatusCode::FORBIDDEN, 403, message),
            E::LostRace(_) | E::Unavailable => {
                CfError::new(StatusCode::SERVICE_UNAVAILABLE, 50003, message)
            }
            E::Internal(m) => CfError::internal(m),
        }
    }
}

/// `RULE_ID path:line:column: message`, as a finding reads in Confluent's messages.
fn finding_line(f: &protoreg_check::Finding) -> String {
    let body = crate::api::FindingBody::from(f);
    format!(
        "{} {}:{}:{}: {}",
        body.rule,
        body.path.as_deref().unwrap_or("<input>"),
        body.start_line,
        body.start_column,
        body.message
    )
}

fn err(status: StatusCode, error_code: u32, message: impl Into<String>) -> CfError {
    CfError::new(status, error_code, message)
}

fn subject_not_found(subject: &str) -> CfError {
    err(
        StatusCode::NOT_FOUND,
        40401,
        format!("Subject '{subject}' not found."),
    )
}

fn subject_param(s: &str) -> CfResult<String> {
    if crate::api::valid_subject(s) {
        Ok(s.to_string())
    } else {
        Err(err(
            StatusCode::UNPROCESSABLE_ENTITY,
            422,
            format!("Invalid subject {s:?}: use {}", crate::api::SUBJECT_RULE),
        ))
    }
}

/// `latest`, `-1` or a positive number; `None` means the latest.
fn version_param(v: &str) -> CfResult<Option<i64>> {
    match v {
        "latest" | "-1" => Ok(None),
        n => match n.parse::<i64>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(err(
                StatusCode::UNPROCESSABLE_ENTITY,
                42202,
                format!(
                    "The specified version '{v}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""
                ),
            )),
        },
    }
}

/// The query parameters of these routes. Flags are read as Confluent's Java server reads
/// them: `true` in any case is true (the Python client sends `normalize=False`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SchemaQuery {
    #[serde(deserialize_with = "flag")]
    normalize: bool,
    #[serde(deserialize_with = "flag")]
    deleted: bool,
    format: Option<String>,
    subject: Option<String>,
    #[serde(deserialize_with = "flag")]
    permanent: bool,
    #[serde(deserialize_with = "flag")]
    verbose: bool,
    #[serde(rename = "defaultToGlobal", deserialize_with = "flag")]
    default_to_global: bool,
    #[serde(deserialize_with = "flag")]
    force: bool,
}

fn flag<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let s = String::deserialize(d)?;
    Ok(s.eq_ignore_ascii_case("true"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_or_text() {
        assert!(looks_like_base64("CgRhLnByb3RvEgFh"));
        assert!(!looks_like_base64("syntax = \"proto3\"; message A {}"));
        assert!(!looks_like_base64(""));
    }

    #[test]
    fn stored_paths() {
        assert_eq!(main_path("orders-value", None), "orders-value.proto");
        assert_eq!(main_path("acme/m.proto", None), "acme/m.proto");
        assert_eq!(
            main_path("x", Some("shop/v1/shop.proto")),
            "shop/v1/shop.proto"
        );
        assert_eq!(main_path("x", Some("../evil.proto")), "x.proto");
    }

    #[test]
    fn service_errors_map_to_confluent_codes() {
        let code = |e: service::Error| CfError::from(e).error_code;
        assert_eq!(
            code(service::Error::not_found(service::Missing::Subject, "x")),
            40401
        );
        assert_eq!(code(service::Error::Compile(Vec::new())), 42201);
        assert_eq!(code(service::Error::ReadOnly { scope: "s".into() }), 42205);
        assert_eq!(
            code(service::Error::ImportNeedsId { scope: "s".into() }),
            42205
        );
        assert_eq!(
            code(service::Error::RunningIn {
                version: service::At {
                    subject: "s".into(),
                    version: 1
                },
                deployments: Vec::new()
            }),
            42206
        );
        assert_eq!(code(service::Error::Unavailable), 50003);
    }

    #[test]
    fn root_files() {
        let files = BTreeMap::from([
            ("a.proto".to_string(), "import \"b.proto\";".to_string()),
            ("b.proto".to_string(), String::new()),
        ]);
        assert_eq!(root_file(&files), "a.proto");
    }
}
