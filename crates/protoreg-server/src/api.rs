//! The bodies of the native `/v1` API as Rust types: the server's handlers answer with
//! them, the CLI reads them, and their derived schemas are `/openapi.json`'s components, so
//! a generated client is typed. Also the wire's small vocabulary both sides share: subject
//! names, URL segments, version numbers, timestamps.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// Every error: `{"error": {"code", "message", "details"}}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
    /// For `incompatible` (409) only: the findings, as in `error.details.findings`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub findings: Option<Vec<FindingBody>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable, machine-readable code (`not_found`, `incompatible`, `compile_error`, …).
    pub code: String,
    pub message: String,
    /// What the code says more about (diagnostics, findings, dependents, …), or null.
    #[schema(value_type = Object, nullable)]
    pub details: Value,
}

/// `/healthz` and `/readyz`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Status {
    pub status: String,
}

/// A compatibility policy: Confluent's mode and buf rule categories or ids.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Policy {
    /// NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE.
    pub mode: String,
    /// buf rule categories (FILE, PACKAGE, WIRE_JSON, WIRE) or rule ids.
    pub categories: Vec<String>,
    /// A push incompatible with a version still deployed somewhere: `warn` or `enforce`.
    pub deployed: String,
}

/// A refused push, as the registry logs it (the newest 50 per subject).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Refusal {
    /// RFC 3339.
    pub created_at: String,
    pub labels: BTreeMap<String, String>,
    /// The policy the push was checked under.
    pub policy: Policy,
    pub findings: Vec<FindingBody>,
}

/// A policy update: a field left out keeps its current value.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyUpdate {
    pub mode: Option<String>,
    pub categories: Option<Vec<String>>,
    pub deployed: Option<String>,
}

/// A subject in the listing.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SubjectSummary {
    pub name: String,
    pub latest_version: Option<i64>,
    /// Number of live versions.
    pub versions: i64,
}

/// One subject: its live versions and effective policy.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Subject {
    pub name: String,
    pub latest_version: Option<i64>,
    pub versions: Vec<i64>,
    pub config: Policy,
}

/// A version another version was built against.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Dep {
    pub subject: String,
    pub version: i64,
    pub digest: String,
    /// The import path the dependency's file is known by (a Confluent reference's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A version of a subject, by number.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VersionRef {
    pub subject: String,
    pub version: i64,
}

/// A version's metadata (listings).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VersionSummary {
    pub subject: String,
    pub version: i64,
    /// sha256 of the files (and, when there are any, the resolved dependencies).
    pub digest: String,
    pub labels: BTreeMap<String, String>,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub deleted: bool,
    pub deps: Vec<Dep>,
    /// Present when an admin pushed the version despite breaking changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_break: Option<AcceptedBreakBody>,
}

/// A break accepted on purpose (`protoreg push --accept-breaking --reason`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AcceptedBreakBody {
    pub reason: String,
    /// Who accepted it: the name the admin token was issued to (`TOKEN ROLE NAME`), else
    /// the HTTP Basic user name it came with, else the token's fingerprint
    /// (`token:1a2b3c4d`), or `anonymous` on a server without tokens.
    pub by: String,
    /// The breaking changes it was accepted with.
    pub findings: Vec<FindingBody>,
}

impl AcceptedBreakBody {
    pub fn from_store(a: &protoreg_store::AcceptedBreak) -> Self {
        AcceptedBreakBody {
            reason: a.reason.clone(),
            by: a.by.clone(),
            findings: serde_json::from_value(a.findings.clone()).unwrap_or_default(),
        }
    }
}

/// A version with its own files.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VersionBody {
    #[serde(flatten)]
    pub summary: VersionSummary,
    /// The version's own files: import path -> text.
    pub files: BTreeMap<String, String>,
}

/// A push (or a dry run).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PushRequest {
    /// Import path -> text.
    pub files: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `subject@N` or `subject@latest`: subjects whose files the imports resolve against.
    #[serde(default)]
    pub deps: Vec<String>,
    /// Let the push through despite breaking changes (admin role only); the findings, the
    /// reason and who accepted them are stored with the version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept_breaking: Option<AcceptBreaking>,
}

