//! `user.*`: the caller itself, and the members of the active organization.

use poem::Request;
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::types::ToJSON;
use poem_openapi::{Object, OpenApi};

use super::ApiTags;
use super::error::ApiResult;
use super::listing::{Limit, Listed, Offset, paging};
use super::raw::RawJson;
use super::security::{Caller, dashboard_base};
use super::text::{Int, KeyPrefix, RoleName, Text};
use super::views::{
    ApiKeyView, CreatedApiKey, MemberView, PermissionsView, ScopeView, SessionView, Success,
    UserView,
};
use crate::clock::{parse_rfc3339, rfc3339};
use crate::domain::accounts::NewUser;
use crate::domain::members::{self, Assignment};
use crate::domain::{State, keys, recovery, users};
use crate::error::{AllChecked, field};
use crate::model::{ApiKey, ApiKeyId, Flags, Paging, SessionId, UserId};

/// A member with its permissions, as `user.one` answers.
#[derive(Debug, Object)]
pub struct MemberDetail {
    #[oai(flatten)]
    pub member: MemberView,
    /// Its flags and access lists in the organization.
    pub permissions: PermissionsView,
}

/// The caller, with its membership in the organization the request acts in.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct Me {
    /// The caller.
    pub user: UserView,
    /// Its membership in the active organization (absent when it has none).
    #[oai(skip_serializing_if_is_none)]
    pub member: Option<MemberView>,
    /// Its resolved permissions there.
    #[oai(skip_serializing_if_is_none)]
    pub permissions: Option<PermissionsView>,
    /// Its first 100 API keys, in the order they were made (an API key sees only those of
    /// its organization); `user.listApiKeys` pages through all of them.
    pub api_keys: Vec<ApiKeyView>,
    /// How many API keys it has in all (of its organization, for an API key): `apiKeys`
    /// lists the first 100 of them.
    pub api_keys_total: u64,
    /// Days without a request after which a key is marked `unused`
    /// (`--unused-key-days`).
    pub unused_key_days: u32,
}

/// The organization a new key acts in.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct KeyMetadata {
    /// The organization's id; the caller must be a member.
    pub organization_id: Text,
}

/// A new API key (Dokploy's field names and units).
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct CreateApiKey {
    /// 1-32 characters.
    pub name: Text<1, { crate::domain::keys::NAME_MAX }>,
    /// Which organization the key acts in.
    pub metadata: KeyMetadata,
    /// 1-32 characters of `[a-zA-Z0-9_-]` before the `_` (default `kg`).
    pub prefix: Option<KeyPrefix>,
    /// Seconds until it expires, 86400 (1 day) to 31536000 (365 days); never by default.
    pub expires_in: Option<Int<86400, 31536000>>,
    /// Limit the request rate (default: on when `rateLimitMax` is given).
    pub rate_limit_enabled: Option<bool>,
    /// The rate limit's window in milliseconds, 1000 to 86400000 (default one day).
    pub rate_limit_time_window: Option<Int<1000, 86400000>>,
    /// Requests allowed per window, 1 to 1000000.
    pub rate_limit_max: Option<Int<1, 1000000>>,
    /// A quota of requests; absent means unlimited.
    pub remaining: Option<Int<0>>,
    /// Refill the quota to this many requests...
    pub refill_amount: Option<Int<1>>,
    /// ...every this many milliseconds (1000 to 31536000000, 365 days).
    pub refill_interval: Option<Int<1000, 31536000000>>,
    /// Narrow the key below its user's rights.
    pub scope: Option<ScopeView>,
}

/// Names a key.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct ApiKeyRef {
    /// The key's id.
    pub api_key_id: Text,
}

/// Changes to a key.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct UpdateApiKey {
    /// The key's id.
    pub api_key_id: Text,
    /// A new name, 1-32 characters.
    pub name: Option<Text<1, { crate::domain::keys::NAME_MAX }>>,
    /// Enable or disable the key; a disabled key is refused at once.
    pub enabled: Option<bool>,
}

