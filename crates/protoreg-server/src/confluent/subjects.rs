//! Subjects, versions and schema ids: registering, looking up, reading and deleting, and
//! the modes that allow writes.

use super::*;

pub(super) async fn list_subjects(
    State(state): State<AppState>,
    Query(q): Query<SchemaQuery>,
) -> CfResult<Json<Vec<String>>> {
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

pub(super) async fn list_versions(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    Query(q): Query<SchemaQuery>,
) -> CfResult<Json<Vec<i64>>> {
    let subject = subject_param(&subject)?;
    let versions = state.store.versions(&subject, q.deleted).await?;
    if versions.is_empty() {
        return Err(subject_not_found(&subject));
    }
    Ok(Json(versions.iter().map(|v| v.version).collect()))
}

/// The version `version` of `subject`, with Confluent's not-found errors.
pub(super) async fn find_version(
    state: &AppState,
    subject: &str,
    version: &str,
    include_deleted: bool,
) -> CfResult<VersionMeta> {
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
        40402,
        format!("Version {version} not found."),
    ))
}

pub(super) async fn get_version(
    State(state): State<AppState>,
    Path((subject, version)): Path<(String, String)>,
    Query(q): Query<SchemaQuery>,
) -> CfResult<Json<Value>> {
    let subject = subject_param(&subject)?;
    let meta = find_version(&state, &subject, &version, q.deleted).await?;
    let serialized = q.format.as_deref() == Some("serialized");
    Ok(Json(schema_view(&state, &meta, serialized).await?))
}

pub(super) async fn get_version_schema(
    State(state): State<AppState>,
    Path((subject, version)): Path<(String, String)>,
    Query(q): Query<SchemaQuery>,
) -> CfResult<Response> {
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

pub(super) async fn referenced_by(
    State(state): State<AppState>,
    Path((subject, version)): Path<(String, String)>,
) -> CfResult<Json<Vec<i64>>> {
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

pub(super) async fn register(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    Query(q): Query<SchemaQuery>,
    body: Bytes,
) -> CfResult<Json<Value>> {
    let subject = subject_param(&subject)?;
    let parsed = parse_schema(&state, &subject, &body, q.normalize).await?;
    let push = service::Push {
        explicit: parsed.explicit,
        ..service::Push::new(parsed.files, parsed.deps)
    };
    let pushed = state.register(&subject, push).await?;
    Ok(Json(registered(&pushed.version)))
}

pub(super) async fn lookup(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    Query(q): Query<SchemaQuery>,
    body: Bytes,
) -> CfResult<Json<Value>> {
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
        None => Err(err(StatusCode::NOT_FOUND, 40403, "Schema not found")),
    }
}

pub(super) async fn delete_subject(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    Query(q): Query<SchemaQuery>,
    axum::Extension(caller): axum::Extension<service::Caller>,
) -> CfResult<Json<Vec<i64>>> {
    let subject = subject_param(&subject)?;
    let how = service::Delete {
        permanent: q.permanent,
        force: q.force,
    };
    match state.delete_subject(&subject, how, &caller).await {
        Err(service::Error::NotFound { .. }) => Err(subject_not_found(&subject)),
        other => Ok(Json(other?)),
    }
}

pub(super) async fn delete_version(
    State(state): State<AppState>,
    Path((subject, version)): Path<(String, String)>,
    Query(q): Query<SchemaQuery>,
    axum::Extension(caller): axum::Extension<service::Caller>,
) -> CfResult<Json<i64>> {
    let subject = subject_param(&subject)?;
    let meta = find_version(&state, &subject, &version, q.permanent).await?;
    let how = service::Delete {
        permanent: q.permanent,
        force: q.force,
    };
    let deleted = state
        .delete_version(&subject, meta.version, how, &caller)
        .await?;
    Ok(Json(deleted.version))
}

/// The version a schema id is read through: under `subject` when asked, else the first.
/// The versions using schema id `id` (40403 when it is not a number or none does).
async fn uses_of_id(state: &AppState, id: &str) -> CfResult<(i64, Vec<protoreg_store::SchemaUse>)> {
    let not_found = || {
        err(
            StatusCode::NOT_FOUND,
            40403,
            format!("Schema {id} not found"),
        )
    };
    let n: i64 = id.parse().map_err(|_| not_found())?;
    let uses = state.store.schema_uses(n).await?;
    if uses.is_empty() {
        return Err(not_found());
    }
    Ok((n, uses))
}

pub(super) async fn version_of_id(
    state: &AppState,
    id: &str,
    subject: Option<&str>,
    serialized: bool,
) -> CfResult<VersionMeta> {
    let not_found = || {
        err(
            StatusCode::NOT_FOUND,
            40403,
            format!("Schema {id} not found"),
        )
    };
    let (id, uses) = uses_of_id(state, id).await?;
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

pub(super) async fn get_schema_by_id(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<SchemaQuery>,
) -> CfResult<Json<Value>> {
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

pub(super) async fn schema_versions(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<SchemaQuery>,
) -> CfResult<Json<Vec<Value>>> {
    let (_, uses) = uses_of_id(&state, &id).await?;
    Ok(Json(
        uses.into_iter()
            .filter(|(_, _, deleted)| q.deleted || !deleted)
            .map(|(s, n, _)| json!({"subject": s, "version": n}))
            .collect(),
    ))
}

pub(super) async fn schema_subjects(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<SchemaQuery>,
) -> CfResult<Json<Vec<String>>> {
    let (_, uses) = uses_of_id(&state, &id).await?;
    let mut out: Vec<String> = Vec::new();
    for (s, _, deleted) in uses {
        if (q.deleted || !deleted) && !out.contains(&s) {
            out.push(s);
        }
    }
    out.sort();
    Ok(Json(out))
}
