//! The Confluent Schema Registry API with Confluent's own Python client
//! (`confluent-kafka`: SchemaRegistryClient, ProtobufSerializer, ProtobufDeserializer)
//! against a real `protoreg serve`, on SQLite and on PostgreSQL; and the API's answers to
//! requests the client library does not make (error bodies, roles, subjects with `/`).

#[path = "support/registry.rs"]
mod harness;

use std::path::Path;
use std::process::Command;

use harness::*;
use serde_json::json;

const MONEY: &str = r#"syntax = "proto3";
package acme.common.v1;

message Money {
  string currency = 1;
  int64 units = 2;
  int32 nanos = 3;
}
"#;

const ORDER: &str = r#"syntax = "proto3";
package shop.v1;

import "acme/common/v1/money.proto";
import "google/protobuf/timestamp.proto";

message Order {
  string id = 1;
  acme.common.v1.Money total = 2;
  google.protobuf.Timestamp created_at = 3;
}
"#;

const STOCK: &str = "syntax = \"proto3\";\npackage inventory.v1;\n\nmessage Stock {\n  string sku = 1;\n  int32 count = 2;\n}\n";

const TOKENS: &str = "ci-token-123:admin,reader-token-1:read";

/// Installs confluent-kafka (with its Protobuf and registry extras) when missing; fails,
/// never skips, when that is impossible. One test at a time (two pip runs into the same
/// site-packages race).
fn ensure_client() {
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let present = Command::new("python3")
        .args([
            "-c",
            "import confluent_kafka.schema_registry.protobuf, google.protobuf",
        ])
        .status()
        .is_ok_and(|s| s.success());
    if !present {
        let o = Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "confluent-kafka[protobuf,schemaregistry]",
            ])
            .output()
            .expect("pip runs");
        assert!(
            o.status.success(),
            "installing confluent-kafka from PyPI: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

fn write(dir: &Path, name: &str, text: &str) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn run_client(database: &str) {
    ensure_client();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let srv = Server::start(database, &[], &[("PROTOREG_TOKENS", TOKENS)]);
    let url = format!("http://{}", srv.base.trim_start_matches("http://"));
    // The message types the Python side serializes, compiled by protoreg.
    let module = t.join("module");
    write(&module, "acme/common/v1/money.proto", MONEY);
    write(&module, "shop/v1/order.proto", ORDER);
    let set = t.join("order.binpb");
    let o = Command::new(bin())
        .arg("build")
        .arg(&module)
        .arg("-o")
        .arg(&set)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // A version pushed through /v1, read through the Confluent API by the client.
    let inventory = t.join("inventory");
    write(&inventory, "inventory/v1/stock.proto", STOCK);
    let o = Command::new(bin())
        .args(["push"])
        .arg(&inventory)
        .args(["--subject", "inventory", "--registry", &url])
        .env("PROTOREG_TOKEN", "ci-token-123")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let o = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/confluent_client.py"
        ))
        .arg(&url)
        .arg("ci-token-123")
        .arg(&set)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.trim_end().ends_with("\nok"),
        "confluent-kafka client: {out}{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // What the serializer registered reads the same through /v1: one file, a named dep.
    let admin = [("authorization", "Bearer ci-token-123")];
    let v = get_with(&url, "/v1/subjects/orders-value/versions/1", &admin);
    assert_eq!(v.status, 200, "{}", v.text());
    let v = v.json();
    assert!(
        v["files"]["shop/v1/order.proto"]
            .as_str()
            .is_some_and(|t| t.contains("message Order")),
        "{v}"
    );
    assert_eq!(v["deps"][0]["subject"], "acme/common/v1/money.proto");
    assert_eq!(v["deps"][0]["name"], "acme/common/v1/money.proto");
    // Subjects with `/` work on /v1 too (URL-encoded).
    let money = get_with(
        &url,
        "/v1/subjects/acme%2Fcommon%2Fv1%2Fmoney.proto/versions/latest",
        &admin,
    );
    assert_eq!(money.status, 200, "{}", money.text());
}

#[test]
fn confluent_client_on_sqlite() {
    let tmp = tempfile::tempdir().unwrap();
    run_client(&tmpdb(tmp.path()));
}

