//! The registry HTTP server: routes, state, auth, metrics and errors. Handlers are thin: they
//! parse, call [`domain`] and [`protoreg_store::Store`], and map [`ApiError`] to a status.

pub mod domain;
mod metrics;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use protoreg_store::{Config, PushOutcome, Store, StoreError, Version};
use serde::Deserialize;
use serde_json::{Value, json};

pub use metrics::Metrics;

/// Access levels: each includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Read,
    Write,
    Admin,
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "read" => Ok(Role::Read),
            "write" => Ok(Role::Write),
            "admin" => Ok(Role::Admin),
            _ => Err(format!("unknown role {s:?} (read, write, admin)")),
        }
    }
}

/// Parses tokens: one `TOKEN ROLE` (or `TOKEN:ROLE`) per line or comma-separated item.
pub fn parse_tokens(text: &str) -> Result<HashMap<String, Role>, String> {
    let mut out = HashMap::new();
    for item in text.split(['\n', ',']) {
        let item = item.trim();
        if item.is_empty() || item.starts_with('#') {
            continue;
        }
        let (tok, role) = item
            .split_once(':')
            .or_else(|| item.split_once(char::is_whitespace))
            .ok_or_else(|| format!("token entry {item:?} has no role (TOKEN:ROLE)"))?;
        let tok = tok.trim();
        if tok.len() < 8 {
            return Err("tokens must be at least 8 characters".into());
        }
        out.insert(tok.to_string(), role.trim().parse()?);
    }
    Ok(out)
}

/// Shared state of all handlers.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// Empty: no authentication (the server then only listens on loopback).
    pub tokens: Arc<HashMap<String, Role>>,
    pub metrics: Arc<Metrics>,
    pub cache: Arc<VersionCache>,
}

/// Versions are immutable, so their contents are cached by (subject, number, digest); a cheap
/// query still confirms each read (the version is live, the number resolves `latest`), so a
/// delete on another replica is seen at once.
#[derive(Default)]
pub struct VersionCache {
    entries: std::sync::Mutex<HashMap<(String, i64), CachedVersion>>,
}

/// Digest, the version, and its descriptor set as cheaply cloned bytes.
type CachedVersion = (String, Arc<Version>, Bytes);

impl VersionCache {
    const CAPACITY: usize = 512;

    fn get(&self, subject: &str, n: i64, digest: &str) -> Option<(Arc<Version>, Bytes)> {
        let map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&(subject.to_string(), n))
            .filter(|(d, _, _)| d == digest)
            .map(|(_, v, b)| (v.clone(), b.clone()))
    }

    fn put(&self, v: Version) -> (Arc<Version>, Bytes) {
        let bytes = Bytes::from(v.descriptor.clone());
        let v = Arc::new(v);
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= Self::CAPACITY {
            map.clear();
        }
        map.insert(
            (v.subject.clone(), v.version),
            (v.digest.clone(), v.clone(), bytes.clone()),
        );
        (v, bytes)
    }

    fn forget(&self, subject: &str, n: i64) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(subject.to_string(), n));
    }
}

/// Every error of the API: `{"error": {"code", "message", "details"}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Value,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: Value::Null,
        }
    }
    fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
    fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }
    fn bad_request(msg: impl Into<String>) -> Self {
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
        (self.status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "storage error");
        match e {
            StoreError::Contention(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "contention", e.to_string())
            }
            _ => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "storage",
                "storage error",
            ),
        }
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// One row of the route table: what each route needs and what the OpenAPI document says.
pub struct RouteDoc {
    pub method: &'static str,
    pub path: &'static str,
    pub role: Option<Role>,
    pub summary: &'static str,
}

