//! One side of a comparison: every element of an [`Image`] by the key the rules pair on
//! (files by path, types by full name), with its source path and resolved features.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use prost_types::{
    DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, ServiceDescriptorProto,
    field_descriptor_proto::{Label, Type},
};
use protoreg_schema::{Image, ImageFile};

use crate::Span;
use crate::features::{self, Features, Syntax};

pub(crate) struct FileEl<'a> {
    pub file: &'a ImageFile,
    pub syntax: Syntax,
}

pub(crate) struct MessageEl<'a> {
    pub file: &'a ImageFile,
    pub proto: &'a DescriptorProto,
    pub path: Vec<i32>,
    pub nested_name: String,
    pub features: Features,
    pub fields: Vec<FieldEl<'a>>,
}

pub(crate) struct FieldEl<'a> {
    pub file: &'a ImageFile,
    pub proto: &'a FieldDescriptorProto,
    pub path: Vec<i32>,
    pub full_name: String,
    /// Short name of the containing message (fields), or `extendee` (extensions).
    pub parent_name: String,
    pub is_extension: bool,
    pub features: Features,
    pub syntax: Syntax,
    /// The real (non-synthetic) oneof the field belongs to.
    pub oneof: Option<String>,
    pub in_oneof_any: bool,
    pub in_map_entry: bool,
    pub is_map: bool,
}

pub(crate) struct EnumEl<'a> {
    pub file: &'a ImageFile,
    pub proto: &'a EnumDescriptorProto,
    pub path: Vec<i32>,
    pub nested_name: String,
    pub features: Features,
}

pub(crate) struct ServiceEl<'a> {
    pub file: &'a ImageFile,
    pub proto: &'a ServiceDescriptorProto,
    pub path: Vec<i32>,
}

impl MessageEl<'_> {
    pub fn full_name(&self) -> String {
        join(self.file.proto.package(), &self.nested_name)
    }
}

impl EnumEl<'_> {
    pub fn full_name(&self) -> String {
        join(self.file.proto.package(), &self.nested_name)
    }
}

impl ServiceEl<'_> {
    pub fn full_name(&self) -> String {
        join(self.file.proto.package(), self.proto.name())
    }
}

type LocMap = HashMap<Vec<i32>, Span>;

