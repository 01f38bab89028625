//! The only place with SQL, and the only way to the data: reads take a [`Reader`], and
//! changes a [`Tx`], the unit of work. Each store operation that changes something
//! records, as it runs, what that makes stale in the caches ([`Stale`]), side effects
//! such as cascades included; the domain applies those drops once the unit of work is
//! durable. Org-scoped functions filter by the organization id. Nothing outside `store/`
//! and `db.rs` names `rusqlite`, so another storage engine could implement the same
//! operations.

pub mod audit;
pub mod domains;
pub mod invitations;
pub mod keys;
pub mod orgs;
pub mod password_resets;
pub mod resources;
pub mod sessions;
pub mod two_factor;
pub mod users;

use std::cell::RefCell;
use std::ops::Deref;

use rusqlite::types::ToSql;
use rusqlite::{CachedStatement, Connection, OptionalExtension, Params, Row};

use crate::db::Db;
use crate::error::Result;
use crate::model::{ApiKeyId, OrgId, Page, Paging, UserId};

/// `query_row` that maps "no row" to `None`.
pub(crate) fn optional<T>(r: rusqlite::Result<T>) -> rusqlite::Result<Option<T>> {
    r.optional()
}

/// What a change makes stale, recorded where it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stale {
    /// A key was changed or deleted.
    Key(ApiKeyId),
    /// A key was created or rotated to the secret whose SHA-256 this is: besides the
    /// key's entries, a lookup of that hash may have been cached as a miss.
    Secret(ApiKeyId, [u8; 32]),
    /// Something about a user changed: name, password, memberships, role, flags, access
    /// lists. Every credential of the user is stale.
    User(UserId),
    /// An organization went: every credential acting in it is stale.
    Org(OrgId),
    /// An organization's projects, environments or applications changed.
    Resources(OrgId),
    /// A domain was added, changed or removed (cascades included): forward auth's
    /// routing table is stale.
    Domains,
    /// A session was changed or deleted (by the SHA-256 of its token).
    Session([u8; 32]),
    /// Every session that expired by this time was deleted.
    SessionsExpired(i64),
}

/// Read access to the data. Store lookups take `&Reader`; a [`Tx`] derefs to one, so
/// a unit of work reads what it wrote.
pub struct Reader<'c> {
    conn: &'c Connection,
}

impl Reader<'_> {
    fn prepare_cached(&self, sql: &str) -> rusqlite::Result<CachedStatement<'_>> {
        self.conn.prepare_cached(sql)
    }

    fn query_row<T, P: Params, F: FnOnce(&Row<'_>) -> rusqlite::Result<T>>(
        &self,
        sql: &str,
        params: P,
        f: F,
    ) -> rusqlite::Result<T> {
        self.conn.query_row(sql, params, f)
    }
}

/// A unit of work: the only way to change the data. Its changes are kept only when the
/// whole unit succeeds; what they make stale is gathered as they run.
pub struct Tx<'c> {
    read: Reader<'c>,
    stale: RefCell<Vec<Stale>>,
    events: RefCell<Vec<audit::Event>>,
}

impl<'c> Deref for Tx<'c> {
    type Target = Reader<'c>;
    fn deref(&self) -> &Reader<'c> {
        &self.read
    }
}

