//! Verifying the pin at start: fetch the pinned descriptor (registry, or the cached copy when
//! the registry is down) and compare it with the descriptor the binary was built with.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use prost::Message;
use prost_types::{DescriptorProto, EnumDescriptorProto, FileDescriptorProto, FileDescriptorSet};
use protoreg_schema::Lock;
use protoreg_schema::pin::sha256_hex;

/// Where the pinned descriptor came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Registry,
    /// The registry was unreachable; the cached copy beside the lock file was used.
    Cache,
}

/// A verified pin.
pub struct Pinned {
    pub lock: Lock,
    pub descriptor: Vec<u8>,
    pub source: Source,
}

/// The registry client: answers of every status read, 5 s per request.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into()
}

/// Loads the pin and its descriptor set: from the registry (checking the digest), else from
/// the cache (checking its hash).
pub fn load(lock_path: &Path, token: Option<&str>) -> anyhow::Result<Pinned> {
    let lock = Lock::read(lock_path)?;
    let url = format!(
        "{}/v1/subjects/{}/versions/{}/descriptor",
        lock.registry.trim_end_matches('/'),
        lock.subject,
        lock.version
    );
    let agent = agent();
    let mut req = agent.get(&url);
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    match req.call() {
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            if status != 200 {
                bail!(
                    "registry answered {status} for pinned {}@{} ({url})",
                    lock.subject,
                    lock.version
                );
            }
            let etag = resp
                .headers()
                .get("etag")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .trim_matches('"')
                .to_string();
            if etag != lock.digest {
                bail!(
                    "registry's {}@{} has digest {etag}, the lock file says {}: the pin is stale or the registry was rewritten",
                    lock.subject,
                    lock.version,
                    lock.digest
                );
            }
            let descriptor = resp
                .body_mut()
                .with_config()
                .limit(256 << 20)
                .read_to_vec()?;
            Ok(Pinned {
                lock,
                descriptor,
                source: Source::Registry,
            })
        }
        Err(e) => {
            let cache = Lock::cache_path(lock_path);
            let descriptor = std::fs::read(&cache).with_context(|| {
                format!(
                    "registry {} unreachable ({e}) and no cached descriptor at {}",
                    lock.registry,
                    cache.display()
                )
            })?;
            if sha256_hex(&descriptor) != lock.descriptor_sha256 {
                bail!(
                    "cached descriptor {} does not match the lock file's hash",
                    cache.display()
                );
            }
            Ok(Pinned {
                lock,
                descriptor,
                source: Source::Cache,
            })
        }
    }
}

/// The elements that differ between the contract a binary was built with and the pinned
/// version (only files the binary uses are compared). Empty: no drift.
pub fn drift(built: &[u8], pinned: &[u8]) -> anyhow::Result<Vec<String>> {
    let built = FileDescriptorSet::decode(built).context("built descriptor")?;
    let pinned = FileDescriptorSet::decode(pinned).context("pinned descriptor")?;
    let pinned: BTreeMap<&str, &FileDescriptorProto> =
        pinned.file.iter().map(|f| (f.name(), f)).collect();
    let mut out = Vec::new();
    for b in &built.file {
        if b.name().starts_with("google/protobuf/") {
            continue;
        }
        let Some(p) = pinned.get(b.name()) else {
            out.push(format!("file {}: not in the pinned version", b.name()));
            continue;
        };
        if b.package() != p.package() {
            out.push(format!(
                "file {}: package {} built, {} pinned",
                b.name(),
                b.package(),
                p.package()
            ));
        }
        if b.options != p.options {
            out.push(format!("file {}: options differ", b.name()));
        }
        let pkg = b.package();
        diff_named(
            &mut out,
            "message",
            pkg,
            &b.message_type,
            &p.message_type,
            |x| x.name(),
            diff_message,
        );
        diff_named(
            &mut out,
            "enum",
            pkg,
            &b.enum_type,
            &p.enum_type,
            |x| x.name(),
            diff_enum,
        );
        diff_named(
            &mut out,
            "service",
            pkg,
            &b.service,
            &p.service,
            |x| x.name(),
            |o, name, x, y| {
                diff_named(
                    o,
                    "rpc",
                    name,
                    &x.method,
                    &y.method,
                    |m| m.name(),
                    |o, name, m, n| {
                        if m != n {
                            o.push(format!("rpc {name}: signature or options differ"));
                        }
                    },
                );
                if x.options != y.options {
                    o.push(format!("service {name}: options differ"));
                }
            },
        );
    }
    Ok(out)
}

