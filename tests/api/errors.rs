//! Every error has the one JSON shape, poem's own included, and nothing a client sends
//! makes the server answer 500.

use poem::Body;
use poem::http::Method;
use serde_json::{Value, json};

use crate::helpers::*;

/// Asserts the error shape: JSON `{message, code, reason}` with the expected status.
#[track_caller]
fn assert_error_shape(r: &Reply, status: u16, code: &str, reason: &str) {
    r.assert_error(status, reason);
    assert_eq!(r.code(), code, "{}", r.body);
    r.assert_json();
    let keys: Vec<&String> = r.body.as_object().unwrap().keys().collect();
    for k in &keys {
        assert!(
            ["message", "code", "reason", "issues"].contains(&k.as_str()),
            "unexpected field {k} in {}",
            r.body
        );
    }
}

const SIGN_IN_JSON: &str = r#"{"email": "owner@example.com", "password": "correct horse battery"}"#;

// ---------------------------------------------------------------- routing

#[tokio::test]
async fn an_unknown_path_is_a_json_404() {
    let app = TestApp::new();

    for path in [
        "/api/does-not-exist",
        "/api/project.everything",
        "/api/auth/sign-in/email/extra",
        "/nope",
        "/swagger/nope.js",
    ] {
        let r = app.get(path, &[], &As::Nobody).await;

        assert_error_shape(&r, 404, "NOT_FOUND", "not_found");
    }
    let post = app
        .post("/api/does-not-exist", json!({}), &As::Nobody)
        .await;
    assert_error_shape(&post, 404, "NOT_FOUND", "not_found");
    assert_eq!(app.count("users"), 0);
}

#[tokio::test]
async fn a_wrong_method_is_a_json_405_with_allow() {
    let app = TestApp::new();

    for (method, path, allow) in [
        (Method::DELETE, HEALTH, "GET"),
        (Method::POST, HEALTH, "GET"),
        (Method::GET, SIGN_OUT, "POST"),
        (Method::GET, SIGN_IN, "POST"),
        (Method::PUT, SIGN_UP, "POST"),
        (Method::DELETE, GET_SESSION, "GET"),
        (Method::DELETE, "/openapi.json", "GET, HEAD"),
        (Method::POST, "/openapi.yaml", "GET, HEAD"),
        (Method::POST, "/", "GET, HEAD"),
    ] {
        let r = app.send(app.request(method.clone(), path)).await;

        assert_eq!(r.status, 405, "{method} {path}: {}", r.body);
        assert_error_shape(&r, 405, "METHOD_NOT_SUPPORTED", "method_not_allowed");
        assert_eq!(r.header("allow"), Some(allow), "{method} {path}");
    }
}

#[tokio::test]
async fn a_wrong_method_on_sign_out_does_not_sign_out() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;

    let r = app.get(SIGN_OUT, &[], &owner).await;

    assert_error_shape(&r, 405, "METHOD_NOT_SUPPORTED", "method_not_allowed");
    assert_eq!(app.count("sessions"), 1);
}

// ---------------------------------------------------------------- bodies

fn sign_in_raw<'a>(app: &'a TestApp, body: impl Into<Body>) -> Req<'a> {
    app.request(Method::POST, SIGN_IN)
        .content_type("application/json")
        .body(body)
}

#[tokio::test]
async fn unparsable_json_is_a_400() {
    let app = TestApp::new();
    app.owner().await;

    for body in [
        "{",
        "",
        "{\"email\": \"owner@example.com\", \"password\": }",
        "not json",
        "{\"email\": \"\\ud800\", \"password\": \"x\"}",
    ] {
        let r = app.send(sign_in_raw(&app, body)).await;

        assert_error_shape(&r, 400, "BAD_REQUEST", "bad_request");
        assert!(r.set_cookie.is_empty());
    }
    assert_eq!(app.count("sessions"), 1);
}

