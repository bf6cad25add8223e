//! End-to-end tests of the registry: real `protoreg serve` processes on SQLite files and on
//! the PostgreSQL at 127.0.0.1:5432 (database `test`; override with PROTOREG_TEST_POSTGRES),
//! driven over HTTP and through the client commands. Nothing is mocked; the PostgreSQL tests
//! fail, never skip, when the database is unreachable.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[path = "support/registry.rs"]
mod harness;
use harness::*;

const V1: &str = "syntax = \"proto3\";\npackage shop.v1;\nmessage Item {\n  string id = 1;\n  string name = 2;\n}\n";
const V2: &str = "syntax = \"proto3\";\npackage shop.v1;\nmessage Item {\n  string id = 1;\n  string name = 2;\n  int64 price = 3;\n}\n";
const BREAKING: &str =
    "syntax = \"proto3\";\npackage shop.v1;\nmessage Item {\n  string id = 1;\n}\n";

fn files(text: &str) -> Value {
    json!({"files": {"shop/v1/shop.proto": text}})
}

#[test]
fn sqlite_api_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = Server::start(&tmpdb(tmp.path()), &["--max-body-bytes", "20000"], &[]);
    let b = &srv.base;
    let s = subject("shop");
    assert_eq!(get(b, "/healthz").status, 200);
    assert_eq!(get(b, "/readyz").status, 200);

    // Push: 201 new, 200 same content, 409 breaking, 422 compile error.
    let r = post(
        b,
        &format!("/v1/subjects/{s}/versions"),
        &json!({"files": {"shop/v1/shop.proto": V1}, "labels": {"git_commit": "abc123"}}),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let v1 = r.json();
    assert_eq!(v1["version"], 1);
    assert!(v1["digest"].as_str().unwrap().starts_with("sha256:"));
    let r = post(b, &format!("/v1/subjects/{s}/versions"), &files(V1));
    assert_eq!((r.status, r.json()["version"].clone()), (200, json!(1)));
    let r = post(b, &format!("/v1/subjects/{s}/versions"), &files(BREAKING));
    assert_eq!(r.status, 409);
    let body = r.json();
    assert_eq!(body["error"]["code"], "incompatible");
    let f = &body["findings"][0];
    assert_eq!(f["type"], "FIELD_NO_DELETE");
    assert_eq!(f["path"], "shop/v1/shop.proto");
    assert_eq!(f["start_line"], 3);
    let r = post(
        b,
        &format!("/v1/subjects/{s}/versions"),
        &files("syntax = \"proto3\";\nmessage A {\n  Nope n = 1;\n}\n"),
    );
    assert_eq!(r.status, 422);
    let d = &r.json()["error"]["details"]["diagnostics"][0];
    assert_eq!(
        (d["path"].as_str(), d["line"].as_u64(), d["column"].as_u64()),
        (Some("shop/v1/shop.proto"), Some(3), Some(3))
    );

    // Dry run.
    let r = post(b, &format!("/v1/subjects/{s}/check"), &files(BREAKING));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["compatible"], false);
    let r = post(b, &format!("/v1/subjects/{s}/check"), &files(V2));
    assert_eq!(r.json()["compatible"], true);
    let r = post(b, &format!("/v1/subjects/{s}/versions"), &files(V2));
    assert_eq!(r.status, 201);
    let v2 = r.json();

    // Bad requests change nothing.
    for (body, want) in [
        (json!({"files": {"../etc/passwd.proto": "x"}}), 400),
        (json!({"files": {"/abs.proto": "x"}}), 400),
        (json!({"files": {"notproto.txt": "x"}}), 400),
        (json!({"files": {}}), 400),
        (json!({"nofiles": 1}), 400),
    ] {
        let r = post(b, &format!("/v1/subjects/{s}/versions"), &body);
        assert_eq!(
            r.status,
            want,
            "{body}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert!(r.json()["error"]["message"].is_string());
    }
    let r = send(
        "POST",
        b,
        &format!("/v1/subjects/{s}/versions"),
        b"{not json",
        None,
    );
    assert_eq!(r.status, 400);
    let r = send(
        "POST",
        b,
        &format!("/v1/subjects/{s}/versions"),
        &[0xff, 0xfe, 0x00],
        None,
    );
    assert_eq!(r.status, 400);
    let big = "// padding\n".repeat(3000);
    let r = post(
        b,
        &format!("/v1/subjects/{s}/versions"),
        &files(&format!("{V2}{big}")),
    );
    assert_eq!(r.status, 413);
    let r = post(b, "/v1/subjects/bad%20name/versions", &files(V1));
    assert_eq!(r.status, 400);
    // Deep nesting is a compile error, not a crash.
    let deep = format!(
        "syntax = \"proto3\";\n{}{}",
        "message A {\n".repeat(300),
        "}\n".repeat(300)
    );
    let r = post(b, &format!("/v1/subjects/{s}/check"), &files(&deep));
    assert!(matches!(r.status, 200 | 422), "{}", r.status);
    assert_eq!(get(b, "/healthz").status, 200);

    // Browse.
    let versions = get(b, &format!("/v1/subjects/{s}/versions")).json();
    assert_eq!(
        versions.as_array().unwrap().len(),
        2,
        "nothing was created by the bad pushes"
    );
    assert_eq!(versions[0]["labels"]["git_commit"], "abc123");
    let latest = get(b, &format!("/v1/subjects/{s}/versions/latest")).json();
    assert_eq!(latest["version"], 2);
    assert_eq!(latest["files"]["shop/v1/shop.proto"], V2);
    let r = get(
        b,
        &format!("/v1/subjects/{s}/versions/1/files/shop/v1/shop.proto"),
    );
    assert_eq!(
        (r.status, String::from_utf8_lossy(&r.body).to_string()),
        (200, V1.to_string())
    );
    let r = get(b, &format!("/v1/subjects/{s}/versions/1/descriptor"));
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "application/x-protobuf");
    let etag = r.headers["etag"].to_str().unwrap().to_string();
    assert_eq!(etag, format!("\"{}\"", v1["digest"].as_str().unwrap()));
    let fds =
        <prost_types::FileDescriptorSet as prost::Message>::decode(r.body.as_slice()).unwrap();
    assert!(fds.file.iter().any(|f| f.name() == "shop/v1/shop.proto"));
    assert_eq!(
        get_with(
            b,
            &format!("/v1/subjects/{s}/versions/1/descriptor"),
            &[("If-None-Match", &etag)]
        )
        .status,
        304
    );
    assert_eq!(get(b, &format!("/v1/subjects/{s}/versions/9")).status, 404);
    assert_eq!(
        get(b, &format!("/v1/subjects/{s}/versions/zero")).status,
        400
    );
    let found = get(
        b,
        &format!("/v1/schemas/{}", v2["digest"].as_str().unwrap()),
    )
    .json();
    assert_eq!(found[0]["version"], 2);
    let subj = get(b, &format!("/v1/subjects/{s}")).json();
    assert_eq!(subj["versions"], json!([1, 2]));
    assert_eq!(subj["config"]["mode"], "BACKWARD");

    // Diff both ways with text diffs.
    let d = get(b, &format!("/v1/subjects/{s}/diff?from=1&to=2")).json();
    assert_eq!(d["breaking"], json!([]));
    assert_eq!(d["breaking_reverse"][0]["type"], "FIELD_NO_DELETE");
    assert!(
        d["files"][0]["diff"]
            .as_str()
            .unwrap()
            .contains("+  int64 price = 3;")
    );

    // Config.
    let r = send(
        "PUT",
        b,
        &format!("/v1/subjects/{s}/config"),
        br#"{"mode":"SIDEWAYS","categories":["FILE"]}"#,
        None,
    );
    assert_eq!(r.status, 400);
    let r = send(
        "PUT",
        b,
        &format!("/v1/subjects/{s}/config"),
        br#"{"mode":"FULL","categories":["WIRE"]}"#,
        None,
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        get(b, &format!("/v1/subjects/{s}/config")).json()["mode"],
        "FULL"
    );
    // FULL: the old version checked against the new one too: adding a field is fine both ways on WIRE.
    let v3 = V2.replace("}\n", "  bool sale = 4;\n}\n");
    assert_eq!(
        post(b, &format!("/v1/subjects/{s}/versions"), &files(&v3)).status,
        201
    );

    // Delete: soft, then permanent; numbers are never reused.
    assert_eq!(
        delete(b, &format!("/v1/subjects/{s}/versions/3?permanent=true")).status,
        409
    );
    assert_eq!(
        delete(b, &format!("/v1/subjects/{s}/versions/3")).status,
        200
    );
    assert_eq!(
        get(b, &format!("/v1/subjects/{s}/versions/latest")).json()["version"],
        2
    );
    assert_eq!(
        delete(b, &format!("/v1/subjects/{s}/versions/3?permanent=true")).status,
        200
    );
    assert_eq!(
        delete(b, &format!("/v1/subjects/{s}/versions/3")).status,
        404
    );
    let r = post(b, &format!("/v1/subjects/{s}/versions"), &files(&v3));
    assert_eq!(r.json()["version"], 4);

    // Metrics and OpenAPI.
    let m = String::from_utf8(get(b, "/metrics").body).unwrap();
    assert!(
        m.contains("protoreg_pushes_total{outcome=\"refused\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("protoreg_http_request_duration_seconds_bucket"),
        "{m}"
    );
    let api = get(b, "/openapi.json").json();
    assert_eq!(api["openapi"], "3.1.0");
    assert!(api["paths"]["/v1/subjects/{subject}/versions"]["post"].is_object());
}

