//! Invitations: random single-use tokens, stored hashed, valid for 48 hours.

use super::access::Actor;
use super::audit;
use super::policy::{self, op};
use super::{State, in_own_org};
use crate::auth::token;
use crate::clock::HOUR;
use crate::error::{Checks, Clash, Error, Invalid, Reason, Result};
use crate::model::{
    Email, Flags, Invitation, InvitationId, InvitationStatus, MemberId, Membership, Page, Paging,
    Role, UserId,
};
use crate::store::audit::Event;
use crate::store::{self, Reader, Tx};

/// How long an invitation can be accepted.
pub const TTL_MS: i64 = 48 * HOUR;

/// Parses a role that may be given to someone else (never `owner`).
pub fn assignable_role(path: &str, raw: &str) -> Result<Role> {
    match Role::parse(raw) {
        Some(Role::Owner) => Err(Error::Invalid {
            reason: Invalid::InvalidRole.as_str(),
            message: "An organization has exactly one owner; choose admin or member".into(),
            issues: vec![crate::error::FieldIssue {
                path: path.into(),
                message: "must be admin or member".into(),
            }],
        }),
        Some(r) => Ok(r),
        None => {
            let mut c = Checks::new();
            c.fail(path, "must be admin or member");
            c.finish()?;
            Err(Error::internal("unreachable role check"))
        }
    }
}

/// `organization.inviteMember`: owner or admin invites `email` as admin or member.
/// Returns the invitation and its token (shown once).
pub async fn invite(
    st: &State,
    actor: &Actor,
    email: &str,
    role: &str,
) -> Result<(Invitation, String)> {
    let mut c = Checks::new();
    let email = c.field("email", Email::parse(email));
    let role = assignable_role("role", role);
    // Alone, a bad role keeps its own reason; with other problems, all are listed.
    let role = match (role, email.is_some()) {
        (Ok(r), _) => r,
        (Err(e), true) => return Err(e),
        (Err(e), false) => {
            if let Error::Invalid { issues, .. } = e {
                for i in issues {
                    c.fail(&i.path, i.message);
                }
            }
            c.finish()?;
            return Err(Error::internal("unreachable role check"));
        }
    };
    c.finish()?;
    let email = email.ok_or_else(|| Error::internal("checked email missing"))?;
    let auth = policy::authorize::<op::OrganizationInviteMember>(actor)?;
    let me = actor.member()?.clone();
    let now = st.now();
    let token = token::new_token();
    let invitation = Invitation {
        id: InvitationId(token::new_id()),
        organization_id: me.organization_id.clone(),
        email: email.into_string(),
        role,
        status: InvitationStatus::Pending,
        inviter_id: actor.user().id.clone(),
        created_at: now,
        expires_at: now + TTL_MS,
    };
    let hash = token::sha256(token.as_bytes());
    let inv = invitation.clone();
    let event = audit::by(actor, "invitation.create", now)
        .resource("invitation", invitation.id.as_str())
        .details(serde_json::json!({ "email": invitation.email, "role": role.as_str() }));
    st.write(&auth, move |tx| {
        if let Some(u) = store::users::by_email(tx, &inv.email)?
            && store::orgs::membership_of(tx, &inv.organization_id, &u.id)?.is_some()
        {
            return Err(Error::conflict(
                Clash::AlreadyAMember,
                "This user is already a member of the organization",
            ));
        }
        if store::invitations::pending_exists(tx, &inv.organization_id, &inv.email, now)? {
            return Err(Error::conflict(
                Clash::AlreadyInvited,
                "This email already has a pending invitation",
            ));
        }
        store::invitations::insert(tx, &inv, &hash)?;
        tx.audit(event);
        Ok(())
    })
    .await?;
    Ok((invitation, token))
}

/// `organization.allInvitations`: one page of the active organization's invitations, in
/// the order they were sent.
pub fn all(st: &State, actor: &Actor, paging: Paging) -> Result<Page<Invitation>> {
    policy::authorize::<op::OrganizationAllInvitations>(actor)?;
    let me = actor.member()?;
    st.read(|c| store::invitations::of_org(c, &me.organization_id, paging))
}

