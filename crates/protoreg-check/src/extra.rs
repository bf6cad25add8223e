//! Rules buf does not have, over the options gRPC teams break most often: the HTTP mapping
//! (`google.api.http`, served by grpc-gateway, Envoy transcoding and Cloud Endpoints),
//! `google.api.field_behavior`, and protovalidate's `buf.validate` constraints.
//!
//! They are in opt-in categories ([`HTTP`], [`FIELD_BEHAVIOR`], [`PROTOVALIDATE`], all three
//! in [`PROTOREG`]) that no buf category includes, so a configuration buf understands
//! selects exactly what it selected before. The options are read from each side's linked
//! pool, so they are seen whether the schemas came from the module, a dependency or the
//! built-in copies.

use std::collections::BTreeSet;

use prost_reflect::{DynamicMessage, ReflectMessage, Value};

use crate::index::{FieldEl, Side};
use crate::rules::{Cx, field_description, field_pairs, method_pairs, sub};

/// Every rule protoreg adds to buf's.
pub const PROTOREG: &str = "PROTOREG";
/// The HTTP mapping rules.
pub const HTTP: &str = "HTTP";
/// The `google.api.field_behavior` rules.
pub const FIELD_BEHAVIOR: &str = "FIELD_BEHAVIOR";
/// The protovalidate (`buf.validate`) rules.
pub const PROTOVALIDATE: &str = "PROTOVALIDATE";

/// `MethodDescriptorProto.options`.
const METHOD_OPTIONS: i32 = 4;
/// `FieldDescriptorProto.options`.
const FIELD_OPTIONS: i32 = 8;
/// `google.api.http` on `MethodOptions`.
const HTTP_EXTENSION: i32 = 72_295_728;
/// `google.api.field_behavior` on `FieldOptions`.
const FIELD_BEHAVIOR_EXTENSION: i32 = 1052;
/// `buf.validate.field` on `FieldOptions`.
const VALIDATE_EXTENSION: i32 = 1159;

const HTTP_NAME: &str = "google.api.http";
const FIELD_BEHAVIOR_NAME: &str = "google.api.field_behavior";
const VALIDATE_NAME: &str = "buf.validate.field";

/// `google.api.FieldBehavior` values the rules read.
const REQUIRED: i32 = 2;
const OUTPUT_ONLY: i32 = 3;
const IMMUTABLE: i32 = 5;

// ----- google.api.http -----

/// One HTTP binding: verb (`get`, … or a custom kind) and path template, and what the
/// request and response bodies map to.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Binding {
    verb: String,
    path: String,
    body: String,
    response_body: String,
}

impl Binding {
    fn pattern(&self) -> String {
        format!("{} {}", self.verb.to_uppercase(), self.path)
    }
}

/// `{name=*}` binds the same segment as `{name}`: compare templates in the short form.
fn normalize_template(path: &str) -> String {
    path.replace("=*}", "}")
}

/// A string field of a message (empty when unset).
fn text(m: &DynamicMessage, name: &str) -> String {
    m.get_field_by_name(name)
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn binding(rule: &DynamicMessage) -> Option<Binding> {
    let (verb, path) = ["get", "put", "post", "delete", "patch"]
        .into_iter()
        .find(|v| rule.has_field_by_name(v))
        .map(|v| (v.to_string(), text(rule, v)))
        .or_else(|| {
            let custom = rule.get_field_by_name("custom")?;
            let custom = custom.as_message()?;
            Some((text(custom, "kind"), text(custom, "path")))
        })?;
    Some(Binding {
        verb,
        path: normalize_template(&path),
        body: text(rule, "body"),
        response_body: text(rule, "response_body"),
    })
}

/// An RPC's HTTP bindings (the primary first), or `None` without a `google.api.http`
/// option.
fn http_bindings(side: &Side, service: &str, method: &str) -> Option<Vec<Binding>> {
    // Parsed once per side for the five HTTP rules.
    let all = side.memo("http-bindings", || {
        side.option_values(HTTP_NAME)
            .iter()
            .filter_map(|(name, value)| {
                let rule = value.as_message()?;
                let mut out: Vec<Binding> = binding(rule).into_iter().collect();
                if let Some(more) = rule.get_field_by_name("additional_bindings")
                    && let Some(list) = more.as_list()
                {
                    out.extend(list.iter().filter_map(|v| v.as_message().and_then(binding)));
                }
                Some((name.clone(), out))
            })
            .collect::<std::collections::HashMap<String, Vec<Binding>>>()
    });
    all.get(&format!("{service}.{method}")).cloned()
}

/// What the HTTP rules compare: for each paired RPC with a binding on the previous side,
/// both sides' bindings and where to report.
struct HttpPair<'a> {
    element: String,
    service: String,
    method: String,
    file: &'a protoreg_schema::ImageFile,
    prev_file: &'a protoreg_schema::ImageFile,
    path: Vec<i32>,
    prev: Vec<Binding>,
    cur: Option<Vec<Binding>>,
}

