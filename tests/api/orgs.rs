//! `organization.{create,all,one,update,delete,setActive,active}`.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn creating_an_organization_makes_the_caller_its_owner() {
    let app = TestApp::new();
    let (owner, owner_id, first_org) = app.owner_ids().await;

    let r = app
        .post(
            "/api/organization.create",
            json!({"name": " Second "}),
            &owner,
        )
        .await;

    let body = r.assert_ok();
    assert_eq!(body["name"], "Second");
    assert_eq!(body["role"], "owner");
    assert_eq!(body["ownerId"], owner_id.as_str());
    let org = id_of(body);
    assert_eq!(
        app.scalar("SELECT owner_id FROM organizations WHERE id = ?1", &[&org]),
        owner_id.as_str()
    );
    assert_eq!(
        app.scalar(
            "SELECT role FROM members WHERE organization_id = ?1 AND user_id = ?2",
            &[&org, &owner_id]
        ),
        "owner"
    );
    assert_eq!(app.count("organizations"), 2);
    // Creating does not switch the session: only setActive does.
    assert_eq!(app.active_org(&owner).await.assert_ok()["id"], first_org);
}

#[tokio::test]
async fn an_organization_needs_a_name() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;

    let r = app
        .post("/api/organization.create", json!({"name": "   "}), &owner)
        .await;

    r.assert_error(400, "validation_failed");
    assert_eq!(r.code(), "BAD_REQUEST");
    assert_eq!(r.issue_paths(), ["name"]);
    assert_eq!(app.count("organizations"), 1);
}

#[tokio::test]
async fn an_organization_name_longer_than_255_characters_is_refused() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;

    let r = app
        .post(
            "/api/organization.create",
            json!({"name": "x".repeat(256)}),
            &owner,
        )
        .await;

    r.assert_error(400, "validation_failed");
    assert_eq!(r.issue_paths(), ["name"]);
    assert_eq!(app.count("organizations"), 1);
}

#[tokio::test]
async fn organization_all_lists_the_callers_organizations_with_its_role_in_each() {
    let app = TestApp::new();
    let (owner, _, first_org) = app.owner_ids().await;
    let member = app
        .invite_and_join(&owner, "member@example.com", "member")
        .await;
    app.clock.advance(1);
    let own = app
        .post(
            "/api/organization.create",
            json!({"name": "Mine"}),
            &member.who,
        )
        .await;
    let own = id_of(own.assert_ok());

    let mine = app.get("/api/organization.all", &[], &member.who).await;
    let theirs = app.get("/api/organization.all", &[], &owner).await;

    let mine = mine.assert_ok().as_array().unwrap().clone();
    let roles: Vec<(String, String)> = mine
        .iter()
        .map(|o| (id_of(o), o["role"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        roles,
        [
            (first_org.clone(), "member".to_owned()),
            (own.clone(), "owner".to_owned())
        ]
    );
    let theirs = theirs.assert_ok().as_array().unwrap().clone();
    assert_eq!(theirs.len(), 1, "the owner sees only its own: {theirs:?}");
    assert_eq!(theirs[0]["id"], first_org.as_str());
    assert_eq!(theirs[0]["role"], "owner");
    assert_eq!(theirs[0]["name"], "My Organization");
}

#[tokio::test]
async fn organization_all_pages_in_the_order_they_were_joined_with_the_total_in_a_header() {
    let app = TestApp::new();
    let (owner, _, first) = app.owner_ids().await;
    let mut joined = vec![first];
    for i in 0..4 {
        joined.push(app.create_org(&owner, &format!("Org {i}")).await);
    }

    let (rows, totals) = app
        .every_page("/api/organization.all", &owner, 2, "id")
        .await;

    assert_eq!(rows, joined);
    assert_eq!(totals, [5, 5, 5]);
    app.assert_refuses_bad_pages("/api/organization.all", &owner)
        .await;
}

#[tokio::test]
async fn organization_all_by_a_key_is_its_own_organization_on_one_page_of_one() {
    let app = TestApp::new();
    let (owner, _, _) = app.owner_ids().await;
    let second = app.create_org(&owner, "Second").await;
    app.create_org(&owner, "Third").await;
    let (key, _) = app
        .create_key(&owner, json!({"metadata": {"organizationId": second}}))
        .await;
    let key = As::Key(key);

    let first = app.get("/api/organization.all", &[], &key).await;
    let past = app
        .get("/api/organization.all", &[("offset", "1")], &key)
        .await;

    assert_eq!(first.column("id"), [second]);
    assert_eq!(first.assert_ok()[0]["role"], "owner");
    assert_eq!(first.total(), 1);
    assert!(past.column("id").is_empty());
    assert_eq!(past.total(), 1);
}

#[tokio::test]
async fn organization_one_shows_an_organization_of_the_caller() {
    let app = TestApp::new();
    let (owner, owner_id, org) = app.owner_ids().await;
    let admin = app
        .invite_and_join(&owner, "admin@example.com", "admin")
        .await;

    let r = app
        .get(
            "/api/organization.one",
            &[("organizationId", &org)],
            &admin.who,
        )
        .await;

    let body = r.assert_ok();
    assert_eq!(body["id"], org.as_str());
    assert_eq!(body["name"], "My Organization");
    assert_eq!(body["ownerId"], owner_id.as_str());
    assert_eq!(body["role"], "admin");
}

#[tokio::test]
async fn organization_one_of_a_missing_organization_is_not_found() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;

    let r = app
        .get(
            "/api/organization.one",
            &[("organizationId", "nosuchorganization00")],
            &owner,
        )
        .await;

    r.assert_error(404, "not_found");
    assert_eq!(r.code(), "NOT_FOUND");
}

#[tokio::test]
async fn organization_one_of_someone_elses_organization_is_not_a_member() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let member = app
        .invite_and_join(&owner, "member@example.com", "member")
        .await;
    let other = app
        .post(
            "/api/organization.create",
            json!({"name": "Other"}),
            &member.who,
        )
        .await;
    let other = id_of(other.assert_ok());

    let r = app
        .get(
            "/api/organization.one",
            &[("organizationId", &other)],
            &owner,
        )
        .await;

    r.assert_error(401, "not_a_member");
    assert_eq!(r.code(), "UNAUTHORIZED");
}

