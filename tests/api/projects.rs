//! `project.{create,one,all,update,remove,search}`, the listing that is never stale, and
//! the reference's `project.all` example.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use poem::http::Method;
use serde_json::json;

use crate::helpers::*;

fn project_row(app: &TestApp, id: &str, column: &str) -> serde_json::Value {
    app.scalar(
        &format!("SELECT {column} FROM projects WHERE id = ?1"),
        &[&id],
    )
}

// ---------------------------------------------------------------- project.create

#[tokio::test]
async fn creating_a_project_also_creates_its_default_production_environment() {
    let app = TestApp::new();
    let (owner, _, org) = app.owner_ids().await;

    let r = app
        .post(
            "/api/project.create",
            json!({"name": "  Website  ", "description": "The public site"}),
            &owner,
        )
        .await;

    let body = r.assert_ok();
    let p = &body["project"];
    let e = &body["environment"];
    let pid = p["projectId"].as_str().unwrap();
    let eid = e["environmentId"].as_str().unwrap();
    assert_eq!(p["name"], "Website");
    assert_eq!(p["description"], "The public site");
    assert_eq!(p["organizationId"], org.as_str());
    assert_eq!(p["createdAt"], "2026-11-27T00:00:00.000Z");
    assert_eq!(e["name"], "production");
    assert_eq!(e["isDefault"], true);
    assert_eq!(e["projectId"], pid);
    assert_eq!(e["applications"], json!([]));
    assert_eq!(project_row(&app, pid, "name"), "Website");
    assert_eq!(project_row(&app, pid, "description"), "The public site");
    assert_eq!(project_row(&app, pid, "organization_id"), org.as_str());
    assert_eq!(
        app.scalar(
            "SELECT project_id || ' ' || organization_id || ' ' || name || ' ' || is_default
             FROM environments WHERE id = ?1",
            &[&eid]
        ),
        format!("{pid} {org} production 1").as_str()
    );
    assert_eq!(app.count("projects"), 1);
    assert_eq!(app.count("environments"), 1);
}

#[tokio::test]
async fn a_project_without_a_description_has_none() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;

    let r = app
        .post("/api/project.create", json!({"name": "Bare"}), &owner)
        .await;

    let p = &r.assert_ok()["project"];
    assert!(p.get("description").is_none(), "{p}");
    let pid = p["projectId"].as_str().unwrap();
    assert_eq!(project_row(&app, pid, "description"), json!(null));
}

#[tokio::test]
async fn a_project_needs_a_name() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;

    for name in ["", "   ", "\t\n"] {
        let r = app
            .post("/api/project.create", json!({"name": name}), &owner)
            .await;

        r.assert_error(400, "validation_failed");
        assert_eq!(r.code(), "BAD_REQUEST");
        assert_eq!(r.issue_paths(), ["name"], "{name:?}");
    }
    assert_eq!(app.count("projects"), 0);
    assert_eq!(app.count("environments"), 0);
}

#[tokio::test]
async fn a_project_name_may_have_255_characters_but_not_256() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;

    let longest = app
        .post(
            "/api/project.create",
            json!({"name": "é".repeat(255)}),
            &owner,
        )
        .await;
    let too_long = app
        .post(
            "/api/project.create",
            json!({"name": "é".repeat(256)}),
            &owner,
        )
        .await;

    assert_eq!(
        longest.assert_ok()["project"]["name"],
        "é".repeat(255).as_str()
    );
    too_long.assert_error(400, "validation_failed");
    assert_eq!(too_long.issue_paths(), ["name"]);
    assert_eq!(app.count("projects"), 1);
}

#[tokio::test]
async fn a_project_description_may_have_10000_characters_but_not_10001() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;

    let longest = app
        .post(
            "/api/project.create",
            json!({"name": "A", "description": "d".repeat(10_000)}),
            &owner,
        )
        .await;
    let too_long = app
        .post(
            "/api/project.create",
            json!({"name": "B", "description": "d".repeat(10_001)}),
            &owner,
        )
        .await;

    longest.assert_ok();
    too_long.assert_error(400, "validation_failed");
    assert_eq!(too_long.issue_paths(), ["description"]);
    assert_eq!(app.count("projects"), 1);
}

#[tokio::test]
async fn a_bad_name_and_a_bad_description_are_reported_together() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;

    let r = app
        .post(
            "/api/project.create",
            json!({"name": " ", "description": "d".repeat(10_001)}),
            &owner,
        )
        .await;

    r.assert_error(400, "validation_failed");
    assert_eq!(r.issue_paths(), ["name", "description"]);
    assert_eq!(app.count("projects"), 0);
}

#[tokio::test]
async fn a_member_without_can_create_projects_cannot_create_one() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    // Every other flag, to show that none of them stands in for this one.
    let mut flags = resource_flags();
    flags["canCreateProjects"] = json!(false);
    let member = member_seeing(&app, &owner, "member@example.com", flags, &[], &[], &[]).await;

    let r = app
        .post("/api/project.create", json!({"name": "Mine"}), &member.who)
        .await;

    r.assert_error(401, "permission_denied");
    assert_eq!(r.code(), "UNAUTHORIZED");
    assert_eq!(app.count("projects"), 0);
    assert_eq!(app.count("environments"), 0);
    assert_eq!(app.count("member_projects"), 0);
}

#[tokio::test]
async fn a_member_who_creates_a_project_sees_it_and_its_environment_at_once() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    project(&app, &owner, "Owner's").await;
    let member = member_seeing(
        &app,
        &owner,
        "member@example.com",
        json!({"canCreateProjects": true}),
        &[],
        &[],
        &[],
    )
    .await;
    assert_eq!(
        all_projects(&app, &member.who).await,
        Vec::<serde_json::Value>::new()
    );

    let r = app
        .post("/api/project.create", json!({"name": "Mine"}), &member.who)
        .await;

    let body = r.assert_ok();
    let pid = body["project"]["projectId"].as_str().unwrap();
    let eid = body["environment"]["environmentId"].as_str().unwrap();
    assert_eq!(
        app.count_where(
            "SELECT count(*) FROM member_projects WHERE member_id = ?1 AND project_id = ?2",
            &[&member.member_id, &pid]
        ),
        1
    );
    assert_eq!(
        app.count_where(
            "SELECT count(*) FROM member_environments WHERE member_id = ?1 AND environment_id = ?2",
            &[&member.member_id, &eid]
        ),
        1
    );
    assert_eq!(
        outline(&all_projects(&app, &member.who).await),
        ["Mine", "Mine/production"]
    );
    let one = app
        .get("/api/project.one", &[("projectId", pid)], &member.who)
        .await;
    assert_eq!(one.assert_ok()["name"], "Mine");
    let perms = app.get("/api/user.getPermissions", &[], &member.who).await;
    assert_eq!(perms.assert_ok()["accessedProjects"], json!([pid]));
    assert_eq!(perms.body["accessedEnvironments"], json!([eid]));
}

