//! Verifying an `x-api-key`: each refusal with its own reason, in the documented order;
//! every change applies on the very next request although verified keys are answered from
//! memory; keys act inside their organization; scopes only narrow.

use keygate::auth::apikey;
use keygate::clock::{DAY, SECOND};
use serde_json::json;

use crate::helpers::*;

/// Asserts a 401 with `reason`.
#[track_caller]
fn assert_refused(r: &Reply, reason: &str) {
    r.assert_error(401, reason);
    assert_eq!(r.code(), "UNAUTHORIZED", "{}", r.body);
}

/// How many keys of `user_id` the database holds.
fn key_count_of(app: &TestApp, user_id: &str) -> serde_json::Value {
    app.scalar(
        "SELECT count(*) FROM api_keys WHERE user_id = ?1",
        &[&user_id],
    )
}

// ---------------------------------------------------------------- malformed and unknown

#[tokio::test]
async fn malformed_keys_and_bad_checksums_are_invalid_api_keys() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, _) = app.create_key(&owner, json!({})).await;
    let len = key.len();

    for bad in [
        with_char_changed(&key, 10),
        with_char_changed(&key, len - 1),
        key[..len - 1].to_owned(),
        format!("{key}a"),
        key.replacen("kg_", "sk_", 1),
        key.to_uppercase(),
        // Other systems' formats.
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc".to_owned(),
        "dokploy_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789".to_owned(),
        "x".repeat(52),
        "kg_".to_owned(),
        " ".to_owned(),
        String::new(),
    ] {
        let r = app.try_key(&bad).await;
        assert_refused(&r, "invalid_api_key");
        r.assert_json();
    }
    app.try_key(&key).await.assert_ok();
}

#[tokio::test]
async fn malformed_keys_are_refused_without_reading_the_database() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, _) = app.create_key(&owner, json!({})).await;
    let unknown = apikey::generate("kg");
    // Without the table, any lookup fails: only what never reaches the database can
    // still get its 401.
    app.exec("ALTER TABLE api_keys RENAME TO api_keys_away", &[]);

    for bad in [
        with_char_changed(&key, 10),
        "garbage".to_owned(),
        String::new(),
    ] {
        assert_refused(&app.try_key(&bad).await, "invalid_api_key");
    }

    // The control: a well-formed key does need the lookup.
    let looked_up = app.try_key(&unknown).await;
    looked_up.assert_error(500, "internal");
}

#[tokio::test]
async fn a_verified_key_and_a_known_miss_are_answered_from_memory() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, _) = app.create_key(&owner, json!({})).await;
    let unknown = apikey::generate("kg");
    app.try_key(&key).await.assert_ok();
    assert_refused(&app.try_key(&unknown).await, "invalid_api_key");

    app.exec("ALTER TABLE api_keys RENAME TO api_keys_away", &[]);

    assert_eq!(app.try_key(&key).await.assert_ok()["role"], "owner");
    assert_refused(&app.try_key(&unknown).await, "invalid_api_key");
}

/// Only a new key or a rotation can make a hash exist, and either drops just the miss of
/// its own secret: other changes keep known misses in memory.
#[tokio::test]
async fn a_known_miss_stays_in_memory_through_changes_to_other_keys_and_users() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (_, id) = app.create_key(&owner, json!({})).await;
    let Joined {
        who: member,
        user_id: member_id,
        ..
    } = member_seeing(
        &app,
        &owner,
        "member@example.com",
        json!({"canAccessToAPI": true}),
        &[],
        &[],
        &[],
    )
    .await;
    let unknown = apikey::generate("kg");
    assert_refused(&app.try_key(&unknown).await, "invalid_api_key");

    app.create_key(&owner, json!({"name": "second"})).await;
    app.post(
        UPDATE_KEY,
        json!({"apiKeyId": id, "name": "renamed"}),
        &owner,
    )
    .await
    .assert_ok();
    app.post(ROTATE_KEY, json!({"apiKeyId": id}), &owner)
        .await
        .assert_ok();
    grant(
        &app,
        &owner,
        &member_id,
        json!({"canAccessToAPI": false}),
        &[],
        &[],
        &[],
    )
    .await;
    app.get("/api/user.getPermissions", &[], &member)
        .await
        .assert_ok();
    app.exec("ALTER TABLE api_keys RENAME TO api_keys_away", &[]);

    assert_refused(&app.try_key(&unknown).await, "invalid_api_key");
}

