//! The web UI over HTTP against a real `protoreg serve`: every page renders what the API
//! holds, markup in protos stays text, findings sit next to their lines, and with tokens
//! configured the browser gets a sign-in prompt. (Browser-driven tests come with the rest of
//! the UI issue.)

#[path = "support/registry.rs"]
mod harness;

use harness::*;
use serde_json::json;

const V1: &str = "syntax = \"proto3\";\npackage shop.v1;\n\n// The <script>alert(1)</script> item.\nmessage Item {\n  string id = 1;\n  string name = 2;\n}\n";
const V2: &str = "syntax = \"proto3\";\npackage shop.v1;\n\n// The <script>alert(1)</script> item.\nmessage Item {\n  string id = 1;\n  int64 name = 2;\n}\n";

fn push(base: &str, subject: &str, text: &str) {
    let r = post(
        base,
        &format!("/v1/subjects/{subject}/versions"),
        &json!({"files": {"shop/v1/item.proto": text}, "labels": {"git_commit": "abc123"}}),
    );
    assert!(r.status == 201 || r.status == 200, "{}", r.text());
}

#[test]
fn pages_render_escape_and_show_findings() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = Server::start(&tmpdb(tmp.path()), &[], &[]);
    let b = &srv.base;
    // A breaking change accepted under mode NONE.
    let r = send(
        "PUT",
        b,
        "/v1/subjects/shop.v1/config",
        br#"{"mode": "NONE"}"#,
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    push(b, "shop.v1", V1);
    push(b, "shop.v1", V2);
    // A refused push (under a stricter policy), logged with its findings.
    let r = send(
        "PUT",
        b,
        "/v1/subjects/shop.v1/config",
        br#"{"mode": "BACKWARD"}"#,
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = post(
        b,
        "/v1/subjects/shop.v1/versions",
        &json!({"files": {"shop/v1/item.proto": V1.replace("  string name = 2;\n", "")},
                "labels": {"git_commit": "bad999"}}),
    );
    assert_eq!(r.status, 409, "{}", r.text());

    // `/` goes to the UI (the client follows the redirect).
    let r = get(b, "/");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("<h1>Subjects</h1>"), "{}", r.text());
    let html = |path: &str| {
        let r = get(b, path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert!(
            r.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
        r.text()
    };
    let list = html("/ui/");
    assert!(list.contains("href=\"/ui/subjects/shop.v1\""), "{list}");
    for needle in ["<td>v2</td>", "<code>BACKWARD</code>", "git_commit=abc123"] {
        assert!(list.contains(needle), "{needle}: {list}");
    }
    assert!(html("/ui/?q=nothing-like-it").contains("No subjects."));
    let subject = html("/ui/subjects/shop.v1");
    for needle in [
        "v1",
        "v2",
        "git_commit=abc123",
        "BACKWARD",
        "Refused pushes",
        "git_commit=bad999",
        "<code>FIELD_NO_DELETE</code> shop/v1/item.proto:5:1",
    ] {
        assert!(subject.contains(needle), "{needle}: {subject}");
    }
    let version = html("/ui/subjects/shop.v1/versions/2");
    assert!(version.contains("/ui/subjects/shop.v1/versions/2/files/shop/v1/item.proto"));
    assert!(version.contains("/ui/subjects/shop.v1/diff?from=1&amp;to=2"));
    // A file: numbered lines with anchors; the comment's markup is text.
    let file = html("/ui/subjects/shop.v1/versions/2/files/shop/v1/item.proto");
    assert!(file.contains("id=\"L7\""), "{file}");
    assert!(
        file.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{file}"
    );
    assert!(!file.contains("<script>"), "{file}");
    // The diff: the finding right after the changed line, and in the summary.
    let diff = html("/ui/subjects/shop.v1/diff?from=1&to=2");
    let line = diff.find("+  int64 name = 2;").expect("the changed line");
    let finding = diff
        .find("<code>FIELD_SAME_TYPE</code> 7:")
        .expect("the finding");
    assert!(finding > line, "{diff}");
    assert!(
        diff[line..finding].matches("class=\"ln").count() <= 1,
        "next to its line"
    );
    assert!(diff.contains("why: "), "{diff}");
    // Side by side: the old and new line in one row, the finding right after it.
    assert!(diff.contains("view=split\">side by side</a>"), "{diff}");
    let split = html("/ui/subjects/shop.v1/diff?from=1&to=2&view=split");
    let row = split
        .find("<code>  string name = 2;</code></td><td class=\"n\">7</td><td class=\"add\"><code>  int64 name = 2;</code>")
        .expect("the changed line, both sides");
    let note = split
        .find("<code>FIELD_SAME_TYPE</code> 7:")
        .expect("the finding");
    assert!(
        note > row && split[row..note].matches("<tr>").count() == 1,
        "{split}"
    );
    assert!(html("/ui/rules").contains("FIELD_SAME_TYPE"));
    // Errors are pages too.
    let r = get(b, "/ui/subjects/none.v1");
    assert_eq!(r.status, 404);
    assert!(r.text().contains("<!doctype html>"));
    let r = get(b, "/ui/subjects/shop.v1/versions/2/files/nope.proto");
    assert_eq!(r.status, 404);
}

const MONEY: &str = "syntax = \"proto3\";\npackage acme.common.v1;\n\n// An amount of money.\nmessage Money {\n  string currency = 1;\n  int64 units = 2;\n}\n";
const ORDER: &str = "syntax = \"proto3\";\npackage shop.v1;\n\nimport \"acme/common/v1/money.proto\";\nimport \"shop/v1/line.proto\";\n\n// An order: <b>lines</b> and a total.\nmessage Order {\n  repeated Line lines = 1;\n  acme.common.v1.Money total = 2;\n}\n\n// Orders.\nservice Orders {\n  // Places one.\n  rpc Place(Order) returns (Order);\n}\n";
const LINE: &str =
    "syntax = \"proto3\";\npackage shop.v1;\n\nmessage Line {\n  string sku = 1;\n}\n";

#[test]
fn type_names_link_to_their_definitions_across_files_and_deps() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = Server::start(&tmpdb(tmp.path()), &[], &[]);
    let b = &srv.base;
    let r = post(
        b,
        "/v1/subjects/acme.common.v1/versions",
        &json!({"files": {"acme/common/v1/money.proto": MONEY}}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = post(
        b,
        "/v1/subjects/shop.v1/versions",
        &json!({"files": {"shop/v1/order.proto": ORDER, "shop/v1/line.proto": LINE},
                "deps": ["acme.common.v1@1"]}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let page = get(
        b,
        "/ui/subjects/shop.v1/versions/1/files/shop/v1/order.proto",
    )
    .text();
    // Same version, another file: its line.
    assert!(
        page.contains("<a class=\"type\" href=\"/ui/subjects/shop.v1/versions/1/files/shop/v1/line.proto#L4\" title=\"shop.v1.Line\">Line</a>"),
        "{page}"
    );
    // A dependency's file, in its own subject.
    assert!(
        page.contains(
            "href=\"/ui/subjects/acme.common.v1/versions/1/files/acme/common/v1/money.proto#L5\""
        ),
        "{page}"
    );
    // RPC types link too; definitions are listed with their comments, escaped.
    assert!(
        page.contains("title=\"shop.v1.Order\">Order</a>) <span class=\"kw\">returns</span>"),
        "{page}"
    );
    assert!(
        page.contains("message <code>shop.v1.Order</code>"),
        "{page}"
    );
    assert!(
        page.contains("<dd>An order: &lt;b&gt;lines&lt;/b&gt; and a total.</dd>"),
        "{page}"
    );
    assert!(
        page.contains("rpc <code>shop.v1.Orders.Place</code>"),
        "{page}"
    );
    assert!(page.contains("Places one."), "{page}");
    // The link's target has the anchor.
    let target = get(
        b,
        "/ui/subjects/shop.v1/versions/1/files/shop/v1/line.proto",
    )
    .text();
    assert!(target.contains("id=\"L4\""));
    let dep = get(
        b,
        "/ui/subjects/acme.common.v1/versions/1/files/acme/common/v1/money.proto",
    );
    assert_eq!(dep.status, 200);
    assert!(dep.text().contains("An amount of money."));
}

#[test]
fn long_diffs_are_paged() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = Server::start(&tmpdb(tmp.path()), &[], &[]);
    let b = &srv.base;
    let files = |field: &str| {
        let mut m = serde_json::Map::new();
        for i in 0..60 {
            m.insert(
                format!("p/v1/f{i:02}.proto"),
                json!(format!(
                    "syntax = \"proto3\";\npackage p.v1;\nmessage M{i} {{\n  {field} a = 1;\n}}\n"
                )),
            );
        }
        json!({"files": m})
    };
    let r = send(
        "PUT",
        b,
        "/v1/subjects/p.v1/config",
        br#"{"mode": "NONE"}"#,
        None,
    );
    assert_eq!(r.status, 200);
    for field in ["string", "int64"] {
        let r = post(b, "/v1/subjects/p.v1/versions", &files(field));
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let first = get(b, "/ui/subjects/p.v1/diff?from=1&to=2").text();
    assert!(
        first.contains("<strong>60</strong>"),
        "all findings counted"
    );
    assert!(first.contains("Files 1–50 of 60"), "{first}");
    assert!(first.contains("diff?from=1&amp;to=2&amp;page=2\">next</a>"));
    assert!(first.contains("p/v1/f49.proto") && !first.contains("p/v1/f50.proto"));
    let second = get(b, "/ui/subjects/p.v1/diff?from=1&to=2&page=2").text();
    assert!(second.contains("Files 51–60 of 60"));
    assert!(second.contains("p/v1/f59.proto") && !second.contains("id=\"p/v1/f00.proto\""));
    assert_eq!(
        second.matches("<code>FIELD_SAME_TYPE</code> 4:").count(),
        10
    );
}

#[test]
fn sign_in_with_tokens() {
    use base64::Engine;
    let tmp = tempfile::tempdir().unwrap();
    let srv = Server::start(
        &tmpdb(tmp.path()),
        &[],
        &[("PROTOREG_TOKENS", "reader-token-1:read")],
    );
    let b = &srv.base;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let call = |method: &str, path: &str, headers: &[(&str, &str)], body: &str| {
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{b}{path}"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        finish(agent.run(req.body(body.to_string()).unwrap()))
    };
    // Without a token: to the sign-in form, and back afterwards.
    let r = call("GET", "/ui/subjects/x?y=1", &[], "");
    assert_eq!(r.status, 303);
    assert_eq!(
        r.headers["location"],
        "/ui/sign-in?next=%2Fui%2Fsubjects%2Fx%3Fy%3D1"
    );
    let form = call("GET", "/ui/sign-in?next=%2Fui%2Fsubjects%2Fx", &[], "");
    assert_eq!(form.status, 200);
    assert!(
        form.text()
            .contains("name=\"next\" value=\"/ui/subjects/x\""),
        "{}",
        form.text()
    );
    // A wrong token stays on the form with the reason.
    let form_type = [("content-type", "application/x-www-form-urlencoded")];
    let r = call(
        "POST",
        "/ui/sign-in",
        &form_type,
        "token=nope&next=%2Fui%2F",
    );
    assert_eq!(r.status, 401);
    assert!(r.text().contains("unknown token"));
    // The right one sets an HttpOnly, SameSite=Strict cookie for /ui only.
    let r = call(
        "POST",
        "/ui/sign-in",
        &form_type,
        "token=reader-token-1&next=%2Fui%2Frules",
    );
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.headers["location"], "/ui/rules");
    let cookie = r.headers["set-cookie"].to_str().unwrap().to_string();
    for part in [
        "protoreg_token=reader-token-1",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/ui",
    ] {
        assert!(cookie.contains(part), "{cookie}");
    }
    let jar = "protoreg_token=reader-token-1";
    assert_eq!(call("GET", "/ui/rules", &[("cookie", jar)], "").status, 200);
    // The cookie opens the UI, not the API.
    assert_eq!(
        call("GET", "/v1/subjects", &[("cookie", jar)], "").status,
        401
    );
    // No open redirect; no sign-in posted from another site.
    let r = call(
        "POST",
        "/ui/sign-in",
        &form_type,
        "token=reader-token-1&next=https%3A%2F%2Fevil.example%2F",
    );
    assert_eq!(r.headers["location"], "/ui/");
    let mut cross = form_type.to_vec();
    cross.push(("origin", "https://evil.example"));
    let r = call("POST", "/ui/sign-in", &cross, "token=reader-token-1");
    assert_eq!(r.status, 403);
    // HTTP Basic (any user, the token) works too.
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("me:reader-token-1")
    );
    assert_eq!(
        call("GET", "/ui/", &[("authorization", &basic)], "").status,
        200
    );
}

/// A diff's findings are kept with the versions: after a restart (nothing in memory) the
/// diff page shows them, with the text diff of its files read on demand.
#[test]
fn diff_pages_survive_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmpdb(tmp.path());
    {
        let srv = Server::start(&db, &[], &[]);
        let b = &srv.base;
        let r = send(
            "PUT",
            b,
            "/v1/subjects/shop.v1/config",
            br#"{"mode": "NONE"}"#,
            None,
        );
        assert_eq!(r.status, 200, "{}", r.text());
        push(b, "shop.v1", V1);
        push(b, "shop.v1", V2);
        let page = get(b, "/ui/subjects/shop.v1/diff?from=1&to=2").text();
        assert!(page.contains("FIELD_SAME_TYPE"), "{page}");
    }
    let srv = Server::start(&db, &[], &[]);
    let page = get(&srv.base, "/ui/subjects/shop.v1/diff?from=1&to=2").text();
    assert!(page.contains("FIELD_SAME_TYPE"), "{page}");
    assert!(
        page.contains("-  string name = 2;"),
        "the text diff: {page}"
    );
    assert!(page.contains("+  int64 name = 2;"), "{page}");
    // Another pair is computed on demand, and the reverse direction is its own diff.
    let reverse = get(&srv.base, "/ui/subjects/shop.v1/diff?from=2&to=1").text();
    assert!(reverse.contains("FIELD_SAME_TYPE"), "{reverse}");
}