#[tokio::test]
async fn an_admin_creates_a_project_without_joining_any_access_list() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let admin = app
        .invite_and_join(&owner, "admin@example.com", "admin")
        .await;

    let r = app
        .post(
            "/api/project.create",
            json!({"name": "Admin's"}),
            &admin.who,
        )
        .await;

    r.assert_ok();
    assert_eq!(app.count("projects"), 1);
    assert_eq!(app.count("member_projects"), 0);
    assert_eq!(app.count("member_environments"), 0);
    assert_eq!(
        app.get("/api/project.all", &[], &owner)
            .await
            .column("name"),
        ["Admin's"]
    );
}

// ---------------------------------------------------------------- project.one

#[tokio::test]
async fn project_one_shows_the_project_with_its_environments_and_applications() {
    let app = TestApp::new();
    let (owner, _, org) = app.owner_ids().await;
    let (pid, prod) = project(&app, &owner, "Shop").await;
    let staging = environment(&app, &owner, &pid, "staging").await;
    let api = application(&app, &owner, &prod, "API").await;

    let r = app
        .get("/api/project.one", &[("projectId", &pid)], &owner)
        .await;

    let p = r.assert_ok();
    assert_eq!(p["projectId"], pid.as_str());
    assert_eq!(p["name"], "Shop");
    assert_eq!(p["organizationId"], org.as_str());
    let envs = p["environments"].as_array().unwrap();
    assert_eq!(envs.len(), 2, "{p}");
    assert_eq!(envs[0]["environmentId"], prod.as_str());
    assert_eq!(envs[0]["isDefault"], true);
    assert_eq!(envs[1]["environmentId"], staging.as_str());
    assert_eq!(envs[1]["isDefault"], false);
    assert_eq!(
        envs[0]["applications"],
        json!([{
            "applicationId": api["applicationId"],
            "name": "API",
            "appName": api["appName"],
            "applicationStatus": "idle",
        }])
    );
    assert_eq!(envs[1]["applications"], json!([]));
}

#[tokio::test]
async fn project_one_of_a_missing_project_is_not_found() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;

    let r = app
        .get("/api/project.one", &[("projectId", MISSING)], &owner)
        .await;

    r.assert_error(404, "not_found");
    assert_eq!(r.code(), "NOT_FOUND");
}

#[tokio::test]
async fn project_one_of_another_organizations_project_is_wrong_organization() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let other = stranger(&app, &owner, "other@example.com").await;
    let (theirs, _) = project(&app, &other.who, "Theirs").await;

    let r = app
        .get("/api/project.one", &[("projectId", &theirs)], &owner)
        .await;

    r.assert_error(401, "wrong_organization");
    assert!(!r.body.to_string().contains("Theirs"));
}

#[tokio::test]
async fn project_one_of_a_project_the_member_was_not_given_is_permission_denied() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (given, _) = project(&app, &owner, "Given").await;
    let (hidden, _) = project(&app, &owner, "Hidden").await;
    let member = member_seeing(
        &app,
        &owner,
        "m@example.com",
        json!({}),
        &[&given],
        &[],
        &[],
    )
    .await;

    let seen = app
        .get("/api/project.one", &[("projectId", &given)], &member.who)
        .await;
    let refused = app
        .get("/api/project.one", &[("projectId", &hidden)], &member.who)
        .await;

    assert_eq!(seen.assert_ok()["name"], "Given");
    // The environments were not given, so none is shown.
    assert_eq!(seen.body["environments"], json!([]));
    refused.assert_error(401, "permission_denied");
    assert!(!refused.body.to_string().contains("Hidden"));
}

// ---------------------------------------------------------------- project.all

#[tokio::test]
async fn project_all_lists_the_organizations_projects_newest_first_with_everything_inside() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (old, old_prod) = project(&app, &owner, "Old").await;
    let (new, new_prod) = project(&app, &owner, "New").await;
    let qa = environment(&app, &owner, &old, "qa").await;
    let web = application(&app, &owner, &old_prod, "web").await;
    application(&app, &owner, &qa, "worker").await;
    let other = stranger(&app, &owner, "other@example.com").await;
    project(&app, &other.who, "Not ours").await;

    let list = all_projects(&app, &owner).await;

    assert_eq!(
        outline(&list),
        [
            "New",
            "New/production",
            "Old",
            "Old/production",
            "Old/production/web",
            "Old/qa",
            "Old/qa/worker"
        ]
    );
    assert_eq!(list[0]["projectId"], new.as_str());
    assert_eq!(
        list[0]["environments"][0]["environmentId"],
        new_prod.as_str()
    );
    let summary = &list[1]["environments"][0]["applications"][0];
    assert_eq!(summary["applicationId"], web["applicationId"]);
    assert_eq!(summary["name"], "web");
    assert_eq!(summary["applicationStatus"], "idle");
}

#[tokio::test]
async fn project_all_of_an_organization_without_projects_is_empty() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;

    let r = app.get("/api/project.all", &[], &owner).await;

    assert_eq!(r.assert_ok(), &json!([]));
    r.assert_json();
}

#[tokio::test]
async fn a_member_sees_only_what_its_access_lists_hold() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (shop, shop_prod) = project(&app, &owner, "Shop").await;
    let shop_qa = environment(&app, &owner, &shop, "qa").await;
    let given_app = application(&app, &owner, &shop_prod, "given").await;
    application(&app, &owner, &shop_prod, "withheld").await;
    application(&app, &owner, &shop_qa, "in-qa").await;
    project(&app, &owner, "Blog").await;
    let member = member_seeing(
        &app,
        &owner,
        "member@example.com",
        json!({}),
        &[&shop],
        &[&shop_prod],
        &[&app_id(&given_app)],
    )
    .await;

    let list = all_projects(&app, &member.who).await;

    assert_eq!(
        outline(&list),
        ["Shop", "Shop/production", "Shop/production/given"]
    );
    // The owner still sees everything.
    assert_eq!(outline(&all_projects(&app, &owner).await).len(), 8);
}

