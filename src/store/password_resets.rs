//! Password-reset links, by the SHA-256 of their token.

use rusqlite::params;

use super::{Reader, Tx, optional};
use crate::error::Result;
use crate::model::UserId;

/// Stores a new link for `user`, made by `created_by`.
pub fn insert(
    conn: &Tx,
    token_hash: &[u8; 32],
    user: &UserId,
    created_by: &UserId,
    now: i64,
    expires_at: i64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO password_resets (token_hash, user_id, created_by, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        &token_hash[..],
        user.as_str(),
        created_by.as_str(),
        now,
        expires_at
    ])?;
    Ok(())
}

/// The user of the link of `token_hash` if it is unused and has not expired at `now`.
pub fn usable(conn: &Reader, token_hash: &[u8; 32], now: i64) -> Result<Option<UserId>> {
    super::row(
        conn,
        "SELECT user_id FROM password_resets
         WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2",
        &[&&token_hash[..], &now],
        |r| Ok(UserId(r.get(0)?)),
    )
}

/// Marks the link of `token_hash` used at `now`, if it was still usable then; answers its
/// user.
pub fn consume(conn: &Tx, token_hash: &[u8; 32], now: i64) -> Result<Option<UserId>> {
    let mut st = conn.prepare_cached(
        "UPDATE password_resets SET used_at = ?2
         WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2
         RETURNING user_id",
    )?;
    Ok(optional(
        st.query_row(params![&token_hash[..], now], |r| Ok(UserId(r.get(0)?))),
    )?)
}

/// Deletes the user's links that were never used (index `password_resets_user`); answers
/// how many there were.
pub fn cancel_unused(conn: &Tx, user: &UserId) -> Result<usize> {
    Ok(conn
        .prepare_cached("DELETE FROM password_resets WHERE user_id = ?1 AND used_at IS NULL")?
        .execute([user.as_str()])?)
}

/// Deletes the links whose hour is over, used or not (index `password_resets_expiry`): a
/// used link is kept no longer than an unused one would have worked.
pub fn delete_expired(conn: &Tx, now: i64) -> Result<usize> {
    Ok(conn
        .prepare_cached("DELETE FROM password_resets WHERE expires_at <= ?1")?
        .execute([now])?)
}

/// Deletes the unused links for `user` and those `user` made: its memberships or roles
/// changed, so who may reset whose password may have changed too, and a link was checked
/// only when it was made.
pub fn cancel_around(conn: &Tx, user: &UserId) -> Result<usize> {
    Ok(conn
        .prepare_cached(
            "DELETE FROM password_resets
             WHERE used_at IS NULL AND (user_id = ?1 OR created_by = ?1)",
        )?
        .execute([user.as_str()])?)
}
