//! Members of the active organization: `organization.updateMemberRole`, `user.remove`,
//! `user.assignPermissions`, `user.getPermissions`, `user.all`,
//! `user.createUserWithCredentials`.

use keygate::model::Role;
use serde_json::{Value, json};

use crate::helpers::*;

fn role_of(app: &TestApp, member_id: &str) -> Value {
    app.scalar("SELECT role FROM members WHERE id = ?1", &[&member_id])
}

fn owners_of(app: &TestApp, org: &str) -> i64 {
    app.count_where(
        "SELECT count(*) FROM members WHERE organization_id = ?1 AND role = 'owner'",
        &[&org],
    )
}

async fn set_role(app: &TestApp, by: &As, member_id: &str, role: &str) -> Reply {
    app.post(
        "/api/organization.updateMemberRole",
        json!({"memberId": member_id, "role": role}),
        by,
    )
    .await
}

async fn remove(app: &TestApp, by: &As, user_id: &str) -> Reply {
    app.post("/api/user.remove", json!({"userId": user_id}), by)
        .await
}

async fn assign(app: &TestApp, by: &As, user_id: &str, extra: Value) -> Reply {
    let mut body = json!({"userId": user_id});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    app.post("/api/user.assignPermissions", body, by).await
}

async fn permissions(app: &TestApp, who: &As) -> Value {
    let r = app.get("/api/user.getPermissions", &[], who).await;
    r.assert_ok().clone()
}

fn flags_set(p: &Value) -> Vec<&'static str> {
    flag_names().into_iter().filter(|f| p[*f] == true).collect()
}

/// A project with one environment and one application in `org`, written directly: the
/// resource routers do not exist yet. Returns their ids.
fn resources_in(app: &TestApp, org: &str, tag: &str) -> (String, String, String) {
    let (p, e, a) = (
        format!("proj{tag}"),
        format!("env{tag}"),
        format!("app{tag}"),
    );
    app.exec(
        "INSERT INTO projects (id, organization_id, name, created_at) VALUES (?1, ?2, 'P', ?3)",
        &[&p, &org, &T0],
    );
    app.exec(
        "INSERT INTO environments (id, project_id, organization_id, name, is_default, created_at)
         VALUES (?1, ?2, ?3, 'production', 1, ?4)",
        &[&e, &p, &org, &T0],
    );
    app.exec(
        "INSERT INTO applications (id, environment_id, organization_id, name, app_name, created_at)
         VALUES (?1, ?2, ?3, 'A', ?1, ?4)",
        &[&a, &e, &org, &T0],
    );
    (p, e, a)
}

// organization.updateMemberRole

#[tokio::test]
async fn the_owner_promotes_a_member_whose_next_request_acts_as_admin() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let member = app
        .invite_and_join(&owner, "member@example.com", "member")
        .await;
    app.get("/api/organization.allInvitations", &[], &member.who)
        .await
        .assert_error(401, "permission_denied");

    let r = set_role(&app, &owner, &member.member_id, "admin").await;

    assert_eq!(r.assert_ok()["role"], "admin");
    assert_eq!(r.body["id"], member.member_id.as_str());
    assert_eq!(role_of(&app, &member.member_id), "admin");
    app.get("/api/organization.allInvitations", &[], &member.who)
        .await
        .assert_ok();
    let p = permissions(&app, &member.who).await;
    assert_eq!(p["role"], "admin");
    assert_eq!(flags_set(&p), flag_names());
}

#[tokio::test]
async fn the_owner_demotes_an_admin_whose_next_request_is_refused() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let admin = app
        .invite_and_join(&owner, "admin@example.com", "admin")
        .await;
    app.invite(&admin.who, "before@example.com", "member").await;

    let r = set_role(&app, &owner, &admin.member_id, "member").await;

    assert_eq!(r.assert_ok()["role"], "member");
    assert_eq!(role_of(&app, &admin.member_id), "member");
    let after = app
        .post(
            "/api/organization.inviteMember",
            json!({"email": "after@example.com", "role": "member"}),
            &admin.who,
        )
        .await;
    after.assert_error(401, "permission_denied");
    assert_eq!(app.count("invitations"), 2);
    assert_eq!(permissions(&app, &admin.who).await["role"], "member");
}

#[tokio::test]
async fn an_admin_promotes_a_member() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let admin = app
        .invite_and_join(&owner, "admin@example.com", "admin")
        .await;
    let member = app
        .invite_and_join(&owner, "member@example.com", "member")
        .await;

    let r = set_role(&app, &admin.who, &member.member_id, "admin").await;

    r.assert_ok();
    assert_eq!(role_of(&app, &member.member_id), "admin");
}

#[tokio::test]
async fn an_admin_cannot_change_another_admin() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let admin = app
        .invite_and_join(&owner, "admin@example.com", "admin")
        .await;
    let other = app
        .invite_and_join(&owner, "other@example.com", "admin")
        .await;

    let r = set_role(&app, &admin.who, &other.member_id, "member").await;

    r.assert_error(401, "permission_denied");
    assert_eq!(role_of(&app, &other.member_id), "admin");
}

