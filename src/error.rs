//! The one domain error enum. `api::error` maps it to HTTP in one place.

use std::fmt;

/// Names the variants of a reason enum and their wire spellings once: `as_str` and `ALL`
/// come from the same list, so the catalogue cannot miss a variant.
macro_rules! reasons {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The `reason` of the JSON error body.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }
    };
}

reasons! {
    /// Why the input of a request was refused (HTTP 400).
    Invalid {
        /// Fields failed their checks; `issues` lists them.
        ValidationFailed => "validation_failed",
        /// The request could not be parsed at all.
        BadRequest => "bad_request",
        /// The connection failed while the body was being read.
        UnreadableBody => "unreadable_body",
        /// Sign-up without an invitation after the first user.
        SignupClosed => "signup_closed",
        /// A role that cannot be given (`owner`, or not a role).
        InvalidRole => "invalid_role",
        /// The invitation's time ran out.
        InvitationExpired => "invitation_expired",
        /// The invitation was already used or canceled.
        InvitationNotPending => "invitation_not_pending",
        /// A password-reset token that is unknown, used or expired: one reason for all
        /// three, so that an answer tells nothing about a token.
        InvalidResetToken => "invalid_reset_token",
        /// The default environment cannot be renamed or removed.
        DefaultEnvironment => "default_environment",
        /// The caller's only organization cannot be deleted.
        LastOrganization => "last_organization",
        /// An application already has as many domains as it may.
        TooManyDomains => "too_many_domains",
        /// Two-factor is not on for this account (or was never set up).
        TwoFactorNotEnabled => "two_factor_not_enabled",
        /// An organization cannot require two-factor of others before its owner has it.
        TwoFactorNeededFirst => "two_factor_needed_first",
        /// A backup would overwrite an existing file.
        DestinationExists => "destination_exists",
        /// A backup's directory does not exist.
        NoSuchDirectory => "no_such_directory",
    }
}

reasons! {
    /// Why a change collides with what exists (HTTP 409).
    Clash {
        EmailTaken => "email_taken",
        AlreadyAMember => "already_a_member",
        AlreadyInvited => "already_invited",
        EnvironmentExists => "environment_exists",
        AppNameTaken => "app_name_taken",
        /// Another domain has this host and path.
        DomainTaken => "domain_taken",
        /// Two-factor is already on: disable it before setting it up again.
        TwoFactorEnabled => "two_factor_enabled",
        /// Something the request depends on changed at the same time.
        ConcurrentChange => "concurrent_change",
    }
}

reasons! {
    /// Refusals of the HTTP layer itself, before or outside the domain.
    Transport {
        /// No such route or resource (404).
        NotFound => "not_found",
        /// Wrong method for the path (405).
        MethodNotAllowed => "method_not_allowed",
        /// The body stopped arriving (408).
        BodyTimeout => "body_timeout",
        /// The body is too large (413).
        PayloadTooLarge => "payload_too_large",
        /// A POST without a JSON content type (415).
        UnsupportedMediaType => "unsupported_media_type",
        /// An unexpected failure (500).
        Internal => "internal",
        /// Too many request bodies buffered at once (503).
        ServerBusy => "server_busy",
        /// The disk holding the database is full (507).
        StorageFull => "storage_full",
    }
}

reasons! {
    /// Why a request was not authenticated or not authorized (HTTP 401 and 403).
    Reason {
        MissingCredentials => "missing_credentials",
        InvalidApiKey => "invalid_api_key",
        ApiKeyExpired => "api_key_expired",
        ApiKeyDisabled => "api_key_disabled",
        InvalidSession => "invalid_session",
        SessionExpired => "session_expired",
        InvalidCredentials => "invalid_credentials",
        NotAMember => "not_a_member",
        NoActiveOrganization => "no_active_organization",
        PermissionDenied => "permission_denied",
        WrongOrganization => "wrong_organization",
        InvalidOrigin => "invalid_origin",
        InvitationEmailMismatch => "invitation_email_mismatch",
        /// Forward auth: no domain of the server matches the request's host and path.
        UnknownDomain => "unknown_domain",
        /// Forward auth: the forwarded headers came from an address that is not a trusted
        /// proxy.
        UntrustedProxy => "untrusted_proxy",
        /// The organization requires two-factor, which this account has not turned on.
        TwoFactorRequired => "two_factor_required",
        /// A wrong, malformed or already used two-factor code.
        InvalidTwoFactorCode => "invalid_two_factor_code",
        /// No password step waits for a code: it expired (3 minutes), was used, or never
        /// began.
        TwoFactorExpired => "two_factor_expired",
    }
}