fn http_pairs<'a>(cx: &Cx<'_, 'a>) -> Vec<HttpPair<'a>> {
    if cx.prev.option_values(HTTP_NAME).is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for mp in method_pairs(cx) {
        let service = mp.service.full_name();
        let Some(prev) = http_bindings(cx.prev, &service, mp.prev.name()) else {
            continue;
        };
        let cur = http_bindings(cx.cur, &service, mp.cur.name());
        out.push(HttpPair {
            element: format!("{service}.{}", mp.cur.name()),
            service: mp.service.proto.name().to_string(),
            method: mp.cur.name().to_string(),
            file: mp.service.file,
            prev_file: mp.prev_file,
            path: mp.path,
            prev,
            cur,
        });
    }
    out
}

impl<'a> HttpPair<'a> {
    /// Where the option was written (looked up only for a finding), else the RPC.
    fn at(&self, cx: &Cx<'_, 'a>) -> Vec<i32> {
        let opt = sub(&self.path, &[METHOD_OPTIONS, HTTP_EXTENSION]);
        cx.cur
            .located_under(self.file, &opt)
            .unwrap_or_else(|| self.path.clone())
    }
}

pub(crate) fn rpc_http_no_delete(cx: &mut Cx) {
    for p in http_pairs(cx) {
        if p.cur.is_none() {
            let at = p.at(cx);
            cx.report(
                &p.element,
                Some(p.file),
                &[&at],
                Some(p.prev_file),
                format!(
                    "RPC {:?} on service {:?} lost its HTTP binding {:?} (option \"google.api.http\" was removed).",
                    p.method,
                    p.service,
                    p.prev[0].pattern()
                ),
                Some(format!(
                    "keep `option (google.api.http) = {{ {}: \"{}\" }};`",
                    p.prev[0].verb, p.prev[0].path
                )),
            );
        }
    }
}

pub(crate) fn rpc_http_same_pattern(cx: &mut Cx) {
    for p in http_pairs(cx) {
        let (Some(cur), Some(first)) = (&p.cur, p.prev.first()) else {
            continue;
        };
        // What breaks is a request to the old URL finding nothing: the old pattern may
        // still be served as an additional binding.
        if cur
            .iter()
            .any(|b| b.verb == first.verb && b.path == first.path)
        {
            continue;
        }
        let now = cur.first().map(Binding::pattern).unwrap_or_default();
        let at = p.at(cx);
        cx.report(
            &p.element,
            Some(p.file),
            &[&at],
            Some(p.prev_file),
            format!(
                "RPC {:?} on service {:?} changed its HTTP binding from {:?} to {now:?}.",
                p.method,
                p.service,
                first.pattern()
            ),
            Some(format!(
                "keep {:?} served: move it to `additional_bindings` instead of replacing it",
                first.pattern()
            )),
        );
    }
}