pub(crate) struct Side<'a> {
    pub image: &'a Image,
    pub files: BTreeMap<&'a str, FileEl<'a>>,
    pub messages: BTreeMap<String, MessageEl<'a>>,
    pub enums: BTreeMap<String, EnumEl<'a>>,
    pub services: BTreeMap<String, ServiceEl<'a>>,
    pub extensions: Vec<FieldEl<'a>>,
    /// Full names of the messages and enums declared in each file.
    by_file: HashMap<&'a str, (Vec<String>, Vec<String>)>,
    /// Synthetic map-entry messages have no source info: their paths are located at the
    /// map field's type (`(file, entry message path) -> map field path + [6]`).
    map_entry_alias: HashMap<(&'a str, Vec<i32>), Vec<i32>>,
    locations: RefCell<HashMap<&'a str, Rc<LocMap>>>,
    /// Values of the scanned option extensions by element full name, read once per side
    /// (see [`Side::option_values`]).
    option_values: RefCell<HashMap<String, Rc<HashMap<String, prost_reflect::Value>>>>,
    memo: RefCell<HashMap<&'static str, Rc<dyn std::any::Any>>>,
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

impl<'a> Side<'a> {
    /// Indexes the image; with `exclude_imports`, files that are only imports are left out.
    pub fn new(image: &'a Image, exclude_imports: bool) -> Self {
        Side::keeping(image, |f| !(exclude_imports && f.is_import))
    }

    /// Indexes the files of the image that `keep` selects.
    pub fn keeping(image: &'a Image, keep: impl Fn(&ImageFile) -> bool) -> Self {
        let mut side = Side {
            image,
            files: BTreeMap::new(),
            messages: BTreeMap::new(),
            enums: BTreeMap::new(),
            services: BTreeMap::new(),
            extensions: Vec::new(),
            by_file: HashMap::new(),
            map_entry_alias: HashMap::new(),
            locations: RefCell::new(HashMap::new()),
            option_values: RefCell::new(HashMap::new()),
            memo: RefCell::new(HashMap::new()),
        };
        for f in image.files.iter().filter(|f| keep(f)) {
            let syntax = Syntax::of(f);
            let file_features = features::for_file(image, f, syntax);
            side.files
                .insert(f.proto.name(), FileEl { file: f, syntax });
            let pkg = f.proto.package();
            for (i, m) in f.proto.message_type.iter().enumerate() {
                side.add_message(f, syntax, m, vec![4, i as i32], pkg, "", file_features);
            }
            for (i, e) in f.proto.enum_type.iter().enumerate() {
                side.add_enum(f, syntax, e, vec![5, i as i32], pkg, "", file_features);
            }
            for (i, s) in f.proto.service.iter().enumerate() {
                side.services.insert(
                    join(pkg, s.name()),
                    ServiceEl {
                        file: f,
                        proto: s,
                        path: vec![6, i as i32],
                    },
                );
            }
            for (i, x) in f.proto.extension.iter().enumerate() {
                let ext = side.field(f, syntax, x, vec![7, i as i32], pkg, None, file_features);
                side.extensions.push(ext);
            }
        }
        side
    }

    #[allow(clippy::too_many_arguments)]
    fn add_message(
        &mut self,
        f: &'a ImageFile,
        syntax: Syntax,
        m: &'a DescriptorProto,
        path: Vec<i32>,
        pkg: &str,
        outer: &str,
        parent_features: Features,
    ) {
        let nested_name = join(outer, m.name());
        let full_name = join(pkg, &nested_name);
        let features = features::for_message(self.image, syntax, &full_name, parent_features);
        for (i, e) in m.enum_type.iter().enumerate() {
            let mut p = path.clone();
            p.extend([4, i as i32]);
            self.add_enum(f, syntax, e, p, pkg, &nested_name, features);
        }
        for (i, x) in m.extension.iter().enumerate() {
            let mut p = path.clone();
            p.extend([6, i as i32]);
            let ext = self.field(f, syntax, x, p, &full_name, None, features);
            self.extensions.push(ext);
        }
        let mut fields = Vec::with_capacity(m.field.len());
        for (i, fd) in m.field.iter().enumerate() {
            let mut p = path.clone();
            p.extend([2, i as i32]);
            fields.push(self.field(f, syntax, fd, p, &full_name, Some(m), features));
        }
        for (i, n) in m.nested_type.iter().enumerate() {
            let mut p = path.clone();
            p.extend([3, i as i32]);
            if n.options.as_ref().is_some_and(|o| o.map_entry()) {
                let suffix = format!(".{}.{}", m.name(), n.name());
                if let Some(j) = m
                    .field
                    .iter()
                    .position(|fd| fd.type_name().ends_with(&suffix))
                {
                    let mut target = path.clone();
                    target.extend([2, j as i32, 6]);
                    self.map_entry_alias
                        .insert((f.proto.name(), p.clone()), target);
                }
            }
            // Map entries take their features from the map field (`features.*` on a map
            // field applies to its key and value).
            let entry_features = fields
                .iter()
                .find(|fd: &&FieldEl| {
                    fd.is_map && fd.proto.type_name().ends_with(&format!(".{}", n.name()))
                })
                .map(|fd| fd.features)
                .unwrap_or(features);
            self.add_message(f, syntax, n, p, pkg, &nested_name, entry_features);
        }
        self.by_file
            .entry(f.proto.name())
            .or_default()
            .0
            .push(full_name.clone());
        self.messages.insert(
            full_name.clone(),
            MessageEl {
                file: f,
                proto: m,
                path,
                nested_name,
                features,
                fields,
            },
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn add_enum(
        &mut self,
        f: &'a ImageFile,
        syntax: Syntax,
        e: &'a EnumDescriptorProto,
        path: Vec<i32>,
        pkg: &str,
        outer: &str,
        parent_features: Features,
    ) {
        let nested_name = join(outer, e.name());
        let full_name = join(pkg, &nested_name);
        let features = features::for_enum(self.image, syntax, &full_name, parent_features);
        self.by_file
            .entry(f.proto.name())
            .or_default()
            .1
            .push(full_name.clone());
        self.enums.insert(
            full_name,
            EnumEl {
                file: f,
                proto: e,
                path,
                nested_name,
                features,
            },
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn field(
        &self,
        f: &'a ImageFile,
        syntax: Syntax,
        fd: &'a FieldDescriptorProto,
        path: Vec<i32>,
        scope: &str,
        message: Option<&'a DescriptorProto>,
        parent_features: Features,
    ) -> FieldEl<'a> {
        let full_name = join(scope, fd.name());
        let is_extension = message.is_none();
        let features =
            features::for_field(self.image, syntax, scope, fd, is_extension, parent_features);
        let (oneof, in_oneof_any) = match (message, fd.oneof_index) {
            (Some(m), Some(i)) => {
                let name = m.oneof_decl.get(i as usize).map(|o| o.name().to_string());
                if fd.proto3_optional() {
                    (None, true)
                } else {
                    (name, true)
                }
            }
            _ => (None, false),
        };
        let in_map_entry =
            message.is_some_and(|m| m.options.as_ref().is_some_and(|o| o.map_entry()));
        let is_map = fd.label() == Label::Repeated
            && fd.r#type() == Type::Message
            && message.is_some_and(|m| {
                let entry = fd.type_name().rsplit('.').next().unwrap_or_default();
                m.nested_type
                    .iter()
                    .any(|n| n.name() == entry && n.options.as_ref().is_some_and(|o| o.map_entry()))
                    && fd.type_name().ends_with(&format!("{}.{}", m.name(), entry))
            });
        FieldEl {
            file: f,
            proto: fd,
            path,
            full_name,
            parent_name: if is_extension {
                fd.extendee().trim_start_matches('.').to_string()
            } else {
                message.map(|m| m.name().to_string()).unwrap_or_default()
            },
            is_extension,
            features,
            syntax,
            oneof,
            in_oneof_any,
            in_map_entry,
            is_map,
        }
    }

    /// The values of one scanned option extension (a field option of
    /// [`SCANNED_FIELD_OPTIONS`], by field or extension full name; a method option of
    /// [`SCANNED_METHOD_OPTIONS`], by `pkg.Service.Method`), read on first use.
    pub fn option_values(&self, name: &str) -> Rc<HashMap<String, prost_reflect::Value>> {
        if self.option_values.borrow().is_empty() {
            self.install_options(scan_options(&self.image.pool));
        }
        self.option_values
            .borrow()
            .get(name)
            .cloned()
            .unwrap_or_default()
    }

    /// Installs what [`scan_options`] read from this side's pool (done ahead, in parallel for
    /// both sides, when protoreg's own rules run).
    pub fn install_options(&self, scanned: ScannedOptions) {
        let mut memo = self.option_values.borrow_mut();
        for n in SCANNED_FIELD_OPTIONS.iter().chain(SCANNED_METHOD_OPTIONS) {
            memo.insert(n.to_string(), Rc::new(HashMap::new()));
        }
        for (n, values) in scanned {
            memo.insert(n, Rc::new(values));
        }
    }

    /// A value computed once per side and kept (what rules derive from the whole side).
    pub fn memo<T: 'static>(&self, key: &'static str, make: impl FnOnce() -> T) -> Rc<T> {
        if let Some(hit) = self.memo.borrow().get(key).cloned()
            && let Ok(v) = hit.downcast::<T>()
        {
            return v;
        }
        let v = Rc::new(make());
        self.memo.borrow_mut().insert(key, v.clone());
        v
    }

    /// A file's locations by source path (built once per file, on first use).
    fn locations(&self, file: &'a ImageFile) -> Rc<LocMap> {
        let name = file.proto.name();
        let mut cache = self.locations.borrow_mut();
        cache
            .entry(name)
            .or_insert_with(|| {
                let mut m = LocMap::new();
                if let Some(info) = file.source_code_info() {
                    for loc in &info.location {
                        let s = &loc.span;
                        let span = match s.len() {
                            3 => Span::new(s[0], s[1], s[0], s[2]),
                            4 => Span::new(s[0], s[1], s[2], s[3]),
                            _ => continue,
                        };
                        m.entry(loc.path.clone()).or_insert(span);
                    }
                }
                Rc::new(m)
            })
            .clone()
    }

    /// The first located source path under `prefix` (where an option's value was written:
    /// `[(buf.validate.field).string.min_len = 3]` is located below the field's options).
    pub fn located_under(&self, file: &'a ImageFile, prefix: &[i32]) -> Option<Vec<i32>> {
        let map = self.locations(file);
        map.iter()
            .filter(|(p, _)| p.starts_with(prefix))
            .min_by_key(|(p, span)| (**span, (*p).clone()))
            .map(|(p, _)| p.clone())
    }

    /// The span of a source path in a file, if the file has source info for it.
    pub fn span(&self, file: &'a ImageFile, path: &[i32]) -> Option<Span> {
        let name = file.proto.name();
        let map = self.locations(file);
        if let Some(span) = map.get(path) {
            return Some(*span);
        }
        (2..path.len()).rev().find_map(|n| {
            self.map_entry_alias
                .get(&(name, path[..n].to_vec()))
                .and_then(|target| map.get(target).copied())
        })
    }

    /// Messages of one file by nested name.
    pub fn file_messages(&self, file: &str) -> BTreeMap<&str, &MessageEl<'a>> {
        let Some((names, _)) = self.by_file.get(file) else {
            return BTreeMap::new();
        };
        names
            .iter()
            .filter_map(|n| self.messages.get(n))
            .map(|m| (m.nested_name.as_str(), m))
            .collect()
    }

    pub fn file_enums(&self, file: &str) -> BTreeMap<&str, &EnumEl<'a>> {
        let Some((_, names)) = self.by_file.get(file) else {
            return BTreeMap::new();
        };
        names
            .iter()
            .filter_map(|n| self.enums.get(n))
            .map(|e| (e.nested_name.as_str(), e))
            .collect()
    }

    /// Extensions of one file by nested name (full name without the package).
    pub fn file_extensions(&self, file: &str, pkg: &str) -> BTreeMap<String, &FieldEl<'a>> {
        self.extensions
            .iter()
            .filter(|x| x.file.proto.name() == file)
            .map(|x| (strip_pkg(&x.full_name, pkg), x))
            .collect()
    }
}

