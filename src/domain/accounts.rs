//! Sign-up (the first one bootstraps the owner), sign-in, and users made from the shell.

use super::audit;
use super::invitations;
use super::limiter::{Begin, Limiter};
use super::policy::{self, op};
use super::sessions::{self, Issued};
use super::two_factor;
use super::{Client, State};
use crate::auth::password::Verified;
use crate::auth::token;
use crate::error::{Checks, Clash, Error, Invalid, Reason, Result, Throttle};
use crate::model::{
    Email, Flags, MemberId, Membership, Name, OrgId, Organization, Password, Role, User, UserId,
};
use crate::store::{self, Tx};

/// The organization the first user gets.
pub const FIRST_ORG_NAME: &str = "My Organization";
/// Longest user or organization name.
pub const NAME_MAX: usize = 255;

/// Sign-up input as received.
pub struct SignUp {
    pub name: String,
    pub email: String,
    pub password: String,
    pub invitation_token: Option<String>,
}

/// Parsed sign-up fields.
pub struct NewUser {
    pub name: Name,
    pub email: Email,
    pub password: Password,
}

impl NewUser {
    pub fn parse(name: &str, email: &str, password: &str) -> Result<NewUser> {
        let mut c = Checks::new();
        let name = c.field("name", Name::parse(name, NAME_MAX));
        let email = c.field("email", Email::parse(email));
        let password = c.field("password", Password::parse(password));
        c.finish()?;
        match (name, email, password) {
            (Some(name), Some(email), Some(password)) => Ok(NewUser {
                name,
                email,
                password,
            }),
            _ => Err(Error::internal("checks passed without values")),
        }
    }
}

/// Inserts a user with an already computed hash; 409 when the email is taken.
pub fn insert_user(conn: &Tx, new: &NewUser, hash: &str, now: i64) -> Result<User> {
    if store::users::by_email(conn, new.email.as_str())?.is_some() {
        return Err(Error::conflict(
            Clash::EmailTaken,
            "A user with this email already exists",
        ));
    }
    let user = User {
        id: UserId(token::new_id()),
        name: new.name.as_str().to_owned(),
        email: new.email.as_str().to_owned(),
        created_at: now,
        updated_at: now,
        two_factor_enabled: false,
    };
    store::users::insert(conn, &user, hash)?;
    Ok(user)
}

/// Creates an organization owned by `owner`.
pub fn create_org_in(conn: &Tx, owner: &UserId, name: &str, now: i64) -> Result<Organization> {
    let org = Organization {
        id: OrgId(token::new_id()),
        name: name.to_owned(),
        owner_id: owner.clone(),
        created_at: now,
        require_two_factor: false,
    };
    store::orgs::insert(conn, &org)?;
    store::orgs::insert_member(
        conn,
        &Membership {
            id: MemberId(token::new_id()),
            organization_id: org.id.clone(),
            user_id: owner.clone(),
            role: Role::Owner,
            flags: Flags::ALL,
            created_at: now,
        },
    )?;
    Ok(org)
}

/// `POST /api/auth/sign-up/email`. The first user becomes the owner of "My Organization";
/// later sign-ups need an invitation.
pub async fn sign_up(st: &State, input: SignUp, client: &Client) -> Result<(User, Issued)> {
    let new = NewUser::parse(&input.name, &input.email, &input.password)?;
    // Refuse what cannot succeed before spending a password hash on it.
    let now = st.now();
    match &input.invitation_token {
        None if st.read(store::users::count)? > 0 => return Err(signup_closed()),
        None => {}
        Some(raw) => {
            st.read(|c| invitations::by_token_for(c, raw, new.email.as_str(), now))?;
        }
    }
    let hash = st.hash_password(new.password.expose().to_owned()).await?;
    let (ttl, client) = (st.config.session_ttl_ms, client.clone());
    st.write(&policy::unchecked::<op::SignUp>(), move |tx| {
        if let Some(raw) = &input.invitation_token {
            let inv = invitations::by_token_for(tx, raw, new.email.as_str(), now)?;
            let user = insert_user(tx, &new, &hash, now)?;
            let by = audit::user(&user, "user.sign_up", now);
            tx.audit(by.clone().org(&inv.organization_id));
            let m = invitations::accept_in(tx, &inv, &user.id, &by, now)?;
            let org = Some(m.organization_id);
            let issued = sessions::create_in(tx, &user.id, org, &client, now, ttl)?;
            tx.audit(signed_in(&user, &issued, now));
            return Ok((user, issued));
        }
        // Checked again under the write lock: two first sign-ups cannot both win.
        if store::users::count(tx)? > 0 {
            return Err(signup_closed());
        }
        let user = insert_user(tx, &new, &hash, now)?;
        store::users::make_installation_admin(tx, &user.id)?;
        let org = create_org_in(tx, &user.id, FIRST_ORG_NAME, now)?;
        tx.audit(audit::user(&user, "user.sign_up", now).org(&org.id));
        tx.audit(
            audit::user(&user, "organization.create", now)
                .org(&org.id)
                .resource("organization", org.id.as_str()),
        );
        let issued = sessions::create_in(tx, &user.id, Some(org.id), &client, now, ttl)?;
        tx.audit(signed_in(&user, &issued, now));
        Ok((user, issued))
    })
    .await
}