/// The owner and admins share one rendering of the listing; members get their own. After
/// every kind of write, the very next `project.all` of each shows it.
#[tokio::test]
async fn project_all_is_never_stale_after_any_write() {
    let app = TestApp::new();
    let (owner, _, org) = app.owner_ids().await;
    let admin = app
        .invite_and_join(&owner, "admin@example.com", "admin")
        .await;
    let mut flags = resource_flags();
    flags["canAccessToAPI"] = json!(true);
    let member = member_seeing(
        &app,
        &owner,
        "member@example.com",
        flags.clone(),
        &[],
        &[],
        &[],
    )
    .await;
    let key = As::Key(
        app.create_key(&owner, json!({"metadata": {"organizationId": org}}))
            .await
            .0,
    );
    let member_key = As::Key(
        app.create_key(&member.who, json!({"metadata": {"organizationId": org}}))
            .await
            .0,
    );
    let viewers = [&owner, &admin.who, &key];
    let members = [&member.who, &member_key];

    async fn check(app: &TestApp, viewers: &[&As], members: &[&As], all: &[&str], mine: &[&str]) {
        for v in viewers {
            assert_eq!(outline(&all_projects(app, v).await), all, "as {v:?}");
        }
        for m in members {
            assert_eq!(
                outline(&all_projects(app, m).await),
                mine,
                "as the member, {m:?}"
            );
        }
    }
    check(&app, &viewers, &members, &[], &[]).await;

    // The member creates a project.
    let (p, prod) = project(&app, &member.who, "P").await;
    check(
        &app,
        &viewers,
        &members,
        &["P", "P/production"],
        &["P", "P/production"],
    )
    .await;

    // The owner creates one the member does not see.
    let (q, _) = project(&app, &owner, "Q").await;
    check(
        &app,
        &viewers,
        &members,
        &["Q", "Q/production", "P", "P/production"],
        &["P", "P/production"],
    )
    .await;

    // project.update, by the member's key and by the owner.
    app.post(
        "/api/project.update",
        json!({"projectId": p, "name": "P2"}),
        &member_key,
    )
    .await
    .assert_ok();
    app.post(
        "/api/project.update",
        json!({"projectId": q, "name": "Q2"}),
        &owner,
    )
    .await
    .assert_ok();
    check(
        &app,
        &viewers,
        &members,
        &["Q2", "Q2/production", "P2", "P2/production"],
        &["P2", "P2/production"],
    )
    .await;

    // environment.create, update.
    let qa = environment(&app, &member.who, &p, "qa").await;
    check(
        &app,
        &viewers,
        &members,
        &["Q2", "Q2/production", "P2", "P2/production", "P2/qa"],
        &["P2", "P2/production", "P2/qa"],
    )
    .await;
    app.post(
        "/api/environment.update",
        json!({"environmentId": qa, "name": "test"}),
        &admin.who,
    )
    .await
    .assert_ok();
    check(
        &app,
        &viewers,
        &members,
        &["Q2", "Q2/production", "P2", "P2/production", "P2/test"],
        &["P2", "P2/production", "P2/test"],
    )
    .await;

    // application.create, update, delete.
    let a = application(&app, &member.who, &prod, "web").await;
    let full = [
        "Q2",
        "Q2/production",
        "P2",
        "P2/production",
        "P2/production/web",
        "P2/test",
    ];
    let mine = ["P2", "P2/production", "P2/production/web", "P2/test"];
    check(&app, &viewers, &members, &full, &mine).await;
    app.post(
        "/api/application.update",
        json!({"applicationId": app_id(&a), "name": "site"}),
        &owner,
    )
    .await
    .assert_ok();
    let full = [
        "Q2",
        "Q2/production",
        "P2",
        "P2/production",
        "P2/production/site",
        "P2/test",
    ];
    let mine = ["P2", "P2/production", "P2/production/site", "P2/test"];
    check(&app, &viewers, &members, &full, &mine).await;
    app.post(
        "/api/application.delete",
        json!({"applicationId": app_id(&a)}),
        &member_key,
    )
    .await
    .assert_ok();
    let full = ["Q2", "Q2/production", "P2", "P2/production", "P2/test"];
    let mine = ["P2", "P2/production", "P2/test"];
    check(&app, &viewers, &members, &full, &mine).await;

    // environment.remove.
    app.post(
        "/api/environment.remove",
        json!({"environmentId": qa}),
        &member.who,
    )
    .await
    .assert_ok();
    let full = ["Q2", "Q2/production", "P2", "P2/production"];
    let mine = ["P2", "P2/production"];
    check(&app, &viewers, &members, &full, &mine).await;

    // Access changes: the member is given Q2, then loses P2.
    grant(
        &app,
        &owner,
        &member.user_id,
        flags.clone(),
        &[&p, &q],
        &[&prod],
        &[],
    )
    .await;
    check(
        &app,
        &viewers,
        &members,
        &full,
        &["Q2", "P2", "P2/production"],
    )
    .await;
    grant(
        &app,
        &owner,
        &member.user_id,
        flags.clone(),
        &[&q],
        &[],
        &[],
    )
    .await;
    check(&app, &viewers, &members, &full, &["Q2"]).await;

    // project.remove.
    app.post("/api/project.remove", json!({"projectId": q}), &member.who)
        .await
        .assert_ok();
    check(&app, &viewers, &members, &["P2", "P2/production"], &[]).await;
}

/// Descriptions are part of the shared rendering too.
#[tokio::test]
async fn project_all_shows_a_changed_description_at_once() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let admin = app
        .invite_and_join(&owner, "admin@example.com", "admin")
        .await;
    let (p, prod) = project(&app, &owner, "P").await;
    assert!(
        all_projects(&app, &admin.who).await[0]
            .get("description")
            .is_none()
    );

    app.post(
        "/api/project.update",
        json!({"projectId": p, "description": "About P"}),
        &owner,
    )
    .await
    .assert_ok();
    app.post(
        "/api/environment.update",
        json!({"environmentId": prod, "description": "Live"}),
        &owner,
    )
    .await
    .assert_ok();

    for who in [&owner, &admin.who] {
        let list = all_projects(&app, who).await;
        assert_eq!(list[0]["description"], "About P");
        assert_eq!(list[0]["environments"][0]["description"], "Live");
    }
}

/// The owner acts in a second organization, deletes it, and the next listing is of the
/// organization it falls back to; a member of the deleted one is refused.
#[tokio::test]
async fn project_all_is_never_stale_after_an_organization_is_deleted() {
    let app = TestApp::new();
    let (owner, _, first) = app.owner_ids().await;
    project(&app, &owner, "First's").await;
    let second = app
        .post(
            "/api/organization.create",
            json!({"name": "Second"}),
            &owner,
        )
        .await;
    let second = id_of(second.assert_ok());
    app.post(
        "/api/organization.setActive",
        json!({"organizationId": second}),
        &owner,
    )
    .await
    .assert_ok();
    let (p, prod) = project(&app, &owner, "Second's").await;
    let member = app
        .invite_and_join(&owner, "member@example.com", "member")
        .await;
    grant(
        &app,
        &owner,
        &member.user_id,
        json!({}),
        &[&p],
        &[&prod],
        &[],
    )
    .await;
    assert_eq!(
        app.get("/api/project.all", &[], &owner)
            .await
            .column("name"),
        ["Second's"]
    );
    assert_eq!(
        outline(&all_projects(&app, &member.who).await),
        ["Second's", "Second's/production"]
    );

    app.post(
        "/api/organization.delete",
        json!({"organizationId": second}),
        &owner,
    )
    .await
    .assert_ok();

    assert_eq!(rows(&app, "projects", "organization_id", &second), 0);
    assert_eq!(
        app.get("/api/project.all", &[], &owner)
            .await
            .column("name"),
        ["First's"]
    );
    assert_eq!(
        app.active_org(&owner).await.assert_ok()["id"],
        first.as_str()
    );
    let r = app.get("/api/project.all", &[], &member.who).await;
    r.assert_error(401, "no_active_organization");
}

