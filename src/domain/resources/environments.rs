//! `environment.*`: the environments of a project; the default one, `production`, keeps
//! its name and cannot be removed.

use super::{DEFAULT_ENVIRONMENT, grant, trees, visible_environment, visible_project};
use crate::auth::token;
use crate::domain::State;
use crate::domain::access::Actor;
use crate::domain::audit;
use crate::domain::policy::{self, op};
use crate::error::{Clash, Error, Invalid, Result, field};
use crate::model::{Application, Description, Environment, EnvironmentId, Name, ProjectId};
use crate::store::Reader;
use crate::store::orgs::AccessList;
use crate::store::resources as rs;

/// An environment to create.
#[derive(Debug)]
pub struct NewEnvironment {
    pub project_id: ProjectId,
    pub name: EnvironmentName,
    pub description: Option<Description>,
}

/// Changes to an environment; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct EnvironmentChanges {
    pub name: Option<Rename>,
    /// `Some(None)` clears the description.
    pub description: Option<Option<Description>>,
}

/// The name of an environment other than the default one: a resource name that is not
/// `production` in any case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentName(Name);

impl EnvironmentName {
    pub fn parse(raw: &str) -> Result<EnvironmentName, String> {
        let name = super::name(raw)?;
        if name.as_str().eq_ignore_ascii_case(DEFAULT_ENVIRONMENT) {
            return Err("\"production\" is reserved for the default environment".into());
        }
        Ok(EnvironmentName(name))
    }

    pub fn into_string(self) -> String {
        self.0.into_string()
    }
}

/// A new name for an environment, parsed where the request arrives but judged against
/// the environment it renames: the name it already has changes nothing and is never
/// refused (so the default one may be sent `production`), and the default environment
/// refuses every other name before that name's own problems count.
#[derive(Debug)]
pub struct Rename {
    /// What was sent, trimmed.
    sent: String,
    /// The name it makes, or why it makes none.
    parsed: Result<EnvironmentName, String>,
}

impl Rename {
    pub fn parse(raw: &str) -> Rename {
        let sent = raw.trim();
        Rename {
            sent: sent.to_owned(),
            parsed: EnvironmentName::parse(sent),
        }
    }
}

/// `environment.create`: a new environment in a project.
pub async fn create(st: &State, actor: &Actor, new: NewEnvironment) -> Result<Environment> {
    let auth = policy::authorize::<op::EnvironmentCreate>(actor)?;
    let m = actor.member()?.clone();
    let p = visible_project(st, actor, &new.project_id)?;
    let env = Environment {
        id: EnvironmentId(token::new_id()),
        project_id: p.id.clone(),
        organization_id: p.organization_id.clone(),
        name: new.name.into_string(),
        description: new.description.map(Description::into_string),
        is_default: false,
        created_at: st.now(),
    };
    let (e, mm) = (env.clone(), m.clone());
    let event = audit::by(actor, "environment.create", env.created_at)
        .resource("environment", env.id.as_str())
        .details(serde_json::json!({ "name": env.name, "projectId": env.project_id.as_str() }));
    st.write(&auth, move |tx| {
        if environment_name_taken(tx, &e, None)? {
            return Err(env_name_conflict());
        }
        rs::insert_environment(tx, &e)?;
        grant(tx, &mm, AccessList::Environments, e.id.as_str())?;
        tx.audit(event);
        Ok(())
    })
    .await?;
    Ok(env)
}

/// `environment.one`: the environment and the applications the caller may see in it.
pub fn one(
    st: &State,
    actor: &Actor,
    id: &EnvironmentId,
) -> Result<(Environment, Vec<Application>)> {
    let e = visible_environment(st, actor, id)?;
    let apps = apps_in(st, actor, &e)?;
    Ok((e, apps))
}

/// `environment.byProjectId`: a project's environments the caller may see.
pub fn by_project_id(
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
pub async fn update(
    st: &State,
    actor: &Actor,
    id: &EnvironmentId,
    changes: EnvironmentChanges,
) -> Result<(Environment, Vec<Application>)> {
    let auth = policy::authorize::<op::EnvironmentUpdate>(actor)?;
    let mut e = visible_environment(st, actor, id)?;
    if let Some(rename) = changes.name
        && rename.sent != e.name
    {
        if e.is_default {
            return Err(Error::invalid(
                Invalid::DefaultEnvironment,
                "The default environment cannot be renamed",
            ));
        }
        e.name = field("name", rename.parsed)?.into_string();
    }
    if let Some(d) = changes.description {
        e.description = d.map(Description::into_string);
    }
    let f = e.clone();
    let event = audit::by(actor, "environment.update", st.now())
        .resource("environment", e.id.as_str())
        .details(serde_json::json!({ "name": e.name }));
    st.write(&auth, move |tx| {
        if environment_name_taken(tx, &f, Some(&f.id))? {
            return Err(env_name_conflict());
        }
        rs::update_environment(tx, &f)?;
        tx.audit(event);
        Ok(())
    })
    .await?;
    let apps = apps_in(st, actor, &e)?;
    Ok((e, apps))
}

/// `environment.remove`: not the default one; its applications go with it.
pub async fn remove(st: &State, actor: &Actor, id: &EnvironmentId) -> Result<Environment> {
    let auth = policy::authorize::<op::EnvironmentRemove>(actor)?;
    let e = visible_environment(st, actor, id)?;
    if e.is_default {
        return Err(Error::invalid(
            Invalid::DefaultEnvironment,
            "The default environment cannot be removed",
        ));
    }
    let (org, eid) = (e.organization_id.clone(), e.id.clone());
    let event = audit::by(actor, "environment.remove", st.now())
        .resource("environment", e.id.as_str())
        .details(serde_json::json!({ "name": e.name, "projectId": e.project_id.as_str() }));
    st.write(&auth, move |tx| {
        rs::delete_environment(tx, &org, &eid)?;
        tx.audit(event);
        Ok(())
    })
    .await?;
    Ok(e)
}

fn env_name_conflict() -> Error {
    Error::conflict(
        Clash::EnvironmentExists,
        "The project already has an environment with this name",
    )
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

/// Applications the caller may see in `env`.
fn apps_in(st: &State, actor: &Actor, env: &Environment) -> Result<Vec<Application>> {
    let all = st.read(|c| rs::applications(c, &env.organization_id))?;
    Ok(all
        .into_iter()
        .filter(|a| a.environment_id == env.id && actor.sees_application(a, env))
        .collect())
}