#[test]
fn tokens_and_roles() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = Server::start(
        &tmpdb(tmp.path()),
        &[],
        &[(
            "PROTOREG_TOKENS",
            "reader-token-1:read,writer-token-1:write,admin-token-1:admin",
        )],
    );
    let b = &srv.base;
    let s = subject("auth");
    let path = format!("/v1/subjects/{s}/versions");
    let body = files(V1).to_string();
    assert_eq!(send("POST", b, &path, body.as_bytes(), None).status, 401);
    assert_eq!(
        send("POST", b, &path, body.as_bytes(), Some("wrong-token-00")).status,
        401
    );
    assert_eq!(
        send("POST", b, &path, body.as_bytes(), Some("reader-token-1")).status,
        403
    );
    assert_eq!(
        send("POST", b, &path, body.as_bytes(), Some("writer-token-1")).status,
        201
    );
    let cfg = br#"{"mode":"NONE","categories":["FILE"]}"#;
    assert_eq!(
        send("PUT", b, "/v1/config", cfg, Some("writer-token-1")).status,
        403
    );
    assert_eq!(
        send("PUT", b, "/v1/config", cfg, Some("admin-token-1")).status,
        200
    );
    assert_eq!(get(b, "/v1/subjects").status, 401);
    assert_eq!(get(b, "/healthz").status, 200);
    // The client commands carry the token.
    let dir = tmp.path().join("m/shop/v1");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("shop.proto"), V2).unwrap();
    let o = Command::new(bin())
        .args([
            "push",
            tmp.path().join("m").to_str().unwrap(),
            "--subject",
            &s,
            "--registry",
            b,
        ])
        .env("PROTOREG_TOKEN", "writer-token-1")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("@2 created"));
}

