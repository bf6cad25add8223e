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

/// A reference as Confluent clients send and receive it.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
struct Reference {
    name: String,
    subject: String,
    version: i64,
}

/// The body of a registration, lookup or compatibility test.
#[derive(Debug, Deserialize)]
struct SchemaBody {
    schema: String,
    #[serde(rename = "schemaType")]
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<Reference>,
    /// IMPORT mode only: keep a previous registry's id and version.
    id: Option<i64>,
    version: Option<i64>,
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

fn invalid_schema(message: impl Into<String>) -> ApiError {
    err(StatusCode::UNPROCESSABLE_ENTITY, "invalid_schema", message)
}

/// A schema as received, ready to compile: its file and named dependencies.
struct Parsed {
    files: BTreeMap<String, String>,
    deps: Vec<DepRef>,
    explicit: Explicit,
}

/// Whether `s` is base64 (a serialized descriptor) rather than `.proto` text, which always
/// has spaces, `;` or `"` that base64 cannot.
fn looks_like_base64(s: &str) -> bool {
    let s = s.trim();
    !s.is_empty()
        && s.len().is_multiple_of(4)
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
}

/// The file name a schema is stored under: the descriptor's own name when one came, the
/// subject when it is an import path, else `<subject>.proto`.
fn main_path(subject: &str, descriptor_name: Option<&str>) -> String {
    if let Some(n) = descriptor_name
        && n.ends_with(".proto")
        && protoreg_schema::check_relative(n).is_ok()
    {
        return n.to_string();
    }
    if subject.ends_with(".proto") && protoreg_schema::check_relative(subject).is_ok() {
        return subject.to_string();
    }
    format!("{subject}.proto")
}

/// Parses a body into the schema's file and resolved references.
async fn parse_schema(
    state: &AppState,
    subject: &str,
    body: &Bytes,
    normalize: bool,
) -> ApiResult<Parsed> {
    let b: SchemaBody = serde_json::from_slice(body).map_err(|e| {
        invalid_schema(format!(
            "body must be {{\"schema\": \"...\", \"schemaType\": \"PROTOBUF\", \"references\": [...]}}: {e}"
        ))
    })?;
    if let Some(t) = &b.schema_type
        && t != PROTOBUF
    {
        return Err(invalid_schema(format!(
            "schemaType {t:?} is not supported: this registry serves PROTOBUF"
        )));
    }
    let (text, name) = if looks_like_base64(&b.schema) {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b.schema.trim())
            .map_err(|e| invalid_schema(format!("schema is not valid base64: {e}")))?;
        let (text, file) = protoreg_schema::render::render_encoded(&bytes)
            .map_err(|e| invalid_schema(format!("Invalid schema: {e}")))?;
        (text, file.name)
    } else {
        (b.schema.clone(), None)
    };
    let path = main_path(subject, name.as_deref());
    let mut deps = Vec::new();
    if b.references.len() > crate::deps::MAX_DEPS {
        return Err(invalid_schema(format!(
            "too many references ({} > {})",
            b.references.len(),
            crate::deps::MAX_DEPS
        )));
    }
    for r in &b.references {
        let ref_subject = subject_param(&r.subject)?;
        protoreg_schema::check_relative(&r.name)
            .map_err(|m| invalid_schema(format!("reference name {:?}: {m}", r.name)))?;
        let n = if r.version == -1 {
            None
        } else {
            version_param(&r.version.to_string())?
        };
        let (version, digest) = state
            .store
            .version_ref(&ref_subject, n)
            .await?
            .ok_or_else(|| {
                invalid_schema(format!(
                    "Invalid schema: reference {:?} names version {} of subject {:?}, which does not exist",
                    r.name, r.version, r.subject
                ))
            })?;
        deps.push(DepRef {
            subject: ref_subject,
            version,
            digest,
            name: Some(r.name.clone()),
        });
    }
    let mut files = BTreeMap::from([(path.clone(), text)]);
    if normalize {
        files = normalized(state, subject, files, &path, &deps).await?;
    }
    Ok(Parsed {
        files,
        deps,
        explicit: Explicit {
            schema_id: b.id,
            version: b.version,
        },
    })
}

