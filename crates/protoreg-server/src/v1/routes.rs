//! The `/v1` route table, declared once: it gives the router its routes, auth their roles,
//! and `/openapi.json` its paths.

use axum::Json;
use axum::routing::{delete, get, post, put};
use serde_json::{Value, json};

use super::{deployments, push};
use crate::edge::Route;
use crate::service::Role;

/// One row of the route table: the route (method, path, role, handler) and what the
/// OpenAPI document says of it.
pub struct RouteDoc {
    pub route: Route,
    pub summary: &'static str,
    /// The request body's schema (a type of [`crate::api`]).
    pub request: Option<&'static str>,
    /// The success body: a schema name, `[Name]` for a list of them, or `binary`, `text`,
    /// `object`.
    pub response: &'static str,
    /// The success status.
    pub status: u16,
    /// Query parameters (all optional but `from`/`to`).
    pub query: &'static [&'static str],
}

/// The API, as served: the router, authorization and `/openapi.json` all read it.
pub static ROUTES: &[RouteDoc] = &[
    RouteDoc {
        route: Route {
            method: "GET",
            path: "/healthz",
            role: None,
            handler: || get(|| async { Json(json!({"status": "ok"})) }),
        },
        summary: "Liveness",
        request: None,
        response: "Status",
        status: 200,
        query: &[],
    },
    RouteDoc {
        route: Route {
            method: "GET",
            path: "/readyz",
            role: None,
            handler: || get(super::readyz),
        },
        summary: "Readiness: the database answers",
        request: None,
        response: "Status",
        status: 200,
        query: &[],
    },
    RouteDoc {
        route: Route {
            method: "GET",
            path: "/metrics",
            role: None,
            handler: || get(super::metrics_text),
        },
        summary: "Prometheus metrics",
        request: None,
        response: "text",
        status: 200,
        query: &[],
    },
    RouteDoc {
        route: Route {
            method: "GET",
            path: "/openapi.json",
            role: None,
            handler: || get(openapi),
        },
        summary: "This API's OpenAPI 3.0 document",
        request: None,
        response: "object",
        status: 200,
        query: &[],
    },
    RouteDoc {
        route: Route {
            method: "GET",
            path: "/v1/config",
            role: Some(Role::Read),
            handler: || get(super::get_global_config),
        },
        summary: "The global compatibility policy",
        request: None,
        response: "Policy",
        status: 200,
        query: &[],
    },
    RouteDoc {
        route: Route {
            method: "PUT",
            path: "/v1/config",
            role: Some(Role::Admin),
            handler: || put(super::put_global_config),
        },
        summary: "Set the global compatibility policy",
        request: Some("PolicyUpdate"),
        response: "Policy",
        status: 200,
        query: &[],
    },
    RouteDoc {
        route: Route {
            method: "GET",
            path: "/v1/subjects",
            role: Some(Role::Read),
            handler: || get(super::list_subjects),
        },
        summary: "List subjects",
        request: None,
        response: "[SubjectSummary]",
        status: 200,
        query: &["page_size", "page_token"],
    },
    RouteDoc {
        route: Route {
            method: "GET",
            path: "/v1/subjects/{subject}",
            role: Some(Role::Read),
            handler: || get(super::get_subject),
        },
        summary: "A subject: versions and effective policy",
        request: None,
        response: "Subject",
        status: 200,
        query: &[],
    },
    RouteDoc {
        route: Route {
            method: "GET",
            path: "/v1/subjects/{subject}/config",
            role: Some(Role::Read),
            handler: || get(super::get_subject_config),
        },
        summary: "A subject's policy",
        request: None,
        response: "Policy",
        status: 200,
        query: &[],
    },
    RouteDoc {
        route: Route {
            method: "PUT",
            path: "/v1/subjects/{subject}/config",
            role: Some(Role::Admin),
            handler: || put(super::put_subject_config),
        },
        summary: "Set a subject's policy",
        request: Some("PolicyUpdate"),
        response: "Policy",
        status: 200,
        query: &[],
    },
    RouteDoc {
        route: Route {
            method: "POST",
            path: "/v1/subjects/{subject}/versions",
            role: Some(Role::Write),
            handler: || post(push::push),
        },
        summary: "Push a version (201 new, 200 unchanged, 409 breaking, 422 compile errors; `accept_breaking` lets findings through, admin only)",
        request: Some("PushRequest"),
        response: "PushReply",
        status: 201,
        query: &[],
    },
    RouteDoc {
        route: Route {
            method: "GET",
            path: "/v1/subjects/{subject}/versions",
            role: Some(Role::Read),
            handler: || get(super::list_versions),
        },
        summary: "List live versions",
        request: None,
        response: "[VersionSummary]",
        status: 200,
        query: &["page_size", "page_token"],
    },
    RouteDoc {
        route: Route {
            method: "POST",
            path: "/v1/subjects/{subject}/check",
            role: Some(Role::Write),
            handler: || post(push::check),
        },
        summary: "Dry run of a push: compatible and findings",
        request: Some("PushRequest"),
        response: "CheckReply",
        status: 200,
        query: &[],
    },
    RouteDoc {
        route: Route {
            method: "GET",
            path: "/v1/subjects/{subject}/versions/{version}",
            role: Some(Role::Read),
            handler: || get(super::get_version),
        },
        summary: "A version (number or latest): files, digest, labels",
        request: None,
        response: "VersionBody",
        status: 200,
        query: &[],
    },
    RouteDoc {
        route: Route {
            method: "DELETE",
            path: "/v1/subjects/{subject}/versions/{version}",
            role: Some(Role::Admin),
            handler: || delete(super::delete_version),
        },
        summary: "Soft delete; ?permanent=true deletes a soft-deleted version; 409 when live versions depend on it or current deployments run it, unless ?force=true",
        request: None,
        response: "DeleteReply",
        status: 200,
        query: &["permanent", "force"],
    },
    RouteDoc {
        route: Route {
            method: "GET",
            path: "/v1/subjects/{subject}/versions/{version}/descriptor",
            role: Some(Role::Read),
            handler: || get(super::get_descriptor),
        },
        summary: "Binary FileDescriptorSet (ETag = digest)",
        request: None,
        response: "binary",
        status: 200,
        query: &[],
    },
    RouteDoc {
        route: Route {
            method: "GET",
            path: "/v1/subjects/{subject}/versions/{version}/dependents",
            role: Some(Role::Read),
            handler: || get(super::get_dependents),
        },
        summary: "Live versions of other subjects that depend on this version (paginated)",
        request: None,
        response: "[VersionRef]",
        status: 200,
        query: &["page_size", "page_token"],
    },
    RouteDoc {
        route: Route {
            method: "GET",
            path: "/v1/subjects/{subject}/refusals",
            role: Some(Role::Read),
            handler: || get(super::list_refusals),
        },
        summary: "Recently refused pushes with their findings, newest first (the last 50)",
        request: None,
        response: "[Refusal]",
        status: 200,
        query: &[],
    },
    RouteDoc {
        route: Route {
            method: "GET",
            path: "/v1/subjects/{subject}/versions/{version}/files/{*path}",
            role: Some(Role::Read),
            handler: || get(super::get_file),
        },
        summary: "One file's text",
        request: None,
        response: "text",
        status: 200,
        query: &[],
    },
    RouteDoc {
        route: Route {
            method: "GET",
            path: "/v1/subjects/{subject}/diff",
            role: Some(Role::Read),
            handler: || get(super::diff),
        },
        summary: "Findings both ways and text diffs between ?from=N&to=M",
        request: None,
        response: "DiffReply",
        status: 200,
        query: &["from", "to"],
    },
    RouteDoc {
        route: Route {
            method: "GET",
            path: "/v1/subjects/{subject}/versions/{version}/consumers",
            role: Some(Role::Read),
            handler: || get(deployments::consumers),
        },
        summary: "The services running this version now, in every environment",
        request: None,
        response: "[DeploymentBody]",
        status: 200,
        query: &[],
    },
    RouteDoc {
        route: Route {
            method: "GET",
            path: "/v1/environments",
            role: Some(Role::Read),
            handler: || get(deployments::list_environments),
        },
        summary: "Environments, with how many services run there now",
        request: None,
        response: "[EnvironmentSummary]",
        status: 200,
        query: &[],
    },
    RouteDoc {
        route: Route {
            method: "GET",
            path: "/v1/environments/{env}",
            role: Some(Role::Read),
            handler: || get(deployments::get_environment),
        },
        summary: "What runs in an environment now (404 for an unknown one)",
        request: None,
        response: "EnvironmentBody",
        status: 200,
        query: &[],
    },
    RouteDoc {
        route: Route {
            method: "POST",
            path: "/v1/environments/{env}/deployments",
            role: Some(Role::Write),
            handler: || post(deployments::record),
        },
        summary: "Record that a service, built with these pins, runs in the environment (created on first use); replaces its previous deployment there",
        request: Some("DeploymentRequest"),
        response: "DeploymentBody",
        status: 201,
        query: &[],
    },
    RouteDoc {
        route: Route {
            method: "POST",
            path: "/v1/environments/{env}/instances",
            role: Some(Role::Write),
            handler: || post(deployments::report_instance),
        },
        summary: "A running instance reports its pins (a heartbeat); it counts for ttl_secs",
        request: Some("InstanceReport"),
        response: "DeploymentBody",
        status: 200,
        query: &[],
    },
    RouteDoc {
        route: Route {
            method: "GET",
            path: "/v1/environments/{env}/services/{service}",
            role: Some(Role::Read),
            handler: || get(deployments::service_history),
        },
        summary: "A service's deployment log in the environment, newest first (the last 100)",
        request: None,
        response: "ServiceHistory",
        status: 200,
        query: &[],
    },
    RouteDoc {
        route: Route {
            method: "DELETE",
            path: "/v1/environments/{env}/services/{service}",
            role: Some(Role::Write),
            handler: || delete(deployments::undeploy),
        },
        summary: "Undeploy: the service no longer runs in the environment",
        request: None,
        response: "object",
        status: 200,
        query: &[],
    },
    RouteDoc {
        route: Route {
            method: "POST",
            path: "/v1/environments/{env}/can-i-deploy",
            role: Some(Role::Read),
            handler: || post(deployments::can_i_deploy),
        },
        summary: "May the service, built with these pins, be deployed? yes, no or unknown, with the matrix of deployed counterparts",
        request: Some("CanIDeployRequest"),
        response: "CanIDeployReply",
        status: 200,
        query: &[],
    },
    RouteDoc {
        route: Route {
            method: "GET",
            path: "/v1/schemas/{digest}",
            role: Some(Role::Read),
            handler: || get(super::find_schema),
        },
        summary: "Where content with this digest is registered",
        request: None,
        response: "[VersionRef]",
        status: 200,
        query: &[],
    },
];

