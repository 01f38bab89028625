//! The middleware around every request: authentication before the body is read, a
//! bound on each body and on all bodies together, one JSON shape for every error (poem's
//! own included), the session cookie's re-issue, and the access log.
//!
//! A stranger must not make the server hold memory: on an operation that needs a
//! credential, the credential is checked first, and a refused request is answered (and
//! its connection closed) without reading its body. Operations open to anyone (sign-up,
//! sign-in) take small bodies. Every body must keep arriving (`body_timeout`), and the
//! bytes buffered by all requests together stay under `body_memory`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};

use super::body_check::{self, BodyCheck};
use super::error::{ApiError, ErrorCode};
use super::security::{self, Authenticated};
use crate::config::Config;
use crate::domain::State;
use crate::domain::audit::{self, Seen};
use crate::error::{Invalid, Transport};

/// The request id header: a proxy's is kept in the audit log, and an answer whose
/// request was recorded there names it.
const REQUEST_ID: &str = "x-request-id";

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

/// What the middleware knows of an API path, from the spec.
#[derive(Debug, Clone)]
pub struct RouteInfo {
    /// The methods it answers to, for the `Allow` header of a 405.
    pub allow: String,
    /// Whether its operations need a credential.
    pub secured: bool,
    /// Whether its operation writes, by the policy's row: a read-only key is refused it
    /// before it spends quota or rate. An operation without a row counts as a write.
    pub writes: bool,
}

impl RouteInfo {
    fn answers(&self, m: &Method) -> bool {
        self.allow.split(", ").any(|a| a == m.as_str())
    }
}

/// The limits on request bodies.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// Largest body of an operation that needs a credential.
    max_body: usize,
    /// Largest body of any other request.
    max_open_body: usize,
    /// Longest wait for the next piece of a body.
    body_timeout: Duration,
}

pub struct Frame {
    limits: Limits,
    routes: Arc<HashMap<String, RouteInfo>>,
    budget: Arc<Budget>,
    bodies: Arc<BodyCheck>,
}

impl Frame {
    pub fn new(
        config: &Config,
        routes: Arc<HashMap<String, RouteInfo>>,
        bodies: Arc<BodyCheck>,
    ) -> Frame {
        Frame {
            bodies,
            limits: Limits {
                max_body: config.max_body_bytes,
                max_open_body: config.max_open_body_bytes.min(config.max_body_bytes),
                body_timeout: Duration::from_millis(config.body_timeout_ms),
            },
            routes,
            budget: Arc::new(Budget {
                used: AtomicUsize::new(0),
                cap: config.body_memory_bytes,
            }),
        }
    }
}

impl<E: Endpoint> Middleware<E> for Frame {
    type Output = FrameEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        FrameEndpoint {
            inner,
            limits: self.limits,
            routes: Arc::clone(&self.routes),
            budget: Arc::clone(&self.budget),
            bodies: Arc::clone(&self.bodies),
        }
    }
}

pub struct FrameEndpoint<E> {
    inner: E,
    limits: Limits,
    routes: Arc<HashMap<String, RouteInfo>>,
    budget: Arc<Budget>,
    bodies: Arc<BodyCheck>,
}

/// Body bytes buffered by all requests in flight, against a cap.
struct Budget {
    used: AtomicUsize,
    cap: usize,
}

/// The bytes one request holds of the budget; given back when it is dropped.
struct Held<'a> {
    budget: &'a Budget,
    bytes: usize,
}

impl Held<'_> {
    /// Holds `total` bytes in all, if the budget has room.
    fn grow_to(&mut self, total: usize) -> bool {
        let more = total.saturating_sub(self.bytes);
        if more == 0 {
            return true;
        }
        let before = self.budget.used.fetch_add(more, Ordering::AcqRel);
        if before + more > self.budget.cap {
            self.budget.used.fetch_sub(more, Ordering::AcqRel);
            return false;
        }
        self.bytes = total;
        true
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// A refusal, and whether the connection must close (the rest of the body is still on
/// it, unread).
type Refusal = (ApiError, bool);

fn busy() -> ApiError {
    ApiError::new(
        ErrorCode::ServiceUnavailable,
        Transport::ServerBusy.as_str(),
        "The server holds too many request bodies right now; try again shortly",
    )
}

fn slow_body(timeout: Duration, whole: Duration) -> ApiError {
    ApiError::new(
        ErrorCode::Timeout,
        Transport::BodyTimeout.as_str(),
        format!(
            "The request body must keep arriving (a pause of at most {} seconds) and arrive \
             whole within {} seconds",
            timeout.as_secs_f32(),
            whole.as_secs_f32()
        ),
    )
}

/// How many progress deadlines a body that needs a credential may take in all; a body
/// open to anyone (at most 16 KiB) must arrive whole within one.
const WHOLE_BODY_FACTOR: u32 = 6;

fn is_json(resp: &Response) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

fn too_large(max: usize) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        Transport::PayloadTooLarge.as_str(),
        format!("The request body is larger than {max} bytes"),
    )
}

