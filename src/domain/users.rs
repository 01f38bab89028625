//! The caller itself: profile, password, sessions.

use super::State;
use super::access::Actor;
use super::accounts::{self, NAME_MAX};
use super::audit;
use super::policy::{self, op};
use crate::error::{Checks, Error, Result};
use crate::model::{Name, Page, Paging, Password, Session, SessionId, User};
use crate::store;
use crate::store::audit::Event;

/// What `user.update` may change.
pub struct Update {
    pub name: Option<String>,
    pub current_password: Option<String>,
    pub password: Option<String>,
}

/// `user.update`: a new name and/or password. A password change needs the current
/// password, only works from a session, and ends the user's other sessions.
pub async fn update(st: &State, actor: &Actor, u: Update) -> Result<User> {
    let auth = policy::authorize::<op::UserUpdate>(actor)?;
    let mut c = Checks::new();
    let name = u
        .name
        .as_deref()
        .and_then(|n| c.field("name", Name::parse(n, NAME_MAX)));
    let password = u
        .password
        .as_deref()
        .and_then(|p| c.field("password", Password::parse(p)));
    if u.password.is_some() && u.current_password.as_deref().is_none_or(str::is_empty) {
        c.fail(
            "currentPassword",
            "the current password is needed to set a new one",
        );
    }
    c.finish()?;

    let mut new_hash = None;
    if let Some(p) = &password {
        let keep = policy::session_only(actor)?.clone();
        // The current password is a password guess like a sign-in: the same budget.
        let current = u.current_password.as_deref().unwrap_or_default();
        accounts::confirm_password(st, actor.user(), current).await?;
        new_hash = Some((st.hash_password(p.expose().to_owned()).await?, keep));
    }
    let (id, now) = (actor.user().id.clone(), st.now());
    let name = name.map(Name::into_string);
    let who = audit::who(actor);
    st.write(&auth, move |tx| {
        if let Some(n) = &name {
            store::users::set_name(tx, &id, n, now)?;
        }
        if let Some((hash, keep)) = &new_hash {
            store::users::set_password_hash(tx, &id, hash, now)?;
            let ended = store::sessions::delete_others(tx, &id, Some(keep))?;
            tx.audit(
                Event::new(who, "user.password_change", now)
                    .resource("user", id.as_str())
                    .details(serde_json::json!({ "sessionsEnded": ended.len() })),
            );
        }
        store::users::by_id(tx, &id)?.ok_or(Error::NotFound("user"))
    })
    .await
}

/// `user.listSessions`: one page of the caller's live sessions, in the order they began.
pub fn sessions(st: &State, actor: &Actor, paging: Paging) -> Result<Page<Session>> {
    policy::authorize::<op::UserListSessions>(actor)?;
    let now = st.now();
    st.read(|c| store::sessions::of_user(c, &actor.user().id, now, paging))
}

/// `user.revokeSession`: ends one of the caller's sessions.
pub async fn revoke_session(st: &State, actor: &Actor, id: &SessionId) -> Result<()> {
    let auth = policy::authorize::<op::UserRevokeSession>(actor)?;
    let (user, id) = (actor.user().id.clone(), id.clone());
    let event = audit::own(actor, "session.revoke", st.now()).resource("session", id.as_str());
    let gone = st
        .write(&auth, move |tx| {
            let gone = store::sessions::delete_of_user(tx, &user, &id)?;
            if gone {
                tx.audit(event);
            }
            Ok(gone)
        })
        .await?;
    if gone {
        Ok(())
    } else {
        Err(Error::NotFound("session"))
    }
}
