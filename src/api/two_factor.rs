//! `/api/auth/two-factor/*`: better-auth's two-factor routes. Setting up and changing
//! two-factor takes the session cookie and the password again; the code step of a sign-in
//! takes the short-lived cookie that the password step set. API keys have no part here:
//! two-factor guards people, not automation.

use poem::web::Data;
use poem::{IntoResponse, Request, Response};
use poem_openapi::payload::Json;
use poem_openapi::registry::{MetaResponses, Registry};
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::ApiTags;
use super::error::{ApiError, ApiResult};
use super::security::{self, client, side_cookie};
use super::text::Text;
use super::views::SessionAndUser;
use crate::auth::cookie::{CHALLENGE, DEVICE};
use crate::domain::access::{self, Actor};
use crate::domain::{State, two_factor};
use crate::error::{Error, Reason};

/// The password, confirmed again.
#[derive(Debug, Object)]
pub struct PasswordBody {
    /// The account's password.
    #[oai(write_only)]
    pub password: Text<1, { crate::model::Password::MAX }>,
}

/// A TOTP code.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct TotpBody {
    /// The six digits the authenticator shows.
    #[oai(write_only)]
    pub code: Text<1, 32>,
    /// At the code step of a sign-in: skip the code step on this browser for 30 days.
    pub trust_device: Option<bool>,
}

/// A backup code.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct BackupCodeBody {
    /// One of the backup codes, `xxxxx-xxxxx`; each works once.
    #[oai(write_only)]
    pub code: Text<1, 32>,
    /// Skip the code step on this browser for 30 days.
    pub trust_device: Option<bool>,
}

/// What an authenticator app needs, and the backup codes, shown once.
#[derive(Debug, Object)]
pub struct TwoFactorSetup {
    /// The `otpauth://totp/...` URI.
    #[oai(rename = "totpURI")]
    pub totp_uri: String,
    /// The URI as a QR code: an SVG document drawn by the server.
    #[oai(rename = "qrCodeSVG")]
    pub qr_code_svg: String,
    /// Ten single-use codes for when the authenticator is lost.
    #[oai(rename = "backupCodes")]
    pub backup_codes: Vec<String>,
}

/// The `otpauth://` URI again.
#[derive(Debug, Object)]
pub struct TotpUri {
    /// The `otpauth://totp/...` URI.
    #[oai(rename = "totpURI")]
    pub totp_uri: String,
    /// The URI as a QR code: an SVG document drawn by the server.
    #[oai(rename = "qrCodeSVG")]
    pub qr_code_svg: String,
}

/// `{"status": true}`, better-auth's answer to a change.
#[derive(Debug, Object)]
pub struct Status {
    /// Always true.
    pub status: bool,
}

/// New backup codes, shown once.
#[derive(Debug, Object)]
pub struct NewBackupCodes {
    /// Always true.
    pub status: bool,
    /// Ten single-use codes; the earlier ones no longer work.
    #[oai(rename = "backupCodes")]
    pub backup_codes: Vec<String>,
}

#[derive(ApiResponse)]
pub enum Answer<T: poem_openapi::types::ToJSON + Send + Sync> {
    #[oai(status = 200)]
    Ok(Json<T>),
}

#[derive(ApiResponse)]
pub enum CodeStep {
    /// The code was right. At the code step of a sign-in: signed in, the session cookie
    /// set, the password step's cookie cleared, and with `trustDevice` the browser's
    /// trust cookie set. From a session: the session and its user, whose two-factor the
    /// first right code after `enable` turned on.
    #[oai(status = 200)]
    Ok(
        Json<SessionAndUser>,
        #[oai(header = "Set-Cookie")] Option<String>,
    ),
}

/// A response with more cookies than its one documented `Set-Cookie` header.
pub struct WithCookies<T>(pub T, pub Vec<String>);

impl<T: IntoResponse> IntoResponse for WithCookies<T> {
    fn into_response(self) -> Response {
        let mut resp = self.0.into_response();
        for c in self.1 {
            if let Ok(v) = poem::http::HeaderValue::from_str(&c) {
                resp.headers_mut().append(poem::http::header::SET_COOKIE, v);
            }
        }
        resp
    }
}

