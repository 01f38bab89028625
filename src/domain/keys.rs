//! API keys: created once, verified from memory, refused precisely.

use std::sync::Arc;

use super::State;
use super::access::{self, Actor, Via, load_principal};
use super::audit;
use super::cache::{
    CachedKey, Client, KeyHit, KeyRuntime, PendingHours, PendingRefusals, RefusalTally,
    RuntimeState, ViewSlot,
};
use super::limiter::Bucket;
use super::policy::{self, Authorized, Op, op};
use crate::auth::{apikey, token};
use crate::clock::{DAY, HOUR, SECOND};
use crate::error::{Backoff, Checks, Error, Reason, Result, Throttle};
use crate::model::{
    ApiKey, ApiKeyId, KeyScope, Name, OrgId, Page, Paging, RateLimit, Refill, Role, User,
};
use crate::store;
use crate::store::audit::{Event, Origin, Outcome, Who};
use crate::store::keys::Usage;
/// A key's requests by outcome, and per hour, as the usage series shows them.
pub use crate::store::keys::{Outcomes, UsageHour};

pub const NAME_MAX: usize = 32;
pub const EXPIRES_MIN_SECS: i64 = DAY / SECOND;
pub const EXPIRES_MAX_SECS: i64 = 365 * DAY / SECOND;
pub const GRACE_MAX_SECS: i64 = 7 * DAY / SECOND;

/// `user.createApiKey` input, in Dokploy's names and units.
#[derive(Debug, Default)]
pub struct NewKey {
    pub name: String,
    pub organization_id: String,
    pub prefix: Option<String>,
    /// Seconds from now.
    pub expires_in: Option<i64>,
    pub rate_limit_enabled: Option<bool>,
    /// Milliseconds.
    pub rate_limit_time_window: Option<i64>,
    pub rate_limit_max: Option<i64>,
    pub remaining: Option<i64>,
    pub refill_amount: Option<i64>,
    /// Milliseconds.
    pub refill_interval: Option<i64>,
    pub read_only: bool,
    pub project_ids: Option<Vec<String>>,
}

/// Checks the input and builds the record (without id and times).
fn parse_new(
    n: &NewKey,
    default_limit: Option<(u32, i64)>,
) -> Result<(Name, String, Option<RateLimit>, Option<Refill>)> {
    let mut c = Checks::new();
    let name = c.field("name", Name::parse(&n.name, NAME_MAX));
    let prefix = match &n.prefix {
        None => Some(apikey::DEFAULT_PREFIX.to_owned()),
        Some(p) => c.field("prefix", apikey::parse_prefix(p).map(str::to_owned)),
    };
    if n.organization_id.trim().is_empty() {
        c.fail(
            "metadata.organizationId",
            "the key's organization is required",
        );
    }
    if let Some(e) = n.expires_in
        && !(EXPIRES_MIN_SECS..=EXPIRES_MAX_SECS).contains(&e)
    {
        c.fail(
            "expiresIn",
            "must be between 86400 (1 day) and 31536000 (365 days) seconds",
        );
    }
    // Ranges hold whether or not the limit is enabled: the spec states them for any value.
    let window = n.rate_limit_time_window.unwrap_or(DAY);
    if !(SECOND..=DAY).contains(&window) {
        c.fail(
            "rateLimitTimeWindow",
            "must be between 1000 and 86400000 milliseconds",
        );
    }
    if n.rate_limit_max
        .is_some_and(|m| !(1..=1_000_000).contains(&m))
    {
        c.fail("rateLimitMax", "must be between 1 and 1000000");
    }
    let mut rate_limit = None;
    if n.rate_limit_enabled.unwrap_or(n.rate_limit_max.is_some()) {
        match n.rate_limit_max {
            Some(max) => {
                rate_limit = Some(RateLimit {
                    window_ms: window,
                    max: u32::try_from(max).unwrap_or(u32::MAX),
                })
            }
            None => c.fail("rateLimitMax", "required when rateLimitEnabled is true"),
        }
    } else if let Some((max, window_ms)) = default_limit {
        rate_limit = Some(RateLimit { window_ms, max });
    }
    if n.remaining.is_some_and(|r| r < 0) {
        c.fail("remaining", "must not be negative");
    }
    let refill = match (n.refill_amount, n.refill_interval) {
        (None, None) => None,
        (Some(amount), Some(interval_ms)) => {
            if amount < 1 {
                c.fail("refillAmount", "must be at least 1");
            }
            if !(SECOND..=365 * DAY).contains(&interval_ms) {
                c.fail(
                    "refillInterval",
                    "must be between 1000 and 31536000000 milliseconds (365 days)",
                );
            }
            if n.remaining.is_none() {
                c.fail("remaining", "required with refillAmount and refillInterval");
            }
            Some(Refill {
                amount,
                interval_ms,
            })
        }
        (Some(_), None) => {
            c.fail("refillInterval", "required with refillAmount");
            None
        }
        (None, Some(_)) => {
            c.fail("refillAmount", "required with refillInterval");
            None
        }
    };
    if let Some(ids) = &n.project_ids
        && ids.len() > 1000
    {
        c.fail("scope.projectIds", "at most 1000 projects");
    }
    c.finish()?;
    match (name, prefix) {
        (Some(name), Some(prefix)) => Ok((name, prefix, rate_limit, refill)),
        _ => Err(Error::internal("checked key fields missing")),
    }
}

