//! A comparison cut into *units*, and a check of only the units that changed.
//!
//! Every rule pairs elements by file path or by full name, and a full name begins with its
//! package, so the findings about a package depend only on that package's files and what
//! they import. A unit is the files of one package on both sides, with packages joined when
//! a path is on both sides under different packages (a file that moved) or when a name is
//! ambiguous (package `a` declares `b` while package `a.b` exists). A unit whose files are
//! identical on both sides, imports included, has no findings: [`check_changed`] indexes
//! and checks only the others (the CLI's cache keys its findings by unit too).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use prost_types::FileDescriptorProto;
use protoreg_schema::{Image, ImageFile};

use crate::{CheckError, Finding, Options, RULES, index, run, selected_rules};

/// What a file contributes to the partition.
pub struct UnitFile<'a> {
    pub path: &'a str,
    pub package: &'a str,
    /// Names of its top-level messages, enums, services and extensions.
    pub names: Vec<&'a str>,
}

impl<'a> UnitFile<'a> {
    /// A descriptor's path, package and top-level names.
    pub fn of(proto: &'a FileDescriptorProto) -> UnitFile<'a> {
        UnitFile {
            path: proto.name(),
            package: proto.package(),
            names: proto
                .message_type
                .iter()
                .map(|m| m.name())
                .chain(proto.enum_type.iter().map(|e| e.name()))
                .chain(proto.service.iter().map(|s| s.name()))
                .chain(proto.extension.iter().map(|x| x.name()))
                .collect(),
        }
    }
}

/// The units of a comparison: which unit each file (per side: current, previous) and each
/// package belongs to. Units are numbered by their smallest package name, so the numbering
/// does not depend on the order files come in.
#[derive(Debug)]
pub struct Partition {
    file_unit: [HashMap<String, usize>; 2],
    package_unit: HashMap<String, usize>,
    units: usize,
}

impl Partition {
    /// The partition of the files of both sides (current, previous).
    pub fn of(sides: [&[UnitFile]; 2]) -> Partition {
        let mut ids: HashMap<&str, usize> = HashMap::new();
        let mut parent: Vec<usize> = Vec::new();
        fn find(parent: &mut [usize], mut x: usize) -> usize {
            while parent[x] != x {
                parent[x] = parent[parent[x]];
                x = parent[x];
            }
            x
        }
        fn union(parent: &mut [usize], a: usize, b: usize) {
            let (ra, rb) = (find(parent, a), find(parent, b));
            parent[ra] = rb;
        }
        let mut names: HashMap<&str, HashSet<&str>> = HashMap::new();
        for f in sides.iter().flat_map(|s| s.iter()) {
            ids.entry(f.package).or_insert_with(|| {
                parent.push(parent.len());
                parent.len() - 1
            });
            names
                .entry(f.package)
                .or_default()
                .extend(f.names.iter().copied());
        }
        // A path on both sides pairs its files, whatever their packages.
        let previous: HashMap<&str, &str> = sides[1].iter().map(|f| (f.path, f.package)).collect();
        for f in sides[0] {
            if let Some(p) = previous.get(f.path) {
                union(&mut parent, ids[f.package], ids[p]);
            }
        }
        // `a.b.C` is ambiguous when package `a` declares `b`.
        for p in names.keys() {
            for (i, _) in p.match_indices('.') {
                let (q, rest) = (&p[..i], &p[i + 1..]);
                let seg = rest.split('.').next().unwrap_or(rest);
                if names.get(q).is_some_and(|n| n.contains(seg)) {
                    union(&mut parent, ids[p], ids[q]);
                }
            }
        }
        // Each root's smallest package names its unit; units are numbered in that order.
        let mut smallest: BTreeMap<usize, &str> = BTreeMap::new();
        for (p, id) in &ids {
            let r = find(&mut parent, *id);
            let e = smallest.entry(r).or_insert(p);
            if p < e {
                *e = p;
            }
        }
        let order: BTreeMap<&str, usize> = smallest
            .values()
            .copied()
            .collect::<BTreeSet<&str>>()
            .into_iter()
            .enumerate()
            .map(|(i, p)| (p, i))
            .collect();
        let package_unit: HashMap<String, usize> = ids
            .iter()
            .map(|(p, id)| {
                let r = find(&mut parent, *id);
                (p.to_string(), order[smallest[&r]])
            })
            .collect();
        let file_unit = [0, 1].map(|side| {
            sides[side]
                .iter()
                .map(|f| (f.path.to_string(), package_unit[f.package]))
                .collect()
        });
        Partition {
            file_unit,
            package_unit,
            units: order.len(),
        }
    }

    /// How many units there are.
    pub fn len(&self) -> usize {
        self.units
    }

