//! `/api/auth/*`: sign-up, sign-in, sign-out, the current session, and password resets.

use poem::web::Data;
use poem::{IntoResponse, Request, Response};
use poem_openapi::payload::Json;
use poem_openapi::registry::{
    MetaMediaType, MetaResponse, MetaResponses, MetaSchema, MetaSchemaRef, Registry,
};
use poem_openapi::types::{ToJSON, Type};
use poem_openapi::{ApiResponse, Object, OpenApi, Union};

use super::ApiTags;
use super::error::{ApiError, ApiResult};
use super::security::{SessionVia, client, origin_allowed, session_via, side_cookie};
use super::text::Text;
use super::views::{SessionAndUser, Success};
use crate::domain::{State, accounts, forward, recovery, sessions};
use crate::error::{Error, Reason};

/// Sign-up input.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct SignUpBody {
    /// Display name, 1-255 characters.
    pub name: Text<1, { crate::domain::accounts::NAME_MAX }>,
    /// Email address; trimmed and lower-cased.
    pub email: Text<1, { crate::model::Email::MAX }>,
    /// 8-128 characters.
    #[oai(write_only)]
    pub password: Text<{ crate::model::Password::MIN }, { crate::model::Password::MAX }>,
    /// The token of an invitation; required for every sign-up after the first.
    #[oai(write_only)]
    pub invitation_token: Option<Text>,
}

/// The longest `callbackURL` sign-in takes: every sign-in body within its limits must fit
/// the 16 KiB that sign-in reads, even with each character escaped in the JSON.
pub const CALLBACK_URL_MAX: usize = 2048;

/// Sign-in input.
#[derive(Debug, Object)]
pub struct SignInBody {
    /// Email address.
    pub email: Text<1, { crate::model::Email::MAX }>,
    /// Password.
    #[oai(write_only)]
    pub password: Text<1, { crate::model::Password::MAX }>,
    /// Where to go after sign-in (forward auth's `rd`), up to 2,048 characters: answered
    /// back as `url` when its host is a registered domain or this server's own, and
    /// ignored otherwise.
    #[oai(rename = "callbackURL")]
    pub callback_url: Option<Text<0, CALLBACK_URL_MAX>>,
}

/// A new password, set with a reset link.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct ResetPasswordBody {
    /// The token of the link (`user.createPasswordReset`).
    #[oai(write_only)]
    pub token: Text<1, 128>,
    /// The new password, 8-128 characters.
    #[oai(write_only)]
    pub new_password: Text<{ crate::model::Password::MIN }, { crate::model::Password::MAX }>,
}

#[derive(ApiResponse)]
pub enum SignedIn {
    /// Signed in: the session cookie is set.
    #[oai(status = 200)]
    Ok(Json<SessionAndUser>, #[oai(header = "Set-Cookie")] String),
}

/// The code step comes next: two-factor is on and the browser is not trusted.
#[derive(Debug, Object)]
pub struct TwoFactorRedirect {
    /// Always true: send a code to `two-factor/verify-totp` or
    /// `two-factor/verify-backup-code` within 3 minutes.
    #[oai(rename = "twoFactorRedirect")]
    pub two_factor_redirect: bool,
}

/// A session, or the code step.
#[derive(Debug, Union)]
#[oai(one_of)]
// Made once per sign-in and moved straight into the response: boxing saves nothing.
#[allow(clippy::large_enum_variant)]
pub enum SignInResult {
    Session(SessionAndUser),
    TwoFactor(TwoFactorRedirect),
}

#[derive(ApiResponse)]
pub enum SignInAnswer {
    /// Signed in with the session cookie set; or, when two-factor is on, `{"twoFactorRedirect":
    /// true}` with the cookie of the password step set instead (3 minutes, sent only to
    /// the two-factor routes).
    #[oai(status = 200)]
    Ok(Json<SignInResult>, #[oai(header = "Set-Cookie")] String),
}

#[derive(ApiResponse)]
pub enum SignedOut {
    /// Signed out: the session is deleted and the cookie cleared.
    #[oai(status = 200)]
    Ok(Json<Success>, #[oai(header = "Set-Cookie")] String),
}

/// The current session and user, or JSON `null`; documented as a nullable object, which
/// poem-openapi's `Option` does not do by itself.
pub struct CurrentSession(Option<SessionAndUser>);

impl IntoResponse for CurrentSession {
    fn into_response(self) -> Response {
        let body = self
            .0
            .as_ref()
            .and_then(ToJSON::to_json)
            .unwrap_or(serde_json::Value::Null);
        Response::builder()
            .content_type("application/json; charset=utf-8")
            .body(body.to_string())
    }
}

impl ApiResponse for CurrentSession {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "The current session and user, or `null` when the request has no live session.",
                status: Some(200),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: "application/json; charset=utf-8",
                    schema: MetaSchemaRef::Inline(Box::new(MetaSchema {
                        nullable: true,
                        all_of: vec![SessionAndUser::schema_ref()],
                        ..MetaSchema::ANY
                    })),
                }],
                headers: Vec::new(),
            }],
        }
    }

    fn register(registry: &mut Registry) {
        SessionAndUser::register(registry);
    }
}

