//! Swagger UI, the served spec, what the spec promises, and the committed copy.

use std::path::PathBuf;

use poem::http::Method;
use serde_json::Value;

use crate::helpers::*;

fn spec() -> Value {
    serde_json::from_str(&keygate::api::spec_json()).expect("the spec is JSON")
}

/// Every operation as (method, path, operation).
fn operations(spec: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            out.push((method.clone(), path.clone(), op.clone()));
        }
    }
    out
}

/// The URLs of external resources an HTML page loads: `src`/`href` attributes of
/// `<script>` and `<link>` tags, and CSS `@import`.
fn remote_assets(html: &str) -> Vec<String> {
    let lower = html.to_ascii_lowercase();
    let mut found = Vec::new();
    for tag in ["<script", "<link"] {
        let mut from = 0;
        while let Some(i) = lower[from..].find(tag) {
            let start = from + i;
            let end = lower[start..].find('>').map_or(lower.len(), |j| start + j);
            let tag_text = &lower[start..end];
            for attr in ["src=", "href="] {
                if let Some(a) = tag_text.find(attr) {
                    let value = tag_text[a + attr.len()..]
                        .trim_start_matches(['"', '\''])
                        .to_owned();
                    if value.starts_with("http://")
                        || value.starts_with("https://")
                        || value.starts_with("//")
                    {
                        found.push(tag_text.to_owned());
                    }
                }
            }
            from = end;
        }
    }
    for import in ["@import url(http", "@import \"http", "@import 'http"] {
        if lower.contains(import) {
            found.push(import.to_owned());
        }
    }
    found
}

#[tokio::test]
async fn swagger_ui_is_served_with_local_assets_only() {
    let app = TestApp::new();

    let mut served = 0;
    for path in ["/swagger", "/swagger/"] {
        let r = app.send(app.request(Method::GET, path)).await;
        if r.status != 200 {
            continue;
        }
        served += 1;
        let ct = r.header("content-type").unwrap_or_default();
        assert!(ct.starts_with("text/html"), "{path}: {ct}");
        let html = r.body.as_str().expect("an HTML body");
        assert!(html.contains("SwaggerUIBundle"), "{path} is not Swagger UI");
        assert!(html.contains("<script"), "{path} has no script to check");
        assert!(
            html.contains("/api/auth/sign-in/email"),
            "{path} does not embed the spec"
        );
        assert_eq!(remote_assets(html), Vec::<String>::new(), "{path}");
    }
    assert!(served > 0, "neither /swagger nor /swagger/ answered 200");
}

#[test]
fn the_asset_check_catches_a_cdn_script() {
    let page = r#"<html><head><link rel="stylesheet" href="https://unpkg.com/swagger-ui.css">
        <script src='//cdn.example/x.js'></script><script>let a = "<b>";</script></head></html>"#;
    assert_eq!(remote_assets(page).len(), 2);
    assert!(remote_assets("<script>const u = 'https://ok.example';</script>").is_empty());
}

