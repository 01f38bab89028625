//! `project.*`: Dokploy's procedures and field names. Request bodies become the
//! domain's parsed inputs here, with every field's problem named in one 400.

use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::types::ToJSON;
use poem_openapi::{Object, OpenApi};

use super::ApiTags;
use super::error::ApiResult;
use super::raw::RawJson;
use super::security::Caller;
use super::text::{Int, Text};
use super::views::EnvironmentView;
use crate::clock::rfc3339;
use crate::domain::State;
use crate::domain::resources::projects::{NewProject, ProjectChanges};
use crate::domain::resources::{self, ProjectTree, projects};
use crate::error::{AllChecked, Result, field};
use crate::model::{Project, ProjectId};

/// A new project.
#[derive(Debug, Object)]
pub struct CreateProject {
    /// 1-255 characters.
    pub name: Text<1, { resources::NAME_MAX }>,
    /// Up to 10,000 characters.
    pub description: Option<Text<0, { crate::model::DESCRIPTION_MAX }>>,
}

impl CreateProject {
    /// The project the body asks for; a 400 names every field that is wrong.
    fn parse(self) -> Result<NewProject> {
        let (name, description) = (
            field("name", resources::name(&self.name)),
            field(
                "description",
                resources::description(self.description.as_deref()),
            ),
        )
            .all()?;
        Ok(NewProject { name, description })
    }
}

/// Changes to a project.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct UpdateProject {
    /// The project's id.
    pub project_id: Text,
    /// A new name, 1-255 characters.
    pub name: Option<Text<1, { resources::NAME_MAX }>>,
    /// A new description, up to 10,000 characters; an empty string clears it.
    pub description: Option<Text<0, { crate::model::DESCRIPTION_MAX }>>,
}

impl UpdateProject {
    /// The project and the changes the body asks for; a 400 names every field that is
    /// wrong.
    fn parse(self) -> Result<(ProjectId, ProjectChanges)> {
        let (name, description) = (
            field(
                "name",
                self.name.as_deref().map(resources::name).transpose(),
            ),
            field(
                "description",
                resources::description_change(self.description.as_deref()),
            ),
        )
            .all()?;
        let changes = ProjectChanges { name, description };
        Ok((ProjectId(self.project_id.0), changes))
    }
}

/// Names a project.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct ProjectRef {
    /// The project's id.
    pub project_id: Text,
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
        let (p, e) = projects::create(&st, &caller.0, body.0.parse()?).await?;
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
    ) -> ApiResult<Json<ProjectTreeView>> {
        let t = projects::one(&st, &caller.0, &ProjectId(project_id.0))?;
        Ok(Json(ProjectTreeView::new(&t)))
    }

    /// The organization's projects the caller may see, newest first, each with its
    /// environments and their applications.
    #[oai(path = "/project.all", method = "get", operation_id = "project.all")]
    async fn all(
        &self,
        st: Data<&State>,
        caller: Caller,
    ) -> ApiResult<RawJson<Vec<ProjectTreeView>>> {
        let render = |trees: &[ProjectTree]| {
            let views: Vec<ProjectTreeView> = trees.iter().map(ProjectTreeView::new).collect();
            views.to_json_string()
        };
        Ok(RawJson::new(projects::all(&st, &caller.0, render)?))
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
        let (id, changes) = body.0.parse()?;
        let p = projects::update(&st, &caller.0, &id, changes).await?;
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
        let p = projects::remove(&st, &caller.0, &ProjectId(body.0.project_id.0)).await?;
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
        let page = projects::search(
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
}

/// A project with its environments and their applications, as `project.one` and
/// `project.all` answer.
#[derive(Debug, Clone, Object)]
pub struct ProjectTreeView {
    #[oai(flatten)]
    pub project: ProjectView,
    /// Its environments that the caller may see, each with its applications.
    pub environments: Vec<EnvironmentView>,
}

impl ProjectTreeView {
    fn new(t: &ProjectTree) -> ProjectTreeView {
        ProjectTreeView {
            project: ProjectView::flat(&t.project),
            environments: t
                .environments
                .iter()
                .map(|(e, apps)| EnvironmentView::new(e, apps))
                .collect(),
        }
    }
}

impl ProjectView {
    fn flat(p: &Project) -> ProjectView {
        ProjectView {
            project_id: p.id.to_string(),
            name: p.name.clone(),
            description: p.description.clone(),
            organization_id: p.organization_id.to_string(),
            created_at: rfc3339(p.created_at),
        }
    }
}

/// A new project and its default environment.
#[derive(Debug, Object)]
pub struct CreatedProject {
    /// The project.
    pub project: ProjectView,
    /// Its default environment, `production`.
    pub environment: EnvironmentView,
}

/// A page of projects.
#[derive(Debug, Object)]
pub struct ProjectPage {
    /// The projects on this page, newest first.
    pub items: Vec<ProjectView>,
    /// How many match in all.
    pub total: u64,
}