#[tokio::test]
async fn project_all_is_never_stale_after_a_role_change_or_a_removal() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    project(&app, &owner, "P").await;
    let member = app
        .invite_and_join(&owner, "member@example.com", "member")
        .await;
    assert_eq!(all_projects(&app, &member.who).await.len(), 0);

    app.post(
        "/api/organization.updateMemberRole",
        json!({"memberId": member.member_id, "role": "admin"}),
        &owner,
    )
    .await
    .assert_ok();
    assert_eq!(
        app.get("/api/project.all", &[], &member.who)
            .await
            .column("name"),
        ["P"]
    );

    app.post(
        "/api/organization.updateMemberRole",
        json!({"memberId": member.member_id, "role": "member"}),
        &owner,
    )
    .await
    .assert_ok();
    assert_eq!(all_projects(&app, &member.who).await.len(), 0);

    app.post(
        "/api/user.remove",
        json!({"userId": member.user_id}),
        &owner,
    )
    .await
    .assert_ok();
    app.get("/api/project.all", &[], &member.who)
        .await
        .assert_error(401, "no_active_organization");
}

/// What `project.all` answers `who`, twice (rendered, then as kept), checked against what
/// a fresh server on the same database answers; the listing's outline, or the refusal.
async fn all_as_afresh(app: &TestApp, who: &As, step: &str) -> Result<Vec<String>, String> {
    let fresh = app.get_afresh("/api/project.all", &[], who).await;
    for _ in 0..2 {
        let r = app.get("/api/project.all", &[], who).await;
        assert_eq!(
            (r.status, &r.body),
            (fresh.status, &fresh.body),
            "{step}, as {who:?}"
        );
    }
    match fresh.status {
        200 => Ok(outline(fresh.body.as_array().unwrap())),
        _ => Err(fresh.reason().to_owned()),
    }
}

/// Members and project-scoped keys keep their rendering of `project.all` between changes.
/// After each kind of change (a write to the resources, the access lists, the flags, the
/// role, a key with another scope), the answer of each, rendered and then kept, is what a
/// fresh server opened on the same database answers.
#[tokio::test]
async fn a_kept_project_all_equals_a_fresh_servers_after_each_kind_of_change() {
    let app = TestApp::new();
    let (owner, _, org) = app.owner_ids().await;
    let (p, p_prod) = project(&app, &owner, "P").await;
    let (q, q_prod) = project(&app, &owner, "Q").await;
    let web = app_id(&application(&app, &owner, &p_prod, "web").await);
    let api = json!({"canAccessToAPI": true});
    let m = member_seeing(
        &app,
        &owner,
        "member@example.com",
        api.clone(),
        &[&p],
        &[&p_prod],
        &[&web],
    )
    .await;
    let key = As::Key(
        app.create_key(&m.who, json!({"metadata": {"organizationId": org}}))
            .await
            .0,
    );
    let scoped = As::Key(
        app.create_key(
            &m.who,
            json!({"metadata": {"organizationId": org}, "scope": {"projectIds": [p]}}),
        )
        .await
        .0,
    );
    let owner_scoped = As::Key(
        app.create_key(
            &owner,
            json!({"metadata": {"organizationId": org}, "scope": {"projectIds": [q]}}),
        )
        .await
        .0,
    );
    let seen = |step: &'static str| {
        let app = &app;
        let callers = [
            m.who.clone(),
            key.clone(),
            scoped.clone(),
            owner_scoped.clone(),
        ];
        async move {
            let mut out = Vec::new();
            for who in &callers {
                out.push(all_as_afresh(app, who, step).await);
            }
            out
        }
    };
    let p_full = || {
        Ok(vec![
            "P".into(),
            "P/production".into(),
            "P/production/web".into(),
        ])
    };
    let q_full = || Ok(vec!["Q".into(), "Q/production".into()]);

    assert_eq!(
        seen("at first").await,
        [p_full(), p_full(), p_full(), q_full()]
    );

    // A write to the resources: P is renamed.
    app.post(
        "/api/project.update",
        json!({"projectId": p, "name": "P2"}),
        &owner,
    )
    .await
    .assert_ok();
    let p2 = || {
        Ok(vec![
            "P2".into(),
            "P2/production".into(),
            "P2/production/web".into(),
        ])
    };
    assert_eq!(seen("after a rename").await, [p2(), p2(), p2(), q_full()]);

    // The access lists: Q joins them, the application leaves them.
    let grant_all = |flags: serde_json::Value| {
        let (app, owner, user) = (&app, &owner, m.user_id.clone());
        let (p, q, p_prod, q_prod) = (p.clone(), q.clone(), p_prod.clone(), q_prod.clone());
        async move {
            grant(
                app,
                owner,
                &user,
                flags,
                &[&p, &q],
                &[&p_prod, &q_prod],
                &[],
            )
            .await
        }
    };
    grant_all(api.clone()).await;
    let both = || {
        Ok(vec![
            "Q".into(),
            "Q/production".into(),
            "P2".into(),
            "P2/production".into(),
        ])
    };
    let p2_bare = || Ok(vec!["P2".into(), "P2/production".into()]);
    assert_eq!(
        seen("after the lists changed").await,
        [both(), both(), p2_bare(), q_full()]
    );

    // The flags: without API access the member's keys stop; with it again they work.
    grant_all(json!({"canCreateProjects": true})).await;
    let refused = || Err("permission_denied".to_owned());
    assert_eq!(
        seen("without API access").await,
        [both(), refused(), refused(), q_full()]
    );
    grant_all(json!({"canAccessToAPI": true, "canCreateProjects": true})).await;
    assert_eq!(
        seen("with API access again").await,
        [both(), both(), p2_bare(), q_full()]
    );

    // The role: as an admin the member sees everything its key scope allows; back as a
    // member, it starts again with no flags and empty lists.
    let everything = || {
        let mut all = q_full()?;
        all.extend(p2()?);
        Ok(all)
    };
    for (role, expected) in [
        ("admin", [everything(), everything(), p2(), q_full()]),
        ("member", [Ok(vec![]), refused(), refused(), q_full()]),
    ] {
        app.post(
            "/api/organization.updateMemberRole",
            json!({"memberId": m.member_id, "role": role}),
            &owner,
        )
        .await
        .assert_ok();
        assert_eq!(seen(role).await, expected, "as {role}");
    }
    grant_all(api.clone()).await;
    assert_eq!(
        seen("with access again").await,
        [both(), both(), p2_bare(), q_full()]
    );

    // Key scopes: a key scoped to Q sees Q only, beside the one scoped to P.
    let scoped_q = As::Key(
        app.create_key(
            &m.who,
            json!({"metadata": {"organizationId": org}, "scope": {"projectIds": [q]}}),
        )
        .await
        .0,
    );
    assert_eq!(
        all_as_afresh(&app, &scoped_q, "another scope").await,
        q_full()
    );
    assert_eq!(
        all_as_afresh(&app, &scoped, "beside another scope").await,
        p2_bare()
    );

    // A removal, which shortens the lists too.
    app.post("/api/project.remove", json!({"projectId": q}), &owner)
        .await
        .assert_ok();
    assert_eq!(
        seen("after a removal").await,
        [p2_bare(), p2_bare(), p2_bare(), Ok(vec![])]
    );
    assert_eq!(
        all_as_afresh(&app, &scoped_q, "after a removal").await,
        Ok(vec![])
    );
}

