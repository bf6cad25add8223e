//! The Confluent Schema Registry API (Protobuf), at the root paths Confluent's clients use
//! (`schema.registry.url=http://host:8080`): a front door over the same subjects, versions,
//! policies and push pipeline as `/v1`.
//!
//! A Confluent schema is a version with one file and named dependencies (its references).
//! Schemas arrive as `.proto` text or as a base64 `FileDescriptorProto` (rendered to text);
//! both are compiled and linked fully, so a missing reference is refused. Errors use
//! Confluent's body and codes (`{"error_code": 40401, "message": …}`), mapped from the shared
//! [`ApiError`] codes by [`confluent_errors`].

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use prost::Message;
use protoreg_store::{Config, DepRef, Explicit, VersionMeta};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::push::{Created, Incoming, create_version};
use crate::v1::effective_config;
use crate::{AppState, Role, domain};

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

/// Confluent's modes.
const MODES: &[&str] = &["READWRITE", "READONLY", "READONLY_OVERRIDE", "IMPORT"];

/// The Confluent routes (merged into the main router).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/subjects", get(list_subjects))
        .route("/subjects/{subject}", post(lookup).delete(delete_subject))
        .route(
            "/subjects/{subject}/versions",
            get(list_versions).post(register),
        )
        .route(
            "/subjects/{subject}/versions/{version}",
            get(get_version).delete(delete_version),
        )
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(get_version_schema),
        )
        .route(
            "/subjects/{subject}/versions/{version}/referencedby",
            get(referenced_by),
        )
        .route("/schemas/types", get(|| async { Json(json!([PROTOBUF])) }))
        .route("/schemas/ids/{id}", get(get_schema_by_id))
        .route("/schemas/ids/{id}/versions", get(schema_versions))
        .route("/schemas/ids/{id}/subjects", get(schema_subjects))
        .route(
            "/config",
            get(get_global_config)
                .put(put_global_config)
                .delete(delete_global_config),
        )
        .route(
            "/config/{subject}",
            get(get_subject_config)
                .put(put_subject_config)
                .delete(delete_subject_config),
        )
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(test_compatibility_version),
        )
        .route(
            "/compatibility/subjects/{subject}/versions",
            post(test_compatibility_all),
        )
        .route("/mode", get(get_global_mode).put(put_global_mode))
        .route(
            "/mode/{subject}",
            get(get_subject_mode)
                .put(put_subject_mode)
                .delete(delete_subject_mode),
        )
}

/// Whether a path is one of these routes (for errors and the media type).
pub fn is_confluent_path(path: &str) -> bool {
    [
        "/subjects",
        "/schemas",
        "/config",
        "/compatibility",
        "/mode",
    ]
    .iter()
    .any(|p| path == *p || path.strip_prefix(p).is_some_and(|r| r.starts_with('/')))
}

/// The role a Confluent route needs: reading for GETs and compatibility tests, writing to
/// register and delete, admin for config and modes.
pub fn required_role(method: &str, path: &str) -> Role {
    if path.starts_with("/config") || path.starts_with("/mode") {
        if method == "GET" {
            Role::Read
        } else {
            Role::Admin
        }
    } else if method == "GET" || path.starts_with("/compatibility") {
        Role::Read
    } else if method == "POST" && path.starts_with("/subjects/") && !path.contains("/versions") {
        // POST /subjects/{s} is a lookup.
        Role::Read
    } else {
        Role::Write
    }
}

/// Confluent's error code for a shared error code (and status).
fn error_code(status: StatusCode, code: &str) -> u32 {
    match code {
        "subject_not_found" => 40401,
        "version_not_found" => 40402,
        "schema_not_found" => 40403,
        "subject_soft_deleted" => 40404,
        "subject_not_soft_deleted" | "not_soft_deleted" => 40405,
        "version_soft_deleted" => 40406,
        "version_not_soft_deleted" => 40407,
        "subject_compatibility_not_configured" => 40408,
        "subject_mode_not_configured" => 40409,
        "incompatible" => 409,
        "compile_error" | "invalid_schema" | "dependency_cycle" | "dependency_conflict" => 42201,
        "invalid_version" => 42202,
        "invalid_compatibility_level" => 42203,
        "invalid_mode" => 42204,
        "operation_not_permitted" => 42205,
        "reference_exists" | "has_dependents" => 42206,
        "import_conflict" => 42207,
        "unavailable" | "contention" => 50003,
        _ if status.is_server_error() => 50001,
        _ => u32::from(status.as_u16()),
    }
}

/// Rewrites every error of the Confluent routes (handlers, auth, body limit, unknown
/// routes) into Confluent's body, and gives JSON answers Confluent's media type.
pub async fn confluent_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let (mut parts, body) = resp.into_parts();
    let is_json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) {
        if is_json {
            parts
                .headers
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
        }
        return Response::from_parts(parts, body);
    }
    let bytes = axum::body::to_bytes(body, 4 << 20)
        .await
        .unwrap_or_default();
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let code = v["error"]["code"].as_str().unwrap_or("");
    let mut message = v["error"]["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
    // The findings of a refused schema, one per line, as Confluent's messages are.
    if let Some(findings) = v["findings"].as_array() {
        for f in findings {
            message.push_str(&format!("\n{}", finding_line(f)));
        }
    }
    let body = json!({"error_code": error_code(status, code), "message": message});
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
    Response::from_parts(parts, axum::body::Body::from(body.to_string()))
}

/// `RULE_ID path:line:column: message`, from a finding's JSON.
fn finding_line(f: &Value) -> String {
    format!(
        "{} {}:{}:{}: {}",
        f["type"].as_str().unwrap_or_default(),
        f["path"].as_str().unwrap_or("<input>"),
        f["start_line"].as_u64().unwrap_or(1),
        f["start_column"].as_u64().unwrap_or(1),
        f["message"].as_str().unwrap_or_default()
    )
}

fn err(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(status, code, message)
}

fn subject_not_found(subject: &str) -> ApiError {
    err(
        StatusCode::NOT_FOUND,
        "subject_not_found",
        format!("Subject '{subject}' not found."),
    )
}

fn subject_param(s: &str) -> ApiResult<String> {
    if domain::valid_subject(s) {
        Ok(s.to_string())
    } else {
        Err(err(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_subject",
            format!("Invalid subject {s:?}: use {}", domain::SUBJECT_RULE),
        ))
    }
}

/// `latest`, `-1` or a positive number; `None` means the latest.
fn version_param(v: &str) -> ApiResult<Option<i64>> {
    match v {
        "latest" | "-1" => Ok(None),
        n => match n.parse::<i64>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(err(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_version",
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
    fn roles_and_codes() {
        assert_eq!(required_role("GET", "/subjects"), Role::Read);
        assert_eq!(required_role("POST", "/subjects/a/versions"), Role::Write);
        assert_eq!(required_role("POST", "/subjects/a"), Role::Read);
        assert_eq!(required_role("PUT", "/config"), Role::Admin);
        assert_eq!(required_role("DELETE", "/subjects/a"), Role::Write);
        assert_eq!(
            error_code(StatusCode::NOT_FOUND, "subject_not_found"),
            40401
        );
        assert_eq!(
            error_code(StatusCode::UNPROCESSABLE_ENTITY, "compile_error"),
            42201
        );
        assert_eq!(error_code(StatusCode::UNAUTHORIZED, "unauthenticated"), 401);
        assert!(is_confluent_path("/subjects/a%2Fb/versions"));
        assert!(!is_confluent_path("/v1/subjects"));
        assert!(!is_confluent_path("/subjectsx"));
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
