//! The one domain error enum. `api::error` maps it to HTTP in one place.

use std::fmt;

/// Why a request was not authenticated or not authorized (HTTP 401 and 403).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    MissingCredentials,
    InvalidApiKey,
    ApiKeyExpired,
    ApiKeyDisabled,
    InvalidSession,
    SessionExpired,
    InvalidCredentials,
    NotAMember,
    NoActiveOrganization,
    PermissionDenied,
    WrongOrganization,
    InvalidOrigin,
    InvitationEmailMismatch,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::MissingCredentials => "missing_credentials",
            Reason::InvalidApiKey => "invalid_api_key",
            Reason::ApiKeyExpired => "api_key_expired",
            Reason::ApiKeyDisabled => "api_key_disabled",
            Reason::InvalidSession => "invalid_session",
            Reason::SessionExpired => "session_expired",
            Reason::InvalidCredentials => "invalid_credentials",
            Reason::NotAMember => "not_a_member",
            Reason::NoActiveOrganization => "no_active_organization",
            Reason::PermissionDenied => "permission_denied",
            Reason::WrongOrganization => "wrong_organization",
            Reason::InvalidOrigin => "invalid_origin",
            Reason::InvitationEmailMismatch => "invitation_email_mismatch",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Reason::MissingCredentials => {
                "Authentication required: send an x-api-key header or a session cookie"
            }
            Reason::InvalidApiKey => "The API key is invalid",
            Reason::ApiKeyExpired => "The API key has expired",
            Reason::ApiKeyDisabled => "The API key is disabled",
            Reason::InvalidSession => "The session is invalid; sign in again",
            Reason::SessionExpired => "The session has expired; sign in again",
            Reason::InvalidCredentials => "Invalid email or password",
            Reason::NotAMember => "You are not a member of this organization",
            Reason::NoActiveOrganization => "The session has no active organization",
            Reason::PermissionDenied => "You do not have permission to do this",
            Reason::WrongOrganization => "The resource belongs to another organization",
            Reason::InvalidOrigin => {
                "The request's Origin does not match this server or a trusted origin"
            }
            Reason::InvitationEmailMismatch => "The invitation was sent to another email address",
        }
    }
}

/// Why a client must slow down (HTTP 429).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttle {
    /// Too many requests in the window.
    RateLimited,
    /// A key's quota is used up until its next refill.
    UsageExceeded,
    /// Too many sign-in attempts.
    TooManyAttempts,
    /// The password queue is full.
    Busy,
}

impl Throttle {
    pub fn as_str(self) -> &'static str {
        match self {
            Throttle::RateLimited => "rate_limited",
            Throttle::UsageExceeded => "usage_exceeded",
            Throttle::TooManyAttempts => "too_many_attempts",
            Throttle::Busy => "sign_in_busy",
        }
    }
}

/// Back-off hints for a 429.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub retry_after_secs: u64,
    pub limit: u64,
    pub remaining: u64,
    pub reset_secs: u64,
}

impl Backoff {
    /// Try again in a second: for refusals that no budget's refill schedule explains
    /// (a full queue, a wait that ran out).
    pub fn one_second(limit: u64) -> Backoff {
        Backoff {
            retry_after_secs: 1,
            limit,
            remaining: 0,
            reset_secs: 1,
        }
    }
}

/// A problem with one field of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldIssue {
    pub path: String,
    pub message: String,
}

#[derive(Debug)]
pub enum Error {
    /// 400: the input is not acceptable.
    Invalid {
        reason: &'static str,
        message: String,
        issues: Vec<FieldIssue>,
    },
    /// 401 (or 403 for `InvalidOrigin`).
    Denied(Reason),
    /// 404: the named kind of thing does not exist.
    NotFound(&'static str),
    /// 409: the change collides with what exists.
    Conflict {
        reason: &'static str,
        message: String,
    },
    /// 429.
    Throttled(Throttle, Backoff),
    /// 507: the disk holding the database (or the database's own size limit) is full, so
    /// a write was rolled back. Reads go on working.
    StorageFull,
    /// 500: the cause is logged, never shown.
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(reason: &'static str, message: impl Into<String>) -> Error {
        Error::Invalid {
            reason,
            message: message.into(),
            issues: Vec::new(),
        }
    }

    pub fn conflict(reason: &'static str, message: impl Into<String>) -> Error {
        Error::Conflict {
            reason,
            message: message.into(),
        }
    }

    pub fn internal(cause: impl fmt::Display) -> Error {
        Error::Internal(cause.to_string())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Invalid { message, .. } | Error::Conflict { message, .. } => {
                f.write_str(message)
            }
            Error::Denied(r) => f.write_str(r.message()),
            Error::NotFound(what) => write!(f, "{what} not found"),
            Error::Throttled(t, b) => {
                write!(f, "{}: retry after {}s", t.as_str(), b.retry_after_secs)
            }
            Error::StorageFull => f.write_str("the storage holding the database is full"),
            Error::Internal(cause) => write!(f, "internal error: {cause}"),
        }
    }
}

impl std::error::Error for Error {}

/// Collects field problems so a request learns about all of them at once.
#[derive(Debug, Default)]
pub struct Checks {
    issues: Vec<FieldIssue>,
}

impl Checks {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the error of `result` under `path` and returns its value, if any.
    pub fn field<T, M: Into<String>>(&mut self, path: &str, result: Result<T, M>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(m) => {
                self.issues.push(FieldIssue {
                    path: path.to_owned(),
                    message: m.into(),
                });
                None
            }
        }
    }

    pub fn fail(&mut self, path: &str, message: impl Into<String>) {
        self.issues.push(FieldIssue {
            path: path.to_owned(),
            message: message.into(),
        });
    }

    /// Ok when nothing was recorded, else a 400 listing every issue.
    pub fn finish(self) -> Result<()> {
        if self.issues.is_empty() {
            return Ok(());
        }
        let message = self
            .issues
            .iter()
            .map(|i| format!("{}: {}", i.path, i.message))
            .collect::<Vec<_>>()
            .join("; ");
        Err(Error::Invalid {
            reason: "validation_failed",
            message,
            issues: self.issues,
        })
    }
}