/// `?normalize=true`: the schema in its canonical form, the compiled descriptor rendered
/// back to text (as it is for schemas that arrive as descriptors). A schema with options
/// the renderer cannot write back (custom options) keeps its text.
async fn normalized(
    state: &AppState,
    subject: &str,
    files: BTreeMap<String, String>,
    path: &str,
    deps: &[DepRef],
) -> ApiResult<BTreeMap<String, String>> {
    let shared = Arc::new(files);
    let compiled = crate::push::compile_push(state, subject, &shared, deps).await?;
    let set = prost_types::FileDescriptorSet::decode(compiled.descriptor.as_slice())
        .map_err(|e| ApiError::internal("corrupt", e.to_string()))?;
    let files = Arc::unwrap_or_clone(shared);
    let Some(file) = set.file.iter().find(|f| f.name() == path) else {
        return Ok(files);
    };
    let mut file = file.clone();
    file.source_code_info = None;
    match protoreg_schema::render::render_encoded(&file.encode_to_vec()) {
        Ok((text, _)) => Ok(BTreeMap::from([(path.to_string(), text)])),
        Err(_) => Ok(files),
    }
}

/// The Confluent mode in force for `subject`.
async fn effective_mode(state: &AppState, subject: &str) -> ApiResult<String> {
    if let Some(m) = state.store.mode(subject).await? {
        return Ok(m);
    }
    Ok(state
        .store
        .mode("")
        .await?
        .unwrap_or_else(|| "READWRITE".into()))
}

/// Refuses writes in READONLY mode, and explicit ids outside IMPORT mode.
async fn check_writable(state: &AppState, subject: &str, explicit: bool) -> ApiResult<()> {
    let mode = effective_mode(state, subject).await?;
    if mode == "READONLY" || mode == "READONLY_OVERRIDE" {
        return Err(err(
            StatusCode::UNPROCESSABLE_ENTITY,
            "operation_not_permitted",
            format!("Subject {subject} is in read-only mode"),
        ));
    }
    if explicit && mode != "IMPORT" {
        return Err(err(
            StatusCode::UNPROCESSABLE_ENTITY,
            "operation_not_permitted",
            "a schema with an explicit id or version can only be registered in IMPORT mode",
        ));
    }
    Ok(())
}

/// Schema views by (subject, version, serialized): a version's content never changes and
/// its number is never reused, so a view stays true while the version exists (callers find
/// the version with a query first). Lookups by id then cost one query.
///
/// It also keeps the answers of `GET /schemas/ids/{id}`: what an id stands for never changes
/// (ids are never reused for other content), only whether it is still served after a
/// permanent delete. Those answers are dropped whenever this replica hears of any change
/// (its own, or another replica's through PostgreSQL notifications).
#[derive(Default)]
pub struct ViewCache {
    views: std::sync::Mutex<std::collections::HashMap<(String, i64, bool), Value>>,
    /// (change generation they were read at, answers by (id, serialized, subject)).
    ids: std::sync::Mutex<(u64, std::collections::HashMap<IdKey, Value>)>,
}

type IdKey = (i64, bool, Option<String>);

impl ViewCache {
    const CAPACITY: usize = 4096;

