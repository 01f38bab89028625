//! Forward auth: `GET /api/authz/forward-auth` (Traefik, Caddy) and
//! `GET /api/authz/auth-request` (nginx) decide on requests to the user's own services
//! by their domain, the caller's membership and access, and a key's scope and limits.

use std::net::SocketAddr;

use poem::http::Method;
use serde_json::{Value, json};

use crate::helpers::*;

const FORWARD: &str = "/api/authz/forward-auth";
const AUTH_REQUEST: &str = "/api/authz/auth-request";
const PUBLIC: &str = "http://auth.example.com";

/// An installation with two applications behind domains: `web` at app.example.com and
/// `admin` at app.example.com/admin, both in the default environment of one project.
struct World {
    app: TestApp,
    owner: As,
    owner_key: String,
    owner_id: String,
    org: String,
    project: String,
    env: String,
    web: String,
    admin: String,
}

async fn world() -> World {
    let app = TestApp::with_config(|c| c.public_url = Some(PUBLIC.into()));
    let (owner, body) = app.owner().await;
    let owner_id = body["user"]["id"].as_str().unwrap().to_owned();
    let org = app.first_org();
    let (project_id, env) = project(&app, &owner, "site").await;
    let web = app_id(&application(&app, &owner, &env, "web").await);
    let admin = app_id(&application(&app, &owner, &env, "admin").await);
    domain(&app, &owner, &web, "app.example.com", "/").await;
    domain(&app, &owner, &admin, "app.example.com", "/admin").await;
    let owner_key = app.create_key(&owner, json!({})).await.0;
    World {
        app,
        owner,
        owner_key,
        owner_id,
        org,
        project: project_id,
        env,
        web,
        admin,
    }
}

async fn domain(app: &TestApp, who: &As, application: &str, host: &str, path: &str) -> String {
    let r = app
        .post(
            "/api/domain.create",
            json!({"applicationId": application, "host": host, "path": path}),
            who,
        )
        .await;
    r.assert_ok()["domainId"].as_str().unwrap().to_owned()
}

/// The headers a credential travels in to a protected service.
fn credential(who: &As) -> Vec<(String, String)> {
    match who {
        As::Nobody => vec![],
        As::Cookie(t) => vec![("cookie".into(), cookie(t))],
        As::Key(k) => vec![("x-api-key".into(), k.clone())],
        As::Cookies(c) => vec![("cookie".into(), c.clone())],
        As::Bearer(t) => vec![("authorization".into(), format!("Bearer {t}"))],
    }
}

