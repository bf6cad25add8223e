//! The findings of a diff between two versions (the newer checked against the older under
//! a policy's categories), computed once per (contents, categories) and kept in the store,
//! so that a diff page after a restart decodes nothing. A push keeps the default diff of
//! the version it made (the previous live version against it): its own check under
//! `BACKWARD`, else computed in the background from the images in memory.

use protoreg_store::Config;
use serde_json::json;

use crate::AppState;
use crate::api::FindingBody;
use crate::error::{ApiError, ApiResult};
use crate::push::{breaking, version_image};

/// A version by number and content digest.
pub type VersionKey = (i64, String);

/// The key a diff's findings are kept under: the rule categories (the check ignores the
/// mode: it is always the newer version against the older).
fn policy_key(config: &Config) -> String {
    json!(config.categories).to_string()
}

/// The findings of `to` checked against `from` under `config`'s categories: kept ones, or
/// computed now from the stored descriptors and kept.
pub(crate) async fn findings(
    state: &AppState,
    subject: &str,
    from: &VersionKey,
    to: &VersionKey,
    config: &Config,
) -> ApiResult<Vec<FindingBody>> {
    let policy = policy_key(config);
    if let Some(kept) = state
        .store
        .diff_findings(subject, &from.1, &to.1, &policy)
        .await?
        && let Ok(list) = serde_json::from_value::<Vec<FindingBody>>(kept)
    {
        return Ok(list);
    }
    let gone =
        |v: &VersionKey| ApiError::not_found(format!("no version {} of subject {subject:?}", v.0));
    let old = version_image(state, subject, from.0, &from.1)
        .await?
        .ok_or_else(|| gone(from))?;
    let new = version_image(state, subject, to.0, &to.1)
        .await?
        .ok_or_else(|| gone(to))?;
    let started = std::time::Instant::now();
    let found = breaking(new, old, config.clone()).await?;
    let list: Vec<FindingBody> = found.iter().map(FindingBody::from).collect();
    tracing::info!(
        subject,
        from = from.0,
        to = to.0,
        check_ms = started.elapsed().as_millis() as u64,
        findings = list.len(),
        "diff computed"
    );
    state
        .store
        .put_diff_findings(subject, &from.1, &to.1, &policy, &json!(list))
        .await?;
    Ok(list)
}

/// The diff a push's own policy check already made: the new version checked against the
/// previous live one (`from`) under `config`'s categories — so under mode BACKWARD.
pub(crate) struct Known<'f> {
    pub from: VersionKey,
    pub findings: &'f [protoreg_check::Finding],
}

/// After a push: the diff of the previous live version against the new one, kept for the
/// version's diff page — the push's own findings when its check was that diff (`known`),
/// else computed in the background when both images are still in memory (else when the
/// page is first asked for).
pub(crate) fn precompute(
    state: &AppState,
    subject: &str,
    new: VersionKey,
    config: &Config,
    known: Option<Known>,
) {
    let (state, subject, config) = (state.clone(), subject.to_string(), config.clone());
    let known = known.map(|k| {
        // In the order a diff lists them.
        let mut findings = k.findings.to_vec();
        protoreg_check::sort_findings(&mut findings);
        let list: Vec<FindingBody> = findings.iter().map(FindingBody::from).collect();
        (k.from, json!(list), policy_key(&config))
    });
    tokio::spawn(async move {
        let run = async {
            if let Some((from, list, policy)) = known {
                return state
                    .store
                    .put_diff_findings(&subject, &from.1, &new.1, &policy, &list)
                    .await
                    .map_err(ApiError::from);
            }
            let versions = state.store.versions(&subject, false).await?;
            let Some(prev) = versions.iter().rev().find(|v| v.version < new.0) else {
                return Ok(());
            };
            // Decoding a version no longer in memory (a large one, evicted by the new
            // one) would compete with the next push: the diff page computes it if asked.
            if state
                .images
                .get(&subject, prev.version, &prev.digest)
                .is_none()
            {
                return Ok(());
            }
            findings(
                &state,
                &subject,
                &(prev.version, prev.digest.clone()),
                &new,
                &config,
            )
            .await
            .map(|_| ())
        };
        let result: ApiResult<()> = run.await;
        if let Err(e) = result {
            tracing::warn!(subject, error = ?e, "precomputing a diff failed");
        }
    });
}
