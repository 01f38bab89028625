//! Two-factor sign-in: TOTP codes (RFC 6238) with ten single-use backup codes, set up and
//! changed by a signed-in user who gives the password again, and asked for by sign-in
//! after the password. Every code is accepted once: a TOTP code's time step must be later
//! than the last one used. Guesses count against the user's and the address's budgets.

use super::access::Actor;
use super::accounts::{self, Attempt};
use super::audit;
use super::policy::{self, op};
use super::sessions::{self, Issued};
use super::{Client, State};
use crate::auth::{token, totp};
use crate::clock::{DAY, MINUTE};
use crate::error::{Clash, Error, Invalid, Reason, Result};
use crate::model::{User, UserId};
use crate::store::{self, Tx};

/// How long the password step of a sign-in waits for its code.
pub const CHALLENGE_TTL_MS: i64 = 3 * MINUTE;
/// How long a browser trusted at sign-in skips the code step.
pub const DEVICE_TTL_MS: i64 = 30 * DAY;

/// The most characters of the email an `otpauth://` URI names the account with.
const ACCOUNT_LABEL_MAX: usize = 64;

/// What a user needs to set up an authenticator, shown once.
pub struct Setup {
    pub totp_uri: String,
    pub backup_codes: Vec<String>,
}

/// What a backup code is stored as: the SHA-256 of the user's id and the code, so that
/// equal codes of two users differ.
fn backup_hash(user: &UserId, code: &str) -> [u8; 32] {
    token::sha256(format!("{user}:{code}").as_bytes())
}

fn new_backup_codes(user: &UserId) -> (Vec<String>, Vec<[u8; 32]>) {
    let codes: Vec<String> = (0..totp::BACKUP_CODES)
        .map(|_| totp::new_backup_code())
        .collect();
    let hashes = codes.iter().map(|c| backup_hash(user, c)).collect();
    (codes, hashes)
}

fn not_enabled() -> Error {
    Error::invalid(
        Invalid::TwoFactorNotEnabled,
        "Two-factor is not set up for this account",
    )
}

fn wrong_code() -> Error {
    Error::Denied(Reason::InvalidTwoFactorCode)
}

/// The `otpauth://` URI of `secret` for `user`.
fn uri_of(st: &State, user: &User, secret: &[u8]) -> Result<String> {
    // The label only names the account in the app; cut short, a long email (up to 254
    // characters, each up to 12 once percent-encoded) still fits a QR code.
    let account: String = user.email.chars().take(ACCOUNT_LABEL_MAX).collect();
    totp::uri(secret, &st.config.totp_issuer, &account)
        .ok_or_else(|| Error::internal("cannot make the otpauth URI"))
}

/// `user`'s TOTP secret, unsealed; `None` when two-factor was never set up.
fn secret_of(
    st: &State,
    c: &store::Reader,
    user: &UserId,
) -> Result<Option<(Vec<u8>, Option<i64>)>> {
    let Some(s) = store::two_factor::secret(c, user)? else {
        return Ok(None);
    };
    let plain = st
        .seal_key()?
        .open(&s.sealed, user.as_str())
        .ok_or_else(|| {
            Error::internal(
                "a TOTP secret does not open with the server's key: was the key file replaced?",
            )
        })?;
    Ok(Some((plain, s.last_step)))
}

/// The time step `code` matches now for `secret`.
fn step_of(st: &State, secret: &[u8], code: &str) -> Option<i64> {
    let secs = u64::try_from(st.now() / 1000).unwrap_or(0);
    totp::check(secret, code, secs).and_then(|s| i64::try_from(s).ok())
}

/// Reads (or makes) the key that seals TOTP secrets, at the server's start: a file that
/// cannot be read or made, a missing file while users have secrets, and a key that does
/// not open them stop the server there, with what to do, rather than failing sign-ins
/// later. A new key is made only for a database without secrets.
pub fn check_key(st: &State) -> std::result::Result<(), String> {
    let text = |e: Error| match e {
        Error::Internal(cause) => cause,
        other => other.to_string(),
    };
    let file = st.config.secret_key_file.display().to_string();
    let sample = st.read(store::two_factor::any_secret).map_err(text)?;
    if sample.is_some() && !st.config.secret_key_file.exists() {
        return Err(format!(
            "the database holds two-factor secrets, but their key {file} is missing: restore \
             it from your backup (or point --secret-key-file at it); without it, run `keygate \
             user reset-2fa` for each user who has two-factor"
        ));
    }
    let key = st.seal_key().map_err(text)?;
    if let Some((user, sealed)) = sample
        && key.open(&sealed, user.as_str()).is_none()
    {
        return Err(format!(
            "the key in {file} does not open the database's two-factor secrets: is it the \
             key of another installation?"
        ));
    }
    Ok(())
}

