//! The registry test harness: real `protoreg serve` processes on SQLite files or the
//! PostgreSQL at 127.0.0.1:5432, and small HTTP helpers. Shared by the registry tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_protoreg")
}

pub fn postgres_url() -> String {
    let url = std::env::var("PROTOREG_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    require_postgres(&url);
    url
}

/// Fails (never skips) with what to do when the PostgreSQL the tests need does not answer.
fn require_postgres(url: &str) {
    let hostport = url
        .split('@')
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or("127.0.0.1:5432");
    let reachable = std::net::ToSocketAddrs::to_socket_addrs(hostport)
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(3)).is_ok());
    assert!(
        reachable,
        "the PostgreSQL tests need a server at {hostport} (user postgres, trust auth, database `test`): \
         see README \"Tests\" (Debian: apt-get install postgresql; pg_ctlcluster 15 main start; \
         createdb -U postgres test), or point PROTOREG_TEST_POSTGRES at one"
    );
}

/// A unique subject name per test run.
pub fn subject(name: &str) -> String {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}.{}.{t}", std::process::id())
}

pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Server {
    pub fn start(database: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(bin());
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--database", database])
            .args(args)
            .env_remove("PROTOREG_TOKENS")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("protoreg serve starts");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let base = line
            .split("listening on ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_else(|| panic!("server did not start: {line:?}"))
            .to_string();
        Server { child, base }
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

pub struct Resp {
    pub status: u16,
    pub headers: ureq::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

pub fn finish(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Resp {
    let mut r = r.expect("request sent");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .unwrap_or_default();
    Resp {
        status,
        headers,
        body,
    }
}

pub fn get(base: &str, path: &str) -> Resp {
    finish(agent().get(&format!("{base}{path}")).call())
}

pub fn get_with(base: &str, path: &str, headers: &[(&str, &str)]) -> Resp {
    let mut req = agent().get(&format!("{base}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    finish(req.call())
}

pub fn send(method: &str, base: &str, path: &str, body: &[u8], token: Option<&str>) -> Resp {
    let url = format!("{base}{path}");
    let a = agent();
    let with = |r: ureq::RequestBuilder<ureq::typestate::WithBody>| match token {
        Some(t) => r.header("Authorization", &format!("Bearer {t}")),
        None => r,
    };
    finish(match method {
        "POST" => with(a.post(&url))
            .content_type("application/json")
            .send(body),
        "PUT" => with(a.put(&url))
            .content_type("application/json")
            .send(body),
        _ => panic!("method {method}"),
    })
}

pub fn post(base: &str, path: &str, body: &Value) -> Resp {
    send("POST", base, path, body.to_string().as_bytes(), None)
}

pub fn delete(base: &str, path: &str) -> Resp {
    finish(agent().delete(&format!("{base}{path}")).call())
}

pub fn tmpdb(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("registry.db").display())
}