/// The API, as served (used for authorization and for `/openapi.json`).
pub static ROUTES: &[RouteDoc] = &[
    RouteDoc {
        method: "GET",
        path: "/healthz",
        role: None,
        summary: "Liveness",
    },
    RouteDoc {
        method: "GET",
        path: "/readyz",
        role: None,
        summary: "Readiness: the database answers",
    },
    RouteDoc {
        method: "GET",
        path: "/metrics",
        role: None,
        summary: "Prometheus metrics",
    },
    RouteDoc {
        method: "GET",
        path: "/openapi.json",
        role: None,
        summary: "This API's OpenAPI 3.0 document",
    },
    RouteDoc {
        method: "GET",
        path: "/v1/config",
        role: Some(Role::Read),
        summary: "The global compatibility policy",
    },
    RouteDoc {
        method: "PUT",
        path: "/v1/config",
        role: Some(Role::Admin),
        summary: "Set the global compatibility policy",
    },
    RouteDoc {
        method: "GET",
        path: "/v1/subjects",
        role: Some(Role::Read),
        summary: "List subjects",
    },
    RouteDoc {
        method: "GET",
        path: "/v1/subjects/{subject}",
        role: Some(Role::Read),
        summary: "A subject: versions and effective policy",
    },
    RouteDoc {
        method: "GET",
        path: "/v1/subjects/{subject}/config",
        role: Some(Role::Read),
        summary: "A subject's policy",
    },
    RouteDoc {
        method: "PUT",
        path: "/v1/subjects/{subject}/config",
        role: Some(Role::Admin),
        summary: "Set a subject's policy",
    },
    RouteDoc {
        method: "POST",
        path: "/v1/subjects/{subject}/versions",
        role: Some(Role::Write),
        summary: "Push a version (201 new, 200 unchanged, 409 breaking, 422 compile errors)",
    },
    RouteDoc {
        method: "GET",
        path: "/v1/subjects/{subject}/versions",
        role: Some(Role::Read),
        summary: "List live versions",
    },
    RouteDoc {
        method: "POST",
        path: "/v1/subjects/{subject}/check",
        role: Some(Role::Write),
        summary: "Dry run of a push: compatible and findings",
    },
    RouteDoc {
        method: "GET",
        path: "/v1/subjects/{subject}/versions/{version}",
        role: Some(Role::Read),
        summary: "A version (number or latest): files, digest, labels",
    },
    RouteDoc {
        method: "DELETE",
        path: "/v1/subjects/{subject}/versions/{version}",
        role: Some(Role::Admin),
        summary: "Soft delete; ?permanent=true deletes a soft-deleted version",
    },
    RouteDoc {
        method: "GET",
        path: "/v1/subjects/{subject}/versions/{version}/descriptor",
        role: Some(Role::Read),
        summary: "Binary FileDescriptorSet (ETag = digest)",
    },
    RouteDoc {
        method: "GET",
        path: "/v1/subjects/{subject}/versions/{version}/files/{*path}",
        role: Some(Role::Read),
        summary: "One file's text",
    },
    RouteDoc {
        method: "GET",
        path: "/v1/subjects/{subject}/diff",
        role: Some(Role::Read),
        summary: "Findings both ways and text diffs between ?from=N&to=M",
    },
    RouteDoc {
        method: "GET",
        path: "/v1/schemas/{digest}",
        role: Some(Role::Read),
        summary: "Where content with this digest is registered",
    },
];

/// Builds the router with its middleware (auth, metrics, body limit).
pub fn router(state: AppState, max_body: usize) -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/openapi.json", get(openapi))
        .route("/v1/config", get(get_global_config).put(put_global_config))
        .route("/v1/subjects", get(list_subjects))
        .route("/v1/subjects/{subject}", get(get_subject))
        .route(
            "/v1/subjects/{subject}/config",
            get(get_subject_config).put(put_subject_config),
        )
        .route(
            "/v1/subjects/{subject}/versions",
            post(push).get(list_versions),
        )
        .route("/v1/subjects/{subject}/check", post(check))
        .route(
            "/v1/subjects/{subject}/versions/{version}",
            get(get_version).delete(delete_version),
        )
        .route(
            "/v1/subjects/{subject}/versions/{version}/descriptor",
            get(get_descriptor),
        )
        .route(
            "/v1/subjects/{subject}/versions/{version}/files/{*path}",
            get(get_file),
        )
        .route("/v1/subjects/{subject}/diff", get(diff))
        .route("/v1/schemas/{digest}", get(find_schema))
        .layer(middleware::from_fn_with_state(state.clone(), auth))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

/// Where the server listens and what it serves from.
pub struct ServeOptions {
    pub listen: SocketAddr,
    pub database: String,
    pub tokens: HashMap<String, Role>,
    pub allow_anonymous: bool,
    pub max_body: usize,
}

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    #[error(
        "refusing to listen on {0} without authentication: configure tokens (--token-file or PROTOREG_TOKENS) or pass --allow-anonymous"
    )]
    Anonymous(SocketAddr),
}