#[tokio::test]
async fn a_missing_field_is_a_400() {
    let app = TestApp::new();

    let no_password = app
        .post(SIGN_IN, json!({"email": OWNER_EMAIL}), &As::Nobody)
        .await;
    let no_name = app
        .sign_up(json!({"email": "ada@example.com", "password": PASSWORD}))
        .await;

    assert_error_shape(&no_password, 400, "BAD_REQUEST", "validation_failed");
    assert_eq!(no_password.issue_paths(), ["password"]);
    assert_error_shape(&no_name, 400, "BAD_REQUEST", "validation_failed");
    assert_eq!(no_name.issue_paths(), ["name"]);
    assert_eq!(no_name.body["issues"][0]["message"], "is required");
    assert_eq!(app.count("users"), 0);
}

#[tokio::test]
async fn json_of_the_wrong_type_is_a_400() {
    let app = TestApp::new();

    // Numbers and booleans for strings: see request_bodies.rs.
    for (body, path, message) in [
        (
            json!({"email": [OWNER_EMAIL], "password": PASSWORD}),
            "email",
            "must be a string",
        ),
        (
            json!({"email": {"$ne": ""}, "password": PASSWORD}),
            "email",
            "must be a string",
        ),
        (
            json!({"email": OWNER_EMAIL, "password": null}),
            "password",
            "must not be null",
        ),
        (json!([OWNER_EMAIL, PASSWORD]), "body", "must be an object"),
        (json!("owner@example.com"), "body", "must be an object"),
        (Value::Null, "body", "must be an object"),
    ] {
        let r = app.post(SIGN_IN, body.clone(), &As::Nobody).await;

        assert_error_shape(&r, 400, "BAD_REQUEST", "validation_failed");
        assert_eq!(r.issue_paths(), [path], "{body}");
        assert_eq!(r.body["issues"][0]["message"], message, "{body}");
    }
    let r = app
        .sign_up(json!({"name": ["Ada"], "email": "ada@example.com", "password": PASSWORD}))
        .await;
    assert_error_shape(&r, 400, "BAD_REQUEST", "validation_failed");
    assert_eq!(r.issue_paths(), ["name"]);
    assert_eq!(app.count("users"), 0);
}

#[tokio::test]
async fn a_post_without_a_json_content_type_is_a_415() {
    let app = TestApp::new();
    app.owner().await;

    let missing = app
        .send(app.request(Method::POST, SIGN_IN).body(SIGN_IN_JSON))
        .await;
    let text = app
        .send(
            app.request(Method::POST, SIGN_IN)
                .content_type("text/plain")
                .body(SIGN_IN_JSON),
        )
        .await;
    let form = app
        .send(
            app.request(Method::POST, SIGN_IN)
                .form(&[("email", OWNER_EMAIL), ("password", PASSWORD)]),
        )
        .await;

    for r in [&missing, &text, &form] {
        assert_error_shape(r, 415, "UNSUPPORTED_MEDIA_TYPE", "unsupported_media_type");
        assert!(r.set_cookie.is_empty());
    }
    assert_eq!(app.count("sessions"), 1);
}

#[tokio::test]
async fn a_json_content_type_with_a_charset_is_accepted() {
    let app = TestApp::new();
    app.owner().await;

    let r = app
        .send(
            app.request(Method::POST, SIGN_IN)
                .content_type("application/json; charset=utf-8")
                .body(SIGN_IN_JSON),
        )
        .await;

    r.assert_ok();
    assert_eq!(app.count("sessions"), 2);
}

const MIB: usize = 1024 * 1024;

/// A sign-in body of exactly `len` bytes (JSON padded with spaces).
fn padded_sign_in(len: usize) -> Vec<u8> {
    let mut body = br#"{"email": "owner@example.com", "password": "wrong password"}"#.to_vec();
    body.resize(len, b' ');
    body
}

