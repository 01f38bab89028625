use rusqlite::{Row, params};

use super::{Reader, Stale, Tx, optional};
use crate::error::Result;
use crate::model::{ApiKey, ApiKeyId, KeyScope, OrgId, Page, Paging, RateLimit, Refill, UserId};

const COLUMNS: &str = "id, name, prefix, start, user_id, organization_id, enabled, expires_at, \
    rate_limit_enabled, rate_limit_time_window, rate_limit_max, remaining, refill_amount, \
    refill_interval, last_refill_at, scope_read_only, scope_project_ids, \
    key_usage.last_used_at, coalesce(key_usage.request_count, 0), key_usage.last_address, \
    key_usage.last_user_agent, created_at, updated_at, previous_expires_at";
const USAGE: &str = "key_usage.last_used_at, coalesce(key_usage.request_count, 0), \
    key_usage.last_address, key_usage.last_user_agent";
/// A key's row with its usage, which lives in a table of its own (see `record_usage`).
const KEYS: &str = "api_keys LEFT JOIN key_usage ON key_usage.key_id = api_keys.id";

fn api_key(r: &Row<'_>) -> rusqlite::Result<ApiKey> {
    let rate_limit = match (
        r.get::<_, bool>(8)?,
        r.get::<_, Option<i64>>(9)?,
        r.get::<_, Option<i64>>(10)?,
    ) {
        (true, Some(window_ms), Some(max)) => Some(RateLimit {
            window_ms,
            max: u32::try_from(max).unwrap_or(u32::MAX),
        }),
        _ => None,
    };
    let refill = match (r.get::<_, Option<i64>>(12)?, r.get::<_, Option<i64>>(13)?) {
        (Some(amount), Some(interval_ms)) => Some(Refill {
            amount,
            interval_ms,
        }),
        _ => None,
    };
    let project_ids: Option<String> = r.get(16)?;
    Ok(ApiKey {
        id: ApiKeyId(r.get(0)?),
        name: r.get(1)?,
        prefix: r.get(2)?,
        start: r.get(3)?,
        user_id: UserId(r.get(4)?),
        organization_id: OrgId(r.get(5)?),
        enabled: r.get(6)?,
        expires_at: r.get(7)?,
        rate_limit,
        remaining: r.get(11)?,
        refill,
        last_refill_at: r.get(14)?,
        scope: KeyScope {
            read_only: r.get(15)?,
            // A stored scope that cannot be read narrows to nothing, never widens to all.
            project_ids: project_ids.map(|s| serde_json::from_str(&s).unwrap_or_default()),
        },
        last_used_at: r.get(17)?,
        request_count: r.get(18)?,
        last_address: r.get(19)?,
        last_user_agent: r.get(20)?,
        created_at: r.get(21)?,
        updated_at: r.get(22)?,
        previous_expires_at: r.get(23)?,
    })
}

pub fn insert(conn: &Tx, k: &ApiKey, hash: &[u8; 32]) -> Result<()> {
    conn.stale(Stale::Secret(k.id.clone(), *hash));
    let project_ids = k
        .scope
        .project_ids
        .as_ref()
        .map(|ids| serde_json::to_string(ids).unwrap_or_else(|_| "[]".into()));
    conn.prepare_cached(
        "INSERT INTO api_keys (id, name, prefix, start, key_hash, user_id, organization_id,
             enabled, expires_at, rate_limit_enabled, rate_limit_time_window, rate_limit_max,
             remaining, refill_amount, refill_interval, last_refill_at, scope_read_only,
             scope_project_ids, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                 ?18, ?19, ?20)",
    )?
    .execute(params![
        k.id.as_str(),
        k.name,
        k.prefix,
        k.start,
        &hash[..],
        k.user_id.as_str(),
        k.organization_id.as_str(),
        k.enabled,
        k.expires_at,
        k.rate_limit.is_some(),
        k.rate_limit.map(|r| r.window_ms),
        k.rate_limit.map(|r| i64::from(r.max)),
        k.remaining,
        k.refill.map(|r| r.amount),
        k.refill.map(|r| r.interval_ms),
        k.last_refill_at,
        k.scope.read_only,
        project_ids,
        k.created_at,
        k.updated_at
    ])?;
    conn.prepare_cached("INSERT INTO key_usage (key_id) VALUES (?1)")?
        .execute([k.id.as_str()])?;
    Ok(())
}

