//! End-to-end tests of the rules buf does not have (HTTP bindings, field behavior,
//! protovalidate) and of accepting a known break (`protoreg-accepted.yaml`), on the real
//! binary. Each rule has changes that must fire it and changes that must not (loosening a
//! constraint, adding a binding); the built-in google/api and buf/validate schemas are what
//! the imports resolve to (nothing is vendored in the test modules).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_protoreg"))
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const HEADER: &str = r#"syntax = "proto3";
package acme.users.v1;
import "google/api/annotations.proto";
import "google/api/field_behavior.proto";
import "buf/validate/validate.proto";
"#;

/// A module directory holding `users.proto` = HEADER + `body`.
fn module(root: &Path, name: &str, body: &str) -> std::path::PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("users.proto"), format!("{HEADER}{body}")).unwrap();
    dir
}

/// `protoreg breaking new --against old` with extra args.
fn breaking(new: &Path, old: &Path, args: &[&str]) -> Output {
    bin()
        .arg("breaking")
        .arg(new)
        .arg("--against")
        .arg(old)
        .args(args)
        .output()
        .unwrap()
}

/// (rule, element) of every JSON finding, and the exit status.
fn findings(new: &Path, old: &Path, args: &[&str]) -> (BTreeSet<(String, String)>, Option<i32>) {
    let mut all = vec!["--error-format", "json"];
    all.extend_from_slice(args);
    let o = breaking(new, old, &all);
    assert!(
        matches!(o.status.code(), Some(0 | 100)),
        "breaking failed: {}",
        stderr(&o)
    );
    let set = stdout(&o)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["type"].as_str().unwrap().to_string(),
                v["element"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (set, o.status.code())
}

fn pairs(list: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    list.iter()
        .map(|(r, e)| (r.to_string(), e.to_string()))
        .collect()
}

const SERVICE_OLD: &str = r#"
service Users {
  rpc GetUser(GetUserRequest) returns (User) {
    option (google.api.http) = {
      get: "/v1/{name=users/*}"
      additional_bindings { get: "/v1beta/{name=users/*}" }
    };
  }
  rpc CreateUser(CreateUserRequest) returns (User) {
    option (google.api.http) = { post: "/v1/users" body: "user" };
  }
  rpc DeleteUser(GetUserRequest) returns (User) {
    option (google.api.http) = { delete: "/v1/{name=users/*}" };
  }
  rpc ListUsers(GetUserRequest) returns (User) {
    option (google.api.http) = { get: "/v1/users" response_body: "name" };
  }
  rpc Ping(GetUserRequest) returns (User);
}
message GetUserRequest { string name = 1; }
message CreateUserRequest { User user = 1; }
message User { string name = 1; }
"#;

#[test]
fn http_rules_fire_on_breaks_and_not_on_additions() {
    let tmp = tempfile::tempdir().unwrap();
    let old = module(tmp.path(), "old", SERVICE_OLD);
    let broken = module(
        tmp.path(),
        "broken",
        &SERVICE_OLD
            .replace(
                "get: \"/v1/{name=users/*}\"\n      additional_bindings { get: \"/v1beta/{name=users/*}\" }",
                "get: \"/v2/{name=users/*}\"",
            )
            .replace("body: \"user\"", "body: \"*\"")
            .replace(
                "rpc DeleteUser(GetUserRequest) returns (User) {\n    option (google.api.http) = { delete: \"/v1/{name=users/*}\" };\n  }",
                "rpc DeleteUser(GetUserRequest) returns (User);",
            )
            .replace("response_body: \"name\"", ""),
    );
    let (got, code) = findings(&broken, &old, &["--use", "HTTP"]);
    assert_eq!(code, Some(100));
    assert_eq!(
        got,
        pairs(&[
            ("RPC_HTTP_SAME_PATTERN", "acme.users.v1.Users.GetUser"),
            (
                "RPC_HTTP_ADDITIONAL_BINDING_NO_DELETE",
                "acme.users.v1.Users.GetUser"
            ),
            ("RPC_HTTP_SAME_BODY", "acme.users.v1.Users.CreateUser"),
            ("RPC_HTTP_NO_DELETE", "acme.users.v1.Users.DeleteUser"),
            (
                "RPC_HTTP_SAME_RESPONSE_BODY",
                "acme.users.v1.Users.ListUsers"
            ),
        ])
    );
    // Off by default: buf's rules see no break in options they do not read.
    let (got, code) = findings(&broken, &old, &[]);
    assert!(got.is_empty(), "{got:?}");
    assert_eq!(code, Some(0));

    // Adding bindings, binding an RPC that had none, keeping the old URL as an additional
    // binding when a new primary one comes, and `{name=*}` written as `{name}`: no break.
    let grown = module(
        tmp.path(),
        "grown",
        &SERVICE_OLD
            .replace(
                "get: \"/v1/{name=users/*}\"\n      additional_bindings { get: \"/v1beta/{name=users/*}\" }",
                "get: \"/v2/{name=users/*}\"\n      additional_bindings { get: \"/v1/{name=users/*}\" }\n      additional_bindings { get: \"/v1beta/{name=users/*}\" }",
            )
            .replace("post: \"/v1/users\" body: \"user\"", "post: \"/v1/users\" body: \"user\" additional_bindings { post: \"/v1/users:create\" body: \"*\" }")
            .replace(
                "rpc Ping(GetUserRequest) returns (User);",
                "rpc Ping(GetUserRequest) returns (User) { option (google.api.http) = { get: \"/v1/ping\" }; }",
            ),
    );
    let (got, code) = findings(&grown, &old, &["--use", "PROTOREG"]);
    assert!(got.is_empty(), "additions are not breaks: {got:?}");
    assert_eq!(code, Some(0));
}

const FIELDS_OLD: &str = r#"
message User {
  string name = 1 [(google.api.field_behavior) = IDENTIFIER];
  string email = 2 [(google.api.field_behavior) = REQUIRED];
  string create_time = 3 [(google.api.field_behavior) = OUTPUT_ONLY];
  string region = 4;
  string owner = 5 [(google.api.field_behavior) = IMMUTABLE];
}
"#;

#[test]
fn field_behavior_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let old = module(tmp.path(), "old", FIELDS_OLD);
    let broken = module(
        tmp.path(),
        "broken",
        &FIELDS_OLD
            .replace(
                "string name = 1 [(google.api.field_behavior) = IDENTIFIER];",
                "string name = 1 [(google.api.field_behavior) = IDENTIFIER, (google.api.field_behavior) = REQUIRED];",
            )
            .replace(
                "string create_time = 3 [(google.api.field_behavior) = OUTPUT_ONLY];",
                "string create_time = 3;",
            )
            .replace(
                "string region = 4;",
                "string region = 4 [(google.api.field_behavior) = IMMUTABLE];",
            ),
    );
    let (got, _) = findings(&broken, &old, &["--use", "FIELD_BEHAVIOR"]);
    assert_eq!(
        got,
        pairs(&[
            ("FIELD_BEHAVIOR_NO_NEW_REQUIRED", "acme.users.v1.User.name"),
            (
                "FIELD_BEHAVIOR_SAME_OUTPUT_ONLY",
                "acme.users.v1.User.create_time"
            ),
            ("FIELD_BEHAVIOR_SAME_IMMUTABLE", "acme.users.v1.User.region"),
        ])
    );
    // Dropping REQUIRED loosens the contract; a new field may be REQUIRED from the start.
    let loosened = module(
        tmp.path(),
        "loosened",
        &FIELDS_OLD
            .replace(
                "string email = 2 [(google.api.field_behavior) = REQUIRED];",
                "string email = 2;",
            )
            .replace(
                "}\n",
                "  string phone = 6 [(google.api.field_behavior) = REQUIRED];\n}\n",
            ),
    );
    let (got, code) = findings(&loosened, &old, &["--use", "FIELD_BEHAVIOR"]);
    assert!(got.is_empty(), "{got:?}");
    assert_eq!(code, Some(0));
}

