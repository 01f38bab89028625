//! The audit log's rules: who an event names, where its request came from, refusals
//! counted in memory until the usage flush writes them, who may read what, and the
//! retention.
//!
//! Changes record their events in their own unit of work (`Tx::audit`), so there is no
//! change without its event and no event without its change. Refusals (a wrong
//! password, a disabled key) change nothing and can come by the thousand: they are
//! counted here, by what they have in common, and written a few rows per flush.

use std::cell::Cell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use poem::http::HeaderValue;

use super::State;
use super::access::{Actor, Via};
use super::policy::{self, op};
use crate::clock::DAY;
use crate::error::{Backoff, Checks, Error, Reason, Result, Throttle};
use crate::model::{Email, OrgId, Role, UserId};
use crate::store::audit::{Cursor, Event, Filter, Origin, Outcome, Scope, Stored, Who};
use crate::store::{self, Tx};

/// What the transport saw of the request being served: set around every API request,
/// read by the writes it makes and by the key path (a key's last client).
pub struct Seen {
    pub address: Option<IpAddr>,
    pub user_agent: Option<HeaderValue>,
    /// The `X-Request-Id` a proxy in front set, when it is a plain token.
    inbound_id: Option<HeaderValue>,
    number: u64,
    /// Whether a write of this request recorded an event: its answer then names the
    /// request id.
    audited: AtomicBool,
    /// What is left of the rate limit of the key this request spent, for the answer's
    /// `RateLimit-*` headers.
    rate: Cell<Option<Backoff>>,
}

tokio::task_local! {
    static SEEN: Seen;
}

/// Requests numbered since the process started, for request ids.
static NUMBER: AtomicU64 = AtomicU64::new(0);

fn process_tag() -> u64 {
    static TAG: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TAG.get_or_init(|| {
        let mut b = [0u8; 4];
        crate::auth::token::fill_random(&mut b);
        u64::from(u32::from_le_bytes(b))
    })
}

/// Longest inbound request id kept.
const REQUEST_ID_MAX: usize = 64;

impl Seen {
    pub fn new(
        address: Option<IpAddr>,
        user_agent: Option<&HeaderValue>,
        inbound_id: Option<&HeaderValue>,
    ) -> Seen {
        let inbound_id = inbound_id
            .filter(|v| {
                let b = v.as_bytes();
                !b.is_empty()
                    && b.len() <= REQUEST_ID_MAX
                    && b.iter()
                        .all(|c| c.is_ascii_alphanumeric() || b"-_.:".contains(c))
            })
            .cloned();
        Seen {
            address,
            user_agent: user_agent.cloned(),
            inbound_id,
            number: NUMBER.fetch_add(1, Ordering::Relaxed),
            audited: AtomicBool::new(false),
            rate: Cell::new(None),
        }
    }

    /// The request's id: the proxy's, or one of this process.
    pub fn request_id(&self) -> String {
        match self.inbound_id.as_ref().and_then(|v| v.to_str().ok()) {
            Some(id) => id.to_owned(),
            None => format!("{:08x}-{:x}", process_tag(), self.number),
        }
    }

    pub fn user_agent(&self) -> Option<&str> {
        self.user_agent.as_ref().and_then(|v| v.to_str().ok())
    }

    fn origin(&self) -> Origin {
        Origin {
            address: self.address.map(|a| a.to_string()),
            user_agent: self.user_agent().map(|u| truncate(u, USER_AGENT_MAX)),
            request_id: Some(self.request_id()),
        }
    }

    /// Whether a write of this request recorded an event.
    pub fn audited(&self) -> bool {
        self.audited.load(Ordering::Relaxed)
    }
}

/// Longest user agent stored.
pub const USER_AGENT_MAX: usize = 256;

/// `s`, cut to at most `max` bytes at a character boundary.
pub fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// What serving a request left for its answer.
#[derive(Debug, Default)]
pub struct Served {
    /// The request id, when the request recorded an audit event.
    pub request_id: Option<String>,
    /// What is left of the rate limit of the key the request spent, if it has one.
    pub rate: Option<Backoff>,
}

