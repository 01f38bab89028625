//! `application.{create,one,update,delete,search}` and the reference's
//! `application.create` example.

use poem::http::Method;
use serde_json::{Value, json};

use crate::helpers::*;

fn app_row(app: &TestApp, id: &str, column: &str) -> Value {
    app.scalar(
        &format!("SELECT {column} FROM applications WHERE id = ?1"),
        &[&id],
    )
}

async fn create(app: &TestApp, who: &As, body: Value) -> Reply {
    app.post("/api/application.create", body, who).await
}

async fn update(app: &TestApp, who: &As, body: Value) -> Reply {
    app.post("/api/application.update", body, who).await
}

async fn delete(app: &TestApp, who: &As, id: &str) -> Reply {
    app.post("/api/application.delete", json!({"applicationId": id}), who)
        .await
}

async fn search(app: &TestApp, who: &As, query: &[(&str, &str)]) -> Reply {
    app.get("/api/application.search", query, who).await
}

/// `^[a-zA-Z0-9._-]{1,63}$`
fn valid_app_name(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

// ---------------------------------------------------------------- application.create

#[tokio::test]
async fn application_create_generates_an_app_name_from_the_name() {
    let app = TestApp::new();
    let (owner, _, org) = app.owner_ids().await;
    let (_, prod) = project(&app, &owner, "P").await;

    let r = create(
        &app,
        &owner,
        json!({"name": " My App ", "environmentId": prod, "description": "Frontend"}),
    )
    .await;

    let a = r.assert_ok();
    let id = app_id(a);
    let app_name = a["appName"].as_str().unwrap();
    assert!(valid_app_name(app_name), "{app_name:?}");
    let suffix = app_name
        .strip_prefix("my-app-")
        .unwrap_or_else(|| panic!("{app_name:?} does not start with the name's slug"));
    assert!(!suffix.is_empty(), "{app_name:?} has no random suffix");
    assert_eq!(a["name"], "My App");
    assert_eq!(a["description"], "Frontend");
    assert_eq!(a["environmentId"], prod.as_str());
    assert_eq!(a["applicationStatus"], "idle");
    assert_eq!(a["createdAt"], "2026-11-27T00:00:00.001Z");
    assert_eq!(app_row(&app, &id, "name"), "My App");
    assert_eq!(app_row(&app, &id, "app_name"), app_name);
    assert_eq!(app_row(&app, &id, "description"), "Frontend");
    assert_eq!(app_row(&app, &id, "environment_id"), prod.as_str());
    assert_eq!(app_row(&app, &id, "organization_id"), org.as_str());
    assert_eq!(app_row(&app, &id, "application_status"), "idle");
}

#[tokio::test]
async fn generated_app_names_are_valid_and_distinct_whatever_the_name() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (_, prod) = project(&app, &owner, "P").await;
    let long = "Ab ".repeat(85);

    let mut seen = Vec::new();
    for (name, slug) in [
        ("web", "web"),
        ("web", "web"),
        ("Über Service!", "ber-service"),
        ("...", "app"),
        ("日本語", "app"),
        (long.as_str(), "ab-ab-ab"),
    ] {
        let r = create(&app, &owner, json!({"name": name, "environmentId": prod})).await;

        let app_name = r.assert_ok()["appName"].as_str().unwrap().to_owned();
        assert!(valid_app_name(&app_name), "{name:?} gave {app_name:?}");
        assert!(app_name.starts_with(slug), "{name:?} gave {app_name:?}");
        assert!(!seen.contains(&app_name), "{app_name:?} twice");
        seen.push(app_name);
    }
    assert_eq!(app.count("applications"), 6);
}

