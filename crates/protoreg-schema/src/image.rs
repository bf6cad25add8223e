//! Compiling a [`SourceSet`] into an [`Image`], and reading/writing descriptor sets.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use miette::Diagnostic as _;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage};
use prost_types::{FileDescriptorProto, FileDescriptorSet, SourceCodeInfo};
use protox::file::{
    ChainFileResolver, File, FileResolver, GoogleFileResolver, IncludeFileResolver,
};

use crate::diagnostic::{Diagnostic, Diagnostics, line_col};
use crate::wire::fields;
use crate::{SchemaError, SourceSet, check_relative, editions};

/// One file of an image: its descriptor, whether it is only an import, and how to name it.
#[derive(Debug, Clone)]
pub struct ImageFile {
    pub proto: ProtoRef,
    pub is_import: bool,
    /// Path shown in findings (disk path as the user named the input).
    pub display: String,
    /// `google.protobuf.Edition` number for editions files (1000 = 2023).
    pub edition: Option<i32>,
    /// What prost-types cannot carry, written back when the image is encoded.
    pub extras: Extras,
    /// Set when the image was compiled with [`SourceInfo::OnDemand`]: what
    /// [`ImageFile::source_code_info`] rebuilds the locations `proto` leaves out from.
    pub deferred: Option<Arc<Deferred>>,
    /// The whole source info of a file compiled with [`SourceInfo::Full`], kept beside the
    /// pool's descriptor (which holds only the option locations) rather than in a copy of it.
    pub source_info: Option<Arc<SourceCodeInfo>>,
}

/// A file's descriptor: the linked pool's own (most files: no copy is made) or one of ours
/// (a file whose descriptor the image changes: source info put back, editions marks).
#[derive(Clone)]
pub enum ProtoRef {
    Pooled(prost_reflect::FileDescriptor),
    Owned(Box<FileDescriptorProto>),
}

impl std::ops::Deref for ProtoRef {
    type Target = FileDescriptorProto;
    fn deref(&self) -> &FileDescriptorProto {
        match self {
            ProtoRef::Pooled(f) => f.file_descriptor_proto(),
            ProtoRef::Owned(p) => p,
        }
    }
}

impl std::ops::DerefMut for ProtoRef {
    /// Makes the descriptor ours first (a copy of the pool's).
    fn deref_mut(&mut self) -> &mut FileDescriptorProto {
        if let ProtoRef::Pooled(f) = self {
            *self = ProtoRef::Owned(Box::new(f.file_descriptor_proto().clone()));
        }
        match self {
            ProtoRef::Owned(p) => p,
            ProtoRef::Pooled(_) => unreachable!("made owned above"),
        }
    }
}

impl std::fmt::Debug for ProtoRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

impl From<FileDescriptorProto> for ProtoRef {
    fn from(p: FileDescriptorProto) -> Self {
        ProtoRef::Owned(Box::new(p))
    }
}

/// What a file compiled with [`SourceInfo::OnDemand`] keeps to rebuild its source info.
#[derive(Debug)]
pub struct Deferred {
    text: Arc<str>,
    aggregates: Vec<protoreg_parse::AggregateOption>,
    pool: DescriptorPool,
}

impl Deferred {
    /// The text the file was compiled from (its source info is rebuilt from it).
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// How much source info a compile keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SourceInfo {
    /// Every location, with comments, in each file's descriptor.
    #[default]
    Full,
    /// Only the locations of options (which the linker rewrites); the rest is rebuilt from
    /// the text when [`ImageFile::source_code_info`] asks. A breaking check needs the
    /// locations of a few files only, and source info is most of a compiled file's memory.
    OnDemand,
}

impl ImageFile {
    /// The file's source info, whole: for a file compiled with [`SourceInfo::OnDemand`] it is
    /// parsed again from the text (the parser is deterministic, so its locations are those of
    /// the compile) with the linker's option locations put back in place.
    pub fn source_code_info(&self) -> Option<std::borrow::Cow<'_, SourceCodeInfo>> {
        use std::borrow::Cow;
        if let Some(info) = &self.source_info {
            return Some(Cow::Borrowed(info));
        }
        let Some(d) = &self.deferred else {
            return self.proto.source_code_info.as_ref().map(Cow::Borrowed);
        };
        let mut proto = protoreg_parse::parse(self.proto.name(), &d.text)
            .ok()?
            .proto;
        let aside = SourceInfoAside::take(&mut proto)?;
        // The linker's option locations, in `proto`, take the place of the parser's.
        proto.source_code_info = self.proto.source_code_info.clone();
        aside.restore(&mut proto);
        if !d.aggregates.is_empty() {
            span_repeated_aggregate_options(&mut proto, &d.aggregates, &d.pool);
        }
        proto.source_code_info.map(Cow::Owned)
    }
}

