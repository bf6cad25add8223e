//! End-to-end tests of the registry's dependency model, content-addressed storage and API
//! robustness, on SQLite and on the PostgreSQL at 127.0.0.1:5432 (fails, never skips, when
//! it is unreachable): real `protoreg serve` processes driven over HTTP.

use std::collections::BTreeMap;
use std::io::Write;

use prost::Message;
use serde_json::{Value, json};

#[path = "support/registry.rs"]
mod harness;
use harness::*;

const MONEY_V1: &str = "syntax = \"proto3\";\npackage acme.common.v1;\nmessage Money {\n  string currency = 1;\n  int64 units = 2;\n}\n";
const MONEY_GONE: &str =
    "syntax = \"proto3\";\npackage acme.common.v1;\nmessage Amount {\n  string currency = 1;\n}\n";
const ORDERS: &str = "syntax = \"proto3\";\npackage acme.orders.v1;\nimport \"acme/common/v1/money.proto\";\nmessage Order {\n  string id = 1;\n  acme.common.v1.Money total = 2;\n}\n";

fn push(base: &str, s: &str, files: &[(&str, &str)], deps: &[String]) -> Resp {
    let files: BTreeMap<&str, &str> = files.iter().copied().collect();
    post(
        base,
        &format!("/v1/subjects/{s}/versions"),
        &json!({"files": files, "deps": deps}),
    )
}

fn put_config(base: &str, s: &str, body: &Value) -> Resp {
    send(
        "PUT",
        base,
        &format!("/v1/subjects/{s}/config"),
        body.to_string().as_bytes(),
        None,
    )
}

fn descriptor_names(bytes: &[u8]) -> Vec<String> {
    prost_types::FileDescriptorSet::decode(bytes)
        .expect("a FileDescriptorSet")
        .file
        .iter()
        .map(|f| f.name().to_string())
        .collect()
}

