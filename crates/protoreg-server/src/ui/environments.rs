//! The environment pages: where each service runs, pinned to which versions, and the
//! compatibility matrix of the services sharing a contract there (the same check as
//! `can-i-deploy`: the serving side against the calling side).

use std::fmt::Write;

use axum::extract::{Path, State};
use axum::response::{Html, Response};
use protoreg_store::Deployment;

use super::UiResult;
use super::pages::{finding_line, respond};
use super::{esc, page, seg};
use crate::AppState;
use crate::api::rfc3339;
use crate::service::deployments::{CALLS, SERVES};

pub(super) async fn list(State(state): State<AppState>) -> Response {
    respond(list_page(&state).await)
}

async fn list_page(state: &AppState) -> UiResult<Html<String>> {
    let mut rows = String::new();
    for e in state.store.environments().await? {
        let _ = write!(
            rows,
            "<tr><td><a href=\"/ui/environments/{}\">{}</a></td><td>{}</td><td>{}</td></tr>",
            seg(&e.name),
            esc(&e.name),
            e.services,
            rfc3339(e.created_at)
        );
    }
    let body = if rows.is_empty() {
        "<h1>Environments</h1><p class=\"muted\">No deployment recorded yet \
         (<code>protoreg record-deployment</code>).</p>"
            .to_string()
    } else {
        format!(
            "<h1>Environments</h1><table><thead><tr><th>Environment</th><th>Services</th>\
             <th>Since</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    };
    Ok(page(
        "environments",
        &[("environments".into(), None)],
        &body,
    ))
}

pub(super) async fn environment(
    State(state): State<AppState>,
    Path(env): Path<String>,
) -> Response {
    respond(environment_page(&state, &env).await)
}

fn who(d: &Deployment) -> String {
    if d.instance.is_empty() {
        esc(&d.service)
    } else {
        format!(
            "{} <span class=\"muted\">({})</span>",
            esc(&d.service),
            esc(&d.instance)
        )
    }
}

async fn environment_page(state: &AppState, env: &str) -> UiResult<Html<String>> {
    let deployed = state.current_deployments(env).await?;
    let mut services = String::new();
    for d in &deployed {
        let pins: String = d
            .pins
            .iter()
            .map(|p| {
                format!(
                    "<div>{} <a href=\"/ui/subjects/{}/versions/{}\">{}@{}</a></div>",
                    esc(&p.role),
                    seg(&p.subject),
                    p.version,
                    esc(&p.subject),
                    p.version
                )
            })
            .collect();
        let labels: String = d
            .labels
            .iter()
            .map(|(k, v)| format!("<span class=\"label\">{}={}</span>", esc(k), esc(v)))
            .collect();
        let _ = write!(
            services,
            "<tr><td>{}</td><td>{pins}</td><td>{}</td><td>{labels}</td></tr>",
            who(d),
            rfc3339(d.deployed_at)
        );
    }
    // Every server-caller pair sharing a subject, once.
    let mut matrix = String::new();
    for server in &deployed {
        for mine in server.pins.iter().filter(|p| p.role == SERVES) {
            for caller in deployed.iter().filter(|c| c.service != server.service) {
                for theirs in caller
                    .pins
                    .iter()
                    .filter(|p| p.role == CALLS && p.subject == mine.subject)
                {
                    let row = state.counterpart(caller, theirs, mine).await?;
                    let findings: String = row.findings.iter().map(finding_line).collect();
                    let detail = match (&row.reason, findings.is_empty()) {
                        (Some(r), _) => esc(r),
                        (None, false) => format!(
                            "<details><summary>{} finding(s)</summary>{findings}</details>",
                            row.findings.len()
                        ),
                        (None, true) => String::new(),
                    };
                    let _ = write!(
                        matrix,
                        "<tr class=\"{status}\"><td>{}</td><td>{}@{}</td><td>{}</td><td>{}@{}</td>\
                         <td><strong>{status}</strong></td><td>{detail}</td></tr>",
                        who(server),
                        esc(&mine.subject),
                        mine.version,
                        who(caller),
                        esc(&theirs.subject),
                        theirs.version,
                        status = esc(&row.status),
                    );
                }
            }
        }
    }
    let services = if services.is_empty() {
        "<p class=\"muted\">Nothing runs here now.</p>".to_string()
    } else {
        format!(
            "<table><thead><tr><th>Service</th><th>Pins</th><th>Since</th><th>Labels</th></tr>\
             </thead><tbody>{services}</tbody></table>"
        )
    };
    let matrix = if matrix.is_empty() {
        "<p class=\"muted\">No two services here share a contract.</p>".to_string()
    } else {
        format!(
            "<p>Each server's pinned contract checked against what each caller was built with \
             (the subject's rule categories), as <code>protoreg can-i-deploy</code> does.</p>\
             <table><thead><tr><th>Serves</th><th>Version</th><th>Called by</th><th>Built with</th>\
             <th>Status</th><th></th></tr></thead><tbody>{matrix}</tbody></table>"
        )
    };
    let body = format!(
        "<h1>{}</h1><h2>Services</h2>{services}<h2>Compatibility</h2>{matrix}",
        esc(env)
    );
    Ok(page(
        env,
        &[
            ("environments".into(), Some("/ui/environments".into())),
            (env.to_string(), None),
        ],
        &body,
    ))
}
