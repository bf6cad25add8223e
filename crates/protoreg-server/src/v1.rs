//! Handlers of the native `/v1` API (except pushes): subjects, versions, config, diff,
//! dependents.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use protoreg_store::{Config, Store, Version};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{self, FindingBody, Policy, VersionRef};
use crate::error::{ApiError, ApiResult};
use crate::push::blocking;
use crate::{AppState, domain};

pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => Json(api::Status {
            status: "ready".into(),
        })
        .into_response(),
        Err(e) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", e.to_string())
            .into_response(),
    }
}

pub(crate) async fn metrics_text(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

pub(crate) fn subject_name(s: &str) -> ApiResult<&str> {
    if domain::valid_subject(s) {
        Ok(s)
    } else {
        Err(ApiError::bad_request(format!(
            "invalid subject name {s:?}: use {}",
            domain::SUBJECT_RULE
        )))
    }
}

/// The subject's own policy, else the global one, else the default.
pub(crate) async fn effective_config(store: &Store, subject: &str) -> ApiResult<Config> {
    if let Some(c) = store.config(subject).await? {
        return Ok(c);
    }
    Ok(store
        .config("")
        .await?
        .unwrap_or_else(domain::default_config))
}

pub(crate) async fn get_global_config(State(state): State<AppState>) -> ApiResult<Json<Policy>> {
    Ok(Json(
        state
            .store
            .config("")
            .await?
            .unwrap_or_else(domain::default_config)
            .into(),
    ))
}

fn parse_config(body: &Bytes, current: Config) -> ApiResult<Config> {
    let u: api::PolicyUpdate = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "body must be {{\"mode\": ..., \"categories\": [...], \"deployed\": \"warn\"|\"enforce\"}} (each may be left out): {e}"
        ))
    })?;
    let c = Config {
        mode: u.mode.unwrap_or(current.mode),
        categories: u.categories.unwrap_or(current.categories),
        deployed: u.deployed.unwrap_or(current.deployed),
    };
    domain::validate_config(&c).map_err(ApiError::bad_request)?;
    Ok(c)
}

pub(crate) async fn put_global_config(
    State(state): State<AppState>,
    body: Bytes,
) -> ApiResult<Json<Policy>> {
    let current = state
        .store
        .config("")
        .await?
        .unwrap_or_else(domain::default_config);
    let c = parse_config(&body, current)?;
    state.store.set_config("", &c).await?;
    Ok(Json(c.into()))
}

pub(crate) async fn get_subject_config(
    State(state): State<AppState>,
    Path(subject): Path<String>,
) -> ApiResult<Json<Policy>> {
    let subject = subject_name(&subject)?;
    Ok(Json(effective_config(&state.store, subject).await?.into()))
}