#[tokio::test]
async fn a_body_over_one_mib_with_a_content_length_is_a_413() {
    let app = TestApp::new();
    app.owner().await;
    let body = padded_sign_in(MIB + 1);

    let r = app
        .send(sign_in_raw(&app, body.clone()).header("content-length", body.len().to_string()))
        .await;

    assert_error_shape(&r, 413, "PAYLOAD_TOO_LARGE", "payload_too_large");
    assert_eq!(app.count("sessions"), 1);
}

#[tokio::test]
async fn a_streamed_body_over_one_mib_without_a_content_length_is_a_413() {
    let app = TestApp::new();
    app.owner().await;
    let body = padded_sign_in(2 * MIB);

    let r = app
        .send(sign_in_raw(
            &app,
            Body::from_async_read(std::io::Cursor::new(body)),
        ))
        .await;

    assert_error_shape(&r, 413, "PAYLOAD_TOO_LARGE", "payload_too_large");
    assert_eq!(app.count("sessions"), 1);
}

#[tokio::test]
async fn a_huge_declared_content_length_is_refused_before_reading() {
    let app = TestApp::new();
    app.owner().await;

    let r = app
        .send(sign_in_raw(&app, SIGN_IN_JSON).header("content-length", "10000000000"))
        .await;

    assert_error_shape(&r, 413, "PAYLOAD_TOO_LARGE", "payload_too_large");
    assert_eq!(app.count("sessions"), 1);
}

#[tokio::test]
async fn a_body_of_exactly_one_mib_is_read_by_an_operation_that_needs_a_credential() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, _) = app.create_key(&owner, json!({})).await;
    let padded = |name: &str| {
        let mut body = format!(r#"{{"name": "{name}"}}"#).into_bytes();
        body.resize(MIB, b' ');
        body
    };

    let r = app
        .send(
            app.request(Method::POST, "/api/project.create")
                .header("x-api-key", key.as_str())
                .content_type("application/json")
                .body(padded("whole")),
        )
        .await;
    let streamed = app
        .send(
            app.request(Method::POST, "/api/project.create")
                .header("x-api-key", key.as_str())
                .content_type("application/json")
                .body(Body::from_async_read(std::io::Cursor::new(padded(
                    "streamed",
                )))),
        )
        .await;

    assert_eq!(r.assert_ok()["project"]["name"], "whole");
    assert_eq!(streamed.assert_ok()["project"]["name"], "streamed");
    assert_eq!(app.count("projects"), 2);
}

#[tokio::test]
async fn sign_in_takes_bodies_up_to_sixteen_kib() {
    let app = TestApp::new();
    app.owner().await;

    let fits = app.send(sign_in_raw(&app, padded_sign_in(16 * 1024))).await;
    let over = app
        .send(sign_in_raw(&app, padded_sign_in(16 * 1024 + 1)))
        .await;
    let streamed = app
        .send(sign_in_raw(
            &app,
            Body::from_async_read(std::io::Cursor::new(padded_sign_in(16 * 1024 + 1))),
        ))
        .await;

    // It reached sign-in: a wrong password, not a 413.
    fits.assert_error(401, "invalid_credentials");
    assert_error_shape(&over, 413, "PAYLOAD_TOO_LARGE", "payload_too_large");
    assert_error_shape(&streamed, 413, "PAYLOAD_TOO_LARGE", "payload_too_large");
    assert_eq!(over.header("connection"), Some("close"));
    assert_eq!(app.count("sessions"), 1);
}

#[tokio::test]
async fn the_body_limit_is_configurable() {
    let app = TestApp::with_config(|c| c.max_body_bytes = 100);
    app.owner().await;

    let r = app.send(sign_in_raw(&app, padded_sign_in(101))).await;
    let fits = app.send(sign_in_raw(&app, padded_sign_in(100))).await;

    assert_error_shape(&r, 413, "PAYLOAD_TOO_LARGE", "payload_too_large");
    fits.assert_error(401, "invalid_credentials");
    assert_eq!(app.count("sessions"), 1);
}

// ---------------------------------------------------------------- odd strings

