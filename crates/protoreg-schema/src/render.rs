//! `.proto` source from a `FileDescriptorProto`: what the Confluent API stores when a client
//! (Confluent's Python and Go serializers) registers a schema as a base64 descriptor.
//!
//! The text compiles back to the same descriptor (source info aside): type names are written
//! fully qualified (`.pkg.Type`), map entries become `map<K, V>`, groups and oneofs their
//! blocks, proto3 `optional` its keyword. What this renderer cannot write back faithfully —
//! custom options, editions features, or anything else prost-types does not model — makes
//! [`render`] refuse rather than silently drop it.

use std::fmt::Write;

use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{
    DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorProto,
    ServiceDescriptorProto,
};

/// Why a descriptor cannot be rendered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RenderError {
    #[error("not a FileDescriptorProto: {0}")]
    Decode(String),
    #[error(
        "the descriptor holds what protoreg cannot render as .proto text (custom options, editions features or unknown fields); register the .proto source instead"
    )]
    Unrepresentable,
    #[error("syntax {0:?} in a descriptor is not supported; register the .proto source instead")]
    Syntax(String),
}

/// Decodes `bytes` as a `FileDescriptorProto` and renders it (see the module docs).
pub fn render_encoded(bytes: &[u8]) -> Result<(String, FileDescriptorProto), RenderError> {
    let file =
        FileDescriptorProto::decode(bytes).map_err(|e| RenderError::Decode(e.to_string()))?;
    // prost-types keeps only what descriptor.proto names: unknown fields (custom options,
    // editions features) are dropped on decode. Re-encoding shows whether anything was.
    let mut known = file.clone();
    known.source_code_info = None;
    if known.encoded_len() != len_without_source_info(bytes) {
        return Err(RenderError::Unrepresentable);
    }
    Ok((render(&file)?, file))
}

/// Length of an encoded file descriptor without its `source_code_info`.
fn len_without_source_info(bytes: &[u8]) -> usize {
    /// `FileDescriptorProto.source_code_info`.
    const SOURCE_CODE_INFO: u32 = 9;
    match crate::wire::fields(bytes) {
        Some(fields) => {
            bytes.len()
                - fields
                    .iter()
                    .filter(|(number, _, _)| *number == SOURCE_CODE_INFO)
                    .map(|(_, raw, _)| raw.len())
                    .sum::<usize>()
        }
        None => bytes.len(),
    }
}

/// Renders `file` as `.proto` source.
pub fn render(file: &FileDescriptorProto) -> Result<String, RenderError> {
    let syntax = match file.syntax() {
        "" | "proto2" => "proto2",
        "proto3" => "proto3",
        other => return Err(RenderError::Syntax(other.to_string())),
    };
    let mut r = Renderer {
        out: String::new(),
        proto3: syntax == "proto3",
    };
    let _ = writeln!(r.out, "syntax = \"{syntax}\";");
    if let Some(p) = &file.package {
        let _ = writeln!(r.out, "package {p};");
    }
    if !file.dependency.is_empty() {
        r.out.push('\n');
    }
    for (i, dep) in file.dependency.iter().enumerate() {
        let i = i as i32;
        let kind = if file.public_dependency.contains(&i) {
            "public "
        } else if file.weak_dependency.contains(&i) {
            "weak "
        } else {
            ""
        };
        let _ = writeln!(r.out, "import {kind}{};", quote(dep));
    }
    if let Some(o) = &file.options {
        let mut opts = Vec::new();
        opt_str(&mut opts, "java_package", &o.java_package);
        opt_str(&mut opts, "java_outer_classname", &o.java_outer_classname);
        opt_bool(&mut opts, "java_multiple_files", o.java_multiple_files);
        #[allow(deprecated)]
        opt_bool(
            &mut opts,
            "java_generate_equals_and_hash",
            o.java_generate_equals_and_hash,
        );
        opt_bool(
            &mut opts,
            "java_string_check_utf8",
            o.java_string_check_utf8,
        );
        if o.optimize_for.is_some() {
            opts.push(("optimize_for", o.optimize_for().as_str_name().to_string()));
        }
        opt_str(&mut opts, "go_package", &o.go_package);
        opt_bool(&mut opts, "cc_generic_services", o.cc_generic_services);
        opt_bool(&mut opts, "java_generic_services", o.java_generic_services);
        opt_bool(&mut opts, "py_generic_services", o.py_generic_services);
        opt_bool(&mut opts, "deprecated", o.deprecated);
        opt_bool(&mut opts, "cc_enable_arenas", o.cc_enable_arenas);
        opt_str(&mut opts, "objc_class_prefix", &o.objc_class_prefix);
        opt_str(&mut opts, "csharp_namespace", &o.csharp_namespace);
        opt_str(&mut opts, "swift_prefix", &o.swift_prefix);
        opt_str(&mut opts, "php_class_prefix", &o.php_class_prefix);
        opt_str(&mut opts, "php_namespace", &o.php_namespace);
        opt_str(
            &mut opts,
            "php_metadata_namespace",
            &o.php_metadata_namespace,
        );
        opt_str(&mut opts, "ruby_package", &o.ruby_package);
        if !opts.is_empty() {
            r.out.push('\n');
        }
        r.options(0, &opts);
    }
    for m in &file.message_type {
        r.out.push('\n');
        r.message(0, m);
    }
    for e in &file.enum_type {
        r.out.push('\n');
        r.enumeration(0, e);
    }
    for s in &file.service {
        r.out.push('\n');
        r.service(s);
    }
    if !file.extension.is_empty() {
        r.out.push('\n');
        r.extensions(0, &file.extension, &[]);
    }
    Ok(r.out)
}

