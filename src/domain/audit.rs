//! The audit log's rules: who an event names, where its request came from, refusals
//! counted in memory until the usage flush writes them, who may read what, and the
//! retention.
//!
//! Changes record their events in their own unit of work (`Tx::audit`), so there is no
//! change without its event and no event without its change. Refusals (a wrong
//! password, a disabled key) change nothing and can come by the thousand: they are
//! counted here, by what they have in common, and written a few rows per flush.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use poem::http::HeaderValue;

use super::State;
use super::access::{Actor, Via};
use super::policy::{self, op};
use crate::clock::DAY;
use crate::error::{Checks, Error, Reason, Result, Throttle};
use crate::model::{OrgId, Role, UserId};
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

/// Runs `f` as the serving of a request that `seen` describes; answers its output and,
/// when the request recorded an audit event, its request id.
pub async fn serving<F: std::future::Future>(seen: Seen, f: F) -> (F::Output, Option<String>) {
    SEEN.scope(seen, async move {
        let out = f.await;
        let id = SEEN.with(|s| s.audited().then(|| s.request_id()));
        (out, id)
    })
    .await
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
    /// The email a sign-in named, cut to its longest.
    email: String,
    subject: Option<UserId>,
    address: Option<IpAddr>,
}

#[derive(Debug)]
struct Tally {
    first_at: i64,
    last_at: i64,
    count: i64,
    user_agent: Option<String>,
    request_id: Option<String>,
}

/// Refused sign-ins, counted in memory by what they have in common, until the usage
/// flush writes them as one event each. Bounded: past `REFUSALS_MAX` kinds, refusals
/// are only counted, and written as one `audit.refusals_dropped` event.
#[derive(Default)]
pub struct Refusals {
    inner: Mutex<RefusalMap>,
}

#[derive(Default)]
struct RefusalMap {
    tallies: HashMap<RefusalKey, Tally>,
    dropped: i64,
    dropped_since: Option<i64>,
}

/// How many kinds of refusal are told apart between two flushes.
pub const REFUSALS_MAX: usize = 10_000;

/// Longest email kept of a failed sign-in.
const EMAIL_MAX: usize = 254;

impl Refusals {
    /// Counts a failed sign-in for `email` (of `subject`, when it names an account), for
    /// `reason`, from the request being served.
    pub fn sign_in_failed(
        &self,
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
        let key = RefusalKey {
            action: "session.sign_in_failed",
            reason,
            email: truncate(email, EMAIL_MAX),
            subject: subject.cloned(),
            address,
        };
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let full = m.tallies.len() >= REFUSALS_MAX;
        match m.tallies.get_mut(&key) {
            Some(t) => {
                t.count += 1;
                t.last_at = at;
                t.user_agent = user_agent;
                t.request_id = request_id;
            }
            None if full => {
                m.dropped += 1;
                m.dropped_since.get_or_insert(at);
            }
            None => {
                m.tallies.insert(
                    key,
                    Tally {
                        first_at: at,
                        last_at: at,
                        count: 1,
                        user_agent,
                        request_id,
                    },
                );
            }
        }
    }

    /// Takes what was counted, as events.
    fn take(&self) -> Vec<Event> {
        let (tallies, dropped, since) = {
            let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            (
                std::mem::take(&mut m.tallies),
                std::mem::take(&mut m.dropped),
                m.dropped_since.take(),
            )
        };
        let mut out: Vec<Event> = tallies
            .into_iter()
            .map(|(k, t)| {
                let who = Who::Anonymous;
                let mut e = Event::new(who, k.action, t.first_at)
                    .outcome(Outcome::Failure)
                    .details(serde_json::json!({
                        "email": k.email,
                        "reason": k.reason,
                        "lastAt": crate::clock::rfc3339(t.last_at),
                    }));
                e.subject = k.subject;
                e.count = t.count;
                e.origin = Some(Origin {
                    address: k.address.map(|a| a.to_string()),
                    user_agent: t.user_agent,
                    request_id: t.request_id,
                });
                e
            })
            .collect();
        if dropped > 0 {
            let mut e = Event::new(Who::Anonymous, "audit.refusals_dropped", since.unwrap_or(0))
                .outcome(Outcome::Failure);
            e.count = dropped;
            e.origin = Some(Origin::default());
            out.push(e);
        }
        out.sort_by_key(|e| e.at);
        out
    }

    /// Puts events that could not be written back, so the next flush tries again.
    fn put_back(&self, events: Vec<Event>) {
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for e in events {
            if e.action == "audit.refusals_dropped" {
                m.dropped += e.count;
                m.dropped_since.get_or_insert(e.at);
                continue;
            }
            let details = e.details.as_ref();
            let text = |k: &str| {
                details
                    .and_then(|d| d.get(k))
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            let origin = e.origin.unwrap_or_default();
            let key = RefusalKey {
                action: e.action,
                reason: Reason::ALL
                    .iter()
                    .map(|r| r.as_str())
                    .chain(Throttle::ALL.iter().map(|t| t.as_str()))
                    .find(|r| *r == text("reason"))
                    .unwrap_or(""),
                email: text("email"),
                subject: e.subject,
                address: origin.address.as_deref().and_then(|a| a.parse().ok()),
            };
            let t = m.tallies.entry(key).or_insert(Tally {
                first_at: e.at,
                last_at: e.at,
                count: 0,
                user_agent: origin.user_agent,
                request_id: origin.request_id,
            });
            t.count += e.count;
            t.first_at = t.first_at.min(e.at);
        }
    }
}

/// Writes the refusals counted since the last flush, in one unit of work; they wait
/// for the next flush when it fails. Answers how many events it wrote.
pub async fn flush_refusals(st: &State) -> Result<usize> {
    let events = st.refusals.take();
    if events.is_empty() {
        return Ok(0);
    }
    let n = events.len();
    let work = events.clone();
    let written = st
        .write(&policy::unchecked::<op::AuditFlush>(), move |tx| {
            for e in work {
                tx.audit(e);
            }
            Ok(())
        })
        .await;
    match written {
        Ok(()) => Ok(n),
        Err(e) => {
            st.refusals.put_back(events);
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
    page(st, Scope::Account(actor.user().id.clone()), q)
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
