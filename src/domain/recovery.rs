//! Getting an account back: a password-reset link that an owner or admin makes for a
//! member (one use, within an hour), and `keygate user set-password` from the shell.
//! Either way the account is signed out everywhere.

use super::State;
use super::access::Actor;
use super::audit;
use super::members::{managed_target, outranks};
use super::policy::{self, op};
use crate::auth::password::Hasher;
use crate::auth::token;
use crate::clock::HOUR;
use crate::error::{Checks, Error, Invalid, Reason, Result, field};
use crate::model::{Password, User, UserId};
use crate::store::{self, Reader, Tx};

/// How long a reset link works.
pub const TTL_MS: i64 = HOUR;

/// A new reset link's secret (shown once) and when it stops working.
pub struct Issued {
    pub token: String,
    pub expires_at: i64,
}

/// What a password set for someone ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedOut {
    pub sessions: usize,
    pub trusted_devices: usize,
}

/// `user.createPasswordReset`: an owner or admin of the acting organization makes a
/// reset link for a member it may manage there. A new link cancels the user's earlier
/// unused ones.
pub async fn create(st: &State, actor: &Actor, user: &UserId) -> Result<Issued> {
    let auth = policy::authorize::<op::UserCreatePasswordReset>(actor)?;
    let me = actor.member()?.clone();
    if *user == actor.user().id {
        let mut c = Checks::new();
        c.fail(
            "userId",
            "a reset link is for someone else; change your own password with user.update",
        );
        c.finish()?;
    }
    let by = actor.user().id.clone();
    let token = token::new_token();
    let hash = token::sha256(token.as_bytes());
    let now = st.now();
    let expires_at = now + TTL_MS;
    let target = user.clone();
    let event = audit::by(actor, "user.password_reset_link", now)
        .resource("user", user.as_str())
        .details(serde_json::json!({ "expiresAt": crate::clock::rfc3339(expires_at) }));
    st.write(&auth, move |tx| {
        let target = managed_target(tx, &me, &target)?;
        may_take_over(tx, &by, &target.user_id)?;
        store::password_resets::cancel_unused(tx, &target.user_id)?;
        store::password_resets::insert(tx, &hash, &target.user_id, &by, now, expires_at)?;
        tx.audit(event.subject(&target.user_id));
        Ok(())
    })
    .await?;
    Ok(Issued { token, expires_at })
}

/// A link takes over the whole account, in every organization it belongs to, not only
/// the one the link was made in: `by` must be able to manage `user` in each of them
/// (otherwise an admin here could take over the owner of another organization), and
/// only an installation administrator takes over another one.
fn may_take_over(conn: &Reader, by: &UserId, user: &UserId) -> Result<()> {
    let denied = || Error::Denied(Reason::PermissionDenied);
    for (_, theirs, ours) in store::orgs::roles_beside(conn, user, by)? {
        if !ours.is_some_and(|ours| outranks(ours, theirs)) {
            return Err(denied());
        }
    }
    if store::users::is_installation_admin(conn, user)?
        && !store::users::is_installation_admin(conn, by)?
    {
        return Err(denied());
    }
    Ok(())
}

fn invalid_token() -> Error {
    Error::invalid(
        Invalid::InvalidResetToken,
        "The password-reset link is invalid, used or expired; ask for a new one",
    )
}

/// `auth.resetPassword`: sets the password of the link's user, uses the link up and signs
/// the user out everywhere. The link is checked before the password is hashed (no hash
/// is spent on a guess) and again when it is used up, in the same unit of work.
pub async fn reset(st: &State, raw_token: &str, new_password: &str) -> Result<()> {
    let password = field("newPassword", Password::parse(new_password))?;
    if !token::looks_like_token(raw_token) {
        return Err(invalid_token());
    }
    let hash = token::sha256(raw_token.as_bytes());
    let now = st.now();
    st.read(|c| store::password_resets::usable(c, &hash, now))?
        .ok_or_else(invalid_token)?;
    let new_hash = st.hash_password(password.expose().to_owned()).await?;
    let now = st.now();
    st.write(&policy::unchecked::<op::ResetPassword>(), move |tx| {
        let user = store::password_resets::consume(tx, &hash, now)?.ok_or_else(invalid_token)?;
        let out = set_in(tx, &user, &new_hash, now)?;
        if let Some(u) = store::users::by_id(tx, &user)? {
            tx.audit(
                audit::user(&u, "user.password_reset", now)
                    .resource("user", user.as_str())
                    .details(signed_out_details(&out)),
            );
        }
        Ok(())
    })
    .await
}

/// Sets the password hash of `user`, cancels its unused reset links, ends every session
/// and forgets every browser it trusted: whoever held the account before holds nothing
/// of it now.
fn set_in(tx: &Tx, user: &UserId, hash: &str, now: i64) -> Result<SignedOut> {
    store::users::set_password_hash(tx, user, hash, now)?;
    store::password_resets::cancel_unused(tx, user)?;
    // Counted first: ending the sessions forgets the trusted browsers too.
    let trusted_devices = store::two_factor::forget_devices(tx, user)?;
    Ok(SignedOut {
        sessions: store::sessions::delete_others(tx, user, None)?.len(),
        trusted_devices,
    })
}

/// What `keygate user set-password` did.
#[derive(Debug)]
pub struct PasswordSet {
    pub user: User,
    pub signed_out: SignedOut,
}

/// `keygate user set-password`: sets the password of the user of `email` from the shell
/// and signs it out everywhere. 404 `user` for an unknown email.
pub fn set_password_blocking(st: &State, email: &str, password: &str) -> Result<PasswordSet> {
    let password = field("password", Password::parse(password))?;
    let email = email.trim().to_lowercase();
    let user = st
        .read(|c| store::users::by_email(c, &email))?
        .ok_or(Error::NotFound("user"))?;
    let hash = Hasher::new(st.config.argon2_m_kib).hash(password.expose());
    let now = st.now();
    st.write_blocking(&policy::unchecked::<op::Shell>(), |tx| {
        let signed_out = set_in(tx, &user.id, &hash, now)?;
        tx.audit(
            audit::shell("user.password_set", now)
                .subject(&user.id)
                .resource("user", user.id.as_str())
                .details(signed_out_details(&signed_out)),
        );
        Ok(PasswordSet { user, signed_out })
    })
}

/// What the log says of a password set for someone: what it ended.
fn signed_out_details(s: &SignedOut) -> serde_json::Value {
    serde_json::json!({
        "sessionsEnded": s.sessions,
        "trustedDevicesForgotten": s.trusted_devices,
    })
}
