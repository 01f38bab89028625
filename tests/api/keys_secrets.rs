//! After the answer that creates (or rotates) a key, neither the key nor its hash appears in
//! any response: not in listings, not in organization or member views, not in errors.

use keygate::auth::apikey;
use serde_json::{Value, json};

use crate::helpers::*;

const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(STD[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// Every text form in which `key` or its SHA-256 could leak.
fn forms(key: &str) -> Vec<String> {
    let hash = sha256(key.as_bytes());
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    let b64 = base64(&hash);
    let bytes = serde_json::to_string(&hash).unwrap();
    vec![
        key.to_owned(),
        // What follows the displayed `start`: never shown either.
        key[9..].to_owned(),
        hex.clone(),
        hex.to_uppercase(),
        b64.clone(),
        b64.replace('+', "-").replace('/', "_"),
        bytes.trim_matches(['[', ']']).to_owned(),
    ]
}

/// Everything the client saw of some answers: statuses, headers and bodies.
#[derive(Default)]
struct Transcript(Vec<String>);

impl Transcript {
    fn add(&mut self, what: &str, r: &Reply) {
        let headers: Vec<String> = r
            .headers
            .iter()
            .map(|(k, v)| format!("{k}: {}", String::from_utf8_lossy(v.as_bytes())))
            .collect();
        self.0.push(format!(
            "{what} -> {}\n{}\n{}",
            r.status,
            headers.join("\n"),
            r.body
        ));
    }

    #[track_caller]
    fn assert_free_of(&self, key: &str) {
        for answer in &self.0 {
            for form in forms(key) {
                assert!(
                    !answer.contains(&form),
                    "{form:?} (a form of the key) leaked in:\n{answer}"
                );
            }
        }
    }
}

#[test]
fn the_base64_here_is_the_standard_one() {
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"f"), "Zg");
    assert_eq!(base64(b"fo"), "Zm8");
    assert_eq!(base64(b"foo"), "Zm9v");
    assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    assert_eq!(base64(&[0xfb, 0xff]), "+/8");
}

