//! Forward auth for reverse proxies, and `apiKey.verify` for services without one.
//!
//! - `GET /api/authz/forward-auth`: Traefik `forwardAuth` and Caddy `forward_auth`. The
//!   original request is read from `X-Forwarded-Method`, `-Proto`, `-Host` and `-Uri`.
//! - `GET /api/authz/auth-request`: nginx `auth_request`. The original request is read
//!   from `X-Original-URL` and `X-Original-Method`; the answer is only ever 200, 401 or
//!   403, since nginx turns anything else into a 500.
//!
//! Both believe forwarded headers only from `--trusted-proxy` addresses. They take the
//! credential from `x-api-key`, then `Authorization: Bearer <keygate key>`, then the
//! session cookie, and on success answer 200 with every identity header, always
//! present and non-empty, so that a proxy copying them overwrites whatever a client sent
//! under the same names. They are not operations of the spec: proxies, not API clients,
//! call them.

use poem::http::{HeaderMap, HeaderValue, StatusCode, header};
use poem::web::Data;
use poem::{IntoResponse, Request, Response, handler};
use poem_openapi::payload::Json;
use poem_openapi::{Enum, Object, OpenApi};

use super::ApiTags;
use super::error::{ApiError, ApiResult, ErrorCode};
use super::security::{self, Caller};
use super::text::Text;
use crate::clock::rfc3339;
use crate::domain::State;
use crate::domain::forward::{self, Code, Credential, Granted, Target};
use crate::error::{AllChecked, Error, Reason, field};
use crate::model::ApplicationId;

/// The identity headers of a 200, in the order they are sent.
pub const IDENTITY_HEADERS: [&str; 9] = [
    "x-keygate-user-id",
    "x-keygate-organization-id",
    "x-keygate-role",
    "x-keygate-auth",
    "x-keygate-key-id",
    "remote-user",
    "remote-email",
    "remote-name",
    "remote-groups",
];

/// Which proxy protocol a request speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    /// Traefik and Caddy: `X-Forwarded-*`, any status.
    Forward,
    /// nginx: `X-Original-*`, only 200, 401 and 403.
    AuthRequest,
}

/// `GET /api/authz/forward-auth`.
#[handler]
pub async fn forward_auth(req: &Request) -> Response {
    answer(req, Flavor::Forward).await
}

/// `GET /api/authz/auth-request`.
#[handler]
pub async fn auth_request(req: &Request) -> Response {
    answer(req, Flavor::AuthRequest).await
}

/// The original request, as the proxy describes it.
struct Original {
    method: String,
    host: String,
    uri: String,
    /// The whole URL, for the sign-in page to send the browser back to.
    url: String,
}

fn header<'r>(req: &'r Request, name: &str) -> Option<&'r str> {
    let mut all = req.headers().get_all(name).iter();
    let first = all.next()?.to_str().ok()?;
    // A header sent twice is one the proxy did not set alone.
    all.next().is_none().then(|| first.trim())
}

fn original(req: &Request, flavor: Flavor) -> Option<Original> {
    match flavor {
        Flavor::Forward => {
            let host = header(req, "x-forwarded-host")?.to_owned();
            let proto = header(req, "x-forwarded-proto").unwrap_or("http");
            let proto = if proto.eq_ignore_ascii_case("https") {
                "https"
            } else {
                "http"
            };
            let uri = header(req, "x-forwarded-uri").unwrap_or("/").to_owned();
            let method = header(req, "x-forwarded-method")
                .unwrap_or("GET")
                .to_owned();
            let url = format!("{proto}://{host}{uri}");
            Some(Original {
                method,
                host,
                uri,
                url,
            })
        }
        Flavor::AuthRequest => {
            let raw = header(req, "x-original-url")?;
            let u = url::Url::parse(raw)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))?;
            let mut host = u.host_str()?.to_owned();
            if let Some(p) = u.port() {
                host = format!("{host}:{p}");
            }
            // The path as sent, not as the URL parser resolved it: dot segments must reach
            // the decision, which refuses them.
            let after_host = raw.split_once("://").map_or("", |(_, rest)| rest);
            let uri = match after_host.find(['/', '?', '#']) {
                Some(i) if after_host[i..].starts_with('/') => after_host[i..].to_owned(),
                Some(i) => format!("/{}", &after_host[i..]),
                None => "/".to_owned(),
            };
            let method = header(req, "x-original-method").unwrap_or("GET").to_owned();
            Some(Original {
                method,
                host,
                uri,
                url: raw.to_owned(),
            })
        }
    }
}

