use rusqlite::{Row, params};

use super::{Reader, Tx, optional};
use crate::error::Result;
use crate::model::{Invitation, InvitationId, InvitationStatus, OrgId, Page, Paging, Role, UserId};

const COLUMNS: &str =
    "id, organization_id, email, role, status, inviter_id, created_at, expires_at";

fn invitation(r: &Row<'_>) -> rusqlite::Result<Invitation> {
    let role: String = r.get(3)?;
    let status: String = r.get(4)?;
    Ok(Invitation {
        id: InvitationId(r.get(0)?),
        organization_id: OrgId(r.get(1)?),
        email: r.get(2)?,
        role: Role::parse(&role).unwrap_or(Role::Member),
        status: InvitationStatus::parse(&status).unwrap_or(InvitationStatus::Canceled),
        inviter_id: UserId(r.get(5)?),
        created_at: r.get(6)?,
        expires_at: r.get(7)?,
    })
}

pub fn insert(conn: &Tx, i: &Invitation, token_hash: &[u8; 32]) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO invitations (id, organization_id, email, role, token_hash, status,
                                  inviter_id, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        i.id.as_str(),
        i.organization_id.as_str(),
        i.email,
        i.role.as_str(),
        &token_hash[..],
        i.status.as_str(),
        i.inviter_id.as_str(),
        i.created_at,
        i.expires_at
    ])?;
    Ok(())
}

/// Invitation `id` of `org`.
pub fn in_org(conn: &Reader, org: &OrgId, id: &InvitationId) -> Result<Option<Invitation>> {
    super::row(
        conn,
        &format!("SELECT {COLUMNS} FROM invitations WHERE id = ?1 AND organization_id = ?2"),
        &[&id.as_str(), &org.as_str()],
        invitation,
    )
}

/// The organization of invitation `id`, whichever it is: only to tell "does not exist"
/// (404) from "belongs to another organization" (401).
pub fn locate(conn: &Reader, id: &InvitationId) -> Result<Option<OrgId>> {
    super::row(
        conn,
        "SELECT organization_id FROM invitations WHERE id = ?1",
        &[&id.as_str()],
        |r| Ok(OrgId(r.get(0)?)),
    )
}

/// Invitation `id`, in whichever organization it invites to: for the person accepting
/// it, who is not a member there yet, like `by_token_hash`. What scopes it is the
/// invitee's email, which the caller checks against the row (and only after its status
/// and expiry, which it answers for first).
pub fn to_accept(conn: &Reader, id: &InvitationId) -> Result<Option<Invitation>> {
    super::row(
        conn,
        &format!("SELECT {COLUMNS} FROM invitations WHERE id = ?1"),
        &[&id.as_str()],
        invitation,
    )
}

pub fn by_token_hash(conn: &Reader, hash: &[u8; 32]) -> Result<Option<Invitation>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM invitations WHERE token_hash = ?1"
    ))?;
    Ok(optional(st.query_row([&hash[..]], invitation))?)
}

/// One page of the organization's invitations, in the order they were sent (index
/// `invitations_organization`).
pub fn of_org(conn: &Reader, org: &OrgId, paging: Paging) -> Result<Page<Invitation>> {
    super::page(
        conn,
        "SELECT count(*) FROM invitations WHERE organization_id = ?1",
        &format!(
            "SELECT {COLUMNS} FROM invitations WHERE organization_id = ?1
             ORDER BY rowid LIMIT ?2 OFFSET ?3"
        ),
        &[&org.as_str()],
        paging,
        invitation,
    )
}

/// Whether `email` has a pending invitation to `org` that has not expired at `now`.
pub fn pending_exists(conn: &Reader, org: &OrgId, email: &str, now: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM invitations WHERE organization_id = ?1 AND email = ?2
             AND status = 'pending' AND expires_at > ?3",
        )?
        .exists(params![org.as_str(), email, now])?)
}

/// Moves a pending invitation to `status`; false when it was no longer pending.
pub fn settle(conn: &Tx, inv: &Invitation, status: InvitationStatus) -> Result<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE invitations SET status = ?3
             WHERE id = ?1 AND organization_id = ?2 AND status = 'pending'",
        )?
        .execute(params![
            inv.id.as_str(),
            inv.organization_id.as_str(),
            status.as_str()
        ])?;
    Ok(n == 1)
}