impl<E: Endpoint> FrameEndpoint<E> {
    /// Reads the body into memory up to `max`, holding its bytes in `held`; larger bodies
    /// never reach a handler, and a body that pauses for longer than the body timeout, or
    /// takes longer than `whole` in all, is refused: a trickle of one byte a pause would
    /// otherwise hold its connection for hours.
    async fn read_body(
        &self,
        req: &mut Request,
        max: usize,
        whole: Duration,
        held: &mut Held<'_>,
    ) -> Result<(), Refusal> {
        let pause = self.limits.body_timeout;
        let end = tokio::time::Instant::now() + whole;
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max as u64) {
            return Err((too_large(max), true));
        }
        let mut body: http_body_util::combinators::BoxBody<Bytes, std::io::Error> =
            req.take_body().into();
        let mut buf = BytesMut::new();
        loop {
            let by = end.min(tokio::time::Instant::now() + pause);
            let frame = match tokio::time::timeout_at(by, body.frame()).await {
                Err(_) => return Err((slow_body(pause, whole), true)),
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    return Err((
                        ApiError::new(
                            ErrorCode::BadRequest,
                            Invalid::UnreadableBody.as_str(),
                            format!("The request body could not be read: {e}"),
                        ),
                        true,
                    ));
                }
                Ok(Some(Ok(frame))) => frame,
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if buf.len() + data.len() > max {
                return Err((too_large(max), true));
            }
            buf.reserve(data.len());
            if !held.grow_to(buf.capacity()) {
                return Err((busy(), true));
            }
            buf.extend_from_slice(&data);
        }
        let bytes = buf.freeze();
        if body_check::is_json(req.headers()) {
            // The body was read whole: the connection may stay open.
            self.bodies
                .check(req.uri().path(), &bytes)
                .map_err(|e| (e, false))?;
        }
        req.set_body(bytes);
        Ok(())
    }

    /// Everything before the operation: the credential (for operations that need one),
    /// then the body. `Err` is the answer, and whether the connection must close.
    async fn prepare(
        &self,
        req: &mut Request,
        held: &mut Held<'_>,
    ) -> Result<(), (Response, bool)> {
        let method = req.method().clone();
        let has_body = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
        let route = self.routes.get(req.uri().path());
        let secured = route.is_some_and(|r| r.secured && r.answers(&method));
        if secured && let Some(st) = req.data::<State>() {
            let writes = route.is_none_or(|r| r.writes);
            match security::authenticate(st, req, writes).await {
                Ok(actor) => {
                    req.extensions_mut().insert(Authenticated(actor));
                }
                Err(e) => return Err((e.into_response(), has_body)),
            }
        }
        if !has_body {
            return Ok(());
        }
        let pause = self.limits.body_timeout;
        let (max, whole) = if secured {
            (self.limits.max_body, pause * WHOLE_BODY_FACTOR)
        } else {
            (self.limits.max_open_body, pause)
        };
        self.read_body(req, max, whole, held)
            .await
            .map_err(|(e, close)| (e.into_response(), close))
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
                .routes
                .get(path)
                .and_then(|r| HeaderValue::from_str(&r.allow).ok())
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
        let mut held = Held {
            budget: &self.budget,
            bytes: 0,
        };
        let seen = match req.data::<State>() {
            Some(st) => Seen::new(
                security::client_ip(st, &req),
                req.headers().get(header::USER_AGENT),
                req.headers().get(REQUEST_ID),
            ),
            None => Seen::new(None, None, None),
        };
        let ((result, close), served) = audit::serving(seen, async {
            match self.prepare(&mut req, &mut held).await {
                Err((resp, close)) => (Ok(resp), close),
                Ok(()) => (
                    self.inner.call(req).await.map(IntoResponse::into_response),
                    false,
                ),
            }
        })
        .await;
        drop(held);
        let mut resp = self.shape(path, result);
        // An answer whose request is in the audit log names it, to match the two.
        if let Some(Ok(v)) = served.request_id.map(|id| HeaderValue::from_str(&id)) {
            resp.headers_mut().insert(REQUEST_ID, v);
        }
        // A key with a rate limit learns what is left of it on every answer, so that it
        // can slow down before it is refused; a 429 carries its own.
        if let Some(left) = served.rate {
            let h = resp.headers_mut();
            if !h.contains_key(super::error::RATELIMIT_LIMIT) {
                super::error::rate_headers(h, &left);
            }
        }
        if close {
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
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