/// The key whose current or previous secret hashes to `hash`, and whether it was the
/// previous one. Its stored usage is not read (`last_used_at` is `None`,
/// `request_count` 0): authentication never needs it, the key's runtime counts uses from
/// then on, and listings read the stored usage. That keeps a lookup to the key's own
/// pages: the principal it acts as is read apart, once for all keys of one user in one
/// organization (see `AuthCache::principal`).
pub fn by_hash(conn: &Reader, hash: &[u8; 32]) -> Result<Option<(ApiKey, bool)>> {
    // Built once: these are the statements of every cache miss on the key path. The
    // current secret is looked up first and the previous one only when that finds
    // nothing: one indexed lookup each, where a UNION of both would run as a subquery.
    static SQL: std::sync::LazyLock<[String; 2]> = std::sync::LazyLock::new(|| {
        let columns = COLUMNS.replace(USAGE, "NULL, 0, NULL, NULL");
        ["key_hash", "previous_key_hash"]
            .map(|column| format!("SELECT {columns} FROM api_keys WHERE {column} = ?1"))
    });
    for (sql, previous) in SQL.iter().zip([false, true]) {
        let mut st = conn.prepare_cached(sql)?;
        if let Some(key) = optional(st.query_row([&hash[..]], api_key))? {
            return Ok(Some((key, previous)));
        }
    }
    Ok(None)
}

/// Key `id` of `user` (only in `org`, when given).
pub fn own(
    conn: &Reader,
    user: &UserId,
    org: Option<&OrgId>,
    id: &ApiKeyId,
) -> Result<Option<ApiKey>> {
    super::row(
        conn,
        &format!(
            "SELECT {COLUMNS} FROM {KEYS}
             WHERE id = ?1 AND user_id = ?2 AND (?3 IS NULL OR organization_id = ?3)"
        ),
        &[&id.as_str(), &user.as_str(), &org.map(OrgId::as_str)],
        api_key,
    )
}

/// Key `id` of `org`, whoever's it is.
pub fn in_org(conn: &Reader, org: &OrgId, id: &ApiKeyId) -> Result<Option<ApiKey>> {
    super::row(
        conn,
        &format!("SELECT {COLUMNS} FROM {KEYS} WHERE id = ?1 AND organization_id = ?2"),
        &[&id.as_str(), &org.as_str()],
        api_key,
    )
}

/// The organization of key `id`, whichever it is: only to tell "does not exist" (404)
/// from "belongs to another organization" (401) or "to someone else" (401).
pub fn locate(conn: &Reader, id: &ApiKeyId) -> Result<Option<OrgId>> {
    super::row(
        conn,
        "SELECT organization_id FROM api_keys WHERE id = ?1",
        &[&id.as_str()],
        |r| Ok(OrgId(r.get(0)?)),
    )
}

/// One page of the user's keys (only those in `org`, when given), in the order they were
/// made (indexes `api_keys_user`, `api_keys_user_org`).
pub fn of_user(
    conn: &Reader,
    user: &UserId,
    org: Option<&OrgId>,
    paging: Paging,
) -> Result<Page<ApiKey>> {
    match org {
        None => super::page(
            conn,
            "SELECT count(*) FROM api_keys WHERE user_id = ?1",
            &format!(
                "SELECT {COLUMNS} FROM {KEYS} WHERE user_id = ?1
                 ORDER BY api_keys.rowid LIMIT ?2 OFFSET ?3"
            ),
            &[&user.as_str()],
            paging,
            api_key,
        ),
        Some(org) => super::page(
            conn,
            "SELECT count(*) FROM api_keys WHERE user_id = ?1 AND organization_id = ?2",
            &format!(
                "SELECT {COLUMNS} FROM {KEYS} WHERE user_id = ?1 AND organization_id = ?2
                 ORDER BY api_keys.rowid LIMIT ?3 OFFSET ?4"
            ),
            &[&user.as_str(), &org.as_str()],
            paging,
            api_key,
        ),
    }
}

/// One page of `user`'s keys outside the organizations that require two-factor: what a
/// session of a user without two-factor may see of its keys.
pub fn of_user_outside_two_factor(
    conn: &Reader,
    user: &UserId,
    paging: Paging,
) -> Result<Page<ApiKey>> {
    const OUTSIDE: &str = "NOT EXISTS (SELECT 1 FROM organizations o
                            WHERE o.id = api_keys.organization_id AND o.require_two_factor)";
    super::page(
        conn,
        &format!("SELECT count(*) FROM api_keys WHERE user_id = ?1 AND {OUTSIDE}"),
        &format!(
            "SELECT {COLUMNS} FROM {KEYS} WHERE user_id = ?1 AND {OUTSIDE}
             ORDER BY api_keys.rowid LIMIT ?2 OFFSET ?3"
        ),
        &[&user.as_str()],
        paging,
        api_key,
    )
}

