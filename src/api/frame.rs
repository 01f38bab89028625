//! The middleware around every request: a bound on the body, one JSON shape for every
//! error (poem's own included), the session cookie's re-issue, and the access log.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};

use super::body_check::{self, BodyCheck};
use super::error::{ApiError, ErrorCode};

/// Where authentication leaves a `Set-Cookie` for the response (a session extended on
/// this request, or a dead session's cookie to clear).
#[derive(Clone, Default)]
pub struct CookieSlot(Arc<Mutex<Option<String>>>);

impl CookieSlot {
    pub fn put(&self, cookie: String) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(cookie);
    }

    fn take(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

pub struct Frame {
    max_body: usize,
    /// The method each API path answers to, for the `Allow` header of a 405.
    allowed: Arc<HashMap<String, String>>,
    bodies: Arc<BodyCheck>,
}

impl Frame {
    pub fn new(max_body: usize, allowed: HashMap<String, String>, bodies: BodyCheck) -> Frame {
        Frame {
            max_body,
            allowed: Arc::new(allowed),
            bodies: Arc::new(bodies),
        }
    }
}

impl<E: Endpoint> Middleware<E> for Frame {
    type Output = FrameEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        FrameEndpoint {
            inner,
            max_body: self.max_body,
            allowed: Arc::clone(&self.allowed),
            bodies: Arc::clone(&self.bodies),
        }
    }
}

pub struct FrameEndpoint<E> {
    inner: E,
    max_body: usize,
    allowed: Arc<HashMap<String, String>>,
    bodies: Arc<BodyCheck>,
}

fn is_json(resp: &Response) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

fn too_large(max: usize) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        "payload_too_large",
        format!("The request body is larger than {max} bytes"),
    )
}

impl<E: Endpoint> FrameEndpoint<E> {
    /// Reads the body into memory up to the limit; larger bodies never reach a handler.
    async fn bound_body(&self, req: &mut Request) -> Result<(), ApiError> {
        if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
            return Ok(());
        }
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max_body as u64) {
            return Err(too_large(self.max_body));
        }
        match req.take_body().into_bytes_limit(self.max_body).await {
            Ok(bytes) => {
                if body_check::is_json(req.headers()) {
                    self.bodies.check(req.uri().path(), &bytes)?;
                }
                req.set_body(bytes);
                Ok(())
            }
            Err(poem::error::ReadBodyError::PayloadTooLarge) => Err(too_large(self.max_body)),
            Err(e) => Err(ApiError::new(
                ErrorCode::BadRequest,
                "unreadable_body",
                format!("The request body could not be read: {e}"),
            )),
        }
    }

    /// Gives every error response the one JSON shape.
    fn shape(&self, path: &str, result: poem::Result<Response>) -> Response {
        let mut resp = match result {
            Ok(resp) => resp,
            Err(err) => {
                let (status, message) = (err.status(), err.to_string());
                let resp = err.into_response();
                if is_json(&resp) {
                    resp
                } else {
                    ApiError::from_poem(status, message).into_response()
                }
            }
        };
        let status = resp.status();
        if !(status.is_client_error() || status.is_server_error()) {
            return resp;
        }
        if !is_json(&resp) {
            let message = status.canonical_reason().unwrap_or("Error").to_owned();
            let allow = resp.headers().get(header::ALLOW).cloned();
            resp = ApiError::from_poem(status, message).into_response();
            if let Some(a) = allow {
                resp.headers_mut().insert(header::ALLOW, a);
            }
        }
        if status == StatusCode::METHOD_NOT_ALLOWED
            && !resp.headers().contains_key(header::ALLOW)
            && let Some(m) = self
                .allowed
                .get(path)
                .and_then(|m| HeaderValue::from_str(m).ok())
        {
            resp.headers_mut().insert(header::ALLOW, m);
        }
        resp
    }
}

impl<E: Endpoint> Endpoint for FrameEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let start = Instant::now();
        let method = req.method().clone();
        // A Uri clone shares its bytes; no copy of the path per request.
        let uri = req.uri().clone();
        let path = uri.path();
        let slot = req
            .headers()
            .contains_key(header::COOKIE)
            .then(CookieSlot::default);
        if let Some(s) = &slot {
            req.extensions_mut().insert(s.clone());
        }
        let result = match self.bound_body(&mut req).await {
            Err(e) => Ok(e.into_response()),
            Ok(()) => self.inner.call(req).await.map(IntoResponse::into_response),
        };
        let mut resp = self.shape(path, result);
        if let Some(c) = slot
            .and_then(|s| s.take())
            .and_then(|c| HeaderValue::from_str(&c).ok())
        {
            resp.headers_mut().append(header::SET_COOKIE, c);
        }
        tracing::info!(
            target: "keygate::access",
            %method,
            path,
            status = resp.status().as_u16(),
            micros = start.elapsed().as_micros() as u64,
        );
        Ok(resp)
    }
}