/// The OpenAPI 3.1 document: paths from [`ROUTES`], schemas derived from [`crate::api`].
pub fn openapi_document() -> Value {
    use utoipa::OpenApi;
    let components = serde_json::to_value(crate::api::Components::openapi())
        .expect("the derived document serializes");
    let schema_ref = |name: &str| json!({"$ref": format!("#/components/schemas/{name}")});
    let error = json!({"description": "Error", "content": {"application/json": {"schema": schema_ref("ErrorBody")}}});
    let mut paths = serde_json::Map::new();
    for d in ROUTES {
        let r = &d.route;
        let path = r.path.replace("{*path}", "{path}");
        let mut params: Vec<Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        for q in d.query {
            let schema = match *q {
                "page_size" => json!({"type": "integer", "minimum": 1, "maximum": 1000}),
                "permanent" | "force" => json!({"type": "boolean"}),
                _ => json!({"type": "string"}),
            };
            let required = matches!(*q, "from" | "to");
            params.push(json!({"name": q, "in": "query", "required": required, "schema": schema}));
        }
        let content = match d.response {
            "binary" => {
                json!({"application/x-protobuf": {"schema": {"type": "string", "format": "binary"}}})
            }
            "text" => json!({"text/plain": {"schema": {"type": "string"}}}),
            "object" => json!({"application/json": {"schema": {"type": "object"}}}),
            list if list.starts_with('[') => {
                json!({"application/json": {"schema": {"type": "array", "items": schema_ref(list.trim_matches(['[', ']']))}}})
            }
            name => json!({"application/json": {"schema": schema_ref(name)}}),
        };
        let ok = d.status.to_string();
        let mut responses =
            json!({ ok.clone(): {"description": "Success", "content": content}, "default": error });
        if d.status == 201 && r.path.ends_with("/versions") {
            responses["200"] = json!({"description": "Unchanged: the content equals the latest version", "content": {"application/json": {"schema": schema_ref(d.response)}}});
        }
        if d.query.first() == Some(&"page_size") {
            responses[&ok]["headers"] = json!({
                "X-Next-Page-Token": {"description": "The next page's page_token, when more items follow", "schema": {"type": "string"}},
            });
        }
        let mut op = json!({
            "summary": d.summary,
            "parameters": params,
            "responses": responses,
        });
        if let Some(role) = r.role {
            op["security"] = json!([{"bearer": []}]);
            op["x-protoreg-role"] = json!(format!("{role:?}").to_lowercase());
        }
        if let Some(req) = d.request {
            op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": schema_ref(req)}}});
        }
        paths
            .entry(path)
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("object")
            .insert(r.method.to_lowercase(), op);
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "protoreg registry", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": components["components"]["schemas"],
        }
    })
}

pub(crate) async fn openapi() -> Json<Value> {
    Json(openapi_document())
}
