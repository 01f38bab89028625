//! Two-factor sign-in through HTTP: setting it up, the code step of sign-in (TOTP and
//! backup codes), replays, wrong and late codes, trusted browsers, guessing budgets, an
//! organization that requires it, and turning it off.

use poem::http::Method;
use serde_json::{Value, json};

use crate::helpers::*;

const VERIFY_BACKUP: &str = "/api/auth/two-factor/verify-backup-code";
const NEW_CODES: &str = "/api/auth/two-factor/generate-backup-codes";
const DISABLE: &str = "/api/auth/two-factor/disable";
const GET_URI: &str = "/api/auth/two-factor/get-totp-uri";

/// The trust cookie a code step set, if any.
fn device_of(r: &Reply) -> Option<String> {
    r.set_cookie
        .iter()
        .find_map(|c| c.strip_prefix("keygate.trust_device="))
        .map(|v| v.split(';').next().unwrap().to_owned())
        .filter(|v| !v.is_empty())
}

/// Sign-in's password step, with the browser's `cookies`.
async fn password_step(app: &TestApp, email: &str, cookies: &str) -> Reply {
    let mut req = app
        .request(Method::POST, SIGN_IN)
        .header("origin", ORIGIN)
        .body_json(&json!({"email": email, "password": PASSWORD}));
    if !cookies.is_empty() {
        req = req.header("cookie", cookies);
    }
    app.send(req).await
}

/// A code step with the password step's cookie.
async fn code_step(app: &TestApp, path: &str, challenge: &str, body: Value) -> Reply {
    let req = app
        .request(Method::POST, path)
        .header("origin", ORIGIN)
        .header("cookie", format!("keygate.two_factor={challenge}"))
        .body_json(&body);
    app.send(req).await
}

/// A sign-in that stops at the code step: answers its cookie.
async fn until_code(app: &TestApp, email: &str) -> String {
    let r = password_step(app, email, "").await;
    assert_eq!(r.body, json!({"twoFactorRedirect": true}), "{:?}", r.body);
    assert_eq!(r.session_token(), None, "no session before the code");
    challenge_of(&r)
}

fn sessions_of(app: &TestApp, email: &str) -> i64 {
    app.count_where(
        "SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.email = ?1",
        &[&email],
    )
}

/// A new server whose owner has two-factor on: the app, the owner's session, its secret
/// and its backup codes.
async fn owner_with_two_factor() -> (TestApp, As, Vec<u8>, Vec<String>) {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (secret, codes) = turn_on(&app, &owner).await;
    (app, owner, secret, codes)
}

#[tokio::test]
async fn enable_answers_a_uri_a_qr_code_and_ten_backup_codes_stored_sealed_and_hashed() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let r = app
        .post(ENABLE, json!({"password": PASSWORD}), &owner)
        .await;
    let body = r.assert_ok();
    let uri = body["totpURI"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/keygate:owner%40example.com?"),
        "{uri}"
    );
    // SHA-1, 6 digits and 30 seconds are what authenticators assume when the URI names
    // none.
    assert!(uri.contains("issuer=keygate"), "{uri}");
    for other in ["digits=", "period=", "algorithm="] {
        assert!(!uri.contains(other), "{other} in {uri}");
    }
    let svg = body["qrCodeSVG"].as_str().unwrap();
    assert!(svg.contains("<svg"), "{svg:.80}");
    let codes = body["backupCodes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    for c in codes {
        let c = c.as_str().unwrap();
        assert_eq!(c.len(), 11, "{c}");
        assert_eq!(&c[5..6], "-", "{c}");
    }

    // Stored: the secret sealed, the codes as hashes; nothing in plain text.
    let secret = secret_of(uri);
    let sealed = app.column_bytes("SELECT secret FROM two_factors", &[]);
    assert_eq!(sealed.len(), 1);
    assert!(
        !sealed[0]
            .windows(secret.len())
            .any(|w| w == secret.as_slice()),
        "the secret is stored in the clear"
    );
    let files = app.database_files();
    for c in codes {
        let c = c.as_str().unwrap().as_bytes();
        assert!(
            !files.windows(c.len()).any(|w| w == c),
            "a backup code in the database"
        );
    }
    assert_eq!(app.count("backup_codes"), 10);
    // The key lives beside the database, readable by its owner alone.
    let key = app.state.config.secret_key_file.clone();
    assert_eq!(key.file_name().unwrap(), "keygate.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // Not on until the first code: sign-in still makes a session at once.
    let me = app.get(GET_SESSION, &[], &owner).await;
    assert_eq!(me.body["user"]["twoFactorEnabled"], false);
    assert_eq!(
        app.scalar("SELECT two_factor_enabled FROM users", &[]),
        json!(0)
    );
    let r = password_step(&app, OWNER_EMAIL, "").await;
    assert!(r.session_token().is_some(), "{:?}", r.body);

    // The same URI again, with the password.
    let again = app
        .post(GET_URI, json!({"password": PASSWORD}), &owner)
        .await;
    assert_eq!(again.assert_ok()["totpURI"], uri);
}