#[tokio::test]
async fn a_chosen_app_name_is_kept() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (_, prod) = project(&app, &owner, "P").await;
    let max = "a".repeat(63);

    let chosen = create(
        &app,
        &owner,
        json!({"name": "Web", "environmentId": prod, "appName": "web.v2_final-1"}),
    )
    .await;
    let longest = create(
        &app,
        &owner,
        json!({"name": "Long", "environmentId": prod, "appName": max}),
    )
    .await;

    let id = app_id(chosen.assert_ok());
    assert_eq!(chosen.body["appName"], "web.v2_final-1");
    assert_eq!(app_row(&app, &id, "app_name"), "web.v2_final-1");
    assert_eq!(longest.assert_ok()["appName"], max.as_str());
}

#[tokio::test]
async fn a_bad_app_name_is_refused() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (_, prod) = project(&app, &owner, "P").await;

    for bad in ["my app", &"a".repeat(64), "", "naïve", "a/b", "a:b"] {
        let r = create(
            &app,
            &owner,
            json!({"name": "Web", "environmentId": prod, "appName": bad}),
        )
        .await;

        r.assert_error(400, "validation_failed");
        assert_eq!(r.issue_paths(), ["appName"], "{bad:?}");
    }
    assert_eq!(app.count("applications"), 0);
}

#[tokio::test]
async fn an_app_name_is_unique_in_the_organization_but_not_across_organizations() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (p, p_prod) = project(&app, &owner, "P").await;
    let p_qa = environment(&app, &owner, &p, "qa").await;
    let (_, q_prod) = project(&app, &owner, "Q").await;
    create(
        &app,
        &owner,
        json!({"name": "Web", "environmentId": p_prod, "appName": "web"}),
    )
    .await
    .assert_ok();
    let other = stranger(&app, &owner, "other@example.com").await;
    let (_, their_prod) = project(&app, &other.who, "Theirs").await;

    let same_env = create(
        &app,
        &owner,
        json!({"name": "Web 2", "environmentId": p_prod, "appName": "web"}),
    )
    .await;
    let other_env = create(
        &app,
        &owner,
        json!({"name": "Web 2", "environmentId": p_qa, "appName": "web"}),
    )
    .await;
    let other_project = create(
        &app,
        &owner,
        json!({"name": "Web 2", "environmentId": q_prod, "appName": "web"}),
    )
    .await;
    let other_org = create(
        &app,
        &other.who,
        json!({"name": "Web", "environmentId": their_prod, "appName": "web"}),
    )
    .await;

    for r in [&same_env, &other_env, &other_project] {
        r.assert_error(409, "app_name_taken");
        assert_eq!(r.code(), "CONFLICT");
    }
    assert_eq!(other_org.assert_ok()["appName"], "web");
    assert_eq!(
        app.count_where(
            "SELECT count(*) FROM applications WHERE app_name = 'web'",
            &[]
        ),
        2
    );
}

#[tokio::test]
async fn an_application_needs_a_name_of_at_most_255_characters_and_a_short_description() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (_, prod) = project(&app, &owner, "P").await;

    let empty = create(&app, &owner, json!({"name": " ", "environmentId": prod})).await;
    let long = create(
        &app,
        &owner,
        json!({"name": "x".repeat(256), "environmentId": prod,
               "appName": "bad name", "description": "d".repeat(10_001)}),
    )
    .await;
    let longest = create(
        &app,
        &owner,
        json!({"name": "x".repeat(255), "environmentId": prod, "description": "d".repeat(10_000)}),
    )
    .await;

    empty.assert_error(400, "validation_failed");
    assert_eq!(empty.issue_paths(), ["name"]);
    long.assert_error(400, "validation_failed");
    assert_eq!(long.issue_paths(), ["name", "appName", "description"]);
    longest.assert_ok();
    assert_eq!(app.count("applications"), 1);
}

