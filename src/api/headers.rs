//! Response headers chosen by where a response goes, whatever answered it (a handler, an
//! error, the router's 404): API answers are never stored by a cache nor sniffed into
//! another type, and Swagger UI is never framed.

use poem::http::{HeaderMap, HeaderValue, header};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};

/// Adds the headers of each part of the server to every response of that part.
pub struct Headers;

impl<E: Endpoint> Middleware<E> for Headers {
    type Output = HeadersEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        HeadersEndpoint { inner }
    }
}

pub struct HeadersEndpoint<E> {
    inner: E,
}

/// The parts of the server with headers of their own.
#[derive(Clone, Copy)]
enum Part {
    /// `/api/...`: answers may carry a secret (a new or rotated key, an invitation
    /// token, a session), and are JSON meant for programs.
    Api,
    /// `/swagger/...`: a page with buttons that send requests with the user's cookie.
    Swagger,
    Other,
}

fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

impl Part {
    fn of(path: &str) -> Part {
        if under(path, "/api") {
            Part::Api
        } else if under(path, "/swagger") {
            Part::Swagger
        } else {
            Part::Other
        }
    }

    fn apply(self, h: &mut HeaderMap) {
        match self {
            Part::Api => {
                h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                h.insert(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                );
            }
            Part::Swagger => {
                h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
                // Only framing: Swagger UI runs inline scripts, which a stricter policy
                // would block. Appended, so a policy of its own would still hold too.
                h.append(
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static("frame-ancestors 'none'"),
                );
            }
            Part::Other => {}
        }
    }
}

impl<E: Endpoint> Endpoint for HeadersEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let part = Part::of(req.uri().path());
        let mut resp = match self.inner.call(req).await {
            Ok(r) => r.into_response(),
            Err(e) => e.into_response(),
        };
        part.apply(resp.headers_mut());
        Ok(resp)
    }
}
