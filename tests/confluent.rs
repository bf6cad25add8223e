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
/// never skips, when that is impossible.
fn ensure_client() {
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
    // /v1 keeps its own error body.
    let r = call("GET", "/v1/subjects/none/versions/1", "", &reader);
    assert!(r.json()["error"]["code"].is_string(), "{}", r.text());
}
