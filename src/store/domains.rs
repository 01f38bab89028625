//! Domains: the hosts and path prefixes that forward auth maps to applications. Every
//! change records `Stale::Domains`, and so does every delete whose cascade takes domains
//! with it (an application, environment, project or organization).

use rusqlite::{Row, params};

use super::{Reader, Stale, Tx};
use crate::error::Result;
use crate::model::{ApplicationId, Domain, DomainId, EnvironmentId, OrgId, ProjectId};

const DOMAIN: &str = "id, application_id, organization_id, host, path, created_at";

fn domain_row(r: &Row<'_>) -> rusqlite::Result<Domain> {
    Ok(Domain {
        id: DomainId(r.get(0)?),
        application_id: ApplicationId(r.get(1)?),
        organization_id: OrgId(r.get(2)?),
        host: r.get(3)?,
        path: r.get(4)?,
        created_at: r.get(5)?,
    })
}

/// Whether `host` and `path` are taken by a domain other than `except`, in any
/// organization.
pub fn taken(conn: &Reader, host: &str, path: &str, except: Option<&DomainId>) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM domains WHERE host = ?1 AND path = ?2 AND id IS NOT ?3")?
        .exists(params![host, path, except.map(DomainId::as_str)])?)
}

pub fn insert(conn: &Tx, d: &Domain) -> Result<()> {
    conn.stale(Stale::Domains);
    conn.prepare_cached(
        "INSERT INTO domains (id, application_id, organization_id, host, path, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        d.id.as_str(),
        d.application_id.as_str(),
        d.organization_id.as_str(),
        d.host,
        d.path,
        d.created_at
    ])?;
    Ok(())
}

/// Domain `id` of `org`.
pub fn in_org(conn: &Reader, org: &OrgId, id: &DomainId) -> Result<Option<Domain>> {
    super::row(
        conn,
        &format!("SELECT {DOMAIN} FROM domains WHERE id = ?1 AND organization_id = ?2"),
        &[&id.as_str(), &org.as_str()],
        domain_row,
    )
}

/// The organization domain `id` belongs to, whichever it is.
pub fn locate(conn: &Reader, id: &DomainId) -> Result<Option<OrgId>> {
    super::row(
        conn,
        "SELECT organization_id FROM domains WHERE id = ?1",
        &[&id.as_str()],
        |r| Ok(OrgId(r.get(0)?)),
    )
}

/// How many domains the application has.
pub fn count_of_application(conn: &Reader, app: &ApplicationId) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM domains WHERE application_id = ?1")?
        .query_row([app.as_str()], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The application's domains, oldest first.
pub fn of_application(conn: &Reader, org: &OrgId, app: &ApplicationId) -> Result<Vec<Domain>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {DOMAIN} FROM domains WHERE application_id = ?1 AND organization_id = ?2
         ORDER BY rowid"
    ))?;
    let rows = st.query_map([app.as_str(), org.as_str()], domain_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn update(conn: &Tx, d: &Domain) -> Result<()> {
    conn.stale(Stale::Domains);
    conn.prepare_cached(
        "UPDATE domains SET host = ?3, path = ?4 WHERE id = ?1 AND organization_id = ?2",
    )?
    .execute(params![
        d.id.as_str(),
        d.organization_id.as_str(),
        d.host,
        d.path
    ])?;
    Ok(())
}

pub fn delete(conn: &Tx, org: &OrgId, id: &DomainId) -> Result<()> {
    conn.stale(Stale::Domains);
    conn.prepare_cached("DELETE FROM domains WHERE id = ?1 AND organization_id = ?2")?
        .execute([id.as_str(), org.as_str()])?;
    Ok(())
}

/// One row of the routing table: a domain and where its application sits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub domain_id: DomainId,
    pub host: String,
    pub path: String,
    pub application_id: ApplicationId,
    pub environment_id: EnvironmentId,
    pub project_id: ProjectId,
    pub organization_id: OrgId,
    /// The organization requires two-factor of its members' sessions.
    pub require_two_factor: bool,
}

/// Every domain of the server with its application's environment and project: what
/// forward auth routes by.
pub fn routes(conn: &Reader) -> Result<Vec<Route>> {
    let mut st = conn.prepare_cached(
        "SELECT d.id, d.host, d.path, d.application_id, a.environment_id, e.project_id,
                d.organization_id, o.require_two_factor
         FROM domains d
         JOIN applications a ON a.id = d.application_id
         JOIN environments e ON e.id = a.environment_id
         JOIN organizations o ON o.id = d.organization_id",
    )?;
    let rows = st.query_map([], |r| {
        Ok(Route {
            domain_id: DomainId(r.get(0)?),
            host: r.get(1)?,
            path: r.get(2)?,
            application_id: ApplicationId(r.get(3)?),
            environment_id: EnvironmentId(r.get(4)?),
            project_id: ProjectId(r.get(5)?),
            organization_id: OrgId(r.get(6)?),
            require_two_factor: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
