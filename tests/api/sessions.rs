//! Sessions with a manual clock: the token at rest, `get-session`, extension after the
//! update age, expiry, and both numbers configurable.

use keygate::clock::{DAY, HOUR, MINUTE};
use poem::http::Method;
use serde_json::{Value, json};

use crate::helpers::*;

fn session_row(app: &TestApp, column: &str) -> Value {
    app.scalar(&format!("SELECT {column} FROM sessions"), &[])
}

// ---------------------------------------------------------------- get-session

#[tokio::test]
async fn get_session_returns_the_session_and_its_user() {
    let app = TestApp::new();
    let (owner, signed_up) = app.owner().await;

    let r = app.get(GET_SESSION, &[], &owner).await;

    let body = r.assert_ok();
    let mut keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["session", "user"]);
    assert_eq!(body["user"], signed_up["user"]);
    assert_public_user(&body["user"]);
    let session = &body["session"];
    assert_eq!(session["id"], session_row(&app, "id"));
    assert_eq!(session["userId"], signed_up["user"]["id"]);
    assert_eq!(
        session["activeOrganizationId"],
        app.scalar("SELECT id FROM organizations", &[])
    );
    assert_eq!(session["expiresAt"], "2026-11-30T00:00:00.000Z");
    assert_eq!(session["createdAt"], "2026-11-27T00:00:00.000Z");
    assert_eq!(session["updatedAt"], "2026-11-27T00:00:00.000Z");
    assert!(
        !body.to_string().contains(owner.token()),
        "the token is echoed: {body}"
    );
    assert!(r.set_cookie.is_empty(), "{:?}", r.set_cookie);
}

#[tokio::test]
async fn get_session_without_a_cookie_is_null() {
    let app = TestApp::new();
    app.owner().await;

    let r = app.get(GET_SESSION, &[], &As::Nobody).await;

    assert_eq!(r.assert_ok(), &Value::Null);
    r.assert_json();
    assert!(r.set_cookie.is_empty(), "{:?}", r.set_cookie);
    assert_eq!(app.count("sessions"), 1);
}

#[tokio::test]
async fn get_session_with_a_bad_cookie_is_null_and_clears_it() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let mut unknown = owner.token().to_owned();
    // Same shape, different token.
    let last = if unknown.ends_with('a') { "b" } else { "a" };
    unknown.replace_range(42.., last);

    for bad in [
        "garbage".to_owned(),
        "x".repeat(43),
        unknown,
        owner.token()[..42].to_owned(),
        format!("{}0", owner.token()),
    ] {
        let r = app.get(GET_SESSION, &[], &As::Cookie(bad.clone())).await;

        assert_eq!(r.assert_ok(), &Value::Null, "for {bad:?}");
        assert_clears_session_cookie(&r.set_cookie);
    }
    assert_eq!(app.count("sessions"), 1);
}

#[tokio::test]
async fn get_session_ignores_other_cookies() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;

    let r = app
        .send(app.request(Method::GET, GET_SESSION).header(
            "cookie",
            format!("theme=dark; {}; lang=en", cookie(owner.token())),
        ))
        .await;

    assert_eq!(r.assert_ok()["user"]["email"], OWNER_EMAIL);
    let other = app
        .send(
            app.request(Method::GET, GET_SESSION)
                .header("cookie", "theme=dark"),
        )
        .await;
    assert_eq!(other.assert_ok(), &Value::Null);
    assert!(other.set_cookie.is_empty());
}

// ---------------------------------------------------------------- the token at rest

#[tokio::test]
async fn the_session_token_is_stored_only_as_its_sha256() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;

    let stored = app.column_bytes("SELECT token_hash FROM sessions", &[]);

    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].len(), 32);
    assert_eq!(
        app.scalar("SELECT typeof(token_hash) FROM sessions", &[]),
        "blob"
    );
    assert_ne!(stored[0], owner.token().as_bytes());
    assert_eq!(stored[0], sha256(owner.token().as_bytes()));
}

#[tokio::test]
async fn the_session_token_appears_nowhere_in_the_database() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let signed_in = app.sign_in(OWNER_EMAIL, PASSWORD).await;
    app.clock.advance(DAY + MINUTE); // an extension writes the row again
    app.get(GET_SESSION, &[], &owner).await.assert_ok();

    let tables = app.column_bytes(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        &[],
    );
    let mut checked_columns = 0;
    for table in tables {
        let table = String::from_utf8(table).unwrap();
        let columns = app.column_bytes("SELECT name FROM pragma_table_info(?1)", &[&table]);
        for column in columns {
            let column = String::from_utf8(column).unwrap();
            for value in app.column_bytes(&format!("SELECT \"{column}\" FROM \"{table}\""), &[]) {
                for token in [owner.token(), signed_in.token()] {
                    assert!(
                        !value.windows(token.len()).any(|w| w == token.as_bytes()),
                        "{table}.{column} holds a session token"
                    );
                }
            }
            checked_columns += 1;
        }
    }
    assert!(
        checked_columns > 20,
        "only {checked_columns} columns checked"
    );
    // Nor in the raw file and its write-ahead log.
    let raw = app.database_files();
    for token in [owner.token(), signed_in.token()] {
        assert!(
            !raw.windows(token.len()).any(|w| w == token.as_bytes()),
            "the database file holds a session token"
        );
    }
    assert_eq!(app.count("sessions"), 2);
}

