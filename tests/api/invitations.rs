//! `organization.{inviteMember,allInvitations,removeInvitation,acceptInvitation}` and
//! sign-up with an invitation token.

use keygate::clock::{HOUR, MINUTE};
use serde_json::{Value, json};

use crate::helpers::*;

const TTL: i64 = 48 * HOUR;

fn status_of(app: &TestApp, invitation: &Value) -> Value {
    app.scalar(
        "SELECT status FROM invitations WHERE id = ?1",
        &[&id_of(invitation)],
    )
}

/// A second user who owns organization B, acts in it, and invited the first user (the
/// owner of "My Organization") to B as `role`. Returns (that user, B's id, invitation).
async fn invited_to_another_org(app: &TestApp, owner: &As, role: &str) -> (Joined, String, Value) {
    let other = app
        .invite_and_join(owner, "other@example.com", "member")
        .await;
    let b = app
        .post("/api/organization.create", json!({"name": "B"}), &other.who)
        .await;
    let b = id_of(b.assert_ok());
    app.post(
        "/api/organization.setActive",
        json!({"organizationId": b}),
        &other.who,
    )
    .await
    .assert_ok();
    let inv = app.invite(&other.who, "owner@example.com", role).await;
    (other, b, inv)
}

#[tokio::test]
async fn inviting_stores_a_pending_invitation_valid_for_48_hours() {
    let app = TestApp::new();
    let (owner, owner_id, org) = app.owner_ids().await;

    let r = app
        .post(
            "/api/organization.inviteMember",
            json!({"email": " New@Example.COM ", "role": "member"}),
            &owner,
        )
        .await;

    let body = r.assert_ok();
    assert_eq!(body["email"], "new@example.com");
    assert_eq!(body["role"], "member");
    assert_eq!(body["status"], "pending");
    assert_eq!(body["organizationId"], org.as_str());
    assert_eq!(body["inviterId"], owner_id.as_str());
    assert_eq!(body["createdAt"], "2026-11-27T00:00:00.000Z");
    assert_eq!(body["expiresAt"], "2026-11-29T00:00:00.000Z");
    assert_eq!(body["token"].as_str().unwrap().len(), 43);
    let id = id_of(body);
    let row = |col: &str| {
        app.scalar(
            &format!("SELECT {col} FROM invitations WHERE id = ?1"),
            &[&id],
        )
    };
    assert_eq!(row("status"), "pending");
    assert_eq!(row("email"), "new@example.com");
    assert_eq!(row("role"), "member");
    assert_eq!(row("organization_id"), org.as_str());
    assert_eq!(row("inviter_id"), owner_id.as_str());
    assert_eq!(row("expires_at"), T0 + TTL);
}

#[tokio::test]
async fn an_admin_can_invite() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let admin = app
        .invite_and_join(&owner, "admin@example.com", "admin")
        .await;

    let r = app
        .post(
            "/api/organization.inviteMember",
            json!({"email": "second-admin@example.com", "role": "admin"}),
            &admin.who,
        )
        .await;

    assert_eq!(r.assert_ok()["inviterId"], admin.user_id.as_str());
    assert_eq!(
        app.scalar(
            "SELECT role FROM invitations WHERE email = 'second-admin@example.com'",
            &[]
        ),
        "admin"
    );
}

#[tokio::test]
async fn nobody_can_be_invited_as_owner() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;

    let r = app
        .post(
            "/api/organization.inviteMember",
            json!({"email": "boss@example.com", "role": "owner"}),
            &owner,
        )
        .await;

    r.assert_error(400, "invalid_role");
    assert_eq!(r.issue_paths(), ["role"]);
    assert_eq!(app.count("invitations"), 0);
}

#[tokio::test]
async fn an_unknown_role_is_refused() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;

    let r = app
        .post(
            "/api/organization.inviteMember",
            json!({"email": "new@example.com", "role": "superuser"}),
            &owner,
        )
        .await;

    r.assert_error(400, "validation_failed");
    assert_eq!(r.issue_paths(), ["role"]);
    assert_eq!(app.count("invitations"), 0);
}

#[tokio::test]
async fn a_malformed_email_is_refused() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;

    let r = app
        .post(
            "/api/organization.inviteMember",
            json!({"email": "not an email", "role": "member"}),
            &owner,
        )
        .await;

    r.assert_error(400, "validation_failed");
    assert_eq!(r.issue_paths(), ["email"]);
    assert_eq!(app.count("invitations"), 0);
}