#[tokio::test]
async fn application_create_in_a_missing_or_foreign_environment_creates_nothing() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let other = stranger(&app, &owner, "other@example.com").await;
    let (_, theirs) = project(&app, &other.who, "Theirs").await;

    let missing = create(&app, &owner, json!({"name": "W", "environmentId": MISSING})).await;
    let foreign = create(&app, &owner, json!({"name": "W", "environmentId": theirs})).await;

    missing.assert_error(404, "not_found");
    foreign.assert_error(401, "wrong_organization");
    assert_eq!(app.count("applications"), 0);
}

#[tokio::test]
async fn a_member_needs_can_create_services_and_the_environment() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (pid, prod) = project(&app, &owner, "P").await;
    let hidden = environment(&app, &owner, &pid, "hidden").await;
    let without = member_seeing(
        &app,
        &owner,
        "without@example.com",
        json!({"canCreateProjects": true, "canCreateEnvironments": true, "canDeleteServices": true}),
        &[&pid],
        &[&prod],
        &[],
    )
    .await;
    let with = member_seeing(
        &app,
        &owner,
        "with@example.com",
        json!({"canCreateServices": true}),
        &[&pid],
        &[&prod],
        &[],
    )
    .await;

    let no_flag = create(
        &app,
        &without.who,
        json!({"name": "W", "environmentId": prod}),
    )
    .await;
    let no_access = create(
        &app,
        &with.who,
        json!({"name": "W", "environmentId": hidden}),
    )
    .await;

    no_flag.assert_error(401, "permission_denied");
    no_access.assert_error(401, "permission_denied");
    assert_eq!(app.count("applications"), 0);
    assert_eq!(app.count("member_applications"), 0);
}

#[tokio::test]
async fn a_member_who_creates_an_application_sees_it_at_once() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (pid, prod) = project(&app, &owner, "P").await;
    let member = member_seeing(
        &app,
        &owner,
        "member@example.com",
        json!({"canCreateServices": true}),
        &[&pid],
        &[&prod],
        &[],
    )
    .await;
    assert_eq!(
        outline(&all_projects(&app, &member.who).await),
        ["P", "P/production"]
    );

    let r = create(
        &app,
        &member.who,
        json!({"name": "web", "environmentId": prod}),
    )
    .await;

    let id = app_id(r.assert_ok());
    assert_eq!(
        app.count_where(
            "SELECT count(*) FROM member_applications WHERE member_id = ?1 AND application_id = ?2",
            &[&member.member_id, &id]
        ),
        1
    );
    assert_eq!(
        outline(&all_projects(&app, &member.who).await),
        ["P", "P/production", "P/production/web"]
    );
    app.get(
        "/api/application.one",
        &[("applicationId", &id)],
        &member.who,
    )
    .await
    .assert_ok();
}

