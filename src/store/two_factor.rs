//! Two-factor sign-in: sealed TOTP secrets and the last step each accepted, backup codes,
//! the password steps that wait for a code, and trusted browsers. Every token and code is
//! kept as its SHA-256.

use rusqlite::params;

use super::{Reader, Stale, Tx, optional};
use crate::error::Result;
use crate::model::{OrgId, UserId};

/// A user's TOTP secret as stored: sealed, with the last time step accepted.
#[derive(Debug, Clone)]
pub struct Secret {
    pub sealed: Vec<u8>,
    pub last_step: Option<i64>,
}

pub fn secret(conn: &Reader, user: &UserId) -> Result<Option<Secret>> {
    super::row(
        conn,
        "SELECT secret, last_step FROM two_factors WHERE user_id = ?1",
        &[&user.as_str()],
        |r| {
            Ok(Secret {
                sealed: r.get(0)?,
                last_step: r.get(1)?,
            })
        },
    )
}

/// Stores a new secret for `user` (replacing one not yet confirmed), with no step used.
pub fn put_secret(conn: &Tx, user: &UserId, sealed: &[u8], now: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO two_factors (user_id, secret, last_step, created_at) VALUES (?1, ?2, NULL, ?3)
         ON CONFLICT (user_id) DO UPDATE SET secret = ?2, last_step = NULL, created_at = ?3",
    )?
    .execute(params![user.as_str(), sealed, now])?;
    Ok(())
}

/// Records `step` as used, only if it is later than every step used before: answers
/// whether it was. Two requests with the same code cannot both pass.
pub fn use_step(conn: &Tx, user: &UserId, step: i64) -> Result<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE two_factors SET last_step = ?2
             WHERE user_id = ?1 AND (last_step IS NULL OR last_step < ?2)",
        )?
        .execute(params![user.as_str(), step])?;
    Ok(n == 1)
}

/// Turns sign-in's code step on or off for `user`.
pub fn set_enabled(conn: &Tx, user: &UserId, on: bool, now: i64) -> Result<()> {
    conn.stale(Stale::User(user.clone()));
    conn.prepare_cached("UPDATE users SET two_factor_enabled = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![user.as_str(), on, now])?;
    Ok(())
}

/// Removes everything two-factor of `user`: secret, backup codes, pending password steps
/// and trusted browsers; sign-in asks for a password alone again.
pub fn remove_all(conn: &Tx, user: &UserId, now: i64) -> Result<()> {
    set_enabled(conn, user, false, now)?;
    for sql in [
        "DELETE FROM two_factors WHERE user_id = ?1",
        "DELETE FROM backup_codes WHERE user_id = ?1",
    ] {
        conn.prepare_cached(sql)?.execute([user.as_str()])?;
    }
    end_challenges(conn, user)?;
    forget_devices(conn, user)?;
    Ok(())
}

/// Replaces `user`'s backup codes by these hashes.
pub fn replace_backup_codes(conn: &Tx, user: &UserId, hashes: &[[u8; 32]]) -> Result<()> {
    conn.prepare_cached("DELETE FROM backup_codes WHERE user_id = ?1")?
        .execute([user.as_str()])?;
    let mut st = conn.prepare_cached(
        "INSERT OR IGNORE INTO backup_codes (user_id, code_hash, used_at) VALUES (?1, ?2, NULL)",
    )?;
    for h in hashes {
        st.execute(params![user.as_str(), &h[..]])?;
    }
    Ok(())
}

/// Marks the unused backup code of this hash as used: answers whether there was one.
pub fn use_backup_code(conn: &Tx, user: &UserId, hash: &[u8; 32], now: i64) -> Result<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE backup_codes SET used_at = ?3
             WHERE user_id = ?1 AND code_hash = ?2 AND used_at IS NULL",
        )?
        .execute(params![user.as_str(), &hash[..], now])?;
    Ok(n == 1)
}

