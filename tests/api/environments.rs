//! `environment.{create,one,byProjectId,update,remove}`.

use serde_json::{Value, json};

use crate::helpers::*;

fn env_row(app: &TestApp, id: &str, column: &str) -> Value {
    app.scalar(
        &format!("SELECT {column} FROM environments WHERE id = ?1"),
        &[&id],
    )
}

async fn create(app: &TestApp, who: &As, body: Value) -> Reply {
    app.post("/api/environment.create", body, who).await
}

async fn update(app: &TestApp, who: &As, body: Value) -> Reply {
    app.post("/api/environment.update", body, who).await
}

async fn remove(app: &TestApp, who: &As, id: &str) -> Reply {
    app.post("/api/environment.remove", json!({"environmentId": id}), who)
        .await
}

// ---------------------------------------------------------------- environment.create

#[tokio::test]
async fn environment_create_adds_an_environment_to_a_project() {
    let app = TestApp::new();
    let (owner, _, org) = app.owner_ids().await;
    let (pid, _) = project(&app, &owner, "P").await;

    let r = create(
        &app,
        &owner,
        json!({"projectId": pid, "name": " staging ", "description": "Pre-release"}),
    )
    .await;

    let e = r.assert_ok();
    let eid = e["environmentId"].as_str().unwrap();
    assert_eq!(e["name"], "staging");
    assert_eq!(e["description"], "Pre-release");
    assert_eq!(e["projectId"], pid.as_str());
    assert_eq!(e["isDefault"], false);
    assert_eq!(e["applications"], json!([]));
    assert_eq!(env_row(&app, eid, "name"), "staging");
    assert_eq!(env_row(&app, eid, "description"), "Pre-release");
    assert_eq!(env_row(&app, eid, "is_default"), 0);
    assert_eq!(env_row(&app, eid, "project_id"), pid.as_str());
    assert_eq!(env_row(&app, eid, "organization_id"), org.as_str());
    assert_eq!(rows(&app, "environments", "project_id", &pid), 2);
}

#[tokio::test]
async fn production_is_reserved_in_any_case() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (pid, _) = project(&app, &owner, "P").await;

    for name in ["production", "Production", " PRODUCTION "] {
        let r = create(&app, &owner, json!({"projectId": pid, "name": name})).await;

        r.assert_error(400, "validation_failed");
        assert_eq!(r.issue_paths(), ["name"], "{name:?}");
    }
    assert_eq!(rows(&app, "environments", "project_id", &pid), 1);
}

#[tokio::test]
async fn an_environment_name_is_unique_within_its_project() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (p, _) = project(&app, &owner, "P").await;
    let (q, _) = project(&app, &owner, "Q").await;
    environment(&app, &owner, &p, "staging").await;

    let again = create(&app, &owner, json!({"projectId": p, "name": "staging"})).await;
    let elsewhere = create(&app, &owner, json!({"projectId": q, "name": "staging"})).await;

    again.assert_error(409, "environment_exists");
    assert_eq!(again.code(), "CONFLICT");
    elsewhere.assert_ok();
    assert_eq!(rows(&app, "environments", "project_id", &p), 2);
    assert_eq!(rows(&app, "environments", "project_id", &q), 2);
}

#[tokio::test]
async fn an_environment_needs_a_name_of_at_most_255_characters_and_a_short_description() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (pid, _) = project(&app, &owner, "P").await;

    let empty = create(&app, &owner, json!({"projectId": pid, "name": "  "})).await;
    let long = create(
        &app,
        &owner,
        json!({"projectId": pid, "name": "x".repeat(256), "description": "d".repeat(10_001)}),
    )
    .await;
    let longest = create(
        &app,
        &owner,
        json!({"projectId": pid, "name": "x".repeat(255), "description": "d".repeat(10_000)}),
    )
    .await;

    empty.assert_error(400, "validation_failed");
    assert_eq!(empty.issue_paths(), ["name"]);
    long.assert_error(400, "validation_failed");
    assert_eq!(long.issue_paths(), ["name", "description"]);
    longest.assert_ok();
    assert_eq!(rows(&app, "environments", "project_id", &pid), 2);
}

