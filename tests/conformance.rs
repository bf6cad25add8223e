//! Runs buf's own breaking-change cases (`../shared/conformance/buf-breaking`, with buf
//! 1.75's output) through the real `protoreg` binary with the shared scorer, and fails when
//! any case outside `tests/conformance-known-gaps.txt` fails. Fails loudly when the shared
//! suite is missing: it is never skipped. Also runs protoreg's own cases
//! (`tests/conformance-protoreg`, where buf 1.75 is wrong), which must all pass strictly.

use std::path::PathBuf;
use std::process::Command;

fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance")
}

#[test]
fn buf_breaking_cases_pass() {
    let dir = shared();
    let suite = dir.join("buf-breaking");
    assert!(
        suite.is_dir() && dir.join("score.py").is_file(),
        "the conformance suite is missing: expected {} (../shared beside the project)",
        suite.display()
    );
    let out = Command::new("python3")
        .arg(dir.join("score.py"))
        .arg("--bin")
        .arg(env!("CARGO_BIN_EXE_protoreg"))
        .arg(&suite)
        .output()
        .expect("python3 runs the scorer");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    let known: Vec<String> = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance-known-gaps.txt"),
    )
    .expect("known-gaps file")
    .lines()
    .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    .map(|l| l.split_whitespace().next().unwrap_or_default().to_string())
    .collect();
    let failing: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("FAIL "))
        .map(|l| l.split(':').next().unwrap_or_default())
        .collect();
    let unexpected: Vec<&&str> = failing
        .iter()
        .filter(|c| !known.iter().any(|k| k == *c))
        .collect();
    assert!(
        unexpected.is_empty(),
        "cases failing that are not known gaps: {unexpected:?}\n{stdout}"
    );
    let last = stdout.lines().last().unwrap_or_default();
    let passed: usize = last
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("scorer summary line");
    let total = passed + failing.len();
    assert!(
        total >= 54,
        "expected at least 54 cases, scorer saw {total}"
    );
    assert!(passed * 100 >= total * 98, "below the 98% bar: {last}");
}

#[test]
fn protoreg_own_cases_pass_strictly() {
    let dir = shared();
    assert!(
        dir.join("score.py").is_file(),
        "the conformance scorer is missing: expected {} (../shared beside the project)",
        dir.join("score.py").display()
    );
    let suite = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance-protoreg");
    let out = Command::new("python3")
        .arg(dir.join("score.py"))
        .arg("--bin")
        .arg(env!("CARGO_BIN_EXE_protoreg"))
        .arg(&suite)
        .output()
        .expect("python3 runs the scorer");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(out.status.success(), "protoreg's own cases fail:\n{stdout}");
    assert!(
        stdout.contains("strict (with columns): 5/5"),
        "every case must match strictly:\n{stdout}"
    );
}
