//! The web UI: server-rendered HTML pages under `/ui/` over the same domain and store code
//! as the JSON API (`/` redirects here). Pages work without JavaScript; every text a page
//! shows goes through [`esc`]; assets are embedded in the binary.

mod environments;
mod index;
mod pages;

pub use index::IndexCache;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::AppState;
use crate::service;

/// The UI's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(pages::subjects))
        .route("/ui/style.css", get(style))
        .route("/ui/sign-in", get(sign_in_form).post(sign_in))
        .route("/ui/rules", get(pages::rules))
        .route("/ui/environments", get(environments::list))
        .route("/ui/environments/{env}", get(environments::environment))
        .route("/ui/subjects/{subject}", get(pages::subject))
        .route("/ui/subjects/{subject}/diff", get(pages::diff))
        .route(
            "/ui/subjects/{subject}/versions/{version}",
            get(pages::version),
        )
        .route(
            "/ui/subjects/{subject}/versions/{version}/files/{*path}",
            get(pages::file),
        )
}

/// Whether a path is the UI's (for the sign-in prompt).
pub fn is_ui_path(path: &str) -> bool {
    path == "/" || path == "/ui" || path.starts_with("/ui/")
}

/// The stylesheet: light and dark schemes following the system, readable on a phone.
const STYLE: &str = include_str!("style.css");

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/css")),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        STYLE,
    )
        .into_response()
}

/// HTML-escapes text for element content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A path segment of a UI link (subjects may hold `/`).
pub(crate) fn seg(s: &str) -> String {
    crate::api::url_segment(s)
}

/// A whole page: title, breadcrumb trail (label, link) and body HTML.
pub(crate) fn page(title: &str, trail: &[(String, Option<String>)], body: &str) -> Html<String> {
    let mut crumbs = String::from("<a href=\"/ui/\">protoreg</a>");
    for (label, link) in trail {
        crumbs.push_str(" / ");
        match link {
            Some(href) => crumbs.push_str(&format!("<a href=\"{}\">{}</a>", esc(href), esc(label))),
            None => crumbs.push_str(&format!("<span>{}</span>", esc(label))),
        }
    }
    Html(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"light dark\">\
         <title>{} · protoreg</title><link rel=\"stylesheet\" href=\"/ui/style.css\"></head>\
         <body><header><nav aria-label=\"breadcrumb\">{crumbs}</nav>\
         <a class=\"rules\" href=\"/ui/environments\">environments</a> \
         <a class=\"rules\" href=\"/ui/rules\">rules</a></header><main>{body}</main></body></html>\n",
        esc(title)
    ))
}

/// An error of a page: its status and what it says.
#[derive(Debug)]
pub(crate) struct UiError {
    status: StatusCode,
    message: String,
}

pub(crate) type UiResult<T> = Result<T, UiError>;

impl UiError {
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        UiError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        UiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

/// The UI's answer to each of the service's errors: the one place they are mapped.
impl From<service::Error> for UiError {
    fn from(e: service::Error) -> Self {
        use service::Error as E;
        let status = match &e {
            E::Invalid(_) => StatusCode::BAD_REQUEST,
            E::NotFound { .. } | E::AlreadyDeleted { .. } => StatusCode::NOT_FOUND,
            E::Forbidden(_) => StatusCode::FORBIDDEN,
            E::Compile(_) | E::DependencyCycle(_) | E::DependencyConflict { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            E::Unavailable | E::LostRace(_) => StatusCode::SERVICE_UNAVAILABLE,
            E::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::CONFLICT,
        };
        let message = match e {
            E::Internal(_) => "internal error".to_string(),
            e => e.to_string(),
        };
        UiError { status, message }
    }
}

impl From<protoreg_store::StoreError> for UiError {
    fn from(e: protoreg_store::StoreError) -> Self {
        service::Error::from(e).into()
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        error_page(self.status, &self.message)
    }
}

/// An error as a page (status kept).
pub(crate) fn error_page(status: StatusCode, message: &str) -> Response {
    let mut resp = page(
        "error",
        &[],
        &format!(
            "<h1>{}</h1><p class=\"error\">{}</p>",
            status.as_u16(),
            esc(message)
        ),
    )
    .into_response();
    *resp.status_mut() = status;
    resp
}

/// The cookie the sign-in form sets: the token, sent back only to `/ui` (never to the
/// API), never readable by scripts, never sent from other sites.
pub const TOKEN_COOKIE: &str = "protoreg_token";

/// UI paths open to everyone: the sign-in form and the stylesheet.
pub fn is_public(path: &str) -> bool {
    path == "/ui/sign-in" || path == "/ui/style.css"
}

/// The token in a UI request's cookie.
pub fn cookie_token(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            c.trim()
                .strip_prefix(&format!("{TOKEN_COOKIE}="))
                .map(str::to_string)
        })
}

