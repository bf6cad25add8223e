//! Finds, reads and compiles `.proto` modules into [`Image`]s.
//!
//! An input is a directory (every `.proto` below it, honouring a `buf.yaml`), explicit files
//! with include paths, a descriptor set (`.binpb`/`.pb`/`.json`), a set of in-memory files
//! (registry pushes) or a git revision of a directory. Everything is compiled with `protox`
//! against an in-memory file map, so every path is checked before anything is read, and all
//! errors of a run are reported as [`Diagnostic`]s (file, line, column, message).

pub mod builtin;
pub mod config;
mod diagnostic;
mod editions;
mod git;
mod image;
pub mod pin;
pub mod render;
pub mod wire;

pub use config::{BreakingConfig, BufConfig};
pub use diagnostic::{Diagnostic, Diagnostics};
pub use git::GitRef;
pub use image::{Image, ImageFile, OutputFormat, SourceInfo};
pub use pin::Lock;

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// Errors that are not compile diagnostics: I/O, config and input errors.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("{path}:{line}:{column}: invalid buf.yaml: {message}")]
    Config {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Input { path: String, message: String },
    #[error("{0}")]
    Compile(Diagnostics),
    #[error("git: {0}")]
    Git(String),
}

/// Largest single `.proto` file accepted (protoc's limit is 2 GiB; nothing real is near 64 MiB).
pub const MAX_FILE_BYTES: usize = 64 << 20;

/// One `.proto` file of a source set.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The import path (`acme/users/v1/users.proto`).
    pub name: String,
    /// How findings and diagnostics name it (`proto/acme/users/v1/users.proto`).
    pub display: String,
    /// The file's text (shared with the image, which keeps it for locations and
    /// diagnostics), or the bytes when they are not UTF-8 (reported at compile time).
    pub text: Result<Arc<str>, Vec<u8>>,
}

/// The `.proto` files of one module, ready to compile.
#[derive(Debug, Clone, Default)]
pub struct SourceSet {
    /// Target files by import path.
    pub files: BTreeMap<String, SourceFile>,
    /// Files that are not targets but may be imported (a registry dependency's files), by
    /// import path; searched after the targets and before `includes`. Parsed only when
    /// imported.
    pub imports: BTreeMap<String, SourceFile>,
    /// Directories searched for imports that are not targets (`-I`).
    pub includes: Vec<PathBuf>,
    /// The `buf.yaml` found at the input's root, if any.
    pub config: Option<BufConfig>,
    /// How much source info [`SourceSet::compile`] keeps in the image.
    pub source_info: SourceInfo,
}

/// Checks that a path from a config, an import or a request is a plain relative path:
/// not empty, not absolute, no `..`, no backslashes or NUL.
pub fn check_relative(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("path is empty".into());
    }
    if path.contains('\\') || path.contains('\0') {
        return Err("path contains a backslash or NUL".into());
    }
    let p = Path::new(path);
    for c in p.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => return Err("path escapes the root (`..`)".into()),
            Component::RootDir | Component::Prefix(_) => return Err("path is absolute".into()),
        }
    }
    Ok(())
}

