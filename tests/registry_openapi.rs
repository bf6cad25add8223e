//! `/openapi.json` is a valid OpenAPI 3.1 document whose schemas describe what the server
//! really answers: real responses of every JSON route (successes and errors) are validated
//! against it with Python's `openapi-spec-validator` and `jsonschema` (installed by
//! `.ci/run`; the test fails, never skips, without them).

use serde_json::{Value, json};

#[path = "support/registry.rs"]
mod harness;
use harness::*;

const COMMON: &str = "syntax = \"proto3\";\npackage acme.common.v1;\nmessage Money {\n  string currency = 1;\n  int64 units = 2;\n}\n";
const COMMON_V2: &str = "syntax = \"proto3\";\npackage acme.common.v1;\nmessage Money {\n  string currency = 1;\n  int64 units = 2;\n  int32 nanos = 3;\n}\n";
const ORDERS: &str = "syntax = \"proto3\";\npackage acme.orders.v1;\nimport \"acme/common/v1/money.proto\";\nmessage Order {\n  acme.common.v1.Money total = 1;\n}\n";

#[test]
fn openapi_document_describes_real_responses() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmpdb(tmp.path()), &[], &[]);
    let base = &server.base;
    let mut samples: Vec<Value> = Vec::new();
    let mut record = |method: &str, template: &str, r: Resp, want: u16| -> Value {
        assert_eq!(
            r.status,
            want,
            "{method} {template}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let body = r.json();
        samples.push(json!({"method": method, "path": template, "status": r.status, "body": body}));
        body
    };
    let put = |path: &str, body: Value| send("PUT", base, path, body.to_string().as_bytes(), None);
    let money = "acme/common/v1/money.proto";
    record("GET", "/healthz", get(base, "/healthz"), 200);
    record("GET", "/readyz", get(base, "/readyz"), 200);
    record(
        "PUT",
        "/v1/config",
        put("/v1/config", json!({"mode": "BACKWARD"})),
        200,
    );
    record("GET", "/v1/config", get(base, "/v1/config"), 200);
    let push_path = "/v1/subjects/{subject}/versions";
    let c1 = record(
        "POST",
        push_path,
        post(
            base,
            "/v1/subjects/common/versions",
            &json!({"files": {money: COMMON}, "labels": {"git": "abc"}}),
        ),
        201,
    );
    record(
        "POST",
        push_path,
        post(
            base,
            "/v1/subjects/common/versions",
            &json!({"files": {money: COMMON}}),
        ),
        200,
    );
    record(
        "POST",
        push_path,
        post(
            base,
            "/v1/subjects/orders/versions",
            &json!({"files": {"acme/orders/v1/orders.proto": ORDERS}, "deps": ["common@1"]}),
        ),
        201,
    );
    record(
        "POST",
        push_path,
        post(
            base,
            "/v1/subjects/common/versions",
            &json!({"files": {money: COMMON_V2}}),
        ),
        201,
    );
    record(
        "POST",
        push_path,
        post(
            base,
            "/v1/subjects/common/versions",
            &json!({"files": {money: "syntax = \"proto3\";\npackage acme.common.v1;\n"}}),
        ),
        409,
    );
    record(
        "POST",
        push_path,
        post(
            base,
            "/v1/subjects/common/versions",
            &json!({"files": {money: "syntax = \"proto3\";\nmessage {"}}),
        ),
        422,
    );
    record(
        "POST",
        push_path,
        post(
            base,
            "/v1/subjects/orders/versions",
            &json!({"files": {"a.proto": ORDERS}, "deps": ["nobody@1"]}),
        ),
        404,
    );
    record(
        "POST",
        "/v1/subjects/{subject}/check",
        post(
            base,
            "/v1/subjects/common/check",
            &json!({"files": {money: COMMON_V2}}),
        ),
        200,
    );
    record("GET", "/v1/subjects", get(base, "/v1/subjects"), 200);
    record(
        "GET",
        "/v1/subjects/{subject}",
        get(base, "/v1/subjects/common"),
        200,
    );
    record(
        "GET",
        "/v1/subjects/{subject}",
        get(base, "/v1/subjects/nobody"),
        404,
    );
    record(
        "GET",
        "/v1/subjects/{subject}/config",
        get(base, "/v1/subjects/common/config"),
        200,
    );
    record(
        "PUT",
        "/v1/subjects/{subject}/config",
        put(
            "/v1/subjects/common/config",
            json!({"categories": ["WIRE"]}),
        ),
        200,
    );
    record(
        "PUT",
        "/v1/subjects/{subject}/config",
        put("/v1/subjects/common/config", json!({"mode": "SIDEWAYS"})),
        400,
    );
    record(
        "GET",
        "/v1/subjects/{subject}/versions",
        get(base, "/v1/subjects/common/versions"),
        200,
    );
    record(
        "GET",
        "/v1/subjects/{subject}/versions/{version}",
        get(base, "/v1/subjects/orders/versions/latest"),
        200,
    );
    record(
        "GET",
        "/v1/subjects/{subject}/versions/{version}/dependents",
        get(base, "/v1/subjects/common/versions/1/dependents"),
        200,
    );
    // The push refused above is logged with its findings.
    let refusals = get(base, "/v1/subjects/common/refusals");
    assert_eq!(
        refusals.json()[0]["findings"][0]["type"],
        "MESSAGE_NO_DELETE"
    );
    record("GET", "/v1/subjects/{subject}/refusals", refusals, 200);
    record(
        "GET",
        "/v1/subjects/{subject}/diff",
        get(base, "/v1/subjects/common/diff?from=1&to=2"),
        200,
    );
    // Deployments: record, heartbeat, listings, logs, consumers, can-i-deploy, undeploy.
    let pin = |role: &str| json!([{"subject": "common", "version": 2, "role": role}]);
    record(
        "POST",
        "/v1/environments/{env}/deployments",
        post(
            base,
            "/v1/environments/prod/deployments",
            &json!({"service": "billing", "pins": pin("serves"), "labels": {"build": "7"}}),
        ),
        201,
    );
    record(
        "POST",
        "/v1/environments/{env}/instances",
        post(
            base,
            "/v1/environments/prod/instances",
            &json!({"service": "orders", "instance": "pod-1", "pins": pin("calls"), "ttl_secs": 60}),
        ),
        200,
    );
    record(
        "GET",
        "/v1/environments",
        get(base, "/v1/environments"),
        200,
    );
    record(
        "GET",
        "/v1/environments/{env}",
        get(base, "/v1/environments/prod"),
        200,
    );
    record(
        "GET",
        "/v1/environments/{env}",
        get(base, "/v1/environments/nowhere"),
        404,
    );
    record(
        "GET",
        "/v1/environments/{env}/services/{service}",
        get(base, "/v1/environments/prod/services/billing"),
        200,
    );
    record(
        "GET",
        "/v1/subjects/{subject}/versions/{version}/consumers",
        get(base, "/v1/subjects/common/versions/2/consumers"),
        200,
    );
    let answer = record(
        "POST",
        "/v1/environments/{env}/can-i-deploy",
        post(
            base,
            "/v1/environments/prod/can-i-deploy",
            &json!({"service": "billing", "pins": pin("serves")}),
        ),
        200,
    );
    assert_eq!(answer["answer"], "yes", "{answer}");
    record(
        "POST",
        "/v1/environments/{env}/can-i-deploy",
        post(
            base,
            "/v1/environments/prod/can-i-deploy",
            &json!({"service": "billing", "pins": [{"subject": "common", "version": 2, "role": "owns"}]}),
        ),
        400,
    );
    record(
        "DELETE",
        "/v1/environments/{env}/services/{service}",
        delete(base, "/v1/environments/prod/services/billing"),
        200,
    );
    let digest = c1["digest"].as_str().unwrap();
    record(
        "GET",
        "/v1/schemas/{digest}",
        get(base, &format!("/v1/schemas/{digest}")),
        200,
    );
    record(
        "DELETE",
        "/v1/subjects/{subject}/versions/{version}",
        delete(base, "/v1/subjects/common/versions/1"),
        409,
    );
    record(
        "DELETE",
        "/v1/subjects/{subject}/versions/{version}",
        delete(base, "/v1/subjects/orders/versions/1"),
        200,
    );

    let doc = get(base, "/openapi.json");
    assert_eq!(doc.status, 200);
    let doc = doc.json();
    // Request bodies are typed, not bare objects.
    let push_schema = &doc["paths"]["/v1/subjects/{subject}/versions"]["post"]["requestBody"]["content"]
        ["application/json"]["schema"];
    assert_eq!(push_schema["$ref"], "#/components/schemas/PushRequest");
    assert!(doc["components"]["schemas"]["PushRequest"]["properties"]["deps"].is_object());
    let doc_file = tmp.path().join("openapi.json");
    let samples_file = tmp.path().join("samples.json");
    std::fs::write(&doc_file, doc.to_string()).unwrap();
    std::fs::write(&samples_file, Value::Array(samples).to_string()).unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/check_openapi.py"
    );
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(&doc_file)
        .arg(&samples_file)
        .output()
        .expect("python3 runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("responses match"), "{text}");
}