/// The signed-in user of a session; keys are refused (two-factor guards people).
fn session_user(actor: &Actor) -> Result<&User> {
    policy::session_only(actor)?;
    Ok(actor.user())
}

/// `two-factor/enable`: a new secret and backup codes. Two-factor turns on only with the
/// first correct code (`confirm`); until then sign-in asks for the password alone, and
/// enabling again replaces the secret. 409 `two_factor_enabled` when it is already on.
pub async fn enable(st: &State, actor: &Actor, password: &str) -> Result<Setup> {
    let user = session_user(actor)?.clone();
    if user.two_factor_enabled {
        return Err(already_on());
    }
    accounts::confirm_password(st, &user, password).await?;
    let secret = totp::new_secret();
    let sealed = st.seal_key()?.seal(&secret, user.id.as_str());
    let (codes, hashes) = new_backup_codes(&user.id);
    let (id, now) = (user.id.clone(), st.now());
    st.write(&policy::unchecked::<op::TwoFactor>(), move |tx| {
        if store::users::by_id(tx, &id)?.is_some_and(|u| u.two_factor_enabled) {
            return Err(already_on());
        }
        store::two_factor::put_secret(tx, &id, &sealed, now)?;
        store::two_factor::replace_backup_codes(tx, &id, &hashes)
    })
    .await?;
    Ok(Setup {
        totp_uri: uri_of(st, &user, &secret)?,
        backup_codes: codes,
    })
}

fn already_on() -> Error {
    Error::conflict(
        Clash::TwoFactorEnabled,
        "Two-factor is already on: disable it before setting it up again",
    )
}

/// `two-factor/get-totp-uri`: the URI of the secret again, for another authenticator.
pub async fn totp_uri(st: &State, actor: &Actor, password: &str) -> Result<String> {
    let user = session_user(actor)?;
    accounts::confirm_password(st, user, password).await?;
    let (secret, _) = st
        .read(|c| secret_of(st, c, &user.id))?
        .ok_or_else(not_enabled)?;
    uri_of(st, user, &secret)
}

/// `two-factor/generate-backup-codes`: ten new codes; the old ones stop working.
pub async fn new_codes(st: &State, actor: &Actor, password: &str) -> Result<Vec<String>> {
    let user = session_user(actor)?;
    if !user.two_factor_enabled {
        return Err(not_enabled());
    }
    accounts::confirm_password(st, user, password).await?;
    let (codes, hashes) = new_backup_codes(&user.id);
    let id = user.id.clone();
    let event = audit::user(user, "two_factor.backup_codes", st.now());
    st.write(&policy::unchecked::<op::TwoFactor>(), move |tx| {
        if !store::users::by_id(tx, &id)?.is_some_and(|u| u.two_factor_enabled) {
            return Err(not_enabled());
        }
        store::two_factor::replace_backup_codes(tx, &id, &hashes)?;
        tx.audit(event);
        Ok(())
    })
    .await?;
    Ok(codes)
}

/// `two-factor/disable`: sign-in asks for the password alone again; the secret, backup
/// codes and trusted browsers are gone.
pub async fn disable(st: &State, actor: &Actor, password: &str) -> Result<()> {
    let user = session_user(actor)?;
    accounts::confirm_password(st, user, password).await?;
    let (id, now) = (user.id.clone(), st.now());
    let event = audit::user(user, "two_factor.disable", now);
    st.write(&policy::unchecked::<op::TwoFactor>(), move |tx| {
        let on = store::users::by_id(tx, &id)?.is_some_and(|u| u.two_factor_enabled);
        if !on && store::two_factor::secret(tx, &id)?.is_none() {
            return Err(not_enabled());
        }
        store::two_factor::remove_all(tx, &id, now)?;
        if on {
            tx.audit(event);
        }
        Ok(())
    })
    .await
}