#[test]
fn refuses_anonymous_non_loopback() {
    let tmp = tempfile::tempdir().unwrap();
    let o = Command::new(bin())
        .args([
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--database",
            &tmpdb(tmp.path()),
        ])
        .env_remove("PROTOREG_TOKENS")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--allow-anonymous"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// 50 pushes race on one subject across `servers`: accepted versions are 1..N without gaps,
/// every one is stored intact, and every breaking push is refused whatever it raced with.
fn race(servers: &[&Server], s: &str) {
    let results = Arc::new(Mutex::new(Vec::new()));
    assert_eq!(
        post(
            &servers[0].base,
            &format!("/v1/subjects/{s}/versions"),
            &files(V1)
        )
        .status,
        201
    );
    let mut handles = Vec::new();
    for i in 0..50 {
        let base = servers[i % servers.len()].base.clone();
        let s = s.to_string();
        let results = results.clone();
        handles.push(std::thread::spawn(move || {
            // Every 10th push deletes a field: breaking against any accepted version.
            let (text, breaking) = if i % 10 == 9 {
                (format!("{BREAKING}// pusher {i}\n"), true)
            } else {
                (format!("{V1}// pusher {i}\n"), false)
            };
            let r = post(&base, &format!("/v1/subjects/{s}/versions"), &json!({"files": {"shop/v1/shop.proto": text}, "labels": {"pusher": i.to_string()}}));
            results.lock().unwrap().push((i, breaking, r.status, r.json()));
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    let results = results.lock().unwrap();
    let mut accepted = Vec::new();
    for (i, breaking, status, body) in results.iter() {
        if *breaking {
            assert_eq!(*status, 409, "pusher {i}: {body}");
        } else {
            assert_eq!(*status, 201, "pusher {i}: {body}");
            accepted.push(body["version"].as_i64().unwrap());
        }
    }
    accepted.sort();
    let want: Vec<i64> = (2..=46).collect();
    assert_eq!(
        accepted, want,
        "45 accepted pushes get versions 2..46, no gaps, no duplicates"
    );
    let listed = get(&servers[0].base, &format!("/v1/subjects/{s}/versions")).json();
    let numbers: Vec<i64> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, (1..=46).collect::<Vec<_>>());
    let pushers: std::collections::BTreeSet<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["labels"]["pusher"].as_str().map(str::to_string))
        .collect();
    assert_eq!(pushers.len(), 45, "every accepted push is stored");
}

#[test]
fn sqlite_race_50_pushes() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = Server::start(&tmpdb(tmp.path()), &[], &[]);
    race(&[&srv], &subject("race.sqlite"));
}

#[test]
fn postgres_two_replicas_race_50_pushes() {
    let url = postgres_url();
    let a = Server::start(&url, &[], &[]);
    let b = Server::start(&url, &[], &[]);
    assert_eq!(
        get(&a.base, "/readyz").status,
        200,
        "PostgreSQL at {url} must be reachable"
    );
    race(&[&a, &b], &subject("race.pg"));
}

#[test]
fn postgres_api_basics() {
    let srv = Server::start(&postgres_url(), &[], &[]);
    let b = &srv.base;
    let s = subject("pg");
    assert_eq!(
        post(b, &format!("/v1/subjects/{s}/versions"), &files(V1)).status,
        201
    );
    assert_eq!(
        post(b, &format!("/v1/subjects/{s}/versions"), &files(BREAKING)).status,
        409
    );
    assert_eq!(
        post(b, &format!("/v1/subjects/{s}/versions"), &files(V2)).status,
        201
    );
    let r = get(b, &format!("/v1/subjects/{s}/versions/2/descriptor"));
    assert_eq!(r.status, 200);
    assert!(!r.body.is_empty());
    assert_eq!(
        delete(b, &format!("/v1/subjects/{s}/versions/2")).status,
        200
    );
    assert_eq!(
        get(b, &format!("/v1/subjects/{s}/versions/latest")).json()["version"],
        1
    );
}

/// kill -9 while pushes are in flight, restart: every acknowledged version is there, intact.
fn crash(database: &str) {
    let s = subject("crash");
    let mut srv = Server::start(database, &[], &[]);
    let acked: Arc<Mutex<BTreeMap<i64, String>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut handles = Vec::new();
    for t in 0..4 {
        let (base, s, acked, stop) = (srv.base.clone(), s.clone(), acked.clone(), stop.clone());
        handles.push(std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                let text = format!("{V1}// writer {t} push {i}\n");
                let Ok(mut r) = agent()
                    .post(&format!("{base}/v1/subjects/{s}/versions"))
                    .send_json(json!({"files": {"shop/v1/shop.proto": text}}))
                else {
                    return;
                };
                if r.status() == 201 {
                    let body: Value = r.body_mut().read_json().unwrap();
                    acked.lock().unwrap().insert(
                        body["version"].as_i64().unwrap(),
                        body["digest"].as_str().unwrap().to_string(),
                    );
                }
            }
        }));
    }
    let start = Instant::now();
    while acked.lock().unwrap().len() < 10 && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    srv.kill9();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 10,
        "pushes were acknowledged before the crash"
    );
    let srv = Server::start(database, &[], &[]);
    let listed = get(&srv.base, &format!("/v1/subjects/{s}/versions")).json();
    let stored: BTreeMap<i64, String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_i64().unwrap(),
                v["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (v, digest) in &acked {
        assert_eq!(
            stored.get(v),
            Some(digest),
            "acknowledged version {v} survived the crash intact"
        );
        let r = get(
            &srv.base,
            &format!("/v1/subjects/{s}/versions/{v}/descriptor"),
        );
        assert!(
            <prost_types::FileDescriptorSet as prost::Message>::decode(r.body.as_slice()).is_ok()
        );
    }
    let numbers: Vec<i64> = stored.keys().copied().collect();
    assert_eq!(
        numbers,
        (1..=numbers.len() as i64).collect::<Vec<_>>(),
        "no gaps after the crash"
    );
    // The registry keeps working after the crash.
    assert_eq!(
        post(&srv.base, &format!("/v1/subjects/{s}/versions"), &files(V2)).status,
        201
    );
}

