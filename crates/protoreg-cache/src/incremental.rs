//! The incremental breaking check.
//!
//! Every rule pairs elements by file path or by full name, and a full name begins with its
//! package; so the findings about the files of one package (on either side) depend only on
//! those files and on what they import. Packages are grouped into *units*: a file whose
//! path is on both sides joins its two packages, and package `a` joins `a.b.x` when `a`
//! declares a top-level `b` (`a.b.C` could then name either). A unit's findings are
//! cached under a key made of the checker's identity, the options, and, for each of its
//! files on each side, the path, how it is shown, and the digest of its text and of
//! everything it imports. A run recomputes only the units whose key is not cached, in one
//! compile of their files (the rest of each side is there to be imported); when most of
//! them changed it compiles everything once, as a run without cache does, and stores every
//! unit's findings.
//!
//! What a file declares (package, imports, top-level names) is cached by the digest of its
//! text, so an unchanged file is not parsed to find its unit.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use protoreg_check::units::{Partition, UnitFile};
use protoreg_check::{Finding, Options, Span};
use protoreg_schema::{Image, SchemaError, SourceFile, SourceInfo, SourceSet};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::Cache;

/// Bumped whenever what is stored or how keys are made changes.
const FORMAT: &str = "incremental-check 1";

/// Fewer missing facts than this (or than 2 % of the files) are parsed one by one; more
/// mean a first run or a large change, and everything is compiled at once.
const PARSE_ALONE: usize = 32;

/// Errors of a check.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error(transparent)]
    Check(#[from] protoreg_check::CheckError),
}

/// How a run went (`--cache-stats`, the tests, the benchmark).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Units (groups of packages) in the comparison.
    pub units: usize,
    /// Units whose findings came from the cache.
    pub reused: usize,
    /// Files compiled (targets and imports, both sides).
    pub compiled: usize,
    /// Whether everything was compiled at once.
    pub full: bool,
}

/// Findings and how they were had.
#[derive(Debug)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub stats: Stats,
}

/// What a file declares, as far as units and keys need.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Facts {
    package: String,
    /// Imports, then `import option` files.
    imports: Vec<String>,
    /// Names of the top-level messages, enums, services and extensions.
    names: Vec<String>,
}

impl Facts {
    fn of(proto: &prost_types::FileDescriptorProto, option_imports: &[String]) -> Facts {
        let mut names: Vec<String> = UnitFile::of(proto)
            .names
            .into_iter()
            .map(String::from)
            .collect();
        names.sort();
        names.dedup();
        Facts {
            package: proto.package().to_string(),
            imports: proto
                .dependency
                .iter()
                .chain(option_imports)
                .cloned()
                .collect(),
            names,
        }
    }
}

/// A finding as stored (its rule by id).
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    path: Option<String>,
    span: [u32; 4],
    rule: String,
    message: String,
    fix: Option<String>,
    element: String,
    file_name: Option<String>,
    against_file_name: Option<String>,
    packages: (Option<String>, Option<String>),
}

impl Stored {
    fn from(f: &Finding) -> Stored {
        let s = f.span;
        Stored {
            path: f.path.clone(),
            span: [s.start_line, s.start_column, s.end_line, s.end_column],
            rule: f.rule.to_string(),
            message: f.message.clone(),
            fix: f.fix.clone(),
            element: f.element.clone(),
            file_name: f.file_name.clone(),
            against_file_name: f.against_file_name.clone(),
            packages: f.packages.clone(),
        }
    }

    fn into_finding(self) -> Option<Finding> {
        let rule = protoreg_check::RULES.iter().find(|r| r.id == self.rule)?.id;
        let [start_line, start_column, end_line, end_column] = self.span;
        Some(Finding {
            path: self.path,
            span: Span {
                start_line,
                start_column,
                end_line,
                end_column,
            },
            rule,
            message: self.message,
            fix: self.fix,
            element: self.element,
            accepted: None,
            file_name: self.file_name,
            against_file_name: self.against_file_name,
            packages: self.packages,
        })
    }
}