/// The session token for the answer's body: only to a client that sent no `Origin`,
/// which every browser sends with a POST. A browser's session stays in its HttpOnly
/// cookie, out of reach of the page's scripts.
pub fn token_for(req: &Request, token: &str) -> Option<String> {
    req.header(poem::http::header::ORIGIN.as_str())
        .is_none()
        .then(|| token.to_owned())
}

fn signed_in(
    st: &State,
    req: &Request,
    user: &crate::model::User,
    issued: &sessions::Issued,
    url: Option<String>,
) -> SignedIn {
    let cookie = st
        .config
        .cookie_jar()
        .set(&issued.token, st.config.session_ttl_ms / 1000);
    SignedIn::Ok(
        Json(SessionAndUser {
            session: (&issued.session).into(),
            user: user.into(),
            url,
            token: token_for(req, &issued.token),
        }),
        cookie,
    )
}

/// A browser that sends an Origin must send ours, even before it has a session (no
/// login CSRF). Clients without an Origin (curl, SDKs) are not browsers.
pub fn check_login_origin(st: &State, req: &Request) -> Result<(), ApiError> {
    if req.header("origin").is_some() && !origin_allowed(st, req) {
        return Err(Error::Denied(Reason::InvalidOrigin).into());
    }
    Ok(())
}

pub struct AuthApi;

#[OpenApi(prefix_path = "/api/auth", tag = "ApiTags::Auth")]
impl AuthApi {
    /// Sign up with email and password.
    ///
    /// The first sign-up on a new server creates the owner and the organization
    /// "My Organization". Every later sign-up needs an `invitationToken`; without one it is
    /// refused with 400 `signup_closed`. Sets the session cookie.
    #[oai(path = "/sign-up/email", method = "post", operation_id = "auth.signUp")]
    async fn sign_up(
        &self,
        st: Data<&State>,
        req: &Request,
        body: Json<SignUpBody>,
    ) -> ApiResult<SignedIn> {
        check_login_origin(&st, req)?;
        let b = body.0;
        let input = accounts::SignUp {
            name: b.name.0,
            email: b.email.0,
            password: b.password.0,
            invitation_token: b.invitation_token.map(Text::into_inner),
        };
        let (user, issued) = accounts::sign_up(&st, input, &client(&st, req)).await?;
        Ok(signed_in(&st, req, &user, &issued, None))
    }