impl<'c> Tx<'c> {
    fn new(conn: &'c Connection) -> Tx<'c> {
        Tx {
            read: Reader { conn },
            stale: RefCell::new(Vec::new()),
            events: RefCell::new(Vec::new()),
        }
    }

    /// Records `event` in the audit log, in this unit of work: it is kept exactly when
    /// the change it describes is.
    pub fn audit(&self, event: audit::Event) {
        self.events.borrow_mut().push(event);
    }

    /// Appends the recorded events (those without an origin of their own get
    /// `origin()`'s) and answers what the unit of work made stale.
    fn finish(self, origin: impl FnOnce() -> audit::Origin) -> Result<(Vec<Stale>, bool)> {
        let events = self.events.take();
        if !events.is_empty() {
            audit::append(&self, &events, &origin())?;
        }
        Ok((self.stale.into_inner(), !events.is_empty()))
    }

    /// Records that this unit of work makes `s` stale.
    fn stale(&self, s: Stale) {
        let mut v = self.stale.borrow_mut();
        if !v.contains(&s) {
            v.push(s);
        }
    }
}

/// One page of a listing and its total, read in one transaction so the total counts the
/// rows the page was cut from. `count` counts the rows that `rows` lists; both take
/// `params`, and `rows` ends with `LIMIT ?{n+1} OFFSET ?{n+2}` for `n` of them. A page
/// past the end costs the count only.
pub(crate) fn page<T>(
    conn: &Reader,
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
    if !conn.conn.is_autocommit() {
        return read(conn.conn);
    }
    let tx = conn.conn.unchecked_transaction()?;
    let out = read(&tx)?;
    tx.commit()?;
    Ok(out)
}

/// The row `sql` selects with `params`, if there is one. Unit tests check that SQLite
/// finds it through an index, as `page` does for listings.
pub(crate) fn row<T>(
    conn: &Reader,
    sql: &str,
    params: &[&dyn ToSql],
    map: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Option<T>> {
    #[cfg(test)]
    tests::assert_indexed(conn.conn, sql, params);
    Ok(optional(conn.prepare_cached(sql)?.query_row(params, map))?)
}

/// Runs a read.
pub fn read<T>(db: &Db, f: impl FnOnce(&Reader) -> Result<T>) -> Result<T> {
    db.read(|conn| f(&Reader { conn }))
}

/// Runs `f` as one unit of work (with other writes that arrive together, in one
/// transaction: see `Db::write`), and answers once it is durable, with what it made
/// stale and whether it recorded audit events. They are written in it, from `origin`
/// unless they name their own. When `f` fails none of its changes, and none of its
/// events, are kept.
pub async fn write<T, F, O>(db: &Db, origin: O, f: F) -> Result<(T, Vec<Stale>, bool)>
where
    T: Send + 'static,
    F: FnOnce(&Tx) -> Result<T> + Send + 'static,
    O: FnOnce() -> audit::Origin + Send + 'static,
{
    db.write(move |conn| {
        let tx = Tx::new(conn);
        let out = f(&tx)?;
        let (stale, audited) = tx.finish(origin)?;
        Ok((out, stale, audited))
    })
    .await
}

/// `write` for callers already off the async workers (CLI, shutdown), whose events name
/// no request.
pub fn write_blocking<T>(db: &Db, f: impl FnOnce(&Tx) -> Result<T>) -> Result<(T, Vec<Stale>)> {
    db.write_blocking(|conn| {
        let tx = Tx::new(conn);
        let out = f(&tx)?;
        Ok((out, tx.finish(audit::Origin::default)?.0))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Ownership;
    use crate::model::{
        Environment, EnvironmentId, Flag, Flags, MemberId, Membership, Organization, Project,
        ProjectId, Role, Session, SessionId, User,
    };

    fn user(id: &str) -> User {
        User {
            id: UserId(id.into()),
            name: id.into(),
            email: format!("{id}@example.com"),
            created_at: 1,
            updated_at: 1,
            two_factor_enabled: false,
        }
    }

    fn member(id: &str, org: &OrgId, user: &str, role: Role) -> Membership {
        Membership {
            id: MemberId(id.into()),
            organization_id: org.clone(),
            user_id: UserId(user.into()),
            role,
            flags: Flags::default(),
            created_at: 1,
        }
    }

    /// An organization with an owner and a member who sees the `production` environment
    /// of project `p` (but not `p` itself), and a second member who sees nothing.
    fn world(tx: &Tx) -> Result<OrgId> {
        let org = OrgId("o".into());
        for u in ["owner", "m1", "m2"] {
            users::insert(tx, &user(u), "hash")?;
        }
        orgs::insert(
            tx,
            &Organization {
                id: org.clone(),
                name: "Org".into(),
                owner_id: UserId("owner".into()),
                created_at: 1,
                require_two_factor: false,
            },
        )?;
        orgs::insert_member(tx, &member("mo", &org, "owner", Role::Owner))?;
        let m1 = member("mm1", &org, "m1", Role::Member);
        orgs::insert_member(tx, &m1)?;
        orgs::insert_member(tx, &member("mm2", &org, "m2", Role::Member))?;
        resources::insert_project(
            tx,
            &Project {
                id: ProjectId("p".into()),
                organization_id: org.clone(),
                name: "P".into(),
                description: None,
                created_at: 1,
            },
        )?;
        resources::insert_environment(
            tx,
            &Environment {
                id: EnvironmentId("e".into()),
                project_id: ProjectId("p".into()),
                organization_id: org.clone(),
                name: "production".into(),
                description: None,
                is_default: true,
                created_at: 1,
            },
        )?;
        orgs::grant(tx, &m1, orgs::AccessList::Environments, "e")?;
        Ok(org)
    }

    fn open() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("k.db"), 2, Ownership::Server).unwrap();
        (dir, db)
    }

    #[test]
    fn removing_a_project_makes_its_snapshot_and_the_users_whose_lists_held_it_stale() {
        let (_dir, db) = open();
        let (org, _) = write_blocking(&db, world).unwrap();
        let ((), stale) = write_blocking(&db, |tx| {
            resources::delete_project(tx, &org, &ProjectId("p".into()))
        })
        .unwrap();
        // m1 held the project's environment, which went by cascade; m2 held nothing. The
        // cascade takes the project's domains too.
        assert_eq!(
            stale,
            [
                Stale::Resources(org.clone()),
                Stale::Domains,
                Stale::User(UserId("m1".into()))
            ]
        );
        let left = read(&db, |r| {
            orgs::access_list(r, &MemberId("mm1".into()), orgs::AccessList::Environments)
        })
        .unwrap();
        assert!(left.is_empty());
    }

    #[test]
    fn deleting_sessions_makes_each_stale_by_the_hash_of_its_token() {
        let (_dir, db) = open();
        write_blocking(&db, world).unwrap();
        let session = |id: &str| Session {
            id: SessionId(id.into()),
            user_id: UserId("m1".into()),
            active_organization_id: None,
            created_at: 1,
            updated_at: 1,
            expires_at: 100,
            ip_address: None,
            user_agent: None,
        };
        let (_, stale) = write_blocking(&db, |tx| {
            for (id, h) in [("s1", 1), ("s2", 2), ("s3", 3)] {
                sessions::insert(tx, &session(id), &[h; 32])?;
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(stale, [], "new sessions make nothing stale");
        let (gone, stale) = write_blocking(&db, |tx| {
            sessions::delete_others(tx, &UserId("m1".into()), Some(&SessionId("s2".into())))
        })
        .unwrap();
        assert_eq!(gone.len(), 2);
        let mut stale = stale;
        stale.sort_by_key(|s| format!("{s:?}"));
        assert_eq!(stale, [Stale::Session([1; 32]), Stale::Session([3; 32])]);
    }

    #[test]
    fn each_flag_is_written_and_read_in_its_own_column() {
        let (_dir, db) = open();
        let (org, _) = write_blocking(&db, world).unwrap();
        let column = |id: &str, flag: Flag| -> i64 {
            let sql = format!("SELECT {} FROM members WHERE id = ?1", flag.column());
            db.read(|c| Ok(c.query_row(&sql, [id], |r| r.get(0))?))
                .unwrap()
        };
        for flag in Flag::ALL {
            let only = |on: bool| {
                let mut flags = Flags::ALL;
                for f in Flag::ALL {
                    *f.of(&mut flags) = (f == flag) == on;
                }
                flags
            };
            let (name, id) = (format!("user-{flag:?}"), format!("member-{flag:?}"));
            let mut m = member(&id, &org, &name, Role::Member);
            m.flags = only(true);
            write_blocking(&db, |tx| {
                users::insert(tx, &user(&name), "hash")?;
                orgs::insert_member(tx, &m)
            })
            .unwrap();
            let stored = read(&db, |c| orgs::membership_of(c, &org, &m.user_id)).unwrap();
            assert_eq!(stored, Some(m.clone()), "{flag:?} inserted");
            for f in Flag::ALL {
                assert_eq!(column(&id, f), i64::from(f == flag), "{f:?} of {flag:?}");
            }

            write_blocking(&db, |tx| orgs::set_flags(tx, &m, &only(false))).unwrap();
            let stored = read(&db, |c| orgs::membership_of(c, &org, &m.user_id)).unwrap();
            assert_eq!(
                stored.map(|s| s.flags),
                Some(only(false)),
                "{flag:?} cleared"
            );
            for f in Flag::ALL {
                assert_eq!(column(&id, f), i64::from(f != flag), "{f:?} of {flag:?}");
            }
        }
        let page = read(&db, |c| orgs::members_of(c, &org, Paging::FIRST)).unwrap();
        for (m, u) in page.items {
            assert_eq!(
                (&u.id, u.email),
                (&m.user_id, format!("{}@example.com", m.user_id))
            );
        }
    }

    #[test]
    fn deleting_an_organization_makes_everything_in_it_stale() {
        let (_dir, db) = open();
        let (org, _) = write_blocking(&db, world).unwrap();
        let ((), stale) = write_blocking(&db, |tx| orgs::delete(tx, &org)).unwrap();
        assert_eq!(
            stale,
            [
                Stale::Org(org.clone()),
                Stale::Resources(org),
                Stale::Domains
            ]
        );
    }

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

    #[test]
    fn the_plan_check_catches_a_scan_and_a_sort() {
        let (_dir, db) = open();
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
    fn every_lookup_of_members_invitations_keys_or_reset_links_goes_through_an_index() {
        let (_dir, db) = open();
        let (user, org) = (UserId("u".into()), OrgId("o".into()));
        let (member, invitation, key) = (
            MemberId("m".into()),
            crate::model::InvitationId("i".into()),
            ApiKeyId("k".into()),
        );
        read(&db, |c| {
            orgs::member(c, &org, &member)?;
            orgs::locate_member(c, &member)?;
            invitations::in_org(c, &org, &invitation)?;
            invitations::locate(c, &invitation)?;
            invitations::to_accept(c, &invitation)?;
            keys::own(c, &user, None, &key)?;
            keys::own(c, &user, Some(&org), &key)?;
            keys::in_org(c, &org, &key)?;
            keys::locate(c, &key)?;
            orgs::roles_beside(c, &user, &UserId("other".into()))?;
            password_resets::usable(c, &[0; 32], 0)?;
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn the_audit_log_reads_each_page_through_an_index_whatever_the_filter() {
        let (_dir, db) = open();
        let (user, org) = (UserId("u".into()), OrgId("o".into()));
        let text = Some("x".to_owned());
        let filters = [
            audit::Filter::default(),
            audit::Filter {
                actor: text.clone(),
                action: text.clone(),
                resource_type: text.clone(),
                resource_id: text,
                from: Some(1),
                to: Some(2),
            },
        ];
        let cursor = Some(audit::Cursor { at: 5, id: 3 });
        let account = |only| audit::Scope::Account {
            user: user.clone(),
            only,
        };
        for scope in [
            audit::Scope::Org(org.clone()),
            account(None),
            account(Some(org.clone())),
        ] {
            for f in &filters {
                for c in [None, cursor] {
                    read(&db, |r| audit::list(r, &scope, f, c, 10)).unwrap();
                }
            }
        }
    }

    #[test]
    fn every_listing_reads_its_page_and_its_count_through_an_index() {
        let (_dir, db) = open();
        let (user, org) = (UserId("u".into()), OrgId("o".into()));
        for paging in [Paging::FIRST, Paging::parse(10, 5).unwrap()] {
            read(&db, |c| {
                keys::of_user(c, &user, None, paging)?;
                keys::of_user(c, &user, Some(&org), paging)?;
                keys::of_user_outside_two_factor(c, &user, paging)?;
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