pub(crate) fn rpc_http_additional_binding_no_delete(cx: &mut Cx) {
    for p in http_pairs(cx) {
        let Some(cur) = &p.cur else { continue };
        for old in p.prev.iter().skip(1) {
            if cur.iter().any(|b| b.verb == old.verb && b.path == old.path) {
                continue;
            }
            let at = p.at(cx);
            cx.report(
                &p.element,
                Some(p.file),
                &[&at],
                Some(p.prev_file),
                format!(
                    "RPC {:?} on service {:?} no longer serves its additional HTTP binding {:?}.",
                    p.method,
                    p.service,
                    old.pattern()
                ),
                Some(format!("keep {:?} in `additional_bindings`", old.pattern())),
            );
        }
    }
}

/// Body mappings of the bindings both sides serve (matched by verb and path).
fn body_rule(cx: &mut Cx, what: &str, get: fn(&Binding) -> &str) {
    for p in http_pairs(cx) {
        let Some(cur) = &p.cur else { continue };
        for old in &p.prev {
            let Some(new) = cur
                .iter()
                .find(|b| b.verb == old.verb && b.path == old.path)
            else {
                continue;
            };
            if get(old) != get(new) {
                let show = |s: &str| {
                    if s.is_empty() {
                        "(none)".to_string()
                    } else {
                        format!("{s:?}")
                    }
                };
                let at = p.at(cx);
                cx.report(
                    &p.element,
                    Some(p.file),
                    &[&at],
                    Some(p.prev_file),
                    format!(
                        "RPC {:?} on service {:?} changed the {what} of HTTP binding {:?} from {} to {}.",
                        p.method,
                        p.service,
                        old.pattern(),
                        show(get(old)),
                        show(get(new))
                    ),
                    Some(format!("keep `{what}: \"{}\"`", get(old))),
                );
            }
        }
    }
}

pub(crate) fn rpc_http_same_body(cx: &mut Cx) {
    body_rule(cx, "body", |b| &b.body);
}

pub(crate) fn rpc_http_same_response_body(cx: &mut Cx) {
    body_rule(cx, "response_body", |b| &b.response_body);
}

// ----- field options -----

/// Paired fields whose previous or current side sets the field-option extension `name`,
/// with its value on each side (`None` when not set).
fn option_pairs<'c, 'a>(
    cx: &Cx<'c, 'a>,
    name: &str,
) -> Vec<(
    &'c FieldEl<'a>,
    &'c FieldEl<'a>,
    Option<Value>,
    Option<Value>,
)> {
    let (prev, cur) = (cx.prev.option_values(name), cx.cur.option_values(name));
    if prev.is_empty() && cur.is_empty() {
        return Vec::new();
    }
    field_pairs(cx)
        .into_iter()
        .filter_map(|(p, c)| {
            let (pv, cv) = (
                prev.get(&p.full_name).cloned(),
                cur.get(&c.full_name).cloned(),
            );
            (pv.is_some() || cv.is_some()).then_some((p, c, pv, cv))
        })
        .collect()
}

/// Where an option of a field was written, or the field.
fn option_path<'a>(cx: &Cx<'_, 'a>, c: &FieldEl<'a>, extension: i32) -> Vec<i32> {
    cx.cur
        .located_under(c.file, &sub(&c.path, &[FIELD_OPTIONS, extension]))
        .unwrap_or_else(|| c.path.clone())
}

fn behaviors(v: &Option<Value>) -> BTreeSet<i32> {
    v.as_ref()
        .and_then(Value::as_list)
        .map(|l| l.iter().filter_map(Value::as_enum_number).collect())
        .unwrap_or_default()
}

fn behavior_rule(cx: &mut Cx, value: i32, name: &str, added_only: bool, fix: &str) {
    for (p, c, pv, cv) in option_pairs(cx, FIELD_BEHAVIOR_NAME) {
        let (before, after) = (
            behaviors(&pv).contains(&value),
            behaviors(&cv).contains(&value),
        );
        if before == after || (added_only && before) {
            continue;
        }
        let path = option_path(cx, c, FIELD_BEHAVIOR_EXTENSION);
        let change = if after { "added" } else { "removed" };
        cx.report(
            &c.full_name,
            Some(c.file),
            &[&path],
            Some(p.file),
            format!("{} {change} field behavior {name:?}.", field_description(c)),
            Some(fix.to_string()),
        );
    }
}