/// A member's listing is rendered once and answered from memory until what it depends on
/// changes: the organization's resources, or the member's access.
#[tokio::test]
async fn a_members_project_all_is_rendered_once_until_its_resources_or_access_change() {
    use keygate::domain::keys;
    use keygate::domain::resources::projects;
    let app = TestApp::new();
    let (owner, _, org) = app.owner_ids().await;
    let (p, p_prod) = project(&app, &owner, "P").await;
    let m = member_seeing(
        &app,
        &owner,
        "member@example.com",
        json!({"canAccessToAPI": true}),
        &[&p],
        &[&p_prod],
        &[],
    )
    .await;
    let key = app
        .create_key(&m.who, json!({"metadata": {"organizationId": org}}))
        .await
        .0;
    let renders = std::cell::Cell::new(0);
    // One request: the key checked, then the listing.
    let list = || async {
        let actor = keys::authenticate(&app.state, &key, false).await.unwrap();
        projects::all(&app.state, &actor, |trees| {
            renders.set(renders.get() + 1);
            let names: Vec<&str> = trees.iter().map(|t| t.project.name.as_str()).collect();
            names.join(",")
        })
        .unwrap()
        .to_string()
    };

    assert_eq!((list().await, list().await), ("P".into(), "P".into()));
    assert_eq!(renders.get(), 1);

    // A write to the resources, even one the member does not see.
    let (q, q_prod) = project(&app, &owner, "Q").await;
    assert_eq!((list().await, list().await), ("P".into(), "P".into()));
    assert_eq!(renders.get(), 2);

    // The member's access lists.
    grant(
        &app,
        &owner,
        &m.user_id,
        json!({"canAccessToAPI": true}),
        &[&p, &q],
        &[&p_prod, &q_prod],
        &[],
    )
    .await;
    assert_eq!((list().await, list().await), ("Q,P".into(), "Q,P".into()));
    assert_eq!(renders.get(), 3);

    // A read changes nothing.
    app.get(
        "/api/project.one",
        &[("projectId", &p)],
        &As::Key(key.clone()),
    )
    .await
    .assert_ok();
    list().await;
    assert_eq!(renders.get(), 3);
}

// ---------------------------------------------------------------- project.update

#[tokio::test]
async fn project_update_renames_and_describes_a_project() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (pid, _) = project(&app, &owner, "Old name").await;

    let r = app
        .post(
            "/api/project.update",
            json!({"projectId": pid, "name": " New name ", "description": "Now described"}),
            &owner,
        )
        .await;

    let body = r.assert_ok();
    assert_eq!(body["name"], "New name");
    assert_eq!(body["description"], "Now described");
    assert_eq!(project_row(&app, &pid, "name"), "New name");
    assert_eq!(project_row(&app, &pid, "description"), "Now described");
}

#[tokio::test]
async fn project_update_changes_only_what_it_is_given() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let r = app
        .post(
            "/api/project.create",
            json!({"name": "Kept", "description": "Before"}),
            &owner,
        )
        .await;
    let pid = r.assert_ok()["project"]["projectId"]
        .as_str()
        .unwrap()
        .to_owned();

    let r = app
        .post(
            "/api/project.update",
            json!({"projectId": pid, "description": "After"}),
            &owner,
        )
        .await;

    assert_eq!(r.assert_ok()["name"], "Kept");
    assert_eq!(project_row(&app, &pid, "name"), "Kept");
    assert_eq!(project_row(&app, &pid, "description"), "After");
}

#[tokio::test]
async fn project_update_refuses_an_empty_or_long_name_and_a_long_description() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (pid, _) = project(&app, &owner, "Kept").await;

    let empty = app
        .post(
            "/api/project.update",
            json!({"projectId": pid, "name": "  "}),
            &owner,
        )
        .await;
    let long = app
        .post(
            "/api/project.update",
            json!({"projectId": pid, "name": "x".repeat(256), "description": "d".repeat(10_001)}),
            &owner,
        )
        .await;

    empty.assert_error(400, "validation_failed");
    assert_eq!(empty.issue_paths(), ["name"]);
    long.assert_error(400, "validation_failed");
    assert_eq!(long.issue_paths(), ["name", "description"]);
    assert_eq!(project_row(&app, &pid, "name"), "Kept");
    assert_eq!(project_row(&app, &pid, "description"), json!(null));
}

#[tokio::test]
async fn project_update_of_a_missing_or_foreign_project_changes_nothing() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let other = stranger(&app, &owner, "other@example.com").await;
    let (theirs, _) = project(&app, &other.who, "Theirs").await;

    let missing = app
        .post(
            "/api/project.update",
            json!({"projectId": MISSING, "name": "X"}),
            &owner,
        )
        .await;
    let foreign = app
        .post(
            "/api/project.update",
            json!({"projectId": theirs, "name": "X"}),
            &owner,
        )
        .await;

    missing.assert_error(404, "not_found");
    foreign.assert_error(401, "wrong_organization");
    assert_eq!(project_row(&app, &theirs, "name"), "Theirs");
}

#[tokio::test]
async fn a_member_updates_a_project_only_with_can_create_projects_and_access() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (given, _) = project(&app, &owner, "Given").await;
    let (hidden, _) = project(&app, &owner, "Hidden").await;
    let without = member_seeing(
        &app,
        &owner,
        "without@example.com",
        json!({}),
        &[&given],
        &[],
        &[],
    )
    .await;
    let with = member_seeing(
        &app,
        &owner,
        "with@example.com",
        json!({"canCreateProjects": true}),
        &[&given],
        &[],
        &[],
    )
    .await;

    let no_flag = app
        .post(
            "/api/project.update",
            json!({"projectId": given, "name": "X"}),
            &without.who,
        )
        .await;
    let no_access = app
        .post(
            "/api/project.update",
            json!({"projectId": hidden, "name": "X"}),
            &with.who,
        )
        .await;
    let allowed = app
        .post(
            "/api/project.update",
            json!({"projectId": given, "name": "Renamed"}),
            &with.who,
        )
        .await;

    no_flag.assert_error(401, "permission_denied");
    no_access.assert_error(401, "permission_denied");
    allowed.assert_ok();
    assert_eq!(project_row(&app, &given, "name"), "Renamed");
    assert_eq!(project_row(&app, &hidden, "name"), "Hidden");
}