/// `user.createApiKey`. Returns the record and the key, which is never shown again.
pub async fn create(st: &State, actor: &Actor, n: NewKey) -> Result<(ApiKey, String)> {
    let (name, prefix, rate_limit, refill) = parse_new(&n, st.config.default_key_rate_limit)?;
    let pending = policy::authorize_named::<op::UserCreateApiKey>(actor)?;
    let org = OrgId(n.organization_id.trim().to_owned());
    policy::within_key_org(actor, &org)?;
    let (_, m) = access::member_in(st, actor, &org)?;
    let auth = pending.in_org(&m)?;
    if let Some(ids) = &n.project_ids {
        let foreign =
            st.read(|c| store::orgs::foreign_ids(c, &org, store::orgs::AccessList::Projects, ids))?;
        if !foreign.is_empty() {
            let mut c = Checks::new();
            for id in foreign {
                c.fail(
                    "scope.projectIds",
                    format!("{id} is not a project of this organization"),
                );
            }
            c.finish()?;
        }
    }
    let now = st.now();
    let key = apikey::generate(&prefix);
    let mut project_ids = n.project_ids.clone();
    if let Some(ids) = &mut project_ids {
        ids.sort();
        ids.dedup();
    }
    let record = ApiKey {
        id: ApiKeyId(token::new_id()),
        name: name.into_string(),
        prefix,
        start: apikey::start(&key),
        user_id: actor.user().id.clone(),
        organization_id: org,
        enabled: true,
        expires_at: n.expires_in.map(|s| now + s * SECOND),
        rate_limit,
        remaining: n.remaining,
        refill,
        last_refill_at: refill.map(|_| now),
        scope: KeyScope {
            read_only: n.read_only,
            project_ids,
        },
        last_used_at: None,
        request_count: 0,
        last_address: None,
        last_user_agent: None,
        created_at: now,
        updated_at: now,
        previous_expires_at: None,
    };
    let (rec, hash) = (record.clone(), apikey::hash(&key));
    let event = key_event(actor, "apikey.create", &record, now).details(serde_json::json!({
        "name": record.name,
        "start": record.start,
        "readOnly": record.scope.read_only,
        "projects": record.scope.project_ids.as_ref().map(Vec::len),
        "expiresAt": record.expires_at.map(crate::clock::rfc3339),
    }));
    st.write(&auth, move |tx| {
        store::keys::insert(tx, &rec, &hash)?;
        tx.audit(event);
        Ok(())
    })
    .await?;
    Ok((record, key))
}

/// An event by `actor` about `key`, in the key's organization, concerning its user.
fn key_event(
    actor: &Actor,
    action: &'static str,
    key: &ApiKey,
    now: i64,
) -> crate::store::audit::Event {
    audit::by(actor, action, now)
        .org(&key.organization_id)
        .subject(&key.user_id)
        .resource("apikey", key.id.as_str())
}

/// The refill due at `now`, if one is: its amount and when it landed.
fn refill_due(refill: Option<Refill>, last: Option<i64>, now: i64) -> Option<(i64, i64)> {
    match (refill, last) {
        (Some(r), Some(last)) if now - last >= r.interval_ms => {
            // Refills land on the interval's grid, so waiting never shifts the schedule.
            Some((
                r.amount,
                last + (now - last) / r.interval_ms * r.interval_ms,
            ))
        }
        _ => None,
    }
}

/// The quota after any refill due at `now`: (remaining, last refill).
fn refilled(
    refill: Option<Refill>,
    remaining: Option<i64>,
    last: Option<i64>,
    now: i64,
) -> (Option<i64>, Option<i64>) {
    match refill_due(refill, last, now) {
        Some((amount, at)) => (Some(amount), Some(at)),
        None => (remaining, last),
    }
}

/// Folds what memory holds about `keys` (usage not yet flushed, the lease not yet spent)
/// into them, as of `now`, so every answer shows the same numbers. One map lookup per
/// key, by its id.
fn with_usage(st: &State, keys: &mut [ApiKey], now: i64) {
    for k in keys {
        if let Some(rt) = st.cache.runtime_of(&k.id) {
            let s = rt.state.lock().unwrap_or_else(|p| p.into_inner());
            k.request_count += s.pending;
            if s.last_used_at > 0 {
                k.last_used_at = Some(s.last_used_at.max(k.last_used_at.unwrap_or(0)));
            }
            // Seen since the runtime was made, so newer than the row's.
            if let Some(c) = &s.client {
                k.last_address = c.address.map(|a| a.to_string());
                k.last_user_agent = c.user_agent.clone();
            }
            k.remaining = s.unleased.map(|u| u + s.lease);
            k.last_refill_at = s.last_refill_at;
        }
        (k.remaining, k.last_refill_at) = refilled(k.refill, k.remaining, k.last_refill_at, now);
    }
}

/// One page of the caller's keys (a key's caller sees those of its organization only), in
/// the order they were made, with usage not yet flushed folded in. Reads the page's rows
/// only; the total is counted in an index.
pub fn list(st: &State, actor: &Actor, paging: Paging) -> Result<Page<ApiKey>> {
    policy::authorize::<op::UserListApiKeys>(actor)?;
    let org = actor.key().map(|k| &k.organization_id);
    let user = actor.user();
    // A session without two-factor sees nothing of its keys in the organizations that
    // require it: it may not act there, and a key would let it.
    let mut page = st.read(|c| {
        if actor.lacks_two_factor() {
            store::keys::of_user_outside_two_factor(c, &user.id, paging)
        } else {
            store::keys::of_user(c, &user.id, org, paging)
        }
    })?;
    with_usage(st, &mut page.items, st.now());
    Ok(page)
}