#[tokio::test]
async fn openapi_json_is_served_and_matches_the_code() {
    let app = TestApp::new();

    let r = app.get("/openapi.json", &[], &As::Nobody).await;

    assert_eq!(r.status, 200);
    r.assert_json();
    assert_eq!(r.body, spec());
    assert!(r.body["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(r.body["info"]["title"], "keygate");
    assert_eq!(r.body["info"]["version"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn openapi_yaml_is_served() {
    let app = TestApp::new();

    let r = app.get("/openapi.yaml", &[], &As::Nobody).await;

    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap_or_default()
            .contains("yaml")
    );
    let text = r.body.as_str().expect("a text body");
    assert!(
        text.starts_with("openapi:"),
        "{}",
        &text[..80.min(text.len())]
    );
    assert!(text.contains("/api/auth/sign-in/email"));
    assert_eq!(
        text.trim(),
        keygate::api::openapi::yaml().trim(),
        "the served YAML differs from the code's"
    );
}

#[test]
fn every_operation_has_a_summary_an_id_and_a_tag() {
    let spec = spec();
    let ops = operations(&spec);
    assert!(ops.len() >= 5, "{} operations", ops.len());
    for (method, path, op) in ops {
        let summary = op["summary"].as_str().unwrap_or_default();
        let description = op["description"].as_str().unwrap_or_default();
        assert!(
            !summary.trim().is_empty() || !description.trim().is_empty(),
            "{method} {path} has neither summary nor description"
        );
        assert!(
            op["operationId"].is_string(),
            "{method} {path} has no operationId"
        );
        assert!(
            op["tags"].as_array().is_some_and(|t| !t.is_empty()),
            "{method} {path} has no tag"
        );
    }
}

#[test]
fn every_operation_documents_the_error_responses_it_can_give_and_no_other() {
    let spec = spec();
    for (method, path, op) in operations(&spec) {
        let responses = op["responses"].as_object().unwrap();
        let codes: Vec<&str> = responses.keys().map(String::as_str).collect();
        assert!(codes.contains(&"200"), "{method} {path}: {codes:?}");
        if path == HEALTH {
            // Health answers 200 or 503 with the same body; it has no input to refuse.
            assert_eq!(codes, ["200", "503"], "{method} {path}");
            continue;
        }
        // Every operation may fail inside or find the storage full.
        for status in ["500", "507"] {
            assert!(codes.contains(&status), "{method} {path}: {codes:?}");
        }
        // A GET has no body to refuse and writes nothing that can conflict.
        if method == "get" {
            for status in ["408", "409", "413", "415"] {
                assert!(!codes.contains(&status), "{method} {path}: {codes:?}");
            }
        }
        let input = op.get("requestBody").is_some()
            || op["parameters"].as_array().is_some_and(|p| !p.is_empty());
        assert_eq!(codes.contains(&"400"), input, "{method} {path}: {codes:?}");
        let guarded = op["security"]
            .as_array()
            .is_some_and(|s| !s.is_empty() && !s.iter().any(|r| r == &serde_json::json!({})));
        if guarded {
            for status in ["401", "429"] {
                assert!(codes.contains(&status), "{method} {path}: {codes:?}");
            }
        }
        for (status, r) in responses.iter().filter(|(s, _)| s.as_str() != "200") {
            assert!(
                r["description"]
                    .as_str()
                    .is_some_and(|d| !d.trim().is_empty()),
                "{method} {path} {status} has no description"
            );
            let schema = r["content"]
                .as_object()
                .and_then(|c| c.values().next())
                .map(|m| m["schema"]["$ref"].clone());
            assert_eq!(
                schema,
                Some(Value::from("#/components/schemas/ErrorBody")),
                "{method} {path} {status}"
            );
        }
        if let Some(throttled) = responses.get("429") {
            for h in [
                "Retry-After",
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
            ] {
                assert!(
                    throttled["headers"].get(h).is_some(),
                    "{method} {path}: 429 does not document {h}"
                );
            }
        }
    }
}

/// The operations that answer one page of a listing.
const LISTINGS: [&str; 7] = [
    "/api/organization.all",
    "/api/organization.allInvitations",
    "/api/user.all",
    "/api/user.listApiKeys",
    "/api/user.listSessions",
    // `project.search` and `application.search` page in their body (`items`, `total`).
    "/api/project.search",
    "/api/application.search",
];

#[test]
fn every_listing_documents_limit_offset_and_its_total_count_header() {
    let spec = spec();
    let mut with_header = Vec::new();
    for (method, path, op) in operations(&spec) {
        let ok = &op["responses"]["200"];
        if ok["headers"].get("X-Total-Count").is_some() {
            with_header.push(path.clone());
            let header = &ok["headers"]["X-Total-Count"];
            assert_eq!(header["required"], true, "{path}");
            assert_eq!(header["schema"]["type"], "integer", "{path}");
            assert_eq!(
                ok["content"]["application/json; charset=utf-8"]["schema"]["type"], "array",
                "{path}: the body stays an array"
            );
        }
        if !LISTINGS.contains(&path.as_str()) {
            continue;
        }
        assert_eq!(method, "get", "{path}");
        let params = op["parameters"].as_array().unwrap();
        let param = |name: &str| {
            params
                .iter()
                .find(|p| p["name"] == name)
                .unwrap_or_else(|| panic!("{path} has no {name}"))
        };
        let (limit, offset) = (param("limit"), param("offset"));
        for p in [limit, offset] {
            assert_eq!(p["in"], "query", "{path}");
            assert_eq!(p["required"], false, "{path}");
            assert_eq!(p["schema"]["type"], "integer", "{path}");
        }
        assert_eq!(limit["schema"]["minimum"], 1.0, "{path}");
        assert_eq!(limit["schema"]["maximum"], 100.0, "{path}");
        assert_eq!(offset["schema"]["minimum"], 0.0, "{path}");
    }
    with_header.sort();
    assert_eq!(
        with_header,
        LISTINGS[..5],
        "the operations with X-Total-Count"
    );
}

#[test]
fn user_get_counts_its_keys_and_user_list_api_keys_is_guarded_like_it() {
    let spec = spec();
    let me = &spec["components"]["schemas"]["Me"];
    assert_eq!(me["properties"]["apiKeysTotal"]["type"], "integer");
    assert!(
        me["required"]
            .as_array()
            .unwrap()
            .contains(&Value::from("apiKeysTotal"))
    );
    let get = &spec["paths"]["/api/user.get"]["get"];
    let list = &spec["paths"]["/api/user.listApiKeys"]["get"];
    assert_eq!(list["operationId"], "user.listApiKeys");
    assert_eq!(list["security"], get["security"]);
    assert!(list["security"].as_array().is_some_and(|s| !s.is_empty()));
    assert_eq!(
        list["responses"]["200"]["content"]["application/json; charset=utf-8"]["schema"]["items"],
        me["properties"]["apiKeys"]["items"],
        "the same view of a key"
    );
}

#[test]
fn the_error_body_schema_has_the_documented_shape() {
    let spec = spec();
    let schemas = &spec["components"]["schemas"];
    let body = &schemas["ErrorBody"];
    let required: Vec<&str> = body["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for field in ["message", "code", "reason"] {
        assert!(
            required.contains(&field),
            "{field} is not required: {required:?}"
        );
    }
    assert!(body["properties"]["issues"].is_object());
    let code_ref = body["properties"]["code"]["$ref"]
        .as_str()
        .or_else(|| body["properties"]["code"]["allOf"][0]["$ref"].as_str())
        .expect("code refers to its enum");
    let name = code_ref.rsplit('/').next().unwrap();
    let codes: Vec<&str> = schemas[name]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for code in [
        "BAD_REQUEST",
        "UNAUTHORIZED",
        "FORBIDDEN",
        "NOT_FOUND",
        "CONFLICT",
        "PAYLOAD_TOO_LARGE",
        "UNSUPPORTED_MEDIA_TYPE",
        "TOO_MANY_REQUESTS",
        "INTERNAL_SERVER_ERROR",
        "INSUFFICIENT_STORAGE",
    ] {
        assert!(codes.contains(&code), "{code} missing from {codes:?}");
    }
}

#[test]
fn write_only_fields_never_appear_in_responses() {
    let spec = spec();
    let schemas = &spec["components"]["schemas"];
    for name in ["SignUpBody", "SignInBody"] {
        assert_eq!(
            schemas[name]["properties"]["password"]["writeOnly"], true,
            "{name}.password"
        );
    }
    for field in ["token", "newPassword"] {
        assert_eq!(
            schemas["ResetPasswordBody"]["properties"][field]["writeOnly"], true,
            "ResetPasswordBody.{field}"
        );
    }
    let user = schemas["UserView"]["properties"].as_object().unwrap();
    let mut fields: Vec<&String> = user.keys().collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "createdAt",
            "email",
            "id",
            "name",
            "twoFactorEnabled",
            "updatedAt"
        ]
    );
}

/// The JSON pointer of the first place where `a` and `b` differ.
fn first_difference(a: &Value, b: &Value, at: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(va), Some(vb)) => first_difference(va, vb, &format!("{at}/{k}")),
                _ => Some(format!("{at}/{k}")),
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (va, vb))| first_difference(va, vb, &format!("{at}/{i}"))),
        _ => (a != b).then(|| at.to_owned()),
    }
}