// ---------------------------------------------------------------- extension

#[tokio::test]
async fn a_request_within_a_day_of_sign_in_does_not_extend_the_session() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    app.clock.advance(23 * HOUR + 59 * MINUTE);

    let r = app.get(GET_SESSION, &[], &owner).await;

    assert_eq!(
        r.assert_ok()["session"]["expiresAt"],
        "2026-11-30T00:00:00.000Z"
    );
    assert_eq!(r.body["session"]["updatedAt"], "2026-11-27T00:00:00.000Z");
    assert!(r.set_cookie.is_empty(), "{:?}", r.set_cookie);
    assert_eq!(session_row(&app, "expires_at"), T0 + 3 * DAY);
    assert_eq!(session_row(&app, "updated_at"), T0);
}

#[tokio::test]
async fn a_request_exactly_a_day_after_sign_in_does_not_extend_the_session() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    app.clock.advance(DAY);

    let r = app.get(GET_SESSION, &[], &owner).await;

    assert_eq!(
        r.assert_ok()["session"]["expiresAt"],
        "2026-11-30T00:00:00.000Z"
    );
    assert!(r.set_cookie.is_empty(), "{:?}", r.set_cookie);
    assert_eq!(session_row(&app, "expires_at"), T0 + 3 * DAY);
}

#[tokio::test]
async fn a_request_more_than_a_day_after_sign_in_extends_the_session_and_reissues_the_cookie() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    app.clock.advance(DAY + MINUTE);

    let r = app.get(GET_SESSION, &[], &owner).await;

    let session = &r.assert_ok()["session"];
    assert_eq!(session["expiresAt"], "2026-12-01T00:01:00.000Z");
    assert_eq!(session["updatedAt"], "2026-11-28T00:01:00.000Z");
    assert_eq!(session["createdAt"], "2026-11-27T00:00:00.000Z");
    assert_eq!(r.set_cookie.len(), 1, "{:?}", r.set_cookie);
    let token = session_cookie_token(&r.set_cookie[0], THREE_DAYS_SECS);
    assert_eq!(token, owner.token(), "the same token is re-issued");
    let now = T0 + DAY + MINUTE;
    assert_eq!(session_row(&app, "expires_at"), now + 3 * DAY);
    assert_eq!(session_row(&app, "updated_at"), now);
    assert_eq!(session_row(&app, "created_at"), T0);
    assert_eq!(app.count("sessions"), 1);
}

#[tokio::test]
async fn a_session_is_extended_at_most_once_per_day() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    app.clock.advance(DAY + MINUTE);
    app.get(GET_SESSION, &[], &owner).await.assert_ok();

    app.clock.advance(MINUTE);
    let again = app.get(GET_SESSION, &[], &owner).await;
    app.clock.advance(23 * HOUR);
    let later = app.get(GET_SESSION, &[], &owner).await;

    for r in [&again, &later] {
        assert_eq!(
            r.assert_ok()["session"]["expiresAt"],
            "2026-12-01T00:01:00.000Z"
        );
        assert!(r.set_cookie.is_empty(), "{:?}", r.set_cookie);
    }
    assert_eq!(session_row(&app, "updated_at"), T0 + DAY + MINUTE);
}

#[tokio::test]
async fn an_extended_session_outlives_its_first_expiry() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    app.clock.advance(DAY + MINUTE);
    app.get(GET_SESSION, &[], &owner).await.assert_ok();

    // Past the original expiry (T0 + 3 days), within the extended one.
    app.clock.set(T0 + 3 * DAY + HOUR);
    let r = app.get(GET_SESSION, &[], &owner).await;

    assert_eq!(r.assert_ok()["user"]["email"], OWNER_EMAIL);
    assert_eq!(r.body["session"]["expiresAt"], "2026-12-03T01:00:00.000Z");
    assert_eq!(
        session_row(&app, "expires_at"),
        T0 + 3 * DAY + HOUR + 3 * DAY
    );
}

// ---------------------------------------------------------------- expiry

#[tokio::test]
async fn a_session_is_alive_until_the_last_millisecond_of_its_lifetime() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    app.clock.advance(3 * DAY - 1);

    let r = app.get(GET_SESSION, &[], &owner).await;

    assert_eq!(r.assert_ok()["user"]["email"], OWNER_EMAIL);
    assert_eq!(app.count("sessions"), 1);
}

#[tokio::test]
async fn an_unused_session_expires_three_days_after_sign_in() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    app.clock.advance(3 * DAY);

    let r = app.get(GET_SESSION, &[], &owner).await;

    assert_eq!(r.assert_ok(), &Value::Null);
    assert_clears_session_cookie(&r.set_cookie);
    assert_eq!(app.count("sessions"), 0, "the expired row is deleted");
}

