//! The web UI in a real browser: headless Chromium (Debian's `chromium` and
//! `chromium-driver`) driven through WebDriver (Python `selenium`) against a real
//! `protoreg serve` with tokens (`tests/support/browser.py`). Screenshots of each page go
//! to `target/ui-screenshots/`. Fails, never skips, without the browser.

#[path = "support/registry.rs"]
mod harness;

use std::process::Command;

use harness::*;
use serde_json::json;

const ITEM_V1: &str = "syntax = \"proto3\";\npackage shop.v1;\n\n// The <script>alert(1)</script> item.\nmessage Item {\n  string id = 1;\n  string name = 2;\n}\n";
const MONEY: &str = "syntax = \"proto3\";\npackage acme.common.v1;\n\n// An amount of money.\nmessage Money {\n  string currency = 1;\n  int64 units = 2;\n}\n";
const ORDER: &str = "syntax = \"proto3\";\npackage shop.v1;\n\nimport \"acme/common/v1/money.proto\";\nimport \"shop/v1/line.proto\";\n\n// An order.\nmessage Order {\n  repeated Line lines = 1;\n  acme.common.v1.Money total = 2;\n}\n";
const LINE: &str =
    "syntax = \"proto3\";\npackage shop.v1;\n\nmessage Line {\n  string sku = 1;\n}\n";

/// Chromium, its driver and selenium: installed when missing (Debian packages, PyPI); the
/// test fails if that is impossible.
fn ensure_browser() {
    let have = |p: &str| std::path::Path::new(p).exists();
    if !(have("/usr/bin/chromium") && have("/usr/bin/chromedriver")) {
        let o = Command::new("apt-get")
            .args(["install", "-y", "-qq", "chromium", "chromium-driver"])
            .output()
            .expect("apt-get runs");
        assert!(
            o.status.success(),
            "the browser tests need Debian's chromium and chromium-driver (apt-get install chromium chromium-driver): {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let selenium = Command::new("python3")
        .args(["-c", "import selenium"])
        .status()
        .is_ok_and(|s| s.success());
    if !selenium {
        let o = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "selenium"])
            .output()
            .expect("pip runs");
        assert!(
            o.status.success(),
            "installing selenium: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

#[test]
fn browse_the_registry_in_chromium() {
    ensure_browser();
    let tmp = tempfile::tempdir().unwrap();
    let token = "browser-admin-token";
    let srv = Server::start(
        &tmpdb(tmp.path()),
        &[],
        &[("PROTOREG_TOKENS", &format!("{token}:admin"))],
    );
    let b = &srv.base;
    let call = |method: &str, path: &str, body: serde_json::Value| {
        let r = send(method, b, path, body.to_string().as_bytes(), Some(token));
        assert!(r.status < 300 || r.status == 409, "{path}: {}", r.text());
        r
    };
    // shop.v1: a breaking change accepted under NONE, then a push refused under BACKWARD.
    call(
        "PUT",
        "/v1/subjects/shop.v1/config",
        json!({"mode": "NONE"}),
    );
    call(
        "POST",
        "/v1/subjects/shop.v1/versions",
        json!({"files": {"shop/v1/item.proto": ITEM_V1}}),
    );
    let v2 = ITEM_V1.replace("string name = 2;", "int64 name = 2;");
    call(
        "POST",
        "/v1/subjects/shop.v1/versions",
        json!({"files": {"shop/v1/item.proto": v2}}),
    );
    call(
        "PUT",
        "/v1/subjects/shop.v1/config",
        json!({"mode": "BACKWARD"}),
    );
    let refused = v2.replace("  int64 name = 2;\n", "");
    let r = call(
        "POST",
        "/v1/subjects/shop.v1/versions",
        json!({"files": {"shop/v1/item.proto": refused}, "labels": {"git_commit": "bad999"}}),
    );
    assert_eq!(r.status, 409);
    // orders.v1: two files and a dependency, for type links.
    call(
        "POST",
        "/v1/subjects/acme.common.v1/versions",
        json!({"files": {"acme/common/v1/money.proto": MONEY}}),
    );
    call(
        "POST",
        "/v1/subjects/orders.v1/versions",
        json!({"files": {"shop/v1/order.proto": ORDER, "shop/v1/line.proto": LINE}, "deps": ["acme.common.v1@1"]}),
    );

    let shots = concat!(env!("CARGO_MANIFEST_DIR"), "/target/ui-screenshots");
    let o = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/browser.py"
        ))
        .arg(format!("http://{}", b.trim_start_matches("http://")))
        .arg(token)
        .arg(shots)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.trim_end().ends_with("\nok"),
        "browser: {out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for page in [
        "sign-in",
        "subjects",
        "subject",
        "file",
        "diff",
        "type-link",
        "rules",
    ] {
        let png = std::path::Path::new(shots).join(format!("{page}.png"));
        let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 2000,
            "{page}.png"
        );
    }
}