struct Renderer {
    out: String,
    proto3: bool,
}

fn indent(depth: usize) -> String {
    "  ".repeat(depth)
}

fn opt_str(out: &mut Vec<(&'static str, String)>, name: &'static str, v: &Option<String>) {
    if let Some(v) = v {
        out.push((name, quote(v)));
    }
}

fn opt_bool(out: &mut Vec<(&'static str, String)>, name: &'static str, v: Option<bool>) {
    if let Some(v) = v {
        out.push((name, v.to_string()));
    }
}

/// A string literal with the escapes protobuf's text format uses.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for b in s.bytes() {
        push_escaped(&mut out, b);
    }
    out.push('"');
    out
}

fn push_escaped(out: &mut String, b: u8) {
    match b {
        b'"' => out.push_str("\\\""),
        b'\'' => out.push_str("\\'"),
        b'\\' => out.push_str("\\\\"),
        b'\n' => out.push_str("\\n"),
        b'\r' => out.push_str("\\r"),
        b'\t' => out.push_str("\\t"),
        0x20..=0x7e => out.push(b as char),
        _ => {
            let _ = write!(out, "\\{b:03o}");
        }
    }
}

/// A scalar type's keyword (`TYPE_SFIXED32` → `sfixed32`); `None` for named types.
fn scalar(t: Type) -> Option<String> {
    match t {
        Type::Group | Type::Message | Type::Enum => None,
        t => Some(
            t.as_str_name()
                .trim_start_matches("TYPE_")
                .to_ascii_lowercase(),
        ),
    }
}

/// A range's end as written: `max` for the largest field number.
fn range_end(end_inclusive: i32, max: i32) -> String {
    if end_inclusive >= max {
        "max".to_string()
    } else {
        end_inclusive.to_string()
    }
}

const MAX_FIELD_NUMBER: i32 = 536_870_911;

impl Renderer {
    fn line(&mut self, depth: usize, text: &str) {
        let _ = writeln!(self.out, "{}{text}", indent(depth));
    }

