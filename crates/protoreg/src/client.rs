//! The registry client used by `push`, `pull`, `subjects`, `log`, `diff`, `check` and
//! `breaking --against registry:S[@N]`.

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use serde_json::Value;

/// A registry at a base URL, with an optional bearer token.
pub struct Registry {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

/// A response: status and body.
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> anyhow::Result<Value> {
        serde_json::from_slice(&self.body).with_context(|| {
            format!(
                "registry answered {} with a body that is not JSON",
                self.status
            )
        })
    }

    /// The error message of an error body, or the status.
    pub fn error_message(&self) -> String {
        self.json()
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| format!("HTTP {}", self.status))
    }
}

impl Registry {
    pub fn new(base: &str, token: Option<String>, timeout: Duration) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .build()
            .into();
        Registry {
            base: base.trim_end_matches('/').to_string(),
            token,
            agent,
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn auth<B>(&self, req: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.token {
            Some(t) => req.header("Authorization", &format!("Bearer {t}")),
            None => req,
        }
    }

    fn read(
        &self,
        resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> anyhow::Result<Reply> {
        let mut resp = resp.map_err(|e| anyhow!("registry {} unreachable: {e}", self.base))?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .map_err(|e| anyhow!("reading the registry's answer: {e}"))?;
        Ok(Reply { status, body })
    }

    pub fn get(&self, path: &str) -> anyhow::Result<Reply> {
        let req = self.auth(self.agent.get(&format!("{}{path}", self.base)));
        self.read(req.call())
    }

    /// POST of a JSON body sent gzipped (pushes: a large module's text compresses about 5x).
    pub fn post_gzip(&self, path: &str, body: &Value) -> anyhow::Result<Reply> {
        use std::io::Write;
        let enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        // Large writes into the encoder: it zero-fills its 32 KiB buffer on every call, so
        // serde_json's many small writes straight into it cost more than compressing.
        let mut w = std::io::BufWriter::with_capacity(1 << 20, enc);
        serde_json::to_writer(&mut w, body)?;
        w.flush()?;
        let bytes = w
            .into_inner()
            .map_err(|e| anyhow!("compressing the body: {}", e.error()))?
            .finish()?;
        let req = self
            .auth(self.agent.post(&format!("{}{path}", self.base)))
            .header("Content-Type", "application/json")
            .header("Content-Encoding", "gzip");
        self.read(req.send(&bytes[..]))
    }

    pub fn delete(&self, path: &str) -> anyhow::Result<Reply> {
        let req = self.auth(self.agent.delete(&format!("{}{path}", self.base)));
        self.read(req.call())
    }

    /// Every item of a paginated listing (following `X-Next-Page-Token`).
    pub fn get_all(&self, path: &str) -> anyhow::Result<Vec<Value>> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let url = match &token {
                Some(t) => format!("{}{path}{sep}page_size=1000&page_token={t}", self.base),
                None => format!("{}{path}{sep}page_size=1000", self.base),
            };
            let resp = self
                .auth(self.agent.get(&url))
                .call()
                .map_err(|e| anyhow!("registry {} unreachable: {e}", self.base))?;
            token = resp
                .headers()
                .get("x-next-page-token")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let reply = self.read(Ok(resp))?;
            if reply.status != 200 {
                bail!("{path}: {}", reply.error_message());
            }
            match reply.json()? {
                Value::Array(items) => out.extend(items),
                other => bail!("{path}: expected a list, got {other}"),
            }
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    /// GET that must answer 200 with JSON.
    pub fn get_json(&self, path: &str) -> anyhow::Result<Value> {
        let r = self.get(path)?;
        if r.status != 200 {
            bail!("{path}: {}", r.error_message());
        }
        r.json()
    }
}

/// A subject as one URL path segment (subjects may hold `/`, as Confluent's reference
/// subjects do: `acme/common/v1/money.proto`).
pub fn seg(subject: &str) -> String {
    protoreg_server::domain::url_segment(subject)
}

/// Splits `SUBJECT[@VERSION]` (version defaults to `latest`).
pub fn subject_ref(s: &str) -> (String, String) {
    match s.split_once('@') {
        Some((subject, v)) => (subject.to_string(), v.to_string()),
        None => (s.to_string(), "latest".to_string()),
    }
}