/// `{"reason": "…"}`: why a breaking push is let through.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AcceptBreaking {
    pub reason: String,
}

/// A compile error.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DiagnosticBody {
    /// The file (a dependency's file as `subject@N:path`); absent when none applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    pub message: String,
}

/// A dependent that would no longer compile against the new version.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BrokenDependent {
    pub subject: String,
    pub version: i64,
    pub diagnostics: Vec<DiagnosticBody>,
}

/// The latest versions that depend on the subject, and those the new version breaks.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Impact {
    pub checked: Vec<VersionRef>,
    pub broken: Vec<BrokenDependent>,
}

/// A push's answer: 201 created, or 200 when the content equals the latest version.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PushReply {
    pub subject: String,
    pub version: i64,
    pub digest: String,
    /// Present when the push broke the policy and an admin accepted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_break: Option<AcceptedBreakBody>,
    /// Deployments of other versions the new version would break (a warning).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deployed: Vec<DeployedWarning>,
    pub deps: Vec<Dep>,
    /// Present on 201: what the new version does to the versions that depend on it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dependents: Option<Impact>,
}

/// A breaking change, with buf's JSON fields.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FindingBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub start_line: u32,
    pub start_column: u32,
    pub end_line: u32,
    pub end_column: u32,
    /// The rule id.
    #[serde(rename = "type")]
    pub rule: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// The changed element's fully qualified name (what an exemption names).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub element: String,
    /// Present when the break was accepted on purpose (`--accept-breaking`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub accepted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A dry run's answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CheckReply {
    pub compatible: bool,
    pub findings: Vec<FindingBody>,
    pub deps: Vec<Dep>,
    pub dependents: Impact,
    /// Deployments of other versions the new version would break.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deployed: Vec<DeployedWarning>,
}

/// One file's change between two versions.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FileDiff {
    pub path: String,
    /// added, deleted or modified.
    pub status: String,
    /// Unified diff.
    pub diff: String,
}

/// Two versions compared.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DiffReply {
    pub subject: String,
    pub from: i64,
    pub to: i64,
    /// `to` checked against `from`: what breaks consumers built on `from`.
    pub breaking: Vec<FindingBody>,
    /// `from` checked against `to`: what a rollback from `to` to `from` would break.
    pub breaking_reverse: Vec<FindingBody>,
    pub files: Vec<FileDiff>,
}

/// A delete's answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeleteReply {
    pub subject: String,
    pub version: i64,
    /// soft or permanent.
    pub deleted: String,
}

/// A pinned contract of a service: which version of which subject, and whether the service
/// serves it or calls it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PinBody {
    pub subject: String,
    pub version: i64,
    /// The version's digest as the service's lock has it (checked against the registry's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// `serves` or `calls`.
    pub role: String,
}

/// `record-deployment`: service S, built with these pins, now runs in the environment.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeploymentRequest {
    pub service: String,
    pub pins: Vec<PinBody>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A running instance reporting itself (a heartbeat); it counts for `ttl_secs`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InstanceReport {
    pub service: String,
    pub instance: String,
    pub pins: Vec<PinBody>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// How long the report counts without another one (default 30, at most 3600).
    #[serde(default)]
    pub ttl_secs: Option<u64>,
}

/// A service running in an environment.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeploymentBody {
    pub environment: String,
    pub service: String,
    /// Set for an instance that reports itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    pub pins: Vec<PinBody>,
    pub labels: BTreeMap<String, String>,
    /// RFC 3339, UTC.
    pub deployed_at: String,
    /// For a reporting instance: when it stops counting without another heartbeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

impl From<&protoreg_store::Deployment> for DeploymentBody {
    fn from(d: &protoreg_store::Deployment) -> Self {
        DeploymentBody {
            environment: d.environment.clone(),
            service: d.service.clone(),
            instance: (!d.instance.is_empty()).then(|| d.instance.clone()),
            pins: d
                .pins
                .iter()
                .map(|p| PinBody {
                    subject: p.subject.clone(),
                    version: p.version,
                    digest: Some(p.digest.clone()),
                    role: p.role.clone(),
                })
                .collect(),
            labels: d.labels.clone(),
            deployed_at: rfc3339(d.deployed_at),
            expires_at: d.expires_at.map(rfc3339),
        }
    }
}