#[tokio::test]
async fn a_member_cannot_invite() {
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
    let before = app.count("invitations");

    let r = app
        .post(
            "/api/organization.inviteMember",
            json!({"email": "friend@example.com", "role": "member"}),
            &member.who,
        )
        .await;

    r.assert_error(401, "permission_denied");
    assert_eq!(app.count("invitations"), before);
}

#[tokio::test]
async fn inviting_an_existing_member_is_a_conflict() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    app.invite_and_join(&owner, "member@example.com", "member")
        .await;
    let before = app.count("invitations");

    let r = app
        .post(
            "/api/organization.inviteMember",
            json!({"email": "MEMBER@example.com", "role": "admin"}),
            &owner,
        )
        .await;

    r.assert_error(409, "already_a_member");
    assert_eq!(r.code(), "CONFLICT");
    assert_eq!(app.count("invitations"), before);
}

#[tokio::test]
async fn inviting_an_email_with_a_pending_invitation_is_a_conflict() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    app.invite(&owner, "new@example.com", "member").await;

    let r = app
        .post(
            "/api/organization.inviteMember",
            json!({"email": "New@Example.com", "role": "admin"}),
            &owner,
        )
        .await;

    r.assert_error(409, "already_invited");
    assert_eq!(app.count("invitations"), 1);
}

#[tokio::test]
async fn an_email_can_be_invited_again_once_its_invitation_expired_or_was_canceled() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    app.invite(&owner, "late@example.com", "member").await;
    let canceled = app.invite(&owner, "canceled@example.com", "member").await;
    app.post(
        "/api/organization.removeInvitation",
        json!({"invitationId": id_of(&canceled)}),
        &owner,
    )
    .await
    .assert_ok();

    app.invite(&owner, "canceled@example.com", "member").await;
    app.clock.advance(TTL);
    app.invite(&owner, "late@example.com", "member").await;

    assert_eq!(
        app.count_where(
            "SELECT count(*) FROM invitations WHERE status = 'pending'",
            &[]
        ),
        3
    );
    assert_eq!(app.count("invitations"), 4);
}

#[tokio::test]
async fn all_invitations_lists_the_active_organizations_invitations_in_the_order_they_were_sent_without_tokens()
 {
    let app = TestApp::new();
    let (owner, _, org) = app.owner_ids().await;
    let admin = app
        .invite_and_join(&owner, "admin@example.com", "admin")
        .await;
    app.clock.advance(1);
    app.invite(&owner, "first@example.com", "member").await;
    app.clock.advance(1);
    app.invite(&owner, "second@example.com", "admin").await;
    // An invitation of another organization stays out of the list.
    app.clock.advance(1);
    let elsewhere = app
        .post(
            "/api/organization.create",
            json!({"name": "Else"}),
            &admin.who,
        )
        .await;
    let elsewhere = id_of(elsewhere.assert_ok());
    app.post(
        "/api/organization.setActive",
        json!({"organizationId": elsewhere}),
        &admin.who,
    )
    .await
    .assert_ok();
    app.invite(&admin.who, "third@example.com", "member").await;

    let r = app
        .get("/api/organization.allInvitations", &[], &owner)
        .await;

    let list = r.assert_ok().as_array().unwrap().clone();
    let emails: Vec<&str> = list.iter().map(|i| i["email"].as_str().unwrap()).collect();
    assert_eq!(
        emails,
        [
            "admin@example.com",
            "first@example.com",
            "second@example.com"
        ]
    );
    assert_eq!(list[0]["status"], "accepted");
    assert_eq!(list[2]["status"], "pending");
    assert!(list.iter().all(|i| i["organizationId"] == org.as_str()));
    assert!(
        list.iter().all(|i| i.get("token").is_none()),
        "tokens are shown once: {list:?}"
    );
}

