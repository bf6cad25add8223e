//! The rules: one small function per buf rule id, and the table that names them.
//!
//! Each rule walks pairs (previous element, current element) built by the pairing helpers at
//! the bottom of this file and reports through [`Cx::report`], giving the source paths to
//! try in order (buf's `withBackupLocation`).

use std::collections::{BTreeMap, BTreeSet};

use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, EnumDescriptorProto, FileOptions, MethodDescriptorProto};
use protoreg_schema::ImageFile;

use crate::extra::{
    self, field_behavior_no_new_required, field_behavior_same_immutable,
    field_behavior_same_output_only, field_validate_no_narrower_range,
    field_validate_no_new_pattern, field_validate_no_new_required, field_validate_no_shrinking_in,
    field_validate_no_tighter_length, rpc_http_additional_binding_no_delete, rpc_http_no_delete,
    rpc_http_same_body, rpc_http_same_pattern, rpc_http_same_response_body,
};
use crate::features::{self, Syntax};
use crate::index::{EnumEl, FieldEl, FileEl, MessageEl, ServiceEl, Side, strip_pkg};
use crate::{Finding, Span, file_package};

/// A rule: its id, buf's categories for it, and the function that checks it.
pub struct Rule {
    pub id: &'static str,
    pub categories: &'static [&'static str],
    /// Why a change caught by this rule breaks clients (wire, JSON or generated code).
    pub purpose: &'static str,
    pub check: fn(&mut Cx),
}

impl Rule {
    /// Whether buf applies the rule when `buf.yaml` names none (the FILE category).
    pub fn is_default(&self) -> bool {
        self.categories.contains(&"FILE")
    }

    /// Whether buf has the rule (the others are protoreg's own, opt-in).
    pub fn is_buf(&self) -> bool {
        self.categories.iter().any(|c| BUF_CATEGORIES.contains(c))
    }
}

/// The categories: buf's, strictest first, then protoreg's opt-in ones.
pub const CATEGORIES: &[&str] = &[
    "FILE",
    "PACKAGE",
    "WIRE_JSON",
    "WIRE",
    "CSR",
    extra::PROTOREG,
    extra::HTTP,
    extra::FIELD_BEHAVIOR,
    extra::PROTOVALIDATE,
];

/// buf's categories (a rule in none of them is one of protoreg's own).
pub const BUF_CATEGORIES: &[&str] = &["FILE", "PACKAGE", "WIRE_JSON", "WIRE", "CSR"];

const F: &str = "FILE";
const P: &str = "PACKAGE";
const WJ: &str = "WIRE_JSON";
const W: &str = "WIRE";
const C: &str = "CSR";
const X: &str = extra::PROTOREG;
const XH: &str = extra::HTTP;
const XB: &str = extra::FIELD_BEHAVIOR;
const XV: &str = extra::PROTOVALIDATE;

macro_rules! rules {
    ($( $id:literal [$($cat:expr),*] $f:ident : $purpose:literal ;)*) => {
        /// Every breaking rule of buf 1.75, in buf's order, then protoreg's own.
        pub static RULES: &[Rule] = &[ $( Rule { id: $id, categories: &[$($cat),*], purpose: $purpose, check: $f } ),* ];
    };
}

rules! {
    "ENUM_NO_DELETE" [C, F] enum_no_delete: "generated code loses the enum type; code that uses it stops compiling";
    "ENUM_SAME_JSON_FORMAT" [C, F, P, WJ] enum_same_json_format: "JSON readers that relied on the enum's JSON mapping reject the payload";
    "ENUM_SAME_TYPE" [F, P] enum_same_type: "open and closed enums treat unknown values differently, so readers disagree";
    "ENUM_VALUE_NO_DELETE" [C, F, P] enum_value_no_delete: "generated code loses the constant; old writers still send the number";
    "ENUM_VALUE_NO_DELETE_UNLESS_NAME_RESERVED" [C, WJ] enum_value_no_delete_unless_name_reserved: "JSON uses value names: a deleted name can come back with another meaning unless reserved";
    "ENUM_VALUE_NO_DELETE_UNLESS_NUMBER_RESERVED" [C, WJ, W] enum_value_no_delete_unless_number_reserved: "a deleted number can be reused with another meaning on the wire unless reserved";
    "ENUM_VALUE_SAME_NAME" [C, F, P, WJ] enum_value_same_name: "JSON carries enum values by name: a renamed value is unreadable to old readers";
    "EXTENSION_MESSAGE_NO_DELETE" [C, F, P] extension_message_no_delete: "extensions declared in the removed range stop compiling";
    "EXTENSION_NO_DELETE" [F] extension_no_delete: "generated code loses the extension";
    "FIELD_NO_DELETE" [C, F, P] field_no_delete: "generated code loses the accessor; the number can be reused with another type";
    "FIELD_NO_DELETE_UNLESS_NAME_RESERVED" [C, WJ] field_no_delete_unless_name_reserved: "JSON uses field names: a deleted name can come back with another type unless reserved";
    "FIELD_NO_DELETE_UNLESS_NUMBER_RESERVED" [C, WJ, W] field_no_delete_unless_number_reserved: "a deleted number can be reused with another type on the wire unless reserved";
    "FIELD_SAME_CARDINALITY" [F, P] field_same_cardinality: "generated accessors change shape (optional, repeated, map, presence)";
    "FIELD_SAME_CPP_STRING_TYPE" [F, P] field_same_cpp_string_type: "generated C++ accessors change type";
    "FIELD_SAME_DEFAULT" [C, F, P, WJ, W] field_same_default: "readers fill a missing field with a different value";
    "FIELD_SAME_JAVA_UTF8_VALIDATION" [F, P] field_same_java_utf8_validation: "Java readers start rejecting or accepting invalid UTF-8";
    "FIELD_SAME_JSON_NAME" [C, F, P, WJ] field_same_json_name: "JSON carries the field under another key";
    "FIELD_SAME_JSTYPE" [F, P] field_same_jstype: "generated JavaScript changes the field's type (number vs string)";
    "FIELD_SAME_NAME" [C, F, P, WJ] field_same_name: "JSON and generated code use the field name";
    "FIELD_SAME_ONEOF" [C, F, P, WJ, W] field_same_oneof: "oneof membership changes which fields clear each other on the wire";
    "FIELD_SAME_TYPE" [C, F, P] field_same_type: "generated code changes type; the wire encoding may differ";
    "FIELD_SAME_UTF8_VALIDATION" [F, P] field_same_utf8_validation: "readers start rejecting or accepting invalid UTF-8";
    "FIELD_WIRE_COMPATIBLE_CARDINALITY" [W] field_wire_compatible_cardinality: "the wire encoding of the field changes";
    "FIELD_WIRE_COMPATIBLE_TYPE" [W] field_wire_compatible_type: "the wire encoding of the field changes";
    "FIELD_WIRE_JSON_COMPATIBLE_CARDINALITY" [C, WJ] field_wire_json_compatible_cardinality: "the wire or JSON encoding of the field changes";
    "FIELD_WIRE_JSON_COMPATIBLE_TYPE" [C, WJ] field_wire_json_compatible_type: "the wire or JSON encoding of the field changes";
    "FILE_NO_DELETE" [C, F] file_no_delete: "generated code for the file disappears; imports of it stop compiling";
    "FILE_SAME_CC_ENABLE_ARENAS" [F, P] file_same_cc_enable_arenas: "generated C++ changes";
    "FILE_SAME_CC_GENERIC_SERVICES" [F, P] file_same_cc_generic_services: "generated C++ services change";
    "FILE_SAME_CSHARP_NAMESPACE" [F, P] file_same_csharp_namespace: "generated C# moves to another namespace";
    "FILE_SAME_GO_PACKAGE" [F, P] file_same_go_package: "generated Go moves to another import path";
    "FILE_SAME_JAVA_GENERIC_SERVICES" [F, P] file_same_java_generic_services: "generated Java services change";
    "FILE_SAME_JAVA_MULTIPLE_FILES" [F, P] file_same_java_multiple_files: "generated Java classes move";
    "FILE_SAME_JAVA_OUTER_CLASSNAME" [F, P] file_same_java_outer_classname: "generated Java outer class is renamed";
    "FILE_SAME_JAVA_PACKAGE" [F, P] file_same_java_package: "generated Java moves to another package";
    "FILE_SAME_OBJC_CLASS_PREFIX" [F, P] file_same_objc_class_prefix: "generated Objective-C classes are renamed";
    "FILE_SAME_OPTIMIZE_FOR" [F, P] file_same_optimize_for: "generated code loses or gains APIs";
    "FILE_SAME_PACKAGE" [C, F, P, WJ, W] file_same_package: "every type gets a new full name: Any, gRPC paths and generated code break";
    "FILE_SAME_PHP_CLASS_PREFIX" [F, P] file_same_php_class_prefix: "generated PHP classes are renamed";
    "FILE_SAME_PHP_METADATA_NAMESPACE" [F, P] file_same_php_metadata_namespace: "generated PHP metadata moves";
    "FILE_SAME_PHP_NAMESPACE" [F, P] file_same_php_namespace: "generated PHP moves to another namespace";
    "FILE_SAME_PY_GENERIC_SERVICES" [F, P] file_same_py_generic_services: "generated Python services change";
    "FILE_SAME_RUBY_PACKAGE" [F, P] file_same_ruby_package: "generated Ruby moves to another module";
    "FILE_SAME_SWIFT_PREFIX" [F, P] file_same_swift_prefix: "generated Swift types are renamed";
    "FILE_SAME_SYNTAX" [C, F, P] file_same_syntax: "presence, enum and UTF-8 semantics change with the syntax";
    "MESSAGE_NO_DELETE" [C, F] message_no_delete: "generated code loses the type";
    "MESSAGE_NO_REMOVE_STANDARD_DESCRIPTOR_ACCESSOR" [C, F, P] message_no_remove_standard_descriptor_accessor: "generated code loses the descriptor() accessor";
    "MESSAGE_SAME_JSON_FORMAT" [C, F, P, WJ] message_same_json_format: "JSON readers that relied on the message's JSON mapping reject the payload";
    "MESSAGE_SAME_REQUIRED_FIELDS" [C, F, P, WJ, W] message_same_required_fields: "a side that does not know a required field fails to parse or send the message";
    "ONEOF_NO_DELETE" [C, F, P] oneof_no_delete: "generated code loses the oneof case accessor";
    "PACKAGE_ENUM_NO_DELETE" [P] package_enum_no_delete: "the package loses the enum type";
    "PACKAGE_EXTENSION_NO_DELETE" [P] package_extension_no_delete: "the package loses the extension";
    "PACKAGE_MESSAGE_NO_DELETE" [P] package_message_no_delete: "the package loses the message type";
    "PACKAGE_NO_DELETE" [P] package_no_delete: "every type of the package disappears";
    "PACKAGE_SERVICE_NO_DELETE" [P] package_service_no_delete: "the package loses the service";
    "RESERVED_ENUM_NO_DELETE" [C, F, P, WJ, W] reserved_enum_no_delete: "an unreserved number or name can be reused with another meaning";
    "RESERVED_MESSAGE_NO_DELETE" [C, F, P, WJ, W] reserved_message_no_delete: "an unreserved number or name can be reused with another type";
    "RPC_NO_DELETE" [F, P] rpc_no_delete: "clients calling the RPC get UNIMPLEMENTED";
    "RPC_SAME_CLIENT_STREAMING" [C, F, P, WJ, W] rpc_same_client_streaming: "the call shape changes; existing clients fail";
    "RPC_SAME_IDEMPOTENCY_LEVEL" [C, F, P, WJ, W] rpc_same_idempotency_level: "clients change HTTP method (GET vs POST) and retry behaviour";
    "RPC_SAME_REQUEST_TYPE" [C, F, P, WJ, W] rpc_same_request_type: "the server parses requests as another type";
    "RPC_SAME_RESPONSE_TYPE" [C, F, P, WJ, W] rpc_same_response_type: "clients parse responses as another type";
    "RPC_SAME_SERVER_STREAMING" [C, F, P, WJ, W] rpc_same_server_streaming: "the call shape changes; existing clients fail";
    "SERVICE_NO_DELETE" [F] service_no_delete: "clients calling the service get UNIMPLEMENTED";
    "RPC_HTTP_NO_DELETE" [X, XH] rpc_http_no_delete: "HTTP/JSON clients (grpc-gateway, Envoy transcoding, Cloud Endpoints) calling the RPC's URL get 404";
    "RPC_HTTP_SAME_PATTERN" [X, XH] rpc_http_same_pattern: "HTTP/JSON clients still call the old verb and path template and get 404 or 405";
    "RPC_HTTP_ADDITIONAL_BINDING_NO_DELETE" [X, XH] rpc_http_additional_binding_no_delete: "HTTP/JSON clients of the removed binding get 404";
    "RPC_HTTP_SAME_BODY" [X, XH] rpc_http_same_body: "the HTTP request body maps to other fields: clients' bodies are read wrongly or rejected";
    "RPC_HTTP_SAME_RESPONSE_BODY" [X, XH] rpc_http_same_response_body: "HTTP clients receive another part of the response than they parse";
    "FIELD_BEHAVIOR_NO_NEW_REQUIRED" [X, XB] field_behavior_no_new_required: "existing clients do not set the field, and servers that enforce REQUIRED reject their requests";
    "FIELD_BEHAVIOR_SAME_OUTPUT_ONLY" [X, XB] field_behavior_same_output_only: "clients that send the field have it ignored, or start having to send it; generated clients and docs change";
    "FIELD_BEHAVIOR_SAME_IMMUTABLE" [X, XB] field_behavior_same_immutable: "clients that update the field are rejected, or relied on it never changing";
    "FIELD_VALIDATE_NO_NEW_REQUIRED" [X, XV] field_validate_no_new_required: "messages without the field were valid and are now rejected by protovalidate";
    "FIELD_VALIDATE_NO_TIGHTER_LENGTH" [X, XV] field_validate_no_tighter_length: "values of a length or size that was valid are now rejected";
    "FIELD_VALIDATE_NO_NARROWER_RANGE" [X, XV] field_validate_no_narrower_range: "values in the old range are now rejected";
    "FIELD_VALIDATE_NO_SHRINKING_IN" [X, XV] field_validate_no_shrinking_in: "values the old list allowed are now rejected";
    "FIELD_VALIDATE_NO_NEW_PATTERN" [X, XV] field_validate_no_new_pattern: "values that did not match the new pattern or format were valid and are now rejected";
}

