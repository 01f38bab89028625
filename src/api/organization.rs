//! `organization.*`: organizations, invitations and member roles.

use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::ApiTags;
use super::error::ApiResult;
use super::listing::{Limit, Listed, Offset, paging};
use super::security::Caller;
use super::text::{RoleName, Text};
use super::views::{InvitationView, MemberView, OrganizationView, Success};
use crate::domain::invitations::{self, Ticket};
use crate::domain::{State, members, orgs};
use crate::error::{Checks, Error};
use crate::model::{InvitationId, MemberId, OrgId};

/// A new organization.
#[derive(Debug, Object)]
pub struct CreateOrganization {
    /// Its name, 1-255 characters.
    pub name: Text<1, { crate::domain::accounts::NAME_MAX }>,
}

/// Names an organization.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct OrganizationRef {
    /// The organization's id.
    pub organization_id: Text,
}

/// What changes in an organization: its name, whether it requires two-factor, or both.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct UpdateOrganization {
    /// The organization's id.
    pub organization_id: Text,
    /// Its new name, 1-255 characters.
    pub name: Option<Text<1, { crate::domain::accounts::NAME_MAX }>>,
    /// Owner only: sessions of members without two-factor may then only turn it on
    /// (401 `two_factor_required` for the rest). API keys are unaffected. The owner must
    /// have two-factor on to turn this on.
    pub require_two_factor: Option<bool>,
}

/// Whom to invite.
#[derive(Debug, Object)]
pub struct InviteMember {
    /// The invitee's email address.
    pub email: Text<1, { crate::model::Email::MAX }>,
    /// `admin` or `member`.
    pub role: RoleName,
}

/// Names an invitation.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct InvitationRef {
    /// The invitation's id.
    pub invitation_id: Text,
}

/// The invitation to accept: by id or by token.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct AcceptInvitation {
    /// The invitation's id.
    pub invitation_id: Option<Text>,
    /// The invitation's token.
    #[oai(write_only)]
    pub token: Option<Text>,
}

/// A new role for a member.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct UpdateMemberRole {
    /// The membership's id (`id` in `user.all`).
    pub member_id: Text,
    /// `admin` or `member`.
    pub role: RoleName,
}

pub struct OrganizationApi;

