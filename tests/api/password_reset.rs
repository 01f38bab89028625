//! Password-reset links: an owner or admin makes one for a member
//! (`user.createPasswordReset`), and the member sets a new password with it
//! (`auth.resetPassword`), once, within an hour, and is signed out everywhere.

use keygate::clock::{HOUR, rfc3339};
use poem::http::Method;
use serde_json::{Value, json};

use crate::helpers::*;

const CREATE_RESET: &str = "/api/user.createPasswordReset";
const RESET: &str = "/api/auth/reset-password";
const NEW_PASSWORD: &str = "a brand new passphrase";

/// An owner, an admin and a member of "My Organization".
struct World {
    app: TestApp,
    owner: As,
    owner_id: String,
    admin: Joined,
    member: Joined,
}

async fn world() -> World {
    world_with(TestApp::new()).await
}

async fn world_with(app: TestApp) -> World {
    let (owner, owner_id, _) = app.owner_ids().await;
    let admin = app
        .invite_and_join(&owner, "admin@example.com", "admin")
        .await;
    let member = app
        .invite_and_join(&owner, "member@example.com", "member")
        .await;
    World {
        app,
        owner,
        owner_id,
        admin,
        member,
    }
}

impl World {
    async fn issue(&self, by: &As, user: &str) -> Reply {
        self.app
            .post(CREATE_RESET, json!({"userId": user}), by)
            .await
    }

    /// A link for the member, made by the owner; its token.
    async fn link_for_member(&self) -> String {
        let r = self.issue(&self.owner, &self.member.user_id).await;
        r.assert_ok()["token"].as_str().unwrap().to_owned()
    }

    async fn reset(&self, token: &str, password: &str) -> Reply {
        self.app
            .post(
                RESET,
                json!({"token": token, "newPassword": password}),
                &As::Nobody,
            )
            .await
    }

    fn resets(&self) -> i64 {
        self.app.count("password_resets")
    }

    fn password_hash(&self, user: &str) -> Value {
        self.app
            .scalar("SELECT password_hash FROM users WHERE id = ?1", &[&user])
    }
}

// ---------------------------------------------------------------- making a link

#[tokio::test]
async fn an_owner_makes_a_link_for_a_member_that_holds_its_token_once() {
    let w = world().await;

    let r = w.issue(&w.owner, &w.member.user_id).await;

    let body = r.assert_ok();
    let token = body["token"].as_str().unwrap();
    assert_eq!(token.len(), 43);
    assert!(token.bytes().all(|b| b.is_ascii_alphanumeric()), "{token}");
    assert_eq!(body["url"], format!("http://127.0.0.1:3000/#reset={token}"));
    assert_eq!(body["expiresAt"], rfc3339(T0 + HOUR));
    assert_eq!(
        body.as_object().unwrap().len(),
        3,
        "token, url and expiresAt only: {body}"
    );
    // Stored by its SHA-256, never as itself.
    let stored = w.app.column_bytes(
        "SELECT token_hash FROM password_resets WHERE user_id = ?1",
        &[&w.member.user_id],
    );
    assert_eq!(stored, [sha256(token.as_bytes())]);
    assert!(!dump(&w.app).iter().any(|row| row.contains(token)));
    let row = w.app.scalar(
        "SELECT json_array(created_by, created_at, expires_at, used_at)
         FROM password_resets WHERE user_id = ?1",
        &[&w.member.user_id],
    );
    assert_eq!(
        serde_json::from_str::<Value>(row.as_str().unwrap()).unwrap(),
        json!([w.owner_id, T0, T0 + HOUR, null])
    );
}

#[tokio::test]
async fn the_link_is_at_the_public_url_or_the_host_the_caller_used() {
    let app = TestApp::with_config(|c| c.public_url = Some("http://keygate.example.com".into()));
    let w = world_with(app).await;
    let r = w.issue(&w.owner, &w.member.user_id).await;
    let token = r.assert_ok()["token"].as_str().unwrap();
    assert_eq!(
        r.body["url"],
        format!("http://keygate.example.com/#reset={token}")
    );

    let w = world().await;
    let by_host = w
        .app
        .send(
            w.app
                .request(Method::POST, CREATE_RESET)
                .header("cookie", cookie(w.owner.token()))
                .header("origin", ORIGIN)
                .header("host", "keygate.lan:8080")
                .body_json(&json!({"userId": w.member.user_id})),
        )
        .await;
    let token = by_host.assert_ok()["token"].as_str().unwrap();
    assert_eq!(
        by_host.body["url"],
        format!("http://keygate.lan:8080/#reset={token}")
    );
}

