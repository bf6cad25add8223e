//! `check_changed` (only the units that differ are checked, as the registry checks a push)
//! finds exactly what the whole check finds: on buf's own breaking-change cases
//! (`../shared/conformance`), and on changes whose findings lie in a package that did not
//! change itself but imports one that did.

use std::path::{Path, PathBuf};

mod common;

use common::all_categories;
use protoreg_check::{Options, check, check_changed};
use protoreg_schema::{Image, SourceSet};

fn options(exclude_imports: bool) -> Options {
    Options {
        exclude_imports,
        ..all_categories()
    }
}

fn compile_dir(dir: &Path) -> Image {
    SourceSet::from_dir(dir, "")
        .and_then(|s| s.compile())
        .unwrap_or_else(|e| panic!("{} compiles: {e}", dir.display()))
}

fn compile(files: &[(&str, &str)]) -> Image {
    SourceSet::from_memory(
        files
            .iter()
            .map(|(p, t)| (p.to_string(), t.as_bytes().to_vec())),
        "",
    )
    .and_then(|s| s.compile())
    .expect("compiles")
}

/// Both directions, with and without imports: the same findings. Returns how many of the
/// checks were narrowed to fewer units than the whole.
fn assert_same(current: &Image, previous: &Image, what: &str) -> usize {
    let mut narrowed = 0;
    for (cur, prev) in [(current, previous), (previous, current)] {
        for opts in [options(false), options(true)] {
            let whole = check(cur, prev, &opts).expect("check runs");
            let (changed, scope) = check_changed(cur, prev, &opts).expect("check runs");
            assert_eq!(changed, whole, "{what}: the changed units' findings differ");
            if scope.checked < scope.units {
                narrowed += 1;
            }
        }
    }
    narrowed
}

#[test]
fn buf_cases_find_the_same() {
    let root =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/buf-breaking");
    let cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("buf's cases are needed at {}: {e}", root.display()))
        .map(|e| e.expect("a case").path())
        .filter(|p| p.join("current").is_dir())
        .collect();
    assert!(
        cases.len() >= 50,
        "only {} cases under {}",
        cases.len(),
        root.display()
    );
    let mut narrowed = 0;
    for case in &cases {
        let current = compile_dir(&case.join("current"));
        let previous = compile_dir(&case.join("previous"));
        narrowed += assert_same(&current, &previous, &case.display().to_string());
    }
    // Several cases change one package of a few: those were narrowed.
    assert!(narrowed > 10, "only {narrowed} checks were narrowed");
}

/// proto2 fields of an enum type read the enum's first value when unset: reordering the
/// values of `a.Status` changes the default of `b.Order.status`, in a file that did not
/// change. A unit is changed when anything it imports changed.
#[test]
fn an_unchanged_package_importing_a_changed_one_is_checked() {
    let a_old = "syntax = \"proto2\";\npackage a;\nenum Status {\n  STATUS_NEW = 0;\n  STATUS_DONE = 1;\n}\n";
    let a_new = "syntax = \"proto2\";\npackage a;\nenum Status {\n  STATUS_DONE = 1;\n  STATUS_NEW = 0;\n}\n";
    let b = "syntax = \"proto2\";\npackage b;\nimport \"a.proto\";\nmessage Order {\n  optional a.Status status = 1;\n}\n";
    let c = "syntax = \"proto2\";\npackage c;\nmessage Note {\n  optional string text = 1;\n}\n";
    let previous = compile(&[("a.proto", a_old), ("b.proto", b), ("c.proto", c)]);
    let current = compile(&[("a.proto", a_new), ("b.proto", b), ("c.proto", c)]);
    let opts = options(true);
    let (found, scope) = check_changed(&current, &previous, &opts).expect("check runs");
    assert!(
        found
            .iter()
            .any(|f| f.rule == "FIELD_SAME_DEFAULT" && f.file_name.as_deref() == Some("b.proto")),
        "the default that changed in b.proto is found: {found:?}"
    );
    // Packages a and b were checked, c (which imports nothing that changed) was not.
    assert_eq!((scope.units, scope.checked), (3, 2));
    assert_eq!(assert_same(&current, &previous, "enum reordered"), 4);
}

/// A changed package's rules look up what it imports from an unchanged one: the default of
/// `b.Order.status` is read from `a.Status`, whose package did not change.
#[test]
fn what_a_changed_package_imports_is_indexed() {
    let a = "syntax = \"proto2\";\npackage a;\nenum Status {\n  STATUS_NEW = 0;\n  STATUS_DONE = 1;\n}\n";
    let b_old = "syntax = \"proto2\";\npackage b;\nimport \"a.proto\";\nmessage Order {\n  optional a.Status status = 1 [default = STATUS_DONE];\n}\n";
    let b_new = "syntax = \"proto2\";\npackage b;\nimport \"a.proto\";\nmessage Order {\n  optional a.Status status = 1;\n}\n";
    let previous = compile(&[("a.proto", a), ("b.proto", b_old)]);
    let current = compile(&[("a.proto", a), ("b.proto", b_new)]);
    let (found, scope) = check_changed(&current, &previous, &options(true)).expect("check runs");
    assert!(
        found.iter().any(|f| f.rule == "FIELD_SAME_DEFAULT"),
        "the default that changed is found: {found:?}"
    );
    assert_eq!((scope.units, scope.checked), (2, 1));
    assert_eq!(assert_same(&current, &previous, "default dropped"), 4);
    // An import only one side has: `a.proto` is indexed there alone, and what that seems
    // to say about package a (a deleted file, one way round) is not reported.
    let b_alone =
        "syntax = \"proto2\";\npackage b;\nmessage Order {\n  optional int32 status = 1;\n}\n";
    let previous = compile(&[("a.proto", a), ("b.proto", b_alone)]);
    assert_eq!(assert_same(&current, &previous, "import added"), 4);
}

/// A file that moves to another package joins both packages into one unit; a deleted
/// package and an added one are units of their own.
#[test]
fn moved_deleted_and_added_files_find_the_same() {
    let common = "syntax = \"proto3\";\npackage common;\nmessage Money {\n  int64 units = 1;\n}\n";
    let orders = "syntax = \"proto3\";\npackage orders;\nimport \"common.proto\";\nmessage Order {\n  common.Money total = 1;\n}\n";
    let moved = "syntax = \"proto3\";\npackage orders.v2;\nimport \"common.proto\";\nmessage Order {\n  common.Money total = 1;\n}\n";
    let gone = "syntax = \"proto3\";\npackage gone;\nmessage Old {\n  string a = 1;\n}\n";
    let added = "syntax = \"proto3\";\npackage added;\nmessage New {\n  string a = 1;\n}\n";
    let previous = compile(&[
        ("common.proto", common),
        ("orders.proto", orders),
        ("gone.proto", gone),
    ]);
    let current = compile(&[
        ("common.proto", common),
        ("orders.proto", moved),
        ("added.proto", added),
    ]);
    let found = check(&current, &previous, &options(true)).expect("check runs");
    assert!(
        found.iter().any(|f| f.rule == "FILE_SAME_PACKAGE"),
        "{found:?}"
    );
    assert!(
        found.iter().any(|f| f.rule == "FILE_NO_DELETE"),
        "{found:?}"
    );
    assert_eq!(assert_same(&current, &previous, "moved, deleted, added"), 4);
}