    /// Whether there are none (no files).
    pub fn is_empty(&self) -> bool {
        self.units == 0
    }

    /// The unit of a file of one side (0 = current, 1 = previous).
    pub fn unit_of_file(&self, side: usize, name: &str) -> Option<usize> {
        self.file_unit[side].get(name).copied()
    }

    /// The unit a finding belongs to: its current file's, else its previous file's, else
    /// its package's.
    pub fn unit_of_finding(&self, f: &Finding) -> Option<usize> {
        f.file_name
            .as_deref()
            .and_then(|n| self.unit_of_file(0, n))
            .or_else(|| {
                f.against_file_name
                    .as_deref()
                    .and_then(|n| self.unit_of_file(1, n))
            })
            .or_else(|| {
                let (c, p) = &f.packages;
                c.as_ref()
                    .or(p.as_ref())
                    .and_then(|p| self.package_unit.get(p).copied())
            })
    }

    /// Findings by unit; `None` when one belongs to none.
    pub fn attribute<'f>(
        &self,
        findings: &'f [Finding],
    ) -> Option<HashMap<usize, Vec<&'f Finding>>> {
        let mut out: HashMap<usize, Vec<&Finding>> = HashMap::new();
        for f in findings {
            match self.unit_of_finding(f) {
                Some(u) => out.entry(u).or_default().push(f),
                // In an import outside the input (a well-known type): not any unit's.
                None if is_import_finding(f) => {}
                None => return None,
            }
        }
        Some(out)
    }
}

/// A finding about a file neither side has as a target (only possible for the bundled
/// well-known types, which are the same on both sides, so this is defensive).
fn is_import_finding(f: &Finding) -> bool {
    f.file_name
        .as_deref()
        .or(f.against_file_name.as_deref())
        .is_some_and(|n| n.starts_with("google/protobuf/"))
}

/// How much of a comparison [`check_changed`] checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scope {
    /// Units of the comparison (0 when it was checked whole without cutting it).
    pub units: usize,
    /// Units that changed, and were checked.
    pub checked: usize,
}

/// [`crate::check`] of only the units that differ between the two images: the same
/// findings, for the cost of what changed. Checked whole when protoreg's own rules are
/// selected (they compare option values across the image).
pub fn check_changed(
    current: &Image,
    previous: &Image,
    opts: &Options,
) -> Result<(Vec<Finding>, Scope), CheckError> {
    let selected = selected_rules(&opts.config)?;
    let whole = || crate::check(current, previous, opts).map(|f| (f, Scope::default()));
    if RULES.iter().any(|r| !r.is_buf() && selected.contains(r.id)) {
        return whole();
    }
    // The files the checker indexes, per side.
    let indexed = |f: &&ImageFile| !(opts.exclude_imports && f.is_import);
    let sides = [current, previous];
    let listed: [Vec<UnitFile>; 2] = sides.map(|image| {
        image
            .files
            .iter()
            .filter(indexed)
            .map(|f| UnitFile::of(&f.proto))
            .collect()
    });
    let partition = Partition::of([&listed[0], &listed[1]]);
    let by_name: [HashMap<&str, &ImageFile>; 2] =
        sides.map(|image| image.files.iter().map(|f| (f.proto.name(), f)).collect());
    let changed = changed_files(sides, &by_name);
    let changed_units: BTreeSet<usize> = (0..2)
        .flat_map(|side| {
            let partition = &partition;
            changed[side]
                .iter()
                .filter_map(move |name| partition.unit_of_file(side, name))
        })
        .collect();
    let scope = Scope {
        units: partition.len(),
        checked: changed_units.len(),
    };
    if changed_units.is_empty() {
        return Ok((Vec::new(), scope));
    }
    if changed_units.len() == partition.len() {
        return whole().map(|(f, _)| (f, scope));
    }
    // Each side: the changed units' files and what they import (for lookups of imported
    // types), indexed as the whole check would index them.
    let keep: [HashSet<&str>; 2] = [0, 1].map(|side| {
        let roots = sides[side].files.iter().filter(indexed).filter(|f| {
            partition
                .unit_of_file(side, f.proto.name())
                .is_some_and(|u| changed_units.contains(&u))
        });
        closure(&by_name[side], roots)
    });
    let cur = index::Side::keeping(current, |f| indexed(&f) && keep[0].contains(f.proto.name()));
    let prev = index::Side::keeping(previous, |f| {
        indexed(&f) && keep[1].contains(f.proto.name())
    });
    let found = run(current, previous, cur, prev, &selected, opts)?;
    // What is left of unchanged units (files there only to be imported) is not theirs; a
    // finding that belongs to no unit means the cut does not hold: check the whole.
    let unit = |f: &Finding| partition.unit_of_finding(f);
    if found.iter().any(|f| unit(f).is_none()) {
        return whole().map(|(f, _)| (f, scope));
    }
    let findings = found
        .into_iter()
        .filter(|f| unit(f).is_some_and(|u| changed_units.contains(&u)))
        .collect();
    Ok((findings, scope))
}