/// Who may reach a key besides its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Others {
    Nobody,
    /// The owner of the key's organization.
    Owner,
    /// The owner and admins of the key's organization, acting in it.
    Privileged,
}

/// Loads a key the caller may manage: its own, or one of its organization that `others`
/// lets the caller reach. A key acts only in its organization, so through a key both
/// lookups are of that organization's keys.
fn managed<O: Op>(
    st: &State,
    actor: &Actor,
    id: &ApiKeyId,
    others: Others,
) -> Result<(ApiKey, Authorized<O>)> {
    let auth = policy::authorize::<O>(actor)?;
    let me = &actor.user().id;
    let within = actor.key().map(|k| &k.organization_id);
    let key = st.read(|c| {
        if let Some(key) = store::keys::own(c, me, within, id)? {
            return Ok(key);
        }
        // Not the caller's key where it acts: someone else's, or one it cannot reach.
        let org = store::keys::locate(c, id)?.ok_or(Error::NotFound("API key"))?;
        if within.is_some_and(|w| *w != org) {
            return Err(Error::Denied(Reason::WrongOrganization));
        }
        let role = store::orgs::membership_of(c, &org, me)?.map(|m| m.role);
        let acting = actor.principal().membership.as_ref().ok();
        let may = match (role, others) {
            (None, _) => return Err(Error::Denied(Reason::WrongOrganization)),
            (Some(Role::Owner), Others::Owner) => true,
            (Some(r), Others::Privileged) if r.is_privileged() => {
                // Over the keys of the organization it acts in only.
                if acting.is_none_or(|m| m.organization_id != org) {
                    return Err(Error::Denied(Reason::WrongOrganization));
                }
                // A key limited to some projects reads nothing of the organization's
                // other keys, as it lists none of its members (`user.all`).
                actor.key().is_none_or(|k| k.scope.project_ids.is_none())
            }
            _ => false,
        };
        if !may {
            return Err(Error::Denied(Reason::PermissionDenied));
        }
        store::keys::in_org(c, &org, id)?.ok_or(Error::NotFound("API key"))
    })?;
    // A session manages keys only where it may act: not in an organization that requires
    // two-factor of a user without it, whichever organization the session acts in.
    if actor.lacks_two_factor()
        && st.read(|c| store::two_factor::required(c, &key.organization_id))?
    {
        return Err(Error::Denied(Reason::TwoFactorRequired));
    }
    Ok((key, auth))
}

/// `user.deleteApiKey`: by its user, or by the owner of its organization.
pub async fn delete(st: &State, actor: &Actor, id: &ApiKeyId) -> Result<()> {
    let (key, auth) = managed::<op::UserDeleteApiKey>(st, actor, id, Others::Owner)?;
    let k = key.clone();
    let event = key_event(actor, "apikey.delete", &key, st.now())
        .details(serde_json::json!({ "name": key.name, "start": key.start }));
    st.write(&auth, move |tx| {
        store::keys::delete(tx, &k)?;
        tx.audit(event);
        Ok(())
    })
    .await?;
    // Its usage not yet flushed has no row left to go to.
    st.cache.drop_runtime(&key.id);
    Ok(())
}

/// `user.updateApiKey`: rename, enable or disable one's own key.
pub async fn update(
    st: &State,
    actor: &Actor,
    id: &ApiKeyId,
    name: Option<&str>,
    enabled: Option<bool>,
) -> Result<ApiKey> {
    let mut c = Checks::new();
    let name = name.and_then(|n| c.field("name", Name::parse(n, NAME_MAX)));
    c.finish()?;
    let (mut key, auth) = managed::<op::UserUpdateApiKey>(st, actor, id, Others::Nobody)?;
    let now = st.now();
    let mut events = Vec::new();
    if let Some(n) = name {
        let n = n.into_string();
        if n != key.name {
            events.push(
                key_event(actor, "apikey.rename", &key, now)
                    .details(serde_json::json!({ "from": key.name, "to": n })),
            );
        }
        key.name = n;
    }
    if let Some(e) = enabled {
        if e != key.enabled {
            let action = if e { "apikey.enable" } else { "apikey.disable" };
            events.push(key_event(actor, action, &key, now));
        }
        key.enabled = e;
    }
    key.updated_at = now;
    let k = key.clone();
    st.write(&auth, move |tx| {
        store::keys::update(tx, &k)?;
        for e in events {
            tx.audit(e);
        }
        Ok(())
    })
    .await?;
    with_usage(st, std::slice::from_mut(&mut key), st.now());
    Ok(key)
}

/// `user.rotateApiKey`: a new secret for the same key. The old one keeps working for
/// `grace_secs` (0 to 7 days).
pub async fn rotate(
    st: &State,
    actor: &Actor,
    id: &ApiKeyId,
    grace_secs: Option<i64>,
) -> Result<(ApiKey, String)> {
    let grace = grace_secs.unwrap_or(0);
    if !(0..=GRACE_MAX_SECS).contains(&grace) {
        let mut c = Checks::new();
        c.fail(
            "gracePeriodSeconds",
            "must be between 0 and 604800 (7 days)",
        );
        c.finish()?;
    }
    let (mut key, auth) = managed::<op::UserRotateApiKey>(st, actor, id, Others::Nobody)?;
    let now = st.now();
    let secret = apikey::generate(&key.prefix);
    key.start = apikey::start(&secret);
    key.updated_at = now;
    key.previous_expires_at = (grace > 0).then_some(now + grace * SECOND);
    let (k, hash) = (key.clone(), apikey::hash(&secret));
    let event = key_event(actor, "apikey.rotate", &key, now).details(serde_json::json!({
        "start": key.start,
        "gracePeriodSeconds": grace,
    }));
    st.write(&auth, move |tx| {
        store::keys::rotate(tx, &k, &hash)?;
        tx.audit(event);
        Ok(())
    })
    .await?;
    with_usage(st, std::slice::from_mut(&mut key), now);
    Ok((key, secret))
}

