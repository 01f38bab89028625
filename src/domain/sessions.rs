//! Sessions: created at sign-in, found by the SHA-256 of their token, extended at most
//! once per update age, deleted when expired or signed out.

use std::sync::Arc;

use super::access::load_principal;
use super::cache::{CachedSession, Principal, ViewSlot};
use super::policy::{self, op};
use super::{Client, State};
use crate::auth::token;
use crate::error::{Error, Reason, Result};
use crate::model::{OrgId, Session, SessionId, UserId};
use crate::store::{self, Reader, Tx};

/// A new session and the token the client must keep (shown once).
pub struct Issued {
    pub session: Session,
    pub token: String,
}

/// Creates a session inside the caller's transaction.
pub fn create_in(
    conn: &Tx,
    user: &UserId,
    active_org: Option<OrgId>,
    client: &Client,
    now: i64,
    ttl_ms: i64,
) -> Result<Issued> {
    let token = token::new_token();
    let session = Session {
        id: SessionId(token::new_id()),
        user_id: user.clone(),
        active_organization_id: active_org,
        created_at: now,
        updated_at: now,
        expires_at: now + ttl_ms,
        ip_address: client.address.clone(),
        user_agent: client.user_agent.as_deref().map(|ua| truncate(ua, 512)),
    };
    store::sessions::insert(conn, &session, &token::sha256(token.as_bytes()))?;
    Ok(Issued { session, token })
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// A session that authenticated a request.
#[derive(Debug, Clone)]
pub struct Current {
    pub cached: Arc<CachedSession>,
    /// The expiry moved forward on this request: the cookie must be sent again.
    pub extended: bool,
}

/// Finds the session of `token`, deleting it when expired and extending it when the last
/// extension is older than the update age. Answers from the cache when it can.
pub async fn authenticate(st: &State, token: &str) -> Result<Current> {
    if !token::looks_like_token(token) {
        return Err(Error::Denied(Reason::InvalidSession));
    }
    let hash = token::sha256(token.as_bytes());
    let now = st.now();
    let cached = match st.cache.session(&hash) {
        Ok(c) => c,
        Err(generation) => {
            let loaded = st.read(|c| {
                let Some(s) = store::sessions::by_token_hash(c, &hash)? else {
                    return Ok(None);
                };
                let Some(user) = store::users::by_id(c, &s.user_id)? else {
                    return Ok(None);
                };
                let principal = load_principal(c, user, s.active_organization_id.as_ref())?;
                let two_factor_blocked = two_factor_blocks(c, &principal)?;
                Ok(Some(CachedSession {
                    session: s,
                    principal: Arc::new(principal),
                    view: ViewSlot::default(),
                    two_factor_blocked,
                }))
            })?;
            let Some(loaded) = loaded else {
                return Err(Error::Denied(Reason::InvalidSession));
            };
            let loaded = Arc::new(loaded);
            st.cache.put_session(hash, generation, Arc::clone(&loaded));
            loaded
        }
    };
    let session = &cached.session;
    if session.expires_at <= now {
        let id = session.id.clone();
        st.write(&policy::unchecked::<op::SessionUpkeep>(), move |tx| {
            store::sessions::delete(tx, &id)
        })
        .await?;
        return Err(Error::Denied(Reason::SessionExpired));
    }
    if now - session.updated_at <= st.config.session_update_age_ms {
        return Ok(Current {
            cached,
            extended: false,
        });
    }
    let expires_at = now + st.config.session_ttl_ms;
    let (id, seen) = (session.id.clone(), session.updated_at);
    // Two requests may race here; the one whose UPDATE lands re-issues the cookie, the
    // other sees the new expiry on its next request.
    let extended = st
        .write(&policy::unchecked::<op::SessionUpkeep>(), move |tx| {
            store::sessions::extend(tx, &id, seen, now, expires_at)
        })
        .await?;
    if !extended {
        return Ok(Current {
            cached,
            extended: false,
        });
    }
    let mut updated = cached.session.clone();
    updated.updated_at = now;
    updated.expires_at = expires_at;
    Ok(Current {
        cached: Arc::new(CachedSession {
            session: updated,
            principal: Arc::clone(&cached.principal),
            view: ViewSlot::default(),
            two_factor_blocked: cached.two_factor_blocked,
        }),
        extended: true,
    })
}

/// Whether a session of `p` must turn two-factor on before it acts in its organization:
/// the organization requires it and the user has not.
pub fn two_factor_blocks(c: &Reader, p: &Principal) -> Result<bool> {
    match &p.membership {
        Ok(m) if !p.user.two_factor_enabled => store::two_factor::required(c, &m.organization_id),
        _ => Ok(false),
    }
}

/// Deletes the session of `token`, if there is one.
pub async fn sign_out(st: &State, token: &str) -> Result<()> {
    if !token::looks_like_token(token) {
        return Ok(());
    }
    let (hash, now) = (token::sha256(token.as_bytes()), st.now());
    st.write(&policy::unchecked::<op::SignOut>(), move |tx| {
        if let Some(s) = store::sessions::by_token_hash(tx, &hash)? {
            store::sessions::delete(tx, &s.id)?;
            if let Some(u) = store::users::by_id(tx, &s.user_id)? {
                tx.audit(
                    super::audit::user(&u, "session.sign_out", now)
                        .resource("session", s.id.as_str()),
                );
            }
        }
        Ok(())
    })
    .await
}

/// Deletes every expired session, and the two-factor password steps, browser trusts and
/// password-reset links whose time ran out; run from time to time by the server.
pub async fn purge_expired(st: &State) -> Result<usize> {
    let now = st.now();
    st.write(&policy::unchecked::<op::SessionUpkeep>(), move |tx| {
        Ok(store::sessions::delete_expired(tx, now)?
            + store::two_factor::delete_expired(tx, now)?
            + store::password_resets::delete_expired(tx, now)?)
    })
    .await
}
