//! The native `/v1` API: a translator over [`crate::service`]. Each handler parses its
//! request into a service call and answers with the typed bodies of [`crate::api`]; the
//! service's errors become `{"error": …}` in one place ([`error`]). Pushes are in [`push`],
//! deployments in [`deployments`], the route table (router, roles, `/openapi.json`) in
//! [`routes`].

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::api::{self, Policy, VersionRef};
use crate::service::{self, Caller, Delete, PolicyUpdate};

mod deployments;
mod error;
mod push;
mod routes;

pub use error::ApiError;
pub(crate) use error::ApiResult;
pub use routes::{ROUTES, RouteDoc, openapi_document};

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

fn subject_name(s: &str) -> ApiResult<&str> {
    Ok(service::check_subject(s)?)
}

/// A version named in a path: a positive number or `latest` (`None`).
fn version_number(v: &str) -> ApiResult<Option<i64>> {
    api::parse_version(v).map_err(ApiError::bad_request)
}

pub(crate) async fn get_global_config(State(state): State<AppState>) -> ApiResult<Json<Policy>> {
    Ok(Json(state.global_config().await?.into()))
}

fn parse_config(body: &Bytes) -> ApiResult<PolicyUpdate> {
    let u: api::PolicyUpdate = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "body must be {{\"mode\": ..., \"categories\": [...], \"deployed\": \"warn\"|\"enforce\"}} (each may be left out): {e}"
        ))
    })?;
    let typed = |e: protoreg_store::UnknownName| ApiError::bad_request(e.to_string());
    Ok(PolicyUpdate {
        mode: u.mode.map(|m| m.parse()).transpose().map_err(typed)?,
        categories: u.categories,
        deployed: u.deployed.map(|d| d.parse()).transpose().map_err(typed)?,
    })
}

pub(crate) async fn put_global_config(
    State(state): State<AppState>,
    body: Bytes,
) -> ApiResult<Json<Policy>> {
    let update = parse_config(&body)?;
    Ok(Json(state.set_policy("", update).await?.into()))
}

pub(crate) async fn get_subject_config(
    State(state): State<AppState>,
    Path(subject): Path<String>,
) -> ApiResult<Json<Policy>> {
    let subject = subject_name(&subject)?;
    Ok(Json(state.effective_config(subject).await?.into()))
}

pub(crate) async fn put_subject_config(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Policy>> {
    let subject = subject_name(&subject)?;
    let update = parse_config(&body)?;
    Ok(Json(state.set_policy(subject, update).await?.into()))
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
    let config = state.effective_config(subject).await?;
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
    Ok(Json(state.refusals(subject).await?))
}

pub(crate) async fn get_version(
    State(state): State<AppState>,
    Path((subject, version)): Path<(String, String)>,
) -> ApiResult<Json<api::VersionBody>> {
    let subject = subject_name(&subject)?;
    let (v, _) = state
        .load_version(subject, version_number(&version)?)
        .await?;
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
    let (v, descriptor) = state
        .load_version(subject, version_number(&version)?)
        .await?;
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
    let (v, _) = state
        .load_version(subject, version_number(&version)?)
        .await?;
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
    let (from, to) = (version_number(&q.from)?, version_number(&q.to)?);
    Ok(Json(state.diff(subject, from, to).await?))
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
    axum::Extension(caller): axum::Extension<Caller>,
) -> ApiResult<Json<api::DeleteReply>> {
    let subject = subject_name(&subject)?;
    let n = version_number(&version)?
        .ok_or_else(|| ApiError::bad_request("delete needs a version number"))?;
    let how = Delete {
        permanent: q.permanent,
        force: q.force,
    };
    state.delete_version(subject, n, how, &caller).await?;
    Ok(Json(api::DeleteReply {
        subject: subject.to_string(),
        version: n,
        deleted: if q.permanent { "permanent" } else { "soft" }.into(),
    }))
}

pub(crate) async fn get_dependents(
    State(state): State<AppState>,
    Path((subject, version)): Path<(String, String)>,
    Query(page): Query<Page>,
    uri: axum::http::Uri,
) -> ApiResult<Response> {
    let subject = subject_name(&subject)?;
    let n = version_number(&version)?;
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