#[tokio::test]
async fn nobody_changes_the_owners_role() {
    let app = TestApp::new();
    let (owner, owner_id, org) = app.owner_ids().await;
    let owner_member = app.member_id(&org, &owner_id);
    let admin = app
        .invite_and_join(&owner, "admin@example.com", "admin")
        .await;

    let by_admin = set_role(&app, &admin.who, &owner_member, "member").await;
    let by_itself = set_role(&app, &owner, &owner_member, "admin").await;

    by_admin.assert_error(401, "permission_denied");
    by_itself.assert_error(401, "permission_denied");
    assert_eq!(role_of(&app, &owner_member), "owner");
}

#[tokio::test]
async fn nobody_changes_its_own_role() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let admin = app
        .invite_and_join(&owner, "admin@example.com", "admin")
        .await;

    let r = set_role(&app, &admin.who, &admin.member_id, "member").await;

    r.assert_error(401, "permission_denied");
    assert_eq!(role_of(&app, &admin.member_id), "admin");
}

#[tokio::test]
async fn the_owner_role_cannot_be_given() {
    let app = TestApp::new();
    let (owner, _, org) = app.owner_ids().await;
    let admin = app
        .invite_and_join(&owner, "admin@example.com", "admin")
        .await;

    let r = set_role(&app, &owner, &admin.member_id, "owner").await;

    r.assert_error(400, "invalid_role");
    assert_eq!(r.issue_paths(), ["role"]);
    assert_eq!(role_of(&app, &admin.member_id), "admin");
    assert_eq!(owners_of(&app, &org), 1);
}

#[tokio::test]
async fn an_unknown_role_cannot_be_given() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let member = app
        .invite_and_join(&owner, "member@example.com", "member")
        .await;

    let r = set_role(&app, &owner, &member.member_id, "Admin").await;

    r.assert_error(400, "validation_failed");
    assert_eq!(r.issue_paths(), ["role"]);
    assert_eq!(role_of(&app, &member.member_id), "member");
}

#[tokio::test]
async fn a_member_cannot_change_roles() {
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
    let other = app
        .invite_and_join(&owner, "other@example.com", "member")
        .await;

    let r = set_role(&app, &member.who, &other.member_id, "admin").await;

    r.assert_error(401, "permission_denied");
    assert_eq!(role_of(&app, &other.member_id), "member");
}

#[tokio::test]
async fn changing_the_role_of_another_organizations_member_is_wrong_organization() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let other = app
        .invite_and_join(&owner, "other@example.com", "member")
        .await;
    let b = app
        .post("/api/organization.create", json!({"name": "B"}), &other.who)
        .await;
    let b = id_of(b.assert_ok());
    app.clock.advance(1);
    let stranger = app
        .invite_and_join(&owner, "stranger@example.com", "member")
        .await;
    // `other` brings `stranger` into B too, as a member.
    app.post(
        "/api/organization.setActive",
        json!({"organizationId": b}),
        &other.who,
    )
    .await
    .assert_ok();
    let inv = app
        .invite(&other.who, "stranger@example.com", "member")
        .await;
    app.post(
        "/api/organization.acceptInvitation",
        json!({"invitationId": id_of(&inv)}),
        &stranger.who,
    )
    .await
    .assert_ok();
    let in_b = app.member_id(&b, &stranger.user_id);
    let owner_of_b = app.member_id(&b, &other.user_id);

    let foreign = set_role(&app, &owner, &in_b, "admin").await;
    // Another organization's owner, whom nobody may change: still another organization's.
    let foreign_owner = set_role(&app, &owner, &owner_of_b, "member").await;
    let missing = set_role(&app, &owner, "nosuchmember00000000", "admin").await;

    foreign.assert_error(401, "wrong_organization");
    foreign_owner.assert_error(401, "wrong_organization");
    missing.assert_error(404, "not_found");
    assert_eq!(role_of(&app, &in_b), "member");
    assert_eq!(role_of(&app, &owner_of_b), "owner");
}

// user.remove