#[tokio::test]
async fn environment_create_in_a_missing_or_foreign_project_creates_nothing() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let other = stranger(&app, &owner, "other@example.com").await;
    let (theirs, _) = project(&app, &other.who, "Theirs").await;

    let missing = create(&app, &owner, json!({"projectId": MISSING, "name": "qa"})).await;
    let foreign = create(&app, &owner, json!({"projectId": theirs, "name": "qa"})).await;

    missing.assert_error(404, "not_found");
    foreign.assert_error(401, "wrong_organization");
    assert_eq!(app.count("environments"), 1);
}

#[tokio::test]
async fn a_member_needs_can_create_environments_and_the_project() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (given, _) = project(&app, &owner, "Given").await;
    let (hidden, _) = project(&app, &owner, "Hidden").await;
    let without = member_seeing(
        &app,
        &owner,
        "without@example.com",
        json!({"canCreateProjects": true, "canCreateServices": true}),
        &[&given],
        &[],
        &[],
    )
    .await;
    let with = member_seeing(
        &app,
        &owner,
        "with@example.com",
        json!({"canCreateEnvironments": true}),
        &[&given],
        &[],
        &[],
    )
    .await;

    let no_flag = create(
        &app,
        &without.who,
        json!({"projectId": given, "name": "qa"}),
    )
    .await;
    let no_access = create(&app, &with.who, json!({"projectId": hidden, "name": "qa"})).await;

    no_flag.assert_error(401, "permission_denied");
    no_access.assert_error(401, "permission_denied");
    assert_eq!(app.count("environments"), 2);
    assert_eq!(app.count("member_environments"), 0);
}

#[tokio::test]
async fn a_member_who_creates_an_environment_sees_it_at_once() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (pid, _) = project(&app, &owner, "P").await;
    let member = member_seeing(
        &app,
        &owner,
        "member@example.com",
        json!({"canCreateEnvironments": true}),
        &[&pid],
        &[],
        &[],
    )
    .await;
    assert_eq!(outline(&all_projects(&app, &member.who).await), ["P"]);

    let r = create(&app, &member.who, json!({"projectId": pid, "name": "qa"})).await;

    let eid = r.assert_ok()["environmentId"].as_str().unwrap().to_owned();
    assert_eq!(
        app.count_where(
            "SELECT count(*) FROM member_environments WHERE member_id = ?1 AND environment_id = ?2",
            &[&member.member_id, &eid]
        ),
        1
    );
    assert_eq!(
        outline(&all_projects(&app, &member.who).await),
        ["P", "P/qa"]
    );
    app.get(
        "/api/environment.one",
        &[("environmentId", &eid)],
        &member.who,
    )
    .await
    .assert_ok();
}

// ---------------------------------------------------------------- environment.one, byProjectId

#[tokio::test]
async fn environment_one_shows_the_environment_with_its_applications() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (pid, prod) = project(&app, &owner, "P").await;
    let qa = environment(&app, &owner, &pid, "qa").await;
    let a = application(&app, &owner, &qa, "worker").await;
    application(&app, &owner, &prod, "web").await;

    let r = app
        .get("/api/environment.one", &[("environmentId", &qa)], &owner)
        .await;

    let e = r.assert_ok();
    assert_eq!(e["environmentId"], qa.as_str());
    assert_eq!(e["name"], "qa");
    assert_eq!(e["projectId"], pid.as_str());
    assert_eq!(
        e["applications"],
        json!([{
            "applicationId": a["applicationId"],
            "name": "worker",
            "appName": a["appName"],
            "applicationStatus": "idle",
        }])
    );
}

#[tokio::test]
async fn environment_one_of_a_missing_foreign_or_withheld_environment_is_refused() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (pid, prod) = project(&app, &owner, "P").await;
    let member = member_seeing(&app, &owner, "m@example.com", json!({}), &[&pid], &[], &[]).await;
    let other = stranger(&app, &owner, "other@example.com").await;
    let (_, theirs) = project(&app, &other.who, "Theirs").await;

    let missing = app
        .get(
            "/api/environment.one",
            &[("environmentId", MISSING)],
            &owner,
        )
        .await;
    let foreign = app
        .get(
            "/api/environment.one",
            &[("environmentId", &theirs)],
            &owner,
        )
        .await;
    let withheld = app
        .get(
            "/api/environment.one",
            &[("environmentId", &prod)],
            &member.who,
        )
        .await;

    missing.assert_error(404, "not_found");
    foreign.assert_error(401, "wrong_organization");
    withheld.assert_error(401, "permission_denied");
}

