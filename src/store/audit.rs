//! The audit log: events appended in the unit of work of the change they record, read
//! newest first a page at a time, exported, and pruned after the retention.

use rusqlite::types::ToSql;
use rusqlite::{Row, params};

use super::{Reader, Tx};
use crate::error::Result;
use crate::model::{ApiKeyId, OrgId, UserId};

/// How an event ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The change was made.
    Success,
    /// An attempt that failed on what the caller gave (a wrong password, a wrong code).
    Failure,
    /// A request refused for the state of its credential (a disabled or expired key).
    Refused,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Refused => "refused",
        }
    }

    fn parse(s: &str) -> Outcome {
        match s {
            "failure" => Outcome::Failure,
            "refused" => Outcome::Refused,
            _ => Outcome::Success,
        }
    }
}

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// A user, with a session (or signing in).
    User { id: UserId, email: String },
    /// An API key: its id, its `start` (the first characters, never the key) and its
    /// user.
    Key {
        id: ApiKeyId,
        start: String,
        user: UserId,
    },
    /// A command run on the server's shell.
    Shell,
    /// Nobody known: a sign-in for an email without an account.
    Anonymous,
}

impl Who {
    pub fn kind(&self) -> &'static str {
        match self {
            Who::User { .. } => "user",
            Who::Key { .. } => "api_key",
            Who::Shell => "shell",
            Who::Anonymous => "anonymous",
        }
    }

    /// The actor's id, the user it acts for, and a label a person recognizes.
    fn columns(&self) -> (Option<&str>, Option<&str>, Option<&str>) {
        match self {
            Who::User { id, email } => (Some(id.as_str()), Some(id.as_str()), Some(email)),
            Who::Key { id, start, user } => (Some(id.as_str()), Some(user.as_str()), Some(start)),
            Who::Shell | Who::Anonymous => (None, None, None),
        }
    }

    fn from_columns(
        kind: &str,
        id: Option<String>,
        user: Option<String>,
        label: Option<String>,
    ) -> Who {
        match (kind, id) {
            ("user", Some(id)) => Who::User {
                id: UserId(id),
                email: label.unwrap_or_default(),
            },
            ("api_key", Some(id)) => Who::Key {
                id: ApiKeyId(id),
                start: label.unwrap_or_default(),
                user: UserId(user.unwrap_or_default()),
            },
            ("shell", _) => Who::Shell,
            _ => Who::Anonymous,
        }
    }
}

/// Where a request came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub address: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

/// One event to record.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub at: i64,
    /// A dotted name: `apikey.create`, `session.sign_in_failed`.
    pub action: &'static str,
    pub outcome: Outcome,
    pub org: Option<OrgId>,
    pub who: Who,
    /// The user the event concerns, who may read it among their account's events.
    pub subject: Option<UserId>,
    /// The resource's type and id.
    pub resource: Option<(&'static str, String)>,
    /// How many times it happened (refusals counted in memory), from `at` on.
    pub count: i64,
    /// A small JSON object: the email a failed sign-in named, a new role.
    pub details: Option<serde_json::Value>,
    /// Where it came from; `None` takes the unit of work's (the request's).
    pub origin: Option<Origin>,
}

impl Event {
    pub fn new(who: Who, action: &'static str, at: i64) -> Event {
        let subject = match &who {
            Who::User { id, .. } => Some(id.clone()),
            Who::Key { user, .. } => Some(user.clone()),
            Who::Shell | Who::Anonymous => None,
        };
        Event {
            at,
            action,
            outcome: Outcome::Success,
            org: None,
            who,
            subject,
            resource: None,
            count: 1,
            details: None,
            origin: None,
        }
    }

    pub fn org(mut self, org: &OrgId) -> Event {
        self.org = Some(org.clone());
        self
    }

    pub fn resource(mut self, kind: &'static str, id: &str) -> Event {
        self.resource = Some((kind, id.to_owned()));
        self
    }

    /// The user the event concerns, when it is not the actor.
    pub fn subject(mut self, user: &UserId) -> Event {
        self.subject = Some(user.clone());
        self
    }

