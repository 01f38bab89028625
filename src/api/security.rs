//! Turns the `x-api-key` header or the session cookie into an `Actor`. Declared in the
//! spec as two alternative security schemes.

use std::net::IpAddr;

use poem::Request;
use poem::http::{Method, header};
use poem_openapi::registry::{MetaSecurityScheme, Registry};
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};

use super::error::ApiError;
use super::frame::CookieSlot;
use crate::auth::cookie;
use crate::domain::access::{self, Actor};
use crate::domain::sessions::{self, Current};
use crate::domain::{Client, State, keys};
use crate::error::{Error, Reason};

pub const API_KEY_SCHEME: &str = "ApiKey";
pub const COOKIE_SCHEME: &str = "SessionCookie";

/// The authenticated caller of an operation.
pub struct Caller(pub Actor);

/// The caller, as the middleware authenticated it before reading the body.
#[derive(Clone)]
pub struct Authenticated(pub Actor);

pub fn state(req: &Request) -> Result<&State, ApiError> {
    req.data::<State>()
        .ok_or_else(|| Error::internal("application state missing").into())
}

/// The non-empty value of cookie `name` in any `Cookie` header of the request.
fn cookie_value<'r>(req: &'r Request, name: &str) -> Option<&'r str> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|h| cookie::find(h, name))
        .filter(|t| !t.is_empty())
}

/// The session token the request's cookie carries, if any.
pub fn session_token<'r>(st: &State, req: &'r Request) -> Option<&'r str> {
    cookie_value(req, st.config.cookie_jar().name())
}

/// The values of the request's `Authorization: Bearer` headers (the scheme in any case).
/// Other schemes are not ours and are ignored.
fn bearers(req: &Request) -> impl Iterator<Item = &str> {
    req.headers()
        .get_all(header::AUTHORIZATION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| {
            let (scheme, value) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| value.trim())
        })
}

/// The first bearer value that has the shape and checksum of a keygate API key: forward
/// auth's choice, where other bearer values belong to the protected service.
pub fn bearer_key(req: &Request) -> Option<&str> {
    bearers(req).find(|v| crate::auth::apikey::well_formed(v))
}

/// Whether a bearer value sent to the API is meant as an API key: every key has a `_`
/// between its prefix and its body, and no session token (base62) has one. A mistyped
/// key is then refused as `invalid_api_key`, not as a session.
fn means_key(v: &str) -> bool {
    v.contains('_')
}

/// How a request carries its session.
#[derive(Debug, Clone, Copy)]
pub enum SessionVia<'r> {
    /// The session token as `Authorization: Bearer`, from a client that is not a browser:
    /// no cookie is involved, so no Origin is checked.
    Bearer(&'r str),
    /// The session cookie: its state changes must come from an allowed Origin.
    Cookie(&'r str),
}

impl<'r> SessionVia<'r> {
    pub fn token(self) -> &'r str {
        match self {
            SessionVia::Bearer(t) | SessionVia::Cookie(t) => t,
        }
    }
}

/// The session the request carries: the first bearer value, unless it is meant as an
/// API key; else the session cookie.
pub fn session_via<'r>(st: &State, req: &'r Request) -> Option<SessionVia<'r>> {
    match bearers(req).next() {
        Some(b) if !means_key(b) => Some(SessionVia::Bearer(b)),
        _ => session_token(st, req).map(SessionVia::Cookie),
    }
}

/// The session the request carries, checked like every state change's: a cookie-borne
/// one from an allowed Origin when the request `changes` state.
pub async fn signed_in_session(
    st: &State,
    req: &Request,
    changes: bool,
) -> Result<Current, ApiError> {
    match session_via(st, req) {
        None => Err(Error::Denied(Reason::MissingCredentials).into()),
        Some(SessionVia::Cookie(_)) if changes && !origin_allowed(st, req) => {
            Err(Error::Denied(Reason::InvalidOrigin).into())
        }
        Some(via) => session(st, req, via).await,
    }
}

