//! `protoreg.yaml` (which directory is which subject, and what it depends on), the
//! dependency lock `protoreg.deps.lock`, and resolving a directory's dependencies into the
//! files its imports resolve against: subjects of the same `protoreg.yaml` from their
//! directories, the rest from the registry through a local cache keyed by digest (so a
//! locked build works offline once fetched).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use protoreg_schema::{SourceFile, SourceSet, check_relative};
use protoreg_server::api::parse_dep_spec as parse_spec;
use protoreg_store::DepRef;
use serde_json::Value;

use crate::client::Registry;

/// The project file's name.
pub const PROJECT_FILE: &str = "protoreg.yaml";
/// The dependency lock's name (beside the project file).
pub const DEPS_LOCK_FILE: &str = "protoreg.deps.lock";

/// `protoreg.yaml`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    #[serde(default)]
    pub registry: Option<String>,
    pub subjects: Vec<SubjectDir>,
    /// buf module references (as in a `buf.yaml`'s `deps:`) -> subject. A reference that
    /// is not listed maps to its last path segment.
    #[serde(default)]
    pub buf_deps: BTreeMap<String, String>,
    /// Rules to run beyond the `buf.yaml`'s (protoreg's opt-in categories), for every
    /// subject.
    #[serde(default)]
    pub breaking: BreakingExtra,
}

/// A `breaking:` section of `protoreg.yaml`: rule ids or categories added to (`use`) or
/// removed from (`except`) what the module's `buf.yaml` selects, so that a `buf.yaml`
/// shared with buf never names a rule buf does not know.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakingExtra {
    #[serde(default, rename = "use")]
    pub use_ids: Vec<String>,
    #[serde(default)]
    pub except: Vec<String>,
}

/// One subject of a project.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectDir {
    pub subject: String,
    /// The module directory (its import root), relative to `protoreg.yaml`.
    pub dir: PathBuf,
    /// A service's `protoreg.lock` pinned to this subject: a change of the directory that is
    /// not the pinned content fails the check (the service would drift from its pin).
    #[serde(default)]
    pub lock: Option<PathBuf>,
    /// `subject@N` or `subject[@latest]`: subjects its imports resolve against.
    #[serde(default)]
    pub deps: Vec<String>,
    /// Rules added for this subject (on top of the project-wide `breaking:`).
    #[serde(default)]
    pub breaking: BreakingExtra,
}

/// A loaded `protoreg.yaml` and the directory it is in.
#[derive(Debug)]
pub struct Project {
    pub root: PathBuf,
    pub config: ProjectConfig,
}

impl Project {
    pub fn load(file: &Path) -> anyhow::Result<Project> {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let config: ProjectConfig = serde_yaml_ng::from_str(&text)
            .with_context(|| format!("{}: invalid", file.display()))?;
        for s in &config.subjects {
            if !protoreg_server::api::valid_subject(&s.subject) {
                bail!("{}: invalid subject name {:?}", file.display(), s.subject);
            }
            check_relative(&s.dir.to_string_lossy())
                .map_err(|m| anyhow::anyhow!("{}: dir {:?}: {m}", file.display(), s.dir))?;
            for d in &s.deps {
                parse_spec(d).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            }
        }
        let root = file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        Ok(Project { root, config })
    }

    /// The nearest `protoreg.yaml` at or above `dir` with an entry whose directory holds
    /// `dir`, and that entry.
    pub fn find_for(dir: &Path) -> anyhow::Result<Option<(Project, SubjectDir)>> {
        let Ok(target) = dir.canonicalize() else {
            return Ok(None);
        };
        let mut at = Some(target.as_path());
        while let Some(d) = at {
            let file = d.join(PROJECT_FILE);
            if file.is_file() {
                let project = Project::load(&file)?;
                let entry = project.config.subjects.iter().find(|s| {
                    project
                        .root
                        .join(&s.dir)
                        .canonicalize()
                        .is_ok_and(|e| target.starts_with(e))
                });
                if let Some(entry) = entry.cloned() {
                    return Ok(Some((project, entry)));
                }
                return Ok(None);
            }
            at = d.parent();
        }
        Ok(None)
    }

