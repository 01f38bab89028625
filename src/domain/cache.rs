//! Verified credentials in memory, so the key and session paths do no database work on a
//! hit. One process owns the database, so invalidation is exact: every change of a key,
//! member, role, flags, user or organization drops the entries it affects, found through
//! indexes by key, user and organization (a drop costs what it touches, whatever the size
//! of the cache), and a generation counter keeps a lookup that raced with such a change
//! from caching what it read before the change.
//!
//! The cache holds at most `cache_entries` keys and sessions together; past that the
//! least recently used go (CLOCK: a hit sets a flag under the read lock, the eviction hand
//! clears flags and takes the first entry whose flag is already clear). An evicted entry
//! costs one lookup on its next use. A key's `KeyRuntime` (usage, rate limit, lease) lives
//! apart from its entry and survives eviction.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};

use std::net::IpAddr;

use super::limiter::Bucket;
use crate::clock::HOUR;
use crate::error::Reason;
use crate::model::{ApiKey, ApiKeyId, Membership, OrgId, RateLimit, Session, User, UserId};
use crate::store::Stale;
use crate::store::keys::{Outcomes, UsageHour};

/// A user in the organization a credential acts in: everything authorization needs.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: User,
    /// The membership, or why there is none.
    pub membership: Result<Membership, Reason>,
    /// A member's access lists, sorted (empty for owner and admin, who bypass them).
    pub lists: AccessLists,
    /// Its `user.getPermissions` answer as the API renders it, made at the first call:
    /// a principal never changes (a change makes a new one), and the keys of one user in
    /// one organization share theirs.
    pub permissions_view: OnceLock<Arc<String>>,
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
    pub id: ApiKeyId,
    /// The key's user and organization, fixed for its life: what its refusals name in
    /// the audit log.
    pub user_id: UserId,
    pub organization_id: OrgId,
    /// The key's rate limit, fixed for its life: what `state.bucket` fills up to.
    pub rate_limit: Option<RateLimit>,
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
    /// Requests per hour by outcome since the last flush.
    pub hours: PendingHours,
    /// The client of the last admitted request, once one was seen in this runtime's life.
    pub client: Option<Client>,
    /// Whether `client` changed since the last flush wrote it.
    pub client_changed: bool,
    /// Refusals of the key as disabled or expired since the last flush: one audit event
    /// each per flush.
    pub refusals: PendingRefusals,
}

impl RuntimeState {
    /// Whether anything waits for the usage flush: the first count after a flush puts
    /// the key on the flush's list.
    pub fn waiting(&self) -> bool {
        self.pending > 0
            || !self.hours.is_empty()
            || self.client_changed
            || !self.refusals.is_empty()
    }
}

/// A key's requests per hour since the last flush: the hour of the latest count in
/// place, and earlier hours apart (one that ended between two flushes, normally none),
/// so that counting allocates nothing but when an hour ends.
#[derive(Debug, Clone, Default)]
pub struct PendingHours {
    current: UsageHour,
    earlier: Vec<UsageHour>,
}

impl PendingHours {
    /// The counts of the hour `now` falls in.
    pub fn at(&mut self, now: i64) -> &mut Outcomes {
        let hour = now - now.rem_euclid(HOUR);
        if self.current.hour != hour {
            let done = std::mem::replace(
                &mut self.current,
                UsageHour {
                    hour,
                    counts: Outcomes::default(),
                },
            );
            if !done.counts.is_empty() {
                self.earlier.push(done);
            }
        }
        &mut self.current.counts
    }

    pub fn is_empty(&self) -> bool {
        self.current.counts.is_empty() && self.earlier.is_empty()
    }

    /// Every hour with a count. An hour may come twice when the clock went back.
    pub fn iter(&self) -> impl Iterator<Item = &UsageHour> {
        let current = (!self.current.counts.is_empty()).then_some(&self.current);
        self.earlier.iter().chain(current)
    }

    /// Adds the counts of `h` (taken by a flush whose write failed) back.
    pub fn add(&mut self, h: &UsageHour) {
        if h.hour == self.current.hour {
            self.current.counts.add(&h.counts);
        } else if let Some(e) = self.earlier.iter_mut().find(|e| e.hour == h.hour) {
            e.counts.add(&h.counts);
        } else {
            self.earlier.push(*h);
        }
    }
}

/// Where a request came from, as the key's usage keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Client {
    pub address: Option<IpAddr>,
    /// Cut to `audit::USER_AGENT_MAX` bytes.
    pub user_agent: Option<String>,
}

impl Client {
    /// Makes `slot` the client of `address` and `user_agent`, and answers whether that
    /// changed it (a first client always does). It compares first, so a client that
    /// comes back the same costs no allocation.
    pub fn observe(
        slot: &mut Option<Client>,
        address: Option<IpAddr>,
        user_agent: Option<&str>,
    ) -> bool {
        let max = super::audit::USER_AGENT_MAX;
        let cut = user_agent.map(|ua| head(ua, max));
        if let Some(c) = slot
            && c.address == address
            && c.user_agent.as_deref() == cut
        {
            return false;
        }
        *slot = Some(Client {
            address,
            user_agent: user_agent.map(|ua| super::audit::truncate(ua, max)),
        });
        true
    }
}

/// The first `max` bytes of `s` at most, cut at a character boundary.
fn head(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Refusals of one key for one reason since the last flush.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusalTally {
    pub first_at: i64,
    pub last_at: i64,
    pub count: i64,
    /// The key's `start` at the first of them (what the audit log labels it with).
    pub start: String,
    /// The client of the last of them.
    pub client: Option<Client>,
}

/// The refusals of a key that the audit log records: as disabled, and as expired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PendingRefusals {
    pub disabled: Option<RefusalTally>,
    pub expired: Option<RefusalTally>,
}

impl PendingRefusals {
    /// Where refusals for `reason` are counted, if the audit log records them.
    pub fn of(&mut self, reason: Reason) -> Option<&mut Option<RefusalTally>> {
        match reason {
            Reason::ApiKeyDisabled => Some(&mut self.disabled),
            Reason::ApiKeyExpired => Some(&mut self.expired),
            _ => None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.disabled.is_none() && self.expired.is_none()
    }

    /// Each tally with its reason.
    pub fn iter(&self) -> impl Iterator<Item = (Reason, &RefusalTally)> {
        [
            (Reason::ApiKeyDisabled, &self.disabled),
            (Reason::ApiKeyExpired, &self.expired),
        ]
        .into_iter()
        .filter_map(|(r, t)| t.as_ref().map(|t| (r, t)))
    }

    /// Adds tallies taken by a flush whose write failed back, before those counted since.
    pub fn put_back(&mut self, taken: PendingRefusals) {
        for (slot, old) in [
            (&mut self.disabled, taken.disabled),
            (&mut self.expired, taken.expired),
        ] {
            let Some(old) = old else { continue };
            match slot {
                Some(new) => {
                    new.count += old.count;
                    new.first_at = new.first_at.min(old.first_at);
                    new.last_at = new.last_at.max(old.last_at);
                }
                None => *slot = Some(old),
            }
        }
    }
}

/// A verified key: its record, its principal, its runtime.
#[derive(Debug)]
pub struct CachedKey {
    pub key: ApiKey,
    /// Found by the secret from before the last rotation.
    pub previous_secret: bool,
    pub principal: Arc<Principal>,
    pub runtime: Arc<KeyRuntime>,
    /// Its `project.all`, when it sees only part of its organization.
    pub view: ViewSlot,
}

/// A live session and its principal.
#[derive(Debug)]
pub struct CachedSession {
    pub session: Session,
    pub principal: Arc<Principal>,
    /// Its `project.all`, when it sees only part of its organization.
    pub view: ViewSlot,
    /// Its organization requires two-factor, which its user has not turned on: it may
    /// only act on the account itself (to turn it on) until then.
    pub two_factor_blocked: bool,
}

type Hash = [u8; 32];

#[derive(Debug, Clone)]
enum Entry {
    Key(Arc<CachedKey>),
    Session(Arc<CachedSession>),
}

impl Entry {
    fn user(&self) -> &UserId {
        match self {
            Entry::Key(k) => &k.principal.user.id,
            Entry::Session(s) => &s.principal.user.id,
        }
    }

