//! Plain types shared by every layer: typed ids, roles, permissions, records, and the
//! parsed forms of user input. Imports nothing from the rest of the crate.

use std::fmt;

macro_rules! id_type {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }
    )*};
}

id_type!(
    /// A user's id.
    UserId,
    /// An organization's id.
    OrgId,
    /// A membership's id.
    MemberId,
    /// A session's id (not its token).
    SessionId,
    /// An invitation's id (not its token).
    InvitationId,
    /// An API key's id (not the key).
    ApiKeyId,
    /// A project's id.
    ProjectId,
    /// An environment's id.
    EnvironmentId,
    /// An application's id.
    ApplicationId,
    /// A domain's id.
    DomainId,
);

/// A member's role inside one organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Owner,
    Admin,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "owner" => Some(Role::Owner),
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            _ => None,
        }
    }

    /// Owner and admin bypass the member flags and access lists.
    pub fn is_privileged(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }
}

/// The member permission flags, each stated once: its variant of `Flag`, its field of
/// `Flags` (also its column in `members`), the name the API knows it by (Dokploy's), and
/// its doc comment, which the API shows as its description. Hands the list, in the order
/// of the API, to `$callback!`, which defines from it whatever has a part per flag: the
/// types below, and the API's wire objects.
macro_rules! for_each_flag {
    ($callback:ident) => {
        $callback! {
            /// May create projects.
            CreateProjects can_create_projects "canCreateProjects",
            /// May delete projects.
            DeleteProjects can_delete_projects "canDeleteProjects",
            /// May create environments.
            CreateEnvironments can_create_environments "canCreateEnvironments",
            /// May delete environments.
            DeleteEnvironments can_delete_environments "canDeleteEnvironments",
            /// May create applications.
            CreateServices can_create_services "canCreateServices",
            /// May delete applications.
            DeleteServices can_delete_services "canDeleteServices",
            /// May create and use API keys.
            AccessToApi can_access_to_api "canAccessToAPI",
        }
    };
}
pub(crate) use for_each_flag;

macro_rules! define_flags {
    ($($(#[doc = $doc:tt])* $variant:ident $field:ident $name:tt,)*) => {
        /// The member permission flags, with Dokploy's names.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct Flags {
            $($(#[doc = $doc])* pub $field: bool,)*
        }

        impl Flags {
            pub const ALL: Flags = Flags {
                $($field: true,)*
            };
        }

        /// One member permission flag: the names by which the API and the database know it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Flag {
            $($(#[doc = $doc])* $variant,)*
        }

        impl Flag {
            /// How many flags there are.
            pub const COUNT: usize = [$(Flag::$variant,)*].len();

            /// Every flag, in the order of the API.
            pub const ALL: [Flag; Flag::COUNT] = [$(Flag::$variant,)*];

            /// Dokploy's name, used on the wire.
            pub fn name(self) -> &'static str {
                match self {
                    $(Flag::$variant => $name,)*
                }
            }

            /// Its column in `members`.
            pub fn column(self) -> &'static str {
                match self {
                    $(Flag::$variant => stringify!($field),)*
                }
            }

            /// Whether `flags` holds this flag.
            pub fn is_in(self, flags: &Flags) -> bool {
                match self {
                    $(Flag::$variant => flags.$field,)*
                }
            }

            /// The field of `flags` that holds this flag.
            pub fn of(self, flags: &mut Flags) -> &mut bool {
                match self {
                    $(Flag::$variant => &mut flags.$field,)*
                }
            }
        }
    };
}

for_each_flag!(define_flags);

/// A user as stored, without the password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub name: String,
    pub email: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// Sign-in asks for a TOTP code after the password.
    pub two_factor_enabled: bool,
}

/// An organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: OrgId,
    pub name: String,
    pub owner_id: UserId,
    pub created_at: i64,
    /// Sessions of members without two-factor may only enable it here.
    pub require_two_factor: bool,
}

/// A user's membership in one organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub id: MemberId,
    pub organization_id: OrgId,
    pub user_id: UserId,
    pub role: Role,
    pub flags: Flags,
    pub created_at: i64,
}

/// Where an invitation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvitationStatus {
    Pending,
    Accepted,
    Canceled,
}

impl InvitationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InvitationStatus::Pending => "pending",
            InvitationStatus::Accepted => "accepted",
            InvitationStatus::Canceled => "canceled",
        }
    }

    pub fn parse(s: &str) -> Option<InvitationStatus> {
        match s {
            "pending" => Some(InvitationStatus::Pending),
            "accepted" => Some(InvitationStatus::Accepted),
            "canceled" => Some(InvitationStatus::Canceled),
            _ => None,
        }
    }
}