#[tokio::test]
async fn a_removed_member_loses_access_on_its_next_request() {
    let app = TestApp::new();
    let (owner, _, org) = app.owner_ids().await;
    let member = app
        .invite_and_join(&owner, "member@example.com", "member")
        .await;
    app.get("/api/user.all", &[], &owner).await.assert_ok();
    app.active_org(&member.who).await.assert_ok();

    let r = remove(&app, &owner, &member.user_id).await;

    assert_eq!(r.assert_ok()["success"], true);
    assert_eq!(
        app.count_where(
            "SELECT count(*) FROM members WHERE user_id = ?1",
            &[&member.user_id]
        ),
        0
    );
    assert_eq!(
        app.count_where(
            "SELECT count(*) FROM sessions WHERE user_id = ?1 AND active_organization_id IS NOT NULL",
            &[&member.user_id]
        ),
        0
    );
    assert_eq!(app.count("users"), 2, "the user itself stays");
    app.active_org(&member.who)
        .await
        .assert_error(401, "no_active_organization");
    app.get("/api/user.getPermissions", &[], &member.who)
        .await
        .assert_error(401, "no_active_organization");
    app.get(
        "/api/organization.one",
        &[("organizationId", &org)],
        &member.who,
    )
    .await
    .assert_error(401, "not_a_member");
    let me = app.get("/api/user.get", &[], &member.who).await;
    assert!(me.assert_ok().get("member").is_none(), "{}", me.body);
    let members = app.get("/api/user.all", &[], &owner).await;
    assert_eq!(members.assert_ok().as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_removed_member_with_its_own_organization_falls_back_to_it() {
    let app = TestApp::new();
    let (owner, _, org) = app.owner_ids().await;
    let member = app
        .invite_and_join(&owner, "member@example.com", "member")
        .await;
    let own = app
        .post(
            "/api/organization.create",
            json!({"name": "Own"}),
            &member.who,
        )
        .await;
    let own = id_of(own.assert_ok());
    assert_eq!(app.active_org(&member.who).await.body["id"], org.as_str());

    remove(&app, &owner, &member.user_id).await.assert_ok();

    let active = app.active_org(&member.who).await;
    assert_eq!(active.assert_ok()["id"], own.as_str());
    assert_eq!(active.body["role"], "owner");
    let members = app.get("/api/user.all", &[], &member.who).await;
    let members = members.assert_ok().as_array().unwrap().clone();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0]["userId"], member.user_id.as_str());
    app.get(
        "/api/organization.one",
        &[("organizationId", &org)],
        &member.who,
    )
    .await
    .assert_error(401, "not_a_member");
    let orgs = app.get("/api/organization.all", &[], &member.who).await;
    assert_eq!(orgs.assert_ok().as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_admin_removes_a_member() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let admin = app
        .invite_and_join(&owner, "admin@example.com", "admin")
        .await;
    let member = app
        .invite_and_join(&owner, "member@example.com", "member")
        .await;

    remove(&app, &admin.who, &member.user_id).await.assert_ok();

    assert_eq!(
        app.count_where(
            "SELECT count(*) FROM members WHERE id = ?1",
            &[&member.member_id]
        ),
        0
    );
}

#[tokio::test]
async fn an_admin_cannot_remove_another_admin() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let admin = app
        .invite_and_join(&owner, "admin@example.com", "admin")
        .await;
    let other = app
        .invite_and_join(&owner, "other@example.com", "admin")
        .await;

    let r = remove(&app, &admin.who, &other.user_id).await;

    r.assert_error(401, "permission_denied");
    assert_eq!(role_of(&app, &other.member_id), "admin");
    app.active_org(&other.who).await.assert_ok();
}

#[tokio::test]
async fn nobody_removes_the_owner() {
    let app = TestApp::new();
    let (owner, owner_id, org) = app.owner_ids().await;
    let admin = app
        .invite_and_join(&owner, "admin@example.com", "admin")
        .await;

    let by_admin = remove(&app, &admin.who, &owner_id).await;
    let by_itself = remove(&app, &owner, &owner_id).await;

    by_admin.assert_error(401, "permission_denied");
    by_itself.assert_error(401, "permission_denied");
    assert_eq!(owners_of(&app, &org), 1);
    assert_eq!(app.active_org(&owner).await.assert_ok()["role"], "owner");
}

#[tokio::test]
async fn an_admin_cannot_remove_itself() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let admin = app
        .invite_and_join(&owner, "admin@example.com", "admin")
        .await;

    let r = remove(&app, &admin.who, &admin.user_id).await;

    r.assert_error(401, "permission_denied");
    assert_eq!(role_of(&app, &admin.member_id), "admin");
}

#[tokio::test]
async fn a_member_cannot_remove_anyone() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let member = member_seeing(
        &app,
        &owner,
        "member@example.com",
        json!({"canDeleteProjects": true, "canAccessToAPI": true}),
        &[],
        &[],
        &[],
    )
    .await;
    let other = app
        .invite_and_join(&owner, "other@example.com", "member")
        .await;

    let r = remove(&app, &member.who, &other.user_id).await;

    r.assert_error(401, "permission_denied");
    assert_eq!(app.count("members"), 3);
}

#[tokio::test]
async fn removing_a_user_who_is_not_a_member_is_not_found() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let gone = app
        .invite_and_join(&owner, "gone@example.com", "member")
        .await;
    remove(&app, &owner, &gone.user_id).await.assert_ok();

    let again = remove(&app, &owner, &gone.user_id).await;
    let missing = remove(&app, &owner, "nosuchuser0000000000").await;

    again.assert_error(404, "not_found");
    missing.assert_error(404, "not_found");
    assert_eq!(app.count("members"), 1);
}

// user.assignPermissions and user.getPermissions