/// Verifies `raw` from an `x-api-key` header, in the documented order, and answers the
/// actor it acts as. A hit in the cache costs no database work, but for a key with a
/// quota whose lease is used up (one write per lease, see `lease_size`). A read-only key
/// is refused an operation that `writes` (by the policy's row) before it spends quota or
/// rate.
pub async fn authenticate(st: &State, raw: &str, writes: bool) -> Result<Actor> {
    let cached = verify(st, raw, writes)?;
    admit(st, &cached, st.now()).await?;
    Ok(Actor {
        via: Via::Key(cached),
    })
}

/// The cached record of `raw`, if its lookup is cached, without any check.
pub fn cached(st: &State, raw: &str) -> Option<Arc<CachedKey>> {
    if !apikey::well_formed(raw) {
        return None;
    }
    match st.cache.key(&apikey::hash(raw)) {
        KeyHit::Found(k) => Some(k),
        _ => None,
    }
}

/// Every check of `authenticate` but the quota and the rate limit, which `admit` then
/// spends: forward auth and `apiKey.verify` decide on the target in between, so that a
/// request refused for its target spends nothing.
pub fn verify(st: &State, raw: &str, writes: bool) -> Result<Arc<CachedKey>> {
    if !apikey::well_formed(raw) {
        return Err(Error::Denied(Reason::InvalidApiKey));
    }
    let hash = apikey::hash(raw);
    let now = st.now();
    let cached = match st.cache.key(&hash) {
        KeyHit::Found(k) => k,
        KeyHit::Missing => return Err(Error::Denied(Reason::InvalidApiKey)),
        KeyHit::Unknown(generation) => {
            // The key's row, and the principal it acts as: shared with the user's other
            // cached keys in the organization when there are any.
            let loaded = st.read(|c| {
                let Some((key, previous_secret)) = store::keys::by_hash(c, &hash)? else {
                    return Ok(None);
                };
                let principal = match st.cache.principal(&key.user_id, &key.organization_id) {
                    Some(p) => p,
                    None => {
                        let Some(user) = store::users::by_id(c, &key.user_id)? else {
                            return Ok(None);
                        };
                        Arc::new(load_principal(c, user, Some(&key.organization_id))?)
                    }
                };
                Ok(Some((key, previous_secret, principal)))
            })?;
            let found = loaded.map(|(key, previous_secret, principal)| {
                Arc::new(CachedKey {
                    runtime: st.cache.runtime(&key, now),
                    key,
                    previous_secret,
                    principal,
                    view: ViewSlot::default(),
                })
            });
            st.cache.put_key(hash, generation, found.clone());
            found.ok_or(Error::Denied(Reason::InvalidApiKey))?
        }
    };
    if let Err(e) = admissible(&cached, now, writes) {
        if let Error::Denied(reason) = &e {
            count_refused(st, &cached, *reason, now);
        }
        return Err(e);
    }
    Ok(cached)
}

/// The checks of a key found by its secret, of its own state, in the documented order:
/// an old secret's grace, enabled, expiry, its user's membership, a read-only key's
/// writes.
fn admissible(cached: &CachedKey, now: i64, writes: bool) -> Result<()> {
    let key = &cached.key;
    if cached.previous_secret && key.previous_expires_at.is_none_or(|t| t <= now) {
        return Err(Error::Denied(Reason::InvalidApiKey));
    }
    if !key.enabled {
        return Err(Error::Denied(Reason::ApiKeyDisabled));
    }
    if key.expires_at.is_some_and(|t| t <= now) {
        return Err(Error::Denied(Reason::ApiKeyExpired));
    }
    let m = cached
        .principal
        .membership
        .as_ref()
        .map_err(|r| Error::Denied(*r))?;
    policy::may_use_keys(m)?;
    if writes && key.scope.read_only {
        return Err(Error::Denied(Reason::PermissionDenied));
    }
    Ok(())
}

/// Counts one outcome of a request in the hour of `now`, under the lock the request
/// holds anyway; the first count since the last flush puts the key on the flush's list.
fn count(
    st: &State,
    k: &CachedKey,
    s: &mut RuntimeState,
    now: i64,
    outcome: impl FnOnce(&mut Outcomes),
) {
    if !s.waiting() {
        st.cache.mark_used(&k.runtime);
    }
    outcome(s.hours.at(now));
}

/// Counts a request refused for the key's own state; a disabled or expired key's
/// refusals are also tallied for the audit log, with the client of the last one. A
/// client hammering such a key costs counters, and one audit event per flush.
fn count_refused(st: &State, k: &CachedKey, reason: Reason, now: i64) {
    let mut s = k.runtime.state.lock().unwrap_or_else(|p| p.into_inner());
    count(st, k, &mut s, now, |c| c.refused += 1);
    if let Some(slot) = s.refusals.of(reason) {
        let t = slot.get_or_insert_with(|| RefusalTally {
            first_at: now,
            last_at: now,
            count: 0,
            start: k.key.start.clone(),
            client: None,
        });
        t.count += 1;
        t.last_at = now;
        audit::with_seen(|seen| Client::observe(&mut t.client, seen.address, seen.user_agent()));
    }
}