#[tokio::test]
async fn an_unknown_well_formed_key_is_an_invalid_api_key() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    app.create_key(&owner, json!({})).await;

    for unknown in [apikey::generate("kg"), apikey::generate("my-app")] {
        assert!(apikey::well_formed(&unknown));
        assert_refused(&app.try_key(&unknown).await, "invalid_api_key");
    }
}

#[tokio::test]
async fn two_x_api_key_headers_are_an_invalid_api_key() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, _) = app.create_key(&owner, json!({})).await;

    let r = app
        .send(
            app.request(poem::http::Method::GET, "/api/user.getPermissions")
                .header("x-api-key", &key)
                .header("x-api-key", &key),
        )
        .await;

    assert_refused(&r, "invalid_api_key");
}

#[tokio::test]
async fn the_header_name_is_matched_in_any_case() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, _) = app.create_key(&owner, json!({})).await;

    for name in ["X-API-KEY", "X-Api-Key", "x-api-key"] {
        let r = app
            .send(
                app.request(poem::http::Method::GET, "/api/user.getPermissions")
                    .header(name, &key),
            )
            .await;
        assert_eq!(r.assert_ok()["role"], "owner", "{name}");
    }
}

// ---------------------------------------------------------------- the key decides

#[tokio::test]
async fn a_bad_key_is_refused_even_with_a_valid_session_cookie() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, _) = app.create_key(&owner, json!({})).await;

    for bad in [with_char_changed(&key, 10), String::new()] {
        let r = app
            .send(
                app.request(poem::http::Method::GET, "/api/user.getPermissions")
                    .header("x-api-key", &bad)
                    .header("cookie", cookie(owner.token())),
            )
            .await;
        assert_refused(&r, "invalid_api_key");
    }
    // A mutation too: nothing is created for the cookie's user.
    let r = app
        .send(
            app.request(poem::http::Method::POST, CREATE_KEY)
                .header("x-api-key", with_char_changed(&key, 10))
                .header("cookie", cookie(owner.token()))
                .header("origin", ORIGIN)
                .body_json(&json!({"name": "k", "metadata": {"organizationId": app.first_org()}})),
        )
        .await;
    assert_refused(&r, "invalid_api_key");
    assert_eq!(app.count("api_keys"), 1);
}

#[tokio::test]
async fn a_good_key_acts_as_its_user_whatever_cookie_comes_with_it() {
    let app = TestApp::new();
    let (owner, signed_up) = app.owner().await;
    let Joined { who: member, .. } = member_seeing(
        &app,
        &owner,
        "m@example.com",
        json!({"canAccessToAPI": true}),
        &[],
        &[],
        &[],
    )
    .await;
    let (key, _) = app.create_key(&owner, json!({})).await;

    let r = app
        .send(
            app.request(poem::http::Method::GET, USER_GET)
                .header("x-api-key", &key)
                .header("cookie", cookie(member.token())),
        )
        .await;

    assert_eq!(r.assert_ok()["user"], signed_up["user"]);
}

// ---------------------------------------------------------------- disabled, expired

#[tokio::test]
async fn a_key_is_refused_as_expired_from_the_millisecond_it_expires() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, id) = app.create_key(&owner, json!({"expiresIn": 86_400})).await;
    app.clock.advance(DAY - 1);
    app.try_key(&key).await.assert_ok();

    app.clock.advance(1);

    assert_refused(&app.try_key(&key).await, "api_key_expired");
    app.clock.advance(DAY);
    assert_refused(&app.try_key(&key).await, "api_key_expired");
    assert_eq!(
        app.scalar("SELECT enabled FROM api_keys WHERE id = ?1", &[&id]),
        1
    );
}

#[tokio::test]
async fn a_disabled_key_is_refused_as_disabled_before_expired() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, id) = app.create_key(&owner, json!({"expiresIn": 86_400})).await;
    app.post(
        UPDATE_KEY,
        json!({"apiKeyId": id, "enabled": false}),
        &owner,
    )
    .await
    .assert_ok();
    app.clock.advance(DAY);

    assert_refused(&app.try_key(&key).await, "api_key_disabled");

    app.post(UPDATE_KEY, json!({"apiKeyId": id, "enabled": true}), &owner)
        .await
        .assert_ok();
    assert_refused(&app.try_key(&key).await, "api_key_expired");
}