#[OpenApi(prefix_path = "/api", tag = "ApiTags::Organization")]
impl OrganizationApi {
    /// Create an organization; the caller becomes its owner. Sessions only.
    #[oai(
        path = "/organization.create",
        method = "post",
        operation_id = "organization.create"
    )]
    async fn create(
        &self,
        st: Data<&State>,
        caller: Caller,
        body: Json<CreateOrganization>,
    ) -> ApiResult<Json<OrganizationView>> {
        let (o, role) = orgs::create(&st, &caller.0, &body.name).await?;
        Ok(Json(OrganizationView::new(&o, role)))
    }

    /// One page of the caller's organizations, with the caller's role in each, in the
    /// order it joined them. An API key sees only its own organization. `X-Total-Count`
    /// says how many there are in all.
    #[oai(
        path = "/organization.all",
        method = "get",
        operation_id = "organization.all"
    )]
    async fn all(
        &self,
        st: Data<&State>,
        caller: Caller,
        /// Page size, 1-100 (default 100).
        limit: Query<Option<Limit>>,
        /// How many organizations to skip (default 0).
        offset: Query<Option<Offset>>,
    ) -> ApiResult<Listed<OrganizationView>> {
        let page = orgs::all(&st, &caller.0, paging(limit.0, offset.0)?)?;
        Ok(Listed::new(&page, |(o, r)| OrganizationView::new(o, *r)))
    }

    /// One organization the caller is a member of.
    #[oai(
        path = "/organization.one",
        method = "get",
        operation_id = "organization.one"
    )]
    async fn one(
        &self,
        st: Data<&State>,
        caller: Caller,
        /// The organization's id.
        #[oai(name = "organizationId")]
        organization_id: Query<String>,
    ) -> ApiResult<Json<OrganizationView>> {
        let (o, m) = orgs::one(&st, &caller.0, &OrgId(organization_id.0))?;
        Ok(Json(OrganizationView::new(&o, m.role)))
    }

    /// Rename an organization (owner or admin), or require two-factor in it (owner).
    #[oai(
        path = "/organization.update",
        method = "post",
        operation_id = "organization.update"
    )]
    async fn update(
        &self,
        st: Data<&State>,
        caller: Caller,
        body: Json<UpdateOrganization>,
    ) -> ApiResult<Json<OrganizationView>> {
        let b = body.0;
        let (o, m) = orgs::update(
            &st,
            &caller.0,
            &OrgId(b.organization_id.0),
            b.name.as_deref(),
            b.require_two_factor,
        )
        .await?;
        Ok(Json(OrganizationView::new(&o, m.role)))
    }

    /// Delete an organization and everything in it (owner only). A user keeps at least one
    /// organization.
    #[oai(
        path = "/organization.delete",
        method = "post",
        operation_id = "organization.delete"
    )]
    async fn delete(
        &self,
        st: Data<&State>,
        caller: Caller,
        body: Json<OrganizationRef>,
    ) -> ApiResult<Json<Success>> {
        orgs::delete(&st, &caller.0, &OrgId(body.0.organization_id.0)).await?;
        Ok(Json(Success::yes()))
    }

    /// Make an organization the session's active one. Sessions only.
    #[oai(
        path = "/organization.setActive",
        method = "post",
        operation_id = "organization.setActive"
    )]
    async fn set_active(
        &self,
        st: Data<&State>,
        caller: Caller,
        body: Json<OrganizationRef>,
    ) -> ApiResult<Json<OrganizationView>> {
        let (o, m) = orgs::set_active(&st, &caller.0, &OrgId(body.0.organization_id.0)).await?;
        Ok(Json(OrganizationView::new(&o, m.role)))
    }

    /// The organization the request acts in: the session's active one, or the API key's.
    #[oai(
        path = "/organization.active",
        method = "get",
        operation_id = "organization.active"
    )]
    async fn active(&self, st: Data<&State>, caller: Caller) -> ApiResult<Json<OrganizationView>> {
        let (o, m) = orgs::active(&st, &caller.0)?;
        Ok(Json(OrganizationView::new(&o, m.role)))
    }

    /// Invite someone to the active organization as `admin` or `member` (owner or admin).
    /// The answer holds the invitation's token once; it expires after 48 hours.
    #[oai(
        path = "/organization.inviteMember",
        method = "post",
        operation_id = "organization.inviteMember"
    )]
    async fn invite_member(
        &self,
        st: Data<&State>,
        caller: Caller,
        body: Json<InviteMember>,
    ) -> ApiResult<Json<InvitationView>> {
        let (inv, token) = invitations::invite(&st, &caller.0, &body.email, &body.role).await?;
        Ok(Json(InvitationView::new(&inv, Some(token))))
    }

    /// One page of the active organization's invitations, in the order they were sent
    /// (owner or admin). `X-Total-Count` says how many there are in all.
    #[oai(
        path = "/organization.allInvitations",
        method = "get",
        operation_id = "organization.allInvitations"
    )]
    async fn all_invitations(
        &self,
        st: Data<&State>,
        caller: Caller,
        /// Page size, 1-100 (default 100).
        limit: Query<Option<Limit>>,
        /// How many invitations to skip (default 0).
        offset: Query<Option<Offset>>,
    ) -> ApiResult<Listed<InvitationView>> {
        let page = invitations::all(&st, &caller.0, paging(limit.0, offset.0)?)?;
        Ok(Listed::new(&page, |i| InvitationView::new(i, None)))
    }

    /// Cancel a pending invitation (owner or admin).
    #[oai(
        path = "/organization.removeInvitation",
        method = "post",
        operation_id = "organization.removeInvitation"
    )]
    async fn remove_invitation(
        &self,
        st: Data<&State>,
        caller: Caller,
        body: Json<InvitationRef>,
    ) -> ApiResult<Json<InvitationView>> {
        let inv =
            invitations::remove(&st, &caller.0, &InvitationId(body.0.invitation_id.0)).await?;
        Ok(Json(InvitationView::new(&inv, None)))
    }

    /// Accept an invitation sent to the caller's email, by id or token. The session then
    /// acts in the new organization. Sessions only.
    #[oai(
        path = "/organization.acceptInvitation",
        method = "post",
        operation_id = "organization.acceptInvitation"
    )]
    async fn accept_invitation(
        &self,
        st: Data<&State>,
        caller: Caller,
        body: Json<AcceptInvitation>,
    ) -> ApiResult<Json<MemberView>> {
        let ticket = match (body.0.invitation_id, body.0.token) {
            (Some(id), None) => Ticket::Id(InvitationId(id.0)),
            (None, Some(t)) => Ticket::Token(t.0),
            _ => {
                let mut c = Checks::new();
                c.fail("invitationId", "give exactly one of invitationId and token");
                c.finish()?;
                return Err(Error::internal("unreachable").into());
            }
        };
        let m = invitations::accept(&st, &caller.0, ticket).await?;
        Ok(Json(MemberView::new(&m, None)))
    }

    /// Change a member's role to `admin` or `member` (owner or admin; admins cannot change
    /// other admins, nobody changes the owner or itself).
    #[oai(
        path = "/organization.updateMemberRole",
        method = "post",
        operation_id = "organization.updateMemberRole"
    )]
    async fn update_member_role(
        &self,
        st: Data<&State>,
        caller: Caller,
        body: Json<UpdateMemberRole>,
    ) -> ApiResult<Json<MemberView>> {
        let b = body.0;
        let m = members::update_role(&st, &caller.0, &MemberId(b.member_id.0), &b.role).await?;
        Ok(Json(MemberView::new(&m, None)))
    }
}
