//! Sign-up, sign-in and sign-out over HTTP, their origin checks and sign-in rate limits.

use std::net::SocketAddr;
use std::sync::Arc;

use keygate::api::error::ApiError;
use keygate::domain::accounts::{NewUser, create_user_blocking};
use keygate::error::Error;
use keygate::model::Role;
use poem::http::Method;
use serde_json::json;
use tokio::task::JoinSet;

use crate::helpers::*;

fn sign_up_body(email: &str, password: &str) -> serde_json::Value {
    json!({"name": "Ada", "email": email, "password": password})
}

// ---------------------------------------------------------------- sign-up

#[tokio::test]
async fn the_first_sign_up_creates_the_owner_their_organization_and_a_session() {
    let app = TestApp::new();

    let r = app
        .sign_up(json!({"name": "Ada Lovelace", "email": "ada@example.com", "password": PASSWORD}))
        .await;

    let body = r.assert_ok();
    let user_id = body["user"]["id"].as_str().unwrap();
    assert_eq!(app.count("users"), 1);
    assert_eq!(
        app.scalar("SELECT name FROM users WHERE id = ?1", &[&user_id]),
        "Ada Lovelace"
    );
    assert_eq!(app.count("organizations"), 1);
    let org_id = app.scalar(
        "SELECT id FROM organizations WHERE name = 'My Organization' AND owner_id = ?1",
        &[&user_id],
    );
    assert!(org_id.is_string(), "no organization owned by the new user");
    assert_eq!(app.count("members"), 1);
    assert_eq!(
        app.scalar(
            "SELECT role FROM members WHERE user_id = ?1 AND organization_id = ?2",
            &[&user_id, &org_id.as_str().unwrap()]
        ),
        "owner"
    );
    assert_eq!(app.count("sessions"), 1);
    assert_eq!(
        app.scalar(
            "SELECT active_organization_id FROM sessions WHERE user_id = ?1",
            &[&user_id]
        ),
        org_id
    );
    assert_eq!(body["session"]["activeOrganizationId"], org_id);
    assert_eq!(body["session"]["userId"], user_id);
}

#[tokio::test]
async fn sign_up_sets_an_http_only_session_cookie_for_three_days() {
    let app = TestApp::new();

    let r = app.sign_up(sign_up_body("ada@example.com", PASSWORD)).await;

    r.assert_ok();
    assert_eq!(r.set_cookie.len(), 1, "{:?}", r.set_cookie);
    let token = session_cookie_token(&r.set_cookie[0], THREE_DAYS_SECS);
    let s = app.get(GET_SESSION, &[], &As::Cookie(token)).await;
    assert_eq!(s.assert_ok()["user"]["email"], "ada@example.com");
}

#[tokio::test]
async fn sign_up_answers_with_the_user_and_a_session_that_expires_in_three_days() {
    let app = TestApp::new();

    let r = app
        .sign_up(json!({"name": "Ada", "email": "ada@example.com", "password": PASSWORD}))
        .await;

    let body = r.assert_ok();
    let user = &body["user"];
    assert_public_user(user);
    assert_eq!(user["name"], "Ada");
    assert_eq!(user["email"], "ada@example.com");
    assert_eq!(user["createdAt"], "2026-11-27T00:00:00.000Z");
    assert_eq!(user["updatedAt"], "2026-11-27T00:00:00.000Z");
    assert_eq!(user["id"].as_str().unwrap().len(), 21);
    let session = &body["session"];
    assert_eq!(session["expiresAt"], "2026-11-30T00:00:00.000Z");
    assert_eq!(session["createdAt"], "2026-11-27T00:00:00.000Z");
    assert_eq!(
        app.scalar("SELECT expires_at FROM sessions", &[]),
        T0 + 3 * 86_400_000
    );
}

#[tokio::test]
async fn sign_up_trims_and_lower_cases_the_email() {
    let app = TestApp::new();

    let r = app
        .sign_up(sign_up_body("  Ada.Lovelace@Example.COM \t", PASSWORD))
        .await;

    assert_eq!(r.assert_ok()["user"]["email"], "ada.lovelace@example.com");
    assert_eq!(
        app.scalar("SELECT email FROM users", &[]),
        "ada.lovelace@example.com"
    );
}