#[tokio::test]
async fn assigned_flags_are_stored_and_apply_to_the_members_next_request() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let member = app
        .invite_and_join(&owner, "member@example.com", "member")
        .await;
    assert!(flags_set(&permissions(&app, &member.who).await).is_empty());

    let r = assign(
        &app,
        &owner,
        &member.user_id,
        json!({"canCreateProjects": true, "canAccessToAPI": true, "canDeleteServices": true}),
    )
    .await;

    assert_eq!(
        flags_set(r.assert_ok()),
        ["canCreateProjects", "canDeleteServices", "canAccessToAPI"]
    );
    assert_eq!(r.body["role"], "member");
    let row = |col: &str| {
        app.scalar(
            &format!("SELECT {col} FROM members WHERE id = ?1"),
            &[&member.member_id],
        )
    };
    assert_eq!(row("can_create_projects"), 1);
    assert_eq!(row("can_access_to_api"), 1);
    assert_eq!(row("can_delete_services"), 1);
    assert_eq!(row("can_delete_projects"), 0);
    let p = permissions(&app, &member.who).await;
    assert_eq!(p["role"], "member");
    assert_eq!(
        flags_set(&p),
        ["canCreateProjects", "canDeleteServices", "canAccessToAPI"]
    );
}

#[tokio::test]
async fn assigning_permissions_replaces_every_flag_and_list() {
    let app = TestApp::new();
    let (owner, _, org) = app.owner_ids().await;
    let (p, e, a) = resources_in(&app, &org, "1");
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
    assign(
        &app,
        &owner,
        &member.user_id,
        json!({"canCreateProjects": true, "accessedProjects": [p],
               "accessedEnvironments": [e], "accessedServices": [a]}),
    )
    .await
    .assert_ok();

    let r = assign(
        &app,
        &owner,
        &member.user_id,
        json!({"canDeleteEnvironments": true}),
    )
    .await;

    assert_eq!(flags_set(r.assert_ok()), ["canDeleteEnvironments"]);
    let now = permissions(&app, &member.who).await;
    assert_eq!(flags_set(&now), ["canDeleteEnvironments"]);
    assert_eq!(now["accessedProjects"], json!([]));
    assert_eq!(app.count("member_projects"), 0);
    assert_eq!(app.count("member_environments"), 0);
    assert_eq!(app.count("member_applications"), 0);
}

#[tokio::test]
async fn access_lists_hold_the_organizations_resources() {
    let app = TestApp::new();
    let (owner, _, org) = app.owner_ids().await;
    let (p, e, a) = resources_in(&app, &org, "1");
    let member = app
        .invite_and_join(&owner, "member@example.com", "member")
        .await;

    let r = assign(
        &app,
        &owner,
        &member.user_id,
        json!({"accessedProjects": [p, p], "accessedEnvironments": [e], "accessedServices": [a]}),
    )
    .await;

    assert_eq!(r.assert_ok()["accessedProjects"], json!([p]));
    assert_eq!(
        app.scalar(
            "SELECT project_id FROM member_projects WHERE member_id = ?1",
            &[&member.member_id]
        ),
        p.as_str()
    );
    assert_eq!(app.count("member_projects"), 1);
    assert_eq!(app.count("member_environments"), 1);
    assert_eq!(app.count("member_applications"), 1);
    let mine = permissions(&app, &member.who).await;
    assert_eq!(mine["accessedProjects"], json!([p]));
    assert_eq!(mine["accessedEnvironments"], json!([e]));
    assert_eq!(mine["accessedServices"], json!([a]));
}

#[tokio::test]
async fn unknown_resource_ids_are_refused_and_change_nothing() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let member = app
        .invite_and_join(&owner, "member@example.com", "member")
        .await;

    let r = assign(
        &app,
        &owner,
        &member.user_id,
        json!({"canCreateProjects": true, "accessedProjects": ["nosuchproject"],
               "accessedEnvironments": ["nosuchenv"], "accessedServices": ["nosuchapp"]}),
    )
    .await;

    r.assert_error(400, "validation_failed");
    assert_eq!(
        r.issue_paths(),
        [
            "accessedProjects",
            "accessedEnvironments",
            "accessedServices"
        ]
    );
    assert_eq!(
        app.scalar(
            "SELECT can_create_projects FROM members WHERE id = ?1",
            &[&member.member_id]
        ),
        0
    );
    assert_eq!(app.count("member_projects"), 0);
}

#[tokio::test]
async fn another_organizations_project_cannot_be_assigned() {
    let app = TestApp::new();
    let (owner, _, org) = app.owner_ids().await;
    let member = app
        .invite_and_join(&owner, "member@example.com", "member")
        .await;
    let b = app
        .post(
            "/api/organization.create",
            json!({"name": "B"}),
            &member.who,
        )
        .await;
    let b = id_of(b.assert_ok());
    let (mine, _, _) = resources_in(&app, &org, "1");
    let (foreign, _, _) = resources_in(&app, &b, "2");

    let r = assign(
        &app,
        &owner,
        &member.user_id,
        json!({"accessedProjects": [mine, foreign]}),
    )
    .await;

    r.assert_error(400, "validation_failed");
    assert_eq!(r.issue_paths(), ["accessedProjects"]);
    assert!(
        r.body["issues"][0]["message"]
            .as_str()
            .unwrap()
            .contains(&foreign)
    );
    assert_eq!(app.count("member_projects"), 0);
}