/// The credential of a request to a protected service: `x-api-key`, then a bearer value
/// that is a keygate key (any other bearer value belongs to the service and is ignored),
/// then the session cookie.
fn credential<'r>(st: &State, req: &'r Request) -> Option<Credential<'r>> {
    if req.headers().contains_key("x-api-key") {
        return Some(Credential::Key(header(req, "x-api-key").unwrap_or("")));
    }
    if let Some(key) = security::bearer_key(req) {
        return Some(Credential::Key(key));
    }
    security::session_token(st, req).map(Credential::Session)
}

async fn answer(req: &Request, flavor: Flavor) -> Response {
    let st = match security::state(req) {
        Ok(st) => st,
        Err(e) => return e.into_response(),
    };
    let refuse = |e: Error| refusal(st, req, flavor, None, e);
    let peer = req
        .remote_addr()
        .as_socket_addr()
        .map(|a| a.ip().to_canonical());
    if peer.is_some_and(|ip| !security::trusted_proxy(st, ip)) {
        return forbidden(Reason::UntrustedProxy);
    }
    let Some(orig) = original(req, flavor) else {
        return match flavor {
            Flavor::Forward => ApiError::from(Error::invalid(
                crate::error::Invalid::BadRequest,
                "Forward auth needs X-Forwarded-Host (and X-Forwarded-Uri, -Method, -Proto) \
                 from the proxy",
            ))
            .into_response(),
            Flavor::AuthRequest => refuse(Error::Denied(Reason::UnknownDomain)),
        };
    };
    let target = Target {
        method: &orig.method,
        host: &orig.host,
        uri: &orig.uri,
    };
    let Some(cred) = credential(st, req) else {
        // An unknown domain is refused before anyone is asked to sign in for it.
        return match forward::routes(st).and_then(|r| target.route(&r).map(|_| ())) {
            Ok(()) => refusal(
                st,
                req,
                flavor,
                Some(&orig),
                Error::Denied(Reason::MissingCredentials),
            ),
            Err(e) => refusal(st, req, flavor, Some(&orig), e),
        };
    };
    match forward::decide(st, cred, target).await {
        Ok(granted) => {
            let mut resp = allowed(&granted);
            // A session extended here: its cookie, renewed for the parent domain, for a
            // proxy that passes the auth answer's cookies on (Traefik's
            // `addAuthCookiesToResponse`). Without a cookie domain the protected host
            // could only get a cookie of its own, so nothing is sent.
            if granted.extended
                && st.config.cookie_domain.is_some()
                && let Credential::Session(token) = cred
                && let Ok(v) = HeaderValue::from_str(
                    &st.config
                        .cookie_jar()
                        .set(token, st.config.session_ttl_ms / 1000),
                )
            {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            resp
        }
        Err(e) => {
            // A browser whose session is gone signs in again; a bad key is just refused.
            let orig = matches!(cred, Credential::Session(_)).then_some(&orig);
            refusal(st, req, flavor, orig, e)
        }
    }
}

fn allowed(g: &Granted) -> Response {
    let p = &g.principal;
    let role = p.membership.as_ref().map_or("-", |m| m.role.as_str());
    let org = g.org().map_or("-", |o| o.as_str());
    let (auth, key) = match &g.key {
        Some(k) => ("api_key", k.key.id.as_str()),
        None => ("session", "-"),
    };
    let values = [
        p.user.id.as_str(),
        org,
        role,
        auth,
        key,
        p.user.email.as_str(),
        p.user.email.as_str(),
        p.user.name.as_str(),
        role,
    ];
    let mut resp = Response::builder()
        .status(StatusCode::OK)
        .header(header::CACHE_CONTROL, "no-store")
        .finish();
    let h = resp.headers_mut();
    for (name, value) in IDENTITY_HEADERS.iter().zip(values) {
        h.insert(*name, header_value(value));
    }
    resp
}

/// `value` as a header value: its UTF-8 bytes as they are, control characters
/// percent-encoded, `-` for nothing, so that the header is always present and non-empty.
fn header_value(value: &str) -> HeaderValue {
    if value.is_empty() {
        return HeaderValue::from_static("-");
    }
    HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| {
        let safe: String = value
            .chars()
            .map(|c| {
                if c.is_control() {
                    format!("%{:02X}", c as u32 & 0xff)
                } else {
                    c.to_string()
                }
            })
            .collect();
        HeaderValue::from_bytes(safe.as_bytes()).unwrap_or(HeaderValue::from_static("-"))
    })
}

