//! The one error of the registry service. Each front door maps it to its own answer in one
//! place (`/v1`: [`crate::v1::ApiError`]; Confluent: `confluent::CfError`; the UI: a
//! page); the service never says what a status code or an error code is.

use protoreg_check::Finding;
use protoreg_schema::Diagnostic;
use protoreg_store::{Config, Deployment, StoreError};

use crate::api::DeployedWarning;

/// What was not found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    Subject,
    Version,
    /// A schema id, content digest or file.
    Schema,
    Environment,
    /// A service in an environment.
    Deployment,
}

/// A subject and version number, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct At {
    pub subject: String,
    pub version: i64,
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.subject, self.version)
    }
}

/// Why the service refused or failed an operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed: a name, a number, a field.
    #[error("{0}")]
    Invalid(String),
    #[error("{message}")]
    NotFound { what: Missing, message: String },
    /// The files of a push do not compile (every diagnostic, each with file and position).
    #[error("{} compile error(s): {}", .0.len(), .0.first().map(|d| d.to_string()).unwrap_or_default())]
    Compile(Vec<Diagnostic>),
    /// The subject's policy refuses the change.
    #[error("{} breaking change(s) under policy {} {:?}", findings.len(), policy.mode, policy.categories)]
    Incompatible {
        policy: Config,
        findings: Vec<Finding>,
    },
    /// `deployed: enforce`, and the change breaks versions current deployments run.
    #[error("the subject's policy says `deployed: enforce`, and {}", deployed.iter().map(|w| w.message.as_str()).collect::<Vec<_>>().join("; "))]
    BreaksDeployed { deployed: Vec<DeployedWarning> },
    /// Live versions of other subjects depend on the version.
    #[error("{version} is a dependency of {}; delete those first or pass force=true", dependents.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))]
    HasDependents { version: At, dependents: Vec<At> },
    /// Current deployments run the version.
    #[error("{version} is what {} run{}; undeploy them first or pass force=true (admin)", deployment_names(deployments).join(", "), if deployments.len() == 1 { "s" } else { "" })]
    RunningIn {
        version: At,
        deployments: Vec<Deployment>,
    },
    /// The scope (a subject, or `""` for the registry) is READONLY.
    #[error("{} is in read-only mode", scope_name(scope))]
    ReadOnly { scope: String },
    /// The scope is in IMPORT mode: writes must say which id and version they keep.
    #[error(
        "{} is in import mode: a registration must give the id and version it keeps",
        scope_name(scope)
    )]
    ImportNeedsId { scope: String },
    /// An explicit id or version outside IMPORT mode.
    #[error("a schema with an explicit id or version can only be registered in IMPORT mode")]
    ExplicitOutsideImport,
    /// IMPORT mode asked for a scope that has versions, without force.
    #[error("Cannot import since found existing subjects; pass force=true to import anyway")]
    ImportNotEmpty,
    /// A permanent delete of what was not soft-deleted first (`version: None`: a subject).
    #[error("{}", match version {
        Some(n) => format!("{subject}@{n} must be soft-deleted before it is permanently deleted"),
        None => format!("subject {subject:?} must be soft-deleted before it is permanently deleted"),
    })]
    NotSoftDeleted {
        subject: String,
        version: Option<i64>,
    },
    /// A soft delete of what is soft-deleted already (`version: None`: a subject).
    #[error("{}", match version {
        Some(n) => format!("{subject}@{n} is already deleted"),
        None => format!("subject {subject:?} is already deleted"),
    })]
    AlreadyDeleted {
        subject: String,
        version: Option<i64>,
    },
    #[error("dependency cycle: {0}")]
    DependencyCycle(String),
    #[error("{path} is provided by both {first} and {second} with different content")]
    DependencyConflict {
        path: String,
        first: String,
        second: String,
    },
    /// A dependency was deleted while the push was being committed.
    #[error("dependency {0} was deleted during the push")]
    DependencyGone(At),
    /// The stored state refuses an import's id or version (taken, or below the last).
    #[error("{0}")]
    ImportConflict(String),
    /// A lock's digest is not the registry's.
    #[error("{0}")]
    DigestMismatch(String),
    /// The caller's role does not allow what the request asks for (force, accepting breaks).
    #[error("{0}")]
    Forbidden(String),
    /// Too many concurrent writes on one subject; try again.
    #[error("{0}")]
    LostRace(String),
    /// The database cannot be reached; try again.
    #[error("the database is unavailable; try again")]
    Unavailable,
    /// A bug or a corrupt row: logged, answered without details.
    #[error("{0}")]
    Internal(String),
}

/// The service's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::Invalid(message.into())
    }

    pub fn not_found(what: Missing, message: impl Into<String>) -> Self {
        Error::NotFound {
            what,
            message: message.into(),
        }
    }

    pub fn no_version(subject: &str, version: impl std::fmt::Display) -> Self {
        Error::not_found(
            Missing::Version,
            format!("no version {version} of subject {subject:?}"),
        )
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            e if e.is_unavailable() => Error::Unavailable,
            StoreError::Invalid(m) => Error::ImportConflict(m),
            StoreError::DependencyGone { subject, version } => {
                Error::DependencyGone(At { subject, version })
            }
            e => {
                tracing::error!(error = %e, "storage error");
                Error::Internal(format!("storage error: {e}"))
            }
        }
    }
}

impl From<super::deps::DepError> for Error {
    fn from(e: super::deps::DepError) -> Self {
        use super::deps::DepError;
        match e {
            DepError::BadRequest(m) => Error::Invalid(m),
            DepError::NotFound(m) => Error::not_found(Missing::Version, m),
            DepError::Cycle(c) => Error::DependencyCycle(c),
            DepError::Conflict {
                path,
                first,
                second,
            } => Error::DependencyConflict {
                path,
                first,
                second,
            },
            DepError::Store(e) => e.into(),
        }
    }
}

fn scope_name(scope: &str) -> String {
    if scope.is_empty() {
        "The registry".into()
    } else {
        format!("Subject {scope}")
    }
}

/// `env's service` names of deployments, for messages.
pub fn deployment_names(list: &[Deployment]) -> Vec<String> {
    list.iter()
        .map(|d| {
            if d.instance.is_empty() {
                format!("{}'s {}", d.environment, d.service)
            } else {
                format!(
                    "{}'s {} (instance {})",
                    d.environment, d.service, d.instance
                )
            }
        })
        .collect()
}