#[test]
fn sqlite_crash_keeps_acknowledged_versions() {
    let tmp = tempfile::tempdir().unwrap();
    crash(&tmpdb(tmp.path()));
}

#[test]
fn postgres_crash_keeps_acknowledged_versions() {
    crash(&postgres_url());
}

#[test]
fn client_commands_and_registry_references() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = Server::start(&tmpdb(tmp.path()), &[], &[]);
    let s = subject("cli");
    let module = |name: &str, text: &str| -> PathBuf {
        let d = tmp.path().join(name);
        std::fs::create_dir_all(d.join("shop/v1")).unwrap();
        std::fs::write(d.join("shop/v1/shop.proto"), text).unwrap();
        d
    };
    let run = |args: &[&str]| {
        let o = Command::new(bin())
            .args(args)
            .env("PROTOREG_REGISTRY", &srv.base)
            .env("PROTOREG_CACHE_DIR", tmp.path().join("cache"))
            .env_remove("PROTOREG_TOKEN")
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).to_string(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        )
    };
    let m1 = module("m1", V1);
    let mb = module("mb", BREAKING);
    let (code, out, err) = run(&[
        "push",
        m1.to_str().unwrap(),
        "--subject",
        &s,
        "--label",
        "branch=main",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    let (code, out, _) = run(&["push", mb.to_str().unwrap(), "--subject", &s]);
    assert_eq!(code, Some(100));
    assert!(
        out.contains("error[FIELD_NO_DELETE]") && out.contains("reserved 2;"),
        "{out}"
    );
    let against_registry = || {
        run(&[
            "breaking",
            mb.to_str().unwrap(),
            "--against",
            &format!("registry:{s}@1"),
            "--error-format",
            "json",
        ])
    };
    let (code, out, _) = against_registry();
    assert_eq!(code, Some(100));
    assert!(out.contains("FIELD_NO_DELETE"), "{out}");
    // The version's descriptor set is kept in the cache under its digest; the next run
    // reads it from there and answers the same.
    let kept = tmp.path().join("cache/check/registry");
    assert!(
        std::fs::read_dir(&kept).map(|d| d.count()).unwrap_or(0) > 0,
        "no cached registry version in {}",
        kept.display()
    );
    let again = against_registry();
    assert_eq!((again.0, &again.1), (code, &out));
    let pulled = tmp.path().join("pulled");
    let (code, _, err) = run(&["pull", &format!("{s}@1"), "-o", pulled.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        std::fs::read_to_string(pulled.join("shop/v1/shop.proto")).unwrap(),
        V1
    );
    let (_, out, _) = run(&["subjects"]);
    assert!(out.contains(&s));
    let (_, out, _) = run(&["log", &s]);
    assert!(out.contains("branch=main"), "{out}");
    let m2 = module("m2", V2);
    assert_eq!(
        run(&["push", m2.to_str().unwrap(), "--subject", &s]).0,
        Some(0)
    );
    let (code, out, _) = run(&["diff", &format!("{s}@1"), &format!("{s}@2")]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("+  int64 price = 3;"), "{out}");

    // protoreg check: against the registry, then against git HEAD when it is unreachable.
    let proj = tmp.path().join("proj");
    std::fs::create_dir_all(&proj).unwrap();
    let git = |args: &[&str]| {
        assert!(
            Command::new("git")
                .arg("-C")
                .arg(&proj)
                .args(args)
                .output()
                .unwrap()
                .status
                .success()
        )
    };
    git(&["init", "-q"]);
    git(&["config", "user.email", "t@example.com"]);
    git(&["config", "user.name", "t"]);
    std::fs::create_dir_all(proj.join("proto/shop/v1")).unwrap();
    std::fs::write(proj.join("proto/shop/v1/shop.proto"), V2).unwrap();
    std::fs::write(
        proj.join("protoreg.yaml"),
        format!(
            "registry: {}\nsubjects:\n  - subject: {s}\n    dir: proto\n",
            srv.base
        ),
    )
    .unwrap();
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "v2"]);
    let cfg = proj.join("protoreg.yaml");
    let check = |registry: &str| {
        let o = Command::new(bin())
            .args([
                "check",
                "--config",
                cfg.to_str().unwrap(),
                "--registry",
                registry,
            ])
            .output()
            .unwrap();
        (
            o.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        )
    };
    let (code, out) = check(&srv.base);
    assert_eq!(code, Some(0), "{out}");
    std::fs::write(proj.join("proto/shop/v1/shop.proto"), BREAKING).unwrap();
    let (code, out) = check(&srv.base);
    assert_eq!(code, Some(100), "{out}");
    assert!(out.contains("FIELD_NO_DELETE"), "{out}");
    let (code, out) = check("http://127.0.0.1:9");
    assert_eq!(code, Some(100), "{out}");
    assert!(out.contains("git HEAD"), "{out}");
}