#[tokio::test]
async fn an_expired_key_is_refused_as_expired_before_its_user_lost_api_access() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let Joined {
        who: member,
        user_id: member_id,
        ..
    } = member_seeing(
        &app,
        &owner,
        "m@example.com",
        json!({"canAccessToAPI": true}),
        &[],
        &[],
        &[],
    )
    .await;
    let (key, _) = app.create_key(&member, json!({"expiresIn": 86_400})).await;
    grant(
        &app,
        &owner,
        &member_id,
        json!({"canAccessToAPI": false}),
        &[],
        &[],
        &[],
    )
    .await;
    app.clock.advance(DAY);

    assert_refused(&app.try_key(&key).await, "api_key_expired");
}

#[tokio::test]
async fn refused_requests_spend_no_quota() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, id) = app.create_key(&owner, json!({"remaining": 1})).await;
    app.post(
        UPDATE_KEY,
        json!({"apiKeyId": id, "enabled": false}),
        &owner,
    )
    .await
    .assert_ok();
    for _ in 0..3 {
        assert_refused(&app.try_key(&key).await, "api_key_disabled");
    }

    app.post(UPDATE_KEY, json!({"apiKeyId": id, "enabled": true}), &owner)
        .await
        .assert_ok();

    app.try_key(&key).await.assert_ok();
    app.try_key(&key).await.assert_error(429, "usage_exceeded");
}

// ---------------------------------------------------------------- membership and access

#[tokio::test]
async fn a_key_whose_user_is_no_longer_a_member_is_refused_as_not_a_member() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let Joined {
        who: member,
        user_id: member_id,
        ..
    } = member_seeing(
        &app,
        &owner,
        "m@example.com",
        json!({"canAccessToAPI": true}),
        &[],
        &[],
        &[],
    )
    .await;
    let (key, _) = app.create_key(&member, json!({})).await;
    // `user.remove` deletes the member's keys with the membership; only a membership
    // that vanished behind the server's back (before the key was ever verified) leaves a
    // key to check it against.
    app.state
        .db
        .write_blocking(|tx| {
            Ok(tx.execute(
                "DELETE FROM members WHERE user_id = ?1",
                [member_id.as_str()],
            )?)
        })
        .unwrap();

    assert_refused(&app.try_key(&key).await, "not_a_member");
    assert_eq!(key_count_of(&app, &member_id), 1);
}

#[tokio::test]
async fn removing_a_member_refuses_its_keys_on_the_very_next_request() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let Joined {
        who: member,
        user_id: member_id,
        ..
    } = member_seeing(
        &app,
        &owner,
        "m@example.com",
        json!({"canAccessToAPI": true}),
        &[],
        &[],
        &[],
    )
    .await;
    let (key, _) = app.create_key(&member, json!({})).await;
    app.create_key(&member, json!({"name": "second"})).await;
    let (owners, _) = app.create_key(&owner, json!({})).await;
    app.try_key(&key).await.assert_ok();

    app.post("/api/user.remove", json!({"userId": member_id}), &owner)
        .await
        .assert_ok();

    assert_refused(&app.try_key(&key).await, "not_a_member");
    // The rows stay, refused, until the user deletes them or joins again.
    assert_eq!(key_count_of(&app, &member_id), 2);
    app.try_key(&owners).await.assert_ok();
}

#[tokio::test]
async fn revoking_can_access_to_api_refuses_the_members_key_on_the_very_next_request() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let Joined {
        who: member,
        user_id: member_id,
        ..
    } = member_seeing(
        &app,
        &owner,
        "m@example.com",
        json!({"canAccessToAPI": true}),
        &[],
        &[],
        &[],
    )
    .await;
    let (key, id) = app.create_key(&member, json!({})).await;
    app.try_key(&key).await.assert_ok();

    grant(
        &app,
        &owner,
        &member_id,
        json!({"canAccessToAPI": false}),
        &[],
        &[],
        &[],
    )
    .await;

    assert_refused(&app.try_key(&key).await, "permission_denied");
    assert_eq!(
        app.scalar(
            "SELECT can_access_to_api FROM members WHERE user_id = ?1",
            &[&member_id]
        ),
        0
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM api_keys WHERE id = ?1", &[&id]),
        1
    );

    grant(
        &app,
        &owner,
        &member_id,
        json!({"canAccessToAPI": true}),
        &[],
        &[],
        &[],
    )
    .await;

    assert_eq!(app.try_key(&key).await.assert_ok()["role"], "member");
}