#[tokio::test]
async fn sign_up_stores_an_argon2id_hash_and_never_returns_it() {
    let app = TestApp::new();

    let r = app.sign_up(sign_up_body("ada@example.com", PASSWORD)).await;

    r.assert_ok();
    assert_public_user(&r.body["user"]);
    let text = r.body.to_string();
    assert!(!text.contains("password"), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");
    let hash = app.scalar("SELECT password_hash FROM users", &[]);
    assert!(
        hash.as_str().unwrap().starts_with("$argon2id$"),
        "stored: {hash}"
    );
}

#[tokio::test]
async fn a_second_sign_up_without_an_invitation_is_refused() {
    let app = TestApp::new();
    app.owner().await;

    let r = app.sign_up(sign_up_body("eve@example.com", PASSWORD)).await;

    r.assert_error(400, "signup_closed");
    assert_eq!(r.code(), "BAD_REQUEST");
    assert!(r.set_cookie.is_empty(), "{:?}", r.set_cookie);
    assert_eq!(app.count("users"), 1);
    assert_eq!(app.count("organizations"), 1);
    assert_eq!(app.count("sessions"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_simultaneous_first_sign_ups_cannot_both_win() {
    let app = TestApp::new();

    let (a, b) = tokio::join!(
        app.sign_up(sign_up_body("ada@example.com", PASSWORD)),
        app.sign_up(sign_up_body("bob@example.com", PASSWORD)),
    );

    let (won, lost) = if a.status == 200 { (a, b) } else { (b, a) };
    won.assert_ok();
    lost.assert_error(400, "signup_closed");
    assert!(lost.set_cookie.is_empty());
    assert_eq!(app.count("users"), 1);
    assert_eq!(app.count("organizations"), 1);
    assert_eq!(app.count("members"), 1);
    assert_eq!(app.count("sessions"), 1);
}

#[tokio::test]
async fn a_made_up_invitation_token_does_not_open_sign_up() {
    let app = TestApp::new();
    app.owner().await;

    let r = app
        .sign_up(json!({
            "name": "Eve", "email": "eve@example.com", "password": PASSWORD,
            "invitationToken": "made-up"
        }))
        .await;

    r.assert_error(404, "not_found");
    assert_eq!(app.count("users"), 1);
    assert_eq!(app.count("members"), 1);
}

#[tokio::test]
async fn a_second_sign_up_is_refused_even_when_the_first_user_came_from_the_shell() {
    let app = TestApp::new();
    app.create_user(OWNER_EMAIL, Role::Member);

    let r = app.sign_up(sign_up_body("eve@example.com", PASSWORD)).await;

    r.assert_error(400, "signup_closed");
    assert_eq!(app.count("users"), 1);
}

#[tokio::test]
async fn a_password_of_seven_characters_is_refused() {
    let app = TestApp::new();

    let r = app
        .sign_up(sign_up_body("ada@example.com", "1234567"))
        .await;

    r.assert_error(400, "validation_failed");
    assert_eq!(r.issue_paths(), ["password"]);
    assert!(r.body["issues"][0]["message"].is_string());
    assert_eq!(app.count("users"), 0);
    assert_eq!(app.count("sessions"), 0);
}

#[tokio::test]
async fn a_password_of_129_characters_is_refused() {
    let app = TestApp::new();

    let r = app
        .sign_up(sign_up_body("ada@example.com", &"p".repeat(129)))
        .await;

    r.assert_error(400, "validation_failed");
    assert_eq!(r.issue_paths(), ["password"]);
    assert_eq!(app.count("users"), 0);
}

#[tokio::test]
async fn a_password_of_128_characters_is_accepted_and_works_for_sign_in() {
    let app = TestApp::new();
    let long = "é".repeat(128); // counted in characters, not bytes

    let r = app.sign_up(sign_up_body("ada@example.com", &long)).await;

    r.assert_ok();
    assert_eq!(app.count("users"), 1);
    app.sign_in("ada@example.com", &long).await;
    assert_eq!(app.count("sessions"), 2);
}

#[tokio::test]
async fn emails_of_the_wrong_shape_are_refused() {
    let app = TestApp::new();
    let too_long = format!("{}@example.com", "a".repeat(250));
    for bad in [
        "",
        "   ",
        "ada",
        "ada@",
        "@example.com",
        "ada@@example.com",
        "a da@example.com",
        "ada@example..com",
        "ada@.example.com",
        "ada@example.com.",
        "ada@exa mple.com",
        "<ada>@example.com",
        too_long.as_str(),
    ] {
        let r = app.sign_up(sign_up_body(bad, PASSWORD)).await;

        r.assert_error(400, "validation_failed");
        assert_eq!(r.issue_paths(), ["email"], "for {bad:?}");
    }
    assert_eq!(app.count("users"), 0);
}

#[tokio::test]
async fn every_bad_field_is_listed_at_once() {
    let app = TestApp::new();

    let r = app
        .sign_up(json!({"name": "  ", "email": "not-an-email", "password": "short"}))
        .await;

    r.assert_error(400, "validation_failed");
    let mut paths = r.issue_paths();
    paths.sort();
    assert_eq!(paths, ["email", "name", "password"]);
    assert_eq!(app.count("users"), 0);
}

#[tokio::test]
async fn a_name_longer_than_255_characters_is_refused() {
    let app = TestApp::new();

    let r = app
        .sign_up(json!({"name": "n".repeat(256), "email": "ada@example.com", "password": PASSWORD}))
        .await;

    r.assert_error(400, "validation_failed");
    assert_eq!(r.issue_paths(), ["name"]);
    assert_eq!(app.count("users"), 0);
}

#[tokio::test]
async fn creating_a_user_with_a_taken_email_in_another_case_is_a_conflict() {
    // Over HTTP only the first sign-up can create a user, so a duplicate email cannot
    // reach sign-up yet; the shell path shares the same insert.
    let app = TestApp::new();
    app.owner().await;
    let again = NewUser::parse("Twin", "  OWNER@Example.com ", PASSWORD).unwrap();

    let err = create_user_blocking(&app.state, again, Role::Member, None, false).unwrap_err();

    assert!(
        matches!(
            err,
            Error::Conflict {
                reason: "email_taken",
                ..
            }
        ),
        "{err:?}"
    );
    let api = ApiError::from(err);
    assert_eq!(api.status().as_u16(), 409);
    assert_eq!(api.body.reason, "email_taken");
    assert_eq!(app.count("users"), 1);
    assert_eq!(app.count("members"), 1);
}

#[tokio::test]
async fn a_user_created_from_the_shell_joins_the_first_organization_and_can_sign_in() {
    let app = TestApp::new();
    app.owner().await;

    let user = app.create_user("member@example.com", Role::Member);

    assert_eq!(
        app.scalar(
            "SELECT role FROM members WHERE user_id = ?1",
            &[&user.id.as_str()]
        ),
        "member"
    );
    let who = app.sign_in("member@example.com", PASSWORD).await;
    let s = app.get(GET_SESSION, &[], &who).await;
    assert_eq!(
        s.assert_ok()["session"]["activeOrganizationId"],
        app.scalar("SELECT id FROM organizations", &[])
    );
}

// ---------------------------------------------------------------- sign-in

#[tokio::test]
async fn signing_in_sets_a_new_session_cookie_and_returns_the_user() {
    let app = TestApp::new();
    let (owner, signed_up) = app.owner().await;

    let r = app.try_sign_in(OWNER_EMAIL, PASSWORD).await;

    let body = r.assert_ok();
    assert_eq!(r.set_cookie.len(), 1, "{:?}", r.set_cookie);
    let token = session_cookie_token(&r.set_cookie[0], THREE_DAYS_SECS);
    assert_ne!(token, owner.token());
    assert_public_user(&body["user"]);
    assert_eq!(body["user"], signed_up["user"]);
    assert_eq!(
        body["session"]["activeOrganizationId"],
        signed_up["session"]["activeOrganizationId"]
    );
    assert_eq!(body["session"]["expiresAt"], "2026-11-30T00:00:00.000Z");
    assert_eq!(app.count("sessions"), 2);
    // Both sessions work.
    for t in [token, owner.token().to_owned()] {
        let s = app.get(GET_SESSION, &[], &As::Cookie(t)).await;
        assert_eq!(s.assert_ok()["user"]["email"], OWNER_EMAIL);
    }
}

#[tokio::test]
async fn sign_in_matches_the_email_ignoring_case_and_surrounding_spaces() {
    let app = TestApp::new();
    app.owner().await;

    let r = app.try_sign_in("  Owner@EXAMPLE.com\n", PASSWORD).await;

    assert_eq!(r.assert_ok()["user"]["email"], OWNER_EMAIL);
    assert!(r.session_token().is_some());
    assert_eq!(app.count("sessions"), 2);
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_identical_answers() {
    let app = TestApp::new();
    app.owner().await;

    let wrong_password = app.try_sign_in(OWNER_EMAIL, "not the password").await;
    let unknown_email = app.try_sign_in("nobody@example.com", PASSWORD).await;

    wrong_password.assert_error(401, "invalid_credentials");
    assert_eq!(wrong_password.code(), "UNAUTHORIZED");
    assert_eq!(wrong_password.body, unknown_email.body);
    assert_eq!(wrong_password.status, unknown_email.status);
    assert!(wrong_password.set_cookie.is_empty());
    assert!(unknown_email.set_cookie.is_empty());
    assert_eq!(app.count("sessions"), 1);
}

#[tokio::test]
async fn a_password_that_differs_only_in_case_is_wrong() {
    let app = TestApp::new();
    app.owner().await;

    let r = app.try_sign_in(OWNER_EMAIL, &PASSWORD.to_uppercase()).await;

    r.assert_error(401, "invalid_credentials");
    assert_eq!(app.count("sessions"), 1);
}

#[tokio::test]
async fn sign_in_with_empty_fields_lists_both_fields() {
    let app = TestApp::new();
    app.owner().await;

    let r = app.try_sign_in("  ", "").await;

    r.assert_error(400, "validation_failed");
    let mut paths = r.issue_paths();
    paths.sort();
    assert_eq!(paths, ["email", "password"]);
    assert_eq!(app.count("sessions"), 1);
}

#[tokio::test]
async fn sign_in_records_the_user_agent_of_the_new_session() {
    let app = TestApp::new();
    app.owner().await;

    let r = app
        .send(
            app.request(Method::POST, SIGN_IN)
                .header("user-agent", "curl/8.5.0")
                .body_json(&json!({"email": OWNER_EMAIL, "password": PASSWORD})),
        )
        .await;

    assert_eq!(r.assert_ok()["session"]["userAgent"], "curl/8.5.0");
    assert_eq!(
        app.scalar(
            "SELECT user_agent FROM sessions WHERE id = ?1",
            &[&r.body["session"]["id"].as_str().unwrap()]
        ),
        "curl/8.5.0"
    );
}

// ---------------------------------------------------------------- sign-in limits

#[tokio::test]
async fn the_eleventh_failed_attempt_for_an_account_is_throttled() {
    let app = TestApp::new();
    app.owner().await;
    for i in 0..10 {
        let r = app.try_sign_in(OWNER_EMAIL, "wrong password").await;
        assert_eq!(r.status, 401, "attempt {}: {}", i + 1, r.body);
    }

    let r = app.try_sign_in(OWNER_EMAIL, "wrong password").await;

    r.assert_error(429, "too_many_attempts");
    assert_eq!(r.code(), "TOO_MANY_REQUESTS");
    // 10 attempts per 15 minutes: one comes back every 90 seconds.
    assert_eq!(r.header("retry-after"), Some("90"));
    assert_eq!(r.header("ratelimit-limit"), Some("10"));
    assert_eq!(r.header("ratelimit-remaining"), Some("0"));
    assert_eq!(r.header("ratelimit-reset"), Some("900"));
    assert_eq!(app.count("sessions"), 1);
}

#[tokio::test]
async fn the_right_password_is_refused_while_the_account_is_throttled() {
    let app = TestApp::new();
    app.owner().await;
    for _ in 0..10 {
        app.try_sign_in(OWNER_EMAIL, "wrong password").await;
    }

    let r = app.try_sign_in(OWNER_EMAIL, PASSWORD).await;

    r.assert_error(429, "too_many_attempts");
    assert!(r.header("retry-after").is_some());
    assert!(r.set_cookie.is_empty());
    assert_eq!(app.count("sessions"), 1);
}

#[tokio::test]
async fn a_throttled_account_can_sign_in_again_after_retry_after() {
    let app = TestApp::new();
    app.owner().await;
    for _ in 0..10 {
        app.try_sign_in(OWNER_EMAIL, "wrong password").await;
    }
    let refused = app.try_sign_in(OWNER_EMAIL, PASSWORD).await;
    refused.assert_error(429, "too_many_attempts");
    let wait: i64 = refused.header("retry-after").unwrap().parse().unwrap();

    app.clock.advance(wait * 1000 - 1);
    app.try_sign_in(OWNER_EMAIL, PASSWORD)
        .await
        .assert_error(429, "too_many_attempts");
    app.clock.advance(1);
    let r = app.try_sign_in(OWNER_EMAIL, PASSWORD).await;

    r.assert_ok();
    assert!(r.session_token().is_some());
    assert_eq!(app.count("sessions"), 2);
}

#[tokio::test]
async fn failed_attempts_count_against_the_account_whatever_the_case_of_its_email() {
    let app = TestApp::new();
    app.owner().await;
    for i in 0..10 {
        let email = if i % 2 == 0 {
            "OWNER@example.com"
        } else {
            " owner@EXAMPLE.COM "
        };
        app.try_sign_in(email, "wrong password")
            .await
            .assert_error(401, "invalid_credentials");
    }

    let r = app.try_sign_in(OWNER_EMAIL, PASSWORD).await;

    r.assert_error(429, "too_many_attempts");
    assert_eq!(app.count("sessions"), 1);
}

#[tokio::test]
async fn successful_sign_ins_do_not_spend_the_account_budget() {
    let app = TestApp::new();
    app.owner().await;

    for _ in 0..12 {
        app.try_sign_in(OWNER_EMAIL, PASSWORD).await.assert_ok();
    }

    assert_eq!(app.count("sessions"), 13);
}

#[tokio::test]
async fn a_throttled_account_does_not_throttle_another_account() {
    let app = TestApp::new();
    app.owner().await;
    app.create_user("member@example.com", Role::Member);
    for _ in 0..10 {
        app.try_sign_in(OWNER_EMAIL, "wrong password").await;
    }
    app.try_sign_in(OWNER_EMAIL, PASSWORD)
        .await
        .assert_error(429, "too_many_attempts");

    let r = app.try_sign_in("member@example.com", PASSWORD).await;

    r.assert_ok();
    assert_eq!(app.count("sessions"), 2);
}

fn forwarded_sign_in<'a>(app: &'a TestApp, address: &str, email: &str, password: &str) -> Req<'a> {
    app.request(Method::POST, SIGN_IN)
        .header("x-forwarded-for", address)
        .body_json(&json!({"email": email, "password": password}))
}

#[tokio::test]
async fn the_per_address_limit_applies_to_attempts_on_any_account() {
    let app = TestApp::with_config(|c| {
        c.trust_proxy = true;
        c.sign_in_per_address = 3;
    });
    app.owner().await;
    for email in ["a@example.com", "b@example.com", "c@example.com"] {
        app.send(forwarded_sign_in(&app, "203.0.113.7", email, PASSWORD))
            .await
            .assert_error(401, "invalid_credentials");
    }

    // The right password for a fresh account, from the same address.
    let r = app
        .send(forwarded_sign_in(
            &app,
            "203.0.113.7",
            OWNER_EMAIL,
            PASSWORD,
        ))
        .await;

    r.assert_error(429, "too_many_attempts");
    assert_eq!(r.header("ratelimit-limit"), Some("3"));
    assert_eq!(r.header("ratelimit-remaining"), Some("0"));
    // 3 per 15 minutes: one comes back every 5 minutes.
    assert_eq!(r.header("retry-after"), Some("300"));
    assert_eq!(app.count("sessions"), 1);
}

#[tokio::test]
async fn different_addresses_have_independent_sign_in_limits() {
    let app = TestApp::with_config(|c| {
        c.trust_proxy = true;
        c.sign_in_per_address = 3;
    });
    app.owner().await;
    for email in ["a@example.com", "b@example.com", "c@example.com"] {
        app.send(forwarded_sign_in(&app, "203.0.113.7", email, PASSWORD))
            .await;
    }
    app.send(forwarded_sign_in(
        &app,
        "203.0.113.7",
        OWNER_EMAIL,
        PASSWORD,
    ))
    .await
    .assert_error(429, "too_many_attempts");

    let r = app
        .send(forwarded_sign_in(
            &app,
            "198.51.100.20",
            OWNER_EMAIL,
            PASSWORD,
        ))
        .await;

    r.assert_ok();
    assert_eq!(r.body["session"]["ipAddress"], "198.51.100.20");
    assert_eq!(
        app.scalar(
            "SELECT ip_address FROM sessions WHERE id = ?1",
            &[&r.body["session"]["id"].as_str().unwrap()]
        ),
        "198.51.100.20"
    );
}

#[tokio::test]
async fn the_last_forwarded_address_is_the_client() {
    let app = TestApp::with_config(|c| {
        c.trust_proxy = true;
        c.sign_in_per_address = 2;
    });
    app.owner().await;
    // The trusted proxy appends the address it saw; what stands before it came from the
    // client, which can write anything there to dodge the limit.
    for forged in ["198.51.100.1", "198.51.100.2"] {
        let chain = format!("{forged}, 203.0.113.7");
        app.send(forwarded_sign_in(&app, &chain, "x@example.com", PASSWORD))
            .await
            .assert_error(401, "invalid_credentials");
    }

    let r = app
        .send(forwarded_sign_in(
            &app,
            "198.51.100.3,203.0.113.7",
            OWNER_EMAIL,
            PASSWORD,
        ))
        .await;

    r.assert_error(429, "too_many_attempts");
    assert_eq!(app.count("sessions"), 1);
}

#[tokio::test]
async fn the_per_address_limit_uses_the_socket_address_and_ignores_forwarded_for_by_default() {
    let app = TestApp::with_config(|c| c.sign_in_per_address = 3);
    app.owner().await;
    let client: SocketAddr = "192.0.2.10:50000".parse().unwrap();
    for (i, spoofed) in ["1.1.1.1", "2.2.2.2", "3.3.3.3"].into_iter().enumerate() {
        let r = app
            .send_from(
                client,
                Method::POST,
                SIGN_IN,
                &[("x-forwarded-for", spoofed)],
                json!({"email": format!("u{i}@example.com"), "password": PASSWORD}),
            )
            .await;
        r.assert_error(401, "invalid_credentials");
    }

    let r = app
        .send_from(
            client,
            Method::POST,
            SIGN_IN,
            &[("x-forwarded-for", "4.4.4.4")],
            json!({"email": OWNER_EMAIL, "password": PASSWORD}),
        )
        .await;

    r.assert_error(429, "too_many_attempts");
    assert_eq!(app.count("sessions"), 1);
    // Another socket address is not affected, and its session records that address.
    let other: SocketAddr = "192.0.2.11:50001".parse().unwrap();
    let ok = app
        .send_from(
            other,
            Method::POST,
            SIGN_IN,
            &[],
            json!({"email": OWNER_EMAIL, "password": PASSWORD}),
        )
        .await;
    assert_eq!(ok.assert_ok()["session"]["ipAddress"], "192.0.2.11");
    assert_eq!(app.count("sessions"), 2);
}

#[tokio::test]
async fn an_address_can_try_again_once_its_budget_refills() {
    let app = TestApp::with_config(|c| {
        c.trust_proxy = true;
        c.sign_in_per_address = 3;
    });
    app.owner().await;
    for email in ["a@example.com", "b@example.com", "c@example.com"] {
        app.send(forwarded_sign_in(&app, "203.0.113.7", email, PASSWORD))
            .await;
    }
    app.send(forwarded_sign_in(
        &app,
        "203.0.113.7",
        OWNER_EMAIL,
        PASSWORD,
    ))
    .await
    .assert_error(429, "too_many_attempts");

    app.clock.advance(5 * 60 * 1000);
    let r = app
        .send(forwarded_sign_in(
            &app,
            "203.0.113.7",
            OWNER_EMAIL,
            PASSWORD,
        ))
        .await;

    r.assert_ok();
    assert_eq!(app.count("sessions"), 2);
}

#[tokio::test]
async fn a_refused_sign_in_is_answered_after_a_delay_and_a_wrong_one_is_not() {
    let app = TestApp::with_config(|c| {
        c.sign_in_per_account = 1;
        c.sign_in_refusal_delay_ms = 300;
    });
    app.owner().await;

    let started = std::time::Instant::now();
    app.try_sign_in(OWNER_EMAIL, "wrong password")
        .await
        .assert_error(401, "invalid_credentials");
    let wrong = started.elapsed();
    let refused = app.try_sign_in(OWNER_EMAIL, PASSWORD).await;
    let both = started.elapsed();

    refused.assert_error(429, "too_many_attempts");
    assert!(wrong < std::time::Duration::from_millis(300), "{wrong:?}");
    assert!(
        both - wrong >= std::time::Duration::from_millis(300),
        "{:?}",
        both - wrong
    );
    assert_eq!(app.count("sessions"), 1);
}

#[tokio::test]
async fn fifteen_correct_sign_ins_at_once_all_succeed() {
    let app = TestApp::new();
    app.owner().await;

    let all =
        futures_util::future::join_all((0..15).map(|_| app.try_sign_in(OWNER_EMAIL, PASSWORD)))
            .await;

    for r in &all {
        r.assert_ok();
    }
    assert_eq!(app.count("sessions"), 16);
}

#[tokio::test]
async fn parallel_wrong_guesses_get_no_more_than_the_budget_evaluated() {
    let app = TestApp::new();
    app.owner().await;

    let all = futures_util::future::join_all(
        (0..30).map(|_| app.try_sign_in(OWNER_EMAIL, "wrong password")),
    )
    .await;

    let wrong = all.iter().filter(|r| r.status == 401).count();
    let throttled = all.iter().filter(|r| r.status == 429).count();
    assert_eq!((wrong, throttled), (10, 20));
}

#[tokio::test]
async fn correct_sign_ins_do_not_spend_the_address_budget() {
    let app = TestApp::with_config(|c| c.sign_in_per_address = 3);
    app.owner().await;
    let client: SocketAddr = "192.0.2.10:50000".parse().unwrap();

    for _ in 0..6 {
        app.send_from(
            client,
            Method::POST,
            SIGN_IN,
            &[],
            json!({"email": OWNER_EMAIL, "password": PASSWORD}),
        )
        .await
        .assert_ok();
    }

    assert_eq!(app.count("sessions"), 7);
}

#[tokio::test]
async fn wrong_guesses_from_one_address_do_not_lock_the_owner_out_elsewhere() {
    let app = TestApp::with_config(|c| c.trust_proxy = true);
    app.owner().await;
    for _ in 0..10 {
        app.send(forwarded_sign_in(&app, "203.0.113.7", OWNER_EMAIL, "guess"))
            .await
            .assert_error(401, "invalid_credentials");
    }
    app.send(forwarded_sign_in(
        &app,
        "203.0.113.7",
        OWNER_EMAIL,
        PASSWORD,
    ))
    .await
    .assert_error(429, "too_many_attempts");

    let r = app
        .send(forwarded_sign_in(
            &app,
            "198.51.100.20",
            OWNER_EMAIL,
            PASSWORD,
        ))
        .await;

    r.assert_ok();
    assert_eq!(app.count("sessions"), 2);
}

#[tokio::test]
async fn the_account_has_a_ceiling_across_all_addresses() {
    let app = TestApp::with_config(|c| {
        c.trust_proxy = true;
        c.sign_in_per_account_total = 4;
    });
    app.owner().await;
    for i in 1..=4 {
        app.send(forwarded_sign_in(
            &app,
            &format!("203.0.113.{i}"),
            OWNER_EMAIL,
            "guess",
        ))
        .await
        .assert_error(401, "invalid_credentials");
    }

    let r = app
        .send(forwarded_sign_in(
            &app,
            "198.51.100.20",
            OWNER_EMAIL,
            PASSWORD,
        ))
        .await;

    r.assert_error(429, "too_many_attempts");
    assert_eq!(app.count("sessions"), 1);
}

#[tokio::test]
async fn an_ipv4_client_on_a_dual_stack_socket_is_its_ipv4_address() {
    let app = TestApp::with_config(|c| c.sign_in_per_address = 2);
    app.owner().await;
    let mapped: SocketAddr = "[::ffff:192.0.2.10]:50000".parse().unwrap();
    let plain: SocketAddr = "192.0.2.10:50001".parse().unwrap();
    for from in [mapped, plain] {
        app.send_from(
            from,
            Method::POST,
            SIGN_IN,
            &[],
            json!({"email": "x@example.com", "password": PASSWORD}),
        )
        .await
        .assert_error(401, "invalid_credentials");
    }

    let refused = app
        .send_from(
            mapped,
            Method::POST,
            SIGN_IN,
            &[],
            json!({"email": OWNER_EMAIL, "password": PASSWORD}),
        )
        .await;
    let other: SocketAddr = "[::ffff:192.0.2.11]:50002".parse().unwrap();
    let ok = app
        .send_from(
            other,
            Method::POST,
            SIGN_IN,
            &[],
            json!({"email": OWNER_EMAIL, "password": PASSWORD}),
        )
        .await;

    refused.assert_error(429, "too_many_attempts");
    assert_eq!(ok.assert_ok()["session"]["ipAddress"], "192.0.2.11");
}

#[tokio::test]
async fn a_forged_forwarded_line_before_the_proxys_own_is_ignored() {
    let app = TestApp::with_config(|c| {
        c.trust_proxy = true;
        c.sign_in_per_address = 2;
    });
    app.owner().await;
    // The client sends its own X-Forwarded-For line; the proxy appends another.
    for forged in ["198.51.100.1", "198.51.100.2", "198.51.100.3"] {
        let r = app
            .send(
                app.request(Method::POST, SIGN_IN)
                    .header("x-forwarded-for", forged)
                    .header("x-forwarded-for", "203.0.113.7")
                    .body_json(&json!({"email": "x@example.com", "password": PASSWORD})),
            )
            .await;
        if forged == "198.51.100.3" {
            r.assert_error(429, "too_many_attempts");
        } else {
            r.assert_error(401, "invalid_credentials");
        }
    }
}

#[tokio::test]
async fn the_client_is_the_right_most_address_that_is_not_a_trusted_proxy() {
    let app = TestApp::with_config(|c| {
        c.trust_proxy = true;
        c.trusted_proxies.push("10.0.0.0/8".parse().unwrap());
    });
    app.owner().await;

    let r = app
        .send(forwarded_sign_in(
            &app,
            "192.0.2.99, 203.0.113.7, 10.1.2.3, 127.0.0.1",
            OWNER_EMAIL,
            PASSWORD,
        ))
        .await;
    let garbage = app
        .send(forwarded_sign_in(
            &app,
            "<script>, not-an-ip",
            OWNER_EMAIL,
            PASSWORD,
        ))
        .await;

    assert_eq!(r.assert_ok()["session"]["ipAddress"], "203.0.113.7");
    // Nothing that does not parse as an address is stored.
    assert!(
        garbage.assert_ok()["session"]
            .get("ipAddress")
            .is_none_or(|v| v.is_null())
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM sessions WHERE ip_address LIKE '%script%' OR ip_address LIKE '%not%'", &[]),
        0
    );
}

#[tokio::test]
async fn forwarded_addresses_from_a_peer_that_is_not_a_trusted_proxy_are_ignored() {
    let app = TestApp::with_config(|c| c.trust_proxy = true);
    app.owner().await;
    let stranger: SocketAddr = "192.0.2.10:50000".parse().unwrap();

    let r = app
        .send_from(
            stranger,
            Method::POST,
            SIGN_IN,
            &[("x-forwarded-for", "203.0.113.7")],
            json!({"email": OWNER_EMAIL, "password": PASSWORD}),
        )
        .await;

    assert_eq!(r.assert_ok()["session"]["ipAddress"], "192.0.2.10");
}

// ---------------------------------------------------------------- sign-out

#[tokio::test]
async fn signing_out_deletes_the_session_and_clears_the_cookie() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;

    let r = app.post(SIGN_OUT, json!({}), &owner).await;

    assert_eq!(r.assert_ok(), &json!({"success": true}));
    assert_clears_session_cookie(&r.set_cookie);
    assert_eq!(app.count("sessions"), 0);
    let after = app.get(GET_SESSION, &[], &owner).await;
    assert_eq!(after.assert_ok(), &serde_json::Value::Null);
}

#[tokio::test]
async fn signing_out_ends_only_the_session_it_was_sent_with() {
    let app = TestApp::new();
    let (first, _) = app.owner().await;
    let second = app.sign_in(OWNER_EMAIL, PASSWORD).await;

    app.post(SIGN_OUT, json!({}), &first).await.assert_ok();

    assert_eq!(app.count("sessions"), 1);
    let s = app.get(GET_SESSION, &[], &second).await;
    assert_eq!(s.assert_ok()["user"]["email"], OWNER_EMAIL);
    let gone = app.get(GET_SESSION, &[], &first).await;
    assert_eq!(gone.assert_ok(), &serde_json::Value::Null);
}

#[tokio::test]
async fn signing_out_without_a_session_is_harmless() {
    let app = TestApp::new();
    app.owner().await;

    let r = app.send(app.request(Method::POST, SIGN_OUT)).await;

    assert_eq!(r.assert_ok(), &json!({"success": true}));
    assert_clears_session_cookie(&r.set_cookie);
    assert_eq!(app.count("sessions"), 1);
}

// ---------------------------------------------------------------- origin checks

fn sign_out_with<'a>(app: &'a TestApp, token: &str, headers: &[(&str, &str)]) -> Req<'a> {
    let mut req = app
        .request(Method::POST, SIGN_OUT)
        .header("cookie", cookie(token));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req
}