/// The value of sign-in's own cookie `side` the request carries, if any.
pub fn side_cookie<'r>(st: &State, req: &'r Request, side: &cookie::Side) -> Option<&'r str> {
    cookie_value(req, &st.config.cookie_jar().side_name(side))
}

/// The client address and user agent, for sessions and sign-in limits. The address is
/// always a parsed IP (IPv4-mapped IPv6 shown as IPv4), never text a client wrote.
pub fn client(st: &State, req: &Request) -> Client {
    Client {
        address: client_ip(st, req).map(|ip| ip.to_string()),
        user_agent: req.header(header::USER_AGENT.as_str()).map(str::to_owned),
    }
}

/// The client's address: the peer's, or with `--trust-proxy` the one a trusted proxy
/// forwarded.
pub fn client_ip(st: &State, req: &Request) -> Option<IpAddr> {
    let peer = req
        .remote_addr()
        .as_socket_addr()
        .map(|a| a.ip().to_canonical());
    forwarded_client(st, req, peer).or(peer)
}

/// Whether the warning about forwarded headers from an untrusted peer was given; once per
/// process is enough to tell an operator what to configure.
static UNTRUSTED_WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn trusted_proxy(st: &State, ip: IpAddr) -> bool {
    st.config
        .trusted_proxies
        .iter()
        .any(|net| net.contains(&ip))
}

/// With `--trust-proxy`, the right-most `X-Forwarded-For` address (across every line of
/// the header) that is not a trusted proxy: each trusted proxy appends the address it saw,
/// and whatever stands left of the first untrusted one came from the client and proves
/// nothing. The header is believed only from a trusted proxy (or an in-process peer
/// without an address).
fn forwarded_client(st: &State, req: &Request, peer: Option<IpAddr>) -> Option<IpAddr> {
    if !st.config.trust_proxy {
        return None;
    }
    if let Some(p) = peer.filter(|p| !trusted_proxy(st, *p)) {
        if req.headers().contains_key("x-forwarded-for")
            && !UNTRUSTED_WARNED.swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::warn!(
                peer = %p,
                "X-Forwarded-For from a peer that is not a trusted proxy is ignored; \
                 if it is your proxy, add it with --trusted-proxy (warned once)"
            );
        }
        return None;
    }
    let mut nearest = None;
    for line in req.headers().get_all("x-forwarded-for").iter().rev() {
        let Ok(line) = line.to_str() else {
            return nearest;
        };
        for hop in line.rsplit(',').map(str::trim).filter(|h| !h.is_empty()) {
            let Some(ip) = parse_hop(hop) else {
                return nearest;
            };
            if !trusted_proxy(st, ip) {
                return Some(ip);
            }
            nearest = Some(ip);
        }
    }
    nearest
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`[::1]:80`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
        .map(|ip| ip.to_canonical())
}

fn origin_of(url: &str) -> &str {
    // scheme://host[:port], without path, query or trailing slash.
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url[after_scheme..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| after_scheme + i);
    &url[..end]
}

/// Whether a cookie-authenticated state change comes from this server's own pages or a
/// trusted origin.
pub fn origin_allowed(st: &State, req: &Request) -> bool {
    let Some(origin) = req
        .header(header::ORIGIN.as_str())
        .filter(|o| *o != "null")
        .or_else(|| req.header(header::REFERER.as_str()))
        .map(origin_of)
    else {
        return false;
    };
    let same = |candidate: &str| origin.eq_ignore_ascii_case(origin_of(candidate));
    if let Some(public) = &st.config.public_url {
        if same(public) {
            return true;
        }
    } else if let Some(host) = req.header(header::HOST.as_str()) {
        // Without a public URL the server is reached directly, over plain HTTP.
        let own = origin.strip_prefix("http://");
        if own.is_some_and(|h| h.eq_ignore_ascii_case(host)) {
            return true;
        }
    }
    st.config.trusted_origins.iter().any(|t| same(t))
}

