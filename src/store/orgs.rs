use std::sync::LazyLock;

use rusqlite::types::ToSql;
use rusqlite::{Row, params};

use super::{Reader, Stale, Tx, optional};
use crate::error::Result;
use crate::model::{
    Flag, Flags, MemberId, Membership, OrgId, Organization, Page, Paging, Role, UserId,
};

fn organization(r: &Row<'_>) -> rusqlite::Result<Organization> {
    Ok(Organization {
        id: OrgId(r.get(0)?),
        name: r.get(1)?,
        owner_id: UserId(r.get(2)?),
        created_at: r.get(3)?,
        require_two_factor: r.get(4)?,
    })
}

pub fn insert(conn: &Tx, o: &Organization) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO organizations (id, name, owner_id, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        o.id.as_str(),
        o.name,
        o.owner_id.as_str(),
        o.created_at
    ])?;
    Ok(())
}

pub fn by_id(conn: &Reader, id: &OrgId) -> Result<Option<Organization>> {
    let mut st = conn
        .prepare_cached(
        "SELECT id, name, owner_id, created_at, require_two_factor FROM organizations WHERE id = ?1",
    )?;
    Ok(optional(st.query_row([id.as_str()], organization))?)
}

/// The columns of `members` before the flags, in the order `membership_at` reads them.
const MEMBER_HEAD: [&str; 4] = ["id", "organization_id", "user_id", "role"];

/// How many columns a membership has: its head, a flag each, and `created_at`.
pub(crate) const MEMBER_WIDTH: usize = MEMBER_HEAD.len() + Flag::COUNT + 1;

/// A membership's columns in the order `membership_at` reads them: its head, one per
/// flag in the order of `Flag::ALL`, and `created_at`.
fn member_column_names() -> impl Iterator<Item = &'static str> {
    MEMBER_HEAD
        .into_iter()
        .chain(Flag::ALL.map(Flag::column))
        .chain(["created_at"])
}

/// `member_column_names` of the table aliased `m`, for a SELECT list.
pub(crate) fn member_columns() -> &'static str {
    static COLUMNS: LazyLock<String> = LazyLock::new(|| {
        member_column_names()
            .map(|c| format!("m.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    });
    &COLUMNS
}

pub(crate) fn membership(r: &Row<'_>) -> rusqlite::Result<Membership> {
    membership_at(r, 0)
}

/// A membership read from `member_columns` starting at column `at`.
pub(crate) fn membership_at(r: &Row<'_>, at: usize) -> rusqlite::Result<Membership> {
    let role: String = r.get(at + 3)?;
    let mut flags = Flags::default();
    for (i, flag) in Flag::ALL.into_iter().enumerate() {
        *flag.of(&mut flags) = r.get(at + MEMBER_HEAD.len() + i)?;
    }
    Ok(Membership {
        id: MemberId(r.get(at)?),
        organization_id: OrgId(r.get(at + 1)?),
        user_id: UserId(r.get(at + 2)?),
        role: Role::parse(&role).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                at + 3,
                rusqlite::types::Type::Text,
                format!("unknown role {role:?}").into(),
            )
        })?,
        flags,
        created_at: r.get(at + MEMBER_WIDTH - 1)?,
    })
}

pub fn insert_member(conn: &Tx, m: &Membership) -> Result<()> {
    static INSERT: LazyLock<String> = LazyLock::new(|| {
        let names: Vec<&str> = member_column_names().collect();
        let slots: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
        format!(
            "INSERT INTO members ({}) VALUES ({})",
            names.join(", "),
            slots.join(", ")
        )
    });
    conn.stale(Stale::User(m.user_id.clone()));
    super::password_resets::cancel_around(conn, &m.user_id)?;
    // Keys left from an earlier membership must not come back to life.
    conn.prepare_cached("DELETE FROM api_keys WHERE organization_id = ?1 AND user_id = ?2")?
        .execute(params![m.organization_id.as_str(), m.user_id.as_str()])?;
    let (id, org, user, role) = (
        m.id.as_str(),
        m.organization_id.as_str(),
        m.user_id.as_str(),
        m.role.as_str(),
    );
    let flags = Flag::ALL.map(|f| f.is_in(&m.flags));
    let mut values: Vec<&dyn ToSql> = vec![&id, &org, &user, &role];
    values.extend(flags.iter().map(|f| f as &dyn ToSql));
    values.push(&m.created_at);
    conn.prepare_cached(&INSERT)?.execute(values.as_slice())?;
    Ok(())
}