pub(crate) fn field_behavior_no_new_required(cx: &mut Cx) {
    behavior_rule(
        cx,
        REQUIRED,
        "REQUIRED",
        true,
        "leave the field optional for existing clients; require it in a new field or a new API version",
    );
}

pub(crate) fn field_behavior_same_output_only(cx: &mut Cx) {
    behavior_rule(
        cx,
        OUTPUT_ONLY,
        "OUTPUT_ONLY",
        false,
        "keep the field's OUTPUT_ONLY behavior; add a new field for the new behavior",
    );
}

pub(crate) fn field_behavior_same_immutable(cx: &mut Cx) {
    behavior_rule(
        cx,
        IMMUTABLE,
        "IMMUTABLE",
        false,
        "keep the field's IMMUTABLE behavior; add a new field for the new behavior",
    );
}

// ----- buf.validate -----

/// One tightening found between two `FieldRules`: which rule, and what changed.
struct Tightening {
    rule: &'static str,
    what: String,
}

/// A number from a rule's value, comparable across kinds (integers exactly).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
enum Num {
    Int(i128),
    Float(f64),
}

fn num(v: &Value) -> Option<Num> {
    Some(match v {
        Value::I32(x) => Num::Int(*x as i128),
        Value::I64(x) => Num::Int(*x as i128),
        Value::U32(x) => Num::Int(*x as i128),
        Value::U64(x) => Num::Int(*x as i128),
        Value::EnumNumber(x) => Num::Int(*x as i128),
        Value::F32(x) => Num::Float(*x as f64),
        Value::F64(x) => Num::Float(*x),
        // google.protobuf.Duration and Timestamp: nanoseconds.
        Value::Message(m) => {
            let s = m.get_field_by_name("seconds")?.as_i64()?;
            let n = m.get_field_by_name("nanos")?.as_i32()?;
            Num::Int(s as i128 * 1_000_000_000 + n as i128)
        }
        _ => return None,
    })
}

fn as_f64(n: Num) -> f64 {
    match n {
        Num::Int(i) => i as f64,
        Num::Float(f) => f,
    }
}

fn cmp(a: Num, b: Num) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => Some(x.cmp(&y)),
        _ => as_f64(a).partial_cmp(&as_f64(b)),
    }
}

/// A bound: value and whether it is inclusive. Integer exclusive bounds become inclusive
/// (`gt: 4` is `gte: 5`), so equivalent spellings compare equal.
fn bound(
    rules: &DynamicMessage,
    exclusive: &str,
    inclusive: &str,
    lower: bool,
) -> Option<(Num, bool)> {
    let get = |n: &str| {
        rules
            .has_field_by_name(n)
            .then(|| rules.get_field_by_name(n))
            .flatten()
    };
    if let Some(v) = get(inclusive) {
        return num(&v).map(|n| (n, true));
    }
    let v = get(exclusive)?;
    match num(&v)? {
        Num::Int(i) if !matches!(*v, Value::Message(_)) => {
            Some((Num::Int(if lower { i + 1 } else { i - 1 }), true))
        }
        n => Some((n, false)),
    }
}

/// Whether bound `cur` admits fewer values than `prev` (absent = unbounded).
fn tighter(prev: Option<(Num, bool)>, cur: Option<(Num, bool)>, lower: bool) -> bool {
    let Some((c, c_incl)) = cur else { return false };
    let Some((p, p_incl)) = prev else { return true };
    match cmp(c, p) {
        Some(std::cmp::Ordering::Greater) => lower,
        Some(std::cmp::Ordering::Less) => !lower,
        Some(std::cmp::Ordering::Equal) => p_incl && !c_incl,
        None => false,
    }
}

