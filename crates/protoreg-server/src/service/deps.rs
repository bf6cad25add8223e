//! Dependencies between subjects: resolving `subject@N|latest` references to concrete
//! versions, collecting the files of their closure (each dependency's own dependencies
//! included), and judging a new version by its effect on the versions that depend on it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use protoreg_store::{DepRef, Store, StoreError, VersionMeta};

use crate::api::{BrokenDependent as Broken, DiagnosticBody};

/// Largest number of direct dependencies of one push.
pub const MAX_DEPS: usize = 64;

/// Why dependencies cannot be resolved.
#[derive(Debug, thiserror::Error)]
pub enum DepError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("dependency cycle: {0}")]
    Cycle(String),
    #[error("{path} is provided by both {first} and {second} with different content")]
    Conflict {
        path: String,
        first: String,
        second: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A file of a dependency closure: its text and the version that provides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepFile {
    pub text: String,
    pub provider: String,
}

/// Import path -> file, for every file of a closure.
pub type DepFiles = BTreeMap<String, DepFile>;

/// Splits `SUBJECT@N`, `SUBJECT@latest` or `SUBJECT` (latest): [`crate::api::parse_dep_spec`].
pub fn parse_spec(spec: &str) -> Result<(String, Option<i64>), DepError> {
    crate::api::parse_dep_spec(spec).map_err(DepError::BadRequest)
}

/// Resolves a push's dependency references to concrete live versions (`@latest` now).
pub async fn resolve(
    store: &Store,
    subject: &str,
    specs: &[String],
) -> Result<Vec<DepRef>, DepError> {
    if specs.len() > MAX_DEPS {
        return Err(DepError::BadRequest(format!(
            "too many dependencies ({} > {MAX_DEPS})",
            specs.len()
        )));
    }
    let mut out: Vec<DepRef> = Vec::new();
    for spec in specs {
        let (dep, n) = parse_spec(spec)?;
        if dep == subject {
            return Err(DepError::Cycle(format!("{subject} depends on itself")));
        }
        let meta = store
            .version_meta(&dep, n, false)
            .await?
            .ok_or_else(|| match n {
                Some(n) => DepError::NotFound(format!(
                    "dependency {spec:?}: no version {n} of subject {dep:?}"
                )),
                None => DepError::NotFound(format!(
                    "dependency {spec:?}: subject {dep:?} has no live version"
                )),
            })?;
        if let Some(prev) = out.iter().find(|d| d.subject == dep) {
            if prev.version != meta.version {
                return Err(DepError::BadRequest(format!(
                    "{dep} is named twice, at versions {} and {}",
                    prev.version, meta.version
                )));
            }
            continue;
        }
        out.push(DepRef {
            subject: dep,
            version: meta.version,
            digest: meta.digest,
            name: None,
        });
    }
    Ok(out)
}

/// Closures already collected, by (subject, dependencies). A dependency names its version's
/// digest and versions never change, so a closure stays true: no invalidation is needed.
#[derive(Default)]
pub struct ClosureCache(std::sync::Mutex<std::collections::HashMap<ClosureKey, Arc<DepFiles>>>);

type ClosureKey = (String, Vec<DepRef>);

impl ClosureCache {
    const CAPACITY: usize = 256;

    /// The closure of `deps` for `subject`, from the cache or collected (and kept).
    pub async fn get(
        &self,
        store: &Store,
        subject: &str,
        deps: &[DepRef],
    ) -> Result<Arc<DepFiles>, DepError> {
        let key = (subject.to_string(), deps.to_vec());
        if let Some(hit) = self.0.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(hit.clone());
        }
        let files = Arc::new(closure(store, subject, deps, None).await?);
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= Self::CAPACITY {
            map.clear();
        }
        map.insert(key, files.clone());
        Ok(files)
    }
}