/// Compares `current` against `previous`, reusing and filling `cache` when there is one.
/// The findings are those of [`full`] (compile both, check), whatever the cache holds.
pub fn check(
    current: &SourceSet,
    previous: &SourceSet,
    opts: &Options,
    cache: Option<&Cache>,
) -> Result<Report, Error> {
    match cache {
        Some(cache) if eligible(current, previous, opts) => {
            Incremental::new(cache, opts).run(current, previous)
        }
        _ => {
            let (findings, compiled) = full(current, previous, opts)?;
            Ok(Report {
                findings,
                stats: Stats {
                    full: true,
                    compiled,
                    ..Default::default()
                },
            })
        }
    }
}

/// Whether units can stand for the whole: every file of both sides is a target read as
/// text (no `-I` paths or registry files, whose findings belong to no unit), and only buf's
/// rules are selected (protoreg's own compare option values across the image).
fn eligible(current: &SourceSet, previous: &SourceSet, opts: &Options) -> bool {
    let plain = |s: &SourceSet| {
        s.includes.is_empty() && s.imports.is_empty() && s.files.values().all(|f| f.text.is_ok())
    };
    let buf_only = protoreg_check::selected_rules(&opts.config)
        .map(|ids| {
            protoreg_check::RULES
                .iter()
                .filter(|r| ids.contains(r.id))
                .all(|r| r.is_buf())
        })
        .unwrap_or(false);
    plain(current) && plain(previous) && buf_only
}

/// Both sides compiled (in parallel) and checked: the answer without cache, and how many
/// files were compiled.
fn full(
    current: &SourceSet,
    previous: &SourceSet,
    opts: &Options,
) -> Result<(Vec<Finding>, usize), Error> {
    let (findings, cur, prev, ()) = compile_and_check(current, previous, opts, |_, _| ())?;
    let compiled = cur.files.len() + prev.files.len();
    // The process is about to exit or to drop them: freeing two large images costs time.
    std::mem::forget((cur, prev));
    Ok((findings, compiled))
}

/// Compiles both sides, one on another thread, and checks them; the side with fewer files
/// is compiled here and indexed while the other finishes, and `beside` runs with both
/// images (current, previous) on the other core while the rules do.
fn compile_and_check<T: Send>(
    current: &SourceSet,
    previous: &SourceSet,
    opts: &Options,
    beside: impl FnOnce(&Image, &Image) -> T + Send,
) -> Result<(Vec<Finding>, Image, Image, T), Error> {
    let on_demand = |s: &SourceSet| {
        let mut s = s.clone();
        s.source_info = SourceInfo::OnDemand;
        s
    };
    let (cur, prev) = (on_demand(current), on_demand(previous));
    let current_first = cur.files.len() <= prev.files.len();
    let (here, there) = if current_first {
        (&cur, &prev)
    } else {
        (&prev, &cur)
    };
    let first = if current_first {
        protoreg_check::First::Current
    } else {
        protoreg_check::First::Previous
    };
    std::thread::scope(|scope| {
        let other = scope.spawn(|| there.compile());
        let rest = || {
            other.join().unwrap_or_else(|_| {
                Err(SchemaError::Input {
                    path: ".".into(),
                    message: "compiling the other side failed".into(),
                })
            })
        };
        let ready = match here.compile() {
            Ok(i) => i,
            Err(e) => {
                // The current side's errors are the ones reported when both fail.
                return Err(match (current_first, rest()) {
                    (false, Err(current_error)) => current_error,
                    _ => e,
                }
                .into());
            }
        };
        let (findings, other, t) =
            protoreg_check::check_overlapped(&ready, first, rest, beside, opts)??;
        Ok(if current_first {
            (findings, ready, other, t)
        } else {
            (findings, other, ready, t)
        })
    })
}

enum Fallback {
    /// Compile everything at once (first run, large change).
    Full,
    Error(Error),
}

impl From<Error> for Fallback {
    fn from(e: Error) -> Self {
        Fallback::Error(e)
    }
}

struct Incremental<'c> {
    cache: &'c Cache,
    opts: &'c Options,
    /// The checker's identity and the options: part of every unit's key.
    base: String,
}

/// One side: each file's closure key (the digest of its text and, recursively, of its
/// imports').
struct SideKeys {
    closure: BTreeMap<String, String>,
}