    pub fn outcome(mut self, outcome: Outcome) -> Event {
        self.outcome = outcome;
        self
    }

    /// What else the event says, as a JSON object; its null fields are left out.
    pub fn details(mut self, mut details: serde_json::Value) -> Event {
        if let Some(o) = details.as_object_mut() {
            o.retain(|_, v| !v.is_null());
        }
        self.details = Some(details);
        self
    }
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub id: i64,
    pub at: i64,
    pub action: String,
    pub outcome: Outcome,
    pub org: Option<OrgId>,
    pub who: Who,
    pub subject: Option<UserId>,
    pub resource: Option<(String, String)>,
    pub count: i64,
    pub details: Option<serde_json::Value>,
    pub origin: Origin,
}

const COLUMNS: &str = "id, at, action, outcome, organization_id, actor_type, actor_id, \
    actor_user_id, actor_label, subject_user_id, resource_type, resource_id, count, \
    client_address, user_agent, request_id, details";

fn stored(r: &Row<'_>) -> rusqlite::Result<Stored> {
    let kind: String = r.get(5)?;
    let resource = match (r.get::<_, Option<String>>(10)?, r.get(11)?) {
        (Some(t), Some(id)) => Some((t, id)),
        (Some(t), None) => Some((t, String::new())),
        _ => None,
    };
    Ok(Stored {
        id: r.get(0)?,
        at: r.get(1)?,
        action: r.get(2)?,
        outcome: Outcome::parse(&r.get::<_, String>(3)?),
        org: r.get::<_, Option<String>>(4)?.map(OrgId),
        who: Who::from_columns(&kind, r.get(6)?, r.get(7)?, r.get(8)?),
        subject: r.get::<_, Option<String>>(9)?.map(UserId),
        resource,
        count: r.get(12)?,
        origin: Origin {
            address: r.get(13)?,
            user_agent: r.get(14)?,
            request_id: r.get(15)?,
        },
        details: r
            .get::<_, Option<String>>(16)?
            .and_then(|d| serde_json::from_str(&d).ok()),
    })
}

/// Appends `events`, each with its own origin or else `origin`.
pub(super) fn append(tx: &Tx, events: &[Event], origin: &Origin) -> Result<()> {
    let mut st = tx.prepare_cached(
        "INSERT INTO audit_events (at, action, outcome, organization_id, actor_type, actor_id, \
         actor_user_id, actor_label, subject_user_id, resource_type, resource_id, count, \
         client_address, user_agent, request_id, details) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )?;
    for e in events {
        let (actor, actor_user, label) = e.who.columns();
        let o = e.origin.as_ref().unwrap_or(origin);
        let (rtype, rid) = match &e.resource {
            Some((t, id)) => (Some(*t), Some(id.as_str())),
            None => (None, None),
        };
        st.execute(params![
            e.at,
            e.action,
            e.outcome.as_str(),
            e.org.as_ref().map(OrgId::as_str),
            e.who.kind(),
            actor,
            actor_user,
            label,
            e.subject.as_ref().map(UserId::as_str),
            rtype,
            rid,
            e.count,
            o.address,
            o.user_agent,
            o.request_id,
            e.details.as_ref().map(|d| d.to_string()),
        ])?;
    }
    Ok(())
}

/// Whose events a listing reads.
#[derive(Debug, Clone)]
pub enum Scope {
    /// An organization's.
    Org(OrgId),
    /// A user's own: those that concern the user and belong to no organization (its
    /// sign-ins, sessions, password, two-factor), and what the user did itself in the
    /// organizations it is a member of; with `only`, in that one organization alone (an
    /// API key's, which acts inside it).
    Account { user: UserId, only: Option<OrgId> },
}

/// What a listing keeps.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// The actor's id, or the user a key acted for.
    pub actor: Option<String>,
    pub action: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    /// From this time on (inclusive), in ms.
    pub from: Option<i64>,
    /// Before this time (exclusive), in ms.
    pub to: Option<i64>,
}

/// Where the previous page stopped: the last event it held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub at: i64,
    pub id: i64,
}

