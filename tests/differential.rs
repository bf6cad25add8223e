//! Randomized differential test against buf 1.75: `tests/support/gen_diff.py` makes a valid
//! module and a random evolution of it from a seed (proto2, proto3 and edition 2023 files;
//! deletions, renames, renumbering, type and label changes, moves, oneof moves, option and
//! feature changes, migrations to editions); both tools check it (`breaking current
//! --against previous --error-format json`, as buf's own cases run) and must agree on the
//! exit status and on every finding (rule, file, line, column), except where the README's
//! "Differences from buf" says protoreg is right (applied below, each by name). Every
//! disagreement leaves its case directory under `target/differential/` and prints how to
//! regenerate it. Seeds are fixed: `PROTOREG_DIFF_CASES` (default 200) cases from seed 1.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "support/buf.rs"]
mod support;
use support::buf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

type Key = (String, Option<String>, u64, u64);

fn findings(stdout: &[u8]) -> BTreeSet<Key> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("JSON finding");
            (
                v["type"].as_str().unwrap_or_default().to_string(),
                v["path"].as_str().map(str::to_string),
                v["start_line"].as_u64().unwrap_or(0),
                v["start_column"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

/// Findings on which buf 1.75 is wrong, by the README's "Differences from buf".
fn documented(k: &Key, facts: &serde_json::Value, ours: bool) -> bool {
    let editions: Vec<&str> = facts["editions_files"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    match k.0.as_str() {
        // buf reads LABEL_REQUIRED, which editions descriptors never carry.
        "MESSAGE_SAME_REQUIRED_FIELDS" => {
            k.1.as_deref()
                .is_some_and(|p| editions.iter().any(|e| p.ends_with(e)))
        }
        // buf skips a package with no element of the kind left on the current side.
        "PACKAGE_ENUM_NO_DELETE" | "PACKAGE_MESSAGE_NO_DELETE" if ours => {
            let kind = if k.0 == "PACKAGE_ENUM_NO_DELETE" {
                "enums"
            } else {
                "messages"
            };
            facts["current_packages"]
                .as_object()
                .is_some_and(|p| p.values().any(|v| v[kind] == 0))
        }
        _ => false,
    }
}

/// How a case ended when both tools agreed.
enum Agreed {
    Refused,
    Clean,
    /// Findings agreed on, and how many differed only as documented.
    Findings(usize, usize),
}

fn run_case(seed: u64, dir: &Path, buf: &Path) -> Result<Agreed, String> {
    let _ = std::fs::remove_dir_all(dir);
    let o = Command::new("python3")
        .arg(root().join("tests/support/gen_diff.py"))
        .arg(seed.to_string())
        .arg(dir)
        .output()
        .expect("python3 runs the generator");
    assert!(
        o.status.success(),
        "generator failed for seed {seed}: {}",
        text(&o)
    );
    let check = |cmd: &mut Command| -> Output {
        cmd.current_dir(dir)
            .args([
                "breaking",
                "current",
                "--against",
                "previous",
                "--error-format",
                "json",
            ])
            .output()
            .expect("checker runs")
    };
    let theirs = check(&mut Command::new(buf));
    let ours = check(&mut Command::new(env!("CARGO_BIN_EXE_protoreg")));
    let (tc, oc) = (theirs.status.code(), ours.status.code());
    // buf reports a module it cannot compile as a `COMPILE` finding (exit 100); protoreg
    // as a located diagnostic with exit 1.
    let buf_refused = String::from_utf8_lossy(&theirs.stdout).contains("\"type\":\"COMPILE\"");
    let compile_error =
        |c: Option<i32>| buf_refused && c == tc || !matches!(c, Some(0) | Some(100));
    if compile_error(tc) || compile_error(oc) {
        if compile_error(tc) && compile_error(oc) {
            return Ok(Agreed::Refused);
        }
        return Err(format!(
            "exit status buf {tc:?}, protoreg {oc:?}\nbuf: {}\nprotoreg: {}",
            text(&theirs),
            text(&ours)
        ));
    }
    let facts: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("FACTS.json")).expect("FACTS.json"))
            .expect("facts JSON");
    let (a, b) = (findings(&theirs.stdout), findings(&ours.stdout));
    let buf_only: Vec<&Key> = a
        .difference(&b)
        .filter(|k| !documented(k, &facts, false))
        .collect();
    let ours_only: Vec<&Key> = b
        .difference(&a)
        .filter(|k| !documented(k, &facts, true))
        .collect();
    // Each tool's exit status must match its own findings (100 with findings, 0 without).
    let has_findings = |code: Option<i32>| code == Some(100);
    let consistent = has_findings(tc) != a.is_empty() && has_findings(oc) != b.is_empty();
    if buf_only.is_empty() && ours_only.is_empty() && consistent {
        let documented = a.symmetric_difference(&b).count();
        return Ok(if a.is_empty() && b.is_empty() {
            Agreed::Clean
        } else {
            Agreed::Findings(a.len().max(b.len()), documented)
        });
    }
    Err(format!(
        "exit buf {tc:?} protoreg {oc:?}\nbuf only: {buf_only:?}\nprotoreg only: {ours_only:?}"
    ))
}

#[test]
fn random_evolutions_agree_with_buf() {
    let buf = buf();
    let cases: u64 = std::env::var("PROTOREG_DIFF_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let base = root().join("target/differential");
    let mut failures = Vec::new();
    let (mut refused, mut clean, mut with_findings, mut total_findings) = (0, 0, 0, 0);
    let mut documented = 0;
    for seed in 1..=cases {
        let dir = base.join(format!("case-{seed}"));
        match run_case(seed, &dir, &buf) {
            Ok(agreed) => {
                match agreed {
                    Agreed::Refused => refused += 1,
                    Agreed::Clean => clean += 1,
                    Agreed::Findings(n, d) => {
                        with_findings += 1;
                        total_findings += n;
                        documented += d;
                    }
                }
                let _ = std::fs::remove_dir_all(&dir);
            }
            Err(why) => failures.push(format!(
                "case {} (regenerate: python3 tests/support/gen_diff.py {seed} DIR)\n{why}",
                dir.display()
            )),
        }
    }
    println!(
        "{cases} cases: {with_findings} with findings ({total_findings} in all), {clean} clean, \
         {refused} refused by both, {documented} findings differing as documented, \
         {} disagreements",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {cases} cases disagree with buf:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    // The generator must exercise the checker, not the compiler's error paths.
    assert!(
        with_findings * 2 >= cases,
        "too few cases with findings: {with_findings}"
    );
    assert!(refused * 10 <= cases, "too many modules refused: {refused}");
}
