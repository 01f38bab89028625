//! `application.*`: Dokploy's procedures and field names. Request bodies become the
//! domain's parsed inputs here, with every field's problem named in one 400.

use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::ApiTags;
use super::error::ApiResult;
use super::security::Caller;
use super::text::{AppNameText, Int, Text};
use crate::clock::rfc3339;
use crate::domain::State;
use crate::domain::resources;
use crate::domain::resources::applications::{self, AppQuery, ApplicationChanges, NewApplication};
use crate::error::{AllChecked, Result, field};
use crate::model::{AppName, Application, ApplicationId, EnvironmentId, ProjectId};

/// A new application.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct CreateApplication {
    /// Display name, 1-255 characters.
    pub name: Text<1, { resources::NAME_MAX }>,
    /// The environment it runs in.
    pub environment_id: Text,
    /// Technical name, unique in the organization; generated from the name when absent.
    pub app_name: Option<AppNameText>,
    /// Up to 10,000 characters.
    pub description: Option<Text<0, { crate::model::DESCRIPTION_MAX }>>,
}

impl CreateApplication {
    /// The application the body asks for; a 400 names every field that is wrong.
    fn parse(self) -> Result<NewApplication> {
        let (name, app_name, description) = (
            field("name", resources::name(&self.name)),
            field(
                "appName",
                self.app_name.as_deref().map(AppName::parse).transpose(),
            ),
            field(
                "description",
                resources::description(self.description.as_deref()),
            ),
        )
            .all()?;
        Ok(NewApplication {
            environment_id: EnvironmentId(self.environment_id.0),
            name,
            app_name,
            description,
        })
    }
}

/// Changes to an application.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct UpdateApplication {
    /// The application's id.
    pub application_id: Text,
    /// A new display name.
    pub name: Option<Text<1, { resources::NAME_MAX }>>,
    /// A new description; an empty string clears it.
    pub description: Option<Text<0, { crate::model::DESCRIPTION_MAX }>>,
    /// A new technical name, unique in the organization.
    pub app_name: Option<AppNameText>,
}

impl UpdateApplication {
    /// The application and the changes the body asks for; a 400 names every field that
    /// is wrong.
    fn parse(self) -> Result<(ApplicationId, ApplicationChanges)> {
        let (name, description, app_name) = (
            field(
                "name",
                self.name.as_deref().map(resources::name).transpose(),
            ),
            field(
                "description",
                resources::description_change(self.description.as_deref()),
            ),
            field(
                "appName",
                self.app_name.as_deref().map(AppName::parse).transpose(),
            ),
        )
            .all()?;
        let changes = ApplicationChanges {
            name,
            description,
            app_name,
        };
        Ok((ApplicationId(self.application_id.0), changes))
    }
}

/// Names an application.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct ApplicationRef {
    /// The application's id.
    pub application_id: Text,
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
        let a = applications::create(&st, &caller.0, body.0.parse()?).await?;
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
        let a = applications::one(&st, &caller.0, &ApplicationId(application_id.0))?;
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
        let (id, changes) = body.0.parse()?;
        let a = applications::update(&st, &caller.0, &id, changes).await?;
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
        let a =
            applications::delete(&st, &caller.0, &ApplicationId(body.0.application_id.0)).await?;
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
        let page = applications::search(&st, &caller.0, query)?;
        Ok(Json(ApplicationPage {
            items: page.items.iter().map(ApplicationView::from).collect(),
            total: page.total,
        }))
    }
}

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

/// A page of applications.
#[derive(Debug, Object)]
pub struct ApplicationPage {
    /// The applications on this page, newest first.
    pub items: Vec<ApplicationView>,
    /// How many match in all.
    pub total: u64,
}
