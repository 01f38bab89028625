//! `apiKey.verify`: the forward-auth decision as an always-200 verdict, for services that
//! receive keygate keys themselves.

use serde_json::{Value, json};

use crate::helpers::*;

const VERIFY: &str = "/api/apiKey.verify";

async fn verify(app: &TestApp, by: &As, body: Value) -> Value {
    let r = app.post(VERIFY, body, by).await;
    r.assert_ok().clone()
}

fn code(v: &Value) -> (&str, bool) {
    (v["code"].as_str().unwrap(), v["valid"].as_bool().unwrap())
}

#[tokio::test]
async fn a_valid_key_is_described_and_its_use_counted() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let caller = As::Key(app.create_key(&owner, json!({})).await.0);
    let (key, id) = app
        .create_key(
            &owner,
            json!({"remaining": 5, "rateLimitEnabled": true, "rateLimitMax": 10,
                   "rateLimitTimeWindow": 60_000, "expiresIn": 86_400}),
        )
        .await;
    let v = verify(&app, &caller, json!({"key": key})).await;
    assert_eq!(code(&v), ("VALID", true));
    assert_eq!(v["keyId"], id.as_str());
    assert_eq!(v["organizationId"], app.first_org().as_str());
    assert_eq!(v["role"], "owner");
    assert_eq!(v["remaining"], 4);
    assert_eq!(
        v["rateLimit"],
        json!({"limit": 10, "remaining": 9, "reset": 6})
    );
    assert!(v["expiresAt"].as_str().unwrap().starts_with("2026-11-28T"));
    assert_eq!(
        v["userId"],
        app.scalar("SELECT user_id FROM api_keys WHERE id = ?1", &[&id])
    );
    // Counted as a use of the verified key, not of the caller's.
    let listed = app.keys_of(&owner).await;
    let k = listed.iter().find(|k| k["id"] == id.as_str()).unwrap();
    assert_eq!(
        (k["requestCount"].clone(), k["remaining"].clone()),
        (json!(1), json!(4))
    );
}

#[tokio::test]
async fn every_refusal_has_its_code_and_a_foreign_key_is_not_found() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let caller = As::Key(app.create_key(&owner, json!({})).await.0);

    for garbage in [
        "",
        "nope",
        "kg_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let v = verify(&app, &caller, json!({"key": garbage})).await;
        assert_eq!(code(&v), ("NOT_FOUND", false), "{garbage}");
        assert!(v.get("keyId").is_none());
    }
    let s = stranger(&app, &owner, "stranger@example.com").await;
    let As::Key(foreign) = &s.key else {
        unreachable!()
    };
    let v = verify(&app, &caller, json!({"key": foreign})).await;
    assert_eq!(code(&v), ("NOT_FOUND", false));
    assert!(v.get("keyId").is_none() && v.get("userId").is_none(), "{v}");

    let (disabled, id) = app.create_key(&owner, json!({})).await;
    app.post(
        UPDATE_KEY,
        json!({"apiKeyId": id, "enabled": false}),
        &owner,
    )
    .await
    .assert_ok();
    let v = verify(&app, &caller, json!({"key": disabled})).await;
    assert_eq!(code(&v), ("DISABLED", false));
    assert_eq!(v["keyId"], id.as_str());

    let (expiring, _) = app.create_key(&owner, json!({"expiresIn": 86_400})).await;
    let (limited, _) = app
        .create_key(
            &owner,
            json!({"rateLimitEnabled": true, "rateLimitMax": 1, "rateLimitTimeWindow": 60_000}),
        )
        .await;
    let (quota, _) = app.create_key(&owner, json!({"remaining": 1})).await;
    let (read_only, _) = app
        .create_key(&owner, json!({"scope": {"readOnly": true}}))
        .await;

    assert_eq!(
        code(&verify(&app, &caller, json!({"key": limited})).await),
        ("VALID", true)
    );
    let v = verify(&app, &caller, json!({"key": limited})).await;
    assert_eq!(code(&v), ("RATE_LIMITED", false));
    assert_eq!(v["rateLimit"]["remaining"], 0);
    assert_eq!(
        code(&verify(&app, &caller, json!({"key": quota})).await),
        ("VALID", true)
    );
    let v = verify(&app, &caller, json!({"key": quota})).await;
    assert_eq!(code(&v), ("USAGE_EXCEEDED", false));
    assert_eq!(v["remaining"], 0);
    let v = verify(&app, &caller, json!({"key": read_only, "method": "POST"})).await;
    assert_eq!(code(&v), ("INSUFFICIENT_PERMISSIONS", false));
    let v = verify(&app, &caller, json!({"key": read_only, "method": "GET"})).await;
    assert_eq!(code(&v), ("VALID", true));

    // A member's key: removed from the organization (its keys there go with it), or
    // without access to the application named.
    let (_, env) = project(&app, &owner, "site").await;
    let web = app_id(&application(&app, &owner, &env, "web").await);
    let [_, member_key] = member_by_session_and_key(&app, &owner, &[], &[], &[]).await;
    let As::Key(member_key) = member_key else {
        unreachable!()
    };
    let v = verify(
        &app,
        &caller,
        json!({"key": member_key, "applicationId": web}),
    )
    .await;
    assert_eq!(code(&v), ("INSUFFICIENT_PERMISSIONS", false));
    assert_eq!(v["role"], "member");
    let v = verify(
        &app,
        &caller,
        json!({"key": w_owner_key(&app, &owner).await, "applicationId": web}),
    )
    .await;
    assert_eq!(code(&v), ("VALID", true));
    let user = app.scalar(
        "SELECT id FROM users WHERE email = 'lists@example.com'",
        &[],
    );
    app.exec(
        "UPDATE members SET can_access_to_api = 0 WHERE user_id = ?1",
        &[&user.as_str().unwrap()],
    );
    // The change above bypassed the server: a restart makes it see it.
    let app = app.reopen();
    let caller_again = caller.clone();
    let v = verify(&app, &caller_again, json!({"key": member_key})).await;
    assert_eq!(code(&v), ("INSUFFICIENT_PERMISSIONS", false));

    app.clock.advance(2 * 86_400 * 1000);
    let v = verify(&app, &caller_again, json!({"key": expiring})).await;
    assert_eq!(code(&v), ("EXPIRED", false));
}

