//! Reading a directory as it is at a git revision, straight from the object store (no
//! checkout, so it works in a pre-commit hook on a dirty tree). Uses the `git` command.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{BufConfig, SchemaError, SourceFile, SourceSet};

/// A directory at a git revision: `--against .git#ref=main` or `--against-git main`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitRef {
    /// A directory inside the work tree (the input directory).
    pub dir: PathBuf,
    /// Any revision git understands (`main`, `HEAD~1`, a commit id, a tag).
    pub rev: String,
}

impl GitRef {
    /// Parses buf's form `PATH#ref=REV` (also `branch=`, `tag=`, `commit=`), with PATH the
    /// `.git` directory or any directory of the work tree; `subdir=` selects a folder.
    pub fn parse(input: &str) -> Option<(GitRef, Option<String>)> {
        let (path, opts) = input.split_once('#')?;
        let mut rev = None;
        let mut subdir = None;
        for kv in opts.split(',') {
            let (k, v) = kv.split_once('=')?;
            match k {
                "ref" | "branch" | "tag" | "commit" => rev = Some(v.to_string()),
                "subdir" => subdir = Some(v.to_string()),
                _ => return None,
            }
        }
        let path = Path::new(path);
        let dir = if path.file_name().is_some_and(|n| n == ".git") {
            path.parent().map(Path::to_path_buf).unwrap_or_default()
        } else {
            path.to_path_buf()
        };
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        Some((GitRef { dir, rev: rev? }, subdir))
    }

    fn git(&self, args: &[&str]) -> Result<Vec<u8>, SchemaError> {
        let out = Command::new("git")
            .arg("-C")
            .arg(&self.dir)
            .args(args)
            .output()
            .map_err(|e| SchemaError::Git(format!("cannot run git: {e}")))?;
        if !out.status.success() {
            return Err(SchemaError::Git(format!(
                "git {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(out.stdout)
    }

    /// The full id of the commit the revision names.
    pub fn commit_id(&self) -> Result<String, SchemaError> {
        let spec = format!("{}^{{commit}}", self.rev);
        let out = self.git(&["rev-parse", "--verify", "--quiet", &spec])?;
        Ok(String::from_utf8_lossy(&out).trim().to_string())
    }

    /// Loads every `.proto` under the directory (and the `buf.yaml` there) at the revision.
    /// `display_prefix` is how findings name the directory.
    pub fn load(&self, display_prefix: &str) -> Result<SourceSet, SchemaError> {
        let prefix = String::from_utf8_lossy(&self.git(&["rev-parse", "--show-prefix"])?)
            .trim()
            .to_string();
        let tree = format!("{}:{}", self.rev, prefix);
        let listing = self.git(&["ls-tree", "--full-tree", "-r", "-z", &tree])?;
        // Each entry: "<mode> <type> <oid>\t<path>\0"
        let mut entries = Vec::new();
        for rec in listing.split(|b| *b == 0).filter(|r| !r.is_empty()) {
            let rec = String::from_utf8_lossy(rec);
            let Some((meta, path)) = rec.split_once('\t') else {
                continue;
            };
            let mut parts = meta.split(' ');
            let (_mode, kind, oid) = (parts.next(), parts.next(), parts.next());
            if kind != Some("blob") {
                continue;
            }
            if path.ends_with(".proto") || path == "buf.yaml" {
                entries.push((path.to_string(), oid.unwrap_or_default().to_string()));
            }
        }
        let blobs = self.cat_blobs(entries.iter().map(|(_, oid)| oid.as_str()))?;
        let mut config = None;
        let mut files = Vec::new();
        for ((path, _), bytes) in entries.into_iter().zip(blobs) {
            if path == "buf.yaml" {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                config = Some(BufConfig::parse(
                    &text,
                    &format!("{}@{}/buf.yaml", display_prefix, self.rev),
                )?);
            } else {
                files.push((path, bytes));
            }
        }
        let roots = config
            .as_ref()
            .map(|c| c.roots.clone())
            .unwrap_or_else(|| vec![".".into()]);
        let excludes = config
            .as_ref()
            .map(|c| c.excludes.clone())
            .unwrap_or_default();
        let mut set = SourceSet {
            config,
            ..Default::default()
        };
        for (path, bytes) in files {
            if excludes
                .iter()
                .any(|e| path == *e || path.starts_with(&format!("{}/", e.trim_end_matches('/'))))
            {
                continue;
            }
            for root in &roots {
                let root = root.trim_start_matches("./").trim_end_matches('/');
                let name = if root.is_empty() || root == "." {
                    Some(path.as_str())
                } else {
                    path.strip_prefix(&format!("{root}/"))
                };
                if let Some(name) = name {
                    set.files.insert(
                        name.to_string(),
                        SourceFile {
                            name: name.to_string(),
                            display: crate::join_display(display_prefix, &path),
                            text: crate::utf8(bytes.clone()),
                        },
                    );
                }
            }
        }
        Ok(set)
    }

    fn cat_blobs<'a>(
        &self,
        oids: impl Iterator<Item = &'a str>,
    ) -> Result<Vec<Vec<u8>>, SchemaError> {
        let mut child = Command::new("git")
            .arg("-C")
            .arg(&self.dir)
            .args(["cat-file", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| SchemaError::Git(format!("cannot run git: {e}")))?;
        let input: String = oids.map(|o| format!("{o}\n")).collect();
        let mut stdin = child.stdin.take().expect("piped stdin");
        let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
        let mut out = Vec::new();
        child
            .stdout
            .take()
            .expect("piped stdout")
            .read_to_end(&mut out)
            .map_err(|e| SchemaError::Git(e.to_string()))?;
        let _ = writer.join();
        child.wait().map_err(|e| SchemaError::Git(e.to_string()))?;
        // Output: "<oid> blob <size>\n<bytes>\n" per object.
        let mut blobs = Vec::new();
        let mut i = 0;
        while i < out.len() {
            let nl = out[i..]
                .iter()
                .position(|b| *b == b'\n')
                .map(|p| p + i)
                .ok_or_else(|| SchemaError::Git("truncated cat-file output".into()))?;
            let header = String::from_utf8_lossy(&out[i..nl]).to_string();
            let size: usize = header
                .rsplit(' ')
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| {
                    SchemaError::Git(format!("unexpected cat-file header {header:?}"))
                })?;
            let start = nl + 1;
            let end = start + size;
            if end > out.len() {
                return Err(SchemaError::Git("truncated cat-file output".into()));
            }
            blobs.push(out[start..end].to_vec());
            i = end + 1;
        }
        Ok(blobs)
    }
}
