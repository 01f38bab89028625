//! `project.*`, `environment.*`, `application.*`: Dokploy's procedures and field names.

use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::ApiTags;
use super::error::ApiResult;
use super::raw::RawJson;
use super::security::Caller;
use super::text::{AppNameText, Int, Text};
use crate::clock::rfc3339;
use crate::domain::State;
use crate::domain::resources::{self as res, AppQuery, ProjectTree};
use crate::model::{Application, ApplicationId, Environment, EnvironmentId, Project, ProjectId};
use poem_openapi::types::ToJSON;

/// An application, in full.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct ApplicationView {
    /// The application's id.
    pub application_id: String,
    /// Display name.
    pub name: String,
    /// Technical name, unique in the organization (`^[a-zA-Z0-9._-]{1,63}$`).
    pub app_name: String,
    /// Free text.
    #[oai(skip_serializing_if_is_none)]
    pub description: Option<String>,
    /// The environment it runs in.
    pub environment_id: String,
    /// `idle` until deployed.
    pub application_status: String,
    /// When it was created (RFC 3339).
    pub created_at: String,
}

impl From<&Application> for ApplicationView {
    fn from(a: &Application) -> Self {
        ApplicationView {
            application_id: a.id.to_string(),
            name: a.name.clone(),
            app_name: a.app_name.clone(),
            description: a.description.clone(),
            environment_id: a.environment_id.to_string(),
            application_status: a.status.clone(),
            created_at: rfc3339(a.created_at),
        }
    }
}

/// An application as listed inside its environment.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct ApplicationSummary {
    /// The application's id.
    pub application_id: String,
    /// Display name.
    pub name: String,
    /// Technical name.
    pub app_name: String,
    /// `idle` until deployed.
    pub application_status: String,
}

/// An environment.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct EnvironmentView {
    /// The environment's id.
    pub environment_id: String,
    /// Its name; the default one is `production`.
    pub name: String,
    /// Free text.
    #[oai(skip_serializing_if_is_none)]
    pub description: Option<String>,
    /// The project it belongs to.
    pub project_id: String,
    /// Whether it is the project's default (cannot be renamed or removed).
    pub is_default: bool,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// The applications in it that the caller may see.
    pub applications: Vec<ApplicationSummary>,
}

impl EnvironmentView {
    fn new(e: &Environment, apps: &[Application]) -> EnvironmentView {
        EnvironmentView {
            environment_id: e.id.to_string(),
            name: e.name.clone(),
            description: e.description.clone(),
            project_id: e.project_id.to_string(),
            is_default: e.is_default,
            created_at: rfc3339(e.created_at),
            applications: apps
                .iter()
                .map(|a| ApplicationSummary {
                    application_id: a.id.to_string(),
                    name: a.name.clone(),
                    app_name: a.app_name.clone(),
                    application_status: a.status.clone(),
                })
                .collect(),
        }
    }
}

/// A project.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct ProjectView {
    /// The project's id.
    pub project_id: String,
    /// Its name.
    pub name: String,
    /// Free text.
    #[oai(skip_serializing_if_is_none)]
    pub description: Option<String>,
    /// The organization it belongs to.
    pub organization_id: String,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// Its environments that the caller may see (in `project.one` and `project.all`).
    #[oai(skip_serializing_if_is_none)]
    pub environments: Option<Vec<EnvironmentView>>,
}

impl ProjectView {
    fn flat(p: &Project) -> ProjectView {
        ProjectView {
            project_id: p.id.to_string(),
            name: p.name.clone(),
            description: p.description.clone(),
            organization_id: p.organization_id.to_string(),
            created_at: rfc3339(p.created_at),
            environments: None,
        }
    }

    fn tree(t: &ProjectTree) -> ProjectView {
        let mut v = ProjectView::flat(&t.project);
        v.environments = Some(
            t.environments
                .iter()
                .map(|(e, apps)| EnvironmentView::new(e, apps))
                .collect(),
        );
        v
    }
}

/// A new project.
#[derive(Debug, Object)]
pub struct CreateProject {
    /// 1-255 characters.
    pub name: Text<1, { crate::domain::resources::NAME_MAX }>,
    /// Up to 10,000 characters.
    pub description: Option<Text<0, { crate::model::DESCRIPTION_MAX }>>,
}

/// A new project and its default environment.
#[derive(Debug, Object)]
pub struct CreatedProject {
    /// The project.
    pub project: ProjectView,
    /// Its default environment, `production`.
    pub environment: EnvironmentView,
}

