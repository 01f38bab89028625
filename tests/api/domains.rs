//! `domain.*`: hosts and path prefixes of applications, normalized and unique on the
//! server, under the same rules as the applications they belong to.

use serde_json::{Value, json};

use crate::helpers::*;

/// The owner, one application in the default environment, and its id.
async fn one_app(app: &TestApp) -> (As, String) {
    let (owner, _) = app.owner().await;
    let (_, env) = project(app, &owner, "site").await;
    let a = application(app, &owner, &env, "web").await;
    (owner, app_id(&a))
}

async fn create(
    app: &TestApp,
    who: &As,
    application: &str,
    host: &str,
    path: Option<&str>,
) -> Reply {
    let mut body = json!({"applicationId": application, "host": host});
    if let Some(p) = path {
        body["path"] = json!(p);
    }
    app.post("/api/domain.create", body, who).await
}

#[tokio::test]
async fn a_domain_is_stored_with_its_host_normalized_and_its_path_defaulted() {
    let app = TestApp::new();
    let (owner, a) = one_app(&app).await;

    let cases = [
        ("App.Example.COM:8443", None, "app.example.com", "/"),
        (
            "bücher.example",
            Some("/shop/"),
            "xn--bcher-kva.example",
            "/shop",
        ),
        (
            "api.example.com.",
            Some("/v1/users"),
            "api.example.com",
            "/v1/users",
        ),
        ("127.0.0.1:9000", None, "127.0.0.1", "/"),
        ("[::1]:80", Some("/"), "[::1]", "/"),
    ];
    for (host, path, want_host, want_path) in cases {
        let r = create(&app, &owner, &a, host, path).await;
        let d = r.assert_ok();
        assert_eq!(
            (d["host"].as_str(), d["path"].as_str()),
            (Some(want_host), Some(want_path)),
            "{host}"
        );
        assert_eq!(d["applicationId"], a.as_str());
        let id = d["domainId"].as_str().unwrap();
        assert_eq!(rows(&app, "domains", "id", id), 1, "{host} was not stored");
        assert_eq!(
            app.scalar("SELECT host FROM domains WHERE id = ?1", &[&id]),
            json!(want_host)
        );
    }
    let listed = app
        .get(
            "/api/domain.byApplicationId",
            &[("applicationId", &a)],
            &owner,
        )
        .await;
    assert_eq!(column(listed.assert_ok(), "host").len(), cases.len());
}

#[tokio::test]
async fn bad_hosts_and_paths_are_refused_with_the_field_named() {
    let app = TestApp::new();
    let (owner, a) = one_app(&app).await;
    for host in [
        "",
        "https://app.example.com",
        "app.example.com/path",
        "user@app.example.com",
        "*.example.com",
        "app..example.com",
        "app.example.com:port",
        "exa mple.com",
        &format!("{}.com", "a".repeat(64)),
    ] {
        let r = create(&app, &owner, &a, host, None).await;
        r.assert_error(400, "validation_failed");
        assert_eq!(r.issue_paths(), ["host"], "{host:?}: {}", r.body);
    }
    for path in [
        "api", "/a/../b", "/a/./b", "/a//b", "/a?b=1", "/a#b", "/a b", "/%2e%2e",
    ] {
        let r = create(&app, &owner, &a, "app.example.com", Some(path)).await;
        r.assert_error(400, "validation_failed");
        assert_eq!(r.issue_paths(), ["path"], "{path:?}: {}", r.body);
    }
    assert_eq!(app.count("domains"), 0);
}

#[tokio::test]
async fn a_host_and_path_pair_is_unique_on_the_server_whatever_the_organization() {
    let app = TestApp::new();
    let (owner, a) = one_app(&app).await;
    create(&app, &owner, &a, "app.example.com", Some("/api"))
        .await
        .assert_ok();

    // The same pair, spelled differently.
    let r = create(&app, &owner, &a, "APP.example.com:443", Some("/api/")).await;
    r.assert_error(409, "domain_taken");
    // Another organization's application cannot take it either.
    let s = stranger(&app, &owner, "stranger@example.com").await;
    let (_, env) = project(&app, &s.who, "theirs").await;
    let theirs = app_id(&application(&app, &s.who, &env, "theirs").await);
    create(&app, &s.key, &theirs, "app.example.com", Some("/api"))
        .await
        .assert_error(409, "domain_taken");
    // Another path on the same host is another domain.
    create(&app, &s.key, &theirs, "app.example.com", Some("/other"))
        .await
        .assert_ok();
    assert_eq!(app.count("domains"), 2);

    // An update into a taken pair is refused and changes nothing.
    let other = create(&app, &owner, &a, "app.example.com", Some("/mine")).await;
    let id = id_of_domain(other.assert_ok());
    let r = app
        .post(
            "/api/domain.update",
            json!({"domainId": id, "path": "/other"}),
            &owner,
        )
        .await;
    r.assert_error(409, "domain_taken");
    assert_eq!(
        app.scalar("SELECT path FROM domains WHERE id = ?1", &[&id]),
        json!("/mine")
    );
}