/// The answer of a UI request that needs a token and has none: to the sign-in form, back
/// here afterwards. (HTTP Basic with the token as password is accepted too.)
pub fn sign_in_redirect(uri: &axum::http::Uri) -> Response {
    let next = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/ui/");
    Redirect::to(&format!("/ui/sign-in?next={}", seg(next))).into_response()
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct SignInQuery {
    next: String,
}

fn sign_in_page(next: &str, error: Option<&str>) -> Html<String> {
    page(
        "sign in",
        &[("sign in".into(), None)],
        &format!(
            "<h1>Sign in</h1>{}<form method=\"post\" action=\"/ui/sign-in\">\
             <input type=\"hidden\" name=\"next\" value=\"{}\">\
             <label>Token <input type=\"password\" name=\"token\" autocomplete=\"current-password\" autofocus required></label> \
             <button type=\"submit\">Sign in</button></form>\
             <p class=\"muted\">The registry's API token. Browsers may also send it with HTTP Basic (any user name).</p>",
            error
                .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", esc(e)))
                .unwrap_or_default(),
            esc(next)
        ),
    )
}

async fn sign_in_form(axum::extract::Query(q): axum::extract::Query<SignInQuery>) -> Html<String> {
    sign_in_page(&q.next, None)
}

#[derive(serde::Deserialize)]
struct SignInForm {
    token: String,
    #[serde(default)]
    next: String,
}

/// Checks the token and sets the cookie. Only same-origin posts are taken (the `Origin` a
/// browser sends must be this host), and `next` must be a UI path (no open redirect).
async fn sign_in(
    axum::extract::State(state): axum::extract::State<AppState>,
    headers: axum::http::HeaderMap,
    axum::extract::Form(form): axum::extract::Form<SignInForm>,
) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let cross_site = headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .is_some_and(|o| o.split("://").nth(1) != Some(host));
    if cross_site {
        let mut resp =
            sign_in_page("/ui/", Some("sign-in from another site refused")).into_response();
        *resp.status_mut() = StatusCode::FORBIDDEN;
        return resp;
    }
    let next = if form.next.starts_with("/ui/") && !form.next.starts_with("/ui//") {
        form.next.clone()
    } else {
        "/ui/".to_string()
    };
    if !state.tokens.is_empty() && !state.tokens.contains_key(form.token.trim()) {
        let mut resp = sign_in_page(&next, Some("unknown token")).into_response();
        *resp.status_mut() = StatusCode::UNAUTHORIZED;
        return resp;
    }
    let mut resp = Redirect::to(&next).into_response();
    let cookie = format!(
        "{TOKEN_COOKIE}={}; Path=/ui; HttpOnly; SameSite=Strict",
        form.token.trim()
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(seg("acme/x.proto"), "acme%2Fx.proto");
    }

    #[test]
    fn pages_escape_their_title_and_trail() {
        let html = page(
            "<b>",
            &[("<i>".into(), Some("/ui/\"x".into()))],
            "<p>body</p>",
        )
        .0;
        assert!(html.contains("<title>&lt;b&gt; · protoreg</title>"));
        assert!(html.contains("<a href=\"/ui/&quot;x\">&lt;i&gt;</a>"));
        assert!(html.contains("<p>body</p>"));
    }
}