#[tokio::test]
async fn an_admins_key_works_without_can_access_to_api_as_admins_bypass_flags() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let Joined {
        who: admin,
        user_id: admin_id,
        ..
    } = app.invite_and_join(&owner, "a@example.com", "admin").await;
    let (key, _) = app.create_key(&admin, json!({})).await;
    app.try_key(&key).await.assert_ok();

    grant(
        &app,
        &owner,
        &admin_id,
        json!({"canAccessToAPI": false}),
        &[],
        &[],
        &[],
    )
    .await;

    let r = app.try_key(&key).await;
    assert_eq!(r.assert_ok()["role"], "admin");
    assert_eq!(r.body["canAccessToAPI"], true);
    assert_eq!(
        app.scalar(
            "SELECT can_access_to_api FROM members WHERE user_id = ?1",
            &[&admin_id]
        ),
        0
    );
}

#[tokio::test]
async fn removing_a_member_from_one_organization_leaves_its_keys_for_another_working() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let Joined {
        who: member,
        user_id: member_id,
        ..
    } = member_seeing(
        &app,
        &owner,
        "m@example.com",
        json!({"canAccessToAPI": true}),
        &[],
        &[],
        &[],
    )
    .await;
    let own = app.create_org(&member, "Second").await;
    let (here, _) = app.create_key(&member, json!({})).await;
    let (there, there_id) = app
        .create_key(&member, json!({"metadata": {"organizationId": own}}))
        .await;
    app.try_key(&here).await.assert_ok();
    app.try_key(&there).await.assert_ok();

    app.post("/api/user.remove", json!({"userId": member_id}), &owner)
        .await
        .assert_ok();

    assert_eq!(app.try_key(&here).await.status, 401);
    assert_eq!(app.try_key(&there).await.assert_ok()["role"], "owner");
    assert_eq!(key_count_of(&app, &member_id), 2);
    assert_eq!(
        app.scalar("SELECT count(*) FROM api_keys WHERE id = ?1", &[&there_id]),
        1
    );
}

#[tokio::test]
async fn an_admin_demoted_to_member_loses_admin_actions_through_its_key_at_once() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let Joined {
        who: admin,
        user_id: admin_id,
        ..
    } = app.invite_and_join(&owner, "a@example.com", "admin").await;
    let (key, _) = app.create_key(&admin, json!({})).await;
    let via = As::Key(key.clone());
    let invite = |email: &str| json!({"email": email, "role": "member"});
    app.post(
        "/api/organization.inviteMember",
        invite("x@example.com"),
        &via,
    )
    .await
    .assert_ok();
    let member_id = app.member_id(&app.first_org(), &admin_id);

    app.post(
        "/api/organization.updateMemberRole",
        json!({"memberId": member_id, "role": "member"}),
        &owner,
    )
    .await
    .assert_ok();

    let r = app
        .post(
            "/api/organization.inviteMember",
            invite("y@example.com"),
            &via,
        )
        .await;
    assert_refused(&r, "permission_denied");
    assert_eq!(app.count("invitations"), 2);
    assert_eq!(
        app.scalar("SELECT role FROM members WHERE id = ?1", &[&member_id]),
        "member"
    );
    // A demoted admin holds no member flags, canAccessToAPI included: its key stops.
    assert_refused(&app.try_key(&key).await, "permission_denied");
}

#[tokio::test]
async fn a_member_promoted_to_admin_gains_admin_actions_through_its_key_at_once() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let Joined {
        who: member,
        user_id: member_user,
        ..
    } = member_seeing(
        &app,
        &owner,
        "m@example.com",
        json!({"canAccessToAPI": true}),
        &[],
        &[],
        &[],
    )
    .await;
    let (key, _) = app.create_key(&member, json!({})).await;
    let via = As::Key(key);
    let invite = json!({"email": "x@example.com", "role": "member"});
    assert_refused(
        &app.post("/api/organization.inviteMember", invite.clone(), &via)
            .await,
        "permission_denied",
    );
    let member_id = app.member_id(&app.first_org(), &member_user);

    app.post(
        "/api/organization.updateMemberRole",
        json!({"memberId": member_id, "role": "admin"}),
        &owner,
    )
    .await
    .assert_ok();

    app.post("/api/organization.inviteMember", invite, &via)
        .await
        .assert_ok();
    assert_eq!(app.count("invitations"), 2);
}

