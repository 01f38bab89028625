//! The audit log: each security-relevant change records its event, with its actor (a
//! session's user, a key, the shell), in the unit of work of the change; a refused change
//! records nothing; refused sign-ins are counted in memory and written by the flush; the
//! log reads newest first, a page at a time, filtered, by the organization's owner and
//! admins, and each user reads its own account's events.

use std::net::SocketAddr;

use poem::http::Method;
use serde_json::{Value, json};

use crate::helpers::*;

const ALL: &str = "/api/audit.all";
const ACCOUNT: &str = "/api/audit.account";

/// The stored events, oldest first, as `(action, actor_type, outcome)`.
fn stored(app: &TestApp) -> Vec<(String, String, String)> {
    let rows = app.scalar(
        "SELECT json_group_array(json_array(action, actor_type, outcome)) \
         FROM (SELECT * FROM audit_events ORDER BY id)",
        &[],
    );
    let rows: Value = serde_json::from_str(rows.as_str().unwrap()).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let s = |i: usize| r[i].as_str().unwrap().to_owned();
            (s(0), s(1), s(2))
        })
        .collect()
}

fn has(events: &[(String, String, String)], action: &str, actor: &str) -> bool {
    events.iter().any(|(a, t, _)| a == action && t == actor)
}

/// Every event of the organization's log, following the cursor, newest first.
async fn whole_log(app: &TestApp, who: &As, query: &[(&str, &str)]) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q: Vec<(&str, &str)> = query.to_vec();
        if let Some(c) = &cursor {
            q.push(("cursor", c));
        }
        let r = app.get(ALL, &q, who).await;
        let body = r.assert_ok().clone();
        out.extend(body["events"].as_array().unwrap().iter().cloned());
        match body["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

async fn flush(app: &TestApp) {
    keygate::domain::audit::flush_refusals(&app.state)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_session_a_key_and_the_shell_are_each_named_as_the_actor_of_what_they_did() {
    let app = TestApp::new();
    let (owner, owner_id, org) = app.owner_ids().await;
    project(&app, &owner, "By session").await;
    let (key, key_id) = app
        .create_key(&owner, json!({"metadata": {"organizationId": org}}))
        .await;
    project(&app, &As::Key(key.clone()), "By key").await;
    let made = app.create_user("shell-made@example.com", keygate::model::Role::Member);

    let log = whole_log(&app, &owner, &[("action", "project.create")]).await;
    assert_eq!(log.len(), 2, "{log:#?}");
    // Newest first: the key's, then the session's.
    let (by_key, by_session) = (&log[0], &log[1]);
    assert_eq!(by_key["actor"]["type"], "api_key");
    assert_eq!(by_key["actor"]["id"], key_id.as_str());
    assert_eq!(by_key["actor"]["userId"], owner_id.as_str());
    assert_eq!(
        by_key["actor"]["label"],
        &key[..by_key["actor"]["label"].as_str().unwrap().len()]
    );
    assert!(key.starts_with(by_key["actor"]["label"].as_str().unwrap()));
    assert_eq!(by_session["actor"]["type"], "user");
    assert_eq!(by_session["actor"]["id"], owner_id.as_str());
    assert_eq!(by_session["actor"]["label"], OWNER_EMAIL);
    for e in &log {
        assert_eq!(e["organizationId"], org.as_str());
        assert_eq!(e["resourceType"], "project");
        assert_eq!(e["outcome"], "success");
        assert_eq!(e["count"], 1);
    }

    let shell = whole_log(&app, &owner, &[("action", "member.add")]).await;
    let added = shell
        .iter()
        .find(|e| e["subjectUserId"] == made.id.as_str())
        .expect("the shell's member.add");
    assert_eq!(added["actor"], json!({"type": "shell"}));
    assert_eq!(added["details"]["role"], "member");
    assert!(has(&stored(&app), "user.create", "shell"));
}

#[tokio::test]
async fn every_listed_change_records_its_event_and_none_holds_a_secret() {
    let app = TestApp::new();
    let (owner, owner_id, org) = app.owner_ids().await;
    let member = app
        .invite_and_join(&owner, "member@example.com", "member")
        .await;
    // Keys: created, renamed, disabled, enabled, rotated, deleted.
    let (key, key_id) = app
        .create_key(&owner, json!({"metadata": {"organizationId": org}}))
        .await;
    let k = |extra: Value| {
        let mut b = json!({"apiKeyId": key_id});
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };
    app.post(UPDATE_KEY, k(json!({"name": "renamed"})), &owner)
        .await
        .assert_ok();
    app.post(UPDATE_KEY, k(json!({"enabled": false})), &owner)
        .await
        .assert_ok();
    app.post(UPDATE_KEY, k(json!({"enabled": true})), &owner)
        .await
        .assert_ok();
    let rotated = app.post(ROTATE_KEY, k(json!({})), &owner).await;
    let new_secret = rotated.assert_ok()["key"].as_str().unwrap().to_owned();
    app.post(DELETE_KEY, k(json!({})), &owner).await.assert_ok();
    // Invitations: sent and cancelled; sent and accepted (the member above).
    let inv = app.invite(&owner, "later@example.com", "member").await;
    app.post(
        "/api/organization.removeInvitation",
        json!({"invitationId": inv["id"]}),
        &owner,
    )
    .await
    .assert_ok();
    // Members: role, permissions, removal.
    app.post(
        "/api/organization.updateMemberRole",
        json!({"memberId": member.member_id, "role": "admin"}),
        &owner,
    )
    .await
    .assert_ok();
    app.post(
        "/api/organization.updateMemberRole",
        json!({"memberId": member.member_id, "role": "member"}),
        &owner,
    )
    .await
    .assert_ok();
    app.post(
        "/api/user.assignPermissions",
        json!({"userId": member.user_id, "canCreateProjects": true}),
        &owner,
    )
    .await
    .assert_ok();
    // Resources, created and removed.
    let (p, env) = project(&app, &owner, "Audited").await;
    let e2 = environment(&app, &owner, &p, "staging").await;
    let a = application(&app, &owner, &env, "api").await;
    let d = app
        .post(
            "/api/domain.create",
            json!({"applicationId": a["applicationId"].as_str().unwrap(), "host": "api.example.com"}),
            &owner,
        )
        .await;
    let d = d.assert_ok()["domainId"].clone();
    app.post("/api/domain.delete", json!({"domainId": d}), &owner)
        .await
        .assert_ok();
    app.post(
        "/api/application.delete",
        json!({"applicationId": a["applicationId"].as_str().unwrap()}),
        &owner,
    )
    .await
    .assert_ok();
    app.post(
        "/api/environment.remove",
        json!({"environmentId": e2}),
        &owner,
    )
    .await
    .assert_ok();
    app.post("/api/project.remove", json!({"projectId": p}), &owner)
        .await
        .assert_ok();
    // Organizations: created, renamed, deleted.
    let other = app.create_org(&owner, "Second").await;
    app.post(
        "/api/organization.update",
        json!({"organizationId": other, "name": "Renamed"}),
        &owner,
    )
    .await
    .assert_ok();
    app.post(
        "/api/organization.delete",
        json!({"organizationId": other}),
        &owner,
    )
    .await
    .assert_ok();
    // A reset link for the member, used; then the member is removed.
    let link = app
        .post(
            "/api/user.createPasswordReset",
            json!({"userId": member.user_id}),
            &owner,
        )
        .await;
    let token = link.assert_ok()["token"].as_str().unwrap().to_owned();
    app.post(
        "/api/auth/reset-password",
        json!({"token": token, "newPassword": "another long password"}),
        &As::Nobody,
    )
    .await
    .assert_ok();
    app.post(
        "/api/user.remove",
        json!({"userId": member.user_id}),
        &owner,
    )
    .await
    .assert_ok();
    // Sessions: a second one revoked, a password changed, two-factor on and off, a
    // failed sign-in, a sign-out.
    let second = app.sign_in(OWNER_EMAIL, PASSWORD).await;
    let sessions = app.get("/api/user.listSessions", &[], &owner).await;
    let other_session = sessions
        .assert_ok()
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == false)
        .unwrap()["session"]["id"]
        .clone();
    app.post(
        "/api/user.revokeSession",
        json!({"sessionId": other_session}),
        &owner,
    )
    .await
    .assert_ok();
    drop(second);
    turn_on(&app, &owner).await;
    app.post(
        "/api/auth/two-factor/disable",
        json!({"password": PASSWORD}),
        &owner,
    )
    .await
    .assert_ok();
    let new_password = "a different passphrase";
    app.post(
        "/api/user.update",
        json!({"currentPassword": PASSWORD, "password": new_password}),
        &owner,
    )
    .await
    .assert_ok();
    app.try_sign_in(OWNER_EMAIL, "not the password")
        .await
        .assert_error(401, "invalid_credentials");
    flush(&app).await;
    app.post(SIGN_OUT, json!({}), &owner).await.assert_ok();

    let events = stored(&app);
    for (action, actor) in [
        ("user.sign_up", "user"),
        ("session.sign_in", "user"),
        ("session.sign_in_failed", "anonymous"),
        ("session.sign_out", "user"),
        ("session.revoke", "user"),
        ("user.password_change", "user"),
        ("user.password_reset_link", "user"),
        ("user.password_reset", "user"),
        ("two_factor.enable", "user"),
        ("two_factor.disable", "user"),
        ("apikey.create", "user"),
        ("apikey.rename", "user"),
        ("apikey.disable", "user"),
        ("apikey.enable", "user"),
        ("apikey.rotate", "user"),
        ("apikey.delete", "user"),
        ("invitation.create", "user"),
        ("invitation.cancel", "user"),
        ("invitation.accept", "user"),
        ("member.add", "user"),
        ("member.role", "user"),
        ("member.permissions", "user"),
        ("member.remove", "user"),
        ("organization.create", "user"),
        ("organization.rename", "user"),
        ("organization.delete", "user"),
        ("project.create", "user"),
        ("project.remove", "user"),
        ("environment.create", "user"),
        ("environment.remove", "user"),
        ("application.create", "user"),
        ("application.delete", "user"),
        ("domain.create", "user"),
        ("domain.delete", "user"),
    ] {
        assert!(
            has(&events, action, actor),
            "no {action} by {actor} in {events:#?}"
        );
    }
    let failed: Value = app.scalar(
        "SELECT json_object('subject', subject_user_id, 'details', json(details), \
         'outcome', outcome) FROM audit_events WHERE action = 'session.sign_in_failed'",
        &[],
    );
    let failed: Value = serde_json::from_str(failed.as_str().unwrap()).unwrap();
    assert_eq!(failed["subject"], owner_id.as_str());
    assert_eq!(failed["outcome"], "failure");
    assert_eq!(failed["details"]["email"], OWNER_EMAIL);
    assert_eq!(failed["details"]["reason"], "invalid_credentials");

    // Never a secret: no key, no password, no token, no hash.
    let everything = app.scalar(
        "SELECT group_concat(coalesce(actor_label, '') || coalesce(details, '') || \
         coalesce(resource_id, '') || coalesce(user_agent, ''), ' ') FROM audit_events",
        &[],
    );
    let everything = everything.as_str().unwrap();
    for secret in [
        key.as_str(),
        new_secret.as_str(),
        PASSWORD,
        new_password,
        "another long password",
        "not the password",
        token.as_str(),
        owner.token(),
    ] {
        assert!(!everything.contains(secret), "the log holds {secret}");
    }
}

#[tokio::test]
async fn a_refused_change_records_no_event() {
    let app = TestApp::new();
    let (owner, _, org) = app.owner_ids().await;
    let member = app
        .invite_and_join(&owner, "member@example.com", "member")
        .await;
    let before = app.count("audit_events");
    // Refused by the policy, by validation, and by a conflict found inside the write.
    project(&app, &owner, "Taken").await;
    let after_project = app.count("audit_events");
    assert_eq!(after_project, before + 1);
    app.post("/api/project.create", json!({"name": "x"}), &member.who)
        .await
        .assert_error(401, "permission_denied");
    app.post("/api/project.create", json!({"name": ""}), &owner)
        .await
        .assert_error(400, "validation_failed");
    app.post(
        "/api/organization.inviteMember",
        json!({"email": "member@example.com", "role": "member"}),
        &owner,
    )
    .await
    .assert_error(409, "already_a_member");
    app.post(
        "/api/organization.delete",
        json!({"organizationId": org}),
        &owner,
    )
    .await
    .assert_error(400, "last_organization");
    assert_eq!(app.count("audit_events"), after_project);
}

#[tokio::test]
async fn refused_sign_ins_are_counted_in_memory_and_written_together_by_the_flush() {
    let app = TestApp::new();
    app.owner_ids().await;
    let before = app.count_where(
        "SELECT count(*) FROM audit_events WHERE action = 'session.sign_in_failed'",
        &[],
    );
    for _ in 0..4 {
        app.try_sign_in(OWNER_EMAIL, "wrong password")
            .await
            .assert_error(401, "invalid_credentials");
    }
    app.try_sign_in("nobody@example.com", "wrong password")
        .await
        .assert_error(401, "invalid_credentials");
    let failed = |app: &TestApp| {
        app.count_where(
            "SELECT count(*) FROM audit_events WHERE action = 'session.sign_in_failed'",
            &[],
        )
    };
    assert_eq!(failed(&app), before, "no write per refused request");
    flush(&app).await;
    assert_eq!(failed(&app), before + 2, "one event per kind of refusal");
    let counts = app.scalar(
        "SELECT group_concat(count || ':' || coalesce(subject_user_id, '-'), ',') FROM \
         (SELECT count, subject_user_id FROM audit_events \
          WHERE action = 'session.sign_in_failed' ORDER BY count)",
        &[],
    );
    let counts = counts.as_str().unwrap().to_owned();
    assert!(counts.starts_with("1:-,4:"), "{counts}");
    flush(&app).await;
    assert_eq!(failed(&app), before + 2, "a flush writes each refusal once");
}

#[tokio::test]
async fn the_log_pages_newest_first_by_cursor_and_its_filters_narrow_it() {
    let app = TestApp::new();
    let (owner, _, org) = app.owner_ids().await;
    let (key, key_id) = app
        .create_key(&owner, json!({"metadata": {"organizationId": org}}))
        .await;
    let start = keygate::clock::rfc3339(keygate::clock::Clock::now_ms(&*app.clock));
    for i in 0..7 {
        project(&app, &owner, &format!("P{i}")).await;
    }
    let end = keygate::clock::rfc3339(keygate::clock::Clock::now_ms(&*app.clock));
    project(&app, &As::Key(key), "By key").await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut q = vec![("action", "project.create"), ("limit", "3")];
        if let Some(c) = &cursor {
            q.push(("cursor", c));
        }
        let r = app.get(ALL, &q, &owner).await;
        let body = r.assert_ok().clone();
        let events = body["events"].as_array().unwrap();
        assert!(events.len() <= 3);
        seen.extend(events.iter().map(|e| e["id"].as_i64().unwrap()));
        pages += 1;
        match body["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 8);
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "newest first: {seen:?}"
    );

    let by_key = whole_log(&app, &owner, &[("actorId", &key_id)]).await;
    assert_eq!(by_key.len(), 1);
    assert_eq!(by_key[0]["details"]["name"], "By key");
    let range = [("action", "project.create"), ("from", &start), ("to", &end)];
    let in_range = whole_log(&app, &owner, &range).await;
    assert_eq!(
        in_range.len(),
        7,
        "the key's project was made at `end`, outside"
    );
    let projects = whole_log(&app, &owner, &[("resourceType", "apikey")]).await;
    assert_eq!(projects.len(), 1);
    assert_eq!(projects[0]["resourceId"], key_id.as_str());

    for (q, field) in [
        (("cursor", "nonsense"), "cursor"),
        (("from", "yesterday"), "from"),
        (("limit", "101"), "limit"),
    ] {
        let r = app.get(ALL, &[q], &owner).await;
        r.assert_error(400, "validation_failed");
        assert!(r.body.to_string().contains(field), "{}", r.body);
    }
    let r = app
        .get(ALL, &[("from", &end), ("to", &start)], &owner)
        .await;
    r.assert_error(400, "validation_failed");
}

#[tokio::test]
async fn only_owners_and_admins_read_the_organization_log_and_each_user_its_own_account() {
    let app = TestApp::new();
    let (owner, _, _) = app.owner_ids().await;
    let admin = app
        .invite_and_join(&owner, "admin@example.com", "admin")
        .await;
    let member = app
        .invite_and_join(&owner, "member@example.com", "member")
        .await;
    app.get(ALL, &[], &admin.who).await.assert_ok();
    app.get(ALL, &[], &member.who)
        .await
        .assert_error(401, "permission_denied");
    app.try_sign_in("member@example.com", "wrong password")
        .await
        .assert_error(401, "invalid_credentials");
    flush(&app).await;

    let mine = app.get(ACCOUNT, &[], &member.who).await;
    let events = mine.assert_ok()["events"].as_array().unwrap().clone();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"session.sign_in_failed"), "{actions:?}");
    assert!(actions.contains(&"session.sign_in"), "{actions:?}");
    // Only the member's own: nothing the owner did, nothing of the admin.
    for e in &events {
        assert_eq!(e["subjectUserId"], member.user_id.as_str(), "{e}");
    }
    let owners = app.get(ACCOUNT, &[], &owner).await;
    assert!(
        !owners
            .body
            .to_string()
            .contains("member@example.com\",\"reason"),
        "the owner's account log holds the member's failed sign-in"
    );
}