/// What is left of the key's quota and rate limit by `now`, as the next request would
/// find them.
pub fn left(k: &CachedKey, now: i64) -> (Option<i64>, Option<Backoff>) {
    let s = k.runtime.state.lock().unwrap_or_else(|p| p.into_inner());
    let (remaining, _) = refilled(
        k.key.refill,
        s.unleased.map(|u| u + s.lease),
        s.last_refill_at,
        now,
    );
    let rate = k.key.rate_limit.map(|rl| {
        s.bucket
            .unwrap_or_else(|| Bucket::full(rl.max, rl.window_ms, now))
            .peek(rl.max, rl.window_ms, now)
    });
    (remaining, rate)
}

/// How many uses one committed write moves out of a row's quota of `left` into memory:
/// a tenth, at least 1 and at most 1000. A crash loses what is left of one lease, so a
/// tenth bounds the loss to a tenth of what remained; a quota under 20 leases one use at
/// a time and loses at most the one in flight; a large quota costs one write per 1000
/// requests, which keeps writes off the hot path.
pub fn lease_size(left: i64) -> i64 {
    (left / 10).clamp(1, 1000).min(left.max(0))
}

/// What the quota says about one more request.
enum Quota {
    /// No quota, or a use left in the lease.
    Spend,
    /// The lease is used up (or void after a refill) and the row may hold more.
    Lease,
    Exhausted(Backoff),
}

fn quota(key: &ApiKey, s: &RuntimeState, now: i64) -> Quota {
    let Some(unleased) = s.unleased else {
        return Quota::Spend;
    };
    // After a refill the old lease is void: the new period starts from the refill amount.
    if refill_due(key.refill, s.last_refill_at, now).is_some() {
        return Quota::Lease;
    }
    if s.lease > 0 {
        return Quota::Spend;
    }
    if unleased > 0 {
        return Quota::Lease;
    }
    let (retry, limit) = match (key.refill, s.last_refill_at) {
        (Some(r), Some(last)) => (
            last.saturating_add(r.interval_ms)
                .saturating_sub(now)
                .max(0) as u64,
            r.amount as u64,
        ),
        _ => (DAY as u64, 0),
    };
    let secs = retry.div_ceil(1000).max(1);
    Quota::Exhausted(Backoff {
        retry_after_secs: secs,
        limit,
        remaining: 0,
        reset_secs: secs,
    })
}

/// Rate limit, then counts the request, notes its client and spends one use of the
/// lease.
fn spend(st: &State, k: &CachedKey, s: &mut RuntimeState, now: i64) -> Result<()> {
    if let Some(rl) = k.key.rate_limit {
        let bucket = s
            .bucket
            .get_or_insert_with(|| Bucket::full(rl.max, rl.window_ms, now));
        match bucket.take(rl.max, rl.window_ms, now) {
            Ok(left) => audit::note_rate(left),
            Err(b) => {
                count(st, k, s, now, |c| c.rate_limited += 1);
                return Err(Error::Throttled(Throttle::RateLimited, b));
            }
        }
    }
    if s.unleased.is_some() {
        s.lease -= 1;
    }
    count(st, k, s, now, |c| c.ok += 1);
    s.last_used_at = now;
    s.pending += 1;
    let client = &mut s.client;
    if audit::with_seen(|seen| Client::observe(client, seen.address, seen.user_agent()))
        == Some(true)
    {
        s.client_changed = true;
    }
    Ok(())
}

/// Quota, then rate limit; counts the request when both let it through (429 when either
/// is used up). A key with a quota spends only what it leased in a committed write, so a
/// crash can under-spend the quota but never over-spend it.
pub async fn admit(st: &State, k: &CachedKey, now: i64) -> Result<()> {
    let state = || k.runtime.state.lock().unwrap_or_else(|p| p.into_inner());
    let decide = |s: &mut RuntimeState| match quota(&k.key, s, now) {
        Quota::Spend => Some(spend(st, k, s, now)),
        Quota::Exhausted(b) => {
            count(st, k, s, now, |c| c.usage_exceeded += 1);
            Some(Err(Error::Throttled(Throttle::UsageExceeded, b)))
        }
        Quota::Lease => None,
    };
    if let Some(done) = decide(&mut state()) {
        return done;
    }
    let _leasing = k.runtime.leasing.lock().await;
    // Another request may have leased while this one waited.
    if let Some(done) = decide(&mut state()) {
        return done;
    }
    let (id, refill) = (k.key.id.clone(), k.key.refill);
    let leased = st
        .write(&policy::unchecked::<op::KeyUsage>(), move |tx| {
            let Some((remaining, last_refill_at)) = store::keys::quota(tx, &id)? else {
                return Ok(None);
            };
            let (remaining, last_refill_at) = refilled(refill, remaining, last_refill_at, now);
            let Some(left) = remaining else {
                return Ok(Some((None, 0, last_refill_at)));
            };
            let take = lease_size(left);
            store::keys::set_quota(tx, &id, left - take, last_refill_at)?;
            Ok(Some((Some(left - take), take, last_refill_at)))
        })
        .await?;
    // The key was deleted along with its organization or user since it was cached.
    let (unleased, lease, last_refill_at) = leased.ok_or(Error::Denied(Reason::InvalidApiKey))?;
    // The lease and this request's use of it in one step: requests that arrive meanwhile
    // cannot take the use this one waited for.
    let mut s = state();
    s.unleased = unleased;
    s.lease = lease;
    s.last_refill_at = last_refill_at;
    // A fresh lease is never void (its refill is not due) and is empty only when the row
    // is: `decide` spends or refuses.
    decide(&mut s).unwrap_or_else(|| Err(Error::internal("a fresh lease needs another")))
}

