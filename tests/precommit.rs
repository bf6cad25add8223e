//! The pre-commit hooks as their users install them: a scratch git repository names this
//! repository (at its HEAD commit) as a hook repository in `.pre-commit-config.yaml`, runs
//! `pre-commit install`, and commits. The `language: rust` hook makes the real `pre-commit`
//! (PyPI) build protoreg from this repository itself (`cargo install --path .`). A breaking
//! edit must fail the commit with the findings; a safe edit must pass.
//!
//! The hook repository is this checkout's HEAD commit, so uncommitted changes to the hooks
//! are not what runs (CI tests a clean clone). The hook's build goes to
//! `target/precommit/` and is reused by later runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
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

fn git(dir: &Path, args: &[&str]) -> Output {
    run(Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(dir))
}

/// The pre-commit framework, installed from PyPI when missing (fails, never skips).
fn ensure_pre_commit() {
    let present = Command::new("python3")
        .args(["-m", "pre_commit", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        let o =
            run(Command::new("python3").args(["-m", "pip", "install", "--quiet", "pre-commit"]));
        assert!(o.status.success(), "installing pre-commit: {}", text(&o));
    }
}

const V1: &str = r#"syntax = "proto3";
package shop.v1;

message Item {
  string id = 1;
  string name = 2;
}
"#;

#[test]
fn hooks_build_from_the_repository_and_guard_commits() {
    ensure_pre_commit();
    let head = git(&root(), &["rev-parse", "HEAD"]);
    assert!(head.status.success(), "{}", text(&head));
    let rev = String::from_utf8_lossy(&head.stdout).trim().to_string();

    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("service");
    std::fs::create_dir_all(&repo).unwrap();
    assert!(git(&repo, &["init", "-q", "-b", "main"]).status.success());
    std::fs::write(repo.join("shop.proto"), V1).unwrap();
    std::fs::write(
        repo.join(".pre-commit-config.yaml"),
        format!(
            "repos:\n  - repo: {}\n    rev: {rev}\n    hooks:\n      - id: protoreg-breaking\n",
            root().display()
        ),
    )
    .unwrap();
    assert!(git(&repo, &["add", "."]).status.success());
    let o = git(&repo, &["commit", "-q", "-m", "v1"]);
    assert!(o.status.success(), "{}", text(&o));

    let target = root().join("target/precommit");
    let pre_commit = |args: &[&str]| -> Output {
        run(Command::new("python3")
            .args(["-m", "pre_commit"])
            .args(args)
            .current_dir(&repo)
            .env("PRE_COMMIT_HOME", target.join("home"))
            .env("CARGO_TARGET_DIR", target.join("build"))
            // The hook's build: unoptimised, so that CI's cold build stays short.
            .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "0")
            .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "64"))
    };
    let o = pre_commit(&["install"]);
    assert!(o.status.success(), "{}", text(&o));
    // `git commit` runs the installed hook; it finds pre-commit through the same python3.
    let commit = |message: &str| -> Output {
        run(Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(["commit", "-m", message])
            .current_dir(&repo)
            .env("PRE_COMMIT_HOME", target.join("home"))
            .env("CARGO_TARGET_DIR", target.join("build"))
            .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "0")
            .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "64"))
    };

    // A safe edit (a new field) commits.
    std::fs::write(
        repo.join("shop.proto"),
        V1.replace(
            "  string name = 2;\n",
            "  string name = 2;\n  int32 quantity = 3;\n",
        ),
    )
    .unwrap();
    assert!(git(&repo, &["add", "shop.proto"]).status.success());
    let o = commit("add quantity");
    assert!(o.status.success(), "a safe edit must commit: {}", text(&o));
    assert!(text(&o).contains("protoreg breaking"), "{}", text(&o));

    // A breaking edit (a field deleted) is refused with the finding, and nothing is committed.
    let before = git(&repo, &["rev-parse", "HEAD"]).stdout;
    std::fs::write(
        repo.join("shop.proto"),
        V1.replace("  string name = 2;\n", "  int32 quantity = 3;\n"),
    )
    .unwrap();
    assert!(git(&repo, &["add", "shop.proto"]).status.success());
    let o = commit("drop name");
    let out = text(&o);
    assert!(
        !o.status.success(),
        "a breaking edit must not commit: {out}"
    );
    assert!(out.contains("error[FIELD_NO_DELETE]"), "{out}");
    assert!(out.contains("shop.proto:4:1"), "{out}");
    assert_eq!(git(&repo, &["rev-parse", "HEAD"]).stdout, before);
}