/// The user's membership in `org`, if any.
pub fn membership_of(conn: &Reader, org: &OrgId, user: &UserId) -> Result<Option<Membership>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {} FROM members m WHERE m.organization_id = ?1 AND m.user_id = ?2",
        member_columns()
    ))?;
    Ok(optional(
        st.query_row([org.as_str(), user.as_str()], membership),
    )?)
}

/// The organization the user joined first, to make active in a new session.
pub fn first_org_of(conn: &Reader, user: &UserId) -> Result<Option<OrgId>> {
    let mut st = conn.prepare_cached(
        "SELECT organization_id FROM members WHERE user_id = ?1 ORDER BY created_at, rowid LIMIT 1",
    )?;
    Ok(optional(
        st.query_row([user.as_str()], |r| Ok(OrgId(r.get(0)?))),
    )?)
}

/// The first organization created on this server.
pub fn oldest(conn: &Reader) -> Result<Option<OrgId>> {
    let mut st = conn.prepare_cached("SELECT id FROM organizations ORDER BY rowid LIMIT 1")?;
    Ok(optional(st.query_row([], |r| Ok(OrgId(r.get(0)?))))?)
}

/// One page of the user's organizations with the user's role in each, in the order the
/// user joined them (index `members_user`).
pub fn of_user(conn: &Reader, user: &UserId, paging: Paging) -> Result<Page<(Organization, Role)>> {
    super::page(
        conn,
        "SELECT count(*) FROM members WHERE user_id = ?1",
        "SELECT o.id, o.name, o.owner_id, o.created_at, o.require_two_factor, m.role
         FROM members m JOIN organizations o ON o.id = m.organization_id
         WHERE m.user_id = ?1 ORDER BY m.rowid LIMIT ?2 OFFSET ?3",
        &[&user.as_str()],
        paging,
        |r| {
            let role: String = r.get(5)?;
            Ok((organization(r)?, Role::parse(&role).unwrap_or(Role::Member)))
        },
    )
}

