//! The one mapping from errors to HTTP: status, `code`, `reason`, back-off headers. Every
//! error response of the server, poem's own included, has this JSON shape.

use poem::http::{HeaderValue, StatusCode, header};
use poem::{IntoResponse, Response};
use poem_openapi::registry::{MetaHeader, MetaMediaType, MetaResponse, MetaResponses, Registry};
use poem_openapi::types::{ToJSON, Type};
use poem_openapi::{ApiResponse, Enum, Object};

use crate::error::{Backoff, Error, Invalid, Reason, Transport};

/// The tRPC-style error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotSupported,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    Timeout,
    TooManyRequests,
    InternalServerError,
    ServiceUnavailable,
    InsufficientStorage,
}

impl ErrorCode {
    fn status(self) -> StatusCode {
        match self {
            ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotSupported => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::Timeout => StatusCode::REQUEST_TIMEOUT,
            ErrorCode::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::InternalServerError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
        }
    }

    fn from_status(s: StatusCode) -> ErrorCode {
        match s.as_u16() {
            401 => ErrorCode::Unauthorized,
            403 => ErrorCode::Forbidden,
            404 => ErrorCode::NotFound,
            405 => ErrorCode::MethodNotSupported,
            409 => ErrorCode::Conflict,
            413 => ErrorCode::PayloadTooLarge,
            408 => ErrorCode::Timeout,
            415 => ErrorCode::UnsupportedMediaType,
            429 => ErrorCode::TooManyRequests,
            503 => ErrorCode::ServiceUnavailable,
            400..=499 => ErrorCode::BadRequest,
            _ => ErrorCode::InternalServerError,
        }
    }
}

/// A problem with one input field.
#[derive(Debug, Clone, Object)]
pub struct ErrorIssue {
    /// The field, as a dotted path (`email`, `metadata.organizationId`,
    /// `scope.projectIds[0]`); `body` for the body as a whole.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

/// The body of every error response.
#[derive(Debug, Clone, Object)]
pub struct ErrorBody {
    /// A human-readable explanation.
    pub message: String,
    /// The tRPC-style code, matching the HTTP status.
    pub code: ErrorCode,
    /// A machine-readable detail: `invalid_api_key`, `session_expired`, `not_a_member`,
    /// `permission_denied`, `wrong_organization`, `rate_limited`, `validation_failed`, ...
    pub reason: String,
    /// Field-level validation problems (empty but for 400 `validation_failed`).
    pub issues: Vec<ErrorIssue>,
}

/// An error on its way to the client.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub body: ErrorBody,
    pub backoff: Option<Backoff>,
}