    fn get(&self, key: &(String, i64, bool)) -> Option<Value> {
        self.views
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    fn put(&self, key: (String, i64, bool), view: Value) {
        let mut map = self.views.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= Self::CAPACITY {
            map.clear();
        }
        map.insert(key, view);
    }

    fn get_id(&self, key: &IdKey, generation: u64) -> Option<Value> {
        let ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        (ids.0 == generation).then(|| ids.1.get(key).cloned())?
    }

    /// Keeps an answer read at `generation` (a change heard since makes it unsure: dropped).
    fn put_id(&self, key: IdKey, answer: Value, generation: u64, now: u64) {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        if generation != now {
            return;
        }
        if ids.0 != generation || ids.1.len() >= Self::CAPACITY {
            *ids = (generation, Default::default());
        }
        ids.1.insert(key, answer);
    }
}

/// A version as Confluent clients read it: its schema (its one file, or with several the
/// one no other imports), references, and with `serialized` the file's descriptor.
async fn schema_view(state: &AppState, meta: &VersionMeta, serialized: bool) -> ApiResult<Value> {
    let key = (meta.subject.clone(), meta.version, serialized);
    if let Some(v) = state.views.get(&key) {
        return Ok(v);
    }
    let view = read_schema_view(state, meta, serialized).await?;
    state.views.put(key, view.clone());
    Ok(view)
}

async fn read_schema_view(
    state: &AppState,
    meta: &VersionMeta,
    serialized: bool,
) -> ApiResult<Value> {
    let files = state.store.files(&meta.subject, meta.version).await?;
    let main = root_file(&files);
    let mut references = Vec::new();
    for d in &meta.deps {
        let name = match &d.name {
            Some(n) => n.clone(),
            None => root_file(&state.store.files(&d.subject, d.version).await?),
        };
        references.push(json!({"name": name, "subject": d.subject, "version": d.version}));
    }
    let schema = if serialized {
        let stored = state
            .store
            .descriptor(&meta.subject, meta.version)
            .await?
            .ok_or_else(|| {
                err(
                    StatusCode::NOT_FOUND,
                    "version_not_found",
                    "version deleted",
                )
            })?;
        let set = prost_types::FileDescriptorSet::decode(stored.bytes.as_slice())
            .map_err(|e| ApiError::internal("corrupt", e.to_string()))?;
        let mut file = set
            .file
            .into_iter()
            .find(|f| f.name() == main)
            .ok_or_else(|| ApiError::internal("corrupt", format!("{main} not in descriptor")))?;
        file.source_code_info = None;
        base64::engine::general_purpose::STANDARD.encode(file.encode_to_vec())
    } else {
        files.get(&main).cloned().unwrap_or_default()
    };
    Ok(json!({
        "subject": meta.subject,
        "version": meta.version,
        "id": meta.schema_id,
        "schemaType": PROTOBUF,
        "references": references,
        "schema": schema,
    }))
}

/// The file no other file of the version imports (the first such by path).
fn root_file(files: &BTreeMap<String, String>) -> String {
    let imported: Vec<&str> = files
        .values()
        .flat_map(|t| {
            t.lines().filter_map(|l| {
                let l = l.trim_start().strip_prefix("import")?;
                let start = l.find('"')? + 1;
                let end = start + l[start..].find('"')?;
                Some(&l[start..end])
            })
        })
        .collect();
    files
        .keys()
        .find(|p| !imported.contains(&p.as_str()))
        .or_else(|| files.keys().next())
        .cloned()
        .unwrap_or_default()
}

async fn list_subjects(
    State(state): State<AppState>,
    Query(q): Query<SchemaQuery>,
) -> ApiResult<Json<Vec<String>>> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = state.store.subjects(after.as_deref(), 1000).await?;
        let done = page.len() < 1000;
        after = page.last().map(|s| s.name.clone());
        for s in page {
            if s.versions > 0 || (q.deleted && state.store.subject_exists(&s.name).await?) {
                out.push(s.name);
            }
        }
        if done {
            break;
        }
    }
    Ok(Json(out))
}

async fn list_versions(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    Query(q): Query<SchemaQuery>,
) -> ApiResult<Json<Vec<i64>>> {
    let subject = subject_param(&subject)?;
    let versions = state.store.versions(&subject, q.deleted).await?;
    if versions.is_empty() {
        return Err(subject_not_found(&subject));
    }
    Ok(Json(versions.iter().map(|v| v.version).collect()))
}

/// The version `version` of `subject`, with Confluent's not-found errors.
async fn find_version(
    state: &AppState,
    subject: &str,
    version: &str,
    include_deleted: bool,
) -> ApiResult<VersionMeta> {
    let n = version_param(version)?;
    if let Some(meta) = state
        .store
        .version_meta(subject, n, include_deleted)
        .await?
    {
        return Ok(meta);
    }
    if state
        .store
        .versions(subject, include_deleted)
        .await?
        .is_empty()
    {
        return Err(subject_not_found(subject));
    }
    Err(err(
        StatusCode::NOT_FOUND,
        "version_not_found",
        format!("Version {version} not found."),
    ))
}

async fn get_version(
    State(state): State<AppState>,
    Path((subject, version)): Path<(String, String)>,
    Query(q): Query<SchemaQuery>,
) -> ApiResult<Json<Value>> {
    let subject = subject_param(&subject)?;
    let meta = find_version(&state, &subject, &version, q.deleted).await?;
    let serialized = q.format.as_deref() == Some("serialized");
    Ok(Json(schema_view(&state, &meta, serialized).await?))
}