/// Every file of the closure of `deps` (their own dependencies, transitively). Two versions
/// that provide one path with different texts are a conflict; reaching `subject` again is a
/// cycle. `replace` stands in for one subject's files and dependencies (impact checks).
pub async fn closure(
    store: &Store,
    subject: &str,
    deps: &[DepRef],
    replace: Option<(&str, &BTreeMap<String, String>, &[DepRef])>,
) -> Result<DepFiles, DepError> {
    let mut files = DepFiles::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    // (version, the chain that led to it)
    let mut queue: VecDeque<(DepRef, Vec<String>)> = deps
        .iter()
        .map(|d| (d.clone(), vec![subject.to_string()]))
        .collect();
    while let Some((dep, chain)) = queue.pop_front() {
        let label = format!("{}@{}", dep.subject, dep.version);
        let mut chain = chain;
        chain.push(label.clone());
        if dep.subject == subject {
            return Err(DepError::Cycle(chain.join(" -> ")));
        }
        if !seen.insert(label.clone()) {
            continue;
        }
        let (own, next) = match replace {
            Some((s, f, d)) if s == dep.subject => (f.clone(), d.to_vec()),
            _ => {
                let meta = store
                    .version_meta(&dep.subject, Some(dep.version), true)
                    .await?
                    .ok_or_else(|| DepError::NotFound(format!("no version {label}")))?;
                (
                    store.files(&dep.subject, dep.version).await?,
                    meta.deps.clone(),
                )
            }
        };
        // A Confluent reference names the import path its (one-file) version is known by.
        let own = match &dep.name {
            Some(name) if own.len() == 1 => {
                own.into_values().map(|text| (name.clone(), text)).collect()
            }
            _ => own,
        };
        for (path, text) in own {
            match files.get(&path) {
                Some(f) if f.text != text => {
                    return Err(DepError::Conflict {
                        path,
                        first: f.provider.clone(),
                        second: label.clone(),
                    });
                }
                Some(_) => {}
                None => {
                    files.insert(
                        path,
                        DepFile {
                            text,
                            provider: label.clone(),
                        },
                    );
                }
            }
        }
        for d in next {
            queue.push_back((d, chain.clone()));
        }
    }
    Ok(files)
}

/// The effect of a new version of `subject` (its files and resolved dependencies) on the
/// latest version of every subject that depends on it: which still compile and which do not.
pub async fn impact(
    store: &Store,
    subject: &str,
    files: &BTreeMap<String, String>,
    deps: &[DepRef],
) -> Result<(Vec<VersionMeta>, Vec<Broken>), DepError> {
    let dependents = store.latest_dependents(subject).await?;
    let mut broken = Vec::new();
    for t in &dependents {
        let own = store.files(&t.subject, t.version).await?;
        let imports = match closure(store, &t.subject, &t.deps, Some((subject, files, deps))).await
        {
            Ok(f) => f,
            Err(e @ (DepError::Conflict { .. } | DepError::Cycle(_))) => {
                broken.push(Broken {
                    subject: t.subject.clone(),
                    version: t.version,
                    diagnostics: vec![DiagnosticBody::message(e.to_string())],
                });
                continue;
            }
            Err(e) => return Err(e),
        };
        let result = super::blocking(move || super::domain::compile(&own, &imports))
            .await
            .map_err(|e| DepError::BadRequest(format!("{e:?}")))?;
        match result {
            Ok(_) => {}
            Err(super::domain::PushError::Compile(diags)) => broken.push(Broken {
                subject: t.subject.clone(),
                version: t.version,
                diagnostics: diags.iter().map(DiagnosticBody::from).collect(),
            }),
            Err(super::domain::PushError::BadRequest(m)) => broken.push(Broken {
                subject: t.subject.clone(),
                version: t.version,
                diagnostics: vec![DiagnosticBody::message(m)],
            }),
        }
    }
    Ok((dependents, broken))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(parse_spec("a.b@3").unwrap(), ("a.b".into(), Some(3)));
        assert_eq!(parse_spec("a.b@latest").unwrap(), ("a.b".into(), None));
        assert_eq!(parse_spec("a.b").unwrap(), ("a.b".into(), None));
        assert!(parse_spec("a.b@0").is_err());
        assert!(parse_spec("../x@1").is_err());
    }
}
