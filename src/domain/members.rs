//! Members of the active organization: roles, removal, permission flags and access lists.

use std::sync::Arc;

use super::access::Actor;
use super::accounts::{NewUser, insert_user};
use super::audit;
use super::invitations::assignable_role;
use super::policy::{self, op};
use super::{State, in_own_org};
use crate::auth::token;
use crate::error::{Checks, Clash, Error, Reason, Result};
use crate::model::{Flags, MemberId, Membership, Page, Paging, Role, User, UserId};
use crate::store::orgs::AccessList;
use crate::store::{self, Reader};

/// A member's flags and access lists, as resolved for one organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    pub role: Role,
    pub flags: Flags,
    pub projects: Vec<String>,
    pub environments: Vec<String>,
    pub applications: Vec<String>,
}

/// Whether `me` may change or remove `target`: nobody acts on itself, nobody on the
/// owner, and an admin not on another admin.
fn may_manage(me: &Membership, target: &Membership) -> Result<()> {
    if me.id == target.id || !outranks(me.role, target.role) {
        return Err(Error::Denied(Reason::PermissionDenied));
    }
    Ok(())
}

/// Whether a member of role `me` may manage one of role `target` in an organization:
/// owner and admin manage, nobody the owner, and an admin not another admin.
pub(crate) fn outranks(me: Role, target: Role) -> bool {
    me.is_privileged() && target != Role::Owner && !(me == Role::Admin && target == Role::Admin)
}

/// `user.all`: one page of the members of the active organization with their users, in
/// the order they joined (owner or admin, as in Dokploy: a member sees only what it was
/// given).
pub fn all(st: &State, actor: &Actor, paging: Paging) -> Result<Page<(Membership, User)>> {
    policy::authorize::<op::UserAll>(actor)?;
    let me = actor.member()?;
    st.read(|c| store::orgs::members_of(c, &me.organization_id, paging))
}

/// `user.one`: one member of the active organization with its user and its permissions
/// as stored, the flags and lists `user.assignPermissions` replaces (owner or admin).
/// Owner and admin hold every flag; their lists are empty, since none applies to them.
pub fn one(st: &State, actor: &Actor, user: &UserId) -> Result<(Membership, User, Permissions)> {
    policy::authorize::<op::UserOne>(actor)?;
    let org = &actor.member()?.organization_id;
    st.read(|c| {
        let m = store::orgs::membership_of(c, org, user)?.ok_or(Error::NotFound("member"))?;
        let u = store::users::by_id(c, user)?.ok_or(Error::NotFound("member"))?;
        let privileged = m.role.is_privileged();
        let list = |l| match privileged {
            true => Ok(Vec::new()),
            false => store::orgs::access_list(c, &m.id, l),
        };
        let p = Permissions {
            role: m.role,
            flags: if privileged { Flags::ALL } else { m.flags },
            projects: list(AccessList::Projects)?,
            environments: list(AccessList::Environments)?,
            applications: list(AccessList::Applications)?,
        };
        Ok((m, u, p))
    })
}

/// `organization.updateMemberRole`.
pub async fn update_role(
    st: &State,
    actor: &Actor,
    member: &MemberId,
    role: &str,
) -> Result<Membership> {
    let role = assignable_role("role", role)?;
    let auth = policy::authorize::<op::OrganizationUpdateMemberRole>(actor)?;
    let me = actor.member()?.clone();
    let member = member.clone();
    let event = audit::by(actor, "member.role", st.now()).resource("member", member.as_str());
    st.write(&auth, move |tx| {
        let found = store::orgs::member(tx, &me.organization_id, &member)?;
        let mut target = in_own_org(tx, found, "member", |c| {
            store::orgs::locate_member(c, &member)
        })?;
        may_manage(&me, &target)?;
        store::orgs::set_role(tx, &target, role)?;
        if target.role != role {
            // Flags and access lists only mean something for members: whoever
            // becomes one starts with none, whatever it held before.
            store::orgs::set_flags(tx, &target, &Flags::default())?;
            for list in [
                AccessList::Projects,
                AccessList::Environments,
                AccessList::Applications,
            ] {
                store::orgs::set_access_list(tx, &target, list, &[])?;
            }
            target.flags = Flags::default();
        }
        tx.audit(event.subject(&target.user_id).details(serde_json::json!({
            "from": target.role.as_str(),
            "to": role.as_str(),
        })));
        target.role = role;
        Ok(target)
    })
    .await
}

/// The membership of `user` in the actor's organization, for an owner or admin to manage.
pub(crate) fn managed_target(tx: &Reader, me: &Membership, user: &UserId) -> Result<Membership> {
    let target = store::orgs::membership_of(tx, &me.organization_id, user)?
        .ok_or(Error::NotFound("member"))?;
    may_manage(me, &target)?;
    Ok(target)
}

/// `user.remove`: removes a user from the active organization. From the very next
/// request its keys for it are refused (`not_a_member`) and its sessions stop acting in
/// it.
pub async fn remove(st: &State, actor: &Actor, user: &UserId) -> Result<()> {
    let auth = policy::authorize::<op::UserRemove>(actor)?;
    let me = actor.member()?.clone();
    let target = user.clone();
    let event = audit::by(actor, "member.remove", st.now());
    st.write(&auth, move |tx| {
        let target = managed_target(tx, &me, &target)?;
        store::orgs::delete_member(tx, &target)?;
        tx.audit(
            event
                .subject(&target.user_id)
                .resource("member", target.id.as_str())
                .details(serde_json::json!({ "role": target.role.as_str() })),
        );
        Ok(())
    })
    .await
}