fn error_code(r: &Resp) -> String {
    r.json()["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn dependencies(base: &str) {
    let common = subject("acme.common.v1");
    let other = subject("acme.shared.v1");
    let orders = subject("acme.orders.v1");
    let money = "acme/common/v1/money.proto";
    let order_file = "acme/orders/v1/orders.proto";

    let r = push(base, &common, &[(money, MONEY_V1)], &[]);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let common_digest = r.json()["digest"].as_str().unwrap().to_string();

    // Without the dependency the import is found nowhere: located diagnostic.
    let r = push(base, &orders, &[(order_file, ORDERS)], &[]);
    assert_eq!(r.status, 422);
    let d = &r.json()["error"]["details"]["diagnostics"][0];
    assert_eq!(d["path"], order_file);
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(3), Some(1))
    );

    // Unknown subject or version: 404 naming it; nothing created.
    let r = push(
        base,
        &orders,
        &[(order_file, ORDERS)],
        &[format!("{common}@7")],
    );
    assert_eq!(r.status, 404);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&common)
    );
    let r = push(
        base,
        &orders,
        &[(order_file, ORDERS)],
        &["no.such.subject".into()],
    );
    assert_eq!(r.status, 404);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no.such.subject")
    );
    assert_eq!(
        get(base, &format!("/v1/subjects/{orders}/versions/latest")).status,
        404
    );

    // `@latest` is resolved at push time and stored as the concrete version.
    let r = push(
        base,
        &orders,
        &[(order_file, ORDERS)],
        &[format!("{common}@latest")],
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let body = r.json();
    assert_eq!(
        body["deps"],
        json!([{"subject": common, "version": 1, "digest": common_digest}])
    );
    let v = get(base, &format!("/v1/subjects/{orders}/versions/1")).json();
    assert_eq!(v["deps"][0]["version"], 1);
    assert_eq!(
        v["files"].as_object().unwrap().len(),
        1,
        "only its own files"
    );
    // The descriptor set holds the closure: a consumer decodes with it alone.
    let d = get(
        base,
        &format!("/v1/subjects/{orders}/versions/1/descriptor"),
    );
    let names = descriptor_names(&d.body);
    assert!(names.contains(&money.to_string()), "{names:?}");
    assert!(names.contains(&order_file.to_string()), "{names:?}");

    // The same files and dependencies again: unchanged.
    let r = push(
        base,
        &orders,
        &[(order_file, ORDERS)],
        &[format!("{common}@1")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["version"], 1);

    // Two dependencies providing one path with different texts: 422 naming both.
    let alt = MONEY_V1.replace("int64 units", "int32 units");
    assert_eq!(push(base, &other, &[(money, &alt)], &[]).status, 201);
    let r = push(
        base,
        &orders,
        &[(order_file, ORDERS)],
        &[format!("{common}@1"), format!("{other}@1")],
    );
    assert_eq!(r.status, 422);
    assert_eq!(error_code(&r), "dependency_conflict");
    let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(
        msg.contains(&format!("{common}@1")) && msg.contains(&format!("{other}@1")),
        "{msg}"
    );

    // Cycles: on itself, and through another subject.
    let r = push(
        base,
        &common,
        &[(money, MONEY_V1)],
        &[format!("{common}@1")],
    );
    assert_eq!((r.status, error_code(&r)), (422, "dependency_cycle".into()));
    let r = push(
        base,
        &common,
        &[
            (money, MONEY_V1),
            (
                "acme/common/v1/x.proto",
                "syntax = \"proto3\";\npackage acme.common.v1;\n",
            ),
        ],
        &[format!("{orders}@1")],
    );
    assert_eq!(
        (r.status, error_code(&r)),
        (422, "dependency_cycle".into()),
        "{}",
        String::from_utf8_lossy(&r.body)
    );

    // Who uses what.
    let r = get(
        base,
        &format!("/v1/subjects/{common}/versions/1/dependents"),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!([{"subject": orders, "version": 1}]));

    // A change to the shared subject that breaks a dependent: reported, per dependent.
    assert_eq!(
        put_config(base, &common, &json!({"mode": "NONE"})).status,
        200
    );
    let cfg = get(base, &format!("/v1/subjects/{common}/config")).json();
    assert_eq!(cfg["mode"], "NONE");
    assert_eq!(
        cfg["categories"],
        json!(["FILE"]),
        "a missing field keeps its value"
    );
    let r = post(
        base,
        &format!("/v1/subjects/{common}/check"),
        &json!({"files": {money: MONEY_GONE}}),
    );
    assert_eq!(r.status, 200);
    let broken = &r.json()["dependents"]["broken"];
    assert_eq!(broken[0]["subject"], orders.as_str(), "{broken}");
    assert!(
        broken[0]["diagnostics"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Money"),
        "{broken}"
    );
    let r = push(base, &common, &[(money, MONEY_GONE)], &[]);
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["dependents"]["broken"][0]["version"], 1);
    // A compatible change breaks nobody.
    let r = push(base, &common, &[(money, MONEY_V1)], &[]);
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["dependents"]["broken"], json!([]));

    // Deleting a version others depend on needs force.
    let r = delete(base, &format!("/v1/subjects/{common}/versions/1"));
    assert_eq!((r.status, error_code(&r)), (409, "has_dependents".into()));
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("{orders}@1"))
    );
    assert_eq!(
        get(base, &format!("/v1/subjects/{common}/versions/1")).status,
        200
    );
    let r = delete(
        base,
        &format!("/v1/subjects/{common}/versions/1?force=true"),
    );
    assert_eq!(r.status, 200);
}

#[test]
fn sqlite_dependencies() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmpdb(tmp.path()), &[], &[]);
    dependencies(&server.base);
}

#[test]
fn postgres_dependencies() {
    let server = Server::start(&postgres_url(), &[], &[]);
    dependencies(&server.base);
}