/// An invitation to join an organization (its token is never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    pub id: InvitationId,
    pub organization_id: OrgId,
    pub email: String,
    pub role: Role,
    pub status: InvitationStatus,
    pub inviter_id: UserId,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A session as stored (the token itself is never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    pub active_organization_id: Option<OrgId>,
    pub created_at: i64,
    /// When the expiry was last moved forward.
    pub updated_at: i64,
    pub expires_at: i64,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
}

/// A per-key request rate limit: at most `max` requests per `window_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub window_ms: i64,
    pub max: u32,
}

/// A per-key usage quota, refilled to `amount` every `interval_ms` when set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refill {
    pub amount: i64,
    pub interval_ms: i64,
}

/// What a key may do beyond its user's rights: only less.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyScope {
    /// Refuse every mutation.
    pub read_only: bool,
    /// Only these projects (and what is inside them), when set; sorted.
    pub project_ids: Option<Vec<String>>,
}

impl KeyScope {
    pub fn is_unrestricted(&self) -> bool {
        !self.read_only && self.project_ids.is_none()
    }
}

/// An API key as stored (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub name: String,
    pub prefix: String,
    /// The prefix and first characters, for recognising a key in a list.
    pub start: String,
    pub user_id: UserId,
    pub organization_id: OrgId,
    pub enabled: bool,
    pub expires_at: Option<i64>,
    pub rate_limit: Option<RateLimit>,
    /// Requests left; `None` is unlimited.
    pub remaining: Option<i64>,
    pub refill: Option<Refill>,
    pub last_refill_at: Option<i64>,
    pub scope: KeyScope,
    pub last_used_at: Option<i64>,
    pub request_count: i64,
    /// The client address and user agent of its last request.
    pub last_address: Option<String>,
    pub last_user_agent: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Until when the secret before the last rotation still works.
    pub previous_expires_at: Option<i64>,
}

/// Which rows of a listing to answer: at most `limit` of them, after skipping `offset`,
/// in the listing's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    limit: i64,
    offset: i64,
}

impl Paging {
    /// The most rows one page may hold.
    pub const MAX_LIMIT: i64 = 100;

    /// The first `MAX_LIMIT` rows.
    pub const FIRST: Paging = Paging {
        limit: Paging::MAX_LIMIT,
        offset: 0,
    };

    /// A page of `limit` (1 to `MAX_LIMIT`) rows after `offset` (0 or more); otherwise
    /// each field that is out of range, with why.
    pub fn parse(limit: i64, offset: i64) -> Result<Paging, Vec<(&'static str, String)>> {
        let mut wrong = Vec::new();
        if !(1..=Paging::MAX_LIMIT).contains(&limit) {
            wrong.push((
                "limit",
                format!("must be between 1 and {}", Paging::MAX_LIMIT),
            ));
        }
        if offset < 0 {
            wrong.push(("offset", "must not be negative".to_owned()));
        }
        if wrong.is_empty() {
            Ok(Paging { limit, offset })
        } else {
            Err(wrong)
        }
    }

    pub fn limit(self) -> i64 {
        self.limit
    }

    pub fn offset(self) -> i64 {
        self.offset
    }
}

/// One page of a listing, and how many rows the whole listing has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
}

/// A project: the top of an organization's resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub id: ProjectId,
    pub organization_id: OrgId,
    pub name: String,
    pub description: Option<String>,
    pub created_at: i64,
}

/// An environment of a project; every project has the default `production`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    pub id: EnvironmentId,
    pub project_id: ProjectId,
    pub organization_id: OrgId,
    pub name: String,
    pub description: Option<String>,
    pub is_default: bool,
    pub created_at: i64,
}

/// An application deployed in an environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    pub id: ApplicationId,
    pub environment_id: EnvironmentId,
    pub organization_id: OrgId,
    pub name: String,
    pub app_name: String,
    pub description: Option<String>,
    pub status: String,
    pub created_at: i64,
}

/// A host and path prefix that forward auth maps to an application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    pub id: DomainId,
    pub application_id: ApplicationId,
    pub organization_id: OrgId,
    /// Normalized: see `DomainHost`.
    pub host: String,
    /// Normalized: see `DomainPath`.
    pub path: String,
    pub created_at: i64,
}

/// A host name as forward auth compares it: lower case, without port or trailing dot,
/// international names in their ASCII (IDNA) form, IP addresses in their canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainHost(String);

impl DomainHost {
    /// The longest host name DNS allows.
    pub const MAX: usize = 253;