#[tokio::test]
async fn an_admin_assigns_permissions_to_a_member() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let admin = app
        .invite_and_join(&owner, "admin@example.com", "admin")
        .await;
    let member = app
        .invite_and_join(&owner, "member@example.com", "member")
        .await;

    assign(
        &app,
        &admin.who,
        &member.user_id,
        json!({"canCreateServices": true}),
    )
    .await
    .assert_ok();

    assert_eq!(
        app.scalar(
            "SELECT can_create_services FROM members WHERE id = ?1",
            &[&member.member_id]
        ),
        1
    );
}

#[tokio::test]
async fn permissions_cannot_be_assigned_to_oneself_the_owner_or_by_an_admin_to_an_admin() {
    let app = TestApp::new();
    let (owner, owner_id, org) = app.owner_ids().await;
    let admin = app
        .invite_and_join(&owner, "admin@example.com", "admin")
        .await;
    let other = app
        .invite_and_join(&owner, "other@example.com", "admin")
        .await;
    app.post(
        "/api/user.assignPermissions",
        json!({"userId": other.user_id}),
        &owner,
    )
    .await
    .assert_ok();
    let snapshot = || {
        app.scalar(
            "SELECT group_concat(can_create_projects || can_access_to_api, ',') FROM members
             WHERE organization_id = ?1",
            &[&org],
        )
    };
    let before = snapshot();

    let on_other_admin = assign(&app, &admin.who, &other.user_id, json!({})).await;
    let on_owner = assign(&app, &admin.who, &owner_id, json!({})).await;
    let on_itself = assign(&app, &admin.who, &admin.user_id, json!({})).await;
    let owner_on_itself = assign(&app, &owner, &owner_id, json!({})).await;

    on_other_admin.assert_error(401, "permission_denied");
    on_owner.assert_error(401, "permission_denied");
    on_itself.assert_error(401, "permission_denied");
    owner_on_itself.assert_error(401, "permission_denied");
    assert_eq!(snapshot(), before);
}

#[tokio::test]
async fn a_member_cannot_assign_permissions() {
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
    let other = app
        .invite_and_join(&owner, "other@example.com", "member")
        .await;

    let r = assign(
        &app,
        &member.who,
        &other.user_id,
        json!({"canAccessToAPI": true}),
    )
    .await;

    r.assert_error(401, "permission_denied");
    assert_eq!(
        app.scalar(
            "SELECT can_access_to_api FROM members WHERE id = ?1",
            &[&other.member_id]
        ),
        0
    );
}

#[tokio::test]
async fn assigning_permissions_to_a_non_member_is_not_found() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;

    let r = assign(&app, &owner, "nosuchuser0000000000", json!({})).await;

    r.assert_error(404, "not_found");
}

#[tokio::test]
async fn the_owner_and_admins_hold_every_permission() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let admin = app
        .invite_and_join(&owner, "admin@example.com", "admin")
        .await;
    let member = app
        .invite_and_join(&owner, "member@example.com", "member")
        .await;
    // Stored flags do not narrow an admin.
    assign(&app, &owner, &admin.user_id, json!({}))
        .await
        .assert_ok();

    let o = permissions(&app, &owner).await;
    let a = permissions(&app, &admin.who).await;
    let m = permissions(&app, &member.who).await;

    assert_eq!(
        (o["role"].as_str(), flags_set(&o)),
        (Some("owner"), flag_names().to_vec())
    );
    assert_eq!(
        (a["role"].as_str(), flags_set(&a)),
        (Some("admin"), flag_names().to_vec())
    );
    assert_eq!(
        (m["role"].as_str(), flags_set(&m)),
        (Some("member"), vec![])
    );
    assert_eq!(m["accessedProjects"], json!([]));
}

// user.all

