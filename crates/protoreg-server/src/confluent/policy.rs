//! Compatibility levels (onto protoreg policies), compatibility tests, and modes.

use protoreg_store::{Mode, WriteMode};

use super::*;

/// `{"compatibility": LEVEL}` (also accepted: `compatibilityLevel`).
pub(super) fn parse_level(body: &Bytes) -> CfResult<Mode> {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let level = v["compatibility"]
        .as_str()
        .or_else(|| v["compatibilityLevel"].as_str())
        .unwrap_or_default()
        .to_ascii_uppercase();
    level.parse().map_err(|_| {
        err(
            StatusCode::UNPROCESSABLE_ENTITY,
            42203,
            format!(
                "Invalid compatibility level. Valid values are {}",
                Mode::names()
            ),
        )
    })
}

/// Sets a scope's level, keeping its rule categories (or the effective ones).
pub(super) async fn set_level(state: &AppState, scope: &str, level: Mode) -> CfResult<Json<Value>> {
    let update = service::PolicyUpdate {
        mode: Some(level),
        ..Default::default()
    };
    state.set_policy(scope, update).await?;
    Ok(Json(json!({"compatibility": level})))
}

pub(super) async fn get_global_config(State(state): State<AppState>) -> CfResult<Json<Value>> {
    let c = state.global_config().await?;
    Ok(Json(json!({"compatibilityLevel": c.mode})))
}

pub(super) async fn put_global_config(
    State(state): State<AppState>,
    body: Bytes,
) -> CfResult<Json<Value>> {
    set_level(&state, "", parse_level(&body)?).await
}

/// Back to the default policy; answers the level it had.
pub(super) async fn delete_global_config(State(state): State<AppState>) -> CfResult<Json<Value>> {
    let had = state.global_config().await?;
    state.delete_policy("").await?;
    Ok(Json(json!({"compatibilityLevel": had.mode})))
}

pub(super) async fn get_subject_config(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    Query(q): Query<SchemaQuery>,
) -> CfResult<Json<Value>> {
    let subject = subject_param(&subject)?;
    match state.store.config(&subject).await? {
        Some(c) => Ok(Json(json!({"compatibilityLevel": c.mode}))),
        None if q.default_to_global => {
            let c = state.global_config().await?;
            Ok(Json(json!({"compatibilityLevel": c.mode})))
        }
        None => Err(not_configured(40408, "compatibility", &subject)),
    }
}

pub(super) async fn put_subject_config(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    body: Bytes,
) -> CfResult<Json<Value>> {
    let subject = subject_param(&subject)?;
    set_level(&state, &subject, parse_level(&body)?).await
}

pub(super) async fn delete_subject_config(
    State(state): State<AppState>,
    Path(subject): Path<String>,
) -> CfResult<Json<Value>> {
    let subject = subject_param(&subject)?;
    match state.delete_policy(&subject).await? {
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
) -> CfResult<Json<Value>> {
    let parsed = parse_schema(state, subject, body, q.normalize).await?;
    let against = match version {
        Some(v) => Some(find_version(state, subject, v, false).await?),
        None => None,
    };
    let findings = state
        .test_compatibility(subject, parsed.files, &parsed.deps, against)
        .await?;
    let mut reply = json!({"is_compatible": findings.is_empty()});
    if q.verbose {
        let messages: Vec<String> = findings.iter().map(finding_line).collect();
        reply["messages"] = json!(messages);
    }
    Ok(Json(reply))
}

pub(super) async fn test_compatibility_version(
    State(state): State<AppState>,
    Path((subject, version)): Path<(String, String)>,
    Query(q): Query<SchemaQuery>,
    body: Bytes,
) -> CfResult<Json<Value>> {
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
) -> CfResult<Json<Value>> {
    let subject = subject_param(&subject)?;
    test_compatibility(&state, &subject, None, &q, &body).await
}

pub(super) fn parse_mode(body: &Bytes) -> CfResult<WriteMode> {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let mode = v["mode"].as_str().unwrap_or_default().to_ascii_uppercase();
    mode.parse().map_err(|_| {
        err(
            StatusCode::UNPROCESSABLE_ENTITY,
            42204,
            format!("Invalid mode. Valid values are {}", WriteMode::names()),
        )
    })
}

pub(super) async fn get_global_mode(State(state): State<AppState>) -> CfResult<Json<Value>> {
    Ok(Json(json!({"mode": state.write_mode("").await?})))
}

pub(super) async fn put_global_mode(
    State(state): State<AppState>,
    Query(q): Query<SchemaQuery>,
    body: Bytes,
) -> CfResult<Json<Value>> {
    let mode = parse_mode(&body)?;
    state.set_write_mode("", mode, q.force).await?;
    Ok(Json(json!({"mode": mode})))
}

pub(super) async fn get_subject_mode(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    Query(q): Query<SchemaQuery>,
) -> CfResult<Json<Value>> {
    let subject = subject_param(&subject)?;
    match state.store.mode(&subject).await? {
        Some(m) => Ok(Json(json!({"mode": m}))),
        None if q.default_to_global => Ok(Json(json!({"mode": state.write_mode("").await?}))),
        None => Err(not_configured(40409, "mode", &subject)),
    }
}

pub(super) async fn put_subject_mode(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    Query(q): Query<SchemaQuery>,
    body: Bytes,
) -> CfResult<Json<Value>> {
    let subject = subject_param(&subject)?;
    let mode = parse_mode(&body)?;
    state.set_write_mode(&subject, mode, q.force).await?;
    Ok(Json(json!({"mode": mode})))
}

pub(super) async fn delete_subject_mode(
    State(state): State<AppState>,
    Path(subject): Path<String>,
) -> CfResult<Json<Value>> {
    let subject = subject_param(&subject)?;
    match state.delete_write_mode(&subject).await? {
        Some(m) => Ok(Json(json!({"mode": m}))),
        None => Err(not_configured(40409, "mode", &subject)),
    }
}

/// 40408/40409: the subject has no `what` (compatibility, mode) of its own.
fn not_configured(code: u32, what: &str, subject: &str) -> CfError {
    err(
        StatusCode::NOT_FOUND,
        code,
        format!("Subject '{subject}' does not have subject-level {what} configured"),
    )
}