#[tokio::test]
async fn environment_by_project_id_lists_the_default_first() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (pid, prod) = project(&app, &owner, "P").await;
    let b = environment(&app, &owner, &pid, "b-env").await;
    let a = environment(&app, &owner, &pid, "a-env").await;
    let (other_project, _) = project(&app, &owner, "Q").await;
    environment(&app, &owner, &other_project, "elsewhere").await;

    let r = app
        .get(
            "/api/environment.byProjectId",
            &[("projectId", &pid)],
            &owner,
        )
        .await;

    let ids: Vec<&str> = r
        .assert_ok()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["environmentId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [prod.as_str(), b.as_str(), a.as_str()]);
}

#[tokio::test]
async fn environment_by_project_id_shows_a_member_only_its_environments() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (pid, prod) = project(&app, &owner, "P").await;
    let qa = environment(&app, &owner, &pid, "qa").await;
    let (hidden, _) = project(&app, &owner, "Hidden").await;
    let member = member_seeing(
        &app,
        &owner,
        "m@example.com",
        json!({}),
        &[&pid],
        &[&qa],
        &[],
    )
    .await;

    let seen = app
        .get(
            "/api/environment.byProjectId",
            &[("projectId", &pid)],
            &member.who,
        )
        .await;
    let refused = app
        .get(
            "/api/environment.byProjectId",
            &[("projectId", &hidden)],
            &member.who,
        )
        .await;

    let list = seen.assert_ok().as_array().unwrap();
    assert_eq!(list.len(), 1, "{}", seen.body);
    assert_eq!(list[0]["environmentId"], qa.as_str());
    assert!(!seen.body.to_string().contains(&prod));
    refused.assert_error(401, "permission_denied");
}

// ---------------------------------------------------------------- environment.update

#[tokio::test]
async fn environment_update_renames_and_describes_an_environment() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (pid, _) = project(&app, &owner, "P").await;
    let qa = environment(&app, &owner, &pid, "qa").await;

    let r = update(
        &app,
        &owner,
        json!({"environmentId": qa, "name": " test ", "description": "For tests"}),
    )
    .await;

    let e = r.assert_ok();
    assert_eq!(e["name"], "test");
    assert_eq!(e["description"], "For tests");
    assert_eq!(env_row(&app, &qa, "name"), "test");
    assert_eq!(env_row(&app, &qa, "description"), "For tests");
}

#[tokio::test]
async fn the_default_environment_keeps_its_name_but_its_description_can_change() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (_, prod) = project(&app, &owner, "P").await;

    let rename = update(&app, &owner, json!({"environmentId": prod, "name": "live"})).await;
    let describe = update(
        &app,
        &owner,
        json!({"environmentId": prod, "description": "Customers use this"}),
    )
    .await;

    rename.assert_error(400, "default_environment");
    assert_eq!(rename.code(), "BAD_REQUEST");
    let e = describe.assert_ok();
    assert_eq!(e["name"], "production");
    assert_eq!(e["isDefault"], true);
    assert_eq!(env_row(&app, &prod, "name"), "production");
    assert_eq!(env_row(&app, &prod, "description"), "Customers use this");
}

