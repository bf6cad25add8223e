//! Subjects, versions and schema ids: registering, looking up, reading and deleting, and
//! the modes that allow writes.

use super::*;

/// The Confluent mode in force for `subject`.
pub(super) async fn effective_mode(state: &AppState, subject: &str) -> ApiResult<String> {
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
pub(super) async fn check_writable(
    state: &AppState,
    subject: &str,
    explicit: bool,
) -> ApiResult<()> {
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

pub(super) async fn list_subjects(
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

pub(super) async fn list_versions(
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
pub(super) async fn find_version(
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

pub(super) async fn get_version(
    State(state): State<AppState>,
    Path((subject, version)): Path<(String, String)>,
    Query(q): Query<SchemaQuery>,
) -> ApiResult<Json<Value>> {
    let subject = subject_param(&subject)?;
    let meta = find_version(&state, &subject, &version, q.deleted).await?;
    let serialized = q.format.as_deref() == Some("serialized");
    Ok(Json(schema_view(&state, &meta, serialized).await?))
}

pub(super) async fn get_version_schema(
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

pub(super) async fn referenced_by(
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

pub(super) async fn register(
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
        accept: None,
    };
    let meta = match create_version(&state, &subject, incoming, parsed.explicit).await? {
        Created::New(v, _, _) | Created::Unchanged(v) => v,
    };
    Ok(Json(registered(&meta)))
}

pub(super) async fn lookup(
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
pub(super) async fn check_unreferenced(state: &AppState, subject: &str, n: i64) -> ApiResult<()> {
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

pub(super) async fn delete_subject(
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

pub(super) async fn delete_version(
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
/// The versions using schema id `id` (40403 when it is not a number or none does).
async fn uses_of_id(
    state: &AppState,
    id: &str,
) -> ApiResult<(i64, Vec<protoreg_store::SchemaUse>)> {
    let not_found = || {
        err(
            StatusCode::NOT_FOUND,
            "schema_not_found",
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
) -> ApiResult<VersionMeta> {
    let not_found = || {
        err(
            StatusCode::NOT_FOUND,
            "schema_not_found",
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

pub(super) async fn schema_versions(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<SchemaQuery>,
) -> ApiResult<Json<Vec<Value>>> {
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
) -> ApiResult<Json<Vec<String>>> {
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
