//! What the file pages need from a version's descriptor set, computed once per version and
//! kept (versions never change): where every type is defined, where each file refers to a
//! type (to link it), and each definition's leading comment (its documentation).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use prost::Message;
use prost_types::{DescriptorProto, FileDescriptorProto, FileDescriptorSet, SourceCodeInfo};

/// `FileDescriptorProto` field numbers (descriptor.proto) the index walks.
mod path {
    pub const FILE_MESSAGE: i32 = 4;
    pub const FILE_ENUM: i32 = 5;
    pub const FILE_SERVICE: i32 = 6;
    pub const FILE_EXTENSION: i32 = 7;
    pub const MESSAGE_FIELD: i32 = 2;
    pub const MESSAGE_NESTED: i32 = 3;
    pub const MESSAGE_ENUM: i32 = 4;
    pub const MESSAGE_EXTENSION: i32 = 6;
    pub const FIELD_TYPE_NAME: i32 = 6;
    pub const SERVICE_METHOD: i32 = 2;
    pub const METHOD_INPUT: i32 = 2;
    pub const METHOD_OUTPUT: i32 = 3;
}

/// A type named in a file: where (0-based line, character columns) and which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeRef {
    pub line: usize,
    pub start: usize,
    pub end: usize,
    /// Fully qualified, without the leading dot.
    pub target: String,
}

/// A definition with its documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doc {
    /// message, enum, service or rpc.
    pub kind: &'static str,
    pub name: String,
    /// 1-based.
    pub line: usize,
    pub comment: String,
}

/// The index of one version.
#[derive(Debug, Default)]
pub struct VersionIndex {
    /// Fully qualified name -> (file path, 1-based line).
    pub defs: HashMap<String, (String, usize)>,
    /// Per file of the version: its type references and its documented definitions.
    pub refs: HashMap<String, Vec<TypeRef>>,
    pub docs: HashMap<String, Vec<Doc>>,
}

impl VersionIndex {
    /// Indexes the descriptor set `bytes`; references and docs only for `own` files.
    pub fn build(bytes: &[u8], own: &BTreeSet<String>) -> Result<VersionIndex, prost::DecodeError> {
        let set = FileDescriptorSet::decode(bytes)?;
        let mut index = VersionIndex::default();
        for file in &set.file {
            let mut walk = Walk {
                file,
                locations: locations(file.source_code_info.as_ref()),
                own: own.contains(file.name()),
                index: &mut index,
            };
            walk.file();
        }
        Ok(index)
    }
}

/// Source locations by path: (span, leading comment).
type Locations<'a> = HashMap<&'a [i32], (&'a [i32], &'a str)>;

fn locations(info: Option<&SourceCodeInfo>) -> Locations<'_> {
    let mut out = HashMap::new();
    for l in info.map(|i| i.location.as_slice()).unwrap_or_default() {
        out.entry(l.path.as_slice()).or_insert((
            l.span.as_slice(),
            l.leading_comments.as_deref().unwrap_or(""),
        ));
    }
    out
}

struct Walk<'a, 'i> {
    file: &'a FileDescriptorProto,
    locations: Locations<'a>,
    own: bool,
    index: &'i mut VersionIndex,
}

impl Walk<'_, '_> {
    fn file(&mut self) {
        let package = self.file.package().to_string();
        for (i, m) in self.file.message_type.iter().enumerate() {
            self.message(&package, m, vec![path::FILE_MESSAGE, i as i32]);
        }
        for (i, e) in self.file.enum_type.iter().enumerate() {
            self.define(
                "enum",
                &join(&package, e.name()),
                &[path::FILE_ENUM, i as i32],
            );
        }
        for (i, s) in self.file.service.iter().enumerate() {
            let at = vec![path::FILE_SERVICE, i as i32];
            let name = join(&package, s.name());
            self.define("service", &name, &at);
            for (j, m) in s.method.iter().enumerate() {
                let mut mp = at.clone();
                mp.extend([path::SERVICE_METHOD, j as i32]);
                self.define("rpc", &format!("{name}.{}", m.name()), &mp);
                for (field, ty) in [
                    (path::METHOD_INPUT, m.input_type()),
                    (path::METHOD_OUTPUT, m.output_type()),
                ] {
                    let mut tp = mp.clone();
                    tp.push(field);
                    self.reference(&tp, ty);
                }
            }
        }
        for (i, f) in self.file.extension.iter().enumerate() {
            self.reference(
                &[path::FILE_EXTENSION, i as i32, path::FIELD_TYPE_NAME],
                f.type_name(),
            );
        }
    }