impl<'c> Incremental<'c> {
    fn new(cache: &'c Cache, opts: &'c Options) -> Self {
        Incremental {
            cache,
            opts,
            base: format!("{FORMAT}\n{}\n{opts:?}", checker_identity()),
        }
    }

    fn run(&self, current: &SourceSet, previous: &SourceSet) -> Result<Report, Error> {
        // Each side's texts hashed once (on two threads), for facts and keys alike.
        let ds = std::thread::scope(|scope| {
            let p = scope.spawn(|| digests(previous));
            let c = digests(current);
            [c, p.join().unwrap_or_else(|_| digests(previous))]
        });
        match self.try_units(current, previous, &ds) {
            Ok(r) => Ok(r),
            Err(Fallback::Full) => self.full_and_store(current, previous, &ds),
            Err(Fallback::Error(e)) => Err(e),
        }
    }

    /// Everything compiled at once; every unit's findings (and every file's facts) stored.
    fn full_and_store(
        &self,
        current: &SourceSet,
        previous: &SourceSet,
        digests: &Digests,
    ) -> Result<Report, Error> {
        // What files declare, and the units, are worked out from the images on the other
        // core while the rules run.
        let bookkeeping = |cur: &Image, prev: &Image| {
            let mut facts = self.load_facts();
            for (image, ds) in [(cur, &digests[0]), (prev, &digests[1])] {
                for f in image.files.iter().filter(|f| !f.is_import) {
                    if let Some(d) = ds.get(f.proto.name()) {
                        facts
                            .entry(d.clone())
                            .or_insert_with(|| Facts::of(&f.proto, &f.extras.option_dependency));
                    }
                }
            }
            // Files the image does not hold as targets (vendored copies of bundled feature
            // files) are parsed for their facts.
            for (set, ds) in [current, previous].into_iter().zip(digests) {
                for (name, f) in &set.files {
                    let d = &ds[name];
                    if !facts.contains_key(d)
                        && let Some(parsed) = parse_facts(f)
                    {
                        facts.insert(d.clone(), parsed);
                    }
                }
            }
            self.store_facts(&facts);
            Units::of(current, previous, digests, &facts)
        };
        let (findings, cur, prev, units) =
            compile_and_check(current, previous, self.opts, bookkeeping)?;
        let compiled = cur.files.len() + prev.files.len();
        std::mem::forget((cur, prev));
        let mut stats = Stats {
            full: true,
            compiled,
            ..Default::default()
        };
        if let Some(units) = units {
            stats.units = units.keys.len();
            if let Some(by_unit) = units.partition.attribute(&findings) {
                self.store_units(&units, &by_unit, 0..units.keys.len());
            }
        }
        Ok(Report { findings, stats })
    }