/// How many of `user`'s backup codes are still unused.
pub fn backup_codes_left(conn: &Reader, user: &UserId) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM backup_codes WHERE user_id = ?1 AND used_at IS NULL")?
        .query_row([user.as_str()], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// A password step that waits for its code.
#[derive(Debug, Clone)]
pub struct Challenge {
    pub user_id: UserId,
    pub callback_url: Option<String>,
    pub expires_at: i64,
}

pub fn insert_challenge(
    conn: &Tx,
    hash: &[u8; 32],
    user: &UserId,
    callback_url: Option<&str>,
    now: i64,
    expires_at: i64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO two_factor_challenges (token_hash, user_id, callback_url, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![&hash[..], user.as_str(), callback_url, now, expires_at])?;
    Ok(())
}

pub fn challenge(conn: &Reader, hash: &[u8; 32]) -> Result<Option<Challenge>> {
    super::row(
        conn,
        "SELECT user_id, callback_url, expires_at FROM two_factor_challenges WHERE token_hash = ?1",
        &[&&hash[..]],
        |r| {
            Ok(Challenge {
                user_id: UserId(r.get(0)?),
                callback_url: r.get(1)?,
                expires_at: r.get(2)?,
            })
        },
    )
}

/// Ends a password step: answers whether it was still there (a step ends once).
pub fn take_challenge(conn: &Tx, hash: &[u8; 32]) -> Result<bool> {
    let n = conn
        .prepare_cached("DELETE FROM two_factor_challenges WHERE token_hash = ?1")?
        .execute([&hash[..]])?;
    Ok(n == 1)
}

/// Ends every sign-in of `user` waiting at the code step.
pub fn end_challenges(conn: &Tx, user: &UserId) -> Result<usize> {
    Ok(conn
        .prepare_cached("DELETE FROM two_factor_challenges WHERE user_id = ?1")?
        .execute([user.as_str()])?)
}

/// Remembers a browser that skips the code step until `expires_at`.
pub fn insert_device(
    conn: &Tx,
    hash: &[u8; 32],
    user: &UserId,
    now: i64,
    expires_at: i64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO trusted_devices (token_hash, user_id, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![&hash[..], user.as_str(), now, expires_at])?;
    Ok(())
}

/// Whether the browser of this token hash is trusted for `user` at `now`.
pub fn device_trusted(conn: &Reader, hash: &[u8; 32], user: &UserId, now: i64) -> Result<bool> {
    let mut st = conn.prepare_cached(
        "SELECT 1 FROM trusted_devices WHERE token_hash = ?1 AND user_id = ?2 AND expires_at > ?3",
    )?;
    Ok(optional(st.query_row(params![&hash[..], user.as_str(), now], |_| Ok(())))?.is_some())
}

/// Forgets every browser `user` trusted; answers how many there were.
pub fn forget_devices(conn: &Tx, user: &UserId) -> Result<usize> {
    Ok(conn
        .prepare_cached("DELETE FROM trusted_devices WHERE user_id = ?1")?
        .execute([user.as_str()])?)
}

/// Deletes password steps and trusted browsers whose time ran out.
pub fn delete_expired(conn: &Tx, now: i64) -> Result<usize> {
    let mut n = 0;
    for sql in [
        "DELETE FROM two_factor_challenges WHERE expires_at <= ?1",
        "DELETE FROM trusted_devices WHERE expires_at <= ?1",
    ] {
        n += conn.prepare_cached(sql)?.execute([now])?;
    }
    Ok(n)
}

/// Makes organization `org` require two-factor of its members' sessions, or not. Every
/// credential acting in it goes stale, and forward auth's routes carry the demand.
pub fn set_required(conn: &Tx, org: &OrgId, on: bool) -> Result<()> {
    conn.stale(Stale::Org(org.clone()));
    conn.stale(Stale::Domains);
    conn.prepare_cached("UPDATE organizations SET require_two_factor = ?2 WHERE id = ?1")?
        .execute(params![org.as_str(), on])?;
    Ok(())
}

/// Whether organization `org` requires two-factor of its members' sessions.
pub fn required(conn: &Reader, org: &OrgId) -> Result<bool> {
    let mut st =
        conn.prepare_cached("SELECT require_two_factor FROM organizations WHERE id = ?1")?;
    Ok(optional(st.query_row([org.as_str()], |r| r.get::<_, bool>(0)))?.unwrap_or(false))
}

/// One sealed secret and its user, if any user has set two-factor up: enough to tell at
/// start whether the key opens the database's secrets.
pub fn any_secret(conn: &Reader) -> Result<Option<(UserId, Vec<u8>)>> {
    let mut st = conn.prepare_cached("SELECT user_id, secret FROM two_factors LIMIT 1")?;
    Ok(optional(
        st.query_row([], |r| Ok((UserId(r.get(0)?), r.get(1)?))),
    )?)
}