#[tokio::test]
async fn setting_up_needs_the_session_and_the_right_password_and_keys_have_no_part() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, _) = app.create_key(&owner, json!({})).await;
    let before = app.count("two_factors");

    let r = app
        .post(ENABLE, json!({"password": "wrong password"}), &owner)
        .await;
    r.assert_error(401, "invalid_credentials");
    let r = app
        .post(ENABLE, json!({"password": PASSWORD}), &As::Nobody)
        .await;
    r.assert_error(401, "missing_credentials");
    let r = app
        .post(ENABLE, json!({"password": PASSWORD}), &As::Key(key.clone()))
        .await;
    r.assert_error(401, "missing_credentials");
    // A cookie without our Origin is refused before the password is checked.
    let req = app
        .request(Method::POST, ENABLE)
        .header("cookie", cookie(owner.token()))
        .header("origin", "http://evil.example")
        .body_json(&json!({"password": PASSWORD}));
    app.send(req).await.assert_error(403, "invalid_origin");
    let r = app.post(ENABLE, json!({}), &owner).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(app.count("two_factors"), before, "nothing was set up");

    // Once on, enabling again is a conflict until it is turned off.
    turn_on(&app, &owner).await;
    let r = app
        .post(ENABLE, json!({"password": PASSWORD}), &owner)
        .await;
    r.assert_error(409, "two_factor_enabled");
    // API keys go on working without any code.
    let r = app.get("/api/project.all", &[], &As::Key(key)).await;
    r.assert_ok();
}

#[tokio::test]
async fn a_confirming_code_must_be_right_and_turns_two_factor_on() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    // Nothing set up yet.
    let r = app
        .post(VERIFY_TOTP, json!({"code": "123456"}), &owner)
        .await;
    r.assert_error(400, "two_factor_not_enabled");
    let r = app
        .post(ENABLE, json!({"password": PASSWORD}), &owner)
        .await;
    let secret = secret_of(r.assert_ok()["totpURI"].as_str().unwrap());
    for wrong in ["000000", "12345", "abcdef", code(&app, &secret, 3).as_str()] {
        let r = app.post(VERIFY_TOTP, json!({"code": wrong}), &owner).await;
        r.assert_error(401, "invalid_two_factor_code");
    }
    assert_eq!(
        app.scalar("SELECT two_factor_enabled FROM users", &[]),
        json!(0)
    );
    // One step late still counts (a slow typist, a drifting phone).
    let r = app
        .post(
            VERIFY_TOTP,
            json!({"code": code(&app, &secret, -1)}),
            &owner,
        )
        .await;
    assert_eq!(r.assert_ok()["user"]["twoFactorEnabled"], true);
    assert_eq!(r.session_token(), None, "the session stays the same");
    assert_eq!(
        app.scalar("SELECT two_factor_enabled FROM users", &[]),
        json!(1)
    );
    let me = app.get(GET_SESSION, &[], &owner).await;
    assert_eq!(me.body["user"]["twoFactorEnabled"], true);
}