pub(crate) async fn put_subject_config(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Policy>> {
    let subject = subject_name(&subject)?;
    let current = effective_config(&state.store, subject).await?;
    let c = parse_config(&body, current)?;
    state.store.set_config(subject, &c).await?;
    Ok(Json(c.into()))
}

/// `?page_size=&page_token=` of the listings.
#[derive(Deserialize)]
pub(crate) struct Page {
    page_size: Option<i64>,
    page_token: Option<String>,
}

impl Page {
    const DEFAULT: i64 = 100;
    const MAX: i64 = 1000;

    /// The token as a number (0 without one).
    fn numeric_token<T: std::str::FromStr + Default>(&self) -> ApiResult<T> {
        match &self.page_token {
            None => Ok(T::default()),
            Some(t) => t
                .parse()
                .map_err(|_| ApiError::bad_request(format!("invalid page_token {t:?}"))),
        }
    }

    fn size(&self) -> ApiResult<i64> {
        match self.page_size {
            None => Ok(Self::DEFAULT),
            Some(n) if (1..=Self::MAX).contains(&n) => Ok(n),
            Some(n) => Err(ApiError::bad_request(format!(
                "page_size must be 1 to {}, not {n}",
                Self::MAX
            ))),
        }
    }
}

/// A page of a listing: a JSON array as before pagination (so existing clients keep
/// working), and when more items follow, the next page's token in `X-Next-Page-Token`
/// (and a `Link: <…>; rel="next"` header).
fn page_response(items: Vec<Value>, next: Option<String>, uri: &axum::http::Uri) -> Response {
    let mut resp = Json(Value::Array(items)).into_response();
    if let Some(token) = next {
        let pairs: Vec<(String, String)> = uri
            .query()
            .map(|q| {
                q.split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .filter(|(k, _)| *k != "page_token")
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let mut query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        query.push(format!("page_token={}", percent_encode(&token)));
        let link = format!("<{}?{}>; rel=\"next\"", uri.path(), query.join("&"));
        if let (Ok(t), Ok(l)) = (HeaderValue::from_str(&token), HeaderValue::from_str(&link)) {
            resp.headers_mut().insert("x-next-page-token", t);
            resp.headers_mut().insert(header::LINK, l);
        }
    }
    resp
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(crate) async fn list_subjects(
    State(state): State<AppState>,
    Query(page): Query<Page>,
    uri: axum::http::Uri,
) -> ApiResult<Response> {
    let size = page.size()?;
    let mut list = state
        .store
        .subjects(page.page_token.as_deref(), size + 1)
        .await?;
    let more = list.len() as i64 > size;
    list.truncate(size as usize);
    let next = more.then(|| list.last().map(|s| s.name.clone())).flatten();
    Ok(page_response(
        list.iter()
            .map(|s| {
                json!(api::SubjectSummary {
                    name: s.name.clone(),
                    latest_version: s.latest_version,
                    versions: s.versions,
                })
            })
            .collect(),
        next,
        &uri,
    ))
}

/// Pages a list that is in memory already, by a numeric token (the last item's version).
fn page_versions(
    list: Vec<Value>,
    page: &Page,
    uri: &axum::http::Uri,
    key: impl Fn(&Value) -> i64,
) -> ApiResult<Response> {
    let size = page.size()? as usize;
    let after: i64 = page.numeric_token()?;
    let rest: Vec<Value> = list.into_iter().filter(|v| key(v) > after).collect();
    let more = rest.len() > size;
    let items: Vec<Value> = rest.into_iter().take(size).collect();
    let next = more
        .then(|| items.last().map(|v| key(v).to_string()))
        .flatten();
    Ok(page_response(items, next, uri))
}

pub(crate) async fn get_subject(
    State(state): State<AppState>,
    Path(subject): Path<String>,
) -> ApiResult<Json<api::Subject>> {
    let subject = subject_name(&subject)?;
    let versions = state.store.versions(subject, false).await?;
    if versions.is_empty() && !state.store.subject_exists(subject).await? {
        return Err(ApiError::not_found(format!("no subject {subject:?}")));
    }
    let config = effective_config(&state.store, subject).await?;
    Ok(Json(api::Subject {
        name: subject.to_string(),
        latest_version: versions.last().map(|v| v.version),
        versions: versions.iter().map(|v| v.version).collect(),
        config: config.into(),
    }))
}

pub(crate) async fn list_versions(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    Query(page): Query<Page>,
    uri: axum::http::Uri,
) -> ApiResult<Response> {
    let subject = subject_name(&subject)?;
    let versions = state.store.versions(subject, false).await?;
    let accepted = state.store.accepted_breaks(subject, None).await?;
    let list = versions
        .iter()
        .map(|v| {
            let mut summary = api::VersionSummary::from(v);
            summary.accepted_break = accepted
                .get(&v.version)
                .map(api::AcceptedBreakBody::from_store);
            json!(summary)
        })
        .collect();
    page_versions(list, &page, &uri, |v| v["version"].as_i64().unwrap_or(0))
}

pub(crate) async fn list_refusals(
    State(state): State<AppState>,
    Path(subject): Path<String>,
) -> ApiResult<Json<Vec<api::Refusal>>> {
    let subject = subject_name(&subject)?;
    Ok(Json(refusals(&state, subject).await?))
}

/// A subject's logged refusals as the API shows them.
pub(crate) async fn refusals(state: &AppState, subject: &str) -> ApiResult<Vec<api::Refusal>> {
    let list = state.store.refusals(subject).await?;
    list.into_iter()
        .map(|r| {
            Ok(api::Refusal {
                created_at: rfc3339(r.created_at),
                labels: r.labels,
                policy: serde_json::from_value(r.policy)
                    .map_err(|e| ApiError::internal("corrupt", e.to_string()))?,
                findings: serde_json::from_value(r.findings)
                    .map_err(|e| ApiError::internal("corrupt", e.to_string()))?,
            })
        })
        .collect()
}

pub(crate) fn parse_version(v: &str) -> ApiResult<Option<i64>> {
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

pub(crate) async fn load_version(
    state: &AppState,
    subject: &str,
    version: &str,
) -> ApiResult<(Arc<Version>, Bytes)> {
    let n = parse_version(version)?;
    if let Some(hit) = state.cache.watched(subject, n) {
        return Ok(hit);
    }
    let generation = state.cache.generation();
    let missing = || ApiError::not_found(format!("no version {version} of subject {subject:?}"));
    let (found, digest) = match state.store.version_ref(subject, n).await {
        Ok(found) => found.ok_or_else(missing)?,
        // Versions are immutable: one named by number can be served from the cache while
        // the database is down.
        Err(e) if e.is_unavailable() => {
            return match n.and_then(|n| state.cache.get(subject, n, None)) {
                Some(hit) => Ok(hit),
                None => Err(e.into()),
            };
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(hit) = state.cache.get(subject, found, Some(&digest)) {
        if n.is_none() {
            state.cache.note_latest(subject, found, generation);
        }
        return Ok(hit);
    }
    let v = state
        .store
        .version(subject, Some(found), false)
        .await?
        .ok_or_else(missing)?;
    Ok(state.cache.put(v, generation, n.is_none()))
}

pub(crate) async fn get_version(
    State(state): State<AppState>,
    Path((subject, version)): Path<(String, String)>,
) -> ApiResult<Json<api::VersionBody>> {
    let subject = subject_name(&subject)?;
    let (v, _) = load_version(&state, subject, &version).await?;
    let mut summary = api::VersionSummary::from(&v.meta);
    summary.accepted_break = state
        .store
        .accepted_break(subject, v.meta.version)
        .await?
        .as_ref()
        .map(api::AcceptedBreakBody::from_store);
    Ok(Json(api::VersionBody {
        summary,
        files: v.files.clone(),
    }))
}

pub(crate) async fn get_descriptor(
    State(state): State<AppState>,
    Path((subject, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let subject = subject_name(&subject)?;
    let (v, descriptor) = load_version(&state, subject, &version).await?;
    let etag = format!("\"{}\"", v.meta.digest);
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

pub(crate) async fn get_file(
    State(state): State<AppState>,
    Path((subject, version, path)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let subject = subject_name(&subject)?;
    let (v, _) = load_version(&state, subject, &version).await?;
    let text = v.files.get(&path).ok_or_else(|| {
        ApiError::not_found(format!("no file {path:?} in {subject}@{}", v.meta.version))
    })?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text.clone(),
    )
        .into_response())
}

#[derive(Deserialize)]
pub(crate) struct DiffQuery {
    from: String,
    to: String,
}

pub(crate) async fn diff(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    Query(q): Query<DiffQuery>,
) -> ApiResult<Json<api::DiffReply>> {
    let subject = subject_name(&subject)?;
    let (from, _) = load_version(&state, subject, &q.from).await?;
    let (to, _) = load_version(&state, subject, &q.to).await?;
    let config = effective_config(&state.store, subject).await?;
    let (f2, t2) = (from.clone(), to.clone());
    type Both = (Vec<FindingBody>, Vec<FindingBody>);
    let result = blocking(move || -> Result<Both, String> {
        let a = domain::version_image(&f2).map_err(|e| e.to_string())?;
        let b = domain::version_image(&t2).map_err(|e| e.to_string())?;
        let fwd = domain::breaking(&b, &a, &config)?;
        let back = domain::breaking(&a, &b, &config)?;
        Ok((
            fwd.iter().map(FindingBody::from).collect(),
            back.iter().map(FindingBody::from).collect(),
        ))
    })
    .await?
    .map_err(|e| ApiError::internal("check_failed", e))?;
    Ok(Json(api::DiffReply {
        subject: subject.to_string(),
        from: from.meta.version,
        to: to.meta.version,
        breaking: result.0,
        breaking_reverse: result.1,
        files: domain::file_diffs(&from, &to),
    }))
}

#[derive(Deserialize)]
pub(crate) struct DeleteQuery {
    #[serde(default)]
    permanent: bool,
    /// Delete even though live versions depend on it (admin).
    #[serde(default)]
    force: bool,
}

pub(crate) async fn delete_version(
    State(state): State<AppState>,
    Path((subject, version)): Path<(String, String)>,
    Query(q): Query<DeleteQuery>,
) -> ApiResult<Json<api::DeleteReply>> {
    let subject = subject_name(&subject)?;
    let n = parse_version(&version)?
        .ok_or_else(|| ApiError::bad_request("delete needs a version number"))?;
    if !q.force {
        let dependents = state.store.dependents(subject, n).await?;
        if !dependents.is_empty() {
            let names: Vec<String> = dependents.iter().map(|(s, v)| format!("{s}@{v}")).collect();
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "has_dependents",
                format!(
                    "{subject}@{n} is a dependency of {}; delete those first or pass ?force=true",
                    names.join(", ")
                ),
            )
            .details(json!({"dependents": version_refs(dependents)})));
        }
        let running = state.store.consumers(subject, n).await?;
        if !running.is_empty() {
            let names = crate::deployments::deployment_names(&running);
            let bodies: Vec<api::DeploymentBody> =
                running.iter().map(api::DeploymentBody::from).collect();
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "deployed",
                format!(
                    "{subject}@{n} is what {} run{}; undeploy them first or pass ?force=true",
                    names.join(", "),
                    if names.len() == 1 { "s" } else { "" }
                ),
            )
            .details(json!({"deployments": bodies})));
        }
    }
    let deleted = state.store.delete(subject, n, q.permanent).await?;
    // Read your writes on this replica at once (the others hear of it when it commits).
    state.cache.changed(subject);
    if deleted {
        return Ok(Json(api::DeleteReply {
            subject: subject.to_string(),
            version: n,
            deleted: if q.permanent { "permanent" } else { "soft" }.into(),
        }));
    }
    let existing = state.store.version_meta(subject, Some(n), true).await?;
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

pub(crate) async fn get_dependents(
    State(state): State<AppState>,
    Path((subject, version)): Path<(String, String)>,
    Query(page): Query<Page>,
    uri: axum::http::Uri,
) -> ApiResult<Response> {
    let subject = subject_name(&subject)?;
    let n = parse_version(&version)?;
    let (n, _) = state.store.version_ref(subject, n).await?.ok_or_else(|| {
        ApiError::not_found(format!("no version {version} of subject {subject:?}"))
    })?;
    let list: Vec<Value> = version_refs(state.store.dependents(subject, n).await?)
        .into_iter()
        .map(|r| json!(r))
        .collect();
    // Ordered by subject then version: the token is the position.
    let size = page.size()? as usize;
    let start: usize = page.numeric_token()?;
    let items: Vec<Value> = list.iter().skip(start).take(size).cloned().collect();
    let next = (start + size < list.len()).then(|| (start + size).to_string());
    Ok(page_response(items, next, &uri))
}

pub(crate) async fn find_schema(
    State(state): State<AppState>,
    Path(digest): Path<String>,
) -> ApiResult<Json<Vec<VersionRef>>> {
    let found = state.store.find_digest(&digest).await?;
    if found.is_empty() {
        return Err(ApiError::not_found(format!(
            "no version has digest {digest:?}"
        )));
    }
    Ok(Json(version_refs(found)))
}

fn version_refs(list: Vec<(String, i64)>) -> Vec<VersionRef> {
    list.into_iter()
        .map(|(subject, version)| VersionRef { subject, version })
        .collect()
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
