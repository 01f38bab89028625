//! Headers that every response of a part of the server carries, whoever answered.

use poem::http::Method;
use serde_json::json;

use crate::helpers::*;

#[track_caller]
fn assert_not_stored_nor_sniffed(label: &str, r: &Reply) {
    assert_eq!(r.header("cache-control"), Some("no-store"), "{label}");
    assert_eq!(
        r.header("x-content-type-options"),
        Some("nosniff"),
        "{label}"
    );
}

#[tokio::test]
async fn api_answers_are_never_stored_nor_sniffed_whether_they_succeed_or_fail() {
    let app = TestApp::new();
    let signed_up = app
        .sign_up(json!({"name": "Owner", "email": OWNER_EMAIL, "password": PASSWORD}))
        .await;
    let owner = As::Cookie(signed_up.session_token().expect("a session"));
    let org = app.first_org();

    let new_key = app
        .post(
            CREATE_KEY,
            json!({"name": "k", "metadata": {"organizationId": org}}),
            &owner,
        )
        .await;
    let invitation = app
        .post(
            "/api/organization.inviteMember",
            json!({"email": "new@example.com", "role": "member"}),
            &owner,
        )
        .await;
    let signed_in = app.try_sign_in(OWNER_EMAIL, PASSWORD).await;
    let refused = app.get(USER_GET, &[], &As::Nobody).await;
    let unknown = app.get("/api/no.such", &[], &As::Nobody).await;
    let health = app.get(HEALTH, &[], &As::Nobody).await;

    assert!(new_key.assert_ok()["key"].is_string());
    assert!(invitation.assert_ok()["token"].is_string());
    signed_in.assert_ok();
    refused.assert_error(401, "missing_credentials");
    unknown.assert_error(404, "not_found");
    health.assert_ok();
    for (label, r) in [
        ("sign-up", &signed_up),
        ("createApiKey", &new_key),
        ("inviteMember", &invitation),
        ("sign-in", &signed_in),
        ("401", &refused),
        ("404", &unknown),
        ("health", &health),
    ] {
        assert_not_stored_nor_sniffed(label, r);
    }
    assert_eq!(app.count("api_keys"), 1);
}

#[tokio::test]
async fn swagger_ui_loads_and_cannot_be_framed() {
    let app = TestApp::new();

    let page = app.send(app.request(Method::GET, "/swagger/")).await;
    let bare = app.send(app.request(Method::GET, "/swagger")).await;

    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .as_str()
            .is_some_and(|html| html.contains("SwaggerUIBundle")),
        "not Swagger UI: {}",
        page.body
    );
    for (label, r) in [("/swagger/", &page), ("/swagger", &bare)] {
        assert_eq!(r.header("x-frame-options"), Some("DENY"), "{label}");
        // Framing only: a script policy would stop Swagger UI's inline scripts.
        let csp: Vec<&str> = r
            .headers
            .get_all("content-security-policy")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(csp, ["frame-ancestors 'none'"], "{label}");
    }
    // The spec documents stay embeddable, cacheable files; the API headers are the API's.
    let spec = app.send(app.request(Method::GET, "/openapi.json")).await;
    assert_eq!(spec.status, 200);
    assert_eq!(spec.header("x-frame-options"), None);
    assert_eq!(spec.header("cache-control"), None);
}