/// Each mode refuses a change that breaks it and accepts one that does not; the versions
/// before are pushed under NONE so that only the mode under test decides.
fn modes(base: &str) {
    let msg =
        |fields: &str| format!("syntax = \"proto3\";\npackage m.v1;\nmessage M {{\n{fields}}}\n");
    let id = "  string id = 1;\n";
    // (mode, history, refused, accepted)
    let cases: Vec<(&str, Vec<String>, String, String)> = vec![
        (
            "BACKWARD",
            vec![msg(&format!("{id}  string x = 2;\n"))],
            msg(id),
            msg(&format!("{id}  string x = 2;\n  string y = 3;\n")),
        ),
        (
            "BACKWARD_TRANSITIVE",
            vec![msg(&format!("{id}  string x = 2;\n")), msg(id)],
            msg(&format!("{id}  string y = 3;\n")),
            msg(&format!("{id}  string x = 2;\n  string y = 3;\n")),
        ),
        (
            "FORWARD",
            vec![msg(&format!("{id}  int32 n = 2;\n"))],
            msg(&format!("{id}  string n = 2;\n")),
            msg(id),
        ),
        (
            "FORWARD_TRANSITIVE",
            vec![msg(&format!("{id}  int32 n = 2;\n")), msg(id)],
            msg(&format!("{id}  string n = 2;\n")),
            msg(&format!("{id}  int64 m = 3;\n")),
        ),
        (
            "FULL",
            vec![msg(&format!("{id}  int32 n = 2;\n"))],
            msg(&format!("{id}  string n = 2;\n")),
            msg(&format!("{id}  int32 n = 2;\n  int64 m = 3;\n")),
        ),
        (
            "FULL_TRANSITIVE",
            vec![msg(&format!("{id}  int32 n = 2;\n")), msg(id)],
            msg(&format!("{id}  int64 m = 3;\n")),
            msg(&format!("{id}  int32 n = 2;\n  int64 m = 3;\n")),
        ),
    ];
    for (mode, history, refused, accepted) in cases {
        let s = subject(&format!("modes.{}", mode.to_lowercase()));
        assert_eq!(
            put_config(base, &s, &json!({"mode": "NONE", "categories": ["FILE"]})).status,
            200
        );
        for h in &history {
            assert_eq!(push(base, &s, &[("m/v1/m.proto", h)], &[]).status, 201);
        }
        assert_eq!(put_config(base, &s, &json!({"mode": mode})).status, 200);
        let r = push(base, &s, &[("m/v1/m.proto", &refused)], &[]);
        assert_eq!(
            r.status,
            409,
            "{mode} must refuse:\n{refused}\n{}",
            String::from_utf8_lossy(&r.body)
        );
        let r = push(base, &s, &[("m/v1/m.proto", &accepted)], &[]);
        assert_eq!(
            r.status,
            201,
            "{mode} must accept:\n{accepted}\n{}",
            String::from_utf8_lossy(&r.body)
        );
    }
}

#[test]
fn sqlite_every_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmpdb(tmp.path()), &[], &[]);
    modes(&server.base);
}

