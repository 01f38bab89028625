//! Verified credentials in memory, so the key and session paths do no database work on a
//! hit. One process owns the database, so invalidation is exact: every change of a key,
//! member, role, flags, user or organization drops the entries it affects, and a
//! generation counter keeps a lookup that raced with such a change from caching what it
//! read before the change.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use super::limiter::Bucket;
use crate::error::Reason;
use crate::model::{ApiKey, ApiKeyId, Membership, OrgId, Session, User, UserId};

/// A user in the organization a credential acts in: everything authorization needs.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: User,
    /// The membership, or why there is none.
    pub membership: Result<Membership, Reason>,
    /// A member's access lists, sorted (empty for owner and admin, who bypass them).
    pub lists: AccessLists,
}

impl Principal {
    fn org(&self) -> Option<&OrgId> {
        self.membership.as_ref().ok().map(|m| &m.organization_id)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessLists {
    pub projects: Vec<String>,
    pub environments: Vec<String>,
    pub applications: Vec<String>,
}

/// Counters and limits of one key that live in memory between flushes. They outlast cache
/// entries, so invalidating a key's entry neither resets its rate limit nor loses usage.
#[derive(Debug)]
pub struct KeyRuntime {
    pub state: Mutex<RuntimeState>,
    /// Held while a lease is written, so that requests of one key that all find the lease
    /// used up wait for one write instead of making one each.
    pub leasing: tokio::sync::Mutex<()>,
}

#[derive(Debug, Clone)]
pub struct RuntimeState {
    pub bucket: Option<Bucket>,
    /// The quota the row holds, outside the lease, as last committed; `None` for a key
    /// without a quota.
    pub unleased: Option<i64>,
    /// Uses taken out of the row by a committed write and not spent yet. Only these are
    /// ever spent, so a crash loses at most what is left of them, and never spends more
    /// than the row gave.
    pub lease: i64,
    pub last_refill_at: Option<i64>,
    pub last_used_at: i64,
    /// Requests since the last flush.
    pub pending: i64,
}

/// A verified key: its record, its principal, its runtime.
#[derive(Debug)]
pub struct CachedKey {
    pub key: ApiKey,
    /// Found by the secret from before the last rotation.
    pub previous_secret: bool,
    pub principal: Arc<Principal>,
    pub runtime: Arc<KeyRuntime>,
}

/// A live session and its principal.
#[derive(Debug)]
pub struct CachedSession {
    pub session: Session,
    pub principal: Arc<Principal>,
}

#[derive(Clone)]
enum KeyEntry {
    Found(Arc<CachedKey>),
    /// No key has this hash (as of the generation it was cached at).
    Missing,
}

/// Above this many cached misses, they are all dropped: a flood of made-up keys with
/// valid checksums cannot grow memory without bound.
const MAX_MISSES: usize = 50_000;

#[derive(Default)]
struct Maps {
    generation: u64,
    keys: HashMap<[u8; 32], KeyEntry>,
    misses: usize,
    sessions: HashMap<[u8; 32], Arc<CachedSession>>,
}

#[derive(Default)]
pub struct AuthCache {
    maps: RwLock<Maps>,
    runtimes: Mutex<HashMap<ApiKeyId, Arc<KeyRuntime>>>,
}

/// What a key lookup found in the cache.
pub enum KeyHit {
    Found(Arc<CachedKey>),
    Missing,
    /// Not cached; load it, then `put_key` with this generation.
    Unknown(u64),
}

impl AuthCache {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Maps> {
        self.maps.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Maps> {
        self.maps.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn key(&self, hash: &[u8; 32]) -> KeyHit {
        let maps = self.read();
        match maps.keys.get(hash) {
            Some(KeyEntry::Found(k)) => KeyHit::Found(Arc::clone(k)),
            Some(KeyEntry::Missing) => KeyHit::Missing,
            None => KeyHit::Unknown(maps.generation),
        }
    }

    /// Caches what a lookup that started at `generation` found, unless something changed
    /// since.
    pub fn put_key(&self, hash: [u8; 32], generation: u64, found: Option<Arc<CachedKey>>) {
        let mut maps = self.write();
        if maps.generation != generation {
            return;
        }
        match found {
            Some(k) => {
                maps.keys.insert(hash, KeyEntry::Found(k));
            }
            None => {
                if maps.misses >= MAX_MISSES {
                    maps.keys.retain(|_, e| matches!(e, KeyEntry::Found(_)));
                    maps.misses = 0;
                }
                maps.misses += 1;
                maps.keys.insert(hash, KeyEntry::Missing);
            }
        }
    }

    pub fn session(&self, hash: &[u8; 32]) -> Result<Arc<CachedSession>, u64> {
        let maps = self.read();
        maps.sessions.get(hash).cloned().ok_or(maps.generation)
    }

    pub fn put_session(&self, hash: [u8; 32], generation: u64, s: Arc<CachedSession>) {
        let mut maps = self.write();
        if maps.generation == generation {
            maps.sessions.insert(hash, s);
        }
    }

    fn drop_where(
        &self,
        key: impl Fn(&CachedKey) -> bool,
        session: impl Fn(&CachedSession) -> bool,
    ) {
        let mut maps = self.write();
        maps.generation += 1;
        maps.keys.retain(|_, e| match e {
            KeyEntry::Found(k) => !key(k),
            // A miss may have become a hit (a new key, a rotation).
            KeyEntry::Missing => false,
        });
        maps.misses = 0;
        maps.sessions.retain(|_, s| !session(s));
    }

    /// Something about `user` changed: its name, password, memberships, role or flags.
    pub fn forget_user(&self, user: &UserId) {
        self.drop_where(
            |k| k.principal.user.id == *user,
            |s| s.principal.user.id == *user,
        );
    }

    /// Something about `org` changed as a whole (it was deleted).
    pub fn forget_org(&self, org: &OrgId) {
        self.drop_where(
            |k| k.key.organization_id == *org || k.principal.org() == Some(org),
            |s| {
                s.principal.org() == Some(org)
                    || s.session.active_organization_id.as_ref() == Some(org)
            },
        );
    }

    /// A key was created, changed, rotated or deleted.
    pub fn forget_key(&self, id: &ApiKeyId) {
        self.drop_where(|k| k.key.id == *id, |_| false);
    }

    /// Drops sessions that expired by `now`; the janitor calls it with the purge of
    /// their rows, so sessions used once and never again do not stay in memory.
    pub fn forget_expired_sessions(&self, now: i64) {
        let mut maps = self.write();
        maps.sessions.retain(|_, s| s.session.expires_at > now);
    }

    /// A session was deleted or changed.
    pub fn forget_session(&self, hash: &[u8; 32]) {
        let mut maps = self.write();
        maps.generation += 1;
        maps.sessions.remove(hash);
    }

    /// The runtime of `key`, created from its stored counters on first use.
    pub fn runtime(&self, key: &ApiKey, now: i64) -> Arc<KeyRuntime> {
        let mut map = self.runtimes.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(map.entry(key.id.clone()).or_insert_with(|| {
            Arc::new(KeyRuntime {
                state: Mutex::new(RuntimeState {
                    bucket: key
                        .rate_limit
                        .map(|r| Bucket::full(r.max, r.window_ms, now)),
                    unleased: key.remaining,
                    lease: 0,
                    last_refill_at: key.last_refill_at,
                    last_used_at: key.last_used_at.unwrap_or(0),
                    pending: 0,
                }),
                leasing: tokio::sync::Mutex::new(()),
            })
        }))
    }

    pub fn drop_runtime(&self, id: &ApiKeyId) {
        self.runtimes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// Every runtime, for flushing.
    pub fn runtimes(&self) -> Vec<(ApiKeyId, Arc<KeyRuntime>)> {
        self.runtimes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(id, r)| (id.clone(), Arc::clone(r)))
            .collect()
    }
}

/// One organization's projects, environments and applications, as last read. Every write
/// to them goes through `domain::resources`, which drops the snapshot, so it is never
/// stale; reads that list everything answer from it without touching the database.
#[derive(Debug)]
pub struct OrgResources {
    /// Newest first.
    pub projects: Vec<crate::model::Project>,
    /// Default first, then oldest first.
    pub environments: Vec<crate::model::Environment>,
    /// Oldest first.
    pub applications: Vec<crate::model::Application>,
    /// The full listing as the API renders it, made once per snapshot by the API layer
    /// for callers who see everything.
    pub rendered: std::sync::OnceLock<String>,
}

#[derive(Default)]
pub struct ResourceCache {
    maps: RwLock<(u64, HashMap<OrgId, Arc<OrgResources>>)>,
}

impl ResourceCache {
    /// The snapshot of `org`, or the generation to store a fresh one under.
    pub fn get(&self, org: &OrgId) -> Result<Arc<OrgResources>, u64> {
        let m = self.maps.read().unwrap_or_else(|p| p.into_inner());
        m.1.get(org).cloned().ok_or(m.0)
    }

    pub fn put(&self, org: OrgId, generation: u64, r: Arc<OrgResources>) {
        let mut m = self.maps.write().unwrap_or_else(|p| p.into_inner());
        if m.0 == generation {
            m.1.insert(org, r);
        }
    }

    pub fn forget(&self, org: &OrgId) {
        let mut m = self.maps.write().unwrap_or_else(|p| p.into_inner());
        m.0 += 1;
        m.1.remove(org);
    }
}
