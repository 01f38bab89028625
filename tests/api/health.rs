//! `GET /api/health`.

use poem::http::Method;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn health_answers_ok_without_credentials() {
    let app = TestApp::new();

    let r = app.get(HEALTH, &[], &As::Nobody).await;

    assert_eq!(
        r.assert_ok(),
        &json!({"status": "ok", "database": "ok", "version": env!("CARGO_PKG_VERSION")})
    );
    r.assert_json();
    assert!(r.set_cookie.is_empty());
    assert_eq!(app.count("users"), 0, "health writes nothing");
}

#[tokio::test]
async fn health_ignores_credentials_it_does_not_need() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;

    let with_cookie = app.get(HEALTH, &[], &owner).await;
    let with_bad_key = app.get(HEALTH, &[], &As::Key("kg_nonsense".into())).await;
    let with_bad_cookie = app
        .send(
            app.request(Method::GET, HEALTH)
                .header("cookie", cookie("not-a-token")),
        )
        .await;

    for r in [&with_cookie, &with_bad_key, &with_bad_cookie] {
        assert_eq!(r.assert_ok()["status"], "ok");
        assert!(r.set_cookie.is_empty(), "{:?}", r.set_cookie);
    }
    assert_eq!(app.count("sessions"), 1);
}

#[tokio::test]
async fn health_is_503_with_the_reason_once_the_database_file_was_replaced() {
    let app = TestApp::new();
    let path = app.state.db.path().to_owned();
    let aside = path.with_extension("aside");
    std::fs::rename(&path, &aside).unwrap();
    std::fs::copy(&aside, &path).unwrap();

    // What the server's watcher does every few seconds.
    app.state.db.check_file();
    let r = app.get(HEALTH, &[], &As::Nobody).await;

    assert_eq!(r.status, 503);
    assert_eq!(
        r.body,
        json!({
            "status": "unavailable",
            "database": "unavailable",
            "version": env!("CARGO_PKG_VERSION"),
            "reason": "database_file_replaced",
        })
    );
    r.assert_json();
}