/// `organization.removeInvitation`: cancels a pending invitation.
pub async fn remove(st: &State, actor: &Actor, id: &InvitationId) -> Result<Invitation> {
    let auth = policy::authorize::<op::OrganizationRemoveInvitation>(actor)?;
    let me = actor.member()?.clone();
    let id = id.clone();
    let event = audit::by(actor, "invitation.cancel", st.now()).resource("invitation", id.as_str());
    st.write(&auth, move |tx| {
        let found = store::invitations::in_org(tx, &me.organization_id, &id)?;
        let mut inv = in_own_org(tx, found, "invitation", |c| {
            store::invitations::locate(c, &id)
        })?;
        if !store::invitations::settle(tx, &inv, InvitationStatus::Canceled)? {
            return Err(Error::invalid(
                Invalid::InvitationNotPending,
                "The invitation was already accepted or canceled",
            ));
        }
        inv.status = InvitationStatus::Canceled;
        tx.audit(event);
        Ok(inv)
    })
    .await
}

/// Checks that `inv` can be accepted by `email` at `now`.
fn acceptable(inv: &Invitation, email: &str, now: i64) -> Result<()> {
    if inv.status != InvitationStatus::Pending {
        return Err(Error::invalid(
            Invalid::InvitationNotPending,
            "The invitation was already used or canceled",
        ));
    }
    if inv.expires_at <= now {
        return Err(Error::invalid(
            Invalid::InvitationExpired,
            "The invitation has expired",
        ));
    }
    if !inv.email.eq_ignore_ascii_case(email) {
        return Err(Error::Denied(Reason::InvitationEmailMismatch));
    }
    Ok(())
}

/// Turns an invitation into a membership for `user`, inside the caller's transaction.
/// Records the invitation's acceptance and the new member in the audit log, by `by`.
pub fn accept_in(
    conn: &Tx,
    inv: &Invitation,
    user: &UserId,
    by: &Event,
    now: i64,
) -> Result<Membership> {
    if store::orgs::membership_of(conn, &inv.organization_id, user)?.is_some() {
        return Err(Error::conflict(
            Clash::AlreadyAMember,
            "You are already a member of this organization",
        ));
    }
    if !store::invitations::settle(conn, inv, InvitationStatus::Accepted)? {
        return Err(Error::invalid(
            Invalid::InvitationNotPending,
            "The invitation was already used or canceled",
        ));
    }
    let m = Membership {
        id: MemberId(token::new_id()),
        organization_id: inv.organization_id.clone(),
        user_id: user.clone(),
        role: inv.role,
        flags: Flags::default(),
        created_at: now,
    };
    store::orgs::insert_member(conn, &m)?;
    let org = &inv.organization_id;
    conn.audit(
        Event::new(by.who.clone(), "invitation.accept", now)
            .org(org)
            .resource("invitation", inv.id.as_str()),
    );
    conn.audit(
        Event::new(by.who.clone(), "member.add", now)
            .org(org)
            .resource("member", m.id.as_str())
            .details(serde_json::json!({ "role": m.role.as_str() })),
    );
    Ok(m)
}

/// Finds the invitation of a token and checks it for `email`, inside a transaction.
pub fn by_token_for(conn: &Reader, raw: &str, email: &str, now: i64) -> Result<Invitation> {
    let not_found = || Error::NotFound("invitation");
    if !token::looks_like_token(raw) {
        return Err(not_found());
    }
    let inv = store::invitations::by_token_hash(conn, &token::sha256(raw.as_bytes()))?
        .ok_or_else(not_found)?;
    acceptable(&inv, email, now)?;
    Ok(inv)
}

/// What identifies the invitation being accepted.
pub enum Ticket {
    Id(InvitationId),
    Token(String),
}

/// `organization.acceptInvitation`: a signed-in user whose email matches joins, and the
/// session switches to the new organization.
pub async fn accept(st: &State, actor: &Actor, ticket: Ticket) -> Result<Membership> {
    let auth = policy::authorize::<op::OrganizationAcceptInvitation>(actor)?;
    let session = policy::session_only(actor)?.clone();
    let (user, now) = (actor.user().clone(), st.now());
    let by = audit::user(&user, "invitation.accept", now);
    st.write(&auth, move |tx| {
        let inv = match ticket {
            Ticket::Token(t) => by_token_for(tx, &t, &user.email, now)?,
            Ticket::Id(id) => {
                let inv =
                    store::invitations::to_accept(tx, &id)?.ok_or(Error::NotFound("invitation"))?;
                acceptable(&inv, &user.email, now)?;
                inv
            }
        };
        let m = accept_in(tx, &inv, &user.id, &by, now)?;
        store::sessions::set_active_org(tx, &session, Some(&m.organization_id))?;
        Ok(m)
    })
    .await
}