    /// Units from the cache, the rest compiled together.
    fn try_units(
        &self,
        current: &SourceSet,
        previous: &SourceSet,
        digests: &Digests,
    ) -> Result<Report, Fallback> {
        let mut facts = self.load_facts();
        let mut added = false;
        let total = current.files.len() + previous.files.len();
        for (set, ds) in [current, previous].into_iter().zip(digests) {
            let missing: Vec<(&SourceFile, &String)> = set
                .files
                .iter()
                .map(|(name, f)| (f, &ds[name]))
                .filter(|(_, d)| !facts.contains_key(*d))
                .collect();
            if missing.len() > PARSE_ALONE.max(total / 50) {
                return Err(Fallback::Full);
            }
            for (f, d) in missing {
                // A file that does not parse: the full compile reports it as usual.
                let parsed = parse_facts(f).ok_or(Fallback::Full)?;
                facts.insert(d.clone(), parsed);
                added = true;
            }
        }
        let units = Units::of(current, previous, digests, &facts).ok_or(Fallback::Full)?;
        let mut findings = Vec::new();
        let mut missed: BTreeSet<usize> = BTreeSet::new();
        for (u, key) in units.keys.iter().enumerate() {
            match self.load_unit(key) {
                Some(mut f) => findings.append(&mut f),
                None => {
                    missed.insert(u);
                }
            }
        }
        let missed_files: usize = missed.iter().map(|u| units.files_of(*u)).sum();
        if missed_files * 2 > total {
            return Err(Fallback::Full);
        }
        if added {
            self.store_facts(&facts);
        }
        let mut stats = Stats {
            units: units.keys.len(),
            reused: units.keys.len() - missed.len(),
            ..Default::default()
        };
        if !missed.is_empty() {
            let only = |set: &SourceSet, side: usize| {
                let mut part = set.clone();
                let (targets, imports): (BTreeMap<_, _>, BTreeMap<_, _>) =
                    std::mem::take(&mut part.files)
                        .into_iter()
                        .partition(|(name, _)| {
                            units
                                .partition
                                .unit_of_file(side, name)
                                .is_some_and(|u| missed.contains(&u))
                        });
                part.files = targets;
                part.imports = imports;
                part
            };
            let (cur_part, prev_part) = (only(current, 0), only(previous, 1));
            if cur_part.files.is_empty() || prev_part.files.is_empty() {
                // One side has none of the changed units' files (all deleted or all new):
                // the whole comparison, which is small then, says it.
                return Err(Fallback::Full);
            }
            let mut opts = self.opts.clone();
            // The other units' files are imports here: they are indexed (a type they
            // define is looked up as in a full run) and what is found in them is dropped.
            opts.exclude_imports = false;
            let (mut fresh, cur, prev, ()) =
                compile_and_check(&cur_part, &prev_part, &opts, |_, _| ())?;
            stats.compiled = cur.files.len() + prev.files.len();
            drop((cur, prev));
            let by_unit = units.partition.attribute(&fresh).ok_or(Fallback::Full)?;
            self.store_units(&units, &by_unit, missed.iter().copied());
            fresh.retain(|f| {
                units
                    .partition
                    .unit_of_finding(f)
                    .is_some_and(|u| missed.contains(&u))
            });
            findings.append(&mut fresh);
        }
        protoreg_check::sort_findings(&mut findings);
        Ok(Report { findings, stats })
    }

    fn load_facts(&self) -> HashMap<String, Facts> {
        self.cache
            .get("facts", "index")
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn store_facts(&self, facts: &HashMap<String, Facts>) {
        // Sorted, so that equal contents make equal entries.
        let sorted: BTreeMap<&String, &Facts> = facts.iter().collect();
        if let Ok(body) = serde_json::to_vec(&sorted) {
            let _ = self.cache.put("facts", "index", &body);
        }
    }

    fn unit_key(&self, key: &str) -> String {
        hex::encode(Sha256::digest(format!("{}\n{key}", self.base)))
    }

    fn load_unit(&self, key: &str) -> Option<Vec<Finding>> {
        let body = self.cache.get("findings", &self.unit_key(key))?;
        let stored: Vec<Stored> = serde_json::from_slice(&body).ok()?;
        stored.into_iter().map(Stored::into_finding).collect()
    }

    /// Stores the findings of `which` units (none found: an empty list), then keeps the
    /// cache within its bound.
    fn store_units(
        &self,
        units: &Units,
        by_unit: &HashMap<usize, Vec<&Finding>>,
        which: impl Iterator<Item = usize>,
    ) {
        for u in which {
            let stored: Vec<Stored> = by_unit
                .get(&u)
                .map(|fs| fs.iter().map(|f| Stored::from(f)).collect())
                .unwrap_or_default();
            if let Ok(body) = serde_json::to_vec(&stored) {
                let _ = self
                    .cache
                    .put("findings", &self.unit_key(&units.keys[u]), &body);
            }
        }
        self.cache.evict();
    }
}

/// The running binary's identity (size and modification time): a rebuilt checker never
/// reads what an older one stored.
fn checker_identity() -> String {
    let exe = std::env::current_exe().ok();
    let meta = exe.as_ref().and_then(|e| std::fs::metadata(e).ok());
    let mtime = meta
        .as_ref()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{} {} {}",
        env!("CARGO_PKG_VERSION"),
        meta.map(|m| m.len()).unwrap_or(0),
        mtime
    )
}

fn digest_of(f: &SourceFile) -> String {
    match &f.text {
        Ok(t) => hex::encode(Sha256::digest(t.as_bytes())),
        Err(b) => hex::encode(Sha256::digest(b)),
    }
}