    /// The organizations whose deletion makes this entry stale: the one it acts in, and
    /// the one of its membership (the same one, unless the membership is missing).
    fn orgs(&self) -> [Option<&OrgId>; 2] {
        let (own, principal) = match self {
            Entry::Key(k) => (Some(&k.key.organization_id), &k.principal),
            Entry::Session(s) => (s.session.active_organization_id.as_ref(), &s.principal),
        };
        let other = principal.org().filter(|o| Some(*o) != own);
        [own, other]
    }
}

/// A principal that the cached keys of one user in one organization share.
struct Shared {
    org: OrgId,
    principal: Arc<Principal>,
    /// The cached keys that hold it.
    holders: usize,
}

struct Slot {
    hash: Hash,
    entry: Entry,
    /// Set by a hit, cleared as the eviction hand passes: an entry goes only when a whole
    /// turn of the hand saw no hit on it.
    used: AtomicBool,
}

/// Above this many cached misses, they are all dropped: a flood of made-up keys with
/// valid checksums cannot grow memory without bound.
const MAX_MISSES: usize = 50_000;

/// The entries and their indexes. Every index names exactly the live slots that belong
/// under it: `insert` and `remove` are the only places that change a slot.
struct Maps {
    generation: u64,
    cap: usize,
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    hand: usize,
    keys: HashMap<Hash, usize>,
    sessions: HashMap<Hash, usize>,
    /// Hashes no key had when they were looked up. A hash starts to exist only with a new
    /// key or a rotation, which remove it here (`Stale::Secret`), so other drops leave misses
    /// alone.
    misses: HashSet<Hash>,
    by_key: HashMap<ApiKeyId, Vec<usize>>,
    by_user: HashMap<UserId, HashSet<usize>>,
    by_org: HashMap<OrgId, HashSet<usize>>,
    /// Sessions by expiry, so the expired ones are dropped without a scan.
    expiry: BTreeSet<(i64, usize)>,
    /// Keys whose entry left the cache (or never made it in) since the last prune: their
    /// runtimes may now be held by nothing but the runtime map (see `prune_runtimes`).
    orphans: Vec<ApiKeyId>,
    /// The principal of a user's cached keys in each organization, shared by all of them,
    /// with the number of cached keys that hold it: it goes with the last of them, so it
    /// is as current as they are (see `AuthCache::principal`).
    principals: HashMap<UserId, Vec<Shared>>,
    /// Principals of signed-in users in organizations other than their session's active
    /// one, as forward auth needs them for the services of every organization a user is
    /// in: by user, with an index by organization, so that a change to either drops
    /// exactly its own.
    guests: HashMap<UserId, Vec<(OrgId, Arc<Principal>)>>,
    guests_by_org: HashMap<OrgId, HashSet<UserId>>,
    guest_count: usize,
}

/// Above this many guest principals, they are all dropped (each costs one lookup again).
const MAX_GUESTS: usize = 50_000;

fn unlink<K: std::hash::Hash + Eq>(index: &mut HashMap<K, HashSet<usize>>, k: &K, i: usize) {
    if let Some(set) = index.get_mut(k) {
        set.remove(&i);
        if set.is_empty() {
            index.remove(k);
        }
    }
}

impl Maps {
    fn new(cap: usize) -> Maps {
        Maps {
            generation: 0,
            cap: cap.max(1),
            slots: Vec::new(),
            free: Vec::new(),
            hand: 0,
            keys: HashMap::new(),
            sessions: HashMap::new(),
            misses: HashSet::new(),
            by_key: HashMap::new(),
            by_user: HashMap::new(),
            by_org: HashMap::new(),
            expiry: BTreeSet::new(),
            orphans: Vec::new(),
            principals: HashMap::new(),
            guests: HashMap::new(),
            guests_by_org: HashMap::new(),
            guest_count: 0,
        }
    }

    fn forget_guests_of_user(&mut self, user: &UserId) {
        for (org, _) in self.guests.remove(user).unwrap_or_default() {
            self.guest_count -= 1;
            if let Some(users) = self.guests_by_org.get_mut(&org) {
                users.remove(user);
                if users.is_empty() {
                    self.guests_by_org.remove(&org);
                }
            }
        }
    }

    fn forget_guests_in_org(&mut self, org: &OrgId) {
        for user in self.guests_by_org.remove(org).unwrap_or_default() {
            if let Some(v) = self.guests.get_mut(&user) {
                let before = v.len();
                v.retain(|(o, _)| o != org);
                self.guest_count -= before - v.len();
                if v.is_empty() {
                    self.guests.remove(&user);
                }
            }
        }
    }

    fn len(&self) -> usize {
        self.keys.len() + self.sessions.len()
    }

    fn insert(&mut self, hash: Hash, entry: Entry) {
        let same = match &entry {
            Entry::Key(_) => {
                self.misses.remove(&hash);
                self.keys.get(&hash)
            }
            Entry::Session(_) => self.sessions.get(&hash),
        };
        if let Some(&i) = same {
            self.remove(i);
        }
        while self.len() >= self.cap {
            self.evict_one();
        }
        let i = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        match &entry {
            Entry::Key(k) => {
                self.keys.insert(hash, i);
                self.by_key.entry(k.key.id.clone()).or_default().push(i);
                // A principal loaded by a lookup that raced another one for the same
                // user and organization is not shared: the first one stays.
                let of_user = match self.principals.get_mut(&k.key.user_id) {
                    Some(v) => v,
                    None => self.principals.entry(k.key.user_id.clone()).or_default(),
                };
                match of_user.iter_mut().find(|s| s.org == k.key.organization_id) {
                    Some(s) if Arc::ptr_eq(&s.principal, &k.principal) => s.holders += 1,
                    Some(_) => {}
                    None => of_user.push(Shared {
                        org: k.key.organization_id.clone(),
                        principal: Arc::clone(&k.principal),
                        holders: 1,
                    }),
                }
            }
            Entry::Session(s) => {
                self.sessions.insert(hash, i);
                self.expiry.insert((s.session.expires_at, i));
            }
        }
        self.by_user
            .entry(entry.user().clone())
            .or_default()
            .insert(i);
        for org in entry.orgs().into_iter().flatten() {
            self.by_org.entry(org.clone()).or_default().insert(i);
        }
        self.slots[i] = Some(Slot {
            hash,
            entry,
            used: AtomicBool::new(false),
        });
    }

