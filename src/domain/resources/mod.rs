//! Projects, environments and applications, each guarded the same way whatever the
//! credential: the organization first (another organization's resource is 401
//! `wrong_organization`, a missing one 404), then a member's flags and access lists, then
//! a key's scope. Each router's operations have a module of their own; this one holds
//! what they share.

pub mod applications;
pub mod domains;
pub mod environments;
pub mod projects;

use std::collections::HashMap;
use std::sync::Arc;

use super::access::Actor;
use super::cache::OrgResources;
use super::{State, in_own_org};
use crate::error::{Error, Reason, Result};
use crate::model::{
    Application, ApplicationId, Description, Environment, EnvironmentId, Membership, Name, OrgId,
    Page, Project, ProjectId,
};
use crate::store::orgs::AccessList;
use crate::store::resources as rs;
use crate::store::{self, Reader, Tx};

/// The longest name of a project, environment or application, in characters.
pub const NAME_MAX: usize = 255;
/// The name of the environment every project is made with.
pub const DEFAULT_ENVIRONMENT: &str = "production";
/// The page size of a search that names none.
pub const LIMIT_DEFAULT: i64 = 20;

/// A project with what the caller may see inside it.
#[derive(Debug, Clone)]
pub struct ProjectTree {
    pub project: Project,
    pub environments: Vec<(Environment, Vec<Application>)>,
}

/// A project's, environment's or application's name: trimmed, 1 to `NAME_MAX` characters
/// as sent.
pub fn name(raw: &str) -> Result<Name, String> {
    Name::parse(raw, NAME_MAX)
}

/// The description of a new resource: none when absent or blank.
pub fn description(raw: Option<&str>) -> Result<Option<Description>, String> {
    Ok(raw.map(Description::parse).transpose()?.flatten())
}

/// A change of description: `None` leaves it as it is, and `Some(None)` (sent blank)
/// clears it.
pub fn description_change(raw: Option<&str>) -> Result<Option<Option<Description>>, String> {
    raw.map(Description::parse).transpose()
}

/// The organization's resources, from the snapshot when there is one.
pub fn snapshot(st: &State, org: &OrgId) -> Result<Arc<OrgResources>> {
    match st.resources.get(org) {
        Ok(s) => Ok(s),
        Err(generation) => {
            let s = st.read(|c| {
                Ok(OrgResources::new(
                    rs::projects(c, org)?,
                    rs::environments(c, org)?,
                    rs::applications(c, org)?,
                ))
            })?;
            let s = Arc::new(s);
            st.resources.put(org.clone(), generation, Arc::clone(&s));
            Ok(s)
        }
    }
}

/// Finds a resource in the caller's organization: 404 when it exists nowhere, 401
/// `wrong_organization` when it exists in another one.
fn find<T>(
    st: &State,
    actor: &Actor,
    what: &'static str,
    get: impl Fn(&Reader, &OrgId) -> Result<Option<T>>,
    locate: impl Fn(&Reader) -> Result<Option<OrgId>>,
) -> Result<T> {
    let org = &actor.member()?.organization_id;
    st.read(|c| in_own_org(c, get(c, org)?, what, locate))
}

fn denied() -> Error {
    Error::Denied(Reason::PermissionDenied)
}

fn visible_project(st: &State, actor: &Actor, id: &ProjectId) -> Result<Project> {
    let p = find(
        st,
        actor,
        "project",
        |c, o| rs::project(c, o, id),
        |c| rs::locate_project(c, id),
    )?;
    if actor.sees_project(&p.id) {
        Ok(p)
    } else {
        Err(denied())
    }
}

fn visible_environment(st: &State, actor: &Actor, id: &EnvironmentId) -> Result<Environment> {
    let e = find(
        st,
        actor,
        "environment",
        |c, o| rs::environment(c, o, id),
        |c| rs::locate_environment(c, id),
    )?;
    if actor.sees_environment(&e) {
        Ok(e)
    } else {
        Err(denied())
    }
}

pub(crate) fn visible_application(
    st: &State,
    actor: &Actor,
    id: &ApplicationId,
) -> Result<(Application, Environment)> {
    let found = find(
        st,
        actor,
        "application",
        |c, o| {
            let Some(a) = rs::application(c, o, id)? else {
                return Ok(None);
            };
            let e = rs::environment(c, o, &a.environment_id)?
                .ok_or_else(|| Error::internal("application without environment"))?;
            Ok(Some((a, e)))
        },
        |c| rs::locate_application(c, id),
    )?;
    if actor.sees_application(&found.0, &found.1) {
        Ok(found)
    } else {
        Err(denied())
    }
}

/// A member's new resource joins its access lists, so it can see what it made.
fn grant(conn: &Tx, m: &Membership, list: AccessList, id: &str) -> Result<()> {
    if m.role.is_privileged() {
        return Ok(());
    }
    store::orgs::grant(conn, m, list, id)
}

/// Builds the trees of `projects` with what the caller may see inside them.
fn trees(
    actor: &Actor,
    projects: &[Project],
    envs: &[Environment],
    apps: &[Application],
) -> Vec<ProjectTree> {
    build_trees(
        projects,
        envs,
        apps,
        |p| actor.sees_project(&p.id),
        |e| actor.sees_environment(e),
        |a, e| actor.sees_application(a, e),
    )
}

/// The trees of the projects, environments and applications that pass the filters, in
/// the order given; in time linear in what is given, cloning only what passes.
fn build_trees(
    projects: &[Project],
    envs: &[Environment],
    apps: &[Application],
    project_shown: impl Fn(&Project) -> bool,
    env_shown: impl Fn(&Environment) -> bool,
    app_shown: impl Fn(&Application, &Environment) -> bool,
) -> Vec<ProjectTree> {
    let mut out = Vec::new();
    let mut tree_of = HashMap::new();
    for p in projects.iter().filter(|p| project_shown(p)) {
        tree_of.insert(&p.id, out.len());
        out.push(ProjectTree {
            project: p.clone(),
            environments: Vec::new(),
        });
    }
    let mut env_at = HashMap::new();
    for e in envs.iter().filter(|e| env_shown(e)) {
        if let Some(&t) = tree_of.get(&e.project_id) {
            let list = &mut out[t].environments;
            env_at.insert(&e.id, (t, list.len()));
            list.push((e.clone(), Vec::new()));
        }
    }
    for a in apps {
        if let Some(&(t, i)) = env_at.get(&a.environment_id) {
            let (e, list) = &mut out[t].environments[i];
            if app_shown(a, e) {
                list.push(a.clone());
            }
        }
    }
    out
}

/// Checks paging, with a page of `LIMIT_DEFAULT` by default.
fn paging(limit: Option<i64>, offset: Option<i64>) -> Result<(usize, usize)> {
    let p = super::paging(limit, offset, LIMIT_DEFAULT)?;
    Ok((p.limit() as usize, p.offset() as usize))
}

fn page<T>(all: Vec<T>, limit: usize, offset: usize) -> Page<T> {
    let total = all.len() as u64;
    Page {
        items: all.into_iter().skip(offset).take(limit).collect(),
        total,
    }
}

/// A search text, matched as a substring in any case (Unicode, not only ASCII as SQL's
/// LIKE would).
struct Needle(String);

impl Needle {
    fn new(q: Option<&str>) -> Needle {
        Needle(q.map(str::trim).unwrap_or_default().to_lowercase())
    }

    fn in_any(&self, fields: &[Option<&String>]) -> bool {
        self.0.is_empty()
            || fields
                .iter()
                .flatten()
                .any(|f| f.to_lowercase().contains(&self.0))
    }
}
