//! The dashboard's static files, embedded in the binary, and other fixed documents.

use poem::http::Method;
use poem::{Endpoint, Response, endpoint::make_sync};

const DASHBOARD: &str = include_str!("dashboard.html");

/// An endpoint that always answers `body` with `content_type` (GET and HEAD only).
pub fn text(body: String, content_type: &'static str) -> impl Endpoint<Output = Response> {
    make_sync(move |req| {
        if !matches!(*req.method(), Method::GET | Method::HEAD) {
            return Response::builder()
                .status(poem::http::StatusCode::METHOD_NOT_ALLOWED)
                .header("allow", "GET, HEAD")
                .finish();
        }
        Response::builder()
            .content_type(content_type)
            .body(body.clone())
    })
}

/// The dashboard page.
pub fn dashboard() -> impl Endpoint<Output = Response> {
    text(DASHBOARD.to_owned(), "text/html; charset=utf-8")
}