    fn remove(&mut self, i: usize) {
        let Some(slot) = self.slots.get_mut(i).and_then(Option::take) else {
            return;
        };
        self.free.push(i);
        match &slot.entry {
            Entry::Key(k) => {
                self.keys.remove(&slot.hash);
                if let Some(v) = self.by_key.get_mut(&k.key.id) {
                    v.retain(|&j| j != i);
                    if v.is_empty() {
                        self.by_key.remove(&k.key.id);
                    }
                }
                self.orphans.push(k.key.id.clone());
                if let Some(of_user) = self.principals.get_mut(&k.key.user_id)
                    && let Some(at) = of_user.iter().position(|s| {
                        s.org == k.key.organization_id && Arc::ptr_eq(&s.principal, &k.principal)
                    })
                {
                    of_user[at].holders -= 1;
                    if of_user[at].holders == 0 {
                        of_user.swap_remove(at);
                        if of_user.is_empty() {
                            self.principals.remove(&k.key.user_id);
                        }
                    }
                }
            }
            Entry::Session(s) => {
                self.sessions.remove(&slot.hash);
                self.expiry.remove(&(s.session.expires_at, i));
            }
        }
        unlink(&mut self.by_user, slot.entry.user(), i);
        for org in slot.entry.orgs().into_iter().flatten() {
            unlink(&mut self.by_org, org, i);
        }
    }

    /// Removes the least recently used entry (approximately). Only called with at least
    /// one entry; ends within two turns of the hand, as the first clears every flag.
    fn evict_one(&mut self) {
        loop {
            if self.hand >= self.slots.len() {
                self.hand = 0;
            }
            let i = self.hand;
            self.hand += 1;
            if let Some(s) = &self.slots[i]
                && !s.used.swap(false, Ordering::Relaxed)
            {
                self.remove(i);
                return;
            }
        }
    }