/// What a rule sees: both sides, and where its findings go.
pub struct Cx<'c, 'a> {
    pub(crate) cur: &'c Side<'a>,
    pub(crate) prev: &'c Side<'a>,
    pub(crate) rule: &'static str,
    pub(crate) out: &'c mut Vec<Finding>,
    /// Pairs many rules walk, made once per check.
    pub(crate) pairs: &'c Pairs<'c, 'a>,
}

/// The (previous, current) pairs of messages and of fields, shared by the rules of a check:
/// a score of field rules each pairing every field again was a third of the check's time.
#[derive(Default)]
pub struct Pairs<'c, 'a> {
    messages: std::cell::OnceCell<Vec<(&'c MessageEl<'a>, &'c MessageEl<'a>)>>,
    fields: std::cell::OnceCell<Vec<(&'c FieldEl<'a>, &'c FieldEl<'a>)>>,
}

impl<'c, 'a> Cx<'c, 'a> {
    /// Reports a finding in `cur` at the first of `paths` that has a location (none: 1:1).
    pub(crate) fn report(
        &mut self,
        element: &str,
        cur: Option<&'a ImageFile>,
        paths: &[&[i32]],
        prev: Option<&'a ImageFile>,
        message: String,
        fix: Option<String>,
    ) {
        // An empty path would be the whole file: buf has no location there (1:1).
        let span = cur
            .and_then(|f| {
                paths
                    .iter()
                    .filter(|p| !p.is_empty())
                    .find_map(|p| self.cur.span(f, p))
            })
            .unwrap_or(Span::FILE_START);
        self.out.push(Finding {
            path: cur.map(|f| f.display.clone()),
            span,
            rule: self.rule,
            message,
            fix,
            element: element.to_string(),
            accepted: None,
            file_name: cur.map(|f| f.proto.name().to_string()),
            against_file_name: prev.map(|f| f.proto.name().to_string()),
            packages: (cur.map(file_package), prev.map(file_package)),
        });
    }
}

/// `pkg.name`, or `name` in the root package.
fn qualify(pkg: &str, name: &str) -> String {
    if pkg.is_empty() {
        name.to_string()
    } else {
        format!("{pkg}.{name}")
    }
}

/// The full name of a message's field with this number (the element of a finding about it).
fn required_name(m: &MessageEl, number: i32) -> String {
    m.fields
        .iter()
        .find(|f| f.proto.number() == number)
        .map(|f| f.full_name.clone())
        .unwrap_or_else(|| format!("{}.{number}", m.full_name()))
}

pub(crate) fn sub(path: &[i32], tail: &[i32]) -> Vec<i32> {
    let mut p = path.to_vec();
    p.extend_from_slice(tail);
    p
}

// ----- files and packages -----

fn file_no_delete(cx: &mut Cx) {
    for (name, pf) in &cx.prev.files {
        if pf.file.is_import || cx.cur.files.contains_key(name) {
            continue;
        }
        cx.report(
            name,
            None,
            &[],
            Some(pf.file),
            format!("Previously present file {name:?} was deleted."),
            Some(format!(
                "restore {name:?}; move its contents only with a deprecation period"
            )),
        );
    }
}

fn file_pairs<'c, 'a>(cx: &Cx<'c, 'a>) -> Vec<(&'c FileEl<'a>, &'c FileEl<'a>)> {
    cx.prev
        .files
        .iter()
        .filter_map(|(n, p)| cx.cur.files.get(n).map(|c| (p, c)))
        .collect()
}

/// The parent message of a deleted nested element, if it is still in the file.
fn deleted_parent<'a>(side: &Side<'a>, file: &str, nested: &str) -> Option<Vec<i32>> {
    let msgs = side.file_messages(file);
    let parts: Vec<&str> = nested.split('.').collect();
    (1..parts.len()).rev().find_map(|i| {
        msgs.get(parts[..i].join(".").as_str())
            .map(|m| m.path.clone())
    })
}

/// The closest surviving parent message of a deleted nested message, package-wide.
fn deleted_message_parent<'c, 'a>(
    side: &'c Side<'a>,
    pkg: &str,
    nested: &str,
) -> Option<&'c MessageEl<'a>> {
    let parts: Vec<&str> = nested.split('.').collect();
    (1..parts.len()).rev().find_map(|i| {
        let name = parts[..i].join(".");
        let full = if pkg.is_empty() {
            name
        } else {
            format!("{pkg}.{name}")
        };
        side.messages.get(&full)
    })
}