#[tokio::test]
async fn sign_in_stops_at_the_code_step_and_a_right_code_makes_the_session() {
    let (app, _, secret, _) = owner_with_two_factor().await;
    let before = sessions_of(&app, OWNER_EMAIL);

    let r = password_step(&app, OWNER_EMAIL, "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({"twoFactorRedirect": true}));
    let set = r.set_cookie.join("\n");
    assert!(
        set.contains("Path=/api/auth/two-factor; Max-Age=180; HttpOnly; SameSite=Strict"),
        "{set}"
    );
    assert!(!set.contains("keygate.session_token"), "{set}");
    assert_eq!(
        sessions_of(&app, OWNER_EMAIL),
        before,
        "the password made no session"
    );
    let challenge = challenge_of(&r);

    // A wrong code: 401, and the step still waits for the right one.
    let r = code_step(&app, VERIFY_TOTP, &challenge, json!({"code": "000000"})).await;
    r.assert_error(401, "invalid_two_factor_code");
    let r = code_step(
        &app,
        VERIFY_TOTP,
        &challenge,
        json!({"code": code(&app, &secret, 0)}),
    )
    .await;
    let body = r.assert_ok();
    assert_eq!(body["user"]["email"], OWNER_EMAIL);
    let token = r.session_token().expect("the session cookie");
    assert!(
        r.set_cookie
            .iter()
            .any(|c| c.starts_with("keygate.two_factor=;")),
        "the step's cookie is cleared: {:?}",
        r.set_cookie
    );
    assert_eq!(device_of(&r), None, "no trust unless asked");
    assert_eq!(sessions_of(&app, OWNER_EMAIL), before + 1);
    let me = app.get(GET_SESSION, &[], &As::Cookie(token)).await;
    assert_eq!(me.body["user"]["email"], OWNER_EMAIL);

    // The step is over: its cookie does not make a second session.
    app.clock.advance(STEP_MS);
    let r = code_step(
        &app,
        VERIFY_TOTP,
        &challenge,
        json!({"code": code(&app, &secret, 0)}),
    )
    .await;
    r.assert_error(401, "two_factor_expired");
    // Without any cookie there is no step to complete.
    let req = app
        .request(Method::POST, VERIFY_TOTP)
        .header("origin", ORIGIN)
        .body_json(&json!({"code": code(&app, &secret, 0)}));
    app.send(req).await.assert_error(401, "two_factor_expired");
    assert_eq!(sessions_of(&app, OWNER_EMAIL), before + 1);
}

#[tokio::test]
async fn a_code_works_once_and_no_earlier_code_works_after_it() {
    let (app, _, secret, _) = owner_with_two_factor().await;

    let now = code(&app, &secret, 0);
    let challenge = until_code(&app, OWNER_EMAIL).await;
    code_step(&app, VERIFY_TOTP, &challenge, json!({"code": now}))
        .await
        .assert_ok();

    // The same code, seconds later, on a new sign-in: a replay.
    let challenge = until_code(&app, OWNER_EMAIL).await;
    let r = code_step(&app, VERIFY_TOTP, &challenge, json!({"code": now})).await;
    r.assert_error(401, "invalid_two_factor_code");
    // The step before is still within the tolerance, but earlier than the one used.
    let r = code_step(
        &app,
        VERIFY_TOTP,
        &challenge,
        json!({"code": code(&app, &secret, -1)}),
    )
    .await;
    r.assert_error(401, "invalid_two_factor_code");
    // The next step's code is new.
    app.clock.advance(STEP_MS);
    let r = code_step(
        &app,
        VERIFY_TOTP,
        &challenge,
        json!({"code": code(&app, &secret, 0)}),
    )
    .await;
    r.assert_ok();
    assert_eq!(
        app.scalar("SELECT last_step FROM two_factors", &[]),
        json!((keygate::clock::Clock::now_ms(&*app.clock) / STEP_MS))
    );
}

#[tokio::test]
async fn the_password_step_lasts_three_minutes() {
    let (app, _, secret, _) = owner_with_two_factor().await;
    let challenge = until_code(&app, OWNER_EMAIL).await;
    app.clock.advance(3 * 60_000 + 1);
    let r = code_step(
        &app,
        VERIFY_TOTP,
        &challenge,
        json!({"code": code(&app, &secret, 0)}),
    )
    .await;
    r.assert_error(401, "two_factor_expired");
    // A forged or truncated cookie is the same answer.
    let r = code_step(
        &app,
        VERIFY_TOTP,
        "nope",
        json!({"code": code(&app, &secret, 0)}),
    )
    .await;
    r.assert_error(401, "two_factor_expired");
    // The expired steps are cleaned away.
    keygate::domain::sessions::purge_expired(&app.state)
        .await
        .unwrap();
    assert_eq!(app.count("two_factor_challenges"), 0);
}

#[tokio::test]
async fn each_backup_code_signs_in_once() {
    let (app, _, _, codes) = owner_with_two_factor().await;

    let challenge = until_code(&app, OWNER_EMAIL).await;
    let r = code_step(
        &app,
        VERIFY_BACKUP,
        &challenge,
        json!({"code": "aaaaa-aaaaa"}),
    )
    .await;
    r.assert_error(401, "invalid_two_factor_code");
    // Typed in capitals with a space instead of the dash.
    let typed = codes[0].replace('-', " ").to_uppercase();
    let r = code_step(&app, VERIFY_BACKUP, &challenge, json!({"code": typed})).await;
    assert!(r.session_token().is_some(), "{:?}", r.body);
    assert_eq!(
        app.count_where(
            "SELECT count(*) FROM backup_codes WHERE used_at IS NULL",
            &[]
        ),
        9
    );

    let challenge = until_code(&app, OWNER_EMAIL).await;
    let r = code_step(&app, VERIFY_BACKUP, &challenge, json!({"code": codes[0]})).await;
    r.assert_error(401, "invalid_two_factor_code");
    let r = code_step(&app, VERIFY_BACKUP, &challenge, json!({"code": codes[1]})).await;
    r.assert_ok();
}

#[tokio::test]
async fn new_backup_codes_replace_the_old_ones() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let r = app
        .post(NEW_CODES, json!({"password": PASSWORD}), &owner)
        .await;
    r.assert_error(400, "two_factor_not_enabled");
    let (_, old) = turn_on(&app, &owner).await;
    let r = app
        .post(NEW_CODES, json!({"password": "wrong password"}), &owner)
        .await;
    r.assert_error(401, "invalid_credentials");
    let r = app
        .post(NEW_CODES, json!({"password": PASSWORD}), &owner)
        .await;
    let new: Vec<String> = r.assert_ok()["backupCodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(new.len(), 10);
    assert_eq!(r.body["status"], true);
    assert!(old.iter().all(|c| !new.contains(c)));

    let challenge = until_code(&app, OWNER_EMAIL).await;
    let r = code_step(&app, VERIFY_BACKUP, &challenge, json!({"code": old[0]})).await;
    r.assert_error(401, "invalid_two_factor_code");
    let r = code_step(&app, VERIFY_BACKUP, &challenge, json!({"code": new[0]})).await;
    r.assert_ok();
}

#[tokio::test]
async fn a_trusted_browser_skips_the_code_step_until_the_sessions_are_revoked() {
    let (app, _, secret, _) = owner_with_two_factor().await;

    let challenge = until_code(&app, OWNER_EMAIL).await;
    let r = code_step(
        &app,
        VERIFY_TOTP,
        &challenge,
        json!({"code": code(&app, &secret, 0), "trustDevice": true}),
    )
    .await;
    r.assert_ok();
    let device = device_of(&r).expect("a trust cookie");
    let set = r.set_cookie.join("\n");
    assert!(
        set.contains("keygate.trust_device=")
            && set.contains("Path=/api/auth; Max-Age=2592000; HttpOnly"),
        "{set}"
    );
    let session = As::Cookie(r.session_token().unwrap());

    // This browser signs in with the password alone; another one does not.
    let trusted = format!("keygate.trust_device={device}");
    let r = password_step(&app, OWNER_EMAIL, &trusted).await;
    assert!(r.session_token().is_some(), "{:?}", r.body);
    until_code(&app, OWNER_EMAIL).await;

    // Trust ends after 30 days.
    app.clock.advance(30 * 86_400_000 + 1);
    let r = password_step(&app, OWNER_EMAIL, &trusted).await;
    assert_eq!(r.body, json!({"twoFactorRedirect": true}));
    app.clock.advance(-(30 * 86_400_000 + 1));
    let r = password_step(&app, OWNER_EMAIL, &trusted).await;
    assert!(r.session_token().is_some(), "{:?}", r.body);

    // A new password signs out the other sessions, and the trust goes with them.
    let r = app
        .post(
            "/api/user.update",
            json!({"currentPassword": PASSWORD, "password": "another long password"}),
            &session,
        )
        .await;
    r.assert_ok();
    assert_eq!(app.count("trusted_devices"), 0);
    let req = app
        .request(Method::POST, SIGN_IN)
        .header("origin", ORIGIN)
        .header("cookie", trusted.as_str())
        .body_json(&json!({"email": OWNER_EMAIL, "password": "another long password"}));
    let r = app.send(req).await;
    assert_eq!(r.body, json!({"twoFactorRedirect": true}));
}

#[tokio::test]
async fn wrong_codes_are_limited_per_user_and_right_ones_are_not_counted() {
    let app = TestApp::with_config(|c| c.two_factor_per_user = 3);
    let (owner, _) = app.owner().await;
    let (secret, _) = turn_on(&app, &owner).await;
    let challenge = until_code(&app, OWNER_EMAIL).await;
    for _ in 0..3 {
        let r = code_step(&app, VERIFY_TOTP, &challenge, json!({"code": "000000"})).await;
        r.assert_error(401, "invalid_two_factor_code");
    }
    let r = code_step(
        &app,
        VERIFY_TOTP,
        &challenge,
        json!({"code": code(&app, &secret, 0)}),
    )
    .await;
    r.assert_error(429, "too_many_attempts");
    assert!(r.header("retry-after").is_some());
    // Also from a new sign-in, and with backup codes: the budget is the user's.
    let again = until_code(&app, OWNER_EMAIL).await;
    let r = code_step(&app, VERIFY_BACKUP, &again, json!({"code": "aaaaa-aaaaa"})).await;
    r.assert_error(429, "too_many_attempts");
    // After the window, a right code signs in.
    app.clock.advance(15 * 60_000 + 1);
    let again = until_code(&app, OWNER_EMAIL).await;
    let r = code_step(
        &app,
        VERIFY_TOTP,
        &again,
        json!({"code": code(&app, &secret, 0)}),
    )
    .await;
    r.assert_ok();
}

#[tokio::test]
async fn disable_needs_the_password_and_removes_everything_two_factor() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let r = app
        .post(DISABLE, json!({"password": PASSWORD}), &owner)
        .await;
    r.assert_error(400, "two_factor_not_enabled");
    turn_on(&app, &owner).await;
    let challenge = until_code(&app, OWNER_EMAIL).await;
    let r = app
        .post(DISABLE, json!({"password": "wrong password"}), &owner)
        .await;
    r.assert_error(401, "invalid_credentials");
    assert_eq!(app.count("two_factors"), 1);

    let r = app
        .post(DISABLE, json!({"password": PASSWORD}), &owner)
        .await;
    assert_eq!(r.assert_ok(), &json!({"status": true}));
    for table in [
        "two_factors",
        "backup_codes",
        "two_factor_challenges",
        "trusted_devices",
    ] {
        assert_eq!(app.count(table), 0, "{table}");
    }
    assert_eq!(
        app.scalar("SELECT two_factor_enabled FROM users", &[]),
        json!(0)
    );
    let r = code_step(&app, VERIFY_TOTP, &challenge, json!({"code": "123456"})).await;
    r.assert_error(401, "two_factor_expired");
    let r = password_step(&app, OWNER_EMAIL, "").await;
    assert!(r.session_token().is_some(), "{:?}", r.body);
}