fn forbidden(r: Reason) -> Response {
    ApiError::new(ErrorCode::Forbidden, r.as_str(), r.message()).into_response()
}

/// Where a browser signs in and is sent back to `url` from: the dashboard at keygate's
/// public URL (never a URL built from `Host`, which a proxy sets to the protected host).
fn sign_in_url(st: &State, url: &str) -> String {
    let base = st
        .config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", st.config.listen));
    let rd: String = url::form_urlencoded::byte_serialize(url.as_bytes()).collect();
    format!("{base}/?rd={rd}")
}

fn is_browser(req: &Request) -> bool {
    let html = req
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/html"));
    html && !req.headers().contains_key("x-requested-with")
}

/// A refusal in the error shape. `orig` is the request to sign in for, when signing in
/// could help.
fn refusal(
    st: &State,
    req: &Request,
    flavor: Flavor,
    orig: Option<&Original>,
    e: Error,
) -> Response {
    if forward::unauthenticated(&e) {
        let sign_in = orig.map(|o| sign_in_url(st, &o.url));
        if flavor == Flavor::Forward
            && let Some(to) = &sign_in
            && is_browser(req)
        {
            let see_other = orig.is_some_and(|o| {
                !["GET", "HEAD"]
                    .iter()
                    .any(|m| m.eq_ignore_ascii_case(&o.method))
            });
            return Response::builder()
                .status(if see_other {
                    StatusCode::SEE_OTHER
                } else {
                    StatusCode::FOUND
                })
                .header(header::LOCATION, to.as_str())
                .header(header::CACHE_CONTROL, "no-store")
                .finish();
        }
        let mut resp = ApiError::from(e).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"keygate\""),
        );
        if flavor == Flavor::AuthRequest
            && let Some(to) = sign_in.and_then(|s| HeaderValue::from_str(&s).ok())
        {
            h.insert(header::LOCATION, to);
        }
        return resp;
    }
    let mut err = ApiError::from(e);
    let status = err.status();
    if status == StatusCode::UNAUTHORIZED {
        // Signed in, but not allowed here: 403.
        err.body.code = ErrorCode::Forbidden;
    } else if flavor == Flavor::AuthRequest && status != StatusCode::FORBIDDEN {
        // nginx: anything but 200, 401 and 403 would become a 500. A rate limit keeps its
        // Retry-After.
        err.body.code = ErrorCode::Forbidden;
    }
    let mut resp = err.into_response();
    no_store(resp.headers_mut());
    resp
}

fn no_store(h: &mut HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// The longest key `apiKey.verify` takes, in characters: past any key keygate issues.
pub const VERIFY_KEY_MAX: usize = 512;
/// The longest method it takes.
pub const VERIFY_METHOD_MAX: usize = 16;

/// A key to verify.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct VerifyKey {
    /// The key a client sent to the service.
    pub key: Text<0, VERIFY_KEY_MAX>,
    /// The application the request is for: the key's user must have access to it.
    pub application_id: Option<Text>,
    /// The request's method: a read-only key passes only GET, HEAD and OPTIONS.
    pub method: Option<Text<1, VERIFY_METHOD_MAX>>,
}

/// At most `max` characters, as the spec documents.
pub(crate) fn at_most(s: &str, max: usize) -> Result<&str, String> {
    if s.chars().count() > max {
        Err(format!("must be at most {max} characters"))
    } else {
        Ok(s)
    }
}