/// Runs the server until SIGINT/SIGTERM; in-flight requests finish before it returns.
pub async fn serve(opts: ServeOptions) -> Result<(), ServeError> {
    if opts.tokens.is_empty() && !opts.listen.ip().is_loopback() && !opts.allow_anonymous {
        return Err(ServeError::Anonymous(opts.listen));
    }
    let store = Store::open(&opts.database).await?;
    let state = AppState {
        store: store.clone(),
        tokens: Arc::new(opts.tokens),
        metrics: Arc::new(Metrics::default()),
        cache: Arc::default(),
    };
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|e| ServeError::Listen(opts.listen, e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| ServeError::Listen(opts.listen, e))?;
    // The line tests and scripts wait for.
    println!(
        "protoreg: listening on http://{addr} ({:?})",
        store.backend()
    );
    tracing::info!(%addr, "listening");
    axum::serve(listener, router(state, opts.max_body))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| ServeError::Listen(addr, e))?;
    store.close().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down: finishing in-flight requests");
}

// ----- middleware -----

async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let resp = next.run(req).await;
    state.metrics.observe(
        method.as_str(),
        &route,
        resp.status().as_u16(),
        start.elapsed(),
    );
    resp
}

async fn auth(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if state.tokens.is_empty() {
        return next.run(req).await;
    }
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let method = req.method().as_str().to_string();
    let need = route
        .as_deref()
        .and_then(|r| ROUTES.iter().find(|d| d.path == r && d.method == method))
        .map(|d| d.role)
        .unwrap_or(Some(Role::Read));
    let Some(need) = need else {
        return next.run(req).await;
    };
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match token.and_then(|t| state.tokens.get(t)) {
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "a bearer token is required",
        )
        .into_response(),
        Some(role) if *role < need => ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this needs the {need:?} role; the token has {role:?}").to_lowercase(),
        )
        .into_response(),
        Some(_) => next.run(req).await,
    }
}

// ----- handlers -----

async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => Json(json!({"status": "ready"})).into_response(),
        Err(e) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", e.to_string())
            .into_response(),
    }
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

async fn openapi() -> Json<Value> {
    let mut paths = serde_json::Map::new();
    for r in ROUTES {
        let path = r.path.replace("{*path}", "{path}");
        let params: Vec<Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut op = json!({
            "summary": r.summary,
            "parameters": params,
            "responses": {"200": {"description": "OK"}, "default": {"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
        });
        if let Some(role) = r.role {
            op["security"] = json!([{"bearer": []}]);
            op["x-protoreg-role"] = json!(format!("{role:?}").to_lowercase());
        }
        if matches!(r.method, "POST" | "PUT") {
            op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"type": "object"}}}});
        }
        paths
            .entry(path)
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("object")
            .insert(r.method.to_lowercase(), op);
    }
    Json(json!({
        "openapi": "3.0.3",
        "info": {"title": "protoreg registry", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
                "code": {"type": "string"}, "message": {"type": "string"}, "details": {}}}}}}
        }
    }))
}

fn subject_name(s: &str) -> ApiResult<&str> {
    if domain::valid_subject(s) {
        Ok(s)
    } else {
        Err(ApiError::bad_request(format!(
            "invalid subject name {s:?}: use 1 to 128 of A-Z a-z 0-9 . _ -"
        )))
    }
}

/// The subject's own policy, else the global one, else the default.
async fn effective_config(store: &Store, subject: &str) -> ApiResult<Config> {
    if let Some(c) = store.config(subject).await? {
        return Ok(c);
    }
    Ok(store
        .config("")
        .await?
        .unwrap_or_else(domain::default_config))
}

async fn get_global_config(State(state): State<AppState>) -> ApiResult<Json<Config>> {
    Ok(Json(
        state
            .store
            .config("")
            .await?
            .unwrap_or_else(domain::default_config),
    ))
}

fn parse_config(body: &Bytes) -> ApiResult<Config> {
    let c: Config = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "body must be {{\"mode\": ..., \"categories\": [...]}}: {e}"
        ))
    })?;
    domain::validate_config(&c).map_err(ApiError::bad_request)?;
    Ok(c)
}

async fn put_global_config(State(state): State<AppState>, body: Bytes) -> ApiResult<Json<Config>> {
    let c = parse_config(&body)?;
    state.store.set_config("", &c).await?;
    Ok(Json(c))
}