#[tokio::test]
async fn a_session_expires_three_days_after_its_last_extension() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    app.clock.advance(DAY + MINUTE);
    app.get(GET_SESSION, &[], &owner).await.assert_ok();

    app.clock.advance(3 * DAY);
    let r = app.get(GET_SESSION, &[], &owner).await;

    assert_eq!(r.assert_ok(), &Value::Null);
    assert_clears_session_cookie(&r.set_cookie);
    assert_eq!(app.count("sessions"), 0);
}

#[tokio::test]
async fn an_expired_session_cannot_be_revived_by_signing_in_again() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    app.clock.advance(3 * DAY);
    app.get(GET_SESSION, &[], &owner).await.assert_ok();

    let fresh = app.sign_in(OWNER_EMAIL, PASSWORD).await;

    assert_ne!(fresh.token(), owner.token());
    let old = app.get(GET_SESSION, &[], &owner).await;
    assert_eq!(old.assert_ok(), &Value::Null);
    let new = app.get(GET_SESSION, &[], &fresh).await;
    assert_eq!(
        new.assert_ok()["session"]["expiresAt"],
        "2026-12-03T00:00:00.000Z"
    );
    assert_eq!(app.count("sessions"), 1);
}

#[tokio::test]
async fn expiry_deletes_only_the_expired_session() {
    let app = TestApp::new();
    let (old, _) = app.owner().await;
    app.clock.advance(2 * DAY);
    let young = app.sign_in(OWNER_EMAIL, PASSWORD).await;
    app.clock.advance(DAY);

    let r = app.get(GET_SESSION, &[], &old).await;

    assert_eq!(r.assert_ok(), &Value::Null);
    assert_eq!(app.count("sessions"), 1);
    let alive = app.get(GET_SESSION, &[], &young).await;
    assert_eq!(alive.assert_ok()["user"]["email"], OWNER_EMAIL);
}

#[tokio::test]
async fn purging_deletes_only_expired_sessions() {
    let app = TestApp::new();
    let (old, _) = app.owner().await;
    app.clock.advance(2 * DAY);
    let young = app.sign_in(OWNER_EMAIL, PASSWORD).await;
    app.clock.advance(DAY);

    let purged = keygate::domain::sessions::purge_expired(&app.state)
        .await
        .unwrap();

    assert_eq!(purged, 1);
    assert_eq!(app.count("sessions"), 1);
    assert_eq!(session_row(&app, "expires_at"), T0 + 5 * DAY);
    assert_eq!(
        app.get(GET_SESSION, &[], &old).await.assert_ok(),
        &Value::Null
    );
    let alive = app.get(GET_SESSION, &[], &young).await;
    assert_eq!(alive.assert_ok()["user"]["email"], OWNER_EMAIL);
}

// ---------------------------------------------------------------- configuration

#[tokio::test]
async fn session_lifetime_and_update_age_are_configurable() {
    let app = TestApp::with_config(|c| {
        c.session_ttl_ms = HOUR;
        c.session_update_age_ms = 10 * MINUTE;
    });
    let r = app
        .sign_up(json!({"name": "Ada", "email": "ada@example.com", "password": PASSWORD}))
        .await;
    assert_eq!(
        r.assert_ok()["session"]["expiresAt"],
        "2026-11-27T01:00:00.000Z"
    );
    let token = session_cookie_token(&r.set_cookie[0], 3600);
    let who = As::Cookie(token.clone());

    app.clock.advance(9 * MINUTE);
    let early = app.get(GET_SESSION, &[], &who).await;
    assert_eq!(
        early.assert_ok()["session"]["expiresAt"],
        "2026-11-27T01:00:00.000Z"
    );
    assert!(early.set_cookie.is_empty(), "{:?}", early.set_cookie);

    app.clock.advance(2 * MINUTE);
    let extended = app.get(GET_SESSION, &[], &who).await;
    assert_eq!(
        extended.assert_ok()["session"]["expiresAt"],
        "2026-11-27T01:11:00.000Z"
    );
    assert_eq!(session_cookie_token(&extended.set_cookie[0], 3600), token);
    assert_eq!(session_row(&app, "expires_at"), T0 + 11 * MINUTE + HOUR);

    app.clock.advance(HOUR);
    let expired = app.get(GET_SESSION, &[], &who).await;
    assert_eq!(expired.assert_ok(), &Value::Null);
    assert_clears_session_cookie(&expired.set_cookie);
    assert_eq!(app.count("sessions"), 0);
}

#[tokio::test]
async fn sign_in_uses_the_configured_session_lifetime() {
    let app = TestApp::with_config(|c| {
        c.session_ttl_ms = 2 * HOUR;
        c.session_update_age_ms = HOUR;
    });
    app.owner().await;
    app.clock.advance(MINUTE);

    let r = app.try_sign_in(OWNER_EMAIL, PASSWORD).await;

    assert_eq!(
        r.assert_ok()["session"]["expiresAt"],
        "2026-11-27T02:01:00.000Z"
    );
    session_cookie_token(&r.set_cookie[0], 7200);
    assert_eq!(
        app.scalar("SELECT max(expires_at) FROM sessions", &[]),
        T0 + MINUTE + 2 * HOUR
    );
}