/// The nested names (full name without the package) of one kind of element of a file.
type FileNames = for<'s, 'a> fn(&'s Side<'a>, &'a ImageFile) -> Vec<String>;

/// Elements of a file that are gone from the same file (buf's per-file deletion rules).
fn file_element_no_delete(
    cx: &mut Cx,
    kind: &str,
    names: FileNames,
    fix: fn(&str) -> Option<String>,
) {
    for (p, c) in file_pairs(cx) {
        let current: BTreeSet<String> = names(cx.cur, c.file).into_iter().collect();
        for nested in names(cx.prev, p.file) {
            if current.contains(&nested) {
                continue;
            }
            let loc = deleted_parent(cx.cur, c.file.proto.name(), &nested);
            cx.report(
                &qualify(c.file.proto.package(), &nested),
                Some(c.file),
                &[loc.as_deref().unwrap_or(&[])],
                Some(p.file),
                format!("Previously present {kind} {nested:?} was deleted from file."),
                fix(&nested),
            );
        }
    }
}

fn enum_no_delete(cx: &mut Cx) {
    file_element_no_delete(
        cx,
        "enum",
        |side, f| {
            side.file_enums(f.proto.name())
                .into_keys()
                .map(str::to_string)
                .collect()
        },
        |_| None,
    );
}

fn extension_no_delete(cx: &mut Cx) {
    file_element_no_delete(
        cx,
        "extension",
        |side, f| {
            side.file_extensions(f.proto.name(), f.proto.package())
                .into_keys()
                .collect()
        },
        |_| None,
    );
}

fn message_no_delete(cx: &mut Cx) {
    file_element_no_delete(
        cx,
        "message",
        |side, f| {
            side.file_messages(f.proto.name())
                .into_keys()
                .map(str::to_string)
                .collect()
        },
        |nested| {
            Some(format!(
                "keep message {nested:?} (deprecate it with `option deprecated = true;`)"
            ))
        },
    );
}

fn service_no_delete(cx: &mut Cx) {
    for (p, c) in file_pairs(cx) {
        let cur: BTreeSet<&str> = c.file.proto.service.iter().map(|s| s.name()).collect();
        for s in &p.file.proto.service {
            if !cur.contains(s.name()) {
                cx.report(
                    &qualify(p.file.proto.package(), s.name()),
                    Some(c.file),
                    &[],
                    Some(p.file),
                    format!(
                        "Previously present service {:?} was deleted from file.",
                        s.name()
                    ),
                    None,
                );
            }
        }
    }
}

fn file_same(cx: &mut Cx, name: &str, field: i32, get: fn(&FileOptions) -> String, default: &str) {
    for (p, c) in file_pairs(cx) {
        let pv = p
            .file
            .proto
            .options
            .as_ref()
            .map(get)
            .unwrap_or_else(|| default.to_string());
        let cv = c
            .file
            .proto
            .options
            .as_ref()
            .map(get)
            .unwrap_or_else(|| default.to_string());
        if pv != cv {
            cx.report(
                c.file.proto.name(),
                Some(c.file),
                &[&[8, field]],
                Some(p.file),
                format!("File option {name:?} changed from {pv:?} to {cv:?}."),
                Some(format!("keep `option {name} = {pv};`")),
            );
        }
    }
}

macro_rules! file_option_rule {
    ($f:ident, $name:literal, $num:expr, $get:expr, $default:expr) => {
        fn $f(cx: &mut Cx) {
            file_same(cx, $name, $num, $get, $default);
        }
    };
}

fn opt_str(s: &Option<String>) -> String {
    s.clone().unwrap_or_default()
}

file_option_rule!(
    file_same_cc_enable_arenas,
    "cc_enable_arenas",
    31,
    |o| o.cc_enable_arenas.unwrap_or(true).to_string(),
    "true"
);
file_option_rule!(
    file_same_cc_generic_services,
    "cc_generic_services",
    16,
    |o| o.cc_generic_services().to_string(),
    "false"
);
file_option_rule!(
    file_same_csharp_namespace,
    "csharp_namespace",
    37,
    |o| opt_str(&o.csharp_namespace),
    ""
);
file_option_rule!(
    file_same_go_package,
    "go_package",
    11,
    |o| opt_str(&o.go_package),
    ""
);
file_option_rule!(
    file_same_java_generic_services,
    "java_generic_services",
    17,
    |o| o.java_generic_services().to_string(),
    "false"
);
file_option_rule!(
    file_same_java_multiple_files,
    "java_multiple_files",
    10,
    |o| o.java_multiple_files().to_string(),
    "false"
);
file_option_rule!(
    file_same_java_outer_classname,
    "java_outer_classname",
    8,
    |o| opt_str(&o.java_outer_classname),
    ""
);
file_option_rule!(
    file_same_java_package,
    "java_package",
    1,
    |o| opt_str(&o.java_package),
    ""
);
file_option_rule!(
    file_same_objc_class_prefix,
    "objc_class_prefix",
    36,
    |o| opt_str(&o.objc_class_prefix),
    ""
);
file_option_rule!(
    file_same_optimize_for,
    "optimize_for",
    9,
    |o| o.optimize_for().as_str_name().to_string(),
    "SPEED"
);
file_option_rule!(
    file_same_php_class_prefix,
    "php_class_prefix",
    40,
    |o| opt_str(&o.php_class_prefix),
    ""
);
file_option_rule!(
    file_same_php_metadata_namespace,
    "php_metadata_namespace",
    44,
    |o| opt_str(&o.php_metadata_namespace),
    ""
);
file_option_rule!(
    file_same_php_namespace,
    "php_namespace",
    41,
    |o| opt_str(&o.php_namespace),
    ""
);
file_option_rule!(
    file_same_py_generic_services,
    "py_generic_services",
    18,
    |o| o.py_generic_services().to_string(),
    "false"
);
file_option_rule!(
    file_same_ruby_package,
    "ruby_package",
    45,
    |o| opt_str(&o.ruby_package),
    ""
);
file_option_rule!(
    file_same_swift_prefix,
    "swift_prefix",
    39,
    |o| opt_str(&o.swift_prefix),
    ""
);

fn file_same_syntax(cx: &mut Cx) {
    for (p, c) in file_pairs(cx) {
        let (ps, cs) = (p.syntax.name(), c.syntax.name());
        if ps != cs {
            cx.report(
                c.file.proto.name(),
                Some(c.file),
                &[&[12]],
                Some(p.file),
                format!("File syntax changed from {ps:?} to {cs:?}."),
                None,
            );
        }
    }
}

fn file_same_package(cx: &mut Cx) {
    for (p, c) in file_pairs(cx) {
        let (pp, cp) = (p.file.proto.package(), c.file.proto.package());
        if pp != cp {
            cx.report(
                c.file.proto.name(),
                Some(c.file),
                &[&[2]],
                Some(p.file),
                format!("File package changed from {pp:?} to {cp:?}."),
                Some(format!(
                    "keep `package {pp};` and add the new package in new files"
                )),
            );
        }
    }
}

/// `(file, nested name)` of every element of one kind on a side.
type Pick = for<'s, 'a> fn(&'s Side<'a>) -> Vec<(&'a ImageFile, String)>;

fn package_no_delete_of(cx: &mut Cx, kind: &str, pick: Pick) {
    // package -> nested name -> file name; every package of the side is present.
    let by = |side: &Side| -> BTreeMap<String, BTreeMap<String, String>> {
        let mut m: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for f in side.files.values() {
            m.entry(f.file.proto.package().to_string()).or_default();
        }
        for (file, nested) in pick(side) {
            m.entry(file.proto.package().to_string())
                .or_default()
                .insert(nested, file.proto.name().to_string());
        }
        m
    };
    let (prev, cur) = (by(cx.prev), by(cx.cur));
    for (pkg, elems) in &prev {
        let Some(cur_elems) = cur.get(pkg) else {
            continue;
        };
        for (nested, prev_file) in elems {
            if cur_elems.contains_key(nested) {
                continue;
            }
            let pf = cx.prev.files.get(prev_file.as_str()).map(|f| f.file);
            let message =
                format!("Previously present {kind} {nested:?} was deleted from package {pkg:?}.");
            let element = qualify(pkg, nested);
            match cx.cur.files.get(prev_file.as_str()).map(|f| f.file) {
                Some(cf) if kind == "message" => {
                    // buf looks for the closest surviving parent in the whole package, and
                    // reports in the file where that parent now lives.
                    match deleted_message_parent(cx.cur, pkg, nested) {
                        Some(parent) => {
                            let path = parent.path.clone();
                            cx.report(&element, Some(parent.file), &[&path], pf, message, None)
                        }
                        None => cx.report(&element, Some(cf), &[], pf, message, None),
                    }
                }
                Some(cf) => {
                    let loc = if kind == "service" {
                        None
                    } else {
                        deleted_parent(cx.cur, cf.proto.name(), nested)
                    };
                    cx.report(
                        &element,
                        Some(cf),
                        &[loc.as_deref().unwrap_or(&[])],
                        pf,
                        message,
                        None,
                    );
                }
                None => cx.report(&element, None, &[], pf, message, None),
            }
        }
    }
}

fn package_enum_no_delete(cx: &mut Cx) {
    package_no_delete_of(cx, "enum", |s| {
        s.enums
            .values()
            .map(|e| (e.file, e.nested_name.clone()))
            .collect()
    });
}

fn package_message_no_delete(cx: &mut Cx) {
    package_no_delete_of(cx, "message", |s| {
        s.messages
            .values()
            .map(|m| (m.file, m.nested_name.clone()))
            .collect()
    });
}

fn package_extension_no_delete(cx: &mut Cx) {
    package_no_delete_of(cx, "extension", |s| {
        s.extensions
            .iter()
            .map(|x| (x.file, strip_pkg(&x.full_name, x.file.proto.package())))
            .collect()
    });
}

fn package_service_no_delete(cx: &mut Cx) {
    package_no_delete_of(cx, "service", |s| {
        s.services
            .values()
            .map(|v| (v.file, v.proto.name().to_string()))
            .collect()
    });
}

fn package_no_delete(cx: &mut Cx) {
    let pkgs = |side: &Side| -> BTreeMap<String, Vec<String>> {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, f) in &side.files {
            if !f.file.is_import {
                m.entry(f.file.proto.package().to_string())
                    .or_default()
                    .push(name.to_string());
            }
        }
        m
    };
    let (prev, cur) = (pkgs(cx.prev), pkgs(cx.cur));
    for (pkg, files) in &prev {
        if cur.contains_key(pkg) {
            continue;
        }
        let first = files
            .iter()
            .min()
            .and_then(|n| cx.prev.files.get(n.as_str()))
            .map(|f| f.file);
        cx.report(
            pkg,
            None,
            &[],
            first,
            format!("Previously present package {pkg:?} was deleted."),
            None,
        );
    }
}

// ----- messages -----

fn message_pairs<'c, 'a>(cx: &Cx<'c, 'a>) -> Vec<(&'c MessageEl<'a>, &'c MessageEl<'a>)> {
    let (cur, prev) = (cx.cur, cx.prev);
    cx.pairs
        .messages
        .get_or_init(|| {
            prev.messages
                .iter()
                .filter_map(|(n, p)| cur.messages.get(n).map(|c| (p, c)))
                .collect()
        })
        .clone()
}

const MESSAGE_MAX: i64 = 536_870_911;
const MESSAGE_SET_MAX: i64 = 2_147_483_646;
const ENUM_MAX: i64 = 2_147_483_647;

/// buf's `checkTagRanges`: each previous range must still be covered by the current ones.
#[allow(clippy::too_many_arguments)]
fn check_ranges<'a>(
    cx: &mut Cx<'_, 'a>,
    range_kind: &str,
    element_kind: &str,
    name: &str,
    element: &str,
    max: i64,
    cur: (&'a ImageFile, &[i32]),
    prev_file: &'a ImageFile,
    previous: &[(i64, i64)],
    current: &[(i64, i64)],
) {
    let collapsed = collapse(current);
    for &(start, end) in previous {
        let missing = find_missing(start, end, &collapsed);
        if missing.is_empty() {
            continue;
        }
        let prev_str = if start == end {
            format!("{start}")
        } else if end == max {
            format!("{start} to max")
        } else {
            format!("{start} to {end}")
        };
        let removed: Vec<String> = missing
            .iter()
            .map(|&(s, e)| {
                if s == e {
                    format!("[{s}]")
                } else if e == max {
                    format!("[{s},max]")
                } else {
                    format!("[{s},{e}]")
                }
            })
            .collect();
        cx.report(
            element,
            Some(cur.0),
            &[cur.1],
            Some(prev_file),
            format!(
                "Previously present {range_kind} range {prev_str:?} on {element_kind} {name:?} is missing values: {} were removed.",
                removed.join(", ")
            ),
            Some(format!("keep `{} {prev_str};`", if range_kind == "reserved" { "reserved" } else { "extensions" })),
        );
    }
}

fn collapse(ranges: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let mut r = ranges.to_vec();
    r.sort();
    let mut out: Vec<(i64, i64)> = Vec::new();
    for (s, e) in r {
        match out.last_mut() {
            Some(last) if s <= last.1 + 1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

fn find_missing(start: i64, end: i64, collapsed: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let mut missing = Vec::new();
    let mut pos = start;
    for &(s, e) in collapsed {
        if e < pos {
            continue;
        }
        if s > end {
            break;
        }
        if s > pos {
            missing.push((pos, s - 1));
        }
        pos = e + 1;
        if pos > end {
            return missing;
        }
    }
    if pos <= end {
        missing.push((pos, end));
    }
    missing
}

fn message_max(m: &DescriptorProto) -> i64 {
    if m.options
        .as_ref()
        .is_some_and(|o| o.message_set_wire_format())
    {
        MESSAGE_SET_MAX
    } else {
        MESSAGE_MAX
    }
}

fn extension_message_no_delete(cx: &mut Cx) {
    for (p, c) in message_pairs(cx) {
        let prev: Vec<_> = p
            .proto
            .extension_range
            .iter()
            .map(|r| (r.start() as i64, r.end() as i64 - 1))
            .collect();
        if prev.is_empty() {
            continue;
        }
        let cur: Vec<_> = c
            .proto
            .extension_range
            .iter()
            .map(|r| (r.start() as i64, r.end() as i64 - 1))
            .collect();
        check_ranges(
            cx,
            "extension",
            "message",
            c.proto.name(),
            &c.full_name(),
            message_max(c.proto),
            (c.file, &c.path),
            p.file,
            &prev,
            &cur,
        );
    }
}

fn reserved_message_no_delete(cx: &mut Cx) {
    for (p, c) in message_pairs(cx) {
        let prev: Vec<_> = p
            .proto
            .reserved_range
            .iter()
            .map(|r| (r.start() as i64, r.end() as i64 - 1))
            .collect();
        let cur: Vec<_> = c
            .proto
            .reserved_range
            .iter()
            .map(|r| (r.start() as i64, r.end() as i64 - 1))
            .collect();
        if !prev.is_empty() {
            check_ranges(
                cx,
                "reserved",
                "message",
                c.proto.name(),
                &c.full_name(),
                message_max(c.proto),
                (c.file, &c.path),
                p.file,
                &prev,
                &cur,
            );
        }
        for name in &p.proto.reserved_name {
            if !c.proto.reserved_name.contains(name) {
                cx.report(
                    &c.full_name(),
                    Some(c.file),
                    &[&c.path],
                    Some(p.file),
                    format!(
                        "Previously present reserved name {name:?} on message {:?} was deleted.",
                        c.proto.name()
                    ),
                    Some(format!("keep `{}`", reserve_name(c.file, name))),
                );
            }
        }
    }
}

pub(crate) fn field_description(f: &FieldEl) -> String {
    if f.is_extension {
        format!(
            "Extension \"{}\" with name {:?} on message {:?}",
            f.proto.number(),
            f.full_name,
            f.parent_name
        )
    } else {
        format!(
            "Field \"{}\" with name {:?} on message {:?}",
            f.proto.number(),
            f.proto.name(),
            f.parent_name
        )
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

fn in_ranges(n: i64, ranges: &[(i64, i64)]) -> bool {
    ranges.iter().any(|&(s, e)| s <= n && n <= e)
}

fn field_no_delete_with(cx: &mut Cx, unless_number: bool, unless_name: bool) {
    for (p, c) in message_pairs(cx) {
        let cur_numbers: BTreeSet<i32> = c.proto.field.iter().map(|f| f.number()).collect();
        let reserved: Vec<_> = c
            .proto
            .reserved_range
            .iter()
            .map(|r| (r.start() as i64, r.end() as i64 - 1))
            .collect();
        for pf in &p.fields {
            let n = pf.proto.number();
            if cur_numbers.contains(&n) {
                continue;
            }
            if unless_number && in_ranges(n as i64, &reserved) {
                continue;
            }
            if unless_name && c.proto.reserved_name.iter().any(|r| r == pf.proto.name()) {
                continue;
            }
            let suffix = if unless_number {
                format!(" without reserving the number \"{n}\"")
            } else if unless_name {
                format!(" without reserving the name {:?}", pf.proto.name())
            } else {
                String::new()
            };
            cx.report(
                &pf.full_name,
                Some(c.file),
                &[&c.path],
                Some(p.file),
                format!(
                    "Previously present {} was deleted{suffix}.",
                    lower_first(&field_description(pf))
                ),
                Some(format!(
                    "keep number {n} unusable: `reserved {n}; {}`",
                    reserve_name(c.file, pf.proto.name())
                )),
            );
        }
    }
}

fn field_no_delete(cx: &mut Cx) {
    field_no_delete_with(cx, false, false);
}
fn field_no_delete_unless_number_reserved(cx: &mut Cx) {
    field_no_delete_with(cx, true, false);
}
fn field_no_delete_unless_name_reserved(cx: &mut Cx) {
    field_no_delete_with(cx, false, true);
}

fn message_no_remove_standard_descriptor_accessor(cx: &mut Cx) {
    for (p, c) in message_pairs(cx) {
        let get = |m: &DescriptorProto| {
            m.options
                .as_ref()
                .is_some_and(|o| o.no_standard_descriptor_accessor())
        };
        if !get(p.proto) && get(c.proto) {
            cx.report(
                &c.full_name(),
                Some(c.file),
                &[&sub(&c.path, &[7, 2]), &c.path],
                Some(p.file),
                "Message option \"no_standard_descriptor_accessor\" changed from \"false\" to \"true\".".into(),
                Some("remove `option no_standard_descriptor_accessor = true;`".into()),
            );
        }
    }
}

fn oneof_no_delete(cx: &mut Cx) {
    for (p, c) in message_pairs(cx) {
        let synthetic = |m: &DescriptorProto, i: usize| {
            m.field
                .iter()
                .any(|f| f.oneof_index == Some(i as i32) && f.proto3_optional())
        };
        let cur: BTreeSet<&str> = c.proto.oneof_decl.iter().map(|o| o.name()).collect();
        for (i, o) in p.proto.oneof_decl.iter().enumerate() {
            if cur.contains(o.name()) || synthetic(p.proto, i) {
                continue;
            }
            cx.report(
                &format!("{}.{}", c.full_name(), o.name()),
                Some(c.file),
                &[&c.path],
                Some(p.file),
                format!(
                    "Previously present oneof {:?} on message {:?} was deleted.",
                    o.name(),
                    c.proto.name()
                ),
                None,
            );
        }
    }
}

fn json_format_name(v: i32) -> &'static str {
    match v {
        1 => "ALLOW",
        2 => "LEGACY_BEST_EFFORT",
        _ => "JSON_FORMAT_UNKNOWN",
    }
}

fn message_same_json_format(cx: &mut Cx) {
    for (p, c) in message_pairs(cx) {
        if p.features.json == features::JSON_ALLOW && c.features.json != features::JSON_ALLOW {
            cx.report(
                &c.full_name(),
                Some(c.file),
                &[&sub(&c.path, &[7, 12, 6]), &c.path],
                Some(p.file),
                format!(
                    "Message {:?} JSON format support changed from {} to {}.",
                    c.proto.name(),
                    json_format_name(p.features.json),
                    json_format_name(c.features.json)
                ),
                None,
            );
        }
    }
}

fn is_required(f: &FieldEl) -> bool {
    f.proto.label() == Label::Required || f.features.presence == features::PRESENCE_LEGACY_REQUIRED
}

fn message_same_required_fields(cx: &mut Cx) {
    for (p, c) in message_pairs(cx) {
        let req = |m: &MessageEl| -> BTreeSet<i32> {
            m.fields
                .iter()
                .filter(|f| is_required(f))
                .map(|f| f.proto.number())
                .collect()
        };
        let (pr, cr) = (req(p), req(c));
        for n in pr.difference(&cr) {
            cx.report(
                &required_name(p, *n),
                Some(c.file),
                &[&c.path],
                Some(p.file),
                format!("Message {:?} had required field \"{n}\" deleted. Required fields must always be sent, so if one side does not know about the required field, this will result in a breakage.", p.proto.name()),
                None,
            );
        }
        for f in c
            .fields
            .iter()
            .filter(|f| is_required(f) && !pr.contains(&f.proto.number()))
        {
            let path = f.path.clone();
            cx.report(
                &f.full_name,
                Some(c.file),
                &[&path],
                None,
                format!("Message {:?} had required field \"{}\" added. Required fields must always be sent, so if one side does not know about the required field, this will result in a breakage.", c.proto.name(), f.proto.number()),
                Some("add the field as optional instead".into()),
            );
        }
    }
}

// ----- enums -----

fn enum_pairs<'c, 'a>(cx: &Cx<'c, 'a>) -> Vec<(&'c EnumEl<'a>, &'c EnumEl<'a>)> {
    cx.prev
        .enums
        .iter()
        .filter_map(|(n, p)| cx.cur.enums.get(n).map(|c| (p, c)))
        .collect()
}

fn enum_same_type(cx: &mut Cx) {
    for (p, c) in enum_pairs(cx) {
        let (pc, cc) = (
            p.features.enum_type == features::ENUM_CLOSED,
            c.features.enum_type == features::ENUM_CLOSED,
        );
        if pc != cc {
            let (from, to) = if pc {
                ("closed", "open")
            } else {
                ("open", "closed")
            };
            cx.report(
                &c.full_name(),
                Some(c.file),
                &[&sub(&c.path, &[3, 7, 2]), &c.path],
                Some(p.file),
                format!("Enum {:?} changed from {from} to {to}.", c.proto.name()),
                None,
            );
        }
    }
}

fn enum_same_json_format(cx: &mut Cx) {
    for (p, c) in enum_pairs(cx) {
        if p.features.json == features::JSON_ALLOW && c.features.json != features::JSON_ALLOW {
            cx.report(
                &c.full_name(),
                Some(c.file),
                &[&sub(&c.path, &[3, 7, 6]), &c.path],
                Some(p.file),
                format!(
                    "Enum {:?} JSON format support changed from {} to {}.",
                    c.proto.name(),
                    json_format_name(p.features.json),
                    json_format_name(c.features.json)
                ),
                None,
            );
        }
    }
}

fn numbers_to_names(e: &EnumDescriptorProto) -> BTreeMap<i32, Vec<&str>> {
    let mut m: BTreeMap<i32, Vec<&str>> = BTreeMap::new();
    for v in &e.value {
        m.entry(v.number()).or_default().push(v.name());
    }
    for names in m.values_mut() {
        names.sort();
    }
    m
}

fn enum_reserved(e: &EnumDescriptorProto) -> Vec<(i64, i64)> {
    e.reserved_range
        .iter()
        .map(|r| (r.start() as i64, r.end() as i64))
        .collect()
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn enum_value_no_delete_with(cx: &mut Cx, unless_number: bool, unless_name: bool) {
    for (p, c) in enum_pairs(cx) {
        let cur = numbers_to_names(c.proto);
        let reserved = enum_reserved(c.proto);
        for (n, names) in numbers_to_names(p.proto) {
            if cur.contains_key(&n) {
                continue;
            }
            if unless_number && in_ranges(n as i64, &reserved) {
                continue;
            }
            if unless_name
                && names
                    .iter()
                    .all(|nm| c.proto.reserved_name.iter().any(|r| r == nm))
            {
                continue;
            }
            let suffix = if unless_number {
                format!(" without reserving the number \"{n}\"")
            } else if unless_name {
                format!(
                    " without reserving the name{} {}",
                    if names.len() > 1 { "s" } else { "" },
                    quoted(&names)
                )
            } else {
                String::new()
            };
            cx.report(
                &format!("{}.{}", c.full_name(), names[0]),
                Some(c.file),
                &[&c.path],
                Some(p.file),
                format!(
                    "Previously present enum value \"{n}\" on enum {:?} was deleted{suffix}.",
                    c.proto.name()
                ),
                Some(format!(
                    "keep value {n} unusable: `reserved {n}; reserved {};`",
                    quoted(&names)
                )),
            );
        }
    }
}

fn enum_value_no_delete(cx: &mut Cx) {
    enum_value_no_delete_with(cx, false, false);
}
fn enum_value_no_delete_unless_number_reserved(cx: &mut Cx) {
    enum_value_no_delete_with(cx, true, false);
}
fn enum_value_no_delete_unless_name_reserved(cx: &mut Cx) {
    enum_value_no_delete_with(cx, false, true);
}

fn enum_value_same_name(cx: &mut Cx) {
    for (p, c) in enum_pairs(cx) {
        let prev = numbers_to_names(p.proto);
        let cur = numbers_to_names(c.proto);
        for (n, prev_names) in &prev {
            let Some(names) = cur.get(n) else { continue };
            // Every previous name must still be there (adding an alias is fine).
            if prev_names.iter().all(|nm| names.contains(nm)) {
                continue;
            }
            let s = if prev_names.len() > 1 && names.len() > 1 {
                "s"
            } else {
                ""
            };
            for (i, v) in c.proto.value.iter().enumerate() {
                if v.number() != *n {
                    continue;
                }
                let path = sub(&c.path, &[2, i as i32, 2]);
                cx.report(
                    &format!("{}.{}", c.full_name(), v.name()),
                    Some(c.file),
                    &[&path],
                    Some(p.file),
                    format!(
                        "Enum value \"{n}\" on enum {:?} changed name{s} from {} to {}.",
                        c.proto.name(),
                        quoted(prev_names),
                        quoted(names)
                    ),
                    Some(format!(
                        "keep the old name as an alias: `option allow_alias = true;` and {} = {n};",
                        prev_names[0]
                    )),
                );
            }
        }
    }
}

fn reserved_enum_no_delete(cx: &mut Cx) {
    for (p, c) in enum_pairs(cx) {
        let prev = enum_reserved(p.proto);
        if !prev.is_empty() {
            check_ranges(
                cx,
                "reserved",
                "enum",
                c.proto.name(),
                &c.full_name(),
                ENUM_MAX,
                (c.file, &c.path),
                p.file,
                &prev,
                &enum_reserved(c.proto),
            );
        }
        for name in &p.proto.reserved_name {
            if !c.proto.reserved_name.contains(name) {
                cx.report(
                    &c.full_name(),
                    Some(c.file),
                    &[&c.path],
                    Some(p.file),
                    format!(
                        "Previously present reserved name {name:?} on enum {:?} was deleted.",
                        c.proto.name()
                    ),
                    Some(format!("keep `{}`", reserve_name(c.file, name))),
                );
            }
        }
    }
}

// ----- fields -----

pub(crate) fn field_pairs<'c, 'a>(cx: &Cx<'c, 'a>) -> Vec<(&'c FieldEl<'a>, &'c FieldEl<'a>)> {
    cx.pairs.fields.get_or_init(|| pair_fields(cx)).clone()
}

fn pair_fields<'c, 'a>(cx: &Cx<'c, 'a>) -> Vec<(&'c FieldEl<'a>, &'c FieldEl<'a>)> {
    let mut out = Vec::new();
    for (p, c) in message_pairs(cx) {
        let cur: BTreeMap<i32, &FieldEl> = c.fields.iter().map(|f| (f.proto.number(), f)).collect();
        for pf in &p.fields {
            if let Some(cf) = cur.get(&pf.proto.number()) {
                out.push((pf, *cf));
            }
        }
    }
    let exts = |side: &'c Side<'a>| -> BTreeMap<(&'c str, i32), &'c FieldEl<'a>> {
        side.extensions
            .iter()
            .map(|x| ((x.proto.extendee(), x.proto.number()), x))
            .collect()
    };
    let cur = exts(cx.cur);
    for (k, pf) in exts(cx.prev) {
        if let Some(cf) = cur.get(&k) {
            out.push((pf, *cf));
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cardinality {
    Explicit,
    Implicit,
    Required,
    Repeated,
    Map,
}

impl Cardinality {
    fn name(self) -> &'static str {
        match self {
            Cardinality::Explicit => "optional with explicit presence",
            Cardinality::Implicit => "optional with implicit presence",
            Cardinality::Required => "required",
            Cardinality::Repeated => "repeated",
            Cardinality::Map => "map",
        }
    }
    fn wire_group(self) -> u8 {
        match self {
            Cardinality::Explicit | Cardinality::Implicit => 1,
            Cardinality::Required => 2,
            Cardinality::Repeated | Cardinality::Map => 3,
        }
    }
    fn wire_json_group(self) -> u8 {
        match self {
            Cardinality::Map => 4,
            c => c.wire_group(),
        }
    }
}

fn cardinality(f: &FieldEl) -> Cardinality {
    if f.proto.label() == Label::Repeated {
        return if f.is_map {
            Cardinality::Map
        } else {
            Cardinality::Repeated
        };
    }
    if is_required(f) {
        return Cardinality::Required;
    }
    let explicit = matches!(f.proto.r#type(), Type::Message | Type::Group)
        || f.in_oneof_any
        || f.is_extension
        || match f.syntax {
            Syntax::Proto2 => true,
            Syntax::Proto3 => f.proto.proto3_optional(),
            Syntax::Editions(_) => f.features.presence != features::PRESENCE_IMPLICIT,
        };
    if explicit {
        Cardinality::Explicit
    } else {
        Cardinality::Implicit
    }
}

fn cardinality_rule(cx: &mut Cx, group: fn(Cardinality) -> u8) {
    for (p, c) in field_pairs(cx) {
        if p.in_map_entry && c.in_map_entry {
            continue;
        }
        let (pc, cc) = (cardinality(p), cardinality(c));
        if group(pc) != group(cc) {
            cx.report(
                &c.full_name,
                Some(c.file),
                &[&c.path],
                Some(p.file),
                format!(
                    "{} changed cardinality from {:?} to {:?}.",
                    field_description(c),
                    pc.name(),
                    cc.name()
                ),
                None,
            );
        }
    }
}

fn field_same_cardinality(cx: &mut Cx) {
    cardinality_rule(cx, |c| c as u8);
}
fn field_wire_compatible_cardinality(cx: &mut Cx) {
    cardinality_rule(cx, Cardinality::wire_group);
}
fn field_wire_json_compatible_cardinality(cx: &mut Cx) {
    cardinality_rule(cx, Cardinality::wire_json_group);
}

/// protoreflect's `Kind`, with editions' delimited messages as groups.
fn kind(f: &FieldEl) -> Type {
    let t = f.proto.r#type();
    if t == Type::Message
        && matches!(f.syntax, Syntax::Editions(_))
        && f.features.encoding == features::ENCODING_DELIMITED
    {
        Type::Group
    } else {
        t
    }
}

fn kind_name(t: Type) -> &'static str {
    match t {
        Type::Double => "double",
        Type::Float => "float",
        Type::Int64 => "int64",
        Type::Uint64 => "uint64",
        Type::Int32 => "int32",
        Type::Fixed64 => "fixed64",
        Type::Fixed32 => "fixed32",
        Type::Bool => "bool",
        Type::String => "string",
        Type::Group => "group",
        Type::Message => "message",
        Type::Bytes => "bytes",
        Type::Uint32 => "uint32",
        Type::Enum => "enum",
        Type::Sfixed32 => "sfixed32",
        Type::Sfixed64 => "sfixed64",
        Type::Sint32 => "sint32",
        Type::Sint64 => "sint64",
    }
}

fn pretty_kind(f: &FieldEl) -> &'static str {
    let k = kind(f);
    if k == Type::Group && f.syntax != Syntax::Proto2 {
        "message (delimited encoding)"
    } else {
        kind_name(k)
    }
}

fn is_named(t: Type) -> bool {
    matches!(t, Type::Message | Type::Enum | Type::Group)
}

fn type_path(f: &FieldEl) -> Vec<i32> {
    sub(&f.path, &[if is_named(kind(f)) { 6 } else { 5 }])
}

fn changed_type<'a>(cx: &mut Cx<'_, 'a>, p: &FieldEl<'a>, c: &FieldEl<'a>, extra: &str) {
    let path = type_path(c);
    cx.report(
        &c.full_name,
        Some(c.file),
        &[&path],
        Some(p.file),
        format!(
            "{} changed type from {:?} to {:?}.{extra}",
            field_description(c),
            pretty_kind(p),
            pretty_kind(c)
        ),
        Some("add a new field with a new number and deprecate this one".into()),
    );
}

fn changed_type_name<'a>(cx: &mut Cx<'_, 'a>, p: &FieldEl<'a>, c: &FieldEl<'a>) {
    let path = sub(&c.path, &[6]);
    cx.report(
        &c.full_name,
        Some(c.file),
        &[&path],
        Some(p.file),
        format!(
            "{} changed type from {:?} to {:?}.",
            field_description(c),
            p.proto.type_name().trim_start_matches('.'),
            c.proto.type_name().trim_start_matches('.')
        ),
        Some("add a new field with a new number and deprecate this one".into()),
    );
}

fn field_same_type(cx: &mut Cx) {
    for (p, c) in field_pairs(cx) {
        if kind(p) != kind(c) {
            changed_type(cx, p, c, "");
        } else if is_named(c.proto.r#type()) && p.proto.type_name() != c.proto.type_name() {
            changed_type_name(cx, p, c);
        }
    }
}

fn wire_group(t: Type) -> u8 {
    match t {
        Type::Int32 | Type::Int64 | Type::Uint32 | Type::Uint64 | Type::Bool => 1,
        Type::Sint32 | Type::Sint64 => 2,
        Type::String => 3,
        Type::Bytes => 4,
        Type::Fixed32 | Type::Sfixed32 => 5,
        Type::Fixed64 | Type::Sfixed64 => 6,
        Type::Double => 7,
        Type::Float => 8,
        Type::Group => 9,
        Type::Message => 10,
        Type::Enum => 11,
    }
}

fn wire_json_group(t: Type) -> u8 {
    match t {
        Type::Int32 | Type::Uint32 => 1,
        Type::Int64 | Type::Uint64 => 2,
        Type::Fixed32 | Type::Sfixed32 => 3,
        Type::Fixed64 | Type::Sfixed64 => 4,
        Type::Bool => 5,
        Type::Sint32 => 6,
        Type::Sint64 => 7,
        Type::String => 8,
        Type::Bytes => 9,
        Type::Double => 10,
        Type::Float => 11,
        Type::Group => 12,
        Type::Message => 13,
        Type::Enum => 14,
    }
}

const WIRE_NOTE: &str = " See https://developers.google.com/protocol-buffers/docs/proto3#updating for wire compatibility rules.";

/// Enum fields whose enum changed: compatible when the short name is the same and every
/// previous value is still there.
fn check_enum_wire_compatible<'a>(cx: &mut Cx<'_, 'a>, p: &FieldEl<'a>, c: &FieldEl<'a>) {
    let pe = cx
        .prev
        .enums
        .get(p.proto.type_name().trim_start_matches('.'));
    let ce = cx
        .cur
        .enums
        .get(c.proto.type_name().trim_start_matches('.'));
    let compatible = match (pe, ce) {
        (Some(pe), Some(ce)) => {
            pe.proto.name() == ce.proto.name()
                && pe.proto.value.iter().all(|pv| {
                    ce.proto
                        .value
                        .iter()
                        .any(|cv| cv.name() == pv.name() && cv.number() == pv.number())
                })
        }
        _ => false,
    };
    if !compatible {
        changed_type_name(cx, p, c);
    }
}

fn field_wire_compatible_type(cx: &mut Cx) {
    for (p, c) in field_pairs(cx) {
        let (pk, ck) = (kind(p), kind(c));
        if wire_group(pk) != wire_group(ck) {
            if pk == Type::String && ck == Type::Bytes {
                continue;
            }
            let mut extra = WIRE_NOTE.to_string();
            if pk == Type::Bytes && ck == Type::String {
                extra.push_str(" Note that while string and bytes are compatible if the data is valid UTF-8, there is no way to enforce that a bytes field is UTF-8, so these fields may be incompatible.");
            }
            changed_type(cx, p, c, &extra);
            continue;
        }
        if p.proto.type_name() != c.proto.type_name() {
            match c.proto.r#type() {
                Type::Enum => check_enum_wire_compatible(cx, p, c),
                Type::Message | Type::Group => changed_type_name(cx, p, c),
                _ => {}
            }
        }
    }
}

fn field_wire_json_compatible_type(cx: &mut Cx) {
    for (p, c) in field_pairs(cx) {
        let (pk, ck) = (kind(p), kind(c));
        if wire_json_group(pk) != wire_json_group(ck) {
            changed_type(
                cx,
                p,
                c,
                " See https://developers.google.com/protocol-buffers/docs/proto3#updating for wire compatibility rules and https://developers.google.com/protocol-buffers/docs/proto3#json for JSON compatibility rules.",
            );
            continue;
        }
        if p.proto.type_name() != c.proto.type_name() {
            match ck {
                Type::Enum => check_enum_wire_compatible(cx, p, c),
                Type::Message | Type::Group => changed_type_name(cx, p, c),
                _ => {}
            }
        }
    }
}

fn cpp_string_type(f: &FieldEl) -> (i32, bool) {
    // Before edition 2024 an explicit `ctype` wins over the `(pb.cpp).string_type` feature.
    if !matches!(f.syntax, Syntax::Editions(ed) if ed >= 1001)
        && let Some(ctype) = f.proto.options.as_ref().and_then(|o| o.ctype)
    {
        match ctype {
            1 => return (2, false),                    // CORD
            2 => return (features::CPP_STRING, true),  // STRING_PIECE
            0 => return (features::CPP_STRING, false), // STRING
            _ => {}
        }
    }
    (f.features.cpp_string_type, false)
}

fn cpp_string_name(t: i32, piece: bool) -> &'static str {
    if piece {
        return "STRING_PIECE";
    }
    match t {
        1 => "VIEW",
        2 => "CORD",
        3 => "STRING",
        _ => "STRING_TYPE_UNKNOWN",
    }
}

fn field_same_cpp_string_type(cx: &mut Cx) {
    for (p, c) in field_pairs(cx) {
        if p.in_map_entry && c.in_map_entry {
            continue;
        }
        let sb = |f: &FieldEl| matches!(kind(f), Type::String | Type::Bytes);
        if !sb(p) || !sb(c) {
            continue;
        }
        let (pt, pp) = cpp_string_type(p);
        let (ct, cp) = cpp_string_type(c);
        if (pt != ct || pp != cp) && !(pp && ct == features::CPP_STRING) {
            let (a, b, d) = (
                sub(&c.path, &[8, 1]),
                sub(&c.path, &[8, 21, 1000, 2]),
                c.path.clone(),
            );
            cx.report(
                &c.full_name,
                Some(c.file),
                &[&a, &b, &d],
                Some(p.file),
                format!(
                    "{} changed C++ string type from {:?} to {:?}.",
                    field_description(c),
                    cpp_string_name(pt, pp),
                    cpp_string_name(ct, cp)
                ),
                None,
            );
        }
    }
}

fn utf8_name(v: i32) -> &'static str {
    match v {
        2 => "VERIFY",
        3 => "NONE",
        _ => "UTF8_VALIDATION_UNKNOWN",
    }
}

fn java_utf8(f: &FieldEl) -> i32 {
    let opts = f.file.proto.options.as_ref();
    let explicit = opts.and_then(|o| o.java_string_check_utf8);
    if !matches!(f.syntax, Syntax::Editions(_)) || explicit.is_some() {
        return if explicit == Some(true) {
            features::UTF8_VERIFY
        } else {
            f.features.utf8
        };
    }
    if f.features.java_utf8 == features::JAVA_VERIFY {
        features::UTF8_VERIFY
    } else {
        f.features.utf8
    }
}

fn field_same_java_utf8_validation(cx: &mut Cx) {
    for (p, c) in field_pairs(cx) {
        if kind(p) != Type::String || kind(c) != Type::String {
            continue;
        }
        let (pv, cv) = (java_utf8(p), java_utf8(c));
        if pv != cv {
            let b = sub(&c.path, &[8, 21, 1001, 2]);
            cx.report(
                &c.full_name,
                Some(c.file),
                &[&[8, 27], &b, &c.path],
                Some(p.file),
                format!(
                    "{} changed Java string UTF8 validation from {:?} to {:?}.",
                    field_description(c),
                    utf8_name(pv),
                    utf8_name(cv)
                ),
                None,
            );
        }
    }
}

fn field_same_utf8_validation(cx: &mut Cx) {
    for (p, c) in field_pairs(cx) {
        if kind(p) != Type::String || kind(c) != Type::String {
            continue;
        }
        if p.features.utf8 != c.features.utf8 {
            let a = sub(&c.path, &[8, 21, 4]);
            cx.report(
                &c.full_name,
                Some(c.file),
                &[&a, &c.path],
                Some(p.file),
                format!(
                    "{} changed UTF8 validation from {} to {}.",
                    field_description(c),
                    utf8_name(p.features.utf8),
                    utf8_name(c.features.utf8)
                ),
                None,
            );
        }
    }
}

fn field_same_jstype(cx: &mut Cx) {
    for (p, c) in field_pairs(cx) {
        let is64 = |f: &FieldEl| {
            matches!(
                f.proto.r#type(),
                Type::Int64 | Type::Sint64 | Type::Uint64 | Type::Fixed64 | Type::Sfixed64
            )
        };
        if !is64(p) || !is64(c) {
            continue;
        }
        let js = |f: &FieldEl| {
            f.proto
                .options
                .as_ref()
                .map(|o| o.jstype())
                .unwrap_or_default()
                .as_str_name()
        };
        if js(p) != js(c) {
            let a = sub(&c.path, &[8, 6]);
            cx.report(
                &c.full_name,
                Some(c.file),
                &[&a, &c.path],
                Some(p.file),
                format!(
                    "{} changed option \"jstype\" from {:?} to {:?}.",
                    field_description(c),
                    js(p),
                    js(c)
                ),
                Some(format!("keep `[jstype = {}]`", js(p))),
            );
        }
    }
}

/// protoc's default JSON name: lowerCamelCase of the field name.
fn default_json_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for ch in name.chars() {
        if ch == '_' {
            upper = true;
        } else if upper {
            out.extend(ch.to_uppercase());
            upper = false;
        } else {
            out.push(ch);
        }
    }
    out
}