fn show_bound(b: Option<(Num, bool)>, lower: bool) -> String {
    match b {
        None => "none".into(),
        Some((n, incl)) => {
            let op = match (lower, incl) {
                (true, true) => ">=",
                (true, false) => ">",
                (false, true) => "<=",
                (false, false) => "<",
            };
            let v = match n {
                Num::Int(i) => i.to_string(),
                Num::Float(f) => f.to_string(),
            };
            format!("{op} {v}")
        }
    }
}

fn field_value(m: &DynamicMessage, name: &str) -> Option<Value> {
    m.has_field_by_name(name)
        .then(|| m.get_field_by_name(name).map(|v| v.into_owned()))
        .flatten()
}

fn list(m: &DynamicMessage, name: &str) -> Vec<Value> {
    m.get_field_by_name(name)
        .and_then(|v| v.as_list().map(<[Value]>::to_vec))
        .unwrap_or_default()
}

fn show_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Bytes(b) => format!("{:?}", String::from_utf8_lossy(b)),
        Value::Message(_) => num(v)
            .map(|n| match n {
                Num::Int(i) => format!("{}s", i as f64 / 1e9),
                Num::Float(f) => f.to_string(),
            })
            .unwrap_or_else(|| "(message)".into()),
        other => format!("{other:?}")
            .trim_start_matches(|c: char| c.is_alphanumeric())
            .trim_matches(|c| c == '(' || c == ')')
            .to_string(),
    }
}

const LENGTH_MINS: &[&str] = &["min_len", "min_bytes", "min_items", "min_pairs"];
const LENGTH_MAXES: &[&str] = &["max_len", "max_bytes", "max_items", "max_pairs"];
const LENGTH_EXACT: &[&str] = &["len", "len_bytes"];
const TEXT_MATCHERS: &[&str] = &["pattern", "prefix", "suffix", "contains", "not_contains"];

/// The typed part of a `FieldRules` (`string`, `int32`, `repeated`, …) and its name.
fn typed(rules: &DynamicMessage) -> Option<(String, DynamicMessage)> {
    let oneof = rules.descriptor().oneofs().find(|o| o.name() == "type")?;
    oneof.fields().find_map(|f| {
        rules
            .has_field(&f)
            .then(|| rules.get_field(&f).as_message().cloned())
            .flatten()
            .map(|m| (f.name().to_string(), m))
    })
}