    /// Parses a host as a client names it, with or without a port (`Example.COM:8443`,
    /// `bücher.example`, `[::1]:80`).
    pub fn parse(raw: &str) -> Result<DomainHost, &'static str> {
        const BAD: &str = "must be a host name or IP address, without scheme or path";
        let raw = raw.trim();
        if raw.is_empty() || raw.len() > 2 * Self::MAX {
            return Err(BAD);
        }
        if raw.contains(['/', '\\', '@', '?', '#', '*', ' ']) || raw.contains("://") {
            return Err(BAD);
        }
        let bare = strip_port(raw).ok_or(BAD)?;
        let bare = bare.strip_suffix('.').unwrap_or(bare);
        let host = match url::Host::parse(bare).map_err(|_| BAD)? {
            url::Host::Domain(d) => {
                if d.split('.').any(|l| l.is_empty() || l.len() > 63) {
                    return Err(BAD);
                }
                d
            }
            url::Host::Ipv4(ip) => ip.to_string(),
            url::Host::Ipv6(ip) => format!("[{ip}]"),
        };
        if host.is_empty() || host.len() > Self::MAX {
            return Err(BAD);
        }
        Ok(DomainHost(host))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// `host` without a `:port` suffix; `None` when the port is not a number.
fn strip_port(host: &str) -> Option<&str> {
    if let Some(rest) = host.strip_prefix('[') {
        let (inner, after) = rest.split_once(']')?;
        return match after {
            "" => Some(&host[..inner.len() + 2]),
            _ => after
                .strip_prefix(':')
                .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .map(|_| &host[..inner.len() + 2]),
        };
    }
    match host.rsplit_once(':') {
        None => Some(host),
        Some((h, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => Some(h),
        Some(_) => None,
    }
}

/// A path prefix of a domain: starts with `/`, has no empty, `.` or `..` segment, no
/// trailing `/` (but the root), and only the characters a path may hold unencoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainPath(String);

impl DomainPath {
    pub const MAX: usize = 1024;

    pub fn parse(raw: &str) -> Result<DomainPath, &'static str> {
        const BAD: &str = "must be a path starting with '/', of letters, digits and \
                           -._~!$&'()*+,;=:@ between slashes, without '.' or '..' segments";
        let raw = raw.trim();
        if raw.is_empty() || raw == "/" {
            return Ok(DomainPath("/".to_owned()));
        }
        let trimmed = raw.strip_suffix('/').unwrap_or(raw);
        let ok = raw.len() <= Self::MAX
            && trimmed.starts_with('/')
            && trimmed[1..].split('/').all(|seg| {
                !seg.is_empty()
                    && seg != "."
                    && seg != ".."
                    && seg
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b))
            });
        if ok {
            Ok(DomainPath(trimmed.to_owned()))
        } else {
            Err(BAD)
        }
    }

    /// Whether the request path `path` (decoded, normalized) falls under this prefix: the
    /// prefix itself or anything below it, segment by segment (`/api` holds `/api/x`,
    /// not `/apix`).
    pub fn holds(prefix: &str, path: &str) -> bool {
        prefix == "/"
            || path
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// An application's technical name: `^[a-zA-Z0-9._-]{1,63}$`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppName(String);

impl AppName {
    pub const MAX: usize = 63;

    pub fn parse(raw: &str) -> Result<AppName, &'static str> {
        let ok = !raw.is_empty()
            && raw.len() <= Self::MAX
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(AppName(raw.to_owned()))
        } else {
            Err("must be 1-63 characters of letters, digits, '.', '_' and '-'")
        }
    }

