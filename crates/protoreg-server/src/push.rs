//! Pushes and dry runs: request bodies (gzip included), dependencies, compile, policy
//! check, commit, and the impact on dependents.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use protoreg_check::Finding;
use protoreg_schema::Image;
use protoreg_store::{Config, DepRef, Explicit, NewVersion, VersionMeta};
use serde_json::json;

use crate::api::{
    CheckReply, Dep, DiagnosticBody, FindingBody, Impact, PushReply, PushRequest, VersionRef,
};
use crate::deps::{self, DepError};
use crate::error::{ApiError, ApiResult};
use crate::v1::{effective_config, subject_name};
use crate::{AppState, domain};

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

fn parse_push(body: &[u8]) -> ApiResult<PushRequest> {
    let b: PushRequest = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "body must be {{\"files\": {{\"path.proto\": \"text\"}}, \"labels\": {{}}, \"deps\": [\"subject@N\"]}}: {e}"
        ))
    })?;
    domain::check_labels(&b.labels).map_err(ApiError::bad_request)?;
    if let Some(k) = b.labels.keys().find(|k| k.starts_with("protoreg.")) {
        return Err(ApiError::bad_request(format!(
            "label {k:?}: labels beginning with \"protoreg.\" are set by the registry"
        )));
    }
    Ok(b)
}

pub(crate) fn push_error(e: domain::PushError) -> ApiError {
    match e {
        domain::PushError::BadRequest(m) => ApiError::bad_request(m),
        domain::PushError::Compile(diags) => {
            let details: Vec<DiagnosticBody> = diags.iter().map(DiagnosticBody::from).collect();
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

pub(crate) fn dep_error(e: DepError) -> ApiError {
    match e {
        DepError::BadRequest(m) => ApiError::bad_request(m),
        DepError::NotFound(m) => ApiError::not_found(m),
        DepError::Cycle(_) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "dependency_cycle",
            e.to_string(),
        ),
        DepError::Conflict {
            ref path,
            ref first,
            ref second,
        } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "dependency_conflict",
            e.to_string(),
        )
        .details(json!({"path": path, "providers": [first, second]})),
        DepError::Store(e) => e.into(),
    }
}

/// CPU-bound work (compiles, checks, diffs) off the async workers, on a thread of lower
/// scheduling priority: a large push then takes the cores only when reads leave them idle.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(move || {
        lower_thread_priority();
        f()
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))
}

/// Nice level of the threads that run [`blocking`] work.
const BACKGROUND_NICE: libc::c_int = 10;

/// Makes the calling thread `BACKGROUND_NICE` (Linux schedules threads, so this leaves the
/// async workers alone). The blocking pool's threads only run such work, so it is not
/// undone.
fn lower_thread_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls on the calling thread's own id; no memory is shared.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        if libc::getpriority(libc::PRIO_PROCESS, tid) < BACKGROUND_NICE {
            libc::setpriority(libc::PRIO_PROCESS, tid, BACKGROUND_NICE);
        }
    }
}

/// The decoded images of a subject's versions a push is checked against (decoded once and
/// kept: versions are immutable).
async fn prior_images(
    state: &AppState,
    subject: &str,
    live: &[VersionMeta],
    mode: &str,
) -> ApiResult<Vec<Arc<Image>>> {
    let numbers: Vec<i64> = live.iter().map(|v| v.version).collect();
    let mut out = Vec::new();
    for n in domain::versions_to_check(mode, &numbers) {
        let digest = &live
            .iter()
            .find(|v| v.version == n)
            .expect("chosen from live")
            .digest;
        let image = version_image(state, subject, n, digest)
            .await?
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "contention",
                    format!("{subject}@{n} was deleted during the push; try again"),
                )
            })?;
        out.push(image);
    }
    Ok(out)
}

/// Breaking changes of `current` against `previous` under `config`'s categories, off the
/// async workers.
pub(crate) async fn breaking(
    current: Arc<Image>,
    previous: Arc<Image>,
    config: Config,
) -> ApiResult<Vec<Finding>> {
    blocking(move || domain::breaking(&current, &previous, &config))
        .await?
        .map_err(|e| ApiError::internal("check_failed", e))
}