#[tokio::test]
async fn an_organization_that_requires_two_factor_lets_a_session_without_it_only_turn_it_on() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let org = app.first_org();
    let admin = app
        .invite_and_join(&owner, "admin@example.com", "admin")
        .await;
    let member = app
        .invite_and_join(&owner, "member@example.com", "member")
        .await;
    let (member_key, _) = app.create_key(&owner, json!({})).await;
    let require = |on: bool| json!({"organizationId": org, "requireTwoFactor": on});

    // Only the owner decides, and only once its own two-factor is on.
    let r = app
        .post("/api/organization.update", require(true), &owner)
        .await;
    r.assert_error(400, "two_factor_needed_first");
    let r = app
        .post("/api/organization.update", require(true), &admin.who)
        .await;
    r.assert_error(401, "permission_denied");
    turn_on(&app, &owner).await;
    let r = app
        .post("/api/organization.update", require(true), &owner)
        .await;
    assert_eq!(r.assert_ok()["requireTwoFactor"], true);
    assert_eq!(
        app.scalar("SELECT require_two_factor FROM organizations", &[]),
        json!(1)
    );

    // A session without two-factor: 401 two_factor_required on the organization's work,
    // including operations naming it, but the account itself stays reachable.
    for who in [&admin.who, &member.who] {
        for path in [
            "/api/project.all",
            "/api/user.all",
            "/api/user.getPermissions",
        ] {
            let r = app.get(path, &[], who).await;
            r.assert_error(401, "two_factor_required");
        }
        let r = app
            .get("/api/organization.one", &[("organizationId", &org)], who)
            .await;
        r.assert_error(401, "two_factor_required");
        let r = app
            .post("/api/project.create", json!({"name": "sneaky"}), who)
            .await;
        r.assert_error(401, "two_factor_required");
        app.get("/api/user.get", &[], who).await.assert_ok();
        app.get("/api/organization.all", &[], who).await.assert_ok();
        app.get(GET_SESSION, &[], who).await.assert_ok();
    }
    // The owner's session has two-factor: unaffected. So are API keys.
    app.get("/api/project.all", &[], &owner).await.assert_ok();
    app.get("/api/project.all", &[], &As::Key(member_key))
        .await
        .assert_ok();

    // Turning it on opens the organization to that session.
    turn_on(&app, &admin.who).await;
    app.get("/api/project.all", &[], &admin.who)
        .await
        .assert_ok();
    app.get("/api/project.all", &[], &member.who)
        .await
        .assert_error(401, "two_factor_required");

    // The owner lifts the demand: the member acts again.
    let r = app
        .post("/api/organization.update", require(false), &owner)
        .await;
    assert_eq!(r.assert_ok()["requireTwoFactor"], false);
    app.get("/api/project.all", &[], &member.who)
        .await
        .assert_ok();
    // A rename alone leaves the demand as it is; an empty update is refused.
    let r = app
        .post(
            "/api/organization.update",
            json!({"organizationId": org, "name": "Renamed"}),
            &owner,
        )
        .await;
    assert_eq!(r.assert_ok()["requireTwoFactor"], false);
    let r = app
        .post(
            "/api/organization.update",
            json!({"organizationId": org}),
            &owner,
        )
        .await;
    r.assert_error(400, "validation_failed");
}