/// Every way `cur` admits fewer values than `prev` (both `buf.validate.FieldRules`);
/// `at` is the option path to the rules compared (`""`, `"repeated.items."`, `"map.keys."`).
fn tightenings(
    prev: Option<&DynamicMessage>,
    cur: &DynamicMessage,
    at: &str,
    out: &mut Vec<Tightening>,
) {
    let prev_required = prev
        .and_then(|p| field_value(p, "required"))
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let cur_required = field_value(cur, "required")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    if cur_required && !prev_required {
        out.push(Tightening {
            rule: "FIELD_VALIDATE_NO_NEW_REQUIRED",
            what: format!("{at}required set to true"),
        });
    }
    let Some((kind, c)) = typed(cur) else { return };
    let p = prev.and_then(typed);
    let p = match p {
        Some((pk, pm)) if pk == kind => Some(pm),
        // Rules of another kind belong to another field type (caught by FIELD_SAME_TYPE).
        Some(_) => return,
        None => None,
    };
    let empty = DynamicMessage::new(c.descriptor());
    let p = p.as_ref().unwrap_or(&empty);
    let present = |m: &DynamicMessage, n: &str| m.descriptor().get_field_by_name(n).is_some();

    // Lengths and sizes.
    for &n in LENGTH_MINS.iter().filter(|n| present(&c, n)) {
        let (pv, cv) = (
            field_value(p, n).and_then(|v| v.as_u64()),
            field_value(&c, n).and_then(|v| v.as_u64()),
        );
        if cv.unwrap_or(0) > pv.unwrap_or(0) {
            out.push(Tightening {
                rule: "FIELD_VALIDATE_NO_TIGHTER_LENGTH",
                what: format!(
                    "{at}{kind}.{n} raised from {} to {}",
                    pv.unwrap_or(0),
                    cv.unwrap_or(0)
                ),
            });
        }
    }
    for &n in LENGTH_MAXES.iter().filter(|n| present(&c, n)) {
        let (pv, cv) = (
            field_value(p, n).and_then(|v| v.as_u64()),
            field_value(&c, n).and_then(|v| v.as_u64()),
        );
        if let Some(cv) = cv
            && pv.is_none_or(|pv| cv < pv)
        {
            let from = pv.map(|v| v.to_string()).unwrap_or_else(|| "none".into());
            out.push(Tightening {
                rule: "FIELD_VALIDATE_NO_TIGHTER_LENGTH",
                what: format!("{at}{kind}.{n} lowered from {from} to {cv}"),
            });
        }
    }
    for &n in LENGTH_EXACT.iter().filter(|n| present(&c, n)) {
        let (pv, cv) = (field_value(p, n), field_value(&c, n));
        if let Some(cv) = &cv
            && pv.as_ref() != Some(cv)
        {
            out.push(Tightening {
                rule: "FIELD_VALIDATE_NO_TIGHTER_LENGTH",
                what: format!("{at}{kind}.{n} set to {}", show_value(cv)),
            });
        }
    }

    // Ranges and constants.
    if present(&c, "gt") {
        for lower in [true, false] {
            let (ex, inc) = if lower { ("gt", "gte") } else { ("lt", "lte") };
            let (pb, cb) = (bound(p, ex, inc, lower), bound(&c, ex, inc, lower));
            if tighter(pb, cb, lower) {
                out.push(Tightening {
                    rule: "FIELD_VALIDATE_NO_NARROWER_RANGE",
                    what: format!(
                        "{at}{kind} {} bound narrowed from {} to {}",
                        if lower { "lower" } else { "upper" },
                        show_bound(pb, lower),
                        show_bound(cb, lower)
                    ),
                });
            }
        }
    }
    for flag in [
        "finite",
        "lt_now",
        "gt_now",
        "defined_only",
        "unique",
        "strict",
    ] {
        if !present(&c, flag) {
            continue;
        }
        let on = |m: &DynamicMessage| {
            field_value(m, flag)
                .and_then(|v| v.as_bool())
                .unwrap_or(false)
        };
        if on(&c) && !on(p) {
            let rule = match flag {
                "defined_only" => "FIELD_VALIDATE_NO_SHRINKING_IN",
                "unique" => "FIELD_VALIDATE_NO_TIGHTER_LENGTH",
                "strict" => "FIELD_VALIDATE_NO_NEW_PATTERN",
                _ => "FIELD_VALIDATE_NO_NARROWER_RANGE",
            };
            out.push(Tightening {
                rule,
                what: format!("{at}{kind}.{flag} turned on"),
            });
        }
    }
    if present(&c, "within")
        && tighter(
            field_value(p, "within")
                .as_ref()
                .and_then(num)
                .map(|n| (n, true)),
            field_value(&c, "within")
                .as_ref()
                .and_then(num)
                .map(|n| (n, true)),
            false,
        )
    {
        out.push(Tightening {
            rule: "FIELD_VALIDATE_NO_NARROWER_RANGE",
            what: format!("{at}{kind}.within narrowed"),
        });
    }
    if present(&c, "const")
        && let Some(cv) = field_value(&c, "const")
        && field_value(p, "const").as_ref() != Some(&cv)
    {
        out.push(Tightening {
            rule: "FIELD_VALIDATE_NO_NARROWER_RANGE",
            what: format!("{at}{kind}.const set to {}", show_value(&cv)),
        });
    }

    // Allowed and forbidden values.
    if present(&c, "in") {
        let (pin, cin) = (list(p, "in"), list(&c, "in"));
        let removed: Vec<String> = pin
            .iter()
            .filter(|v| !cin.contains(v))
            .map(show_value)
            .collect();
        if !cin.is_empty() && (pin.is_empty() || !removed.is_empty()) {
            let what = if pin.is_empty() {
                format!(
                    "{at}{kind}.in now allows only [{}]",
                    cin.iter().map(show_value).collect::<Vec<_>>().join(", ")
                )
            } else {
                format!("{at}{kind}.in no longer allows [{}]", removed.join(", "))
            };
            out.push(Tightening {
                rule: "FIELD_VALIDATE_NO_SHRINKING_IN",
                what,
            });
        }
        let (pnot, cnot) = (list(p, "not_in"), list(&c, "not_in"));
        let added: Vec<String> = cnot
            .iter()
            .filter(|v| !pnot.contains(v))
            .map(show_value)
            .collect();
        if !added.is_empty() {
            out.push(Tightening {
                rule: "FIELD_VALIDATE_NO_SHRINKING_IN",
                what: format!("{at}{kind}.not_in now forbids [{}]", added.join(", ")),
            });
        }
    }

    // Patterns and formats.
    for &n in TEXT_MATCHERS.iter().filter(|n| present(&c, n)) {
        if let Some(cv) = field_value(&c, n)
            && field_value(p, n).as_ref() != Some(&cv)
        {
            out.push(Tightening {
                rule: "FIELD_VALIDATE_NO_NEW_PATTERN",
                what: format!("{at}{kind}.{n} set to {}", show_value(&cv)),
            });
        }
    }
    if let Some(wk) = c.descriptor().oneofs().find(|o| o.name() == "well_known") {
        let set = |m: &DynamicMessage| {
            wk.fields()
                .find(|f| m.has_field(f))
                .map(|f| (f.name().to_string(), m.get_field(&f).into_owned()))
        };
        if let Some((name, value)) = set(&c)
            && set(p) != Some((name.clone(), value))
        {
            out.push(Tightening {
                rule: "FIELD_VALIDATE_NO_NEW_PATTERN",
                what: format!("{at}{kind}.{name} format now required"),
            });
        }
    }

    // Elements of repeated fields and maps carry rules of their own.
    for part in ["items", "keys", "values"] {
        if !present(&c, part) {
            continue;
        }
        if let Some(cur_part) = field_value(&c, part).and_then(|v| v.as_message().cloned()) {
            let prev_part = field_value(p, part).and_then(|v| v.as_message().cloned());
            tightenings(
                prev_part.as_ref(),
                &cur_part,
                &format!("{at}{kind}.{part}."),
                out,
            );
        }
    }
}