#[test]
fn postgres_every_mode() {
    let server = Server::start(&postgres_url(), &[], &[]);
    modes(&server.base);
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn send_raw(base: &str, path: &str, body: &[u8], headers: &[(&str, &str)]) -> Resp {
    let mut req = agent().post(&format!("{base}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    finish(req.send(body))
}

/// Every error is `{"error": {"code", "message", "details"}}`; gzip bodies; pagination.
#[test]
fn api_robustness() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(
        &tmpdb(tmp.path()),
        &["--max-body-bytes", "4096", "--max-inflated-bytes", "200000"],
        &[],
    );
    let base = &server.base;
    let is_error_json = |r: &Resp| {
        let v = r.json();
        v["error"]["code"].is_string() && v["error"]["message"].is_string()
    };
    let r = get(base, "/v1/no/such/route");
    assert_eq!(r.status, 404);
    assert!(is_error_json(&r));
    let r = get(base, "/v1/subjects/x/diff?from=1");
    assert_eq!(r.status, 400);
    assert!(is_error_json(&r), "{}", String::from_utf8_lossy(&r.body));
    let big = json!({"files": {"a.proto": "x".repeat(10_000)}}).to_string();
    let r = send_raw(
        base,
        "/v1/subjects/s/versions",
        big.as_bytes(),
        &[("content-type", "application/json")],
    );
    assert_eq!(r.status, 413);
    assert!(is_error_json(&r), "{}", String::from_utf8_lossy(&r.body));
    let r = send("PUT", base, "/v1/config", b"{\"mode\": \"SIDEWAYS\"}", None);
    assert_eq!(r.status, 400);
    assert!(is_error_json(&r));

    // The same 10 kB push gzipped fits the 4 kB limit.
    let text = format!(
        "syntax = \"proto3\";\npackage g.v1;\n{}message G {{ string id = 1; }}\n",
        "// padding padding padding padding padding\n".repeat(200)
    );
    let body = json!({"files": {"g/v1/g.proto": text}}).to_string();
    let zipped = gzip(body.as_bytes());
    assert!(zipped.len() < 4096 && body.len() > 4096);
    let headers = [
        ("content-type", "application/json"),
        ("content-encoding", "gzip"),
    ];
    let r = send_raw(base, "/v1/subjects/gz/versions", &zipped, &headers);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        get(base, "/v1/subjects/gz/versions/1/files/g/v1/g.proto").body,
        text.as_bytes()
    );
    // Not gzip, and a bomb: clear errors.
    let r = send_raw(base, "/v1/subjects/gz/versions", b"not gzip", &headers);
    assert_eq!(r.status, 400);
    assert!(is_error_json(&r));
    let bomb = gzip(&vec![b' '; 1_000_000]);
    let r = send_raw(base, "/v1/subjects/gz/versions", &bomb, &headers);
    assert_eq!(r.status, 413);
    assert!(is_error_json(&r));

    // Pagination: bare arrays, the next page's token in a header.
    for s in ["p.a", "p.b", "p.c"] {
        let r = push(
            base,
            s,
            &[("p/p.proto", "syntax = \"proto3\";\npackage p;\n")],
            &[],
        );
        assert_eq!(r.status, 201);
    }
    let mut seen = Vec::new();
    let mut path = "/v1/subjects?page_size=2".to_string();
    loop {
        let r = get(base, &path);
        assert_eq!(r.status, 200);
        let page = r.json();
        assert!(page.as_array().unwrap().len() <= 2);
        seen.extend(
            page.as_array()
                .unwrap()
                .iter()
                .map(|s| s["name"].as_str().unwrap().to_string()),
        );
        match r.headers.get("x-next-page-token") {
            Some(t) => {
                path = format!(
                    "/v1/subjects?page_size=2&page_token={}",
                    t.to_str().unwrap()
                )
            }
            None => break,
        }
    }
    assert_eq!(seen, ["gz", "p.a", "p.b", "p.c"]);
    assert_eq!(get(base, "/v1/subjects?page_size=0").status, 400);
}

/// A database written by the previous release (schema 1: files and descriptor inline) is
/// upgraded in place: every version keeps its number, digest, files, labels, time and
/// descriptor bytes.
fn upgrade(url: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("set.binpb");
    let module = concat!(env!("CARGO_MANIFEST_DIR"), "/proto-examples");
    let st = std::process::Command::new(bin())
        .args(["build", module, "-o"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    let descriptor = std::fs::read(&out).unwrap();
    let set = prost_types::FileDescriptorSet::decode(descriptor.as_slice()).unwrap();
    let own: BTreeMap<String, String> = set
        .file
        .iter()
        .filter(|f| !f.name().starts_with("google/"))
        .map(|f| (f.name().to_string(), format!("// text of {}\n", f.name())))
        .collect();
    assert!(own.len() > 3);
    let s = subject("upgrade");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let expected: Vec<(i64, String, BTreeMap<String, String>)> = (1..=3)
        .map(|n| {
            let mut files = own.clone();
            files.insert(format!("v{n}.proto"), format!("// version {n}\n"));
            (n, protoreg_store::digest(&files), files)
        })
        .collect();
    rt.block_on(async {
        let old = protoreg_store::Store::open_at_schema(url, 1).await.unwrap();
        sqlx::query("INSERT INTO subjects (name, last_version, created_at) VALUES ($1, 3, 1)")
            .bind(&s)
            .execute(old.pool())
            .await
            .unwrap();
        for (n, digest, files) in &expected {
            sqlx::query(
                "INSERT INTO versions (subject, version, digest, files, descriptor, labels, created_at, deleted) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&s)
            .bind(*n)
            .bind(digest)
            .bind(serde_json::to_string(files).unwrap())
            .bind(descriptor.clone())
            .bind(json!({"git_commit": format!("c{n}")}).to_string())
            .bind(1_700_000_000_000 + n)
            .bind(i64::from(*n == 2))
            .execute(old.pool())
            .await
            .unwrap();
        }
        old.close().await;
    });
    let server = Server::start(url, &[], &[]);
    let base = &server.base;
    for (n, digest, files) in &expected {
        if *n == 2 {
            // Soft-deleted: still there, still deleted.
            assert_eq!(
                get(base, &format!("/v1/subjects/{s}/versions/2")).status,
                404
            );
            continue;
        }
        let v = get(base, &format!("/v1/subjects/{s}/versions/{n}")).json();
        assert_eq!(v["digest"], digest.as_str());
        assert_eq!(v["files"], json!(files));
        assert_eq!(v["labels"]["git_commit"], format!("c{n}"));
        assert_eq!(
            v["created_at"],
            protoreg_server::rfc3339(1_700_000_000_000 + n)
        );
        let d = get(base, &format!("/v1/subjects/{s}/versions/{n}/descriptor"));
        assert_eq!(d.body, descriptor, "descriptor bytes of @{n} unchanged");
    }
    // Pushing on top numbers on from the old counter.
    assert_eq!(put_config(base, &s, &json!({"mode": "NONE"})).status, 200);
    let r = push(base, &s, &[("n.proto", "syntax = \"proto3\";\n")], &[]);
    assert_eq!((r.status, r.json()["version"].as_i64()), (201, Some(4)));
}

#[test]
fn sqlite_upgrade_from_schema_1() {
    let tmp = tempfile::tempdir().unwrap();
    upgrade(&tmpdb(tmp.path()));
}

#[test]
fn postgres_upgrade_from_schema_1() {
    // A database of its own: the schema starts at version 1.
    let name = format!("protoreg_upgrade_{}", std::process::id());
    let admin = postgres_url();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = rt.block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&admin)
            .await
            .expect("PostgreSQL at 127.0.0.1:5432");
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
            .execute(&pool)
            .await;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let (prefix, _) = admin.rsplit_once('/').unwrap();
        format!("{prefix}/{name}")
    });
    upgrade(&url);
    rt.block_on(async {
        let pool = sqlx::AnyPool::connect(&admin).await.unwrap();
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&pool)
            .await;
    });
}

