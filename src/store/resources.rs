//! Projects, environments and applications. Every read and write names the
//! organization; `locate_*` alone look across organizations, to tell "does not exist"
//! (404) from "belongs to another organization" (401).

use rusqlite::{Row, params};

use super::{Reader, Stale, Tx, optional};
use crate::error::Result;
use crate::model::{
    Application, ApplicationId, Environment, EnvironmentId, OrgId, Project, ProjectId, UserId,
};

fn project_row(r: &Row<'_>) -> rusqlite::Result<Project> {
    Ok(Project {
        id: ProjectId(r.get(0)?),
        organization_id: OrgId(r.get(1)?),
        name: r.get(2)?,
        description: r.get(3)?,
        created_at: r.get(4)?,
    })
}

fn environment_row(r: &Row<'_>) -> rusqlite::Result<Environment> {
    Ok(Environment {
        id: EnvironmentId(r.get(0)?),
        project_id: ProjectId(r.get(1)?),
        organization_id: OrgId(r.get(2)?),
        name: r.get(3)?,
        description: r.get(4)?,
        is_default: r.get(5)?,
        created_at: r.get(6)?,
    })
}

fn application_row(r: &Row<'_>) -> rusqlite::Result<Application> {
    Ok(Application {
        id: ApplicationId(r.get(0)?),
        environment_id: EnvironmentId(r.get(1)?),
        organization_id: OrgId(r.get(2)?),
        name: r.get(3)?,
        app_name: r.get(4)?,
        description: r.get(5)?,
        status: r.get(6)?,
        created_at: r.get(7)?,
    })
}

const PROJECT: &str = "id, organization_id, name, description, created_at";
const ENVIRONMENT: &str =
    "id, project_id, organization_id, name, description, is_default, created_at";
const APPLICATION: &str = "id, environment_id, organization_id, name, app_name, description, \
                           application_status, created_at";

/// The organization a row of `table` belongs to, whichever it is.
fn locate(conn: &Reader, table: &str, id: &str) -> Result<Option<OrgId>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT organization_id FROM {table} WHERE id = ?1"
    ))?;
    Ok(optional(st.query_row([id], |r| Ok(OrgId(r.get(0)?))))?)
}

pub fn locate_project(conn: &Reader, id: &ProjectId) -> Result<Option<OrgId>> {
    locate(conn, "projects", id.as_str())
}

pub fn locate_environment(conn: &Reader, id: &EnvironmentId) -> Result<Option<OrgId>> {
    locate(conn, "environments", id.as_str())
}

pub fn locate_application(conn: &Reader, id: &ApplicationId) -> Result<Option<OrgId>> {
    locate(conn, "applications", id.as_str())
}

// ---- projects

pub fn insert_project(conn: &Tx, p: &Project) -> Result<()> {
    conn.stale(Stale::Resources(p.organization_id.clone()));
    conn.prepare_cached(
        "INSERT INTO projects (id, organization_id, name, description, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        p.id.as_str(),
        p.organization_id.as_str(),
        p.name,
        p.description,
        p.created_at
    ])?;
    Ok(())
}

pub fn project(conn: &Reader, org: &OrgId, id: &ProjectId) -> Result<Option<Project>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {PROJECT} FROM projects WHERE id = ?1 AND organization_id = ?2"
    ))?;
    Ok(optional(
        st.query_row([id.as_str(), org.as_str()], project_row),
    )?)
}

/// The organization's projects, newest first.
pub fn projects(conn: &Reader, org: &OrgId) -> Result<Vec<Project>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {PROJECT} FROM projects WHERE organization_id = ?1
         ORDER BY created_at DESC, rowid DESC"
    ))?;
    let rows = st.query_map([org.as_str()], project_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn update_project(conn: &Tx, p: &Project) -> Result<()> {
    conn.stale(Stale::Resources(p.organization_id.clone()));
    conn.prepare_cached(
        "UPDATE projects SET name = ?3, description = ?4 WHERE id = ?1 AND organization_id = ?2",
    )?
    .execute(params![
        p.id.as_str(),
        p.organization_id.as_str(),
        p.name,
        p.description
    ])?;
    Ok(())
}

/// Deletes the project with its environments and applications. The cascade also takes
/// them out of members' access lists, so the users whose lists held any of them go
/// stale.
pub fn delete_project(conn: &Tx, org: &OrgId, id: &ProjectId) -> Result<()> {
    conn.stale(Stale::Resources(org.clone()));
    // The cascade takes its domains.
    conn.stale(Stale::Domains);
    stale_holders(
        conn,
        org,
        id.as_str(),
        "SELECT member_id FROM member_projects WHERE project_id = ?1
         UNION SELECT l.member_id FROM member_environments l
               JOIN environments e ON e.id = l.environment_id WHERE e.project_id = ?1
         UNION SELECT l.member_id FROM member_applications l
               JOIN applications a ON a.id = l.application_id
               JOIN environments e ON e.id = a.environment_id WHERE e.project_id = ?1",
    )?;
    conn.prepare_cached("DELETE FROM projects WHERE id = ?1 AND organization_id = ?2")?
        .execute([id.as_str(), org.as_str()])?;
    Ok(())
}

/// Records as stale the users of `org` whose membership is among the `member_id`s that
/// `members_sql` selects for the resource `id` (as `?1`).
fn stale_holders(conn: &Tx, org: &OrgId, id: &str, members_sql: &str) -> Result<()> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT user_id FROM members WHERE organization_id = ?2 AND id IN ({members_sql})"
    ))?;
    let rows = st.query_map([id, org.as_str()], |r| r.get(0).map(UserId))?;
    for user in rows {
        conn.stale(Stale::User(user?));
    }
    Ok(())
}