// ---------------------------------------------------------------- project.remove

#[tokio::test]
async fn project_remove_removes_its_environments_and_applications() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (pid, prod) = project(&app, &owner, "Doomed").await;
    let qa = environment(&app, &owner, &pid, "qa").await;
    let a1 = application(&app, &owner, &prod, "one").await;
    let a2 = application(&app, &owner, &qa, "two").await;
    let (kept, kept_prod) = project(&app, &owner, "Kept").await;
    let kept_app = application(&app, &owner, &kept_prod, "kept").await;
    let member = member_seeing(
        &app,
        &owner,
        "member@example.com",
        json!({}),
        &[&pid, &kept],
        &[&prod, &qa, &kept_prod],
        &[&app_id(&a1), &app_id(&a2), &app_id(&kept_app)],
    )
    .await;

    let r = app
        .post("/api/project.remove", json!({"projectId": pid}), &owner)
        .await;

    let body = r.assert_ok();
    assert_eq!(body["projectId"], pid.as_str());
    assert_eq!(body["name"], "Doomed");
    assert_eq!(rows(&app, "projects", "id", &pid), 0);
    assert_eq!(rows(&app, "environments", "project_id", &pid), 0);
    for a in [&a1, &a2] {
        assert_eq!(rows(&app, "applications", "id", &app_id(a)), 0);
    }
    assert_eq!(
        rows(&app, "member_projects", "member_id", &member.member_id),
        1
    );
    assert_eq!(
        rows(&app, "member_environments", "member_id", &member.member_id),
        1
    );
    assert_eq!(
        rows(&app, "member_applications", "member_id", &member.member_id),
        1
    );
    assert_eq!(app.count("projects"), 1);
    assert_eq!(app.count("environments"), 1);
    assert_eq!(app.count("applications"), 1);
    app.get("/api/project.one", &[("projectId", &pid)], &owner)
        .await
        .assert_error(404, "not_found");
}

/// `user.getPermissions` answers from the cached credential: the removal must drop it.
#[tokio::test]
async fn project_remove_takes_the_project_and_what_was_in_it_out_of_members_lists_at_once() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (gone, gone_prod) = project(&app, &owner, "Gone").await;
    let gone_test = environment(&app, &owner, &gone, "test").await;
    let gone_app = app_id(&application(&app, &owner, &gone_prod, "web").await);
    let (kept, kept_prod) = project(&app, &owner, "Kept").await;
    let kept_app = app_id(&application(&app, &owner, &kept_prod, "api").await);
    let member = member_by_session_and_key(
        &app,
        &owner,
        &[&gone, &kept],
        &[&gone_prod, &gone_test, &kept_prod],
        &[&gone_app, &kept_app],
    )
    .await;
    for who in &member {
        assert_eq!(lists_seen(&app, who).await[0], sorted(&[&gone, &kept]));
    }

    app.post("/api/project.remove", json!({"projectId": gone}), &owner)
        .await
        .assert_ok();

    for who in &member {
        assert_eq!(
            lists_seen(&app, who).await,
            [
                sorted(&[&kept]),
                sorted(&[&kept_prod]),
                sorted(&[&kept_app])
            ],
            "as {who:?}"
        );
    }
}

#[tokio::test]
async fn project_remove_of_a_missing_or_foreign_project_removes_nothing() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let other = stranger(&app, &owner, "other@example.com").await;
    let (theirs, _) = project(&app, &other.who, "Theirs").await;

    let missing = app
        .post("/api/project.remove", json!({"projectId": MISSING}), &owner)
        .await;
    let foreign = app
        .post("/api/project.remove", json!({"projectId": theirs}), &owner)
        .await;

    missing.assert_error(404, "not_found");
    foreign.assert_error(401, "wrong_organization");
    assert_eq!(rows(&app, "projects", "id", &theirs), 1);
    assert_eq!(rows(&app, "environments", "project_id", &theirs), 1);
}

#[tokio::test]
async fn a_member_removes_a_project_only_with_can_delete_projects_and_access() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (given, _) = project(&app, &owner, "Given").await;
    let (hidden, _) = project(&app, &owner, "Hidden").await;
    let without = member_seeing(
        &app,
        &owner,
        "without@example.com",
        json!({"canCreateProjects": true}),
        &[&given],
        &[],
        &[],
    )
    .await;
    let with = member_seeing(
        &app,
        &owner,
        "with@example.com",
        json!({"canDeleteProjects": true}),
        &[&given],
        &[],
        &[],
    )
    .await;

    let no_flag = app
        .post(
            "/api/project.remove",
            json!({"projectId": given}),
            &without.who,
        )
        .await;
    let no_access = app
        .post(
            "/api/project.remove",
            json!({"projectId": hidden}),
            &with.who,
        )
        .await;
    assert_eq!(app.count("projects"), 2);
    let allowed = app
        .post(
            "/api/project.remove",
            json!({"projectId": given}),
            &with.who,
        )
        .await;

    no_flag.assert_error(401, "permission_denied");
    no_access.assert_error(401, "permission_denied");
    allowed.assert_ok();
    assert_eq!(rows(&app, "projects", "id", &given), 0);
    assert_eq!(rows(&app, "projects", "id", &hidden), 1);
}

// ---------------------------------------------------------------- project.search

#[tokio::test]
async fn project_search_matches_name_or_description_in_any_case() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    for (name, description) in [
        ("Payments API", None),
        ("Blog", Some("Marketing site that takes PAYMENTS")),
        ("Intranet", Some("internal")),
    ] {
        let mut body = json!({"name": name});
        if let Some(d) = description {
            body["description"] = json!(d);
        }
        app.post("/api/project.create", body, &owner)
            .await
            .assert_ok();
        app.clock.advance(1);
    }

    let r = app
        .get("/api/project.search", &[("q", "payMENTS")], &owner)
        .await;

    let page = r.assert_ok();
    assert_eq!(item_names(page), ["Blog", "Payments API"]);
    assert_eq!(page["total"], 2);
    // Search results are flat: no environments.
    assert!(page["items"][0].get("environments").is_none(), "{page}");
    let all = app.get("/api/project.search", &[], &owner).await;
    assert_eq!(
        item_names(all.assert_ok()),
        ["Intranet", "Blog", "Payments API"]
    );
    let none = app
        .get("/api/project.search", &[("q", "nothing like it")], &owner)
        .await;
    assert_eq!(none.assert_ok(), &json!({"items": [], "total": 0}));
}

