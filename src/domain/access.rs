//! Who is acting: the "mock session context" of the reference. API keys and sessions both
//! end in one `Actor`: its principal, its key's scope, and what it may see. The rules of
//! who may do what are `policy`'s.

use std::sync::Arc;

use super::State;
use super::cache::{AccessLists, CachedKey, CachedSession, Principal, ViewSlot};
use crate::error::{Error, Reason, Result};
use crate::model::{
    ApiKey, Application, ApplicationId, Environment, EnvironmentId, KeyScope, Membership, OrgId,
    Organization, ProjectId, Session, SessionId, User,
};
use crate::store::orgs::AccessList;
use crate::store::{self, Reader};

/// How the actor authenticated.
#[derive(Debug, Clone)]
pub enum Via {
    Session(Arc<CachedSession>),
    Key(Arc<CachedKey>),
}

/// Who a request acts as: its credential, which holds the principal. The principal is
/// reached through the credential rather than held apart, so that a request touches no
/// reference count of a principal that many keys share.
#[derive(Debug, Clone)]
pub struct Actor {
    pub via: Via,
}

impl Actor {
    pub fn principal(&self) -> &Principal {
        match &self.via {
            Via::Key(k) => &k.principal,
            Via::Session(s) => &s.principal,
        }
    }

    pub fn user(&self) -> &User {
        &self.principal().user
    }

    /// The membership the request acts with; 401 when there is none, and
    /// `two_factor_required` for a session that must turn two-factor on first.
    pub fn member(&self) -> Result<&Membership> {
        if self.two_factor_blocked() {
            return Err(Error::Denied(Reason::TwoFactorRequired));
        }
        self.principal()
            .membership
            .as_ref()
            .map_err(|r| Error::Denied(*r))
    }

    /// The session the request came with, if it came with one.
    pub fn session(&self) -> Option<&Session> {
        match &self.via {
            Via::Session(s) => Some(&s.session),
            Via::Key(_) => None,
        }
    }

    pub fn session_id(&self) -> Option<&SessionId> {
        self.session().map(|s| &s.id)
    }

    /// Whether the caller is a session whose user has not turned two-factor on: an
    /// organization that requires two-factor holds it back. Keys never are held back.
    pub fn lacks_two_factor(&self) -> bool {
        self.session_id().is_some() && !self.user().two_factor_enabled
    }

    /// Whether it is a session that must turn two-factor on before acting in its
    /// organization.
    pub fn two_factor_blocked(&self) -> bool {
        match &self.via {
            Via::Session(s) => s.two_factor_blocked,
            Via::Key(_) => false,
        }
    }

    pub fn key(&self) -> Option<&ApiKey> {
        match &self.via {
            Via::Key(k) => Some(&k.key),
            Via::Session(_) => None,
        }
    }

    /// The key's narrowing, if the request came with a key.
    pub fn scope(&self) -> Option<&KeyScope> {
        self.key().map(|k| &k.scope)
    }

    pub fn lists(&self) -> &AccessLists {
        &self.principal().lists
    }

    /// Where the credential keeps its view of the organization's resources.
    pub fn view(&self) -> &ViewSlot {
        match &self.via {
            Via::Key(k) => &k.view,
            Via::Session(s) => &s.view,
        }
    }
}

/// Loads what authorization needs about `user` in `org`; with no `org`, in the user's
/// first organization (a session whose active organization is gone).
pub fn load_principal(conn: &Reader, user: User, org: Option<&OrgId>) -> Result<Principal> {
    let membership = match org {
        Some(org) => store::orgs::membership_of(conn, org, &user.id)?.ok_or(Reason::NotAMember),
        None => match store::orgs::first_org_of(conn, &user.id)? {
            Some(org) => {
                store::orgs::membership_of(conn, &org, &user.id)?.ok_or(Reason::NotAMember)
            }
            None => Err(Reason::NoActiveOrganization),
        },
    };
    principal_of(conn, user, membership)
}