#[tokio::test]
async fn sign_out_without_origin_or_referer_is_refused() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;

    let r = app.send(sign_out_with(&app, owner.token(), &[])).await;

    r.assert_error(403, "invalid_origin");
    assert_eq!(r.code(), "FORBIDDEN");
    assert!(r.set_cookie.is_empty(), "{:?}", r.set_cookie);
    assert_eq!(app.count("sessions"), 1);
    app.get(GET_SESSION, &[], &owner).await.assert_ok()["user"]
        .as_object()
        .expect("the session still works");
}

#[tokio::test]
async fn sign_out_from_a_foreign_origin_is_refused() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;

    for headers in [
        [("origin", "http://evil.example")],
        [("origin", "http://localhost.evil.example")],
        [("origin", "https://localhost:8443")],
        [("origin", "null")],
        [("referer", "http://evil.example/http://localhost/")],
    ] {
        let r = app.send(sign_out_with(&app, owner.token(), &headers)).await;

        r.assert_error(403, "invalid_origin");
        assert_eq!(app.count("sessions"), 1, "after {headers:?}");
    }
}

#[tokio::test]
async fn sign_out_with_a_referer_from_a_trusted_origin_works() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;

    let r = app
        .send(sign_out_with(
            &app,
            owner.token(),
            &[("referer", "http://localhost/dashboard?tab=keys")],
        ))
        .await;

    r.assert_ok();
    assert_clears_session_cookie(&r.set_cookie);
    assert_eq!(app.count("sessions"), 0);
}

