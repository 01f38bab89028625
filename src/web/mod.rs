//! The dashboard's static files, embedded in the binary, and other fixed documents.

use poem::http::Method;
use poem::{Endpoint, Response, endpoint::make_sync};

const DASHBOARD_HTML: &str = include_str!("dashboard.html");
const DASHBOARD_JS: &str = include_str!("dashboard.js");
const DASHBOARD_CSS: &str = include_str!("dashboard.css");
const FAVICON_SVG: &str = include_str!("favicon.svg");

/// The dashboard loads only its own files and talks only to this server; no inline script
/// or style, no framing, no plugins.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'; object-src 'none'";

/// An endpoint that always answers `body` with `content_type` (GET and HEAD only).
pub fn text(body: String, content_type: &'static str) -> impl Endpoint<Output = Response> {
    // Shared, not copied, by every answer (Swagger UI's page is over a megabyte).
    let body = bytes::Bytes::from(body);
    make_sync(move |req| {
        if !matches!(*req.method(), Method::GET | Method::HEAD) {
            return not_allowed();
        }
        Response::builder()
            .content_type(content_type)
            .body(body.clone())
    })
}

/// Swagger UI: its page, with the spec it shows embedded, at `/swagger` and `/swagger/`.
pub fn swagger(page: String) -> impl Endpoint<Output = Response> {
    poem::Route::new().at("/", text(page, "text/html; charset=utf-8"))
}

fn not_allowed() -> Response {
    Response::builder()
        .status(poem::http::StatusCode::METHOD_NOT_ALLOWED)
        .header("allow", "GET, HEAD")
        .finish()
}

/// One of the dashboard's files, with the headers that keep a browser strict about it.
/// `no-cache` makes the browser revalidate, so an upgraded binary serves its own page.
fn asset(body: &'static str, content_type: &'static str) -> impl Endpoint<Output = Response> {
    make_sync(move |req| {
        if !matches!(*req.method(), Method::GET | Method::HEAD) {
            return not_allowed();
        }
        Response::builder()
            .content_type(content_type)
            .header("content-security-policy", CONTENT_SECURITY_POLICY)
            .header("x-content-type-options", "nosniff")
            .header("referrer-policy", "same-origin")
            .header("x-frame-options", "DENY")
            .header("cache-control", "no-cache")
            .body(body)
    })
}

/// The dashboard page, at `/`.
pub fn dashboard() -> impl Endpoint<Output = Response> {
    asset(DASHBOARD_HTML, "text/html; charset=utf-8")
}

/// The dashboard's script, at `/dashboard.js`.
pub fn dashboard_js() -> impl Endpoint<Output = Response> {
    asset(DASHBOARD_JS, "text/javascript; charset=utf-8")
}

/// The dashboard's style sheet, at `/dashboard.css`.
pub fn dashboard_css() -> impl Endpoint<Output = Response> {
    asset(DASHBOARD_CSS, "text/css; charset=utf-8")
}

/// The icon, at `/favicon.svg`.
pub fn favicon() -> impl Endpoint<Output = Response> {
    asset(FAVICON_SVG, "image/svg+xml")
}