    pub fn entry(&self, subject: &str) -> Option<&SubjectDir> {
        self.config.subjects.iter().find(|s| s.subject == subject)
    }

    /// An entry's dependencies: its `deps:`, then its `buf.yaml`'s `deps:` mapped to
    /// subjects.
    pub fn deps_of(&self, entry: &SubjectDir) -> anyhow::Result<Vec<String>> {
        let mut out = entry.deps.clone();
        let dir = self.root.join(&entry.dir);
        for name in ["buf.yaml", "buf.yml"] {
            let path = dir.join(name);
            if path.is_file() {
                let buf = protoreg_schema::BufConfig::from_file(&path)?;
                for reference in &buf.deps {
                    let subject = self.buf_subject(reference);
                    if !out
                        .iter()
                        .any(|d| parse_spec(d).is_ok_and(|(s, _)| s == subject))
                    {
                        out.push(subject);
                    }
                }
                break;
            }
        }
        Ok(out)
    }

    /// The subject a buf module reference maps to.
    pub fn buf_subject(&self, reference: &str) -> String {
        let bare = reference.split(':').next().unwrap_or(reference);
        if let Some(s) = self
            .config
            .buf_deps
            .get(reference)
            .or_else(|| self.config.buf_deps.get(bare))
        {
            return s.clone();
        }
        bare.rsplit('/').next().unwrap_or(bare).to_string()
    }

    pub fn lock_path(&self) -> PathBuf {
        self.root.join(DEPS_LOCK_FILE)
    }
}

/// `protoreg.deps.lock`: every registry version the project's subjects depend on,
/// directly or not.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DepsLock {
    pub version: u32,
    pub deps: Vec<DepRef>,
}

impl DepsLock {
    pub fn read(path: &Path) -> anyhow::Result<Option<DepsLock>> {
        if !path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(path)?;
        let lock: DepsLock = serde_yaml_ng::from_str(&text)
            .with_context(|| format!("{}: invalid lock file", path.display()))?;
        Ok(Some(lock))
    }

    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let text = format!(
            "# Written by `protoreg dep update`: the registry versions this project's subjects\n# depend on. Commit it; builds use these versions until the next update.\n{}",
            serde_yaml_ng::to_string(self)?
        );
        let tmp = path.with_extension("lock.tmp");
        std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    fn get(&self, subject: &str) -> Option<&DepRef> {
        self.deps.iter().find(|d| d.subject == subject)
    }

    /// A dependency spec with `@latest` (or no version) replaced by the locked version.
    pub fn pin(&self, spec: &str) -> anyhow::Result<String> {
        let (subject, n) = parse_spec(spec).map_err(anyhow::Error::msg)?;
        Ok(match self.get(&subject) {
            Some(l) if n.is_none() => format!("{subject}@{}", l.version),
            _ => spec.to_string(),
        })
    }
}

/// The cache directory: `$PROTOREG_CACHE_DIR`, else `$XDG_CACHE_HOME/protoreg`, else
/// `~/.cache/protoreg`.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("PROTOREG_CACHE_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("protoreg");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".cache").join("protoreg"),
        None => std::env::temp_dir().join("protoreg-cache"),
    }
}

/// A registry version's content, as cached: own files and resolved dependencies.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CachedVersion {
    pub subject: String,
    pub version: i64,
    pub digest: String,
    pub files: BTreeMap<String, String>,
    pub deps: Vec<DepRef>,
}

/// Resolves dependencies for local builds.
pub struct Resolver<'a> {
    pub project: &'a Project,
    /// `None`: offline (only the lock and the cache).
    pub client: Option<&'a Registry>,
    /// Use the lock file when there is one (`dep update` does not).
    pub use_lock: bool,
    cache: PathBuf,
    lock: Option<DepsLock>,
}

/// What resolving found: the files imports resolve against, and every registry version
/// used (for the lock).
pub struct Resolved {
    pub imports: BTreeMap<String, SourceFile>,
    pub registry_versions: Vec<DepRef>,
}