/// Runs `f` as the serving of a request that `seen` describes; answers its output and
/// what it left for the answer.
pub async fn serving<F: std::future::Future>(seen: Seen, f: F) -> (F::Output, Served) {
    SEEN.scope(seen, async move {
        let out = f.await;
        let served = SEEN.with(|s| Served {
            request_id: s.audited().then(|| s.request_id()),
            rate: s.rate.get(),
        });
        (out, served)
    })
    .await
}

/// Notes what is left of the rate limit of the key the request being served spent.
pub fn note_rate(left: Backoff) {
    let _ = SEEN.try_with(|s| s.rate.set(Some(left)));
}

/// Calls `f` with what the transport saw of the request being served, if any.
pub fn with_seen<R>(f: impl FnOnce(&Seen) -> R) -> Option<R> {
    SEEN.try_with(f).ok()
}

/// The origin of the request being served (empty outside one).
pub fn origin() -> Origin {
    with_seen(Seen::origin).unwrap_or_default()
}

/// Notes that the request being served recorded an event.
pub(super) fn mark_audited() {
    let _ = SEEN.try_with(|s| s.audited.store(true, Ordering::Relaxed));
}

/// Who an actor is, for the log.
pub fn who(actor: &Actor) -> Who {
    match &actor.via {
        Via::Key(k) => Who::Key {
            id: k.key.id.clone(),
            start: k.key.start.clone(),
            user: k.key.user_id.clone(),
        },
        Via::Session(s) => Who::User {
            id: s.principal.user.id.clone(),
            email: s.principal.user.email.clone(),
        },
    }
}

/// An event by `actor` at `at`, in the organization it acts in (when it has one).
pub fn by(actor: &Actor, action: &'static str, at: i64) -> Event {
    let e = Event::new(who(actor), action, at);
    match &actor.principal().membership {
        Ok(m) => e.org(&m.organization_id),
        Err(_) => e,
    }
}

/// An event of `actor`'s own account (its sessions), in no organization, at `at`.
pub fn own(actor: &Actor, action: &'static str, at: i64) -> Event {
    Event::new(who(actor), action, at)
}

/// An event by `user`, signed in or signing in, at `at`.
pub fn user(user: &crate::model::User, action: &'static str, at: i64) -> Event {
    Event::new(
        Who::User {
            id: user.id.clone(),
            email: user.email.clone(),
        },
        action,
        at,
    )
}

/// An event made from the shell.
pub fn shell(action: &'static str, at: i64) -> Event {
    Event::new(Who::Shell, action, at)
}

/// Records `event` in `tx`.
pub fn record(tx: &Tx, event: Event) {
    tx.audit(event);
}

/// What refusals counted together have in common.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RefusalKey {
    action: &'static str,
    reason: &'static str,
    /// The email a sign-in named, cut to its longest; none for a throttled one (the
    /// email is then in the tally), for text that is no email address, and for the
    /// summary of an account's refusals from many clients.
    email: Option<String>,
    subject: Option<UserId>,
    /// The client's address, an IPv6 one cut to its /64 for a throttled refusal; none
    /// for the summary of many clients.
    address: Option<IpAddr>,
}

#[derive(Debug)]
struct Tally {
    first_at: i64,
    last_at: i64,
    count: i64,
    /// The first email named, where the key keeps none.
    email: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.first_at = self.first_at.min(other.first_at);
        if other.last_at >= self.last_at {
            self.last_at = other.last_at;
            self.user_agent = other.user_agent;
            self.request_id = other.request_id;
        }
        self.count += other.count;
        if self.email.is_none() {
            self.email = other.email;
        }
    }
}

/// Refused sign-ins and two-factor codes, counted in memory by what they have in common,
/// until the usage flush writes them as one event each. Bounded: at most `REFUSALS_MAX`
/// kinds are told apart, of which `ANONYMOUS_MAX` of no account; past that, an account's
/// refusals are counted in one summary per reason (`details.manyClients`), and the rest
/// in one `audit.refusals_dropped` event, with a warning in the server's log.
#[derive(Default)]
pub struct Refusals {
    inner: Mutex<RefusalMap>,
}

#[derive(Default)]
struct RefusalMap {
    tallies: HashMap<RefusalKey, Tally>,
    /// How many of `tallies` name no account.
    anonymous: usize,
    /// How many of `tallies` are summaries of many clients.
    summaries: usize,
    dropped: i64,
    dropped_since: Option<i64>,
}

