//! The breaking-change checker: buf's rules over two images.
//!
//! Both images are indexed ([`index`]), elements are paired the way buf pairs them (files by
//! path, types by full name, fields and enum values by number, RPCs by name) and every
//! selected rule of the [`rules::RULES`] table runs over the pairs. A rule reports
//! [`Finding`]s located in the *current* files, exactly where buf puts them (a deleted element
//! points at its parent; a wholly deleted thing has no location).

pub mod accept;
mod extra;
mod features;
mod index;
pub mod rules;
pub mod units;

use std::collections::BTreeSet;

use protoreg_schema::{BreakingConfig, Image, ImageFile};

pub use rules::{BUF_CATEGORIES, CATEGORIES, RULES, Rule};
pub use units::{Scope, check_changed};

/// A 1-based source range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Span {
    pub start_line: u32,
    pub start_column: u32,
    pub end_line: u32,
    pub end_column: u32,
}

impl Span {
    /// From protobuf source info (0-based line and column).
    pub fn new(sl: i32, sc: i32, el: i32, ec: i32) -> Self {
        Span {
            start_line: sl as u32 + 1,
            start_column: sc as u32 + 1,
            end_line: el as u32 + 1,
            end_column: ec as u32 + 1,
        }
    }

    /// Where buf puts a finding without a location.
    pub const FILE_START: Span = Span {
        start_line: 1,
        start_column: 1,
        end_line: 1,
        end_column: 1,
    };
}

/// One breaking change.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    /// Path of the current file as the input names it; `None` for a deleted file or package.
    pub path: Option<String>,
    pub span: Span,
    /// The rule id (`FIELD_SAME_TYPE`).
    pub rule: &'static str,
    pub message: String,
    /// How to keep the change without breaking, when there is a better way than reverting.
    pub fix: Option<String>,
    /// The changed element's fully qualified name (`acme.v1.User.email`, an RPC as
    /// `acme.v1.Users.Get`, a file by its path, a package by its name): what an exemption
    /// names.
    pub element: String,
    /// Set when an exemption accepts this finding: why it was accepted.
    pub accepted: Option<Accepted>,
    /// Import path of the current file (for ignores).
    pub file_name: Option<String>,
    /// Import path of the previous file (for ignores).
    pub against_file_name: Option<String>,
    #[doc(hidden)]
    pub packages: (Option<String>, Option<String>),
}

/// Why a finding is let through: the exemption that matched it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Accepted {
    pub reason: String,
    /// Who accepted it, when the exemption says.
    pub by: Option<String>,
}

/// Errors in the checker's configuration.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("unknown rule or category {0:?} in buf.yaml breaking configuration")]
    UnknownRule(String),
}

/// Which rules run and what is ignored.
#[derive(Debug, Clone)]
pub struct Options {
    pub config: BreakingConfig,
    pub exclude_imports: bool,
    /// Limit findings to these paths (files or directories, as import paths).
    pub paths: Vec<String>,
    pub exclude_paths: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            config: BreakingConfig {
                version: "v1".into(),
                ..Default::default()
            },
            exclude_imports: false,
            paths: Vec::new(),
            exclude_paths: Vec::new(),
        }
    }
}

/// Expands rule ids and categories into rule ids (with v1's deprecated ids mapped to their
/// replacements, as buf does).
fn expand(ids: &[String], version: &str) -> Result<BTreeSet<&'static str>, CheckError> {
    let mut out = BTreeSet::new();
    for id in ids {
        let id = id.as_str();
        if CATEGORIES.contains(&id) {
            out.extend(
                RULES
                    .iter()
                    .filter(|r| r.categories.contains(&id))
                    .map(|r| r.id),
            );
            continue;
        }
        if let Some(r) = RULES.iter().find(|r| r.id == id) {
            out.insert(r.id);
            continue;
        }
        let deprecated: &[&'static str] = match (version, id) {
            (_, "FIELD_SAME_CTYPE") => &["FIELD_SAME_CPP_STRING_TYPE"],
            (_, "FIELD_SAME_LABEL") => &[
                "FIELD_SAME_CARDINALITY",
                "FIELD_WIRE_COMPATIBLE_CARDINALITY",
                "FIELD_WIRE_JSON_COMPATIBLE_CARDINALITY",
            ],
            (_, "MESSAGE_SAME_MESSAGE_SET_WIRE_FORMAT") | (_, "FILE_SAME_PHP_GENERIC_SERVICES") => {
                &[]
            }
            _ => return Err(CheckError::UnknownRule(id.to_string())),
        };
        out.extend(deprecated.iter().copied());
    }
    Ok(out)
}

