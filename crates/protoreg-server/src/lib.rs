//! The registry HTTP server: routes, state, auth, metrics and errors. Handlers are thin: they
//! parse, call [`domain`] and [`protoreg_store::Store`], and map [`ApiError`] to a status.

pub mod api;
pub mod confluent;
mod deployments;
pub mod deps;
mod diffs;
pub mod domain;
mod error;
mod metrics;
mod push;
mod routes;
mod ui;
mod v1;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use protoreg_store::{Store, StoreError, Version};
use serde_json::json;

pub use error::ApiError;
pub use metrics::Metrics;
pub use routes::{ROUTES, RouteDoc};
pub use v1::rfc3339;

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

/// What a token grants: a role, and the name of whom it was issued to (shown as who
/// accepted a break; without one, the token's fingerprint is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub role: Role,
    pub name: Option<String>,
}

/// Parses tokens: one `TOKEN ROLE [NAME]` (or `TOKEN:ROLE[:NAME]`) per line or
/// comma-separated item.
pub fn parse_tokens(text: &str) -> Result<HashMap<String, Grant>, String> {
    let mut out = HashMap::new();
    for item in text.split(['\n', ',']) {
        let item = item.trim();
        if item.is_empty() || item.starts_with('#') {
            continue;
        }
        let parts: Vec<&str> = if item.contains(':') {
            item.splitn(3, ':').map(str::trim).collect()
        } else {
            item.splitn(3, char::is_whitespace).map(str::trim).collect()
        };
        let (tok, role) = match parts.as_slice() {
            [tok, role, ..] => (*tok, *role),
            _ => return Err(format!("token entry {item:?} has no role (TOKEN:ROLE)")),
        };
        if tok.len() < 8 {
            return Err("tokens must be at least 8 characters".into());
        }
        let name = parts
            .get(2)
            .map(|n| n.to_string())
            .filter(|n| !n.is_empty());
        if name
            .as_deref()
            .is_some_and(|n| n.len() > 128 || n.chars().any(char::is_control))
        {
            return Err(format!(
                "token entry {item:?}: the name must be 1-128 printable characters"
            ));
        }
        out.insert(
            tok.to_string(),
            Grant {
                role: role.parse()?,
                name,
            },
        );
    }
    Ok(out)
}

/// Shared state of all handlers.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// Empty: no authentication (the server then only listens on loopback).
    pub tokens: Arc<HashMap<String, Grant>>,
    pub metrics: Arc<Metrics>,
    pub cache: Arc<VersionCache>,
    pub images: Arc<ImageCache>,
    /// The Confluent API's schema views.
    pub views: Arc<confluent::ViewCache>,
    /// Dependency closures pushes compile against.
    pub closures: Arc<deps::ClosureCache>,
    /// The web UI's per-version indexes.
    pub ui: Arc<ui::IndexCache>,
    pub limits: Limits,
}

impl AppState {
    /// State over a store, without tokens, with default limits.
    pub fn new(store: Store) -> AppState {
        AppState {
            store,
            tokens: Arc::default(),
            metrics: Arc::default(),
            cache: Arc::default(),
            images: Arc::default(),
            views: Arc::default(),
            closures: Arc::default(),
            ui: Arc::default(),
            limits: Limits::default(),
        }
    }
}

/// Bounds on what one request may cost.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest request body as sent (compressed or not).
    pub max_body: usize,
    /// Largest request body once a gzip body is inflated.
    pub max_inflated: usize,
    /// Longest a request may take before it is answered 503.
    pub request_timeout: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body: DEFAULT_MAX_BODY,
            max_inflated: DEFAULT_MAX_INFLATED,
            request_timeout: std::time::Duration::from_secs(120),
        }
    }
}

/// Default request body limit (a googleapis-size push, gzipped, is about 10 MiB).
pub const DEFAULT_MAX_BODY: usize = 32 << 20;
/// Default limit of an inflated gzip body.
pub const DEFAULT_MAX_INFLATED: usize = 512 << 20;

/// Versions are immutable, so their contents are cached by (subject, number, digest). On
/// SQLite a cheap query still confirms each read (the version is live, the number resolves
/// `latest`). On PostgreSQL every replica listens for the changes any replica commits
/// ([`protoreg_store::ChangeListener`]): while it listens, reads are served from the cache
/// alone and a change of a subject drops that subject's entries, so a delete or a new
/// version on another replica is seen as soon as it commits. When the database is down,
/// versions named by number are served from here.
#[derive(Default)]
pub struct VersionCache {
    entries: std::sync::Mutex<HashMap<(String, i64), CachedVersion>>,
    /// Subject -> its latest live version number (only while `watching`).
    latest: std::sync::Mutex<HashMap<String, i64>>,
    /// Whether changes are being listened for (reads may then skip the database).
    watching: std::sync::atomic::AtomicBool,
    /// Bumped by every change heard: a read that queried the database before a change may
    /// not cache what it found after it.
    generation: std::sync::atomic::AtomicU64,
}