/// A live version's decoded image (kept in the image cache: versions are immutable), or
/// `None` when the version is gone.
pub(crate) async fn version_image(
    state: &AppState,
    subject: &str,
    n: i64,
    digest: &str,
) -> ApiResult<Option<Arc<Image>>> {
    if let Some(image) = state.images.get(subject, n, digest) {
        return Ok(Some(image));
    }
    let Some(stored) = state.store.descriptor(subject, n).await? else {
        return Ok(None);
    };
    let origin = format!("{subject}@{n}");
    let size = stored.bytes.len();
    let image = blocking(move || domain::stored_image(&stored, &origin))
        .await?
        .map_err(|e| ApiError::internal("check_failed", e.to_string()))?;
    Ok(Some(state.images.put(
        subject,
        n,
        digest,
        size,
        Arc::new(image),
    )))
}

fn incompatible(findings: &[Finding], config: &Config) -> ApiError {
    let list: Vec<FindingBody> = findings.iter().map(FindingBody::from).collect();
    ApiError::new(
        StatusCode::CONFLICT,
        "incompatible",
        format!(
            "{} breaking change(s) under policy {} {:?}",
            list.len(),
            config.mode,
            config.categories
        ),
    )
    .details(json!({"mode": config.mode, "categories": config.categories, "findings": list}))
}

/// A push's answer: the version and what it does to the versions that depend on its subject.
fn version_reply(
    v: &VersionMeta,
    dependents: Option<Impact>,
    accepted: Option<&protoreg_store::AcceptedBreak>,
) -> PushReply {
    PushReply {
        subject: v.subject.clone(),
        version: v.version,
        digest: v.digest.clone(),
        accepted_break: accepted.map(crate::api::AcceptedBreakBody::from_store),
        deployed: Vec::new(),
        deps: v.deps.iter().map(Dep::from).collect(),
        dependents,
    }
}

async fn impact(
    state: &AppState,
    subject: &str,
    files: &BTreeMap<String, String>,
    deps: &[DepRef],
) -> ApiResult<Impact> {
    let (checked, broken) = deps::impact(&state.store, subject, files, deps)
        .await
        .map_err(dep_error)?;
    Ok(Impact {
        checked: checked
            .iter()
            .map(|v| VersionRef {
                subject: v.subject.clone(),
                version: v.version,
            })
            .collect(),
        broken,
    })
}

/// A push or dry run as read: its files, labels and resolved dependencies.
pub(crate) struct Incoming {
    pub(crate) files: Arc<BTreeMap<String, String>>,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) deps: Vec<DepRef>,
    /// Why breaking changes are to be let through, and who says so (an admin).
    pub(crate) accept: Option<Acceptance>,
}

/// A breaking push let through on purpose.
#[derive(Debug, Clone)]
pub(crate) struct Acceptance {
    pub reason: String,
    pub by: String,
}

/// The label a version records the built-in schemas it used under (labels beginning with
/// `protoreg.` are the registry's own: a push may not set them).
pub(crate) const BUILTINS_LABEL: &str = "protoreg.builtins";

/// The longest reason an accepted break may carry.
const MAX_REASON: usize = 2000;

/// Inflates and parses the body and resolves its dependencies.
async fn read_push(
    state: &AppState,
    subject: &str,
    headers: &HeaderMap,
    body: Bytes,
    caller: Option<&crate::Caller>,
) -> ApiResult<Incoming> {
    let body = inflate(headers, body, state.limits.max_inflated)?;
    let b = parse_push(&body)?;
    drop(body);
    let accept = match (&b.accept_breaking, caller) {
        (None, _) => None,
        (Some(a), _) if a.reason.trim().is_empty() || a.reason.len() > MAX_REASON => {
            return Err(ApiError::bad_request(format!(
                "accept_breaking.reason must say why the break is acceptable (1-{MAX_REASON} bytes)"
            )));
        }
        (Some(a), Some(c)) if c.role >= crate::Role::Admin => Some(Acceptance {
            reason: a.reason.trim().to_string(),
            by: c.who.clone(),
        }),
        (Some(_), _) => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "accepting breaking changes needs the admin role",
            ));
        }
    };
    let deps = deps::resolve(&state.store, subject, &b.deps)
        .await
        .map_err(dep_error)?;
    Ok(Incoming {
        files: Arc::new(b.files),
        labels: b.labels,
        deps,
        accept,
    })
}