#[tokio::test]
async fn the_owner_renames_its_organization() {
    let app = TestApp::new();
    let (owner, _, org) = app.owner_ids().await;

    let r = app
        .post(
            "/api/organization.update",
            json!({"organizationId": org, "name": "Acme"}),
            &owner,
        )
        .await;

    assert_eq!(r.assert_ok()["name"], "Acme");
    assert_eq!(r.body["role"], "owner");
    assert_eq!(
        app.scalar("SELECT name FROM organizations WHERE id = ?1", &[&org]),
        "Acme"
    );
}

#[tokio::test]
async fn an_admin_renames_the_organization() {
    let app = TestApp::new();
    let (owner, _, org) = app.owner_ids().await;
    let admin = app
        .invite_and_join(&owner, "admin@example.com", "admin")
        .await;

    let r = app
        .post(
            "/api/organization.update",
            json!({"organizationId": org, "name": "Renamed by admin"}),
            &admin.who,
        )
        .await;

    assert_eq!(r.assert_ok()["role"], "admin");
    assert_eq!(
        app.scalar("SELECT name FROM organizations WHERE id = ?1", &[&org]),
        "Renamed by admin"
    );
}

#[tokio::test]
async fn a_member_cannot_rename_the_organization() {
    let app = TestApp::new();
    let (owner, _, org) = app.owner_ids().await;
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

    let r = app
        .post(
            "/api/organization.update",
            json!({"organizationId": org, "name": "Hijacked"}),
            &member.who,
        )
        .await;

    r.assert_error(401, "permission_denied");
    assert_eq!(
        app.scalar("SELECT name FROM organizations WHERE id = ?1", &[&org]),
        "My Organization"
    );
}

#[tokio::test]
async fn a_user_cannot_rename_an_organization_it_does_not_belong_to() {
    let app = TestApp::new();
    let (owner, _, org) = app.owner_ids().await;
    let outsider = app
        .invite_and_join(&owner, "out@example.com", "member")
        .await;
    app.post(
        "/api/user.remove",
        json!({"userId": outsider.user_id}),
        &owner,
    )
    .await
    .assert_ok();

    let r = app
        .post(
            "/api/organization.update",
            json!({"organizationId": org, "name": "Hijacked"}),
            &outsider.who,
        )
        .await;

    r.assert_error(401, "not_a_member");
    assert_eq!(
        app.scalar("SELECT name FROM organizations WHERE id = ?1", &[&org]),
        "My Organization"
    );
}

#[tokio::test]
async fn renaming_to_an_empty_name_is_refused() {
    let app = TestApp::new();
    let (owner, _, org) = app.owner_ids().await;

    let r = app
        .post(
            "/api/organization.update",
            json!({"organizationId": org, "name": ""}),
            &owner,
        )
        .await;

    r.assert_error(400, "validation_failed");
    assert_eq!(r.issue_paths(), ["name"]);
    assert_eq!(
        app.scalar("SELECT name FROM organizations WHERE id = ?1", &[&org]),
        "My Organization"
    );
}

