//! The registry's pure functions: validating and compiling a push, checking it against a
//! subject's policy, and diffing versions' texts.

use std::collections::BTreeMap;

use protoreg_check::{Finding, Options};
use protoreg_schema::{BreakingConfig, Image, OutputFormat, SchemaError, SourceSet};
pub use protoreg_store::digest;
use protoreg_store::{Config, DeployedPolicy, Mode, StoredDescriptor, Version};

use super::deps::DepFiles;

/// The policy used when neither the subject nor the registry sets one.
pub fn default_config() -> Config {
    Config {
        mode: Mode::Backward,
        categories: vec!["FILE".into()],
        deployed: DeployedPolicy::Warn,
    }
}

/// Labels of a version or a deployment: at most 64, keys 1-128 bytes, values up to 1024.
pub fn check_labels(labels: &std::collections::BTreeMap<String, String>) -> Result<(), String> {
    if labels.len() > 64
        || labels
            .iter()
            .any(|(k, v)| k.is_empty() || k.len() > 128 || v.len() > 1024)
    {
        return Err("labels: at most 64, keys 1-128 bytes, values up to 1024 bytes".into());
    }
    Ok(())
}

/// Largest number of files in one push.
pub const MAX_FILES: usize = 10_000;

/// Why a push cannot even be checked.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("{0}")]
    BadRequest(String),
    #[error("the files do not compile")]
    Compile(Vec<protoreg_schema::Diagnostic>),
}