#[tokio::test]
async fn a_hundred_thousand_character_name_is_a_validation_error() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;

    let long = app
        .post(
            "/api/project.create",
            json!({"name": "n".repeat(100_000)}),
            &owner,
        )
        .await;
    let sign_up = app
        .sign_up(
            json!({"name": "n".repeat(5_000), "email": "ada@example.com", "password": PASSWORD}),
        )
        .await;

    assert_error_shape(&long, 400, "BAD_REQUEST", "validation_failed");
    assert_eq!(long.body["issues"][0]["path"], "name");
    assert_error_shape(&sign_up, 400, "BAD_REQUEST", "validation_failed");
    assert_eq!(sign_up.body["issues"][0]["path"], "name");
    assert_eq!(app.count("projects"), 0);
    assert_eq!(app.count("users"), 1);
}

#[tokio::test]
async fn nul_bytes_in_name_or_email_are_validation_errors() {
    let app = TestApp::new();

    let name = app
        .sign_up(json!({"name": "Ada\u{0}", "email": "ada@example.com", "password": PASSWORD}))
        .await;
    let email = app
        .sign_up(json!({"name": "Ada", "email": "ada\u{0}@example.com", "password": PASSWORD}))
        .await;

    assert_error_shape(&name, 400, "BAD_REQUEST", "validation_failed");
    assert_eq!(name.body["issues"][0]["path"], "name");
    assert_error_shape(&email, 400, "BAD_REQUEST", "validation_failed");
    assert_eq!(email.body["issues"][0]["path"], "email");
    assert_eq!(app.count("users"), 0);
}

#[tokio::test]
async fn a_password_with_a_nul_byte_is_kept_whole() {
    let app = TestApp::new();
    let password = "before\u{0}after-the-nul";

    let r = app
        .sign_up(json!({"name": "Ada", "email": "ada@example.com", "password": password}))
        .await;

    r.assert_ok();
    app.sign_in("ada@example.com", password).await;
    // Nothing is cut at the NUL.
    app.try_sign_in("ada@example.com", "before\u{0}")
        .await
        .assert_error(401, "invalid_credentials");
    assert_eq!(app.count("sessions"), 2);
}

#[tokio::test]
async fn emoji_and_other_scripts_in_a_name_are_kept_as_they_are() {
    let app = TestApp::new();
    let name = "Ada 🦀👩‍💻 Ляпунов 李";

    let r = app
        .sign_up(json!({"name": name, "email": "ada@example.com", "password": "🔑🔑🔑🔑🔑🔑🔑🔑"}))
        .await;

    assert_eq!(r.assert_ok()["user"]["name"], name);
    assert_eq!(app.scalar("SELECT name FROM users", &[]), name);
    let who = app.sign_in("ada@example.com", "🔑🔑🔑🔑🔑🔑🔑🔑").await;
    assert_eq!(
        app.get(GET_SESSION, &[], &who).await.assert_ok()["user"]["name"],
        name
    );
}

#[tokio::test]
async fn huge_sign_in_fields_never_give_500() {
    let app = TestApp::new();
    app.owner().await;

    // Long, but within the 16 KiB that sign-in reads.
    let long_email = app.try_sign_in(&"e".repeat(5_000), PASSWORD).await;
    let long_password = app.try_sign_in(OWNER_EMAIL, &"p".repeat(5_000)).await;

    assert_error_shape(&long_email, 400, "BAD_REQUEST", "validation_failed");
    assert_eq!(long_email.body["issues"][0]["path"], "email");
    assert_error_shape(&long_password, 400, "BAD_REQUEST", "validation_failed");
    assert_eq!(long_password.body["issues"][0]["path"], "password");
    assert_eq!(app.count("sessions"), 1);
}

// ---------------------------------------------------------------- nothing gives 500