async fn w_owner_key(app: &TestApp, owner: &As) -> String {
    app.create_key(owner, json!({})).await.0
}

#[tokio::test]
async fn a_key_whose_user_left_the_organization_is_not_a_member() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let caller = As::Key(app.create_key(&owner, json!({})).await.0);
    let admin = app
        .invite_and_join(&owner, "admin@example.com", "admin")
        .await;
    let (key, id) = app.create_key(&admin.who, json!({})).await;
    assert_eq!(
        code(&verify(&app, &caller, json!({"key": key})).await),
        ("VALID", true)
    );
    app.exec("DELETE FROM members WHERE id = ?1", &[&admin.member_id]);
    let app = app.reopen();
    let v = verify(&app, &caller, json!({"key": key})).await;
    assert_eq!(code(&v), ("NOT_A_MEMBER", false));
    assert_eq!(v["keyId"], id.as_str());
    assert!(v.get("role").is_none());
}

#[tokio::test]
async fn only_owners_and_admins_verify_and_only_for_their_organization() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, _) = app.create_key(&owner, json!({})).await;
    let [member_session, member_key] = member_by_session_and_key(&app, &owner, &[], &[], &[]).await;
    for who in [&member_session, &member_key] {
        app.post(VERIFY, json!({"key": key}), who)
            .await
            .assert_error(401, "permission_denied");
    }
    app.post(VERIFY, json!({"key": key}), &As::Nobody)
        .await
        .assert_error(401, "missing_credentials");
    let (ro, _) = app
        .create_key(&owner, json!({"scope": {"readOnly": true}}))
        .await;
    app.post(VERIFY, json!({"key": key}), &As::Key(ro))
        .await
        .assert_error(401, "permission_denied");
    // A session verifies too.
    assert_eq!(
        code(&verify(&app, &owner, json!({"key": key})).await),
        ("VALID", true)
    );
    // An application of another organization is the caller's request gone wrong.
    let s = stranger(&app, &owner, "stranger@example.com").await;
    let (_, env) = project(&app, &s.who, "theirs").await;
    let theirs = app_id(&application(&app, &s.who, &env, "theirs").await);
    app.post(VERIFY, json!({"key": key, "applicationId": theirs}), &owner)
        .await
        .assert_error(401, "wrong_organization");
    app.post(
        VERIFY,
        json!({"key": key, "applicationId": "no-such-app"}),
        &owner,
    )
    .await
    .assert_error(404, "not_found");
}

#[tokio::test]
async fn a_key_or_method_longer_than_the_spec_allows_is_refused() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    for (body, field) in [
        (json!({"key": "k".repeat(513)}), "key"),
        (json!({"key": "k", "method": "M".repeat(17)}), "method"),
        (json!({"key": "k", "method": "  "}), "method"),
    ] {
        let r = app.post(VERIFY, body, &owner).await;
        r.assert_error(400, "validation_failed");
        assert_eq!(r.issue_paths(), [field]);
    }
    // Exactly at the limit is a verification.
    let v = verify(&app, &owner, json!({"key": "k".repeat(512)})).await;
    assert_eq!(code(&v), ("NOT_FOUND", false));
}