/// Forward auth for `method https://host{uri}` as Traefik asks it, with `extra` headers.
async fn forward(
    app: &TestApp,
    method: &str,
    host: &str,
    uri: &str,
    who: &As,
    extra: &[(&str, &str)],
) -> Reply {
    let mut req = app
        .request(Method::GET, FORWARD)
        .header("x-forwarded-method", method)
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", host)
        .header("x-forwarded-uri", uri);
    for (k, v) in credential(who) {
        req = req.header(k, v);
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    app.send(req).await
}

async fn get(w: &World, uri: &str, who: &As) -> Reply {
    forward(&w.app, "GET", "app.example.com", uri, who, &[]).await
}

/// nginx's subrequest for `method url`.
async fn auth_request(app: &TestApp, method: &str, url: &str, who: &As) -> Reply {
    let mut req = app
        .request(Method::GET, AUTH_REQUEST)
        .header("x-original-url", url)
        .header("x-original-method", method);
    for (k, v) in credential(who) {
        req = req.header(k, v);
    }
    app.send(req).await
}

/// The nine identity headers of a 200.
fn identity(r: &Reply) -> Vec<String> {
    assert_eq!(r.status, 200, "refused: {}", r.body);
    [
        "x-keygate-user-id",
        "x-keygate-organization-id",
        "x-keygate-role",
        "x-keygate-auth",
        "x-keygate-key-id",
        "remote-user",
        "remote-email",
        "remote-name",
        "remote-groups",
    ]
    .iter()
    .map(|h| {
        let v = r.header(h).unwrap_or_else(|| panic!("{h} missing"));
        assert!(!v.is_empty(), "{h} is empty");
        v.to_owned()
    })
    .collect()
}

fn key_id(app: &TestApp, key: &str) -> String {
    app.scalar(
        "SELECT id FROM api_keys WHERE key_hash = ?1",
        &[&sha256(key.as_bytes())],
    )
    .as_str()
    .unwrap()
    .to_owned()
}

#[tokio::test]
async fn a_key_and_a_session_pass_with_every_identity_header() {
    let w = world().await;
    let by_key = get(&w, "/", &As::Key(w.owner_key.clone())).await;
    assert_eq!(
        identity(&by_key),
        [
            w.owner_id.as_str(),
            &w.org,
            "owner",
            "api_key",
            &key_id(&w.app, &w.owner_key),
            OWNER_EMAIL,
            OWNER_EMAIL,
            "Owner",
            "owner"
        ]
    );
    assert_eq!(by_key.header("cache-control"), Some("no-store"));

    let by_session = get(&w, "/some/page?x=1", &w.owner).await;
    let ids = identity(&by_session);
    assert_eq!((ids[3].as_str(), ids[4].as_str()), ("session", "-"));
    assert_eq!(ids[0], w.owner_id);

    // The same key as a bearer token; a bearer value that is no keygate key is the
    // service's own business and does not count as a credential.
    let bearer = format!("Bearer {}", w.owner_key);
    let r = forward(
        &w.app,
        "GET",
        "app.example.com",
        "/",
        &As::Nobody,
        &[("authorization", &bearer)],
    )
    .await;
    assert_eq!(identity(&r)[3], "api_key");
    let r = forward(
        &w.app,
        "GET",
        "app.example.com",
        "/",
        &As::Nobody,
        &[("authorization", "Bearer some-jwt")],
    )
    .await;
    r.assert_error(401, "missing_credentials");
    // With both, x-api-key decides.
    let r = forward(
        &w.app,
        "GET",
        "app.example.com",
        "/",
        &As::Key("kg_not_a_key".into()),
        &[("authorization", &bearer)],
    )
    .await;
    r.assert_error(401, "invalid_api_key");
}

#[tokio::test]
async fn without_a_credential_a_browser_is_sent_to_sign_in_and_a_client_gets_401() {
    let w = world().await;
    let api = get(&w, "/x", &As::Nobody).await;
    api.assert_error(401, "missing_credentials");
    assert!(api.header("www-authenticate").is_some());

    let html = [("accept", "text/html,application/xhtml+xml")];
    let r = forward(
        &w.app,
        "GET",
        "app.example.com",
        "/x?y=1",
        &As::Nobody,
        &html,
    )
    .await;
    assert_eq!(r.status, 302);
    let rd = "https%3A%2F%2Fapp.example.com%2Fx%3Fy%3D1";
    assert_eq!(
        r.header("location"),
        Some(format!("{PUBLIC}/?rd={rd}").as_str())
    );
    // A form post is sent on with 303, so the browser follows with GET.
    let r = forward(&w.app, "POST", "app.example.com", "/x", &As::Nobody, &html).await;
    assert_eq!(r.status, 303);
    // A script's request is not a navigation.
    let r = forward(
        &w.app,
        "GET",
        "app.example.com",
        "/x",
        &As::Nobody,
        &[
            ("accept", "text/html"),
            ("x-requested-with", "XMLHttpRequest"),
        ],
    )
    .await;
    r.assert_error(401, "missing_credentials");
    // An expired session in a browser signs in again too.
    w.app.clock.advance(4 * 24 * 3600 * 1000);
    let r = forward(&w.app, "GET", "app.example.com", "/x", &w.owner, &html).await;
    assert_eq!(r.status, 302, "{}", r.body);
}

#[tokio::test]
async fn the_longest_path_prefix_decides_segment_by_segment() {
    let w = world().await;
    let m = member_seeing(
        &w.app,
        &w.owner,
        "web@example.com",
        json!({}),
        &[&w.project],
        &[&w.env],
        &[&w.web],
    )
    .await;
    for (uri, allowed) in [
        ("/", true),
        ("/adminx", true),
        ("/about/admin", true),
        ("/admin", false),
        ("/admin/", false),
        ("/admin/users?page=2", false),
        ("/%61dmin", false),
    ] {
        let r = get(&w, uri, &m.who).await;
        if allowed {
            identity(&r);
        } else {
            r.assert_error(403, "permission_denied");
        }
    }
    // A path an upstream could resolve elsewhere is not judged.
    for uri in [
        "/x/../admin",
        "/x/%2e%2e/admin",
        "/x%2F..%2Fadmin",
        "/x\\..\\admin",
        "/./admin",
    ] {
        get(&w, uri, &m.who)
            .await
            .assert_error(403, "unknown_domain");
    }
}

#[tokio::test]
async fn an_unknown_host_is_denied_before_anyone_signs_in_for_it() {
    let w = world().await;
    let key = As::Key(w.owner_key.clone());
    for host in [
        "other.example.com",
        "example.com",
        "app.example.com.evil.test",
        "",
    ] {
        forward(&w.app, "GET", host, "/", &key, &[])
            .await
            .assert_error(403, "unknown_domain");
    }
    // Port and case do not matter.
    identity(&forward(&w.app, "GET", "APP.Example.com:8443", "/", &key, &[]).await);
    let html = [("accept", "text/html")];
    let r = forward(&w.app, "GET", "other.example.com", "/", &As::Nobody, &html).await;
    r.assert_error(403, "unknown_domain");
}

#[tokio::test]
async fn a_member_needs_the_application_in_its_lists_and_owners_and_admins_do_not() {
    let w = world().await;
    let none = member_seeing(
        &w.app,
        &w.owner,
        "none@example.com",
        json!({}),
        &[],
        &[],
        &[],
    )
    .await;
    get(&w, "/", &none.who)
        .await
        .assert_error(403, "permission_denied");
    // The application alone is not enough: its environment and project are needed too.
    let partial = member_seeing(
        &w.app,
        &w.owner,
        "partial@example.com",
        json!({}),
        &[&w.project],
        &[],
        &[&w.web],
    )
    .await;
    get(&w, "/", &partial.who)
        .await
        .assert_error(403, "permission_denied");
    let admin = w
        .app
        .invite_and_join(&w.owner, "admin@example.com", "admin")
        .await;
    let ids = identity(&get(&w, "/admin/x", &admin.who).await);
    assert_eq!(ids[2], "admin");
    // A member's key with API access and the lists passes.
    let [session, key] =
        member_by_session_and_key(&w.app, &w.owner, &[&w.project], &[&w.env], &[&w.web]).await;
    identity(&get(&w, "/", &session).await);
    assert_eq!(identity(&get(&w, "/", &key).await)[2], "member");
    get(&w, "/admin", &key)
        .await
        .assert_error(403, "permission_denied");
}

#[tokio::test]
async fn a_keys_scope_applies_read_only_and_projects() {
    let w = world().await;
    let (read_only, _) = w
        .app
        .create_key(&w.owner, json!({"scope": {"readOnly": true}}))
        .await;
    let ro = As::Key(read_only);
    for m in ["GET", "HEAD", "OPTIONS", "get"] {
        identity(&forward(&w.app, m, "app.example.com", "/", &ro, &[]).await);
    }
    for m in ["POST", "PUT", "PATCH", "DELETE"] {
        forward(&w.app, m, "app.example.com", "/", &ro, &[])
            .await
            .assert_error(403, "permission_denied");
    }
    // A key limited to another project does not reach this one's applications.
    let (other, other_env) = project(&w.app, &w.owner, "other").await;
    let elsewhere = app_id(&application(&w.app, &w.owner, &other_env, "api").await);
    domain(&w.app, &w.owner, &elsewhere, "api.example.com", "/").await;
    let (scoped, _) = w
        .app
        .create_key(&w.owner, json!({"scope": {"projectIds": [other]}}))
        .await;
    let scoped = As::Key(scoped);
    get(&w, "/", &scoped)
        .await
        .assert_error(403, "permission_denied");
    identity(&forward(&w.app, "GET", "api.example.com", "/", &scoped, &[]).await);
}

#[tokio::test]
async fn another_organizations_key_and_session_are_denied() {
    let w = world().await;
    let s = stranger(&w.app, &w.owner, "stranger@example.com").await;
    get(&w, "/", &s.key)
        .await
        .assert_error(403, "wrong_organization");
    get(&w, "/", &s.who).await.assert_error(403, "not_a_member");
}

#[tokio::test]
async fn a_session_passes_for_every_organization_its_user_is_in() {
    let w = world().await;
    // The owner makes a second organization and moves there; the first one's services
    // still let the owner in, as owner of the first.
    let second = w.app.create_org(&w.owner, "Second").await;
    w.app
        .post(
            "/api/organization.setActive",
            json!({"organizationId": second}),
            &w.owner,
        )
        .await
        .assert_ok();
    let ids = identity(&get(&w, "/", &w.owner).await);
    assert_eq!(
        (ids[1].as_str(), ids[2].as_str()),
        (w.org.as_str(), "owner")
    );
    // A member of the first organization only, whose role changes: the next request
    // sees the new role.
    let owner_in_first = w.app.sign_in(OWNER_EMAIL, PASSWORD).await;
    let m = w
        .app
        .invite_and_join(&owner_in_first, "m@example.com", "admin")
        .await;
    let their = w.app.create_org(&m.who, "Theirs").await;
    w.app
        .post(
            "/api/organization.setActive",
            json!({"organizationId": their}),
            &m.who,
        )
        .await
        .assert_ok();
    assert_eq!(identity(&get(&w, "/", &m.who).await)[2], "admin");
    w.app
        .post(
            "/api/organization.updateMemberRole",
            json!({"memberId": m.member_id, "role": "member"}),
            &owner_in_first,
        )
        .await
        .assert_ok();
    get(&w, "/", &m.who)
        .await
        .assert_error(403, "permission_denied");
}

#[tokio::test]
async fn changes_take_effect_on_the_very_next_request() {
    let w = world().await;
    let [session, key] =
        member_by_session_and_key(&w.app, &w.owner, &[&w.project], &[&w.env], &[&w.web]).await;
    identity(&get(&w, "/", &key).await);
    identity(&get(&w, "/", &session).await);

    // Access withdrawn.
    let user = w.app.scalar(
        "SELECT id FROM users WHERE email = 'lists@example.com'",
        &[],
    );
    let user = user.as_str().unwrap();
    grant(
        &w.app,
        &w.owner,
        user,
        json!({"canAccessToAPI": true}),
        &[&w.project],
        &[&w.env],
        &[],
    )
    .await;
    get(&w, "/", &key)
        .await
        .assert_error(403, "permission_denied");
    get(&w, "/", &session)
        .await
        .assert_error(403, "permission_denied");

    // A key revoked.
    let owner_key = As::Key(w.owner_key.clone());
    identity(&get(&w, "/", &owner_key).await);
    let id = key_id(&w.app, &w.owner_key);
    w.app
        .post("/api/user.deleteApiKey", json!({"apiKeyId": id}), &w.owner)
        .await
        .assert_ok();
    get(&w, "/", &owner_key)
        .await
        .assert_error(401, "invalid_api_key");

    // A member removed.
    grant(
        &w.app,
        &w.owner,
        user,
        json!({"canAccessToAPI": true}),
        &[&w.project],
        &[&w.env],
        &[&w.web],
    )
    .await;
    identity(&get(&w, "/", &key).await);
    w.app
        .post("/api/user.remove", json!({"userId": user}), &w.owner)
        .await
        .assert_ok();
    let r = get(&w, "/", &key).await;
    assert!(matches!(r.status, 401 | 403), "{}", r.body);
    get(&w, "/", &session)
        .await
        .assert_error(403, "not_a_member");

    // A domain deleted, then the application behind the other one.
    let admin_domain = w
        .app
        .scalar("SELECT id FROM domains WHERE path = '/admin'", &[]);
    identity(&get(&w, "/admin", &w.owner).await);
    w.app
        .post(
            "/api/domain.delete",
            json!({"domainId": admin_domain}),
            &w.owner,
        )
        .await
        .assert_ok();
    // /admin now falls under the root domain of `web`.
    identity(&get(&w, "/admin", &w.owner).await);
    w.app
        .post(
            "/api/application.delete",
            json!({"applicationId": w.web}),
            &w.owner,
        )
        .await
        .assert_ok();
    get(&w, "/admin", &w.owner)
        .await
        .assert_error(403, "unknown_domain");
    let _ = &w.admin;
}

#[tokio::test]
async fn rate_limits_and_quotas_apply_as_on_the_api() {
    let w = world().await;
    let (limited, _) = w
        .app
        .create_key(
            &w.owner,
            json!({"rateLimitEnabled": true, "rateLimitMax": 2, "rateLimitTimeWindow": 60_000}),
        )
        .await;
    let limited = As::Key(limited);
    identity(&get(&w, "/", &limited).await);
    identity(&get(&w, "/", &limited).await);
    let r = get(&w, "/", &limited).await;
    r.assert_error(429, "rate_limited");
    assert!(
        r.header("retry-after")
            .is_some_and(|s| s.parse::<u64>().unwrap() >= 1)
    );
    // nginx would turn a 429 into a 500: auth-request says 403, with the same hint.
    let r = auth_request(&w.app, "GET", "https://app.example.com/", &limited).await;
    r.assert_error(403, "rate_limited");
    assert!(r.header("retry-after").is_some());

    // A refused request spends nothing: a key refused for its target keeps its quota.
    let (quota, id) = w
        .app
        .create_key(
            &w.owner,
            json!({"remaining": 1, "scope": {"readOnly": true}}),
        )
        .await;
    let quota = As::Key(quota);
    forward(&w.app, "POST", "app.example.com", "/", &quota, &[])
        .await
        .assert_error(403, "permission_denied");
    forward(&w.app, "GET", "other.example.com", "/", &quota, &[])
        .await
        .assert_error(403, "unknown_domain");
    identity(&get(&w, "/", &quota).await);
    get(&w, "/", &quota)
        .await
        .assert_error(429, "usage_exceeded");
    let listed = w.app.keys_of(&w.owner).await;
    let k = listed.iter().find(|k| k["id"] == id.as_str()).unwrap();
    assert_eq!(
        (k["remaining"].clone(), k["requestCount"].clone()),
        (json!(0), json!(1))
    );
}

#[tokio::test]
async fn auth_request_reads_the_original_url_and_answers_only_200_401_or_403() {
    let w = world().await;
    let key = As::Key(w.owner_key.clone());
    identity(&auth_request(&w.app, "GET", "https://app.example.com/admin/x?y=1", &key).await);
    let r = auth_request(&w.app, "GET", "https://app.example.com/x?y=1", &As::Nobody).await;
    r.assert_error(401, "missing_credentials");
    assert_eq!(
        r.header("location"),
        Some(format!("{PUBLIC}/?rd=https%3A%2F%2Fapp.example.com%2Fx%3Fy%3D1").as_str())
    );
    // Whatever nginx is made to send, the answer is one of the three.
    for url in [
        "",
        "not a url",
        "https://other.example.com/",
        "ftp://app.example.com/",
        "https://app.example.com/../x",
    ] {
        let r = auth_request(&w.app, "GET", url, &key).await;
        assert_eq!(r.status, 403, "{url:?}: {}", r.body);
    }
    let bare = w.app.send(w.app.request(Method::GET, AUTH_REQUEST)).await;
    assert_eq!(bare.status, 403);
    // forward-auth without the forwarded host is a proxy misconfigured: 400.
    let bare = w
        .app
        .send(
            w.app
                .request(Method::GET, FORWARD)
                .header("x-api-key", &w.owner_key),
        )
        .await;
    bare.assert_error(400, "bad_request");
}

#[tokio::test]
async fn forwarded_headers_are_believed_only_from_trusted_proxies() {
    let w = world().await;
    let headers = [
        ("x-forwarded-host", "app.example.com"),
        ("x-forwarded-uri", "/"),
        ("x-forwarded-method", "GET"),
        ("x-api-key", w.owner_key.as_str()),
    ];
    let far: SocketAddr = "203.0.113.9:5000".parse().unwrap();
    let r = w
        .app
        .send_from(far, Method::GET, FORWARD, &headers, Value::Null)
        .await;
    r.assert_error(403, "untrusted_proxy");
    let r = w
        .app
        .send_from(
            far,
            Method::GET,
            AUTH_REQUEST,
            &[("x-original-url", "https://app.example.com/")],
            Value::Null,
        )
        .await;
    r.assert_error(403, "untrusted_proxy");
    // Loopback is trusted by default.
    let near: SocketAddr = "127.0.0.1:5000".parse().unwrap();
    let r = w
        .app
        .send_from(near, Method::GET, FORWARD, &headers, Value::Null)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn identity_headers_carry_names_that_are_not_ascii() {
    let w = world().await;
    w.app
        .post("/api/user.update", json!({"name": "Zoë Ωmega"}), &w.owner)
        .await
        .assert_ok();
    let r = get(&w, "/", &w.owner).await;
    assert_eq!(r.status, 200);
    let raw = r.headers.get("remote-name").unwrap().as_bytes();
    assert_eq!(raw, "Zoë Ωmega".as_bytes());
}

#[tokio::test]
async fn sign_in_returns_to_a_registered_domain_or_this_server_only() {
    let w = world().await;
    let sign_in = |rd: &str| json!({"email": OWNER_EMAIL, "password": PASSWORD, "callbackURL": rd});
    for (rd, back) in [
        ("https://app.example.com/x?y=1", true),
        ("http://APP.example.com:8080/", true),
        ("http://auth.example.com/", true),
        ("https://evil.example.net/", false),
        ("https://app.example.com.evil.net/", false),
        ("https://user@evil.net/", false),
        ("javascript:alert(1)", false),
        ("//evil.net/", false),
        ("/relative", false),
    ] {
        let r = w.app.post(SIGN_IN, sign_in(rd), &As::Nobody).await;
        let b = r.assert_ok();
        assert!(r.session_token().is_some());
        if back {
            assert_eq!(b["url"], rd, "{rd}");
        } else {
            assert!(b.get("url").is_none(), "{rd} was accepted: {b}");
        }
    }
}

#[tokio::test]
async fn a_cookie_domain_sets_domain_and_the_secure_prefix_over_https() {
    let app = TestApp::with_config(|c| {
        c.public_url = Some("https://auth.example.com".into());
        c.cookie_domain = Some("example.com".into());
    });
    let r = app
        .post(
            SIGN_UP,
            json!({"name": "Owner", "email": OWNER_EMAIL, "password": PASSWORD}),
            &As::Nobody,
        )
        .await;
    r.assert_ok();
    let set = &r.set_cookie[0];
    assert!(set.starts_with("__Secure-keygate.session_token="), "{set}");
    assert!(
        set.contains("; Domain=example.com") && set.contains("; Secure"),
        "{set}"
    );
    let token = set.split(['=', ';']).nth(1).unwrap();
    // The cookie under that name authenticates.
    let who = app
        .send(
            app.request(Method::GET, GET_SESSION)
                .header("cookie", format!("__Secure-keygate.session_token={token}")),
        )
        .await;
    assert_eq!(who.assert_ok()["user"]["email"], OWNER_EMAIL);
}

#[tokio::test]
async fn a_session_extended_through_forward_auth_gets_its_cookie_for_the_parent_domain() {
    let app = TestApp::with_config(|c| {
        c.public_url = Some(PUBLIC.into());
        c.cookie_domain = Some("example.com".into());
    });
    let (owner, _) = app.owner().await;
    let (_, env) = project(&app, &owner, "site").await;
    let web = app_id(&application(&app, &owner, &env, "web").await);
    domain(&app, &owner, &web, "app.example.com", "/").await;
    let r = forward(&app, "GET", "app.example.com", "/", &owner, &[]).await;
    identity(&r);
    assert!(
        r.set_cookie.is_empty(),
        "nothing to renew yet: {:?}",
        r.set_cookie
    );
    app.clock.advance(25 * 3600 * 1000);
    let r = forward(&app, "GET", "app.example.com", "/", &owner, &[]).await;
    identity(&r);
    let set = r.set_cookie.first().expect("the extended session's cookie");
    assert!(
        set.starts_with(&format!("keygate.session_token={}", owner.token()))
            && set.contains("; Domain=example.com")
            && set.contains(&format!("Max-Age={THREE_DAYS_SECS}")),
        "{set}"
    );
    let expires: i64 = app
        .scalar("SELECT expires_at FROM sessions", &[])
        .as_i64()
        .unwrap();
    let now = keygate::clock::Clock::now_ms(&*app.clock);
    assert_eq!(expires, now + THREE_DAYS_SECS * 1000);
}

#[tokio::test]
async fn a_callback_url_longer_than_the_spec_allows_is_refused_before_sign_in() {
    let w = world().await;
    let long = format!("https://app.example.com/{}", "x".repeat(2048));
    let r = w
        .app
        .post(
            SIGN_IN,
            json!({"email": OWNER_EMAIL, "password": PASSWORD, "callbackURL": long}),
            &As::Nobody,
        )
        .await;
    r.assert_error(400, "validation_failed");
    assert_eq!(r.issue_paths(), ["callbackURL"]);
    assert!(r.session_token().is_none());
}

#[tokio::test]
async fn a_session_without_two_factor_passes_no_domain_of_an_organization_that_requires_it() {
    let w = world().await;
    let admin = w
        .app
        .invite_and_join(&w.owner, "admin@example.com", "admin")
        .await;
    identity(&get(&w, "/", &admin.who).await);
    let (admin_key, _) = w.app.create_key(&admin.who, json!({})).await;
    turn_on(&w.app, &w.owner).await;
    let r = w
        .app
        .post(
            "/api/organization.update",
            json!({"organizationId": w.org, "requireTwoFactor": true}),
            &w.owner,
        )
        .await;
    r.assert_ok();

    get(&w, "/", &admin.who)
        .await
        .assert_error(403, "two_factor_required");
    // The owner has two-factor on; keys are unaffected.
    identity(&get(&w, "/", &w.owner).await);
    identity(&get(&w, "/", &As::Key(admin_key)).await);
    // Once on, the admin passes again.
    turn_on(&w.app, &admin.who).await;
    identity(&get(&w, "/", &admin.who).await);
}