fn garbage_bodies() -> Vec<Vec<u8>> {
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let mut out: Vec<Vec<u8>> = [
        "",
        " ",
        "null",
        "true",
        "0",
        "-1e999999",
        "\"str\"",
        "[]",
        "{}",
        "{\"email\":null,\"password\":null}",
        "{\"name\":\"\",\"email\":\"\",\"password\":\"\"}",
        "{\"email\":\"owner@example.com\",\"password\":\"correct horse battery\",\"email\":1}",
        "{\"name\":\"x\",\"email\":\"a@b.c\",\"password\":\"12345678\",\"invitationToken\":{}}",
        "{\"email\":\"\\u0000\",\"password\":\"\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000\"}",
        "{\"email\":\"\\ud83d\",\"password\":\"x\"}",
        "{\"email\":\"a@b.c\",\"password\":\"x\"}garbage",
        "{\"a\":",
        "\u{feff}{}",
        "<xml/>",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    out.push(deep.into_bytes());
    out.push(vec![0xff, 0xfe, 0x00, 0x7b, 0x7d]);
    out.push(vec![0u8; 64]);
    out.push(format!("{{\"email\":\"{}\"}}", "é".repeat(50_000)).into_bytes());
    out
}

/// Every documented route plus a few that do not exist.
fn every_path() -> Vec<String> {
    let spec: Value = serde_json::from_str(&keygate::api::spec_json()).unwrap();
    let mut paths: Vec<String> = spec["paths"].as_object().unwrap().keys().cloned().collect();
    assert!(paths.len() >= 5, "{paths:?}");
    paths.extend(
        [
            "/",
            "/swagger",
            "/openapi.json",
            "/openapi.yaml",
            "/api",
            "/api/",
            "/api/auth",
            "/api/does-not-exist",
            "/api/health/",
            "/api/auth/sign-in/email/",
            "/api/%00",
            "/api/%ff%fe",
        ]
        .map(String::from),
    );
    paths
}

#[track_caller]
fn assert_not_a_500(r: &Reply, what: &str) {
    assert!(r.status < 500, "{what}: {} {}", r.status, r.body);
    if r.status >= 400 && !what.starts_with("HEAD") {
        r.assert_json();
        assert!(
            r.body["code"].is_string() && r.body["reason"].is_string(),
            "{what}: error without the shape: {}",
            r.body
        );
    }
}

#[tokio::test]
async fn no_garbage_body_on_any_route_gives_500() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let methods = [Method::POST, Method::PUT, Method::DELETE, Method::PATCH];
    let content_types = [
        Some("application/json"),
        None,
        Some("text/plain"),
        Some("application/json; charset=utf-16"),
        Some("multipart/form-data; boundary=x"),
    ];
    let mut sent = 0;
    for path in every_path() {
        for method in &methods {
            for body in garbage_bodies() {
                for ct in content_types {
                    let mut req = app.request(method.clone(), &path);
                    if let Some(ct) = ct {
                        req = req.content_type(ct);
                    }
                    let r = app.send(req.body(body.clone())).await;
                    let shown = String::from_utf8_lossy(&body[..body.len().min(60)]).into_owned();
                    assert_not_a_500(&r, &format!("{method} {path} {ct:?} {shown:?}"));
                    sent += 1;
                }
            }
        }
    }
    assert!(sent > 1000, "only {sent} requests sent");
    // The owner's session survived the barrage (no unauthenticated sign-out).
    assert_eq!(
        app.get(GET_SESSION, &[], &owner).await.assert_ok()["user"]["email"],
        OWNER_EMAIL
    );
    assert_eq!(app.count("users"), 1);
}

