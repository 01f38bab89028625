//! `audit.*`: the audit log of an organization, and the events of one's own account.

use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::ApiTags;
use super::error::ApiResult;
use super::security::Caller;
use super::text::Int;
use crate::clock::{parse_rfc3339, rfc3339};
use crate::domain::State;
use crate::domain::audit::{self, AuditPage, PAGE_MAX};
use crate::error::{Checks, Result};
use crate::store::audit::{Filter, Stored, Who};

/// Who acted.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct ActorView {
    /// `user`, `api_key`, `shell` (a command on the server) or `anonymous` (a sign-in
    /// for an email without an account).
    #[oai(rename = "type")]
    pub kind: String,
    /// The user's or the key's id.
    #[oai(skip_serializing_if_is_none)]
    pub id: Option<String>,
    /// The user the key acts for (the user itself for a user).
    #[oai(skip_serializing_if_is_none)]
    pub user_id: Option<String>,
    /// The user's email, or the key's first characters (`start`).
    #[oai(skip_serializing_if_is_none)]
    pub label: Option<String>,
}

impl From<&Who> for ActorView {
    fn from(w: &Who) -> Self {
        let (id, user_id, label) = match w {
            Who::User { id, email } => (Some(id.to_string()), Some(id.to_string()), Some(email)),
            Who::Key { id, start, user } => {
                (Some(id.to_string()), Some(user.to_string()), Some(start))
            }
            Who::Shell | Who::Anonymous => (None, None, None),
        };
        ActorView {
            kind: w.kind().to_owned(),
            id,
            user_id,
            label: label.cloned(),
        }
    }
}

/// One event of the audit log. It never holds a secret: no key, hash, token or password.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct AuditEventView {
    pub id: i64,
    /// When it happened (the first time, for a refusal counted `count` times).
    pub at: String,
    #[oai(skip_serializing_if_is_none)]
    pub organization_id: Option<String>,
    pub actor: ActorView,
    /// The user the event concerns: the one signing in, the member removed, the key's
    /// user.
    #[oai(skip_serializing_if_is_none)]
    pub subject_user_id: Option<String>,
    /// What happened, as a dotted name: `apikey.create`, `session.sign_in_failed`.
    pub action: String,
    #[oai(skip_serializing_if_is_none)]
    pub resource_type: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub resource_id: Option<String>,
    /// `success`, `failure` (a wrong password or code) or `refused` (a request refused
    /// for the state of its key).
    pub outcome: String,
    /// How many times it happened from `at` on: refusals are counted in memory and
    /// written together (`details.lastAt` is the last one).
    pub count: i64,
    #[oai(skip_serializing_if_is_none)]
    pub client_address: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub user_agent: Option<String>,
    /// The request's id: a proxy's `X-Request-Id`, or keygate's own, which the answer
    /// to that request carried in `X-Request-Id`.
    #[oai(skip_serializing_if_is_none)]
    pub request_id: Option<String>,
    /// What else the event says: the email a failed sign-in named, a new role.
    #[oai(skip_serializing_if_is_none)]
    pub details: Option<serde_json::Value>,
}

impl From<Stored> for AuditEventView {
    fn from(e: Stored) -> Self {
        let (resource_type, resource_id) = match e.resource {
            Some((t, id)) => (Some(t), Some(id).filter(|i| !i.is_empty())),
            None => (None, None),
        };
        AuditEventView {
            id: e.id,
            at: rfc3339(e.at),
            organization_id: e.org.map(|o| o.0),
            actor: (&e.who).into(),
            subject_user_id: e.subject.map(|u| u.0),
            action: e.action,
            resource_type,
            resource_id,
            outcome: e.outcome.as_str().to_owned(),
            count: e.count,
            client_address: e.origin.address,
            user_agent: e.origin.user_agent,
            request_id: e.origin.request_id,
            details: e.details,
        }
    }
}

/// One page of events, newest first.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct AuditEvents {
    pub events: Vec<AuditEventView>,
    /// Pass as `cursor` for the next page; absent on the last one.
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

impl From<AuditPage> for AuditEvents {
    fn from(p: AuditPage) -> Self {
        AuditEvents {
            events: p.events.into_iter().map(Into::into).collect(),
            next_cursor: p.next,
        }
    }
}

/// Default page size.
const PAGE_DEFAULT: i64 = 50;