    /// A name derived from a display name plus `suffix`, always valid.
    pub fn derive(display: &str, suffix: &str) -> AppName {
        let mut slug = String::new();
        for c in display.trim().chars() {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                slug.push(c);
            } else if !slug.ends_with('-') {
                slug.push('-');
            }
        }
        let slug = slug.trim_matches(['-', '.']);
        let keep = Self::MAX - suffix.len() - 1;
        let slug: String = slug.chars().take(keep).collect();
        let slug = if slug.is_empty() {
            "app".to_owned()
        } else {
            slug
        };
        AppName(format!("{slug}-{suffix}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// The longest description of a project, environment or application, in characters.
pub const DESCRIPTION_MAX: usize = 10_000;

/// A free-text description of at most `DESCRIPTION_MAX` characters, never blank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    /// The description `raw` gives; `None` when it is blank, since sending "" clears one.
    pub fn parse(raw: &str) -> Result<Option<Description>, String> {
        if raw.chars().count() > DESCRIPTION_MAX {
            return Err(format!("must be at most {DESCRIPTION_MAX} characters"));
        }
        if raw
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err("must not contain control characters".into());
        }
        if raw.trim().is_empty() {
            return Ok(None);
        }
        Ok(Some(Description(raw.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A lower-cased, trimmed email address of a plausible shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// The longest address, in characters (as given, before trimming).
    pub const MAX: usize = 254;

    pub fn parse(raw: &str) -> Result<Email, &'static str> {
        let s = raw.trim().to_lowercase();
        if s.is_empty() {
            return Err("email is required");
        }
        if raw.chars().count() > Email::MAX {
            return Err("email must be at most 254 characters");
        }
        let Some((local, domain)) = s.split_once('@') else {
            return Err("email must look like name@example.com");
        };
        let domain_ok = !domain.is_empty()
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '.' || c == '-');
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '@' || c == '<' || c == '>');
        if !domain_ok || !local_ok {
            return Err("email must look like name@example.com");
        }
        Ok(Email(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A password within the accepted length (checked in characters, not bytes).
pub struct Password(String);

impl Password {
    pub const MIN: usize = 8;
    pub const MAX: usize = 128;

    pub fn parse(raw: &str) -> Result<Password, &'static str> {
        let n = raw.chars().count();
        if n < Self::MIN {
            return Err("password must be at least 8 characters");
        }
        if n > Self::MAX {
            return Err("password must be at most 128 characters");
        }
        Ok(Password(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A trimmed, non-empty display name of bounded length without control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name(String);

impl Name {
    pub fn parse(raw: &str, max: usize) -> Result<Name, String> {
        let s = raw.trim();
        if s.is_empty() {
            return Err("must not be empty".into());
        }
        // Counted before trimming, as the spec's maxLength counts what is sent.
        if raw.chars().count() > max {
            return Err(format!("must be at most {max} characters"));
        }
        if s.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        Ok(Name(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_trimmed_and_lower_cased() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
    }

    #[test]
    fn email_of_wrong_shape_is_refused() {
        for bad in [
            "",
            "ada",
            "ada@",
            "@x.com",
            "a b@x.com",
            "a@x..com",
            "a@.x.com",
            "a@x.com.",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn password_length_is_counted_in_characters() {
        assert!(Password::parse("1234567").is_err());
        assert!(Password::parse("12345678").is_ok());
        assert!(Password::parse(&"é".repeat(128)).is_ok());
        assert!(Password::parse(&"é".repeat(129)).is_err());
    }

    #[test]
    fn app_names_are_checked_and_derived_valid() {
        assert!(AppName::parse("my-app.v2_x").is_ok());
        for bad in ["", "a b", "é", &"a".repeat(64)] {
            assert!(AppName::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            AppName::derive("My App!", "abc123").as_str(),
            "my-app-abc123"
        );
        assert_eq!(AppName::derive("  ***  ", "abc123").as_str(), "app-abc123");
        let long = AppName::derive(&"x".repeat(500), "abc123");
        assert!(AppName::parse(long.as_str()).is_ok());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(Name::parse("  x ", 4).unwrap().as_str(), "x");
        assert!(
            Name::parse("  x ", 3).is_err(),
            "the spec counts what is sent"
        );
        assert!(Name::parse("   ", 3).is_err());
        assert!(Name::parse("abcd", 3).is_err());
        assert!(Name::parse("a\u{0}b", 3).is_err());
    }

    #[test]
    fn descriptions_are_bounded_and_blank_ones_are_none() {
        assert_eq!(
            Description::parse(" a\tb\n").unwrap().unwrap().as_str(),
            " a\tb\n"
        );
        assert_eq!(Description::parse(" \n "), Ok(None));
        assert!(Description::parse(&"é".repeat(DESCRIPTION_MAX)).is_ok());
        assert!(Description::parse(&"é".repeat(DESCRIPTION_MAX + 1)).is_err());
        assert!(Description::parse("a\u{0}b").is_err());
    }

    #[test]
    fn setting_every_flag_of_flag_all_sets_every_field_of_flags() {
        let mut flags = Flags::default();
        for flag in Flag::ALL {
            *flag.of(&mut flags) = true;
        }
        assert_eq!(flags, Flags::ALL);
    }

    #[test]
    fn each_flag_is_in_flags_exactly_when_its_field_is_set() {
        for flag in Flag::ALL {
            let mut flags = Flags::default();
            *flag.of(&mut flags) = true;
            let held: Vec<Flag> = Flag::ALL.into_iter().filter(|f| f.is_in(&flags)).collect();
            assert_eq!(held, [flag]);
        }
    }

    #[test]
    fn each_flag_has_its_own_name_and_column() {
        let names: std::collections::HashSet<_> = Flag::ALL.iter().map(|f| f.name()).collect();
        let columns: std::collections::HashSet<_> = Flag::ALL.iter().map(|f| f.column()).collect();
        assert_eq!(names.len(), Flag::ALL.len());
        assert_eq!(columns.len(), Flag::ALL.len());
    }
}