fn json_name(f: &FieldEl) -> String {
    f.proto
        .json_name
        .clone()
        .unwrap_or_else(|| default_json_name(f.proto.name()))
}

fn field_same_json_name(cx: &mut Cx) {
    for (p, c) in field_pairs(cx) {
        if p.is_extension {
            continue;
        }
        let (pj, cj) = (json_name(p), json_name(c));
        if pj != cj {
            let a = sub(&c.path, &[10]);
            cx.report(
                &c.full_name,
                Some(c.file),
                &[&a, &c.path],
                Some(p.file),
                format!(
                    "{} changed option \"json_name\" from {pj:?} to {cj:?}.",
                    field_description(c)
                ),
                Some(format!("keep `[json_name = \"{pj}\"]`")),
            );
        }
    }
}

fn field_same_name(cx: &mut Cx) {
    for (p, c) in field_pairs(cx) {
        let (pn, cn) = if p.is_extension {
            (p.full_name.clone(), c.full_name.clone())
        } else {
            (p.proto.name().to_string(), c.proto.name().to_string())
        };
        if pn != cn {
            let desc = if c.is_extension {
                format!(
                    "Extension \"{}\" on message {:?}",
                    c.proto.number(),
                    c.parent_name
                )
            } else {
                format!(
                    "Field \"{}\" on message {:?}",
                    c.proto.number(),
                    c.parent_name
                )
            };
            let a = sub(&c.path, &[1]);
            cx.report(
                &c.full_name,
                Some(c.file),
                &[&a],
                Some(p.file),
                format!("{desc} changed name from {pn:?} to {cn:?}."),
                Some(format!("keep the name {pn:?}")),
            );
        }
    }
}

