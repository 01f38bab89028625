//! Response objects shared by several routers.

use poem_openapi::Object;

use crate::clock::rfc3339;
use crate::model::{Session, User};

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
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            id: u.id.to_string(),
            name: u.name.clone(),
            email: u.email.clone(),
            created_at: rfc3339(u.created_at),
            updated_at: rfc3339(u.updated_at),
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