#[tokio::test]
async fn a_foreign_origin_is_refused_even_with_a_trusted_referer() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;

    let r = app
        .send(sign_out_with(
            &app,
            owner.token(),
            &[
                ("origin", "http://evil.example"),
                ("referer", "http://localhost/"),
            ],
        ))
        .await;

    r.assert_error(403, "invalid_origin");
    assert_eq!(app.count("sessions"), 1);
}

#[tokio::test]
async fn sign_out_from_the_servers_own_host_works_without_trusted_origins() {
    let app = TestApp::with_config(|c| c.trusted_origins.clear());
    let (owner, _) = app.owner().await;
    let foreign = app
        .send(sign_out_with(
            &app,
            owner.token(),
            &[
                ("host", "keygate.internal:3000"),
                ("origin", "http://localhost"),
            ],
        ))
        .await;
    foreign.assert_error(403, "invalid_origin");
    assert_eq!(app.count("sessions"), 1);

    let r = app
        .send(sign_out_with(
            &app,
            owner.token(),
            &[
                ("host", "keygate.internal:3000"),
                ("origin", "http://keygate.internal:3000"),
            ],
        ))
        .await;

    r.assert_ok();
    assert_eq!(app.count("sessions"), 0);
}

#[tokio::test]
async fn behind_a_public_https_url_the_cookie_is_secure_and_only_that_origin_may_sign_out() {
    let app = TestApp::with_config(|c| {
        c.trusted_origins.clear();
        c.public_url = Some("https://keygate.example.com".to_owned());
    });
    let r = app.sign_up(sign_up_body("ada@example.com", PASSWORD)).await;
    r.assert_ok();
    let set = &r.set_cookie[0];
    let token = set
        .strip_prefix("__Host-keygate.session_token=")
        .and_then(|v| v.split(';').next())
        .unwrap_or_else(|| panic!("not a __Host- cookie: {set}"))
        .to_owned();
    assert!(set.ends_with("; Path=/; Max-Age=259200; HttpOnly; SameSite=Lax; Secure"));
    let secure_cookie = format!("__Host-keygate.session_token={token}");
    let sign_out = |origin: &'static str| {
        app.request(Method::POST, SIGN_OUT)
            .header("cookie", secure_cookie.clone())
            .header("host", "127.0.0.1:3000")
            .header("origin", origin)
    };

    // The Host header does not count when a public URL is configured.
    let refused = app.send(sign_out("http://127.0.0.1:3000")).await;
    refused.assert_error(403, "invalid_origin");
    assert_eq!(app.count("sessions"), 1);

    let ok = app.send(sign_out("https://keygate.example.com")).await;

    ok.assert_ok();
    assert_eq!(
        ok.set_cookie,
        ["__Host-keygate.session_token=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax; Secure"]
    );
    assert_eq!(app.count("sessions"), 0);
}

