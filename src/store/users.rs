use rusqlite::{Row, params};

use super::{Reader, Stale, Tx, optional};
use crate::error::Result;
use crate::model::{User, UserId};

const COLUMNS: &str = "id, name, email, created_at, updated_at, two_factor_enabled";

fn user(r: &Row<'_>) -> rusqlite::Result<User> {
    user_at(r, 0)
}

/// A user read from `COLUMNS` starting at column `at`.
pub(crate) fn user_at(r: &Row<'_>, at: usize) -> rusqlite::Result<User> {
    Ok(User {
        id: UserId(r.get(at)?),
        name: r.get(at + 1)?,
        email: r.get(at + 2)?,
        created_at: r.get(at + 3)?,
        updated_at: r.get(at + 4)?,
        two_factor_enabled: r.get(at + 5)?,
    })
}

pub fn insert(conn: &Tx, u: &User, password_hash: &str) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO users (id, name, email, password_hash, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        u.id.as_str(),
        u.name,
        u.email,
        password_hash,
        u.created_at,
        u.updated_at
    ])?;
    Ok(())
}

pub fn by_id(conn: &Reader, id: &UserId) -> Result<Option<User>> {
    let mut st = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM users WHERE id = ?1"))?;
    Ok(optional(st.query_row([id.as_str()], user))?)
}

pub fn by_email(conn: &Reader, email: &str) -> Result<Option<User>> {
    let mut st = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM users WHERE email = ?1"))?;
    Ok(optional(st.query_row([email], user))?)
}

/// The user and their password hash, for sign-in.
pub fn with_hash_by_email(conn: &Reader, email: &str) -> Result<Option<(User, String)>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS}, password_hash FROM users WHERE email = ?1"
    ))?;
    Ok(optional(
        st.query_row([email], |r| Ok((user(r)?, r.get(6)?))),
    )?)
}

pub fn password_hash(conn: &Reader, id: &UserId) -> Result<Option<String>> {
    let mut st = conn.prepare_cached("SELECT password_hash FROM users WHERE id = ?1")?;
    Ok(optional(st.query_row([id.as_str()], |r| r.get(0)))?)
}

/// Names the user one of the installation's administrators, who create accounts
/// outright.
pub fn make_installation_admin(conn: &Tx, id: &UserId) -> Result<()> {
    conn.stale(Stale::User(id.clone()));
    conn.prepare_cached("UPDATE users SET installation_admin = 1 WHERE id = ?1")?
        .execute([id.as_str()])?;
    Ok(())
}

pub fn is_installation_admin(conn: &Reader, id: &UserId) -> Result<bool> {
    let mut st = conn.prepare_cached("SELECT installation_admin FROM users WHERE id = ?1")?;
    Ok(optional(st.query_row([id.as_str()], |r| r.get::<_, bool>(0)))?.unwrap_or(false))
}

pub fn count(conn: &Reader) -> Result<i64> {
    Ok(conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?)
}

pub fn set_name(conn: &Tx, id: &UserId, name: &str, now: i64) -> Result<()> {
    conn.stale(Stale::User(id.clone()));
    conn.prepare_cached("UPDATE users SET name = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![id.as_str(), name, now])?;
    Ok(())
}

pub fn set_password_hash(conn: &Tx, id: &UserId, hash: &str, now: i64) -> Result<()> {
    conn.stale(Stale::User(id.clone()));
    conn.prepare_cached("UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![id.as_str(), hash, now])?;
    Ok(())
}