fn protoreg(cwd: &std::path::Path, cache: &std::path::Path, args: &[&str]) -> (bool, String) {
    let o = std::process::Command::new(bin())
        .args(args)
        .current_dir(cwd)
        .env("PROTOREG_CACHE_DIR", cache)
        .env_remove("PROTOREG_REGISTRY")
        .env_remove("PROTOREG_TOKEN")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), text)
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

fn names_in(path: &std::path::Path) -> Vec<String> {
    descriptor_names(&std::fs::read(path).unwrap())
}

/// A service team's directory imports the platform's subject through protoreg.yaml's deps:
/// push sends them, `dep update` locks them, `build`/`breaking` resolve them through the
/// cache (offline once fetched), buf.yaml `deps:` map to subjects, `pull --with-deps`.
#[test]
fn client_dependencies_lock_cache_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let cache = t.join("cache");
    let mut server = Server::start(&tmpdb(t), &[], &[]);
    let base = server.base.clone();
    let estate = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/proto-examples"));
    let common_dir = t.join("platform/common");
    copy_dir(&estate.join("common"), &common_dir);
    let svc = t.join("svc");
    copy_dir(&estate.join("users"), &svc.join("users"));
    std::fs::write(
        svc.join("protoreg.yaml"),
        format!("registry: {base}\nsubjects:\n  - subject: acme.users.v1\n    dir: users\n    deps: [acme.common.v1]\n"),
    )
    .unwrap();
    let reg = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--registry", base.as_str()]);
        protoreg(t, &cache, &all)
    };
    let (ok, out) = reg(&[
        "push",
        common_dir.to_str().unwrap(),
        "--subject",
        "acme.common.v1",
    ]);
    assert!(ok, "{out}");
    // The service's push takes its deps from protoreg.yaml.
    let (ok, out) = protoreg(
        &svc,
        &cache,
        &["push", "users", "--subject", "acme.users.v1"],
    );
    assert!(ok && out.contains("acme.users.v1@1 created"), "{out}");
    let v = get(&base, "/v1/subjects/acme.users.v1/versions/1").json();
    assert_eq!(v["deps"][0]["subject"], "acme.common.v1");

    let (ok, out) = protoreg(&svc, &cache, &["dep", "update"]);
    assert!(ok, "{out}");
    let lock = std::fs::read_to_string(svc.join("protoreg.deps.lock")).unwrap();
    assert!(
        lock.contains("acme.common.v1") && lock.contains("version: 1"),
        "{lock}"
    );

    // The platform moves on; the service builds against what it locked.
    let money = common_dir.join("acme/common/v1/money.proto");
    let text =
        std::fs::read_to_string(&money).unwrap() + "\nmessage Discount {\n  string code = 1;\n}\n";
    std::fs::write(&money, text).unwrap();
    let (ok, out) = reg(&[
        "push",
        common_dir.to_str().unwrap(),
        "--subject",
        "acme.common.v1",
    ]);
    assert!(ok && out.contains("@2 created"), "{out}");
    let out_file = t.join("users.binpb");
    let (ok, out) = protoreg(
        &svc,
        &cache,
        &["build", "users", "-o", out_file.to_str().unwrap()],
    );
    assert!(ok, "{out}");
    let set = prost_types::FileDescriptorSet::decode(std::fs::read(&out_file).unwrap().as_slice())
        .unwrap();
    let money_fd = set
        .file
        .iter()
        .find(|f| f.name() == "acme/common/v1/money.proto")
        .expect("dep file in the set");
    assert!(
        !money_fd.message_type.iter().any(|m| m.name() == "Discount"),
        "the locked @1, not @2"
    );

    // buf.yaml `deps:` map to subjects (here through protoreg.yaml's buf_deps).
    let bufsvc = t.join("bufsvc");
    copy_dir(&estate.join("users"), &bufsvc.join("users"));
    std::fs::write(
        bufsvc.join("users/buf.yaml"),
        "version: v2\ndeps:\n  - buf.build/acme/common\n",
    )
    .unwrap();
    std::fs::write(
        bufsvc.join("protoreg.yaml"),
        format!("registry: {base}\nbuf_deps:\n  buf.build/acme/common: acme.common.v1\nsubjects:\n  - subject: acme.users.v1\n    dir: users\n"),
    )
    .unwrap();
    let (ok, out) = protoreg(&bufsvc, &cache, &["build", "users"]);
    assert!(ok, "{out}");

    // pull --with-deps writes the dependencies' files too.
    let pulled = t.join("pulled");
    let (ok, out) = reg(&[
        "pull",
        "acme.users.v1@1",
        "-o",
        pulled.to_str().unwrap(),
        "--with-deps",
    ]);
    assert!(ok, "{out}");
    assert!(pulled.join("acme/users/v1/users.proto").is_file());
    assert!(pulled.join("acme/common/v1/money.proto").is_file());
    let (ok, _) = reg(&[
        "pull",
        "acme.users.v1@1",
        "-o",
        t.join("own").to_str().unwrap(),
    ]);
    assert!(
        ok && !t.join("own/acme/common").exists(),
        "own files only by default"
    );

    // Registry gone: locked and cached, the build and the breaking check still work.
    server.kill9();
    let (ok, out) = protoreg(
        &svc,
        &cache,
        &["build", "users", "-o", out_file.to_str().unwrap()],
    );
    assert!(ok, "offline build: {out}");
    assert!(names_in(&out_file).contains(&"acme/common/v1/money.proto".to_string()));
    let (ok, out) = protoreg(&svc, &cache, &["breaking", "users", "--against", "users"]);
    assert!(ok, "offline breaking: {out}");
    // Without the cache it says what is missing.
    let empty = t.join("empty-cache");
    let (ok, out) = protoreg(&svc, &empty, &["build", "users"]);
    assert!(!ok && out.contains("acme.common.v1"), "{out}");
}