/// A rotation.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct RotateApiKey {
    /// The key's id.
    pub api_key_id: Text,
    /// How long the old secret keeps working, 0 (default) to 604800 seconds.
    pub grace_period_seconds: Option<Int<0, 604800>>,
}

/// Requests by outcome.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct UsageCounts {
    /// Admitted.
    pub ok: i64,
    /// Refused with 429 `rate_limited`.
    pub rate_limited: i64,
    /// Refused with 429 `usage_exceeded`: the quota was used up.
    pub usage_exceeded: i64,
    /// Refused with 401 for the key's own state: disabled, expired, an old secret past
    /// its grace period, a write with a read-only key, a user who may no longer use keys.
    pub refused: i64,
}

impl From<&keys::Outcomes> for UsageCounts {
    fn from(o: &keys::Outcomes) -> Self {
        UsageCounts {
            ok: o.ok,
            rate_limited: o.rate_limited,
            usage_exceeded: o.usage_exceeded,
            refused: o.refused,
        }
    }
}

/// One hour of a key's requests.
#[derive(Debug, Object)]
pub struct UsageHourView {
    /// The hour's start (RFC 3339).
    pub hour: String,
    #[oai(flatten)]
    pub counts: UsageCounts,
}

/// A key's requests per hour.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct ApiKeyUsage {
    /// The key's id.
    pub api_key_id: String,
    /// The first hour of the span (RFC 3339).
    pub from: String,
    /// The last hour of the span (RFC 3339), included.
    pub to: String,
    /// The hours of the span that counted a request, oldest first.
    pub hours: Vec<UsageHourView>,
    /// The counts of the whole span.
    pub totals: UsageCounts,
    /// When the key was last used (RFC 3339).
    #[oai(skip_serializing_if_is_none)]
    pub last_used_at: Option<String>,
    /// The client address of its last request.
    #[oai(skip_serializing_if_is_none)]
    pub last_address: Option<String>,
    /// The User-Agent of its last request (its first 256 bytes).
    #[oai(skip_serializing_if_is_none)]
    pub last_user_agent: Option<String>,
}

impl From<&keys::KeyUsage> for ApiKeyUsage {
    fn from(u: &keys::KeyUsage) -> Self {
        ApiKeyUsage {
            api_key_id: u.key.id.to_string(),
            from: rfc3339(u.from),
            to: rfc3339(u.to),
            hours: u
                .hours
                .iter()
                .map(|h| UsageHourView {
                    hour: rfc3339(h.hour),
                    counts: (&h.counts).into(),
                })
                .collect(),
            totals: (&u.totals()).into(),
            last_used_at: u.key.last_used_at.map(rfc3339),
            last_address: u.key.last_address.clone(),
            last_user_agent: u.key.last_user_agent.clone(),
        }
    }
}

/// A time of a query, as RFC 3339; a 400 names the field when it is not one.
fn time(name: &str, value: Option<String>) -> crate::error::Checked<Option<i64>> {
    let parsed = value
        .map(|v| parse_rfc3339(&v).ok_or("must be an RFC 3339 time, such as 2026-11-27T00:00:00Z"));
    field(name, parsed.transpose())
}

/// Changes to the caller's profile.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct UpdateUser {
    /// A new display name.
    pub name: Option<Text<1, { crate::domain::accounts::NAME_MAX }>>,
    /// The current password; required with `password`.
    #[oai(write_only)]
    pub current_password: Option<Text>,
    /// A new password, 8-128 characters. Ends the caller's other sessions.
    #[oai(write_only)]
    pub password: Option<Text<{ crate::model::Password::MIN }, { crate::model::Password::MAX }>>,
}

/// A session of the caller's.
#[derive(Debug, Object)]
pub struct SessionEntry {
    /// The session.
    pub session: SessionView,
    /// Whether this request came with it.
    pub current: bool,
}

/// Names a session.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct SessionRef {
    /// The session's id.
    pub session_id: Text,
}

/// Names a user.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct UserRef {
    /// The user's id.
    pub user_id: Text,
}