#[tokio::test]
async fn a_blocked_session_neither_lists_nor_manages_its_keys_in_the_requiring_organization() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let org = app.first_org();
    let admin = app
        .invite_and_join(&owner, "admin@example.com", "admin")
        .await;
    let (_, key_id) = app.create_key(&admin.who, json!({"name": "in-b"})).await;
    turn_on(&app, &owner).await;
    app.post(
        "/api/organization.update",
        json!({"organizationId": org, "requireTwoFactor": true}),
        &owner,
    )
    .await
    .assert_ok();

    // The admin makes an organization of its own and acts there: the account may.
    let own = app.create_org(&admin.who, "Own").await;
    app.post(
        "/api/organization.setActive",
        json!({"organizationId": own}),
        &admin.who,
    )
    .await
    .assert_ok();
    // Its key in the requiring organization is out of its reach from there too.
    assert!(app.keys_of(&admin.who).await.is_empty());
    let r = app.get("/api/user.listApiKeys", &[], &admin.who).await;
    assert_eq!(r.assert_ok().as_array().unwrap().len(), 0);
    for path in ["/api/user.rotateApiKey", "/api/user.deleteApiKey"] {
        let r = app
            .post(path, json!({"apiKeyId": key_id}), &admin.who)
            .await;
        r.assert_error(401, "two_factor_required");
    }
    let r = app
        .post(
            "/api/user.updateApiKey",
            json!({"apiKeyId": key_id, "enabled": false}),
            &admin.who,
        )
        .await;
    r.assert_error(401, "two_factor_required");
    assert_eq!(app.key_column(&key_id, "enabled"), json!(1));
    // Switching back is refused as well.
    let r = app
        .post(
            "/api/organization.setActive",
            json!({"organizationId": org}),
            &admin.who,
        )
        .await;
    r.assert_error(401, "two_factor_required");
    // With two-factor on, the key is the admin's to manage again.
    turn_on(&app, &admin.who).await;
    assert_eq!(app.keys_of(&admin.who).await.len(), 1);
}