/// Rows one write of a flush holds. Each is a write of its own, queued with the others
/// (group commit), so a write that arrives during a flush waits for one of them, never for
/// the whole flush: a few hundred rows take about a millisecond.
pub const FLUSH_CHUNK: usize = 500;

/// Writes the usage accumulated in memory (last use, request counts) of the keys used
/// since the last flush, `FLUSH_CHUNK` keys per write, one write after the other, spread
/// evenly over half the flush interval: the requests beside a flush of 100,000 keys then
/// lose a few percent for a second instead of a quarter for a fraction of one. Runs
/// every few seconds; the quota is not written here, since only leases committed before
/// their first use take from it.
pub async fn flush_usage(st: &State) -> Result<usize> {
    let (s, now) = (st.clone(), st.now());
    let runtimes = in_key_order(move || {
        // Runtimes of keys evicted from the cache go once an earlier flush wrote their
        // usage.
        s.cache.prune_runtimes(now);
        s.cache.take_used()
    })
    .await?;
    let spread = std::time::Duration::from_millis(st.config.usage_flush_ms.max(0) as u64 / 2);
    flush(st, runtimes, false, spread).await
}

/// `flush_usage` at a clean stop, of every key with anything in memory: the same writes
/// also give every lease's unspent uses back to the quota.
pub async fn flush_at_stop(st: &State) -> Result<usize> {
    let s = st.clone();
    let runtimes = in_key_order(move || {
        s.cache.take_used();
        s.cache.runtimes()
    })
    .await?;
    flush(st, runtimes, true, std::time::Duration::ZERO).await
}

/// The runtimes `list` answers, once each, in the order of the usage table's key, so
/// that each chunk rewrites a few adjacent pages and the whole flush each page about
/// once. Off the async workers: with 100,000 keys this takes milliseconds.
async fn in_key_order(
    list: impl FnOnce() -> Vec<Arc<KeyRuntime>> + Send + 'static,
) -> Result<Vec<Arc<KeyRuntime>>> {
    tokio::task::spawn_blocking(move || {
        // Sorted by the first eight bytes of the id first (the order of those bytes, as
        // SQLite compares text), in one contiguous array: comparing the ids through their
        // runtimes would chase two pointers per comparison.
        let mut keyed: Vec<(u64, Arc<KeyRuntime>)> = list()
            .into_iter()
            .map(|rt| {
                let mut head = [0u8; 8];
                let id = rt.id.as_str().as_bytes();
                let n = id.len().min(8);
                head[..n].copy_from_slice(&id[..n]);
                (u64::from_be_bytes(head), rt)
            })
            .collect();
        keyed.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
        let mut runtimes: Vec<Arc<KeyRuntime>> = keyed.into_iter().map(|(_, rt)| rt).collect();
        runtimes.dedup_by(|a, b| Arc::ptr_eq(a, b));
        runtimes
    })
    .await
    .map_err(|e| Error::internal(format!("ordering the usage flush failed: {e}")))
}

/// Writes the chunks one after the other, the `i`-th of `n` not before `i / n` of
/// `spread` has passed.
async fn flush(
    st: &State,
    runtimes: Vec<Arc<KeyRuntime>>,
    give_back: bool,
    spread: std::time::Duration,
) -> Result<usize> {
    let started = tokio::time::Instant::now();
    let n = runtimes.len().div_ceil(FLUSH_CHUNK).max(1) as u32;
    let mut written = 0;
    let mut chunks = runtimes.chunks(FLUSH_CHUNK);
    let mut i = 0;
    while let Some(chunk) = chunks.next() {
        tokio::time::sleep_until(started + spread * i / n).await;
        i += 1;
        match flush_chunk(st, chunk, give_back).await {
            Ok(rows) => written += rows,
            Err(e) => {
                // What was not written waits for the next flush.
                for rt in chunks.flatten() {
                    st.cache.mark_used(rt);
                }
                return Err(e);
            }
        }
    }
    Ok(written)
}

/// What a flush took out of one key's runtime.
#[derive(Clone)]
struct Taken {
    rt: Arc<KeyRuntime>,
    last_used_at: i64,
    requests: i64,
    /// Leased uses given back to the quota.
    returned: i64,
    hours: Vec<UsageHour>,
    /// The client of the last request, when it changed since the last flush.
    client: Option<Client>,
    refusals: PendingRefusals,
}

impl Taken {
    /// Takes what waits for the flush out of `s` (and, `give_back`, the unspent lease);
    /// `None` when nothing does.
    fn from(rt: &Arc<KeyRuntime>, s: &mut RuntimeState, give_back: bool) -> Option<Taken> {
        let returned = if give_back { s.lease } else { 0 };
        if !s.waiting() && returned == 0 {
            return None;
        }
        s.lease -= returned;
        let client_changed = std::mem::take(&mut s.client_changed);
        Some(Taken {
            rt: Arc::clone(rt),
            last_used_at: s.last_used_at,
            requests: std::mem::take(&mut s.pending),
            returned,
            hours: std::mem::take(&mut s.hours).iter().copied().collect(),
            client: client_changed.then(|| s.client.clone()).flatten(),
            refusals: std::mem::take(&mut s.refusals),
        })
    }