fn validate_rule(cx: &mut Cx) {
    for (p, c, pv, cv) in option_pairs(cx, VALIDATE_NAME) {
        let Some(cur) = cv.as_ref().and_then(Value::as_message) else {
            continue;
        };
        let prev = pv.as_ref().and_then(Value::as_message);
        let mut found = Vec::new();
        tightenings(prev, cur, "", &mut found);
        let path = option_path(cx, c, VALIDATE_EXTENSION);
        let rule = cx.rule;
        for t in found.into_iter().filter(|t| t.rule == rule) {
            cx.report(
                &c.full_name,
                Some(c.file),
                &[&path],
                Some(p.file),
                format!(
                    "{} tightened its validation: {}. Messages valid before are now rejected.",
                    field_description(c),
                    t.what
                ),
                Some("keep the previous constraint; validate the stricter rule in a new field or API version".into()),
            );
        }
    }
}

pub(crate) fn field_validate_no_new_required(cx: &mut Cx) {
    validate_rule(cx);
}
pub(crate) fn field_validate_no_tighter_length(cx: &mut Cx) {
    validate_rule(cx);
}
pub(crate) fn field_validate_no_narrower_range(cx: &mut Cx) {
    validate_rule(cx);
}
pub(crate) fn field_validate_no_shrinking_in(cx: &mut Cx) {
    validate_rule(cx);
}
pub(crate) fn field_validate_no_new_pattern(cx: &mut Cx) {
    validate_rule(cx);
}
