//! The rules. Handlers call one function here; it decides, reads and writes through
//! `store`, and answers with plain types or an `Error`.

pub mod access;
pub mod accounts;
pub mod audit;
pub mod cache;
pub mod forward;
pub mod invitations;
pub mod keys;
pub mod limiter;
pub mod members;
pub mod orgs;
pub mod passwords;
pub mod policy;
pub mod recovery;
pub mod resources;
pub mod sessions;
pub mod two_factor;
pub mod users;

use std::ops::Deref;
use std::sync::Arc;

use crate::auth::password::{Hasher, Verified};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::db::Db;
use crate::error::{Checks, Error, Reason, Result};
use crate::model::{OrgId, Paging};
use crate::store::{self, Reader, Stale, Tx};
use limiter::Limiter;
use policy::{Authorized, Op};

/// Checks a listing's `limit` (`default_limit` when absent) and `offset` (0 when absent):
/// a 400 names each one out of range.
pub fn paging(limit: Option<i64>, offset: Option<i64>, default_limit: i64) -> Result<Paging> {
    Paging::parse(limit.unwrap_or(default_limit), offset.unwrap_or(0)).map_err(|wrong| {
        let mut c = Checks::new();
        for (field, why) in wrong {
            c.fail(field, why);
        }
        c.finish()
            .err()
            .unwrap_or_else(|| Error::internal("a refused page without a reason"))
    })
}

/// What a lookup scoped to the caller's organization `found`, or why it found nothing:
/// 401 `wrong_organization` when `locate` finds the row in another organization, 404
/// `what` when it exists nowhere. `locate` runs only when nothing was found.
pub(crate) fn in_own_org<T>(
    conn: &Reader,
    found: Option<T>,
    what: &'static str,
    locate: impl FnOnce(&Reader) -> Result<Option<OrgId>>,
) -> Result<T> {
    match found {
        Some(t) => Ok(t),
        None if locate(conn)?.is_some() => Err(Error::Denied(Reason::WrongOrganization)),
        None => Err(Error::NotFound(what)),
    }
}

/// Everything a request may need, shared by all of them. Cheap to clone.
#[derive(Clone)]
pub struct State(Arc<Inner>);

pub struct Inner {
    pub db: Db,
    pub clock: SharedClock,
    pub config: Config,
    passwords: passwords::PasswordQueue,
    /// Failed sign-ins per account and client address.
    pub sign_in_by_account: Limiter,
    /// Failed sign-ins per account from any address.
    pub sign_in_by_account_total: Limiter,
    /// Failed sign-ins per client address on any account (two-factor codes included).
    pub sign_in_by_address: Limiter,
    /// Wrong two-factor codes per user, from any address.
    pub two_factor_by_user: Limiter,
    /// The key that seals TOTP secrets, read (or made) on first use.
    seal_key: std::sync::OnceLock<crate::auth::totp::SealKey>,
    pub cache: cache::AuthCache,
    /// Refused sign-ins counted until the usage flush writes them to the audit log.
    pub refusals: audit::Refusals,
    pub resources: cache::ResourceCache,
    /// Forward auth's routing table.
    pub routes: forward::RouteCache,
}

impl Deref for State {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl State {
    pub fn new(db: Db, clock: SharedClock, config: Config) -> State {
        State(Arc::new(Inner {
            passwords: passwords::PasswordQueue::new(
                Hasher::new(config.argon2_m_kib),
                config.hash_concurrency,
                config.hash_queue,
            ),
            sign_in_by_account: Limiter::new(config.sign_in_per_account, config.sign_in_window_ms),
            sign_in_by_account_total: Limiter::new(
                config.sign_in_per_account_total,
                config.sign_in_window_ms,
            ),
            sign_in_by_address: Limiter::new(config.sign_in_per_address, config.sign_in_window_ms),
            two_factor_by_user: Limiter::new(config.two_factor_per_user, config.sign_in_window_ms),
            seal_key: std::sync::OnceLock::new(),
            cache: cache::AuthCache::new(config.cache_entries),
            refusals: audit::Refusals::default(),
            resources: cache::ResourceCache::default(),
            routes: forward::RouteCache::default(),
            db,
            clock,
            config,
        }))
    }

    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The key that seals TOTP secrets, from `config.secret_key_file`, which is made with
    /// a new key when it does not exist. The server reads it at start, so that a file it
    /// cannot use stops it there rather than failing sign-ins later.
    pub fn seal_key(&self) -> Result<&crate::auth::totp::SealKey> {
        if let Some(k) = self.seal_key.get() {
            return Ok(k);
        }
        let k = crate::auth::totp::load_or_create_key(&self.config.secret_key_file)
            .map_err(Error::internal)?;
        Ok(self.seal_key.get_or_init(|| k))
    }

    /// Runs a read.
    pub fn read<T>(&self, f: impl FnOnce(&Reader) -> Result<T>) -> Result<T> {
        store::read(&self.db, f)
    }

    /// Runs `f` as one unit of work, then drops from the caches exactly what its store
    /// operations recorded as stale, once the changes are durable. The audit events it
    /// records name the request being served. It runs in a task of its own: when the
    /// client goes away mid-request the write still commits, and so the caches must
    /// still learn of it. The proof says the policy allowed it.
    pub async fn write<O: Op, T, F>(&self, _allowed: &Authorized<O>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Tx) -> Result<T> + Send + 'static,
    {
        let st = self.clone();
        let origin = audit::origin();
        let (out, audited) = tokio::spawn(async move {
            let (out, stale, audited) = store::write(&st.db, move || origin, f).await?;
            st.forget(&stale);
            Ok::<_, Error>((out, audited))
        })
        .await
        .map_err(|e| Error::internal(format!("write task failed: {e}")))??;
        if audited {
            audit::mark_audited();
        }
        Ok(out)
    }

    /// `write` for callers already off the async workers (CLI, shutdown).
    pub fn write_blocking<O: Op, T>(
        &self,
        _allowed: &Authorized<O>,
        f: impl FnOnce(&Tx) -> Result<T>,
    ) -> Result<T> {
        let (out, stale) = store::write_blocking(&self.db, f)?;
        self.forget(&stale);
        Ok(out)
    }

    /// The one place where committed changes reach the caches.
    fn forget(&self, stale: &[Stale]) {
        if stale.is_empty() {
            return;
        }
        self.cache.forget(stale);
        for s in stale {
            match s {
                Stale::Resources(org) => self.resources.forget(org),
                Stale::Domains => self.routes.forget(),
                _ => {}
            }
        }
    }

    /// Hashes a password on the password queue (429 `sign_in_busy` when it is full).
    pub async fn hash_password(&self, password: String) -> Result<String> {
        self.passwords
            .run(move |h, ws| h.hash_in(ws, &password))
            .await
    }

    /// Verifies a password of `account` (the email as typed, lower-cased) on the password
    /// queue: 429 `sign_in_busy` when the queue is full, or holds the most checks one
    /// account may have waiting.
    pub async fn verify_password(
        &self,
        account: &str,
        password: String,
        stored: Option<String>,
    ) -> Result<Verified> {
        self.passwords
            .run_for(Some(account), move |h, ws| {
                h.verify_in(ws, &password, stored.as_deref())
            })
            .await
    }
}

/// Who is asking, as far as the transport knows.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub address: Option<String>,
    pub user_agent: Option<String>,
}