/// Digest, the version, and its descriptor set as cheaply cloned bytes.
type CachedVersion = (String, Arc<Version>, Bytes);

impl VersionCache {
    const CAPACITY: usize = 512;

    fn get(&self, subject: &str, n: i64, digest: Option<&str>) -> Option<(Arc<Version>, Bytes)> {
        let map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&(subject.to_string(), n))
            .filter(|(d, _, _)| digest.is_none_or(|want| d == want))
            .map(|(_, v, b)| (v.clone(), b.clone()))
    }

    /// A cached version, when changes are listened for (no query needed).
    fn watched(&self, subject: &str, n: Option<i64>) -> Option<(Arc<Version>, Bytes)> {
        use std::sync::atomic::Ordering;
        if !self.watching.load(Ordering::Acquire) {
            return None;
        }
        let n = match n {
            Some(n) => n,
            None => *self
                .latest
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(subject)?,
        };
        self.get(subject, n, None)
    }

    /// Whether every change is heard: PostgreSQL while its listener is up; SQLite always
    /// (one server owns the file; its own changes are all it has to hear).
    pub(crate) fn hears_all_changes(&self, backend: protoreg_store::Backend) -> bool {
        backend == protoreg_store::Backend::Sqlite
            || self.watching.load(std::sync::atomic::Ordering::Acquire)
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Caches a version read at `generation` (dropped when a change was heard since).
    fn put(&self, v: Version, generation: u64, is_latest: bool) -> (Arc<Version>, Bytes) {
        let bytes = Bytes::from(v.descriptor.clone());
        let v = Arc::new(v);
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if self.generation() != generation {
            return (v, bytes);
        }
        if map.len() >= Self::CAPACITY {
            map.clear();
        }
        map.insert(
            (v.meta.subject.clone(), v.meta.version),
            (v.meta.digest.clone(), v.clone(), bytes.clone()),
        );
        if is_latest {
            self.latest
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(v.meta.subject.clone(), v.meta.version);
        }
        (v, bytes)
    }

    /// Remembers `n` as the latest version of `subject`, read at `generation`.
    fn note_latest(&self, subject: &str, n: i64, generation: u64) {
        let mut latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        if self.generation() == generation {
            latest.insert(subject.to_string(), n);
        }
    }

    /// A subject changed (on any replica): drop what is cached of it.
    pub fn changed(&self, subject: &str) {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        map.retain(|(s, _), _| s != subject);
        self.latest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(subject);
    }

    /// Starts or stops trusting the cache without queries. Starting empties it (changes may
    /// have been missed while not listening); stopping keeps the immutable contents, which
    /// reads then confirm with a query again (or serve by number while the database is down).
    pub fn set_watching(&self, on: bool) {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        if on {
            map.clear();
        }
        self.latest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.watching
            .store(on, std::sync::atomic::Ordering::Release);
    }
}