#[tokio::test]
async fn no_answer_after_creation_shows_the_key_or_its_hash() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let org = app.first_org();
    let Joined {
        who: member,
        user_id: member_id,
        ..
    } = member_seeing(
        &app,
        &owner,
        "m@example.com",
        json!({"canAccessToAPI": true}),
        &[],
        &[],
        &[],
    )
    .await;
    let (key, id) = app.create_key(&owner, json!({"name": "watched"})).await;
    let (limited, limited_id) = app
        .create_key(&member, json!({"remaining": 1, "rateLimitMax": 1}))
        .await;
    let via = As::Key(key.clone());
    let mut seen = Transcript::default();

    let gets: [(&str, &[(&str, &str)]); 8] = [
        (USER_GET, &[]),
        ("/api/user.all", &[]),
        ("/api/user.getPermissions", &[]),
        ("/api/organization.all", &[]),
        ("/api/organization.active", &[]),
        ("/api/organization.one", &[("organizationId", &org)]),
        ("/api/organization.allInvitations", &[]),
        ("/api/organization.one", &[("organizationId", &key)]),
    ];
    for who in [&owner, &via, &member] {
        for (path, query) in gets {
            seen.add(path, &app.get(path, query, who).await);
        }
    }
    seen.add(
        "listSessions",
        &app.get("/api/user.listSessions", &[], &owner).await,
    );
    seen.add("get-session", &app.get(GET_SESSION, &[], &owner).await);

    // Changes to the key, through a session and through the key itself.
    for who in [&owner, &via] {
        let r = app
            .post(UPDATE_KEY, json!({"apiKeyId": id, "name": "renamed"}), who)
            .await;
        seen.add("update", &r);
    }
    let r = app
        .post(
            "/api/organization.update",
            json!({"organizationId": org, "name": "Renamed"}),
            &via,
        )
        .await;
    seen.add("organization.update", &r);
    let r = app
        .post(
            "/api/organization.inviteMember",
            json!({"email": "x@example.com", "role": "member"}),
            &via,
        )
        .await;
    seen.add("inviteMember", &r);

    // Errors: near misses of the key, the key where an id belongs, the key as a cookie.
    for bad in [
        with_char_changed(&key, 10),
        format!("{key}a"),
        key[..key.len() - 1].to_owned(),
        format!("{key} {key}"),
        apikey::generate("kg"),
    ] {
        seen.add("bad key", &app.get(USER_GET, &[], &As::Key(bad)).await);
    }
    for (path, body) in [
        (DELETE_KEY, json!({"apiKeyId": key})),
        (UPDATE_KEY, json!({"apiKeyId": key, "enabled": false})),
        (ROTATE_KEY, json!({"apiKeyId": key})),
        ("/api/user.remove", json!({"userId": key})),
        (
            CREATE_KEY,
            json!({"name": "k", "metadata": {"organizationId": key}}),
        ),
        (
            CREATE_KEY,
            json!({"name": key, "metadata": {"organizationId": org}, "prefix": key}),
        ),
    ] {
        seen.add(path, &app.post(path, body, &owner).await);
    }
    seen.add(
        "cookie",
        &app.get(USER_GET, &[], &As::Cookie(key.clone())).await,
    );
    let r = app
        .send(
            app.request(poem::http::Method::GET, USER_GET)
                .header("x-api-key", &key)
                .header("x-api-key", &key),
        )
        .await;
    seen.add("two headers", &r);

    // Refusals of a working key: disabled, throttled, not allowed.
    app.post(
        UPDATE_KEY,
        json!({"apiKeyId": id, "enabled": false}),
        &owner,
    )
    .await
    .assert_ok();
    seen.add("disabled", &app.get(USER_GET, &[], &via).await);
    app.post(UPDATE_KEY, json!({"apiKeyId": id, "enabled": true}), &owner)
        .await
        .assert_ok();
    let limited_via = As::Key(limited.clone());
    for _ in 0..3 {
        seen.add("limited", &app.get(USER_GET, &[], &limited_via).await);
    }
    grant(
        &app,
        &owner,
        &member_id,
        json!({"canAccessToAPI": false}),
        &[],
        &[],
        &[],
    )
    .await;
    seen.add("no api access", &app.get(USER_GET, &[], &limited_via).await);
    seen.add(
        "delete",
        &app.post(DELETE_KEY, json!({"apiKeyId": limited_id}), &owner)
            .await,
    );
    seen.add("deleted", &app.get(USER_GET, &[], &limited_via).await);

    // A rotation answers the new secret once; the old one and the new one stay hidden
    // from then on.
    let rotated = app
        .post(
            ROTATE_KEY,
            json!({"apiKeyId": id, "gracePeriodSeconds": 60}),
            &owner,
        )
        .await;
    let new = rotated.assert_ok()["key"].as_str().unwrap().to_owned();
    let rotated_text = rotated.body.to_string();
    for form in forms(&key) {
        assert!(
            !rotated_text.contains(&form),
            "the old key in {rotated_text}"
        );
    }
    for who in [&owner, &via, &As::Key(new.clone())] {
        seen.add("after rotation", &app.get(USER_GET, &[], who).await);
        seen.add(
            "after rotation",
            &app.get("/api/organization.active", &[], who).await,
        );
    }

    assert!(seen.0.len() > 50, "only {} answers", seen.0.len());
    assert!(
        seen.0.iter().any(|a| a.contains("\"start\"")),
        "no answer listed a key at all"
    );
    seen.assert_free_of(&key);
    seen.assert_free_of(&new);
    seen.assert_free_of(&limited);
    // The answers did show keys: by id and start only.
    let listing: Value = app.get(USER_GET, &[], &owner).await.body;
    assert_eq!(key_list(&listing)[0]["start"], new[..9]);
}