/// The reference: `curl -X POST .../api/application.create -H "x-api-key: ..."
/// -H "Content-Type: application/json" -d '{"name": "my-app", "environmentId": "..."}'`.
#[tokio::test]
async fn the_reference_example_creates_an_application_with_an_api_key() {
    let app = TestApp::new();
    let (owner, _, org) = app.owner_ids().await;
    let (_, prod) = project(&app, &owner, "P").await;
    let key = app
        .create_key(&owner, json!({"metadata": {"organizationId": org}}))
        .await
        .0;

    let r = app
        .send(
            app.request(Method::POST, "/api/application.create")
                .header("x-api-key", key.as_str())
                .header("Content-Type", "application/json")
                .body(format!(r#"{{"name":"my-app","environmentId":"{prod}"}}"#)),
        )
        .await;

    let a = r.assert_ok();
    r.assert_json();
    assert_eq!(a["name"], "my-app");
    assert_eq!(a["environmentId"], prod.as_str());
    assert!(a["appName"].as_str().unwrap().starts_with("my-app-"), "{a}");
    assert_eq!(app_row(&app, &app_id(a), "environment_id"), prod.as_str());
    assert_eq!(app.count("applications"), 1);
}

// ---------------------------------------------------------------- application.one

#[tokio::test]
async fn application_one_shows_the_application() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (_, prod) = project(&app, &owner, "P").await;
    let created = application(&app, &owner, &prod, "web").await;

    let r = app
        .get(
            "/api/application.one",
            &[("applicationId", &app_id(&created))],
            &owner,
        )
        .await;

    assert_eq!(r.assert_ok(), &created);
}

#[tokio::test]
async fn application_one_of_a_missing_foreign_or_withheld_application_is_refused() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (pid, prod) = project(&app, &owner, "P").await;
    let withheld = application(&app, &owner, &prod, "withheld").await;
    let member = member_seeing(
        &app,
        &owner,
        "m@example.com",
        json!({}),
        &[&pid],
        &[&prod],
        &[],
    )
    .await;
    let other = stranger(&app, &owner, "other@example.com").await;
    let (_, their_prod) = project(&app, &other.who, "Theirs").await;
    let theirs = application(&app, &other.who, &their_prod, "theirs").await;

    let missing = app
        .get(
            "/api/application.one",
            &[("applicationId", MISSING)],
            &owner,
        )
        .await;
    let foreign = app
        .get(
            "/api/application.one",
            &[("applicationId", &app_id(&theirs))],
            &owner,
        )
        .await;
    let refused = app
        .get(
            "/api/application.one",
            &[("applicationId", &app_id(&withheld))],
            &member.who,
        )
        .await;

    missing.assert_error(404, "not_found");
    foreign.assert_error(401, "wrong_organization");
    refused.assert_error(401, "permission_denied");
}

// ---------------------------------------------------------------- application.update

#[tokio::test]
async fn application_update_changes_name_description_and_app_name() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (_, prod) = project(&app, &owner, "P").await;
    let id = app_id(&application(&app, &owner, &prod, "web").await);

    let r = update(
        &app,
        &owner,
        json!({"applicationId": id, "name": " Site ", "description": "Public", "appName": "site"}),
    )
    .await;

    let a = r.assert_ok();
    assert_eq!(a["name"], "Site");
    assert_eq!(a["description"], "Public");
    assert_eq!(a["appName"], "site");
    assert_eq!(app_row(&app, &id, "name"), "Site");
    assert_eq!(app_row(&app, &id, "description"), "Public");
    assert_eq!(app_row(&app, &id, "app_name"), "site");
}

#[tokio::test]
async fn application_update_changes_only_what_it_is_given() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (_, prod) = project(&app, &owner, "P").await;
    let a = application(&app, &owner, &prod, "web").await;
    let id = app_id(&a);

    let r = update(
        &app,
        &owner,
        json!({"applicationId": id, "description": "D"}),
    )
    .await;

    assert_eq!(r.assert_ok()["name"], "web");
    assert_eq!(r.body["appName"], a["appName"]);
    assert_eq!(app_row(&app, &id, "name"), "web");
    assert_eq!(app_row(&app, &id, "app_name"), a["appName"]);
    assert_eq!(app_row(&app, &id, "description"), "D");
}

#[tokio::test]
async fn application_update_refuses_a_taken_or_bad_app_name() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (_, prod) = project(&app, &owner, "P").await;
    create(
        &app,
        &owner,
        json!({"name": "A", "environmentId": prod, "appName": "taken"}),
    )
    .await
    .assert_ok();
    let r = create(
        &app,
        &owner,
        json!({"name": "B", "environmentId": prod, "appName": "mine"}),
    )
    .await;
    let id = app_id(r.assert_ok());

    let taken = update(
        &app,
        &owner,
        json!({"applicationId": id, "appName": "taken"}),
    )
    .await;
    let bad = update(
        &app,
        &owner,
        json!({"applicationId": id, "appName": "has space"}),
    )
    .await;
    let long = update(
        &app,
        &owner,
        json!({"applicationId": id, "name": "", "appName": "a".repeat(64),
               "description": "d".repeat(10_001)}),
    )
    .await;
    let own = update(
        &app,
        &owner,
        json!({"applicationId": id, "appName": "mine"}),
    )
    .await;

    taken.assert_error(409, "app_name_taken");
    bad.assert_error(400, "validation_failed");
    assert_eq!(bad.issue_paths(), ["appName"]);
    long.assert_error(400, "validation_failed");
    assert_eq!(long.issue_paths(), ["name", "description", "appName"]);
    own.assert_ok();
    assert_eq!(app_row(&app, &id, "app_name"), "mine");
    assert_eq!(app_row(&app, &id, "name"), "B");
}