fn normalize(path: &str) -> String {
    Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn join_display(prefix: &str, rest: &str) -> String {
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() || prefix == "." {
        rest.to_string()
    } else {
        format!("{prefix}/{rest}")
    }
}

fn io_err(path: &Path, e: std::io::Error) -> SchemaError {
    SchemaError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

impl SourceSet {
    /// Every `.proto` below `dir` (relative to its module roots when a `buf.yaml` is there).
    /// `display_prefix` is how `dir` is written in findings (the path the user typed).
    pub fn from_dir(dir: &Path, display_prefix: &str) -> Result<Self, SchemaError> {
        let meta = std::fs::metadata(dir).map_err(|e| io_err(dir, e))?;
        if !meta.is_dir() {
            return Err(SchemaError::Input {
                path: dir.display().to_string(),
                message: "not a directory".into(),
            });
        }
        let config = ["buf.yaml", "buf.yml"]
            .iter()
            .map(|n| dir.join(n))
            .find(|p| p.is_file())
            .map(|p| BufConfig::from_file(&p))
            .transpose()?;
        let (roots, excludes) = match &config {
            Some(c) => (c.roots.clone(), c.excludes.clone()),
            None => (vec![".".to_string()], vec![]),
        };
        let excludes: Vec<String> = excludes.iter().map(|e| normalize(e)).collect();
        let mut set = SourceSet {
            config,
            ..Default::default()
        };
        for root in &roots {
            let root_rel = normalize(root);
            let root_dir = dir.join(&root_rel);
            let mut found = Vec::new();
            walk(&root_dir, &root_dir, &mut found)?;
            found.retain(|rel| {
                let from_dir = join_display(&root_rel, rel);
                !excludes
                    .iter()
                    .any(|e| from_dir == *e || from_dir.starts_with(&format!("{e}/")))
            });
            let texts = read_all(&root_dir, &found);
            for (rel, bytes) in found.into_iter().zip(texts) {
                let from_dir = join_display(&root_rel, &rel);
                let display = join_display(display_prefix, &from_dir);
                let bytes = bytes?;
                if let Some(prev) = set.files.get(&rel) {
                    return Err(SchemaError::Input {
                        path: display,
                        message: format!("{rel:?} is also in another root ({})", prev.display),
                    });
                }
                set.files.insert(
                    rel.clone(),
                    SourceFile {
                        name: rel,
                        display,
                        text: utf8(bytes),
                    },
                );
            }
        }
        Ok(set)
    }

    /// Explicit files, named relative to the first include path that holds them
    /// (or to the current directory when none does).
    pub fn from_files(files: &[PathBuf], includes: &[PathBuf]) -> Result<Self, SchemaError> {
        let mut set = SourceSet {
            includes: includes.to_vec(),
            ..Default::default()
        };
        for f in files {
            let bytes = read_limited(f)?;
            let name = includes
                .iter()
                .find_map(|inc| f.strip_prefix(inc).ok())
                .unwrap_or(f)
                .to_string_lossy()
                .replace('\\', "/");
            let name = normalize(&name);
            check_relative(&name).map_err(|message| SchemaError::Input {
                path: f.display().to_string(),
                message,
            })?;
            set.files.insert(
                name.clone(),
                SourceFile {
                    name,
                    display: f.display().to_string(),
                    text: utf8(bytes),
                },
            );
        }
        Ok(set)
    }

    /// Files given as `path -> text` (a registry push, a git tree). Paths are checked.
    pub fn from_memory(
        files: impl IntoIterator<Item = (String, Vec<u8>)>,
        display_prefix: &str,
    ) -> Result<Self, SchemaError> {
        let mut set = SourceSet::default();
        for (path, bytes) in files {
            check_relative(&path).map_err(|message| SchemaError::Input {
                path: path.clone(),
                message,
            })?;
            if !path.ends_with(".proto") {
                return Err(SchemaError::Input {
                    path,
                    message: "not a .proto file".into(),
                });
            }
            let name = normalize(&path);
            set.files.insert(
                name.clone(),
                SourceFile {
                    display: join_display(display_prefix, &name),
                    name,
                    text: utf8(bytes),
                },
            );
        }
        Ok(set)
    }

    /// Compiles every target file; all errors of the run come back together.
    pub fn compile(&self) -> Result<Image, SchemaError> {
        image::compile(self)
    }
}

/// The files `rels` below `root`, read on two threads (a large module is thousands of
/// small reads), in order.
fn read_all(root: &Path, rels: &[String]) -> Vec<Result<Vec<u8>, SchemaError>> {
    let read =
        |rels: &[String]| -> Vec<_> { rels.iter().map(|r| read_limited(&root.join(r))).collect() };
    if rels.len() < 256 {
        return read(rels);
    }
    let (a, b) = rels.split_at(rels.len() / 2);
    std::thread::scope(|scope| {
        let second = scope.spawn(|| read(b));
        let mut out = read(a);
        out.extend(
            second
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p)),
        );
        out
    })
}

/// A file's bytes as its text, or back as bytes when they are not UTF-8.
pub(crate) fn utf8(bytes: Vec<u8>) -> Result<Arc<str>, Vec<u8>> {
    String::from_utf8(bytes)
        .map(Arc::from)
        .map_err(|e| e.into_bytes())
}

fn read_limited(path: &Path) -> Result<Vec<u8>, SchemaError> {
    let meta = std::fs::metadata(path).map_err(|e| io_err(path, e))?;
    if meta.len() as usize > MAX_FILE_BYTES {
        return Err(SchemaError::Input {
            path: path.display().to_string(),
            message: format!("file is larger than {} MiB", MAX_FILE_BYTES >> 20),
        });
    }
    std::fs::read(path).map_err(|e| io_err(path, e))
}