#[test]
fn sigterm_shuts_down_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmpdb(tmp.path());
    let mut srv = Server::start(&db, &[], &[]);
    let s = subject("term");
    assert_eq!(
        post(&srv.base, &format!("/v1/subjects/{s}/versions"), &files(V1)).status,
        201
    );
    let pid = srv.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let start = Instant::now();
    let status = loop {
        if let Some(st) = srv.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "server did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "graceful exit, got {status:?}");
    let srv = Server::start(&db, &[], &[]);
    assert_eq!(
        get(&srv.base, &format!("/v1/subjects/{s}/versions/1")).status,
        200
    );
}

/// An admin lets a breaking push through with a reason; a writer cannot. The findings, the
/// reason and who accepted them are stored with the version and read back through the API,
/// `protoreg log` and the web UI; the version records the built-in schemas it used.
fn accepted_break(database: &str) {
    let srv = Server::start(
        database,
        &[],
        &[(
            "PROTOREG_TOKENS",
            "writer-token-1:write,admin-token-1:admin:alice@example.com",
        )],
    );
    let b = &srv.base;
    let s = subject("accept");
    let path = format!("/v1/subjects/{s}/versions");
    let with_http = "syntax = \"proto3\";\npackage shop.v1;\nimport \"google/api/annotations.proto\";\nmessage Item {\n  string id = 1;\n  string name = 2;\n}\nservice Shop {\n  rpc Get(Item) returns (Item) { option (google.api.http) = { get: \"/v1/items/{id}\" }; }\n}\n";
    let body = files(with_http).to_string();
    let r = send("POST", b, &path, body.as_bytes(), Some("writer-token-1"));
    assert_eq!(r.status, 201, "{}", r.text());
    let breaking = with_http.replace("  string name = 2;\n", "");
    let mut push = files(&breaking);
    push["accept_breaking"] = json!({"reason": "name moved to Profile"});
    let push = push.to_string();
    // A writer may not accept a break; nothing is created.
    let r = send("POST", b, &path, push.as_bytes(), Some("writer-token-1"));
    assert_eq!(r.status, 403, "{}", r.text());
    // An empty reason is refused.
    let mut empty = files(&breaking);
    empty["accept_breaking"] = json!({"reason": "  "});
    let r = send(
        "POST",
        b,
        &path,
        empty.to_string().as_bytes(),
        Some("admin-token-1"),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    // Without accepting, even an admin's breaking push is refused.
    let r = send(
        "POST",
        b,
        &path,
        files(&breaking).to_string().as_bytes(),
        Some("admin-token-1"),
    );
    assert_eq!(r.status, 409, "{}", r.text());
    let r = send("POST", b, &path, push.as_bytes(), Some("admin-token-1"));
    assert_eq!(r.status, 201, "{}", r.text());
    let reply = r.json();
    assert_eq!(reply["version"], 2);
    assert_eq!(reply["accepted_break"]["reason"], "name moved to Profile");
    let by = reply["accepted_break"]["by"].as_str().unwrap().to_string();
    assert_eq!(by, "alice@example.com", "the name the token was issued to");
    assert_eq!(
        reply["accepted_break"]["findings"][0]["type"],
        "FIELD_NO_DELETE"
    );
    // Read back: the version, the listing, and `protoreg log`.
    let auth = [("Authorization", "Bearer admin-token-1")];
    let v = get_with(b, &format!("/v1/subjects/{s}/versions/2"), &auth).json();
    assert_eq!(v["accepted_break"]["reason"], "name moved to Profile");
    assert_eq!(v["accepted_break"]["by"], by.as_str());
    assert_eq!(
        v["accepted_break"]["findings"][0]["element"],
        "shop.v1.Item.name"
    );
    assert!(
        v["labels"]["protoreg.builtins"]
            .as_str()
            .is_some_and(|l| l.contains("google/api/annotations.proto")),
        "{v}"
    );
    let v1 = get_with(b, &format!("/v1/subjects/{s}/versions/1"), &auth).json();
    assert!(v1.get("accepted_break").is_none(), "{v1}");
    let list = get_with(b, &format!("/v1/subjects/{s}/versions"), &auth).json();
    let items = list["items"]
        .as_array()
        .or(list.as_array())
        .unwrap()
        .clone();
    assert_eq!(items.len(), 2);
    assert!(
        items
            .iter()
            .any(|i| i["accepted_break"]["reason"] == "name moved to Profile")
    );
    let o = Command::new(bin())
        .args(["log", &s, "--registry", b])
        .env("PROTOREG_TOKEN", "admin-token-1")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        out.contains(&format!(
            "accepted 1 breaking change(s) by {by}: name moved to Profile"
        )),
        "{out}"
    );
    assert!(out.contains("(accepted: name moved to Profile)"), "{out}");
    let page = get_with(b, &format!("/ui/subjects/{s}"), &auth).text();
    assert!(page.contains("accepted 1 breaking change(s)"), "{page}");
    // Under BACKWARD the push's own check is kept as the version's diff, which the diff
    // page shows (what `/v1/…/diff` computes afresh).
    let computed = get_with(b, &format!("/v1/subjects/{s}/diff?from=1&to=2"), &auth).json();
    assert_eq!(
        computed["breaking"][0]["type"], "FIELD_NO_DELETE",
        "{computed}"
    );
    let diff_page = get_with(b, &format!("/ui/subjects/{s}/diff?from=1&to=2"), &auth).text();
    assert!(diff_page.contains("FIELD_NO_DELETE"), "{diff_page}");
    // protoreg's own rules in a subject policy: adding REQUIRED to an existing field is
    // refused once FIELD_BEHAVIOR is among the categories (the built-in
    // google/api/field_behavior.proto resolves the import).
    let s2 = subject("behavior");
    let path2 = format!("/v1/subjects/{s2}/versions");
    let plain = "syntax = \"proto3\";\npackage shop.v1;\nimport \"google/api/field_behavior.proto\";\nmessage Item {\n  string id = 1;\n}\n";
    let required = plain.replace(
        "string id = 1;",
        "string id = 1 [(google.api.field_behavior) = REQUIRED];",
    );
    let r = send(
        "POST",
        b,
        &path2,
        files(plain).to_string().as_bytes(),
        Some("admin-token-1"),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = send(
        "POST",
        b,
        &path2,
        files(&required).to_string().as_bytes(),
        Some("admin-token-1"),
    );
    assert_eq!(
        r.status,
        201,
        "FILE alone does not read field behavior: {}",
        r.text()
    );
    let r = send(
        "PUT",
        b,
        &format!("/v1/subjects/{s2}/config"),
        br#"{"categories": ["FILE", "FIELD_BEHAVIOR"]}"#,
        Some("admin-token-1"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = send(
        "POST",
        b,
        &path2,
        files(plain).to_string().as_bytes(),
        Some("admin-token-1"),
    );
    assert_eq!(r.status, 201, "dropping REQUIRED loosens: {}", r.text());
    let r = send(
        "POST",
        b,
        &path2,
        files(&required).to_string().as_bytes(),
        Some("admin-token-1"),
    );
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(
        r.text().contains("FIELD_BEHAVIOR_NO_NEW_REQUIRED"),
        "{}",
        r.text()
    );

    // A push may not set the registry's own labels.
    let mut forged = files(V1);
    forged["labels"] = json!({"protoreg.builtins": "none"});
    let r = send(
        "POST",
        b,
        &path,
        forged.to_string().as_bytes(),
        Some("admin-token-1"),
    );
    assert_eq!(r.status, 400, "{}", r.text());
}

#[test]
fn accepted_break_sqlite() {
    let tmp = tempfile::tempdir().unwrap();
    accepted_break(&tmpdb(tmp.path()));
}

#[test]
fn accepted_break_postgres() {
    accepted_break(&postgres_url());
}