#[tokio::test]
async fn project_search_takes_percent_and_underscore_literally() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    for name in ["100% uptime", "100 uptime", "a_b", "aXb"] {
        project(&app, &owner, name).await;
    }

    let percent = app
        .get("/api/project.search", &[("q", "100%")], &owner)
        .await;
    let underscore = app
        .get("/api/project.search", &[("q", "a_b")], &owner)
        .await;
    let lone = app.get("/api/project.search", &[("q", "%")], &owner).await;

    assert_eq!(item_names(percent.assert_ok()), ["100% uptime"]);
    assert_eq!(item_names(underscore.assert_ok()), ["a_b"]);
    assert_eq!(item_names(lone.assert_ok()), ["100% uptime"]);
}

#[tokio::test]
async fn project_search_pages_with_limit_and_offset() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    for i in 0..25 {
        project(&app, &owner, &format!("p{i:02}")).await;
    }

    let first = app.get("/api/project.search", &[], &owner).await;
    let page = app
        .get(
            "/api/project.search",
            &[("limit", "3"), ("offset", "5")],
            &owner,
        )
        .await;
    let past = app
        .get("/api/project.search", &[("offset", "30")], &owner)
        .await;
    let max = app
        .get("/api/project.search", &[("limit", "100")], &owner)
        .await;

    let first = first.assert_ok();
    assert_eq!(first["total"], 25);
    let names = item_names(first);
    assert_eq!(names.len(), 20, "the default limit is 20");
    assert_eq!(names[0], "p24");
    assert_eq!(names[19], "p05");
    assert_eq!(item_names(page.assert_ok()), ["p19", "p18", "p17"]);
    assert_eq!(page.body["total"], 25);
    assert_eq!(past.assert_ok(), &json!({"items": [], "total": 25}));
    assert_eq!(item_names(max.assert_ok()).len(), 25);
}

#[tokio::test]
async fn project_search_refuses_a_limit_outside_1_to_100_and_a_negative_offset() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    project(&app, &owner, "P").await;

    for (query, path) in [
        (&[("limit", "0")][..], "limit"),
        (&[("limit", "101")][..], "limit"),
        (&[("limit", "-1")][..], "limit"),
        (&[("offset", "-1")][..], "offset"),
    ] {
        let r = app.get("/api/project.search", query, &owner).await;

        r.assert_error(400, "validation_failed");
        assert_eq!(r.issue_paths(), [path], "{query:?}");
    }
    let not_a_number = app
        .get("/api/project.search", &[("limit", "ten")], &owner)
        .await;
    not_a_number.assert_error(400, "bad_request");
    let both = app
        .get(
            "/api/project.search",
            &[("limit", "0"), ("offset", "-1")],
            &owner,
        )
        .await;
    both.assert_error(400, "validation_failed");
    assert_eq!(both.issue_paths(), ["limit", "offset"]);
    let one = app
        .get("/api/project.search", &[("limit", "1")], &owner)
        .await;
    assert_eq!(item_names(one.assert_ok()), ["P"]);
}

#[tokio::test]
async fn project_search_shows_a_member_only_its_projects_and_counts_only_those() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (mine, _) = project(&app, &owner, "Web mine").await;
    project(&app, &owner, "Web hidden").await;
    let member = member_seeing(&app, &owner, "m@example.com", json!({}), &[&mine], &[], &[]).await;

    let r = app
        .get("/api/project.search", &[("q", "web")], &member.who)
        .await;

    assert_eq!(item_names(r.assert_ok()), ["Web mine"]);
    assert_eq!(r.body["total"], 1);
}

#[tokio::test]
async fn project_search_never_shows_another_organizations_projects() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    project(&app, &owner, "Ours web").await;
    let other = stranger(&app, &owner, "other@example.com").await;
    project(&app, &other.who, "Theirs web").await;

    let ours = app
        .get("/api/project.search", &[("q", "web")], &owner)
        .await;
    let theirs = app
        .get("/api/project.search", &[("q", "web")], &other.key)
        .await;

    assert_eq!(item_names(ours.assert_ok()), ["Ours web"]);
    assert_eq!(item_names(theirs.assert_ok()), ["Theirs web"]);
    assert_eq!(theirs.body["total"], 1);
}

// ---------------------------------------------------------------- API keys

#[tokio::test]
async fn a_read_only_key_reads_projects_but_every_write_is_refused() {
    let app = TestApp::new();
    let (owner, _, org) = app.owner_ids().await;
    let (pid, _) = project(&app, &owner, "P").await;
    let key = As::Key(
        app.create_key(
            &owner,
            json!({"metadata": {"organizationId": org}, "scope": {"readOnly": true}}),
        )
        .await
        .0,
    );
    let before = dump(&app);

    let reads = [
        app.get("/api/project.all", &[], &key).await,
        app.get("/api/project.one", &[("projectId", &pid)], &key)
            .await,
        app.get("/api/project.search", &[], &key).await,
    ];
    let writes = [
        app.post("/api/project.create", json!({"name": "N"}), &key)
            .await,
        app.post(
            "/api/project.update",
            json!({"projectId": pid, "name": "N"}),
            &key,
        )
        .await,
        app.post("/api/project.remove", json!({"projectId": pid}), &key)
            .await,
    ];

    for r in &reads {
        r.assert_ok();
    }
    for w in &writes {
        w.assert_error(401, "permission_denied");
    }
    assert_eq!(dump(&app), before);
}

#[tokio::test]
async fn a_key_scoped_to_a_project_sees_only_that_project() {
    let app = TestApp::new();
    let (owner, _, org) = app.owner_ids().await;
    let (a, _) = project(&app, &owner, "A").await;
    let (b, b_prod) = project(&app, &owner, "B").await;
    let key = As::Key(
        app.create_key(
            &owner,
            json!({"metadata": {"organizationId": org}, "scope": {"projectIds": [a]}}),
        )
        .await
        .0,
    );

    let all = all_projects(&app, &key).await;
    let search = app.get("/api/project.search", &[], &key).await;
    let one_a = app
        .get("/api/project.one", &[("projectId", &a)], &key)
        .await;
    let one_b = app
        .get("/api/project.one", &[("projectId", &b)], &key)
        .await;
    let envs_b = app
        .get("/api/environment.byProjectId", &[("projectId", &b)], &key)
        .await;
    let env_b = app
        .get("/api/environment.one", &[("environmentId", &b_prod)], &key)
        .await;
    let update_b = app
        .post(
            "/api/project.update",
            json!({"projectId": b, "name": "X"}),
            &key,
        )
        .await;
    let remove_b = app
        .post("/api/project.remove", json!({"projectId": b}), &key)
        .await;
    let create = app
        .post("/api/project.create", json!({"name": "C"}), &key)
        .await;
    let update_a = app
        .post(
            "/api/project.update",
            json!({"projectId": a, "name": "A2"}),
            &key,
        )
        .await;

    assert_eq!(outline(&all), ["A", "A/production"]);
    assert_eq!(item_names(search.assert_ok()), ["A"]);
    assert_eq!(search.body["total"], 1);
    one_a.assert_ok();
    for r in [&one_b, &envs_b, &env_b, &update_b, &remove_b, &create] {
        r.assert_error(401, "permission_denied");
    }
    update_a.assert_ok();
    assert_eq!(project_row(&app, &a, "name"), "A2");
    assert_eq!(project_row(&app, &b, "name"), "B");
    assert_eq!(app.count("projects"), 2);
    // The owner's session still sees both.
    assert_eq!(
        app.get("/api/project.all", &[], &owner)
            .await
            .column("name"),
        ["B", "A2"]
    );
}