/// A service's deployment log in an environment, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ServiceHistory {
    pub environment: String,
    pub service: String,
    pub deployments: Vec<HistoryEntry>,
}

/// One deployment of a service: current, or replaced/undeployed/expired.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HistoryEntry {
    #[serde(flatten)]
    pub deployment: DeploymentBody,
    pub current: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
}

/// An environment in listings.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EnvironmentSummary {
    pub name: String,
    pub created_at: String,
    /// Services running there now.
    pub services: i64,
}

/// An environment and what runs there now.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EnvironmentBody {
    pub name: String,
    pub deployments: Vec<DeploymentBody>,
}

/// `can-i-deploy`: may this service, built with these pins, be deployed there?
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CanIDeployRequest {
    pub service: String,
    pub pins: Vec<PinBody>,
}

/// One counterpart of a `can-i-deploy`: a deployed service sharing a subject, in the
/// direction that matters.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MatrixRow {
    pub service: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    pub subject: String,
    /// The counterpart's role for the subject (`serves` or `calls`).
    pub role: String,
    /// The version the counterpart is pinned to.
    pub version: i64,
    /// The version about to be deployed.
    pub deploying: i64,
    /// `compatible`, `incompatible` or `unknown`.
    pub status: String,
    /// Why the status is unknown (a deleted or unreadable version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What breaks: the server side's contract checked against the caller side's.
    pub findings: Vec<FindingBody>,
}

/// A deployment a new version would break (a push's and a check's `deployed`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeployedWarning {
    pub environment: String,
    pub service: String,
    /// The deployment's role for the subject (`serves` or `calls`).
    pub role: String,
    /// The version it is pinned to.
    pub version: i64,
    pub message: String,
    pub findings: Vec<FindingBody>,
}

/// `can-i-deploy`'s answer: `yes`, `no` or `unknown`, and the matrix it came from.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CanIDeployReply {
    pub answer: String,
    pub environment: String,
    pub service: String,
    pub matrix: Vec<MatrixRow>,
}

/// The schema components of the API, derived from the types above.
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(
    ErrorBody,
    ErrorDetail,
    Status,
    Policy,
    PolicyUpdate,
    SubjectSummary,
    Subject,
    Dep,
    Refusal,
    VersionRef,
    VersionSummary,
    VersionBody,
    AcceptedBreakBody,
    AcceptBreaking,
    PushRequest,
    DiagnosticBody,
    BrokenDependent,
    Impact,
    PushReply,
    FindingBody,
    CheckReply,
    FileDiff,
    DiffReply,
    DeleteReply,
    PinBody,
    DeploymentRequest,
    InstanceReport,
    DeploymentBody,
    EnvironmentSummary,
    EnvironmentBody,
    CanIDeployRequest,
    MatrixRow,
    CanIDeployReply,
    DeployedWarning,
    ServiceHistory,
    HistoryEntry
)))]
pub struct Components;

impl From<&protoreg_store::DepRef> for Dep {
    fn from(d: &protoreg_store::DepRef) -> Self {
        Dep {
            subject: d.subject.clone(),
            version: d.version,
            digest: d.digest.clone(),
            name: d.name.clone(),
        }
    }
}

impl From<&protoreg_store::VersionMeta> for VersionSummary {
    fn from(v: &protoreg_store::VersionMeta) -> Self {
        VersionSummary {
            subject: v.subject.clone(),
            version: v.version,
            digest: v.digest.clone(),
            labels: v.labels.clone(),
            created_at: rfc3339(v.created_at),
            deleted: v.deleted,
            deps: v.deps.iter().map(Dep::from).collect(),
            accepted_break: None,
        }
    }
}

impl From<protoreg_store::Config> for Policy {
    fn from(c: protoreg_store::Config) -> Self {
        Policy {
            mode: c.mode.to_string(),
            categories: c.categories,
            deployed: c.deployed.to_string(),
        }
    }
}