fn field_same_oneof(cx: &mut Cx) {
    for (p, c) in field_pairs(cx) {
        if p.is_extension {
            continue;
        }
        match (&p.oneof, &c.oneof) {
            (None, None) => {}
            (Some(a), Some(b)) if a == b => {}
            (Some(a), Some(b)) => cx.report(
                &c.full_name,
                Some(c.file),
                &[&c.path],
                Some(p.file),
                format!(
                    "{} moved from oneof {a:?} to oneof {b:?}.",
                    field_description(c)
                ),
                None,
            ),
            (a, _) => {
                let (from, to) = if a.is_some() {
                    ("inside", "outside")
                } else {
                    ("outside", "inside")
                };
                cx.report(
                    &c.full_name,
                    Some(c.file),
                    &[&c.path],
                    Some(p.file),
                    format!(
                        "{} moved from {from} to {to} a oneof.",
                        field_description(c)
                    ),
                    None,
                );
            }
        }
    }
}

/// A field's default, comparable across types as buf compares them.
#[derive(Debug, Clone, PartialEq)]
enum DefaultValue {
    Text(String),
    Int(i128),
    Float(f64, bool /* is float32 */),
}

fn field_default(side: &Side, f: &FieldEl) -> (DefaultValue, String) {
    let raw = f.proto.default_value.clone();
    match kind(f) {
        Type::String | Type::Bytes => {
            let s = raw.unwrap_or_default();
            (DefaultValue::Text(s.clone()), format!("{s:?}"))
        }
        Type::Bool => {
            let b = raw.as_deref() == Some("true");
            (DefaultValue::Int(b as i128), b.to_string())
        }
        Type::Enum => {
            let en = side.enums.get(f.proto.type_name().trim_start_matches('.'));
            let (num, name) = match (en, raw) {
                (Some(e), Some(name)) => (
                    e.proto
                        .value
                        .iter()
                        .find(|v| v.name() == name)
                        .map(|v| v.number())
                        .unwrap_or(0),
                    name,
                ),
                (Some(e), None) => e
                    .proto
                    .value
                    .first()
                    .map(|v| (v.number(), v.name().to_string()))
                    .unwrap_or((0, String::new())),
                (None, n) => (0, n.unwrap_or_default()),
            };
            let ename = en.map(|e| e.proto.name().to_string()).unwrap_or_default();
            (DefaultValue::Int(num as i128), format!("{ename}.{name}"))
        }
        Type::Float | Type::Double => {
            let s = raw.unwrap_or_else(|| "0".into());
            let v = match s.as_str() {
                "inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                "nan" => f64::NAN,
                _ => s.parse().unwrap_or(0.0),
            };
            (DefaultValue::Float(v, kind(f) == Type::Float), s)
        }
        _ => {
            let s = raw.unwrap_or_else(|| "0".into());
            (DefaultValue::Int(s.parse().unwrap_or(0)), s)
        }
    }
}

