//! `project.*`: projects, each made with its default environment.

use std::sync::Arc;

use super::{
    DEFAULT_ENVIRONMENT, Needle, ProjectTree, build_trees, grant, page, paging, snapshot, trees,
    visible_project,
};
use crate::auth::token;
use crate::domain::State;
use crate::domain::access::Actor;
use crate::domain::audit;
use crate::domain::cache::OrgResources;
use crate::domain::policy::{self, op};
use crate::error::{Error, Result};
use crate::model::{Description, Environment, EnvironmentId, Name, Page, Project, ProjectId};
use crate::store::orgs::AccessList;
use crate::store::resources as rs;

/// A project to create.
#[derive(Debug)]
pub struct NewProject {
    pub name: Name,
    pub description: Option<Description>,
}

/// Changes to a project; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct ProjectChanges {
    pub name: Option<Name>,
    /// `Some(None)` clears the description.
    pub description: Option<Option<Description>>,
}

/// `project.create`: a project and its default `production` environment.
pub async fn create(st: &State, actor: &Actor, new: NewProject) -> Result<(Project, Environment)> {
    let auth = policy::authorize::<op::ProjectCreate>(actor)?;
    let m = actor.member()?.clone();
    let now = st.now();
    let project = Project {
        id: ProjectId(token::new_id()),
        organization_id: m.organization_id.clone(),
        name: new.name.into_string(),
        description: new.description.map(Description::into_string),
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
    let event = audit::by(actor, "project.create", now)
        .resource("project", project.id.as_str())
        .details(serde_json::json!({ "name": project.name }));
    st.write(&auth, move |tx| {
        rs::insert_project(tx, &p)?;
        rs::insert_environment(tx, &e)?;
        grant(tx, &mm, AccessList::Projects, p.id.as_str())?;
        grant(tx, &mm, AccessList::Environments, e.id.as_str())?;
        tx.audit(event);
        Ok(())
    })
    .await?;
    Ok((project, env))
}

/// `project.all`: the organization's projects the caller may see, newest first, each
/// with its environments and their applications, as `render` writes them. It renders
/// once per snapshot for owners and admins together, and once per snapshot for each
/// other credential (see `ViewSlot`); every other call answers what was rendered.
pub fn all(
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
pub fn one(st: &State, actor: &Actor, id: &ProjectId) -> Result<ProjectTree> {
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
pub async fn update(
    st: &State,
    actor: &Actor,
    id: &ProjectId,
    changes: ProjectChanges,
) -> Result<Project> {
    let auth = policy::authorize::<op::ProjectUpdate>(actor)?;
    let mut p = visible_project(st, actor, id)?;
    if let Some(n) = changes.name {
        p.name = n.into_string();
    }
    if let Some(d) = changes.description {
        p.description = d.map(Description::into_string);
    }
    let q = p.clone();
    let event = audit::by(actor, "project.update", st.now())
        .resource("project", p.id.as_str())
        .details(serde_json::json!({ "name": p.name }));
    st.write(&auth, move |tx| {
        rs::update_project(tx, &q)?;
        tx.audit(event);
        Ok(())
    })
    .await?;
    Ok(p)
}

/// `project.remove`: the project, its environments and applications.
pub async fn remove(st: &State, actor: &Actor, id: &ProjectId) -> Result<Project> {
    let auth = policy::authorize::<op::ProjectRemove>(actor)?;
    let p = visible_project(st, actor, id)?;
    let (org, pid) = (p.organization_id.clone(), p.id.clone());
    let event = audit::by(actor, "project.remove", st.now())
        .resource("project", p.id.as_str())
        .details(serde_json::json!({ "name": p.name }));
    st.write(&auth, move |tx| {
        rs::delete_project(tx, &org, &pid)?;
        tx.audit(event);
        Ok(())
    })
    .await?;
    Ok(p)
}

/// `project.search`: projects whose name or description contains `q`, newest first.
pub fn search(
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