/// The rule ids a configuration selects.
pub fn selected_rules(config: &BreakingConfig) -> Result<BTreeSet<&'static str>, CheckError> {
    let uses = if config.use_ids.is_empty() {
        vec!["FILE".to_string()]
    } else {
        config.use_ids.clone()
    };
    let mut selected = expand(&uses, &config.version)?;
    for r in expand(&config.except, &config.version)? {
        selected.remove(r);
    }
    Ok(selected)
}

/// Compares `current` against `previous` and returns every finding, sorted as buf sorts them.
pub fn check(
    current: &Image,
    previous: &Image,
    opts: &Options,
) -> Result<Vec<Finding>, CheckError> {
    let selected = selected_rules(&opts.config)?;
    let cur = index::Side::new(current, opts.exclude_imports);
    let prev = index::Side::new(previous, opts.exclude_imports);
    run(current, previous, cur, prev, &selected, opts)
}

/// Which side [`check_overlapped`] has first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum First {
    Current,
    Previous,
}

/// What [`check_overlapped`] returns: the findings, the image `rest` made, what `beside` made.
pub type Overlapped<T> = (Vec<Finding>, Image, T);

/// [`check`] for a caller still making one of the images: the side it has (`ready`) is
/// indexed while `rest` finishes the other (joining the thread that compiles it, say), and
/// `beside` runs on another thread with both images (current, previous) while the rules do.
/// Returns the findings, the other image (the caller decides when to free it) and what
/// `beside` returned.
pub fn check_overlapped<E, T: Send>(
    ready: &Image,
    first: First,
    rest: impl FnOnce() -> Result<Image, E>,
    beside: impl FnOnce(&Image, &Image) -> T + Send,
    opts: &Options,
) -> Result<Result<Overlapped<T>, CheckError>, E> {
    let selected = match selected_rules(&opts.config) {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    let a = index::Side::new(ready, opts.exclude_imports);
    let other = rest()?;
    let (cur, prev) = match first {
        First::Current => (ready, &other),
        First::Previous => (&other, ready),
    };
    let (found, t) = std::thread::scope(|scope| {
        let t = scope.spawn(|| beside(cur, prev));
        let b = index::Side::new(&other, opts.exclude_imports);
        let found = match first {
            First::Current => run(ready, &other, a, b, &selected, opts),
            First::Previous => run(&other, ready, b, a, &selected, opts),
        };
        (
            found,
            t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
        )
    });
    Ok(found.map(|f| (f, other, t)))
}

fn run<'a>(
    current: &'a Image,
    previous: &'a Image,
    cur: index::Side<'a>,
    prev: index::Side<'a>,
    selected: &BTreeSet<&'static str>,
    opts: &Options,
) -> Result<Vec<Finding>, CheckError> {
    // protoreg's own rules read option extensions: scan both sides at once.
    if RULES.iter().any(|r| !r.is_buf() && selected.contains(r.id)) {
        let (c, p) = std::thread::scope(|s| {
            let c = s.spawn(|| index::scan_options(&current.pool));
            let p = index::scan_options(&previous.pool);
            (c.join().unwrap_or_default(), p)
        });
        cur.install_options(c);
        prev.install_options(p);
    }
    let mut out = Vec::new();
    let pairs = rules::Pairs::default();
    let mut cx = rules::Cx {
        cur: &cur,
        prev: &prev,
        rule: "",
        out: &mut out,
        pairs: &pairs,
    };
    for rule in RULES.iter().filter(|r| selected.contains(r.id)) {
        cx.rule = rule.id;
        (rule.check)(&mut cx);
    }
    let mut out: Vec<Finding> = out
        .into_iter()
        .filter(|f| !ignored(f, opts))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    sort_findings(&mut out);
    Ok(out)
}