#[tokio::test]
async fn deleting_the_organization_refuses_its_keys_on_the_very_next_request() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let second = app.create_org(&owner, "Second").await;
    let (key, _) = app
        .create_key(&owner, json!({"metadata": {"organizationId": second}}))
        .await;
    let (first, _) = app.create_key(&owner, json!({})).await;
    app.try_key(&key).await.assert_ok();

    app.post(
        "/api/organization.delete",
        json!({"organizationId": second}),
        &owner,
    )
    .await
    .assert_ok();

    assert_refused(&app.try_key(&key).await, "invalid_api_key");
    assert_eq!(app.count("api_keys"), 1);
    assert_eq!(app.count("organizations"), 1);
    app.try_key(&first).await.assert_ok();
}

// ---------------------------------------------------------------- organization context

#[tokio::test]
async fn a_key_acts_in_its_organization_whatever_the_sessions_active_one() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let first = app.first_org();
    let second = app.create_org(&owner, "Second").await;
    let (key, _) = app
        .create_key(&owner, json!({"metadata": {"organizationId": second}}))
        .await;
    app.post(
        "/api/organization.setActive",
        json!({"organizationId": first}),
        &owner,
    )
    .await
    .assert_ok();
    let via = As::Key(key);

    let active = app.get("/api/organization.active", &[], &via).await;
    let all = app.get("/api/organization.all", &[], &via).await;
    let of_session = app.get("/api/organization.all", &[], &owner).await;

    let active = active.assert_ok();
    assert_eq!(active["id"], second);
    assert_eq!(active["role"], "owner");
    let all = all.assert_ok().as_array().unwrap().clone();
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["id"], second);
    assert_eq!(of_session.assert_ok().as_array().unwrap().len(), 2);
    let one = app
        .get("/api/organization.one", &[("organizationId", &first)], &via)
        .await;
    assert_refused(&one, "wrong_organization");
}

#[tokio::test]
async fn a_key_acts_with_its_users_role() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let Joined { who: member, .. } = member_seeing(
        &app,
        &owner,
        "m@example.com",
        json!({"canAccessToAPI": true}),
        &[],
        &[],
        &[],
    )
    .await;
    let (key, _) = app.create_key(&member, json!({})).await;
    let via = As::Key(key);

    let perms = app.get("/api/user.getPermissions", &[], &via).await;
    let rename = app
        .post(
            "/api/organization.update",
            json!({"organizationId": app.first_org(), "name": "Taken over"}),
            &via,
        )
        .await;

    let perms = perms.assert_ok();
    assert_eq!(perms["role"], "member");
    assert_eq!(perms["canAccessToAPI"], true);
    assert_eq!(perms["canCreateProjects"], false);
    assert_refused(&rename, "permission_denied");
    assert_eq!(
        app.scalar("SELECT name FROM organizations", &[]),
        "My Organization"
    );
}

#[tokio::test]
async fn a_key_cannot_switch_the_active_organization() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let first = app.first_org();
    let second = app.create_org(&owner, "Second").await;
    let (key, _) = app.create_key(&owner, json!({})).await;
    let before = app.scalar("SELECT active_organization_id FROM sessions", &[]);

    for org in [&first, &second] {
        let r = app
            .post(
                "/api/organization.setActive",
                json!({"organizationId": org}),
                &As::Key(key.clone()),
            )
            .await;
        assert_refused(&r, "permission_denied");
    }
    assert_eq!(
        app.scalar("SELECT active_organization_id FROM sessions", &[]),
        before
    );
    // Nor step outside its organization by making a new one.
    let r = app
        .post(
            "/api/organization.create",
            json!({"name": "Third"}),
            &As::Key(key.clone()),
        )
        .await;
    assert_refused(&r, "permission_denied");
    assert_eq!(app.count("organizations"), 2);
}

// ---------------------------------------------------------------- scope