/// Changes to a project.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct UpdateProject {
    /// The project's id.
    pub project_id: Text,
    /// A new name, 1-255 characters.
    pub name: Option<Text<1, { crate::domain::resources::NAME_MAX }>>,
    /// A new description, up to 10,000 characters; an empty string clears it.
    pub description: Option<Text<0, { crate::model::DESCRIPTION_MAX }>>,
}

/// Names a project.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct ProjectRef {
    /// The project's id.
    pub project_id: Text,
}

/// A page of projects.
#[derive(Debug, Object)]
pub struct ProjectPage {
    /// The projects on this page, newest first.
    pub items: Vec<ProjectView>,
    /// How many match in all.
    pub total: u64,
}

/// A new environment.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct CreateEnvironment {
    /// The project it belongs to.
    pub project_id: Text,
    /// 1-255 characters; `production` is reserved.
    pub name: Text<1, { crate::domain::resources::NAME_MAX }>,
    /// Up to 10,000 characters.
    pub description: Option<Text<0, { crate::model::DESCRIPTION_MAX }>>,
}

/// Changes to an environment.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct UpdateEnvironment {
    /// The environment's id.
    pub environment_id: Text,
    /// A new name (not for the default environment).
    pub name: Option<Text<1, { crate::domain::resources::NAME_MAX }>>,
    /// A new description; an empty string clears it.
    pub description: Option<Text<0, { crate::model::DESCRIPTION_MAX }>>,
}

/// Names an environment.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct EnvironmentRef {
    /// The environment's id.
    pub environment_id: Text,
}

/// A new application.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct CreateApplication {
    /// Display name, 1-255 characters.
    pub name: Text<1, { crate::domain::resources::NAME_MAX }>,
    /// The environment it runs in.
    pub environment_id: Text,
    /// Technical name, unique in the organization; generated from the name when absent.
    pub app_name: Option<AppNameText>,
    /// Up to 10,000 characters.
    pub description: Option<Text<0, { crate::model::DESCRIPTION_MAX }>>,
}

/// Changes to an application.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct UpdateApplication {
    /// The application's id.
    pub application_id: Text,
    /// A new display name.
    pub name: Option<Text<1, { crate::domain::resources::NAME_MAX }>>,
    /// A new description; an empty string clears it.
    pub description: Option<Text<0, { crate::model::DESCRIPTION_MAX }>>,
    /// A new technical name, unique in the organization.
    pub app_name: Option<AppNameText>,
}

/// Names an application.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct ApplicationRef {
    /// The application's id.
    pub application_id: Text,
}

/// A page of applications.
#[derive(Debug, Object)]
pub struct ApplicationPage {
    /// The applications on this page, newest first.
    pub items: Vec<ApplicationView>,
    /// How many match in all.
    pub total: u64,
}

fn opt<T: std::ops::Deref<Target = str>>(t: &Option<T>) -> Option<&str> {
    t.as_deref()
}

pub struct ProjectApi;

