//! What clients that are not browsers rely on: API keys as `Authorization: Bearer`, a
//! session token in the sign-in answer used without cookie or Origin, `RateLimit-*`
//! headers before a 429, and a spec whose examples are valid requests.

use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn an_api_key_works_as_authorization_bearer_and_x_api_key_comes_first() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, _) = app.create_key(&owner, json!({})).await;

    let r = app
        .post(
            "/api/project.create",
            json!({"name": "by bearer"}),
            &As::Bearer(key.clone()),
        )
        .await;
    r.assert_ok();
    let listed = app
        .get("/api/project.all", &[], &As::Bearer(key.clone()))
        .await;
    assert_eq!(listed.assert_ok()[0]["name"], "by bearer");

    // Both sent: the x-api-key decides, even when it is wrong and the bearer is right.
    let req = app
        .request(poem::http::Method::GET, "/api/project.all")
        .header("x-api-key", "kg_wrong")
        .header("authorization", format!("Bearer {key}"));
    app.send(req).await.assert_error(401, "invalid_api_key");
    // A bearer key that is not one this server issued is refused as a key, not taken
    // for a session.
    let mut forged = key.clone();
    forged.pop();
    forged.push(if key.ends_with('A') { 'B' } else { 'A' });
    app.get("/api/project.all", &[], &As::Bearer(forged))
        .await
        .assert_error(401, "invalid_api_key");
    // Another scheme is not ours: without a cookie it is no credential at all.
    let req = app
        .request(poem::http::Method::GET, "/api/project.all")
        .header("authorization", format!("Basic {key}"));
    app.send(req).await.assert_error(401, "missing_credentials");
}

#[tokio::test]
async fn a_page_of_another_site_gets_no_cors_leave_to_send_a_key() {
    // A browser asks before it sends `x-api-key` or `Authorization` across origins.
    // keygate answers no preflight, so a page elsewhere cannot spend a key it obtained,
    // and a simple cross-origin request is answered without leave to read the answer.
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, _) = app.create_key(&owner, json!({})).await;
    for header in ["x-api-key", "authorization"] {
        let req = app
            .request(poem::http::Method::OPTIONS, "/api/project.all")
            .header("origin", "https://elsewhere.example")
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", header);
        let r = app.send(req).await;
        r.assert_error(405, "method_not_allowed");
        assert_eq!(r.header("allow"), Some("GET"));
        assert_eq!(r.header("access-control-allow-origin"), None);
        assert_eq!(r.header("access-control-allow-headers"), None);
    }
    let req = app
        .request(poem::http::Method::GET, "/api/project.all")
        .header("origin", "https://elsewhere.example")
        .header("x-api-key", key.as_str());
    let r = app.send(req).await;
    r.assert_ok();
    assert_eq!(r.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn a_client_without_origin_gets_its_session_token_and_uses_it_as_a_bearer() {
    let app = TestApp::new();
    let signed_up = app
        .sign_up(json!({"name": "Owner", "email": OWNER_EMAIL, "password": PASSWORD}))
        .await;
    let body = signed_up.assert_ok();
    let token = body["token"]
        .as_str()
        .expect("a token for a client without Origin");
    assert_eq!(Some(token.to_owned()), signed_up.session_token());
    let org = body["session"]["activeOrganizationId"].as_str().unwrap();
    let bearer = As::Bearer(token.to_owned());

    // A change with the token and no Origin: no cookie is involved, so none is needed.
    let r = app
        .post(
            "/api/user.createApiKey",
            json!({"name": "ci", "metadata": {"organizationId": org}}),
            &bearer,
        )
        .await;
    assert!(r.assert_ok()["key"].is_string());
    let current = app.get(GET_SESSION, &[], &bearer).await;
    assert_eq!(current.assert_ok()["user"]["email"], OWNER_EMAIL);
    assert!(
        current.body.get("token").is_none(),
        "get-session never shows it"
    );
    assert!(current.set_cookie.is_empty(), "a bearer gets no cookie");

    // A browser's sign-in sends its Origin and gets no token: it keeps to the cookie.
    let req = app
        .request(poem::http::Method::POST, SIGN_IN)
        .header("origin", ORIGIN)
        .body_json(&json!({"email": OWNER_EMAIL, "password": PASSWORD}));
    let browser = app.send(req).await;
    assert!(
        browser.assert_ok().get("token").is_none(),
        "{}",
        browser.body
    );
    assert!(browser.session_token().is_some());
    // A sign-in without Origin gets a token of its own session.
    let again = app.try_sign_in(OWNER_EMAIL, PASSWORD).await;
    let second = again.assert_ok()["token"].as_str().unwrap().to_owned();
    assert_ne!(second, token);
    assert_eq!(app.count("sessions"), 3);

    // Signing out with the token ends that session, and only that one.
    app.post(SIGN_OUT, json!({}), &bearer).await.assert_ok();
    assert_eq!(app.count("sessions"), 2);
    assert_eq!(app.get(GET_SESSION, &[], &bearer).await.body, Value::Null);
    app.get("/api/project.all", &[], &bearer)
        .await
        .assert_error(401, "invalid_session");
    app.get("/api/project.all", &[], &As::Bearer(second))
        .await
        .assert_ok();
}

#[tokio::test]
async fn a_bearer_session_is_taken_before_the_cookie_and_needs_no_origin_for_two_factor() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let token = owner.token().to_owned();
    // The cookie is the owner's, the bearer is nobody's: the bearer decides.
    let req = app
        .request(poem::http::Method::GET, "/api/project.all")
        .header("cookie", cookie(&token))
        .header("authorization", "Bearer not-a-session");
    app.send(req).await.assert_error(401, "invalid_session");
    // The two-factor changes take the session as a bearer, without Origin.
    let r = app
        .post(
            "/api/auth/two-factor/enable",
            json!({"password": PASSWORD}),
            &As::Bearer(token),
        )
        .await;
    assert!(r.assert_ok()["totpURI"].is_string(), "{}", r.body);
}