#[test]
fn the_drift_message_points_at_the_first_difference() {
    let a = serde_json::json!({"paths": {"/x": {"get": {"summary": "a"}}}, "tags": [1, 2]});
    let mut b = a.clone();
    assert_eq!(first_difference(&a, &b, ""), None);
    b["paths"]["/x"]["get"]["summary"] = "b".into();
    assert_eq!(
        first_difference(&a, &b, "").as_deref(),
        Some("/paths//x/get/summary")
    );
}

fn committed(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("openapi")
        .join(name)
}

#[test]
fn the_committed_openapi_json_matches_the_code() {
    let path = committed("openapi.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; write it with `cargo run -- openapi > openapi/openapi.json`",
            path.display()
        )
    });
    let on_disk: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "{} is not JSON ({e}); regenerate it with `cargo run -- openapi > openapi/openapi.json`",
            path.display()
        )
    });
    let code = spec();
    assert!(
        on_disk == code,
        "openapi/openapi.json has drifted from the code (first difference at {}): regenerate \
         it with `cargo run -- openapi > openapi/openapi.json` (and `cargo run -- openapi \
         --yaml > openapi/openapi.yaml`) and commit the result",
        first_difference(&on_disk, &code, "").unwrap_or_default()
    );
}

#[test]
fn the_committed_openapi_yaml_matches_the_code() {
    let path = committed("openapi.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; write it with `cargo run -- openapi --yaml > openapi/openapi.yaml`",
            path.display()
        )
    });
    assert!(
        text.trim() == keygate::api::openapi::yaml().trim(),
        "openapi/openapi.yaml has drifted from the code: regenerate it with \
         `cargo run -- openapi --yaml > openapi/openapi.yaml` and commit the result"
    );
}