/// `FileDescriptorProto` / `DescriptorProto` / `FieldDescriptorProto` field numbers the
/// option scan walks.
mod tag {
    pub const FILE_PACKAGE: u32 = 2;
    pub const FILE_MESSAGE: u32 = 4;
    pub const FILE_EXTENSION: u32 = 7;
    pub const MESSAGE_NAME: u32 = 1;
    pub const MESSAGE_FIELD: u32 = 2;
    pub const MESSAGE_NESTED: u32 = 3;
    pub const MESSAGE_EXTENSION: u32 = 6;
    pub const FIELD_NAME: u32 = 1;
    pub const FIELD_OPTIONS: u32 = 8;
    pub const FILE_SERVICE: u32 = 6;
    pub const SERVICE_NAME: u32 = 1;
    pub const SERVICE_METHOD: u32 = 2;
    pub const METHOD_NAME: u32 = 1;
    pub const METHOD_OPTIONS: u32 = 4;
}

use crate::features::payload;

fn text(field: &[u8]) -> String {
    String::from_utf8_lossy(payload(field)).into_owned()
}

/// The field- and method-option extensions the options scan reads (what protoreg's own
/// rules look at).
pub(crate) const SCANNED_FIELD_OPTIONS: &[&str] =
    &["google.api.field_behavior", "buf.validate.field"];
