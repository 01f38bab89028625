//! `domain.*`: Dokploy's procedures and field names for the hosts and path prefixes that
//! forward auth maps to applications.

use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::ApiTags;
use super::authz::at_most;
use super::error::ApiResult;
use super::security::Caller;
use super::text::Text;
use crate::clock::rfc3339;
use crate::domain::State;
use crate::domain::resources::domains::{self, DomainChanges, NewDomain};
use crate::error::{AllChecked, Result, field};
use crate::model::{ApplicationId, Domain, DomainHost, DomainId, DomainPath};

/// The longest host as sent: twice the longest host name, for a port and spaces.
const HOST_MAX: usize = 506;
/// A host as sent.
type HostText = Text<1, HOST_MAX>;
type PathText = Text<0, { DomainPath::MAX }>;

/// A host as sent, within the length the spec documents, parsed.
fn host(raw: &str) -> std::result::Result<DomainHost, String> {
    at_most(raw, HOST_MAX).and_then(|h| DomainHost::parse(h).map_err(str::to_owned))
}

/// A path prefix as sent, within the length the spec documents, parsed.
fn path(raw: &str) -> std::result::Result<DomainPath, String> {
    at_most(raw, DomainPath::MAX).and_then(|p| DomainPath::parse(p).map_err(str::to_owned))
}

/// A new domain.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct CreateDomain {
    /// The application requests to this host and path are for.
    pub application_id: Text,
    /// Host name or IP address; lower-cased, without port, international names in their
    /// ASCII (IDNA) form. With `path`, unique on the server.
    pub host: HostText,
    /// Path prefix, `/` by default: it holds itself and everything below it, segment by
    /// segment (`/api` holds `/api/v1`, not `/apix`).
    pub path: Option<PathText>,
}

impl CreateDomain {
    fn parse(self) -> Result<NewDomain> {
        let (host, path) = (
            field("host", host(&self.host)),
            field("path", path(self.path.as_deref().unwrap_or("/"))),
        )
            .all()?;
        Ok(NewDomain {
            application_id: ApplicationId(self.application_id.0),
            host,
            path,
        })
    }
}

/// Changes to a domain.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct UpdateDomain {
    /// The domain's id.
    pub domain_id: Text,
    /// A new host.
    pub host: Option<HostText>,
    /// A new path prefix.
    pub path: Option<PathText>,
}

impl UpdateDomain {
    fn parse(self) -> Result<(DomainId, DomainChanges)> {
        let (host, path) = (
            field("host", self.host.as_deref().map(host).transpose()),
            field("path", self.path.as_deref().map(path).transpose()),
        )
            .all()?;
        Ok((DomainId(self.domain_id.0), DomainChanges { host, path }))
    }
}

/// Names a domain.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct DomainRef {
    /// The domain's id.
    pub domain_id: Text,
}

pub struct DomainApi;

#[OpenApi(prefix_path = "/api", tag = "ApiTags::Domain")]
impl DomainApi {
    /// Give an application a host and path prefix, which forward auth then guards.
    /// Members need `canCreateServices` and the application in their lists.
    #[oai(
        path = "/domain.create",
        method = "post",
        operation_id = "domain.create"
    )]
    async fn create(
        &self,
        st: Data<&State>,
        caller: Caller,
        body: Json<CreateDomain>,
    ) -> ApiResult<Json<DomainView>> {
        let d = domains::create(&st, &caller.0, body.0.parse()?).await?;
        Ok(Json((&d).into()))
    }

    /// One domain.
    #[oai(path = "/domain.one", method = "get", operation_id = "domain.one")]
    async fn one(
        &self,
        st: Data<&State>,
        caller: Caller,
        /// The domain's id.
        #[oai(name = "domainId")]
        domain_id: Query<String>,
    ) -> ApiResult<Json<DomainView>> {
        let d = domains::one(&st, &caller.0, &DomainId(domain_id.0))?;
        Ok(Json((&d).into()))
    }

    /// The domains of an application, oldest first (at most 100).
    #[oai(
        path = "/domain.byApplicationId",
        method = "get",
        operation_id = "domain.byApplicationId"
    )]
    async fn by_application(
        &self,
        st: Data<&State>,
        caller: Caller,
        /// The application's id.
        #[oai(name = "applicationId")]
        application_id: Query<String>,
    ) -> ApiResult<Json<Vec<DomainView>>> {
        let all = domains::of_application(&st, &caller.0, &ApplicationId(application_id.0))?;
        Ok(Json(all.iter().map(DomainView::from).collect()))
    }

    /// Change a domain's host or path prefix. Members need `canCreateServices`.
    #[oai(
        path = "/domain.update",
        method = "post",
        operation_id = "domain.update"
    )]
    async fn update(
        &self,
        st: Data<&State>,
        caller: Caller,
        body: Json<UpdateDomain>,
    ) -> ApiResult<Json<DomainView>> {
        let (id, changes) = body.0.parse()?;
        let d = domains::update(&st, &caller.0, &id, changes).await?;
        Ok(Json((&d).into()))
    }

    /// Delete a domain: forward auth denies its requests from the next one on. Members
    /// need `canDeleteServices`.
    #[oai(
        path = "/domain.delete",
        method = "post",
        operation_id = "domain.delete"
    )]
    async fn delete(
        &self,
        st: Data<&State>,
        caller: Caller,
        body: Json<DomainRef>,
    ) -> ApiResult<Json<DomainView>> {
        let d = domains::delete(&st, &caller.0, &DomainId(body.0.domain_id.0)).await?;
        Ok(Json((&d).into()))
    }
}

/// A domain.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct DomainView {
    /// The domain's id.
    pub domain_id: String,
    /// Its application.
    pub application_id: String,
    /// Host, normalized.
    pub host: String,
    /// Path prefix, normalized.
    pub path: String,
    /// When it was created (RFC 3339).
    pub created_at: String,
}

impl From<&Domain> for DomainView {
    fn from(d: &Domain) -> Self {
        DomainView {
            domain_id: d.id.to_string(),
            application_id: d.application_id.to_string(),
            host: d.host.clone(),
            path: d.path.clone(),
            created_at: rfc3339(d.created_at),
        }
    }
}
