//! Pushes, registrations and dry runs: the rules a new version passes (write mode, labels,
//! accepted breaks, dependencies, compile, policy, deployed versions), then the commit
//! (retried when another push wins the race) and the impact on dependents. No HTTP here.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use protoreg_check::Finding;
use protoreg_schema::Image;
use protoreg_store::{
    AcceptedBreak, Config, DepRef, DeployedPolicy, Explicit, Mode, NewVersion, VersionMeta,
    WriteMode,
};
use serde_json::json;

use super::error::{Error, Result};
use super::images::blocking;
use super::{Caller, Registry, Role, deps, domain};
use crate::api::{DeployedWarning, FindingBody, Impact, VersionRef};

/// A new version as a front door read it.
pub struct Push {
    pub files: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// Resolved dependencies ([`Registry::resolve_deps`], or a Confluent schema's references).
    pub deps: Vec<DepRef>,
    /// Why breaking changes are to be let through (an admin only).
    pub accept_reason: Option<String>,
    /// The id and version an import keeps (IMPORT mode only).
    pub explicit: Explicit,
}

impl Push {
    /// A push of `files` against `deps`, nothing else asked.
    pub fn new(files: BTreeMap<String, String>, deps: Vec<DepRef>) -> Push {
        Push {
            files,
            labels: BTreeMap::new(),
            deps,
            accept_reason: None,
            explicit: Explicit::default(),
        }
    }
}

/// What a push came to.
pub struct Pushed {
    pub version: VersionMeta,
    /// `false`: the content is already the subject's latest version (or, for a
    /// registration, one of its versions); nothing was created.
    pub created: bool,
    /// The break an admin let through with it.
    pub accepted: Option<AcceptedBreak>,
    /// Deployments of other versions it breaks (a warning under `deployed: warn`).
    pub deployed: Vec<DeployedWarning>,
}

/// A dry run's answer.
pub struct Checked {
    pub findings: Vec<Finding>,
    pub deployed: Vec<DeployedWarning>,
    pub dependents: Impact,
}

/// The label a version records the built-in schemas it used under (labels beginning with
/// `protoreg.` are the registry's own: a push may not set them).
pub const BUILTINS_LABEL: &str = "protoreg.builtins";

/// The longest reason an accepted break may carry.
const MAX_REASON: usize = 2000;

/// Pushes on one subject retry this often when they lose a race with another push.
const MAX_ATTEMPTS: u32 = 60;

/// A breaking push let through on purpose.
struct Acceptance {
    reason: String,
    by: String,
}

/// What a policy check found, and the live versions (number, digest) it was checked against.
type Found = (Vec<(i64, String)>, Vec<Finding>);

/// (number, digest) of live versions: what a check was made against.
fn checked_against(live: &[VersionMeta]) -> Vec<(i64, String)> {
    live.iter().map(|v| (v.version, v.digest.clone())).collect()
}

/// Labels a push may set: at most 64, keys 1-128 bytes, values up to 1024, none of the
/// registry's own (`protoreg.`).
fn check_push_labels(labels: &BTreeMap<String, String>) -> Result<()> {
    domain::check_labels(labels).map_err(Error::Invalid)?;
    if let Some(k) = labels.keys().find(|k| k.starts_with("protoreg.")) {
        return Err(Error::invalid(format!(
            "label {k:?}: labels beginning with \"protoreg.\" are set by the registry"
        )));
    }
    Ok(())
}

/// Who accepts the break a push asks to let through: an admin, with a reason.
fn acceptance(reason: Option<&str>, caller: &Caller) -> Result<Option<Acceptance>> {
    let Some(reason) = reason else {
        return Ok(None);
    };
    if reason.trim().is_empty() || reason.len() > MAX_REASON {
        return Err(Error::invalid(format!(
            "accept_breaking.reason must say why the break is acceptable (1-{MAX_REASON} bytes)"
        )));
    }
    if caller.role < Role::Admin {
        return Err(Error::Forbidden(
            "accepting breaking changes needs the admin role".into(),
        ));
    }
    Ok(Some(Acceptance {
        reason: reason.trim().to_string(),
        by: caller.who.clone(),
    }))
}

impl Registry {
    /// Refuses creating a version where the write mode says no: READONLY anywhere, IMPORT
    /// without the id and version to keep, an id or version outside IMPORT.
    pub(crate) async fn check_can_create(&self, subject: &str, explicit: &Explicit) -> Result<()> {
        let is_explicit = *explicit != Explicit::default();
        match self.write_mode(subject).await? {
            m if m.is_read_only() => Err(Error::ReadOnly {
                scope: subject.to_string(),
            }),
            WriteMode::Import if !is_explicit => Err(Error::ImportNeedsId {
                scope: subject.to_string(),
            }),
            WriteMode::Import => Ok(()),
            _ if is_explicit => Err(Error::ExplicitOutsideImport),
            _ => Ok(()),
        }
    }