const VALIDATE_OLD: &str = r#"
message User {
  string email = 1 [(buf.validate.field).string.max_len = 100];
  int32 age = 2 [(buf.validate.field).int32 = {gte: 0, lt: 150}];
  string nickname = 3;
  string region = 4 [(buf.validate.field).string = {in: ["eu", "us", "ap"]}];
  repeated string tags = 5 [(buf.validate.field).repeated.max_items = 10];
  string code = 6 [(buf.validate.field).string.pattern = "^[A-Z]{3}$"];
  string note = 7 [(buf.validate.field).required = true, (buf.validate.field).string.min_len = 5];
}
"#;

#[test]
fn protovalidate_rules_fire_on_tightening_only() {
    let tmp = tempfile::tempdir().unwrap();
    let old = module(tmp.path(), "old", VALIDATE_OLD);
    let tightened = module(
        tmp.path(),
        "tightened",
        r#"
message User {
  string email = 1 [(buf.validate.field).string = {max_len: 50, email: true}];
  int32 age = 2 [(buf.validate.field).int32 = {gte: 18, lt: 150}];
  string nickname = 3 [(buf.validate.field).required = true];
  string region = 4 [(buf.validate.field).string = {in: ["eu", "us"]}];
  repeated string tags = 5 [(buf.validate.field).repeated = {max_items: 10, items: {string: {min_len: 2}}}];
  string code = 6 [(buf.validate.field).string.pattern = "^[A-Z]{4}$"];
  string note = 7 [(buf.validate.field).required = true, (buf.validate.field).string.min_len = 5];
}
"#,
    );
    let (got, code) = findings(&tightened, &old, &["--use", "PROTOVALIDATE"]);
    assert_eq!(code, Some(100));
    assert_eq!(
        got,
        pairs(&[
            (
                "FIELD_VALIDATE_NO_TIGHTER_LENGTH",
                "acme.users.v1.User.email"
            ),
            ("FIELD_VALIDATE_NO_NEW_PATTERN", "acme.users.v1.User.email"),
            ("FIELD_VALIDATE_NO_NARROWER_RANGE", "acme.users.v1.User.age"),
            (
                "FIELD_VALIDATE_NO_NEW_REQUIRED",
                "acme.users.v1.User.nickname"
            ),
            (
                "FIELD_VALIDATE_NO_SHRINKING_IN",
                "acme.users.v1.User.region"
            ),
            (
                "FIELD_VALIDATE_NO_TIGHTER_LENGTH",
                "acme.users.v1.User.tags"
            ),
            ("FIELD_VALIDATE_NO_NEW_PATTERN", "acme.users.v1.User.code"),
        ])
    );
    // Loosening every constraint, and spelling a bound another way (`gte: 0` is `gt: -1`
    // for integers), breaks nothing.
    let loosened = module(
        tmp.path(),
        "loosened",
        r#"
message User {
  string email = 1 [(buf.validate.field).string.max_len = 200];
  int32 age = 2 [(buf.validate.field).int32 = {gt: -1, lte: 200}];
  string nickname = 3;
  string region = 4 [(buf.validate.field).string = {in: ["eu", "us", "ap", "sa"]}];
  repeated string tags = 5 [(buf.validate.field).repeated.max_items = 20];
  string code = 6;
  string note = 7 [(buf.validate.field).string.min_len = 1];
}
"#,
    );
    let (got, code) = findings(&loosened, &old, &["--use", "PROTOVALIDATE"]);
    assert!(got.is_empty(), "loosening is not breaking: {got:?}");
    assert_eq!(code, Some(0));
}