/// The event of a new session for `user`.
pub fn signed_in(user: &User, issued: &Issued, now: i64) -> crate::store::audit::Event {
    audit::user(user, "session.sign_in", now).resource("session", issued.session.id.as_str())
}

fn signup_closed() -> Error {
    Error::invalid(
        Invalid::SignupClosed,
        "Sign-up is closed: ask an administrator for an invitation",
    )
}

/// What a right password leads to.
// Made once per sign-in and answered at once: boxing saves nothing.
#[allow(clippy::large_enum_variant)]
pub enum SignedIn {
    /// A session.
    Session(User, Issued),
    /// The code step: two-factor is on and the browser is not trusted. Holds the token
    /// of the short-lived cookie that carries the step.
    TwoFactor(String),
}

/// What sign-in takes besides email and password.
#[derive(Debug, Clone, Default)]
pub struct SignInExtras {
    /// The allowed `callbackURL`, kept for the code step when there is one.
    pub callback_url: Option<String>,
    /// The browser's trust cookie, which skips the code step.
    pub device: Option<String>,
}

/// The audit action of a refused sign-in.
pub const SIGN_IN_FAILED: &str = "session.sign_in_failed";

/// `POST /api/auth/sign-in/email`. Wrong email and wrong password give the same answer
/// after the same work; attempts are limited per account and per client address.
pub async fn sign_in(
    st: &State,
    raw_email: &str,
    password: &str,
    client: &Client,
    extras: SignInExtras,
) -> Result<SignedIn> {
    let result = check_sign_in(st, raw_email, password, client, extras).await;
    if let Err(Error::Throttled(t, _)) = &result {
        let email = raw_email.trim().to_lowercase();
        st.refusals
            .refused(SIGN_IN_FAILED, &email, None, t.as_str(), st.now());
        refusal_delay(st).await;
    }
    result
}

/// Waits before a 429 of sign-in goes out. A refusal is cheap to make, and a client that
/// ignores Retry-After would make millions: answering it a little later holds only a
/// connection, and caps what a flood of refused sign-ins costs the rest of the server.
pub async fn refusal_delay(st: &State) {
    tokio::time::sleep(std::time::Duration::from_millis(
        st.config.sign_in_refusal_delay_ms,
    ))
    .await;
}

async fn check_sign_in(
    st: &State,
    raw_email: &str,
    password: &str,
    client: &Client,
    extras: SignInExtras,
) -> Result<SignedIn> {
    let email = raw_email.trim().to_lowercase();
    let mut c = Checks::new();
    if email.is_empty() {
        c.fail("email", "email is required");
    }
    if raw_email.chars().count() > Email::MAX {
        c.fail("email", "email must be at most 254 characters");
    }
    if password.is_empty() {
        c.fail("password", "password is required");
    }
    if password.chars().count() > Password::MAX {
        c.fail("password", "password must be at most 128 characters");
    }
    c.finish()?;

    let mut attempt = Attempt::begin(st, &email, client.address.as_deref()).await?;

    let found = st
        .read(|c| store::users::with_hash_by_email(c, &email))
        .map_err(|e| attempt.not_evaluated(e))?;
    let (user, stored) = match found {
        Some((u, h)) => (Some(u), Some(h)),
        None => (None, None),
    };
    let verdict = st
        .verify_password(&email, password.to_owned(), stored)
        .await
        .map_err(|e| attempt.not_evaluated(e))?;
    let subject = user.as_ref().map(|u| u.id.clone());
    let (Some(user), Verified::Yes { rehash }) = (user, verdict) else {
        drop(attempt);
        let reason = Reason::InvalidCredentials.as_str();
        st.refusals
            .refused(SIGN_IN_FAILED, &email, subject.as_ref(), reason, st.now());
        return Err(Error::Denied(Reason::InvalidCredentials));
    };
    // Only failures count against the budgets.
    attempt.succeeded();
    let new_hash = if rehash {
        Some(st.hash_password(password.to_owned()).await?)
    } else {
        None
    };
    let now = st.now();
    let code_step =
        user.two_factor_enabled && !two_factor::trusted(st, extras.device.as_deref(), &user.id)?;
    let (ttl, client, uid) = (st.config.session_ttl_ms, client.clone(), user.id.clone());
    let callback = extras.callback_url;
    let out = st
        .write(&policy::unchecked::<op::SignIn>(), move |tx| {
            if let Some(h) = new_hash {
                store::users::set_password_hash(tx, &uid, &h, now)?;
            }
            if code_step {
                return two_factor::begin_in(tx, &uid, callback.as_deref(), now)
                    .map(SignedIn::TwoFactor);
            }
            let org = store::orgs::first_org_of(tx, &uid)?;
            let issued = sessions::create_in(tx, &uid, org, &client, now, ttl)?;
            tx.audit(signed_in(&user, &issued, now));
            Ok(SignedIn::Session(User::clone(&user), issued))
        })
        .await?;
    Ok(out)
}

