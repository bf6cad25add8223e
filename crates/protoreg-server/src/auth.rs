//! Who is asking: bearer tokens (or HTTP Basic `USER:TOKEN`, as Confluent's clients send
//! them, or the UI's sign-in cookie) mapped to a role, checked against the role the matched
//! route declares, and put on the request as a [`Caller`].

use std::collections::HashMap;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::edge::{EdgeError, Route};
use crate::service::{Caller, Role};
use crate::{AppState, confluent, ui, v1};

/// What a token grants: a role, and the name of whom it was issued to (shown as who
/// accepted a break; without one, the token's fingerprint is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub role: Role,
    pub name: Option<String>,
}

/// Parses tokens: one `TOKEN ROLE [NAME]` (or `TOKEN:ROLE[:NAME]`) per line or
/// comma-separated item.
pub fn parse_tokens(text: &str) -> Result<HashMap<String, Grant>, String> {
    let mut out = HashMap::new();
    for item in text.split(['\n', ',']) {
        let item = item.trim();
        if item.is_empty() || item.starts_with('#') {
            continue;
        }
        let parts: Vec<&str> = if item.contains(':') {
            item.splitn(3, ':').map(str::trim).collect()
        } else {
            item.splitn(3, char::is_whitespace).map(str::trim).collect()
        };
        let (tok, role) = match parts.as_slice() {
            [tok, role, ..] => (*tok, *role),
            _ => return Err(format!("token entry {item:?} has no role (TOKEN:ROLE)")),
        };
        if tok.len() < 8 {
            return Err("tokens must be at least 8 characters".into());
        }
        let name = parts
            .get(2)
            .map(|n| n.to_string())
            .filter(|n| !n.is_empty());
        if name
            .as_deref()
            .is_some_and(|n| n.len() > 128 || n.chars().any(char::is_control))
        {
            return Err(format!(
                "token entry {item:?}: the name must be 1-128 printable characters"
            ));
        }
        out.insert(
            tok.to_string(),
            Grant {
                role: role.parse()?,
                name,
            },
        );
    }
    Ok(out)
}

/// The HTTP Basic `USER:PASSWORD` of a request, if it has one.
fn basic_credentials(headers: &axum::http::HeaderMap) -> Option<(String, String)> {
    use base64::Engine;
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// The HTTP Basic user name of a request, if it has one.
fn basic_user(headers: &axum::http::HeaderMap) -> Option<String> {
    let (user, _) = basic_credentials(headers)?;
    let user = user.trim();
    (!user.is_empty() && user.len() <= 128 && !user.chars().any(char::is_control))
        .then(|| user.to_string())
}

fn token_fingerprint(token: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(token.as_bytes());
    format!("token:{}", &hex::encode(digest)[..8])
}

/// The token of a request: `Authorization: Bearer TOKEN`, or HTTP Basic `USER:TOKEN` as
/// Confluent clients send it (`basic.auth.user.info`), the password being the token.
fn request_token(headers: &axum::http::HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    if let Some(t) = value.strip_prefix("Bearer ") {
        return Some(t.trim().to_string());
    }
    basic_credentials(headers).map(|(_, token)| token)
}

pub(crate) async fn auth(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if state.tokens.is_empty() {
        req.extensions_mut().insert(Caller {
            role: Role::Admin,
            who: "anonymous".into(),
        });
        return next.run(req).await;
    }
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let path = req.uri().path();
    // The role the matched route declares; anything else (the UI, unknown routes) reads.
    let need = match route.as_deref() {
        Some(r) => required_role(req.method().as_str(), r),
        None => Some(Role::Read),
    };
    let Some(need) = need else {
        return next.run(req).await;
    };
    let is_ui = ui::is_ui_path(path);
    if is_ui && ui::is_public(path) {
        return next.run(req).await;
    }
    let token = request_token(req.headers())
        .or_else(|| is_ui.then(|| ui::cookie_token(req.headers())).flatten());
    let grant = token.as_deref().and_then(|t| state.tokens.get(t).cloned());
    // Who: the name the token was issued to, else the Basic user name it came with, else
    // its fingerprint.
    let who = grant
        .as_ref()
        .and_then(|g| g.name.clone())
        .or_else(|| basic_user(req.headers()))
        .or_else(|| token.as_deref().map(token_fingerprint))
        .unwrap_or_default();
    match grant.map(|g| g.role) {
        // Browsers cannot send bearer headers: the sign-in form (or HTTP Basic).
        None if is_ui => ui::sign_in_redirect(req.uri()),
        None => EdgeError {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthenticated",
            message: "a bearer token is required".into(),
        }
        .into_response(),
        Some(role) if role < need => EdgeError {
            status: StatusCode::FORBIDDEN,
            code: "forbidden",
            message: format!("this needs the {need:?} role; the token has {role:?}").to_lowercase(),
        }
        .into_response(),
        Some(role) => {
            req.extensions_mut().insert(Caller { role, who });
            next.run(req).await
        }
    }
}

/// The role a route declares, by method and matched path (`None`: public); a route of no
/// table (the UI's pages) needs reading.
pub(crate) fn required_role(method: &str, path: &str) -> Option<Role> {
    let find = |table: &[Route]| {
        table
            .iter()
            .find(|r| r.method == method && r.path == path)
            .map(|r| r.role)
    };
    v1::ROUTES
        .iter()
        .find(|d| d.route.method == method && d.route.path == path)
        .map(|d| d.route.role)
        .or_else(|| find(confluent::ROUTES))
        .unwrap_or(Some(Role::Read))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse() {
        let t = parse_tokens("alice-token-1:admin\nbob-token-22 read\n# comment\n").unwrap();
        assert_eq!(t["alice-token-1"].role, Role::Admin);
        assert_eq!(t["bob-token-22"].role, Role::Read);
        assert_eq!(t["bob-token-22"].name, None);
        let named =
            parse_tokens("carol-token-3:admin:carol@example.com\ndave-token-44 write Dave Ops")
                .unwrap();
        assert_eq!(
            named["carol-token-3"].name.as_deref(),
            Some("carol@example.com")
        );
        assert_eq!(named["dave-token-44"].name.as_deref(), Some("Dave Ops"));
        assert_eq!(named["dave-token-44"].role, Role::Write);
        let fp = token_fingerprint("alice-token-1");
        assert!(fp.starts_with("token:") && fp.len() == 14, "{fp}");
        assert_ne!(fp, token_fingerprint("bob-token-22"));
        assert!(parse_tokens("short:admin").is_err());
        assert!(parse_tokens("long-enough-token:root").is_err());
    }

    #[test]
    fn declared_roles() {
        assert_eq!(required_role("GET", "/subjects"), Some(Role::Read));
        assert_eq!(
            required_role("POST", "/subjects/{subject}/versions"),
            Some(Role::Write)
        );
        assert_eq!(
            required_role("POST", "/subjects/{subject}"),
            Some(Role::Read)
        );
        assert_eq!(required_role("PUT", "/config"), Some(Role::Admin));
        assert_eq!(
            required_role("DELETE", "/subjects/{subject}"),
            Some(Role::Write)
        );
        assert_eq!(
            required_role("DELETE", "/v1/subjects/{subject}/versions/{version}"),
            Some(Role::Admin)
        );
        assert_eq!(required_role("GET", "/healthz"), None);
        assert_eq!(required_role("GET", "/ui/"), Some(Role::Read));
    }
}