#[tokio::test]
async fn deleting_an_organization_removes_its_members_and_invitations() {
    let app = TestApp::new();
    let (owner, owner_id, org) = app.owner_ids().await;
    let member = app
        .invite_and_join(&owner, "member@example.com", "member")
        .await;
    app.invite(&owner, "pending@example.com", "admin").await;
    app.clock.advance(1);
    let spare = app
        .post("/api/organization.create", json!({"name": "Spare"}), &owner)
        .await;
    let spare = id_of(spare.assert_ok());

    let r = app
        .post(
            "/api/organization.delete",
            json!({"organizationId": org}),
            &owner,
        )
        .await;

    assert_eq!(r.assert_ok()["success"], true);
    let in_org = |table: &str| {
        app.count_where(
            &format!("SELECT count(*) FROM {table} WHERE organization_id = ?1"),
            &[&org],
        )
    };
    assert_eq!(
        app.count_where("SELECT count(*) FROM organizations WHERE id = ?1", &[&org]),
        0
    );
    assert_eq!(in_org("members"), 0);
    assert_eq!(in_org("invitations"), 0);
    assert_eq!(
        app.count_where(
            "SELECT count(*) FROM sessions WHERE active_organization_id = ?1",
            &[&org]
        ),
        0
    );
    // Both users still exist; the owner now acts in its other organization and the member,
    // who had no other, acts nowhere.
    assert_eq!(app.count("users"), 2);
    let now = app.active_org(&owner).await;
    assert_eq!(now.assert_ok()["id"], spare.as_str());
    assert_eq!(now.body["ownerId"], owner_id.as_str());
    app.active_org(&member.who)
        .await
        .assert_error(401, "no_active_organization");
}

#[tokio::test]
async fn an_admin_cannot_delete_the_organization() {
    let app = TestApp::new();
    let (owner, _, org) = app.owner_ids().await;
    let admin = app
        .invite_and_join(&owner, "admin@example.com", "admin")
        .await;
    // The admin has another organization, so only the role stands in its way.
    app.post(
        "/api/organization.create",
        json!({"name": "Own"}),
        &admin.who,
    )
    .await
    .assert_ok();

    let r = app
        .post(
            "/api/organization.delete",
            json!({"organizationId": org}),
            &admin.who,
        )
        .await;

    r.assert_error(401, "permission_denied");
    assert_eq!(
        app.count_where("SELECT count(*) FROM organizations WHERE id = ?1", &[&org]),
        1
    );
    assert_eq!(
        app.count_where(
            "SELECT count(*) FROM members WHERE organization_id = ?1",
            &[&org]
        ),
        2
    );
}

#[tokio::test]
async fn a_member_cannot_delete_the_organization() {
    let app = TestApp::new();
    let (owner, _, org) = app.owner_ids().await;
    let member = app
        .invite_and_join(&owner, "member@example.com", "member")
        .await;

    let r = app
        .post(
            "/api/organization.delete",
            json!({"organizationId": org}),
            &member.who,
        )
        .await;

    r.assert_error(401, "permission_denied");
    assert_eq!(app.count("organizations"), 1);
}

#[tokio::test]
async fn the_owner_cannot_delete_its_last_organization() {
    let app = TestApp::new();
    let (owner, _, org) = app.owner_ids().await;
    app.invite_and_join(&owner, "member@example.com", "member")
        .await;

    let r = app
        .post(
            "/api/organization.delete",
            json!({"organizationId": org}),
            &owner,
        )
        .await;

    r.assert_error(400, "last_organization");
    assert_eq!(r.code(), "BAD_REQUEST");
    assert_eq!(app.count("organizations"), 1);
    assert_eq!(app.count("members"), 2);
}

#[tokio::test]
async fn deleting_a_missing_or_foreign_organization_fails() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let member = app
        .invite_and_join(&owner, "member@example.com", "member")
        .await;
    let other = app
        .post(
            "/api/organization.create",
            json!({"name": "Other"}),
            &member.who,
        )
        .await;
    let other = id_of(other.assert_ok());

    app.post(
        "/api/organization.delete",
        json!({"organizationId": "nosuchorganization00"}),
        &owner,
    )
    .await
    .assert_error(404, "not_found");
    app.post(
        "/api/organization.delete",
        json!({"organizationId": other}),
        &owner,
    )
    .await
    .assert_error(401, "not_a_member");

    assert_eq!(app.count("organizations"), 2);
}