impl<'a> Resolver<'a> {
    pub fn new(
        project: &'a Project,
        client: Option<&'a Registry>,
        use_lock: bool,
    ) -> anyhow::Result<Self> {
        let lock = if use_lock {
            DepsLock::read(&project.lock_path())?
        } else {
            None
        };
        Ok(Resolver {
            project,
            client,
            use_lock,
            cache: cache_dir(),
            lock,
        })
    }

    /// The files the imports of `entry` resolve against.
    pub fn resolve(&self, entry: &SubjectDir) -> anyhow::Result<Resolved> {
        let mut imports: BTreeMap<String, (SourceFile, String)> = BTreeMap::new();
        let mut registry_versions: BTreeSet<DepRef> = BTreeSet::new();
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut queue: VecDeque<(String, Vec<String>)> = self
            .project
            .deps_of(entry)?
            .into_iter()
            .map(|d| (d, vec![entry.subject.clone()]))
            .collect();
        // Registry versions reached through other versions: (ref, chain).
        let mut pinned: VecDeque<(DepRef, Vec<String>)> = VecDeque::new();
        let mut add = |path: String, text: String, provider: String| -> anyhow::Result<()> {
            match imports.get(&path) {
                Some((f, p)) if f.text.as_deref().ok() != Some(text.as_str()) => {
                    bail!("{path} is provided by both {p} and {provider} with different content")
                }
                Some(_) => Ok(()),
                None => {
                    let file = SourceFile {
                        name: path.clone(),
                        display: format!("{provider}:{path}"),
                        text: Ok(text.into()),
                    };
                    imports.insert(path, (file, provider));
                    Ok(())
                }
            }
        };
        while let Some((spec, chain)) = queue.pop_front() {
            let (subject, n) = parse_spec(&spec).map_err(anyhow::Error::msg)?;
            if chain.contains(&subject) {
                bail!("dependency cycle: {} -> {subject}", chain.join(" -> "));
            }
            if !seen.insert(subject.clone()) {
                continue;
            }
            let mut chain = chain;
            chain.push(subject.clone());
            if let Some(local) = self.project.entry(&subject) {
                // A subject of this project: its directory, as it is now.
                let dir = self.project.root.join(&local.dir);
                let set = SourceSet::from_dir(&dir, &dir.to_string_lossy())?;
                for (path, f) in set.files {
                    let text = f
                        .text
                        .map_err(|_| anyhow::anyhow!("{}: not valid UTF-8", f.display))?
                        .to_string();
                    add(path, text, dir.display().to_string())?;
                }
                for d in self.project.deps_of(local)? {
                    queue.push_back((d, chain.clone()));
                }
                continue;
            }
            let r = self.pick(&subject, n)?;
            pinned.push_back((r, chain));
        }
        let mut done: BTreeSet<String> = BTreeSet::new();
        while let Some((r, chain)) = pinned.pop_front() {
            if chain[..chain.len() - 1].contains(&r.subject) && chain.len() > 1 {
                bail!("dependency cycle: {} -> {}", chain.join(" -> "), r.subject);
            }
            if !done.insert(format!("{}@{}", r.subject, r.version)) {
                continue;
            }
            let v = self.fetch(&r)?;
            let provider = format!("{}@{}", v.subject, v.version);
            for (path, text) in v.files {
                add(path, text, provider.clone())?;
            }
            registry_versions.insert(r);
            for d in v.deps {
                let mut c = chain.clone();
                c.push(d.subject.clone());
                pinned.push_back((d, c));
            }
        }
        Ok(Resolved {
            imports: imports.into_iter().map(|(p, (f, _))| (p, f)).collect(),
            registry_versions: registry_versions.into_iter().collect(),
        })
    }