async fn get_version_schema(
    State(state): State<AppState>,
    Path((subject, version)): Path<(String, String)>,
    Query(q): Query<SchemaQuery>,
) -> ApiResult<Response> {
    let subject = subject_param(&subject)?;
    let meta = find_version(&state, &subject, &version, q.deleted).await?;
    let view = schema_view(&state, &meta, false).await?;
    let text = view["schema"].as_str().unwrap_or_default().to_string();
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE))],
        text,
    )
        .into_response())
}

async fn referenced_by(
    State(state): State<AppState>,
    Path((subject, version)): Path<(String, String)>,
) -> ApiResult<Json<Vec<i64>>> {
    let subject = subject_param(&subject)?;
    let meta = find_version(&state, &subject, &version, false).await?;
    let mut ids = Vec::new();
    for (s, n) in state.store.dependents(&subject, meta.version).await? {
        if let Some(m) = state.store.version_meta(&s, Some(n), false).await?
            && !ids.contains(&m.schema_id)
        {
            ids.push(m.schema_id);
        }
    }
    Ok(Json(ids))
}

async fn register(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    Query(q): Query<SchemaQuery>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let subject = subject_param(&subject)?;
    let parsed = parse_schema(&state, &subject, &body, q.normalize).await?;
    let explicit = parsed.explicit != Explicit::default();
    check_writable(&state, &subject, explicit).await?;
    // Registered already under this subject: its version, as Confluent answers.
    let digest = protoreg_store::schema_digest(&parsed.files, &parsed.deps);
    if let Some(meta) = state.store.find_schema(&subject, &digest, false).await? {
        return Ok(Json(registered(&meta)));
    }
    let incoming = Incoming {
        files: Arc::new(parsed.files),
        labels: BTreeMap::new(),
        deps: parsed.deps,
    };
    let meta = match create_version(&state, &subject, incoming, parsed.explicit).await? {
        Created::New(v) | Created::Unchanged(v) => v,
    };
    Ok(Json(registered(&meta)))
}

/// A registration's answer: the id and version, not the schema. Clients cache the schema
/// they sent under the id (Confluent's Python client caches a returned `schema` instead, and
/// then reads our text where it expects the base64 descriptor it sent).
fn registered(meta: &VersionMeta) -> Value {
    json!({
        "id": meta.schema_id,
        "subject": meta.subject,
        "version": meta.version,
        "schemaType": PROTOBUF,
    })
}

async fn lookup(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    Query(q): Query<SchemaQuery>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let subject = subject_param(&subject)?;
    let parsed = parse_schema(&state, &subject, &body, q.normalize).await?;
    let digest = protoreg_store::schema_digest(&parsed.files, &parsed.deps);
    match state
        .store
        .find_schema(&subject, &digest, q.deleted)
        .await?
    {
        Some(meta) => Ok(Json(schema_view(&state, &meta, false).await?)),
        None if state.store.versions(&subject, true).await?.is_empty() => {
            Err(subject_not_found(&subject))
        }
        None => Err(err(
            StatusCode::NOT_FOUND,
            "schema_not_found",
            "Schema not found",
        )),
    }
}

/// Refuses deleting versions other live versions reference.
async fn check_unreferenced(state: &AppState, subject: &str, n: i64) -> ApiResult<()> {
    let dependents = state.store.dependents(subject, n).await?;
    if dependents.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = dependents.iter().map(|(s, v)| format!("{s}@{v}")).collect();
    Err(err(
        StatusCode::UNPROCESSABLE_ENTITY,
        "reference_exists",
        format!(
            "One or more references exist to the schema {{subject={subject},version={n}}}: {}",
            names.join(", ")
        ),
    ))
}