#[tokio::test]
async fn sign_in_with_a_foreign_origin_is_refused() {
    let app = TestApp::new();
    app.owner().await;

    let r = app
        .send(
            app.request(Method::POST, SIGN_IN)
                .header("origin", "http://evil.example")
                .body_json(&json!({"email": OWNER_EMAIL, "password": PASSWORD})),
        )
        .await;

    r.assert_error(403, "invalid_origin");
    assert!(r.set_cookie.is_empty());
    assert_eq!(app.count("sessions"), 1);
}

#[tokio::test]
async fn sign_in_from_a_trusted_origin_works() {
    let app = TestApp::new();
    app.owner().await;

    let r = app
        .send(
            app.request(Method::POST, SIGN_IN)
                .header("origin", ORIGIN)
                .body_json(&json!({"email": OWNER_EMAIL, "password": PASSWORD})),
        )
        .await;

    r.assert_ok();
    assert_eq!(app.count("sessions"), 2);
}

#[tokio::test]
async fn sign_in_without_any_origin_works_like_curl() {
    let app = TestApp::new();
    app.owner().await;

    let r = app
        .send(
            app.request(Method::POST, SIGN_IN)
                .header("user-agent", "curl/8.5.0")
                .body_json(&json!({"email": OWNER_EMAIL, "password": PASSWORD})),
        )
        .await;

    r.assert_ok();
    assert!(r.session_token().is_some());
    assert_eq!(app.count("sessions"), 2);
}