    fn options(&mut self, depth: usize, opts: &[(&'static str, String)]) {
        for (name, value) in opts {
            self.line(depth, &format!("option {name} = {value};"));
        }
    }

    fn type_name(&self, f: &FieldDescriptorProto) -> String {
        match scalar(f.r#type()) {
            Some(s) if f.r#type.is_some() => s,
            _ => f.type_name().to_string(),
        }
    }

    fn message(&mut self, depth: usize, m: &DescriptorProto) {
        self.line(depth, &format!("message {} {{", m.name()));
        let inner = depth + 1;
        if let Some(o) = &m.options {
            let mut opts = Vec::new();
            opt_bool(
                &mut opts,
                "message_set_wire_format",
                o.message_set_wire_format,
            );
            opt_bool(
                &mut opts,
                "no_standard_descriptor_accessor",
                o.no_standard_descriptor_accessor,
            );
            opt_bool(&mut opts, "deprecated", o.deprecated);
            self.options(inner, &opts);
        }
        // Nested types that are written inline (map entries, groups) are not written again.
        let inline: Vec<&str> = m
            .field
            .iter()
            .filter(|f| f.r#type() == Type::Group || self.map_entry(m, f).is_some())
            .map(|f| f.type_name().rsplit('.').next().unwrap_or_default())
            .collect();
        let mut written_oneofs = Vec::new();
        for f in &m.field {
            match f.oneof_index {
                Some(i) if !f.proto3_optional() => {
                    if written_oneofs.contains(&i) {
                        continue;
                    }
                    written_oneofs.push(i);
                    let name = m
                        .oneof_decl
                        .get(i as usize)
                        .map(|o| o.name().to_string())
                        .unwrap_or_default();
                    self.line(inner, &format!("oneof {name} {{"));
                    for member in m.field.iter().filter(|g| g.oneof_index == Some(i)) {
                        self.field(inner + 1, m, member, true);
                    }
                    self.line(inner, "}");
                }
                _ => self.field(inner, m, f, false),
            }
        }
        for n in &m.nested_type {
            if !inline.contains(&n.name()) {
                self.message(inner, n);
            }
        }
        for e in &m.enum_type {
            self.enumeration(inner, e);
        }
        if !m.extension.is_empty() {
            self.extensions(inner, &m.extension, &m.nested_type);
        }
        for r in &m.extension_range {
            self.line(
                inner,
                &format!(
                    "extensions {} to {};",
                    r.start(),
                    range_end(r.end() - 1, MAX_FIELD_NUMBER)
                ),
            );
        }
        self.reserved(
            inner,
            m.reserved_range
                .iter()
                .map(|r| (r.start(), r.end() - 1))
                .collect(),
            &m.reserved_name,
            MAX_FIELD_NUMBER,
        );
        self.line(depth, "}");
    }

    /// The map entry type a field is written as `map<K, V>` with.
    fn map_entry<'m>(
        &self,
        m: &'m DescriptorProto,
        f: &FieldDescriptorProto,
    ) -> Option<&'m DescriptorProto> {
        if f.r#type() != Type::Message || f.label() != Label::Repeated {
            return None;
        }
        let short = f.type_name().rsplit('.').next()?;
        m.nested_type
            .iter()
            .find(|n| n.name() == short && n.options.as_ref().is_some_and(|o| o.map_entry()))
    }

    fn reserved(&mut self, depth: usize, ranges: Vec<(i32, i32)>, names: &[String], max: i32) {
        if !ranges.is_empty() {
            let list: Vec<String> = ranges
                .iter()
                .map(|&(s, e)| {
                    if s == e {
                        s.to_string()
                    } else {
                        format!("{s} to {}", range_end(e, max))
                    }
                })
                .collect();
            self.line(depth, &format!("reserved {};", list.join(", ")));
        }
        if !names.is_empty() {
            let list: Vec<String> = names.iter().map(|n| quote(n)).collect();
            self.line(depth, &format!("reserved {};", list.join(", ")));
        }
    }

