//! End-to-end tests of recorded deployments and `protoreg can-i-deploy` on SQLite and on the
//! PostgreSQL at 127.0.0.1:5432: real servers, the real client commands, real lock files.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

#[path = "support/registry.rs"]
mod harness;
use harness::*;

const V1: &str = "syntax = \"proto3\";\npackage acme.users.v1;\nservice Users {\n  rpc Get(Req) returns (User);\n  rpc Delete(Req) returns (User);\n}\nmessage Req { string id = 1; }\nmessage User {\n  string id = 1;\n  string email = 2;\n}\n";

/// v1 plus a field: compatible.
fn v2() -> String {
    V1.replace(
        "  string email = 2;\n",
        "  string email = 2;\n  string name = 3;\n",
    )
}

/// v2 without `Delete`: breaks callers of v1 and v2.
fn v3() -> String {
    v2().replace("  rpc Delete(Req) returns (User);\n", "")
}

struct Cli<'a> {
    base: &'a str,
    dir: &'a Path,
}

impl Cli<'_> {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(bin())
            .current_dir(self.dir)
            .args(args)
            .env("PROTOREG_REGISTRY", self.base)
            .env_remove("PROTOREG_TOKEN")
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

fn out(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn push(base: &str, subject: &str, text: &str, accept: bool) -> Value {
    let mut body = json!({"files": {"acme/users/v1/users.proto": text}});
    if accept {
        body["accept_breaking"] = json!({"reason": "Delete is unused"});
    }
    let r = post(base, &format!("/v1/subjects/{subject}/versions"), &body);
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()
}

/// The whole loop: record a server and an older caller, an incompatible server cannot be
/// deployed (the caller and the finding named), a compatible one can; consumers, delete
/// protection, the push warning and `deployed: enforce`; a caller pinned to a deleted
/// version makes the answer unknown.
fn deployment_loop(database: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let srv = Server::start(database, &[], &[]);
    let b = &srv.base;
    let s = subject("acme.users.v1");
    let cli = Cli {
        base: b,
        dir: tmp.path(),
    };
    let env = format!("production-{}", std::process::id());
    let can_i = |lock: &str, format: &str| {
        cli.run(&[
            "can-i-deploy",
            "--service",
            "users",
            "--env",
            &env,
            "--lock",
            lock,
            "--error-format",
            format,
        ])
    };
    push(b, &s, V1, false);
    cli.ok(&["pin", &format!("{s}@1"), "--lock", "users-v1.lock"]);
    cli.ok(&["pin", &format!("{s}@1"), "--calls", "--lock", "orders.lock"]);
    let printed = cli.ok(&[
        "record-deployment",
        "--service",
        "users",
        "--env",
        &env,
        "--lock",
        "users-v1.lock",
        "--label",
        "build=41",
    ]);
    assert!(
        printed.contains(&format!("users runs in {env} (serves {s}@1)")),
        "{printed}"
    );
    cli.ok(&[
        "record-deployment",
        "--service",
        "orders",
        "--env",
        &env,
        "--lock",
        "orders.lock",
    ]);

    // v2 is compatible with the caller's v1; v3 is not.
    push(b, &s, &v2(), false);
    cli.ok(&["pin", &format!("{s}@2"), "--lock", "users-v2.lock"]);
    let reply = push(b, &s, &v3(), true);
    let warning = &reply["deployed"][0];
    assert_eq!(warning["service"], "orders", "{reply}");
    assert_eq!(warning["version"], 1);
    assert_eq!(warning["findings"][0]["type"], "RPC_NO_DELETE");
    cli.ok(&["pin", &format!("{s}@3"), "--lock", "users-v3.lock"]);

    let o = can_i("users-v3.lock", "pretty");
    assert_eq!(o.status.code(), Some(100), "{}", out(&o));
    let text = out(&o);
    assert!(text.contains("? no"), "{text}");
    assert!(
        text.contains("orders") && text.contains("incompatible"),
        "{text}"
    );
    assert!(text.contains("Previously present RPC \"Delete\""), "{text}");
    let o = can_i("users-v3.lock", "json");
    let answer: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(answer["answer"], "no");
    assert_eq!(
        answer["matrix"].as_array().unwrap().len(),
        1,
        "only the caller counts"
    );
    assert_eq!(answer["matrix"][0]["role"], "calls");
    assert_eq!(answer["matrix"][0]["version"], 1);
    assert_eq!(answer["matrix"][0]["deploying"], 3);
    let o = can_i("users-v3.lock", "github-actions");
    assert!(
        out(&o).contains("::error title=can-i-deploy RPC_NO_DELETE::orders calls"),
        "{}",
        out(&o)
    );
    let o = can_i("users-v2.lock", "pretty");
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(out(&o).contains("? yes"), "{}", out(&o));

    // The web UI: the environment, its services and matrix; where a version runs.
    let list = get(b, "/ui/environments").text();
    assert!(list.contains(&format!("/ui/environments/{env}")), "{list}");
    let page = get(b, &format!("/ui/environments/{env}")).text();
    assert!(page.contains("orders") && page.contains("users"), "{page}");
    assert!(
        page.contains("<strong>compatible</strong>"),
        "users@1 serves what orders@1 calls: {page}"
    );
    let version = get(b, &format!("/ui/subjects/{s}/versions/1")).text();
    assert!(
        version.contains("Runs in") && version.contains(&format!("{env}</a>: orders")),
        "{version}"
    );
    assert_eq!(get(b, "/ui/environments/nowhere").status, 404);
    let timeline = get(b, &format!("/ui/subjects/{s}")).text();
    assert!(
        timeline.contains(&format!("{env}</a>: orders (calls)")),
        "{timeline}"
    );

    // Where v1 runs, and why it cannot be deleted.
    let consumers = get(b, &format!("/v1/subjects/{s}/versions/1/consumers")).json();
    let names: Vec<&str> = consumers
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["service"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["orders", "users"]);
    let r = delete(b, &format!("/v1/subjects/{s}/versions/1"));
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(
        r.text().contains(&format!("{env}'s orders")),
        "{}",
        r.text()
    );

    // deployed: enforce turns the warning into a refusal.
    let r = send(
        "PUT",
        b,
        &format!("/v1/subjects/{s}/config"),
        br#"{"deployed": "enforce"}"#,
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v4 = v3().replace(
        "  string email = 2;\n",
        "  string email = 2;\n  string phone = 4;\n",
    );
    let mut body = json!({"files": {"acme/users/v1/users.proto": v4}});
    body["accept_breaking"] = json!({"reason": "Delete is unused"});
    let r = post(b, &format!("/v1/subjects/{s}/versions"), &body);
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "breaks_deployed", "{}", r.text());
    assert!(
        r.text().contains(&format!("{env}'s orders calls {s}@1")),
        "{}",
        r.text()
    );

    // The caller's pinned version deleted (forced): the answer is unknown, never yes.
    let r = delete(b, &format!("/v1/subjects/{s}/versions/1?force=true"));
    assert_eq!(r.status, 200, "{}", r.text());
    let o = can_i("users-v2.lock", "pretty");
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(
        out(&o).contains("? unknown") && out(&o).contains("was deleted"),
        "{}",
        out(&o)
    );

    // Undeploy the caller: nothing shares the contract any more.
    cli.ok(&["undeploy", "--service", "orders", "--env", &env]);
    let o = can_i("users-v3.lock", "pretty");
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let history = get(b, &format!("/v1/environments/{env}/services/orders")).json();
    assert_eq!(history["deployments"][0]["current"], false, "{history}");
    assert!(history["deployments"][0]["ended_at"].is_string());
}

#[test]
fn deployment_loop_sqlite() {
    let tmp = tempfile::tempdir().unwrap();
    deployment_loop(&tmpdb(tmp.path()));
}

#[test]
fn deployment_loop_postgres() {
    deployment_loop(&postgres_url());
}

/// Eight records of one service in one environment at once: each is kept, exactly one is
/// current (the last to commit).
fn concurrent_records(database: &str) {
    let srv = Server::start(database, &[], &[]);
    let b = srv.base.clone();
    let s = subject("acme.users.v1");
    let meta = push(&b, &s, V1, false);
    let digest = meta["digest"].as_str().unwrap().to_string();
    let env = format!("staging-{}", std::process::id());
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let (b, s, env, digest) = (b.clone(), s.clone(), env.clone(), digest.clone());
            std::thread::spawn(move || {
                let body = json!({"service": "users", "pins": [{"subject": s, "version": 1, "digest": digest, "role": "serves"}], "labels": {"build": i.to_string()}});
                let r = post(&b, &format!("/v1/environments/{env}/deployments"), &body);
                assert_eq!(r.status, 201, "{}", r.text());
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let history = get(&b, &format!("/v1/environments/{env}/services/users")).json();
    let list = history["deployments"].as_array().unwrap();
    assert_eq!(list.len(), 8, "none lost: {history}");
    assert_eq!(list.iter().filter(|d| d["current"] == true).count(), 1);
    assert_eq!(list[0]["current"], true, "the newest is current");
    let builds: std::collections::BTreeSet<&str> = list
        .iter()
        .map(|d| d["labels"]["build"].as_str().unwrap())
        .collect();
    assert_eq!(builds.len(), 8);
    let now = get(&b, &format!("/v1/environments/{env}")).json();
    assert_eq!(now["deployments"].as_array().unwrap().len(), 1, "{now}");
}

#[test]
fn concurrent_records_sqlite() {
    let tmp = tempfile::tempdir().unwrap();
    concurrent_records(&tmpdb(tmp.path()));
}

#[test]
fn concurrent_records_postgres() {
    concurrent_records(&postgres_url());
}

/// Instances that report themselves count while their reports are fresh.
#[test]
fn reporting_instances_expire() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = Server::start(&tmpdb(tmp.path()), &[], &[]);
    let b = &srv.base;
    let s = subject("acme.users.v1");
    push(b, &s, V1, false);
    let report = json!({"service": "users", "instance": "pod-1", "pins": [{"subject": s, "version": 1, "role": "serves"}], "ttl_secs": 1});
    let r = post(b, "/v1/environments/dev/instances", &report);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["expires_at"].is_string());
    let now = get(b, "/v1/environments/dev").json();
    assert_eq!(now["deployments"][0]["instance"], "pod-1", "{now}");
    assert_eq!(
        get(b, &format!("/v1/subjects/{s}/versions/1/consumers"))
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // A heartbeat with the same pins extends the report rather than adding a deployment.
    let r = post(b, "/v1/environments/dev/instances", &report);
    assert_eq!(r.status, 200);
    let history = get(b, "/v1/environments/dev/services/users").json();
    assert_eq!(
        history["deployments"].as_array().unwrap().len(),
        1,
        "{history}"
    );
    std::thread::sleep(std::time::Duration::from_millis(1600));
    let now = get(b, "/v1/environments/dev").json();
    assert!(
        now["deployments"].as_array().unwrap().is_empty(),
        "expired: {now}"
    );
    assert!(
        get(b, &format!("/v1/subjects/{s}/versions/1/consumers"))
            .json()
            .as_array()
            .unwrap()
            .is_empty()
    );
}

/// Bad inputs are refused, named, and change nothing.
#[test]
fn bad_inputs_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = Server::start(&tmpdb(tmp.path()), &[], &[]);
    let b = &srv.base;
    let s = subject("acme.users.v1");
    push(b, &s, V1, false);
    let cli = Cli {
        base: b,
        dir: tmp.path(),
    };
    cli.ok(&["pin", &format!("{s}@1"), "--lock", "users.lock"]);
    // Unknown environment: only record-deployment creates one.
    let o = cli.run(&[
        "can-i-deploy",
        "--service",
        "users",
        "--env",
        "nowhere",
        "--lock",
        "users.lock",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        out(&o).contains("no environment \"nowhere\""),
        "{}",
        out(&o)
    );
    let o = cli.run(&["undeploy", "--service", "users", "--env", "nowhere"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(out(&o).contains("nowhere"), "{}", out(&o));
    cli.ok(&[
        "record-deployment",
        "--service",
        "users",
        "--env",
        "qa",
        "--lock",
        "users.lock",
    ]);
    let o = cli.run(&["undeploy", "--service", "billing", "--env", "qa"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        out(&o).contains("\"billing\" is not deployed in \"qa\""),
        "{}",
        out(&o)
    );
    let record = |lock: &str| {
        cli.run(&[
            "record-deployment",
            "--service",
            "users",
            "--env",
            "qa",
            "--lock",
            lock,
        ])
    };
    // A malformed lock file.
    std::fs::write(tmp.path().join("bad.lock"), "{ not json").unwrap();
    let o = record("bad.lock");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        out(&o).contains("bad.lock") && out(&o).contains("not a protoreg lock file"),
        "{}",
        out(&o)
    );
    // A lock whose digest is not the registry's.
    let lock = std::fs::read_to_string(tmp.path().join("users.lock")).unwrap();
    let mut v: Value = serde_json::from_str(&lock).unwrap();
    v["digest"] = json!("sha256:0000000000000000000000000000000000000000000000000000000000000000");
    std::fs::write(tmp.path().join("forged.lock"), v.to_string()).unwrap();
    let o = record("forged.lock");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        out(&o).contains("the lock's digest sha256:0000"),
        "{}",
        out(&o)
    );
    // A version that does not exist, a bad role, a bad name.
    for (body, expect) in [
        (
            json!({"service": "users", "pins": [{"subject": s, "version": 9, "role": "serves"}]}),
            "no such live version",
        ),
        (
            json!({"service": "users", "pins": [{"subject": s, "version": 1, "role": "owns"}]}),
            "is not \\\"serves\\\" or \\\"calls\\\"",
        ),
        (
            json!({"service": "../users", "pins": [{"subject": s, "version": 1, "role": "serves"}]}),
            "invalid service name",
        ),
        (json!({"service": "users", "pins": []}), "pins: 1-256"),
    ] {
        let r = post(b, "/v1/environments/qa/deployments", &body);
        assert!(matches!(r.status, 400 | 404), "{body}: {}", r.text());
        assert!(r.text().contains(expect), "{body}: {}", r.text());
    }
    // Nothing of that changed what runs in qa.
    let history = get(b, "/v1/environments/qa/services/users").json();
    assert_eq!(
        history["deployments"].as_array().unwrap().len(),
        1,
        "{history}"
    );
}