#[tokio::test]
async fn sign_up_with_a_foreign_origin_is_refused() {
    let app = TestApp::new();

    let r = app
        .send(
            app.request(Method::POST, SIGN_UP)
                .header("origin", "http://evil.example")
                .body_json(&sign_up_body("ada@example.com", PASSWORD)),
        )
        .await;

    r.assert_error(403, "invalid_origin");
    assert_eq!(app.count("users"), 0);
    assert_eq!(app.count("organizations"), 0);
    assert_eq!(app.count("sessions"), 0);
}

#[tokio::test]
async fn wrong_passwords_sent_in_parallel_are_counted_before_they_are_checked() {
    let app = Arc::new(TestApp::new());
    app.owner().await;

    let mut set = JoinSet::new();
    for _ in 0..30 {
        let app = Arc::clone(&app);
        set.spawn(async move {
            app.post(
                "/api/auth/sign-in/email",
                json!({"email": "owner@example.com", "password": "not the password"}),
                &As::Nobody,
            )
            .await
            .status
        });
    }
    let mut statuses = Vec::new();
    while let Some(s) = set.join_next().await {
        statuses.push(s.unwrap());
    }

    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(checked, 10, "the account allows 10 attempts: {statuses:?}");
    assert_eq!(refused, 20, "{statuses:?}");
}

#[tokio::test]
async fn a_successful_sign_in_does_not_use_up_the_accounts_attempts() {
    let app = TestApp::new();
    app.owner().await;

    for _ in 0..15 {
        app.sign_in("owner@example.com", PASSWORD).await;
    }

    assert_eq!(app.count("sessions"), 16);
}
