//! End-to-end test of the pinned gRPC demo: real `protoreg serve`, `protoreg push`/`pin`,
//! `protoreg-demo-server` and `protoreg-demo-client` processes on loopback.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

fn demo_server() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_protoreg-demo-server"))
}

fn demo_client() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_protoreg-demo-client"))
}

/// The `protoreg` binary of the same build (built here when this test runs alone).
fn protoreg() -> PathBuf {
    let dir = demo_server().parent().unwrap().to_path_buf();
    let bin = dir.join("protoreg");
    if !bin.exists() {
        let release = dir.ends_with("release");
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "-p", "protoreg", "--bin", "protoreg"]);
        if release {
            cmd.arg("--release");
        }
        assert!(
            cmd.status().unwrap().success(),
            "building protoreg for the demo test"
        );
    }
    bin
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a process and waits for its line containing `marker`; returns the rest of it.
/// (The child is handed to `Proc`, which kills and waits for it on drop.)
#[allow(clippy::zombie_processes)]
fn start(cmd: &mut Command, marker: &str) -> (Proc, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let mut reader = BufReader::new(out);
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            let mut err = String::new();
            let _ = std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err);
            let _ = child.wait();
            panic!("process exited before {marker:?}: {seen}{err}");
        }
        seen.push_str(&line);
        if let Some(rest) = line.split(marker).nth(1) {
            let rest = rest.trim().to_string();
            std::thread::spawn(move || for _ in reader.lines() {});
            return (Proc(child), rest);
        }
    }
}

