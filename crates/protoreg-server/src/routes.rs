//! The route table: what each route needs (its role) and what `/openapi.json` says.

use axum::Json;
use serde_json::{Value, json};

use crate::Role;

/// One row of the route table: what each route needs and what the OpenAPI document says.
pub struct RouteDoc {
    pub method: &'static str,
    pub path: &'static str,
    pub role: Option<Role>,
    pub summary: &'static str,
}

/// The API, as served (used for authorization and for `/openapi.json`).
pub static ROUTES: &[RouteDoc] = &[
    RouteDoc {
        method: "GET",
        path: "/healthz",
        role: None,
        summary: "Liveness",
    },
    RouteDoc {
        method: "GET",
        path: "/readyz",
        role: None,
        summary: "Readiness: the database answers",
    },
    RouteDoc {
        method: "GET",
        path: "/metrics",
        role: None,
        summary: "Prometheus metrics",
    },
    RouteDoc {
        method: "GET",
        path: "/openapi.json",
        role: None,
        summary: "This API's OpenAPI 3.0 document",
    },
    RouteDoc {
        method: "GET",
        path: "/v1/config",
        role: Some(Role::Read),
        summary: "The global compatibility policy",
    },
    RouteDoc {
        method: "PUT",
        path: "/v1/config",
        role: Some(Role::Admin),
        summary: "Set the global compatibility policy",
    },
    RouteDoc {
        method: "GET",
        path: "/v1/subjects",
        role: Some(Role::Read),
        summary: "List subjects",
    },
    RouteDoc {
        method: "GET",
        path: "/v1/subjects/{subject}",
        role: Some(Role::Read),
        summary: "A subject: versions and effective policy",
    },
    RouteDoc {
        method: "GET",
        path: "/v1/subjects/{subject}/config",
        role: Some(Role::Read),
        summary: "A subject's policy",
    },
    RouteDoc {
        method: "PUT",
        path: "/v1/subjects/{subject}/config",
        role: Some(Role::Admin),
        summary: "Set a subject's policy",
    },
    RouteDoc {
        method: "POST",
        path: "/v1/subjects/{subject}/versions",
        role: Some(Role::Write),
        summary: "Push a version (201 new, 200 unchanged, 409 breaking, 422 compile errors)",
    },
    RouteDoc {
        method: "GET",
        path: "/v1/subjects/{subject}/versions",
        role: Some(Role::Read),
        summary: "List live versions",
    },
    RouteDoc {
        method: "POST",
        path: "/v1/subjects/{subject}/check",
        role: Some(Role::Write),
        summary: "Dry run of a push: compatible and findings",
    },
    RouteDoc {
        method: "GET",
        path: "/v1/subjects/{subject}/versions/{version}",
        role: Some(Role::Read),
        summary: "A version (number or latest): files, digest, labels",
    },
    RouteDoc {
        method: "DELETE",
        path: "/v1/subjects/{subject}/versions/{version}",
        role: Some(Role::Admin),
        summary: "Soft delete; ?permanent=true deletes a soft-deleted version; 409 when live versions depend on it unless ?force=true",
    },
    RouteDoc {
        method: "GET",
        path: "/v1/subjects/{subject}/versions/{version}/descriptor",
        role: Some(Role::Read),
        summary: "Binary FileDescriptorSet (ETag = digest)",
    },
    RouteDoc {
        method: "GET",
        path: "/v1/subjects/{subject}/versions/{version}/dependents",
        role: Some(Role::Read),
        summary: "Live versions of other subjects that depend on this version (paginated)",
    },
    RouteDoc {
        method: "GET",
        path: "/v1/subjects/{subject}/versions/{version}/files/{*path}",
        role: Some(Role::Read),
        summary: "One file's text",
    },
    RouteDoc {
        method: "GET",
        path: "/v1/subjects/{subject}/diff",
        role: Some(Role::Read),
        summary: "Findings both ways and text diffs between ?from=N&to=M",
    },
    RouteDoc {
        method: "GET",
        path: "/v1/schemas/{digest}",
        role: Some(Role::Read),
        summary: "Where content with this digest is registered",
    },
];

pub(crate) async fn openapi() -> Json<Value> {
    let mut paths = serde_json::Map::new();
    for r in ROUTES {
        let path = r.path.replace("{*path}", "{path}");
        let params: Vec<Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut op = json!({
            "summary": r.summary,
            "parameters": params,
            "responses": {"200": {"description": "OK"}, "default": {"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
        });
        if let Some(role) = r.role {
            op["security"] = json!([{"bearer": []}]);
            op["x-protoreg-role"] = json!(format!("{role:?}").to_lowercase());
        }
        if matches!(r.method, "POST" | "PUT") {
            op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"type": "object"}}}});
        }
        paths
            .entry(path)
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("object")
            .insert(r.method.to_lowercase(), op);
    }
    Json(json!({
        "openapi": "3.0.3",
        "info": {"title": "protoreg registry", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
                "code": {"type": "string"}, "message": {"type": "string"}, "details": {}}}}}}
        }
    }))
}