fn id_of_domain(d: &Value) -> String {
    d["domainId"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn one_update_and_delete_answer_the_domain_and_change_its_row() {
    let app = TestApp::new();
    let (owner, a) = one_app(&app).await;
    let d = create(&app, &owner, &a, "app.example.com", None).await;
    let id = id_of_domain(d.assert_ok());

    let one = app
        .get("/api/domain.one", &[("domainId", &id)], &owner)
        .await;
    assert_eq!(one.assert_ok()["host"], "app.example.com");

    let r = app
        .post(
            "/api/domain.update",
            json!({"domainId": id, "host": "New.Example.com", "path": "/x/"}),
            &owner,
        )
        .await;
    let b = r.assert_ok();
    assert_eq!(
        (b["host"].as_str(), b["path"].as_str()),
        (Some("new.example.com"), Some("/x"))
    );
    assert_eq!(
        app.scalar("SELECT host || path FROM domains WHERE id = ?1", &[&id]),
        json!("new.example.com/x")
    );

    app.post("/api/domain.delete", json!({"domainId": id}), &owner)
        .await
        .assert_ok();
    assert_eq!(rows(&app, "domains", "id", &id), 0);
    app.get("/api/domain.one", &[("domainId", &id)], &owner)
        .await
        .assert_error(404, "not_found");
}

#[tokio::test]
async fn an_application_holds_at_most_a_hundred_domains() {
    let app = TestApp::new();
    let (owner, a) = one_app(&app).await;
    for i in 0..100 {
        create(&app, &owner, &a, "app.example.com", Some(&format!("/p{i}")))
            .await
            .assert_ok();
    }
    create(&app, &owner, &a, "app.example.com", Some("/one-more"))
        .await
        .assert_error(400, "too_many_domains");
    assert_eq!(app.count("domains"), 100);
}

#[tokio::test]
async fn deleting_the_application_deletes_its_domains() {
    let app = TestApp::new();
    let (owner, a) = one_app(&app).await;
    create(&app, &owner, &a, "app.example.com", None)
        .await
        .assert_ok();
    app.post(
        "/api/application.delete",
        json!({"applicationId": a}),
        &owner,
    )
    .await
    .assert_ok();
    assert_eq!(app.count("domains"), 0);
}

#[tokio::test]
async fn members_need_the_service_flags_and_the_application_in_their_lists() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (p, env) = project(&app, &owner, "site").await;
    let seen = app_id(&application(&app, &owner, &env, "seen").await);
    let hidden = app_id(&application(&app, &owner, &env, "hidden").await);
    let hidden_domain = id_of_domain(
        create(&app, &owner, &hidden, "hidden.example.com", None)
            .await
            .assert_ok(),
    );

    let reader = member_seeing(
        &app,
        &owner,
        "reader@example.com",
        json!({}),
        &[&p],
        &[&env],
        &[&seen],
    )
    .await;
    create(&app, &reader.who, &seen, "seen.example.com", None)
        .await
        .assert_error(401, "permission_denied");
    let maker = member_seeing(
        &app,
        &owner,
        "maker@example.com",
        json!({"canCreateServices": true}),
        &[&p],
        &[&env],
        &[&seen],
    )
    .await;
    let made = id_of_domain(
        create(&app, &maker.who, &seen, "seen.example.com", None)
            .await
            .assert_ok(),
    );
    // Without canDeleteServices the maker cannot delete it; the reader sees it.
    app.post("/api/domain.delete", json!({"domainId": made}), &maker.who)
        .await
        .assert_error(401, "permission_denied");
    app.get("/api/domain.one", &[("domainId", &made)], &reader.who)
        .await
        .assert_ok();
    // Neither sees a domain of an application outside their lists.
    for who in [&reader.who, &maker.who] {
        app.get("/api/domain.one", &[("domainId", &hidden_domain)], who)
            .await
            .assert_error(401, "permission_denied");
        create(&app, who, &hidden, "other.example.com", None)
            .await
            .assert_error(401, "permission_denied");
        app.get(
            "/api/domain.byApplicationId",
            &[("applicationId", &hidden)],
            who,
        )
        .await
        .assert_error(401, "permission_denied");
    }
    assert_eq!(app.count("domains"), 2);
}

#[tokio::test]
async fn another_organizations_domain_is_wrong_organization_and_a_missing_one_not_found() {
    let app = TestApp::new();
    let (owner, a) = one_app(&app).await;
    let id = id_of_domain(
        create(&app, &owner, &a, "app.example.com", None)
            .await
            .assert_ok(),
    );
    let s = stranger(&app, &owner, "stranger@example.com").await;
    for who in [&s.who, &s.key] {
        app.get("/api/domain.one", &[("domainId", &id)], who)
            .await
            .assert_error(401, "wrong_organization");
        app.post("/api/domain.delete", json!({"domainId": id}), who)
            .await
            .assert_error(401, "wrong_organization");
        app.post(
            "/api/domain.update",
            json!({"domainId": id, "host": "mine.example.com"}),
            who,
        )
        .await
        .assert_error(401, "wrong_organization");
    }
    assert_eq!(
        app.scalar("SELECT host FROM domains WHERE id = ?1", &[&id]),
        json!("app.example.com")
    );
    app.get("/api/domain.one", &[("domainId", "no-such-domain")], &owner)
        .await
        .assert_error(404, "not_found");
}

#[tokio::test]
async fn a_host_or_path_longer_than_the_spec_allows_is_refused_even_padded() {
    let app = TestApp::new();
    let (owner, a) = one_app(&app).await;
    let padded_host = format!("{}app.example.com", " ".repeat(500));
    let r = create(&app, &owner, &a, &padded_host, None).await;
    r.assert_error(400, "validation_failed");
    assert_eq!(r.issue_paths(), ["host"]);
    let padded_path = format!("/a{}", " ".repeat(1100));
    let r = create(&app, &owner, &a, "app.example.com", Some(&padded_path)).await;
    r.assert_error(400, "validation_failed");
    assert_eq!(r.issue_paths(), ["path"]);
    assert_eq!(app.count("domains"), 0);
}