fn run(cmd: &mut Command) -> (Option<i32>, String, String) {
    let o: Output = cmd.output().unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

/// Installs the named PyPI packages when their modules are missing (the stock clients these
/// tests run); panics when that fails, so the test fails rather than skips.
fn ensure_python_modules(modules: &[(&str, &str)]) {
    for (module, package) in modules {
        let present = Command::new("python3")
            .args(["-c", &format!("import {module}")])
            .status()
            .is_ok_and(|s| s.success());
        if !present {
            let (code, out, err) =
                run(Command::new("python3").args(["-m", "pip", "install", "--quiet", package]));
            assert_eq!(code, Some(0), "installing {package} from PyPI: {out}{err}");
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

#[test]
fn pinned_demo_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let (_registry, url) = start(
        Command::new(protoreg())
            .args(["serve", "--listen", "127.0.0.1:0", "--database"])
            .arg(format!("sqlite://{}", t.join("r.db").display()))
            .env_remove("PROTOREG_TOKENS"),
        "listening on ",
    );
    let url = url.split_whitespace().next().unwrap().to_string();
    let reg = |args: &[&str]| {
        run(Command::new(protoreg())
            .args(args)
            .env("PROTOREG_REGISTRY", &url)
            .env_remove("PROTOREG_TOKEN")
            .current_dir(t))
    };
    // The shared types first, then the service that depends on them (its deps come from
    // proto-examples/protoreg.yaml).
    let estate = root().join("proto-examples");
    for (dir, subject) in [("common", "acme.common.v1"), ("users", "acme.users.v1")] {
        let (code, out, err) = reg(&[
            "push",
            estate.join(dir).to_str().unwrap(),
            "--subject",
            subject,
        ]);
        assert_eq!(code, Some(0), "{out}{err}");
    }
    let (code, out, err) = reg(&["pin", "acme.users.v1@1", "--lock", "v1.lock"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let lock1 = t.join("v1.lock");

    // The server verifies its pin and serves.
    let server = |lock: &Path| {
        let mut c = Command::new(demo_server());
        c.args(["--listen", "127.0.0.1:0", "--lock"])
            .arg(lock)
            .env("DEMO_TOKEN", "s3cret-token")
            .env_remove("PROTOREG_TOKEN");
        c
    };
    let (srv, addr) = start(&mut server(&lock1), "listening on ");
    let addr = format!("http://{addr}");
    let client = |args: &[&str]| {
        run(Command::new(demo_client())
            .args(["--addr", &addr])
            .args(args)
            .env("DEMO_TOKEN", "s3cret-token")
            .env_remove("PROTOREG_TOKEN"))
    };

    let (code, out, err) = client(&["--lock", lock1.to_str().unwrap(), "demo"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        err.contains("server and client both on acme.users.v1@1"),
        "{err}"
    );
    for line in [
        "unary GetUser: u1",
        "server streaming ListUsers: 3 users",
        "client streaming ImportUsers: created 2",
        "bidirectional SyncUsers: 2 replies",
    ] {
        assert!(out.contains(line), "{line:?} in {out}");
    }
    let (code, _, err) = client(&["get", "nobody"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("NOT_FOUND"), "{err}");
    let (_, _, err) = client(&["get", ""]);
    assert!(err.contains("INVALID_ARGUMENT"), "{err}");
    let (_, _, err) = client(&["--token", "", "get", "u1"]);
    assert!(err.contains("UNAUTHENTICATED"), "{err}");
    let (_, _, err) = client(&["--token", "wrong-token", "get", "u1"]);
    assert!(err.contains("UNAUTHENTICATED"), "{err}");
    let (_, _, err) = client(&["--timeout-ms", "100", "--work-ms", "1000", "get", "u1"]);
    assert!(err.contains("DEADLINE_EXCEEDED"), "{err}");
    let (code, out, _) = client(&["--timeout-ms", "2000", "--work-ms", "10", "get", "u1"]);
    assert_eq!(
        code,
        Some(0),
        "a deadline longer than the work succeeds: {out}"
    );
    let (_, _, err) = client(&["import", "u1:u1@acme.test:Dup"]);
    assert!(err.contains("ALREADY_EXISTS"), "{err}");
    let (code, out, err) = client(&["reflect"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("acme.users.v1.UserService"), "{out}");
    // Python grpcio's stock reflection client (grpc.reflection.v1alpha) lists the services
    // and calls one with message types built from reflection alone.
    ensure_python_modules(&[("grpc", "grpcio"), ("grpc_reflection", "grpcio-reflection")]);
    let (code, out, err) = run(Command::new("python3")
        .arg(root().join("tests/support/grpc_reflect.py"))
        .arg(addr.trim_start_matches("http://"))
        .arg("s3cret-token"));
    assert_eq!(code, Some(0), "stock grpcio reflection client: {out}{err}");
    for line in [
        "service acme.users.v1.UserService",
        "service grpc.health.v1.Health",
        "GetUser u1 -> ",
    ] {
        assert!(out.contains(line), "{line:?} in {out}");
    }

    // A compatible v2 that leaves the service's contract as built (a file the binary does
    // not use was added to the module): the server starts cleanly on it; a client pinned to
    // @1 talks to it with a warning.
    let compatible = t.join("compatible");
    copy_dir(&estate.join("users"), &compatible);
    std::fs::write(
        compatible.join("acme/users/v1/admin.proto"),
        "syntax = \"proto3\";\npackage acme.users.v1;\nmessage AuditEntry {\n  string user_id = 1;\n}\n",
    )
    .unwrap();
    let (code, out, err) = reg(&[
        "push",
        compatible.to_str().unwrap(),
        "--subject",
        "acme.users.v1",
        "--dep",
        "acme.common.v1",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("@2 created"), "{out}");
    assert_eq!(
        reg(&["pin", "acme.users.v1@2", "--lock", "v2.lock"]).0,
        Some(0)
    );
    drop(srv);
    let (_srv2, addr2) = start(&mut server(&t.join("v2.lock")), "listening on ");
    let addr2 = format!("http://{addr2}");
    let (code, out, err) = run(Command::new(demo_client())
        .args([
            "--addr",
            &addr2,
            "--lock",
            lock1.to_str().unwrap(),
            "get",
            "u1",
        ])
        .env("DEMO_TOKEN", "s3cret-token"));
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(err.contains("compatible per the registry"), "{err}");

    // A contract change pushed and pinned, but not what the binary was built with: refused,
    // naming the element.
    let users = compatible.join("acme/users/v1/users.proto");
    let text = std::fs::read_to_string(&users)
        .unwrap()
        .replace("  reserved 8;", "  string nickname = 9;\n  reserved 8;");
    std::fs::write(&users, text).unwrap();
    assert_eq!(
        reg(&[
            "push",
            compatible.to_str().unwrap(),
            "--subject",
            "acme.users.v1",
            "--dep",
            "acme.common.v1"
        ])
        .0,
        Some(0)
    );
    assert_eq!(
        reg(&["pin", "acme.users.v1@3", "--lock", "v3.lock"]).0,
        Some(0)
    );
    let (code, _, err) = run(&mut server(&t.join("v3.lock")));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("contract drift") && err.contains("acme.users.v1.User.nickname"),
        "{err}"
    );
    // A client pinned to @3 refuses the server on @2 (the server lacks a field it expects).
    let (code, _, err) = run(Command::new(demo_client())
        .args([
            "--addr",
            &addr2,
            "--lock",
            t.join("v3.lock").to_str().unwrap(),
            "get",
            "u1",
        ])
        .env("DEMO_TOKEN", "s3cret-token"));
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.contains("incompatible") && err.contains("FIELD_NO_DELETE"),
        "{err}"
    );

    // The server reports itself where it runs; can-i-deploy sees it. A caller built with
    // @3 (it uses `nickname`) cannot be deployed next to the instance serving @2; one built
    // with @1 can.
    let (_reporting, _) = start(
        server(&t.join("v2.lock")).args([
            "--env",
            "production",
            "--instance",
            "pod-a",
            "--report-ttl-secs",
            "30",
        ]),
        "listening on ",
    );
    for (lock, version) in [("orders-v3.lock", "3"), ("orders-v1.lock", "1")] {
        let (code, out, err) = reg(&[
            "pin",
            &format!("acme.users.v1@{version}"),
            "--calls",
            "--lock",
            lock,
        ]);
        assert_eq!(code, Some(0), "{out}{err}");
    }
    let (code, out, err) = reg(&[
        "can-i-deploy",
        "--service",
        "orders",
        "--env",
        "production",
        "--lock",
        "orders-v3.lock",
    ]);
    assert_eq!(code, Some(100), "{out}{err}");
    assert!(
        out.contains("users (instance pod-a)") && out.contains("FIELD_NO_DELETE"),
        "{out}"
    );
    let (code, out, err) = reg(&[
        "can-i-deploy",
        "--service",
        "orders",
        "--env",
        "production",
        "--lock",
        "orders-v1.lock",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("? yes"), "{out}");

    // `protoreg check` catches an unregistered change of a pinned contract before commit.
    let lock_in_proj = compatible.join("protoreg.lock");
    std::fs::copy(t.join("v2.lock"), &lock_in_proj).unwrap();
    std::fs::write(
        t.join("protoreg.yaml"),
        format!("registry: {url}\nsubjects:\n  - subject: acme.users.v1\n    dir: compatible\n    lock: compatible/protoreg.lock\n    deps: [acme.common.v1]\n"),
    )
    .unwrap();
    let (code, out, err) = reg(&["check", "--config", "protoreg.yaml"]);
    assert_eq!(code, Some(100), "{out}{err}");
    assert!(
        err.contains("drift:") && err.contains("protoreg pin acme.users.v1"),
        "{err}"
    );

    // Registry down: the server starts from the cached pinned descriptor, saying so.
    drop(_registry);
    let (_srv_cached, pin_line) = start(&mut server(&t.join("v2.lock")), "pin: ");
    assert!(
        pin_line.contains("acme.users.v1@2") && pin_line.ends_with("(Cache)"),
        "{pin_line}"
    );
}