    /// Resolves `subject@N|latest` specs to concrete live versions.
    pub async fn resolve_deps(&self, subject: &str, specs: &[String]) -> Result<Vec<DepRef>> {
        Ok(deps::resolve(&self.store, subject, specs).await?)
    }

    /// Creates the next version of `subject` when every rule lets it (the `/v1` push).
    /// Content equal to the latest version answers that version, uncreated.
    pub async fn push(&self, subject: &str, push: Push, caller: &Caller) -> Result<Pushed> {
        super::check_subject(subject)?;
        check_push_labels(&push.labels)?;
        let accept = acceptance(push.accept_reason.as_deref(), caller)?;
        self.check_can_create(subject, &push.explicit).await?;
        self.create_version(subject, push, accept).await
    }

    /// Registers a schema under `subject` (the Confluent door): content registered under the
    /// subject already answers that version, whichever it is.
    pub async fn register(&self, subject: &str, push: Push) -> Result<Pushed> {
        super::check_subject(subject)?;
        self.check_can_create(subject, &push.explicit).await?;
        let digest = protoreg_store::schema_digest(&push.files, &push.deps);
        if let Some(meta) = self.store.find_schema(subject, &digest, false).await? {
            return Ok(Pushed {
                version: meta,
                created: false,
                accepted: None,
                deployed: Vec::new(),
            });
        }
        self.create_version(subject, push, None).await
    }

    /// A dry run of a push: its findings under the subject's policy, the deployments it
    /// would break and its effect on dependents. Nothing is stored.
    pub async fn check(&self, subject: &str, push: Push, caller: &Caller) -> Result<Checked> {
        super::check_subject(subject)?;
        check_push_labels(&push.labels)?;
        acceptance(push.accept_reason.as_deref(), caller)?;
        let files = Arc::new(push.files);
        let compiled = self.compile_push(subject, &files, &push.deps).await?;
        let config = self.effective_config(subject).await?;
        let image = Arc::new(compiled.image);
        let snap = self.store.snapshot(subject).await?;
        let (_, findings) = self
            .check_live(subject, &snap.live, &image, &config)
            .await?;
        let dependents = self.impact(subject, &files, &push.deps).await?;
        let deployed = self.deployed_impact(subject, &image, &config).await?;
        Ok(Checked {
            findings,
            deployed,
            dependents,
        })
    }

    /// A compatibility test: `files` against one version (`Some`) or the versions the
    /// subject's policy names (`None`).
    pub async fn test_compatibility(
        &self,
        subject: &str,
        files: BTreeMap<String, String>,
        deps: &[DepRef],
        against: Option<VersionMeta>,
    ) -> Result<Vec<Finding>> {
        let files = Arc::new(files);
        let compiled = self.compile_push(subject, &files, deps).await?;
        let config = self.effective_config(subject).await?;
        let against: Vec<VersionMeta> = match against {
            Some(v) => vec![v],
            None => self.store.versions(subject, false).await?,
        };
        if against.is_empty() {
            return Ok(Vec::new());
        }
        let image = Arc::new(compiled.image);
        Ok(self.check_live(subject, &against, &image, &config).await?.1)
    }

