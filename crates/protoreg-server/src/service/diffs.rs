//! The findings of a diff between two versions (the newer checked against the older under
//! a policy's categories), computed once per (contents, categories) and kept in the store,
//! so that a diff page after a restart decodes nothing. A push keeps the default diff of
//! the version it made (the previous live version against it): its own check under
//! `BACKWARD`, else computed in the background from the images in memory.

use protoreg_store::Config;
use serde_json::json;

use super::Registry;
use super::error::{Error, Result};
use super::images::breaking;
use crate::api::FindingBody;

/// A version by number and content digest.
pub type VersionKey = (i64, String);

/// The key a diff's findings are kept under: the rule categories (the check ignores the
/// mode: it is always the newer version against the older).
fn policy_key(config: &Config) -> String {
    json!(config.categories).to_string()
}

impl Registry {
    /// The diff between two versions of `subject` (`None`: the latest): findings both ways
    /// under the subject's categories, and the text diff of every file that changed.
    pub async fn diff(
        &self,
        subject: &str,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Result<crate::api::DiffReply> {
        let (from, _) = self.load_version(subject, from).await?;
        let (to, _) = self.load_version(subject, to).await?;
        let config = self.effective_config(subject).await?;
        let (f2, t2) = (from.clone(), to.clone());
        type Both = (Vec<FindingBody>, Vec<FindingBody>);
        let both = super::blocking(move || -> std::result::Result<Both, String> {
            let a = super::domain::version_image(&f2).map_err(|e| e.to_string())?;
            let b = super::domain::version_image(&t2).map_err(|e| e.to_string())?;
            let fwd = super::domain::breaking(&b, &a, &config)?;
            let back = super::domain::breaking(&a, &b, &config)?;
            Ok((
                fwd.iter().map(FindingBody::from).collect(),
                back.iter().map(FindingBody::from).collect(),
            ))
        })
        .await?
        .map_err(|e| Error::Internal(format!("check failed: {e}")))?;
        Ok(crate::api::DiffReply {
            subject: subject.to_string(),
            from: from.meta.version,
            to: to.meta.version,
            breaking: both.0,
            breaking_reverse: both.1,
            files: super::domain::file_diffs(&from, &to),
        })
    }

    /// The findings of `to` checked against `from` under `config`'s categories: kept ones, or
    /// computed now from the stored descriptors and kept.
    pub async fn diff_findings(
        &self,
        subject: &str,
        from: &VersionKey,
        to: &VersionKey,
        config: &Config,
    ) -> Result<Vec<FindingBody>> {
        let state = self;
        let policy = policy_key(config);
        if let Some(kept) = state
            .store
            .diff_findings(subject, &from.1, &to.1, &policy)
            .await?
            && let Ok(list) = serde_json::from_value::<Vec<FindingBody>>(kept)
        {
            return Ok(list);
        }
        let gone = |v: &VersionKey| Error::no_version(subject, v.0);
        let old = state
            .version_image(subject, from.0, &from.1)
            .await?
            .ok_or_else(|| gone(from))?;
        let new = state
            .version_image(subject, to.0, &to.1)
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

    /// After a push: the diff of the previous live version against the new one, kept for the
    /// version's diff page — the push's own findings when its check was that diff (`known`),
    /// else computed in the background when both images are still in memory (else when the
    /// page is first asked for).
    pub(crate) fn precompute_diff(
        &self,
        subject: &str,
        new: VersionKey,
        config: &Config,
        known: Option<Known>,
    ) {
        let (state, subject, config) = (self.clone(), subject.to_string(), config.clone());
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
                    state
                        .store
                        .put_diff_findings(&subject, &from.1, &new.1, &policy, &list)
                        .await?;
                    return Ok(());
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
                state
                    .diff_findings(
                        &subject,
                        &(prev.version, prev.digest.clone()),
                        &new,
                        &config,
                    )
                    .await
                    .map(|_| ())
            };
            let result: Result<()> = run.await;
            if let Err(e) = result {
                tracing::warn!(subject, error = ?e, "precomputing a diff failed");
            }
        });
    }
}

/// The diff a push's own policy check already made: the new version checked against the
/// previous live one (`from`) under `config`'s categories — so under mode BACKWARD.
pub(crate) struct Known<'f> {
    pub from: VersionKey,
    pub findings: &'f [protoreg_check::Finding],
}