#[test]
fn new_rules_in_every_output_format() {
    let tmp = tempfile::tempdir().unwrap();
    module(tmp.path(), "old", FIELDS_OLD);
    module(
        tmp.path(),
        "new",
        &FIELDS_OLD.replace(
            "string create_time = 3 [(google.api.field_behavior) = OUTPUT_ONLY];",
            "string create_time = 3;",
        ),
    );
    let line = "new/users.proto";
    for (format, expect) in [
        ("text", "removed field behavior \"OUTPUT_ONLY\""),
        ("json", "\"type\":\"FIELD_BEHAVIOR_SAME_OUTPUT_ONLY\""),
        ("github-actions", "::error file="),
        ("junit", "type=\"FIELD_BEHAVIOR_SAME_OUTPUT_ONLY\""),
        ("sarif", "\"ruleId\": \"FIELD_BEHAVIOR_SAME_OUTPUT_ONLY\""),
        ("pretty", "error[FIELD_BEHAVIOR_SAME_OUTPUT_ONLY]"),
    ] {
        let o = bin()
            .current_dir(tmp.path())
            .args([
                "breaking",
                "new",
                "--against",
                "old",
                "--use",
                "FIELD_BEHAVIOR",
            ])
            .args(["--error-format", format])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(100), "{format}: {}", stderr(&o));
        let out = stdout(&o);
        assert!(out.contains(expect), "{format}: {out}");
        assert!(out.contains(line), "{format}: {out}");
    }
}

