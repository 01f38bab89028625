//! `environment.*`: Dokploy's procedures and field names. Request bodies become the
//! domain's parsed inputs here, with every field's problem named in one 400.

use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::ApiTags;
use super::error::ApiResult;
use super::security::Caller;
use super::text::Text;
use super::views::EnvironmentView;
use crate::domain::State;
use crate::domain::resources;
use crate::domain::resources::environments::{
    self, EnvironmentChanges, EnvironmentName, NewEnvironment, Rename,
};
use crate::error::{AllChecked, Result, field};
use crate::model::{EnvironmentId, ProjectId};

/// A new environment.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct CreateEnvironment {
    /// The project it belongs to.
    pub project_id: Text,
    /// 1-255 characters; `production` is reserved.
    pub name: Text<1, { resources::NAME_MAX }>,
    /// Up to 10,000 characters.
    pub description: Option<Text<0, { crate::model::DESCRIPTION_MAX }>>,
}

impl CreateEnvironment {
    /// The environment the body asks for; a 400 names every field that is wrong.
    fn parse(self) -> Result<NewEnvironment> {
        let (name, description) = (
            field("name", EnvironmentName::parse(&self.name)),
            field(
                "description",
                resources::description(self.description.as_deref()),
            ),
        )
            .all()?;
        Ok(NewEnvironment {
            project_id: ProjectId(self.project_id.0),
            name,
            description,
        })
    }
}

/// Changes to an environment.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct UpdateEnvironment {
    /// The environment's id.
    pub environment_id: Text,
    /// A new name (not for the default environment).
    pub name: Option<Text<1, { resources::NAME_MAX }>>,
    /// A new description; an empty string clears it.
    pub description: Option<Text<0, { crate::model::DESCRIPTION_MAX }>>,
}

impl UpdateEnvironment {
    /// The environment and the changes the body asks for; a 400 names a wrong
    /// description. A wrong name counts only once the environment is known (see
    /// `Rename`).
    fn parse(self) -> Result<(EnvironmentId, EnvironmentChanges)> {
        let description = field(
            "description",
            resources::description_change(self.description.as_deref()),
        )?;
        let changes = EnvironmentChanges {
            name: self.name.as_deref().map(Rename::parse),
            description,
        };
        Ok((EnvironmentId(self.environment_id.0), changes))
    }
}

/// Names an environment.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct EnvironmentRef {
    /// The environment's id.
    pub environment_id: Text,
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
        let e = environments::create(&st, &caller.0, body.0.parse()?).await?;
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
        let (e, apps) = environments::one(&st, &caller.0, &EnvironmentId(environment_id.0))?;
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
        let list = environments::by_project_id(&st, &caller.0, &ProjectId(project_id.0))?;
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
        let (id, changes) = body.0.parse()?;
        let (e, apps) = environments::update(&st, &caller.0, &id, changes).await?;
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
        let e =
            environments::remove(&st, &caller.0, &EnvironmentId(body.0.environment_id.0)).await?;
        Ok(Json(EnvironmentView::new(&e, &[])))
    }
}