impl VerifyKey {
    /// The key, the application and the method; a 400 names every field that is wrong.
    fn parse(&self) -> crate::error::Result<(&str, Option<ApplicationId>, Option<&str>)> {
        let (key, method) = (
            field("key", at_most(&self.key, VERIFY_KEY_MAX)),
            field(
                "method",
                self.method
                    .as_deref()
                    .map(|m| {
                        at_most(m, VERIFY_METHOD_MAX).and_then(|m| {
                            (!m.trim().is_empty())
                                .then_some(m.trim())
                                .ok_or_else(|| "must not be blank".to_owned())
                        })
                    })
                    .transpose(),
            ),
        )
            .all()?;
        let app = self
            .application_id
            .as_ref()
            .map(|a| ApplicationId(a.0.clone()));
        Ok((key.trim(), app, method))
    }
}

/// The outcome of a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VerifyCode {
    Valid,
    NotFound,
    Disabled,
    Expired,
    NotAMember,
    InsufficientPermissions,
    RateLimited,
    UsageExceeded,
}

impl From<Code> for VerifyCode {
    fn from(c: Code) -> Self {
        match c {
            Code::Valid => VerifyCode::Valid,
            Code::NotFound => VerifyCode::NotFound,
            Code::Disabled => VerifyCode::Disabled,
            Code::Expired => VerifyCode::Expired,
            Code::NotAMember => VerifyCode::NotAMember,
            Code::InsufficientPermissions => VerifyCode::InsufficientPermissions,
            Code::RateLimited => VerifyCode::RateLimited,
            Code::UsageExceeded => VerifyCode::UsageExceeded,
        }
    }
}

/// A key's rate limit as it stands after the verification.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct VerifyRateLimit {
    /// Requests allowed per window.
    pub limit: u64,
    /// Requests left now.
    pub remaining: u64,
    /// Seconds until the limit is whole again.
    pub reset: u64,
}

/// What a verification found: always 200, with `valid` and `code`; the key's details
/// unless it was not found.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct VerifyResult {
    /// Whether the key may make the request.
    pub valid: bool,
    /// Why or why not.
    pub code: VerifyCode,
    #[oai(skip_serializing_if_is_none)]
    pub key_id: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub user_id: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub organization_id: Option<String>,
    /// The user's role in the key's organization, while a member.
    #[oai(skip_serializing_if_is_none)]
    pub role: Option<String>,
    /// When the key expires (RFC 3339), if it does.
    #[oai(skip_serializing_if_is_none)]
    pub expires_at: Option<String>,
    /// Uses left of its quota, if it has one.
    #[oai(skip_serializing_if_is_none)]
    pub remaining: Option<i64>,
    /// Its rate limit, if it has one.
    #[oai(skip_serializing_if_is_none)]
    pub rate_limit: Option<VerifyRateLimit>,
}

pub struct ApiKeyApi;

#[OpenApi(prefix_path = "/api", tag = "ApiTags::ApiKey")]
impl ApiKeyApi {
    /// Verify a key that a client sent to your service: the decision forward auth makes,
    /// for services without a proxy in front. The caller is an owner or admin of the
    /// key's organization; a key of another organization is `NOT_FOUND`. The answer is
    /// 200 for every outcome (`valid`, `code`), and a verification counts as a use of the
    /// verified key.
    #[oai(
        path = "/apiKey.verify",
        method = "post",
        operation_id = "apiKey.verify"
    )]
    async fn verify(
        &self,
        st: Data<&State>,
        caller: Caller,
        body: Json<VerifyKey>,
    ) -> ApiResult<Json<VerifyResult>> {
        let (key, app, method) = body.0.parse()?;
        let v = forward::verify(&st, &caller.0, key, app.as_ref(), method).await?;
        let key = v.key.as_deref();
        Ok(Json(VerifyResult {
            valid: v.code == Code::Valid,
            code: v.code.into(),
            key_id: key.map(|k| k.key.id.to_string()),
            user_id: key.map(|k| k.key.user_id.to_string()),
            organization_id: key.map(|k| k.key.organization_id.to_string()),
            role: key.and_then(|k| {
                k.principal
                    .membership
                    .as_ref()
                    .ok()
                    .map(|m| m.role.as_str().to_owned())
            }),
            expires_at: key.and_then(|k| k.key.expires_at).map(rfc3339),
            remaining: v.remaining,
            rate_limit: v.rate.map(|b| VerifyRateLimit {
                limit: b.limit,
                remaining: b.remaining,
                reset: b.reset_secs,
            }),
        }))
    }
}