/// Compiles a push's files against its dependencies' closure (off the async workers).
pub(crate) async fn compile_push(
    state: &AppState,
    subject: &str,
    files: &Arc<BTreeMap<String, String>>,
    deps: &[DepRef],
) -> ApiResult<domain::Compiled> {
    let imports = state
        .closures
        .get(&state.store, subject, deps)
        .await
        .map_err(dep_error)?;
    let files = files.clone();
    blocking(move || domain::compile(&files, &imports))
        .await?
        .map_err(push_error)
}

/// What a policy check found, and the live versions (number, digest) it was checked against.
type Checked = (Vec<(i64, String)>, Vec<Finding>);

/// (number, digest) of live versions: what a check was made against.
fn checked_against(live: &[VersionMeta]) -> Vec<(i64, String)> {
    live.iter().map(|v| (v.version, v.digest.clone())).collect()
}

/// Checks `image` against the live versions `live` as the policy's mode says.
async fn check_live(
    state: &AppState,
    subject: &str,
    live: &[VersionMeta],
    image: &Arc<Image>,
    config: &Config,
) -> ApiResult<Checked> {
    let key = checked_against(live);
    let against = prior_images(state, subject, live, &config.mode).await?;
    let (image, config) = (image.clone(), config.clone());
    let findings = blocking(move || domain::check_policy(&image, &against, &config))
        .await?
        .map_err(|e| ApiError::internal("check_failed", e))?;
    Ok((key, findings))
}

/// The findings of `image` against `versions` (as the policy's mode picks among them).
pub(crate) async fn check_versions(
    state: &AppState,
    subject: &str,
    versions: &[VersionMeta],
    image: &Arc<Image>,
    config: &Config,
) -> ApiResult<Vec<Finding>> {
    Ok(check_live(state, subject, versions, image, config).await?.1)
}

/// [`check_live`] against the versions there now.
async fn check_against_snapshot(
    state: &AppState,
    subject: &str,
    image: &Arc<Image>,
    config: &Config,
) -> ApiResult<Checked> {
    let snap = state.store.snapshot(subject).await?;
    check_live(state, subject, &snap.live, image, config).await
}

/// Pushes on one subject retry this often when they lose a race with another push.
const MAX_ATTEMPTS: u32 = 60;

/// What [`create_version`] came to.
pub(crate) enum Created {
    /// A new version, the break accepted with it (if any), and the deployments of other
    /// versions it would break (a warning under `deployed: warn`).
    New(
        VersionMeta,
        Option<protoreg_store::AcceptedBreak>,
        Vec<crate::api::DeployedWarning>,
    ),
    /// The content is already the subject's latest version: nothing was created.
    Unchanged(VersionMeta),
}

