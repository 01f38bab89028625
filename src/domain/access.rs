//! Who is acting: the "mock session context" of the reference. API keys and sessions both
//! end in one `Actor`, and every rule is checked against it.

use super::State;
use super::sessions::Current;
use crate::error::{Error, Reason, Result};
use crate::model::{Membership, OrgId, Organization, SessionId, User};
use crate::store;

/// How the actor authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    Session(SessionId),
}

#[derive(Debug, Clone)]
pub struct Actor {
    pub user: User,
    pub via: Via,
    /// The membership in the organization the request acts in, or why there is none.
    pub membership: Result<Membership, Reason>,
}

impl Actor {
    /// The membership the request acts with; 401 when there is none.
    pub fn member(&self) -> Result<&Membership> {
        self.membership.as_ref().map_err(|r| Error::Denied(*r))
    }

    pub fn session_id(&self) -> Option<&SessionId> {
        match &self.via {
            Via::Session(id) => Some(id),
        }
    }
}

/// The caller's membership in the organization it acts in, if owner or admin.
pub fn privileged(actor: &Actor) -> Result<&Membership> {
    let m = actor.member()?;
    if m.role.is_privileged() {
        Ok(m)
    } else {
        Err(Error::Denied(Reason::PermissionDenied))
    }
}

/// The caller's session; API keys are refused for what only a person at a browser does
/// (switching organizations, changing a password, accepting invitations).
pub fn session_only(actor: &Actor) -> Result<&SessionId> {
    actor
        .session_id()
        .ok_or(Error::Denied(Reason::PermissionDenied))
}

/// The caller's membership in `org`, named explicitly by the request. 404 when the
/// organization does not exist, 401 `not_a_member` when the caller is not in it.
pub fn member_in(st: &State, actor: &Actor, org: &OrgId) -> Result<(Organization, Membership)> {
    st.db.read(|c| {
        let o = store::orgs::by_id(c, org)?.ok_or(Error::NotFound("organization"))?;
        let m = store::orgs::membership_of(c, org, &actor.user.id)?
            .ok_or(Error::Denied(Reason::NotAMember))?;
        Ok((o, m))
    })
}

/// The actor of an authenticated session, in the session's active organization.
///
/// A session whose active organization is gone (deleted, or the user was removed from
/// it) acts in the user's first organization until another is chosen.
pub fn from_session(st: &State, current: &Current) -> Result<Actor> {
    let user = &current.user.id;
    let membership = st.db.read(|c| {
        if let Some(org) = &current.session.active_organization_id {
            return Ok(store::orgs::membership_of(c, org, user)?.ok_or(Reason::NotAMember));
        }
        Ok(match store::orgs::first_org_of(c, user)? {
            Some(org) => store::orgs::membership_of(c, &org, user)?.ok_or(Reason::NotAMember),
            None => Err(Reason::NoActiveOrganization),
        })
    })?;
    Ok(Actor {
        user: current.user.clone(),
        via: Via::Session(current.session.id.clone()),
        membership,
    })
}
