//! Accepting a known break on purpose: `protoreg-accepted.yaml`.
//!
//! Each entry names one finding — its rule id and element (the fully qualified name the
//! finding carries) — and the previous side it was accepted against. A matching finding is
//! still reported, marked accepted with the reason, and no longer fails the check; when the
//! previous side is anything else the entry does not apply, so an exemption never outlives
//! the comparison it was written for.
//!
//! ```yaml
//! version: v1
//! accepted:
//!   - rule: RPC_NO_DELETE
//!     element: acme.users.v1.UserService.LegacyLookup
//!     against: git:4f1c2e9          # or registry:<digest>, or sha256:<canonical content>
//!     reason: no caller since 2026-09 (dashboards/legacy-lookup)
//!     by: alice@example.com
//! ```

use std::path::Path;

use crate::{Accepted, Finding, RULES};

/// The file's name.
pub const FILE_NAME: &str = "protoreg-accepted.yaml";

/// Errors reading an exemptions file.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileBody {
    version: String,
    #[serde(default)]
    accepted: Vec<Exemption>,
}

/// One accepted break.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Exemption {
    pub rule: String,
    pub element: String,
    /// The previous side: `git:<commit>` (7 or more hex digits), `registry:<digest>` or
    /// `sha256:<hex>` (see [`content_id`]).
    pub against: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// A loaded exemptions file.
#[derive(Debug, Clone, Default)]
pub struct Exemptions {
    pub path: String,
    pub entries: Vec<Exemption>,
}

/// What identifies the previous side of a comparison; an exemption applies when its
/// `against` names one of these.
#[derive(Debug, Clone, Default)]
pub struct AgainstIds {
    /// The full commit id, for `--against-git` and `DIR#ref=REV`.
    pub git_commit: Option<String>,
    /// The registry version's digest, for `--against registry:S@N`.
    pub registry_digest: Option<String>,
    /// `sha256:<hex>` of the previous image's canonical content ([`content_id`]).
    pub content: Option<String>,
}

impl AgainstIds {
    /// The id an exemption written now should name (the most specific one known).
    pub fn preferred(&self) -> Option<String> {
        if let Some(c) = &self.git_commit {
            return Some(format!("git:{c}"));
        }
        if let Some(d) = &self.registry_digest {
            return Some(format!("registry:{d}"));
        }
        self.content.clone()
    }

    fn matches(&self, against: &str) -> bool {
        if let Some(rev) = against.strip_prefix("git:") {
            let rev = rev.to_ascii_lowercase();
            return rev.len() >= 7
                && rev.chars().all(|c| c.is_ascii_hexdigit())
                && self
                    .git_commit
                    .as_deref()
                    .is_some_and(|c| c.starts_with(&rev));
        }
        if let Some(d) = against.strip_prefix("registry:") {
            return self.registry_digest.as_deref() == Some(d);
        }
        against.starts_with("sha256:") && self.content.as_deref() == Some(against)
    }
}

impl Exemptions {
    /// Parses a file's text; `path` names it in errors.
    pub fn parse(text: &str, path: &str) -> Result<Exemptions, AcceptError> {
        let invalid = |message: String| AcceptError::Invalid {
            path: path.to_string(),
            message,
        };
        // serde_yaml_ng's message names the line and column.
        let body: FileBody = serde_yaml_ng::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if body.version != "v1" {
            return Err(invalid(format!(
                "unsupported version {:?} (expected \"v1\")",
                body.version
            )));
        }
        for (i, e) in body.accepted.iter().enumerate() {
            let entry = format!("accepted[{i}]");
            if !RULES.iter().any(|r| r.id == e.rule) {
                return Err(invalid(format!("{entry}: unknown rule {:?}", e.rule)));
            }
            if e.element.trim().is_empty() {
                return Err(invalid(format!("{entry}: element is empty")));
            }
            if e.reason.trim().is_empty() {
                return Err(invalid(format!(
                    "{entry}: reason is empty (say why this break is acceptable)"
                )));
            }
            let valid_against = match e.against.split_once(':') {
                Some(("git", rev)) => rev.len() >= 7 && rev.chars().all(|c| c.is_ascii_hexdigit()),
                Some(("registry", d)) => !d.is_empty(),
                Some(("sha256", hex)) => {
                    hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit())
                }
                _ => false,
            };
            if !valid_against {
                return Err(invalid(format!(
                    "{entry}: against {:?} is not git:<commit id, 7+ hex digits>, registry:<digest> or sha256:<64 hex digits>",
                    e.against
                )));
            }
        }
        Ok(Exemptions {
            path: path.to_string(),
            entries: body.accepted,
        })
    }

    /// Reads a file.
    pub fn read(path: &Path) -> Result<Exemptions, AcceptError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| AcceptError::Io {
            path: shown.clone(),
            source,
        })?;
        Exemptions::parse(&text, &shown)
    }

    /// Whether an entry could apply to this comparison's previous side at all (so the
    /// content id need only be computed when one names it).
    pub fn needs_content_id(&self) -> bool {
        self.entries
            .iter()
            .any(|e| e.against.starts_with("sha256:"))
    }

    /// Marks the findings the entries accept; returns the entries that matched nothing
    /// (stale: the break is gone, or the previous side changed).
    pub fn apply(&self, findings: &mut [Finding], against: &AgainstIds) -> Vec<&Exemption> {
        let mut unused = Vec::new();
        for e in &self.entries {
            if !against.matches(&e.against) {
                unused.push(e);
                continue;
            }
            let mut hit = false;
            for f in findings
                .iter_mut()
                .filter(|f| f.rule == e.rule && f.element == e.element)
            {
                f.accepted = Some(Accepted {
                    reason: e.reason.clone(),
                    by: e.by.clone(),
                });
                hit = true;
            }
            if !hit {
                unused.push(e);
            }
        }
        unused
    }
}

/// `sha256:<hex>` of an image's canonical content: each target file's descriptor without
/// source info (so comments and formatting do not count), in name order.
pub fn content_id(image: &protoreg_schema::Image) -> String {
    use prost::Message;
    use sha2::Digest;
    let mut files: Vec<_> = image.files.iter().filter(|f| !f.is_import).collect();
    files.sort_by(|a, b| a.proto.name().cmp(b.proto.name()));
    let mut h = sha2::Sha256::new();
    for f in files {
        let mut proto = f.proto.clone();
        proto.source_code_info = None;
        let bytes = proto.encode_to_vec();
        h.update((f.proto.name().len() as u64).to_le_bytes());
        h.update(f.proto.name().as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// An exemptions file listing `findings` (those not yet accepted) against `against`, with a
/// placeholder reason: what `protoreg breaking --suggest-accepted` prints.
pub fn suggest(findings: &[Finding], against: &str) -> String {
    let mut out = String::from("version: v1\naccepted:\n");
    for f in findings.iter().filter(|f| f.accepted.is_none()) {
        let e = Exemption {
            rule: f.rule.to_string(),
            element: f.element.clone(),
            against: against.to_string(),
            reason: "TODO: why this break is acceptable".into(),
            by: None,
        };
        let yaml = serde_yaml_ng::to_string(&[e]).unwrap_or_default();
        for line in yaml.lines() {
            out.push_str("  ");
            out.push_str(line);
            out.push('\n');
        }
        out.push_str(&format!("    # {}\n", f.message.replace('\n', " ")));
    }
    out
}