#[tokio::test]
async fn all_invitations_pages_in_the_order_they_were_sent_with_the_total_in_a_header() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let mut sent = Vec::new();
    for i in 0..5 {
        sent.push(format!("i{i}@example.com"));
        app.invite(&owner, &sent[i], "member").await;
    }

    let (rows, totals) = app
        .every_page("/api/organization.allInvitations", &owner, 2, "email")
        .await;
    let past = app
        .get(
            "/api/organization.allInvitations",
            &[("offset", "5")],
            &owner,
        )
        .await;

    assert_eq!(rows, sent);
    assert_eq!(totals, [5, 5, 5]);
    assert!(past.column("email").is_empty());
    assert_eq!(past.total(), 5);
    app.assert_refuses_bad_pages("/api/organization.allInvitations", &owner)
        .await;
}

#[tokio::test]
async fn a_member_cannot_list_invitations() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let member = app
        .invite_and_join(&owner, "member@example.com", "member")
        .await;

    let r = app
        .get("/api/organization.allInvitations", &[], &member.who)
        .await;

    r.assert_error(401, "permission_denied");
}

#[tokio::test]
async fn removing_an_invitation_cancels_it() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let inv = app.invite(&owner, "new@example.com", "member").await;

    let r = app
        .post(
            "/api/organization.removeInvitation",
            json!({"invitationId": id_of(&inv)}),
            &owner,
        )
        .await;

    assert_eq!(r.assert_ok()["status"], "canceled");
    assert!(r.body.get("token").is_none());
    assert_eq!(status_of(&app, &inv), "canceled");
    assert_eq!(app.count("invitations"), 1);
}

#[tokio::test]
async fn removing_an_invitation_twice_is_refused() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let inv = app.invite(&owner, "new@example.com", "member").await;
    let body = json!({"invitationId": id_of(&inv)});
    app.post("/api/organization.removeInvitation", body.clone(), &owner)
        .await
        .assert_ok();

    let r = app
        .post("/api/organization.removeInvitation", body, &owner)
        .await;

    r.assert_error(400, "invitation_not_pending");
    assert_eq!(status_of(&app, &inv), "canceled");
}

#[tokio::test]
async fn an_accepted_invitation_cannot_be_removed() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let joined = app
        .invite_and_join(&owner, "member@example.com", "member")
        .await;
    let id = app.scalar(
        "SELECT id FROM invitations WHERE email = 'member@example.com'",
        &[],
    );

    let r = app
        .post(
            "/api/organization.removeInvitation",
            json!({"invitationId": id}),
            &owner,
        )
        .await;

    r.assert_error(400, "invitation_not_pending");
    assert_eq!(
        app.scalar(
            "SELECT status FROM invitations WHERE id = ?1",
            &[&id.as_str().unwrap()]
        ),
        "accepted"
    );
    assert_eq!(
        app.count_where(
            "SELECT count(*) FROM members WHERE user_id = ?1",
            &[&joined.user_id]
        ),
        1
    );
}

#[tokio::test]
async fn removing_another_organizations_invitation_is_wrong_organization() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (_, _, inv) = invited_to_another_org(&app, &owner, "member").await;

    let r = app
        .post(
            "/api/organization.removeInvitation",
            json!({"invitationId": id_of(&inv)}),
            &owner,
        )
        .await;

    r.assert_error(401, "wrong_organization");
    assert_eq!(status_of(&app, &inv), "pending");
}

#[tokio::test]
async fn removing_another_organizations_settled_invitation_is_wrong_organization() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (other, _, inv) = invited_to_another_org(&app, &owner, "member").await;
    let body = json!({"invitationId": id_of(&inv)});
    app.post(
        "/api/organization.removeInvitation",
        body.clone(),
        &other.who,
    )
    .await
    .assert_ok();

    let r = app
        .post("/api/organization.removeInvitation", body, &owner)
        .await;

    // Not `invitation_not_pending`: nothing about the invitation is told.
    r.assert_error(401, "wrong_organization");
    assert_eq!(status_of(&app, &inv), "canceled");
}

#[tokio::test]
async fn removing_a_missing_invitation_is_not_found() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;

    let r = app
        .post(
            "/api/organization.removeInvitation",
            json!({"invitationId": "nosuchinvitation0000"}),
            &owner,
        )
        .await;

    r.assert_error(404, "not_found");
}

#[tokio::test]
async fn a_member_cannot_remove_an_invitation() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let member = app
        .invite_and_join(&owner, "member@example.com", "member")
        .await;
    let inv = app.invite(&owner, "new@example.com", "member").await;

    let r = app
        .post(
            "/api/organization.removeInvitation",
            json!({"invitationId": id_of(&inv)}),
            &member.who,
        )
        .await;

    r.assert_error(401, "permission_denied");
    assert_eq!(status_of(&app, &inv), "pending");
}