#[tokio::test]
async fn only_a_session_changes_the_demand_for_two_factor() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let org = app.first_org();
    turn_on(&app, &owner).await;
    let (key, _) = app.create_key(&owner, json!({})).await;
    for on in [true, false] {
        let r = app
            .post(
                "/api/organization.update",
                json!({"organizationId": org, "requireTwoFactor": on}),
                &As::Key(key.clone()),
            )
            .await;
        r.assert_error(401, "permission_denied");
    }
    assert_eq!(
        app.scalar("SELECT require_two_factor FROM organizations", &[]),
        json!(0)
    );
}

#[tokio::test]
async fn turning_two_factor_on_ends_the_other_sessions_and_a_new_password_the_waiting_sign_ins() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let other = app.sign_in(OWNER_EMAIL, PASSWORD).await;
    turn_on(&app, &owner).await;
    // The session made with the password alone is gone; the one that confirmed stays.
    app.get("/api/user.get", &[], &other)
        .await
        .assert_error(401, "invalid_session");
    app.get("/api/user.get", &[], &owner).await.assert_ok();

    let waiting = until_code(&app, OWNER_EMAIL).await;
    let r = app
        .post(
            "/api/user.update",
            json!({"currentPassword": PASSWORD, "password": "another long password"}),
            &owner,
        )
        .await;
    r.assert_ok();
    assert_eq!(app.count("two_factor_challenges"), 0);
    let r = code_step(&app, VERIFY_TOTP, &waiting, json!({"code": "123456"})).await;
    r.assert_error(401, "two_factor_expired");
}