/// Creates the next version of `subject` from `incoming` when the subject's policy accepts
/// it: compile against the dependencies' closure, check against the live versions, commit
/// (retrying when another push wins the race). The `/v1` and Confluent front doors share it.
pub(crate) async fn create_version(
    state: &AppState,
    subject: &str,
    incoming: Incoming,
    explicit: Explicit,
) -> ApiResult<Created> {
    let started = std::time::Instant::now();
    let Incoming {
        files,
        labels,
        deps,
        accept,
    } = incoming;
    let digest = protoreg_store::version_digest(&files, &deps);
    let latest = state.store.version_ref(subject, None).await?;
    // The same content as the latest version: nothing to compile.
    if let Some((n, latest)) = &latest
        && *latest == digest
        && let Some(meta) = state.store.version_meta(subject, Some(*n), false).await?
    {
        state.metrics.push("unchanged");
        return Ok(Created::Unchanged(meta));
    }
    let config = effective_config(&state.store, subject).await?;
    // While the files compile: the texts the store lacks are compressed, and the latest
    // version's image is decoded when the check needs it and it is not in memory (after a
    // restart, say).
    let prefetch = async {
        if let (Some((n, d)), false) = (&latest, config.mode == "NONE")
            && let Err(e) = version_image(state, subject, *n, d).await
        {
            // The check reads it again, and answers for it.
            tracing::debug!(subject, error = ?e, "could not decode the latest version ahead");
        }
        Ok(())
    };
    // A push that does not compile is answered at once.
    let (compiled, texts, ()) = tokio::try_join!(
        compile_push(state, subject, &files, &deps),
        async { Ok(state.store.pack_texts(files.clone()).await?) },
        prefetch
    )?;
    let compiled_at = started.elapsed();
    let mut labels = labels;
    // Which built-in schemas (google/api, buf/validate) the imports resolved to.
    if !compiled.image.builtins.is_empty() {
        labels.insert(
            BUILTINS_LABEL.to_string(),
            format!(
                "{}: {}",
                protoreg_schema::builtin::VERSION,
                compiled.image.builtins.join(", ")
            ),
        );
    }
    let refusal_labels = labels.clone();
    let image = Arc::new(compiled.image);
    let descriptor_len = compiled.descriptor.len();
    // Storing the blobs and checking against the versions there now run side by side.
    let prepare = state.store.prepare_with(
        subject,
        NewVersion {
            files: (*files).clone(),
            descriptor: compiled.descriptor,
            labels,
            deps: deps.clone(),
            explicit,
        },
        texts,
    );
    let first_check = check_against_snapshot(state, subject, &image, &config);
    let deployed = crate::deployments::deployed_impact(state, subject, &image, &config);
    let (prepared, first, deployed) = tokio::join!(prepare, first_check, deployed);
    let mut prepared = prepared?;
    let deployed = deployed?;
    if config.deployed == "enforce" && !deployed.is_empty() {
        state.metrics.push("refused");
        let messages: Vec<&str> = deployed.iter().map(|w| w.message.as_str()).collect();
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "breaks_deployed",
            format!(
                "the subject's policy says `deployed: enforce`, and {}",
                messages.join("; ")
            ),
        )
        .details(json!({"deployed": deployed})));
    }
    // What the check found, and the live versions (number, digest) it was checked against.
    let mut checked: Option<Checked> = Some(first?);
    for attempt in 0..MAX_ATTEMPTS {
        let snap = state.store.snapshot(subject).await?;
        if let Some(latest) = snap.live.last()
            && latest.digest == prepared.digest
            && let Some(meta) = state
                .store
                .version_meta(subject, Some(latest.version), false)
                .await?
        {
            state.metrics.push("unchanged");
            return Ok(Created::Unchanged(meta));
        }
        // Check again only when the versions before this one changed.
        if checked
            .as_ref()
            .is_none_or(|(k, _)| *k != checked_against(&snap.live))
        {
            checked = Some(check_live(state, subject, &snap.live, &image, &config).await?);
        }
        prepared.accepted = None;
        if let (Some((_, findings)), Some(a)) = (&checked, &accept)
            && !findings.is_empty()
        {
            let bodies: Vec<FindingBody> = findings.iter().map(FindingBody::from).collect();
            prepared.accepted = Some(protoreg_store::AcceptedBreak {
                reason: a.reason.clone(),
                by: a.by.clone(),
                findings: json!(bodies),
            });
        } else if let Some((_, findings)) = &checked
            && !findings.is_empty()
        {
            state.metrics.push("refused");
            let bodies: Vec<FindingBody> = findings.iter().map(FindingBody::from).collect();
            // The log is for people browsing; failing to write it does not change the answer.
            if let Err(e) = state
                .store
                .record_refusal(subject, &refusal_labels, &json!(config), &json!(bodies))
                .await
            {
                tracing::warn!(subject, error = %e, "could not log a refused push");
            }
            return Err(incompatible(findings, &config));
        }
        match state.store.commit(subject, &snap, &prepared).await {
            Ok(Some(v)) => {
                state.metrics.push(if prepared.accepted.is_some() {
                    "accepted_breaking"
                } else {
                    "accepted"
                });
                // Read your writes on this replica at once (others hear of it on commit).
                state.cache.changed(subject);
                // The next push is checked against this version: keep its image.
                state
                    .images
                    .put(subject, v.version, &v.digest, descriptor_len, image.clone());
                // The version's default diff page (previous → this), ready before it is
                // asked: under BACKWARD the check just made is that diff.
                let known = match (snap.live.last(), &checked) {
                    (Some(prev), Some((_, findings))) if config.mode == "BACKWARD" => {
                        Some(crate::diffs::Known {
                            from: (prev.version, prev.digest.clone()),
                            findings,
                        })
                    }
                    _ => None,
                };
                crate::diffs::precompute(
                    state,
                    subject,
                    (v.version, v.digest.clone()),
                    &config,
                    known,
                );
                tracing::info!(
                    subject,
                    version = v.version,
                    schema_id = v.schema_id,
                    files = files.len(),
                    compile_ms = compiled_at.as_millis() as u64,
                    store_and_check_ms = (started.elapsed() - compiled_at).as_millis() as u64,
                    accepted_break = prepared.accepted.is_some(),
                    "version created"
                );
                return Ok(Created::New(v, prepared.accepted.clone(), deployed));
            }
            Ok(None) => {}
            Err(protoreg_store::StoreError::Corrupt(m)) if m.contains("was deleted during") => {
                return Err(ApiError::new(StatusCode::CONFLICT, "dependency_deleted", m));
            }
            Err(protoreg_store::StoreError::Invalid(m)) => {
                return Err(ApiError::new(StatusCode::CONFLICT, "import_conflict", m));
            }
            Err(e) => return Err(e.into()),
        }
        tokio::time::sleep(Duration::from_millis(2 + u64::from(attempt % 16) * 3)).await;
    }
    Err(ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "contention",
        format!("too much contention pushing to {subject:?}; try again"),
    )
    .retry_after(1))
}

