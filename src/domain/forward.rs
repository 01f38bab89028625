//! Forward auth: keygate decides for a reverse proxy whether a request to one of the
//! user's own services may pass. The request's host and longest path prefix name a
//! domain, its application and organization; the caller (a key or a session) must be a
//! member there with access to the application, within its key's scope, quota and rate
//! limit. It answers from memory: the routing table is read once and dropped when a
//! domain changes (`Stale::Domains`), credentials and principals come from the cache.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::State;
use super::access::{Actor, Sight, Via, load_principal};
use super::cache::{CachedKey, CachedSession, Principal};
use super::policy::{self, op};
use super::{keys, sessions};
use crate::error::{Backoff, Error, Reason, Result, Throttle};
use crate::model::{ApplicationId, DomainHost, DomainPath, OrgId};
use crate::store;
use crate::store::domains::Route;

/// The domains of the server by host, each host's longest path prefix first.
#[derive(Debug, Default)]
pub struct Routes {
    by_host: HashMap<String, Vec<Route>>,
}

impl Routes {
    pub fn new(rows: Vec<Route>) -> Routes {
        let mut by_host: HashMap<String, Vec<Route>> = HashMap::new();
        for r in rows {
            by_host.entry(r.host.clone()).or_default().push(r);
        }
        for v in by_host.values_mut() {
            v.sort_by_key(|r| std::cmp::Reverse(r.path.len()));
        }
        Routes { by_host }
    }

    /// The domain of `host` (normalized) whose prefix is the longest that holds `path`
    /// (decoded, without dot segments).
    pub fn find(&self, host: &str, path: &str) -> Option<&Route> {
        self.by_host
            .get(host)?
            .iter()
            .find(|r| DomainPath::holds(&r.path, path))
    }

    /// Whether some domain has `host` (normalized).
    pub fn knows_host(&self, host: &str) -> bool {
        self.by_host.contains_key(host)
    }
}

/// The routing table as last read, with the generation that keeps a read that raced a
/// change from being kept.
#[derive(Default)]
pub struct RouteCache(RwLock<(u64, Option<Arc<Routes>>)>);

impl RouteCache {
    pub fn forget(&self) {
        let mut g = self.0.write().unwrap_or_else(|p| p.into_inner());
        g.0 += 1;
        g.1 = None;
    }
}

/// The routing table, read from the database only after a change of domains.
pub fn routes(st: &State) -> Result<Arc<Routes>> {
    let generation = {
        let g = st.routes.0.read().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = &g.1 {
            return Ok(Arc::clone(r));
        }
        g.0
    };
    let fresh = Arc::new(Routes::new(st.read(store::domains::routes)?));
    let mut g = st.routes.0.write().unwrap_or_else(|p| p.into_inner());
    if g.0 == generation && g.1.is_none() {
        g.1 = Some(Arc::clone(&fresh));
    }
    Ok(fresh)
}

/// The request a proxy asks about, as it forwarded it.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub method: &'a str,
    /// As sent, possibly with a port.
    pub host: &'a str,
    /// The path and query, as sent.
    pub uri: &'a str,
}

impl Target<'_> {
    /// Whether the method changes anything: read-only keys pass only GET, HEAD and
    /// OPTIONS.
    pub fn writes(&self) -> bool {
        method_writes(self.method)
    }

    /// The domain the request is for; 403 `unknown_domain` when none is, or when the
    /// path is not in the form a prefix can be judged on.
    pub fn route(&self, routes: &Routes) -> Result<Route> {
        let unknown = || Error::Denied(Reason::UnknownDomain);
        let host = DomainHost::parse(self.host).map_err(|_| unknown())?;
        let path = request_path(self.uri).ok_or_else(unknown)?;
        routes
            .find(host.as_str(), &path)
            .cloned()
            .ok_or_else(unknown)
    }
}

/// Whether a request of `method` changes anything (any case): all but GET, HEAD and
/// OPTIONS.
pub fn method_writes(method: &str) -> bool {
    !["GET", "HEAD", "OPTIONS"]
        .iter()
        .any(|m| m.eq_ignore_ascii_case(method))
}

/// The path of `uri` (path and query, or an absolute URL), percent-decoded, when it has no
/// `.` or `..` segment and no backslash once decoded: an upstream could resolve those to
/// a path under another prefix than the one matched here, so they are refused rather
/// than judged.
pub fn request_path(uri: &str) -> Option<std::borrow::Cow<'_, str>> {
    let path = uri.split(['?', '#']).next().unwrap_or_default();
    if !path.starts_with('/') {
        return None;
    }
    let decoded = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .ok()?;
    let clean = !decoded.contains('\\')
        && !decoded.contains('\0')
        && decoded[1..].split('/').all(|seg| seg != "." && seg != "..");
    clean.then_some(decoded)
}