pub(crate) const SCANNED_METHOD_OPTIONS: &[&str] = &["google.api.http"];

/// Option values by extension name, then by element full name.
pub(crate) type ScannedOptions = HashMap<String, HashMap<String, prost_reflect::Value>>;

/// Reads every scanned extension of a pool in one pass over its encoded files: fields and
/// methods are found in the encoding and only options holding one of the extensions are
/// decoded (decoding every field's options cost seconds on googleapis).
pub(crate) fn scan_options(pool: &prost_reflect::DescriptorPool) -> ScannedOptions {
    let lookup = |names: &[&str]| -> Vec<(String, prost_reflect::ExtensionDescriptor)> {
        names
            .iter()
            .filter_map(|n| pool.get_extension_by_name(n).map(|e| (n.to_string(), e)))
            .collect()
    };
    let (fields, methods) = (
        lookup(SCANNED_FIELD_OPTIONS),
        lookup(SCANNED_METHOD_OPTIONS),
    );
    let mut found = Scan {
        field_numbers: fields.iter().map(|(_, e)| e.number()).collect(),
        method_numbers: methods.iter().map(|(_, e)| e.number()).collect(),
        fields: Vec::new(),
        methods: Vec::new(),
    };
    if !fields.is_empty() || !methods.is_empty() {
        for file in pool.files() {
            found.file(&file.encode_to_vec());
        }
    }
    let mut out = ScannedOptions::new();
    let mut decode = |exts: &[(String, prost_reflect::ExtensionDescriptor)],
                      hits: Vec<(u32, String, Vec<u8>)>,
                      options_type: &str| {
        let Some(options) = pool.get_message_by_name(options_type) else {
            return;
        };
        for (number, full, bytes) in hits {
            let Some((ext_name, ext)) = exts.iter().find(|(_, e)| e.number() == number) else {
                continue;
            };
            let Ok(msg) = prost_reflect::DynamicMessage::decode(options.clone(), &bytes[..]) else {
                continue;
            };
            if msg.has_extension(ext) {
                out.entry(ext_name.clone())
                    .or_default()
                    .insert(full, msg.get_extension(ext).into_owned());
            }
        }
    };
    decode(&fields, found.fields, "google.protobuf.FieldOptions");
    decode(&methods, found.methods, "google.protobuf.MethodOptions");
    out
}