    /// Sign in with email and password.
    ///
    /// Sets the session cookie (3 days, extended on use after 24 hours). A wrong email and
    /// a wrong password give the same 401 `invalid_credentials`. Attempts are limited per
    /// account and per client address (429 `too_many_attempts`). When the user has
    /// two-factor on, and this browser is not trusted, no session is made yet: the answer
    /// is `{"twoFactorRedirect": true}` and the code goes to `two-factor/verify-totp`.
    #[oai(path = "/sign-in/email", method = "post", operation_id = "auth.signIn")]
    async fn sign_in(
        &self,
        st: Data<&State>,
        req: &Request,
        body: Json<SignInBody>,
    ) -> ApiResult<SignInAnswer> {
        check_login_origin(&st, req)?;
        let callback = body
            .0
            .callback_url
            .as_deref()
            .map(|u| crate::error::field("callbackURL", super::authz::at_most(u, CALLBACK_URL_MAX)))
            .transpose()
            .map_err(Error::from)?
            .map(str::trim);
        let url = match callback {
            Some(u) if forward::return_allowed(&st, u)? => Some(u.to_owned()),
            _ => None,
        };
        let extras = accounts::SignInExtras {
            callback_url: url.clone(),
            device: side_cookie(&st, req, &crate::auth::cookie::DEVICE).map(str::to_owned),
        };
        let jar = st.config.cookie_jar();
        match accounts::sign_in(&st, &body.email, &body.password, &client(&st, req), extras).await?
        {
            accounts::SignedIn::Session(user, issued) => {
                let SignedIn::Ok(answer, cookie) = signed_in(&st, req, &user, &issued, url);
                Ok(SignInAnswer::Ok(
                    Json(SignInResult::Session(answer.0)),
                    cookie,
                ))
            }
            accounts::SignedIn::TwoFactor(token) => Ok(SignInAnswer::Ok(
                Json(SignInResult::TwoFactor(TwoFactorRedirect {
                    two_factor_redirect: true,
                })),
                jar.set_side(
                    &crate::auth::cookie::CHALLENGE,
                    &token,
                    crate::domain::two_factor::CHALLENGE_TTL_MS / 1000,
                ),
            )),
        }
    }

    /// Sign out: deletes the current session and clears the cookie.
    #[oai(path = "/sign-out", method = "post", operation_id = "auth.signOut")]
    async fn sign_out(&self, st: Data<&State>, req: &Request) -> ApiResult<SignedOut> {
        match session_via(&st, req) {
            Some(SessionVia::Cookie(_)) if !origin_allowed(&st, req) => {
                return Err(Error::Denied(Reason::InvalidOrigin).into());
            }
            Some(via) => sessions::sign_out(&st, via.token()).await?,
            None => {}
        }
        Ok(SignedOut::Ok(
            Json(Success::yes()),
            st.config.cookie_jar().clear(),
        ))
    }

    /// Set a new password with a reset link from `user.createPasswordReset`.
    ///
    /// Needs no credential: the token is one. It works once, within an hour of being
    /// made; an unknown, used or expired token is 400 `invalid_reset_token`. Every
    /// session of the user ends, and every browser it trusted to skip the two-factor
    /// step is forgotten.
    #[oai(
        path = "/reset-password",
        method = "post",
        operation_id = "auth.resetPassword"
    )]
    async fn reset_password(
        &self,
        st: Data<&State>,
        req: &Request,
        body: Json<ResetPasswordBody>,
    ) -> ApiResult<Json<Success>> {
        check_login_origin(&st, req)?;
        recovery::reset(&st, &body.token, &body.new_password).await?;
        Ok(Json(Success::yes()))
    }

    /// The current session and its user, or `null`.
    ///
    /// Using the session here extends it like any other request does.
    #[oai(
        path = "/get-session",
        method = "get",
        operation_id = "auth.getSession"
    )]
    async fn get_session(&self, st: Data<&State>, req: &Request) -> ApiResult<CurrentSession> {
        let Some(via) = session_via(&st, req) else {
            return Ok(CurrentSession(None));
        };
        match super::security::session(&st, req, via).await {
            Ok(current) => Ok(CurrentSession(Some(SessionAndUser {
                session: (&current.cached.session).into(),
                user: (&current.cached.principal.user).into(),
                url: None,
                token: None,
            }))),
            Err(e) if e.status().as_u16() == 401 => Ok(CurrentSession(None)),
            Err(e) => Err(e),
        }
    }
}