/// Defines `AssignPermissions`, with a field per permission flag of
/// `model::for_each_flag`.
macro_rules! assign_permissions {
    ($($(#[doc = $doc:tt])* $variant:ident $field:ident $name:tt,)*) => {
        /// New permissions for a member (Dokploy's names). Missing flags are false and missing
        /// lists empty: the call replaces everything.
        #[derive(Debug, Object)]
        #[oai(rename_all = "camelCase")]
        pub struct AssignPermissions {
            /// The member's user id.
            pub user_id: Text,
            $(
                $(#[doc = $doc])*
                #[oai(default, rename = $name)]
                pub $field: bool,
            )*
            /// Project ids the member may see.
            #[oai(default)]
            pub accessed_projects: Vec<Text>,
            /// Environment ids the member may see.
            #[oai(default)]
            pub accessed_environments: Vec<Text>,
            /// Application ids the member may see.
            #[oai(default)]
            pub accessed_services: Vec<Text>,
        }

        impl AssignPermissions {
            /// The flags it sets.
            fn flags(&self) -> Flags {
                Flags {
                    $($field: self.$field,)*
                }
            }
        }
    };
}

crate::model::for_each_flag!(assign_permissions);

/// A user to create directly into the active organization.
#[derive(Debug, Object)]
pub struct CreateUserWithCredentials {
    /// Email address.
    pub email: Text<1, { crate::model::Email::MAX }>,
    /// Password, 8-128 characters.
    #[oai(write_only)]
    pub password: Text<{ crate::model::Password::MIN }, { crate::model::Password::MAX }>,
    /// Display name.
    pub name: Text<1, { crate::domain::accounts::NAME_MAX }>,
    /// `admin` or `member`.
    pub role: RoleName,
}

/// A password-reset link for a member.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct PasswordReset {
    /// The link's secret, shown once: `auth.resetPassword` takes it with the new password.
    pub token: String,
    /// The dashboard's address with the token, `<public URL>/#reset=<token>` (without
    /// `--public-url`, the address the request was made to), to hand to the member. The
    /// token is in the fragment, which browsers never send to a server.
    pub url: String,
    /// When the link stops working (RFC 3339), one hour after it was made.
    pub expires_at: String,
}

/// A key as the API shows it.
fn key_view(st: &State, k: &ApiKey) -> ApiKeyView {
    ApiKeyView::new(k, keys::unused(st, k))
}

pub struct UserApi;

#[OpenApi(prefix_path = "/api", tag = "ApiTags::User")]
impl UserApi {
    /// The caller, its membership and permissions in the active organization.
    #[oai(path = "/user.get", method = "get", operation_id = "user.get")]
    async fn get(&self, st: Data<&State>, caller: Caller) -> ApiResult<Json<Me>> {
        let actor = &caller.0;
        let (member, permissions) = match actor.member() {
            Ok(m) => (
                Some(MemberView::new(m, None)),
                Some((&members::permissions(actor)?).into()),
            ),
            Err(_) => (None, None),
        };
        // A session that must turn two-factor on first sees its account, not the keys it
        // holds in the organization.
        let api_keys = if actor.two_factor_blocked() {
            crate::model::Page {
                items: Vec::new(),
                total: 0,
            }
        } else {
            keys::list(&st, actor, Paging::FIRST)?
        };
        Ok(Json(Me {
            user: actor.user().into(),
            member,
            permissions,
            api_keys: api_keys.items.iter().map(|k| key_view(&st, k)).collect(),
            api_keys_total: api_keys.total,
            unused_key_days: st.config.unused_key_days,
        }))
    }

    /// One page of the caller's API keys, in the order they were made, as `user.get` shows
    /// them (an API key sees only those of its organization). `X-Total-Count` says how
    /// many there are in all.
    #[oai(
        path = "/user.listApiKeys",
        method = "get",
        operation_id = "user.listApiKeys"
    )]
    async fn list_api_keys(
        &self,
        st: Data<&State>,
        caller: Caller,
        /// Page size, 1-100 (default 100).
        limit: Query<Option<Limit>>,
        /// How many keys to skip (default 0).
        offset: Query<Option<Offset>>,
    ) -> ApiResult<Listed<ApiKeyView>> {
        let page = keys::list(&st, &caller.0, paging(limit.0, offset.0)?)?;
        Ok(Listed::new(&page, |k| key_view(&st, k)))
    }

    /// Create an API key acting as the caller inside `metadata.organizationId`. The
    /// answer holds the key once; only its hash is stored. A member needs
    /// `canAccessToAPI`.
    #[oai(
        path = "/user.createApiKey",
        method = "post",
        operation_id = "user.createApiKey"
    )]
    async fn create_api_key(
        &self,
        st: Data<&State>,
        caller: Caller,
        body: Json<CreateApiKey>,
    ) -> ApiResult<Json<CreatedApiKey>> {
        let b = body.0;
        let scope = b.scope.unwrap_or(ScopeView {
            read_only: false,
            project_ids: None,
        });
        let n = keys::NewKey {
            name: b.name.0,
            organization_id: b.metadata.organization_id.0,
            prefix: b.prefix.map(|p| p.0),
            expires_in: b.expires_in.map(|v| v.0),
            rate_limit_enabled: b.rate_limit_enabled,
            rate_limit_time_window: b.rate_limit_time_window.map(|v| v.0),
            rate_limit_max: b.rate_limit_max.map(|v| v.0),
            remaining: b.remaining.map(|v| v.0),
            refill_amount: b.refill_amount.map(|v| v.0),
            refill_interval: b.refill_interval.map(|v| v.0),
            read_only: scope.read_only,
            project_ids: scope.project_ids,
        };
        let (k, secret) = keys::create(&st, &caller.0, n).await?;
        Ok(Json(CreatedApiKey {
            key: secret,
            api_key: key_view(&st, &k),
        }))
    }

    /// Delete an API key: the caller's own, or (as organization owner) any key of the
    /// organization. It is refused from the very next request.
    #[oai(
        path = "/user.deleteApiKey",
        method = "post",
        operation_id = "user.deleteApiKey"
    )]
    async fn delete_api_key(
        &self,
        st: Data<&State>,
        caller: Caller,
        body: Json<ApiKeyRef>,
    ) -> ApiResult<Json<Success>> {
        keys::delete(&st, &caller.0, &ApiKeyId(body.0.api_key_id.0)).await?;
        Ok(Json(Success::yes()))
    }

    /// Rename, enable or disable one of the caller's keys.
    #[oai(
        path = "/user.updateApiKey",
        method = "post",
        operation_id = "user.updateApiKey"
    )]
    async fn update_api_key(
        &self,
        st: Data<&State>,
        caller: Caller,
        body: Json<UpdateApiKey>,
    ) -> ApiResult<Json<ApiKeyView>> {
        let b = body.0;
        let k = keys::update(
            &st,
            &caller.0,
            &ApiKeyId(b.api_key_id.0),
            b.name.as_deref(),
            b.enabled,
        )
        .await?;
        Ok(Json(key_view(&st, &k)))
    }

    /// Give one of the caller's keys a new secret (shown once). The old secret keeps
    /// working for `gracePeriodSeconds`.
    #[oai(
        path = "/user.rotateApiKey",
        method = "post",
        operation_id = "user.rotateApiKey"
    )]
    async fn rotate_api_key(
        &self,
        st: Data<&State>,
        caller: Caller,
        body: Json<RotateApiKey>,
    ) -> ApiResult<Json<CreatedApiKey>> {
        let b = body.0;
        let (k, secret) = keys::rotate(
            &st,
            &caller.0,
            &ApiKeyId(b.api_key_id.0),
            b.grace_period_seconds.map(|v| v.0),
        )
        .await?;
        Ok(Json(CreatedApiKey {
            key: secret,
            api_key: key_view(&st, &k),
        }))
    }

    /// A key's requests per hour by outcome (admitted, rate limited, over its quota,
    /// refused), from `from` through `to`, with its last use and client: the caller's own
    /// key (through a key, one of its organization), or, for an owner or admin, any key
    /// of the organization it acts in. The counts not yet written are added (those of
    /// a flush being written at that very moment may be missing); hours are kept for
    /// `--usage-retention-days`.
    #[oai(
        path = "/user.apiKeyUsage",
        method = "get",
        operation_id = "user.apiKeyUsage"
    )]
    async fn api_key_usage(
        &self,
        st: Data<&State>,
        caller: Caller,
        /// The key's id.
        #[oai(name = "apiKeyId")]
        api_key_id: Query<String>,
        /// The first hour (RFC 3339, rounded down to the hour); 7 days before `to` by
        /// default, and never further back than `--usage-retention-days` before `to`
        /// (the answer's `from` says where it starts).
        from: Query<Option<String>>,
        /// The last hour, included (RFC 3339, rounded down to the hour); now by default.
        /// Not before `from`.
        to: Query<Option<String>>,
    ) -> ApiResult<Json<ApiKeyUsage>> {
        let (from, to) = (time("from", from.0), time("to", to.0)).all()?;
        let span = keys::UsageSpan { from, to };
        let usage = keys::usage(&st, &caller.0, &ApiKeyId(api_key_id.0), span)?;
        Ok(Json((&usage).into()))
    }

    /// Change the caller's name or password. A new password needs `currentPassword`, can
    /// only be set from a session, and signs out every other session.
    #[oai(path = "/user.update", method = "post", operation_id = "user.update")]
    async fn update(
        &self,
        st: Data<&State>,
        caller: Caller,
        body: Json<UpdateUser>,
    ) -> ApiResult<Json<UserView>> {
        let b = body.0;
        let u = users::Update {
            name: b.name.map(Text::into_inner),
            current_password: b.current_password.map(Text::into_inner),
            password: b.password.map(Text::into_inner),
        };
        let user = users::update(&st, &caller.0, u).await?;
        Ok(Json((&user).into()))
    }

    /// One page of the caller's live sessions, in the order they began. `X-Total-Count`
    /// says how many there are in all.
    #[oai(
        path = "/user.listSessions",
        method = "get",
        operation_id = "user.listSessions"
    )]
    async fn list_sessions(
        &self,
        st: Data<&State>,
        caller: Caller,
        /// Page size, 1-100 (default 100).
        limit: Query<Option<Limit>>,
        /// How many sessions to skip (default 0).
        offset: Query<Option<Offset>>,
    ) -> ApiResult<Listed<SessionEntry>> {
        let current = caller.0.session_id();
        let page = users::sessions(&st, &caller.0, paging(limit.0, offset.0)?)?;
        Ok(Listed::new(&page, |s| SessionEntry {
            session: s.into(),
            current: Some(&s.id) == current,
        }))
    }

    /// End one of the caller's sessions.
    #[oai(
        path = "/user.revokeSession",
        method = "post",
        operation_id = "user.revokeSession"
    )]
    async fn revoke_session(
        &self,
        st: Data<&State>,
        caller: Caller,
        body: Json<SessionRef>,
    ) -> ApiResult<Json<Success>> {
        users::revoke_session(&st, &caller.0, &SessionId(body.0.session_id.0)).await?;
        Ok(Json(Success::yes()))
    }

    /// One page of the members of the active organization, in the order they joined
    /// (owner or admin). `X-Total-Count` says how many there are in all.
    #[oai(path = "/user.all", method = "get", operation_id = "user.all")]
    async fn all(
        &self,
        st: Data<&State>,
        caller: Caller,
        /// Page size, 1-100 (default 100).
        limit: Query<Option<Limit>>,
        /// How many members to skip (default 0).
        offset: Query<Option<Offset>>,
    ) -> ApiResult<Listed<MemberView>> {
        let page = members::all(&st, &caller.0, paging(limit.0, offset.0)?)?;
        Ok(Listed::new(&page, |(m, u)| MemberView::new(m, Some(u))))
    }

    /// One member of the active organization with its permission flags and access lists,
    /// as `user.assignPermissions` replaces them (owner or admin). Owner and admin hold
    /// every flag, and their lists are empty: none applies to them.
    #[oai(path = "/user.one", method = "get", operation_id = "user.one")]
    async fn one(
        &self,
        st: Data<&State>,
        caller: Caller,
        /// The member's user id.
        #[oai(name = "userId")]
        user_id: Query<String>,
    ) -> ApiResult<Json<MemberDetail>> {
        let (m, u, p) = members::one(&st, &caller.0, &UserId(user_id.0))?;
        Ok(Json(MemberDetail {
            member: MemberView::new(&m, Some(&u)),
            permissions: (&p).into(),
        }))
    }

    /// Remove a user from the active organization (owner or admin; not the owner, not an
    /// admin by an admin, not oneself). From the next request its API keys for it are
    /// refused with `not_a_member` and its sessions stop acting in it.
    #[oai(path = "/user.remove", method = "post", operation_id = "user.remove")]
    async fn remove(
        &self,
        st: Data<&State>,
        caller: Caller,
        body: Json<UserRef>,
    ) -> ApiResult<Json<Success>> {
        members::remove(&st, &caller.0, &UserId(body.0.user_id.0)).await?;
        Ok(Json(Success::yes()))
    }

    /// Replace a member's permission flags and access lists (owner or admin). Every listed
    /// id must belong to the organization.
    #[oai(
        path = "/user.assignPermissions",
        method = "post",
        operation_id = "user.assignPermissions"
    )]
    async fn assign_permissions(
        &self,
        st: Data<&State>,
        caller: Caller,
        body: Json<AssignPermissions>,
    ) -> ApiResult<Json<PermissionsView>> {
        let b = body.0;
        let a = Assignment {
            flags: b.flags(),
            projects: Text::strings(b.accessed_projects),
            environments: Text::strings(b.accessed_environments),
            applications: Text::strings(b.accessed_services),
        };
        let p = members::assign(&st, &caller.0, &UserId(b.user_id.0), a).await?;
        Ok(Json((&p).into()))
    }

    /// The caller's resolved permissions in the active organization.
    #[oai(
        path = "/user.getPermissions",
        method = "get",
        operation_id = "user.getPermissions"
    )]
    async fn get_permissions(&self, caller: Caller) -> ApiResult<RawJson<PermissionsView>> {
        let view =
            members::permissions_view(&caller.0, |p| PermissionsView::from(p).to_json_string())?;
        Ok(RawJson::new(view))
    }

    /// Create a user directly into the active organization as `admin` or `member`: for
    /// installation administrators (the first user, and those `keygate user create
    /// --installation-admin` makes) who are owner or admin there; everyone else invites.
    #[oai(
        path = "/user.createUserWithCredentials",
        method = "post",
        operation_id = "user.createUserWithCredentials"
    )]
    async fn create_user_with_credentials(
        &self,
        st: Data<&State>,
        caller: Caller,
        body: Json<CreateUserWithCredentials>,
    ) -> ApiResult<Json<MemberView>> {
        let b = body.0;
        let new = NewUser::parse(&b.name, &b.email, &b.password)?;
        let (user, m) = members::create_with_credentials(&st, &caller.0, new, &b.role).await?;
        Ok(Json(MemberView::new(&m, Some(&user))))
    }

    /// Make a password-reset link for a member of the active organization (owner or
    /// admin, from a session; not for oneself, the owner, or by an admin for another
    /// admin, nor for a user the caller could not manage in each of its organizations).
    /// The answer holds the token once; the link works once, for one hour, and a new one
    /// cancels the member's earlier unused links. Using it (`auth.resetPassword`) signs
    /// the member out everywhere.
    #[oai(
        path = "/user.createPasswordReset",
        method = "post",
        operation_id = "user.createPasswordReset"
    )]
    async fn create_password_reset(
        &self,
        st: Data<&State>,
        req: &Request,
        caller: Caller,
        body: Json<UserRef>,
    ) -> ApiResult<Json<PasswordReset>> {
        let issued = recovery::create(&st, &caller.0, &UserId(body.0.user_id.0)).await?;
        Ok(Json(PasswordReset {
            url: format!("{}/#reset={}", dashboard_base(&st, req), issued.token),
            token: issued.token,
            expires_at: rfc3339(issued.expires_at),
        }))
    }
}