#[tokio::test]
async fn a_rate_limited_key_learns_what_is_left_on_every_answer() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (limited, _) = app
        .create_key(
            &owner,
            json!({"rateLimitMax": 3, "rateLimitTimeWindow": 60_000}),
        )
        .await;
    let (unlimited, _) = app.create_key(&owner, json!({})).await;

    let headers = |r: &Reply| {
        ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"]
            .map(|h| r.header(h).map(str::to_owned))
    };
    let some = |v: [&str; 3]| v.map(|s| Some(s.to_owned()));
    let r = app.try_key(&limited).await;
    r.assert_ok();
    assert_eq!(headers(&r), some(["3", "2", "20"]));
    // An error after the key was admitted still says what is left.
    let r = app
        .get(
            "/api/project.one",
            &[("projectId", "Pj4kL8mN2qR6tV0xZ3cB7")],
            &As::Key(limited.clone()),
        )
        .await;
    r.assert_error(404, "not_found");
    assert_eq!(headers(&r), some(["3", "1", "40"]));
    let r = app.try_key(&limited).await;
    assert_eq!(headers(&r), some(["3", "0", "60"]));
    let r = app.try_key(&limited).await;
    r.assert_error(429, "rate_limited");
    assert_eq!(r.header("retry-after"), Some("20"));

    // No limit, no headers; nor for a session.
    let r = app.try_key(&unlimited).await;
    assert_eq!(headers(&r), [None, None, None]);
    let r = app.get("/api/project.all", &[], &owner).await;
    assert_eq!(headers(&r), [None, None, None]);
}

/// Every field of every request body, and every query parameter, has an example; a
/// request made of examples alone passes validation.
#[tokio::test]
async fn swagger_ui_defaults_made_of_the_examples_are_valid_requests() {
    let spec = keygate::api::openapi::published();
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let mut checked = 0;
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap();
            let mut query = Vec::new();
            for p in op["parameters"].as_array().into_iter().flatten() {
                // A cursor is opaque: only an answer's `nextCursor` is one, and Swagger
                // UI leaves an optional parameter without example out.
                if p["name"] == "cursor" && p["required"] != true {
                    assert!(p.get("example").is_none(), "{id}: a made-up cursor");
                    continue;
                }
                let example = p
                    .get("example")
                    .unwrap_or_else(|| panic!("{id}: parameter {} has no example", p["name"]));
                let text = match example {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                query.push((p["name"].as_str().unwrap().to_owned(), text));
            }
            // Leave the caller's own session alone.
            if matches!(
                id,
                "auth.signOut" | "user.revokeSession" | "organization.delete" | "user.update"
            ) {
                continue;
            }
            let r = if method == "get" {
                let q: Vec<(&str, &str)> = query
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                app.get(path, &q, &owner).await
            } else {
                let body = match op.pointer("/requestBody/content") {
                    // What Swagger UI prefills: the body's example. It must be the one
                    // made of the fields' examples, so that those are valid too.
                    Some(c) => {
                        let media = c.as_object().unwrap().values().next().unwrap();
                        let schemas = &spec["components"]["schemas"];
                        let made = keygate::api::openapi::sample(schemas, &media["schema"]);
                        assert_eq!(made.as_ref(), media.get("example"), "{id}");
                        made.unwrap_or_else(|| panic!("{id}: a field without example"))
                    }
                    None => json!({}),
                };
                app.post(path, body, &owner).await
            };
            assert!(
                !(r.status == 400 && r.reason() == "validation_failed"),
                "{id}: the examples make an invalid request: {}",
                r.body
            );
            checked += 1;
        }
    }
    assert!(checked > 50, "{checked}");
}

#[test]
fn every_operation_declares_its_security_and_the_spec_the_bearer_scheme() {
    let spec = keygate::api::openapi::published();
    let bearer = &spec["components"]["securitySchemes"]["Bearer"];
    assert_eq!(bearer["type"], "http");
    assert_eq!(bearer["scheme"], "bearer");
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for op in ops.as_object().unwrap().values() {
            let id = op["operationId"].as_str().unwrap();
            let security = op["security"]
                .as_array()
                .unwrap_or_else(|| panic!("{path}: no security"));
            let names: Vec<&str> = security
                .iter()
                .flat_map(|r| r.as_object().unwrap().keys().map(String::as_str))
                .collect();
            let optional = security.iter().any(|r| r == &json!({}));
            match id {
                "auth.signUp" | "auth.signIn" | "auth.resetPassword" | "health" => {
                    assert!(security.is_empty(), "{id}: {security:?}");
                }
                "auth.getSession" | "auth.signOut" => {
                    assert!(optional, "{id}: {security:?}");
                    assert_eq!(names, ["SessionCookie", "Bearer"], "{id}");
                }
                _ if id.starts_with("twoFactor.") => {
                    assert!(!optional && names.contains(&"SessionCookie"), "{id}");
                    assert!(!names.contains(&"ApiKey"), "{id}: keys have no part");
                }
                _ => assert_eq!(names, ["ApiKey", "Bearer", "SessionCookie"], "{id}"),
            }
        }
    }
}