/// Turns two-factor off for the user of `email` and signs out all of the user's
/// sessions: for an operator at the shell, when a user lost the authenticator and the
/// backup codes. Answers the user.
pub fn reset_blocking(st: &State, email: &str) -> Result<User> {
    let email = email.trim().to_lowercase();
    let now = st.now();
    st.write_blocking(&policy::unchecked::<op::Shell>(), |tx| {
        let user = store::users::by_email(tx, &email)?.ok_or(Error::NotFound("user"))?;
        store::two_factor::remove_all(tx, &user.id, now)?;
        let ended = store::sessions::delete_others(tx, &user.id, None)?;
        tx.audit(
            audit::shell("two_factor.reset", now)
                .subject(&user.id)
                .resource("user", user.id.as_str())
                .details(serde_json::json!({
                    "email": user.email,
                    "sessionsEnded": ended.len(),
                })),
        );
        store::users::by_id(tx, &user.id)?.ok_or(Error::NotFound("user"))
    })
}

/// Runs a guess at `user`'s second factor: `check` gets the unit of work and answers
/// `wrong_code()` for a wrong guess. Only wrong guesses count against the budgets.
/// A wrong code, and a refused one, are counted for the audit log as refusals of
/// `action` for the user.
async fn guess<T: Send + 'static>(
    st: &State,
    action: &'static str,
    user: &User,
    client: &Client,
    check: impl FnOnce(&Tx) -> Result<T> + Send + 'static,
) -> Result<T> {
    let attempt = Attempt::two_factor(st, &user.id, client.address.as_deref()).await;
    let result = match attempt {
        Ok(mut attempt) => match st.write(&policy::unchecked::<op::TwoFactor>(), check).await {
            Ok(v) => {
                attempt.succeeded();
                Ok(v)
            }
            Err(e @ Error::Denied(Reason::InvalidTwoFactorCode)) => Err(e),
            Err(e) => Err(attempt.not_evaluated(e)),
        },
        Err(e) => Err(e),
    };
    let failed = match &result {
        Err(Error::Denied(r @ Reason::InvalidTwoFactorCode)) => Some(r.as_str()),
        Err(Error::Throttled(t, _)) => Some(t.as_str()),
        _ => None,
    };
    if let Some(reason) = failed {
        st.refusals
            .refused(action, &user.email, Some(&user.id), reason, st.now());
    }
    if let Err(Error::Throttled(..)) = &result {
        accounts::refusal_delay(st).await;
    }
    result
}

/// `two-factor/verify-totp` from a session: the first correct code after `enable` turns
/// two-factor on, and ends the user's other sessions (made with the password alone, they
/// must not pass for sessions with a second factor); later codes are only checked.
/// Answers the user as it now is.
pub async fn confirm(st: &State, actor: &Actor, code: &str, client: &Client) -> Result<User> {
    let keep = policy::session_only(actor)?.clone();
    let user = actor.user().clone();
    let (secret, _) = st
        .read(|c| secret_of(st, c, &user.id))?
        .ok_or_else(not_enabled)?;
    let step = step_of(st, &secret, code);
    let (id, now) = (user.id.clone(), st.now());
    let event = audit::user(&user, "two_factor.enable", now);
    guess(st, "two_factor.enable_failed", &user, client, move |tx| {
        let step = step.ok_or_else(wrong_code)?;
        if !store::two_factor::use_step(tx, &id, step)? {
            return Err(wrong_code());
        }
        let mut u = store::users::by_id(tx, &id)?.ok_or(Error::NotFound("user"))?;
        if !u.two_factor_enabled {
            store::two_factor::set_enabled(tx, &id, true, now)?;
            let ended = store::sessions::delete_others(tx, &id, Some(&keep))?;
            tx.audit(event.details(serde_json::json!({ "sessionsEnded": ended.len() })));
            (u.two_factor_enabled, u.updated_at) = (true, now);
        }
        Ok(u)
    })
    .await
}