fn is_zero(d: &DefaultValue) -> bool {
    match d {
        DefaultValue::Text(s) => s.is_empty(),
        DefaultValue::Int(i) => *i == 0,
        DefaultValue::Float(f, _) => *f == 0.0 && f.is_sign_positive(),
    }
}

fn defaults_equal(a: &DefaultValue, b: &DefaultValue) -> bool {
    use DefaultValue::*;
    match (a, b) {
        (Text(x), Text(y)) => x == y,
        (Text(_), _) | (_, Text(_)) => false,
        (Int(x), Int(y)) => x == y,
        (Float(x, xf), Float(y, yf)) => {
            if x.is_nan() || y.is_nan() {
                return x.is_nan() && y.is_nan();
            }
            if xf != yf {
                (*x as f32) == (*y as f32)
            } else {
                x == y
            }
        }
        (Float(x, _), Int(i)) | (Int(i), Float(x, _)) => !x.is_nan() && *x == *i as f64,
    }
}

fn field_same_default(cx: &mut Cx) {
    for (p, c) in field_pairs(cx) {
        let can = |f: &FieldEl| {
            f.proto.label() != Label::Repeated && !matches!(kind(f), Type::Message | Type::Group)
        };
        if !can(p) || !can(c) {
            continue;
        }
        let (pd, pp) = field_default(cx.prev, p);
        let (cd, cp) = field_default(cx.cur, c);
        if is_zero(&pd) && is_zero(&cd) {
            continue;
        }
        if !defaults_equal(&pd, &cd) {
            let a = sub(&c.path, &[7]);
            cx.report(
                &c.full_name,
                Some(c.file),
                &[&a, &c.path],
                Some(p.file),
                format!(
                    "{} changed default value from {pp} to {cp}.",
                    field_description(c)
                ),
                Some(format!("keep `[default = {pp}]`")),
            );
        }
    }
}

