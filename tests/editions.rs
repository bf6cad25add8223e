//! Editions 2023/2024 against buf 1.75, the oracle: every file of
//! `proto-examples/editions` and a set of edge cases compile to the same descriptors and
//! source info as `buf build --as-file-descriptor-set` (compared by
//! `tests/support/cmp_descriptors.py`), and files buf refuses are refused with a located
//! diagnostic. buf (npm) and Python's protobuf are installed on first use when missing; the
//! tests fail, never skip, when that is impossible.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "support/buf.rs"]
mod support;
use std::sync::OnceLock;
use support::buf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn protoreg() -> Command {
    Command::new(env!("CARGO_BIN_EXE_protoreg"))
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("command runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Python with the `protobuf` package (for the comparison script).
fn python() -> Command {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        let ok = |o: &Output| o.status.success();
        if !ok(&run(
            Command::new("python3").args(["-c", "import google.protobuf"])
        )) {
            let o = run(Command::new("python3").args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "protobuf>=6",
            ]));
            assert!(
                ok(&o),
                "python3 -m pip install protobuf failed: {}",
                text(&o)
            );
        }
    });
    Command::new("python3")
}

/// Builds `dir` with buf and protoreg and compares the named files (all of the module's
/// `.proto` files when `files` is empty).
fn assert_same_as_buf(dir: &Path, files: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let (ours, theirs) = (tmp.path().join("ours.binpb"), tmp.path().join("buf.binpb"));
    let o = run(Command::new(buf())
        .current_dir(dir)
        .args(["build", "--as-file-descriptor-set", "-o"])
        .arg(&theirs));
    assert!(
        o.status.success(),
        "buf build {}: {}",
        dir.display(),
        text(&o)
    );
    let o = run(protoreg().arg("build").arg(dir).arg("-o").arg(&ours));
    assert!(
        o.status.success(),
        "protoreg build {}: {}",
        dir.display(),
        text(&o)
    );
    let mut names: Vec<String> = files.iter().map(|s| s.to_string()).collect();
    if names.is_empty() {
        names = proto_files(dir);
    }
    let o = run(python()
        .arg(root().join("tests/support/cmp_descriptors.py"))
        .arg(&ours)
        .arg(&theirs)
        .args(&names));
    assert!(
        o.status.success(),
        "{}: differs from buf:\n{}",
        dir.display(),
        text(&o)
    );
}

fn proto_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "proto") {
                out.push(
                    p.strip_prefix(dir)
                        .unwrap()
                        .to_str()
                        .unwrap()
                        .replace('\\', "/"),
                );
            }
        }
    }
    out.sort();
    out
}

fn module(files: &[(&str, &str)]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("buf.yaml"), "version: v2\n").unwrap();
    for (name, body) in files {
        let p = tmp.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    tmp
}

#[test]
fn editions_examples_match_buf() {
    let dir = root().join("proto-examples/editions");
    assert_same_as_buf(&dir, &[]);
}

#[test]
fn comments_tabs_and_bom_match_buf() {
    let comments = r#"// detached 1

// detached 2a
// detached 2b

/* block detached */

// syntax leading
edition = "2023"; // syntax trailing

// pkg leading
package c; /* pkg trailing block */

message A { // A trailing on brace
  // f leading
  int32 f = 1; // f trailing
  // g leading
  int32 g = 2; /* g trailing block */
  int32 h = 3; /* h trailing then */ // line

  int32 i = 4; // i trailing
  // i trailing continued?

  int32 j = 5;
  // floating after j

  /* lead k
   * second line
   */
  int32 k = 6;
  int32 l = 7; /* same line */ int32 m = 8;
  int32 n = 9;
  // before close
}
// after A

message B {}  // B trailing
"#;
    let tabs = "edition = \"2024\";\n\npackage t;\n\nexport message A {\n\tint32\tx = 1; /* tr */\n\tlocal enum E { E_ZERO = 0; }\n}\n";
    let bom = "\u{feff}edition = \"2023\";\npackage b;\nmessage M { string s = 1; }\n";
    let m = module(&[("c.proto", comments), ("t.proto", tabs), ("b.proto", bom)]);
    assert_same_as_buf(m.path(), &[]);
}

#[test]
fn proto3_file_with_a_byte_order_mark_compiles() {
    let m = module(&[(
        "a.proto",
        "\u{feff}syntax = \"proto3\";\npackage a;\nmessage M { string s = 1; }\n",
    )]);
    assert_same_as_buf(m.path(), &["a.proto"]);
}

/// Files buf refuses: protoreg refuses them too, naming the file, line and column.
#[test]
fn invalid_editions_files_are_refused_like_buf() {
    let cases: &[(&str, &str)] = &[
        (
            "edition = \"2023\";\nmessage M {\n  optional int32 a = 1;\n}\n",
            "a.proto:3:3:",
        ),
        (
            "edition = \"2023\";\nmessage M {\n  required int32 a = 1;\n}\n",
            "a.proto:3:3:",
        ),
        (
            "edition = \"2023\";\nmessage M {\n  group G = 1 { int32 x = 1; }\n}\n",
            "a.proto:3:3:",
        ),
        (
            "edition = \"2023\";\nmessage M {\n  reserved \"a\";\n}\n",
            "a.proto:3:12:",
        ),
        ("edition = \"2023\";\nexport message M {}\n", "a.proto:2:1:"),
        (
            "edition = \"2023\";\nimport option \"google/protobuf/descriptor.proto\";\n",
            "a.proto:2:8:",
        ),
        ("edition = \"2099\";\n", "a.proto:1:11:"),
        (
            "edition = \"2023\";\nmessage M {\n  int32 a = 1;\n  int32 b = 1;\n}\n",
            "a.proto:4:",
        ),
        (
            "edition = \"2023\";\nmessage M {\n  Missing a = 1;\n}\n",
            "a.proto:3:",
        ),
        (
            "edition = \"2023\";\nmessage M {\n  int32 a = 0;\n}\n",
            "a.proto:3:13:",
        ),
    ];
    for (body, at) in cases {
        let m = module(&[("a.proto", body)]);
        let o = run(Command::new(buf())
            .current_dir(m.path())
            .args(["build", "-o", "/dev/null"]));
        assert!(!o.status.success(), "buf accepts {body:?}");
        let o = run(protoreg().arg("build").arg(m.path()));
        assert_eq!(
            o.status.code(),
            Some(1),
            "protoreg on {body:?}: {}",
            text(&o)
        );
        assert!(
            text(&o).contains(at),
            "protoreg on {body:?} should point at {at}: {}",
            text(&o)
        );
    }
}