#[tokio::test]
async fn application_update_of_a_missing_or_foreign_application_changes_nothing() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let other = stranger(&app, &owner, "other@example.com").await;
    let (_, their_prod) = project(&app, &other.who, "Theirs").await;
    let theirs = app_id(&application(&app, &other.who, &their_prod, "theirs").await);

    let missing = update(&app, &owner, json!({"applicationId": MISSING, "name": "x"})).await;
    let foreign = update(&app, &owner, json!({"applicationId": theirs, "name": "x"})).await;

    missing.assert_error(404, "not_found");
    foreign.assert_error(401, "wrong_organization");
    assert_eq!(app_row(&app, &theirs, "name"), "theirs");
}

#[tokio::test]
async fn a_member_updates_an_application_only_with_can_create_services_and_access() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (pid, prod) = project(&app, &owner, "P").await;
    let given = app_id(&application(&app, &owner, &prod, "given").await);
    let hidden = app_id(&application(&app, &owner, &prod, "hidden").await);
    let without = member_seeing(
        &app,
        &owner,
        "without@example.com",
        json!({"canDeleteServices": true}),
        &[&pid],
        &[&prod],
        &[&given],
    )
    .await;
    let with = member_seeing(
        &app,
        &owner,
        "with@example.com",
        json!({"canCreateServices": true}),
        &[&pid],
        &[&prod],
        &[&given],
    )
    .await;

    let no_flag = update(
        &app,
        &without.who,
        json!({"applicationId": given, "name": "x"}),
    )
    .await;
    let no_access = update(
        &app,
        &with.who,
        json!({"applicationId": hidden, "name": "x"}),
    )
    .await;
    let allowed = update(
        &app,
        &with.who,
        json!({"applicationId": given, "name": "renamed"}),
    )
    .await;

    no_flag.assert_error(401, "permission_denied");
    no_access.assert_error(401, "permission_denied");
    allowed.assert_ok();
    assert_eq!(app_row(&app, &given, "name"), "renamed");
    assert_eq!(app_row(&app, &hidden, "name"), "hidden");
}

// ---------------------------------------------------------------- application.delete

#[tokio::test]
async fn application_delete_removes_the_application_and_its_access_rows() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (pid, prod) = project(&app, &owner, "P").await;
    let gone = app_id(&application(&app, &owner, &prod, "gone").await);
    let kept = app_id(&application(&app, &owner, &prod, "kept").await);
    let member = member_seeing(
        &app,
        &owner,
        "m@example.com",
        json!({}),
        &[&pid],
        &[&prod],
        &[&gone, &kept],
    )
    .await;

    let r = delete(&app, &owner, &gone).await;

    assert_eq!(r.assert_ok()["applicationId"], gone.as_str());
    assert_eq!(r.body["name"], "gone");
    assert_eq!(rows(&app, "applications", "id", &gone), 0);
    assert_eq!(rows(&app, "applications", "id", &kept), 1);
    assert_eq!(
        app.scalar(
            "SELECT group_concat(application_id) FROM member_applications WHERE member_id = ?1",
            &[&member.member_id]
        ),
        kept.as_str()
    );
    app.get("/api/application.one", &[("applicationId", &gone)], &owner)
        .await
        .assert_error(404, "not_found");
}

