//! End-to-end tests of the `protoreg` binary: `build` on good and bad inputs, `breaking`
//! with every output format and every input kind (directory, descriptor set, git).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use prost::Message;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_protoreg"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("protoreg runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn write(dir: &Path, name: &str, text: &[u8]) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

#[test]
fn build_examples_writes_a_readable_descriptor_set() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x.binpb");
    let o = run(bin()
        .arg("build")
        .arg(root().join("proto-examples"))
        .arg("-o")
        .arg(&out));
    assert!(o.status.success(), "{}", stderr(&o));
    // As `buf build -o`: imports and source info are in by default.
    let fds =
        prost_types::FileDescriptorSet::decode(std::fs::read(&out).unwrap().as_slice()).unwrap();
    let names: Vec<&str> = fds.file.iter().map(|f| f.name()).collect();
    assert!(names.contains(&"acme/users/v1/users.proto"), "{names:?}");
    assert!(
        names.contains(&"google/protobuf/timestamp.proto"),
        "{names:?}"
    );
    assert!(
        !names.iter().any(|n| n.contains("evolution")),
        "buf.yaml excludes evolution/: {names:?}"
    );
    // Imports come before the files that import them.
    let pos = |n: &str| names.iter().position(|x| *x == n).unwrap();
    assert!(pos("acme/common/v1/money.proto") < pos("acme/users/v1/users.proto"));
    let users = fds
        .file
        .iter()
        .find(|f| f.name() == "acme/users/v1/users.proto")
        .unwrap();
    assert!(
        users
            .source_code_info
            .as_ref()
            .is_some_and(|s| !s.location.is_empty())
    );

    // With --exclude-imports only the module's files; JSON output parses.
    let json = tmp.path().join("x.json");
    let o = run(bin()
        .arg("build")
        .arg(root().join("proto-examples"))
        .arg("-o")
        .arg(&json)
        .arg("--exclude-imports")
        .arg("--exclude-source-info"));
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let files = v["file"].as_array().unwrap();
    assert_eq!(files.len(), 4);
    assert!(
        files
            .iter()
            .all(|f| !f["name"].as_str().unwrap().starts_with("google/"))
    );
    assert!(files.iter().all(|f| f.get("sourceCodeInfo").is_none()));
    // The old opt-in flags are still accepted.
    let o = run(bin()
        .arg("build")
        .arg(root().join("proto-examples"))
        .arg("-o")
        .arg(tmp.path().join("y.binpb"))
        .arg("--include-imports")
        .arg("--include-source-info"));
    assert!(o.status.success(), "{}", stderr(&o));

    // The written set is itself a valid input.
    let o = run(bin().arg("build").arg(&out));
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Each bad input: non-zero exit, a `path:line:col: message` diagnostic, nothing written.
/// `-o` naming a device or a pipe (`-o /dev/null`) writes into it: the atomic write's
/// rename must not replace it with a regular file (as root, that turned /dev/null into a
/// file that every later reader of /dev/null got bytes from).
#[test]
fn build_output_to_a_pipe_writes_into_it() {
    let tmp = tempfile::TempDir::new().unwrap();
    let fifo = tmp.path().join("out.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success(), "mkfifo");
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    let o = run(bin()
        .arg("build")
        .arg(root().join("proto-examples"))
        .arg("-o")
        .arg(&fifo));
    assert!(o.status.success(), "{}", stderr(&o));
    use std::os::unix::fs::FileTypeExt;
    let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
    assert!(kind.is_fifo(), "the pipe is still a pipe");
    let bytes = reader.join().unwrap();
    let fds = prost_types::FileDescriptorSet::decode(bytes.as_slice()).unwrap();
    assert!(
        fds.file
            .iter()
            .any(|f| f.name() == "acme/users/v1/users.proto")
    );
}

fn assert_build_fails(files: &[(&str, &[u8])], expect: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    std::fs::create_dir_all(&dir).unwrap();
    for (n, t) in files {
        write(&dir, n, t);
    }
    let out = tmp.path().join("out.binpb");
    let o = run(bin()
        .arg("build")
        .arg(&dir)
        .arg("-o")
        .arg(&out)
        .env("NO_COLOR", "1"));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    for e in expect {
        assert!(err.contains(e), "expected {e:?} in:\n{err}");
    }
    assert!(!out.exists(), "nothing may be written on error");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn build_reports_syntax_errors_with_location() {
    assert_build_fails(
        &[(
            "a.proto",
            b"syntax = \"proto3\";\nmessage A {\n  string s = 1\n}\n",
        )],
        &["a.proto:4:1:", "expected ';'"],
    );
}

#[test]
fn build_reports_unknown_types() {
    assert_build_fails(
        &[(
            "a.proto",
            b"syntax = \"proto3\";\nmessage A {\n  Nope n = 1;\n}\n",
        )],
        &["a.proto:3:3:", "Nope"],
    );
}

#[test]
fn build_reports_missing_imports() {
    assert_build_fails(
        &[(
            "a.proto",
            b"syntax = \"proto3\";\nimport \"missing.proto\";\n",
        )],
        &["a.proto:2:1:", "import 'missing.proto' not found"],
    );
}

#[test]
fn build_reports_duplicate_field_numbers() {
    assert_build_fails(
        &[(
            "a.proto",
            b"syntax = \"proto3\";\nmessage A {\n  string s = 1;\n  string t = 1;\n}\n",
        )],
        // Where buf points: the second use of the number.
        &["a.proto:4:14:", "field number '1' is already used"],
    );
}

#[test]
fn build_reports_invalid_utf8() {
    assert_build_fails(
        &[(
            "a.proto",
            b"syntax = \"proto3\";\n// caf\xe9\nmessage A {}\n",
        )],
        &["a.proto:2:7:", "not valid UTF-8"],
    );
}

#[test]
fn build_reports_every_error_of_a_run() {
    assert_build_fails(
        &[
            (
                "a.proto",
                b"syntax = \"proto3\";\nmessage A {\n  Nope n = 1;\n}\n",
            ),
            (
                "b.proto",
                b"syntax = \"proto3\";\nmessage B {\n  Gone g = 1;\n}\n",
            ),
        ],
        &["a.proto:3:3:", "b.proto:3:3:", "2 compile error(s)"],
    );
}

#[test]
fn build_refuses_imports_escaping_the_root() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "secret.proto",
        b"syntax = \"proto3\";\nmessage S {}\n",
    );
    let dir = tmp.path().join("m");
    write(
        &dir,
        "a.proto",
        b"syntax = \"proto3\";\nimport \"../secret.proto\";\n",
    );
    let o = run(bin()
        .arg("build")
        .arg(&dir)
        .arg("-I")
        .arg(&dir)
        .env("NO_COLOR", "1"));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("a.proto:2:8:")
            && err.contains("import path must not refer to parent directory"),
        "{err}"
    );
}