impl Reason {
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
            Reason::UnknownDomain => "No domain of this server matches the request's host and path",
            Reason::UntrustedProxy => "Forward auth answers only proxies named by --trusted-proxy",
            Reason::TwoFactorRequired => {
                "This organization requires two-factor sign-in: turn it on for your account first"
            }
            Reason::InvalidTwoFactorCode => "The code is wrong or was already used",
            Reason::TwoFactorExpired => {
                "The sign-in waiting for a code expired or was already completed; sign in again"
            }
        }
    }
}

reasons! {
    /// Why a client must slow down (HTTP 429).
    Throttle {
        /// Too many requests in the window.
        RateLimited => "rate_limited",
        /// A key's quota is used up until its next refill.
        UsageExceeded => "usage_exceeded",
        /// Too many sign-in attempts.
        TooManyAttempts => "too_many_attempts",
        /// The password queue is full.
        Busy => "sign_in_busy",
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
    pub fn invalid(reason: Invalid, message: impl Into<String>) -> Error {
        Error::Invalid {
            reason: reason.as_str(),
            message: message.into(),
            issues: Vec::new(),
        }
    }

    pub fn conflict(reason: Clash, message: impl Into<String>) -> Error {
        Error::Conflict {
            reason: reason.as_str(),
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
        Err(Error::fields(self.issues))
    }
}

impl Error {
    /// A 400 `validation_failed` listing `issues`.
    fn fields(issues: Vec<FieldIssue>) -> Error {
        let message = issues
            .iter()
            .map(|i| format!("{}: {}", i.path, i.message))
            .collect::<Vec<_>>()
            .join("; ");
        Error::Invalid {
            reason: Invalid::ValidationFailed.as_str(),
            message,
            issues,
        }
    }
}

/// One field's parsed value, or what is wrong with it.
pub type Checked<T> = Result<T, FieldIssue>;

/// The check of the field at `path`: `result`'s value, or its error as the field's issue.
pub fn field<T, M: Into<String>>(path: &str, result: Result<T, M>) -> Checked<T> {
    result.map_err(|m| FieldIssue {
        path: path.to_owned(),
        message: m.into(),
    })
}

/// A field that failed alone is a 400 naming it.
impl From<FieldIssue> for Error {
    fn from(issue: FieldIssue) -> Error {
        Error::fields(vec![issue])
    }
}

/// Fields checked one by one and answered together, so a request learns about all its
/// problems at once.
pub trait AllChecked {
    type Values;

    /// Every field's value, or a 400 listing the issue of each field that failed, in
    /// order.
    fn all(self) -> Result<Self::Values>;
}

macro_rules! all_checked {
    ($($v:ident: $t:ident),+) => {
        impl<$($t),+> AllChecked for ($(Checked<$t>,)+) {
            type Values = ($($t,)+);

            fn all(self) -> Result<Self::Values> {
                match self {
                    ($(Ok($v),)+) => Ok(($($v,)+)),
                    ($($v,)+) => Err(Error::fields(
                        [$($v.err()),+].into_iter().flatten().collect(),
                    )),
                }
            }
        }
    };
}

all_checked!(a: A, b: B);
all_checked!(a: A, b: B, c: C);

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(e: Error) -> Vec<String> {
        match e {
            Error::Invalid { issues, .. } => issues.into_iter().map(|i| i.path).collect(),
            other => panic!("not a validation error: {other:?}"),
        }
    }

    #[test]
    fn fields_checked_together_give_every_value_or_every_issue_in_order() {
        let ok: (Checked<i32>, Checked<&str>) = (field::<_, &str>("a", Ok(1)), Ok("b"));
        assert_eq!(ok.all().unwrap(), (1, "b"));

        let wrong: (Checked<()>, Checked<()>, Checked<()>) =
            (field("c", Err("bad")), Ok(()), field("a", Err("worse")));
        let e = wrong.all().unwrap_err();
        assert_eq!(e.to_string(), "c: bad; a: worse");
        assert_eq!(paths(e), ["c", "a"]);
    }

    #[test]
    fn a_field_failing_alone_is_the_same_400_as_from_checks() {
        let mut c = Checks::new();
        c.fail("name", "must not be empty");
        let from_checks = c.finish().unwrap_err();
        let alone = Error::from(field::<(), _>("name", Err("must not be empty")).unwrap_err());
        assert_eq!(alone.to_string(), from_checks.to_string());
        assert_eq!(paths(alone), paths(from_checks));
    }
}
