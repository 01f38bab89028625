//! Request bodies against the spec: fields the spec does not name are ignored whatever
//! their value; a known field that is null, missing while required, or of the wrong JSON
//! type is a 400 `validation_failed` whose `issues` name it; nothing is written.

use keygate::api::body_check::MAX_ISSUES;
use poem::http::Method;
use serde_json::{Value, json};

use crate::helpers::*;

/// The `(path, message)` of every issue of a 400.
#[track_caller]
fn issues(r: &Reply) -> Vec<(String, String)> {
    r.assert_error(400, "validation_failed");
    r.body["issues"]
        .as_array()
        .unwrap_or_else(|| panic!("no issues in {}", r.body))
        .iter()
        .map(|i| {
            (
                i["path"].as_str().unwrap().to_owned(),
                i["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(p, m)| ((*p).to_owned(), (*m).to_owned()))
        .collect()
}

/// No message may quote the Rust or poem-openapi type a field is parsed into.
#[track_caller]
fn assert_no_type_names(r: &Reply) {
    let text = r.body.to_string();
    for name in [
        "Text",
        "String",
        "integer_int64",
        "CreateApiKey",
        "Expected input",
    ] {
        assert!(!text.contains(name), "{name} in {text}");
    }
}

#[tokio::test]
async fn an_unknown_field_is_ignored_even_when_it_is_null() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;

    let r = app
        .post(
            "/api/project.create",
            json!({"name": "ok", "extra": null, "more": {"deep": [null]}}),
            &owner,
        )
        .await;

    let id = r.assert_ok()["project"]["projectId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.scalar("SELECT name FROM projects WHERE id = ?1", &[&id]),
        "ok"
    );
    assert_eq!(app.count("projects"), 1);
}

#[tokio::test]
async fn unknown_fields_inside_known_objects_are_ignored_too() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let org = app.first_org();

    let r = app
        .post(
            CREATE_KEY,
            json!({"name": "k", "metadata": {"organizationId": org, "note": null},
                   "scope": {"readOnly": true, "why": null}}),
            &owner,
        )
        .await;

    let id = r.assert_ok()["id"].as_str().unwrap().to_owned();
    assert_eq!(app.key_column(&id, "scope_read_only"), 1);
    assert_eq!(app.count("api_keys"), 1);
}

#[tokio::test]
async fn a_null_on_a_known_field_is_refused_with_its_name() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let before = dump(&app);

    let r = app
        .post("/api/project.create", json!({"name": null}), &owner)
        .await;

    assert_eq!(issues(&r), pairs(&[("name", "must not be null")]));
    assert_eq!(dump(&app), before);
}

#[tokio::test]
async fn a_missing_required_field_on_sign_in_is_named() {
    let app = TestApp::new();
    app.owner().await;
    let before = dump(&app);

    let r = app
        .post(SIGN_IN, json!({"email": OWNER_EMAIL}), &As::Nobody)
        .await;

    assert_eq!(issues(&r), pairs(&[("password", "is required")]));
    assert!(r.set_cookie.is_empty());
    assert_eq!(dump(&app), before);
}

#[tokio::test]
async fn a_number_where_a_string_is_expected_names_the_field_and_the_type() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let before = dump(&app);

    let r = app
        .post(
            "/api/project.create",
            json!({"name": 5, "description": "d"}),
            &owner,
        )
        .await;

    assert_eq!(issues(&r), pairs(&[("name", "must be a string")]));
    assert_eq!(r.body["message"], "name: must be a string");
    assert_no_type_names(&r);
    assert_eq!(dump(&app), before);
}

#[tokio::test]
async fn a_wrong_type_inside_a_nested_object_names_the_nested_path() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let before = dump(&app);

    let nested = app
        .post(
            CREATE_KEY,
            json!({"name": "k", "metadata": {"organizationId": 5}}),
            &owner,
        )
        .await;
    let items = app
        .post(
            CREATE_KEY,
            json!({"name": "k", "metadata": {"organizationId": app.first_org()},
                   "scope": {"projectIds": ["p", 7, null]}, "expiresIn": "soon",
                   "rateLimitEnabled": "yes"}),
            &owner,
        )
        .await;

    assert_eq!(
        issues(&nested),
        pairs(&[("metadata.organizationId", "must be a string")])
    );
    assert_no_type_names(&nested);
    assert_eq!(
        issues(&items),
        pairs(&[
            ("expiresIn", "must be an integer"),
            ("rateLimitEnabled", "must be a boolean"),
            ("scope.projectIds[1]", "must be a string"),
            ("scope.projectIds[2]", "must not be null"),
        ])
    );
    assert_no_type_names(&items);
    assert_eq!(dump(&app), before);
}

