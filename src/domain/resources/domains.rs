//! `domain.*`: the hosts and path prefixes of an application, which forward auth routes
//! by. A host and path pair is unique on the server; members see and change only the
//! domains of applications in their lists.

use super::visible_application;
use crate::auth::token;
use crate::domain::State;
use crate::domain::access::Actor;
use crate::domain::audit;
use crate::domain::in_own_org;
use crate::domain::policy::{self, op};
use crate::error::{Clash, Error, Reason, Result};
use crate::model::{ApplicationId, Domain, DomainHost, DomainId, DomainPath};
use crate::store::domains as ds;

/// The most domains one application may have: `domain.byApplicationId` answers them all.
pub const PER_APPLICATION_MAX: u64 = 100;

/// A domain to create.
#[derive(Debug)]
pub struct NewDomain {
    pub application_id: ApplicationId,
    pub host: DomainHost,
    pub path: DomainPath,
}

/// Changes to a domain; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct DomainChanges {
    pub host: Option<DomainHost>,
    pub path: Option<DomainPath>,
}

/// `domain.create`.
pub async fn create(st: &State, actor: &Actor, new: NewDomain) -> Result<Domain> {
    let auth = policy::authorize::<op::DomainCreate>(actor)?;
    let (app, _) = visible_application(st, actor, &new.application_id)?;
    let d = Domain {
        id: DomainId(token::new_id()),
        application_id: app.id,
        organization_id: app.organization_id,
        host: new.host.into_string(),
        path: new.path.into_string(),
        created_at: st.now(),
    };
    let row = d.clone();
    let event = audit::by(actor, "domain.create", d.created_at)
        .resource("domain", d.id.as_str())
        .details(domain_details(&d));
    st.write(&auth, move |tx| {
        if ds::count_of_application(tx, &row.application_id)? >= PER_APPLICATION_MAX {
            return Err(Error::invalid(
                crate::error::Invalid::TooManyDomains,
                format!("An application has at most {PER_APPLICATION_MAX} domains"),
            ));
        }
        if ds::taken(tx, &row.host, &row.path, None)? {
            return Err(taken());
        }
        ds::insert(tx, &row)?;
        tx.audit(event);
        Ok(())
    })
    .await?;
    Ok(d)
}

/// `domain.one`.
pub fn one(st: &State, actor: &Actor, id: &DomainId) -> Result<Domain> {
    visible(st, actor, id)
}

/// `domain.byApplicationId`: the application's domains, oldest first.
pub fn of_application(st: &State, actor: &Actor, id: &ApplicationId) -> Result<Vec<Domain>> {
    let (app, _) = visible_application(st, actor, id)?;
    st.read(|c| ds::of_application(c, &app.organization_id, &app.id))
}

/// `domain.update`: host and path, unique on the server.
pub async fn update(
    st: &State,
    actor: &Actor,
    id: &DomainId,
    changes: DomainChanges,
) -> Result<Domain> {
    let auth = policy::authorize::<op::DomainUpdate>(actor)?;
    let mut d = visible(st, actor, id)?;
    if let Some(h) = changes.host {
        d.host = h.into_string();
    }
    if let Some(p) = changes.path {
        d.path = p.into_string();
    }
    let row = d.clone();
    let event = audit::by(actor, "domain.update", st.now())
        .resource("domain", d.id.as_str())
        .details(domain_details(&d));
    st.write(&auth, move |tx| {
        if ds::taken(tx, &row.host, &row.path, Some(&row.id))? {
            return Err(taken());
        }
        ds::update(tx, &row)?;
        tx.audit(event);
        Ok(())
    })
    .await?;
    Ok(d)
}

/// `domain.delete`.
pub async fn delete(st: &State, actor: &Actor, id: &DomainId) -> Result<Domain> {
    let auth = policy::authorize::<op::DomainDelete>(actor)?;
    let d = visible(st, actor, id)?;
    let (org, did) = (d.organization_id.clone(), d.id.clone());
    let event = audit::by(actor, "domain.delete", st.now())
        .resource("domain", d.id.as_str())
        .details(domain_details(&d));
    st.write(&auth, move |tx| {
        ds::delete(tx, &org, &did)?;
        tx.audit(event);
        Ok(())
    })
    .await?;
    Ok(d)
}

/// What the log says of a domain: where it points.
fn domain_details(d: &Domain) -> serde_json::Value {
    serde_json::json!({
        "host": d.host,
        "path": d.path,
        "applicationId": d.application_id.as_str(),
    })
}

/// The domain, when the caller may see its application: 404 when it exists nowhere, 401
/// `wrong_organization` in another organization.
fn visible(st: &State, actor: &Actor, id: &DomainId) -> Result<Domain> {
    let org = &actor.member()?.organization_id;
    let d = st.read(|c| in_own_org(c, ds::in_org(c, org, id)?, "domain", |c| ds::locate(c, id)))?;
    match visible_application(st, actor, &d.application_id) {
        Ok(_) => Ok(d),
        Err(Error::NotFound(_)) => Err(Error::Denied(Reason::PermissionDenied)),
        Err(e) => Err(e),
    }
}

fn taken() -> Error {
    Error::conflict(
        Clash::DomainTaken,
        "Another domain of this server already has this host and path",
    )
}