impl RefusalMap {
    /// Counts `t` under `key`, or under a coarser kind when there is no room for it.
    fn add(&mut self, key: RefusalKey, t: Tally) {
        if let Some(have) = self.tallies.get_mut(&key) {
            return have.merge(t);
        }
        let room = self.tallies.len() - self.summaries < REFUSALS_MAX
            && (key.subject.is_some() || self.anonymous < ANONYMOUS_MAX);
        if room {
            self.anonymous += usize::from(key.subject.is_none());
            self.tallies.insert(key, t);
            return;
        }
        if key.subject.is_some() && (key.email.is_some() || key.address.is_some()) {
            let summary = RefusalKey {
                email: None,
                address: None,
                ..key
            };
            if let Some(have) = self.tallies.get_mut(&summary) {
                return have.merge(t);
            }
            if self.summaries < SUMMARIES_MAX {
                self.summaries += 1;
                let t = Tally {
                    email: t.email.or(key.email),
                    ..t
                };
                self.tallies.insert(summary, t);
                return;
            }
        }
        self.dropped += t.count;
        self.dropped_since = Some(self.dropped_since.map_or(t.first_at, |d| d.min(t.first_at)));
    }
}

/// How many kinds of refusal are told apart between two flushes.
pub const REFUSALS_MAX: usize = 10_000;

/// How many of them may name no account: an address sending made-up emails fills no
/// more than these, and leaves the rest to refusals of real accounts.
pub const ANONYMOUS_MAX: usize = 1_000;

/// How many accounts' refusals from many clients are summarized beyond `REFUSALS_MAX`.
const SUMMARIES_MAX: usize = 10_000;

/// Longest email kept of a failed sign-in.
const EMAIL_MAX: usize = 254;

/// Every reason a refusal of sign-in can have, by its name.
fn refusal_reason(name: &str) -> &'static str {
    Reason::ALL
        .iter()
        .map(|r| r.as_str())
        .chain(Throttle::ALL.iter().map(|t| t.as_str()))
        .find(|r| *r == name)
        .unwrap_or("unknown")
}