#[tokio::test]
async fn an_account_with_the_longest_email_still_gets_its_qr_code() {
    let app = TestApp::new();
    let email = format!("a@{}.example", "\u{20000}".repeat(240));
    let r = app
        .sign_up(json!({"name": "Long", "email": email, "password": PASSWORD}))
        .await;
    let who = As::Cookie(r.session_token().expect("signed up"));
    let r = app.post(ENABLE, json!({"password": PASSWORD}), &who).await;
    let body = r.assert_ok();
    assert!(body["qrCodeSVG"].as_str().unwrap().contains("<svg"));
}

#[tokio::test]
async fn wrong_codes_count_against_the_client_address_too() {
    let app = TestApp::with_config(|c| {
        c.sign_in_per_address = 3;
        c.two_factor_per_user = 100;
    });
    let (owner, _) = app.owner().await;
    let (secret, _) = turn_on(&app, &owner).await;
    let challenge = until_code(&app, OWNER_EMAIL).await;
    let cookie = format!("keygate.two_factor={challenge}");
    let headers = [("cookie", cookie.as_str()), ("origin", ORIGIN)];
    let guesser: std::net::SocketAddr = "203.0.113.7:4000".parse().unwrap();
    for _ in 0..3 {
        let r = app
            .send_from(
                guesser,
                Method::POST,
                VERIFY_TOTP,
                &headers,
                json!({"code": "000000"}),
            )
            .await;
        r.assert_error(401, "invalid_two_factor_code");
    }
    let right = json!({"code": code(&app, &secret, 0)});
    let r = app
        .send_from(guesser, Method::POST, VERIFY_TOTP, &headers, right.clone())
        .await;
    r.assert_error(429, "too_many_attempts");
    // The same user from another address is not held back by that address's guesses.
    let elsewhere: std::net::SocketAddr = "198.51.100.9:4000".parse().unwrap();
    let r = app
        .send_from(elsewhere, Method::POST, VERIFY_TOTP, &headers, right)
        .await;
    r.assert_ok();
}

#[tokio::test]
async fn a_client_without_origin_gets_the_session_token_from_the_code_step_only() {
    let (app, _, secret, _) = owner_with_two_factor().await;
    // The password step answers no token: there is no session yet.
    let step = app.try_sign_in(OWNER_EMAIL, PASSWORD).await;
    assert_eq!(step.assert_ok(), &json!({"twoFactorRedirect": true}));
    let challenge = challenge_of(&step);
    // The code step, sent back with the step's cookie by a client that keeps cookies
    // but sends no Origin.
    let req = app
        .request(Method::POST, VERIFY_TOTP)
        .header("cookie", format!("keygate.two_factor={challenge}"))
        .body_json(&json!({"code": code(&app, &secret, 0)}));
    let done = app.send(req).await;
    let token = done.assert_ok()["token"]
        .as_str()
        .expect("the session token")
        .to_owned();
    assert_eq!(Some(token.clone()), done.session_token());
    let me = app.get(GET_SESSION, &[], &As::Bearer(token)).await;
    assert_eq!(me.assert_ok()["user"]["email"], OWNER_EMAIL);
}
