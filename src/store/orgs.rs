use rusqlite::{Connection, Row, params};

use super::optional;
use crate::error::Result;
use crate::model::{Flags, MemberId, Membership, OrgId, Organization, Role, UserId};

fn organization(r: &Row<'_>) -> rusqlite::Result<Organization> {
    Ok(Organization {
        id: OrgId(r.get(0)?),
        name: r.get(1)?,
        owner_id: UserId(r.get(2)?),
        created_at: r.get(3)?,
    })
}

pub fn insert(conn: &Connection, o: &Organization) -> Result<()> {
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

pub fn by_id(conn: &Connection, id: &OrgId) -> Result<Option<Organization>> {
    let mut st = conn
        .prepare_cached("SELECT id, name, owner_id, created_at FROM organizations WHERE id = ?1")?;
    Ok(optional(st.query_row([id.as_str()], organization))?)
}

pub(crate) const MEMBER_COLUMNS: &str = "m.id, m.organization_id, m.user_id, m.role, \
    m.can_create_projects, m.can_delete_projects, m.can_create_environments, \
    m.can_delete_environments, m.can_create_services, m.can_delete_services, \
    m.can_access_to_api, m.created_at";

pub(crate) fn membership(r: &Row<'_>) -> rusqlite::Result<Membership> {
    let role: String = r.get(3)?;
    Ok(Membership {
        id: MemberId(r.get(0)?),
        organization_id: OrgId(r.get(1)?),
        user_id: UserId(r.get(2)?),
        role: Role::parse(&role).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                3,
                rusqlite::types::Type::Text,
                format!("unknown role {role:?}").into(),
            )
        })?,
        flags: Flags {
            can_create_projects: r.get(4)?,
            can_delete_projects: r.get(5)?,
            can_create_environments: r.get(6)?,
            can_delete_environments: r.get(7)?,
            can_create_services: r.get(8)?,
            can_delete_services: r.get(9)?,
            can_access_to_api: r.get(10)?,
        },
        created_at: r.get(11)?,
    })
}

pub fn insert_member(conn: &Connection, m: &Membership) -> Result<()> {
    let f = &m.flags;
    conn.prepare_cached(
        "INSERT INTO members (id, organization_id, user_id, role, can_create_projects,
             can_delete_projects, can_create_environments, can_delete_environments,
             can_create_services, can_delete_services, can_access_to_api, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        m.id.as_str(),
        m.organization_id.as_str(),
        m.user_id.as_str(),
        m.role.as_str(),
        f.can_create_projects,
        f.can_delete_projects,
        f.can_create_environments,
        f.can_delete_environments,
        f.can_create_services,
        f.can_delete_services,
        f.can_access_to_api,
        m.created_at
    ])?;
    Ok(())
}

/// The user's membership in `org`, if any.
pub fn membership_of(conn: &Connection, org: &OrgId, user: &UserId) -> Result<Option<Membership>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {MEMBER_COLUMNS} FROM members m WHERE m.organization_id = ?1 AND m.user_id = ?2"
    ))?;
    Ok(optional(
        st.query_row([org.as_str(), user.as_str()], membership),
    )?)
}

/// The organization the user joined first, to make active in a new session.
pub fn first_org_of(conn: &Connection, user: &UserId) -> Result<Option<OrgId>> {
    let mut st = conn.prepare_cached(
        "SELECT organization_id FROM members WHERE user_id = ?1 ORDER BY created_at, id LIMIT 1",
    )?;
    Ok(optional(
        st.query_row([user.as_str()], |r| Ok(OrgId(r.get(0)?))),
    )?)
}

/// The first organization created on this server.
pub fn oldest(conn: &Connection) -> Result<Option<OrgId>> {
    let mut st =
        conn.prepare_cached("SELECT id FROM organizations ORDER BY created_at, id LIMIT 1")?;
    Ok(optional(st.query_row([], |r| Ok(OrgId(r.get(0)?))))?)
}