#[tokio::test]
async fn an_integer_beyond_64_bits_is_named_not_passed_on() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let before = dump(&app);
    let body = format!(
        r#"{{"name": "k", "metadata": {{"organizationId": "{}"}}, "remaining": 99999999999999999999}}"#,
        app.first_org()
    );

    let r = app
        .send(
            app.request(Method::POST, CREATE_KEY)
                .header("cookie", cookie(owner.token()))
                .header("origin", ORIGIN)
                .content_type("application/json")
                .body(body),
        )
        .await;

    assert_eq!(
        issues(&r),
        pairs(&[("remaining", "must be a 64-bit integer")])
    );
    assert_eq!(dump(&app), before);
}

#[tokio::test]
async fn a_missing_nested_object_and_its_missing_fields_are_named() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;

    let no_metadata = app.post(CREATE_KEY, json!({"name": "k"}), &owner).await;
    let empty_metadata = app
        .post(CREATE_KEY, json!({"name": "k", "metadata": {}}), &owner)
        .await;

    assert_eq!(issues(&no_metadata), pairs(&[("metadata", "is required")]));
    assert_eq!(
        issues(&empty_metadata),
        pairs(&[("metadata.organizationId", "is required")])
    );
    assert_eq!(app.count("api_keys"), 0);
}

#[tokio::test]
async fn no_more_issues_are_listed_than_the_readme_says() {
    assert!(
        include_str!("../../README.md").contains(&format!("at most {MAX_ISSUES} issues")),
        "the README does not state the limit of {MAX_ISSUES} issues"
    );
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let member = app
        .invite_and_join(&owner, "member@example.com", "member")
        .await;
    let before = dump(&app);

    let r = app
        .post(
            "/api/user.assignPermissions",
            json!({"userId": member.user_id, "accessedProjects": (0..2 * MAX_ISSUES).collect::<Vec<usize>>()}),
            &owner,
        )
        .await;

    let got = issues(&r);
    assert_eq!(got.len(), MAX_ISSUES);
    assert_eq!(
        got[0],
        ("accessedProjects[0]".into(), "must be a string".into())
    );
    assert_eq!(
        got[MAX_ISSUES - 1].0,
        format!("accessedProjects[{}]", MAX_ISSUES - 1)
    );
    assert_eq!(dump(&app), before);
}

#[tokio::test]
async fn a_body_sent_as_another_json_media_type_is_checked_the_same() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let before = dump(&app);

    let r = app
        .send(
            app.request(Method::POST, "/api/project.create")
                .header("cookie", cookie(owner.token()))
                .header("origin", ORIGIN)
                .content_type("application/vnd.keygate+json")
                .body(r#"{"name": "p", "description": null}"#),
        )
        .await;

    assert_eq!(issues(&r), pairs(&[("description", "must not be null")]));
    assert_eq!(dump(&app), before);
}

#[tokio::test]
async fn a_body_that_is_not_json_stays_a_bad_request() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let before = dump(&app);

    let r = app
        .send(
            app.request(Method::POST, "/api/project.create")
                .header("cookie", cookie(owner.token()))
                .header("origin", ORIGIN)
                .content_type("application/json")
                .body(r#"{"name": null"#),
        )
        .await;

    r.assert_error(400, "bad_request");
    assert_eq!(r.body["issues"], Value::Array(Vec::new()));
    assert_eq!(dump(&app), before);
}

/// The spec declares `name`, `email` and `password` as strings: a number or a boolean
/// there is refused (no user named "1"), each field named with the type it must have.
#[tokio::test]
async fn numbers_and_booleans_where_the_spec_says_string_are_refused() {
    let app = TestApp::new();

    let sign_up = app
        .sign_up(json!({"name": 1, "email": "ada@example.com", "password": 12345678}))
        .await;
    let sign_in = app
        .post(SIGN_IN, json!({"email": 5, "password": true}), &As::Nobody)
        .await;

    sign_up.assert_error(400, "validation_failed");
    assert_eq!(sign_up.issue_paths(), ["name", "password"]);
    assert_eq!(app.count("users"), 0, "a user was created from numbers");
    sign_in.assert_error(400, "validation_failed");
    assert_eq!(sign_in.issue_paths(), ["email", "password"]);
    assert!(
        sign_in.body["issues"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["message"] == "must be a string"),
        "{}",
        sign_in.body
    );
}

/// No request field is nullable in the spec, so a `null` on a known field is refused
/// with every offending path listed, and nothing changes.
#[tokio::test]
async fn a_null_in_a_request_body_is_refused_with_its_path() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;

    let r = app
        .post(
            "/api/user.update",
            json!({"name": null, "password": null}),
            &owner,
        )
        .await;

    r.assert_error(400, "validation_failed");
    let mut paths: Vec<&str> = r.body["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["path"].as_str().unwrap())
        .collect();
    paths.sort();
    assert_eq!(paths, ["name", "password"]);

    let nested = app
        .post(
            "/api/project.create",
            json!({"name": "p", "description": null}),
            &owner,
        )
        .await;
    nested.assert_error(400, "validation_failed");
    assert_eq!(nested.body["issues"][0]["path"], "description");
    assert_eq!(app.count("projects"), 0);
}