pub(crate) async fn push(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    caller: Option<axum::Extension<crate::Caller>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let subject = subject_name(&subject)?.to_string();
    let caller = caller.map(|axum::Extension(c)| c);
    let incoming = read_push(&state, &subject, &headers, body, caller.as_ref()).await?;
    let (files, deps) = (incoming.files.clone(), incoming.deps.clone());
    match create_version(&state, &subject, incoming, Explicit::default()).await? {
        Created::Unchanged(latest) => Ok(Json(version_reply(&latest, None, None)).into_response()),
        Created::New(v, accepted, deployed) => {
            let impact = impact(&state, &subject, &files, &deps).await?;
            let mut reply = version_reply(&v, Some(impact), accepted.as_ref());
            reply.deployed = deployed;
            Ok((StatusCode::CREATED, Json(reply)).into_response())
        }
    }
}

pub(crate) async fn check(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    caller: Option<axum::Extension<crate::Caller>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<CheckReply>> {
    let subject = subject_name(&subject)?.to_string();
    let caller = caller.map(|axum::Extension(c)| c);
    let Incoming { files, deps, .. } =
        read_push(&state, &subject, &headers, body, caller.as_ref()).await?;
    let compiled = compile_push(&state, &subject, &files, &deps).await?;
    let config = effective_config(&state.store, &subject).await?;
    let image = Arc::new(compiled.image);
    let (_, findings) = check_against_snapshot(&state, &subject, &image, &config).await?;
    let dependents = impact(&state, &subject, &files, &deps).await?;
    let deployed = crate::deployments::deployed_impact(&state, &subject, &image, &config).await?;
    Ok(Json(CheckReply {
        deployed,
        compatible: findings.is_empty(),
        findings: findings.iter().map(FindingBody::from).collect(),
        deps: deps.iter().map(Dep::from).collect(),
        dependents,
    }))
}
