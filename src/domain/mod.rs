//! The rules. Handlers call one function here; it decides, reads and writes through
//! `store`, and answers with plain types or an `Error`.

pub mod access;
pub mod accounts;
pub mod cache;
pub mod invitations;
pub mod keys;
pub mod limiter;
pub mod members;
pub mod orgs;
pub mod resources;
pub mod sessions;
pub mod users;

use std::ops::Deref;
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::auth::password::{Hasher, Verified};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::db::Db;
use crate::error::{Error, Result};
use limiter::Limiter;

/// Everything a request may need, shared by all of them. Cheap to clone.
#[derive(Clone)]
pub struct State(Arc<Inner>);

pub struct Inner {
    pub db: Db,
    pub clock: SharedClock,
    pub config: Config,
    hasher: Arc<Hasher>,
    hash_slots: Semaphore,
    pub sign_in_by_account: Limiter,
    pub sign_in_by_address: Limiter,
    pub cache: cache::AuthCache,
    pub resources: cache::ResourceCache,
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
            hasher: Arc::new(Hasher::new(config.argon2_m_kib)),
            hash_slots: Semaphore::new(config.hash_concurrency.max(1)),
            sign_in_by_account: Limiter::new(config.sign_in_per_account, config.sign_in_window_ms),
            sign_in_by_address: Limiter::new(config.sign_in_per_address, config.sign_in_window_ms),
            cache: cache::AuthCache::default(),
            resources: cache::ResourceCache::default(),
            db,
            clock,
            config,
        }))
    }

    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Runs a write, then `forget` (which drops what the write made stale from the
    /// caches), in a task of its own: when the client goes away mid-request the write
    /// still commits, and so the caches must still learn of it. `forget` runs only after a
    /// commit.
    pub async fn change<T, F, G>(&self, f: F, forget: G) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction) -> Result<T> + Send + 'static,
        G: FnOnce(&State, &T) + Send + 'static,
    {
        let st = self.clone();
        tokio::spawn(async move {
            let out = st.db.write(f).await?;
            forget(&st, &out);
            Ok(out)
        })
        .await
        .map_err(|e| Error::internal(format!("write task failed: {e}")))?
    }

    /// Runs password work on the blocking pool, at most `hash_concurrency` at a time, so
    /// a burst of sign-ins cannot starve the async workers.
    async fn with_hasher<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Hasher) -> T + Send + 'static,
    ) -> Result<T> {
        let _permit = self
            .hash_slots
            .acquire()
            .await
            .map_err(|_| Error::internal("hash semaphore closed"))?;
        let hasher = Arc::clone(&self.hasher);
        tokio::task::spawn_blocking(move || f(&hasher))
            .await
            .map_err(|e| Error::internal(format!("hash task failed: {e}")))
    }

    pub async fn hash_password(&self, password: String) -> Result<String> {
        self.with_hasher(move |h| h.hash(&password)).await
    }

    pub async fn verify_password(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<Verified> {
        self.with_hasher(move |h| h.verify(&password, stored.as_deref()))
            .await
    }
}

/// Who is asking, as far as the transport knows.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub address: Option<String>,
    pub user_agent: Option<String>,
}