/// Listens for changes committed by any replica and keeps the cache true to them; while the
/// connection is down the cache is not trusted without a query.
async fn watch_changes(store: Store, cache: Arc<VersionCache>) {
    loop {
        match store.listen_changes().await {
            Ok(Some(mut listener)) => {
                cache.set_watching(true);
                loop {
                    match listener.next().await {
                        Ok(subject) => cache.changed(&subject),
                        Err(e) => {
                            tracing::warn!(error = %e, "change listener lost; reads query the database until it is back");
                            break;
                        }
                    }
                }
                cache.set_watching(false);
            }
            Ok(None) => return,
            Err(e) => tracing::warn!(error = %e, "cannot listen for changes; retrying"),
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// Decoded images of versions that pushes are checked against, by (subject, number,
/// digest): a push to a large subject decodes the previous version once, not per push.
/// Bounded by the size of the descriptor sets they were decoded from (a decoded image takes
/// a few times that), oldest out first.
#[derive(Default)]
pub struct ImageCache {
    entries: std::sync::Mutex<
        std::collections::VecDeque<(ImageKey, usize, Arc<protoreg_schema::Image>)>,
    >,
}

/// Subject, version number, digest.
type ImageKey = (String, i64, String);

impl ImageCache {
    /// Total descriptor bytes of the cached images.
    const BUDGET: usize = 128 << 20;

    pub(crate) fn get(
        &self,
        subject: &str,
        n: i64,
        digest: &str,
    ) -> Option<Arc<protoreg_schema::Image>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .iter()
            .find(|((s, v, d), _, _)| s == subject && *v == n && d == digest)
            .map(|(_, _, i)| i.clone())
    }

    pub(crate) fn put(
        &self,
        subject: &str,
        n: i64,
        digest: &str,
        size: usize,
        image: Arc<protoreg_schema::Image>,
    ) -> Arc<protoreg_schema::Image> {
        if size > Self::BUDGET {
            return image;
        }
        let mut evicted = Vec::new();
        {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            while entries.iter().map(|(_, s, _)| s).sum::<usize>() + size > Self::BUDGET {
                evicted.extend(entries.pop_front());
            }
            entries.push_back(((subject.into(), n, digest.into()), size, image.clone()));
        }
        // Freeing a large image takes a while (hundreds of ms for googleapis): not under the
        // lock, nor on the caller's (async) thread.
        if !evicted.is_empty() {
            std::thread::spawn(move || drop(evicted));
        }
        image
    }
}

/// Builds the router with its middleware (auth, metrics, errors as JSON, body limit,
/// request timeout).
pub fn router(state: AppState) -> Router {
    let limits = state.limits;
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(v1::readyz))
        .route("/metrics", get(v1::metrics_text))
        .route("/openapi.json", get(routes::openapi))
        .route(
            "/v1/config",
            get(v1::get_global_config).put(v1::put_global_config),
        )
        .route("/v1/subjects", get(v1::list_subjects))
        .route("/v1/subjects/{subject}", get(v1::get_subject))
        .route(
            "/v1/subjects/{subject}/config",
            get(v1::get_subject_config).put(v1::put_subject_config),
        )
        .route(
            "/v1/subjects/{subject}/versions",
            post(push::push).get(v1::list_versions),
        )
        .route("/v1/subjects/{subject}/check", post(push::check))
        .route("/v1/subjects/{subject}/refusals", get(v1::list_refusals))
        .route(
            "/v1/subjects/{subject}/versions/{version}",
            get(v1::get_version).delete(v1::delete_version),
        )
        .route(
            "/v1/subjects/{subject}/versions/{version}/descriptor",
            get(v1::get_descriptor),
        )
        .route(
            "/v1/subjects/{subject}/versions/{version}/dependents",
            get(v1::get_dependents),
        )
        .route(
            "/v1/subjects/{subject}/versions/{version}/files/{*path}",
            get(v1::get_file),
        )
        .route("/v1/subjects/{subject}/diff", get(v1::diff))
        .route("/v1/schemas/{digest}", get(v1::find_schema))
        .route(
            "/v1/subjects/{subject}/versions/{version}/consumers",
            get(deployments::consumers),
        )
        .route("/v1/environments", get(deployments::list_environments))
        .route("/v1/environments/{env}", get(deployments::get_environment))
        .route(
            "/v1/environments/{env}/deployments",
            post(deployments::record),
        )
        .route(
            "/v1/environments/{env}/instances",
            post(deployments::report_instance),
        )
        .route(
            "/v1/environments/{env}/services/{service}",
            get(deployments::service_history).delete(deployments::undeploy),
        )
        .route(
            "/v1/environments/{env}/can-i-deploy",
            post(deployments::can_i_deploy),
        )
        .merge(confluent::routes())
        .merge(ui::routes())
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(middleware::from_fn_with_state(state.clone(), auth))
        .layer(DefaultBodyLimit::max(limits.max_body))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            limits.request_timeout,
        ))
        .layer(middleware::from_fn(error::json_errors))
        .layer(middleware::from_fn(confluent_errors))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Where the server listens and what it serves from.
pub struct ServeOptions {
    pub listen: SocketAddr,
    pub database: String,
    pub tokens: HashMap<String, Grant>,
    pub allow_anonymous: bool,
    pub limits: Limits,
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
        tokens: Arc::new(opts.tokens),
        limits: opts.limits,
        ..AppState::new(store.clone())
    };
    tokio::spawn(watch_changes(store.clone(), state.cache.clone()));
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
    axum::serve(listener, router(state))
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

/// Errors of the Confluent routes in Confluent's body (see [`confluent::confluent_errors`]).
async fn confluent_errors(req: Request, next: Next) -> Response {
    if confluent::is_confluent_path(req.uri().path()) {
        confluent::confluent_errors(req, next).await
    } else {
        next.run(req).await
    }
}

