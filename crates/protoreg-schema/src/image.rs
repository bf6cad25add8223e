//! Compiling a [`SourceSet`] into an [`Image`], and reading/writing descriptor sets.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use miette::Diagnostic as _;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage};
use prost_types::{FileDescriptorProto, FileDescriptorSet};
use protox::file::{
    ChainFileResolver, File, FileResolver, GoogleFileResolver, IncludeFileResolver,
};

use crate::diagnostic::{Diagnostic, Diagnostics, line_col};
use crate::{SchemaError, SourceSet, check_relative, editions};

/// One file of an image: its descriptor, whether it is only an import, and how to name it.
#[derive(Debug, Clone)]
pub struct ImageFile {
    pub proto: FileDescriptorProto,
    pub is_import: bool,
    /// Path shown in findings (disk path as the user named the input).
    pub display: String,
    /// `google.protobuf.Edition` number for editions files (1000 = 2023).
    pub edition: Option<i32>,
}

/// A compiled, linked set of files (targets and their imports), sorted by name.
#[derive(Debug, Clone, Default)]
pub struct Image {
    pub files: Vec<ImageFile>,
}

/// Output encodings for `protoreg build -o`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Binary,
    Json,
}

impl OutputFormat {
    /// `.json` is JSON; everything else (`.binpb`, `.pb`, ...) is binary.
    pub fn from_path(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => OutputFormat::Json,
            _ => OutputFormat::Binary,
        }
    }
}

/// Serves the source set's files (after the editions shim) and the bundled feature files.
struct MemResolver {
    files: BTreeMap<String, Arc<str>>,
}

impl FileResolver for MemResolver {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match self.files.get(name) {
            Some(text) => File::from_source(name, text),
            None => match editions::bundled(name) {
                Some(text) => File::from_source(name, text),
                None => Err(protox::Error::file_not_found(name)),
            },
        }
    }
}

/// Include-path lookups, refusing names that would leave the include directory.
struct SafeInclude(IncludeFileResolver);

impl FileResolver for SafeInclude {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        if check_relative(name).is_err() {
            return Err(protox::Error::file_not_found(name));
        }
        self.0.open_file(name)
    }
}

pub(crate) fn compile(set: &SourceSet) -> Result<Image, SchemaError> {
    let mut diags: BTreeSet<Diagnostic> = BTreeSet::new();
    let mut texts: BTreeMap<String, Arc<str>> = BTreeMap::new();
    let mut shimmed: BTreeMap<String, (i32, Vec<editions::Insertion>)> = BTreeMap::new();
    let mut originals: BTreeMap<String, Arc<str>> = BTreeMap::new();
    if set.files.is_empty() {
        return Err(SchemaError::Input {
            path: ".".into(),
            message: "no .proto files found".into(),
        });
    }
    for (name, f) in &set.files {
        if editions::bundled(name).is_some() {
            // A vendored copy of a feature file protox cannot compile (edition_defaults
            // lists): the bundled equivalent is used, as an import.
            continue;
        }
        match &f.text {
            Ok(text) => {
                let (compiled, edition, insertions) = editions::shim(text);
                if let Some(ed) = edition {
                    shimmed.insert(name.clone(), (ed, insertions));
                }
                texts.insert(name.clone(), Arc::from(compiled.as_str()));
                originals.insert(name.clone(), Arc::from(text.as_str()));
            }
            Err(bytes) => {
                let valid = std::str::from_utf8(bytes)
                    .map_err(|e| e.valid_up_to())
                    .err()
                    .unwrap_or(0);
                let (line, column) = line_col(&String::from_utf8_lossy(&bytes[..valid]), valid);
                diags.insert(Diagnostic {
                    path: f.display.clone(),
                    line,
                    column,
                    message: format!(
                        "file is not valid UTF-8 (invalid byte 0x{:02x})",
                        bytes[valid]
                    ),
                    span: None,
                    source: None,
                });
            }
        }
    }
    let mut chain = ChainFileResolver::new();
    chain.add(MemResolver {
        files: texts.clone(),
    });
    for inc in &set.includes {
        chain.add(SafeInclude(IncludeFileResolver::new(inc.clone())));
    }
    chain.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(chain);
    compiler.include_source_info(true).include_imports(true);

    let display_of = |name: &str| -> String {
        set.files
            .get(name)
            .map(|f| f.display.clone())
            .unwrap_or_else(|| name.to_string())
    };
    for name in texts.keys() {
        if let Err(e) = compiler.open_file(name) {
            for d in to_diagnostics(&e, &originals, &display_of) {
                diags.insert(d);
            }
        }
    }
    if !diags.is_empty() {
        return Err(SchemaError::Compile(Diagnostics(
            diags.into_iter().collect(),
        )));
    }
    let fds = compiler.file_descriptor_set();
    let mut files = Vec::with_capacity(fds.file.len());
    for mut proto in fds.file {
        let name = proto.name().to_string();
        let edition = shimmed.get(&name).map(|(ed, insertions)| {
            editions::mark(&mut proto);
            editions::fix_source_info(&mut proto, insertions);
            *ed
        });
        files.push(ImageFile {
            edition,
            is_import: !texts.contains_key(&name),
            display: display_of(&name),
            proto,
        });
    }
    files.sort_by(|a, b| a.proto.name().cmp(b.proto.name()));
    Ok(Image { files })
}