fn join(scope: &str, name: &str) -> String {
    if scope.is_empty() {
        name.to_string()
    } else {
        format!("{scope}.{name}")
    }
}

/// Pairs elements by name; reports one-sided ones and recurses into pairs.
fn diff_named<T>(
    out: &mut Vec<String>,
    kind: &str,
    scope: &str,
    built: &[T],
    pinned: &[T],
    name: impl Fn(&T) -> &str,
    mut pair: impl FnMut(&mut Vec<String>, &str, &T, &T),
) {
    for b in built {
        let full = join(scope, name(b));
        match pinned.iter().find(|p| name(p) == name(b)) {
            Some(p) => pair(out, &full, b, p),
            None => out.push(format!("{kind} {full}: only in the built contract")),
        }
    }
    for p in pinned {
        if !built.iter().any(|b| name(b) == name(p)) {
            out.push(format!(
                "{kind} {}: only in the pinned version",
                join(scope, name(p))
            ));
        }
    }
}

fn diff_message(out: &mut Vec<String>, full: &str, b: &DescriptorProto, p: &DescriptorProto) {
    diff_named(
        out,
        "field",
        full,
        &b.field,
        &p.field,
        |f| f.name(),
        |o, name, x, y| {
            if x != y {
                o.push(format!(
                    "field {name}: number, type, label or options differ (built #{}, pinned #{})",
                    x.number(),
                    y.number()
                ));
            }
        },
    );
    diff_named(
        out,
        "message",
        full,
        &b.nested_type,
        &p.nested_type,
        |m| m.name(),
        diff_message,
    );
    diff_named(
        out,
        "enum",
        full,
        &b.enum_type,
        &p.enum_type,
        |e| e.name(),
        diff_enum,
    );
    if b.oneof_decl != p.oneof_decl
        || b.reserved_range != p.reserved_range
        || b.reserved_name != p.reserved_name
        || b.options != p.options
    {
        out.push(format!(
            "message {full}: oneofs, reserved ranges/names or options differ"
        ));
    }
}

fn diff_enum(out: &mut Vec<String>, full: &str, b: &EnumDescriptorProto, p: &EnumDescriptorProto) {
    diff_named(
        out,
        "enum value",
        full,
        &b.value,
        &p.value,
        |v| v.name(),
        |o, name, x, y| {
            if x != y {
                o.push(format!("enum value {name}: number or options differ"));
            }
        },
    );
}

/// Where and as what a running instance reports itself to the registry.
#[derive(Debug, Clone)]
pub struct Report {
    pub environment: String,
    pub service: String,
    pub instance: String,
    pub ttl_secs: u64,
    /// A token with the write role (reporting records a deployment).
    pub token: Option<String>,
}

/// Tells the registry that this instance runs `lock`'s version in the environment (one
/// heartbeat; the registry forgets the instance `ttl_secs` after the last one).
pub fn report(lock: &Lock, r: &Report) -> anyhow::Result<()> {
    let url = format!(
        "{}/v1/environments/{}/instances",
        lock.registry.trim_end_matches('/'),
        r.environment
    );
    let body = serde_json::json!({
        "service": r.service,
        "instance": r.instance,
        "pins": [{"subject": lock.subject, "version": lock.version, "digest": lock.digest, "role": lock.role()}],
        "ttl_secs": r.ttl_secs,
    });
    let agent = agent();
    let mut req = agent.post(&url).header("Content-Type", "application/json");
    if let Some(t) = &r.token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let mut resp = req
        .send(body.to_string().as_bytes())
        .with_context(|| format!("reporting to {url}"))?;
    let status = resp.status().as_u16();
    if status != 200 {
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        bail!("the registry answered {status} to the report: {text}");
    }
    Ok(())
}