/// The reference: `curl -X GET https://your-domain.com/api/project.all -H "X-API-Key: ..."`.
#[tokio::test]
async fn the_reference_example_lists_projects_with_an_x_api_key_header() {
    let app = TestApp::new();
    let (owner, _, org) = app.owner_ids().await;
    let (pid, _) = project(&app, &owner, "My project").await;
    let key = app
        .create_key(&owner, json!({"metadata": {"organizationId": org}}))
        .await
        .0;

    let r = app
        .send(
            app.request(Method::GET, "/api/project.all")
                .header("X-API-Key", key.as_str()),
        )
        .await;

    let list = r.assert_ok().as_array().unwrap();
    r.assert_json();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["projectId"], pid.as_str());
    assert_eq!(list[0]["environments"][0]["name"], "production");
}

/// An empty description clears one; leaving the field out keeps it.
#[tokio::test]
async fn an_empty_description_clears_it() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let created = app
        .post(
            "/api/project.create",
            json!({"name": "p", "description": "old"}),
            &owner,
        )
        .await;
    let id = created.assert_ok()["project"]["projectId"].clone();

    let kept = app
        .post(
            "/api/project.update",
            json!({"projectId": id, "name": "q"}),
            &owner,
        )
        .await;
    assert_eq!(kept.assert_ok()["description"], "old");

    let cleared = app
        .post(
            "/api/project.update",
            json!({"projectId": id, "description": ""}),
            &owner,
        )
        .await;
    assert!(cleared.assert_ok().get("description").is_none());
    assert_eq!(
        app.scalar("SELECT description FROM projects", &[]),
        serde_json::Value::Null
    );
}

/// Takes the one writer connection on another thread and keeps it until the returned
/// sender is used, so that a request's write waits inside `spawn_blocking`.
fn hold_writer(app: &TestApp) -> (mpsc::Sender<()>, JoinHandle<()>) {
    let db = app.state.db.clone();
    let (locked_tx, locked_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        db.write_blocking(|_| {
            locked_tx.send(()).unwrap();
            let _ = release_rx.recv();
            Ok(())
        })
        .unwrap();
    });
    locked_rx.recv().unwrap();
    (release_tx, holder)
}

/// Sends `body` to `path` as `who` while the writer is held, gives up on the request (as
/// a server does when its client disconnects), then lets the abandoned write commit and
/// waits until `done` says it has.
async fn abandon_post(
    app: &TestApp,
    path: &str,
    body: serde_json::Value,
    who: &As,
    done: impl Fn(&TestApp) -> bool,
) {
    let (release, holder) = hold_writer(app);
    let abandoned = tokio::time::timeout(Duration::from_secs(1), app.post(path, body, who)).await;
    assert!(
        abandoned.is_err(),
        "the request answered while the writer was held"
    );
    release.send(()).unwrap();
    holder.join().unwrap();
    for _ in 0..250 {
        if done(app) {
            // The commit is visible before its caller's change task has dropped what it
            // made stale: a write queued behind it is answered after it, and the yields
            // let that task run its drop before the test looks.
            app.state.db.write(|_| Ok(())).await.unwrap();
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the abandoned write to {path} never committed");
}

/// A write runs on `spawn_blocking`, which finishes even when the request's future is
/// dropped (as when its client goes away). The organization's cached snapshot is dropped
/// however the request ends, so `project.all` shows the project the abandoned request
/// committed, to its creator and to an admin.
#[tokio::test]
async fn project_all_shows_a_project_whose_creator_went_away_before_the_answer() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let admin = app
        .invite_and_join(&owner, "admin@example.com", "admin")
        .await;
    project(&app, &owner, "Before").await;
    assert_eq!(
        app.get("/api/project.all", &[], &owner)
            .await
            .column("name"),
        ["Before"]
    );

    abandon_post(
        &app,
        "/api/project.create",
        json!({"name": "After"}),
        &owner,
        |app| app.count("projects") == 2,
    )
    .await;

    assert_eq!(
        app.count_where("SELECT count(*) FROM projects WHERE name = 'After'", &[]),
        1
    );
    assert_eq!(
        app.get("/api/project.all", &[], &owner)
            .await
            .column("name"),
        ["After", "Before"]
    );
    assert_eq!(
        app.get("/api/project.all", &[], &admin.who)
            .await
            .column("name"),
        ["After", "Before"]
    );
}

/// The same for `user.assignPermissions`: a request abandoned after its commit still has
/// the member's cached credential dropped (the drops run in the write's own task), so
/// `project.all` and `project.one` no longer show the member a project taken from it.
#[tokio::test]
async fn project_all_hides_a_project_taken_from_a_member_by_an_abandoned_request() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (p, prod) = project(&app, &owner, "Taken away").await;
    let member = member_seeing(
        &app,
        &owner,
        "member@example.com",
        json!({}),
        &[&p],
        &[&prod],
        &[],
    )
    .await;
    assert_eq!(
        app.get("/api/project.all", &[], &member.who)
            .await
            .column("name"),
        ["Taken away"]
    );

    let mut body = no_flags();
    body["userId"] = json!(member.user_id);
    abandon_post(&app, "/api/user.assignPermissions", body, &owner, |app| {
        app.count("member_projects") == 0
    })
    .await;

    assert_eq!(
        all_projects(&app, &member.who).await,
        Vec::<serde_json::Value>::new()
    );
    app.get("/api/project.one", &[("projectId", &p)], &member.who)
        .await
        .assert_error(401, "permission_denied");
}

/// Project and application search ignore case beyond ASCII letters too (names accept any
/// Unicode): `q=überweisung` finds "ÜBERWEISUNG".
#[tokio::test]
async fn search_ignores_the_case_of_non_ascii_letters() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (_, prod) = project(&app, &owner, "ÜBERWEISUNG").await;
    application(&app, &owner, &prod, "ÉCOLE").await;

    let projects = app
        .get("/api/project.search", &[("q", "überweisung")], &owner)
        .await;
    let applications = app
        .get("/api/application.search", &[("q", "école")], &owner)
        .await;

    assert_eq!(item_names(projects.assert_ok()), ["ÜBERWEISUNG"]);
    assert_eq!(item_names(applications.assert_ok()), ["ÉCOLE"]);
}
