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
    pub fn post_gzip(&self, path: &str, body: &impl serde::Serialize) -> anyhow::Result<Reply> {
        let json = serde_json::to_vec(body)?;
        let bytes = gzip(&json).map_err(|e| anyhow!("compressing the body: {e}"))?;
        drop(json);
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
    protoreg_server::api::url_segment(subject)
}

/// Splits `SUBJECT[@VERSION]` (version defaults to `latest`).
pub fn subject_ref(s: &str) -> (String, String) {
    match s.split_once('@') {
        Some((subject, v)) => (subject.to_string(), v.to_string()),
        None => (s.to_string(), "latest".to_string()),
    }
}

/// Bodies at least this large are compressed on two threads.
const GZIP_SPLIT_FROM: usize = 1 << 20;

/// One gzip member of `data`. A large body is deflated in two halves at once, as pigz does:
/// the first half ends with a sync flush (a byte-aligned, non-final block), so the second
/// half's blocks continue the same stream; the CRC-32 of the halves is combined.
fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let deflate = |part: &[u8], last: bool| -> std::io::Result<(Vec<u8>, crc32fast::Hasher)> {
        let mut crc = crc32fast::Hasher::new();
        crc.update(part);
        let mut enc = flate2::write::DeflateEncoder::new(
            Vec::with_capacity(part.len() / 4 + 64),
            flate2::Compression::fast(),
        );
        enc.write_all(part)?;
        let out = if last {
            enc.finish()?
        } else {
            enc.flush()?;
            std::mem::take(enc.get_mut())
        };
        Ok((out, crc))
    };
    let split = if data.len() >= GZIP_SPLIT_FROM {
        data.len() / 2
    } else {
        0
    };
    let (first, second) = data.split_at(split);
    let ((head, mut crc), (tail, rest)) = std::thread::scope(|scope| {
        let t = scope.spawn(|| deflate(second, true));
        let head = deflate(first, false);
        let tail = t.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        Ok::<_, std::io::Error>((head?, tail?))
    })?;
    crc.combine(&rest);
    // RFC 1952: magic, deflate, no flags, no time, no extra flags, unknown OS.
    let mut out = Vec::with_capacity(head.len() + tail.len() + 18);
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
    out.extend_from_slice(&head);
    out.extend_from_slice(&tail);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    /// Small and large bodies (one thread, two) read back whole through a plain gzip
    /// decoder, as one member.
    #[test]
    fn gzip_is_one_member_a_plain_decoder_reads() {
        let line = "{\"files\": {\"a.proto\": \"syntax = \\\"proto3\\\";\\n\"}}\n";
        for data in [
            String::new(),
            line.to_string(),
            line.repeat(super::GZIP_SPLIT_FROM / line.len() * 3),
        ] {
            let packed = super::gzip(data.as_bytes()).expect("compresses");
            let mut back = String::new();
            flate2::read::GzDecoder::new(&packed[..])
                .read_to_string(&mut back)
                .expect("a valid gzip stream");
            assert_eq!(back, data);
        }
    }
}