/// The credential a request to a protected service carries.
#[derive(Debug, Clone, Copy)]
pub enum Credential<'a> {
    Key(&'a str),
    Session(&'a str),
}

/// Who may pass, and as whom.
pub struct Granted {
    pub principal: Arc<Principal>,
    /// The key it came with; `None` for a session.
    pub key: Option<Arc<CachedKey>>,
    /// The session, when it was extended on this request and its cookie should be sent
    /// again.
    pub extended: bool,
}

impl Granted {
    pub fn org(&self) -> Option<&OrgId> {
        self.principal
            .membership
            .as_ref()
            .ok()
            .map(|m| &m.organization_id)
    }
}

/// Whether an error of `decide` is about the credential itself (401: sign in again)
/// rather than about what the caller may do (403).
pub fn unauthenticated(e: &Error) -> bool {
    matches!(
        e,
        Error::Denied(
            Reason::MissingCredentials
                | Reason::InvalidApiKey
                | Reason::ApiKeyExpired
                | Reason::ApiKeyDisabled
                | Reason::InvalidSession
                | Reason::SessionExpired
        )
    )
}

/// The whole decision on `target` for `credential`: its domain, then the credential,
/// then membership and access in the domain's organization, then (for a key) its quota
/// and rate limit, spent only when everything else allowed the request.
pub async fn decide(st: &State, credential: Credential<'_>, target: Target<'_>) -> Result<Granted> {
    let routes = routes(st)?;
    let route = target.route(&routes)?;
    let reaches = |principal: &Principal, scope| {
        Sight { principal, scope }.sees_application(
            &route.application_id,
            &route.environment_id,
            &route.project_id,
        )
    };
    match credential {
        Credential::Key(raw) => {
            let cached = keys::verify(st, raw, target.writes())?;
            if cached.key.organization_id != route.organization_id {
                return Err(Error::Denied(Reason::WrongOrganization));
            }
            if !reaches(&cached.principal, Some(&cached.key.scope)) {
                return Err(Error::Denied(Reason::PermissionDenied));
            }
            keys::admit(st, &cached, st.now()).await?;
            Ok(Granted {
                principal: Arc::clone(&cached.principal),
                key: Some(cached),
                extended: false,
            })
        }
        Credential::Session(token) => {
            let current = sessions::authenticate(st, token).await?;
            let s = &current.cached;
            if route.require_two_factor && !s.principal.user.two_factor_enabled {
                return Err(Error::Denied(Reason::TwoFactorRequired));
            }
            let principal = if s
                .principal
                .membership
                .as_ref()
                .ok()
                .map(|m| &m.organization_id)
                == Some(&route.organization_id)
            {
                Arc::clone(&s.principal)
            } else {
                guest(st, s, &route.organization_id)?
            };
            principal
                .membership
                .as_ref()
                .map_err(|_| Error::Denied(Reason::NotAMember))?;
            if !reaches(&principal, None) {
                return Err(Error::Denied(Reason::PermissionDenied));
            }
            Ok(Granted {
                principal,
                key: None,
                extended: current.extended,
            })
        }
    }
}

/// The principal of the session's user in `org`, which is not the session's active one.
fn guest(st: &State, s: &CachedSession, org: &OrgId) -> Result<Arc<Principal>> {
    let user = &s.principal.user;
    match st.cache.guest(&user.id, org) {
        Ok(p) => Ok(p),
        Err(generation) => {
            let p = Arc::new(st.read(|c| load_principal(c, user.clone(), Some(org)))?);
            st.cache
                .put_guest(user.id.clone(), org.clone(), generation, Arc::clone(&p));
            Ok(p)
        }
    }
}

/// The outcome of `apiKey.verify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Valid,
    NotFound,
    Disabled,
    Expired,
    NotAMember,
    InsufficientPermissions,
    RateLimited,
    UsageExceeded,
}

/// What `apiKey.verify` found out about a key.
pub struct Verdict {
    pub code: Code,
    /// The key, unless it was not found (in the caller's organization).
    pub key: Option<Arc<CachedKey>>,
    /// What is left of its quota, and of its rate limit, after this use.
    pub remaining: Option<i64>,
    pub rate: Option<Backoff>,
}