/// One pass over encoded files: each field (or extension) and method whose options hold one
/// of the wanted extension numbers — its full name, the number, and those occurrences alone
/// (an encoded `FieldOptions` / `MethodOptions` with only them).
struct Scan {
    field_numbers: Vec<u32>,
    method_numbers: Vec<u32>,
    fields: Vec<(u32, String, Vec<u8>)>,
    methods: Vec<(u32, String, Vec<u8>)>,
}

fn name_of(parts: &[protoreg_schema::wire::Field<'_>], name_tag: u32) -> String {
    parts
        .iter()
        .find(|(t, _, _)| *t == name_tag)
        .map(|(_, f, _)| text(f))
        .unwrap_or_default()
}

impl Scan {
    fn file(&mut self, raw: &[u8]) {
        let Some(top) = protoreg_schema::wire::fields(raw) else {
            return;
        };
        let pkg = name_of(&top, tag::FILE_PACKAGE);
        for (t, f, _) in &top {
            match *t {
                tag::FILE_MESSAGE if !self.field_numbers.is_empty() => {
                    self.message(payload(f), &pkg)
                }
                tag::FILE_EXTENSION if !self.field_numbers.is_empty() => {
                    self.field(payload(f), &pkg)
                }
                tag::FILE_SERVICE if !self.method_numbers.is_empty() => {
                    self.service(payload(f), &pkg)
                }
                _ => {}
            }
        }
    }

    fn message(&mut self, msg: &[u8], scope: &str) {
        let Some(parts) = protoreg_schema::wire::fields(msg) else {
            return;
        };
        let full = join(scope, &name_of(&parts, tag::MESSAGE_NAME));
        for (t, f, _) in &parts {
            match *t {
                tag::MESSAGE_FIELD | tag::MESSAGE_EXTENSION => self.field(payload(f), &full),
                tag::MESSAGE_NESTED => self.message(payload(f), &full),
                _ => {}
            }
        }
    }

    fn field(&mut self, field: &[u8], scope: &str) {
        holding(
            field,
            tag::FIELD_NAME,
            tag::FIELD_OPTIONS,
            scope,
            &self.field_numbers,
            &mut self.fields,
        );
    }

    fn service(&mut self, service: &[u8], pkg: &str) {
        let Some(parts) = protoreg_schema::wire::fields(service) else {
            return;
        };
        let scope = join(pkg, &name_of(&parts, tag::SERVICE_NAME));
        for (_, method, _) in parts.iter().filter(|(t, _, _)| *t == tag::SERVICE_METHOD) {
            holding(
                payload(method),
                tag::METHOD_NAME,
                tag::METHOD_OPTIONS,
                &scope,
                &self.method_numbers,
                &mut self.methods,
            );
        }
    }
}

/// When the element's options (field `options_tag`) hold one of `numbers`: its full name
/// (`scope.name`) and those occurrences, per number.
fn holding(
    element: &[u8],
    name_tag: u32,
    options_tag: u32,
    scope: &str,
    numbers: &[u32],
    out: &mut Vec<(u32, String, Vec<u8>)>,
) {
    let Some(parts) = protoreg_schema::wire::fields(element) else {
        return;
    };
    let Some((_, options, _)) = parts.iter().find(|(t, _, _)| *t == options_tag) else {
        return;
    };
    let Some(opts) = protoreg_schema::wire::fields(payload(options)) else {
        return;
    };
    for &number in numbers {
        let hits: Vec<u8> = opts
            .iter()
            .filter(|(t, _, _)| *t == number)
            .flat_map(|(_, whole, _)| whole.iter().copied())
            .collect();
        if !hits.is_empty() {
            out.push((number, join(scope, &name_of(&parts, name_tag)), hits));
        }
    }
}

pub(crate) fn strip_pkg(full: &str, pkg: &str) -> String {
    if pkg.is_empty() {
        full.to_string()
    } else {
        full.strip_prefix(&format!("{pkg}."))
            .unwrap_or(full)
            .to_string()
    }
}