async fn delete_subject(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    Query(q): Query<SchemaQuery>,
) -> ApiResult<Json<Vec<i64>>> {
    let subject = subject_param(&subject)?;
    check_writable(&state, &subject, false).await?;
    let all = state.store.versions(&subject, true).await?;
    if all.is_empty() {
        return Err(subject_not_found(&subject));
    }
    let live: Vec<&VersionMeta> = all.iter().filter(|v| !v.deleted).collect();
    if q.permanent {
        if !live.is_empty() {
            return Err(err(
                StatusCode::NOT_FOUND,
                "subject_not_soft_deleted",
                format!(
                    "Subject '{subject}' was not deleted first before being permanently deleted"
                ),
            ));
        }
    } else if live.is_empty() {
        return Err(err(
            StatusCode::NOT_FOUND,
            "subject_soft_deleted",
            format!(
                "Subject '{subject}' was soft deleted. Set permanent=true to delete permanently"
            ),
        ));
    }
    let targets: Vec<i64> = if q.permanent {
        all.iter().map(|v| v.version).collect()
    } else {
        live.iter().map(|v| v.version).collect()
    };
    for n in &targets {
        check_unreferenced(&state, &subject, *n).await?;
    }
    let mut deleted = Vec::new();
    for n in targets {
        if state.store.delete(&subject, n, q.permanent).await? {
            deleted.push(n);
        }
    }
    if q.permanent {
        state.store.delete_config(&subject).await?;
        state.store.delete_mode(&subject).await?;
    }
    state.cache.changed(&subject);
    Ok(Json(deleted))
}

async fn delete_version(
    State(state): State<AppState>,
    Path((subject, version)): Path<(String, String)>,
    Query(q): Query<SchemaQuery>,
) -> ApiResult<Json<i64>> {
    let subject = subject_param(&subject)?;
    check_writable(&state, &subject, false).await?;
    let meta = find_version(&state, &subject, &version, q.permanent).await?;
    if q.permanent && !meta.deleted {
        return Err(err(
            StatusCode::NOT_FOUND,
            "version_not_soft_deleted",
            format!(
                "Subject '{subject}' Version {} was not deleted first before being permanently deleted",
                meta.version
            ),
        ));
    }
    check_unreferenced(&state, &subject, meta.version).await?;
    state
        .store
        .delete(&subject, meta.version, q.permanent)
        .await?;
    state.cache.changed(&subject);
    Ok(Json(meta.version))
}

/// The version a schema id is read through: under `subject` when asked, else the first.
async fn version_of_id(
    state: &AppState,
    id: &str,
    subject: Option<&str>,
    serialized: bool,
) -> ApiResult<VersionMeta> {
    let not_found = || {
        err(
            StatusCode::NOT_FOUND,
            "schema_not_found",
            format!("Schema {id} not found"),
        )
    };
    let id: i64 = id.parse().map_err(|_| not_found())?;
    let uses = state.store.schema_uses(id).await?;
    let (s, n, deleted) = uses
        .iter()
        .find(|(s, _, _)| Some(s.as_str()) == subject)
        .or_else(|| uses.first())
        .ok_or_else(not_found)?;
    if state.views.get(&(s.clone(), *n, serialized)).is_some() {
        // The view is cached: the metadata it needs is the key (the deps are in the view).
        return Ok(VersionMeta {
            subject: s.clone(),
            version: *n,
            digest: String::new(),
            labels: BTreeMap::new(),
            created_at: 0,
            deleted: *deleted,
            deps: Vec::new(),
            schema_id: id,
        });
    }
    state
        .store
        .version_meta(s, Some(*n), true)
        .await?
        .ok_or_else(not_found)
}

async fn get_schema_by_id(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<SchemaQuery>,
) -> ApiResult<Json<Value>> {
    let serialized = q.format.as_deref() == Some("serialized");
    let key: IdKey = (id.parse().unwrap_or(-1), serialized, q.subject.clone());
    let generation = state.cache.generation();
    let trusted = state.cache.hears_all_changes(state.store.backend());
    if trusted && let Some(answer) = state.views.get_id(&key, generation) {
        return Ok(Json(answer));
    }
    let meta = version_of_id(&state, &id, q.subject.as_deref(), serialized).await?;
    let view = schema_view(&state, &meta, serialized).await?;
    let answer = json!({
        "schema": view["schema"],
        "schemaType": PROTOBUF,
        "references": view["references"],
    });
    if trusted {
        let now = state.cache.generation();
        state.views.put_id(key, answer.clone(), generation, now);
    }
    Ok(Json(answer))
}

