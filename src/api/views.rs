//! Response objects shared by several routers.

use poem_openapi::Object;

use crate::clock::rfc3339;
use crate::domain::members::Permissions;
use crate::model::{
    ApiKey, Application, Environment, Invitation, Membership, Organization, Role, Session, User,
};

/// A user, as anyone allowed to see it sees it (never a password hash).
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct UserView {
    /// The user's id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Email address, lower-cased.
    pub email: String,
    /// When the user was created (RFC 3339).
    pub created_at: String,
    /// When the user last changed (RFC 3339).
    pub updated_at: String,
    /// Whether sign-in asks for a TOTP code after the password.
    pub two_factor_enabled: bool,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            id: u.id.to_string(),
            name: u.name.clone(),
            email: u.email.clone(),
            created_at: rfc3339(u.created_at),
            updated_at: rfc3339(u.updated_at),
            two_factor_enabled: u.two_factor_enabled,
        }
    }
}

/// A session (never its token).
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct SessionView {
    /// The session's id (use it with `user.revokeSession`).
    pub id: String,
    /// The user it belongs to.
    pub user_id: String,
    /// The organization the session acts in.
    #[oai(skip_serializing_if_is_none)]
    pub active_organization_id: Option<String>,
    /// When the session ends unless extended (RFC 3339).
    pub expires_at: String,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When its expiry was last extended (RFC 3339).
    pub updated_at: String,
    /// The client address at sign-in.
    #[oai(skip_serializing_if_is_none)]
    pub ip_address: Option<String>,
    /// The client's User-Agent at sign-in.
    #[oai(skip_serializing_if_is_none)]
    pub user_agent: Option<String>,
}

impl From<&Session> for SessionView {
    fn from(s: &Session) -> Self {
        SessionView {
            id: s.id.to_string(),
            user_id: s.user_id.to_string(),
            active_organization_id: s.active_organization_id.as_ref().map(ToString::to_string),
            expires_at: rfc3339(s.expires_at),
            created_at: rfc3339(s.created_at),
            updated_at: rfc3339(s.updated_at),
            ip_address: s.ip_address.clone(),
            user_agent: s.user_agent.clone(),
        }
    }
}

/// A session and its user.
#[derive(Debug, Clone, Object)]
pub struct SessionAndUser {
    /// The session.
    pub session: SessionView,
    /// The signed-in user.
    pub user: UserView,
    /// Where to send the browser now: the sign-in's `callbackURL`, when its host is a
    /// registered domain or this server's own. Absent otherwise.
    #[oai(skip_serializing_if_is_none)]
    pub url: Option<String>,
    /// The session's token, in the answers of sign-up, sign-in and the code step only:
    /// for clients that are not browsers, which send it as `Authorization: Bearer` (no
    /// cookie, no Origin). A browser keeps to the HttpOnly cookie. Whoever reads this
    /// answer sent the password; the token is never shown again.
    #[oai(skip_serializing_if_is_none)]
    pub token: Option<String>,
}

/// `{"success": true}`.
#[derive(Debug, Clone, Object)]
pub struct Success {
    /// Always true.
    pub success: bool,
}

impl Success {
    pub fn yes() -> Success {
        Success { success: true }
    }
}

/// An organization and the caller's role in it.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct OrganizationView {
    /// The organization's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The owner's user id.
    pub owner_id: String,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// The caller's role in it: `owner`, `admin` or `member`.
    pub role: String,
    /// Whether its members' sessions must have two-factor on to act in it.
    pub require_two_factor: bool,
}

impl OrganizationView {
    pub fn new(o: &Organization, role: Role) -> OrganizationView {
        OrganizationView {
            id: o.id.to_string(),
            name: o.name.clone(),
            owner_id: o.owner_id.to_string(),
            created_at: rfc3339(o.created_at),
            role: role.as_str().to_owned(),
            require_two_factor: o.require_two_factor,
        }
    }
}