/// Where users reach this server's dashboard, for links they are given: the public URL,
/// else `http://` and the request's `Host` (when it is a plain host and port), else the
/// listening address. Without a trailing slash.
pub fn dashboard_base(st: &State, req: &Request) -> String {
    if let Some(public) = &st.config.public_url {
        return public.trim_end_matches('/').to_owned();
    }
    let host = req
        .header(header::HOST.as_str())
        .filter(|h| {
            h.parse::<poem::http::uri::Authority>()
                .is_ok_and(|a| a.as_str() == *h && !h.contains('@'))
        })
        .map(str::to_owned);
    format!(
        "http://{}",
        host.unwrap_or_else(|| st.config.listen.to_string())
    )
}

fn changes_state(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Authenticates a request for an operation that `writes` or not, from the first of: an
/// `x-api-key` header, which decides alone when present; `Authorization: Bearer` with an
/// API key or a session token; the session cookie, whose state-changing requests must
/// come from an allowed origin.
pub async fn authenticate(st: &State, req: &Request, writes: bool) -> Result<Actor, ApiError> {
    let mut keys = req.headers().get_all("x-api-key").iter();
    if let Some(first) = keys.next() {
        // One key, as text; anything else is not a key this server issued.
        let raw = match (first.to_str(), keys.next()) {
            (Ok(raw), None) => raw.trim(),
            _ => "",
        };
        return Ok(keys::authenticate(st, raw, writes).await?);
    }
    if let Some(b) = bearers(req).next().filter(|b| means_key(b)) {
        return Ok(keys::authenticate(st, b, writes).await?);
    }
    let current = signed_in_session(st, req, changes_state(req.method())).await?;
    Ok(access::from_session(current.cached))
}

/// Authenticates the session of `via`. For a cookie, the response re-issues it when the
/// session was extended and clears it when the session is dead; a bearer token is the
/// client's to keep, and stays the same when its session is extended.
pub async fn session(st: &State, req: &Request, via: SessionVia<'_>) -> Result<Current, ApiError> {
    let jar = st.config.cookie_jar();
    let slot = match via {
        SessionVia::Cookie(_) => req.extensions().get::<CookieSlot>(),
        SessionVia::Bearer(_) => None,
    };
    let token = via.token();
    match sessions::authenticate(st, token).await {
        Ok(current) => {
            if current.extended
                && let Some(slot) = slot
            {
                slot.put(jar.set(token, st.config.session_ttl_ms / 1000));
            }
            Ok(current)
        }
        Err(e) => {
            if let Some(slot) = slot {
                slot.put(jar.clear());
            }
            Err(e.into())
        }
    }
}

impl<'a> ApiExtractor<'a> for Caller {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        registry.create_security_scheme(
            API_KEY_SCHEME,
            MetaSecurityScheme {
                ty: "apiKey",
                description: Some(
                    "An API key from `user.createApiKey`, sent as `x-api-key: <key>`. It acts \
                     inside the organization it was created for, with its user's role.",
                ),
                name: Some("x-api-key"),
                key_in: Some("header"),
                scheme: None,
                bearer_format: None,
                flows: None,
                openid_connect_url: None,
            },
        );
        registry.create_security_scheme(
            COOKIE_SCHEME,
            MetaSecurityScheme {
                ty: "apiKey",
                description: Some(
                    "The session cookie set by sign-in (`__Host-keygate.session_token` when \
                     served over HTTPS). State-changing requests must carry a matching Origin.",
                ),
                name: Some(cookie::NAME),
                key_in: Some("cookie"),
                scheme: None,
                bearer_format: None,
                flows: None,
                openid_connect_url: None,
            },
        );
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![API_KEY_SCHEME, COOKIE_SCHEME]
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut poem::RequestBody,
        _opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        if let Some(Authenticated(actor)) = req.extensions().get::<Authenticated>() {
            return Ok(Caller(actor.clone()));
        }
        let st = state(req)?;
        let writes = req
            .uri()
            .path()
            .strip_prefix("/api/")
            .is_none_or(crate::domain::policy::writes);
        Ok(Caller(authenticate(st, req, writes).await?))
    }
}