/// What proves the second factor at sign-in.
#[derive(Debug, Clone, Copy)]
pub enum Proof<'a> {
    Totp(&'a str),
    Backup(&'a str),
}

/// A sign-in completed by its code step.
pub struct Completed {
    pub user: User,
    pub issued: Issued,
    /// Where the browser goes now: the sign-in's allowed `callbackURL`.
    pub url: Option<String>,
    /// The token of the browser's trust, when it asked to be trusted.
    pub device: Option<String>,
}

/// The code step of a sign-in: the password step's token, and a TOTP or backup code.
/// Creates the session, and trusts the browser for 30 days when asked. 401
/// `two_factor_expired` when no password step waits under that token, and
/// `invalid_two_factor_code` for a wrong or used code.
pub async fn complete_sign_in(
    st: &State,
    challenge: &str,
    proof: Proof<'_>,
    trust_device: bool,
    client: &Client,
) -> Result<Completed> {
    let expired = || Error::Denied(Reason::TwoFactorExpired);
    if !token::looks_like_token(challenge) {
        return Err(expired());
    }
    let hash = token::sha256(challenge.as_bytes());
    let now = st.now();
    let ch = st
        .read(|c| store::two_factor::challenge(c, &hash))?
        .filter(|c| c.expires_at > now)
        .ok_or_else(expired)?;
    let user = st
        .read(|c| store::users::by_id(c, &ch.user_id))?
        .filter(|u| u.two_factor_enabled)
        .ok_or_else(expired)?;
    enum Checked {
        Step(Option<i64>),
        Backup(Option<[u8; 32]>),
    }
    let checked = match proof {
        Proof::Totp(code) => {
            let (secret, _) = st
                .read(|c| secret_of(st, c, &user.id))?
                .ok_or_else(expired)?;
            Checked::Step(step_of(st, &secret, code))
        }
        Proof::Backup(code) => {
            Checked::Backup(totp::normalize_backup_code(code).map(|c| backup_hash(&user.id, &c)))
        }
    };
    let method = match proof {
        Proof::Totp(_) => "totp",
        Proof::Backup(_) => "backup_code",
    };
    let signed_in = audit::user(&user, "session.sign_in", now);
    let device = trust_device.then(token::new_token);
    let device_hash = device.as_deref().map(|d| token::sha256(d.as_bytes()));
    let (id, ttl, who) = (user.id.clone(), st.config.session_ttl_ms, client.clone());
    let issued = guess(st, accounts::SIGN_IN_FAILED, &user, client, move |tx| {
        let proved = match checked {
            Checked::Step(Some(step)) => store::two_factor::use_step(tx, &id, step)?,
            Checked::Backup(Some(h)) => store::two_factor::use_backup_code(tx, &id, &h, now)?,
            Checked::Step(None) | Checked::Backup(None) => false,
        };
        if !proved {
            return Err(wrong_code());
        }
        if !store::two_factor::take_challenge(tx, &hash)? {
            return Err(Error::Denied(Reason::TwoFactorExpired));
        }
        if let Some(h) = &device_hash {
            store::two_factor::insert_device(tx, h, &id, now, now + DEVICE_TTL_MS)?;
        }
        let org = store::orgs::first_org_of(tx, &id)?;
        let issued = sessions::create_in(tx, &id, org, &who, now, ttl)?;
        tx.audit(
            signed_in
                .resource("session", issued.session.id.as_str())
                .details(serde_json::json!({
                    "twoFactor": method,
                    "trustDevice": device_hash.is_some(),
                })),
        );
        Ok(issued)
    })
    .await?;
    Ok(Completed {
        user,
        issued,
        url: ch.callback_url,
        device,
    })
}

/// Begins the code step of a sign-in whose password was right: answers the token of the
/// short-lived cookie that carries it.
pub fn begin_in(tx: &Tx, user: &UserId, callback_url: Option<&str>, now: i64) -> Result<String> {
    let t = token::new_token();
    store::two_factor::insert_challenge(
        tx,
        &token::sha256(t.as_bytes()),
        user,
        callback_url,
        now,
        now + CHALLENGE_TTL_MS,
    )?;
    Ok(t)
}

/// Whether the browser holding `device` (its trust cookie) skips the code step for
/// `user`.
pub fn trusted(st: &State, device: Option<&str>, user: &UserId) -> Result<bool> {
    let Some(d) = device.filter(|d| token::looks_like_token(d)) else {
        return Ok(false);
    };
    let (hash, now) = (token::sha256(d.as_bytes()), st.now());
    st.read(|c| store::two_factor::device_trusted(c, &hash, user, now))
}

/// How many backup codes the user has left.
pub fn codes_left(st: &State, user: &UserId) -> Result<u64> {
    st.read(|c| store::two_factor::backup_codes_left(c, user))
}
