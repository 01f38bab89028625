//! The caller itself: `user.{get,update,listSessions,revokeSession}`.

use keygate::clock::HOUR;
use serde_json::{Value, json};

use crate::helpers::*;

const NEW_PASSWORD: &str = "an even better password";

async fn session_id(app: &TestApp, who: &As) -> String {
    let r = app.get("/api/auth/get-session", &[], who).await;
    r.assert_ok()["session"]["id"].as_str().unwrap().to_owned()
}

async fn signed_in(app: &TestApp, who: &As) -> bool {
    let r = app.get("/api/auth/get-session", &[], who).await;
    !r.assert_ok().is_null()
}

fn password_hash(app: &TestApp) -> Value {
    app.scalar(
        "SELECT password_hash FROM users WHERE email = 'owner@example.com'",
        &[],
    )
}

async fn update(app: &TestApp, who: &As, body: Value) -> Reply {
    app.post("/api/user.update", body, who).await
}

async fn sign_in_status(app: &TestApp, password: &str) -> (u16, String) {
    let r = app
        .post(
            "/api/auth/sign-in/email",
            json!({"email": "owner@example.com", "password": password}),
            &As::Nobody,
        )
        .await;
    (r.status, r.reason().to_owned())
}

// user.get

#[tokio::test]
async fn user_get_returns_the_caller_its_membership_and_permissions() {
    let app = TestApp::new();
    let (owner, owner_id, org) = app.owner_ids().await;

    let r = app.get("/api/user.get", &[], &owner).await;

    let body = r.assert_ok();
    assert_eq!(body["user"]["id"], owner_id.as_str());
    assert_eq!(body["user"]["email"], "owner@example.com");
    assert_eq!(body["user"]["name"], "Owner");
    assert!(body["user"].get("passwordHash").is_none());
    assert_eq!(body["member"]["role"], "owner");
    assert_eq!(body["member"]["organizationId"], org.as_str());
    assert_eq!(
        body["member"]["id"],
        app.member_id(&org, &owner_id).as_str()
    );
    assert_eq!(body["permissions"]["role"], "owner");
    assert_eq!(body["permissions"]["canDeleteProjects"], true);
    assert_eq!(body["permissions"]["canAccessToAPI"], true);
}

#[tokio::test]
async fn user_get_shows_a_members_assigned_permissions() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let member = member_seeing(
        &app,
        &owner,
        "member@example.com",
        json!({"canCreateProjects": true, "canAccessToAPI": true}),
        &[],
        &[],
        &[],
    )
    .await;

    let r = app.get("/api/user.get", &[], &member.who).await;

    let body = r.assert_ok();
    assert_eq!(body["user"]["email"], "member@example.com");
    assert_eq!(body["member"]["role"], "member");
    assert_eq!(body["member"]["id"], member.member_id.as_str());
    let p = &body["permissions"];
    assert_eq!(
        (
            p["canCreateProjects"].as_bool(),
            p["canAccessToAPI"].as_bool()
        ),
        (Some(true), Some(true))
    );
    assert_eq!(p["canDeleteProjects"], false);
    assert_eq!(p["canCreateServices"], false);
}

#[tokio::test]
async fn user_get_without_any_organization_has_no_membership() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let member = app
        .invite_and_join(&owner, "member@example.com", "member")
        .await;
    app.post(
        "/api/user.remove",
        json!({"userId": member.user_id}),
        &owner,
    )
    .await
    .assert_ok();

    let r = app.get("/api/user.get", &[], &member.who).await;

    let body = r.assert_ok();
    assert_eq!(body["user"]["id"], member.user_id.as_str());
    assert!(body.get("member").is_none(), "{body}");
    assert!(body.get("permissions").is_none(), "{body}");
}

// user.update

#[tokio::test]
async fn user_update_changes_the_name() {
    let app = TestApp::new();
    let (owner, owner_id, _) = app.owner_ids().await;
    let hash = password_hash(&app);
    app.clock.advance(HOUR);

    let r = update(&app, &owner, json!({"name": " New Name "})).await;

    assert_eq!(r.assert_ok()["name"], "New Name");
    assert_eq!(r.body["updatedAt"], "2026-11-27T01:00:00.000Z");
    assert_eq!(
        app.scalar("SELECT name FROM users WHERE id = ?1", &[&owner_id]),
        "New Name"
    );
    assert_eq!(
        app.scalar("SELECT updated_at FROM users WHERE id = ?1", &[&owner_id]),
        T0 + HOUR
    );
    assert_eq!(password_hash(&app), hash);
}

