//! The registry's policy vocabulary, typed: compatibility modes, what a push that breaks a
//! deployed version gets, and the write modes of a scope. Stored as their names; a name
//! the store does not know is a corrupt row, never a silent default.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a new version is checked against, and in which direction (Confluent's
/// compatibility levels, applied with buf's rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Mode {
    None,
    Backward,
    BackwardTransitive,
    Forward,
    ForwardTransitive,
    Full,
    FullTransitive,
}

impl Mode {
    pub const ALL: [Mode; 7] = [
        Mode::None,
        Mode::Backward,
        Mode::BackwardTransitive,
        Mode::Forward,
        Mode::ForwardTransitive,
        Mode::Full,
        Mode::FullTransitive,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::None => "NONE",
            Mode::Backward => "BACKWARD",
            Mode::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Mode::Forward => "FORWARD",
            Mode::ForwardTransitive => "FORWARD_TRANSITIVE",
            Mode::Full => "FULL",
            Mode::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    /// New readers must read old data (the new version is checked against the old).
    pub fn backward(self) -> bool {
        matches!(
            self,
            Mode::Backward | Mode::BackwardTransitive | Mode::Full | Mode::FullTransitive
        )
    }

    /// Old readers must read new data (the old version is checked against the new).
    pub fn forward(self) -> bool {
        matches!(
            self,
            Mode::Forward | Mode::ForwardTransitive | Mode::Full | Mode::FullTransitive
        )
    }

    /// Checked against every live version, not only the latest.
    pub fn transitive(self) -> bool {
        matches!(
            self,
            Mode::BackwardTransitive | Mode::ForwardTransitive | Mode::FullTransitive
        )
    }

    /// The names, for error messages.
    pub fn names() -> String {
        names(&Mode::ALL.map(Mode::as_str))
    }
}

/// What a push that would break a version a current deployment runs gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeployedPolicy {
    /// Accepted, with the deployments it breaks in the answer.
    #[default]
    Warn,
    /// Refused.
    Enforce,
}

impl DeployedPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            DeployedPolicy::Warn => "warn",
            DeployedPolicy::Enforce => "enforce",
        }
    }
}

/// Whether a scope (a subject, or `""` for the registry) takes writes (Confluent's modes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WriteMode {
    /// Versions are created by pushes and numbered by the registry.
    #[default]
    #[serde(rename = "READWRITE")]
    ReadWrite,
    /// No version is created or deleted, no policy changed; mode changes stay allowed.
    #[serde(rename = "READONLY")]
    ReadOnly,
    /// As `ReadOnly` (Confluent: read-only even where an enclosing scope says otherwise).
    #[serde(rename = "READONLY_OVERRIDE")]
    ReadOnlyOverride,
    /// Versions come from another registry with their ids and numbers: a write must name them.
    #[serde(rename = "IMPORT")]
    Import,
}

impl WriteMode {
    pub const ALL: [WriteMode; 4] = [
        WriteMode::ReadWrite,
        WriteMode::ReadOnly,
        WriteMode::ReadOnlyOverride,
        WriteMode::Import,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WriteMode::ReadWrite => "READWRITE",
            WriteMode::ReadOnly => "READONLY",
            WriteMode::ReadOnlyOverride => "READONLY_OVERRIDE",
            WriteMode::Import => "IMPORT",
        }
    }

    pub fn is_read_only(self) -> bool {
        matches!(self, WriteMode::ReadOnly | WriteMode::ReadOnlyOverride)
    }

    pub fn names() -> String {
        names(&WriteMode::ALL.map(WriteMode::as_str))
    }
}

fn names(all: &[&str]) -> String {
    all.join(", ")
}

/// A name that is not one of a type's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {given:?} (one of {expected})")]
pub struct UnknownName {
    pub kind: &'static str,
    pub given: String,
    pub expected: String,
}

macro_rules! named {
    ($ty:ty, $kind:literal, $all:expr, $expected:expr) => {
        impl FromStr for $ty {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, UnknownName> {
                $all.into_iter()
                    .find(|m| m.as_str() == s)
                    .ok_or_else(|| UnknownName {
                        kind: $kind,
                        given: s.to_string(),
                        expected: $expected,
                    })
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named!(Mode, "mode", Mode::ALL, Mode::names());
named!(
    DeployedPolicy,
    "deployed policy",
    [DeployedPolicy::Warn, DeployedPolicy::Enforce],
    "warn, enforce".to_string()
);
named!(WriteMode, "write mode", WriteMode::ALL, WriteMode::names());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for m in Mode::ALL {
            assert_eq!(m.as_str().parse::<Mode>().unwrap(), m);
            assert_eq!(serde_json::to_value(m).unwrap(), m.as_str());
        }
        for m in WriteMode::ALL {
            assert_eq!(m.as_str().parse::<WriteMode>().unwrap(), m);
            assert_eq!(serde_json::to_value(m).unwrap(), m.as_str());
        }
        assert_eq!(
            serde_json::to_value(DeployedPolicy::Enforce).unwrap(),
            "enforce"
        );
        let e = "backward".parse::<Mode>().unwrap_err();
        assert!(e.to_string().contains("BACKWARD_TRANSITIVE"), "{e}");
    }

    #[test]
    fn directions() {
        assert!(Mode::Full.backward() && Mode::Full.forward() && !Mode::Full.transitive());
        assert!(Mode::ForwardTransitive.transitive() && !Mode::ForwardTransitive.backward());
        assert!(!Mode::None.backward() && !Mode::None.forward());
    }
}
