//! `buf.yaml` (v1beta1, v1, v2): the parts protoreg reads — module roots and excludes for
//! building, and the `breaking` section for the checker.

use serde::Deserialize;
use std::path::Path;

use crate::SchemaError;

/// The `breaking` section of a `buf.yaml`, version-independent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BreakingConfig {
    /// The config file's version (`v1beta1`, `v1`, `v2`); rule ids and defaults depend on it.
    pub version: String,
    pub use_ids: Vec<String>,
    pub except: Vec<String>,
    /// Paths (files or directories, relative to the module root) to ignore for every rule.
    pub ignore: Vec<String>,
    /// Rule id or category -> paths to ignore for that rule only.
    pub ignore_only: Vec<(String, Vec<String>)>,
    pub ignore_unstable_packages: bool,
}

/// A parsed `buf.yaml`.
#[derive(Debug, Clone, Default)]
pub struct BufConfig {
    pub version: String,
    /// Module roots relative to the config's directory (`.` when none is given).
    pub roots: Vec<String>,
    /// Paths excluded from the build, relative to the config's directory.
    pub excludes: Vec<String>,
    pub breaking: BreakingConfig,
    /// `deps:`: module references (`buf.build/acme/common[:ref]`) the module imports from.
    pub deps: Vec<String>,
}

#[derive(Deserialize, Default)]
struct RawBreaking {
    #[serde(default, rename = "use")]
    use_ids: Vec<String>,
    #[serde(default)]
    except: Vec<String>,
    #[serde(default)]
    ignore: Vec<String>,
    #[serde(default)]
    ignore_only: std::collections::BTreeMap<String, Vec<String>>,
    #[serde(default)]
    ignore_unstable_packages: bool,
}

#[derive(Deserialize, Default)]
struct RawBuild {
    #[serde(default)]
    roots: Vec<String>,
    #[serde(default)]
    excludes: Vec<String>,
}

#[derive(Deserialize)]
struct RawModule {
    #[serde(default = "dot")]
    path: String,
    #[serde(default)]
    excludes: Vec<String>,
    #[serde(default)]
    breaking: Option<RawBreaking>,
}

fn dot() -> String {
    ".".to_string()
}

#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    build: Option<RawBuild>,
    #[serde(default)]
    modules: Vec<RawModule>,
    #[serde(default)]
    breaking: Option<RawBreaking>,
    #[serde(default)]
    deps: Vec<String>,
}

impl BufConfig {
    /// Reads `buf.yaml` or `buf.work.yaml`-less v2 config from a file.
    pub fn from_file(path: &Path) -> Result<Self, SchemaError> {
        let text = std::fs::read_to_string(path).map_err(|e| SchemaError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses the text of a `buf.yaml`; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, SchemaError> {
        let raw: RawConfig = if text.trim().is_empty() {
            RawConfig {
                version: None,
                build: None,
                modules: Vec::new(),
                breaking: None,
                deps: Vec::new(),
            }
        } else {
            serde_yaml_ng::from_str(text).map_err(|e| {
                let (line, column) = e
                    .location()
                    .map(|l| (l.line(), l.column()))
                    .unwrap_or((1, 1));
                SchemaError::Config {
                    path: origin.to_string(),
                    line,
                    column,
                    message: e.to_string(),
                }
            })?
        };
        let version = raw.version.unwrap_or_else(|| "v1beta1".to_string());
        if !matches!(version.as_str(), "v1beta1" | "v1" | "v2") {
            return Err(SchemaError::Config {
                path: origin.to_string(),
                line: 1,
                column: 1,
                message: format!(
                    "unknown buf.yaml version {version:?} (expected v1beta1, v1 or v2)"
                ),
            });
        }
        let mut roots = Vec::new();
        let mut excludes = Vec::new();
        let mut breaking = raw.breaking;
        if version == "v2" {
            for m in raw.modules {
                excludes.extend(m.excludes.iter().cloned());
                roots.push(m.path);
                if breaking.is_none() {
                    breaking = m.breaking;
                }
            }
        } else if let Some(build) = raw.build {
            roots = build.roots;
            excludes = build.excludes;
        }
        if roots.is_empty() {
            roots.push(".".to_string());
        }
        for p in roots.iter().chain(excludes.iter()) {
            crate::check_relative(p).map_err(|message| SchemaError::Config {
                path: origin.to_string(),
                line: 1,
                column: 1,
                message: format!("path {p:?}: {message}"),
            })?;
        }
        let b = breaking.unwrap_or_default();
        Ok(BufConfig {
            breaking: BreakingConfig {
                version: version.clone(),
                use_ids: b.use_ids,
                except: b.except,
                ignore: b.ignore,
                ignore_only: b.ignore_only.into_iter().collect(),
                ignore_unstable_packages: b.ignore_unstable_packages,
            },
            version,
            roots,
            excludes,
            deps: raw.deps,
        })
    }
}