#[test]
fn build_rejects_an_empty_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let o = run(bin().arg("build").arg(tmp.path()));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no .proto files"), "{}", stderr(&o));
}

#[test]
fn build_compiles_editions() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "e.proto",
        b"edition = \"2023\";\npackage e;\nmessage M {\n  string s = 1 [features.field_presence = IMPLICIT];\n  repeated int32 r = 2;\n}\n",
    );
    let out = tmp.path().join("e.binpb");
    let o = run(bin()
        .arg("build")
        .arg(tmp.path())
        .arg("-o")
        .arg(&out)
        .arg("--exclude-imports"));
    assert!(o.status.success(), "{}", stderr(&o));
    let fds =
        prost_types::FileDescriptorSet::decode(std::fs::read(&out).unwrap().as_slice()).unwrap();
    assert_eq!(fds.file[0].syntax(), "editions");
    // The field `string s` starts at column 3 (0-based 2) as written.
    let loc = fds.file[0]
        .source_code_info
        .as_ref()
        .unwrap()
        .location
        .iter()
        .find(|l| l.path == [4, 0, 2, 0])
        .unwrap();
    assert_eq!(loc.span[..2], [3, 2]);
}

fn evolution(name: &str) -> (PathBuf, PathBuf) {
    let d = root().join("proto-examples/evolution").join(name);
    (d.join("v2"), d.join("v1"))
}