    fn message(&mut self, scope: &str, m: &DescriptorProto, at: Vec<i32>) {
        let name = join(scope, m.name());
        if m.options.as_ref().is_some_and(|o| o.map_entry()) {
            return;
        }
        self.define("message", &name, &at);
        for (j, f) in m.field.iter().enumerate() {
            let mut p = at.clone();
            p.extend([path::MESSAGE_FIELD, j as i32, path::FIELD_TYPE_NAME]);
            self.reference(&p, f.type_name());
        }
        for (j, f) in m.extension.iter().enumerate() {
            let mut p = at.clone();
            p.extend([path::MESSAGE_EXTENSION, j as i32, path::FIELD_TYPE_NAME]);
            self.reference(&p, f.type_name());
        }
        for (j, n) in m.nested_type.iter().enumerate() {
            let mut p = at.clone();
            p.extend([path::MESSAGE_NESTED, j as i32]);
            self.message(&name, n, p);
        }
        for (j, e) in m.enum_type.iter().enumerate() {
            let mut p = at.clone();
            p.extend([path::MESSAGE_ENUM, j as i32]);
            self.define("enum", &join(&name, e.name()), &p);
        }
    }

    fn define(&mut self, kind: &'static str, name: &str, at: &[i32]) {
        let Some((span, comment)) = self.locations.get(at).copied() else {
            return;
        };
        let line = span.first().map_or(0, |l| *l as usize) + 1;
        if kind != "rpc" {
            self.index
                .defs
                .insert(name.to_string(), (self.file.name().to_string(), line));
        }
        if self.own {
            self.index
                .docs
                .entry(self.file.name().to_string())
                .or_default()
                .push(Doc {
                    kind,
                    name: name.to_string(),
                    line,
                    comment: comment
                        .lines()
                        .map(|l| l.strip_prefix(' ').unwrap_or(l))
                        .collect::<Vec<_>>()
                        .join("\n")
                        .trim()
                        .to_string(),
                });
        }
    }

    fn reference(&mut self, at: &[i32], type_name: &str) {
        if !self.own || type_name.is_empty() {
            return;
        }
        let Some((span, _)) = self.locations.get(at).copied() else {
            return;
        };
        // Single-line spans only: [line, start column, end column].
        if let [line, start, end] = *span {
            self.index
                .refs
                .entry(self.file.name().to_string())
                .or_default()
                .push(TypeRef {
                    line: line as usize,
                    start: start as usize,
                    end: end as usize,
                    target: type_name.trim_start_matches('.').to_string(),
                });
        }
    }
}

fn join(scope: &str, name: &str) -> String {
    if scope.is_empty() {
        name.to_string()
    } else {
        format!("{scope}.{name}")
    }
}

/// Indexes by (subject, version), and computed diffs, the few most recent of each (a
/// googleapis version's index is a few megabytes, a diff between two releases more).
#[derive(Default)]
pub struct IndexCache(
    Mutex<Vec<(VersionKey, Arc<VersionIndex>)>>,
    Mutex<Vec<(DiffKey, Arc<DiffResult>)>>,
);

use super::pages::{DiffKey, DiffResult};

/// (subject, version number).
type VersionKey = (String, i64);

impl IndexCache {
    const KEEP: usize = 8;

    pub fn get(&self, subject: &str, n: i64) -> Option<Arc<VersionIndex>> {
        let list = self.0.lock().unwrap_or_else(|e| e.into_inner());
        list.iter()
            .find(|((s, v), _)| s == subject && *v == n)
            .map(|(_, i)| i.clone())
    }

    pub fn put(&self, subject: &str, n: i64, index: Arc<VersionIndex>) {
        let mut list = self.0.lock().unwrap_or_else(|e| e.into_inner());
        list.retain(|((s, v), _)| !(s == subject && *v == n));
        if list.len() >= Self::KEEP {
            list.remove(0);
        }
        list.push(((subject.to_string(), n), index));
    }

    pub fn diff(&self, key: &DiffKey) -> Option<Arc<DiffResult>> {
        let list = self.1.lock().unwrap_or_else(|e| e.into_inner());
        list.iter().find(|(k, _)| k == key).map(|(_, d)| d.clone())
    }

    pub fn put_diff(&self, key: DiffKey, diff: Arc<DiffResult>) {
        const KEEP_DIFFS: usize = 4;
        let mut list = self.1.lock().unwrap_or_else(|e| e.into_inner());
        list.retain(|(k, _)| *k != key);
        if list.len() >= KEEP_DIFFS {
            list.remove(0);
        }
        list.push((key, diff));
    }
}
