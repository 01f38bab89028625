//! Fine points of projects, environments and applications that were once wrong: caches
//! that learn of a write even when its client went away, a project-scoped key kept inside
//! its projects, the applications of an updated environment, and case-insensitive search
//! beyond ASCII.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::json;

use crate::helpers::*;
use crate::resource_helpers::*;

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

/// `domain::resources::write` drops the organization's snapshot only after
/// `st.db.write(f).await` returns. The write runs on `spawn_blocking`, which finishes
/// even when the request's future is dropped (hyper drops it when the client goes away),
/// so the commit happens but the `forget` never runs: `project.all` keeps answering from
/// the old snapshot (and the owner's cached rendering) until some later write to the
/// organization. The snapshot must be dropped however the request ends, e.g. from inside
/// the blocking closure after the commit, or by a guard.
#[tokio::test]
async fn project_all_shows_a_project_whose_creator_went_away_before_the_answer() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let admin = app
        .invite_and_join(&owner, "admin@example.com", "admin")
        .await;
    project(&app, &owner, "Before").await;
    assert_eq!(project_names(&all_projects(&app, &owner).await), ["Before"]);

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
        project_names(&all_projects(&app, &owner).await),
        ["After", "Before"]
    );
    assert_eq!(
        project_names(&all_projects(&app, &admin.who).await),
        ["After", "Before"]
    );
}

/// The same for `user.assignPermissions`: a request abandoned after its commit still has
/// the member's cached credential dropped (the drops run in the write's own task), or the
/// member would keep the access lists it had, and `project.all` (and every other call)
/// would still show it a project taken away from it.
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
        project_names(&all_projects(&app, &member.who).await),
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

/// A key with `scope.projectIds` is refused project B's resources (`project.remove` of B
/// is 401), yet `domain::orgs::delete` never looks at the key's scope: the same key
/// deletes the whole organization, and project B with it. A key that only narrows must
/// not be able to do this (as `domain::keys::may_manage_keys` already refuses such keys
/// the key procedures).
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
    let key = As::Key(api_key(&app, &owner, &org, Some(json!({"projectIds": [a]}))).await);
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

/// The management procedures that hand out rights do not look at the key's scope either
/// (`domain::members::create_with_credentials`, `domain::invitations::invite`,
/// `domain::members::update_role`, `domain::members::assign`). With a key scoped to
/// project A, an owner's automation can create an admin with a password it chose (then
/// sign in as that admin and remove project B), invite an admin, promote a member to
/// admin, or give a member project B: each reaches beyond the key's projects and must be
/// 401 `permission_denied`, changing nothing.
#[tokio::test]
async fn a_key_scoped_to_one_project_cannot_hand_out_rights_beyond_it() {
    let app = TestApp::new();
    let (owner, _, org) = app.owner_ids().await;
    let (a, _) = project(&app, &owner, "A").await;
    let (b, _) = project(&app, &owner, "B").await;
    let member = app
        .invite_and_join(&owner, "member@example.com", "member")
        .await;
    let key = As::Key(api_key(&app, &owner, &org, Some(json!({"projectIds": [a]}))).await);
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

/// `api::resources::EnvironmentApi::update` answers `EnvironmentView::new(&e, &[])`:
/// the updated environment always claims to have no applications, although the field is
/// documented as "the applications in it that the caller may see" (and `environment.one`
/// lists them).
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

/// `store::resources::search_projects` and `search_applications` match with SQLite's
/// `LIKE`, which folds case for ASCII letters only: `q=über` misses a project named
/// "ÜBER" although search is meant to ignore case (names accept any Unicode).
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