#[test]
fn confluent_client_on_postgres() {
    // A database of its own: the client lists every subject.
    let base = postgres_url();
    let name = format!("protoreg_confluent_{}", std::process::id());
    let admin_url = base.clone();
    let o = Command::new("psql")
        .args([
            &admin_url,
            "-qc",
            &format!("DROP DATABASE IF EXISTS {name}"),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = Command::new("psql")
        .args([&admin_url, "-qc", &format!("CREATE DATABASE {name}")])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let url = format!("{}/{name}", base.rsplit_once('/').unwrap().0);
    run_client(&url);
}

#[test]
fn errors_roles_and_media_type() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = Server::start(&tmpdb(tmp.path()), &[], &[("PROTOREG_TOKENS", TOKENS)]);
    let b = &srv.base;
    let body = json!({"schema": MONEY, "schemaType": "PROTOBUF"}).to_string();
    // No credentials: Confluent's body, 401.
    let r = send("POST", b, "/subjects/m/versions", body.as_bytes(), None);
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error_code"], 401, "{}", r.text());
    // Basic auth with a read token cannot register.
    let basic = |user_token: &str| {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_token)
        )
    };
    let reader = basic("someone:reader-token-1");
    let writer = basic("ci:ci-token-123");
    let call = |method: &str, path: &str, body: &str, auth: &str| {
        finish(
            agent().run(
                ureq::http::Request::builder()
                    .method(method)
                    .uri(format!("{b}{path}"))
                    .header("authorization", auth)
                    .header("content-type", "application/vnd.schemaregistry.v1+json")
                    .body(body.to_string())
                    .unwrap(),
            ),
        )
    };
    let r = call("POST", "/subjects/m/versions", &body, &reader);
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["error_code"], 403);
    let r = call("POST", "/subjects/m/versions", &body, &writer);
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["id"].as_i64().unwrap();
    // Reads with a read token; the media type is Confluent's.
    let r = call("GET", &format!("/schemas/ids/{id}"), "", &reader);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("message Money"));
    // The serialized form is the file's descriptor, base64.
    let r = call(
        "GET",
        &format!("/schemas/ids/{id}?format=serialized"),
        "",
        &reader,
    );
    let encoded = r.json()["schema"].as_str().unwrap().to_string();
    assert!(!encoded.contains(' ') && encoded.len() > 40, "{encoded}");
    // Registering that descriptor again (as the Python and Go serializers send schemas)
    // renders the same text: the same id.
    let again = json!({"schema": encoded, "schemaType": "PROTOBUF"}).to_string();
    let r = call("POST", "/subjects/m2/versions", &again, &writer);
    assert_eq!(r.status, 200, "{}", r.text());
    let r2 = call("GET", "/subjects/m2/versions/1/schema", "", &reader);
    assert!(r2.text().contains("message Money"), "{}", r2.text());
    // A version: soft delete, then gone from reads, then a permanent delete.
    let r = call(
        "DELETE",
        "/subjects/m2/versions/1?permanent=true",
        "",
        &writer,
    );
    assert_eq!(
        r.json()["error_code"],
        40407,
        "permanent needs a soft delete first: {}",
        r.text()
    );
    let r = call("DELETE", "/subjects/m2/versions/1", "", &writer);
    assert_eq!((r.status, r.json()), (200, json!(1)), "{}", r.text());
    let r = call("GET", "/subjects/m2/versions/1", "", &reader);
    assert_eq!(r.json()["error_code"], 40401, "{}", r.text());
    let r = call("GET", "/subjects/m2/versions/1?deleted=true", "", &reader);
    assert_eq!(r.status, 200, "{}", r.text());
    let r = call(
        "DELETE",
        "/subjects/m2/versions/1?permanent=true",
        "",
        &writer,
    );
    assert_eq!((r.status, r.json()), (200, json!(1)), "{}", r.text());
    let r = call("GET", "/subjects/m2/versions/1?deleted=true", "", &reader);
    assert_eq!(r.status, 404, "{}", r.text());
    // The id stays readable through the subject that still has it.
    let r = call("GET", &format!("/schemas/ids/{id}?subject=m"), "", &reader);
    assert_eq!(r.status, 200, "{}", r.text());
    // Invalid bodies and versions.
    let r = call("POST", "/subjects/m/versions", "{", &writer);
    assert_eq!(r.json()["error_code"], 42201, "{}", r.text());
    let r = call("GET", "/subjects/m/versions/zero", "", &reader);
    assert_eq!(r.json()["error_code"], 42202, "{}", r.text());
    let r = call(
        "PUT",
        "/config",
        r#"{"compatibility": "SIDEWAYS"}"#,
        &writer,
    );
    assert_eq!(r.json()["error_code"], 42203, "{}", r.text());
    let r = call("PUT", "/mode", r#"{"mode": "WRITEONLY"}"#, &writer);
    assert_eq!(r.json()["error_code"], 42204, "{}", r.text());
    let avro = json!({"schema": "{\"type\": \"string\"}", "schemaType": "AVRO"}).to_string();
    let r = call("POST", "/subjects/a/versions", &avro, &writer);
    assert_eq!(r.json()["error_code"], 42201, "{}", r.text());
    let r = call("GET", "/subjects/..%2Fx/versions", "", &reader);
    assert_eq!(r.status, 422, "{}", r.text());
    // Global level: set, read, and back to the default.
    let r = call("PUT", "/config", r#"{"compatibility": "FULL"}"#, &writer);
    assert_eq!(r.json()["compatibility"], "FULL", "{}", r.text());
    assert_eq!(
        call("GET", "/config", "", &reader).json()["compatibilityLevel"],
        "FULL"
    );
    let r = call("DELETE", "/config", "", &writer);
    assert_eq!(r.json()["compatibilityLevel"], "FULL", "{}", r.text());
    assert_eq!(
        call("GET", "/config", "", &reader).json()["compatibilityLevel"],
        "BACKWARD"
    );
    // ?normalize=true stores the canonical text: the same schema written differently is
    // one version and one id.
    let messy = "syntax='proto3';  package n.v1; // comment\nmessage  N {string a=1;}";
    let tidy = "syntax = \"proto3\";\npackage n.v1;\n\nmessage N {\n  string a = 1;\n}\n";
    let body = |schema: &str| json!({"schema": schema, "schemaType": "PROTOBUF"}).to_string();
    let r = call(
        "POST",
        "/subjects/n/versions?normalize=true",
        &body(messy),
        &writer,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let (id, version) = (r.json()["id"].clone(), r.json()["version"].clone());
    let stored = call("GET", "/subjects/n/versions/latest/schema", "", &reader).text();
    assert_eq!(stored, tidy);
    let r = call(
        "POST",
        "/subjects/n/versions?normalize=True",
        &body(tidy),
        &writer,
    );
    assert_eq!(
        (r.json()["id"].clone(), r.json()["version"].clone()),
        (id, version)
    );
    let r = call("POST", "/subjects/n?normalize=true", &body(messy), &reader);
    assert_eq!(r.status, 200, "lookup: {}", r.text());
    // /v1 keeps its own error body.
    let r = call("GET", "/v1/subjects/none/versions/1", "", &reader);
    assert!(r.json()["error"]["code"].is_string(), "{}", r.text());
}

#[test]
fn subjects_with_slashes_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let srv = Server::start(&tmpdb(t), &[], &[]);
    let url = format!("http://{}", srv.base.trim_start_matches("http://"));
    let module = t.join("money");
    write(&module, "acme/common/v1/money.proto", MONEY);
    let cli = |args: &[&str]| {
        let o = Command::new(bin())
            .args(args)
            .args(["--registry", &url])
            .env_remove("PROTOREG_TOKEN")
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let subject = "acme/common/v1/money.proto";
    let (code, out, err) = cli(&["push", module.to_str().unwrap(), "--subject", subject]);
    assert_eq!(code, Some(0), "{out}{err}");
    let (code, out, err) = cli(&["log", subject]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains(subject) || out.contains("1"), "{out}");
    let pulled = t.join("pulled");
    let (code, out, err) = cli(&[
        "pull",
        &format!("{subject}@1"),
        "-o",
        pulled.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(
        std::fs::read_to_string(pulled.join("acme/common/v1/money.proto")).unwrap(),
        MONEY
    );
    // The Confluent API reads the same version under the same name.
    let r = get(
        &url,
        "/subjects/acme%2Fcommon%2Fv1%2Fmoney.proto/versions/1",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["subject"], subject);
    // Names that could escape or collide are refused everywhere.
    for bad in ["../money.proto", "a//b", "a b"] {
        let (code, _, err) = cli(&["push", module.to_str().unwrap(), "--subject", bad]);
        assert_ne!(code, Some(0), "{bad:?} accepted");
        assert!(err.contains("invalid subject"), "{bad:?}: {err}");
    }
}

/// Two replicas on one PostgreSQL database registering concurrently: the same content gets
/// one id whichever replica and subject register it; different contents different ids.
#[test]
fn schema_ids_stay_global_across_replicas() {
    let base = postgres_url();
    let name = format!("protoreg_ids_{}", std::process::id());
    for sql in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name}"),
    ] {
        let o = Command::new("psql")
            .args([&base, "-qc", &sql])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let url = format!("{}/{name}", base.rsplit_once('/').unwrap().0);
    let a = Server::start(&url, &[], &[]);
    let b = Server::start(&url, &[], &[]);
    let bases = [a.base.clone(), b.base.clone()];
    let register = |base: &str, subject: &str, schema: &str| -> i64 {
        let body = json!({"schema": schema, "schemaType": "PROTOBUF"});
        let r = post(base, &format!("/subjects/{subject}/versions"), &body);
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["id"].as_i64().unwrap()
    };
    let same = "syntax = \"proto3\";\npackage same.v1;\nmessage S { string a = 1; }\n";
    let ids: Vec<i64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let base = &bases[i % 2];
                scope.spawn(move || register(base, &format!("same-{i}"), same))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    let distinct: Vec<i64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let base = &bases[i % 2];
                let schema = format!(
                    "syntax = \"proto3\";\npackage d{i}.v1;\nmessage D {{ string a = 1; }}\n"
                );
                scope.spawn(move || register(base, &format!("distinct-{i}"), &schema))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut unique = distinct.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 8, "{distinct:?}");
    assert!(!distinct.contains(&ids[0]));
    // Both replicas answer every id alike.
    for id in distinct.iter().chain([&ids[0]]) {
        let x = get(&bases[0], &format!("/schemas/ids/{id}")).json();
        let y = get(&bases[1], &format!("/schemas/ids/{id}")).json();
        assert_eq!(x, y);
    }
}