async fn schema_versions(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<SchemaQuery>,
) -> ApiResult<Json<Vec<Value>>> {
    version_of_id(&state, &id, None, false).await?;
    let uses = state.store.schema_uses(id.parse().unwrap_or(0)).await?;
    Ok(Json(
        uses.into_iter()
            .filter(|(_, _, deleted)| q.deleted || !deleted)
            .map(|(s, n, _)| json!({"subject": s, "version": n}))
            .collect(),
    ))
}

async fn schema_subjects(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<SchemaQuery>,
) -> ApiResult<Json<Vec<String>>> {
    version_of_id(&state, &id, None, false).await?;
    let mut out: Vec<String> = Vec::new();
    for (s, _, deleted) in state.store.schema_uses(id.parse().unwrap_or(0)).await? {
        if (q.deleted || !deleted) && !out.contains(&s) {
            out.push(s);
        }
    }
    out.sort();
    Ok(Json(out))
}

/// `{"compatibility": LEVEL}` (also accepted: `compatibilityLevel`).
fn parse_level(body: &Bytes) -> ApiResult<String> {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let level = v["compatibility"]
        .as_str()
        .or_else(|| v["compatibilityLevel"].as_str())
        .unwrap_or_default()
        .to_ascii_uppercase();
    if domain::MODES.contains(&level.as_str()) {
        Ok(level)
    } else {
        Err(err(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_compatibility_level",
            format!(
                "Invalid compatibility level. Valid values are {}",
                domain::MODES.join(", ")
            ),
        ))
    }
}

/// Sets a scope's level, keeping its rule categories (or the effective ones).
async fn set_level(state: &AppState, scope: &str, level: String) -> ApiResult<Json<Value>> {
    let current = match state.store.config(scope).await? {
        Some(c) => c,
        None => effective_config(&state.store, scope).await?,
    };
    let config = Config {
        mode: level.clone(),
        categories: current.categories,
    };
    state.store.set_config(scope, &config).await?;
    Ok(Json(json!({"compatibility": level})))
}

async fn get_global_config(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let c = effective_config(&state.store, "").await?;
    Ok(Json(json!({"compatibilityLevel": c.mode})))
}

async fn put_global_config(State(state): State<AppState>, body: Bytes) -> ApiResult<Json<Value>> {
    set_level(&state, "", parse_level(&body)?).await
}

/// Back to the default policy; answers the level it had.
async fn delete_global_config(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let had = effective_config(&state.store, "").await?;
    state.store.delete_config("").await?;
    Ok(Json(json!({"compatibilityLevel": had.mode})))
}

async fn get_subject_config(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    Query(q): Query<SchemaQuery>,
) -> ApiResult<Json<Value>> {
    let subject = subject_param(&subject)?;
    match state.store.config(&subject).await? {
        Some(c) => Ok(Json(json!({"compatibilityLevel": c.mode}))),
        None if q.default_to_global => {
            let c = effective_config(&state.store, "").await?;
            Ok(Json(json!({"compatibilityLevel": c.mode})))
        }
        None => Err(err(
            StatusCode::NOT_FOUND,
            "subject_compatibility_not_configured",
            format!("Subject '{subject}' does not have subject-level compatibility configured"),
        )),
    }
}

async fn put_subject_config(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let subject = subject_param(&subject)?;
    set_level(&state, &subject, parse_level(&body)?).await
}

async fn delete_subject_config(
    State(state): State<AppState>,
    Path(subject): Path<String>,
) -> ApiResult<Json<Value>> {
    let subject = subject_param(&subject)?;
    match state.store.delete_config(&subject).await? {
        Some(c) => Ok(Json(json!({"compatibilityLevel": c.mode}))),
        None => Err(subject_not_found(&subject)),
    }
}