/// Descriptor fields of editions files that prost-types 0.14 has no field for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extras {
    /// `import option "…";` (`FileDescriptorProto.option_dependency`). While linking they
    /// are appended to `dependency` so that the options they define resolve.
    pub option_dependency: Vec<String>,
    /// `export`/`local` (edition 2024): path of the message or enum, `SymbolVisibility`.
    pub visibility: Vec<(Vec<i32>, i32)>,
}

/// A compiled, linked set of files (targets and their imports), sorted by name.
#[derive(Debug, Clone)]
pub struct Image {
    pub files: Vec<ImageFile>,
    /// The linked pool, with every option as written (extensions and features included).
    pub pool: DescriptorPool,
    /// The built-in files ([`crate::builtin`]) imports resolved to, by import path.
    pub builtins: Vec<String>,
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

/// Serves each target as our parser's unlinked descriptor (handed over on first open;
/// protox opens a file again only when it failed to link, and then it is parsed again from
/// its text), import-only files parsed when first opened (what the image keeps of them is
/// recorded in `metas`), and the bundled feature files.
struct MemResolver {
    files: std::sync::Mutex<BTreeMap<String, FileDescriptorProto>>,
    texts: BTreeMap<String, Arc<str>>,
    metas: Arc<std::sync::Mutex<BTreeMap<String, FileMeta>>>,
    source_info: SourceInfo,
}

/// What a parsed file carries beside its descriptor.
#[derive(Default, Clone)]
struct FileMeta {
    edition: Option<(i32, Extras)>,
    aggregates: Vec<protoreg_parse::AggregateOption>,
    /// The source info set aside while the file links (see [`SourceInfoAside`]).
    source_info: Option<SourceInfoAside>,
}

/// While linking, a file carries only the locations of its options: prost-reflect
/// rewrites the paths of interpreted options by scanning every location once per option,
/// which on option-heavy files (googleapis) was a fifth of the whole compile. The rest
/// wait here and are merged back, in their order, after linking.
#[derive(Clone)]
struct SourceInfoAside {
    all: Vec<prost_types::source_code_info::Location>,
    /// Indexes in `all` of the locations that went through the linker.
    linked: Vec<usize>,
}

impl SourceInfoAside {
    /// Takes the source info out of `proto`, leaving the option locations (those below an
    /// `uninterpreted_option`; an element numbered 999 is kept too, which is harmless).
    fn take(proto: &mut FileDescriptorProto) -> Option<SourceInfoAside> {
        let info = proto.source_code_info.as_mut()?;
        let all = std::mem::take(&mut info.location);
        let linked: Vec<usize> = all
            .iter()
            .enumerate()
            .filter(|(_, l)| l.path.contains(&protoreg_parse::tag::UNINTERPRETED))
            .map(|(i, _)| i)
            .collect();
        info.location = linked.iter().map(|&i| all[i].clone()).collect();
        Some(SourceInfoAside { all, linked })
    }