/// How long an attempt may wait for attempts in flight on the same budget.
const ATTEMPT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// One password guess, holding a unit of each sign-in budget that it counts against:
/// the account from this client address, the account from anywhere (a much higher
/// ceiling, so strangers cannot lock its owner out), and the client address on any
/// account. Units are reserved before any password work, so guesses sent in parallel
/// cannot slip past a budget. `succeeded` and `not_evaluated` give them back; any other
/// end keeps them spent: a wrong guess, and a client that hung up while its password
/// was being checked (it cost a hash all the same).
pub struct Attempt<'a> {
    st: &'a State,
    budgets: Vec<(&'a Limiter, String)>,
}

/// Leaves the queue of one budget's waiting attempts when dropped.
struct InLine<'a> {
    limiter: &'a Limiter,
    key: &'a str,
    st: &'a State,
}

impl Drop for InLine<'_> {
    fn drop(&mut self) {
        self.limiter.done_waiting(self.key, self.st.now());
    }
}

impl<'a> Attempt<'a> {
    pub async fn begin(st: &'a State, email: &str, address: Option<&str>) -> Result<Attempt<'a>> {
        let mut budgets = Vec::with_capacity(3);
        if let Some(a) = address {
            budgets.push((&st.sign_in_by_address, address_bucket(a)));
        }
        let from = address.map(address_bucket).unwrap_or_default();
        budgets.push((&st.sign_in_by_account, format!("{email}\n{from}")));
        budgets.push((&st.sign_in_by_account_total, email.to_owned()));
        Attempt::on(st, budgets).await
    }

    /// One guess at a user's second factor: it counts against the client address's
    /// sign-in budget and the user's two-factor budget (from any address).
    pub async fn two_factor(
        st: &'a State,
        user: &UserId,
        address: Option<&str>,
    ) -> Result<Attempt<'a>> {
        let mut budgets = Vec::with_capacity(2);
        if let Some(a) = address {
            budgets.push((&st.sign_in_by_address, address_bucket(a)));
        }
        budgets.push((&st.two_factor_by_user, user.as_str().to_owned()));
        Attempt::on(st, budgets).await
    }

    async fn on(st: &'a State, budgets: Vec<(&'a Limiter, String)>) -> Result<Attempt<'a>> {
        let give_up = tokio::time::Instant::now() + ATTEMPT_WAIT;
        'again: loop {
            let now = st.now();
            for (i, (limiter, key)) in budgets.iter().enumerate() {
                let waiting = match limiter.begin(key, now) {
                    Begin::Started => continue,
                    Begin::Refused(b) => Err(b),
                    Begin::Wait(w) => Ok(w),
                };
                for (l, k) in &budgets[..i] {
                    l.settle(k, now, false);
                }
                let waiting =
                    waiting.map_err(|b| Error::Throttled(Throttle::TooManyAttempts, b))?;
                let _in_line = InLine { limiter, key, st };
                if !limiter.wait(key, &waiting, give_up).await {
                    return Err(Error::Throttled(
                        Throttle::TooManyAttempts,
                        crate::error::Backoff::one_second(0),
                    ));
                }
                continue 'again;
            }
            return Ok(Attempt { st, budgets });
        }
    }

    /// The password was right: the attempt counts against nothing.
    pub fn succeeded(mut self) {
        self.give_back();
    }

    /// The password could not be checked (the queue was full, the database failed):
    /// the attempt counts against nothing, and `e` goes on to the caller.
    pub fn not_evaluated(&mut self, e: Error) -> Error {
        self.give_back();
        e
    }

    fn give_back(&mut self) {
        let now = self.st.now();
        for (l, k) in self.budgets.drain(..) {
            l.settle(&k, now, false);
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        let now = self.st.now();
        for (l, k) in self.budgets.drain(..) {
            l.settle(&k, now, true);
        }
    }
}