/// The user's role in each of its organizations, beside the role `other` holds there
/// (`None` where `other` is no member), in the order the user joined them (indexes
/// `members_user` and the unique organization and user pair).
pub fn roles_beside(
    conn: &Reader,
    user: &UserId,
    other: &UserId,
) -> Result<Vec<(OrgId, Role, Option<Role>)>> {
    const SQL: &str = "SELECT t.organization_id, t.role, o.role FROM members t
         LEFT JOIN members o ON o.organization_id = t.organization_id AND o.user_id = ?2
         WHERE t.user_id = ?1 ORDER BY t.rowid";
    let args: [&dyn ToSql; 2] = [&user.as_str(), &other.as_str()];
    #[cfg(test)]
    super::tests::assert_indexed(conn.conn, SQL, &args);
    let mut st = conn.prepare_cached(SQL)?;
    let rows = st.query_map(args.as_slice(), |r| {
        let theirs: String = r.get(1)?;
        let ours: Option<String> = r.get(2)?;
        Ok((
            OrgId(r.get(0)?),
            Role::parse(&theirs).unwrap_or(Role::Owner),
            ours.and_then(|o| Role::parse(&o)),
        ))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// How many organizations the user is a member of.
pub fn count_of_user(conn: &Reader, user: &UserId) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM members WHERE user_id = ?1")?
        .query_row([user.as_str()], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

pub fn set_name(conn: &Tx, id: &OrgId, name: &str) -> Result<()> {
    conn.prepare_cached("UPDATE organizations SET name = ?2 WHERE id = ?1")?
        .execute(params![id.as_str(), name])?;
    Ok(())
}

/// Deletes the organization and, by cascade, everything in it: memberships, their access
/// lists, keys, invitations, resources. Sessions that acted in it keep no active
/// organization. Every credential acting in it and its snapshot go stale.
pub fn delete(conn: &Tx, id: &OrgId) -> Result<()> {
    conn.stale(Stale::Org(id.clone()));
    conn.stale(Stale::Resources(id.clone()));
    conn.stale(Stale::Domains);
    conn.prepare_cached("DELETE FROM organizations WHERE id = ?1")?
        .execute([id.as_str()])?;
    Ok(())
}

/// Membership `id` of `org`.
pub fn member(conn: &Reader, org: &OrgId, id: &MemberId) -> Result<Option<Membership>> {
    super::row(
        conn,
        &format!(
            "SELECT {} FROM members m WHERE m.id = ?1 AND m.organization_id = ?2",
            member_columns()
        ),
        &[&id.as_str(), &org.as_str()],
        membership,
    )
}

/// The organization of membership `id`, whichever it is: only to tell "does not exist"
/// (404) from "belongs to another organization" (401).
pub fn locate_member(conn: &Reader, id: &MemberId) -> Result<Option<OrgId>> {
    super::row(
        conn,
        "SELECT organization_id FROM members WHERE id = ?1",
        &[&id.as_str()],
        |r| Ok(OrgId(r.get(0)?)),
    )
}

/// One page of the members of `org` with their users, in the order they joined (index
/// `members_org`).
pub fn members_of(
    conn: &Reader,
    org: &OrgId,
    paging: Paging,
) -> Result<Page<(Membership, crate::model::User)>> {
    super::page(
        conn,
        "SELECT count(*) FROM members WHERE organization_id = ?1",
        &format!(
            "SELECT {}, u.name, u.email, u.created_at, u.updated_at, u.two_factor_enabled
             FROM members m JOIN users u ON u.id = m.user_id
             WHERE m.organization_id = ?1 ORDER BY m.rowid LIMIT ?2 OFFSET ?3",
            member_columns()
        ),
        &[&org.as_str()],
        paging,
        |r| {
            let m = membership(r)?;
            let u = crate::model::User {
                id: m.user_id.clone(),
                name: r.get(MEMBER_WIDTH)?,
                email: r.get(MEMBER_WIDTH + 1)?,
                created_at: r.get(MEMBER_WIDTH + 2)?,
                updated_at: r.get(MEMBER_WIDTH + 3)?,
                two_factor_enabled: r.get(MEMBER_WIDTH + 4)?,
            };
            Ok((m, u))
        },
    )
}

pub fn set_role(conn: &Tx, member: &Membership, role: Role) -> Result<()> {
    conn.stale(Stale::User(member.user_id.clone()));
    super::password_resets::cancel_around(conn, &member.user_id)?;
    conn.prepare_cached("UPDATE members SET role = ?3 WHERE id = ?2 AND organization_id = ?1")?
        .execute(params![
            member.organization_id.as_str(),
            member.id.as_str(),
            role.as_str()
        ])?;
    Ok(())
}

pub fn set_flags(conn: &Tx, member: &Membership, f: &Flags) -> Result<()> {
    static UPDATE: LazyLock<String> = LazyLock::new(|| {
        let set: Vec<String> = Flag::ALL
            .iter()
            .enumerate()
            .map(|(i, flag)| format!("{} = ?{}", flag.column(), i + 3))
            .collect();
        format!(
            "UPDATE members SET {} WHERE id = ?2 AND organization_id = ?1",
            set.join(", ")
        )
    });
    conn.stale(Stale::User(member.user_id.clone()));
    let (org, id) = (member.organization_id.as_str(), member.id.as_str());
    let flags = Flag::ALL.map(|flag| flag.is_in(f));
    let mut values: Vec<&dyn ToSql> = vec![&org, &id];
    values.extend(flags.iter().map(|f| f as &dyn ToSql));
    conn.prepare_cached(&UPDATE)?.execute(values.as_slice())?;
    Ok(())
}

/// Removes a member from its organization; its sessions that acted there lose their
/// active organization. Its keys for the organization stay, refused as `not_a_member`,
/// until the user deletes them or joins again (`insert_member` drops them then, so they
/// never return). All of that is the user's, so the user's credentials go stale. The
/// unused password-reset links for the user and by the user go (`cancel_around`).
pub fn delete_member(conn: &Tx, member: &Membership) -> Result<()> {
    conn.stale(Stale::User(member.user_id.clone()));
    super::password_resets::cancel_around(conn, &member.user_id)?;
    let org = &member.organization_id;
    conn.prepare_cached("DELETE FROM members WHERE id = ?2 AND organization_id = ?1")?
        .execute(params![org.as_str(), member.id.as_str()])?;
    conn.prepare_cached(
        "UPDATE sessions SET active_organization_id = NULL
         WHERE user_id = ?2 AND active_organization_id = ?1",
    )?
    .execute(params![org.as_str(), member.user_id.as_str()])?;
    Ok(())
}

/// Which access list a resource id belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessList {
    Projects,
    Environments,
    Applications,
}

impl AccessList {
    /// (list table, its resource column, the resource table).
    fn tables(self) -> (&'static str, &'static str, &'static str) {
        match self {
            AccessList::Projects => ("member_projects", "project_id", "projects"),
            AccessList::Environments => ("member_environments", "environment_id", "environments"),
            AccessList::Applications => ("member_applications", "application_id", "applications"),
        }
    }
}

/// The ids in one of a member's access lists.
pub fn access_list(conn: &Reader, member: &MemberId, list: AccessList) -> Result<Vec<String>> {
    let (table, column, _) = list.tables();
    let mut st = conn.prepare_cached(&format!(
        "SELECT {column} FROM {table} WHERE member_id = ?1 ORDER BY {column}"
    ))?;
    let rows = st.query_map([member.as_str()], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The ids among `ids` that are not resources of that kind in `org`.
pub fn foreign_ids(
    conn: &Reader,
    org: &OrgId,
    list: AccessList,
    ids: &[String],
) -> Result<Vec<String>> {
    let (_, _, resources) = list.tables();
    let mut st = conn.prepare_cached(&format!(
        "SELECT 1 FROM {resources} WHERE id = ?1 AND organization_id = ?2"
    ))?;
    let mut out = Vec::new();
    for id in ids {
        if !st.exists(params![id, org.as_str()])? {
            out.push(id.clone());
        }
    }
    Ok(out)
}

/// Replaces one of a member's access lists.
pub fn set_access_list(
    conn: &Tx,
    member: &Membership,
    list: AccessList,
    ids: &[String],
) -> Result<()> {
    conn.stale(Stale::User(member.user_id.clone()));
    let member = &member.id;
    let (table, column, _) = list.tables();
    conn.prepare_cached(&format!("DELETE FROM {table} WHERE member_id = ?1"))?
        .execute([member.as_str()])?;
    let mut ins = conn.prepare_cached(&format!(
        "INSERT OR IGNORE INTO {table} (member_id, {column}) VALUES (?1, ?2)"
    ))?;
    for id in ids {
        ins.execute(params![member.as_str(), id])?;
    }
    Ok(())
}

/// Adds one resource to a member's access list.
pub fn grant(conn: &Tx, member: &Membership, list: AccessList, id: &str) -> Result<()> {
    conn.stale(Stale::User(member.user_id.clone()));
    let member = &member.id;
    let (table, column, _) = list.tables();
    conn.prepare_cached(&format!(
        "INSERT OR IGNORE INTO {table} (member_id, {column}) VALUES (?1, ?2)"
    ))?
    .execute(params![member.as_str(), id])?;
    Ok(())
}