#[tokio::test]
async fn an_environment_cannot_be_renamed_to_production_or_to_a_taken_name() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (pid, _) = project(&app, &owner, "P").await;
    let qa = environment(&app, &owner, &pid, "qa").await;
    environment(&app, &owner, &pid, "staging").await;

    let reserved = update(
        &app,
        &owner,
        json!({"environmentId": qa, "name": "Production"}),
    )
    .await;
    let taken = update(
        &app,
        &owner,
        json!({"environmentId": qa, "name": "staging"}),
    )
    .await;
    let empty = update(&app, &owner, json!({"environmentId": qa, "name": " "})).await;
    let long = update(
        &app,
        &owner,
        json!({"environmentId": qa, "description": "d".repeat(10_001)}),
    )
    .await;
    let same = update(&app, &owner, json!({"environmentId": qa, "name": "qa"})).await;

    reserved.assert_error(400, "validation_failed");
    assert_eq!(reserved.issue_paths(), ["name"]);
    taken.assert_error(409, "environment_exists");
    empty.assert_error(400, "validation_failed");
    assert_eq!(empty.issue_paths(), ["name"]);
    long.assert_error(400, "validation_failed");
    assert_eq!(long.issue_paths(), ["description"]);
    same.assert_ok();
    assert_eq!(env_row(&app, &qa, "name"), "qa");
    assert_eq!(env_row(&app, &qa, "description"), json!(null));
}

/// A new name is judged against the environment it renames: the name it has is never
/// refused (not even `production` for the default one), the default environment refuses
/// any other before the name's own problems, and those count only for a caller allowed to
/// rename it.
#[tokio::test]
async fn a_new_name_is_judged_against_the_environment_it_renames() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (pid, prod) = project(&app, &owner, "P").await;
    let qa = environment(&app, &owner, &pid, "qa").await;
    let viewer = member_seeing(
        &app,
        &owner,
        "viewer@example.com",
        json!({}),
        &[&pid],
        &[&prod, &qa],
        &[],
    )
    .await;

    let own_name = update(
        &app,
        &owner,
        json!({"environmentId": prod, "name": " production "}),
    )
    .await;
    let padded = update(&app, &owner, json!({"environmentId": qa, "name": "  qa  "})).await;
    let default_empty = update(&app, &owner, json!({"environmentId": prod, "name": " "})).await;
    let not_allowed = update(&app, &viewer.who, json!({"environmentId": qa, "name": " "})).await;

    assert_eq!(own_name.assert_ok()["name"], "production");
    assert_eq!(padded.assert_ok()["name"], "qa");
    default_empty.assert_error(400, "default_environment");
    not_allowed.assert_error(401, "permission_denied");
    assert_eq!(env_row(&app, &prod, "name"), "production");
    assert_eq!(env_row(&app, &qa, "name"), "qa");
}

#[tokio::test]
async fn environment_update_of_a_missing_or_foreign_environment_changes_nothing() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let other = stranger(&app, &owner, "other@example.com").await;
    let (their_project, _) = project(&app, &other.who, "Theirs").await;
    let theirs = environment(&app, &other.who, &their_project, "qa").await;

    let missing = update(&app, &owner, json!({"environmentId": MISSING, "name": "x"})).await;
    let foreign = update(&app, &owner, json!({"environmentId": theirs, "name": "x"})).await;

    missing.assert_error(404, "not_found");
    foreign.assert_error(401, "wrong_organization");
    assert_eq!(env_row(&app, &theirs, "name"), "qa");
}

#[tokio::test]
async fn a_member_updates_an_environment_only_with_can_create_environments_and_access() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (pid, _) = project(&app, &owner, "P").await;
    let given = environment(&app, &owner, &pid, "given").await;
    let hidden = environment(&app, &owner, &pid, "hidden").await;
    let without = member_seeing(
        &app,
        &owner,
        "without@example.com",
        json!({"canDeleteEnvironments": true}),
        &[&pid],
        &[&given],
        &[],
    )
    .await;
    let with = member_seeing(
        &app,
        &owner,
        "with@example.com",
        json!({"canCreateEnvironments": true}),
        &[&pid],
        &[&given],
        &[],
    )
    .await;

    let no_flag = update(
        &app,
        &without.who,
        json!({"environmentId": given, "name": "x"}),
    )
    .await;
    let no_access = update(
        &app,
        &with.who,
        json!({"environmentId": hidden, "name": "x"}),
    )
    .await;
    let allowed = update(
        &app,
        &with.who,
        json!({"environmentId": given, "name": "renamed"}),
    )
    .await;

    no_flag.assert_error(401, "permission_denied");
    no_access.assert_error(401, "permission_denied");
    allowed.assert_ok();
    assert_eq!(env_row(&app, &given, "name"), "renamed");
    assert_eq!(env_row(&app, &hidden, "name"), "hidden");
}