/// Checks `password` against `user`'s, as a guess counted like a sign-in's: 401
/// `invalid_credentials` when it is wrong. For what a signed-in user confirms with the
/// password (a new password, two-factor changes).
pub async fn confirm_password(st: &State, user: &User, password: &str) -> Result<()> {
    let mut attempt = Attempt::begin(st, &user.email, None).await?;
    let stored = st
        .read(|c| store::users::password_hash(c, &user.id))
        .map_err(|e| attempt.not_evaluated(e))?;
    let verdict = st
        .verify_password(&user.email, password.to_owned(), stored)
        .await
        .map_err(|e| attempt.not_evaluated(e))?;
    if verdict == Verified::No {
        drop(attempt);
        return Err(Error::Denied(Reason::InvalidCredentials));
    }
    attempt.succeeded();
    Ok(())
}

/// The bucket of a client address: an IPv6 client owns a whole /64, so it counts as one.
fn address_bucket(addr: &str) -> String {
    match addr.parse::<std::net::IpAddr>().map(|ip| ip.to_canonical()) {
        Ok(std::net::IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Ok(std::net::IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => addr.to_owned(),
    }
}

/// What `keygate user create` did.
#[derive(Debug)]
pub struct Created {
    pub user: User,
    /// Set when the user was the first and so got a new organization as its owner.
    pub owner_of: Option<Organization>,
}

/// Creates a user from the shell. The first user becomes the owner of "My Organization";
/// later ones are added to `org` (or the first organization) as `role`. The first user,
/// and any made with `installation_admin`, are installation administrators.
pub fn create_user_blocking(
    st: &State,
    new: NewUser,
    role: Role,
    org: Option<OrgId>,
    installation_admin: bool,
) -> Result<Created> {
    if role == Role::Owner {
        return Err(Error::invalid(
            Invalid::InvalidRole,
            "an organization has exactly one owner; choose admin or member",
        ));
    }
    let hasher = crate::auth::password::Hasher::new(st.config.argon2_m_kib);
    let hash = hasher.hash(new.password.expose());
    let now = st.now();
    st.write_blocking(&policy::unchecked::<op::Shell>(), |tx| {
        let first = store::users::count(tx)? == 0;
        let user = insert_user(tx, &new, &hash, now)?;
        if first || installation_admin {
            store::users::make_installation_admin(tx, &user.id)?;
        }
        tx.audit(
            audit::shell("user.create", now)
                .subject(&user.id)
                .resource("user", user.id.as_str())
                .details(serde_json::json!({
                    "email": user.email,
                    "installationAdmin": first || installation_admin,
                })),
        );
        if first {
            let org = create_org_in(tx, &user.id, FIRST_ORG_NAME, now)?;
            tx.audit(
                audit::shell("organization.create", now)
                    .org(&org.id)
                    .subject(&user.id)
                    .resource("organization", org.id.as_str()),
            );
            return Ok(Created {
                user,
                owner_of: Some(org),
            });
        }
        let org_id = match org {
            Some(id) => {
                store::orgs::by_id(tx, &id)?
                    .ok_or(Error::NotFound("organization"))?
                    .id
            }
            None => store::orgs::oldest(tx)?.ok_or(Error::NotFound("organization"))?,
        };
        let flags = Flags::default();
        let m = Membership {
            id: MemberId(token::new_id()),
            organization_id: org_id,
            user_id: user.id.clone(),
            role,
            flags,
            created_at: now,
        };
        store::orgs::insert_member(tx, &m)?;
        tx.audit(
            audit::shell("member.add", now)
                .org(&m.organization_id)
                .subject(&user.id)
                .resource("member", m.id.as_str())
                .details(serde_json::json!({ "role": role.as_str() })),
        );
        Ok(Created {
            user,
            owner_of: None,
        })
    })
}