#[tokio::test]
async fn a_blank_name_is_refused() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;

    let r = update(&app, &owner, json!({"name": "  "})).await;

    r.assert_error(400, "validation_failed");
    assert_eq!(r.issue_paths(), ["name"]);
    assert_eq!(app.scalar("SELECT name FROM users", &[]), "Owner");
}

#[tokio::test]
async fn a_new_password_needs_the_current_one() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let hash = password_hash(&app);

    let missing = update(&app, &owner, json!({"password": NEW_PASSWORD})).await;
    let empty = update(
        &app,
        &owner,
        json!({"password": NEW_PASSWORD, "currentPassword": ""}),
    )
    .await;

    missing.assert_error(400, "validation_failed");
    assert_eq!(missing.issue_paths(), ["currentPassword"]);
    empty.assert_error(400, "validation_failed");
    assert_eq!(empty.issue_paths(), ["currentPassword"]);
    assert_eq!(password_hash(&app), hash);
}

#[tokio::test]
async fn a_wrong_current_password_changes_nothing() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let other = app.sign_in("owner@example.com", PASSWORD).await;
    let hash = password_hash(&app);

    let r = update(
        &app,
        &owner,
        json!({"name": "Renamed", "currentPassword": "not my password", "password": NEW_PASSWORD}),
    )
    .await;

    r.assert_error(401, "invalid_credentials");
    assert_eq!(password_hash(&app), hash);
    assert_eq!(app.scalar("SELECT name FROM users", &[]), "Owner");
    assert_eq!(app.count("sessions"), 2);
    assert!(signed_in(&app, &other).await);
}

#[tokio::test]
async fn a_too_short_new_password_is_refused() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let hash = password_hash(&app);

    let r = update(
        &app,
        &owner,
        json!({"currentPassword": PASSWORD, "password": "short"}),
    )
    .await;

    r.assert_error(400, "validation_failed");
    assert_eq!(r.issue_paths(), ["password"]);
    assert_eq!(password_hash(&app), hash);
}

#[tokio::test]
async fn changing_the_password_ends_the_other_sessions_and_keeps_this_one() {
    let app = TestApp::new();
    let (owner, owner_id, _) = app.owner_ids().await;
    let other = app.sign_in("owner@example.com", PASSWORD).await;
    let third = app.sign_in("owner@example.com", PASSWORD).await;
    let someone = app
        .invite_and_join(&owner, "member@example.com", "member")
        .await;
    let current = session_id(&app, &owner).await;

    let r = update(
        &app,
        &owner,
        json!({"currentPassword": PASSWORD, "password": NEW_PASSWORD}),
    )
    .await;

    assert_eq!(r.assert_ok()["id"], owner_id.as_str());
    assert_eq!(
        app.scalar(
            "SELECT group_concat(id) FROM sessions WHERE user_id = ?1",
            &[&owner_id]
        ),
        current.as_str()
    );
    assert!(!signed_in(&app, &other).await);
    assert!(!signed_in(&app, &third).await);
    assert!(signed_in(&app, &owner).await);
    app.get("/api/user.get", &[], &owner).await.assert_ok();
    assert!(
        signed_in(&app, &someone.who).await,
        "other users keep theirs"
    );
    assert_eq!(
        sign_in_status(&app, PASSWORD).await,
        (401, "invalid_credentials".into())
    );
    assert_eq!(
        sign_in_status(&app, NEW_PASSWORD).await,
        (200, String::new())
    );
}

// user.listSessions and user.revokeSession