#[tokio::test]
async fn a_signed_in_user_accepts_an_invitation_by_id_and_acts_in_the_new_organization() {
    let app = TestApp::new();
    let (owner, owner_id, first) = app.owner_ids().await;
    let (_, b, inv) = invited_to_another_org(&app, &owner, "admin").await;

    let r = app
        .post(
            "/api/organization.acceptInvitation",
            json!({"invitationId": id_of(&inv)}),
            &owner,
        )
        .await;

    let body = r.assert_ok();
    assert_eq!(body["organizationId"], b.as_str());
    assert_eq!(body["userId"], owner_id.as_str());
    assert_eq!(body["role"], "admin");
    assert_eq!(
        app.scalar(
            "SELECT role FROM members WHERE organization_id = ?1 AND user_id = ?2",
            &[&b, &owner_id]
        ),
        "admin"
    );
    assert_eq!(status_of(&app, &inv), "accepted");
    let active = app.active_org(&owner).await;
    assert_eq!(active.assert_ok()["id"], b.as_str());
    assert_eq!(active.body["role"], "admin");
    // Its own organization is still there to switch back to.
    assert_eq!(
        app.scalar(
            "SELECT role FROM members WHERE organization_id = ?1 AND user_id = ?2",
            &[&first, &owner_id]
        ),
        "owner"
    );
}

#[tokio::test]
async fn a_signed_in_user_accepts_an_invitation_by_token() {
    let app = TestApp::new();
    let (owner, owner_id, _) = app.owner_ids().await;
    let (_, b, inv) = invited_to_another_org(&app, &owner, "member").await;

    let r = app
        .post(
            "/api/organization.acceptInvitation",
            json!({"token": inv["token"]}),
            &owner,
        )
        .await;

    assert_eq!(r.assert_ok()["role"], "member");
    assert_eq!(
        app.scalar(
            "SELECT role FROM members WHERE organization_id = ?1 AND user_id = ?2",
            &[&b, &owner_id]
        ),
        "member"
    );
    assert_eq!(status_of(&app, &inv), "accepted");
    assert_eq!(app.active_org(&owner).await.body["id"], b.as_str());
}

#[tokio::test]
async fn an_invitation_for_another_email_cannot_be_accepted() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (_, b, inv) = invited_to_another_org(&app, &owner, "member").await;
    let stranger = app
        .invite_and_join(&owner, "stranger@example.com", "member")
        .await;

    let by_id = app
        .post(
            "/api/organization.acceptInvitation",
            json!({"invitationId": id_of(&inv)}),
            &stranger.who,
        )
        .await;
    let by_token = app
        .post(
            "/api/organization.acceptInvitation",
            json!({"token": inv["token"]}),
            &stranger.who,
        )
        .await;

    by_id.assert_error(401, "invitation_email_mismatch");
    by_token.assert_error(401, "invitation_email_mismatch");
    assert_eq!(status_of(&app, &inv), "pending");
    assert_eq!(
        app.count_where(
            "SELECT count(*) FROM members WHERE organization_id = ?1",
            &[&b]
        ),
        1
    );
    assert_ne!(app.active_org(&stranger.who).await.body["id"], b.as_str());
}

#[tokio::test]
async fn accepting_needs_exactly_one_of_id_and_token() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (_, _, inv) = invited_to_another_org(&app, &owner, "member").await;

    let neither = app
        .post("/api/organization.acceptInvitation", json!({}), &owner)
        .await;
    let both = app
        .post(
            "/api/organization.acceptInvitation",
            json!({"invitationId": id_of(&inv), "token": inv["token"]}),
            &owner,
        )
        .await;

    neither.assert_error(400, "validation_failed");
    assert_eq!(neither.issue_paths(), ["invitationId"]);
    both.assert_error(400, "validation_failed");
    assert_eq!(status_of(&app, &inv), "pending");
}