pub fn delete(conn: &Tx, key: &ApiKey) -> Result<()> {
    conn.stale(Stale::Key(key.id.clone()));
    conn.prepare_cached("DELETE FROM api_keys WHERE id = ?1 AND organization_id = ?2")?
        .execute([key.id.as_str(), key.organization_id.as_str()])?;
    Ok(())
}

/// Stores the key's name, enabled flag and `updated_at`.
pub fn update(conn: &Tx, key: &ApiKey) -> Result<()> {
    conn.stale(Stale::Key(key.id.clone()));
    conn.prepare_cached(
        "UPDATE api_keys SET name = ?3, enabled = ?4, updated_at = ?5
         WHERE id = ?1 AND organization_id = ?2",
    )?
    .execute(params![
        key.id.as_str(),
        key.organization_id.as_str(),
        key.name,
        key.enabled,
        key.updated_at
    ])?;
    Ok(())
}

/// Gives a key the secret that hashes to `new_hash`, and stores its `start` and
/// `updated_at`. With `previous_expires_at`, the old secret keeps working until then;
/// without, it stops at once.
pub fn rotate(conn: &Tx, key: &ApiKey, new_hash: &[u8; 32]) -> Result<()> {
    conn.stale(Stale::Secret(key.id.clone(), *new_hash));
    conn.prepare_cached(
        "UPDATE api_keys SET
             previous_key_hash = CASE WHEN ?5 IS NULL THEN NULL ELSE key_hash END,
             previous_expires_at = ?5,
             key_hash = ?3, start = ?4, updated_at = ?6
         WHERE id = ?1 AND organization_id = ?2",
    )?
    .execute(params![
        key.id.as_str(),
        key.organization_id.as_str(),
        &new_hash[..],
        key.start,
        key.previous_expires_at,
        key.updated_at
    ])?;
    Ok(())
}

/// A key's stored quota: (remaining, last refill), or `None` when the key is gone.
pub fn quota(conn: &Reader, id: &ApiKeyId) -> Result<Option<(Option<i64>, Option<i64>)>> {
    let mut st =
        conn.prepare_cached("SELECT remaining, last_refill_at FROM api_keys WHERE id = ?1")?;
    Ok(optional(
        st.query_row([id.as_str()], |r| Ok((r.get(0)?, r.get(1)?))),
    )?)
}

/// Stores a key's quota after a lease (and any refill that came with it).
pub fn set_quota(
    conn: &Tx,
    id: &ApiKeyId,
    remaining: i64,
    last_refill_at: Option<i64>,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE api_keys SET remaining = ?2, last_refill_at = ?3
         WHERE id = ?1 AND remaining IS NOT NULL",
    )?
    .execute(params![id.as_str(), remaining, last_refill_at])?;
    Ok(())
}

/// Gives `uses` leased and not spent back to a key's quota.
pub fn give_back(conn: &Tx, id: &ApiKeyId, uses: i64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE api_keys SET remaining = remaining + ?2 WHERE id = ?1 AND remaining IS NOT NULL",
    )?
    .execute(params![id.as_str(), uses])?;
    Ok(())
}

/// A key's requests by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcomes {
    /// Admitted: authenticated, within its quota and rate limit.
    pub ok: i64,
    /// Refused with 429 `rate_limited`.
    pub rate_limited: i64,
    /// Refused with 429 `usage_exceeded`: the quota was used up.
    pub usage_exceeded: i64,
    /// Refused for the key's own state: disabled, expired, an old secret past its grace,
    /// a write with a read-only key, a user who may no longer use keys.
    pub refused: i64,
}

impl Outcomes {
    pub fn is_empty(&self) -> bool {
        *self == Outcomes::default()
    }

    pub fn add(&mut self, o: &Outcomes) {
        self.ok += o.ok;
        self.rate_limited += o.rate_limited;
        self.usage_exceeded += o.usage_exceeded;
        self.refused += o.refused;
    }
}

/// A key's requests in the hour that starts at `hour` (Unix ms).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageHour {
    pub hour: i64,
    pub counts: Outcomes,
}

/// What a flush writes of one key.
#[derive(Debug)]
pub struct Usage<'a> {
    pub id: &'a ApiKeyId,
    /// Its last use, when it had one.
    pub last_used_at: Option<i64>,
    /// Requests admitted since the last flush.
    pub requests: i64,
    /// The address and user agent of its last request, when they changed.
    pub client: Option<(Option<String>, Option<&'a str>)>,
    /// Its requests per hour since the last flush, added to what each hour holds.
    pub hours: &'a [UsageHour],
}