#[test]
fn breaking_formats() {
    let (cur, prev) = evolution("removed-field");
    let fmt = |f: &str| {
        let o = run(bin()
            .arg("breaking")
            .arg(&cur)
            .arg("--against")
            .arg(&prev)
            .arg("--error-format")
            .arg(f));
        assert_eq!(o.status.code(), Some(100), "{f}: {}", stderr(&o));
        stdout(&o)
    };
    let text = fmt("text");
    assert!(
        text.contains("v2/shop.proto:5:1:Previously present field \"2\" with name \"name\""),
        "{text}"
    );
    let json = fmt("json");
    let v: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(v["type"], "FIELD_NO_DELETE");
    assert_eq!(v["start_line"], 5);
    assert_eq!(v["end_line"], 7);
    assert!(v["path"].as_str().unwrap().ends_with("v2/shop.proto"));
    let gh = fmt("github-actions");
    assert!(
        gh.starts_with("::error file=")
            && gh.contains("line=5")
            && gh.contains("title=FIELD_NO_DELETE"),
        "{gh}"
    );
    let junit = fmt("junit");
    assert!(
        junit.contains("<testsuites")
            && junit.contains("<failure")
            && junit.contains("FIELD_NO_DELETE"),
        "{junit}"
    );
    let sarif: serde_json::Value = serde_json::from_str(&fmt("sarif")).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    assert_eq!(sarif["runs"][0]["results"][0]["ruleId"], "FIELD_NO_DELETE");
    assert_eq!(
        sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"],
        5
    );
    let pretty = fmt("pretty");
    assert!(pretty.contains("error[FIELD_NO_DELETE]"), "{pretty}");
    assert!(pretty.contains("5 | message Item {"), "{pretty}");
    assert!(
        pretty.contains("reserved 2; reserved \"name\";"),
        "{pretty}"
    );
}

#[test]
fn breaking_clean_change_exits_zero() {
    let (cur, prev) = evolution("safe-add-field");
    let o = run(bin().arg("breaking").arg(&cur).arg("--against").arg(&prev));
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).is_empty());
}

#[test]
fn breaking_against_a_descriptor_set() {
    let (cur, prev) = evolution("type-change");
    let tmp = tempfile::tempdir().unwrap();
    let set = tmp.path().join("prev.binpb");
    assert!(
        run(bin().arg("build").arg(&prev).arg("-o").arg(&set))
            .status
            .success()
    );
    let o = run(bin()
        .arg("breaking")
        .arg(&cur)
        .arg("--against")
        .arg(&set)
        .arg("--error-format")
        .arg("json"));
    assert_eq!(o.status.code(), Some(100), "{}", stderr(&o));
    assert!(stdout(&o).contains("FIELD_SAME_TYPE"), "{}", stdout(&o));
}

#[test]
fn breaking_against_git_without_checkout() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path();
    let git = |args: &[&str]| {
        let o = Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "git {args:?}: {}", stderr(&o));
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["config", "user.email", "t@example.com"]);
    git(&["config", "user.name", "t"]);
    let (_, v1) = evolution("removed-rpc");
    let (v2, _) = evolution("removed-rpc");
    write(
        repo,
        "proto/shop.proto",
        &std::fs::read(v1.join("shop.proto")).unwrap(),
    );
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "v1"]);
    // Dirty work tree: the change is not committed.
    write(
        repo,
        "proto/shop.proto",
        &std::fs::read(v2.join("shop.proto")).unwrap(),
    );
    let dir = repo.join("proto");
    for against in [
        vec!["--against-git".to_string(), "main".to_string()],
        vec![
            "--against".to_string(),
            format!("{}#ref=HEAD", dir.display()),
        ],
    ] {
        let o = run(bin()
            .arg("breaking")
            .arg(&dir)
            .args(&against)
            .arg("--error-format")
            .arg("json"));
        assert_eq!(o.status.code(), Some(100), "{against:?}: {}", stderr(&o));
        assert!(stdout(&o).contains("RPC_NO_DELETE"), "{}", stdout(&o));
    }
    let o = run(bin()
        .arg("breaking")
        .arg(&dir)
        .arg("--against-git")
        .arg("no-such-ref"));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no-such-ref"), "{}", stderr(&o));
}

#[test]
fn breaking_honours_config_and_paths() {
    let (cur, prev) = evolution("reused-number");
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("buf.yaml");
    std::fs::write(&cfg, "version: v2\nbreaking:\n  use: [WIRE]\n").unwrap();
    let o = run(bin()
        .arg("breaking")
        .arg(&cur)
        .arg("--against")
        .arg(&prev)
        .arg("--config")
        .arg(&cfg)
        .arg("--error-format")
        .arg("json"));
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(100), "{}", stderr(&o));
    assert!(
        out.contains("FIELD_WIRE_COMPATIBLE_TYPE") && !out.contains("FIELD_SAME_NAME"),
        "{out}"
    );
    let o = run(bin()
        .arg("breaking")
        .arg(&cur)
        .arg("--against")
        .arg(&prev)
        .arg("--exclude-path")
        .arg("shop.proto"));
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    std::fs::write(&cfg, "version: v2\nbreaking:\n  use: [NOT_A_RULE]\n").unwrap();
    let o = run(bin()
        .arg("breaking")
        .arg(&cur)
        .arg("--against")
        .arg(&prev)
        .arg("--config")
        .arg(&cfg));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("NOT_A_RULE"), "{}", stderr(&o));
}

