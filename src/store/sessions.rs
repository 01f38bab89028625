use rusqlite::{Row, params};

use super::{Reader, Stale, Tx, optional};
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

pub fn insert(conn: &Tx, s: &Session, token_hash: &[u8; 32]) -> Result<()> {
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

pub fn by_token_hash(conn: &Reader, hash: &[u8; 32]) -> Result<Option<Session>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM sessions WHERE token_hash = ?1"
    ))?;
    Ok(optional(st.query_row([&hash[..]], session))?)
}

/// One page of the user's sessions that have not expired at `now`, in the order they
/// began (index `sessions_user`).
pub fn of_user(conn: &Reader, user: &UserId, now: i64, paging: Paging) -> Result<Page<Session>> {
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

/// Records the session of a token hash a `RETURNING token_hash` gave as stale.
fn stale_session(conn: &Tx, hash: &[u8]) {
    if let Ok(h) = <[u8; 32]>::try_from(hash) {
        conn.stale(Stale::Session(h));
    }
}

/// Records the sessions of the token hashes a `RETURNING token_hash` gave as stale;
/// answers how many rows there were.
fn stale_sessions(conn: &Tx, hashes: rusqlite::Result<Vec<Vec<u8>>>) -> Result<usize> {
    let hashes = hashes?;
    for h in &hashes {
        stale_session(conn, h);
    }
    Ok(hashes.len())
}

fn hash_of(r: &Row<'_>) -> rusqlite::Result<Vec<u8>> {
    r.get(0)
}

/// Moves the expiry forward; only if nobody else already did (returns whether it did).
pub fn extend(
    conn: &Tx,
    id: &SessionId,
    seen_updated_at: i64,
    now: i64,
    expires_at: i64,
) -> Result<bool> {
    let mut st = conn.prepare_cached(
        "UPDATE sessions SET updated_at = ?3, expires_at = ?4 WHERE id = ?1 AND updated_at = ?2
         RETURNING token_hash",
    )?;
    let rows = st
        .query_map(
            params![id.as_str(), seen_updated_at, now, expires_at],
            hash_of,
        )?
        .collect();
    Ok(stale_sessions(conn, rows)? == 1)
}

pub fn set_active_org(conn: &Tx, id: &SessionId, org: Option<&OrgId>) -> Result<()> {
    let mut st = conn.prepare_cached(
        "UPDATE sessions SET active_organization_id = ?2 WHERE id = ?1 RETURNING token_hash",
    )?;
    let rows = st
        .query_map(params![id.as_str(), org.map(OrgId::as_str)], hash_of)?
        .collect();
    stale_sessions(conn, rows)?;
    Ok(())
}

/// Deletes one session of `user` (returns whether it existed).
pub fn delete_of_user(conn: &Tx, user: &UserId, id: &SessionId) -> Result<bool> {
    let mut st = conn.prepare_cached(
        "DELETE FROM sessions WHERE id = ?1 AND user_id = ?2 RETURNING token_hash",
    )?;
    let rows = st
        .query_map(params![id.as_str(), user.as_str()], hash_of)?
        .collect();
    Ok(stale_sessions(conn, rows)? == 1)
}

pub fn delete(conn: &Tx, id: &SessionId) -> Result<()> {
    let mut st = conn.prepare_cached("DELETE FROM sessions WHERE id = ?1 RETURNING token_hash")?;
    let rows = st.query_map([id.as_str()], hash_of)?.collect();
    stale_sessions(conn, rows)?;
    Ok(())
}

/// Deletes every session of `user` but `keep`; the browsers the user trusted to skip
/// two-factor's code step and the sign-ins waiting at that step go with them. Returns the
/// ids deleted.
pub fn delete_others(conn: &Tx, user: &UserId, keep: Option<&SessionId>) -> Result<Vec<SessionId>> {
    super::two_factor::forget_devices(conn, user)?;
    super::two_factor::end_challenges(conn, user)?;
    let mut st = conn.prepare_cached(
        "DELETE FROM sessions WHERE user_id = ?1 AND id IS NOT ?2 RETURNING id, token_hash",
    )?;
    let rows = st.query_map(params![user.as_str(), keep.map(SessionId::as_str)], |r| {
        Ok((SessionId(r.get(0)?), r.get::<_, Vec<u8>>(1)?))
    })?;
    let mut ids = Vec::new();
    for row in rows {
        let (id, hash) = row?;
        stale_session(conn, &hash);
        ids.push(id);
    }
    Ok(ids)
}

pub fn delete_expired(conn: &Tx, now: i64) -> Result<usize> {
    conn.stale(Stale::SessionsExpired(now));
    Ok(conn
        .prepare_cached("DELETE FROM sessions WHERE expires_at <= ?1")?
        .execute([now])?)
}
