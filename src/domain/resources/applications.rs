//! `application.*`: the applications of an environment, each with an `appName` unique in
//! its organization.

use super::{
    Needle, grant, page, paging, snapshot, visible_application, visible_environment,
    visible_project,
};
use crate::auth::token;
use crate::domain::State;
use crate::domain::access::Actor;
use crate::domain::audit;
use crate::domain::policy::{self, op};
use crate::error::{Clash, Error, Result};
use crate::model::{
    AppName, Application, ApplicationId, Description, EnvironmentId, Name, Page, ProjectId,
};
use crate::store::orgs::AccessList;
use crate::store::resources as rs;

/// An application to create.
#[derive(Debug)]
pub struct NewApplication {
    pub environment_id: EnvironmentId,
    pub name: Name,
    /// Derived from the name when `None`.
    pub app_name: Option<AppName>,
    pub description: Option<Description>,
}

/// Changes to an application; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct ApplicationChanges {
    pub name: Option<Name>,
    /// `Some(None)` clears the description.
    pub description: Option<Option<Description>>,
    pub app_name: Option<AppName>,
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

/// `application.create`: `appName` defaults to the name plus a random suffix.
pub async fn create(st: &State, actor: &Actor, new: NewApplication) -> Result<Application> {
    let auth = policy::authorize::<op::ApplicationCreate>(actor)?;
    let m = actor.member()?.clone();
    let e = visible_environment(st, actor, &new.environment_id)?;
    let chosen = new.app_name.is_some();
    let mut app = Application {
        id: ApplicationId(token::new_id()),
        environment_id: e.id.clone(),
        organization_id: e.organization_id.clone(),
        app_name: new.app_name.map(AppName::into_string).unwrap_or_default(),
        name: new.name.into_string(),
        description: new.description.map(Description::into_string),
        status: "idle".to_owned(),
        created_at: st.now(),
    };
    let (mut a, mm) = (app.clone(), m.clone());
    let event = audit::by(actor, "application.create", app.created_at);
    app = st
        .write(&auth, move |tx| {
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
            tx.audit(
                event
                    .resource("application", a.id.as_str())
                    .details(serde_json::json!({ "name": a.name, "appName": a.app_name })),
            );
            Ok(a)
        })
        .await?;
    Ok(app)
}

/// `application.one`.
pub fn one(st: &State, actor: &Actor, id: &ApplicationId) -> Result<Application> {
    Ok(visible_application(st, actor, id)?.0)
}

/// `application.update`: name, description, appName (unique per organization).
pub async fn update(
    st: &State,
    actor: &Actor,
    id: &ApplicationId,
    changes: ApplicationChanges,
) -> Result<Application> {
    let auth = policy::authorize::<op::ApplicationUpdate>(actor)?;
    let (mut a, _) = visible_application(st, actor, id)?;
    if let Some(n) = changes.name {
        a.name = n.into_string();
    }
    if let Some(d) = changes.description {
        a.description = d.map(Description::into_string);
    }
    if let Some(n) = changes.app_name {
        a.app_name = n.into_string();
    }
    let b = a.clone();
    let event = audit::by(actor, "application.update", st.now())
        .resource("application", a.id.as_str())
        .details(serde_json::json!({ "name": a.name, "appName": a.app_name }));
    st.write(&auth, move |tx| {
        if rs::app_name_taken(tx, &b.organization_id, &b.app_name, Some(&b.id))? {
            return Err(app_name_conflict());
        }
        rs::update_application(tx, &b)?;
        tx.audit(event);
        Ok(())
    })
    .await?;
    Ok(a)
}

/// `application.delete`.
pub async fn delete(st: &State, actor: &Actor, id: &ApplicationId) -> Result<Application> {
    let auth = policy::authorize::<op::ApplicationDelete>(actor)?;
    let (a, _) = visible_application(st, actor, id)?;
    let (org, aid) = (a.organization_id.clone(), a.id.clone());
    let event = audit::by(actor, "application.delete", st.now())
        .resource("application", a.id.as_str())
        .details(serde_json::json!({ "name": a.name, "appName": a.app_name }));
    st.write(&auth, move |tx| {
        rs::delete_application(tx, &org, &aid)?;
        tx.audit(event);
        Ok(())
    })
    .await?;
    Ok(a)
}

/// `application.search`: applications the caller may see, newest first.
pub fn search(st: &State, actor: &Actor, query: AppQuery<'_>) -> Result<Page<Application>> {
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

fn app_name_conflict() -> Error {
    Error::conflict(
        Clash::AppNameTaken,
        "Another application of this organization already uses this appName",
    )
}