#[test]
fn rules_lists_every_rule() {
    let o = run(bin().arg("rules").arg("--json"));
    assert!(o.status.success());
    let rules: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // buf's 64, then protoreg's own (tests/beyond_buf.rs).
    assert_eq!(rules.iter().filter(|r| r["buf"] == true).count(), 64);
    assert!(
        rules
            .iter()
            .all(|r| !r["purpose"].as_str().unwrap().is_empty())
    );
    let wire = run(bin().args(["rules", "--category", "WIRE"]));
    assert!(stdout(&wire).contains("FIELD_WIRE_COMPATIBLE_TYPE"));
    assert!(!stdout(&wire).contains("FIELD_SAME_NAME"));
}

#[test]
fn closed_pipe_ends_quietly() {
    // `protoreg rules --json | head -1` once head has gone: the pipe's read end is closed
    // before the command writes, so every write meets a closed pipe (deterministically).
    for args in [
        &["rules", "--json"][..],
        &["completion", "bash"],
        &["--help"],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = bin()
            .args(args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        assert!(
            o.stderr.is_empty(),
            "{args:?}: nothing on stderr after a closed pipe: {}",
            stderr(&o)
        );
        // Ended by SIGPIPE, as the writers into `head` are; never an error or a panic.
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&o.status),
            Some(libc_sigpipe()),
            "{args:?}: {:?}",
            o.status
        );
    }
}

/// SIGPIPE's number on Linux.
fn libc_sigpipe() -> i32 {
    13
}

#[test]
fn colour_follows_the_flag_and_no_color() {
    let (cur, prev) = evolution("removed-field");
    let pretty = |args: &[&str], no_color: Option<&str>| {
        let mut c = bin();
        c.arg("breaking")
            .arg(&cur)
            .arg("--against")
            .arg(&prev)
            .args(["--error-format", "pretty"])
            .args(args)
            .env_remove("NO_COLOR");
        if let Some(v) = no_color {
            c.env("NO_COLOR", v);
        }
        let o = run(&mut c);
        assert_eq!(o.status.code(), Some(100), "{}", stderr(&o));
        stdout(&o)
    };
    // Not a terminal: no colour unless asked for.
    assert!(!pretty(&[], None).contains('\x1b'));
    let always = pretty(&["--color", "always"], None);
    assert!(
        always.contains("\x1b[1;31merror[FIELD_NO_DELETE]"),
        "{always:?}"
    );
    assert!(!pretty(&["--color", "never"], None).contains('\x1b'));
    // NO_COLOR only changes `auto`; an explicit `always` wins (as ripgrep).
    assert!(!pretty(&["--color", "auto"], Some("1")).contains('\x1b'));
    assert!(pretty(&["--color", "always"], Some("1")).contains('\x1b'));
    let o = run(bin().args(["--color", "sometimes", "rules"]));
    assert_eq!(o.status.code(), Some(2), "clap's usage error");
    assert!(stderr(&o).contains("sometimes"), "{}", stderr(&o));
}

#[test]
fn completion_scripts_for_each_shell() {
    for (shell, marker) in [
        ("bash", "complete -F _protoreg"),
        ("zsh", "#compdef protoreg"),
        ("fish", "complete -c protoreg"),
    ] {
        let o = run(bin().args(["completion", shell]));
        assert!(o.status.success(), "{shell}: {}", stderr(&o));
        let script = stdout(&o);
        assert!(script.contains(marker), "{shell}: {script}");
        // Subcommands and their flags are completed.
        assert!(
            script.contains("breaking") && script.contains("against"),
            "{shell}"
        );
    }
    // bash parses what it is given.
    let o = run(bin().args(["completion", "bash"]));
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("protoreg.bash");
    std::fs::write(&script, &o.stdout).unwrap();
    let check = run(Command::new("bash").arg("-n").arg(&script));
    assert!(check.status.success(), "{}", stderr(&check));
    let o = run(bin().args(["completion", "tcsh"]));
    assert_eq!(o.status.code(), Some(2));
}