// ----- services -----

fn service_pairs<'c, 'a>(cx: &Cx<'c, 'a>) -> Vec<(&'c ServiceEl<'a>, &'c ServiceEl<'a>)> {
    cx.prev
        .services
        .iter()
        .filter_map(|(n, p)| cx.cur.services.get(n).map(|c| (p, c)))
        .collect()
}

/// A paired RPC: the current service, the current method and its source path, the previous
/// method, and the file the previous service was in.
pub(crate) struct MethodPair<'c, 'a> {
    pub service: &'c ServiceEl<'a>,
    pub cur: &'a MethodDescriptorProto,
    pub path: Vec<i32>,
    pub prev: &'a MethodDescriptorProto,
    pub prev_file: &'a ImageFile,
}

pub(crate) fn method_pairs<'c, 'a>(cx: &Cx<'c, 'a>) -> Vec<MethodPair<'c, 'a>> {
    let mut out = Vec::new();
    for (p, c) in service_pairs(cx) {
        for pm in &p.proto.method {
            if let Some((i, cm)) = c
                .proto
                .method
                .iter()
                .enumerate()
                .find(|(_, m)| m.name() == pm.name())
            {
                out.push(MethodPair {
                    service: c,
                    cur: cm,
                    path: sub(&c.path, &[2, i as i32]),
                    prev: pm,
                    prev_file: p.file,
                });
            }
        }
    }
    out
}