#[tokio::test]
async fn user_all_lists_the_members_of_the_active_organization() {
    let app = TestApp::new();
    let (owner, owner_id, org) = app.owner_ids().await;
    app.clock.advance(1);
    let admin = app
        .invite_and_join(&owner, "admin@example.com", "admin")
        .await;
    app.clock.advance(1);
    let member = app
        .invite_and_join(&owner, "member@example.com", "member")
        .await;
    app.post(
        "/api/organization.create",
        json!({"name": "B"}),
        &member.who,
    )
    .await
    .assert_ok();

    let r = app.get("/api/user.all", &[], &admin.who).await;

    let list = r.assert_ok().as_array().unwrap().clone();
    let rows: Vec<(&str, &str, &str)> = list
        .iter()
        .map(|m| {
            (
                m["userId"].as_str().unwrap(),
                m["role"].as_str().unwrap(),
                m["user"]["email"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (owner_id.as_str(), "owner", "owner@example.com"),
            (admin.user_id.as_str(), "admin", "admin@example.com"),
            (member.user_id.as_str(), "member", "member@example.com"),
        ]
    );
    assert!(list.iter().all(|m| m["organizationId"] == org.as_str()));
    assert_eq!(list[2]["id"], member.member_id.as_str());
    assert!(list.iter().all(|m| m["user"].get("passwordHash").is_none()));
}

#[tokio::test]
async fn user_all_pages_through_the_members_in_the_order_they_joined_with_the_total() {
    let app = TestApp::new();
    let (owner, owner_id, _) = app.owner_ids().await;
    let mut joined = vec![owner_id];
    let mut last = None;
    for i in 0..4 {
        let m = app
            .invite_and_join(&owner, &format!("m{i}@example.com"), "member")
            .await;
        joined.push(m.user_id.clone());
        last = Some(m);
    }
    // Someone who joined another organization only stays out.
    let last = last.unwrap();
    let other = app.create_org(&last.who, "Other").await;
    app.post(
        "/api/organization.setActive",
        json!({"organizationId": other}),
        &last.who,
    )
    .await
    .assert_ok();
    app.invite_and_join(&last.who, "outsider@example.com", "member")
        .await;

    let (rows, totals) = app.every_page("/api/user.all", &owner, 2, "userId").await;
    let first = app.get("/api/user.all", &[("limit", "3")], &owner).await;

    assert_eq!(rows, joined);
    assert_eq!(totals, [5, 5, 5]);
    assert_eq!(first.column("user/email")[2], "m1@example.com");
    assert_eq!(first.total(), 5);
}

#[tokio::test]
async fn user_all_refuses_bad_pages_and_still_refuses_a_member_any_page() {
    let app = TestApp::new();
    let (owner, _, _) = app.owner_ids().await;
    let member = app
        .invite_and_join(&owner, "member@example.com", "member")
        .await;

    app.assert_refuses_bad_pages("/api/user.all", &owner).await;
    let r = app
        .get(
            "/api/user.all",
            &[("limit", "1"), ("offset", "1")],
            &member.who,
        )
        .await;

    r.assert_error(401, "permission_denied");
    assert!(r.header(TOTAL_COUNT).is_none());
}

// user.createUserWithCredentials

#[tokio::test]
async fn the_owner_creates_a_user_who_can_sign_in_as_a_member() {
    let app = TestApp::new();
    let (owner, _, org) = app.owner_ids().await;

    let r = app
        .post(
            "/api/user.createUserWithCredentials",
            json!({"email": "New@Example.com", "password": "a long password",
                   "name": "New", "role": "member"}),
            &owner,
        )
        .await;

    let body = r.assert_ok();
    assert_eq!(body["role"], "member");
    assert_eq!(body["organizationId"], org.as_str());
    assert_eq!(body["user"]["email"], "new@example.com");
    let user = body["userId"].as_str().unwrap().to_owned();
    assert_eq!(
        app.scalar("SELECT name FROM users WHERE id = ?1", &[&user]),
        "New"
    );
    assert_eq!(
        app.scalar(
            "SELECT role || can_create_projects || can_access_to_api FROM members
             WHERE organization_id = ?1 AND user_id = ?2",
            &[&org, &user]
        ),
        "member00"
    );
    let who = app.sign_in("new@example.com", "a long password").await;
    let active = app.active_org(&who).await;
    assert_eq!(active.assert_ok()["id"], org.as_str());
    assert_eq!(active.body["role"], "member");
}

#[tokio::test]
async fn an_admin_made_installation_administrator_from_the_shell_creates_an_admin() {
    let app = TestApp::new();
    app.owner().await;
    app.create_installation_admin("admin@example.com", Role::Admin);
    let admin = app.sign_in("admin@example.com", PASSWORD).await;

    let created = app
        .create_user_via_api(&admin, "second@example.com", "admin")
        .await;

    assert_eq!(role_of(&app, &created.member_id), "admin");
    app.get("/api/organization.allInvitations", &[], &created.who)
        .await
        .assert_ok();
    // Whom it creates is no installation administrator.
    assert_eq!(
        app.scalar(
            "SELECT installation_admin FROM users WHERE id = ?1",
            &[&created.user_id]
        ),
        0
    );
}

#[tokio::test]
async fn an_admin_who_is_no_installation_administrator_cannot_create_users() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let admin = app
        .invite_and_join(&owner, "admin@example.com", "admin")
        .await;

    let r = app
        .post(
            "/api/user.createUserWithCredentials",
            json!({"email": "new@example.com", "password": PASSWORD, "name": "New",
                   "role": "member"}),
            &admin.who,
        )
        .await;

    r.assert_error(401, "permission_denied");
    assert_eq!(app.count("users"), 2);
    assert_eq!(app.count("members"), 2);
}

#[tokio::test]
async fn an_installation_administrator_who_is_only_a_member_cannot_create_users() {
    let app = TestApp::new();
    app.owner().await;
    app.create_installation_admin("member@example.com", Role::Member);
    let member = app.sign_in("member@example.com", PASSWORD).await;

    let r = app
        .post(
            "/api/user.createUserWithCredentials",
            json!({"email": "new@example.com", "password": PASSWORD, "name": "New",
                   "role": "member"}),
            &member,
        )
        .await;

    r.assert_error(401, "permission_denied");
    assert_eq!(app.count("users"), 2);
}

#[tokio::test]
async fn deleting_the_first_organization_gives_no_other_owner_the_right_to_create_users() {
    let app = TestApp::new();
    let (owner, _, first) = app.owner_ids().await;
    let tenant = app
        .invite_and_join(&owner, "tenant@example.com", "member")
        .await;
    let tenants_org = app.create_org(&tenant.who, "Tenant's").await;
    app.create_org(&owner, "Owner's second").await;
    app.post(
        "/api/organization.delete",
        json!({"organizationId": first}),
        &owner,
    )
    .await
    .assert_ok();
    // The tenant's organization is now the oldest there is, and the tenant owns it.
    assert_eq!(app.first_org(), tenants_org);
    assert_eq!(
        app.active_org(&tenant.who).await.assert_ok()["id"],
        tenants_org.as_str()
    );

    let body = |email: &str| json!({"email": email, "password": PASSWORD, "name": "New", "role": "member"});
    let by_tenant = app
        .post(
            "/api/user.createUserWithCredentials",
            body("by-tenant@example.com"),
            &tenant.who,
        )
        .await;
    let by_owner = app
        .post(
            "/api/user.createUserWithCredentials",
            body("by-owner@example.com"),
            &owner,
        )
        .await;

    by_tenant.assert_error(401, "permission_denied");
    by_owner.assert_ok();
    assert_eq!(
        app.count_where(
            "SELECT count(*) FROM users WHERE email = 'by-tenant@example.com'",
            &[]
        ),
        0
    );
    assert_eq!(app.count("users"), 3);
}

#[tokio::test]
async fn a_user_cannot_be_created_as_owner() {
    let app = TestApp::new();
    let (owner, _, org) = app.owner_ids().await;

    let r = app
        .post(
            "/api/user.createUserWithCredentials",
            json!({"email": "boss@example.com", "password": PASSWORD, "name": "Boss",
                   "role": "owner"}),
            &owner,
        )
        .await;

    r.assert_error(400, "invalid_role");
    assert_eq!(app.count("users"), 1);
    assert_eq!(owners_of(&app, &org), 1);
}

#[tokio::test]
async fn creating_a_user_with_a_taken_email_is_a_conflict() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    app.create_user_via_api(&owner, "taken@example.com", "member")
        .await;

    let r = app
        .post(
            "/api/user.createUserWithCredentials",
            json!({"email": "TAKEN@example.com", "password": PASSWORD, "name": "Again",
                   "role": "admin"}),
            &owner,
        )
        .await;

    r.assert_error(409, "email_taken");
    assert_eq!(app.count("users"), 2);
    assert_eq!(app.count("members"), 2);
}