/// New flags and access lists for a member.
pub struct Assignment {
    pub flags: Flags,
    pub projects: Vec<String>,
    pub environments: Vec<String>,
    pub applications: Vec<String>,
}

/// `user.assignPermissions`: replaces a member's flags and access lists. Every listed id
/// must be a resource of the organization.
pub async fn assign(
    st: &State,
    actor: &Actor,
    user: &UserId,
    a: Assignment,
) -> Result<Permissions> {
    let auth = policy::authorize::<op::UserAssignPermissions>(actor)?;
    let me = actor.member()?.clone();
    let target = user.clone();
    let event = audit::by(actor, "member.permissions", st.now());
    st.write(&auth, move |tx| {
        let target = managed_target(tx, &me, &target)?;
        let org = &me.organization_id;
        let mut c = Checks::new();
        let lists = [
            ("accessedProjects", AccessList::Projects, &a.projects),
            (
                "accessedEnvironments",
                AccessList::Environments,
                &a.environments,
            ),
            (
                "accessedServices",
                AccessList::Applications,
                &a.applications,
            ),
        ];
        for (path, list, ids) in lists {
            for id in store::orgs::foreign_ids(tx, org, list, ids)? {
                c.fail(path, format!("{id} is not a resource of this organization"));
            }
        }
        c.finish()?;
        store::orgs::set_flags(tx, &target, &a.flags)?;
        for (_, list, ids) in lists {
            store::orgs::set_access_list(tx, &target, list, ids)?;
        }
        let on: Vec<&str> = crate::model::Flag::ALL
            .iter()
            .filter(|f| f.is_in(&a.flags))
            .map(|f| f.name())
            .collect();
        tx.audit(
            event
                .subject(&target.user_id)
                .resource("member", target.id.as_str())
                .details(serde_json::json!({
                    "flags": on,
                    "projects": a.projects.len(),
                    "environments": a.environments.len(),
                    "applications": a.applications.len(),
                })),
        );
        Ok(Permissions {
            role: target.role,
            flags: a.flags,
            projects: sorted(&a.projects),
            environments: sorted(&a.environments),
            applications: sorted(&a.applications),
        })
    })
    .await
}

fn sorted(ids: &[String]) -> Vec<String> {
    let mut v = ids.to_vec();
    v.sort();
    v.dedup();
    v
}

/// `user.getPermissions` as `render` writes the caller's permissions, rendered once per
/// principal (see `Principal::permissions_view`).
pub fn permissions_view(
    actor: &Actor,
    render: impl FnOnce(&Permissions) -> String,
) -> Result<Arc<String>> {
    let view = &actor.principal().permissions_view;
    if let Some(done) = view.get() {
        return Ok(Arc::clone(done));
    }
    let p = permissions(actor)?;
    Ok(Arc::clone(view.get_or_init(|| Arc::new(render(&p)))))
}

/// `user.getPermissions`: the caller's resolved permissions in the active organization.
/// Owner and admin hold every flag. Answered from the verified credential, which carries
/// them.
pub fn permissions(actor: &Actor) -> Result<Permissions> {
    let m = actor.member()?;
    let lists = actor.lists();
    Ok(Permissions {
        role: m.role,
        flags: if m.role.is_privileged() {
            Flags::ALL
        } else {
            m.flags
        },
        projects: lists.projects.clone(),
        environments: lists.environments.clone(),
        applications: lists.applications.clone(),
    })
}

/// `user.createUserWithCredentials`: an installation administrator who is owner or admin
/// of its active organization creates a user directly into it.
pub async fn create_with_credentials(
    st: &State,
    actor: &Actor,
    new: NewUser,
    role: &str,
) -> Result<(User, Membership)> {
    let role = assignable_role("role", role)?;
    let auth = policy::authorize::<op::UserCreateUserWithCredentials>(actor)?;
    let me = actor.member()?.clone();
    // Anyone may create an organization and so become an owner; only the installation's
    // administrators, named in the database, create accounts outright. Otherwise any
    // owner could make an account for someone else's address before that person is
    // invited elsewhere, and then accept the invitation itself.
    if !st.read(|c| store::users::is_installation_admin(c, &actor.user().id))? {
        return Err(Error::Denied(Reason::PermissionDenied));
    }
    if st
        .read(|c| store::users::by_email(c, new.email.as_str()))?
        .is_some()
    {
        return Err(Error::conflict(
            Clash::EmailTaken,
            "A user with this email already exists",
        ));
    }
    let hash = st.hash_password(new.password.expose().to_owned()).await?;
    let now = st.now();
    let event = audit::by(actor, "member.add", now);
    st.write(&auth, move |tx| {
        let user = insert_user(tx, &new, &hash, now)?;
        let m = Membership {
            id: MemberId(token::new_id()),
            organization_id: me.organization_id.clone(),
            user_id: user.id.clone(),
            role,
            flags: Flags::default(),
            created_at: now,
        };
        store::orgs::insert_member(tx, &m)?;
        tx.audit(
            event
                .subject(&user.id)
                .resource("member", m.id.as_str())
                .details(serde_json::json!({
                    "email": user.email,
                    "role": role.as_str(),
                    "newUser": true,
                })),
        );
        Ok((user, m))
    })
    .await
}