fn rpc_no_delete(cx: &mut Cx) {
    for (p, c) in service_pairs(cx) {
        for pm in &p.proto.method {
            if !c.proto.method.iter().any(|m| m.name() == pm.name()) {
                cx.report(
                    &format!("{}.{}", c.full_name(), pm.name()),
                    Some(c.file),
                    &[&c.path],
                    Some(p.file),
                    format!(
                        "Previously present RPC {:?} on service {:?} was deleted.",
                        pm.name(),
                        c.proto.name()
                    ),
                    Some(format!(
                        "keep RPC {:?}; deprecate it with `option deprecated = true;`",
                        pm.name()
                    )),
                );
            }
        }
    }
}

fn streaming_rule(cx: &mut Cx, side: &str, get: fn(&MethodDescriptorProto) -> bool) {
    for MethodPair {
        service: s,
        cur: cm,
        path,
        prev: pm,
        prev_file,
    } in method_pairs(cx)
    {
        if get(pm) != get(cm) {
            let (from, to) = if get(cm) {
                ("unary", "streaming")
            } else {
                ("streaming", "unary")
            };
            cx.report(
                &format!("{}.{}", s.full_name(), cm.name()),
                Some(s.file),
                &[&path],
                Some(prev_file),
                format!(
                    "RPC {:?} on service {:?} changed from {side} {from} to {side} {to}.",
                    cm.name(),
                    s.proto.name()
                ),
                Some("add a new RPC with the new shape instead".into()),
            );
        }
    }
}

fn rpc_same_client_streaming(cx: &mut Cx) {
    streaming_rule(cx, "client", |m| m.client_streaming());
}
fn rpc_same_server_streaming(cx: &mut Cx) {
    streaming_rule(cx, "server", |m| m.server_streaming());
}

fn rpc_same_idempotency_level(cx: &mut Cx) {
    for MethodPair {
        service: s,
        cur: cm,
        path,
        prev: pm,
        prev_file,
    } in method_pairs(cx)
    {
        let level = |m: &MethodDescriptorProto| {
            m.options
                .as_ref()
                .map(|o| o.idempotency_level())
                .unwrap_or_default()
                .as_str_name()
        };
        if level(pm) != level(cm) {
            let a = sub(&path, &[4, 34]);
            cx.report(
                &format!("{}.{}", s.full_name(), cm.name()),
                Some(s.file),
                &[&a],
                Some(prev_file),
                format!("RPC {:?} on service {:?} changed option \"idempotency_level\" from {:?} to {:?}.", cm.name(), s.proto.name(), level(pm), level(cm)),
                Some(format!("keep `option idempotency_level = {};`", level(pm))),
            );
        }
    }
}

fn rpc_type_rule(cx: &mut Cx, what: &str, field: i32, get: fn(&MethodDescriptorProto) -> &str) {
    for MethodPair {
        service: s,
        cur: cm,
        path,
        prev: pm,
        prev_file,
    } in method_pairs(cx)
    {
        if get(pm) != get(cm) {
            let a = sub(&path, &[field]);
            cx.report(
                &format!("{}.{}", s.full_name(), cm.name()),
                Some(s.file),
                &[&a],
                Some(prev_file),
                format!(
                    "RPC {:?} on service {:?} changed {what} type from {:?} to {:?}.",
                    cm.name(),
                    s.proto.name(),
                    get(pm).trim_start_matches('.'),
                    get(cm).trim_start_matches('.')
                ),
                Some("add a new RPC with the new types instead".into()),
            );
        }
    }
}

fn rpc_same_request_type(cx: &mut Cx) {
    rpc_type_rule(cx, "request", 2, |m| m.input_type());
}
fn rpc_same_response_type(cx: &mut Cx) {
    rpc_type_rule(cx, "response", 3, |m| m.output_type());
}

/// The statement that reserves a name in this file: an identifier in editions
/// (`reserved foo;`), a string literal before (`reserved "foo";`).
fn reserve_name(file: &protoreg_schema::ImageFile, name: &str) -> String {
    match Syntax::of(file) {
        Syntax::Editions(_) => format!("reserved {name};"),
        _ => format!("reserved \"{name}\";"),
    }
}

#[cfg(test)]
mod reserve_hint_tests {
    use super::*;

    fn file(syntax: &str, edition: Option<i32>) -> protoreg_schema::ImageFile {
        protoreg_schema::ImageFile {
            proto: prost_types::FileDescriptorProto {
                syntax: Some(syntax.into()),
                ..Default::default()
            }
            .into(),
            is_import: false,
            display: "a.proto".into(),
            edition,
            extras: Default::default(),
            deferred: None,
            source_info: None,
        }
    }

    #[test]
    fn editions_reserve_identifiers_and_older_syntaxes_strings() {
        assert_eq!(
            reserve_name(&file("editions", Some(1000)), "y"),
            "reserved y;"
        );
        assert_eq!(reserve_name(&file("proto3", None), "y"), "reserved \"y\";");
        assert_eq!(reserve_name(&file("proto2", None), "y"), "reserved \"y\";");
    }
}