// ---------------------------------------------------------------- environment.remove

#[tokio::test]
async fn environment_remove_removes_the_environment_and_its_applications() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (pid, prod) = project(&app, &owner, "P").await;
    let qa = environment(&app, &owner, &pid, "qa").await;
    let gone = application(&app, &owner, &qa, "gone").await;
    let kept = application(&app, &owner, &prod, "kept").await;
    let member = member_seeing(
        &app,
        &owner,
        "m@example.com",
        json!({}),
        &[&pid],
        &[&prod, &qa],
        &[&app_id(&gone), &app_id(&kept)],
    )
    .await;

    let r = remove(&app, &owner, &qa).await;

    let e = r.assert_ok();
    assert_eq!(e["environmentId"], qa.as_str());
    assert_eq!(e["name"], "qa");
    assert_eq!(rows(&app, "environments", "id", &qa), 0);
    assert_eq!(rows(&app, "applications", "environment_id", &qa), 0);
    assert_eq!(rows(&app, "applications", "id", &app_id(&kept)), 1);
    assert_eq!(
        app.scalar(
            "SELECT group_concat(environment_id) FROM member_environments WHERE member_id = ?1",
            &[&member.member_id]
        ),
        prod.as_str()
    );
    assert_eq!(
        app.scalar(
            "SELECT group_concat(application_id) FROM member_applications WHERE member_id = ?1",
            &[&member.member_id]
        ),
        app_id(&kept).as_str()
    );
    app.get("/api/environment.one", &[("environmentId", &qa)], &owner)
        .await
        .assert_error(404, "not_found");
}

#[tokio::test]
async fn the_default_environment_cannot_be_removed() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (_, prod) = project(&app, &owner, "P").await;
    application(&app, &owner, &prod, "web").await;

    let r = remove(&app, &owner, &prod).await;

    r.assert_error(400, "default_environment");
    assert_eq!(rows(&app, "environments", "id", &prod), 1);
    assert_eq!(app.count("applications"), 1);
}

/// `user.getPermissions` answers from the cached credential: the removal must drop it.
#[tokio::test]
async fn environment_remove_takes_it_and_its_applications_out_of_members_lists_at_once() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (pid, prod) = project(&app, &owner, "P").await;
    let gone = environment(&app, &owner, &pid, "test").await;
    let gone_app = app_id(&application(&app, &owner, &gone, "web").await);
    let kept_app = app_id(&application(&app, &owner, &prod, "api").await);
    let member = member_by_session_and_key(
        &app,
        &owner,
        &[&pid],
        &[&prod, &gone],
        &[&gone_app, &kept_app],
    )
    .await;
    for who in &member {
        assert_eq!(lists_seen(&app, who).await[1], sorted(&[&prod, &gone]));
    }

    remove(&app, &owner, &gone).await.assert_ok();

    for who in &member {
        assert_eq!(
            lists_seen(&app, who).await,
            [sorted(&[&pid]), sorted(&[&prod]), sorted(&[&kept_app])],
            "as {who:?}"
        );
    }
}

#[tokio::test]
async fn environment_remove_of_a_missing_or_foreign_environment_removes_nothing() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let other = stranger(&app, &owner, "other@example.com").await;
    let (their_project, _) = project(&app, &other.who, "Theirs").await;
    let theirs = environment(&app, &other.who, &their_project, "qa").await;

    let missing = remove(&app, &owner, MISSING).await;
    let foreign = remove(&app, &owner, &theirs).await;

    missing.assert_error(404, "not_found");
    foreign.assert_error(401, "wrong_organization");
    assert_eq!(rows(&app, "environments", "id", &theirs), 1);
}