/// A file's facts from its text (`None` when it is not UTF-8 or does not parse).
fn parse_facts(f: &SourceFile) -> Option<Facts> {
    let text = f.text.as_ref().ok()?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let parsed = protoreg_parse::parse(&f.name, text).ok()?;
    Some(Facts::of(&parsed.proto, &parsed.option_dependency))
}

/// Per side (current, previous): file -> digest of its text.
type Digests = [BTreeMap<String, String>; 2];

fn digests(set: &SourceSet) -> BTreeMap<String, String> {
    set.files
        .iter()
        .map(|(n, f)| (n.clone(), digest_of(f)))
        .collect()
}

/// The comparison cut into units, and each unit's key.
struct Units {
    /// Per unit, the key of its files (before the checker identity and options).
    keys: Vec<String>,
    partition: Partition,
    files_per_unit: Vec<usize>,
}

impl Units {
    fn of(
        current: &SourceSet,
        previous: &SourceSet,
        digests: &Digests,
        facts: &HashMap<String, Facts>,
    ) -> Option<Units> {
        let sides = [current, previous];
        let keys: [SideKeys; 2] = [
            SideKeys::of(current, &digests[0], facts)?,
            SideKeys::of(previous, &digests[1], facts)?,
        ];
        let facts_of = |side: usize, name: &str| facts.get(digests[side].get(name)?);
        let mut listed: [Vec<UnitFile>; 2] = [Vec::new(), Vec::new()];
        for (side, set) in sides.iter().enumerate() {
            for name in set.files.keys() {
                let f = facts_of(side, name)?;
                listed[side].push(UnitFile {
                    path: name,
                    package: &f.package,
                    names: f.names.iter().map(String::as_str).collect(),
                });
            }
        }
        let partition = Partition::of([&listed[0], &listed[1]]);
        let mut lines: Vec<Vec<String>> = vec![Vec::new(); partition.len()];
        for (side, set) in sides.iter().enumerate() {
            for (name, f) in &set.files {
                let u = partition.unit_of_file(side, name)?;
                let closure = &keys[side].closure[name];
                lines[u].push(format!("{side} {name} {} {closure}", f.display));
            }
        }
        let files_per_unit = lines.iter().map(Vec::len).collect();
        let keys = lines
            .into_iter()
            .map(|mut l| {
                l.sort();
                hex::encode(Sha256::digest(l.join("\n")))
            })
            .collect();
        Some(Units {
            keys,
            partition,
            files_per_unit,
        })
    }

    fn files_of(&self, unit: usize) -> usize {
        self.files_per_unit[unit]
    }
}

impl SideKeys {
    /// Digests and closure keys (a file's text and, recursively, its imports'); `None` on an
    /// import cycle, which the compile reports.
    fn of(
        set: &SourceSet,
        digest: &BTreeMap<String, String>,
        facts: &HashMap<String, Facts>,
    ) -> Option<SideKeys> {
        let mut closure: BTreeMap<String, String> = BTreeMap::new();
        fn visit(
            name: &str,
            digest: &BTreeMap<String, String>,
            facts: &HashMap<String, Facts>,
            closure: &mut BTreeMap<String, String>,
            stack: &mut Vec<String>,
        ) -> Option<String> {
            if let Some(k) = closure.get(name) {
                return Some(k.clone());
            }
            let Some(d) = digest.get(name) else {
                // Not in the input: a well-known type or a built-in, fixed by the binary.
                return Some(format!("builtin:{name}"));
            };
            if stack.iter().any(|s| s == name) {
                return None;
            }
            stack.push(name.to_string());
            let mut h = Sha256::new();
            h.update(d.as_bytes());
            for i in &facts.get(d)?.imports {
                let k = visit(i, digest, facts, closure, stack)?;
                h.update(b"\n");
                h.update(i.as_bytes());
                h.update(b" ");
                h.update(k.as_bytes());
            }
            stack.pop();
            let k = hex::encode(h.finalize());
            closure.insert(name.to_string(), k.clone());
            Some(k)
        }
        let mut stack = Vec::new();
        for name in set.files.keys() {
            visit(name, digest, facts, &mut closure, &mut stack)?;
        }
        Some(SideKeys { closure })
    }
}