#[tokio::test]
async fn a_key_reads_its_users_account_log_inside_its_own_organization_only() {
    let app = TestApp::new();
    let (owner, _, first) = app.owner_ids().await;
    let second = app.create_org(&owner, "Second").await;
    let (key_a, _) = app.create_key(&owner, json!({"name": "a"})).await;
    let (key_b, _) = app
        .create_key(
            &owner,
            json!({"name": "b", "metadata": {"organizationId": second}}),
        )
        .await;
    let (key_a, key_b) = (As::Key(key_a), As::Key(key_b));
    app.post(
        "/api/project.create",
        json!({"name": "first-project"}),
        &key_a,
    )
    .await
    .assert_ok();
    app.post(
        "/api/project.create",
        json!({"name": "second-project"}),
        &key_b,
    )
    .await
    .assert_ok();
    let orgs_of = |r: &Reply| -> Vec<String> {
        let mut orgs: Vec<String> = r.assert_ok()["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["organizationId"].as_str().map(str::to_owned))
            .collect();
        orgs.sort();
        orgs.dedup();
        orgs
    };

    let a = app.get(ACCOUNT, &[("limit", "100")], &key_a).await;
    assert_eq!(orgs_of(&a), std::slice::from_ref(&first));
    assert!(a.body.to_string().contains("first-project"), "{}", a.body);
    assert!(!a.body.to_string().contains("second-project"), "{}", a.body);
    // Events of no organization (the sign-up, the sign-in) are the user's own.
    assert!(a.body.to_string().contains("session.sign_in"), "{}", a.body);
    let b = app.get(ACCOUNT, &[("limit", "100")], &key_b).await;
    assert_eq!(orgs_of(&b), std::slice::from_ref(&second));
    assert!(b.body.to_string().contains("second-project"), "{}", b.body);
    // The session reads the whole account, in every organization.
    let mut both = vec![first, second];
    both.sort();
    let session = app.get(ACCOUNT, &[("limit", "100")], &owner).await;
    assert_eq!(orgs_of(&session), both);
}

#[tokio::test]
async fn an_answer_names_the_request_id_of_its_events_with_the_client_it_came_from() {
    let app = TestApp::new();
    let (owner, _, org) = app.owner_ids().await;
    let (key, _) = app
        .create_key(&owner, json!({"metadata": {"organizationId": org}}))
        .await;
    let from: SocketAddr = "203.0.113.9:4000".parse().unwrap();
    let sent = app
        .send_from(
            from,
            Method::POST,
            "/api/project.create",
            &[
                ("x-api-key", &key),
                ("user-agent", "deploy-bot/2.1"),
                ("x-request-id", "trace-1234"),
            ],
            json!({"name": "Traced"}),
        )
        .await;
    sent.assert_ok();
    assert_eq!(sent.header("x-request-id"), Some("trace-1234"));
    let mine = app
        .send_from(
            from,
            Method::POST,
            "/api/project.create",
            &[("x-api-key", &key), ("x-request-id", "not a token!")],
            json!({"name": "Own id"}),
        )
        .await;
    let own_id = mine
        .header("x-request-id")
        .expect("an id of keygate's")
        .to_owned();
    assert_ne!(own_id, "not a token!");
    // A read records nothing and names no request.
    let read = app
        .send_from(
            from,
            Method::GET,
            "/api/project.all",
            &[("x-api-key", &key)],
            json!({}),
        )
        .await;
    assert_eq!(read.header("x-request-id"), None);

    let log = whole_log(&app, &owner, &[("action", "project.create")]).await;
    let traced = log
        .iter()
        .find(|e| e["details"]["name"] == "Traced")
        .unwrap();
    assert_eq!(traced["requestId"], "trace-1234");
    assert_eq!(traced["clientAddress"], "203.0.113.9");
    assert_eq!(traced["userAgent"], "deploy-bot/2.1");
    let own = log
        .iter()
        .find(|e| e["details"]["name"] == "Own id")
        .unwrap();
    assert_eq!(own["requestId"], own_id.as_str());
}

#[tokio::test]
async fn events_past_the_retention_are_pruned_and_later_ones_kept() {
    let app = TestApp::with_config(|c| c.audit_retention_days = 30);
    let (owner, _, _) = app.owner_ids().await;
    project(&app, &owner, "Old").await;
    app.clock.advance(20 * keygate::clock::DAY);
    let owner = app.sign_in(OWNER_EMAIL, PASSWORD).await;
    project(&app, &owner, "Recent").await;
    let before = app.count("audit_events");
    app.clock.advance(11 * keygate::clock::DAY);
    let gone = keygate::domain::audit::prune(&app.state).await.unwrap();
    let owner = app.sign_in(OWNER_EMAIL, PASSWORD).await;
    // The sign-up's events and the first project's are over 30 days old now.
    assert!(gone >= 2, "{gone}");
    assert_eq!(
        app.count("audit_events"),
        before - gone as i64 + 1,
        "and the sign-in"
    );
    let names: Vec<Value> = whole_log(&app, &owner, &[("action", "project.create")])
        .await
        .into_iter()
        .map(|e| e["details"]["name"].clone())
        .collect();
    assert_eq!(names, [json!("Recent")]);
}