/// Defines `PermissionsView`, with a field per permission flag of `model::for_each_flag`.
macro_rules! permissions_view {
    ($($(#[doc = $doc:tt])* $variant:ident $field:ident $name:tt,)*) => {
        /// A member's flags and access lists in one organization (Dokploy's names).
        #[derive(Debug, Clone, Object)]
        #[oai(rename_all = "camelCase")]
        pub struct PermissionsView {
            /// `owner`, `admin` or `member`. Owner and admin hold every permission.
            pub role: String,
            $(
                $(#[doc = $doc])*
                #[oai(rename = $name)]
                pub $field: bool,
            )*
            /// Projects a member may see.
            pub accessed_projects: Vec<String>,
            /// Environments a member may see.
            pub accessed_environments: Vec<String>,
            /// Applications a member may see.
            pub accessed_services: Vec<String>,
        }

        impl From<&Permissions> for PermissionsView {
            fn from(p: &Permissions) -> Self {
                PermissionsView {
                    role: p.role.as_str().to_owned(),
                    $($field: p.flags.$field,)*
                    accessed_projects: p.projects.clone(),
                    accessed_environments: p.environments.clone(),
                    accessed_services: p.applications.clone(),
                }
            }
        }
    };
}

crate::model::for_each_flag!(permissions_view);

/// A membership.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct MemberView {
    /// The membership's id (use it with `organization.updateMemberRole`).
    pub id: String,
    /// The organization.
    pub organization_id: String,
    /// The member's user id (use it with `user.remove` and `user.assignPermissions`).
    pub user_id: String,
    /// `owner`, `admin` or `member`.
    pub role: String,
    /// When the user joined (RFC 3339).
    pub created_at: String,
    /// The member's user, where the caller may see it.
    #[oai(skip_serializing_if_is_none)]
    pub user: Option<UserView>,
}

impl MemberView {
    pub fn new(m: &Membership, user: Option<&User>) -> MemberView {
        MemberView {
            id: m.id.to_string(),
            organization_id: m.organization_id.to_string(),
            user_id: m.user_id.to_string(),
            role: m.role.as_str().to_owned(),
            created_at: rfc3339(m.created_at),
            user: user.map(UserView::from),
        }
    }
}

/// An invitation (its token only in the answer to `organization.inviteMember`).
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct InvitationView {
    /// The invitation's id.
    pub id: String,
    /// The organization it invites to.
    pub organization_id: String,
    /// Who may accept it.
    pub email: String,
    /// The role it grants: `admin` or `member`.
    pub role: String,
    /// `pending`, `accepted` or `canceled` (a pending one past `expiresAt` can no longer
    /// be accepted).
    pub status: String,
    /// Who sent it.
    pub inviter_id: String,
    /// When it was sent (RFC 3339).
    pub created_at: String,
    /// When it stops being valid (RFC 3339), 48 hours after sending.
    pub expires_at: String,
    /// The secret to accept it or sign up with; shown once.
    #[oai(skip_serializing_if_is_none)]
    pub token: Option<String>,
}

impl InvitationView {
    pub fn new(i: &Invitation, token: Option<String>) -> InvitationView {
        InvitationView {
            id: i.id.to_string(),
            organization_id: i.organization_id.to_string(),
            email: i.email.clone(),
            role: i.role.as_str().to_owned(),
            status: i.status.as_str().to_owned(),
            inviter_id: i.inviter_id.to_string(),
            created_at: rfc3339(i.created_at),
            expires_at: rfc3339(i.expires_at),
            token,
        }
    }
}

/// What a key may do beyond its user's rights: only less.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct ScopeView {
    /// Refuse every mutation (POST) with 401 `permission_denied`.
    #[oai(default)]
    pub read_only: bool,
    /// Only these projects and what they contain.
    #[oai(skip_serializing_if_is_none)]
    pub project_ids: Option<Vec<String>>,
}

/// An API key (never the key itself, except once at creation or rotation).
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct ApiKeyView {
    /// The key's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The prefix and first characters, to recognise the key.
    pub start: String,
    /// The prefix before `_`.
    pub prefix: String,
    /// The user it acts as.
    pub user_id: String,
    /// The organization it acts in.
    pub organization_id: String,
    /// Disabled keys are refused with 401 `api_key_disabled`.
    pub enabled: bool,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When it last changed (RFC 3339).
    pub updated_at: String,
    /// When it stops working (RFC 3339); absent when it never expires.
    #[oai(skip_serializing_if_is_none)]
    pub expires_at: Option<String>,
    /// When it was last used (RFC 3339).
    #[oai(skip_serializing_if_is_none)]
    pub last_used_at: Option<String>,
    /// How many requests it has made.
    pub request_count: i64,
    /// The client address of its last request.
    #[oai(skip_serializing_if_is_none)]
    pub last_address: Option<String>,
    /// The User-Agent of its last request (its first 256 bytes).
    #[oai(skip_serializing_if_is_none)]
    pub last_user_agent: Option<String>,
    /// Whether it made no request for `--unused-key-days` days, counted from its last use
    /// or, never used, from its creation: a key to delete if nothing needs it.
    pub unused: bool,
    /// Whether a rate limit applies.
    pub rate_limit_enabled: bool,
    /// The rate limit's window in milliseconds.
    #[oai(skip_serializing_if_is_none)]
    pub rate_limit_time_window: Option<i64>,
    /// Requests allowed per window.
    #[oai(skip_serializing_if_is_none)]
    pub rate_limit_max: Option<i64>,
    /// Requests left in the quota; absent when unlimited.
    #[oai(skip_serializing_if_is_none)]
    pub remaining: Option<i64>,
    /// What the quota is refilled to.
    #[oai(skip_serializing_if_is_none)]
    pub refill_amount: Option<i64>,
    /// How often, in milliseconds.
    #[oai(skip_serializing_if_is_none)]
    pub refill_interval: Option<i64>,
    /// When the quota was last refilled (RFC 3339).
    #[oai(skip_serializing_if_is_none)]
    pub last_refill_at: Option<String>,
    /// The key's narrowing.
    pub scope: ScopeView,
    /// Until when the secret from before the last rotation still works (RFC 3339).
    #[oai(skip_serializing_if_is_none)]
    pub previous_secret_expires_at: Option<String>,
}

impl ApiKeyView {
    /// The view of `k`, which the domain found `unused` or not.
    pub fn new(k: &ApiKey, unused: bool) -> Self {
        ApiKeyView {
            id: k.id.to_string(),
            name: k.name.clone(),
            start: k.start.clone(),
            prefix: k.prefix.clone(),
            user_id: k.user_id.to_string(),
            organization_id: k.organization_id.to_string(),
            enabled: k.enabled,
            created_at: rfc3339(k.created_at),
            updated_at: rfc3339(k.updated_at),
            expires_at: k.expires_at.map(rfc3339),
            last_used_at: k.last_used_at.map(rfc3339),
            request_count: k.request_count,
            last_address: k.last_address.clone(),
            last_user_agent: k.last_user_agent.clone(),
            unused,
            rate_limit_enabled: k.rate_limit.is_some(),
            rate_limit_time_window: k.rate_limit.map(|r| r.window_ms),
            rate_limit_max: k.rate_limit.map(|r| i64::from(r.max)),
            remaining: k.remaining,
            refill_amount: k.refill.map(|r| r.amount),
            refill_interval: k.refill.map(|r| r.interval_ms),
            last_refill_at: k.last_refill_at.map(rfc3339),
            scope: ScopeView {
                read_only: k.scope.read_only,
                project_ids: k.scope.project_ids.clone(),
            },
            previous_secret_expires_at: k.previous_expires_at.map(rfc3339),
        }
    }
}

/// A key with its secret: shown once.
#[derive(Debug, Clone, Object)]
pub struct CreatedApiKey {
    /// The key. Send it as `x-api-key`; it cannot be shown again.
    pub key: String,
    #[oai(flatten)]
    pub api_key: ApiKeyView,
}

/// An application as listed inside its environment.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct ApplicationSummary {
    /// The application's id.
    pub application_id: String,
    /// Display name.
    pub name: String,
    /// Technical name.
    pub app_name: String,
    /// `idle` until deployed.
    pub application_status: String,
}

/// An environment.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct EnvironmentView {
    /// The environment's id.
    pub environment_id: String,
    /// Its name; the default one is `production`.
    pub name: String,
    /// Free text.
    #[oai(skip_serializing_if_is_none)]
    pub description: Option<String>,
    /// The project it belongs to.
    pub project_id: String,
    /// Whether it is the project's default (cannot be renamed or removed).
    pub is_default: bool,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// The applications in it that the caller may see.
    pub applications: Vec<ApplicationSummary>,
}

impl EnvironmentView {
    pub fn new(e: &Environment, apps: &[Application]) -> EnvironmentView {
        EnvironmentView {
            environment_id: e.id.to_string(),
            name: e.name.clone(),
            description: e.description.clone(),
            project_id: e.project_id.to_string(),
            is_default: e.is_default,
            created_at: rfc3339(e.created_at),
            applications: apps
                .iter()
                .map(|a| ApplicationSummary {
                    application_id: a.id.to_string(),
                    name: a.name.clone(),
                    app_name: a.app_name.clone(),
                    application_status: a.status.clone(),
                })
                .collect(),
        }
    }
}