/// Collects `.proto` files below `dir` as `/`-separated paths relative to `base`, sorted.
/// Symlinks are not followed (a link could point outside the module).
fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), SchemaError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && base == dir => return Ok(()),
        Err(e) => return Err(io_err(dir, e)),
    };
    let mut entries: Vec<_> = rd.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let ft = e.file_type().map_err(|err| io_err(&e.path(), err))?;
        let path = e.path();
        if ft.is_dir() {
            walk(base, &path, out)?;
        } else if ft.is_file() && path.extension().is_some_and(|x| x == "proto") {
            let rel = path.strip_prefix(base).unwrap_or(&path);
            let rel = rel.to_string_lossy().replace('\\', "/");
            out.push(rel);
        }
    }
    Ok(())
}

/// What a command-line input names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A module directory.
    Dir(PathBuf),
    /// A descriptor set file (`.binpb`, `.pb`, `.bin`, `.json`).
    DescriptorSet(PathBuf),
    /// A directory at a git revision.
    Git(GitRef),
    /// One `.proto` file.
    File(PathBuf),
}

/// A loaded input: the compiled image and the `buf.yaml` found with it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub image: Image,
    pub config: Option<BufConfig>,
}

impl Input {
    /// Classifies an input string: `DIR#ref=REV` is git, a file ending in `.proto` is a file,
    /// another existing file is a descriptor set, anything else a directory.
    pub fn parse(spec: &str) -> Result<Input, SchemaError> {
        if let Some((mut git, subdir)) = GitRef::parse(spec) {
            if let Some(sub) = subdir {
                check_relative(&sub).map_err(|message| SchemaError::Input {
                    path: spec.to_string(),
                    message,
                })?;
                git.dir = git.dir.join(sub);
            }
            return Ok(Input::Git(git));
        }
        let path = PathBuf::from(spec);
        if path.is_dir() {
            return Ok(Input::Dir(path));
        }
        if path.is_file() {
            if path.extension().is_some_and(|e| e == "proto") {
                return Ok(Input::File(path));
            }
            return Ok(Input::DescriptorSet(path));
        }
        Err(SchemaError::Input {
            path: spec.to_string(),
            message: "no such file or directory".into(),
        })
    }

    /// Reads and compiles the input. `includes` add `-I` import paths.
    pub fn load(&self, includes: &[PathBuf]) -> Result<Loaded, SchemaError> {
        self.load_with(includes, &BTreeMap::new(), SourceInfo::Full)
    }

    /// Reads and compiles the input; imports that are not in it resolve against `imports`
    /// (dependencies' files by import path), then `includes`.
    pub fn load_with(
        &self,
        includes: &[PathBuf],
        imports: &BTreeMap<String, SourceFile>,
        source_info: SourceInfo,
    ) -> Result<Loaded, SchemaError> {
        match self.read_with(includes, imports)? {
            Some(mut set) => {
                set.source_info = source_info;
                Ok(Loaded {
                    image: set.compile()?,
                    config: set.config,
                })
            }
            None => match self {
                Input::DescriptorSet(path) => Ok(Loaded {
                    image: Image::from_descriptor_set_file(path)?,
                    config: None,
                }),
                _ => unreachable!("only descriptor sets have no sources"),
            },
        }
    }

    /// Reads the input's `.proto` files without compiling them (`None` for a descriptor set,
    /// which has no sources).
    pub fn read_with(
        &self,
        includes: &[PathBuf],
        imports: &BTreeMap<String, SourceFile>,
    ) -> Result<Option<SourceSet>, SchemaError> {
        let (mut set, empty) = match self {
            Input::Dir(dir) => (
                SourceSet::from_dir(dir, &dir.to_string_lossy())?,
                SchemaError::Input {
                    path: dir.display().to_string(),
                    message: "no .proto files found in this directory".into(),
                },
            ),
            Input::File(file) => {
                let mut set = SourceSet::from_files(std::slice::from_ref(file), includes)?;
                // A single file is not a module: no buf.yaml is read for it.
                set.config = None;
                (
                    set,
                    SchemaError::Input {
                        path: file.display().to_string(),
                        message: "no .proto file".into(),
                    },
                )
            }
            Input::DescriptorSet(_) => return Ok(None),
            Input::Git(git) => (
                git.load(&git.dir.to_string_lossy())?,
                SchemaError::Input {
                    path: format!("{}@{}", git.dir.display(), git.rev),
                    message: "no .proto files at this revision".into(),
                },
            ),
        };
        if set.files.is_empty() {
            return Err(empty);
        }
        set.includes = includes.to_vec();
        set.imports = imports.clone();
        Ok(Some(set))
    }
}
