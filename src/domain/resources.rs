//! Projects, environments and applications, each guarded the same way whatever the
//! credential: the organization first (another organization's resource is 401
//! `wrong_organization`, a missing one 404), then a member's flags and access lists, then
//! a key's scope.

use std::collections::HashMap;
use std::sync::Arc;

use super::access::{self, Actor};
use super::cache::OrgResources;
use super::{State, in_own_org};
use crate::auth::token;
use crate::error::{Checks, Clash, Error, Invalid, Reason, Result};
use crate::model::{
    AppName, Application, ApplicationId, Environment, EnvironmentId, Flags, Membership, Name,
    OrgId, Page, Project, ProjectId, parse_description,
};
use crate::store::orgs::AccessList;
use crate::store::resources as rs;
use crate::store::{self, Reader, Tx};

pub const NAME_MAX: usize = 255;
pub const DEFAULT_ENVIRONMENT: &str = "production";
pub const LIMIT_DEFAULT: i64 = 20;

/// A project with what the caller may see inside it.
#[derive(Debug, Clone)]
pub struct ProjectTree {
    pub project: Project,
    pub environments: Vec<(Environment, Vec<Application>)>,
}

fn parse_name(c: &mut Checks, raw: &str) -> Option<String> {
    c.field("name", Name::parse(raw, NAME_MAX))
        .map(Name::into_string)
}

fn parse_desc(c: &mut Checks, raw: Option<&str>) -> Option<String> {
    c.field("description", parse_description(raw)).flatten()
}

/// The new name and description of an update: `None` leaves a field as it is, and a
/// description of `Some(None)` clears it.
fn parse_changes(
    c: &mut Checks,
    name: Option<&str>,
    description: Option<&str>,
) -> (Option<String>, Option<Option<String>>) {
    let name = name.and_then(|n| parse_name(c, n));
    let description = description.map(|d| parse_desc(c, Some(d)));
    (name, description)
}

