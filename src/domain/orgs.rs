//! Organizations: create, list, rename, delete, and the session's active one.

use super::State;
use super::access::{self, Actor};
use super::accounts::{NAME_MAX, create_org_in};
use super::audit;
use super::policy::{self, op};
use crate::error::{Checks, Error, Invalid, Reason, Result};
use crate::model::{Membership, Name, OrgId, Organization, Page, Paging, Role};
use crate::store;

fn parse_name(raw: &str) -> Result<Name> {
    let mut c = Checks::new();
    let name = c.field("name", Name::parse(raw, NAME_MAX));
    c.finish()?;
    name.ok_or_else(|| Error::internal("checked name missing"))
}

/// `organization.create`: the caller becomes its owner.
pub async fn create(st: &State, actor: &Actor, name: &str) -> Result<(Organization, Role)> {
    let name = parse_name(name)?;
    let auth = policy::authorize::<op::OrganizationCreate>(actor)?;
    let (user, now) = (actor.user().id.clone(), st.now());
    let event = audit::by(actor, "organization.create", now);
    let org = st
        .write(&auth, move |tx| {
            let org = create_org_in(tx, &user, name.as_str(), now)?;
            tx.audit(
                event
                    .org(&org.id)
                    .resource("organization", org.id.as_str())
                    .details(serde_json::json!({ "name": org.name })),
            );
            Ok(org)
        })
        .await?;
    Ok((org, Role::Owner))
}

/// `organization.all`: one page of the caller's organizations and its role in each, in
/// the order it joined them. An API key sees only its own organization.
pub fn all(st: &State, actor: &Actor, paging: Paging) -> Result<Page<(Organization, Role)>> {
    policy::authorize::<op::OrganizationAll>(actor)?;
    if actor.session_id().is_some() {
        return st.read(|c| store::orgs::of_user(c, &actor.user().id, paging));
    }
    let m = actor.member()?;
    let own: Vec<_> = st
        .read(|c| store::orgs::by_id(c, &m.organization_id))?
        .map(|o| (o, m.role))
        .into_iter()
        .collect();
    Ok(Page {
        total: own.len() as u64,
        items: own.into_iter().skip(paging.offset() as usize).collect(),
    })
}

/// `organization.one`.
pub fn one(st: &State, actor: &Actor, org: &OrgId) -> Result<(Organization, Membership)> {
    scope_to_key(actor, org)?;
    let pending = policy::authorize_named::<op::OrganizationOne>(actor)?;
    let (o, m) = access::member_in(st, actor, org)?;
    let _ = pending.in_org(&m)?;
    Ok((o, m))
}

/// An API key acts only inside its organization.
fn scope_to_key(actor: &Actor, org: &OrgId) -> Result<()> {
    if actor.session_id().is_none() && actor.member()?.organization_id != *org {
        return Err(Error::Denied(Reason::WrongOrganization));
    }
    Ok(())
}

/// `organization.update`: owner or admin renames it; the owner alone decides whether it
/// requires two-factor of its members' sessions, and only once the owner has it on.
pub async fn update(
    st: &State,
    actor: &Actor,
    org: &OrgId,
    name: Option<&str>,
    require_two_factor: Option<bool>,
) -> Result<(Organization, Membership)> {
    if name.is_none() && require_two_factor.is_none() {
        let mut c = Checks::new();
        c.fail("name", "give a new name, requireTwoFactor, or both");
        c.finish()?;
    }
    let name = name.map(parse_name).transpose()?;
    scope_to_key(actor, org)?;
    let pending = policy::authorize_named::<op::OrganizationUpdate>(actor)?;
    let (mut o, m) = access::member_in(st, actor, org)?;
    let auth = pending.in_org(&m)?;
    if let Some(on) = require_two_factor {
        // A person decides, at a browser: a key could lift the demand behind the owner's
        // back.
        policy::session_only(actor)?;
        if m.role != Role::Owner {
            return Err(Error::Denied(Reason::PermissionDenied));
        }
        if on && !actor.user().two_factor_enabled {
            return Err(Error::invalid(
                Invalid::TwoFactorNeededFirst,
                "Turn two-factor on for your own account before requiring it of the organization",
            ));
        }
        o.require_two_factor = on;
    }
    let id = o.id.clone();
    let new_name = name.map(Name::into_string);
    let event = |action| {
        audit::by(actor, action, st.now())
            .org(&id)
            .resource("organization", id.as_str())
    };
    let renamed = new_name.as_ref().map(|n| {
        event("organization.rename").details(serde_json::json!({ "from": o.name, "to": n }))
    });
    let required = require_two_factor.map(|on| {
        event("organization.require_two_factor").details(serde_json::json!({ "required": on }))
    });
    if let Some(n) = &new_name {
        o.name = n.clone();
    }
    st.write(&auth, move |tx| {
        if let Some(n) = &new_name {
            store::orgs::set_name(tx, &id, n)?;
        }
        if let Some(on) = require_two_factor {
            store::two_factor::set_required(tx, &id, on)?;
        }
        for e in renamed.into_iter().chain(required) {
            tx.audit(e);
        }
        Ok(())
    })
    .await?;
    Ok((o, m))
}

/// `organization.delete`: only the owner, and not the owner's last organization.
pub async fn delete(st: &State, actor: &Actor, org: &OrgId) -> Result<()> {
    scope_to_key(actor, org)?;
    let pending = policy::authorize_named::<op::OrganizationDelete>(actor)?;
    let (o, m) = access::member_in(st, actor, org)?;
    let auth = pending.in_org(&m)?;
    let user = actor.user().id.clone();
    let event = audit::by(actor, "organization.delete", st.now())
        .org(&o.id)
        .resource("organization", o.id.as_str())
        .details(serde_json::json!({ "name": o.name }));
    st.write(&auth, move |tx| {
        if store::orgs::count_of_user(tx, &user)? <= 1 {
            return Err(Error::invalid(
                Invalid::LastOrganization,
                "You cannot delete your only organization",
            ));
        }
        store::orgs::delete(tx, &o.id)?;
        tx.audit(event);
        Ok(())
    })
    .await
}

/// `organization.setActive`: the session acts in `org` from now on.
pub async fn set_active(
    st: &State,
    actor: &Actor,
    org: &OrgId,
) -> Result<(Organization, Membership)> {
    let pending = policy::authorize_named::<op::OrganizationSetActive>(actor)?;
    let session = policy::session_only(actor)?.clone();
    let (o, m) = access::member_in(st, actor, org)?;
    let auth = pending.in_org(&m)?;
    let id = o.id.clone();
    st.write(&auth, move |tx| {
        store::sessions::set_active_org(tx, &session, Some(&id))
    })
    .await?;
    Ok((o, m))
}

/// `organization.active`: the organization the request acts in.
pub fn active(st: &State, actor: &Actor) -> Result<(Organization, Membership)> {
    policy::authorize::<op::OrganizationActive>(actor)?;
    let m = actor.member()?.clone();
    let o = st
        .read(|c| store::orgs::by_id(c, &m.organization_id))?
        .ok_or(Error::NotFound("organization"))?;
    Ok((o, m))
}