#[tokio::test]
async fn set_active_switches_the_organization_the_session_acts_in() {
    let app = TestApp::new();
    let (owner, _, first) = app.owner_ids().await;
    app.invite_and_join(&owner, "member@example.com", "member")
        .await;
    let second = app
        .post(
            "/api/organization.create",
            json!({"name": "Second"}),
            &owner,
        )
        .await;
    let second = id_of(second.assert_ok());
    let session_id = app.get("/api/auth/get-session", &[], &owner).await.body["session"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let r = app
        .post(
            "/api/organization.setActive",
            json!({"organizationId": second}),
            &owner,
        )
        .await;

    assert_eq!(r.assert_ok()["id"], second.as_str());
    assert_eq!(r.body["role"], "owner");
    assert_eq!(
        app.scalar(
            "SELECT active_organization_id FROM sessions WHERE id = ?1",
            &[&session_id]
        ),
        second.as_str()
    );
    let active = app.active_org(&owner).await;
    assert_eq!(active.assert_ok()["id"], second.as_str());
    assert_eq!(active.body["name"], "Second");
    // Org-scoped calls follow: the new organization has only its owner.
    let members = app.get("/api/user.all", &[], &owner).await;
    assert_eq!(members.assert_ok().as_array().unwrap().len(), 1);

    app.post(
        "/api/organization.setActive",
        json!({"organizationId": first}),
        &owner,
    )
    .await
    .assert_ok();
    assert_eq!(app.active_org(&owner).await.body["id"], first.as_str());
}

#[tokio::test]
async fn set_active_changes_only_the_calling_session() {
    let app = TestApp::new();
    let (first_session, _, first) = app.owner_ids().await;
    let second_session = app.sign_in("owner@example.com", PASSWORD).await;
    let second = app
        .post(
            "/api/organization.create",
            json!({"name": "Second"}),
            &first_session,
        )
        .await;
    let second = id_of(second.assert_ok());

    app.post(
        "/api/organization.setActive",
        json!({"organizationId": second}),
        &first_session,
    )
    .await
    .assert_ok();

    assert_eq!(
        app.active_org(&first_session).await.body["id"],
        second.as_str()
    );
    assert_eq!(
        app.active_org(&second_session).await.body["id"],
        first.as_str()
    );
    assert_eq!(
        app.count_where(
            "SELECT count(*) FROM sessions WHERE active_organization_id = ?1",
            &[&first]
        ),
        1
    );
}

#[tokio::test]
async fn set_active_to_an_organization_of_someone_else_is_refused() {
    let app = TestApp::new();
    let (owner, _, first) = app.owner_ids().await;
    let member = app
        .invite_and_join(&owner, "member@example.com", "member")
        .await;
    let other = app
        .post(
            "/api/organization.create",
            json!({"name": "Other"}),
            &member.who,
        )
        .await;
    let other = id_of(other.assert_ok());

    let foreign = app
        .post(
            "/api/organization.setActive",
            json!({"organizationId": other}),
            &owner,
        )
        .await;
    let missing = app
        .post(
            "/api/organization.setActive",
            json!({"organizationId": "nosuchorganization00"}),
            &owner,
        )
        .await;

    foreign.assert_error(401, "not_a_member");
    missing.assert_error(404, "not_found");
    assert_eq!(app.active_org(&owner).await.body["id"], first.as_str());
    assert_eq!(
        app.count_where(
            "SELECT count(*) FROM sessions WHERE active_organization_id = ?1",
            &[&other]
        ),
        0
    );
}

#[tokio::test]
async fn organization_active_is_the_organization_of_sign_up() {
    let app = TestApp::new();
    let (owner, owner_id, org) = app.owner_ids().await;

    let r = app.active_org(&owner).await;

    let body = r.assert_ok();
    assert_eq!(body["id"], org.as_str());
    assert_eq!(body["name"], "My Organization");
    assert_eq!(body["ownerId"], owner_id.as_str());
    assert_eq!(body["role"], "owner");
}

#[tokio::test]
async fn organization_routes_need_a_session() {
    let app = TestApp::new();
    app.owner().await;

    app.get("/api/organization.all", &[], &As::Nobody)
        .await
        .assert_error(401, "missing_credentials");
    let r = app
        .post(
            "/api/organization.create",
            json!({"name": "Anonymous"}),
            &As::Nobody,
        )
        .await;
    r.assert_error(401, "missing_credentials");
    assert_eq!(app.count("organizations"), 1);
}