#[tokio::test]
async fn a_member_cannot_create_users() {
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

    let r = app
        .post(
            "/api/user.createUserWithCredentials",
            json!({"email": "new@example.com", "password": PASSWORD, "name": "New",
                   "role": "member"}),
            &member.who,
        )
        .await;

    r.assert_error(401, "permission_denied");
    assert_eq!(app.count("users"), 2);
}

#[tokio::test]
async fn creating_a_user_checks_every_field() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;

    let r = app
        .post(
            "/api/user.createUserWithCredentials",
            json!({"email": "nope", "password": "short", "name": " ", "role": "member"}),
            &owner,
        )
        .await;

    r.assert_error(400, "validation_failed");
    assert_eq!(r.issue_paths(), ["name", "email", "password"]);
    assert_eq!(app.count("users"), 1);
}

// The rules together

#[tokio::test]
async fn an_organization_keeps_exactly_one_owner() {
    let app = TestApp::new();
    let (owner, owner_id, org) = app.owner_ids().await;
    let admin = app
        .invite_and_join(&owner, "admin@example.com", "admin")
        .await;
    let owner_member = app.member_id(&org, &owner_id);

    let attempts = [
        app.post(
            "/api/organization.inviteMember",
            json!({"email": "x@example.com", "role": "owner"}),
            &owner,
        )
        .await,
        set_role(&app, &owner, &admin.member_id, "owner").await,
        set_role(&app, &admin.who, &owner_member, "member").await,
        remove(&app, &admin.who, &owner_id).await,
        app.post(
            "/api/user.createUserWithCredentials",
            json!({"email": "y@example.com", "password": PASSWORD, "name": "Y", "role": "owner"}),
            &admin.who,
        )
        .await,
    ];

    let got: Vec<(u16, &str)> = attempts.iter().map(|r| (r.status, r.reason())).collect();
    assert_eq!(
        got,
        [
            (400, "invalid_role"),
            (400, "invalid_role"),
            (401, "permission_denied"),
            (401, "permission_denied"),
            (400, "invalid_role"),
        ]
    );
    assert_eq!(owners_of(&app, &org), 1);
    assert_eq!(role_of(&app, &owner_member), "owner");
    assert_eq!(
        app.scalar("SELECT owner_id FROM organizations WHERE id = ?1", &[&org]),
        owner_id.as_str()
    );
}