/// The query's filter and cursor; a 400 names every parameter that is wrong.
fn parse(q: Params) -> Result<audit::Query> {
    let mut c = Checks::new();
    let mut time = |name: &str, v: Option<String>| match v {
        None => None,
        Some(s) => {
            let t = parse_rfc3339(&s);
            if t.is_none() {
                c.fail(name, "an RFC 3339 time, such as 2026-12-01T00:00:00Z");
            }
            t
        }
    };
    let (from, to) = (time("from", q.from), time("to", q.to));
    if let (Some(f), Some(t)) = (from, to)
        && f >= t
    {
        c.fail("to", "must be after from");
    }
    let cursor = match q.cursor.as_deref().map(audit::parse_cursor) {
        Some(Ok(cur)) => Some(cur),
        Some(Err(_)) => {
            c.fail("cursor", "not a cursor from a previous page");
            None
        }
        None => None,
    };
    let short = |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let filter = Filter {
        actor: short(q.actor_id),
        action: short(q.action),
        resource_type: short(q.resource_type),
        resource_id: short(q.resource_id),
        from,
        to,
    };
    for (name, v) in [
        ("actorId", &filter.actor),
        ("action", &filter.action),
        ("resourceType", &filter.resource_type),
        ("resourceId", &filter.resource_id),
    ] {
        if v.as_ref().is_some_and(|s| s.len() > 200) {
            c.fail(name, "at most 200 characters");
        }
    }
    let limit = q.limit.map_or(PAGE_DEFAULT, |l| l.0);
    if !(1..=PAGE_MAX as i64).contains(&limit) {
        c.fail("limit", format!("must be between 1 and {PAGE_MAX}"));
    }
    c.finish()?;
    Ok(audit::Query {
        filter,
        cursor,
        limit: limit as usize,
    })
}

/// The query parameters both listings take.
struct Params {
    actor_id: Option<String>,
    action: Option<String>,
    resource_type: Option<String>,
    resource_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<Int<1, { PAGE_MAX as i64 }>>,
    cursor: Option<String>,
}

pub struct AuditApi;

#[OpenApi(prefix_path = "/api", tag = "ApiTags::Audit")]
impl AuditApi {
    /// The audit log of the organization the request acts in, newest first (owner or
    /// admin): its keys, members, invitations, the organization itself and its
    /// resources, and changes made to them from the shell. Requests refused for a
    /// disabled or expired key are counted and written a few seconds later, one event
    /// per key and reason with its `count`. Sign-ins, sessions, passwords and two-factor
    /// belong to each user's account, not to an organization: see `audit.account`.
    #[oai(path = "/audit.all", method = "get", operation_id = "audit.all")]
    #[allow(clippy::too_many_arguments)]
    async fn all(
        &self,
        st: Data<&State>,
        caller: Caller,
        /// Events by this actor: a user's id (its keys' events included) or a key's id.
        #[oai(name = "actorId")]
        actor_id: Query<Option<String>>,
        /// Events of this action, such as `apikey.create`.
        action: Query<Option<String>>,
        /// Events about resources of this type: `apikey`, `member`, `project`...
        #[oai(name = "resourceType")]
        resource_type: Query<Option<String>>,
        /// Events about the resource of this id.
        #[oai(name = "resourceId")]
        resource_id: Query<Option<String>>,
        /// Events from this time on (RFC 3339).
        from: Query<Option<String>>,
        /// Events before this time (RFC 3339).
        to: Query<Option<String>>,
        /// Page size, 1-100 (default 50).
        limit: Query<Option<Int<1, { PAGE_MAX as i64 }>>>,
        /// The `nextCursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> ApiResult<Json<AuditEvents>> {
        let q = parse(Params {
            actor_id: actor_id.0,
            action: action.0,
            resource_type: resource_type.0,
            resource_id: resource_id.0,
            from: from.0,
            to: to.0,
            limit: limit.0,
            cursor: cursor.0,
        })?;
        Ok(Json(audit::all(&st, &caller.0, &q)?.into()))
    }

    /// The caller's own events, newest first: its sign-ins (failed ones included),
    /// sign-outs and sessions, password and two-factor changes, and what it did itself
    /// in the organizations it is a member of. What others did in an organization is in
    /// its `audit.all`.
    #[oai(
        path = "/audit.account",
        method = "get",
        operation_id = "audit.account"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn account(
        &self,
        st: Data<&State>,
        caller: Caller,
        /// Events by this actor: a user's id (its keys' events included) or a key's id.
        #[oai(name = "actorId")]
        actor_id: Query<Option<String>>,
        /// Events of this action, such as `session.sign_in_failed`.
        action: Query<Option<String>>,
        /// Events about resources of this type.
        #[oai(name = "resourceType")]
        resource_type: Query<Option<String>>,
        /// Events about the resource of this id.
        #[oai(name = "resourceId")]
        resource_id: Query<Option<String>>,
        /// Events from this time on (RFC 3339).
        from: Query<Option<String>>,
        /// Events before this time (RFC 3339).
        to: Query<Option<String>>,
        /// Page size, 1-100 (default 50).
        limit: Query<Option<Int<1, { PAGE_MAX as i64 }>>>,
        /// The `nextCursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> ApiResult<Json<AuditEvents>> {
        let q = parse(Params {
            actor_id: actor_id.0,
            action: action.0,
            resource_type: resource_type.0,
            resource_id: resource_id.0,
            from: from.0,
            to: to.0,
            limit: limit.0,
            cursor: cursor.0,
        })?;
        Ok(Json(audit::account(&st, &caller.0, &q)?.into()))
    }
}