    /// Puts what was taken back into `s`, after a write that failed: with what was
    /// counted since, nothing lost.
    fn put_back(self, s: &mut RuntimeState) {
        s.pending += self.requests;
        s.lease += self.returned;
        for h in &self.hours {
            s.hours.add(h);
        }
        // The client in memory is this one, or a newer one.
        s.client_changed |= self.client.is_some();
        s.refusals.put_back(self.refusals);
    }

    fn usage(&self) -> Usage<'_> {
        Usage {
            id: &self.rt.id,
            last_used_at: (self.last_used_at > 0).then_some(self.last_used_at),
            requests: self.requests,
            client: self
                .client
                .as_ref()
                .map(|c| (c.address.map(|a| a.to_string()), c.user_agent.as_deref())),
            hours: &self.hours,
        }
    }

    /// One audit event per reason the key was refused for since the last flush, from
    /// the first such refusal on, with the client of the last.
    fn refusal_events(&self) -> impl Iterator<Item = Event> + '_ {
        let rt = &self.rt;
        self.refusals.iter().map(move |(reason, t)| {
            let who = Who::Key {
                id: rt.id.clone(),
                start: t.start.clone(),
                user: rt.user_id.clone(),
            };
            let mut e = Event::new(who, "apikey.refused", t.first_at)
                .org(&rt.organization_id)
                .resource("apikey", rt.id.as_str())
                .outcome(Outcome::Refused)
                .details(serde_json::json!({
                    "reason": reason.as_str(),
                    "lastAt": crate::clock::rfc3339(t.last_at),
                }));
            e.count = t.count;
            let client = t.client.clone().unwrap_or_default();
            e.origin = Some(Origin {
                address: client.address.map(|a| a.to_string()),
                user_agent: client.user_agent,
                request_id: None,
            });
            e
        })
    }
}

/// Takes the usage of `runtimes` out of memory and writes it in one write: counts, last
/// client, hours, and the audit events of refusals. Puts it back when the write fails,
/// so nothing is lost.
async fn flush_chunk(st: &State, runtimes: &[Arc<KeyRuntime>], give_back: bool) -> Result<usize> {
    let batch: Vec<Taken> = runtimes
        .iter()
        .filter_map(|rt| {
            let mut s = rt.state.lock().unwrap_or_else(|p| p.into_inner());
            Taken::from(rt, &mut s, give_back)
        })
        .collect();
    if batch.is_empty() {
        return Ok(0);
    }
    let work = batch.clone();
    let written = st
        .write(&policy::unchecked::<op::KeyUsage>(), move |tx| {
            let found = store::keys::record_usage(tx, work.iter().map(Taken::usage))?;
            let mut gone = Vec::new();
            for (t, found) in work.iter().zip(found) {
                // The refusals happened, whether or not their key is still there: the
                // log outlives what it names.
                for e in t.refusal_events() {
                    tx.audit(e);
                }
                if !found {
                    gone.push(t.rt.id.clone());
                } else if t.returned > 0 {
                    store::keys::give_back(tx, &t.rt.id, t.returned)?;
                }
            }
            Ok(gone)
        })
        .await;
    match written {
        Ok(gone) => {
            if give_back {
                for t in &batch {
                    let mut s = t.rt.state.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some(u) = &mut s.unleased {
                        *u += t.returned;
                    }
                }
            }
            // Keys deleted by a cascade (their organization, a re-join) leave runtimes
            // behind; they go once a flush finds no row.
            for id in gone {
                st.cache.drop_runtime(&id);
            }
            Ok(batch.len())
        }
        Err(e) => {
            // Nothing is lost: the counts and leases go back and the next flush tries again.
            for t in batch {
                let rt = Arc::clone(&t.rt);
                t.put_back(&mut rt.state.lock().unwrap_or_else(|p| p.into_inner()));
                st.cache.mark_used(&rt);
            }
            Err(e)
        }
    }
}

/// Rows one write of the usage pruning deletes: other writes go between them.
const PRUNE_CHUNK: i64 = 5_000;

/// Deletes the hours of key usage older than the usage retention, a chunk per write;
/// answers how many went. The janitor runs it every hour.
pub async fn prune_usage(st: &State) -> Result<usize> {
    let before = st.now() - i64::from(st.config.usage_retention_days) * DAY;
    let mut total = 0;
    loop {
        let n = st
            .write(&policy::unchecked::<op::Retention>(), move |tx| {
                store::keys::prune_usage_hours(tx, before, PRUNE_CHUNK)
            })
            .await?;
        total += n;
        if (n as i64) < PRUNE_CHUNK {
            return Ok(total);
        }
    }
}

/// The span `user.apiKeyUsage` asks for, as given (Unix ms).
#[derive(Debug, Clone, Copy, Default)]
pub struct UsageSpan {
    pub from: Option<i64>,
    pub to: Option<i64>,
}

/// Days a usage series spans unless asked otherwise (at most the usage retention).
const USAGE_DEFAULT_DAYS: i64 = 7;

