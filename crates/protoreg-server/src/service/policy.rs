//! Policies (compatibility mode, rule categories, the deployed policy) and write modes, of a
//! subject or of the registry (scope `""`): reading what is in force, and changing them —
//! a policy change is a write (refused in READONLY), a write-mode change is not (so a
//! read-only scope can be made writable again).

use protoreg_store::{Config, DeployedPolicy, Mode, WriteMode};

use super::Registry;
use super::error::{Error, Result};

/// A policy change: a field left out keeps its current value.
#[derive(Debug, Default, Clone)]
pub struct PolicyUpdate {
    pub mode: Option<Mode>,
    pub categories: Option<Vec<String>>,
    pub deployed: Option<DeployedPolicy>,
}

impl Registry {
    /// The subject's own policy, else the global one, else the default.
    pub async fn effective_config(&self, subject: &str) -> Result<Config> {
        if let Some(c) = self.store.config(subject).await? {
            return Ok(c);
        }
        self.global_config().await
    }

    /// The registry's policy (the default when none is set).
    pub async fn global_config(&self) -> Result<Config> {
        Ok(self
            .store
            .config("")
            .await?
            .unwrap_or_else(super::domain::default_config))
    }

    /// The write mode in force for `subject` (its own, else the registry's, else READWRITE);
    /// `""` for the registry's.
    pub async fn write_mode(&self, subject: &str) -> Result<WriteMode> {
        if !subject.is_empty()
            && let Some(m) = self.store.mode(subject).await?
        {
            return Ok(m);
        }
        Ok(self.store.mode("").await?.unwrap_or_default())
    }

    /// Refuses a write (a version created or deleted, a policy changed) in `scope` when its
    /// write mode is read-only.
    pub async fn check_writable(&self, scope: &str) -> Result<()> {
        if self.write_mode(scope).await?.is_read_only() {
            return Err(Error::ReadOnly {
                scope: scope.to_string(),
            });
        }
        Ok(())
    }

    /// Changes the policy of `scope` (`""`: the registry's): what it sets over the scope's
    /// own policy, else the policy in force there. Answers the new policy.
    pub async fn set_policy(&self, scope: &str, update: PolicyUpdate) -> Result<Config> {
        if !scope.is_empty() {
            super::check_subject(scope)?;
        }
        self.check_writable(scope).await?;
        let current = match self.store.config(scope).await? {
            Some(c) => c,
            None => self.effective_config(scope).await?,
        };
        let config = Config {
            mode: update.mode.unwrap_or(current.mode),
            categories: update.categories.unwrap_or(current.categories),
            deployed: update.deployed.unwrap_or(current.deployed),
        };
        super::domain::validate_config(&config).map_err(Error::Invalid)?;
        self.store.set_config(scope, &config).await?;
        Ok(config)
    }

    /// Removes the policy of `scope`; answers the one it had (`None`: it had none of its
    /// own).
    pub async fn delete_policy(&self, scope: &str) -> Result<Option<Config>> {
        self.check_writable(scope).await?;
        Ok(self.store.delete_config(scope).await?)
    }

    /// Sets the write mode of `scope`. IMPORT is for a scope without versions (imports keep
    /// another registry's ids) unless `force`.
    pub async fn set_write_mode(&self, scope: &str, mode: WriteMode, force: bool) -> Result<()> {
        if mode == WriteMode::Import && !force {
            let has_versions = if scope.is_empty() {
                !self.store.subjects(None, 1).await?.is_empty()
            } else {
                !self.store.versions(scope, true).await?.is_empty()
            };
            if has_versions {
                return Err(Error::ImportNotEmpty);
            }
        }
        self.store.set_mode(scope, mode).await?;
        Ok(())
    }

    /// Removes the write mode of `scope`; answers the one it had.
    pub async fn delete_write_mode(&self, scope: &str) -> Result<Option<WriteMode>> {
        Ok(self.store.delete_mode(scope).await?)
    }
}