#[tokio::test]
async fn list_sessions_shows_the_callers_sessions_in_the_order_they_began_and_marks_the_current_one()
 {
    let app = TestApp::new();
    let (owner, owner_id, _) = app.owner_ids().await;
    app.clock.advance(1);
    let newer = app.sign_in("owner@example.com", PASSWORD).await;
    app.invite_and_join(&owner, "member@example.com", "member")
        .await;
    let (first_id, newer_id) = (
        session_id(&app, &owner).await,
        session_id(&app, &newer).await,
    );

    let r = app.get("/api/user.listSessions", &[], &owner).await;

    let list = r.assert_ok().as_array().unwrap().clone();
    let rows: Vec<(&str, bool)> = list
        .iter()
        .map(|e| (e["session"]["id"].as_str().unwrap(), e["current"] == true))
        .collect();
    assert_eq!(
        rows,
        [(first_id.as_str(), true), (newer_id.as_str(), false)]
    );
    assert!(
        list.iter()
            .all(|e| e["session"]["userId"] == owner_id.as_str())
    );
    assert!(list.iter().all(|e| e["session"].get("token").is_none()));

    let from_newer = app.get("/api/user.listSessions", &[], &newer).await;
    let current: Vec<&Value> = from_newer
        .assert_ok()
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["current"] == true)
        .collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["session"]["id"], newer_id.as_str());
}

#[tokio::test]
async fn list_sessions_pages_through_the_live_sessions_with_the_total_in_a_header() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let mut began = vec![session_id(&app, &owner).await];
    for _ in 0..4 {
        let s = app.sign_in(OWNER_EMAIL, PASSWORD).await;
        began.push(session_id(&app, &s).await);
    }
    // Another user's session stays out.
    app.invite_and_join(&owner, "member@example.com", "member")
        .await;

    let (rows, totals) = app
        .every_page("/api/user.listSessions", &owner, 2, "session/id")
        .await;
    let last = app
        .get("/api/user.listSessions", &[("offset", "4")], &owner)
        .await;

    assert_eq!(rows, began);
    assert_eq!(totals, [5, 5, 5]);
    assert_eq!(last.column("session/id"), [began[4].clone()]);
    assert_eq!(last.assert_ok()[0]["current"], false);
    app.assert_refuses_bad_pages("/api/user.listSessions", &owner)
        .await;
}

#[tokio::test]
async fn list_sessions_counts_only_sessions_that_have_not_expired() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    app.clock.advance(2 * HOUR);
    let fresh = app.sign_in(OWNER_EMAIL, PASSWORD).await;
    // The first session's three days end; the second's do not.
    app.clock.advance(3 * 24 * HOUR - HOUR);

    let r = app.get("/api/user.listSessions", &[], &fresh).await;

    assert_eq!(r.column("session/id"), [session_id(&app, &fresh).await]);
    assert_eq!(r.total(), 1);
    assert!(!signed_in(&app, &owner).await);
}

#[tokio::test]
async fn revoking_one_of_ones_sessions_signs_it_out() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let other = app.sign_in("owner@example.com", PASSWORD).await;
    let other_id = session_id(&app, &other).await;

    let r = app
        .post(
            "/api/user.revokeSession",
            json!({"sessionId": other_id}),
            &owner,
        )
        .await;

    assert_eq!(r.assert_ok()["success"], true);
    assert_eq!(
        app.count_where("SELECT count(*) FROM sessions WHERE id = ?1", &[&other_id]),
        0
    );
    assert!(!signed_in(&app, &other).await);
    assert!(signed_in(&app, &owner).await);
}

#[tokio::test]
async fn revoking_someone_elses_session_is_not_found_and_leaves_it_alone() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let member = app
        .invite_and_join(&owner, "member@example.com", "member")
        .await;
    let theirs = session_id(&app, &member.who).await;

    let r = app
        .post(
            "/api/user.revokeSession",
            json!({"sessionId": theirs}),
            &owner,
        )
        .await;

    r.assert_error(404, "not_found");
    assert_eq!(
        app.count_where("SELECT count(*) FROM sessions WHERE id = ?1", &[&theirs]),
        1
    );
    assert!(signed_in(&app, &member.who).await);
}

#[tokio::test]
async fn revoking_a_missing_session_is_not_found() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;

    let r = app
        .post(
            "/api/user.revokeSession",
            json!({"sessionId": "nosuchsession0000000"}),
            &owner,
        )
        .await;

    r.assert_error(404, "not_found");
    assert_eq!(app.count("sessions"), 1);
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