/// `apiKey.verify`: the decision forward auth makes, for a service that receives keys
/// itself. The caller is an owner or admin; a key of another organization is
/// `NotFound`, as one that does not exist. With `app`, the key's user must have access
/// to it; with `method`, a read-only key passes only GET, HEAD and OPTIONS. A valid key
/// spends one use of its quota and rate limit.
pub async fn verify(
    st: &State,
    actor: &Actor,
    raw: &str,
    app: Option<&ApplicationId>,
    method: Option<&str>,
) -> Result<Verdict> {
    policy::authorize::<op::ApiKeyVerify>(actor)?;
    let org = &actor.member()?.organization_id;
    let target = app
        .map(|id| super::resources::visible_application(st, actor, id))
        .transpose()?;
    let writes = method.is_some_and(method_writes);
    let verdict = |code, key: Option<Arc<CachedKey>>| {
        let (remaining, rate) = key
            .as_deref()
            .map_or((None, None), |k| keys::left(k, st.now()));
        Ok(Verdict {
            code,
            key,
            remaining,
            rate,
        })
    };
    // The record as the cache holds it, whatever the checks will say of it.
    let cached = match keys::verify(st, raw, writes) {
        Ok(k) => k,
        Err(Error::Denied(r)) => {
            let code = match r {
                Reason::ApiKeyDisabled => Code::Disabled,
                Reason::ApiKeyExpired => Code::Expired,
                Reason::NotAMember | Reason::NoActiveOrganization => Code::NotAMember,
                Reason::PermissionDenied => Code::InsufficientPermissions,
                _ => Code::NotFound,
            };
            let key = match code {
                Code::NotFound => None,
                _ => keys::cached(st, raw).filter(|k| k.key.organization_id == *org),
            };
            if key.is_none() {
                return verdict(Code::NotFound, None);
            }
            return verdict(code, key);
        }
        Err(e) => return Err(e),
    };
    if cached.key.organization_id != *org {
        return verdict(Code::NotFound, None);
    }
    if let Some((a, e)) = &target {
        let as_key = Actor {
            via: Via::Key(Arc::clone(&cached)),
        };
        if !as_key.sees_application(a, e) {
            return verdict(Code::InsufficientPermissions, Some(cached));
        }
    }
    match keys::admit(st, &cached, st.now()).await {
        Ok(()) => verdict(Code::Valid, Some(cached)),
        Err(Error::Throttled(Throttle::RateLimited, _)) => verdict(Code::RateLimited, Some(cached)),
        Err(Error::Throttled(Throttle::UsageExceeded, _)) => {
            verdict(Code::UsageExceeded, Some(cached))
        }
        Err(e) => Err(e),
    }
}

/// Whether `url` may be where sign-in sends the browser back to: an `http` or `https`
/// URL whose host is a registered domain or keygate's own public host.
pub fn return_allowed(st: &State, url: &str) -> Result<bool> {
    let Ok(u) = url::Url::parse(url) else {
        return Ok(false);
    };
    if !matches!(u.scheme(), "http" | "https") || !u.username().is_empty() || u.password().is_some()
    {
        return Ok(false);
    }
    let Some(host) = u.host_str().and_then(|h| DomainHost::parse(h).ok()) else {
        return Ok(false);
    };
    let own = st
        .config
        .public_url
        .as_deref()
        .and_then(|p| url::Url::parse(p).ok())
        .and_then(|p| p.host_str().and_then(|h| DomainHost::parse(h).ok()));
    if own.as_ref() == Some(&host) {
        return Ok(true);
    }
    Ok(routes(st)?.knows_host(host.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ApplicationId, DomainId, EnvironmentId, ProjectId};

    fn route(host: &str, path: &str, app: &str) -> Route {
        Route {
            domain_id: DomainId(format!("d-{app}")),
            host: host.into(),
            path: path.into(),
            application_id: ApplicationId(app.into()),
            environment_id: EnvironmentId("e".into()),
            project_id: ProjectId("p".into()),
            organization_id: OrgId("o".into()),
            require_two_factor: false,
        }
    }

    #[test]
    fn the_longest_prefix_of_the_host_wins_segment_by_segment() {
        let routes = Routes::new(vec![
            route("a.test", "/", "root"),
            route("a.test", "/api/v1", "v1"),
            route("a.test", "/api", "api"),
            route("b.test", "/only", "only"),
        ]);
        let app = |host, path| routes.find(host, path).map(|r| r.application_id.as_str());
        assert_eq!(app("a.test", "/"), Some("root"));
        assert_eq!(app("a.test", "/apix"), Some("root"));
        assert_eq!(app("a.test", "/api"), Some("api"));
        assert_eq!(app("a.test", "/api/v2/x"), Some("api"));
        assert_eq!(app("a.test", "/api/v1"), Some("v1"));
        assert_eq!(app("a.test", "/api/v1/users"), Some("v1"));
        assert_eq!(app("b.test", "/"), None);
        assert_eq!(app("b.test", "/only/x"), Some("only"));
        assert_eq!(app("c.test", "/"), None);
    }

    #[test]
    fn request_paths_are_decoded_and_dot_segments_refused() {
        assert_eq!(request_path("/a%20b?x=/../y").as_deref(), Some("/a b"));
        assert_eq!(request_path("/%61dmin").as_deref(), Some("/admin"));
        for bad in [
            "",
            "a",
            "/a/../b",
            "/..",
            "/a/.",
            "/a/%2E%2e/b",
            "/a%2f..%2fb",
            "/a\\b",
            "/a%5cb",
            "/%ff",
            "/a%00",
        ] {
            assert_eq!(request_path(bad), None, "{bad:?}");
        }
    }
}