/// The address a throttled refusal is counted by: an IPv6 client's /64, which one
/// client holds whole.
fn throttled_address(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(std::net::Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

impl Refusals {
    /// Counts a refusal of `action` (`session.sign_in_failed`,
    /// `two_factor.confirm_failed`) for `email` (of `subject`, when it names an account),
    /// for `reason`, from the request being served. A throttled refusal (no password was
    /// checked) is counted by its client alone, with the first email it named.
    pub fn refused(
        &self,
        action: &'static str,
        email: &str,
        subject: Option<&UserId>,
        reason: &'static str,
        at: i64,
    ) {
        let (address, user_agent, request_id) = with_seen(|s| {
            (
                s.address,
                s.user_agent().map(|u| truncate(u, USER_AGENT_MAX)),
                Some(s.request_id()),
            )
        })
        .unwrap_or((None, None, None));
        // Text that is not an email address may be a password typed in the wrong field:
        // it is not kept.
        let email = Email::parse(email)
            .ok()
            .map(|e| truncate(e.as_str(), EMAIL_MAX));
        let throttled = Throttle::ALL.iter().any(|t| t.as_str() == reason);
        let (key_email, tally_email, address) = if throttled {
            (None, email, address.map(throttled_address))
        } else {
            (email, None, address)
        };
        let key = RefusalKey {
            action,
            reason,
            email: key_email,
            subject: subject.cloned(),
            address,
        };
        let tally = Tally {
            first_at: at,
            last_at: at,
            count: 1,
            email: tally_email,
            user_agent,
            request_id,
        };
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .add(key, tally);
    }

    /// Takes what was counted: the tallies and the refusals past the bound.
    fn take(&self) -> RefusalMap {
        std::mem::take(&mut *self.inner.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Puts tallies that could not be written back, beside those counted since, so the
    /// next flush tries again; within the same bounds.
    fn put_back(&self, taken: RefusalMap) {
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for (k, t) in taken.tallies {
            m.add(k, t);
        }
        m.dropped += taken.dropped;
        if let Some(since) = taken.dropped_since {
            m.dropped_since = Some(m.dropped_since.map_or(since, |d| d.min(since)));
        }
    }
}

/// The events of `taken`, oldest first.
fn refusal_events(taken: &RefusalMap) -> Vec<Event> {
    let mut out: Vec<Event> = taken
        .tallies
        .iter()
        .map(|(k, t)| {
            let summary = k.subject.is_some() && k.email.is_none() && k.address.is_none();
            let mut e = Event::new(Who::Anonymous, k.action, t.first_at)
                .outcome(Outcome::Failure)
                .details(serde_json::json!({
                    "email": k.email.as_ref().or(t.email.as_ref()),
                    "reason": refusal_reason(k.reason),
                    "lastAt": crate::clock::rfc3339(t.last_at),
                    "manyClients": summary.then_some(true),
                }));
            e.subject = k.subject.clone();
            e.count = t.count;
            e.origin = Some(Origin {
                address: k.address.map(|a| a.to_string()),
                user_agent: t.user_agent.clone(),
                request_id: t.request_id.clone(),
            });
            e
        })
        .collect();
    if taken.dropped > 0 {
        let at = taken.dropped_since.unwrap_or(0);
        let mut e =
            Event::new(Who::Anonymous, "audit.refusals_dropped", at).outcome(Outcome::Failure);
        e.count = taken.dropped;
        e.origin = Some(Origin::default());
        out.push(e);
    }
    out.sort_by_key(|e| e.at);
    out
}

/// Writes the refusals counted since the last flush, in one unit of work; they wait
/// for the next flush when it fails. Answers how many events it wrote.
pub async fn flush_refusals(st: &State) -> Result<usize> {
    let taken = st.refusals.take();
    let events = refusal_events(&taken);
    if events.is_empty() {
        return Ok(0);
    }
    if taken.dropped > 0 {
        tracing::warn!(
            dropped = taken.dropped,
            "more kinds of refused sign-in than the audit log tells apart: counted in one \
             audit.refusals_dropped event"
        );
    }
    let n = events.len();
    let written = st
        .write(&policy::unchecked::<op::AuditFlush>(), move |tx| {
            for e in events {
                tx.audit(e);
            }
            Ok(())
        })
        .await;
    match written {
        Ok(()) => Ok(n),
        Err(e) => {
            st.refusals.put_back(taken);
            Err(e)
        }
    }
}

/// Most events on one page.
pub const PAGE_MAX: usize = 100;

/// A cursor as the API carries it: the last event of a page, as `<at>.<id>`.
pub fn cursor_text(c: Cursor) -> String {
    format!("{}.{}", c.at, c.id)
}

/// The cursor `text` names; a 400 when it is not one this server gave.
pub fn parse_cursor(text: &str) -> Result<Cursor> {
    let bad = || {
        let mut c = Checks::new();
        c.fail("cursor", "not a cursor from a previous page");
        c.finish()
            .err()
            .unwrap_or_else(|| Error::internal("a refused cursor without a reason"))
    };
    let (at, id) = text.split_once('.').ok_or_else(bad)?;
    Ok(Cursor {
        at: at.parse().map_err(|_| bad())?,
        id: id.parse().map_err(|_| bad())?,
    })
}

/// One page of a log, newest first, and the cursor of the next page when there is one.
pub struct AuditPage {
    pub events: Vec<Stored>,
    pub next: Option<String>,
}

/// What a listing asks for: which events, from where, how many.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub filter: Filter,
    /// Where the previous page stopped.
    pub cursor: Option<Cursor>,
    pub limit: usize,
}

fn page(st: &State, scope: Scope, q: &Query) -> Result<AuditPage> {
    let limit = q.limit.clamp(1, PAGE_MAX);
    let (events, more) = st.read(|c| store::audit::list(c, &scope, &q.filter, q.cursor, limit))?;
    let next = more
        .then(|| {
            events
                .last()
                .map(|e| cursor_text(Cursor { at: e.at, id: e.id }))
        })
        .flatten();
    Ok(AuditPage { events, next })
}

/// `audit.all`: the log of the caller's organization, for its owner and admins.
pub fn all(st: &State, actor: &Actor, q: &Query) -> Result<AuditPage> {
    policy::authorize::<op::AuditAll>(actor)?;
    let org = actor.member()?.organization_id.clone();
    page(st, Scope::Org(org), q)
}

/// `audit.account`: the caller's own events: its sign-ins (failed ones included),
/// sessions, password and two-factor, and what it did itself in the organizations it
/// is a member of. What others did in an organization is that organization's
/// (`audit.all`).
pub fn account(st: &State, actor: &Actor, q: &Query) -> Result<AuditPage> {
    policy::authorize::<op::AuditAccount>(actor)?;
    let scope = Scope::Account {
        user: actor.user().id.clone(),
        // A key acts inside its organization: it reads nothing of the user's others.
        only: actor.key().map(|k| k.organization_id.clone()),
    };
    page(st, scope, q)
}

/// Every event from `since` on, of one organization or all, oldest first, for
/// `keygate audit export`.
pub fn export(
    st: &State,
    since: i64,
    org: Option<&OrgId>,
    each: impl FnMut(Stored) -> Result<()>,
) -> Result<usize> {
    st.read(|c| store::audit::each_since(c, since, org, each))
}

/// Rows one write of the pruning deletes: other writes go between them.
const PRUNE_CHUNK: i64 = 5_000;

/// Deletes events older than the audit retention, a chunk per write; answers how many
/// went.
pub async fn prune(st: &State) -> Result<usize> {
    let before = st.now() - i64::from(st.config.audit_retention_days) * DAY;
    let mut total = 0;
    loop {
        let n = st
            .write(&policy::unchecked::<op::Retention>(), move |tx| {
                store::audit::prune(tx, before, PRUNE_CHUNK)
            })
            .await?;
        total += n;
        if (n as i64) < PRUNE_CHUNK {
            return Ok(total);
        }
    }
}

/// A role as the log names it.
pub fn role_name(r: Role) -> &'static str {
    r.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRONG: &str = "invalid_credentials";

    fn refuse(r: &Refusals, email: &str, subject: Option<&str>, reason: &'static str, at: i64) {
        let subject = subject.map(|s| UserId(s.into()));
        r.refused(
            "session.sign_in_failed",
            email,
            subject.as_ref(),
            reason,
            at,
        );
    }

    /// Counts as if served to a client at `address`.
    async fn refuse_from(r: &Refusals, address: &str, email: &str, reason: &'static str) {
        let seen = Seen::new(Some(address.parse().unwrap()), None, None);
        serving(seen, async { refuse(r, email, None, reason, 1) }).await;
    }

    fn details(events: &[Event], key: &str) -> Vec<serde_json::Value> {
        events
            .iter()
            .map(|e| {
                e.details
                    .as_ref()
                    .and_then(|d| d.get(key))
                    .cloned()
                    .unwrap_or_default()
            })
            .collect()
    }

    /// The events about the account `user`.
    fn of_subject<'e>(events: &'e [Event], user: &str) -> Vec<&'e Event> {
        events
            .iter()
            .filter(|e| e.subject.as_ref().is_some_and(|s| s.0 == user))
            .collect()
    }

    #[test]
    fn made_up_emails_fill_only_their_share_and_leave_room_for_real_accounts() {
        let r = Refusals::default();
        for i in 0..REFUSALS_MAX + 5 {
            refuse(&r, &format!("junk{i}@example.com"), None, WRONG, 1);
        }
        refuse(&r, "ada@example.com", Some("ada"), WRONG, 2);
        let taken = r.take();
        assert_eq!(taken.tallies.len(), ANONYMOUS_MAX + 1);
        assert_eq!(taken.dropped, (REFUSALS_MAX + 5 - ANONYMOUS_MAX) as i64);
        let events = refusal_events(&taken);
        let ada = of_subject(&events, "ada");
        assert_eq!(ada.len(), 1);
        assert_eq!(ada[0].count, 1);
        let dropped: Vec<_> = events
            .iter()
            .filter(|e| e.action == "audit.refusals_dropped")
            .collect();
        assert_eq!(dropped.len(), 1);
        assert_eq!(dropped[0].count, taken.dropped);
        assert!(r.take().tallies.is_empty(), "taking empties the map");
    }

    #[tokio::test]
    async fn past_the_bound_an_accounts_refusals_are_summed_per_reason_not_lost() {
        let r = Refusals::default();
        for i in 0..REFUSALS_MAX {
            refuse(&r, "x@example.com", Some(&format!("u{i}")), WRONG, 1);
        }
        // From five more clients each: one summary per account and reason.
        for a in 1..=5 {
            refuse_from(&r, &format!("192.0.2.{a}"), "x@example.com", WRONG).await;
            r.refused(
                "session.sign_in_failed",
                "ada@example.com",
                Some(&UserId("ada".into())),
                WRONG,
                10 + a,
            );
        }
        let taken = r.take();
        assert_eq!(taken.tallies.len(), REFUSALS_MAX + 1);
        assert_eq!(taken.summaries, 1);
        let events = refusal_events(&taken);
        let ada = of_subject(&events, "ada");
        assert_eq!(ada.len(), 1);
        assert_eq!(ada[0].count, 5);
        assert_eq!(ada[0].at, 11);
        let d = ada[0].details.as_ref().unwrap();
        assert_eq!(d["manyClients"], true);
        assert_eq!(d["email"], "ada@example.com");
        // Refusals of no account find no room: counted only.
        assert_eq!(taken.dropped, 5);
    }

    #[test]
    fn a_failed_flush_puts_its_tallies_back_within_the_same_bounds() {
        let r = Refusals::default();
        for i in 0..ANONYMOUS_MAX {
            refuse(&r, &format!("old{i}@example.com"), None, WRONG, 1);
        }
        refuse(&r, "ada@example.com", Some("ada"), WRONG, 5);
        let taken = r.take();
        // While the write fails, the map fills again.
        for i in 0..ANONYMOUS_MAX {
            refuse(&r, &format!("new{i}@example.com"), None, WRONG, 2);
        }
        refuse(&r, "ada@example.com", Some("ada"), WRONG, 9);
        r.put_back(taken);
        let m = r.take();
        assert_eq!(m.tallies.len(), ANONYMOUS_MAX + 1, "bounded");
        assert_eq!(
            m.dropped, ANONYMOUS_MAX as i64,
            "the old ones counted, not kept"
        );
        let ada = refusal_events(&m)
            .into_iter()
            .find(|e| e.subject.is_some())
            .unwrap();
        assert_eq!((ada.count, ada.at), (2, 5));
        assert_eq!(ada.details.unwrap()["lastAt"], crate::clock::rfc3339(9));
    }

    #[tokio::test]
    async fn a_throttled_client_is_one_kind_per_address_and_ipv6_64() {
        let r = Refusals::default();
        let throttled = Throttle::ALL[0].as_str();
        for i in 0..50 {
            let email = format!("guess{i}@example.com");
            refuse_from(&r, &format!("2001:db8:1:2::{i:x}"), &email, throttled).await;
            refuse_from(&r, "192.0.2.9", &email, throttled).await;
        }
        let events = refusal_events(&r.take());
        let mut seen: Vec<_> = events
            .iter()
            .map(|e| (e.origin.clone().unwrap().address.unwrap(), e.count))
            .collect();
        seen.sort();
        assert_eq!(
            seen,
            [
                ("192.0.2.9".to_owned(), 50),
                ("2001:db8:1:2::".to_owned(), 50)
            ]
        );
        assert_eq!(
            details(&events, "email"),
            vec![serde_json::json!("guess0@example.com"); 2]
        );
    }

    #[test]
    fn text_that_is_no_email_address_is_not_kept() {
        let r = Refusals::default();
        refuse(&r, "correct horse battery staple", None, WRONG, 1);
        refuse(&r, "  Ada@Example.com ", None, WRONG, 1);
        let events = refusal_events(&r.take());
        let mut emails = details(&events, "email");
        emails.sort_by_key(|v| v.to_string());
        assert_eq!(
            emails,
            [
                serde_json::json!("ada@example.com"),
                serde_json::Value::Null
            ]
        );
        let text = format!("{:?}", events);
        assert!(!text.contains("horse"), "{text}");
    }
}