    /// Puts the locations back around the ones the linker rewrote.
    fn restore(self, proto: &mut FileDescriptorProto) {
        let info = proto.source_code_info.get_or_insert_with(Default::default);
        let rewritten = std::mem::take(&mut info.location);
        let mut all = self.all;
        if rewritten.len() == self.linked.len() {
            for (i, l) in self.linked.into_iter().zip(rewritten) {
                all[i] = l;
            }
        }
        info.location = all;
    }
}

impl FileMeta {
    fn of(parsed: &protoreg_parse::ParsedFile) -> FileMeta {
        FileMeta {
            source_info: None,
            edition: parsed.edition().map(|edition| {
                let extras = Extras {
                    option_dependency: parsed.option_dependency.clone(),
                    visibility: parsed
                        .visibility
                        .iter()
                        .map(|(p, v)| (p.clone(), v.number()))
                        .collect(),
                };
                (edition.number(), extras)
            }),
            aggregates: parsed.aggregate_options.clone(),
        }
    }
}

impl FileResolver for MemResolver {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        let taken = self.files.lock().ok().and_then(|mut f| f.remove(name));
        if let Some(proto) = taken {
            // Only uninterpreted options, so nothing is lost without the encoded form.
            return Ok(File::from_file_descriptor_proto(proto));
        }
        if let Some(text) = self.texts.get(name) {
            return match protoreg_parse::parse(name, text) {
                Ok(parsed) => {
                    let (meta, proto) = linkable(parsed, self.source_info);
                    if let Ok(mut metas) = self.metas.lock() {
                        metas.insert(name.to_string(), meta);
                    }
                    Ok(File::from_file_descriptor_proto(proto))
                }
                Err(_) => Err(protox::Error::file_not_found(name)),
            };
        }
        match editions::bundled(name) {
            Some(text) => File::from_source(name, text),
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

/// A parsed file as the linker (prost-reflect) takes it: editions files as proto2 (features
/// are read from the options) with their `import option` files as plain dependencies, so
/// that the options they define resolve.
fn presented(parsed: protoreg_parse::ParsedFile) -> FileDescriptorProto {
    let editions = parsed.edition().is_some();
    let mut proto = parsed.proto;
    if editions {
        proto.syntax = Some("proto2".into());
    }
    proto.dependency.extend(parsed.option_dependency);
    proto
}

/// A parsed file as it goes to the linker ([`presented`], its source info set aside, or
/// dropped when it will be rebuilt on demand) and what the image keeps of it.
fn linkable(
    parsed: protoreg_parse::ParsedFile,
    source_info: SourceInfo,
) -> (FileMeta, FileDescriptorProto) {
    let mut meta = FileMeta::of(&parsed);
    let mut proto = presented(parsed);
    let aside = SourceInfoAside::take(&mut proto);
    meta.source_info = aside.filter(|_| source_info == SourceInfo::Full);
    (meta, proto)
}

/// One target after parsing.
enum Parsed<'s> {
    Ok(Arc<str>, Box<(FileMeta, FileDescriptorProto)>),
    Syntax(Arc<str>, protoreg_parse::ParseError),
    NotUtf8(&'s [u8]),
}

/// Parses `targets` on every core (in chunks, one thread each), keeping their order.
fn parse_all<'s>(
    targets: &[(&'s String, &'s crate::SourceFile)],
    source_info: SourceInfo,
) -> Vec<(&'s String, &'s crate::SourceFile, Parsed<'s>)> {
    let one = |(name, f): &(&'s String, &'s crate::SourceFile)| {
        let parsed = match &f.text {
            Ok(text) => {
                let text = without_bom(text);
                match protoreg_parse::parse(name, &text) {
                    Ok(parsed) => Parsed::Ok(text, Box::new(linkable(parsed, source_info))),
                    Err(e) => Parsed::Syntax(text, e),
                }
            }
            Err(bytes) => Parsed::NotUtf8(bytes),
        };
        (*name, *f, parsed)
    };
    // Compiles running at once (both sides of a breaking check) share the cores.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get())
        / COMPILING.load(std::sync::atomic::Ordering::Relaxed).max(1);
    if threads < 2 || targets.len() < 64 {
        return targets.iter().map(one).collect();
    }
    let chunk = targets.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = targets
            .chunks(chunk)
            .skip(1)
            .map(|c| scope.spawn(move || c.iter().map(one).collect::<Vec<_>>()))
            .collect();
        let mut out: Vec<_> = targets[..chunk.min(targets.len())]
            .iter()
            .map(one)
            .collect();
        for h in handles {
            match h.join() {
                Ok(mut part) => out.append(&mut part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}

/// The text without a UTF-8 byte-order mark (Windows editors): not part of the text.
fn without_bom(text: &Arc<str>) -> Arc<str> {
    match text.strip_prefix('\u{feff}') {
        Some(rest) => Arc::from(rest),
        None => Arc::clone(text),
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

/// How many compiles are running in this process.
static COMPILING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Counts a compile while it runs.
struct Compiling;

impl Compiling {
    fn start() -> Compiling {
        COMPILING.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Compiling
    }
}

impl Drop for Compiling {
    fn drop(&mut self) {
        COMPILING.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

pub(crate) fn compile(set: &SourceSet) -> Result<Image, SchemaError> {
    let _running = Compiling::start();
    let mut diags: BTreeSet<Diagnostic> = BTreeSet::new();
    let mut inputs: BTreeMap<String, FileDescriptorProto> = BTreeMap::new();
    let mut metas: BTreeMap<String, FileMeta> = BTreeMap::new();
    let mut originals: BTreeMap<String, Arc<str>> = BTreeMap::new();
    if set.files.is_empty() {
        return Err(SchemaError::Input {
            path: ".".into(),
            message: "no .proto files found".into(),
        });
    }
    // Parsing is independent per file: the targets are parsed on every core, in order.
    let targets: Vec<(&String, &crate::SourceFile)> = set
        .files
        .iter()
        // A vendored copy of a feature file protox cannot compile (edition_defaults lists):
        // the bundled equivalent is used, as an import.
        .filter(|(name, _)| editions::bundled(name).is_none())
        .collect();
    for (name, f, parsed) in parse_all(&targets, set.source_info) {
        match parsed {
            Parsed::Ok(text, parsed) => {
                let (meta, proto) = *parsed;
                originals.insert(name.clone(), text);
                metas.insert(name.clone(), meta);
                inputs.insert(name.clone(), proto);
            }
            Parsed::Syntax(text, e) => {
                originals.insert(name.clone(), Arc::clone(&text));
                diags.insert(Diagnostic::at_offset(
                    &f.display,
                    Some(text),
                    Some((e.offset, e.len)),
                    e.message,
                ));
            }
            Parsed::NotUtf8(bytes) => {
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
    let names: BTreeSet<String> = inputs.keys().cloned().collect();
    let mut chain = ChainFileResolver::new();
    // Only targets that parsed: one that did not is reported already, and importing it is
    // an unresolved import, located at the import.
    let mut texts: BTreeMap<String, Arc<str>> = originals
        .iter()
        .filter(|(n, _)| names.contains(*n))
        .map(|(n, t)| (n.clone(), Arc::clone(t)))
        .collect();
    for (name, f) in &set.imports {
        if let (Ok(text), false) = (&f.text, texts.contains_key(name)) {
            let text = without_bom(text);
            originals.insert(name.clone(), Arc::clone(&text));
            texts.insert(name.clone(), text);
        }
    }
    let lazy_metas = Arc::new(std::sync::Mutex::new(BTreeMap::new()));
    chain.add(MemResolver {
        files: std::sync::Mutex::new(inputs),
        texts,
        metas: Arc::clone(&lazy_metas),
        source_info: set.source_info,
    });
    for inc in &set.includes {
        chain.add(SafeInclude(IncludeFileResolver::new(inc.clone())));
    }
    let builtins_used = Arc::new(std::sync::Mutex::new(BTreeSet::new()));
    chain.add(crate::builtin::BuiltinResolver {
        used: Arc::clone(&builtins_used),
    });
    chain.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(chain);
    compiler.include_source_info(true).include_imports(true);

    let display_of = |name: &str| -> String {
        set.files
            .get(name)
            .or_else(|| set.imports.get(name))
            .map(|f| f.display.clone())
            .unwrap_or_else(|| name.to_string())
    };
    for name in &names {
        if let Err(e) = compiler.open_file(name) {
            let mut found = to_diagnostics(&e, &originals, &display_of);
            // protox has no source text for the descriptors our parser made: locate a link
            // error in them by linking the file again against what did link.
            for d in found.iter_mut().filter(|d| d.line == 0) {
                locate_quoted_import(d);
            }
            if found.iter().all(|d| d.line == 0)
                && let Some(d) = locate_link_error(&compiler, &e, &names, &originals, &display_of)
            {
                found = vec![d];
            }
            // An error without a place beside located ones is a consequence of them (the
            // synthetic oneof of a duplicated proto3 `optional` field): the located ones say it.
            if found.iter().any(|d| d.line > 0) {
                found.retain(|d| d.line > 0);
            }
            diags.extend(found);
        }
    }
    if !diags.is_empty() {
        return Err(SchemaError::Compile(Diagnostics(
            diags.into_iter().collect(),
        )));
    }
    let pool = compiler.descriptor_pool();
    drop(compiler);
    if let Ok(mut lazy) = lazy_metas.lock() {
        metas.append(&mut lazy);
    }
    let on_demand = set.source_info == SourceInfo::OnDemand;
    let mut files = Vec::with_capacity(pool.files().len());
    for fd in pool.files() {
        let name = fd.name().to_string();
        // The pool's descriptor, copied only when the image changes it.
        let mut proto = ProtoRef::Pooled(fd);
        let meta = metas.get_mut(&name);
        let aggregates = meta
            .map(|m| std::mem::take(&mut m.aggregates))
            .unwrap_or_default();
        // Source info put back whole, beside the descriptor (in a descriptor that holds
        // only it, which is what the helpers take).
        let source_info = metas
            .get_mut(&name)
            .and_then(|m| m.source_info.take())
            .map(|aside| {
                let mut holder = FileDescriptorProto {
                    source_code_info: proto.source_code_info.clone(),
                    ..Default::default()
                };
                aside.restore(&mut holder);
                if !aggregates.is_empty() {
                    span_repeated_aggregate_options(&mut holder, &aggregates, &pool);
                }
                Arc::new(holder.source_code_info.unwrap_or_default())
            });
        let meta = metas.get(&name);
        let (edition, extras) = match meta.and_then(|m| m.edition.as_ref()) {
            Some((ed, extras)) => {
                editions::mark(&mut proto);
                let keep = proto.dependency.len() - extras.option_dependency.len();
                proto.dependency.truncate(keep);
                (Some(*ed), extras.clone())
            }
            None => (None, Extras::default()),
        };
        // Files our parser made (targets and `imports`) rebuild the rest of their source
        // info from their text; include-path and bundled files keep theirs.
        let deferred = match (on_demand, meta, originals.get(&name)) {
            (true, Some(_), Some(text)) => Some(Arc::new(Deferred {
                text: Arc::clone(text),
                aggregates,
                pool: pool.clone(),
            })),
            _ => None,
        };
        files.push(ImageFile {
            edition,
            extras,
            deferred,
            source_info,
            is_import: !names.contains(&name),
            display: display_of(&name),
            proto,
        });
    }
    files.sort_by(|a, b| a.proto.name().cmp(b.proto.name()));
    let builtins = builtins_used
        .lock()
        .map(|u| u.iter().cloned().collect())
        .unwrap_or_default();
    Ok(Image {
        files,
        pool,
        builtins,
    })
}

/// An `option name = { … };` that sets an element of a repeated option is spanned over its
/// whole statement (as buf does); the parser spanned it over `name = { … }`.
fn span_repeated_aggregate_options(
    proto: &mut FileDescriptorProto,
    aggs: &[protoreg_parse::AggregateOption],
    pool: &DescriptorPool,
) {
    let Some(info) = proto.source_code_info.as_mut() else {
        return;
    };
    // One pass over the locations, looking each span up (a file has few such options).
    let by_span: std::collections::HashMap<&[i32], &protoreg_parse::AggregateOption> = aggs
        .iter()
        .map(|a| (a.name_value_span.as_slice(), a))
        .collect();
    for loc in &mut info.location {
        let Some(agg) = by_span.get(loc.span.as_slice()) else {
            continue;
        };
        let n = agg.options_path.len();
        if loc.path.len() != n + 2 || !loc.path.starts_with(&agg.options_path) {
            continue;
        }
        let Some(options) = pool.get_message_by_name(agg.options_message) else {
            continue;
        };
        let number = loc.path[n] as u32;
        let repeated = match options.get_field(number) {
            Some(f) => f.is_list(),
            None => options.get_extension(number).is_some_and(|e| e.is_list()),
        };
        if repeated {
            loc.span = agg.statement_span.clone();
        }
    }
}

/// Links a file that failed again, against the files that already linked, to get the
/// linker's error with its line and column (from the file's source info; protox attaches
/// none to our descriptors, nor to elements without a location of their own).
fn locate_link_error(
    compiler: &protox::Compiler,
    e: &protox::Error,
    names: &BTreeSet<String>,
    originals: &BTreeMap<String, Arc<str>>,
    display_of: &dyn Fn(&str) -> String,
) -> Option<Diagnostic> {
    let name = e.file()?;
    // Parse the text again (the compiler took the descriptor), as it was presented.
    if !names.contains(name) {
        return None;
    }
    let proto = presented(protoreg_parse::parse(name, originals.get(name)?).ok()?);
    let bytes: prost::bytes::Bytes = proto.encode_to_vec().into();
    let mut pool = compiler.descriptor_pool();
    let err = pool.decode_file_descriptor_proto(bytes.clone()).err()?;
    let source = originals.get(name).cloned();
    let (line, column) = match (err.line(), err.column()) {
        (Some(l), Some(c)) => (l + 1, c + 1),
        // No location for the element itself (a synthesized map entry): the nearest
        // enclosing element that has one.
        _ => {
            let proto = FileDescriptorProto::decode(bytes.as_ref()).ok()?;
            let locations = proto.source_code_info?.location;
            let path = err.path()?;
            let span = (1..path.len()).rev().find_map(|n| {
                locations
                    .iter()
                    .find(|l| l.path == path[..n])
                    .map(|l| l.span.clone())
            })?;
            (*span.first()? as usize + 1, *span.get(1)? as usize + 1)
        }
    };
    let offset = source.as_deref().map(|s| offset_of(s, line, column));
    let message = err.to_string();
    Some(Diagnostic {
        path: display_of(err.file().unwrap_or(name)),
        line,
        column,
        message,
        span: offset.map(|o| (o, 1)),
        source,
    })
}

/// A message naming an import (`import 'a/b.proto' not found`) without a place: the place is
/// that import statement's path string in the file's text.
fn locate_quoted_import(d: &mut Diagnostic) {
    let Some(src) = d.source.clone() else {
        return;
    };
    let mut parts = d.message.split('\'');
    let Some(name) = parts.nth(1).filter(|n| !n.is_empty()) else {
        return;
    };
    let at = [format!("\"{name}\""), format!("'{name}'")]
        .iter()
        .filter_map(|quoted| src.find(quoted.as_str()))
        .min();
    if let Some(mut offset) = at {
        // buf points at the import statement, not its path.
        if let Some(kw) = src[..offset].rfind("import") {
            offset = kw;
        }
        let (line, column) = line_col(&src, offset);
        d.line = line;
        d.column = column;
        d.span = Some((offset, name.len() + 2));
    }
}

/// Byte offset of a 1-based line and column (characters).
fn offset_of(src: &str, line: usize, column: usize) -> usize {
    let mut off = 0;
    for (i, l) in src.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            return off
                + l.chars()
                    .take(column - 1)
                    .map(char::len_utf8)
                    .sum::<usize>();
        }
        off += l.len();
    }
    src.len()
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
        let mut span = d
            .labels()
            .and_then(|mut l| l.next())
            .map(|l| (l.offset(), l.len()));
        // protox gives "reached end of file" no span: it is at the end of the file.
        if span.is_none() && d.to_string().contains("end of file") {
            span = source.as_deref().map(|s| (s.len(), 0));
        }
        // protox words a bad import path as a group name; say what it is.
        let mut message = d.to_string();
        if let Some(help) = d.help() {
            message = format!("{message} ({help})");
        }
        let message = message.replace(
            "invalid group name (imports",
            "invalid import path (imports",
        );
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
    /// The files in protoc's order (every file after its imports), imports only when asked.
    fn ordered(&self, include_imports: bool) -> Vec<&ImageFile> {
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
        out.retain(|f| include_imports || !f.is_import);
        out
    }

    /// Encodes the image as a descriptor set in the given format. Options are written as
    /// compiled (extensions and features included); editions files get `syntax = "editions"`
    /// and their `edition` back.
    pub fn encode(
        &self,
        format: OutputFormat,
        include_imports: bool,
        include_source_info: bool,
    ) -> Result<Vec<u8>, SchemaError> {
        let one = |f: &&ImageFile| {
            let raw = match self.pool.get_file_by_name(f.proto.name()) {
                Some(fd) => fd.encode_to_vec(),
                None => f.proto.encode_to_vec(),
            };
            rewrite_file(&raw, f, include_source_info)
        };
        // Files encode independently: on every core, then joined in order.
        let files = self.ordered(include_imports);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let encoded: Vec<Vec<u8>> = if threads < 2 || files.len() < 64 {
            files.iter().map(one).collect()
        } else {
            let chunk = files.len().div_ceil(threads);
            std::thread::scope(|scope| {
                let handles: Vec<_> = files
                    .chunks(chunk)
                    .map(|c| scope.spawn(move || c.iter().map(one).collect::<Vec<_>>()))
                    .collect();
                handles
                    .into_iter()
                    .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                    .collect()
            })
        };
        let mut set = Vec::with_capacity(encoded.iter().map(|b| b.len() + 5).sum());
        for bytes in &encoded {
            prost::encoding::bytes::encode(1, bytes, &mut set);
        }
        drop(encoded);
        match format {
            OutputFormat::Binary => Ok(set),
            OutputFormat::Json => {
                let err = |message: String| SchemaError::Input {
                    path: "<image>".into(),
                    message,
                };
                let desc = self
                    .pool
                    .get_message_by_name("google.protobuf.FileDescriptorSet")
                    .or_else(|| {
                        DescriptorPool::global()
                            .get_message_by_name("google.protobuf.FileDescriptorSet")
                    })
                    .ok_or_else(|| err("FileDescriptorSet type unavailable".into()))?;
                let msg =
                    DynamicMessage::decode(desc, set.as_slice()).map_err(|e| err(e.to_string()))?;
                let mut out = serde_json::to_vec_pretty(&msg).map_err(|e| err(e.to_string()))?;
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
        Self::from_descriptor_set_bytes(
            bytes,
            OutputFormat::from_path(path),
            &path.display().to_string(),
        )
    }

    /// Reads a descriptor set from bytes; `origin` names it in errors.
    pub fn from_descriptor_set_bytes(
        bytes: Vec<u8>,
        format: OutputFormat,
        origin: &str,
    ) -> Result<Self, SchemaError> {
        let bad = |message: String| SchemaError::Input {
            path: origin.to_string(),
            message,
        };
        let encoded = match format {
            OutputFormat::Binary => bytes,
            OutputFormat::Json => {
                let desc = DescriptorPool::global()
                    .get_message_by_name("google.protobuf.FileDescriptorSet")
                    .ok_or_else(|| bad("FileDescriptorSet type unavailable".into()))?;
                let mut de = serde_json::Deserializer::from_slice(&bytes);
                let opts = prost_reflect::DeserializeOptions::new().deny_unknown_fields(false);
                let msg = DynamicMessage::deserialize_with_options(desc, &mut de, &opts)
                    .map_err(|e| bad(format!("not a JSON FileDescriptorSet: {e}")))?;
                msg.encode_to_vec()
            }
        };
        // Each file, with editions files presented as proto2 to prost-reflect.
        let Some(parts) = fields(&encoded) else {
            return Err(bad("not a FileDescriptorSet: malformed bytes".into()));
        };
        let mut set = Vec::with_capacity(encoded.len());
        let mut presented = Vec::new();
        for (tag, field, _) in parts {
            if tag != 1 {
                continue;
            }
            let body = crate::wire::payload(field)
                .ok_or_else(|| bad("not a FileDescriptorSet: malformed bytes".into()))?;
            let (bytes, edition) = present_as_proto2(body);
            let name = file_name(&bytes)
                .ok_or_else(|| bad("not a FileDescriptorSet: a file without a name".into()))?;
            prost::encoding::bytes::encode(1, &bytes, &mut set);
            presented.push((name, edition, bytes));
        }
        if presented.is_empty() {
            return Err(bad("descriptor set holds no files".into()));
        }
        // Check that it links (every import present, every type resolvable), keeping every
        // option as encoded. Well-known types missing from the set come from the global pool.
        // prost-reflect can panic on malformed input: that is an error here, never a crash.
        let built = std::panic::catch_unwind(|| {
            DescriptorPool::decode(set.as_slice()).or_else(|first| {
                let mut pool = DescriptorPool::global();
                let mut rest = FileDescriptorSet::default();
                for (name, _, bytes) in &presented {
                    if pool.get_file_by_name(name).is_none() {
                        match FileDescriptorProto::decode(bytes.as_slice()) {
                            Ok(proto) => rest.file.push(proto),
                            Err(_) => return Err(first),
                        }
                    }
                }
                pool.add_file_descriptor_set(rest)
                    .map(|_| pool)
                    .map_err(|_| first)
            })
        });
        let pool = match built {
            Ok(Ok(pool)) => pool,
            Ok(Err(e)) => return Err(bad(format!("descriptor set does not link: {e}"))),
            Err(_) => {
                return Err(bad(
                    "descriptor set is malformed (the linker rejected it)".into()
                ));
            }
        };
        // The pool's own descriptors (decoded once); editions files get ours, marked.
        let mut files = Vec::with_capacity(presented.len());
        for (name, edition, bytes) in presented {
            let pooled = pool
                .get_file_by_name(&name)
                .ok_or_else(|| bad(format!("descriptor set does not link: {name} is missing")))?;
            let proto = match edition {
                None => ProtoRef::Pooled(pooled),
                Some(_) => {
                    let mut proto = FileDescriptorProto::decode(bytes.as_slice())
                        .map_err(|e| bad(format!("not a FileDescriptorSet: {e}")))?;
                    editions::mark(&mut proto);
                    proto.into()
                }
            };
            files.push(ImageFile {
                edition,
                extras: Extras::default(),
                deferred: None,
                source_info: None,
                display: name,
                is_import: false,
                proto,
            });
        }
        files.sort_by(|a, b| a.proto.name().cmp(b.proto.name()));
        Ok(Image {
            files,
            pool,
            builtins: Vec::new(),
        })
    }
}

/// Re-encodes one compiled file: drops source info unless wanted (and replaces it with the
/// corrected one), and restores what prost-types cannot carry for editions files:
/// `syntax = "editions"`, `edition`, `option_dependency` and `visibility`.
fn rewrite_file(raw: &[u8], f: &ImageFile, include_source_info: bool) -> Vec<u8> {
    use protoreg_parse::tag;
    // Field numbers of `FileDescriptorProto` as wire tags.
    const DEPENDENCY: u32 = tag::FILE_DEPENDENCY as u32;
    const SOURCE_CODE_INFO: u32 = tag::FILE_SOURCE_CODE_INFO as u32;
    const SYNTAX: u32 = tag::FILE_SYNTAX as u32;
    const EDITION: u32 = tag::FILE_EDITION as u32;
    let Some(parts) = fields(raw) else {
        return raw.to_vec();
    };
    let deps = parts.iter().filter(|p| p.0 == DEPENDENCY).count();
    let keep_deps = deps.saturating_sub(f.extras.option_dependency.len());
    let mut seen_deps = 0;
    let mut out = Vec::with_capacity(raw.len());
    for (t, bytes, _) in parts {
        let drop = t == SOURCE_CODE_INFO
            || (f.edition.is_some() && (t == SYNTAX || t == EDITION))
            || (t == DEPENDENCY && {
                seen_deps += 1;
                seen_deps > keep_deps
            });
        if !drop {
            out.extend_from_slice(bytes);
        }
    }
    if let (true, Some(info)) = (include_source_info, f.source_code_info()) {
        prost::encoding::message::encode(SOURCE_CODE_INFO, &*info, &mut out);
    }
    if let Some(ed) = f.edition {
        prost::encoding::string::encode(SYNTAX, &"editions".to_string(), &mut out);
        prost::encoding::int32::encode(EDITION, &ed, &mut out);
    }
    for dep in &f.extras.option_dependency {
        prost::encoding::string::encode(tag::FILE_OPTION_DEPENDENCY as u32, dep, &mut out);
    }
    for (path, visibility) in &f.extras.visibility {
        // `[5, i]` and `[…, 4, j]` are enums; every other path is a message.
        let parent = path.len().checked_sub(2).map(|i| path[i]);
        let is_enum = (path.len() == 2 && parent == Some(tag::FILE_ENUM))
            || (path.len() > 2 && parent == Some(tag::MSG_ENUM));
        let field = if is_enum {
            tag::ENUM_VISIBILITY
        } else {
            tag::MSG_VISIBILITY
        };
        if let Some(rewritten) =
            crate::wire::append_at_path(&out, path, field as u32, *visibility as u64)
        {
            out = rewritten;
        }
    }
    out
}

/// The `name` of an encoded `FileDescriptorProto`.
fn file_name(raw: &[u8]) -> Option<String> {
    let (_, field, _) = fields(raw)?
        .into_iter()
        .find(|(tag, _, _)| *tag == protoreg_parse::tag::FILE_NAME as u32)?;
    String::from_utf8(crate::wire::payload(field)?.to_vec()).ok()
}

/// For a file read from a descriptor set: an editions file is presented to prost-reflect
/// (which predates editions) as proto2; returns the bytes and the edition.
fn present_as_proto2(raw: &[u8]) -> (Vec<u8>, Option<i32>) {
    let Some(parts) = fields(raw) else {
        return (raw.to_vec(), None);
    };
    let editions = parts
        .iter()
        .any(|(tag, bytes, _)| *tag == 12 && bytes.ends_with(b"editions"));
    if !editions {
        return (raw.to_vec(), None);
    }
    let edition = parts
        .iter()
        .find(|(tag, _, _)| *tag == 14)
        .and_then(|(_, _, v)| *v)
        .map(|v| v as i32)
        .unwrap_or(editions::EDITION_2023);
    let mut out = Vec::with_capacity(raw.len());
    for (tag, bytes, _) in parts {
        if tag != 12 && tag != 14 {
            out.extend_from_slice(bytes);
        }
    }
    prost::encoding::string::encode(12, &"proto2".to_string(), &mut out);
    (out, Some(edition))
}
