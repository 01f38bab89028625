use rusqlite::{Connection, Row, params};

use super::optional;
use crate::error::Result;
use crate::model::{OrgId, Page, Paging, Session, SessionId, UserId};

const COLUMNS: &str = "id, user_id, active_organization_id, created_at, updated_at, expires_at, \
                       ip_address, user_agent";

fn session(r: &Row<'_>) -> rusqlite::Result<Session> {
    Ok(Session {
        id: SessionId(r.get(0)?),
        user_id: UserId(r.get(1)?),
        active_organization_id: r.get::<_, Option<String>>(2)?.map(OrgId),
        created_at: r.get(3)?,
        updated_at: r.get(4)?,
        expires_at: r.get(5)?,
        ip_address: r.get(6)?,
        user_agent: r.get(7)?,
    })
}

pub fn insert(conn: &Connection, s: &Session, token_hash: &[u8; 32]) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO sessions (id, token_hash, user_id, active_organization_id, created_at,
                               updated_at, expires_at, ip_address, user_agent)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        s.id.as_str(),
        &token_hash[..],
        s.user_id.as_str(),
        s.active_organization_id.as_ref().map(OrgId::as_str),
        s.created_at,
        s.updated_at,
        s.expires_at,
        s.ip_address,
        s.user_agent
    ])?;
    Ok(())
}

pub fn by_token_hash(conn: &Connection, hash: &[u8; 32]) -> Result<Option<Session>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM sessions WHERE token_hash = ?1"
    ))?;
    Ok(optional(st.query_row([&hash[..]], session))?)
}

/// One page of the user's sessions that have not expired at `now`, in the order they
/// began (index `sessions_user`).
pub fn of_user(
    conn: &Connection,
    user: &UserId,
    now: i64,
    paging: Paging,
) -> Result<Page<Session>> {
    super::page(
        conn,
        "SELECT count(*) FROM sessions WHERE user_id = ?1 AND expires_at > ?2",
        &format!(
            "SELECT {COLUMNS} FROM sessions WHERE user_id = ?1 AND expires_at > ?2
             ORDER BY rowid LIMIT ?3 OFFSET ?4"
        ),
        &[&user.as_str(), &now],
        paging,
        session,
    )
}

/// Moves the expiry forward; only if nobody else already did (returns whether it did).
pub fn extend(
    conn: &Connection,
    id: &SessionId,
    seen_updated_at: i64,
    now: i64,
    expires_at: i64,
) -> Result<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE sessions SET updated_at = ?3, expires_at = ?4 WHERE id = ?1 AND updated_at = ?2",
        )?
        .execute(params![id.as_str(), seen_updated_at, now, expires_at])?;
    Ok(n == 1)
}

pub fn set_active_org(conn: &Connection, id: &SessionId, org: Option<&OrgId>) -> Result<()> {
    conn.prepare_cached("UPDATE sessions SET active_organization_id = ?2 WHERE id = ?1")?
        .execute(params![id.as_str(), org.map(OrgId::as_str)])?;
    Ok(())
}

/// Deletes one session of `user` (returns whether it existed).
pub fn delete_of_user(conn: &Connection, user: &UserId, id: &SessionId) -> Result<bool> {
    let n = conn
        .prepare_cached("DELETE FROM sessions WHERE id = ?1 AND user_id = ?2")?
        .execute(params![id.as_str(), user.as_str()])?;
    Ok(n == 1)
}

pub fn delete(conn: &Connection, id: &SessionId) -> Result<()> {
    conn.prepare_cached("DELETE FROM sessions WHERE id = ?1")?
        .execute([id.as_str()])?;
    Ok(())
}

/// Deletes every session of `user` but `keep`; returns the ids deleted.
pub fn delete_others(
    conn: &Connection,
    user: &UserId,
    keep: Option<&SessionId>,
) -> Result<Vec<SessionId>> {
    let mut st = conn
        .prepare_cached("DELETE FROM sessions WHERE user_id = ?1 AND id IS NOT ?2 RETURNING id")?;
    let rows = st.query_map(params![user.as_str(), keep.map(SessionId::as_str)], |r| {
        Ok(SessionId(r.get(0)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn delete_expired(conn: &Connection, now: i64) -> Result<usize> {
    Ok(conn
        .prepare_cached("DELETE FROM sessions WHERE expires_at <= ?1")?
        .execute([now])?)
}