#[tokio::test]
async fn a_read_only_key_reads_but_every_post_is_refused_and_changes_nothing() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let org = app.first_org();
    let (key, id) = app
        .create_key(&owner, json!({"scope": {"readOnly": true}}))
        .await;
    let via = As::Key(key);

    app.get(USER_GET, &[], &via).await.assert_ok();
    app.get("/api/organization.active", &[], &via)
        .await
        .assert_ok();
    app.get("/api/user.all", &[], &via).await.assert_ok();

    for (path, body) in [
        (
            "/api/organization.update",
            json!({"organizationId": org, "name": "Renamed"}),
        ),
        (
            CREATE_KEY,
            json!({"name": "wider", "metadata": {"organizationId": org}}),
        ),
        (UPDATE_KEY, json!({"apiKeyId": id, "name": "renamed"})),
        (ROTATE_KEY, json!({"apiKeyId": id})),
        (DELETE_KEY, json!({"apiKeyId": id})),
        (
            "/api/organization.inviteMember",
            json!({"email": "x@example.com", "role": "admin"}),
        ),
    ] {
        let r = app.post(path, body, &via).await;
        assert_refused(&r, "permission_denied");
    }
    assert_eq!(
        app.scalar("SELECT name FROM organizations", &[]),
        "My Organization"
    );
    assert_eq!(app.count("api_keys"), 1);
    assert_eq!(app.scalar("SELECT name FROM api_keys", &[]), "test key");
    assert_eq!(app.count("invitations"), 0);
}

#[tokio::test]
async fn a_read_only_keys_refused_posts_spend_no_quota() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, _) = app
        .create_key(&owner, json!({"scope": {"readOnly": true}, "remaining": 2}))
        .await;
    let via = As::Key(key.clone());
    let rename = json!({"organizationId": app.first_org(), "name": "Renamed"});
    for _ in 0..3 {
        let r = app
            .post("/api/organization.update", rename.clone(), &via)
            .await;
        assert_refused(&r, "permission_denied");
    }

    app.try_key(&key).await.assert_ok();
    app.try_key(&key).await.assert_ok();
    app.try_key(&key).await.assert_error(429, "usage_exceeded");
}

#[tokio::test]
async fn scope_project_ids_must_be_projects_of_the_organization() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;

    let r = app
        .post(
            CREATE_KEY,
            json!({"name": "k", "metadata": {"organizationId": app.first_org()},
                   "scope": {"projectIds": ["no-such-project", "nor-this"]}}),
            &owner,
        )
        .await;

    r.assert_error(400, "validation_failed");
    assert_eq!(r.issue_paths(), ["scope.projectIds", "scope.projectIds"]);
    assert_eq!(app.count("api_keys"), 0);
}

#[tokio::test]
async fn a_project_scoped_key_cannot_create_or_manage_keys() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let org = app.first_org();
    // An empty project list: the narrowest scope, and the only one possible until
    // projects exist.
    let (key, id) = app
        .create_key(&owner, json!({"scope": {"projectIds": []}}))
        .await;
    let (_, other) = app.create_key(&owner, json!({"name": "other"})).await;
    let via = As::Key(key.clone());

    let listed = app.get(USER_GET, &[], &via).await;
    assert_eq!(
        key_list(listed.assert_ok())
            .iter()
            .find(|k| k["id"] == id.as_str())
            .unwrap()["scope"],
        json!({"readOnly": false, "projectIds": []})
    );
    for (path, body) in [
        (
            CREATE_KEY,
            json!({"name": "wider", "metadata": {"organizationId": org}}),
        ),
        (UPDATE_KEY, json!({"apiKeyId": other, "enabled": false})),
        (ROTATE_KEY, json!({"apiKeyId": id})),
        (DELETE_KEY, json!({"apiKeyId": other})),
    ] {
        let r = app.post(path, body, &via).await;
        assert_refused(&r, "permission_denied");
    }
    assert_eq!(app.count("api_keys"), 2);
    assert_eq!(
        app.scalar("SELECT count(*) FROM api_keys WHERE enabled = 1", &[]),
        2
    );
    app.try_key(&key).await.assert_ok();
}