/// Writes the usage of keys and answers for each, in order, whether the key still
/// exists; a key that does not is skipped. Only the keys' small usage rows and hour rows
/// change: keys given in id order rewrite each page of those tables once, whatever the
/// size of the keys' own rows.
pub fn record_usage<'a>(
    conn: &Tx,
    usage: impl IntoIterator<Item = Usage<'a>>,
) -> Result<Vec<bool>> {
    let mut counts = conn.prepare_cached(
        "UPDATE key_usage SET
             last_used_at = CASE WHEN ?2 IS NULL THEN last_used_at
                                 ELSE max(coalesce(last_used_at, 0), ?2) END,
             request_count = request_count + ?3,
             last_address = CASE WHEN ?4 THEN ?5 ELSE last_address END,
             last_user_agent = CASE WHEN ?4 THEN ?6 ELSE last_user_agent END
         WHERE key_id = ?1",
    )?;
    // Only for keys found above: the hour rows' key must exist. An hour's row is added
    // once and then updated at every flush in that hour: the update goes first, one
    // lookup, and the insert runs only when it found no row.
    let mut add_to_hour = conn.prepare_cached(
        "UPDATE key_usage_hours SET ok = ok + ?3, rate_limited = rate_limited + ?4,
             usage_exceeded = usage_exceeded + ?5, refused = refused + ?6
         WHERE key_id = ?1 AND hour = ?2",
    )?;
    let mut new_hour = conn.prepare_cached(
        "INSERT INTO key_usage_hours (key_id, hour, ok, rate_limited, usage_exceeded, refused)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let mut found = Vec::new();
    for u in usage {
        let (address, user_agent) = match &u.client {
            Some((a, ua)) => (a.as_deref(), *ua),
            None => (None, None),
        };
        let exists = counts.execute(params![
            u.id.as_str(),
            u.last_used_at,
            u.requests,
            u.client.is_some(),
            address,
            user_agent
        ])? == 1;
        if exists {
            for h in u.hours {
                let c = &h.counts;
                let row = params![
                    u.id.as_str(),
                    h.hour,
                    c.ok,
                    c.rate_limited,
                    c.usage_exceeded,
                    c.refused
                ];
                if add_to_hour.execute(row)? == 0 {
                    new_hour.execute(row)?;
                }
            }
        }
        found.push(exists);
    }
    Ok(found)
}

/// Key `id`'s hours from `from` through `to` (both hour starts, included) that counted a
/// request, in order.
pub fn usage_hours(conn: &Reader, id: &ApiKeyId, from: i64, to: i64) -> Result<Vec<UsageHour>> {
    let sql = "SELECT hour, ok, rate_limited, usage_exceeded, refused FROM key_usage_hours
               WHERE key_id = ?1 AND hour >= ?2 AND hour <= ?3 ORDER BY hour";
    #[cfg(test)]
    super::tests::assert_indexed(conn.conn, sql, &[&id.as_str(), &from, &to]);
    let mut st = conn.prepare_cached(sql)?;
    let rows = st.query_map(params![id.as_str(), from, to], |r| {
        Ok(UsageHour {
            hour: r.get(0)?,
            counts: Outcomes {
                ok: r.get(1)?,
                rate_limited: r.get(2)?,
                usage_exceeded: r.get(3)?,
                refused: r.get(4)?,
            },
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Deletes up to `limit` hour rows of hours that started before `before` (through the
/// index on `hour`); answers how many went.
pub fn prune_usage_hours(conn: &Tx, before: i64, limit: i64) -> Result<usize> {
    Ok(conn
        .prepare_cached(PRUNE_HOURS)?
        .execute(params![before, limit])?)
}

const PRUNE_HOURS: &str = "DELETE FROM key_usage_hours WHERE (key_id, hour) IN
    (SELECT key_id, hour FROM key_usage_hours WHERE hour < ?1 ORDER BY hour LIMIT ?2)";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{Db, Ownership};

    #[test]
    fn the_usage_series_and_its_pruning_go_through_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("k.db"), 2, Ownership::Server).unwrap();
        let id = ApiKeyId("k".into());
        super::super::read(&db, |c| usage_hours(c, &id, 0, 10)).unwrap();
        db.read(|c| {
            let (before, limit) = (0i64, 10i64);
            super::super::tests::assert_indexed(c, PRUNE_HOURS, &[&before, &limit]);
            Ok(())
        })
        .unwrap();
    }
}