async fn get_subject_config(
    State(state): State<AppState>,
    Path(subject): Path<String>,
) -> ApiResult<Json<Config>> {
    let subject = subject_name(&subject)?;
    Ok(Json(effective_config(&state.store, subject).await?))
}

async fn put_subject_config(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Config>> {
    let subject = subject_name(&subject)?;
    let c = parse_config(&body)?;
    state.store.set_config(subject, &c).await?;
    Ok(Json(c))
}

async fn list_subjects(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    Ok(Json(json!(state.store.subjects().await?)))
}

async fn get_subject(
    State(state): State<AppState>,
    Path(subject): Path<String>,
) -> ApiResult<Json<Value>> {
    let subject = subject_name(&subject)?;
    let versions = state.store.versions(subject, false).await?;
    if versions.is_empty()
        && !state
            .store
            .subjects()
            .await?
            .iter()
            .any(|s| s.name == subject)
    {
        return Err(ApiError::not_found(format!("no subject {subject:?}")));
    }
    let config = effective_config(&state.store, subject).await?;
    Ok(Json(json!({
        "name": subject,
        "latest_version": versions.last().map(|v| v.version),
        "versions": versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        "config": config,
    })))
}

fn version_meta(v: &Version) -> Value {
    json!({
        "subject": v.subject,
        "version": v.version,
        "digest": v.digest,
        "labels": v.labels,
        "created_at": rfc3339(v.created_at),
        "deleted": v.deleted,
    })
}

async fn list_versions(
    State(state): State<AppState>,
    Path(subject): Path<String>,
) -> ApiResult<Json<Value>> {
    let subject = subject_name(&subject)?;
    let versions = state.store.versions(subject, false).await?;
    Ok(Json(Value::Array(
        versions.iter().map(version_meta).collect(),
    )))
}

fn parse_version(v: &str) -> ApiResult<Option<i64>> {
    if v == "latest" {
        return Ok(None);
    }
    v.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .map(Some)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "version must be a positive number or `latest`, not {v:?}"
            ))
        })
}

async fn load_version(
    state: &AppState,
    subject: &str,
    version: &str,
) -> ApiResult<(Arc<Version>, Bytes)> {
    let n = parse_version(version)?;
    let missing = || ApiError::not_found(format!("no version {version} of subject {subject:?}"));
    let (n, digest) = state
        .store
        .version_ref(subject, n)
        .await?
        .ok_or_else(missing)?;
    if let Some(hit) = state.cache.get(subject, n, &digest) {
        return Ok(hit);
    }
    let v = state
        .store
        .version(subject, Some(n), false)
        .await?
        .ok_or_else(missing)?;
    Ok(state.cache.put(v))
}

async fn get_version(
    State(state): State<AppState>,
    Path((subject, version)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let subject = subject_name(&subject)?;
    let (v, _) = load_version(&state, subject, &version).await?;
    let mut body = version_meta(&v);
    body["files"] = json!(v.files);
    Ok(Json(body))
}

async fn get_descriptor(
    State(state): State<AppState>,
    Path((subject, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let subject = subject_name(&subject)?;
    let (v, descriptor) = load_version(&state, subject, &version).await?;
    let etag = format!("\"{}\"", v.digest);
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| h.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let etag_value =
        HeaderValue::from_str(&etag).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag_value)]).into_response());
    }
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-protobuf"),
            ),
            (header::ETAG, etag_value),
        ],
        descriptor,
    )
        .into_response())
}

async fn get_file(
    State(state): State<AppState>,
    Path((subject, version, path)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let subject = subject_name(&subject)?;
    let (v, _) = load_version(&state, subject, &version).await?;
    let text = v.files.get(&path).ok_or_else(|| {
        ApiError::not_found(format!("no file {path:?} in {subject}@{}", v.version))
    })?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text.clone(),
    )
        .into_response())
}

#[derive(Deserialize)]
struct PushBody {
    files: BTreeMap<String, String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

fn parse_push(body: &Bytes) -> ApiResult<PushBody> {
    let b: PushBody = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "body must be {{\"files\": {{\"path.proto\": \"text\"}}, \"labels\": {{}}}}: {e}"
        ))
    })?;
    if b.labels.len() > 64
        || b.labels
            .iter()
            .any(|(k, v)| k.is_empty() || k.len() > 128 || v.len() > 1024)
    {
        return Err(ApiError::bad_request(
            "labels: at most 64, keys 1-128 bytes, values up to 1024 bytes",
        ));
    }
    Ok(b)
}