// ---- environments

pub fn insert_environment(conn: &Tx, e: &Environment) -> Result<()> {
    conn.stale(Stale::Resources(e.organization_id.clone()));
    conn.prepare_cached(
        "INSERT INTO environments (id, project_id, organization_id, name, description,
                                   is_default, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        e.id.as_str(),
        e.project_id.as_str(),
        e.organization_id.as_str(),
        e.name,
        e.description,
        e.is_default,
        e.created_at
    ])?;
    Ok(())
}

pub fn environment(conn: &Reader, org: &OrgId, id: &EnvironmentId) -> Result<Option<Environment>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {ENVIRONMENT} FROM environments WHERE id = ?1 AND organization_id = ?2"
    ))?;
    Ok(optional(
        st.query_row([id.as_str(), org.as_str()], environment_row),
    )?)
}

/// The environments of one project (default first, then oldest first).
pub fn environments_of(
    conn: &Reader,
    org: &OrgId,
    project: &ProjectId,
) -> Result<Vec<Environment>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {ENVIRONMENT} FROM environments WHERE organization_id = ?1 AND project_id = ?2
         ORDER BY is_default DESC, created_at, rowid"
    ))?;
    let rows = st.query_map([org.as_str(), project.as_str()], environment_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Every environment of the organization (default first, then oldest first).
pub fn environments(conn: &Reader, org: &OrgId) -> Result<Vec<Environment>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {ENVIRONMENT} FROM environments WHERE organization_id = ?1
         ORDER BY is_default DESC, created_at, rowid"
    ))?;
    let rows = st.query_map([org.as_str()], environment_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn update_environment(conn: &Tx, e: &Environment) -> Result<()> {
    conn.stale(Stale::Resources(e.organization_id.clone()));
    conn.prepare_cached(
        "UPDATE environments SET name = ?3, description = ?4
         WHERE id = ?1 AND organization_id = ?2",
    )?
    .execute(params![
        e.id.as_str(),
        e.organization_id.as_str(),
        e.name,
        e.description
    ])?;
    Ok(())
}

/// Deletes the environment with its applications. The cascade also takes them out of
/// members' access lists, so the users whose lists held any of them go stale.
pub fn delete_environment(conn: &Tx, org: &OrgId, id: &EnvironmentId) -> Result<()> {
    conn.stale(Stale::Resources(org.clone()));
    // The cascade takes its domains.
    conn.stale(Stale::Domains);
    stale_holders(
        conn,
        org,
        id.as_str(),
        "SELECT member_id FROM member_environments WHERE environment_id = ?1
         UNION SELECT l.member_id FROM member_applications l
               JOIN applications a ON a.id = l.application_id WHERE a.environment_id = ?1",
    )?;
    conn.prepare_cached("DELETE FROM environments WHERE id = ?1 AND organization_id = ?2")?
        .execute([id.as_str(), org.as_str()])?;
    Ok(())
}

// ---- applications

pub fn insert_application(conn: &Tx, a: &Application) -> Result<()> {
    conn.stale(Stale::Resources(a.organization_id.clone()));
    conn.prepare_cached(
        "INSERT INTO applications (id, environment_id, organization_id, name, app_name,
                                   description, application_status, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        a.id.as_str(),
        a.environment_id.as_str(),
        a.organization_id.as_str(),
        a.name,
        a.app_name,
        a.description,
        a.status,
        a.created_at
    ])?;
    Ok(())
}

pub fn application(conn: &Reader, org: &OrgId, id: &ApplicationId) -> Result<Option<Application>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {APPLICATION} FROM applications WHERE id = ?1 AND organization_id = ?2"
    ))?;
    Ok(optional(
        st.query_row([id.as_str(), org.as_str()], application_row),
    )?)
}

/// Whether `app_name` is used in the organization by an application other than `except`.
pub fn app_name_taken(
    conn: &Reader,
    org: &OrgId,
    app_name: &str,
    except: Option<&ApplicationId>,
) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM applications WHERE organization_id = ?1 AND app_name = ?2
               AND id IS NOT ?3",
        )?
        .exists(params![
            org.as_str(),
            app_name,
            except.map(ApplicationId::as_str)
        ])?)
}

/// Every application of the organization, oldest first.
pub fn applications(conn: &Reader, org: &OrgId) -> Result<Vec<Application>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {APPLICATION} FROM applications WHERE organization_id = ?1
         ORDER BY created_at, rowid"
    ))?;
    let rows = st.query_map([org.as_str()], application_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn update_application(conn: &Tx, a: &Application) -> Result<()> {
    conn.stale(Stale::Resources(a.organization_id.clone()));
    conn.prepare_cached(
        "UPDATE applications SET name = ?3, app_name = ?4, description = ?5
         WHERE id = ?1 AND organization_id = ?2",
    )?
    .execute(params![
        a.id.as_str(),
        a.organization_id.as_str(),
        a.name,
        a.app_name,
        a.description
    ])?;
    Ok(())
}

/// Deletes the application. The cascade also takes it out of members' access lists, so
/// the users whose lists held it go stale.
pub fn delete_application(conn: &Tx, org: &OrgId, id: &ApplicationId) -> Result<()> {
    conn.stale(Stale::Resources(org.clone()));
    // The cascade takes its domains.
    conn.stale(Stale::Domains);
    stale_holders(
        conn,
        org,
        id.as_str(),
        "SELECT member_id FROM member_applications WHERE application_id = ?1",
    )?;
    conn.prepare_cached("DELETE FROM applications WHERE id = ?1 AND organization_id = ?2")?
        .execute([id.as_str(), org.as_str()])?;
    Ok(())
}