#[tokio::test]
async fn no_garbage_credential_on_any_route_gives_500() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let long = "a".repeat(8_000);
    let valid_cookie = cookie(owner.token());
    let header_sets: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![("cookie", "keygate.session_token=")],
        vec![("cookie", "keygate.session_token=\"\"")],
        vec![("cookie", "keygate.session_token=%00%ff")],
        vec![("cookie", "keygate.session_token")],
        vec![("cookie", ";;;=;=")],
        vec![("cookie", &long)],
        vec![("cookie", "keygate.session_token=a; keygate.session_token=b")],
        vec![("cookie", &valid_cookie), ("origin", "http://evil.example")],
        vec![("cookie", &valid_cookie), ("referer", "::not a url::")],
        vec![("cookie", &valid_cookie), ("origin", "")],
        vec![("x-api-key", "")],
        vec![("x-api-key", "kg_")],
        vec![("x-api-key", &long)],
        vec![(
            "X-API-KEY",
            "kg_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        )],
        vec![("origin", "null"), ("referer", "")],
        vec![("x-forwarded-for", "not an address, , ,")],
        vec![("content-length", "abc")],
    ];
    let mut sent = 0;
    for path in every_path() {
        for method in [Method::GET, Method::POST, Method::HEAD, Method::OPTIONS] {
            for headers in &header_sets {
                let mut req = app.request(method.clone(), &path);
                for (k, v) in headers {
                    req = req.header(*k, *v);
                }
                if method == Method::POST {
                    req = req.body_json(&json!({"email": OWNER_EMAIL, "password": "wrong"}));
                }
                let r = app.send(req).await;
                assert_not_a_500(&r, &format!("{method} {path} {headers:?}"));
                sent += 1;
            }
        }
    }
    assert!(sent > 500, "only {sent} requests sent");
    assert_eq!(
        app.count("sessions"),
        1,
        "no garbage signed anyone in or out"
    );
    assert_eq!(app.count("users"), 1);
}

// ---------------------------------------------------------------- a full disk

#[tokio::test]
async fn a_full_disk_answers_507_storage_full_keeps_reads_and_recovers_when_space_returns() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let before = app
        .post("/api/project.create", json!({"name": "Before"}), &owner)
        .await;
    before.assert_ok();
    // Bigger than a page, so it needs new ones.
    let big = json!({"name": "Big", "description": "d".repeat(10_000)});
    let bigs = || app.count_where("SELECT count(*) FROM projects WHERE name = 'Big'", &[]);
    app.set_storage_full(true);

    let r = app.post("/api/project.create", big.clone(), &owner).await;

    assert_eq!(r.status, 507, "{}", r.body);
    assert_error_shape(&r, 507, "INSUFFICIENT_STORAGE", "storage_full");
    assert_eq!(bigs(), 0);
    assert_eq!(app.count("projects"), 1);
    let all = app.get("/api/project.all", &[], &owner).await;
    assert_eq!(all.assert_ok().as_array().unwrap().len(), 1, "{}", all.body);
    app.get(USER_GET, &[], &owner).await.assert_ok();

    app.set_storage_full(false);

    app.post("/api/project.create", big, &owner)
        .await
        .assert_ok();
    assert_eq!(bigs(), 1);
}

/// Every field the spec's `ErrorBody` lists as required is present in every error,
/// `issues` included when there are no field problems (an unknown path, wrong
/// credentials, a body missing its fields, a sign-up without an invitation).
#[tokio::test]
async fn every_error_body_has_every_field_the_spec_requires() {
    let app = TestApp::new();
    app.owner().await;
    let spec: Value = serde_json::from_str(&keygate::api::spec_json()).unwrap();
    let required: Vec<String> = spec["components"]["schemas"]["ErrorBody"]["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();

    let errors = [
        app.get("/api/does-not-exist", &[], &As::Nobody).await,
        app.try_sign_in(OWNER_EMAIL, "wrong password").await,
        app.send(app.request(Method::POST, SIGN_IN).body("{}"))
            .await,
        app.sign_up(json!({"name": "Eve", "email": "eve@example.com", "password": PASSWORD}))
            .await,
    ];

    for r in &errors {
        assert!(r.status >= 400, "{}", r.body);
        for field in &required {
            assert!(
                r.body.get(field).is_some(),
                "a {} error lacks the required `{field}`: {}",
                r.status,
                r.body
            );
        }
    }
    assert_eq!(app.count("sessions"), 1);
}
