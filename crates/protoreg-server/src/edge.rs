//! What the front doors share at the edge of the server: a route row (the one declaration
//! that gives the router its route and auth its role), which door a path belongs to, and
//! errors made before any door's handler runs (auth, limits, unknown routes), which
//! [`crate::app`] renders in the shape of the door the path names.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;

use crate::AppState;
use crate::service::Role;

/// One route of a door: method, path, the role it needs (`None`: public) and its handler.
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub role: Option<Role>,
    pub handler: fn() -> MethodRouter<AppState>,
}

/// The front doors, by the paths they own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    /// `/v1`, and the server's own paths (health, metrics, `/openapi.json`).
    V1,
    /// The Confluent Schema Registry API at the root paths its clients use.
    Confluent,
    /// The web UI under `/ui/`.
    Ui,
}

/// The first path segments of the Confluent API (its unserved families included, so an
/// unknown route there answers as Confluent does).
const CONFLUENT_PREFIXES: &[&str] = &[
    "/subjects",
    "/schemas",
    "/config",
    "/compatibility",
    "/mode",
    "/contexts",
    "/associations",
    "/exporters",
    "/dek-registry",
];

/// The door whose shape a path's answers take.
pub fn door_of(path: &str) -> Door {
    let under = |p: &str| path == p || path.strip_prefix(p).is_some_and(|r| r.starts_with('/'));
    if CONFLUENT_PREFIXES.iter().any(|p| under(p)) {
        Door::Confluent
    } else if under("/ui") {
        Door::Ui
    } else {
        Door::V1
    }
}

/// An error raised before a handler (auth, an unknown route): a stable code and a message,
/// carried as a response extension and rendered by the door of the request's path.
#[derive(Debug, Clone)]
pub struct EdgeError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

/// The code of the unknown-route error, which no handler answers.
pub const NO_ROUTE: &str = "no_route";

impl IntoResponse for EdgeError {
    fn into_response(self) -> Response {
        let mut resp = self.status.into_response();
        resp.extensions_mut().insert(self);
        resp
    }
}

/// The router's fallback: no route has this path (or method).
pub async fn unknown_route() -> EdgeError {
    EdgeError {
        status: StatusCode::NOT_FOUND,
        code: NO_ROUTE,
        message: "no such route".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doors_by_path() {
        assert_eq!(door_of("/subjects/a%2Fb/versions"), Door::Confluent);
        assert_eq!(door_of("/contexts"), Door::Confluent);
        assert_eq!(door_of("/exporters/x"), Door::Confluent);
        assert_eq!(door_of("/v1/subjects"), Door::V1);
        assert_eq!(door_of("/subjectsx"), Door::V1);
        assert_eq!(door_of("/ui/subjects/a"), Door::Ui);
        assert_eq!(door_of("/uix"), Door::V1);
        assert_eq!(door_of("/metrics"), Door::V1);
    }
}