    fn remove_all(&mut self, slots: impl IntoIterator<Item = usize>) {
        for i in slots {
            self.remove(i);
        }
    }
}

fn mark(used: &AtomicBool) {
    // A plain load first: a hit on an entry already marked writes nothing.
    if !used.load(Ordering::Relaxed) {
        used.store(true, Ordering::Relaxed);
    }
}

pub struct AuthCache {
    maps: RwLock<Maps>,
    runtimes: Mutex<HashMap<ApiKeyId, Arc<KeyRuntime>>>,
    /// The runtimes whose usage changed since the last flush took them, so that a flush
    /// costs what was used, not what is cached.
    used: Mutex<Vec<Arc<KeyRuntime>>>,
}

/// What a key lookup found in the cache.
pub enum KeyHit {
    Found(Arc<CachedKey>),
    Missing,
    /// Not cached; load it, then `put_key` with this generation.
    Unknown(u64),
}

impl AuthCache {
    /// A cache of at most `cap` keys and sessions together (at least one).
    pub fn new(cap: usize) -> AuthCache {
        AuthCache {
            maps: RwLock::new(Maps::new(cap)),
            runtimes: Mutex::new(HashMap::new()),
            used: Mutex::new(Vec::new()),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Maps> {
        self.maps.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Maps> {
        self.maps.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn key(&self, hash: &[u8; 32]) -> KeyHit {
        let maps = self.read();
        if let Some(&i) = maps.keys.get(hash)
            && let Some(Slot {
                entry: Entry::Key(k),
                used,
                ..
            }) = &maps.slots[i]
        {
            mark(used);
            return KeyHit::Found(Arc::clone(k));
        }
        if maps.misses.contains(hash) {
            KeyHit::Missing
        } else {
            KeyHit::Unknown(maps.generation)
        }
    }

    /// The principal that the cached keys of `user` in `org` act as, if one is cached. A
    /// change that makes it stale drops those keys, and it goes with the last of them.
    pub fn principal(&self, user: &UserId, org: &OrgId) -> Option<Arc<Principal>> {
        let maps = self.read();
        let of_user = maps.principals.get(user)?;
        of_user
            .iter()
            .find(|s| s.org == *org)
            .map(|s| Arc::clone(&s.principal))
    }

    /// The principal of `user` in `org` for a credential that acts elsewhere: a cached
    /// key's if there is one, else one cached for this, else the generation to cache a
    /// fresh one under (`put_guest`).
    pub fn guest(&self, user: &UserId, org: &OrgId) -> Result<Arc<Principal>, u64> {
        let maps = self.read();
        let shared = maps
            .principals
            .get(user)
            .and_then(|v| v.iter().find(|s| s.org == *org));
        if let Some(s) = shared {
            return Ok(Arc::clone(&s.principal));
        }
        maps.guests
            .get(user)
            .and_then(|v| v.iter().find(|(o, _)| o == org))
            .map(|(_, p)| Arc::clone(p))
            .ok_or(maps.generation)
    }

    /// Caches a principal loaded for `guest`, unless something changed since.
    pub fn put_guest(&self, user: UserId, org: OrgId, generation: u64, p: Arc<Principal>) {
        let mut maps = self.write();
        if maps.generation != generation {
            return;
        }
        let of_user = maps.guests.entry(user.clone()).or_default();
        if of_user.iter().any(|(o, _)| *o == org) {
            return;
        }
        of_user.push((org.clone(), p));
        maps.guests_by_org.entry(org).or_default().insert(user);
        maps.guest_count += 1;
        if maps.guest_count > MAX_GUESTS {
            maps.guests.clear();
            maps.guests_by_org.clear();
            maps.guest_count = 0;
        }
    }

    /// Caches what a lookup that started at `generation` found, unless something changed
    /// since.
    pub fn put_key(&self, hash: [u8; 32], generation: u64, found: Option<Arc<CachedKey>>) {
        let mut maps = self.write();
        if maps.generation != generation {
            // Not cached: a change raced the lookup. The runtime made for it is an orphan.
            if let Some(k) = found {
                maps.orphans.push(k.key.id.clone());
            }
            return;
        }
        match found {
            Some(k) => maps.insert(hash, Entry::Key(k)),
            None => {
                if let Some(&i) = maps.keys.get(&hash) {
                    maps.remove(i);
                }
                if maps.misses.len() >= MAX_MISSES {
                    maps.misses.clear();
                }
                maps.misses.insert(hash);
            }
        }
    }

    pub fn session(&self, hash: &[u8; 32]) -> Result<Arc<CachedSession>, u64> {
        let maps = self.read();
        if let Some(&i) = maps.sessions.get(hash)
            && let Some(Slot {
                entry: Entry::Session(s),
                used,
                ..
            }) = &maps.slots[i]
        {
            mark(used);
            return Ok(Arc::clone(s));
        }
        Err(maps.generation)
    }

    pub fn put_session(&self, hash: [u8; 32], generation: u64, s: Arc<CachedSession>) {
        let mut maps = self.write();
        if maps.generation == generation {
            maps.insert(hash, Entry::Session(s));
        }
    }

    /// Drops what committed changes made stale, under one lock; each kind of drop finds
    /// its entries through an index. Every drop but that of expired sessions also moves
    /// the generation on, so a lookup that read before the change caches nothing.
    pub fn forget(&self, stale: &[Stale]) {
        let mut maps = self.write();
        for s in stale {
            let slots = match s {
                Stale::Key(id) => maps.by_key.remove(id).map(HashSet::from_iter),
                Stale::Secret(id, hash) => {
                    maps.misses.remove(hash);
                    maps.by_key.remove(id).map(HashSet::from_iter)
                }
                Stale::User(user) => {
                    maps.forget_guests_of_user(user);
                    maps.by_user.remove(user)
                }
                Stale::Org(org) => {
                    maps.forget_guests_in_org(org);
                    maps.by_org.remove(org)
                }
                Stale::Resources(_) | Stale::Domains => continue,
                Stale::Session(hash) => maps.sessions.get(hash).map(|&i| HashSet::from([i])),
                Stale::SessionsExpired(now) => {
                    while let Some(&(expires_at, i)) = maps.expiry.first()
                        && expires_at <= *now
                    {
                        maps.remove(i);
                    }
                    continue;
                }
            };
            maps.generation += 1;
            if let Some(slots) = slots {
                maps.remove_all(slots);
            }
        }
    }

    fn lock_runtimes(&self) -> std::sync::MutexGuard<'_, HashMap<ApiKeyId, Arc<KeyRuntime>>> {
        self.runtimes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The runtime of `key`, created from its stored counters on first use.
    pub fn runtime(&self, key: &ApiKey, now: i64) -> Arc<KeyRuntime> {
        let mut map = self.lock_runtimes();
        Arc::clone(map.entry(key.id.clone()).or_insert_with(|| {
            Arc::new(KeyRuntime {
                id: key.id.clone(),
                user_id: key.user_id.clone(),
                organization_id: key.organization_id.clone(),
                rate_limit: key.rate_limit,
                state: Mutex::new(RuntimeState {
                    bucket: key
                        .rate_limit
                        .map(|r| Bucket::full(r.max, r.window_ms, now)),
                    unleased: key.remaining,
                    lease: 0,
                    last_refill_at: key.last_refill_at,
                    last_used_at: key.last_used_at.unwrap_or(0),
                    pending: 0,
                    hours: PendingHours::default(),
                    client: None,
                    client_changed: false,
                    refusals: PendingRefusals::default(),
                }),
                leasing: tokio::sync::Mutex::new(()),
            })
        }))
    }

    /// The runtime of the key `id`, if it has one.
    pub fn runtime_of(&self, id: &ApiKeyId) -> Option<Arc<KeyRuntime>> {
        self.lock_runtimes().get(id).cloned()
    }

    pub fn drop_runtime(&self, id: &ApiKeyId) {
        self.lock_runtimes().remove(id);
    }

    /// Every runtime, for the flush at a clean stop.
    pub fn runtimes(&self) -> Vec<Arc<KeyRuntime>> {
        self.lock_runtimes().values().cloned().collect()
    }

    /// Notes that `rt` has usage to flush. Called once per key between two flushes: by the
    /// request that finds nothing waiting (`RuntimeState::waiting`).
    pub fn mark_used(&self, rt: &Arc<KeyRuntime>) {
        self.used
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::clone(rt));
    }

    /// The runtimes marked since the last call, for a flush.
    pub fn take_used(&self) -> Vec<Arc<KeyRuntime>> {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        // As many as last time, so that marking does not grow the list under its lock.
        let capacity = used.len();
        std::mem::replace(&mut *used, Vec::with_capacity(capacity))
    }

    /// Drops the runtimes that hold nothing the row does not: no cached key refers to
    /// them, no usage waits for a flush, no lease is unspent and the rate-limit bucket is
    /// full again. The next use of such a key builds an equal one from its row, so the
    /// runtimes stay about as many as the cached keys plus the keys in use since the
    /// last flush. Only the runtimes of keys that left the cache since the last prune are
    /// looked at, and those that still held something then: the cost follows what
    /// changed, not what is cached. Answers how many went.
    pub fn prune_runtimes(&self, now: i64) -> usize {
        let mut candidates = std::mem::take(&mut self.write().orphans);
        if candidates.is_empty() {
            return 0;
        }
        candidates.sort_unstable();
        candidates.dedup();
        let mut waiting = Vec::new();
        let mut gone = 0;
        {
            let maps = self.read();
            let mut map = self.lock_runtimes();
            for id in candidates {
                // Cached again: the next time its entry goes, it is named again.
                if maps.by_key.contains_key(&id) {
                    continue;
                }
                let Some(rt) = map.get(&id) else {
                    continue;
                };
                // Under the lock no one can take a new reference to a runtime only the map
                // holds.
                if Arc::strong_count(rt) == 1 && rt.idle(now) {
                    map.remove(&id);
                    gone += 1;
                } else {
                    waiting.push(id);
                }
            }
        }
        self.write().orphans.extend(waiting);
        gone
    }
}

impl KeyRuntime {
    fn idle(&self, now: i64) -> bool {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let rested = match (s.bucket, self.rate_limit) {
            (Some(b), Some(rl)) => b.is_full(rl.max, rl.window_ms, now),
            _ => true,
        };
        !s.waiting() && s.lease == 0 && rested
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
    pub rendered: std::sync::OnceLock<Arc<String>>,
    /// The listings rendered for callers who see part of it (see `ViewSlot`). They belong
    /// to the snapshot, so they go with it.
    views: Mutex<Views>,
}

/// The most bytes of listings one snapshot keeps for callers who see part of it; past it
/// the oldest go. Each is at most the size of the full listing.
pub const VIEW_BYTES_MAX: usize = 8 << 20;

/// Rendered listings, oldest first, and their bytes.
#[derive(Debug)]
struct Views {
    held: VecDeque<Arc<String>>,
    bytes: usize,
    max: usize,
}

impl OrgResources {
    pub fn new(
        projects: Vec<crate::model::Project>,
        environments: Vec<crate::model::Environment>,
        applications: Vec<crate::model::Application>,
    ) -> OrgResources {
        OrgResources::with_view_bytes(projects, environments, applications, VIEW_BYTES_MAX)
    }

    fn with_view_bytes(
        projects: Vec<crate::model::Project>,
        environments: Vec<crate::model::Environment>,
        applications: Vec<crate::model::Application>,
        max: usize,
    ) -> OrgResources {
        OrgResources {
            projects,
            environments,
            applications,
            rendered: std::sync::OnceLock::new(),
            views: Mutex::new(Views {
                held: VecDeque::new(),
                bytes: 0,
                max,
            }),
        }
    }

    /// Keeps a rendered view for as long as the snapshot lives (or until newer views push
    /// it out); false when it alone is over the budget.
    fn keep(&self, json: &Arc<String>) -> bool {
        let mut v = self.views.lock().unwrap_or_else(|p| p.into_inner());
        if json.len() > v.max {
            return false;
        }
        while v.bytes + json.len() > v.max {
            let Some(old) = v.held.pop_front() else { break };
            v.bytes -= old.len();
        }
        v.bytes += json.len();
        v.held.push_back(Arc::clone(json));
        true
    }
}

/// The listing one credential sees of its organization's resources, as rendered from one
/// snapshot. What decides it (the role, the access lists, the key's scope) never changes
/// inside a cached credential: any change of them drops the credential from the cache,
/// as authorization needs anyway. And the snapshot goes at every write to the
/// resources. So a view rendered from the snapshot in hand is exactly what rendering
/// afresh would give. The text belongs to the snapshot (`OrgResources::keep`), so it is
/// freed with it; the slot holds weak handles only.
#[derive(Debug, Default)]
pub struct ViewSlot(RwLock<Option<(Weak<OrgResources>, Weak<String>)>>);

impl ViewSlot {
    /// This credential's view of `snap`: the one kept, or `render`'s, kept for next time.
    pub fn get_or_render(
        &self,
        snap: &Arc<OrgResources>,
        render: impl FnOnce() -> String,
    ) -> Arc<String> {
        if let Some(v) = self.of(snap) {
            return v;
        }
        let json = Arc::new(render());
        let mut slot = self.0.write().unwrap_or_else(|p| p.into_inner());
        // Another request of this credential may have kept one meanwhile.
        if Self::held(&slot, snap).is_none() && snap.keep(&json) {
            *slot = Some((Arc::downgrade(snap), Arc::downgrade(&json)));
        }
        json
    }

    fn of(&self, snap: &Arc<OrgResources>) -> Option<Arc<String>> {
        Self::held(&self.0.read().unwrap_or_else(|p| p.into_inner()), snap)
    }

    fn held(
        slot: &Option<(Weak<OrgResources>, Weak<String>)>,
        snap: &Arc<OrgResources>,
    ) -> Option<Arc<String>> {
        // The weak handle keeps the snapshot's allocation, so its address is not reused
        // by a later snapshot while the slot names it.
        let (from, view) = slot.as_ref()?;
        std::ptr::eq(from.as_ptr(), Arc::as_ptr(snap))
            .then(|| view.upgrade())
            .flatten()
    }
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

#[cfg(test)]
impl AuthCache {
    /// Panics unless every index names exactly the live entries that belong under it.
    fn assert_exact(&self) {
        let m = self.read();
        let mut keys = HashMap::new();
        let mut sessions = HashMap::new();
        let mut by_key: HashMap<ApiKeyId, Vec<usize>> = HashMap::new();
        let mut by_user: HashMap<UserId, HashSet<usize>> = HashMap::new();
        let mut by_org: HashMap<OrgId, HashSet<usize>> = HashMap::new();
        let mut expiry = BTreeSet::new();
        let mut free = HashSet::new();
        for (i, slot) in m.slots.iter().enumerate() {
            let Some(slot) = slot else {
                free.insert(i);
                continue;
            };
            match &slot.entry {
                Entry::Key(k) => {
                    keys.insert(slot.hash, i);
                    by_key.entry(k.key.id.clone()).or_default().push(i);
                }
                Entry::Session(s) => {
                    sessions.insert(slot.hash, i);
                    expiry.insert((s.session.expires_at, i));
                }
            }
            by_user
                .entry(slot.entry.user().clone())
                .or_default()
                .insert(i);
            for o in slot.entry.orgs().into_iter().flatten() {
                by_org.entry(o.clone()).or_default().insert(i);
            }
        }
        let mut actual_by_key = m.by_key.clone();
        for v in by_key.values_mut().chain(actual_by_key.values_mut()) {
            v.sort_unstable();
        }
        assert_eq!(m.keys, keys);
        assert_eq!(m.sessions, sessions);
        assert_eq!(actual_by_key, by_key);
        assert_eq!(m.by_user, by_user);
        assert_eq!(m.by_org, by_org);
        assert_eq!(m.expiry, expiry);
        assert_eq!(m.free.iter().copied().collect::<HashSet<_>>(), free);
        assert_eq!(m.free.len(), free.len(), "a free slot listed twice");
        assert!(m.len() <= m.cap);
        assert!(m.misses.iter().all(|h| !m.keys.contains_key(h)));
        // Each shared principal counts the cached keys that hold it, and has one at least.
        let shared = m.principals.iter().flat_map(|(user, v)| {
            v.iter()
                .map(move |s| ((user, &s.org), (&s.principal, &s.holders)))
        });
        for ((user, org), (p, count)) in shared {
            let holders = m
                .slots
                .iter()
                .flatten()
                .filter(|s| match &s.entry {
                    Entry::Key(k) => {
                        k.key.user_id == *user
                            && k.key.organization_id == *org
                            && Arc::ptr_eq(&k.principal, p)
                    }
                    Entry::Session(_) => false,
                })
                .count();
            assert_eq!(
                holders, *count,
                "holders of the principal of {user:?} in {org:?}"
            );
            assert!(*count > 0, "a principal no cached key holds");
        }
    }

    fn len(&self) -> usize {
        self.read().len()
    }

    // Peeks that, unlike a lookup, do not count as a use.
    fn has_key(&self, hash: &Hash) -> bool {
        self.read().keys.contains_key(hash)
    }

    fn has_miss(&self, hash: &Hash) -> bool {
        self.read().misses.contains(hash)
    }

    fn has_session(&self, hash: &Hash) -> bool {
        self.read().sessions.contains_key(hash)
    }

    fn generation(&self) -> u64 {
        self.read().generation
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Flags, KeyScope, MemberId, Role, SessionId};

    fn h(n: u32) -> Hash {
        let mut h = [0; 32];
        h[..4].copy_from_slice(&n.to_le_bytes());
        h
    }

    fn principal(user: &str, org: Option<&str>) -> Arc<Principal> {
        Arc::new(Principal {
            user: User {
                id: UserId(user.into()),
                name: user.into(),
                email: format!("{user}@example.com"),
                created_at: 0,
                updated_at: 0,
                two_factor_enabled: false,
            },
            membership: match org {
                Some(o) => Ok(Membership {
                    id: MemberId(format!("{user}-{o}")),
                    organization_id: OrgId(o.into()),
                    user_id: UserId(user.into()),
                    role: Role::Member,
                    flags: Flags::default(),
                    created_at: 0,
                }),
                None => Err(Reason::NotAMember),
            },
            lists: AccessLists::default(),
            permissions_view: OnceLock::new(),
        })
    }

    fn api_key(id: &str, user: &str, org: &str) -> ApiKey {
        ApiKey {
            id: ApiKeyId(id.into()),
            name: id.into(),
            prefix: "kg".into(),
            start: "kg_".into(),
            user_id: UserId(user.into()),
            organization_id: OrgId(org.into()),
            enabled: true,
            expires_at: None,
            rate_limit: None,
            remaining: None,
            refill: None,
            last_refill_at: None,
            scope: KeyScope::default(),
            last_used_at: None,
            request_count: 0,
            last_address: None,
            last_user_agent: None,
            created_at: 0,
            updated_at: 0,
            previous_expires_at: None,
        }
    }

    fn cached_key(c: &AuthCache, id: &str, user: &str, org: &str) -> Arc<CachedKey> {
        let key = api_key(id, user, org);
        Arc::new(CachedKey {
            runtime: c.runtime(&key, 0),
            key,
            previous_secret: false,
            principal: principal(user, Some(org)),
            view: ViewSlot::default(),
        })
    }

    fn cached_session(user: &str, org: Option<&str>, expires_at: i64) -> Arc<CachedSession> {
        Arc::new(CachedSession {
            session: Session {
                id: SessionId(format!("s-{user}-{expires_at}")),
                user_id: UserId(user.into()),
                active_organization_id: org.map(|o| OrgId(o.into())),
                created_at: 0,
                updated_at: 0,
                expires_at,
                ip_address: None,
                user_agent: None,
            },
            principal: principal(user, org),
            view: ViewSlot::default(),
            two_factor_blocked: false,
        })
    }

    fn put_key(c: &AuthCache, hash: Hash, id: &str, user: &str, org: &str) {
        let k = cached_key(c, id, user, org);
        c.put_key(hash, c.generation(), Some(k));
    }

    fn put_miss(c: &AuthCache, hash: Hash) {
        c.put_key(hash, c.generation(), None);
    }

    fn put_session(c: &AuthCache, hash: Hash, user: &str, org: Option<&str>, expires_at: i64) {
        c.put_session(hash, c.generation(), cached_session(user, org, expires_at));
    }

    /// Caches key `id` of `user` in `org` acting as the principal the cache shares for
    /// them, the way a lookup does, or as a fresh one when none is cached.
    fn put_key_sharing(c: &AuthCache, hash: Hash, id: &str, user: &str, org: &str) {
        let (u, o) = (UserId(user.into()), OrgId(org.into()));
        let key = api_key(id, user, org);
        let k = Arc::new(CachedKey {
            runtime: c.runtime(&key, 0),
            key,
            previous_secret: false,
            principal: c
                .principal(&u, &o)
                .unwrap_or_else(|| principal(user, Some(org))),
            view: ViewSlot::default(),
        });
        c.put_key(hash, c.generation(), Some(k));
    }

    fn shared(c: &AuthCache, user: &str, org: &str) -> Option<Arc<Principal>> {
        c.principal(&UserId(user.into()), &OrgId(org.into()))
    }

    #[test]
    fn a_users_keys_in_one_organization_share_one_principal_which_goes_with_the_last() {
        let c = AuthCache::new(100);
        assert!(shared(&c, "u", "o").is_none());
        put_key_sharing(&c, h(1), "k1", "u", "o");
        put_key_sharing(&c, h(2), "k2", "u", "o");
        put_key_sharing(&c, h(3), "k3", "u", "other");
        put_key_sharing(&c, h(4), "k4", "v", "o");
        c.assert_exact();
        let p = shared(&c, "u", "o").expect("cached with the first key");
        let KeyHit::Found(k1) = c.key(&h(1)) else {
            panic!("k1 cached")
        };
        let KeyHit::Found(k2) = c.key(&h(2)) else {
            panic!("k2 cached")
        };
        assert!(Arc::ptr_eq(&k1.principal, &p) && Arc::ptr_eq(&k2.principal, &p));
        let other = shared(&c, "u", "other").expect("its own in another organization");
        assert!(!Arc::ptr_eq(&other, &p));
        assert!(!Arc::ptr_eq(&shared(&c, "v", "o").unwrap(), &p));

        // One key going leaves it to the other; the last one takes it along.
        c.forget(&[Stale::Key(ApiKeyId("k1".into()))]);
        c.assert_exact();
        assert!(shared(&c, "u", "o").is_some_and(|q| Arc::ptr_eq(&q, &p)));
        c.forget(&[Stale::Key(ApiKeyId("k2".into()))]);
        c.assert_exact();
        assert!(shared(&c, "u", "o").is_none());

        // A change of the user drops all of theirs, in every organization.
        put_key_sharing(&c, h(1), "k1", "u", "o");
        c.forget(&[Stale::User(UserId("u".into()))]);
        c.assert_exact();
        assert!(shared(&c, "u", "o").is_none() && shared(&c, "u", "other").is_none());
        assert!(shared(&c, "v", "o").is_some());
        c.forget(&[Stale::Org(OrgId("o".into()))]);
        c.assert_exact();
        assert!(shared(&c, "v", "o").is_none());
    }

    #[test]
    fn a_principal_loaded_by_a_racing_lookup_is_not_shared_and_the_shared_one_stays_exact() {
        let c = AuthCache::new(100);
        put_key_sharing(&c, h(1), "k1", "u", "o");
        let first = shared(&c, "u", "o").unwrap();
        // A second lookup that loaded its own principal before the first was cached.
        put_key(&c, h(2), "k2", "u", "o");
        c.assert_exact();
        assert!(shared(&c, "u", "o").is_some_and(|p| Arc::ptr_eq(&p, &first)));
        // The first key's going takes the shared one, the racing key keeps its own.
        c.forget(&[Stale::Key(ApiKeyId("k1".into()))]);
        c.assert_exact();
        assert!(shared(&c, "u", "o").is_none());
        assert!(matches!(c.key(&h(2)), KeyHit::Found(_)));
    }

    #[test]
    fn the_indexes_stay_exact_through_adds_replacements_drops_and_evictions() {
        let c = AuthCache::new(16);
        // A small linear congruential generator: the same mixed sequence every run.
        let mut seed: u64 = 7;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        let users = ["ada", "bob", "cy"];
        let orgs = ["o1", "o2"];
        for step in 0..5_000 {
            let hash = h(next(40) as u32);
            let user = users[next(3) as usize];
            let org = orgs[next(2) as usize];
            let id = format!("k{}", next(12));
            match next(10) {
                0..=2 => put_key(&c, hash, &id, user, org),
                3 => put_miss(&c, hash),
                4 | 5 => {
                    let org = (next(3) > 0).then_some(org);
                    put_session(&c, hash, user, org, next(100) as i64)
                }
                6 => c.forget(&[Stale::Key(ApiKeyId(id.clone()))]),
                7 => match next(4) {
                    0 => c.forget(&[Stale::User(UserId(user.into()))]),
                    1 => c.forget(&[Stale::Org(OrgId(org.into()))]),
                    2 => c.forget(&[Stale::Secret(ApiKeyId(id.clone()), hash)]),
                    _ => c.forget(&[Stale::Session(hash)]),
                },
                8 => c.forget(&[Stale::SessionsExpired(next(100) as i64)]),
                _ => {
                    // Hits, which mark entries for the eviction hand.
                    c.key(&hash);
                    let _ = c.session(&hash);
                }
            }
            c.assert_exact();
            assert!(c.len() <= 16, "step {step}: {} entries", c.len());
        }
    }

    #[test]
    fn pending_hours_count_in_place_and_keep_an_hour_that_ended_before_the_flush() {
        let mut h = PendingHours::default();
        assert!(h.is_empty());
        h.at(10).ok += 1;
        h.at(HOUR - 1).ok += 1;
        assert!(h.earlier.is_empty(), "one hour so far");
        h.at(HOUR).refused += 1;
        h.at(3 * HOUR + 5).rate_limited += 2;
        let counts = |ok, rate_limited, refused| Outcomes {
            ok,
            rate_limited,
            refused,
            ..Outcomes::default()
        };
        let all: Vec<UsageHour> = h.iter().copied().collect();
        assert_eq!(
            all,
            [
                UsageHour {
                    hour: 0,
                    counts: counts(2, 0, 0)
                },
                UsageHour {
                    hour: HOUR,
                    counts: counts(0, 0, 1)
                },
                UsageHour {
                    hour: 3 * HOUR,
                    counts: counts(0, 2, 0)
                },
            ]
        );
        // What a failed flush puts back joins the counts of its hour.
        let mut since = PendingHours::default();
        since.at(3 * HOUR).ok += 1;
        for u in &all {
            since.add(u);
        }
        let back: Vec<UsageHour> = since.iter().copied().collect();
        assert_eq!(back.len(), 3);
        assert_eq!(
            back[2],
            UsageHour {
                hour: 3 * HOUR,
                counts: counts(1, 2, 0)
            }
        );
        // An hour with nothing counted is not kept.
        let mut quiet = PendingHours::default();
        quiet.at(0);
        quiet.at(HOUR).ok += 1;
        assert_eq!(quiet.iter().count(), 1);
    }

    #[test]
    fn a_client_is_stored_when_it_changes_and_its_user_agent_cut_at_a_character_boundary() {
        let v4 = Some(IpAddr::from([192, 0, 2, 7]));
        let mut slot = None;
        assert!(
            Client::observe(&mut slot, None, None),
            "a first client counts"
        );
        assert!(!Client::observe(&mut slot, None, None));
        assert!(Client::observe(&mut slot, v4, Some("curl/8")));
        assert!(!Client::observe(&mut slot, v4, Some("curl/8")));
        assert!(Client::observe(&mut slot, v4, Some("curl/9")));
        assert!(Client::observe(&mut slot, None, Some("curl/9")));
        let long = format!("x{}", "é".repeat(200));
        assert!(Client::observe(&mut slot, v4, Some(&long)));
        let cut = slot.as_ref().and_then(|c| c.user_agent.clone()).unwrap();
        assert_eq!(cut.len(), 255);
        assert!(long.starts_with(&cut));
        assert!(
            !Client::observe(&mut slot, v4, Some(&long)),
            "the same once cut"
        );
    }

    #[test]
    fn refusals_put_back_after_a_failed_flush_join_those_counted_since() {
        let tally = |first_at, last_at, count| RefusalTally {
            first_at,
            last_at,
            count,
            start: "kg_".into(),
            client: None,
        };
        let mut now = PendingRefusals {
            disabled: Some(tally(50, 60, 2)),
            expired: None,
        };
        now.put_back(PendingRefusals {
            disabled: Some(tally(10, 40, 3)),
            expired: Some(tally(20, 20, 1)),
        });
        assert_eq!(now.disabled, Some(tally(10, 60, 5)));
        assert_eq!(now.expired, Some(tally(20, 20, 1)));
        assert!(now.of(Reason::PermissionDenied).is_none());
        assert_eq!(now.iter().count(), 2);
    }

    #[test]
    fn a_users_drop_leaves_other_users_and_every_miss_in_place() {
        let c = AuthCache::new(100);
        put_key(&c, h(1), "k1", "ada", "o1");
        put_key(&c, h(2), "k2", "ada", "o2");
        put_key(&c, h(3), "k3", "bob", "o1");
        put_session(&c, h(4), "ada", Some("o1"), 1_000);
        put_session(&c, h(5), "bob", Some("o1"), 1_000);
        put_miss(&c, h(6));

        c.forget(&[Stale::User(UserId("ada".into()))]);

        assert!(!c.has_key(&h(1)) && !c.has_key(&h(2)) && !c.has_session(&h(4)));
        assert!(c.has_key(&h(3)) && c.has_session(&h(5)));
        assert!(c.has_miss(&h(6)));
        c.assert_exact();
    }

    #[test]
    fn an_organizations_drop_takes_its_keys_and_the_sessions_acting_in_it_only() {
        let c = AuthCache::new(100);
        put_key(&c, h(1), "k1", "ada", "o1");
        put_key(&c, h(2), "k2", "ada", "o2");
        put_session(&c, h(3), "ada", Some("o1"), 1_000);
        put_session(&c, h(4), "ada", Some("o2"), 1_000);
        put_session(&c, h(5), "bob", None, 1_000);
        put_miss(&c, h(6));

        c.forget(&[Stale::Org(OrgId("o1".into()))]);

        assert!(!c.has_key(&h(1)) && !c.has_session(&h(3)));
        assert!(c.has_key(&h(2)) && c.has_session(&h(4)) && c.has_session(&h(5)));
        assert!(c.has_miss(&h(6)));
        c.assert_exact();
    }

    #[test]
    fn a_keys_drop_takes_both_its_secrets_and_nothing_else() {
        let c = AuthCache::new(100);
        // The current secret and the one from before a rotation.
        put_key(&c, h(1), "k1", "ada", "o1");
        put_key(&c, h(2), "k1", "ada", "o1");
        put_key(&c, h(3), "k2", "ada", "o1");
        put_session(&c, h(4), "ada", Some("o1"), 1_000);
        put_miss(&c, h(5));

        c.forget(&[Stale::Key(ApiKeyId("k1".into()))]);

        assert!(!c.has_key(&h(1)) && !c.has_key(&h(2)));
        assert!(c.has_key(&h(3)) && c.has_session(&h(4)) && c.has_miss(&h(5)));
        c.assert_exact();
    }

    #[test]
    fn a_new_secret_drops_the_miss_of_its_hash_and_keeps_the_others() {
        let c = AuthCache::new(100);
        put_miss(&c, h(1));
        put_miss(&c, h(2));

        c.forget(&[Stale::Secret(ApiKeyId("k1".into()), h(1))]);

        assert!(matches!(c.key(&h(1)), KeyHit::Unknown(_)));
        assert!(c.has_miss(&h(2)));
    }

    #[test]
    fn a_session_drop_takes_that_session_only() {
        let c = AuthCache::new(100);
        put_session(&c, h(1), "ada", Some("o1"), 1_000);
        put_session(&c, h(2), "ada", Some("o1"), 1_000);
        put_key(&c, h(3), "k1", "ada", "o1");

        c.forget(&[Stale::Session(h(1))]);

        assert!(!c.has_session(&h(1)));
        assert!(c.has_session(&h(2)) && c.has_key(&h(3)));
        c.assert_exact();
    }

    #[test]
    fn expired_sessions_go_and_live_ones_stay() {
        let c = AuthCache::new(100);
        put_session(&c, h(1), "ada", None, 10);
        put_session(&c, h(2), "ada", None, 20);
        put_session(&c, h(3), "bob", None, 30);

        c.forget(&[Stale::SessionsExpired(20)]);

        assert!(!c.has_session(&h(1)) && !c.has_session(&h(2)));
        assert!(c.has_session(&h(3)));
        c.assert_exact();
    }

    #[test]
    fn the_cache_holds_at_most_its_cap_and_evicts_what_was_not_used_recently() {
        let c = AuthCache::new(3);
        put_key(&c, h(1), "k1", "ada", "o1");
        put_key(&c, h(2), "k2", "ada", "o1");
        put_session(&c, h(3), "ada", None, 1_000);
        assert!(matches!(c.key(&h(1)), KeyHit::Found(_)));
        assert!(c.session(&h(3)).is_ok());

        put_key(&c, h(4), "k4", "ada", "o1");

        assert_eq!(c.len(), 3);
        assert!(!c.has_key(&h(2)), "the one entry not used since it came");
        assert!(c.has_key(&h(1)) && c.has_session(&h(3)) && c.has_key(&h(4)));

        // Each round uses two of the three entries; the third goes.
        for n in 5..50 {
            assert!(matches!(c.key(&h(n - 1)), KeyHit::Found(_)));
            assert!(matches!(c.key(&h(1)), KeyHit::Found(_)));
            put_key(&c, h(n), &format!("k{n}"), "ada", "o1");
            assert_eq!(c.len(), 3);
            assert!(c.has_key(&h(1)) && c.has_key(&h(n - 1)) && c.has_key(&h(n)));
            c.assert_exact();
        }
    }

    #[test]
    fn a_replaced_entry_counts_once() {
        let c = AuthCache::new(2);
        put_key(&c, h(1), "k1", "ada", "o1");
        put_key(&c, h(1), "k1", "ada", "o1");
        put_session(&c, h(1), "ada", None, 1_000);
        put_session(&c, h(1), "ada", None, 1_000);

        assert_eq!(c.len(), 2);
        assert!(c.has_key(&h(1)) && c.has_session(&h(1)));
        c.assert_exact();
    }

    #[test]
    fn a_lookup_that_raced_a_change_caches_nothing() {
        let c = AuthCache::new(100);
        let KeyHit::Unknown(before) = c.key(&h(1)) else {
            panic!("nothing is cached yet");
        };
        let Err(session_before) = c.session(&h(2)) else {
            panic!("nothing is cached yet");
        };
        // Any change, even of an entry that is not cached.
        c.forget(&[Stale::User(UserId("someone".into()))]);

        c.put_key(h(1), before, Some(cached_key(&c, "k1", "ada", "o1")));
        c.put_key(h(3), before, None);
        c.put_session(h(2), session_before, cached_session("ada", None, 1_000));

        assert!(matches!(c.key(&h(1)), KeyHit::Unknown(_)));
        assert!(matches!(c.key(&h(3)), KeyHit::Unknown(_)));
        assert!(!c.has_session(&h(2)));
        for change in [
            |c: &AuthCache| c.forget(&[Stale::Org(OrgId("o".into()))]),
            |c: &AuthCache| c.forget(&[Stale::Key(ApiKeyId("k".into()))]),
            |c: &AuthCache| c.forget(&[Stale::Secret(ApiKeyId("k".into()), h(9))]),
            |c: &AuthCache| c.forget(&[Stale::Session(h(9))]),
        ] {
            let g = c.generation();
            change(&c);
            c.put_key(h(1), g, None);
            assert!(!c.has_miss(&h(1)));
        }
    }

    #[test]
    fn an_eviction_does_not_turn_lookups_away() {
        let c = AuthCache::new(1);
        let KeyHit::Unknown(g) = c.key(&h(1)) else {
            panic!("nothing is cached yet");
        };
        put_key(&c, h(2), "k2", "ada", "o1");
        put_key(&c, h(3), "k3", "ada", "o1");

        c.put_key(h(1), g, Some(cached_key(&c, "k1", "ada", "o1")));

        assert!(c.has_key(&h(1)));
    }

    #[test]
    fn a_prune_looks_at_the_keys_that_left_the_cache_and_drops_their_idle_runtimes() {
        let c = AuthCache::new(10);
        let held = |id: &str| c.runtime_of(&ApiKeyId(id.into())).is_some();
        put_key(&c, h(1), "k1", "ada", "o1");
        put_key(&c, h(2), "k2", "ada", "o1");
        // A lookup that a change raced: its key was not cached, its runtime is an orphan.
        let raced = cached_key(&c, "k3", "ada", "o1");
        let before = c.generation();
        c.forget(&[Stale::Key(ApiKeyId("k9".into()))]);
        c.put_key(h(3), before, Some(raced));
        assert!(!c.has_key(&h(3)));
        assert_eq!(c.prune_runtimes(0), 1, "only the raced key's runtime goes");
        assert!(held("k1") && held("k2") && !held("k3"));

        // Dropped, then cached again before the prune: kept, and named again when it goes.
        c.forget(&[Stale::Key(ApiKeyId("k1".into()))]);
        put_key(&c, h(1), "k1", "ada", "o1");
        assert_eq!(c.prune_runtimes(0), 0);
        assert!(held("k1"));
        c.forget(&[Stale::Key(ApiKeyId("k1".into()))]);
        assert_eq!(c.prune_runtimes(0), 1);
        assert!(!held("k1") && held("k2"));
        // Nothing left the cache since: nothing to look at.
        assert_eq!(c.prune_runtimes(0), 0);
        assert!(held("k2"));
    }

    #[test]
    fn a_runtime_outlives_its_evicted_entry_while_it_holds_anything() {
        let c = AuthCache::new(1);
        let mut limited = api_key("k1", "ada", "o1");
        limited.rate_limit = Some(RateLimit {
            window_ms: 1_000,
            max: 10,
        });
        let rt = c.runtime(&limited, 0);
        c.put_key(
            h(1),
            c.generation(),
            Some(Arc::new(CachedKey {
                runtime: Arc::clone(&rt),
                key: limited.clone(),
                previous_secret: false,
                principal: principal("ada", Some("o1")),
                view: ViewSlot::default(),
            })),
        );
        {
            let mut s = rt.state.lock().unwrap();
            s.pending = 1;
            s.lease = 5;
            s.bucket
                .as_mut()
                .unwrap()
                .take(10, 1_000, 0)
                .expect("a full bucket");
        }
        drop(rt);
        let held = || c.runtime_of(&ApiKeyId("k1".into())).is_some();

        // Cached: kept whatever it holds.
        c.prune_runtimes(0);
        assert!(held());
        put_key(&c, h(2), "k2", "ada", "o1");
        assert!(!c.has_key(&h(1)), "evicted");
        let rt = c.runtime_of(&ApiKeyId("k1".into())).unwrap();

        // Evicted, with usage to flush, a lease and a partly spent bucket.
        c.prune_runtimes(0);
        assert!(held());
        rt.state.lock().unwrap().pending = 0;
        c.prune_runtimes(0);
        assert!(held());
        rt.state.lock().unwrap().lease = 0;
        c.prune_runtimes(50);
        assert!(held(), "the bucket is not full again yet");
        // Someone still holds it (a request in flight).
        c.prune_runtimes(10_000);
        assert!(held());
        drop(rt);
        assert_eq!(c.prune_runtimes(10_000), 1);
        assert!(!held());
    }
    fn empty_snapshot(view_bytes: usize) -> Arc<OrgResources> {
        Arc::new(OrgResources::with_view_bytes(
            Vec::new(),
            Vec::new(),
            Vec::new(),
            view_bytes,
        ))
    }

    #[test]
    fn a_view_is_rendered_once_per_snapshot_and_again_for_the_next_one() {
        let slot = ViewSlot::default();
        let renders = std::cell::Cell::new(0);
        let render = |text: &str| {
            renders.set(renders.get() + 1);
            text.to_owned()
        };
        let first = empty_snapshot(VIEW_BYTES_MAX);

        assert_eq!(slot.get_or_render(&first, || render("one")).as_str(), "one");
        assert_eq!(
            slot.get_or_render(&first, || render("other")).as_str(),
            "one"
        );
        assert_eq!(renders.get(), 1);

        // A write dropped the snapshot: the next one renders afresh, even while a request
        // in flight still holds the first.
        let second = empty_snapshot(VIEW_BYTES_MAX);
        assert_eq!(
            slot.get_or_render(&second, || render("two")).as_str(),
            "two"
        );
        assert_eq!(
            slot.get_or_render(&second, || render("other")).as_str(),
            "two"
        );
        assert_eq!(renders.get(), 2);
        assert_eq!(
            slot.get_or_render(&first, || render("one again")).as_str(),
            "one again"
        );
    }

    #[test]
    fn a_view_is_freed_with_its_snapshot() {
        let slot = ViewSlot::default();
        let snap = empty_snapshot(VIEW_BYTES_MAX);
        slot.get_or_render(&snap, || "x".repeat(1000));
        let held = |slot: &ViewSlot| {
            let s = slot.0.read().unwrap();
            s.as_ref().map(|(_, view)| view.strong_count())
        };
        assert_eq!(held(&slot), Some(1), "the snapshot holds the text");

        drop(snap);

        assert_eq!(held(&slot), Some(0), "the text went with the snapshot");
    }

    #[test]
    fn a_snapshot_keeps_views_within_its_budget_and_drops_the_oldest_first() {
        let snap = empty_snapshot(25);
        let slots: Vec<ViewSlot> = (0..4).map(|_| ViewSlot::default()).collect();
        let renders = std::cell::Cell::new(0);
        let view = |i: usize| {
            slots[i].get_or_render(&snap, || {
                renders.set(renders.get() + 1);
                format!("view {i} ...")
            })
        };
        // Ten bytes each: two fit in 25, the third pushes the first out.
        view(0);
        view(1);
        view(2);
        assert_eq!(renders.get(), 3);
        view(1);
        view(2);
        assert_eq!(renders.get(), 3, "the two newest are kept");
        view(0);
        assert_eq!(renders.get(), 4, "the oldest was dropped");
        let v = snap.views.lock().unwrap();
        assert!(v.bytes <= 25 && v.held.len() == 2, "{} bytes", v.bytes);
        drop(v);

        // A view larger than the whole budget is rendered each time and never kept.
        let big = || slots[3].get_or_render(&snap, || "y".repeat(26));
        big();
        big();
        assert_eq!(snap.views.lock().unwrap().held.len(), 2);
        assert!(slots[3].of(&snap).is_none());
    }
}