/// Per side (current, previous): the files whose descriptor differs from the same path's
/// on the other side (or that the other side lacks), or that import such a file, directly
/// or not. Each path on both sides is compared once, on two threads.
fn changed_files<'a>(
    sides: [&'a Image; 2],
    by_name: &[HashMap<&'a str, &'a ImageFile>; 2],
) -> [Vec<&'a str>; 2] {
    let common: Vec<(&ImageFile, &ImageFile)> = sides[0]
        .files
        .iter()
        .filter_map(|f| Some((f, *by_name[1].get(f.proto.name())?)))
        .collect();
    let compare = |pairs: &[(&'a ImageFile, &'a ImageFile)]| -> Vec<&'a str> {
        pairs
            .iter()
            .filter(|(a, b)| same_file(a, b))
            .map(|(a, _)| a.proto.name())
            .collect()
    };
    let half = common.len() / 2;
    let same: HashSet<&str> = std::thread::scope(|scope| {
        let other = scope.spawn(|| compare(&common[half..]));
        let mut same = compare(&common[..half]);
        same.extend(
            other
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p)),
        );
        same.into_iter().collect()
    });
    [0, 1].map(|side| {
        let mut memo: HashMap<&str, bool> = HashMap::new();
        sides[side]
            .files
            .iter()
            .map(|f| f.proto.name())
            .filter(|name| changed(name, &by_name[side], &same, &mut memo))
            .collect()
    })
}

/// Whether a file differs from the other side's, or imports one that does.
fn changed<'a>(
    name: &'a str,
    by_name: &HashMap<&'a str, &'a ImageFile>,
    same: &HashSet<&str>,
    memo: &mut HashMap<&'a str, bool>,
) -> bool {
    if let Some(c) = memo.get(name) {
        return *c;
    }
    // A cycle (never in a linked image) counts as unchanged while it is walked.
    memo.insert(name, false);
    let Some(f) = by_name.get(name) else {
        return false;
    };
    let c = !same.contains(name) || imports(f).any(|i| changed(i, by_name, same, memo));
    memo.insert(name, c);
    c
}

/// The files a file imports (options' imports of editions files included).
fn imports(f: &ImageFile) -> impl Iterator<Item = &str> {
    f.proto
        .dependency
        .iter()
        .chain(&f.extras.option_dependency)
        .map(String::as_str)
}

/// `roots` and every file they import, directly or not, by name.
fn closure<'a>(
    by_name: &HashMap<&'a str, &'a ImageFile>,
    roots: impl Iterator<Item = &'a ImageFile>,
) -> HashSet<&'a str> {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut stack: Vec<&ImageFile> = roots.collect();
    while let Some(f) = stack.pop() {
        if seen.insert(f.proto.name()) {
            stack.extend(imports(f).filter_map(|i| by_name.get(i).copied()));
        }
    }
    seen
}

/// Whether two files are the same for the checker: descriptor, source info, how they are
/// named and whether they are imports.
fn same_file(a: &ImageFile, b: &ImageFile) -> bool {
    if a.is_import != b.is_import
        || a.display != b.display
        || a.edition != b.edition
        || a.extras != b.extras
        || !same_descriptor(&a.proto, &b.proto)
    {
        return false;
    }
    // Files rebuilt from the same text have the same locations.
    if let (Some(x), Some(y)) = (&a.deferred, &b.deferred)
        && x.text() == y.text()
        && a.proto.source_code_info == b.proto.source_code_info
    {
        return true;
    }
    a.source_code_info() == b.source_code_info()
}

/// Descriptors equal but for their source info (which [`same_file`] compares as the file
/// has it: the image may keep it beside the descriptor).
fn same_descriptor(a: &FileDescriptorProto, b: &FileDescriptorProto) -> bool {
    // Every field named, so that one added to prost-types is not silently left out.
    let FileDescriptorProto {
        name,
        package,
        dependency,
        public_dependency,
        weak_dependency,
        message_type,
        enum_type,
        service,
        extension,
        options,
        source_code_info: _,
        syntax,
    } = a;
    *name == b.name
        && *package == b.package
        && *dependency == b.dependency
        && *public_dependency == b.public_dependency
        && *weak_dependency == b.weak_dependency
        && *syntax == b.syntax
        && *options == b.options
        && *message_type == b.message_type
        && *enum_type == b.enum_type
        && *service == b.service
        && *extension == b.extension
}