/// The spec declares the two ways a request authenticates as security schemes: the
/// `x-api-key` header and the session cookie.
#[test]
fn the_spec_declares_the_api_key_and_session_cookie_schemes() {
    let spec = spec();
    let schemes = &spec["components"]["securitySchemes"];

    assert_eq!(
        schemes["ApiKey"]["type"], "apiKey",
        "securitySchemes: {schemes}"
    );
    assert_eq!(schemes["ApiKey"]["in"], "header");
    assert_eq!(schemes["ApiKey"]["name"], "x-api-key");
    assert_eq!(schemes["SessionCookie"]["type"], "apiKey");
    assert_eq!(schemes["SessionCookie"]["in"], "cookie");
    assert_eq!(schemes["SessionCookie"]["name"], "keygate.session_token");
}

/// `GET /api/auth/get-session` answers `null` without a live session, and its 200
/// response schema allows that `null` (an `Option<T>` that serializes as `null` is
/// nullable in the schema), so a generated client accepts the documented answer.
#[tokio::test]
async fn the_get_session_schema_allows_the_null_it_returns() {
    let app = TestApp::new();
    let r = app.get(GET_SESSION, &[], &As::Nobody).await;
    assert_eq!(r.assert_ok(), &Value::Null);
    let spec = spec();

    let content = &spec["paths"][GET_SESSION]["get"]["responses"]["200"]["content"];
    let schema = &content
        .as_object()
        .and_then(|c| c.values().next())
        .expect("get-session documents a 200 body")["schema"];

    let nullable = schema["nullable"] == true
        || ["anyOf", "oneOf"].iter().any(|k| {
            schema[k].as_array().is_some_and(|alts| {
                alts.iter()
                    .any(|a| a["nullable"] == true || a["type"] == "null")
            })
        });
    assert!(
        nullable,
        "the 200 schema of get-session forbids null: {schema}"
    );
}