#[OpenApi(prefix_path = "/api", tag = "ApiTags::Project")]
impl ProjectApi {
    /// Create a project with its default `production` environment. Members need
    /// `canCreateProjects`; the project joins their access list.
    #[oai(
        path = "/project.create",
        method = "post",
        operation_id = "project.create"
    )]
    async fn create(
        &self,
        st: Data<&State>,
        caller: Caller,
        body: Json<CreateProject>,
    ) -> ApiResult<Json<CreatedProject>> {
        let (p, e) =
            res::create_project(&st, &caller.0, &body.name, opt(&body.description)).await?;
        Ok(Json(CreatedProject {
            project: ProjectView::flat(&p),
            environment: EnvironmentView::new(&e, &[]),
        }))
    }

    /// One project with its environments and their applications.
    #[oai(path = "/project.one", method = "get", operation_id = "project.one")]
    async fn one(
        &self,
        st: Data<&State>,
        caller: Caller,
        /// The project's id.
        #[oai(name = "projectId")]
        project_id: Query<String>,
    ) -> ApiResult<Json<ProjectView>> {
        let t = res::one_project(&st, &caller.0, &ProjectId(project_id.0))?;
        Ok(Json(ProjectView::tree(&t)))
    }

    /// The organization's projects the caller may see, newest first, each with its
    /// environments and their applications.
    #[oai(path = "/project.all", method = "get", operation_id = "project.all")]
    async fn all(&self, st: Data<&State>, caller: Caller) -> ApiResult<RawJson<Vec<ProjectView>>> {
        let render = |trees: &[ProjectTree]| {
            let views: Vec<ProjectView> = trees.iter().map(ProjectView::tree).collect();
            views.to_json_string()
        };
        Ok(RawJson::new(res::all_projects(&st, &caller.0, render)?))
    }

    /// Rename a project or change its description. Members need `canCreateProjects`.
    #[oai(
        path = "/project.update",
        method = "post",
        operation_id = "project.update"
    )]
    async fn update(
        &self,
        st: Data<&State>,
        caller: Caller,
        body: Json<UpdateProject>,
    ) -> ApiResult<Json<ProjectView>> {
        let b = &body.0;
        let p = res::update_project(
            &st,
            &caller.0,
            &ProjectId(b.project_id.0.clone()),
            opt(&b.name),
            opt(&b.description),
        )
        .await?;
        Ok(Json(ProjectView::flat(&p)))
    }

    /// Remove a project with its environments and applications. Members need
    /// `canDeleteProjects`.
    #[oai(
        path = "/project.remove",
        method = "post",
        operation_id = "project.remove"
    )]
    async fn remove(
        &self,
        st: Data<&State>,
        caller: Caller,
        body: Json<ProjectRef>,
    ) -> ApiResult<Json<ProjectView>> {
        let p = res::remove_project(&st, &caller.0, &ProjectId(body.0.project_id.0)).await?;
        Ok(Json(ProjectView::flat(&p)))
    }

    /// Projects whose name or description contains `q` (any case), newest first.
    #[oai(
        path = "/project.search",
        method = "get",
        operation_id = "project.search"
    )]
    async fn search(
        &self,
        st: Data<&State>,
        caller: Caller,
        /// Text to look for; all projects when absent.
        q: Query<Option<String>>,
        /// Page size, 1-100 (default 20).
        limit: Query<Option<Int<1, 100>>>,
        /// How many to skip (default 0).
        offset: Query<Option<Int<0>>>,
    ) -> ApiResult<Json<ProjectPage>> {
        let page = res::search_projects(
            &st,
            &caller.0,
            q.0.as_deref(),
            limit.0.map(|v| v.0),
            offset.0.map(|v| v.0),
        )?;
        Ok(Json(ProjectPage {
            items: page.items.iter().map(ProjectView::flat).collect(),
            total: page.total,
        }))
    }
}

pub struct EnvironmentApi;

#[OpenApi(prefix_path = "/api", tag = "ApiTags::Environment")]
impl EnvironmentApi {
    /// Create an environment in a project. Members need `canCreateEnvironments`; the
    /// environment joins their access list.
    #[oai(
        path = "/environment.create",
        method = "post",
        operation_id = "environment.create"
    )]
    async fn create(
        &self,
        st: Data<&State>,
        caller: Caller,
        body: Json<CreateEnvironment>,
    ) -> ApiResult<Json<EnvironmentView>> {
        let b = &body.0;
        let e = res::create_environment(
            &st,
            &caller.0,
            &ProjectId(b.project_id.0.clone()),
            &b.name,
            opt(&b.description),
        )
        .await?;
        Ok(Json(EnvironmentView::new(&e, &[])))
    }

    /// One environment with its applications.
    #[oai(
        path = "/environment.one",
        method = "get",
        operation_id = "environment.one"
    )]
    async fn one(
        &self,
        st: Data<&State>,
        caller: Caller,
        /// The environment's id.
        #[oai(name = "environmentId")]
        environment_id: Query<String>,
    ) -> ApiResult<Json<EnvironmentView>> {
        let (e, apps) = res::one_environment(&st, &caller.0, &EnvironmentId(environment_id.0))?;
        Ok(Json(EnvironmentView::new(&e, &apps)))
    }

    /// A project's environments, default first.
    #[oai(
        path = "/environment.byProjectId",
        method = "get",
        operation_id = "environment.byProjectId"
    )]
    async fn by_project_id(
        &self,
        st: Data<&State>,
        caller: Caller,
        /// The project's id.
        #[oai(name = "projectId")]
        project_id: Query<String>,
    ) -> ApiResult<Json<Vec<EnvironmentView>>> {
        let list = res::environments_of(&st, &caller.0, &ProjectId(project_id.0))?;
        Ok(Json(
            list.iter()
                .map(|(e, a)| EnvironmentView::new(e, a))
                .collect(),
        ))
    }

    /// Rename an environment or change its description (the default one keeps its name).
    /// Members need `canCreateEnvironments`.
    #[oai(
        path = "/environment.update",
        method = "post",
        operation_id = "environment.update"
    )]
    async fn update(
        &self,
        st: Data<&State>,
        caller: Caller,
        body: Json<UpdateEnvironment>,
    ) -> ApiResult<Json<EnvironmentView>> {
        let b = &body.0;
        let (e, apps) = res::update_environment(
            &st,
            &caller.0,
            &EnvironmentId(b.environment_id.0.clone()),
            opt(&b.name),
            opt(&b.description),
        )
        .await?;
        Ok(Json(EnvironmentView::new(&e, &apps)))
    }

    /// Remove an environment and its applications (not the default one). Members need
    /// `canDeleteEnvironments`.
    #[oai(
        path = "/environment.remove",
        method = "post",
        operation_id = "environment.remove"
    )]
    async fn remove(
        &self,
        st: Data<&State>,
        caller: Caller,
        body: Json<EnvironmentRef>,
    ) -> ApiResult<Json<EnvironmentView>> {
        let e = res::remove_environment(&st, &caller.0, &EnvironmentId(body.0.environment_id.0))
            .await?;
        Ok(Json(EnvironmentView::new(&e, &[])))
    }
}

