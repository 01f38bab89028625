//! Limits that hold against a determined client: attempts sent in parallel, guesses of
//! the current password, keys that try to shed their own limits, and values at the edge
//! of what the spec allows.

use std::sync::Arc;

use serde_json::json;
use tokio::task::JoinSet;

use crate::helpers::*;

#[tokio::test]
async fn wrong_passwords_sent_in_parallel_are_counted_before_they_are_checked() {
    let app = Arc::new(TestApp::new());
    app.owner().await;

    let mut set = JoinSet::new();
    for _ in 0..30 {
        let app = Arc::clone(&app);
        set.spawn(async move {
            app.post(
                "/api/auth/sign-in/email",
                json!({"email": "owner@example.com", "password": "not the password"}),
                &As::Nobody,
            )
            .await
            .status
        });
    }
    let mut statuses = Vec::new();
    while let Some(s) = set.join_next().await {
        statuses.push(s.unwrap());
    }

    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(checked, 10, "the account allows 10 attempts: {statuses:?}");
    assert_eq!(refused, 20, "{statuses:?}");
}

#[tokio::test]
async fn a_successful_sign_in_does_not_use_up_the_accounts_attempts() {
    let app = TestApp::new();
    app.owner().await;

    for _ in 0..15 {
        app.sign_in("owner@example.com", PASSWORD).await;
    }

    assert_eq!(app.count("sessions"), 16);
}

#[tokio::test]
async fn guessing_the_current_password_spends_the_same_attempts_as_sign_in() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;

    for _ in 0..10 {
        app.post(
            "/api/user.update",
            json!({"currentPassword": "a wrong guess", "password": "a new password"}),
            &owner,
        )
        .await
        .assert_error(401, "invalid_credentials");
    }
    let r = app
        .post(
            "/api/user.update",
            json!({"currentPassword": PASSWORD, "password": "a new password"}),
            &owner,
        )
        .await;

    r.assert_error(429, "too_many_attempts");
    assert!(r.headers.contains_key("retry-after"));
    // The password did not change: the old one still signs in after the window.
    app.clock.advance(16 * 60 * 1000);
    app.sign_in("owner@example.com", PASSWORD).await;
}

#[tokio::test]
async fn a_key_with_a_limit_cannot_make_a_key_without_it() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    for limit in [
        json!({"expiresIn": 86400}),
        json!({"remaining": 5}),
        json!({"rateLimitMax": 5, "rateLimitTimeWindow": 60000}),
    ] {
        let (key, _) = app.create_key(&owner, limit.clone()).await;
        let via = As::Key(key);

        let r = app
            .post(
                "/api/user.createApiKey",
                json!({"name": "wider", "metadata": {"organizationId": app.first_org()}}),
                &via,
            )
            .await;

        r.assert_error(401, "permission_denied");
        app.get("/api/user.listSessions", &[], &via)
            .await
            .assert_error(401, "permission_denied");
    }
    assert_eq!(app.count("api_keys"), 3);
}

#[tokio::test]
async fn a_key_without_limits_still_manages_keys() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, _) = app.create_key(&owner, json!({})).await;

    let r = app
        .post(
            "/api/user.createApiKey",
            json!({"name": "another", "metadata": {"organizationId": app.first_org()}}),
            &As::Key(key),
        )
        .await;

    r.assert_ok();
    assert_eq!(app.count("api_keys"), 2);
}

#[tokio::test]
async fn a_refill_interval_beyond_a_year_is_refused() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;

    let r = app
        .post(
            "/api/user.createApiKey",
            json!({
                "name": "k", "metadata": {"organizationId": app.first_org()},
                "remaining": 0, "refillAmount": 1, "refillInterval": i64::MAX
            }),
            &owner,
        )
        .await;

    r.assert_error(400, "validation_failed");
    assert_eq!(r.body["issues"][0]["path"], "refillInterval");
    assert_eq!(app.count("api_keys"), 0);
}

#[tokio::test]
async fn a_demoted_admin_keeps_no_access_list_from_before() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let project = app
        .post("/api/project.create", json!({"name": "p"}), &owner)
        .await;
    let project_id = project.assert_ok()["project"]["projectId"].clone();
    let m = app
        .member_with(
            &owner,
            "m@example.com",
            json!({"accessedProjects": [project_id]}),
        )
        .await;
    for role in ["admin", "member"] {
        app.post(
            "/api/organization.updateMemberRole",
            json!({"memberId": m.member_id, "role": role}),
            &owner,
        )
        .await
        .assert_ok();
    }

    let p = app.get("/api/user.getPermissions", &[], &m.who).await;

    assert_eq!(p.assert_ok()["accessedProjects"], json!([]));
    assert_eq!(app.count("member_projects"), 0);
}