fn push_error(e: domain::PushError) -> ApiError {
    match e {
        domain::PushError::BadRequest(m) => ApiError::bad_request(m),
        domain::PushError::Compile(diags) => {
            let details: Vec<Value> = diags
                .iter()
                .map(|d| json!({"path": d.path, "line": d.line, "column": d.column, "message": d.message}))
                .collect();
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "compile_error",
                format!(
                    "{} compile error(s): {}",
                    diags.len(),
                    diags.first().map(|d| d.to_string()).unwrap_or_default()
                ),
            )
            .details(json!({"diagnostics": details}))
        }
    }
}

/// Compiles and checks off the async runtime (CPU-bound).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))
}

async fn push(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let subject = subject_name(&subject)?.to_string();
    let b = parse_push(&body)?;
    let files = b.files.clone();
    let compiled = blocking(move || domain::compile(&files))
        .await?
        .map_err(push_error)?;
    let config = effective_config(&state.store, &subject).await?;
    let image = Arc::new(compiled.image);
    let new = protoreg_store::NewVersion {
        files: b.files,
        descriptor: compiled.descriptor,
        labels: b.labels,
    };
    let outcome = state
        .store
        .push(&subject, new, |prior| {
            match domain::check_policy(&image, prior, &config) {
                Ok(f) if f.is_empty() => Ok(()),
                Ok(f) => Err(Ok(f)),
                Err(e) => Err(Err(e)),
            }
        })
        .await?;
    match outcome {
        Ok(PushOutcome::Created(v)) => {
            state.metrics.push("accepted");
            Ok((
                StatusCode::CREATED,
                Json(json!({"subject": v.subject, "version": v.version, "digest": v.digest})),
            )
                .into_response())
        }
        Ok(PushOutcome::Unchanged(v)) => {
            state.metrics.push("unchanged");
            Ok(
                Json(json!({"subject": v.subject, "version": v.version, "digest": v.digest}))
                    .into_response(),
            )
        }
        Err(Ok(findings)) => {
            state.metrics.push("refused");
            let list: Vec<Value> = findings.iter().map(domain::finding_json).collect();
            Err(ApiError::new(
                StatusCode::CONFLICT,
                "incompatible",
                format!(
                    "{} breaking change(s) under policy {} {:?}",
                    list.len(),
                    config.mode,
                    config.categories
                ),
            )
            .details(
                json!({"mode": config.mode, "categories": config.categories, "findings": list}),
            ))
        }
        Err(Err(e)) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "check_failed",
            e,
        )),
    }
}