/// Checks a policy's rule categories or ids (its mode and deployed policy are typed).
pub fn validate_config(c: &Config) -> Result<(), String> {
    if c.categories.is_empty() {
        return Err("categories must name at least one rule category or id".into());
    }
    protoreg_check::selected_rules(&breaking_config(c))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn breaking_config(c: &Config) -> BreakingConfig {
    BreakingConfig {
        version: "v2".into(),
        use_ids: c.categories.clone(),
        ..Default::default()
    }
}

/// A compiled push: the image and its encoded descriptor set.
pub struct Compiled {
    pub image: Image,
    pub descriptor: Vec<u8>,
}

/// Validates paths and compiles the files of a push; imports resolve against the files,
/// then `imports` (the dependencies' files), then the well-known types.
pub fn compile(
    files: &BTreeMap<String, String>,
    imports: &DepFiles,
) -> Result<Compiled, PushError> {
    if files.is_empty() {
        return Err(PushError::BadRequest(
            "no files: `files` must map at least one .proto path to its text".into(),
        ));
    }
    if files.len() > MAX_FILES {
        return Err(PushError::BadRequest(format!(
            "too many files ({} > {MAX_FILES})",
            files.len()
        )));
    }
    let mut set = SourceSet::from_memory(
        files
            .iter()
            .map(|(p, t)| (p.clone(), t.as_bytes().to_vec())),
        "",
    )
    .map_err(|e| PushError::BadRequest(e.to_string()))?;
    set.imports = imports
        .iter()
        .map(|(path, f)| {
            let file = protoreg_schema::SourceFile {
                name: path.clone(),
                display: format!("{}:{path}", f.provider),
                text: Ok(f.text.as_str().into()),
            };
            (path.clone(), file)
        })
        .collect();
    let image = match set.compile() {
        Ok(i) => i,
        Err(SchemaError::Compile(d)) => return Err(PushError::Compile(d.0)),
        Err(e) => return Err(PushError::BadRequest(e.to_string())),
    };
    let descriptor = image
        .encode(OutputFormat::Binary, true, true)
        .map_err(|e| PushError::BadRequest(e.to_string()))?;
    Ok(Compiled { image, descriptor })
}

/// Decodes a stored version's descriptor set: its own files are targets, the rest imports.
pub fn stored_image(d: &StoredDescriptor, origin: &str) -> Result<Image, SchemaError> {
    let mut image =
        Image::from_descriptor_set_bytes(d.bytes.clone(), OutputFormat::Binary, origin)?;
    for f in &mut image.files {
        f.is_import = !d.own.contains(f.proto.name());
    }
    Ok(image)
}

/// The same for a whole version.
pub fn version_image(v: &Version) -> Result<Image, SchemaError> {
    stored_image(
        &StoredDescriptor {
            bytes: v.descriptor.clone(),
            own: v.files.keys().cloned().collect(),
        },
        &format!("{}@{}", v.meta.subject, v.meta.version),
    )
}

/// Breaking changes of `current` against `previous` under a policy's categories. Only the
/// packages that differ are checked (a push changing a few files of a large set costs what
/// those files cost).
pub fn breaking(
    current: &Image,
    previous: &Image,
    config: &Config,
) -> Result<Vec<Finding>, String> {
    let opts = Options {
        config: breaking_config(config),
        exclude_imports: true,
        ..Default::default()
    };
    let (findings, scope) =
        protoreg_check::check_changed(current, previous, &opts).map_err(|e| e.to_string())?;
    tracing::debug!(
        units = scope.units,
        checked = scope.checked,
        "checked the units that changed"
    );
    Ok(findings)
}

/// Which live versions (oldest first) a mode checks a push against: the latest, or every
/// one for the transitive modes; none for NONE.
pub fn versions_to_check(mode: Mode, live: &[i64]) -> Vec<i64> {
    if mode == Mode::None {
        Vec::new()
    } else if mode.transitive() {
        live.to_vec()
    } else {
        live.last().copied().into_iter().collect()
    }
}

/// Checks a new image against earlier versions' images, as the policy's mode says
/// (`against` as chosen by [`versions_to_check`]). Findings of FORWARD checks point into
/// the older version's files.
pub fn check_policy(
    new: &Image,
    against: &[std::sync::Arc<Image>],
    config: &Config,
) -> Result<Vec<Finding>, String> {
    let (backward, forward) = (config.mode.backward(), config.mode.forward());
    let mut findings = Vec::new();
    for old in against {
        if backward {
            findings.extend(breaking(new, old, config)?);
        }
        if forward {
            // Old consumers reading new data: elements only the new version has look
            // "deleted" from the old side, but old readers simply skip them, so the
            // *_NO_DELETE rules (and reserved ranges only the new version has) do not apply.
            findings.extend(
                breaking(old, new, config)?
                    .into_iter()
                    .filter(|f| !f.rule.contains("_NO_DELETE")),
            );
        }
    }
    findings.sort();
    findings.dedup();
    Ok(findings)
}

/// A unified text diff of one file between two versions.
pub fn file_diffs(from: &Version, to: &Version) -> Vec<crate::api::FileDiff> {
    changed_files(from, to)
        .into_iter()
        .map(|(path, status)| file_diff(from, to, &path, status))
        .collect()
}

/// The files that differ between two versions, by path, with `added`, `deleted` or
/// `modified` (comparing texts only: no diff is computed).
pub fn changed_files(from: &Version, to: &Version) -> Vec<(String, &'static str)> {
    let mut paths: Vec<&String> = from.files.keys().chain(to.files.keys()).collect();
    paths.sort();
    paths.dedup();
    paths
        .into_iter()
        .filter_map(|p| {
            let (a, b) = (from.files.get(p), to.files.get(p));
            let status = match (a, b) {
                _ if a == b => return None,
                (None, Some(_)) => "added",
                (Some(_), None) => "deleted",
                _ => "modified",
            };
            Some((p.clone(), status))
        })
        .collect()
}

/// Longest a text diff of one file may search for the smallest edit before it settles for a
/// larger one (large rewritten files).
const TEXT_DIFF_DEADLINE: std::time::Duration = std::time::Duration::from_millis(50);

/// The unified diff of one file between two versions.
pub fn file_diff(from: &Version, to: &Version, path: &str, status: &str) -> crate::api::FileDiff {
    text_diff(
        path,
        status,
        from.files.get(path).map(String::as_str).unwrap_or(""),
        to.files.get(path).map(String::as_str).unwrap_or(""),
    )
}

/// Files that differ between two versions' own files given as path → text digest (from
/// their manifests): added, deleted or modified, by path.
pub fn changed_by_digest(
    from: &std::collections::BTreeMap<String, String>,
    to: &std::collections::BTreeMap<String, String>,
) -> Vec<(String, &'static str)> {
    let mut paths: Vec<&String> = from.keys().chain(to.keys()).collect();
    paths.sort();
    paths.dedup();
    paths
        .into_iter()
        .filter_map(|p| {
            let status = match (from.get(p), to.get(p)) {
                (a, b) if a == b => return None,
                (None, Some(_)) => "added",
                (Some(_), None) => "deleted",
                _ => "modified",
            };
            Some((p.clone(), status))
        })
        .collect()
}

/// The unified diff of one file's two texts.
pub fn text_diff(path: &str, status: &str, old: &str, new: &str) -> crate::api::FileDiff {
    let diff = similar::TextDiff::configure()
        .timeout(TEXT_DIFF_DEADLINE)
        .diff_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{path}"), &format!("b/{path}"))
        .to_string();
    crate::api::FileDiff {
        path: path.to_string(),
        status: status.into(),
        diff,
    }
}