/// `user.getPermissions` answers from the cached credential: the deletion must drop it.
#[tokio::test]
async fn application_delete_takes_it_out_of_members_lists_at_once() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (pid, prod) = project(&app, &owner, "P").await;
    let gone = app_id(&application(&app, &owner, &prod, "gone").await);
    let kept = app_id(&application(&app, &owner, &prod, "kept").await);
    let member = member_by_session_and_key(&app, &owner, &[&pid], &[&prod], &[&gone, &kept]).await;
    for who in &member {
        assert_eq!(lists_seen(&app, who).await[2], sorted(&[&gone, &kept]));
    }

    delete(&app, &owner, &gone).await.assert_ok();

    for who in &member {
        assert_eq!(
            lists_seen(&app, who).await,
            [sorted(&[&pid]), sorted(&[&prod]), sorted(&[&kept])],
            "as {who:?}"
        );
    }
}

#[tokio::test]
async fn application_delete_of_a_missing_or_foreign_application_deletes_nothing() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let other = stranger(&app, &owner, "other@example.com").await;
    let (_, their_prod) = project(&app, &other.who, "Theirs").await;
    let theirs = app_id(&application(&app, &other.who, &their_prod, "theirs").await);

    let missing = delete(&app, &owner, MISSING).await;
    let foreign = delete(&app, &owner, &theirs).await;

    missing.assert_error(404, "not_found");
    foreign.assert_error(401, "wrong_organization");
    assert_eq!(rows(&app, "applications", "id", &theirs), 1);
}

#[tokio::test]
async fn a_member_deletes_an_application_only_with_can_delete_services_and_access() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (pid, prod) = project(&app, &owner, "P").await;
    let given = app_id(&application(&app, &owner, &prod, "given").await);
    let hidden = app_id(&application(&app, &owner, &prod, "hidden").await);
    let without = member_seeing(
        &app,
        &owner,
        "without@example.com",
        json!({"canCreateServices": true}),
        &[&pid],
        &[&prod],
        &[&given],
    )
    .await;
    let with = member_seeing(
        &app,
        &owner,
        "with@example.com",
        json!({"canDeleteServices": true}),
        &[&pid],
        &[&prod],
        &[&given],
    )
    .await;

    let no_flag = delete(&app, &without.who, &given).await;
    let no_access = delete(&app, &with.who, &hidden).await;
    assert_eq!(app.count("applications"), 2);
    let allowed = delete(&app, &with.who, &given).await;

    no_flag.assert_error(401, "permission_denied");
    no_access.assert_error(401, "permission_denied");
    allowed.assert_ok();
    assert_eq!(rows(&app, "applications", "id", &given), 0);
    assert_eq!(rows(&app, "applications", "id", &hidden), 1);
}

// ---------------------------------------------------------------- application.search

#[tokio::test]
async fn application_search_matches_name_app_name_or_description_in_any_case() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (_, prod) = project(&app, &owner, "P").await;
    for (name, app_name, description) in [
        ("Checkout", "shop-checkout", None),
        ("Worker", "jobs", Some("Runs SHOP jobs")),
        ("Shopfront", "front", None),
        ("Blog", "blog", None),
    ] {
        let mut body = json!({"name": name, "environmentId": prod, "appName": app_name});
        if let Some(d) = description {
            body["description"] = json!(d);
        }
        create(&app, &owner, body).await.assert_ok();
        app.clock.advance(1);
    }

    let r = search(&app, &owner, &[("q", "ShOp")]).await;
    let all = search(&app, &owner, &[]).await;

    assert_eq!(
        item_names(r.assert_ok()),
        ["Shopfront", "Worker", "Checkout"]
    );
    assert_eq!(r.body["total"], 3);
    assert_eq!(r.body["items"][0]["appName"], "front");
    assert_eq!(
        item_names(all.assert_ok()),
        ["Blog", "Shopfront", "Worker", "Checkout"]
    );
}