fn to_diagnostics(
    e: &protox::Error,
    originals: &BTreeMap<String, Arc<str>>,
    display_of: &dyn Fn(&str) -> String,
) -> Vec<Diagnostic> {
    let file = e.file().unwrap_or("").to_string();
    let source = originals.get(&file).cloned();
    let display = if file.is_empty() {
        "<input>".to_string()
    } else {
        display_of(&file)
    };
    let mut out = Vec::new();
    let mut push = |d: &dyn miette::Diagnostic| {
        let span = d
            .labels()
            .and_then(|mut l| l.next())
            .map(|l| (l.offset(), l.len()));
        let mut message = d.to_string();
        if let Some(help) = d.help() {
            message = format!("{message} ({help})");
        }
        out.push(Diagnostic::at_offset(
            &display,
            source.clone(),
            span,
            message,
        ));
    };
    match e.related() {
        Some(related) => {
            let rel: Vec<_> = related.collect();
            if rel.is_empty() {
                push(e);
            }
            for r in rel {
                push(r);
            }
        }
        None => push(e),
    }
    out
}

impl Image {
    /// The files that are not only imports.
    pub fn targets(&self) -> impl Iterator<Item = &ImageFile> {
        self.files.iter().filter(|f| !f.is_import)
    }

    /// A `FileDescriptorSet` of the image, as `protoc`/`buf build` would write it.
    pub fn to_descriptor_set(
        &self,
        include_imports: bool,
        include_source_info: bool,
    ) -> FileDescriptorSet {
        // protoc orders files so that every file comes after its imports.
        let by_name: BTreeMap<&str, &ImageFile> =
            self.files.iter().map(|f| (f.proto.name(), f)).collect();
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        fn visit<'a>(
            f: &'a ImageFile,
            by_name: &BTreeMap<&str, &'a ImageFile>,
            seen: &mut BTreeSet<&'a str>,
            out: &mut Vec<&'a ImageFile>,
        ) {
            if !seen.insert(f.proto.name()) {
                return;
            }
            for dep in &f.proto.dependency {
                if let Some(d) = by_name.get(dep.as_str()) {
                    visit(d, by_name, seen, out);
                }
            }
            out.push(f);
        }
        for f in &self.files {
            visit(f, &by_name, &mut seen, &mut out);
        }
        FileDescriptorSet {
            file: out
                .into_iter()
                .filter(|f| include_imports || !f.is_import)
                .map(|f| {
                    let mut p = f.proto.clone();
                    if !include_source_info {
                        p.source_code_info = None;
                    }
                    p
                })
                .collect(),
        }
    }

    /// Encodes the image as a descriptor set in the given format.
    pub fn encode(
        &self,
        format: OutputFormat,
        include_imports: bool,
        include_source_info: bool,
    ) -> Result<Vec<u8>, SchemaError> {
        let fds = self.to_descriptor_set(include_imports, include_source_info);
        match format {
            OutputFormat::Binary => Ok(fds.encode_to_vec()),
            OutputFormat::Json => {
                let desc = DescriptorPool::global()
                    .get_message_by_name("google.protobuf.FileDescriptorSet")
                    .ok_or_else(|| SchemaError::Input {
                        path: "descriptor.proto".into(),
                        message: "FileDescriptorSet type unavailable".into(),
                    })?;
                let msg =
                    DynamicMessage::decode(desc, fds.encode_to_vec().as_slice()).map_err(|e| {
                        SchemaError::Input {
                            path: "<image>".into(),
                            message: e.to_string(),
                        }
                    })?;
                let mut out = serde_json::to_vec_pretty(&msg).map_err(|e| SchemaError::Input {
                    path: "<image>".into(),
                    message: e.to_string(),
                })?;
                out.push(b'\n');
                Ok(out)
            }
        }
    }

    /// Reads a descriptor set written by `protoreg build`, `buf build` or `protoc -o`.
    /// Every file in it is a target; `display_prefix` is unused for descriptor sets
    /// (their file names are shown as they are).
    pub fn from_descriptor_set_file(path: &Path) -> Result<Self, SchemaError> {
        let bytes = std::fs::read(path).map_err(|e| SchemaError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let bad = |message: String| SchemaError::Input {
            path: path.display().to_string(),
            message,
        };
        let fds = match OutputFormat::from_path(path) {
            OutputFormat::Binary => FileDescriptorSet::decode(bytes.as_slice())
                .map_err(|e| bad(format!("not a binary FileDescriptorSet: {e}")))?,
            OutputFormat::Json => {
                let desc = DescriptorPool::global()
                    .get_message_by_name("google.protobuf.FileDescriptorSet")
                    .ok_or_else(|| bad("FileDescriptorSet type unavailable".into()))?;
                let mut de = serde_json::Deserializer::from_slice(&bytes);
                let msg = DynamicMessage::deserialize(desc, &mut de)
                    .map_err(|e| bad(format!("not a JSON FileDescriptorSet: {e}")))?;
                FileDescriptorSet::decode(msg.encode_to_vec().as_slice())
                    .map_err(|e| bad(e.to_string()))?
            }
        };
        if fds.file.is_empty() {
            return Err(bad("descriptor set holds no files".into()));
        }
        let mut files: Vec<ImageFile> = fds
            .file
            .into_iter()
            .map(|proto| ImageFile {
                edition: None,
                display: proto.name().to_string(),
                is_import: false,
                proto,
            })
            .collect();
        files.sort_by(|a, b| a.proto.name().cmp(b.proto.name()));
        // Check that it links (every import present, every type resolvable).
        let image = Image { files };
        image
            .pool()
            .map_err(|e| bad(format!("descriptor set does not link: {e}")))?;
        Ok(image)
    }

    /// A prost-reflect pool over the image (editions files are presented as proto2 with
    /// their features; the checker resolves features itself).
    pub fn pool(&self) -> Result<DescriptorPool, prost_reflect::DescriptorError> {
        let mut fds = self.to_descriptor_set(true, false);
        for f in &mut fds.file {
            editions::unmark(f);
        }
        // Start from the global pool (descriptor.proto and the well-known types) so that a
        // descriptor set written without imports of those still links.
        let mut pool = DescriptorPool::global();
        fds.file
            .retain(|f| pool.get_file_by_name(f.name()).is_none());
        pool.add_file_descriptor_set(fds)?;
        Ok(pool)
    }
}
