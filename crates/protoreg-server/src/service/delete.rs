//! Deleting versions and subjects, soft (hidden, still readable by number with `deleted`)
//! or permanent (gone; only what was soft-deleted first). Every door obeys the same rules:
//! nothing is deleted in a read-only scope; a version that live versions of other subjects
//! depend on, or that a current deployment runs, is deleted only with `force`, and only an
//! admin may force.

use protoreg_store::VersionMeta;

use super::error::{At, Error, Missing, Result};
use super::{Caller, Registry, Role};

/// How to delete.
#[derive(Debug, Clone, Copy, Default)]
pub struct Delete {
    /// Remove for good what was soft-deleted before.
    pub permanent: bool,
    /// Delete even though dependents or deployments use it (admin only).
    pub force: bool,
}

impl Registry {
    /// Deletes version `n` of `subject`; answers it as it was.
    pub async fn delete_version(
        &self,
        subject: &str,
        n: i64,
        how: Delete,
        caller: &Caller,
    ) -> Result<VersionMeta> {
        super::check_subject(subject)?;
        check_force(how, caller)?;
        self.check_writable(subject).await?;
        let meta = self
            .store
            .version_meta(subject, Some(n), true)
            .await?
            .ok_or_else(|| Error::no_version(subject, n))?;
        match (how.permanent, meta.deleted) {
            (true, false) => {
                return Err(Error::NotSoftDeleted {
                    subject: subject.into(),
                    version: Some(n),
                });
            }
            (false, true) => {
                return Err(Error::AlreadyDeleted {
                    subject: subject.into(),
                    version: Some(n),
                });
            }
            _ => {}
        }
        if !how.force {
            self.check_unused(subject, n).await?;
        }
        let deleted = self.store.delete(subject, n, how.permanent).await?;
        // Read your writes on this replica at once (the others hear of it when it commits).
        self.cache.changed(subject);
        if !deleted {
            // Another request deleted it meanwhile.
            return Err(Error::AlreadyDeleted {
                subject: subject.into(),
                version: Some(n),
            });
        }
        Ok(meta)
    }

    /// Deletes every live version of `subject` (soft), or every version of a subject whose
    /// versions are all soft-deleted (permanent, with its policy and write mode). Answers the
    /// version numbers deleted.
    pub async fn delete_subject(
        &self,
        subject: &str,
        how: Delete,
        caller: &Caller,
    ) -> Result<Vec<i64>> {
        super::check_subject(subject)?;
        check_force(how, caller)?;
        self.check_writable(subject).await?;
        let all = self.store.versions(subject, true).await?;
        if all.is_empty() {
            return Err(Error::not_found(
                Missing::Subject,
                format!("no subject {subject:?}"),
            ));
        }
        let live: Vec<i64> = all
            .iter()
            .filter(|v| !v.deleted)
            .map(|v| v.version)
            .collect();
        let targets: Vec<i64> = match (how.permanent, live.is_empty()) {
            (true, false) => {
                return Err(Error::NotSoftDeleted {
                    subject: subject.into(),
                    version: None,
                });
            }
            (false, true) => {
                return Err(Error::AlreadyDeleted {
                    subject: subject.into(),
                    version: None,
                });
            }
            (true, true) => all.iter().map(|v| v.version).collect(),
            (false, false) => live,
        };
        if !how.force {
            for n in &targets {
                self.check_unused(subject, *n).await?;
            }
        }
        let mut deleted = Vec::new();
        for n in targets {
            if self.store.delete(subject, n, how.permanent).await? {
                deleted.push(n);
            }
        }
        if how.permanent {
            self.store.delete_config(subject).await?;
            self.store.delete_mode(subject).await?;
        }
        self.cache.changed(subject);
        Ok(deleted)
    }

    /// Refuses deleting a version that live versions of other subjects depend on, or that a
    /// current deployment runs.
    async fn check_unused(&self, subject: &str, n: i64) -> Result<()> {
        let at = At {
            subject: subject.to_string(),
            version: n,
        };
        let dependents = self.store.dependents(subject, n).await?;
        if !dependents.is_empty() {
            return Err(Error::HasDependents {
                version: at,
                dependents: dependents
                    .into_iter()
                    .map(|(subject, version)| At { subject, version })
                    .collect(),
            });
        }
        let running = self.store.consumers(subject, n).await?;
        if !running.is_empty() {
            return Err(Error::RunningIn {
                version: at,
                deployments: running,
            });
        }
        Ok(())
    }
}

fn check_force(how: Delete, caller: &Caller) -> Result<()> {
    if how.force && caller.role < Role::Admin {
        return Err(Error::Forbidden("force=true needs the admin role".into()));
    }
    Ok(())
}