#[tokio::test]
async fn an_admin_makes_a_link_for_a_member() {
    let w = world().await;

    let r = w.issue(&w.admin.who, &w.member.user_id).await;

    r.assert_ok();
    assert_eq!(
        w.app.scalar("SELECT created_by FROM password_resets", &[]),
        json!(w.admin.user_id)
    );
}

#[tokio::test]
async fn a_member_may_not_make_a_link() {
    let w = world().await;
    let other = w
        .app
        .invite_and_join(&w.owner, "other@example.com", "member")
        .await;

    let r = w.issue(&w.member.who, &other.user_id).await;

    r.assert_error(401, "permission_denied");
    assert_eq!(w.resets(), 0);
}

#[tokio::test]
async fn no_api_key_makes_a_link_not_even_the_owners() {
    let w = world().await;
    let (key, _) = w.app.create_key(&w.owner, json!({})).await;

    let r = w.issue(&As::Key(key), &w.member.user_id).await;

    r.assert_error(401, "permission_denied");
    assert_eq!(w.resets(), 0);
}

#[tokio::test]
async fn a_user_outside_the_organization_is_not_found() {
    let w = world().await;
    let stranger = stranger(&w.app, &w.owner, "stranger@example.com").await;

    // Our owner, for someone who is not one of ours; and the stranger, for our member.
    let r = w.issue(&w.owner, &stranger.user_id).await;
    r.assert_error(404, "not_found");
    let r = w.issue(&stranger.who, &w.member.user_id).await;
    r.assert_error(404, "not_found");
    let r = w.issue(&w.owner, MISSING).await;
    r.assert_error(404, "not_found");
    assert_eq!(w.resets(), 0);
}

#[tokio::test]
async fn an_admin_makes_no_link_for_the_owner_or_another_admin() {
    let w = world().await;
    let other_admin = w
        .app
        .invite_and_join(&w.owner, "admin2@example.com", "admin")
        .await;

    for target in [&w.owner_id, &other_admin.user_id] {
        let r = w.issue(&w.admin.who, target).await;
        r.assert_error(401, "permission_denied");
    }
    assert_eq!(w.resets(), 0);
}

#[tokio::test]
async fn nobody_makes_a_link_for_itself() {
    let w = world().await;

    for (who, id) in [(&w.owner, &w.owner_id), (&w.admin.who, &w.admin.user_id)] {
        let r = w.issue(who, id).await;
        r.assert_error(400, "validation_failed");
        assert_eq!(r.issue_paths(), ["userId"]);
        assert!(
            r.body["message"].as_str().unwrap().contains("user.update"),
            "{}",
            r.body
        );
    }
    assert_eq!(w.resets(), 0);
}

#[tokio::test]
async fn no_link_for_a_member_who_owns_another_organization() {
    let w = world().await;
    // Our member founds an organization of its own: a link made here would take it over
    // there too.
    w.app
        .post(
            "/api/organization.create",
            json!({"name": "Member's Own"}),
            &w.member.who,
        )
        .await
        .assert_ok();

    let r = w.issue(&w.owner, &w.member.user_id).await;

    r.assert_error(401, "permission_denied");
    assert_eq!(w.resets(), 0);
}

#[tokio::test]
async fn a_second_link_cancels_the_first() {
    let w = world().await;
    let first = w.link_for_member().await;
    let second = w.link_for_member().await;
    assert_ne!(first, second);
    assert_eq!(w.resets(), 1);

    w.reset(&first, NEW_PASSWORD)
        .await
        .assert_error(400, "invalid_reset_token");
    w.reset(&second, NEW_PASSWORD).await.assert_ok();
}

#[tokio::test]
async fn removing_the_member_cancels_its_unused_link() {
    let w = world().await;
    let token = w.link_for_member().await;
    let r = w
        .app
        .post(
            "/api/user.remove",
            json!({"userId": w.member.user_id}),
            &w.owner,
        )
        .await;
    r.assert_ok();
    assert_eq!(w.resets(), 0);
    w.reset(&token, NEW_PASSWORD)
        .await
        .assert_error(400, "invalid_reset_token");
}

// ---------------------------------------------------------------- using a link