#[tokio::test]
async fn application_search_takes_percent_and_underscore_literally() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (_, prod) = project(&app, &owner, "P").await;
    for name in ["50% off", "50 off", "x_y", "xzy"] {
        application(&app, &owner, &prod, name).await;
    }

    let percent = search(&app, &owner, &[("q", "50%")]).await;
    let underscore = search(&app, &owner, &[("q", "x_y")]).await;

    assert_eq!(item_names(percent.assert_ok()), ["50% off"]);
    assert_eq!(item_names(underscore.assert_ok()), ["x_y"]);
}

#[tokio::test]
async fn application_search_filters_by_project_and_environment() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (p, p_prod) = project(&app, &owner, "P").await;
    let p_qa = environment(&app, &owner, &p, "qa").await;
    let (q, q_prod) = project(&app, &owner, "Q").await;
    application(&app, &owner, &p_prod, "p-prod").await;
    application(&app, &owner, &p_qa, "p-qa").await;
    application(&app, &owner, &q_prod, "q-prod").await;

    let in_p = search(&app, &owner, &[("projectId", &p)]).await;
    let in_qa = search(&app, &owner, &[("environmentId", &p_qa)]).await;
    let in_q = search(&app, &owner, &[("projectId", &q), ("q", "prod")]).await;
    let mismatch = search(&app, &owner, &[("projectId", &q), ("environmentId", &p_qa)]).await;

    assert_eq!(item_names(in_p.assert_ok()), ["p-qa", "p-prod"]);
    assert_eq!(item_names(in_qa.assert_ok()), ["p-qa"]);
    assert_eq!(item_names(in_q.assert_ok()), ["q-prod"]);
    assert_eq!(mismatch.assert_ok(), &json!({"items": [], "total": 0}));
}

#[tokio::test]
async fn application_search_pages_and_refuses_bad_paging() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (_, prod) = project(&app, &owner, "P").await;
    for i in 0..5 {
        application(&app, &owner, &prod, &format!("a{i}")).await;
    }

    let page = search(&app, &owner, &[("limit", "2"), ("offset", "1")]).await;
    let zero = search(&app, &owner, &[("limit", "0")]).await;
    let over = search(&app, &owner, &[("limit", "101")]).await;
    let negative = search(&app, &owner, &[("offset", "-1")]).await;

    assert_eq!(item_names(page.assert_ok()), ["a3", "a2"]);
    assert_eq!(page.body["total"], 5);
    for (r, path) in [(&zero, "limit"), (&over, "limit"), (&negative, "offset")] {
        r.assert_error(400, "validation_failed");
        assert_eq!(r.issue_paths(), [path]);
    }
}

#[tokio::test]
async fn application_search_shows_a_member_only_its_applications() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (pid, prod) = project(&app, &owner, "P").await;
    let mine = app_id(&application(&app, &owner, &prod, "mine").await);
    application(&app, &owner, &prod, "not mine").await;
    let (hidden, _) = project(&app, &owner, "Hidden").await;
    let member = member_seeing(
        &app,
        &owner,
        "m@example.com",
        json!({}),
        &[&pid],
        &[&prod],
        &[&mine],
    )
    .await;

    let all = search(&app, &member.who, &[]).await;
    let in_hidden = search(&app, &member.who, &[("projectId", &hidden)]).await;

    assert_eq!(item_names(all.assert_ok()), ["mine"]);
    assert_eq!(all.body["total"], 1);
    in_hidden.assert_error(401, "permission_denied");
}