impl<T: ApiResponse> ApiResponse for WithCookies<T> {
    fn meta() -> MetaResponses {
        T::meta()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

/// The signed-in user of the request's session, for a change of its two-factor: a
/// cookie-borne session's change must come from an allowed origin.
async fn signed_in(st: &State, req: &Request) -> Result<Actor, ApiError> {
    let current = security::signed_in_session(st, req, true).await?;
    Ok(access::from_session(current.cached))
}

fn qr_svg(uri: &str) -> Result<String, ApiError> {
    let code = qrcode::QrCode::with_error_correction_level(uri, qrcode::EcLevel::M)
        .map_err(|e| Error::internal(format!("cannot draw the QR code: {e}")))?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

pub struct TwoFactorApi;

#[OpenApi(prefix_path = "/api/auth/two-factor", tag = "ApiTags::Auth")]
impl TwoFactorApi {
    /// Set up two-factor: a new TOTP secret and ten backup codes.
    ///
    /// Needs the session cookie and the password. Two-factor turns on only with the
    /// first right code sent to `verify-totp`; until then sign-in asks for the password
    /// alone, and calling this again replaces the secret. 409 `two_factor_enabled` when
    /// it is on already.
    #[oai(path = "/enable", method = "post", operation_id = "twoFactor.enable")]
    async fn enable(
        &self,
        st: Data<&State>,
        req: &Request,
        body: Json<PasswordBody>,
    ) -> ApiResult<Answer<TwoFactorSetup>> {
        let actor = signed_in(&st, req).await?;
        let setup = two_factor::enable(&st, &actor, &body.password).await?;
        Ok(Answer::Ok(Json(TwoFactorSetup {
            qr_code_svg: qr_svg(&setup.totp_uri)?,
            totp_uri: setup.totp_uri,
            backup_codes: setup.backup_codes,
        })))
    }

    /// The `otpauth://` URI of the secret again, to add another authenticator.
    #[oai(
        path = "/get-totp-uri",
        method = "post",
        operation_id = "twoFactor.getTotpUri"
    )]
    async fn get_totp_uri(
        &self,
        st: Data<&State>,
        req: &Request,
        body: Json<PasswordBody>,
    ) -> ApiResult<Answer<TotpUri>> {
        let actor = signed_in(&st, req).await?;
        let uri = two_factor::totp_uri(&st, &actor, &body.password).await?;
        Ok(Answer::Ok(Json(TotpUri {
            qr_code_svg: qr_svg(&uri)?,
            totp_uri: uri,
        })))
    }

    /// Ten new backup codes; the earlier ones stop working.
    #[oai(
        path = "/generate-backup-codes",
        method = "post",
        operation_id = "twoFactor.generateBackupCodes"
    )]
    async fn generate_backup_codes(
        &self,
        st: Data<&State>,
        req: &Request,
        body: Json<PasswordBody>,
    ) -> ApiResult<Answer<NewBackupCodes>> {
        let actor = signed_in(&st, req).await?;
        let codes = two_factor::new_codes(&st, &actor, &body.password).await?;
        Ok(Answer::Ok(Json(NewBackupCodes {
            status: true,
            backup_codes: codes,
        })))
    }

    /// Turn two-factor off: the secret, the backup codes and the trusted browsers go.
    #[oai(path = "/disable", method = "post", operation_id = "twoFactor.disable")]
    async fn disable(
        &self,
        st: Data<&State>,
        req: &Request,
        body: Json<PasswordBody>,
    ) -> ApiResult<Answer<Status>> {
        let actor = signed_in(&st, req).await?;
        two_factor::disable(&st, &actor, &body.password).await?;
        Ok(Answer::Ok(Json(Status { status: true })))
    }

    /// Check a TOTP code: the code step of a sign-in, or the first code after `enable`.
    ///
    /// With the cookie of a sign-in's password step (3 minutes), a right code signs in
    /// (the session cookie set); `trustDevice` skips the code step on this browser for
    /// 30 days. With a session cookie, the first right code turns two-factor on. A code works once: the same code again, or an earlier one, is refused with
    /// 401 `invalid_two_factor_code`. Wrong codes count against the user's and the
    /// address's budgets (429 `too_many_attempts`). 401 `two_factor_expired` without a
    /// waiting password step or a session.
    #[oai(
        path = "/verify-totp",
        method = "post",
        operation_id = "twoFactor.verifyTotp"
    )]
    async fn verify_totp(
        &self,
        st: Data<&State>,
        req: &Request,
        body: Json<TotpBody>,
    ) -> ApiResult<WithCookies<CodeStep>> {
        let trust = body.trust_device.unwrap_or(false);
        let proof = two_factor::Proof::Totp(&body.code);
        if side_cookie(&st, req, &CHALLENGE).is_none() && security::session_via(&st, req).is_some()
        {
            let actor = signed_in(&st, req).await?;
            let user = two_factor::confirm(&st, &actor, &body.code, &client(&st, req)).await?;
            let session = actor
                .session()
                .ok_or_else(|| Error::internal("a signed-in caller without a session"))?;
            return Ok(WithCookies(
                CodeStep::Ok(
                    Json(SessionAndUser {
                        session: session.into(),
                        user: (&user).into(),
                        url: None,
                        token: None,
                    }),
                    None,
                ),
                Vec::new(),
            ));
        }
        code_step(&st, req, proof, trust).await
    }

    /// The code step of a sign-in with a backup code instead of a TOTP code.
    ///
    /// Each backup code works once. Otherwise as `verify-totp` with the password step's
    /// cookie.
    #[oai(
        path = "/verify-backup-code",
        method = "post",
        operation_id = "twoFactor.verifyBackupCode"
    )]
    async fn verify_backup_code(
        &self,
        st: Data<&State>,
        req: &Request,
        body: Json<BackupCodeBody>,
    ) -> ApiResult<WithCookies<CodeStep>> {
        let trust = body.trust_device.unwrap_or(false);
        code_step(&st, req, two_factor::Proof::Backup(&body.code), trust).await
    }
}

/// The code step of a sign-in, from the password step's cookie.
async fn code_step(
    st: &State,
    req: &Request,
    proof: two_factor::Proof<'_>,
    trust: bool,
) -> ApiResult<WithCookies<CodeStep>> {
    super::auth::check_login_origin(st, req)?;
    let Some(challenge) = side_cookie(st, req, &CHALLENGE) else {
        return Err(Error::Denied(Reason::TwoFactorExpired).into());
    };
    let jar = st.config.cookie_jar();
    let done = two_factor::complete_sign_in(st, challenge, proof, trust, &client(st, req)).await?;
    let mut extra = vec![jar.set_side(&CHALLENGE, "", 0)];
    if let Some(d) = &done.device {
        extra.push(jar.set_side(&DEVICE, d, two_factor::DEVICE_TTL_MS / 1000));
    }
    let session_cookie = jar.set(&done.issued.token, st.config.session_ttl_ms / 1000);
    Ok(WithCookies(
        CodeStep::Ok(
            Json(SessionAndUser {
                session: (&done.issued.session).into(),
                user: (&done.user).into(),
                url: done.url,
                token: super::auth::token_for(req, &done.issued.token),
            }),
            Some(session_cookie),
        ),
        extra,
    ))
}