/// Up to `limit` events of `scope` that `filter` keeps, newest first, after `cursor`;
/// and whether more follow.
pub fn list(
    conn: &Reader,
    scope: &Scope,
    filter: &Filter,
    cursor: Option<Cursor>,
    limit: usize,
) -> Result<(Vec<Stored>, bool)> {
    let mut sql = format!("SELECT {COLUMNS} FROM audit_events WHERE ");
    let mut args: Vec<&dyn ToSql> = Vec::new();
    match scope {
        Scope::Org(o) => {
            sql.push_str("organization_id = ?");
            args.push(&o.0);
        }
        Scope::Account { user: u, only } => {
            sql.push_str(
                "subject_user_id = ? AND (organization_id IS NULL OR (actor_user_id = ? \
                 AND organization_id IN (SELECT organization_id FROM members WHERE user_id = ?)",
            );
            args.push(&u.0);
            args.push(&u.0);
            args.push(&u.0);
            if let Some(o) = only {
                sql.push_str(" AND organization_id = ?");
                args.push(&o.0);
            }
            sql.push_str("))");
        }
    }
    let and = |cond: &str, sql: &mut String| {
        sql.push_str(" AND ");
        sql.push_str(cond);
    };
    if let Some(a) = &filter.actor {
        and("(actor_id = ? OR actor_user_id = ?)", &mut sql);
        args.push(a);
        args.push(a);
    }
    if let Some(a) = &filter.action {
        and("action = ?", &mut sql);
        args.push(a);
    }
    if let Some(t) = &filter.resource_type {
        and("resource_type = ?", &mut sql);
        args.push(t);
    }
    if let Some(id) = &filter.resource_id {
        and("resource_id = ?", &mut sql);
        args.push(id);
    }
    if let Some(f) = &filter.from {
        and("at >= ?", &mut sql);
        args.push(f);
    }
    if let Some(t) = &filter.to {
        and("at < ?", &mut sql);
        args.push(t);
    }
    if let Some(c) = &cursor {
        and("(at < ? OR (at = ? AND id < ?))", &mut sql);
        args.push(&c.at);
        args.push(&c.at);
        args.push(&c.id);
    }
    let fetch = (limit + 1) as i64;
    sql.push_str(" ORDER BY at DESC, id DESC LIMIT ?");
    args.push(&fetch);
    #[cfg(test)]
    super::tests::assert_indexed(conn.conn, &sql, &args);
    let mut st = conn.prepare_cached(&sql)?;
    let mut rows: Vec<Stored> = st
        .query_map(args.as_slice(), stored)?
        .collect::<rusqlite::Result<_>>()?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    Ok((rows, more))
}

/// Every event from `since` on, oldest first, of one organization or of all, handed to
/// `each` one at a time (an export need not fit in memory).
pub fn each_since(
    conn: &Reader,
    since: i64,
    org: Option<&OrgId>,
    mut each: impl FnMut(Stored) -> Result<()>,
) -> Result<usize> {
    let sql = match org {
        Some(_) => format!(
            "SELECT {COLUMNS} FROM audit_events WHERE organization_id = ?2 AND at >= ?1 \
             ORDER BY at, id"
        ),
        None => format!("SELECT {COLUMNS} FROM audit_events WHERE at >= ?1 ORDER BY at, id"),
    };
    let mut st = conn.prepare_cached(&sql)?;
    let mut rows = match org {
        Some(o) => st.query(params![since, o.as_str()])?,
        None => st.query(params![since])?,
    };
    let mut n = 0;
    while let Some(r) = rows.next()? {
        each(stored(r)?)?;
        n += 1;
    }
    Ok(n)
}

/// Deletes up to `limit` events older than `before`; answers how many went.
pub fn prune(tx: &Tx, before: i64, limit: i64) -> Result<usize> {
    Ok(tx
        .prepare_cached(
            "DELETE FROM audit_events WHERE id IN \
         (SELECT id FROM audit_events WHERE at < ?1 ORDER BY at LIMIT ?2)",
        )?
        .execute(params![before, limit])?)
}