#[tokio::test]
async fn application_search_within_a_missing_or_foreign_project_is_refused() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let other = stranger(&app, &owner, "other@example.com").await;
    let (their_project, their_prod) = project(&app, &other.who, "Theirs").await;
    application(&app, &other.who, &their_prod, "theirs").await;

    let missing = search(&app, &owner, &[("projectId", MISSING)]).await;
    let foreign = search(&app, &owner, &[("projectId", &their_project)]).await;
    let foreign_env = search(&app, &owner, &[("environmentId", &their_prod)]).await;
    let everything = search(&app, &owner, &[]).await;

    missing.assert_error(404, "not_found");
    foreign.assert_error(401, "wrong_organization");
    foreign_env.assert_error(401, "wrong_organization");
    assert_eq!(everything.assert_ok(), &json!({"items": [], "total": 0}));
}

// ---------------------------------------------------------------- API keys

#[tokio::test]
async fn a_project_scoped_key_reaches_only_applications_of_its_project() {
    let app = TestApp::new();
    let (owner, _, org) = app.owner_ids().await;
    let (a, a_prod) = project(&app, &owner, "A").await;
    let (_, b_prod) = project(&app, &owner, "B").await;
    application(&app, &owner, &a_prod, "in-a").await;
    let in_b = app_id(&application(&app, &owner, &b_prod, "in-b").await);
    let key = As::Key(
        app.create_key(
            &owner,
            json!({"metadata": {"organizationId": org}, "scope": {"projectIds": [a]}}),
        )
        .await
        .0,
    );

    let found = search(&app, &key, &[]).await;
    let one_b = app
        .get("/api/application.one", &[("applicationId", &in_b)], &key)
        .await;
    let create_b = create(&app, &key, json!({"name": "x", "environmentId": b_prod})).await;
    let update_b = update(&app, &key, json!({"applicationId": in_b, "name": "x"})).await;
    let delete_b = delete(&app, &key, &in_b).await;
    let create_a = create(&app, &key, json!({"name": "new", "environmentId": a_prod})).await;

    assert_eq!(item_names(found.assert_ok()), ["in-a"]);
    for r in [&one_b, &create_b, &update_b, &delete_b] {
        r.assert_error(401, "permission_denied");
    }
    create_a.assert_ok();
    assert_eq!(rows(&app, "applications", "environment_id", &b_prod), 1);
    assert_eq!(app_row(&app, &in_b, "name"), "in-b");
    assert_eq!(rows(&app, "applications", "environment_id", &a_prod), 2);
}

#[tokio::test]
async fn a_read_only_key_reads_applications_but_cannot_change_them() {
    let app = TestApp::new();
    let (owner, _, org) = app.owner_ids().await;
    let (_, prod) = project(&app, &owner, "P").await;
    let id = app_id(&application(&app, &owner, &prod, "web").await);
    let key = As::Key(
        app.create_key(
            &owner,
            json!({"metadata": {"organizationId": org}, "scope": {"readOnly": true}}),
        )
        .await
        .0,
    );
    let before = dump(&app);

    app.get("/api/application.one", &[("applicationId", &id)], &key)
        .await
        .assert_ok();
    assert_eq!(
        item_names(search(&app, &key, &[]).await.assert_ok()),
        ["web"]
    );
    let writes = [
        create(&app, &key, json!({"name": "new", "environmentId": prod})).await,
        update(&app, &key, json!({"applicationId": id, "name": "x"})).await,
        delete(&app, &key, &id).await,
    ];

    for w in &writes {
        w.assert_error(401, "permission_denied");
    }
    assert_eq!(dump(&app), before);
}

/// The spec's pattern for appName has no spaces, so none are trimmed away either.
#[tokio::test]
async fn an_app_name_with_spaces_is_refused_as_the_spec_says() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let created = app
        .post("/api/project.create", json!({"name": "p"}), &owner)
        .await;
    let env = created.assert_ok()["environment"]["environmentId"].clone();

    let r = app
        .post(
            "/api/application.create",
            json!({"name": "Web", "environmentId": env, "appName": " web "}),
            &owner,
        )
        .await;

    r.assert_error(400, "validation_failed");
    assert_eq!(r.body["issues"][0]["path"], "appName");
    assert_eq!(app.count("applications"), 0);
}