    /// The concrete version a spec means: the lock's, else the registry's answer.
    fn pick(&self, subject: &str, n: Option<i64>) -> anyhow::Result<DepRef> {
        if let Some(locked) = self.lock.as_ref().and_then(|l| l.get(subject))
            && n.is_none_or(|n| n == locked.version)
        {
            return Ok(locked.clone());
        }
        let Some(client) = self.client else {
            bail!(
                "{subject} is not in {} and the registry is not reachable: run `protoreg dep update` while online",
                self.project.lock_path().display()
            );
        };
        if self.use_lock && self.lock.is_some() {
            eprintln!(
                "note: {subject} is not in {}; resolving it from {} (run `protoreg dep update` to lock it)",
                self.project.lock_path().display(),
                client.base()
            );
        }
        let version = n.map_or("latest".to_string(), |n| n.to_string());
        let meta = client
            .get_json(&format!(
                "/v1/subjects/{}/versions/{version}",
                crate::client::seg(subject)
            ))
            .with_context(|| format!("resolving dependency {subject}@{version}"))?;
        let v = version_from_json(&meta)?;
        self.store(&v)?;
        Ok(DepRef {
            subject: v.subject,
            version: v.version,
            digest: v.digest,
            name: None,
        })
    }

    fn cache_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.cache.join("versions").join(format!("{hex}.json"))
    }

    /// A version by digest: from the cache when it is there and intact, else the registry.
    fn fetch(&self, r: &DepRef) -> anyhow::Result<CachedVersion> {
        let path = self.cache_file(&r.digest);
        if let Ok(text) = std::fs::read_to_string(&path)
            && let Ok(v) = serde_json::from_str::<CachedVersion>(&text)
            && protoreg_store::version_digest(&v.files, &v.deps) == r.digest
        {
            return Ok(v);
        }
        let Some(client) = self.client else {
            bail!(
                "{}@{} ({}) is not in the cache ({}) and the registry is not reachable",
                r.subject,
                r.version,
                r.digest,
                self.cache.display()
            );
        };
        let meta = client
            .get_json(&format!(
                "/v1/subjects/{}/versions/{}",
                crate::client::seg(&r.subject),
                r.version
            ))
            .with_context(|| {
                format!(
                    "{}@{} is not in the cache ({}); fetching it",
                    r.subject,
                    r.version,
                    self.cache.display()
                )
            })?;
        let v = version_from_json(&meta)?;
        if v.digest != r.digest {
            bail!(
                "{}@{} has digest {} in {}, not the locked {}",
                r.subject,
                r.version,
                v.digest,
                client.base(),
                r.digest
            );
        }
        self.store(&v)?;
        Ok(v)
    }

    fn store(&self, v: &CachedVersion) -> anyhow::Result<()> {
        let path = self.cache_file(&v.digest);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the cache {}", dir.display()))?;
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, serde_json::to_vec(v)?)?;
        std::fs::rename(&tmp, &path)?;
        Ok(())
    }
}

/// A version as the registry answers `GET /v1/subjects/{s}/versions/{n}`, checked: the
/// paths are plain relative paths and the digest matches the content.
pub fn version_from_json(meta: &Value) -> anyhow::Result<CachedVersion> {
    let v: CachedVersion = serde_json::from_value(meta.clone())
        .context("the registry's answer is not a version with files and deps")?;
    for path in v.files.keys() {
        check_relative(path)
            .map_err(|m| anyhow::anyhow!("registry sent a bad path {path:?}: {m}"))?;
    }
    if protoreg_store::version_digest(&v.files, &v.deps) != v.digest {
        bail!(
            "{}@{}: the content does not match its digest {}",
            v.subject,
            v.version,
            v.digest
        );
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buf_references_map_to_subjects() {
        let project = Project {
            root: PathBuf::from("."),
            config: serde_yaml_ng::from_str(
                "subjects: []\nbuf_deps:\n  buf.build/acme/common: acme.common.v1\n",
            )
            .unwrap(),
        };
        assert_eq!(
            project.buf_subject("buf.build/acme/common"),
            "acme.common.v1"
        );
        assert_eq!(
            project.buf_subject("buf.build/acme/common:v3"),
            "acme.common.v1"
        );
        assert_eq!(
            project.buf_subject("buf.build/googleapis/googleapis"),
            "googleapis"
        );
    }
}
