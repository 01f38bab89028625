//! The only place with SQL. Every function takes a connection (a transaction derefs to
//! one), binds its parameters, and org-scoped functions filter by the organization id.

pub mod invitations;
pub mod keys;
pub mod orgs;
pub mod resources;
pub mod sessions;
pub mod users;

use rusqlite::types::ToSql;
use rusqlite::{Connection, OptionalExtension, Row};

use crate::error::Result;
use crate::model::{Page, Paging};

/// `query_row` that maps "no row" to `None`.
pub(crate) fn optional<T>(r: rusqlite::Result<T>) -> rusqlite::Result<Option<T>> {
    r.optional()
}

/// One page of a listing and its total, read in one transaction so the total counts the
/// rows the page was cut from. `count` counts the rows that `rows` lists; both take
/// `params`, and `rows` ends with `LIMIT ?{n+1} OFFSET ?{n+2}` for `n` of them. A page
/// past the end costs the count only.
pub(crate) fn page<T>(
    conn: &Connection,
    count: &str,
    rows: &str,
    params: &[&dyn ToSql],
    paging: Paging,
    map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Page<T>> {
    let (limit, offset) = (paging.limit(), paging.offset());
    let mut all = params.to_vec();
    all.push(&limit);
    all.push(&offset);
    let read = |c: &Connection| -> Result<Page<T>> {
        #[cfg(test)]
        {
            tests::assert_indexed(c, count, params);
            tests::assert_indexed(c, rows, &all);
        }
        let total: i64 = c.prepare_cached(count)?.query_row(params, |r| r.get(0))?;
        let total = u64::try_from(total).unwrap_or(0);
        if u64::try_from(offset).unwrap_or(u64::MAX) >= total {
            return Ok(Page {
                items: Vec::new(),
                total,
            });
        }
        let mut st = c.prepare_cached(rows)?;
        let items = st
            .query_map(all.as_slice(), map)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Page { items, total })
    };
    if !conn.is_autocommit() {
        return read(conn);
    }
    let tx = conn.unchecked_transaction()?;
    let out = read(&tx)?;
    tx.commit()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::db::{Db, Ownership};
    use crate::model::{OrgId, UserId};

    /// Panics when SQLite would run `sql` by scanning a table or a whole index, or by
    /// sorting: a listing reads the rows of its page through an index, and counts
    /// through one. `page` checks both of its statements this way in every unit test.
    pub(super) fn assert_indexed(c: &Connection, sql: &str, params: &[&dyn ToSql]) {
        let mut st = c
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("the statement prepares");
        let plan: Vec<String> = st
            .query_map(params, |r| r.get(3))
            .and_then(|rows| rows.collect())
            .expect("the plan is readable");
        assert!(
            !plan
                .iter()
                .any(|step| step.starts_with("SCAN") || step.contains("TEMP B-TREE")),
            "{sql}\nreads more than its page: {plan:#?}"
        );
    }

    fn db(dir: &Path) -> Db {
        Db::open(&dir.join("k.db"), 2, Ownership::Server).unwrap()
    }

    #[test]
    fn the_plan_check_catches_a_scan_and_a_sort() {
        let dir = tempfile::tempdir().unwrap();
        let db = db(dir.path());
        db.read(|c| {
            for sql in [
                "SELECT id FROM api_keys WHERE name = ?1",
                "SELECT id FROM api_keys WHERE user_id = ?1 ORDER BY name",
            ] {
                let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    assert_indexed(c, sql, &[&"x"])
                }));
                assert!(caught.is_err(), "{sql} passed");
            }
            assert_indexed(c, "SELECT id FROM api_keys WHERE user_id = ?1", &[&"x"]);
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn every_listing_reads_its_page_and_its_count_through_an_index() {
        let dir = tempfile::tempdir().unwrap();
        let db = db(dir.path());
        let (user, org) = (UserId("u".into()), OrgId("o".into()));
        for paging in [Paging::FIRST, Paging::parse(10, 5).unwrap()] {
            db.read(|c| {
                keys::of_user(c, &user, None, paging)?;
                keys::of_user(c, &user, Some(&org), paging)?;
                sessions::of_user(c, &user, 0, paging)?;
                invitations::of_org(c, &org, paging)?;
                orgs::members_of(c, &org, paging)?;
                orgs::of_user(c, &user, paging)?;
                Ok(())
            })
            .unwrap();
        }
    }
}
