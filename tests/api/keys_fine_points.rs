//! API key fine points that were once wrong: the camel-cased key list, a removed
//! member's keys, the same usage in every answer, a refilled quota shown as such, and a
//! project-scoped key kept out of organization management.

use serde_json::json;

use crate::helpers::*;

/// src/api/user.rs, `Me`: the struct lacks `#[oai(rename_all = "camelCase")]`, so its
/// key list goes out as `api_keys`, the only snake_case field of the API; every other
/// field (and Dokploy) says `apiKeys`.
#[tokio::test]
async fn user_get_names_its_key_list_api_keys_in_camel_case() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (_, id) = app.create_key(&owner, json!({})).await;

    let r = app.get(USER_GET, &[], &owner).await;

    let b = r.assert_ok();
    assert!(b.get("api_keys").is_none(), "{b}");
    assert_eq!(b["apiKeys"][0]["id"], id, "{b}");
}

/// A removed member's keys are refused as `not_a_member` from the very next request, and
/// stay dead when the user is invited back: joining again drops the keys left from the
/// earlier membership.
#[tokio::test]
async fn a_removed_members_key_is_refused_as_not_a_member_and_never_returns() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (member, member_id) = app.api_member(&owner, "m@example.com").await;
    let (key, _) = app.create_key(&member, json!({})).await;
    app.try_key(&key).await.assert_ok();

    app.post("/api/user.remove", json!({"userId": member_id}), &owner)
        .await
        .assert_ok();

    app.try_key(&key).await.assert_error(401, "not_a_member");

    let invite = app
        .post(
            "/api/organization.inviteMember",
            json!({"email": "m@example.com", "role": "member"}),
            &owner,
        )
        .await;
    let token = invite.assert_ok()["token"].as_str().unwrap().to_owned();
    app.post(
        "/api/organization.acceptInvitation",
        json!({"token": token}),
        &member,
    )
    .await
    .assert_ok();

    app.try_key(&key).await.assert_error(401, "invalid_api_key");
    assert_eq!(
        app.scalar(
            "SELECT count(*) FROM api_keys WHERE user_id = ?1",
            &[&member_id]
        ),
        0
    );
}

/// src/domain/keys.rs `update` and `rotate` answer the key as read from the database,
/// without the usage held in memory that `list` folds in, so `user.updateApiKey` and
/// `user.rotateApiKey` show a request count, last use and quota that `user.get` (and
/// the next flush) contradict.
#[tokio::test]
async fn update_and_rotate_answer_the_same_usage_as_user_get() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, id) = app.create_key(&owner, json!({"remaining": 10})).await;
    for _ in 0..3 {
        app.try_key(&key).await.assert_ok();
    }

    let updated = app
        .post(
            UPDATE_KEY,
            json!({"apiKeyId": id, "name": "renamed"}),
            &owner,
        )
        .await;
    let rotated = app.post(ROTATE_KEY, json!({"apiKeyId": id}), &owner).await;

    for r in [&updated, &rotated] {
        let b = r.assert_ok();
        assert_eq!(b["requestCount"], 3, "{b}");
        assert_eq!(b["remaining"], 7, "{b}");
        assert_eq!(b["lastUsedAt"], "2026-11-27T00:00:00.000Z", "{b}");
    }
}

/// src/domain/keys.rs `list` copies `remaining` from memory as it was at the last
/// request; the refill is applied only in `admit`, on the next request. So once the
/// refill interval has passed, `user.get` still says 0 requests are left while the next
/// request passes with the refilled quota.
#[tokio::test]
async fn user_get_shows_the_quota_refilled_once_the_interval_has_passed() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, id) = app
        .create_key(
            &owner,
            json!({"remaining": 1, "refillAmount": 5, "refillInterval": 60_000}),
        )
        .await;
    app.try_key(&key).await.assert_ok();
    app.clock.advance(60_000);

    let r = app.get(USER_GET, &[], &owner).await;

    let listed = key_list(r.assert_ok());
    let k = listed.iter().find(|k| k["id"] == id.as_str()).unwrap();
    assert_eq!(k["remaining"], 5, "{k}");
}

/// A key scoped to projects may not mint keys because "it could widen itself"
/// (src/domain/keys.rs `may_manage_keys`), but src/domain/members.rs
/// `create_with_credentials` and src/domain/invitations.rs `invite` only check the role:
/// through such a key one creates an admin with a known password, who then holds every
/// right the key was narrowed from.
#[tokio::test]
async fn a_project_scoped_key_cannot_create_an_admin() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, _) = app
        .create_key(&owner, json!({"scope": {"projectIds": []}}))
        .await;
    let via = As::Key(key);

    let created = app
        .post(
            "/api/user.createUserWithCredentials",
            json!({"email": "new@example.com", "password": PASSWORD, "name": "New",
                   "role": "admin"}),
            &via,
        )
        .await;
    let invited = app
        .post(
            "/api/organization.inviteMember",
            json!({"email": "x@example.com", "role": "admin"}),
            &via,
        )
        .await;

    created.assert_error(401, "permission_denied");
    invited.assert_error(401, "permission_denied");
    assert_eq!(app.count("users"), 1);
    assert_eq!(app.count("invitations"), 0);
}