/// A TCP proxy in front of PostgreSQL that a test can cut, to take the database away
/// from a running server.
struct Proxy {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Proxy {
    fn start(target: &str) -> Proxy {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (stop2, conns2, target) = (stop.clone(), conns.clone(), target.to_string());
        std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let Ok(server) = std::net::TcpStream::connect(&target) else {
                            continue;
                        };
                        let mut list = conns2.lock().unwrap();
                        list.push(client.try_clone().unwrap());
                        list.push(server.try_clone().unwrap());
                        for (mut from, mut to) in [
                            (client.try_clone().unwrap(), server.try_clone().unwrap()),
                            (server, client),
                        ] {
                            std::thread::spawn(move || {
                                let _ = std::io::copy(&mut from, &mut to);
                                let _ = to.shutdown(std::net::Shutdown::Both);
                            });
                        }
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
                }
            }
        });
        Proxy { port, stop, conns }
    }

    /// Refuses new connections and breaks every open one.
    fn cut(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(50));
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// The database goes away under a running server: 503 with Retry-After (never 500), and
/// versions already read are still served by number from the cache.
#[test]
fn postgres_down_gives_503_and_cached_versions() {
    let url = postgres_url();
    let (prefix, rest) = url.split_once('@').unwrap();
    let (hostport, db) = rest.split_once('/').unwrap();
    let proxy = Proxy::start(hostport);
    let server = Server::start(&format!("{prefix}@127.0.0.1:{}/{db}", proxy.port), &[], &[]);
    let base = &server.base;
    let s = subject("down");
    let text = "syntax = \"proto3\";\npackage down.v1;\nmessage D {\n  string id = 1;\n}\n";
    assert_eq!(
        push(base, &s, &[("down/v1/d.proto", text)], &[]).status,
        201
    );
    // Read it (the server caches what it reads once the push's own change notice is in).
    for _ in 0..5 {
        assert_eq!(
            get(base, &format!("/v1/subjects/{s}/versions/1")).status,
            200
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    proxy.cut();
    let r = get(base, &format!("/v1/subjects/{s}/versions/1/descriptor"));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(descriptor_names(&r.body).contains(&"down/v1/d.proto".to_string()));
    for path in [
        "/v1/subjects".to_string(),
        format!("/v1/subjects/{s}/versions/latest"),
    ] {
        let r = get(base, &path);
        assert_eq!(
            r.status,
            503,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert!(r.headers.get("retry-after").is_some(), "{path}");
        assert_eq!(error_code(&r), "unavailable");
    }
    assert_eq!(get(base, "/readyz").status, 503);
}

/// Two PostgreSQL replicas serve reads from their caches and still see each other's
/// changes as soon as they commit: a delete through one is a 404 on the other, a new
/// version through one is the other's `latest`.
#[test]
fn postgres_replicas_see_each_others_changes() {
    let a = Server::start(&postgres_url(), &[], &[]);
    let b = Server::start(&postgres_url(), &[], &[]);
    let s = subject("replicas");
    let text = |f: &str| {
        format!("syntax = \"proto3\";\npackage rep.v1;\nmessage R {{\n  string id = 1;\n{f}}}\n")
    };
    assert_eq!(
        push(&a.base, &s, &[("rep/v1/r.proto", &text(""))], &[]).status,
        201
    );
    // Replica b reads (and caches) @1 and latest.
    for _ in 0..3 {
        assert_eq!(
            get(&b.base, &format!("/v1/subjects/{s}/versions/1")).status,
            200
        );
        assert_eq!(
            get(&b.base, &format!("/v1/subjects/{s}/versions/latest")).json()["version"],
            1
        );
    }
    let r = push(
        &a.base,
        &s,
        &[("rep/v1/r.proto", &text("  string name = 2;\n"))],
        &[],
    );
    assert_eq!(r.status, 201);
    let until = |what: &str, ok: &dyn Fn() -> bool| {
        let start = std::time::Instant::now();
        while !ok() {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(5),
                "{what}"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        start.elapsed()
    };
    let seen = until("b sees @2 as latest", &|| {
        get(&b.base, &format!("/v1/subjects/{s}/versions/latest")).json()["version"] == 2
    });
    assert!(seen < std::time::Duration::from_secs(1), "{seen:?}");
    assert_eq!(
        delete(&a.base, &format!("/v1/subjects/{s}/versions/1")).status,
        200
    );
    until("b stops serving the deleted @1", &|| {
        get(&b.base, &format!("/v1/subjects/{s}/versions/1")).status == 404
    });
}