async fn check(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let subject = subject_name(&subject)?.to_string();
    let b = parse_push(&body)?;
    let files = b.files;
    let compiled = blocking(move || domain::compile(&files))
        .await?
        .map_err(push_error)?;
    let config = effective_config(&state.store, &subject).await?;
    let prior = state.store.versions(&subject, false).await?;
    let findings = blocking(move || domain::check_policy(&compiled.image, &prior, &config))
        .await?
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "check_failed", e))?;
    Ok(Json(json!({
        "compatible": findings.is_empty(),
        "findings": findings.iter().map(domain::finding_json).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
struct DiffQuery {
    from: String,
    to: String,
}

async fn diff(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    Query(q): Query<DiffQuery>,
) -> ApiResult<Json<Value>> {
    let subject = subject_name(&subject)?;
    let (from, _) = load_version(&state, subject, &q.from).await?;
    let (to, _) = load_version(&state, subject, &q.to).await?;
    let config = effective_config(&state.store, subject).await?;
    let (f2, t2) = (from.clone(), to.clone());
    let result = blocking(move || -> Result<(Vec<Value>, Vec<Value>), String> {
        let a = domain::stored_image(&f2).map_err(|e| e.to_string())?;
        let b = domain::stored_image(&t2).map_err(|e| e.to_string())?;
        let fwd = domain::breaking(&b, &a, &config)?;
        let back = domain::breaking(&a, &b, &config)?;
        Ok((
            fwd.iter().map(domain::finding_json).collect(),
            back.iter().map(domain::finding_json).collect(),
        ))
    })
    .await?
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "check_failed", e))?;
    Ok(Json(json!({
        "subject": subject,
        "from": from.version,
        "to": to.version,
        // `to` checked against `from`: what breaks consumers built on `from`.
        "breaking": result.0,
        // `from` checked against `to`: what a rollback from `to` to `from` would break.
        "breaking_reverse": result.1,
        "files": domain::file_diffs(&from, &to),
    })))
}

#[derive(Deserialize)]
struct DeleteQuery {
    #[serde(default)]
    permanent: bool,
}

async fn delete_version(
    State(state): State<AppState>,
    Path((subject, version)): Path<(String, String)>,
    Query(q): Query<DeleteQuery>,
) -> ApiResult<Json<Value>> {
    let subject = subject_name(&subject)?;
    let n = parse_version(&version)?
        .ok_or_else(|| ApiError::bad_request("delete needs a version number"))?;
    state.cache.forget(subject, n);
    if state.store.delete(subject, n, q.permanent).await? {
        return Ok(Json(
            json!({"subject": subject, "version": n, "deleted": if q.permanent { "permanent" } else { "soft" }}),
        ));
    }
    let existing = state.store.version(subject, Some(n), true).await?;
    Err(match (existing, q.permanent) {
        (None, _) => ApiError::not_found(format!("no version {n} of subject {subject:?}")),
        (Some(v), true) if !v.deleted => ApiError::new(
            StatusCode::CONFLICT,
            "not_soft_deleted",
            "a permanent delete needs the version to be soft-deleted first",
        ),
        (Some(_), _) => ApiError::not_found(format!(
            "version {n} of subject {subject:?} is already deleted"
        )),
    })
}

async fn find_schema(
    State(state): State<AppState>,
    Path(digest): Path<String>,
) -> ApiResult<Json<Value>> {
    let found = state.store.find_digest(&digest).await?;
    if found.is_empty() {
        return Err(ApiError::not_found(format!(
            "no version has digest {digest:?}"
        )));
    }
    Ok(Json(Value::Array(
        found
            .into_iter()
            .map(|(s, v)| json!({"subject": s, "version": v}))
            .collect(),
    )))
}

/// Unix milliseconds as RFC 3339 UTC.
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_764_028_800_123), "2025-11-25T00:00:00.123Z");
    }

    #[test]
    fn tokens_parse() {
        let t = parse_tokens("alice-token-1:admin\nbob-token-22 read\n# comment\n").unwrap();
        assert_eq!(t["alice-token-1"], Role::Admin);
        assert_eq!(t["bob-token-22"], Role::Read);
        assert!(parse_tokens("short:admin").is_err());
        assert!(parse_tokens("long-enough-token:root").is_err());
    }

    /// `/openapi.json` and the auth roles come from `ROUTES`: every row must be routed.
    #[tokio::test]
    async fn every_documented_route_is_served() {
        use tower::ServiceExt;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("r.db").to_string_lossy())
            .await
            .unwrap();
        let app = router(
            AppState {
                store,
                tokens: Arc::new(HashMap::new()),
                metrics: Arc::default(),
                cache: Arc::default(),
            },
            1 << 20,
        );
        for r in ROUTES {
            let mut path = r
                .path
                .replace("{subject}", "s")
                .replace("{version}", "1")
                .replace("{*path}", "a.proto")
                .replace("{digest}", "d");
            if path.ends_with("/diff") {
                path.push_str("?from=1&to=1");
            }
            let req = axum::http::Request::builder()
                .method(r.method)
                .uri(&path)
                .header("content-type", "application/json")
                .body(axum::body::Body::from("{}"))
                .unwrap();
            let resp = app.clone().oneshot(req).await.unwrap();
            let status = resp.status();
            let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
                .await
                .unwrap();
            assert_ne!(
                status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{} {}",
                r.method,
                r.path
            );
            if status == StatusCode::NOT_FOUND {
                // Our 404s say what is missing; the router's own 404 has no body.
                assert!(
                    body.starts_with(b"{\"error\""),
                    "{} {} is not routed",
                    r.method,
                    r.path
                );
            }
        }
    }

    #[test]
    fn subject_names() {
        assert!(domain::valid_subject("acme.users.v1"));
        assert!(!domain::valid_subject("../x"));
        assert!(!domain::valid_subject(""));
        assert!(!domain::valid_subject(&"a".repeat(129)));
    }
}