/// An admin's membership holds every flag, whether it joined by invitation or was created
/// with credentials. Demoted to member, it holds none of them (create/delete projects,
/// environments, services, API access): a member holds only what was assigned to it.
#[tokio::test]
async fn a_demoted_admin_holds_no_member_permission_it_was_not_given() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let invited = app
        .invite_and_join(&owner, "admin@example.com", "admin")
        .await;
    let created = app
        .create_user_via_api(&owner, "created@example.com", "admin")
        .await;

    for admin in [&invited, &created] {
        app.post(
            "/api/organization.updateMemberRole",
            json!({"memberId": admin.member_id, "role": "member"}),
            &owner,
        )
        .await
        .assert_ok();

        let p = app.get("/api/user.getPermissions", &[], &admin.who).await;

        let p = p.assert_ok();
        assert_eq!(p["role"], "member");
        let held = flags_set(p);
        assert!(
            held.is_empty(),
            "{} was demoted but still holds {held:?}",
            admin.email
        );
    }
}

/// A member promoted to admin and demoted again holds none of the access lists it had
/// before: they are gone from the answer and from the database.
#[tokio::test]
async fn a_demoted_admin_keeps_no_access_list_from_before() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (project_id, _) = project(&app, &owner, "p").await;
    let m = member_seeing(
        &app,
        &owner,
        "m@example.com",
        json!({}),
        &[&project_id],
        &[],
        &[],
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

// user.one

#[tokio::test]
async fn user_one_shows_a_members_stored_flags_and_lists_to_the_owner() {
    let app = TestApp::new();
    let (owner, owner_id, org) = app.owner_ids().await;
    let (p, e, a) = resources_in(&app, &org, "1");
    let member = app
        .invite_and_join(&owner, "member@example.com", "member")
        .await;
    assign(
        &app,
        &owner,
        &member.user_id,
        json!({"canCreateServices": true, "accessedProjects": [p],
               "accessedEnvironments": [e], "accessedServices": [a]}),
    )
    .await
    .assert_ok();

    let r = app
        .get("/api/user.one", &[("userId", &member.user_id)], &owner)
        .await;

    let body = r.assert_ok();
    assert_eq!(body["id"], member.member_id);
    assert_eq!(body["role"], "member");
    assert_eq!(body["user"]["email"], "member@example.com");
    assert_eq!(flags_set(&body["permissions"]), ["canCreateServices"]);
    assert_eq!(body["permissions"]["accessedProjects"], json!([p]));
    assert_eq!(body["permissions"]["accessedEnvironments"], json!([e]));
    assert_eq!(body["permissions"]["accessedServices"], json!([a]));
    // What the member itself is told is the same.
    let own = permissions(&app, &member.who).await;
    assert_eq!(own, body["permissions"]);

    // The owner holds every flag, and no list applies to it.
    let me = app
        .get("/api/user.one", &[("userId", &owner_id)], &owner)
        .await;
    let me = me.assert_ok();
    assert_eq!(me["role"], "owner");
    assert_eq!(flags_set(&me["permissions"]).len(), flag_names().len());
    assert_eq!(me["permissions"]["accessedProjects"], json!([]));
}

#[tokio::test]
async fn user_one_is_for_owners_and_admins_of_the_members_organization() {
    let app = TestApp::new();
    let (owner, owner_id, _) = app.owner_ids().await;
    let member = app
        .invite_and_join(&owner, "member@example.com", "member")
        .await;
    let admin = app
        .invite_and_join(&owner, "admin@example.com", "admin")
        .await;

    app.get("/api/user.one", &[("userId", &owner_id)], &member.who)
        .await
        .assert_error(401, "permission_denied");
    app.get("/api/user.one", &[("userId", &member.user_id)], &admin.who)
        .await
        .assert_ok();
    // A user of another organization is not a member here.
    let s = stranger(&app, &owner, "stranger@example.com").await;
    app.get("/api/user.one", &[("userId", &s.user_id)], &owner)
        .await
        .assert_error(404, "not_found");
    // Nor is the owner a member of the stranger's organization.
    app.get("/api/user.one", &[("userId", &owner_id)], &s.who)
        .await
        .assert_error(404, "not_found");
    app.get(
        "/api/user.one",
        &[("userId", "nosuchuser0000000000")],
        &owner,
    )
    .await
    .assert_error(404, "not_found");
}
