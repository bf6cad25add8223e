//! Reading versions (through the version cache: immutable versions are served from memory
//! where every change is heard, and by number while the database is down) and a subject's
//! logged refusals.

use std::sync::Arc;

use bytes::Bytes;
use protoreg_store::Version;

use super::Registry;
use super::error::{Error, Result};

/// A version and its descriptor set as cheaply cloned bytes.
pub type Loaded = (Arc<Version>, Bytes);

impl Registry {
    /// Version `n` of `subject` (`None`: the latest live one).
    pub async fn load_version(&self, subject: &str, n: Option<i64>) -> Result<Loaded> {
        super::check_subject(subject)?;
        if let Some(hit) = self.cache.watched(subject, n) {
            return Ok(hit);
        }
        let generation = self.cache.generation();
        let missing = || Error::no_version(subject, n.map_or("latest".into(), |n| n.to_string()));
        let (found, digest) = match self.store.version_ref(subject, n).await {
            Ok(found) => found.ok_or_else(missing)?,
            // Versions are immutable: one named by number can be served from the cache while
            // the database is down.
            Err(e) if e.is_unavailable() => {
                return match n.and_then(|n| self.cache.get(subject, n, None)) {
                    Some(hit) => Ok(hit),
                    None => Err(e.into()),
                };
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(hit) = self.cache.get(subject, found, Some(&digest)) {
            if n.is_none() {
                self.cache.note_latest(subject, found, generation);
            }
            return Ok(hit);
        }
        let v = self
            .store
            .version(subject, Some(found), false)
            .await?
            .ok_or_else(missing)?;
        Ok(self.cache.put(v, generation, n.is_none()))
    }

    /// A subject's logged refusals, newest first.
    pub async fn refusals(&self, subject: &str) -> Result<Vec<crate::api::Refusal>> {
        super::check_subject(subject)?;
        let corrupt = |e: serde_json::Error| Error::Internal(format!("corrupt refusal: {e}"));
        let list = self.store.refusals(subject).await?;
        list.into_iter()
            .map(|r| {
                Ok(crate::api::Refusal {
                    created_at: crate::api::rfc3339(r.created_at),
                    labels: r.labels,
                    policy: serde_json::from_value(r.policy).map_err(corrupt)?,
                    findings: serde_json::from_value(r.findings).map_err(corrupt)?,
                })
            })
            .collect()
    }
}
