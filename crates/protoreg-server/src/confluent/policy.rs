//! Compatibility levels (onto protoreg policies), compatibility tests, and modes.

use super::*;

/// `{"compatibility": LEVEL}` (also accepted: `compatibilityLevel`).
pub(super) fn parse_level(body: &Bytes) -> ApiResult<String> {
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
pub(super) async fn set_level(
    state: &AppState,
    scope: &str,
    level: String,
) -> ApiResult<Json<Value>> {
    let current = match state.store.config(scope).await? {
        Some(c) => c,
        None => effective_config(&state.store, scope).await?,
    };
    let config = Config {
        mode: level.clone(),
        categories: current.categories,
        deployed: current.deployed,
    };
    state.store.set_config(scope, &config).await?;
    Ok(Json(json!({"compatibility": level})))
}

pub(super) async fn get_global_config(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let c = effective_config(&state.store, "").await?;
    Ok(Json(json!({"compatibilityLevel": c.mode})))
}

pub(super) async fn put_global_config(
    State(state): State<AppState>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    set_level(&state, "", parse_level(&body)?).await
}

/// Back to the default policy; answers the level it had.
pub(super) async fn delete_global_config(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let had = effective_config(&state.store, "").await?;
    state.store.delete_config("").await?;
    Ok(Json(json!({"compatibilityLevel": had.mode})))
}

pub(super) async fn get_subject_config(
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
        None => Err(not_configured(
            "subject_compatibility_not_configured",
            "compatibility",
            &subject,
        )),
    }
}

pub(super) async fn put_subject_config(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let subject = subject_param(&subject)?;
    set_level(&state, &subject, parse_level(&body)?).await
}

pub(super) async fn delete_subject_config(
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
pub(super) async fn test_compatibility(
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

pub(super) async fn test_compatibility_version(
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

pub(super) async fn test_compatibility_all(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    Query(q): Query<SchemaQuery>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let subject = subject_param(&subject)?;
    test_compatibility(&state, &subject, None, &q, &body).await
}

pub(super) fn parse_mode(body: &Bytes) -> ApiResult<String> {
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
pub(super) async fn check_import(
    state: &AppState,
    scope: &str,
    mode: &str,
    force: bool,
) -> ApiResult<()> {
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

pub(super) async fn get_global_mode(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"mode": effective_mode(&state, "").await?})))
}

pub(super) async fn put_global_mode(
    State(state): State<AppState>,
    Query(q): Query<SchemaQuery>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let mode = parse_mode(&body)?;
    check_import(&state, "", &mode, q.force).await?;
    state.store.set_mode("", &mode).await?;
    Ok(Json(json!({"mode": mode})))
}

pub(super) async fn get_subject_mode(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    Query(q): Query<SchemaQuery>,
) -> ApiResult<Json<Value>> {
    let subject = subject_param(&subject)?;
    match state.store.mode(&subject).await? {
        Some(m) => Ok(Json(json!({"mode": m}))),
        None if q.default_to_global => Ok(Json(json!({"mode": effective_mode(&state, "").await?}))),
        None => Err(not_configured(
            "subject_mode_not_configured",
            "mode",
            &subject,
        )),
    }
}

pub(super) async fn put_subject_mode(
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

pub(super) async fn delete_subject_mode(
    State(state): State<AppState>,
    Path(subject): Path<String>,
) -> ApiResult<Json<Value>> {
    let subject = subject_param(&subject)?;
    match state.store.delete_mode(&subject).await? {
        Some(m) => Ok(Json(json!({"mode": m}))),
        None => Err(not_configured(
            "subject_mode_not_configured",
            "mode",
            &subject,
        )),
    }
}

/// 40408/40409: the subject has no `what` (compatibility, mode) of its own.
fn not_configured(code: &'static str, what: &str, subject: &str) -> ApiError {
    err(
        StatusCode::NOT_FOUND,
        code,
        format!("Subject '{subject}' does not have subject-level {what} configured"),
    )
}
