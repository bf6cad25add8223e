//! The router: every door's route table and the UI's routes over one [`AppState`], with the
//! middleware every request passes (metrics, errors in the door's shape, timeout, body
//! limit, auth). This is where the doors meet; no door imports another.

use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

use crate::edge::{Door, EdgeError, door_of};
use crate::v1::ApiError;
use crate::{AppState, auth, confluent, ui, v1};

/// Builds the router with its middleware (auth, metrics, errors in each door's shape, body
/// limit, request timeout).
pub fn router(state: AppState) -> Router {
    let limits = state.limits;
    let mut app = Router::new();
    for d in v1::ROUTES {
        app = app.route(d.route.path, (d.route.handler)());
    }
    app.merge(confluent::routes())
        .merge(ui::routes())
        .fallback(crate::edge::unknown_route)
        .layer(middleware::from_fn_with_state(state.clone(), auth::auth))
        .layer(DefaultBodyLimit::max(limits.max_body))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            limits.request_timeout,
        ))
        .layer(middleware::from_fn(door_errors))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let resp = next.run(req).await;
    state.metrics.observe(
        method.as_str(),
        &route,
        resp.status().as_u16(),
        start.elapsed(),
    );
    resp
}

/// Errors no door's handler made — [`EdgeError`]s (auth, unknown routes) and the plain-text
/// rejections of the router and its layers (body limit, method, query string, timeout) —
/// answered in the shape of the door the path names. A handler's own errors pass as they
/// are: each door renders its errors itself.
async fn door_errors(req: Request, next: Next) -> Response {
    let door = door_of(req.uri().path());
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let edge = match resp.extensions().get::<EdgeError>() {
        Some(e) => e.clone(),
        None => {
            // A handler's error already has its door's shape (JSON, or a page).
            let shaped = resp.headers().get(header::CONTENT_TYPE).is_some_and(|v| {
                let v = v.as_bytes();
                v.starts_with(b"application/json")
                    || v.starts_with(confluent::MEDIA_TYPE.as_bytes())
                    || v.starts_with(b"text/html")
            });
            if shaped {
                return resp;
            }
            rejection(resp, status).await
        }
    };
    match door {
        Door::V1 => ApiError::new(edge.status, edge.code, edge.message).into_response(),
        Door::Confluent => confluent::CfError::from_edge(&edge).into_response(),
        Door::Ui => ui::error_page(edge.status, &edge.message),
    }
}

/// An error the router or a layer answered with a status and plain text.
async fn rejection(resp: Response, status: StatusCode) -> EdgeError {
    let text = axum::body::to_bytes(resp.into_body(), 64 << 10)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_string();
    let (code, message) = match status {
        StatusCode::NOT_FOUND => (crate::edge::NO_ROUTE, "no such route".to_string()),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "method not allowed on this route".to_string(),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "body_too_large",
            if text.is_empty() {
                "request body too large".into()
            } else {
                text
            },
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", text),
        StatusCode::SERVICE_UNAVAILABLE if text.is_empty() => (
            "timeout",
            "the request took too long; try again".to_string(),
        ),
        s if s.is_client_error() => ("bad_request", text),
        _ => ("internal", text),
    };
    EdgeError {
        status,
        code,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protoreg_store::Store;
    use tower::ServiceExt;

    async fn app() -> (tempfile::TempDir, Router) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("r.db").to_string_lossy())
            .await
            .unwrap();
        (dir, router(AppState::new(store)))
    }

    async fn ask(app: &Router, method: &str, path: &str) -> (StatusCode, String, String) {
        let req = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .body(axum::body::Body::from("{}"))
            .unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let kind = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, kind, String::from_utf8_lossy(&body).into_owned())
    }

    /// Every declared route is served: asked with its method, no declared route answers
    /// the unknown-route error (nor 405).
    #[tokio::test]
    async fn every_declared_route_is_served() {
        let (_dir, app) = app().await;
        let v1 = v1::ROUTES.iter().map(|d| &d.route);
        for r in v1.chain(confluent::ROUTES.iter()) {
            let path = r
                .path
                .replace("{subject}", "s")
                .replace("{version}", "1")
                .replace("{*path}", "a.proto")
                .replace("{digest}", "d")
                .replace("{id}", "1")
                .replace("{env}", "e")
                .replace("{service}", "svc");
            let path = if path.ends_with("/diff") {
                path + "?from=1&to=1"
            } else {
                path
            };
            let (status, _, body) = ask(&app, r.method, &path).await;
            assert_ne!(
                status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{} {}",
                r.method,
                r.path
            );
            assert!(
                !body.contains(crate::edge::NO_ROUTE) && !body.contains("HTTP 404 Not Found"),
                "{} {} is not routed: {status} {body}",
                r.method,
                r.path
            );
        }
    }

    /// The check above can fail: an unknown route answers the unknown-route error, in the
    /// shape of the door its prefix names.
    #[tokio::test]
    async fn unknown_routes_answer_in_their_doors_shape() {
        let (_dir, app) = app().await;
        let (status, _, body) = ask(&app, "GET", "/v1/nothing-here").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"]["code"], crate::edge::NO_ROUTE);
        for path in [
            "/contexts",
            "/associations/x",
            "/exporters",
            "/subjects/a/nothing",
        ] {
            let (status, kind, body) = ask(&app, "GET", path).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
            assert!(kind.starts_with(confluent::MEDIA_TYPE), "{path}: {kind}");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(
                v,
                serde_json::json!({"error_code": 404, "message": "HTTP 404 Not Found"}),
                "{path}"
            );
        }
        let (status, kind, body) = ask(&app, "GET", "/ui/nothing-here").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(kind.starts_with("text/html"), "{kind}");
        assert!(body.contains("<h1>404</h1>"), "{body}");
    }
}
