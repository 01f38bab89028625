//! Who is acting: the "mock session context" of the reference. API keys and sessions both
//! end in one `Actor`, and every rule is checked against it.

use super::State;
use super::sessions::Current;
use crate::error::{Error, Reason, Result};
use crate::model::{Membership, SessionId, User};
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

/// The actor of an authenticated session, in the session's active organization.
pub fn from_session(st: &State, current: &Current) -> Result<Actor> {
    let membership = match &current.session.active_organization_id {
        None => Err(Reason::NoActiveOrganization),
        Some(org) => st
            .db
            .read(|c| store::orgs::membership_of(c, org, &current.user.id))?
            .ok_or(Reason::NotAMember),
    };
    Ok(Actor {
        user: current.user.clone(),
        via: Via::Session(current.session.id.clone()),
        membership,
    })
}