/// Sorts findings as buf does (path, place, rule, message).
pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        (&a.path, a.span, a.rule, &a.message).cmp(&(&b.path, b.span, b.rule, &b.message))
    });
}

fn under(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    prefix == "." || path == prefix || path.starts_with(&format!("{prefix}/"))
}

fn ignored(f: &Finding, opts: &Options) -> bool {
    let names: Vec<&str> = [&f.file_name, &f.against_file_name]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    let any_under = |paths: &[String]| names.iter().any(|n| paths.iter().any(|p| under(n, p)));
    let c = &opts.config;
    if any_under(&c.ignore) {
        return true;
    }
    for (id, paths) in &c.ignore_only {
        let applies = id == f.rule
            || RULES
                .iter()
                .any(|r| r.id == f.rule && r.categories.contains(&id.as_str()));
        if applies && any_under(paths) {
            return true;
        }
    }
    if c.ignore_unstable_packages {
        let unstable = [&f.packages.0, &f.packages.1]
            .into_iter()
            .flatten()
            .any(|p| is_unstable_package(p));
        if unstable {
            return true;
        }
    }
    if !opts.paths.is_empty() && !any_under(&opts.paths) {
        return true;
    }
    if !opts.exclude_paths.is_empty() && any_under(&opts.exclude_paths) {
        return true;
    }
    false
}

/// A package whose version component is alpha, beta or test (`foo.v1alpha1`, `foo.v2beta`,
/// `foo.v1test`), as buf's `ignore_unstable_packages` reads it.
pub fn is_unstable_package(pkg: &str) -> bool {
    pkg.split('.').any(|part| {
        let Some(rest) = part.strip_prefix('v') else {
            return false;
        };
        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return false;
        }
        let mut tail = &rest[digits..];
        // vNpM (point releases) before the suffix
        if let Some(t) = tail.strip_prefix('p') {
            let d = t.chars().take_while(|c| c.is_ascii_digit()).count();
            if d > 0 {
                tail = &t[d..];
            }
        }
        let suffix = |s: &str, word: &str| {
            s.strip_prefix(word)
                .is_some_and(|r| r.chars().all(|c| c.is_ascii_digit()))
        };
        suffix(tail, "alpha") || suffix(tail, "beta") || tail.starts_with("test")
    })
}

pub(crate) fn file_package(f: &ImageFile) -> String {
    f.proto.package().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unstable_packages() {
        assert!(is_unstable_package("foo.v1alpha1"));
        assert!(is_unstable_package("foo.v1beta"));
        assert!(is_unstable_package("foo.v2test"));
        assert!(is_unstable_package("foo.v1p1beta1"));
        assert!(!is_unstable_package("foo.v1"));
        assert!(!is_unstable_package("foo.valpha"));
    }

    #[test]
    fn rule_selection() {
        let mut c = BreakingConfig {
            version: "v1".into(),
            ..Default::default()
        };
        let all = selected_rules(&c).unwrap();
        assert!(all.contains("FIELD_SAME_TYPE"));
        assert!(!all.contains("FIELD_WIRE_COMPATIBLE_TYPE"));
        c.use_ids = vec!["FIELD_SAME_LABEL".into()];
        assert_eq!(selected_rules(&c).unwrap().len(), 3);
        c.use_ids = vec!["NOPE".into()];
        assert!(selected_rules(&c).is_err());
    }
}