#[tokio::test]
async fn a_link_sets_the_password_once_and_signs_the_member_out_everywhere() {
    let w = world().await;
    let second_session = w.app.sign_in(&w.member.email, PASSWORD).await;
    // A browser the member trusted to skip the two-factor step, and one of the owner's.
    for (hash, user) in [(1u8, &w.member.user_id), (2, &w.owner_id)] {
        w.app.exec(
            "INSERT INTO trusted_devices (token_hash, user_id, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4)",
            &[&vec![hash; 32], user, &T0, &(T0 + HOUR)],
        );
    }
    let token = w.link_for_member().await;
    let old_hash = w.password_hash(&w.member.user_id);
    w.app.clock.advance(HOUR - 1);

    let r = w.reset(&token, NEW_PASSWORD).await;

    assert_eq!(r.assert_ok(), &json!({"success": true}));
    assert!(r.session_token().is_none(), "a reset signs nobody in");
    assert_ne!(w.password_hash(&w.member.user_id), old_hash);
    assert_eq!(
        w.app.scalar("SELECT used_at FROM password_resets", &[]),
        json!(T0 + HOUR - 1)
    );
    assert_eq!(rows(&w.app, "sessions", "user_id", &w.member.user_id), 0);
    assert_eq!(
        rows(&w.app, "trusted_devices", "user_id", &w.member.user_id),
        0
    );
    assert_eq!(rows(&w.app, "trusted_devices", "user_id", &w.owner_id), 1);
    for old in [&w.member.who, &second_session] {
        w.app
            .get(USER_GET, &[], old)
            .await
            .assert_error(401, "invalid_session");
    }
    // Others keep their sessions.
    w.app.get(USER_GET, &[], &w.owner).await.assert_ok();

    w.app
        .try_sign_in(&w.member.email, PASSWORD)
        .await
        .assert_error(401, "invalid_credentials");
    w.app.sign_in(&w.member.email, NEW_PASSWORD).await;

    // Once only.
    let again = w.reset(&token, "yet another passphrase").await;
    again.assert_error(400, "invalid_reset_token");
    assert_eq!(again.code(), "BAD_REQUEST");
    w.app.sign_in(&w.member.email, NEW_PASSWORD).await;
}

#[tokio::test]
async fn an_expired_link_is_refused_and_changes_nothing() {
    let w = world().await;
    let token = w.link_for_member().await;
    w.app.clock.advance(HOUR);
    let before = dump(&w.app);

    let r = w.reset(&token, NEW_PASSWORD).await;

    r.assert_error(400, "invalid_reset_token");
    assert_eq!(dump(&w.app), before);
    w.app.get(USER_GET, &[], &w.member.who).await.assert_ok();

    // The server's upkeep removes the link once its hour is over.
    assert_eq!(w.app.count("password_resets"), 1);
    keygate::domain::sessions::purge_expired(&w.app.state)
        .await
        .unwrap();
    assert_eq!(w.app.count("password_resets"), 0);
}

#[tokio::test]
async fn an_unknown_or_malformed_token_gets_the_same_answer() {
    let w = world().await;
    w.link_for_member().await;
    let before = dump(&w.app);

    for token in [
        "0123456789012345678901234567890123456789012",
        "short",
        "not a token at all, with spaces and more than forty-three chars",
    ] {
        let r = w.reset(token, NEW_PASSWORD).await;
        r.assert_error(400, "invalid_reset_token");
    }
    assert_eq!(dump(&w.app), before);
}

#[tokio::test]
async fn a_new_password_of_the_wrong_length_is_refused_and_the_link_kept() {
    let w = world().await;
    let token = w.link_for_member().await;

    for password in ["short", &"x".repeat(129)] {
        let r = w.reset(&token, password).await;
        r.assert_error(400, "validation_failed");
        assert_eq!(r.issue_paths(), ["newPassword"]);
    }
    assert_eq!(
        w.app.scalar("SELECT used_at FROM password_resets", &[]),
        Value::Null
    );
    w.reset(&token, NEW_PASSWORD).await.assert_ok();
}

#[tokio::test]
async fn a_reset_from_a_foreign_origin_is_refused() {
    let w = world().await;
    let token = w.link_for_member().await;

    let r = w
        .app
        .send(
            w.app
                .request(Method::POST, RESET)
                .header("origin", "http://evil.example")
                .body_json(&json!({"token": token, "newPassword": NEW_PASSWORD})),
        )
        .await;

    r.assert_error(403, "invalid_origin");
    w.reset(&token, NEW_PASSWORD).await.assert_ok();
}

#[tokio::test]
async fn a_reset_body_over_16_kib_is_refused_unread() {
    let w = world().await;
    let token = w.link_for_member().await;

    let r = w
        .reset(&token, &format!("{NEW_PASSWORD}{}", "x".repeat(17 * 1024)))
        .await;

    r.assert_error(413, "payload_too_large");
    w.reset(&token, NEW_PASSWORD).await.assert_ok();
}

#[tokio::test]
async fn only_an_installation_administrator_makes_a_link_for_another() {
    let w = world().await;
    let installer = w
        .app
        .create_installation_admin("installer@example.com", keygate::model::Role::Member);

    // The admin is not one; the owner, the first user, is.
    let r = w.issue(&w.admin.who, installer.id.as_str()).await;
    r.assert_error(401, "permission_denied");
    assert_eq!(w.resets(), 0);
    w.issue(&w.owner, installer.id.as_str()).await.assert_ok();
}