fn checked<T>(v: Option<T>) -> Result<T> {
    v.ok_or_else(|| Error::internal("checked field missing"))
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

fn visible_application(
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

// ---- projects

/// `project.create`: a project and its default `production` environment.
pub async fn create_project(
    st: &State,
    actor: &Actor,
    name: &str,
    description: Option<&str>,
) -> Result<(Project, Environment)> {
    let mut c = Checks::new();
    let name = parse_name(&mut c, name);
    let description = parse_desc(&mut c, description);
    c.finish()?;
    let m = access::flag(actor, |f: &Flags| f.can_create_projects)?.clone();
    // A key limited to some projects cannot make new ones outside its reach.
    if actor.scope().is_some_and(|s| s.project_ids.is_some()) {
        return Err(denied());
    }
    let now = st.now();
    let project = Project {
        id: ProjectId(token::new_id()),
        organization_id: m.organization_id.clone(),
        name: checked(name)?,
        description,
        created_at: now,
    };
    let env = Environment {
        id: EnvironmentId(token::new_id()),
        project_id: project.id.clone(),
        organization_id: m.organization_id.clone(),
        name: DEFAULT_ENVIRONMENT.to_owned(),
        description: None,
        is_default: true,
        created_at: now,
    };
    let (p, e, mm) = (project.clone(), env.clone(), m.clone());
    st.write(move |tx| {
        rs::insert_project(tx, &p)?;
        rs::insert_environment(tx, &e)?;
        grant(tx, &mm, AccessList::Projects, p.id.as_str())?;
        grant(tx, &mm, AccessList::Environments, e.id.as_str())
    })
    .await?;
    Ok((project, env))
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

/// Every project of a snapshot with everything inside, for callers who see it all.
fn full_trees(snap: &OrgResources) -> Vec<ProjectTree> {
    build_trees(
        &snap.projects,
        &snap.environments,
        &snap.applications,
        |_| true,
        |_| true,
        |_, _| true,
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

/// `project.all`: the organization's projects the caller may see, newest first, each
/// with its environments and their applications, as `render` writes them. It renders
/// once per snapshot for owners and admins together, and once per snapshot for each
/// other credential (see `ViewSlot`); every other call answers what was rendered.
pub fn all_projects(
    st: &State,
    actor: &Actor,
    render: impl FnOnce(&[ProjectTree]) -> String,
) -> Result<Arc<String>> {
    let org = &actor.member()?.organization_id;
    let snap = snapshot(st, org)?;
    if actor.sees_everything() {
        return Ok(Arc::clone(
            snap.rendered
                .get_or_init(|| Arc::new(render(&full_trees(&snap)))),
        ));
    }
    Ok(actor.view().get_or_render(&snap, || {
        render(&trees(
            actor,
            &snap.projects,
            &snap.environments,
            &snap.applications,
        ))
    }))
}

/// `project.one`.
pub fn one_project(st: &State, actor: &Actor, id: &ProjectId) -> Result<ProjectTree> {
    let p = visible_project(st, actor, id)?;
    let org = &p.organization_id;
    let (e, a) = st.read(|c| {
        Ok((
            rs::environments_of(c, org, &p.id)?,
            rs::applications(c, org)?,
        ))
    })?;
    trees(actor, std::slice::from_ref(&p), &e, &a)
        .pop()
        .ok_or_else(|| Error::internal("visible project lost"))
}

/// `project.update`: a new name and/or description. Members need canCreateProjects.
pub async fn update_project(
    st: &State,
    actor: &Actor,
    id: &ProjectId,
    name: Option<&str>,
    description: Option<&str>,
) -> Result<Project> {
    let mut c = Checks::new();
    let (name, description) = parse_changes(&mut c, name, description);
    c.finish()?;
    access::flag(actor, |f| f.can_create_projects)?;
    let mut p = visible_project(st, actor, id)?;
    if let Some(n) = name {
        p.name = n;
    }
    if let Some(d) = description {
        p.description = d;
    }
    let q = p.clone();
    st.write(move |tx| rs::update_project(tx, &q)).await?;
    Ok(p)
}

/// `project.remove`: the project, its environments and applications.
pub async fn remove_project(st: &State, actor: &Actor, id: &ProjectId) -> Result<Project> {
    access::flag(actor, |f| f.can_delete_projects)?;
    let p = visible_project(st, actor, id)?;
    let (org, pid) = (p.organization_id.clone(), p.id.clone());
    st.write(move |tx| rs::delete_project(tx, &org, &pid))
        .await?;
    Ok(p)
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

/// Whether `project` has an environment called `name` in any case, other than `except`.
fn environment_name_taken(
    tx: &Reader,
    e: &Environment,
    except: Option<&EnvironmentId>,
) -> Result<bool> {
    let name = e.name.to_lowercase();
    Ok(rs::environments_of(tx, &e.organization_id, &e.project_id)?
        .iter()
        .any(|x| Some(&x.id) != except && x.name.to_lowercase() == name))
}

/// `project.search`: projects whose name or description contains `q`, newest first.
pub fn search_projects(
    st: &State,
    actor: &Actor,
    q: Option<&str>,
    limit: Option<i64>,
    offset: Option<i64>,
) -> Result<Page<Project>> {
    let (limit, offset) = paging(limit, offset)?;
    let org = &actor.member()?.organization_id;
    let q = Needle::new(q);
    let snap = snapshot(st, org)?;
    let visible = snap
        .projects
        .iter()
        .filter(|p| q.in_any(&[Some(&p.name), p.description.as_ref()]))
        .filter(|p| actor.sees_project(&p.id))
        .cloned()
        .collect();
    Ok(page(visible, limit, offset))
}

// ---- environments

fn check_env_name(c: &mut Checks, raw: &str) -> Option<String> {
    let name = parse_name(c, raw)?;
    if name.eq_ignore_ascii_case(DEFAULT_ENVIRONMENT) {
        c.fail(
            "name",
            "\"production\" is reserved for the default environment",
        );
        return None;
    }
    Some(name)
}

fn env_name_conflict() -> Error {
    Error::conflict(
        Clash::EnvironmentExists,
        "The project already has an environment with this name",
    )
}

/// `environment.create`: a new environment in a project.
pub async fn create_environment(
    st: &State,
    actor: &Actor,
    project: &ProjectId,
    name: &str,
    description: Option<&str>,
) -> Result<Environment> {
    let mut c = Checks::new();
    let name = check_env_name(&mut c, name);
    let description = parse_desc(&mut c, description);
    c.finish()?;
    let m = access::flag(actor, |f| f.can_create_environments)?.clone();
    let p = visible_project(st, actor, project)?;
    let env = Environment {
        id: EnvironmentId(token::new_id()),
        project_id: p.id.clone(),
        organization_id: p.organization_id.clone(),
        name: checked(name)?,
        description,
        is_default: false,
        created_at: st.now(),
    };
    let (e, mm) = (env.clone(), m.clone());
    st.write(move |tx| {
        if environment_name_taken(tx, &e, None)? {
            return Err(env_name_conflict());
        }
        rs::insert_environment(tx, &e)?;
        grant(tx, &mm, AccessList::Environments, e.id.as_str())
    })
    .await?;
    Ok(env)
}

/// Applications the caller may see in `env`.
fn apps_in(st: &State, actor: &Actor, env: &Environment) -> Result<Vec<Application>> {
    let all = st.read(|c| rs::applications(c, &env.organization_id))?;
    Ok(all
        .into_iter()
        .filter(|a| a.environment_id == env.id && actor.sees_application(a, env))
        .collect())
}

/// `environment.one`: the environment and the applications the caller may see in it.
pub fn one_environment(
    st: &State,
    actor: &Actor,
    id: &EnvironmentId,
) -> Result<(Environment, Vec<Application>)> {
    let e = visible_environment(st, actor, id)?;
    let apps = apps_in(st, actor, &e)?;
    Ok((e, apps))
}

/// `environment.byProjectId`: a project's environments the caller may see.
pub fn environments_of(
    st: &State,
    actor: &Actor,
    project: &ProjectId,
) -> Result<Vec<(Environment, Vec<Application>)>> {
    let p = visible_project(st, actor, project)?;
    let org = &p.organization_id;
    let (e, a) = st.read(|c| {
        Ok((
            rs::environments_of(c, org, &p.id)?,
            rs::applications(c, org)?,
        ))
    })?;
    Ok(trees(actor, std::slice::from_ref(&p), &e, &a)
        .pop()
        .map(|t| t.environments)
        .unwrap_or_default())
}

/// `environment.update`: the default environment keeps its name. Answers the environment
/// with the applications the caller may see in it.
pub async fn update_environment(
    st: &State,
    actor: &Actor,
    id: &EnvironmentId,
    name: Option<&str>,
    description: Option<&str>,
) -> Result<(Environment, Vec<Application>)> {
    let mut c = Checks::new();
    let description = description.map(|d| parse_desc(&mut c, Some(d)));
    let raw_name = name.map(str::trim);
    c.finish()?;
    access::flag(actor, |f| f.can_create_environments)?;
    let mut e = visible_environment(st, actor, id)?;
    if let Some(n) = raw_name
        && n != e.name
    {
        if e.is_default {
            return Err(Error::invalid(
                Invalid::DefaultEnvironment,
                "The default environment cannot be renamed",
            ));
        }
        let mut c = Checks::new();
        let n = check_env_name(&mut c, n);
        c.finish()?;
        e.name = checked(n)?;
    }
    if let Some(d) = description {
        e.description = d;
    }
    let f = e.clone();
    st.write(move |tx| {
        if environment_name_taken(tx, &f, Some(&f.id))? {
            return Err(env_name_conflict());
        }
        rs::update_environment(tx, &f)
    })
    .await?;
    let apps = apps_in(st, actor, &e)?;
    Ok((e, apps))
}

/// `environment.remove`: not the default one; its applications go with it.
pub async fn remove_environment(
    st: &State,
    actor: &Actor,
    id: &EnvironmentId,
) -> Result<Environment> {
    access::flag(actor, |f| f.can_delete_environments)?;
    let e = visible_environment(st, actor, id)?;
    if e.is_default {
        return Err(Error::invalid(
            Invalid::DefaultEnvironment,
            "The default environment cannot be removed",
        ));
    }
    let (org, eid) = (e.organization_id.clone(), e.id.clone());
    st.write(move |tx| rs::delete_environment(tx, &org, &eid))
        .await?;
    Ok(e)
}

// ---- applications

fn app_name_conflict() -> Error {
    Error::conflict(
        Clash::AppNameTaken,
        "Another application of this organization already uses this appName",
    )
}

/// `application.create`: `appName` defaults to the name plus a random suffix.
pub async fn create_application(
    st: &State,
    actor: &Actor,
    environment: &EnvironmentId,
    name: &str,
    app_name: Option<&str>,
    description: Option<&str>,
) -> Result<Application> {
    let mut c = Checks::new();
    let name = parse_name(&mut c, name);
    let app_name = app_name.and_then(|a| c.field("appName", AppName::parse(a)));
    let description = parse_desc(&mut c, description);
    c.finish()?;
    let name = checked(name)?;
    let m = access::flag(actor, |f| f.can_create_services)?.clone();
    let e = visible_environment(st, actor, environment)?;
    let chosen = app_name.is_some();
    let mut app = Application {
        id: ApplicationId(token::new_id()),
        environment_id: e.id.clone(),
        organization_id: e.organization_id.clone(),
        app_name: app_name.map(AppName::into_string).unwrap_or_default(),
        name,
        description,
        status: "idle".to_owned(),
        created_at: st.now(),
    };
    let (mut a, mm) = (app.clone(), m.clone());
    app = st
        .write(move |tx| {
            if chosen {
                if rs::app_name_taken(tx, &a.organization_id, &a.app_name, None)? {
                    return Err(app_name_conflict());
                }
            } else {
                // Six random characters make a collision rare; try again when it happens.
                loop {
                    let suffix = token::random_base62(6).to_ascii_lowercase();
                    a.app_name = AppName::derive(&a.name, &suffix).into_string();
                    if !rs::app_name_taken(tx, &a.organization_id, &a.app_name, None)? {
                        break;
                    }
                }
            }
            rs::insert_application(tx, &a)?;
            grant(tx, &mm, AccessList::Applications, a.id.as_str())?;
            Ok(a)
        })
        .await?;
    Ok(app)
}

/// `application.one`.
pub fn one_application(st: &State, actor: &Actor, id: &ApplicationId) -> Result<Application> {
    Ok(visible_application(st, actor, id)?.0)
}

/// `application.update`: name, description, appName (unique per organization).
pub async fn update_application(
    st: &State,
    actor: &Actor,
    id: &ApplicationId,
    name: Option<&str>,
    description: Option<&str>,
    app_name: Option<&str>,
) -> Result<Application> {
    let mut c = Checks::new();
    let (name, description) = parse_changes(&mut c, name, description);
    let app_name = app_name.and_then(|a| c.field("appName", AppName::parse(a)));
    c.finish()?;
    access::flag(actor, |f| f.can_create_services)?;
    let (mut a, _) = visible_application(st, actor, id)?;
    if let Some(n) = name {
        a.name = n;
    }
    if let Some(d) = description {
        a.description = d;
    }
    if let Some(n) = app_name {
        a.app_name = n.into_string();
    }
    let b = a.clone();
    st.write(move |tx| {
        if rs::app_name_taken(tx, &b.organization_id, &b.app_name, Some(&b.id))? {
            return Err(app_name_conflict());
        }
        rs::update_application(tx, &b)
    })
    .await?;
    Ok(a)
}

/// `application.delete`.
pub async fn delete_application(
    st: &State,
    actor: &Actor,
    id: &ApplicationId,
) -> Result<Application> {
    access::flag(actor, |f| f.can_delete_services)?;
    let (a, _) = visible_application(st, actor, id)?;
    let (org, aid) = (a.organization_id.clone(), a.id.clone());
    st.write(move |tx| rs::delete_application(tx, &org, &aid))
        .await?;
    Ok(a)
}

/// What `application.search` filters by.
#[derive(Debug, Default)]
pub struct AppQuery<'a> {
    pub q: Option<&'a str>,
    pub project: Option<ProjectId>,
    pub environment: Option<EnvironmentId>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// `application.search`: applications the caller may see, newest first.
pub fn search_applications(
    st: &State,
    actor: &Actor,
    query: AppQuery<'_>,
) -> Result<Page<Application>> {
    let (limit, offset) = paging(query.limit, query.offset)?;
    if let Some(p) = &query.project {
        visible_project(st, actor, p)?;
    }
    if let Some(e) = &query.environment {
        visible_environment(st, actor, e)?;
    }
    let org = &actor.member()?.organization_id;
    let q = Needle::new(query.q);
    let snap = snapshot(st, org)?;
    // Newest first, like the project search.
    let visible = snap
        .applications
        .iter()
        .rev()
        .filter(|a| q.in_any(&[Some(&a.name), Some(&a.app_name), a.description.as_ref()]))
        .filter(|a| {
            let Some(e) = snap.environments.iter().find(|e| e.id == a.environment_id) else {
                return false;
            };
            query.environment.as_ref().is_none_or(|id| *id == e.id)
                && query.project.as_ref().is_none_or(|id| *id == e.project_id)
                && actor.sees_application(a, e)
        })
        .cloned()
        .collect();
    Ok(page(visible, limit, offset))
}