impl ApiError {
    pub fn new(code: ErrorCode, reason: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            body: ErrorBody {
                message: message.into(),
                code,
                reason: reason.to_owned(),
                issues: Vec::new(),
            },
            backoff: None,
        }
    }

    pub fn status(&self) -> StatusCode {
        self.body.code.status()
    }

    /// Shapes an error that poem or poem-openapi produced (routing, parsing, extraction).
    pub fn from_poem(status: StatusCode, message: String) -> ApiError {
        let code = ErrorCode::from_status(status);
        let reason = match status.as_u16() {
            404 => Transport::NotFound.as_str(),
            405 => Transport::MethodNotAllowed.as_str(),
            413 => Transport::PayloadTooLarge.as_str(),
            415 => Transport::UnsupportedMediaType.as_str(),
            401 => Reason::MissingCredentials.as_str(),
            400..=499 => Invalid::BadRequest.as_str(),
            _ => Transport::Internal.as_str(),
        };
        if code == ErrorCode::InternalServerError {
            tracing::error!(%status, cause = %message, "request failed inside the framework");
            return ApiError::new(code, reason, "Internal server error");
        }
        let message = if status == StatusCode::NOT_FOUND {
            "No such route".to_owned()
        } else {
            message
        };
        ApiError::new(code, reason, message)
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        match e {
            Error::Invalid {
                reason,
                message,
                issues,
            } => {
                let mut out = ApiError::new(ErrorCode::BadRequest, reason, message);
                out.body.issues = issues
                    .into_iter()
                    .map(|i| ErrorIssue {
                        path: i.path,
                        message: i.message,
                    })
                    .collect();
                out
            }
            Error::Denied(r) => {
                let code = if matches!(
                    r,
                    Reason::InvalidOrigin | Reason::UnknownDomain | Reason::UntrustedProxy
                ) {
                    ErrorCode::Forbidden
                } else {
                    ErrorCode::Unauthorized
                };
                ApiError::new(code, r.as_str(), r.message())
            }
            Error::NotFound(what) => {
                let mut m = what.to_owned();
                if let Some(first) = m.get_mut(0..1) {
                    first.make_ascii_uppercase();
                }
                ApiError::new(
                    ErrorCode::NotFound,
                    Transport::NotFound.as_str(),
                    format!("{m} not found"),
                )
            }
            Error::Conflict { reason, message } => {
                ApiError::new(ErrorCode::Conflict, reason, message)
            }
            Error::Throttled(t, b) => {
                let mut out = ApiError::new(
                    ErrorCode::TooManyRequests,
                    t.as_str(),
                    format!(
                        "Too many requests: retry after {} seconds",
                        b.retry_after_secs
                    ),
                );
                out.backoff = Some(b);
                out
            }
            Error::StorageFull => {
                tracing::error!("a write failed: the storage holding the database is full");
                ApiError::new(
                    ErrorCode::InsufficientStorage,
                    Transport::StorageFull.as_str(),
                    "The server's storage is full: nothing was changed; try again later",
                )
            }
            Error::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                ApiError::new(
                    ErrorCode::InternalServerError,
                    Transport::Internal.as_str(),
                    "Internal server error",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = self.body.to_json_string();
        let mut resp = Response::builder()
            .status(status)
            .content_type("application/json; charset=utf-8")
            .body(body);
        let h = resp.headers_mut();
        if let Some(b) = self.backoff {
            h.insert(header::RETRY_AFTER, HeaderValue::from(b.retry_after_secs));
            rate_headers(h, &b);
        }
        resp
    }
}

pub const RATELIMIT_LIMIT: &str = "ratelimit-limit";

/// The `RateLimit-Limit`, `-Remaining` and `-Reset` headers of what is left of a limit.
pub fn rate_headers(h: &mut poem::http::HeaderMap, left: &Backoff) {
    h.insert(RATELIMIT_LIMIT, HeaderValue::from(left.limit));
    h.insert("ratelimit-remaining", HeaderValue::from(left.remaining));
    h.insert("ratelimit-reset", HeaderValue::from(left.reset_secs));
}

impl From<ApiError> for poem::Error {
    fn from(e: ApiError) -> poem::Error {
        poem::Error::from_response(e.into_response())
    }
}

fn int_header(name: &str, description: &str) -> MetaHeader {
    MetaHeader {
        name: name.to_owned(),
        description: Some(description.to_owned()),
        required: true,
        deprecated: false,
        schema: u64::schema_ref(),
    }
}

const DOCUMENTED: &[(u16, &str)] = &[
    (
        400,
        "The input is invalid (`issues` lists the fields) or the request is refused (`reason`).",
    ),
    (
        401,
        "Authentication or authorization failed: missing, invalid, expired or disabled credentials, not a member, no permission, or another organization's resource (`reason` says which).",
    ),
    (
        403,
        "A cookie-authenticated change came from an untrusted Origin (`invalid_origin`).",
    ),
    (404, "The resource does not exist."),
    (
        408,
        "The request body stopped arriving, or took too long in all (`body_timeout`).",
    ),
    (409, "The change conflicts with existing data."),
    (413, "The request body is larger than 1 MiB."),
    (415, "A POST without `Content-Type: application/json`."),
    (429, "Too many requests: wait `Retry-After` seconds."),
    (
        500,
        "An unexpected server error; the cause is logged, not shown.",
    ),
    (
        503,
        "The server holds too many request bodies right now (`server_busy`); try again shortly.",
    ),
    (
        507,
        "The storage holding the database is full (`storage_full`): nothing was changed. Reads go on working; try again once space is freed.",
    ),
];

impl ApiResponse for ApiError {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: DOCUMENTED
                .iter()
                .map(|&(status, description)| MetaResponse {
                    description,
                    status: Some(status),
                    status_range: None,
                    content: vec![MetaMediaType {
                        content_type: "application/json; charset=utf-8",
                        schema: ErrorBody::schema_ref(),
                    }],
                    headers: if status == 429 {
                        vec![
                            int_header("Retry-After", "Seconds to wait before trying again."),
                            int_header("RateLimit-Limit", "Requests allowed per window."),
                            int_header("RateLimit-Remaining", "Requests left now."),
                            int_header(
                                "RateLimit-Reset",
                                "Seconds until the limit is fully restored.",
                            ),
                        ]
                    } else {
                        Vec::new()
                    },
                })
                .collect(),
        }
    }

    fn register(registry: &mut Registry) {
        ErrorBody::register(registry);
    }
}

/// Handler results.
pub type ApiResult<T> = Result<T, ApiError>;