impl UsageSpan {
    /// The hours it covers, `from` through `to` (both hour starts, included): `to` is
    /// now by default, `from` 7 days before `to`; both are rounded down to the hour, so
    /// a span inside one hour is that hour. A `from` after `to` is a 400; a `from`
    /// further back than the retention keeps starts at the oldest hour kept.
    fn hours(self, now: i64, retention_days: u32) -> Result<(i64, i64)> {
        let hour = |t: i64| t - t.rem_euclid(HOUR);
        let kept = i64::from(retention_days) * DAY;
        let to = self.to.unwrap_or(now);
        let from = self.from.unwrap_or(to - kept.min(USAGE_DEFAULT_DAYS * DAY));
        if from > to {
            let mut c = Checks::new();
            c.fail("from", "must not be after `to`");
            c.finish()?;
        }
        let to = hour(to);
        Ok((hour(from).max(to - kept), to))
    }
}

/// A key's requests per hour over a span, with what memory holds folded in.
#[derive(Debug)]
pub struct KeyUsage {
    pub key: ApiKey,
    pub from: i64,
    pub to: i64,
    /// The hours that counted a request, in order.
    pub hours: Vec<UsageHour>,
}

impl KeyUsage {
    /// The counts of the whole span.
    pub fn totals(&self) -> Outcomes {
        let mut t = Outcomes::default();
        for h in &self.hours {
            t.add(&h.counts);
        }
        t
    }
}

/// `user.apiKeyUsage`: the caller's own key (in any of its organizations, or through a
/// key, of its organization), or, for an owner or admin, any key of the organization it
/// acts in. The counts not flushed yet are added, so the answer is exact but while a
/// flush is being written: what it took from memory shows again once it commits.
pub fn usage(st: &State, actor: &Actor, id: &ApiKeyId, span: UsageSpan) -> Result<KeyUsage> {
    let (from, to) = span.hours(st.now(), st.config.usage_retention_days)?;
    let (mut key, _) = managed::<op::UserApiKeyUsage>(st, actor, id, Others::Privileged)?;
    let mut hours = st.read(|c| store::keys::usage_hours(c, id, from, to))?;
    if let Some(rt) = st.cache.runtime_of(id) {
        let s = rt.state.lock().unwrap_or_else(|p| p.into_inner());
        add_pending(&mut hours, &s.hours, from, to);
    }
    with_usage(st, std::slice::from_mut(&mut key), st.now());
    Ok(KeyUsage {
        key,
        from,
        to,
        hours,
    })
}

/// Adds the counts of `pending` of the hours `from` through `to` into `hours` (in order,
/// one entry per hour).
fn add_pending(hours: &mut Vec<UsageHour>, pending: &PendingHours, from: i64, to: i64) {
    for p in pending.iter().filter(|p| (from..=to).contains(&p.hour)) {
        match hours.binary_search_by_key(&p.hour, |h| h.hour) {
            Ok(i) => hours[i].counts.add(&p.counts),
            Err(i) => hours.insert(i, *p),
        }
    }
}

/// Whether `k` made no request for `--unused-key-days` days: by its last use, or by its
/// creation when it was never used. A key unused that long is likely forgotten, and one
/// to delete.
pub fn unused(st: &State, k: &ApiKey) -> bool {
    let since = k.last_used_at.unwrap_or(k.created_at);
    st.now() - since >= i64::from(st.config.unused_key_days) * DAY
}

/// What `keygate key create` made.
pub struct CreatedFromShell {
    pub key: ApiKey,
    pub secret: String,
    pub user: User,
}

/// Creates a key for the user with `email` in `org` from the shell.
pub fn create_from_shell(
    st: &State,
    email: &str,
    org: &OrgId,
    name: &str,
) -> Result<CreatedFromShell> {
    let n = NewKey {
        name: name.to_owned(),
        organization_id: org.to_string(),
        ..NewKey::default()
    };
    let (name, prefix, rate_limit, refill) = parse_new(&n, st.config.default_key_rate_limit)?;
    let email = email.trim().to_lowercase();
    let now = st.now();
    let secret = apikey::generate(&prefix);
    let hash = apikey::hash(&secret);
    let org = org.clone();
    st.write_blocking(&policy::unchecked::<op::Shell>(), |tx| {
        let user = store::users::by_email(tx, &email)?.ok_or(Error::NotFound("user"))?;
        let m = store::orgs::membership_of(tx, &org, &user.id)?
            .ok_or(Error::Denied(Reason::NotAMember))?;
        policy::may_use_keys(&m)?;
        let key = ApiKey {
            id: ApiKeyId(token::new_id()),
            name: name.into_string(),
            prefix,
            start: apikey::start(&secret),
            user_id: user.id.clone(),
            organization_id: org,
            enabled: true,
            expires_at: None,
            rate_limit,
            remaining: None,
            refill,
            last_refill_at: None,
            scope: KeyScope::default(),
            last_used_at: None,
            request_count: 0,
            last_address: None,
            last_user_agent: None,
            created_at: now,
            updated_at: now,
            previous_expires_at: None,
        };
        store::keys::insert(tx, &key, &hash)?;
        tx.audit(
            audit::shell("apikey.create", now)
                .org(&key.organization_id)
                .subject(&user.id)
                .resource("apikey", key.id.as_str())
                .details(serde_json::json!({ "name": key.name, "start": key.start })),
        );
        Ok(CreatedFromShell { key, secret, user })
    })
}

#[cfg(test)]
mod tests {
    use super::lease_size;

    #[test]
    fn a_lease_is_a_tenth_of_what_is_left_between_one_and_a_thousand() {
        let sizes = [0, 1, 19, 20, 100, 10_000, 10_009, 1_000_000].map(lease_size);
        assert_eq!(sizes, [0, 1, 1, 2, 10, 1000, 1000, 1000]);
    }
}