#[tokio::test]
async fn accepting_a_missing_invitation_is_not_found() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;

    let by_id = app
        .post(
            "/api/organization.acceptInvitation",
            json!({"invitationId": "nosuchinvitation0000"}),
            &owner,
        )
        .await;
    let by_token = app
        .post(
            "/api/organization.acceptInvitation",
            json!({"token": "x".repeat(43)}),
            &owner,
        )
        .await;

    by_id.assert_error(404, "not_found");
    by_token.assert_error(404, "not_found");
    assert_eq!(app.count("members"), 1);
}

#[tokio::test]
async fn accepting_an_invitation_to_an_organization_one_already_belongs_to_is_a_conflict() {
    let app = TestApp::new();
    let (owner, _, org) = app.owner_ids().await;
    let inv = app.invite(&owner, "twice@example.com", "admin").await;
    // The same person is added another way before using the invitation.
    let twice = app
        .create_user_via_api(&owner, "twice@example.com", "member")
        .await;

    let r = app
        .post(
            "/api/organization.acceptInvitation",
            json!({"invitationId": id_of(&inv)}),
            &twice.who,
        )
        .await;

    r.assert_error(409, "already_a_member");
    assert_eq!(status_of(&app, &inv), "pending");
    assert_eq!(
        app.scalar(
            "SELECT role FROM members WHERE organization_id = ?1 AND user_id = ?2",
            &[&org, &twice.user_id]
        ),
        "member"
    );
}

#[tokio::test]
async fn signing_up_with_an_invitation_token_joins_with_the_invited_role() {
    let app = TestApp::new();
    let (owner, _, org) = app.owner_ids().await;
    let inv = app.invite(&owner, "admin@example.com", "admin").await;

    let r = app
        .sign_up_invited("Admin@Example.com", inv["token"].as_str().unwrap())
        .await;

    let body = r.assert_ok();
    assert_eq!(body["user"]["email"], "admin@example.com");
    assert_eq!(body["session"]["activeOrganizationId"], org.as_str());
    let user = body["user"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.scalar(
            "SELECT role FROM members WHERE organization_id = ?1 AND user_id = ?2",
            &[&org, &user]
        ),
        "admin"
    );
    assert_eq!(status_of(&app, &inv), "accepted");
    let who = As::Cookie(r.session_token().unwrap());
    let active = app.active_org(&who).await;
    assert_eq!(active.assert_ok()["id"], org.as_str());
    assert_eq!(active.body["role"], "admin");
}

#[tokio::test]
async fn signing_up_with_a_token_for_another_email_is_refused() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let inv = app.invite(&owner, "invited@example.com", "member").await;

    let r = app
        .sign_up_invited("intruder@example.com", inv["token"].as_str().unwrap())
        .await;

    r.assert_error(401, "invitation_email_mismatch");
    assert!(r.session_token().is_none());
    assert_eq!(app.count("users"), 1);
    assert_eq!(app.count("members"), 1);
    assert_eq!(status_of(&app, &inv), "pending");
}

#[tokio::test]
async fn an_invitation_works_until_just_before_48_hours() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let inv = app.invite(&owner, "slow@example.com", "member").await;
    app.clock.advance(47 * HOUR + 59 * MINUTE);

    let r = app
        .sign_up_invited("slow@example.com", inv["token"].as_str().unwrap())
        .await;

    r.assert_ok();
    assert_eq!(status_of(&app, &inv), "accepted");
    assert_eq!(app.count("members"), 2);
}

#[tokio::test]
async fn an_invitation_has_expired_48_hours_after_it_was_sent() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let inv = app.invite(&owner, "slow@example.com", "member").await;
    app.clock.advance(TTL + 1);

    let r = app
        .sign_up_invited("slow@example.com", inv["token"].as_str().unwrap())
        .await;

    r.assert_error(400, "invitation_expired");
    assert_eq!(app.count("users"), 1);
    assert_eq!(app.count("members"), 1);
}

#[tokio::test]
async fn an_expired_invitation_cannot_be_accepted_by_a_signed_in_user() {
    let app = TestApp::new();
    let (owner, owner_id, _) = app.owner_ids().await;
    let (_, b, inv) = invited_to_another_org(&app, &owner, "member").await;
    app.clock.advance(TTL + 1);

    let r = app
        .post(
            "/api/organization.acceptInvitation",
            json!({"invitationId": id_of(&inv)}),
            &owner,
        )
        .await;

    r.assert_error(400, "invitation_expired");
    assert_eq!(
        app.count_where(
            "SELECT count(*) FROM members WHERE organization_id = ?1 AND user_id = ?2",
            &[&b, &owner_id]
        ),
        0
    );
}