impl From<&protoreg_check::Finding> for FindingBody {
    fn from(f: &protoreg_check::Finding) -> Self {
        FindingBody {
            path: f.path.clone(),
            start_line: f.span.start_line,
            start_column: f.span.start_column,
            end_line: f.span.end_line,
            end_column: f.span.end_column,
            rule: f.rule.to_string(),
            message: f.message.clone(),
            fix: f.fix.clone(),
            element: f.element.clone(),
            accepted: f.accepted.is_some(),
            reason: f.accepted.as_ref().map(|a| a.reason.clone()),
        }
    }
}

impl DiagnosticBody {
    /// A diagnostic that is not about a place in a file.
    pub fn message(message: impl Into<String>) -> Self {
        DiagnosticBody {
            path: None,
            line: None,
            column: None,
            message: message.into(),
        }
    }
}

impl From<&protoreg_schema::Diagnostic> for DiagnosticBody {
    fn from(d: &protoreg_schema::Diagnostic) -> Self {
        DiagnosticBody {
            path: Some(d.path.clone()),
            line: Some(d.line),
            column: Some(d.column),
            message: d.message.clone(),
        }
    }
}

// ----- the wire's vocabulary -----

/// A subject name ([`SUBJECT_RULE`]): Confluent clients name subjects after import paths.
pub fn valid_subject(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SUBJECT_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'))
        && s.split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
}

/// `s` as one URL path segment: what a subject may hold besides `A-Z a-z 0-9 . _ -`
/// (`/` above all) percent-encoded. Used by the CLI's requests and the UI's links.
pub fn url_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Longest subject name, in bytes.
pub const MAX_SUBJECT_LEN: usize = 255;

/// What [`valid_subject`] accepts, for error messages.
pub const SUBJECT_RULE: &str =
    "1 to 255 of A-Z a-z 0-9 . _ - /, no empty, `.` or `..` segment between slashes";

/// Splits a dependency spec, `SUBJECT@N`, `SUBJECT@latest` or `SUBJECT` (latest).
pub fn parse_dep_spec(spec: &str) -> Result<(String, Option<i64>), String> {
    let (subject, version) = spec.split_once('@').unwrap_or((spec, "latest"));
    if !valid_subject(subject) {
        return Err(format!(
            "dependency {spec:?}: invalid subject name (use {SUBJECT_RULE})"
        ));
    }
    let n = match version {
        "latest" => None,
        v => Some(v.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
            format!("dependency {spec:?}: the version must be a positive number or `latest`")
        })?),
    };
    Ok((subject.to_string(), n))
}

/// A version as a path names it: a positive number, or `latest` (`None`).
pub fn parse_version(v: &str) -> Result<Option<i64>, String> {
    if v == "latest" {
        return Ok(None);
    }
    v.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .map(Some)
        .ok_or_else(|| format!("version must be a positive number or `latest`, not {v:?}"))
}

/// Unix milliseconds as RFC 3339 UTC.
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod vocabulary_tests {
    use super::*;

    #[test]
    fn rfc3339_formats() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_764_028_800_123), "2025-11-25T00:00:00.123Z");
    }

    #[test]
    fn subject_names() {
        assert!(valid_subject("acme.users.v1"));
        // Confluent's reference subjects are import paths.
        assert!(valid_subject("acme/common/v1/money.proto"));
        assert!(valid_subject("orders-value"));
        for bad in [
            "../x", "a/../b", "a//b", "/a", "a/", "./a", "a b", "a@1", "a%2Fb", "",
        ] {
            assert!(!valid_subject(bad), "{bad:?}");
        }
        assert!(valid_subject(&"a".repeat(255)));
        assert!(!valid_subject(&"a".repeat(256)));
        assert_eq!(url_segment("acme/x.proto"), "acme%2Fx.proto");
    }

    #[test]
    fn version_numbers() {
        assert_eq!(parse_version("latest"), Ok(None));
        assert_eq!(parse_version("3"), Ok(Some(3)));
        assert!(parse_version("0").is_err() && parse_version("-1").is_err());
    }
}