/// Tests a schema against one version (`Some`) or as the subject's policy says (`None`).
async fn test_compatibility(
    state: &AppState,
    subject: &str,
    version: Option<&str>,
    q: &SchemaQuery,
    body: &Bytes,
) -> ApiResult<Json<Value>> {
    let parsed = parse_schema(state, subject, body, q.normalize).await?;
    let files = Arc::new(parsed.files);
    let compiled = crate::push::compile_push(state, subject, &files, &parsed.deps).await?;
    let config = effective_config(&state.store, subject).await?;
    let against: Vec<VersionMeta> = match version {
        Some(v) => vec![find_version(state, subject, v, false).await?],
        None => state.store.versions(subject, false).await?,
    };
    let image = Arc::new(compiled.image);
    let findings = if against.is_empty() {
        Vec::new()
    } else {
        crate::push::check_versions(state, subject, &against, &image, &config).await?
    };
    let mut reply = json!({"is_compatible": findings.is_empty()});
    if q.verbose {
        let messages: Vec<String> = findings
            .iter()
            .map(|f| finding_line(&json!(crate::api::FindingBody::from(f))))
            .collect();
        reply["messages"] = json!(messages);
    }
    Ok(Json(reply))
}

async fn test_compatibility_version(
    State(state): State<AppState>,
    Path((subject, version)): Path<(String, String)>,
    Query(q): Query<SchemaQuery>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let subject = subject_param(&subject)?;
    // `latest` tests as a registration would (every version a transitive level names).
    let version = (!matches!(version.as_str(), "latest" | "-1")).then_some(version.as_str());
    test_compatibility(&state, &subject, version, &q, &body).await
}

async fn test_compatibility_all(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    Query(q): Query<SchemaQuery>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let subject = subject_param(&subject)?;
    test_compatibility(&state, &subject, None, &q, &body).await
}

fn parse_mode(body: &Bytes) -> ApiResult<String> {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let mode = v["mode"].as_str().unwrap_or_default().to_ascii_uppercase();
    if MODES.contains(&mode.as_str()) {
        Ok(mode)
    } else {
        Err(err(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_mode",
            format!("Invalid mode. Valid values are {}", MODES.join(", ")),
        ))
    }
}

/// IMPORT mode is for empty scopes (imports keep another registry's ids) unless forced.
async fn check_import(state: &AppState, scope: &str, mode: &str, force: bool) -> ApiResult<()> {
    if mode != "IMPORT" || force {
        return Ok(());
    }
    let has_versions = if scope.is_empty() {
        !state.store.subjects(None, 1).await?.is_empty()
    } else {
        !state.store.versions(scope, true).await?.is_empty()
    };
    if has_versions {
        return Err(err(
            StatusCode::UNPROCESSABLE_ENTITY,
            "operation_not_permitted",
            "Cannot import since found existing subjects; pass force=true to import anyway",
        ));
    }
    Ok(())
}

async fn get_global_mode(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"mode": effective_mode(&state, "").await?})))
}

async fn put_global_mode(
    State(state): State<AppState>,
    Query(q): Query<SchemaQuery>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let mode = parse_mode(&body)?;
    check_import(&state, "", &mode, q.force).await?;
    state.store.set_mode("", &mode).await?;
    Ok(Json(json!({"mode": mode})))
}

async fn get_subject_mode(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    Query(q): Query<SchemaQuery>,
) -> ApiResult<Json<Value>> {
    let subject = subject_param(&subject)?;
    match state.store.mode(&subject).await? {
        Some(m) => Ok(Json(json!({"mode": m}))),
        None if q.default_to_global => Ok(Json(json!({"mode": effective_mode(&state, "").await?}))),
        None => Err(err(
            StatusCode::NOT_FOUND,
            "subject_mode_not_configured",
            format!("Subject '{subject}' does not have subject-level mode configured"),
        )),
    }
}

async fn put_subject_mode(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    Query(q): Query<SchemaQuery>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let subject = subject_param(&subject)?;
    let mode = parse_mode(&body)?;
    check_import(&state, &subject, &mode, q.force).await?;
    state.store.set_mode(&subject, &mode).await?;
    Ok(Json(json!({"mode": mode})))
}

async fn delete_subject_mode(
    State(state): State<AppState>,
    Path(subject): Path<String>,
) -> ApiResult<Json<Value>> {
    let subject = subject_param(&subject)?;
    match state.store.delete_mode(&subject).await? {
        Some(m) => Ok(Json(json!({"mode": m}))),
        None => Err(err(
            StatusCode::NOT_FOUND,
            "subject_mode_not_configured",
            format!("Subject '{subject}' does not have subject-level mode configured"),
        )),
    }
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