#[tokio::test]
async fn an_unrestricted_key_creates_keys_in_its_own_organization() {
    let app = TestApp::new();
    let (owner, signed_up) = app.owner().await;
    let (key, _) = app.create_key(&owner, json!({})).await;

    let r = app
        .post(
            CREATE_KEY,
            json!({"name": "minted", "metadata": {"organizationId": app.first_org()},
                   "expiresIn": 86_400}),
            &As::Key(key),
        )
        .await;

    let b = r.assert_ok();
    assert_eq!(b["userId"], signed_up["user"]["id"]);
    assert_eq!(app.count("api_keys"), 2);
    let minted = b["key"].as_str().unwrap();
    app.try_key(minted).await.assert_ok();
    app.clock.advance(DAY + SECOND);
    assert_refused(&app.try_key(minted).await, "api_key_expired");
}

/// A removed member's keys are refused as `not_a_member` from the very next request, and
/// stay dead when the user is invited back: joining again drops the keys left from the
/// earlier membership.
#[tokio::test]
async fn a_removed_members_key_is_refused_as_not_a_member_and_never_returns() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let Joined {
        who: member,
        user_id: member_id,
        ..
    } = member_seeing(
        &app,
        &owner,
        "m@example.com",
        json!({"canAccessToAPI": true}),
        &[],
        &[],
        &[],
    )
    .await;
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

/// A key scoped to projects can neither create an admin with a known password nor invite
/// one: that admin would hold every right the key was narrowed from.
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

/// A key scoped to project A is refused project B's resources, and so the deletion of the
/// whole organization, which would take project B with it.
#[tokio::test]
async fn a_key_scoped_to_one_project_cannot_delete_the_organization() {
    let app = TestApp::new();
    let (owner, _, org) = app.owner_ids().await;
    // A second organization, so that this one is not the owner's last.
    app.post(
        "/api/organization.create",
        json!({"name": "Second"}),
        &owner,
    )
    .await
    .assert_ok();
    let (a, _) = project(&app, &owner, "A").await;
    let (b, _) = project(&app, &owner, "B").await;
    let key = As::Key(
        app.create_key(
            &owner,
            json!({"metadata": {"organizationId": org}, "scope": {"projectIds": [a]}}),
        )
        .await
        .0,
    );
    app.post("/api/project.remove", json!({"projectId": b}), &key)
        .await
        .assert_error(401, "permission_denied");

    let r = app
        .post(
            "/api/organization.delete",
            json!({"organizationId": org}),
            &key,
        )
        .await;

    r.assert_error(401, "permission_denied");
    assert_eq!(rows(&app, "organizations", "id", &org), 1);
    assert_eq!(rows(&app, "projects", "id", &b), 1);
}

/// The procedures that hand out rights refuse a key scoped to project A: creating an
/// admin with a password of the caller's choosing, inviting an admin, promoting a member
/// to admin, giving a member project B. Each would reach beyond the key's projects, so
/// each is 401 `permission_denied` and changes nothing.
#[tokio::test]
async fn a_key_scoped_to_one_project_cannot_hand_out_rights_beyond_it() {
    let app = TestApp::new();
    let (owner, _, org) = app.owner_ids().await;
    let (a, _) = project(&app, &owner, "A").await;
    let (b, _) = project(&app, &owner, "B").await;
    let member = app
        .invite_and_join(&owner, "member@example.com", "member")
        .await;
    let key = As::Key(
        app.create_key(
            &owner,
            json!({"metadata": {"organizationId": org}, "scope": {"projectIds": [a]}}),
        )
        .await
        .0,
    );
    let before = dump(&app);

    let calls = [
        (
            "user.createUserWithCredentials",
            json!({"email": "made@example.com", "password": PASSWORD, "name": "Made",
                   "role": "admin"}),
        ),
        (
            "organization.inviteMember",
            json!({"email": "invited@example.com", "role": "admin"}),
        ),
        (
            "organization.updateMemberRole",
            json!({"memberId": member.member_id, "role": "admin"}),
        ),
        (
            "user.assignPermissions",
            json!({"userId": member.user_id, "accessedProjects": [b]}),
        ),
    ];
    let mut answers = Vec::new();
    let mut refused = Vec::new();
    for (procedure, body) in calls {
        let r = app.post(&format!("/api/{procedure}"), body, &key).await;
        answers.push(format!("{procedure}: {} {}", r.status, r.reason()));
        refused.push(format!("{procedure}: 401 permission_denied"));
    }

    assert_eq!(answers, refused);
    assert_eq!(dump(&app), before);
}