    /// What a new version of `subject` with these files does to the latest version of every
    /// subject that depends on it.
    pub async fn impact(
        &self,
        subject: &str,
        files: &BTreeMap<String, String>,
        deps: &[DepRef],
    ) -> Result<Impact> {
        let (checked, broken) = deps::impact(&self.store, subject, files, deps).await?;
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

    /// Compiles a push's files against its dependencies' closure (off the async workers).
    pub(crate) async fn compile_push(
        &self,
        subject: &str,
        files: &Arc<BTreeMap<String, String>>,
        deps: &[DepRef],
    ) -> Result<domain::Compiled> {
        let imports = self.closures.get(&self.store, subject, deps).await?;
        let files = files.clone();
        blocking(move || domain::compile(&files, &imports))
            .await?
            .map_err(|e| match e {
                domain::PushError::BadRequest(m) => Error::Invalid(m),
                domain::PushError::Compile(d) => Error::Compile(d),
            })
    }

    /// Checks `image` against the live versions `live` as the policy's mode says.
    async fn check_live(
        &self,
        subject: &str,
        live: &[VersionMeta],
        image: &Arc<Image>,
        config: &Config,
    ) -> Result<Found> {
        let key = checked_against(live);
        let against = self.prior_images(subject, live, config).await?;
        let (image, config) = (image.clone(), config.clone());
        let findings = blocking(move || domain::check_policy(&image, &against, &config))
            .await?
            .map_err(|e| Error::Internal(format!("check failed: {e}")))?;
        Ok((key, findings))
    }

    /// Compile against the dependencies' closure, check against the live versions, commit
    /// (retrying when another push wins the race). The write rules were checked by the
    /// caller ([`Registry::push`], [`Registry::register`]).
    async fn create_version(
        &self,
        subject: &str,
        push: Push,
        accept: Option<Acceptance>,
    ) -> Result<Pushed> {
        let started = std::time::Instant::now();
        let Push {
            files,
            labels,
            deps,
            explicit,
            ..
        } = push;
        let files = Arc::new(files);
        let unchanged = |version| Pushed {
            version,
            created: false,
            accepted: None,
            deployed: Vec::new(),
        };
        let digest = protoreg_store::version_digest(&files, &deps);
        let latest = self.store.version_ref(subject, None).await?;
        // The same content as the latest version: nothing to compile.
        if let Some((n, latest)) = &latest
            && *latest == digest
            && let Some(meta) = self.store.version_meta(subject, Some(*n), false).await?
        {
            self.metrics.push("unchanged");
            return Ok(unchanged(meta));
        }
        let config = self.effective_config(subject).await?;
        // While the files compile: the texts the store lacks are compressed, and the latest
        // version's image is decoded when the check needs it and it is not in memory (after a
        // restart, say).
        let prefetch = async {
            if let (Some((n, d)), false) = (&latest, config.mode == Mode::None)
                && let Err(e) = self.version_image(subject, *n, d).await
            {
                // The check reads it again, and answers for it.
                tracing::debug!(subject, error = ?e, "could not decode the latest version ahead");
            }
            Ok(())
        };
        // A push that does not compile is answered at once.
        let (compiled, texts, ()) = tokio::try_join!(
            self.compile_push(subject, &files, &deps),
            async { Ok(self.store.pack_texts(files.clone()).await?) },
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
        let prepare = self.store.prepare_with(
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
        let first_check = async {
            let snap = self.store.snapshot(subject).await?;
            self.check_live(subject, &snap.live, &image, &config).await
        };
        let deployed = self.deployed_impact(subject, &image, &config);
        let (prepared, first, deployed) = tokio::join!(prepare, first_check, deployed);
        let mut prepared = prepared?;
        let deployed = deployed?;
        if config.deployed == DeployedPolicy::Enforce && !deployed.is_empty() {
            self.metrics.push("refused");
            return Err(Error::BreaksDeployed { deployed });
        }
        // What the check found, and the live versions (number, digest) it was checked against.
        let mut checked: Found = first?;
        for attempt in 0..MAX_ATTEMPTS {
            let snap = self.store.snapshot(subject).await?;
            if let Some(latest) = snap.live.last()
                && latest.digest == prepared.digest
                && let Some(meta) = self
                    .store
                    .version_meta(subject, Some(latest.version), false)
                    .await?
            {
                self.metrics.push("unchanged");
                return Ok(unchanged(meta));
            }
            // Check again only when the versions before this one changed.
            if checked.0 != checked_against(&snap.live) {
                checked = self
                    .check_live(subject, &snap.live, &image, &config)
                    .await?;
            }
            let findings = &checked.1;
            prepared.accepted = None;
            if let (false, Some(a)) = (findings.is_empty(), &accept) {
                let bodies: Vec<FindingBody> = findings.iter().map(FindingBody::from).collect();
                prepared.accepted = Some(AcceptedBreak {
                    reason: a.reason.clone(),
                    by: a.by.clone(),
                    findings: json!(bodies),
                });
            } else if !findings.is_empty() {
                self.metrics.push("refused");
                let bodies: Vec<FindingBody> = findings.iter().map(FindingBody::from).collect();
                // The log is for people browsing; failing to write it does not change the answer.
                if let Err(e) = self
                    .store
                    .record_refusal(subject, &refusal_labels, &json!(config), &json!(bodies))
                    .await
                {
                    tracing::warn!(subject, error = %e, "could not log a refused push");
                }
                return Err(Error::Incompatible {
                    policy: config,
                    findings: checked.1,
                });
            }
            let Some(v) = self.store.commit(subject, &snap, &prepared).await? else {
                tokio::time::sleep(Duration::from_millis(2 + u64::from(attempt % 16) * 3)).await;
                continue;
            };
            self.metrics.push(if prepared.accepted.is_some() {
                "accepted_breaking"
            } else {
                "accepted"
            });
            // Read your writes on this replica at once (others hear of it on commit).
            self.cache.changed(subject);
            // The next push is checked against this version: keep its image.
            self.images
                .put(subject, v.version, &v.digest, descriptor_len, image.clone());
            // The version's default diff page (previous → this), ready before it is
            // asked: under BACKWARD the check just made is that diff.
            let known = match snap.live.last() {
                Some(prev) if config.mode == Mode::Backward => Some(super::diffs::Known {
                    from: (prev.version, prev.digest.clone()),
                    findings: findings.as_slice(),
                }),
                _ => None,
            };
            self.precompute_diff(subject, (v.version, v.digest.clone()), &config, known);
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
            return Ok(Pushed {
                version: v,
                created: true,
                accepted: prepared.accepted.clone(),
                deployed,
            });
        }
        Err(Error::LostRace(format!(
            "too much contention pushing to {subject:?}; try again"
        )))
    }
}