    fn field_options(&self, f: &FieldDescriptorProto, in_extend: bool) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(d) = &f.default_value {
            let v = match f.r#type() {
                Type::String => quote(d),
                // Already escaped in descriptors.
                Type::Bytes => format!("\"{d}\""),
                _ => d.clone(),
            };
            out.push(format!("default = {v}"));
        }
        if let Some(j) = &f.json_name
            && !in_extend
            && *j != protoreg_parse::json_name(f.name())
        {
            out.push(format!("json_name = {}", quote(j)));
        }
        if let Some(o) = &f.options {
            if o.ctype.is_some() {
                out.push(format!("ctype = {}", o.ctype().as_str_name()));
            }
            if let Some(p) = o.packed {
                out.push(format!("packed = {p}"));
            }
            if o.jstype.is_some() {
                out.push(format!("jstype = {}", o.jstype().as_str_name()));
            }
            for (name, v) in [
                ("lazy", o.lazy),
                ("deprecated", o.deprecated),
                ("weak", o.weak),
            ] {
                if let Some(v) = v {
                    out.push(format!("{name} = {v}"));
                }
            }
        }
        out
    }

    fn label(&self, f: &FieldDescriptorProto, in_oneof: bool) -> &'static str {
        if in_oneof {
            return "";
        }
        match f.label() {
            Label::Repeated => "repeated ",
            Label::Required => "required ",
            Label::Optional if !self.proto3 || f.proto3_optional() => "optional ",
            Label::Optional => "",
        }
    }

    fn field(
        &mut self,
        depth: usize,
        m: &DescriptorProto,
        f: &FieldDescriptorProto,
        in_oneof: bool,
    ) {
        let opts = self.field_options(f, false);
        let opts = if opts.is_empty() {
            String::new()
        } else {
            format!(" [{}]", opts.join(", "))
        };
        if let Some(entry) = self.map_entry(m, f) {
            let key = entry.field.iter().find(|k| k.number() == 1);
            let value = entry.field.iter().find(|k| k.number() == 2);
            if let (Some(k), Some(v)) = (key, value) {
                self.line(
                    depth,
                    &format!(
                        "map<{}, {}> {} = {}{opts};",
                        self.type_name(k),
                        self.type_name(v),
                        f.name(),
                        f.number()
                    ),
                );
                return;
            }
        }
        if f.r#type() == Type::Group {
            let short = f.type_name().rsplit('.').next().unwrap_or_default();
            if let Some(g) = m.nested_type.iter().find(|n| n.name() == short) {
                self.line(
                    depth,
                    &format!(
                        "{}group {} = {}{opts} {{",
                        self.label(f, in_oneof),
                        g.name(),
                        f.number()
                    ),
                );
                let mut body = Renderer {
                    out: String::new(),
                    proto3: self.proto3,
                };
                body.message(depth, g);
                // The group's body without its `message Name {` line.
                let text = body
                    .out
                    .split_once('\n')
                    .map(|(_, rest)| rest)
                    .unwrap_or("");
                self.out.push_str(text);
                return;
            }
        }
        self.line(
            depth,
            &format!(
                "{}{} {} = {}{opts};",
                self.label(f, in_oneof),
                self.type_name(f),
                f.name(),
                f.number()
            ),
        );
    }

    fn extensions(
        &mut self,
        depth: usize,
        exts: &[FieldDescriptorProto],
        nested: &[DescriptorProto],
    ) {
        let mut extendees: Vec<&str> = Vec::new();
        for e in exts {
            if !extendees.contains(&e.extendee()) {
                extendees.push(e.extendee());
            }
        }
        // Groups in extend blocks refer to sibling nested types.
        let holder = DescriptorProto {
            nested_type: nested.to_vec(),
            ..Default::default()
        };
        for extendee in extendees {
            self.line(depth, &format!("extend {extendee} {{"));
            for e in exts.iter().filter(|e| e.extendee() == extendee) {
                let mut e = e.clone();
                e.json_name = None;
                self.field(depth + 1, &holder, &e, false);
            }
            self.line(depth, "}");
        }
    }

    fn enumeration(&mut self, depth: usize, e: &EnumDescriptorProto) {
        self.line(depth, &format!("enum {} {{", e.name()));
        let inner = depth + 1;
        if let Some(o) = &e.options {
            let mut opts = Vec::new();
            opt_bool(&mut opts, "allow_alias", o.allow_alias);
            opt_bool(&mut opts, "deprecated", o.deprecated);
            self.options(inner, &opts);
        }
        for v in &e.value {
            let mut opts = Vec::new();
            if let Some(d) = v.options.as_ref().and_then(|o| o.deprecated) {
                opts.push(format!("deprecated = {d}"));
            }
            let opts = if opts.is_empty() {
                String::new()
            } else {
                format!(" [{}]", opts.join(", "))
            };
            self.line(inner, &format!("{} = {}{opts};", v.name(), v.number()));
        }
        self.reserved(
            inner,
            e.reserved_range
                .iter()
                .map(|r| (r.start(), r.end()))
                .collect(),
            &e.reserved_name,
            i32::MAX,
        );
        self.line(depth, "}");
    }

    fn service(&mut self, s: &ServiceDescriptorProto) {
        self.line(0, &format!("service {} {{", s.name()));
        if let Some(o) = &s.options {
            let mut opts = Vec::new();
            opt_bool(&mut opts, "deprecated", o.deprecated);
            self.options(1, &opts);
        }
        for m in &s.method {
            // `stream .pkg.T` reads as the type `stream.pkg.T` to parsers that join dotted
            // names across spaces (buf's and ours do): a streamed type is written without
            // its leading dot, which resolves the same from the package scope.
            let side = |streaming: bool, ty: &str| {
                if streaming {
                    format!("stream {}", ty.trim_start_matches('.'))
                } else {
                    ty.to_string()
                }
            };
            let head = format!(
                "rpc {}({}) returns ({})",
                m.name(),
                side(m.client_streaming(), m.input_type()),
                side(m.server_streaming(), m.output_type())
            );
            let mut opts = Vec::new();
            if let Some(o) = &m.options {
                opt_bool(&mut opts, "deprecated", o.deprecated);
                if o.idempotency_level.is_some() {
                    opts.push((
                        "idempotency_level",
                        o.idempotency_level().as_str_name().to_string(),
                    ));
                }
            }
            if opts.is_empty() {
                self.line(1, &format!("{head};"));
            } else {
                self.line(1, &format!("{head} {{"));
                self.options(2, &opts);
                self.line(1, "}");
            }
        }
        self.line(0, "}");
    }
}