/// Who made a request, as the auth layer identified them (a request extension).
#[derive(Debug, Clone)]
pub struct Caller {
    pub role: Role,
    /// The name the token was issued to (`TOKEN ROLE NAME`), else the HTTP Basic user name
    /// it came with, else its fingerprint (`token:` and 8 hex digits of its sha256), or
    /// `anonymous` without tokens.
    pub who: String,
}

/// The HTTP Basic user name of a request, if it has one.
fn basic_user(headers: &axum::http::HeaderMap) -> Option<String> {
    use base64::Engine;
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, _) = text.split_once(':')?;
    let user = user.trim();
    (!user.is_empty() && user.len() <= 128 && !user.chars().any(char::is_control))
        .then(|| user.to_string())
}

fn token_fingerprint(token: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(token.as_bytes());
    format!("token:{}", &hex::encode(digest)[..8])
}

/// The token of a request: `Authorization: Bearer TOKEN`, or HTTP Basic `USER:TOKEN` as
/// Confluent clients send it (`basic.auth.user.info`), the password being the token.
fn request_token(headers: &axum::http::HeaderMap) -> Option<String> {
    use base64::Engine;
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    if let Some(t) = value.strip_prefix("Bearer ") {
        return Some(t.trim().to_string());
    }
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    text.split_once(':').map(|(_, token)| token.to_string())
}

async fn auth(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if state.tokens.is_empty() {
        req.extensions_mut().insert(Caller {
            role: Role::Admin,
            who: "anonymous".into(),
        });
        return next.run(req).await;
    }
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let method = req.method().as_str().to_string();
    let path = req.uri().path();
    let need = match route
        .as_deref()
        .and_then(|r| ROUTES.iter().find(|d| d.path == r && d.method == method))
    {
        Some(d) => d.role,
        None if confluent::is_confluent_path(path) => Some(confluent::required_role(&method, path)),
        None => Some(Role::Read),
    };
    let Some(need) = need else {
        return next.run(req).await;
    };
    let is_ui = ui::is_ui_path(path);
    if is_ui && ui::is_public(path) {
        return next.run(req).await;
    }
    let token = request_token(req.headers())
        .or_else(|| is_ui.then(|| ui::cookie_token(req.headers())).flatten());
    let grant = token.as_deref().and_then(|t| state.tokens.get(t).cloned());
    // Who: the name the token was issued to, else the Basic user name it came with, else
    // its fingerprint.
    let who = grant
        .as_ref()
        .and_then(|g| g.name.clone())
        .or_else(|| basic_user(req.headers()))
        .or_else(|| token.as_deref().map(token_fingerprint))
        .unwrap_or_default();
    match grant.map(|g| g.role) {
        // Browsers cannot send bearer headers: the sign-in form (or HTTP Basic).
        None if is_ui => ui::sign_in_redirect(req.uri()),
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "a bearer token is required",
        )
        .into_response(),
        Some(role) if role < need => ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this needs the {need:?} role; the token has {role:?}").to_lowercase(),
        )
        .into_response(),
        Some(role) => {
            req.extensions_mut().insert(Caller { role, who });
            next.run(req).await
        }
    }
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
        assert_eq!(t["alice-token-1"].role, Role::Admin);
        assert_eq!(t["bob-token-22"].role, Role::Read);
        assert_eq!(t["bob-token-22"].name, None);
        let named =
            parse_tokens("carol-token-3:admin:carol@example.com\ndave-token-44 write Dave Ops")
                .unwrap();
        assert_eq!(
            named["carol-token-3"].name.as_deref(),
            Some("carol@example.com")
        );
        assert_eq!(named["dave-token-44"].name.as_deref(), Some("Dave Ops"));
        assert_eq!(named["dave-token-44"].role, Role::Write);
        let fp = token_fingerprint("alice-token-1");
        assert!(fp.starts_with("token:") && fp.len() == 14, "{fp}");
        assert_ne!(fp, token_fingerprint("bob-token-22"));
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
        let app = router(AppState::new(store));
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
        // Confluent's reference subjects are import paths.
        assert!(domain::valid_subject("acme/common/v1/money.proto"));
        assert!(domain::valid_subject("orders-value"));
        for bad in [
            "../x", "a/../b", "a//b", "/a", "a/", "./a", "a b", "a@1", "a%2Fb", "",
        ] {
            assert!(!domain::valid_subject(bad), "{bad:?}");
        }
        assert!(domain::valid_subject(&"a".repeat(255)));
        assert!(!domain::valid_subject(&"a".repeat(256)));
    }
}