#[tokio::test]
async fn an_invitation_token_works_only_once() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let inv = app.invite(&owner, "once@example.com", "member").await;
    let token = inv["token"].as_str().unwrap();
    app.sign_up_invited("once@example.com", token)
        .await
        .assert_ok();

    let again = app.sign_up_invited("once@example.com", token).await;
    let who = app.sign_in("once@example.com", PASSWORD).await;
    let accept = app
        .post(
            "/api/organization.acceptInvitation",
            json!({"token": token}),
            &who,
        )
        .await;

    again.assert_error(400, "invitation_not_pending");
    accept.assert_error(400, "invitation_not_pending");
    assert_eq!(app.count("users"), 2);
    assert_eq!(app.count("members"), 2);
}

#[tokio::test]
async fn a_canceled_invitation_cannot_be_used() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let inv = app.invite(&owner, "revoked@example.com", "admin").await;
    app.post(
        "/api/organization.removeInvitation",
        json!({"invitationId": id_of(&inv)}),
        &owner,
    )
    .await
    .assert_ok();

    let r = app
        .sign_up_invited("revoked@example.com", inv["token"].as_str().unwrap())
        .await;

    r.assert_error(400, "invitation_not_pending");
    assert_eq!(app.count("users"), 1);
    assert_eq!(status_of(&app, &inv), "canceled");
}

#[tokio::test]
async fn a_canceled_invitation_cannot_be_accepted_by_a_signed_in_user() {
    let app = TestApp::new();
    let (owner, owner_id, _) = app.owner_ids().await;
    let (other, b, inv) = invited_to_another_org(&app, &owner, "member").await;
    app.post(
        "/api/organization.removeInvitation",
        json!({"invitationId": id_of(&inv)}),
        &other.who,
    )
    .await
    .assert_ok();

    let r = app
        .post(
            "/api/organization.acceptInvitation",
            json!({"invitationId": id_of(&inv)}),
            &owner,
        )
        .await;

    r.assert_error(400, "invitation_not_pending");
    assert_eq!(
        app.count_where(
            "SELECT count(*) FROM members WHERE organization_id = ?1 AND user_id = ?2",
            &[&b, &owner_id]
        ),
        0
    );
}

#[tokio::test]
async fn invitation_tokens_are_random_and_stored_only_as_a_hash() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let a = app.invite(&owner, "a@example.com", "member").await;
    let b = app.invite(&owner, "b@example.com", "member").await;
    let (ta, tb) = (a["token"].as_str().unwrap(), b["token"].as_str().unwrap());

    assert_ne!(ta, tb);
    for (inv, token) in [(&a, ta), (&b, tb)] {
        assert!(token.bytes().all(|c| c.is_ascii_alphanumeric()), "{token}");
        let id = id_of(inv);
        assert_eq!(
            app.scalar(
                "SELECT typeof(token_hash) FROM invitations WHERE id = ?1",
                &[&id]
            ),
            "blob"
        );
        assert_eq!(
            app.scalar(
                "SELECT length(token_hash) FROM invitations WHERE id = ?1",
                &[&id]
            ),
            32
        );
        let hash = keygate::auth::token::sha256(token.as_bytes());
        assert_eq!(
            app.count_where(
                "SELECT count(*) FROM invitations WHERE id = ?1 AND token_hash = ?2",
                &[&id, &&hash[..]]
            ),
            1
        );
        let bytes = app.database_files();
        let email = inv["email"].as_str().unwrap().as_bytes();
        assert!(
            bytes.windows(email.len()).any(|w| w == email),
            "the search sees the rows it looks through"
        );
        assert!(
            !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
            "the token is stored in clear"
        );
    }
}

/// When both the email and the role of an invitation are wrong, both are reported in one
/// answer, so the caller learns of the role on the first try.
#[tokio::test]
async fn a_bad_email_and_a_bad_role_are_reported_together() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;

    let r = app
        .post(
            "/api/organization.inviteMember",
            json!({"email": "not an email", "role": "superuser"}),
            &owner,
        )
        .await;

    r.assert_error(400, "validation_failed");
    assert_eq!(r.issue_paths(), ["email", "role"]);
    assert_eq!(app.count("invitations"), 0);
}