pub struct ApplicationApi;

#[OpenApi(prefix_path = "/api", tag = "ApiTags::Application")]
impl ApplicationApi {
    /// Create an application in an environment. Members need `canCreateServices`; the
    /// application joins their access list.
    #[oai(
        path = "/application.create",
        method = "post",
        operation_id = "application.create"
    )]
    async fn create(
        &self,
        st: Data<&State>,
        caller: Caller,
        body: Json<CreateApplication>,
    ) -> ApiResult<Json<ApplicationView>> {
        let b = &body.0;
        let a = res::create_application(
            &st,
            &caller.0,
            &EnvironmentId(b.environment_id.0.clone()),
            &b.name,
            opt(&b.app_name),
            opt(&b.description),
        )
        .await?;
        Ok(Json((&a).into()))
    }

    /// One application.
    #[oai(
        path = "/application.one",
        method = "get",
        operation_id = "application.one"
    )]
    async fn one(
        &self,
        st: Data<&State>,
        caller: Caller,
        /// The application's id.
        #[oai(name = "applicationId")]
        application_id: Query<String>,
    ) -> ApiResult<Json<ApplicationView>> {
        let a = res::one_application(&st, &caller.0, &ApplicationId(application_id.0))?;
        Ok(Json((&a).into()))
    }

    /// Change an application's name, description or appName. Members need
    /// `canCreateServices`.
    #[oai(
        path = "/application.update",
        method = "post",
        operation_id = "application.update"
    )]
    async fn update(
        &self,
        st: Data<&State>,
        caller: Caller,
        body: Json<UpdateApplication>,
    ) -> ApiResult<Json<ApplicationView>> {
        let b = &body.0;
        let a = res::update_application(
            &st,
            &caller.0,
            &ApplicationId(b.application_id.0.clone()),
            opt(&b.name),
            opt(&b.description),
            opt(&b.app_name),
        )
        .await?;
        Ok(Json((&a).into()))
    }

    /// Delete an application. Members need `canDeleteServices`.
    #[oai(
        path = "/application.delete",
        method = "post",
        operation_id = "application.delete"
    )]
    async fn delete(
        &self,
        st: Data<&State>,
        caller: Caller,
        body: Json<ApplicationRef>,
    ) -> ApiResult<Json<ApplicationView>> {
        let a = res::delete_application(&st, &caller.0, &ApplicationId(body.0.application_id.0))
            .await?;
        Ok(Json((&a).into()))
    }

    /// Applications whose name, appName or description contains `q`, optionally within
    /// one project or environment, newest first.
    #[oai(
        path = "/application.search",
        method = "get",
        operation_id = "application.search"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn search(
        &self,
        st: Data<&State>,
        caller: Caller,
        /// Text to look for; all applications when absent.
        q: Query<Option<String>>,
        /// Only this project's applications.
        #[oai(name = "projectId")]
        project_id: Query<Option<String>>,
        /// Only this environment's applications.
        #[oai(name = "environmentId")]
        environment_id: Query<Option<String>>,
        /// Page size, 1-100 (default 20).
        limit: Query<Option<Int<1, 100>>>,
        /// How many to skip (default 0).
        offset: Query<Option<Int<0>>>,
    ) -> ApiResult<Json<ApplicationPage>> {
        let query = AppQuery {
            q: q.0.as_deref(),
            project: project_id.0.map(ProjectId),
            environment: environment_id.0.map(EnvironmentId),
            limit: limit.0.map(|v| v.0),
            offset: offset.0.map(|v| v.0),
        };
        let page = res::search_applications(&st, &caller.0, query)?;
        Ok(Json(ApplicationPage {
            items: page.items.iter().map(ApplicationView::from).collect(),
            total: page.total,
        }))
    }
}