#[test]
fn protoreg_yaml_enables_rules_and_rules_lists_them() {
    let tmp = tempfile::tempdir().unwrap();
    let old = module(tmp.path(), "old", FIELDS_OLD);
    let new = module(
        tmp.path(),
        "new",
        &FIELDS_OLD.replace(
            "string region = 4;",
            "string region = 4 [(google.api.field_behavior) = IMMUTABLE];",
        ),
    );
    let (got, _) = findings(&new, &old, &[]);
    assert!(got.is_empty());
    std::fs::write(
        tmp.path().join("protoreg.yaml"),
        "subjects:\n  - subject: acme.users.v1\n    dir: new\nbreaking:\n  use: [FIELD_BEHAVIOR]\n",
    )
    .unwrap();
    let (got, code) = findings(&new, &old, &[]);
    assert_eq!(
        got,
        pairs(&[("FIELD_BEHAVIOR_SAME_IMMUTABLE", "acme.users.v1.User.region")])
    );
    assert_eq!(code, Some(100));

    let o = bin().args(["rules", "--json"]).output().unwrap();
    let rules: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ours: Vec<&serde_json::Value> = rules.iter().filter(|r| r["buf"] == false).collect();
    assert_eq!(ours.len(), 13, "{ours:?}");
    assert!(ours.iter().all(|r| r["default"] == false
        && r["categories"][0] == "PROTOREG"
        && !r["purpose"].as_str().unwrap().is_empty()));
}