#[tokio::test]
async fn a_member_removes_an_environment_only_with_can_delete_environments_and_access() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (pid, _) = project(&app, &owner, "P").await;
    let given = environment(&app, &owner, &pid, "given").await;
    let hidden = environment(&app, &owner, &pid, "hidden").await;
    let without = member_seeing(
        &app,
        &owner,
        "without@example.com",
        json!({"canCreateEnvironments": true}),
        &[&pid],
        &[&given],
        &[],
    )
    .await;
    let with = member_seeing(
        &app,
        &owner,
        "with@example.com",
        json!({"canDeleteEnvironments": true}),
        &[&pid],
        &[&given],
        &[],
    )
    .await;

    let no_flag = remove(&app, &without.who, &given).await;
    let no_access = remove(&app, &with.who, &hidden).await;
    assert_eq!(rows(&app, "environments", "project_id", &pid), 3);
    let allowed = remove(&app, &with.who, &given).await;

    no_flag.assert_error(401, "permission_denied");
    no_access.assert_error(401, "permission_denied");
    allowed.assert_ok();
    assert_eq!(rows(&app, "environments", "id", &given), 0);
    assert_eq!(rows(&app, "environments", "id", &hidden), 1);
}

// ---------------------------------------------------------------- API keys

#[tokio::test]
async fn a_project_scoped_key_manages_environments_only_in_its_project() {
    let app = TestApp::new();
    let (owner, _, org) = app.owner_ids().await;
    let (a, _) = project(&app, &owner, "A").await;
    let (b, _) = project(&app, &owner, "B").await;
    let b_qa = environment(&app, &owner, &b, "qa").await;
    let key = As::Key(
        app.create_key(
            &owner,
            json!({"metadata": {"organizationId": org}, "scope": {"projectIds": [a]}}),
        )
        .await
        .0,
    );

    let in_a = create(&app, &key, json!({"projectId": a, "name": "qa"})).await;
    let in_b = create(&app, &key, json!({"projectId": b, "name": "other"})).await;
    let update_b = update(&app, &key, json!({"environmentId": b_qa, "name": "x"})).await;
    let remove_b = remove(&app, &key, &b_qa).await;

    in_a.assert_ok();
    for r in [&in_b, &update_b, &remove_b] {
        r.assert_error(401, "permission_denied");
    }
    assert_eq!(rows(&app, "environments", "project_id", &a), 2);
    assert_eq!(rows(&app, "environments", "project_id", &b), 2);
    assert_eq!(env_row(&app, &b_qa, "name"), "qa");
}

#[tokio::test]
async fn a_read_only_key_reads_environments_but_cannot_change_them() {
    let app = TestApp::new();
    let (owner, _, org) = app.owner_ids().await;
    let (pid, prod) = project(&app, &owner, "P").await;
    let qa = environment(&app, &owner, &pid, "qa").await;
    let key = As::Key(
        app.create_key(
            &owner,
            json!({"metadata": {"organizationId": org}, "scope": {"readOnly": true}}),
        )
        .await
        .0,
    );
    let before = dump(&app);

    app.get("/api/environment.one", &[("environmentId", &prod)], &key)
        .await
        .assert_ok();
    app.get("/api/environment.byProjectId", &[("projectId", &pid)], &key)
        .await
        .assert_ok();
    let writes = [
        create(&app, &key, json!({"projectId": pid, "name": "new"})).await,
        update(&app, &key, json!({"environmentId": qa, "name": "x"})).await,
        remove(&app, &key, &qa).await,
    ];

    for w in &writes {
        w.assert_error(401, "permission_denied");
    }
    assert_eq!(dump(&app), before);
}

/// `environment.update` answers the environment with its applications, as documented
/// ("the applications in it that the caller may see") and as `environment.one` lists them.
#[tokio::test]
async fn environment_update_answers_with_the_environments_applications() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (_, prod) = project(&app, &owner, "P").await;
    let a = application(&app, &owner, &prod, "web").await;

    let r = app
        .post(
            "/api/environment.update",
            json!({"environmentId": prod, "description": "Live"}),
            &owner,
        )
        .await;

    let e = r.assert_ok();
    assert_eq!(e["description"], "Live");
    assert_eq!(
        e["applications"],
        json!([{
            "applicationId": a["applicationId"],
            "name": "web",
            "appName": a["appName"],
            "applicationStatus": "idle",
        }])
    );
}