/// The principal of `user` acting through `membership` (or refused for its reason): reads
/// a member's access lists; owners and admins bypass them.
pub fn principal_of(
    conn: &Reader,
    user: User,
    membership: std::result::Result<Membership, Reason>,
) -> Result<Principal> {
    let lists = match &membership {
        Ok(m) if !m.role.is_privileged() => AccessLists {
            projects: store::orgs::access_list(conn, &m.id, AccessList::Projects)?,
            environments: store::orgs::access_list(conn, &m.id, AccessList::Environments)?,
            applications: store::orgs::access_list(conn, &m.id, AccessList::Applications)?,
        },
        _ => AccessLists::default(),
    };
    Ok(Principal {
        user,
        membership,
        lists,
        permissions_view: Default::default(),
    })
}

fn listed(list: &[String], id: &str) -> bool {
    list.binary_search_by(|x| x.as_str().cmp(id)).is_ok()
}

/// What a principal, narrowed by a key's scope, may see of its organization's
/// resources.
#[derive(Clone, Copy)]
pub struct Sight<'a> {
    pub principal: &'a Principal,
    pub scope: Option<&'a KeyScope>,
}

impl Sight<'_> {
    fn privileged(&self) -> bool {
        self.principal
            .membership
            .as_ref()
            .is_ok_and(|m| m.role.is_privileged())
    }

    /// Whether it sees every resource of its organization (owner or admin, with no key
    /// scope on projects).
    pub fn sees_everything(&self) -> bool {
        self.privileged() && self.scope.is_none_or(|s| s.project_ids.is_none())
    }

    /// Whether it may see project `id` of its organization: a key's project scope first,
    /// then a member's access list.
    pub fn sees_project(&self, id: &ProjectId) -> bool {
        if let Some(ids) = self.scope.and_then(|s| s.project_ids.as_deref())
            && !listed(ids, id.as_str())
        {
            return false;
        }
        self.privileged() || listed(&self.principal.lists.projects, id.as_str())
    }

    /// Whether it may see environment `env` of project `project`.
    pub fn sees_environment(&self, env: &EnvironmentId, project: &ProjectId) -> bool {
        self.sees_project(project)
            && (self.privileged() || listed(&self.principal.lists.environments, env.as_str()))
    }

    /// Whether it may see application `app` of environment `env` of project `project`.
    pub fn sees_application(
        &self,
        app: &ApplicationId,
        env: &EnvironmentId,
        project: &ProjectId,
    ) -> bool {
        self.sees_environment(env, project)
            && (self.privileged() || listed(&self.principal.lists.applications, app.as_str()))
    }
}

impl Actor {
    /// What the caller may see.
    pub fn sight(&self) -> Sight<'_> {
        Sight {
            principal: self.principal(),
            scope: self.scope(),
        }
    }

    /// Whether the caller sees every resource of its organization.
    pub fn sees_everything(&self) -> bool {
        self.sight().sees_everything()
    }

    /// Whether the caller may see project `id` of its organization.
    pub fn sees_project(&self, id: &ProjectId) -> bool {
        self.sight().sees_project(id)
    }

    /// Whether the caller may see environment `e`: its project, and for a member its list.
    pub fn sees_environment(&self, e: &Environment) -> bool {
        self.sight().sees_environment(&e.id, &e.project_id)
    }

    /// Whether the caller may see application `a` of environment `e`.
    pub fn sees_application(&self, a: &Application, e: &Environment) -> bool {
        self.sight().sees_application(&a.id, &e.id, &e.project_id)
    }
}

/// The caller's membership in `org`, named explicitly by the request. 404 when the
/// organization does not exist, 401 `not_a_member` when the caller is not in it, and
/// `two_factor_required` for a session without two-factor when the organization
/// requires it.
pub fn member_in(st: &State, actor: &Actor, org: &OrgId) -> Result<(Organization, Membership)> {
    st.read(|c| {
        let o = store::orgs::by_id(c, org)?.ok_or(Error::NotFound("organization"))?;
        let m = store::orgs::membership_of(c, org, &actor.user().id)?
            .ok_or(Error::Denied(Reason::NotAMember))?;
        if o.require_two_factor && actor.lacks_two_factor() {
            return Err(Error::Denied(Reason::TwoFactorRequired));
        }
        Ok((o, m))
    })
}

/// The actor of an authenticated session.
pub fn from_session(s: Arc<CachedSession>) -> Actor {
    Actor {
        via: Via::Session(s),
    }
}