/// Two findings on one element (two rules) and one on another: exemptions accept exactly
/// what they name, against exactly the previous side they name.
#[test]
fn exemptions_accept_exactly_one_finding_and_expire_with_the_previous_side() {
    let tmp = tempfile::tempdir().unwrap();
    let old = module(tmp.path(), "old", SERVICE_OLD);
    let new = module(
        tmp.path(),
        "new",
        &SERVICE_OLD
            .replace(
                "get: \"/v1/{name=users/*}\"\n      additional_bindings { get: \"/v1beta/{name=users/*}\" }",
                "get: \"/v2/{name=users/*}\"",
            )
            .replace("body: \"user\"", "body: \"*\""),
    );
    // The suggested file names every finding against the previous side's content.
    let o = breaking(&new, &old, &["--use", "HTTP", "--suggest-accepted"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let suggested = stdout(&o);
    let against = suggested
        .lines()
        .find_map(|l| l.trim().strip_prefix("against: "))
        .unwrap()
        .to_string();
    assert!(
        against.starts_with("sha256:") && against.len() == 71,
        "{against}"
    );
    assert_eq!(suggested.matches("- rule:").count(), 3, "{suggested}");

    let accepted = tmp.path().join("accepted.yaml");
    let write = |entries: &[(&str, &str, &str)]| {
        let mut t = String::from("version: v1\naccepted:\n");
        for (rule, element, against) in entries {
            t.push_str(&format!(
                "  - rule: {rule}\n    element: {element}\n    against: \"{against}\"\n    reason: v1beta retired\n    by: alice@example.com\n"
            ));
        }
        std::fs::write(&accepted, t).unwrap();
    };
    let acc = accepted.to_str().unwrap();
    write(&[(
        "RPC_HTTP_ADDITIONAL_BINDING_NO_DELETE",
        "acme.users.v1.Users.GetUser",
        &against,
    )]);
    let o = breaking(
        &new,
        &old,
        &["--use", "HTTP", "--accepted", acc, "--error-format", "json"],
    );
    assert_eq!(o.status.code(), Some(100), "two findings are still errors");
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "accepted findings are still reported");
    let marked: Vec<&serde_json::Value> = lines.iter().filter(|l| l["accepted"] == true).collect();
    assert_eq!(marked.len(), 1);
    assert_eq!(marked[0]["type"], "RPC_HTTP_ADDITIONAL_BINDING_NO_DELETE");
    assert_eq!(marked[0]["reason"], "v1beta retired");

    // Every finding accepted: exit 0, and each format says so without failing.
    write(&[
        (
            "RPC_HTTP_ADDITIONAL_BINDING_NO_DELETE",
            "acme.users.v1.Users.GetUser",
            &against,
        ),
        (
            "RPC_HTTP_SAME_PATTERN",
            "acme.users.v1.Users.GetUser",
            &against,
        ),
        (
            "RPC_HTTP_SAME_BODY",
            "acme.users.v1.Users.CreateUser",
            &against,
        ),
    ]);
    for (format, expect, forbidden) in [
        ("text", "(accepted: v1beta retired)", ""),
        (
            "pretty",
            "= accepted: v1beta retired (alice@example.com)",
            "error[",
        ),
        ("github-actions", "::notice ", "::error"),
        ("junit", "failures=\"0\"", "<failure"),
        ("sarif", "\"status\": \"accepted\"", "\"level\": \"error\""),
    ] {
        let o = breaking(
            &new,
            &old,
            &["--use", "HTTP", "--accepted", acc, "--error-format", format],
        );
        assert_eq!(o.status.code(), Some(0), "{format}: {}", stderr(&o));
        let out = stdout(&o);
        assert!(out.contains(expect), "{format}: {out}");
        assert!(
            forbidden.is_empty() || !out.contains(forbidden),
            "{format}: {out}"
        );
    }

    // The previous side changes (a comment does not count; a new message does): the
    // exemptions no longer apply, and protoreg says which entries matched nothing.
    std::fs::write(
        old.join("users.proto"),
        format!("{HEADER}// reworded\n{SERVICE_OLD}"),
    )
    .unwrap();
    let o = breaking(&new, &old, &["--use", "HTTP", "--accepted", acc]);
    assert_eq!(o.status.code(), Some(0), "comments are not content");
    std::fs::write(
        old.join("users.proto"),
        format!("{HEADER}{SERVICE_OLD}message Extra {{}}\n"),
    )
    .unwrap();
    let o = breaking(&new, &old, &["--use", "HTTP", "--accepted", acc]);
    assert_eq!(o.status.code(), Some(100), "{}", stdout(&o));
    assert!(stderr(&o).contains("matched no finding"), "{}", stderr(&o));
    assert!(!stdout(&o).contains("accepted:"), "{}", stdout(&o));
}

#[test]
fn exemptions_name_git_revisions_and_are_found_beside_the_input() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path();
    let git = |args: &[&str]| -> String {
        let o = Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "git {args:?}: {}", stderr(&o));
        stdout(&o).trim().to_string()
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["config", "user.email", "t@example.com"]);
    git(&["config", "user.name", "t"]);
    let dir = module(repo, "proto", SERVICE_OLD);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "v1"]);
    let v1 = git(&["rev-parse", "HEAD"]);
    std::fs::write(
        dir.join("users.proto"),
        format!(
            "{HEADER}{}",
            SERVICE_OLD.replace("body: \"user\"", "body: \"*\"")
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("protoreg-accepted.yaml"),
        format!(
            "version: v1\naccepted:\n  - rule: RPC_HTTP_SAME_BODY\n    element: acme.users.v1.Users.CreateUser\n    against: git:{}\n    reason: clients send the whole message\n",
            &v1[..12]
        ),
    )
    .unwrap();
    let run = || {
        bin()
            .arg("breaking")
            .arg(&dir)
            .args(["--against-git", "HEAD", "--use", "HTTP"])
            .output()
            .unwrap()
    };
    let o = run();
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("(accepted: clients send the whole message)"));
    // Another commit on main: HEAD is no longer the revision the exemption names.
    std::fs::write(repo.join("README"), "x").unwrap();
    git(&["add", "README"]);
    git(&["commit", "-q", "-m", "v2"]);
    let o = run();
    assert_eq!(o.status.code(), Some(100), "{}", stdout(&o));

    // A malformed file is an error naming it and what is wrong, not a silent pass.
    std::fs::write(
        dir.join("protoreg-accepted.yaml"),
        "version: v1\naccepted:\n  - rule: NOT_A_RULE\n    element: x\n    against: git:abcdef0\n    reason: r\n",
    )
    .unwrap();
    let o = run();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("protoreg-accepted.yaml") && stderr(&o).contains("NOT_A_RULE"),
        "{}",
        stderr(&o)
    );
}
