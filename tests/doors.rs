//! The front doors obey the same rules, because the registry service owns them: a version a
//! current deployment runs is refused by the `/v1` delete and by both Confluent deletes; a
//! READONLY subject refuses a `/v1` push, a Confluent registration, deletes and policy
//! changes through every door, and is writable again after a mode change; IMPORT refuses a
//! registration without an explicit id. Real server on SQLite and on PostgreSQL.

use serde_json::{Value, json};

#[path = "support/registry.rs"]
mod harness;
use harness::*;

const V1: &str = "syntax = \"proto3\";\npackage acme.doors.v1;\nmessage User { string id = 1; }\n";
const V2: &str = "syntax = \"proto3\";\npackage acme.doors.v1;\nmessage User { string id = 1; string name = 2; }\n";

fn push(base: &str, subject: &str, text: &str) -> Resp {
    post(
        base,
        &format!("/v1/subjects/{subject}/versions"),
        &json!({"files": {"acme/doors/v1/user.proto": text}}),
    )
}

fn register(base: &str, subject: &str, body: &Value) -> Resp {
    post(base, &format!("/subjects/{subject}/versions"), body)
}

fn put(base: &str, path: &str, body: &Value) -> Resp {
    send("PUT", base, path, body.to_string().as_bytes(), None)
}

fn confluent_code(r: &Resp) -> i64 {
    r.json()["error_code"].as_i64().unwrap_or(0)
}

fn v1_code(r: &Resp) -> String {
    r.json()["error"]["code"].as_str().unwrap_or("").to_string()
}

fn deployed_version_is_refused_by_every_door(base: &str) {
    let s = subject("doors.deployed");
    assert_eq!(push(base, &s, V1).status, 201);
    // A service name no other test uses (PostgreSQL keeps earlier runs' deployments).
    let service = s.replace('.', "-");
    let r = post(
        base,
        "/v1/environments/doors/deployments",
        &json!({"service": service, "pins": [{"subject": s, "version": 1, "role": "serves"}]}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    // /v1: 409 deployed, naming the deployment.
    let r = delete(base, &format!("/v1/subjects/{s}/versions/1"));
    assert_eq!(
        (r.status, v1_code(&r).as_str()),
        (409, "deployed"),
        "{}",
        r.text()
    );
    let running = format!("doors's {service}");
    assert!(r.text().contains(&running), "{}", r.text());
    // Confluent: both deletes answer 42206 naming the deployment, and change nothing.
    for path in [
        format!("/subjects/{s}/versions/1"),
        format!("/subjects/{s}"),
    ] {
        let r = delete(base, &path);
        assert_eq!(
            (r.status, confluent_code(&r)),
            (422, 42206),
            "{path}: {}",
            r.text()
        );
        assert!(r.text().contains(&running), "{}", r.text());
    }
    assert_eq!(
        get(base, &format!("/v1/subjects/{s}/versions/1")).status,
        200
    );
    // Undeployed, it can be deleted (here through Confluent).
    let r = delete(base, &format!("/v1/environments/doors/services/{service}"));
    assert_eq!(r.status, 200, "{}", r.text());
    let r = delete(base, &format!("/subjects/{s}/versions/1"));
    assert_eq!(r.status, 200, "{}", r.text());
}

fn read_only_binds_every_door(base: &str) {
    let s = subject("doors.readonly");
    assert_eq!(push(base, &s, V1).status, 201);
    let r = put(base, &format!("/mode/{s}"), &json!({"mode": "READONLY"}));
    assert_eq!(r.status, 200, "{}", r.text());
    // Creating a version.
    let r = push(base, &s, V2);
    assert_eq!(
        (r.status, v1_code(&r).as_str()),
        (409, "read_only"),
        "{}",
        r.text()
    );
    let r = register(base, &s, &json!({"schema": V2, "schemaType": "PROTOBUF"}));
    assert_eq!((r.status, confluent_code(&r)), (422, 42205), "{}", r.text());
    // Deleting.
    let r = delete(base, &format!("/v1/subjects/{s}/versions/1"));
    assert_eq!(
        (r.status, v1_code(&r).as_str()),
        (409, "read_only"),
        "{}",
        r.text()
    );
    let r = delete(base, &format!("/subjects/{s}/versions/1"));
    assert_eq!((r.status, confluent_code(&r)), (422, 42205), "{}", r.text());
    let r = delete(base, &format!("/subjects/{s}"));
    assert_eq!((r.status, confluent_code(&r)), (422, 42205), "{}", r.text());
    // Policy changes.
    let r = put(
        base,
        &format!("/v1/subjects/{s}/config"),
        &json!({"mode": "NONE"}),
    );
    assert_eq!(
        (r.status, v1_code(&r).as_str()),
        (409, "read_only"),
        "{}",
        r.text()
    );
    let r = put(
        base,
        &format!("/config/{s}"),
        &json!({"compatibility": "NONE"}),
    );
    assert_eq!((r.status, confluent_code(&r)), (422, 42205), "{}", r.text());
    // Nothing changed.
    let v = get(base, &format!("/v1/subjects/{s}")).json();
    assert_eq!(v["versions"], json!([1]), "{v}");
    assert_eq!(v["config"]["mode"], "BACKWARD", "{v}");
    // A mode change is allowed, and the subject takes writes again.
    let r = put(base, &format!("/mode/{s}"), &json!({"mode": "READWRITE"}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(push(base, &s, V2).status, 201);
}

fn import_needs_an_id(base: &str) {
    let s = subject("doors.import");
    let r = put(base, &format!("/mode/{s}"), &json!({"mode": "IMPORT"}));
    assert_eq!(r.status, 200, "{}", r.text());
    let r = register(base, &s, &json!({"schema": V1, "schemaType": "PROTOBUF"}));
    assert_eq!((r.status, confluent_code(&r)), (422, 42205), "{}", r.text());
    let r = push(base, &s, V1);
    assert_eq!(
        (r.status, v1_code(&r).as_str()),
        (409, "import_mode"),
        "{}",
        r.text()
    );
    // Content no other test registered (ids are global per content).
    let unique = format!("{V1}message Imported{} {{}}\n", s.replace(['.', '-'], "_"));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let id = 1_000_000 + (nanos % 1_000_000_000) as i64;
    let r = register(
        base,
        &s,
        &json!({"schema": unique, "schemaType": "PROTOBUF", "id": id, "version": 3}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["id"], id, "{}", r.text());
}

fn all_rules(base: &str) {
    deployed_version_is_refused_by_every_door(base);
    read_only_binds_every_door(base);
    import_needs_an_id(base);
}

#[test]
fn doors_agree_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&tmpdb(dir.path()), &[], &[]);
    all_rules(&server.base);
}

#[test]
fn doors_agree_on_postgres() {
    let server = Server::start(&postgres_url(), &[], &[]);
    all_rules(&server.base);
}
