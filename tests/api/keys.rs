//! API keys: creation in Dokploy's names and units, what is stored, listing, and managing
//! them (delete, update, rotate) — by their owner, an organization owner, or nobody else.

use keygate::auth::apikey;
use keygate::clock::{DAY, SECOND};
use keygate::domain::keys::create_from_shell;
use keygate::error::{Error, Reason};
use keygate::model::OrgId;
use serde_json::{Value, json};

use crate::helpers::*;

/// Asserts a 400 `validation_failed` whose issues name exactly `paths`.
#[track_caller]
fn assert_invalid(r: &Reply, paths: &[&str]) {
    r.assert_error(400, "validation_failed");
    assert_eq!(r.code(), "BAD_REQUEST");
    assert_eq!(r.issue_paths(), paths, "{}", r.body);
}

fn stored_hash(app: &TestApp, id: &str) -> Vec<u8> {
    app.column_bytes("SELECT key_hash FROM api_keys WHERE id = ?1", &[&id])
        .pop()
        .expect("the key's row")
}

// ---------------------------------------------------------------- creation

#[tokio::test]
async fn creating_a_key_answers_it_once_and_stores_only_its_sha256() {
    let app = TestApp::new();
    let (owner, signed_up) = app.owner().await;
    let org = app.first_org();

    let r = app
        .post(
            CREATE_KEY,
            json!({"name": "deploy bot", "metadata": {"organizationId": org}}),
            &owner,
        )
        .await;

    let b = r.assert_ok();
    let key = b["key"].as_str().unwrap();
    let id = b["id"].as_str().unwrap();
    assert!(key.starts_with("kg_"), "{key}");
    assert_eq!(key.len(), 3 + 43 + 6, "{key}");
    assert!(apikey::well_formed(key));
    assert_eq!(b["name"], "deploy bot");
    assert_eq!(b["start"], key[..9]);
    assert_eq!(b["prefix"], "kg");
    assert_eq!(b["organizationId"], org);
    assert_eq!(b["userId"], signed_up["user"]["id"]);
    assert_eq!(b["enabled"], true);
    assert_eq!(b["createdAt"], "2026-11-27T00:00:00.000Z");
    assert_eq!(b["requestCount"], 0);
    assert_eq!(b["rateLimitEnabled"], false);
    assert_eq!(b["scope"], json!({"readOnly": false}));
    for absent in [
        "expiresAt",
        "lastUsedAt",
        "rateLimitMax",
        "rateLimitTimeWindow",
        "remaining",
        "refillAmount",
        "refillInterval",
    ] {
        assert!(b.get(absent).is_none(), "{absent} in {b}");
    }

    assert_eq!(app.count("api_keys"), 1);
    assert_eq!(stored_hash(&app, id), sha256(key.as_bytes()));
    assert_eq!(app.key_column(id, "length(key_hash)"), 32);
    assert_eq!(app.key_column(id, "start"), key[..9]);
    assert_eq!(app.key_column(id, "name"), "deploy bot");
    assert_eq!(app.key_column(id, "organization_id"), org);
    assert_eq!(app.key_column(id, "user_id"), signed_up["user"]["id"]);
    assert_eq!(app.key_column(id, "previous_key_hash"), Value::Null);
    let files = app.database_files();
    assert!(
        !files.windows(key.len()).any(|w| w == key.as_bytes()),
        "the key is in the database files"
    );
    // Nor its random part on its own.
    let body = &key[3..46];
    assert!(!files.windows(body.len()).any(|w| w == body.as_bytes()));
}

#[tokio::test]
async fn a_new_key_acts_as_its_user_from_the_next_request() {
    let app = TestApp::new();
    let (owner, signed_up) = app.owner().await;
    let (key, _) = app.create_key(&owner, json!({})).await;

    let r = app.get(USER_GET, &[], &As::Key(key)).await;

    let b = r.assert_ok();
    assert_eq!(b["user"], signed_up["user"]);
    assert_eq!(b["member"]["role"], "owner");
    assert_eq!(b["member"]["organizationId"], app.first_org());
}

#[tokio::test]
async fn expires_in_counts_seconds_from_creation() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;

    let r = app
        .post(
            CREATE_KEY,
            json!({"name": "a day", "metadata": {"organizationId": app.first_org()},
                   "expiresIn": 86_400}),
            &owner,
        )
        .await;

    let b = r.assert_ok();
    assert_eq!(b["expiresAt"], "2026-11-28T00:00:00.000Z");
    let id = b["id"].as_str().unwrap();
    assert_eq!(app.key_column(id, "expires_at"), T0 + DAY);
}

#[tokio::test]
async fn expires_in_must_be_between_one_and_365_days() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let org = app.first_org();

    for bad in [86_399, 31_536_001, 0, -1] {
        let r = app
            .post(
                CREATE_KEY,
                json!({"name": "k", "metadata": {"organizationId": org}, "expiresIn": bad}),
                &owner,
            )
            .await;
        assert_invalid(&r, &["expiresIn"]);
    }
    assert_eq!(app.count("api_keys"), 0);

    for (good, expires) in [
        (86_400, "2026-11-28T00:00:00.000Z"),
        (31_536_000, "2027-11-27T00:00:00.000Z"),
    ] {
        let r = app
            .post(
                CREATE_KEY,
                json!({"name": "k", "metadata": {"organizationId": org}, "expiresIn": good}),
                &owner,
            )
            .await;
        assert_eq!(r.assert_ok()["expiresAt"], expires);
    }
    assert_eq!(app.count("api_keys"), 2);
}

#[tokio::test]
async fn limits_are_taken_and_stored_in_dokploys_names_and_units() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;

    let r = app
        .post(
            CREATE_KEY,
            json!({
                "name": "limited",
                "metadata": {"organizationId": app.first_org()},
                "rateLimitEnabled": true,
                "rateLimitTimeWindow": 60_000,
                "rateLimitMax": 10,
                "remaining": 100,
                "refillAmount": 50,
                "refillInterval": 3_600_000,
            }),
            &owner,
        )
        .await;

    let b = r.assert_ok();
    assert_eq!(b["rateLimitEnabled"], true);
    assert_eq!(b["rateLimitTimeWindow"], 60_000);
    assert_eq!(b["rateLimitMax"], 10);
    assert_eq!(b["remaining"], 100);
    assert_eq!(b["refillAmount"], 50);
    assert_eq!(b["refillInterval"], 3_600_000);
    assert_eq!(b["lastRefillAt"], "2026-11-27T00:00:00.000Z");
    let id = b["id"].as_str().unwrap();
    for (column, value) in [
        ("rate_limit_enabled", json!(1)),
        ("rate_limit_time_window", json!(60_000)),
        ("rate_limit_max", json!(10)),
        ("remaining", json!(100)),
        ("refill_amount", json!(50)),
        ("refill_interval", json!(3_600_000)),
        ("last_refill_at", json!(T0)),
    ] {
        assert_eq!(app.key_column(id, column), value, "{column}");
    }
}

#[tokio::test]
async fn inconsistent_limits_are_refused_field_by_field() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let org = app.first_org();
    let cases = [
        (json!({"rateLimitEnabled": true}), vec!["rateLimitMax"]),
        (json!({"rateLimitMax": 0}), vec!["rateLimitMax"]),
        (
            json!({"rateLimitMax": 5, "rateLimitTimeWindow": 999}),
            vec!["rateLimitTimeWindow"],
        ),
        (json!({"remaining": -1}), vec!["remaining"]),
        (
            json!({"remaining": 5, "refillAmount": 5}),
            vec!["refillInterval"],
        ),
        (
            json!({"remaining": 5, "refillInterval": 60_000}),
            vec!["refillAmount"],
        ),
        (
            json!({"refillAmount": 5, "refillInterval": 60_000}),
            vec!["remaining"],
        ),
        (
            json!({"remaining": 5, "refillAmount": 0, "refillInterval": 999}),
            vec!["refillAmount", "refillInterval"],
        ),
    ];
    for (extra, paths) in cases {
        let mut body = json!({"name": "k", "metadata": {"organizationId": org}});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = app.post(CREATE_KEY, body, &owner).await;
        assert_invalid(&r, &paths);
    }
    assert_eq!(app.count("api_keys"), 0);
}

#[tokio::test]
async fn a_custom_prefix_starts_the_key() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;

    let r = app
        .post(
            CREATE_KEY,
            json!({"name": "k", "metadata": {"organizationId": app.first_org()},
                   "prefix": "my-app"}),
            &owner,
        )
        .await;

    let b = r.assert_ok();
    let key = b["key"].as_str().unwrap();
    assert!(key.starts_with("my-app_"), "{key}");
    assert_eq!(key.len(), "my-app_".len() + 43 + 6);
    assert_eq!(b["prefix"], "my-app");
    assert_eq!(b["start"], key[..13]);
    let id = b["id"].as_str().unwrap();
    assert_eq!(app.key_column(id, "prefix"), "my-app");
    app.try_key(key).await.assert_ok();
}

#[tokio::test]
async fn prefixes_outside_1_to_32_letters_digits_dashes_and_underscores_are_refused() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let org = app.first_org();

    for bad in [
        String::new(),
        "my app".into(),
        "x".repeat(33),
        "é".into(),
        "a.b".into(),
        "a/b".into(),
    ] {
        let r = app
            .post(
                CREATE_KEY,
                json!({"name": "k", "metadata": {"organizationId": org}, "prefix": bad}),
                &owner,
            )
            .await;
        assert_invalid(&r, &["prefix"]);
    }
    assert_eq!(app.count("api_keys"), 0);

    let (key, _) = app
        .create_key(&owner, json!({"prefix": "x".repeat(32)}))
        .await;
    assert!(key.starts_with(&format!("{}_", "x".repeat(32))));
}

#[tokio::test]
async fn a_name_of_33_characters_is_refused_and_32_are_accepted() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let org = app.first_org();

    for bad in ["n".repeat(33), "   ".into(), String::new()] {
        let r = app
            .post(
                CREATE_KEY,
                json!({"name": bad, "metadata": {"organizationId": org}}),
                &owner,
            )
            .await;
        assert_invalid(&r, &["name"]);
    }
    assert_eq!(app.count("api_keys"), 0);

    let r = app
        .post(
            CREATE_KEY,
            json!({"name": "é".repeat(32), "metadata": {"organizationId": org}}),
            &owner,
        )
        .await;
    assert_eq!(r.assert_ok()["name"], "é".repeat(32));
    assert_eq!(app.count("api_keys"), 1);
}

#[tokio::test]
async fn an_empty_organization_id_is_refused() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;

    let r = app
        .post(
            CREATE_KEY,
            json!({"name": "k", "metadata": {"organizationId": " "}}),
            &owner,
        )
        .await;

    assert_invalid(&r, &["metadata.organizationId"]);
    assert_eq!(app.count("api_keys"), 0);
}

#[tokio::test]
async fn a_key_for_an_organization_the_caller_is_not_in_is_refused_as_not_a_member() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let Joined { who: member, .. } = member_seeing(
        &app,
        &owner,
        "m@example.com",
        json!({"canAccessToAPI": true}),
        &[],
        &[],
        &[],
    )
    .await;
    let other_org = app.create_org(&member, "Member's own").await;

    let r = app
        .post(
            CREATE_KEY,
            json!({"name": "k", "metadata": {"organizationId": other_org}}),
            &owner,
        )
        .await;

    r.assert_error(401, "not_a_member");
    assert_eq!(r.code(), "UNAUTHORIZED");
    assert_eq!(app.count("api_keys"), 0);
}

#[tokio::test]
async fn a_key_for_a_missing_organization_is_404() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;

    let r = app
        .post(
            CREATE_KEY,
            json!({"name": "k", "metadata": {"organizationId": "no-such-org"}}),
            &owner,
        )
        .await;

    r.assert_error(404, "not_found");
    assert_eq!(r.code(), "NOT_FOUND");
    assert_eq!(app.count("api_keys"), 0);
}

#[tokio::test]
async fn a_member_needs_can_access_to_api_to_create_a_key() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let Joined {
        who: member,
        user_id: member_id,
        ..
    } = app.invite_and_join(&owner, "m@example.com", "member").await;
    let body = json!({"name": "k", "metadata": {"organizationId": app.first_org()}});

    let r = app.post(CREATE_KEY, body.clone(), &member).await;

    r.assert_error(401, "permission_denied");
    assert_eq!(r.code(), "UNAUTHORIZED");
    assert_eq!(app.count("api_keys"), 0);

    grant(
        &app,
        &owner,
        &member_id,
        json!({"canAccessToAPI": true}),
        &[],
        &[],
        &[],
    )
    .await;
    let r = app.post(CREATE_KEY, body, &member).await;
    assert_eq!(r.assert_ok()["userId"], member_id);
    assert_eq!(app.count("api_keys"), 1);
}

#[tokio::test]
async fn an_admin_creates_keys_whatever_its_flags() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let Joined {
        who: admin,
        user_id: admin_id,
        ..
    } = app.invite_and_join(&owner, "a@example.com", "admin").await;
    grant(
        &app,
        &owner,
        &admin_id,
        json!({"canAccessToAPI": false}),
        &[],
        &[],
        &[],
    )
    .await;

    let (key, _) = app.create_key(&admin, json!({})).await;

    assert_eq!(app.count("api_keys"), 1);
    assert_eq!(app.try_key(&key).await.assert_ok()["role"], "admin");
}

#[tokio::test]
async fn a_session_creates_keys_for_any_of_its_organizations() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let second = app.create_org(&owner, "Second").await;

    let (key, id) = app
        .create_key(&owner, json!({"metadata": {"organizationId": second}}))
        .await;

    assert_eq!(app.key_column(&id, "organization_id"), second);
    let active = app
        .get("/api/organization.active", &[], &As::Key(key))
        .await;
    assert_eq!(active.assert_ok()["id"], second);
}

// ---------------------------------------------------------------- listing

#[tokio::test]
async fn user_get_lists_the_callers_keys_in_the_order_they_were_made_without_secret_or_hash() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (first, first_id) = app
        .create_key(
            &owner,
            json!({"name": "first", "expiresIn": 86_400, "rateLimitMax": 5,
                   "rateLimitTimeWindow": 60_000, "remaining": 9,
                   "scope": {"readOnly": true}}),
        )
        .await;
    app.clock.advance(SECOND);
    let (second, second_id) = app.create_key(&owner, json!({"name": "second"})).await;

    let keys = app.keys_of(&owner).await;

    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0]["id"], first_id);
    assert_eq!(keys[1]["id"], second_id);
    let mut fields: Vec<&str> = keys[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "createdAt",
            "enabled",
            "expiresAt",
            "id",
            "name",
            "organizationId",
            "prefix",
            "rateLimitEnabled",
            "rateLimitMax",
            "rateLimitTimeWindow",
            "remaining",
            "requestCount",
            "scope",
            "start",
            "unused",
            "updatedAt",
            "userId",
        ]
    );
    let k = &keys[0];
    assert_eq!(k["name"], "first");
    assert_eq!(k["start"], first[..9]);
    assert_eq!(k["organizationId"], app.first_org());
    assert_eq!(k["createdAt"], "2026-11-27T00:00:00.000Z");
    assert_eq!(k["expiresAt"], "2026-11-28T00:00:00.000Z");
    assert_eq!(k["enabled"], true);
    assert_eq!(k["requestCount"], 0);
    assert_eq!(k["rateLimitMax"], 5);
    assert_eq!(k["rateLimitTimeWindow"], 60_000);
    assert_eq!(k["remaining"], 9);
    assert_eq!(k["scope"], json!({"readOnly": true}));
    assert_eq!(keys[1]["createdAt"], "2026-11-27T00:00:01.000Z");

    let text = serde_json::to_string(&keys).unwrap();
    for secret in [&first, &second] {
        assert!(!text.contains(secret.as_str()), "a key is listed: {text}");
        assert!(
            !text.contains(&secret[9..]),
            "a key's rest is listed: {text}"
        );
    }
}

const LIST_KEYS: &str = "/api/user.listApiKeys";

/// Makes `n` keys as `who`, named `{name}0`, `{name}1`...; answers their ids in order.
async fn make_keys(app: &TestApp, who: &As, name: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let (_, id) = app
            .create_key(who, json!({"name": format!("{name}{i}")}))
            .await;
        ids.push(id);
    }
    ids
}

#[tokio::test]
async fn user_get_holds_the_first_100_keys_and_counts_every_one() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let made = make_keys(&app, &owner, "k", 103).await;

    let r = app.get(USER_GET, &[], &owner).await;

    let me = r.assert_ok();
    assert_eq!(column(&me["apiKeys"], "id"), made[..100]);
    assert_eq!(me["apiKeysTotal"], 103);
}

#[tokio::test]
async fn user_list_api_keys_pages_through_every_key_in_the_order_they_were_made() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let mut made = Vec::new();
    for i in 0..7 {
        // Some keys share a millisecond with the one before.
        app.clock.advance(SECOND * (i % 2));
        made.extend(make_keys(&app, &owner, &format!("k{i}-"), 1).await);
    }

    let first = app.get(LIST_KEYS, &[("limit", "3")], &owner).await;
    let last = app
        .get(LIST_KEYS, &[("limit", "3"), ("offset", "6")], &owner)
        .await;
    let past = app.get(LIST_KEYS, &[("offset", "7")], &owner).await;
    let far = app
        .get(LIST_KEYS, &[("offset", &i64::MAX.to_string())], &owner)
        .await;
    let all = app.get(LIST_KEYS, &[], &owner).await;

    assert_eq!(first.column("id"), made[..3]);
    assert_eq!(last.column("id"), made[6..]);
    assert!(past.column("id").is_empty() && far.column("id").is_empty());
    assert_eq!(all.column("id"), made);
    for r in [&first, &last, &past, &far, &all] {
        assert_eq!(r.total(), 7);
    }
    // Each key as user.get shows it.
    let me = app.get(USER_GET, &[], &owner).await;
    assert_eq!(all.body, me.body["apiKeys"]);
}

#[tokio::test]
async fn paging_through_keys_neither_skips_nor_repeats_one_made_meanwhile() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let mut made = make_keys(&app, &owner, "before", 5).await;

    let mut seen = Vec::new();
    for round in 0.. {
        let offset = seen.len().to_string();
        let r = app
            .get(LIST_KEYS, &[("limit", "2"), ("offset", &offset)], &owner)
            .await;
        assert_eq!(r.total(), made.len() as u64);
        let page = r.column("id");
        let done = page.len() < 2;
        seen.extend(page);
        if done {
            break;
        }
        // Between pages more keys come, in the same millisecond as the others, and once
        // after the clock stepped back.
        if round == 1 {
            app.clock.advance(-DAY);
        }
        if round < 3 {
            made.extend(make_keys(&app, &owner, &format!("during{round}-"), round + 1).await);
        }
    }

    assert_eq!(seen, made);
}

#[tokio::test]
async fn user_list_api_keys_refuses_a_limit_outside_1_to_100_and_a_bad_offset() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    make_keys(&app, &owner, "k", 1).await;

    app.assert_refuses_bad_pages(LIST_KEYS, &owner).await;

    let edges = [
        app.get(LIST_KEYS, &[("limit", "1")], &owner).await,
        app.get(LIST_KEYS, &[("limit", "100"), ("offset", "0")], &owner)
            .await,
    ];
    for r in edges {
        assert_eq!(r.column("id").len(), 1);
    }
}

#[tokio::test]
async fn a_key_lists_and_counts_only_the_keys_of_its_organization() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let Joined { who: member, .. } = member_seeing(
        &app,
        &owner,
        "m@example.com",
        json!({"canAccessToAPI": true}),
        &[],
        &[],
        &[],
    )
    .await;
    let first_org = make_keys(&app, &owner, "first", 3).await;
    make_keys(&app, &member, "member's", 2).await;
    let second = app.create_org(&owner, "Second").await;
    let (key, _) = app
        .create_key(
            &owner,
            json!({"name": "second", "metadata": {"organizationId": second}}),
        )
        .await;

    let by_key = app.get(LIST_KEYS, &[], &As::Key(key.clone())).await;
    let by_session = app.get(LIST_KEYS, &[], &owner).await;
    let key_me = app.get(USER_GET, &[], &As::Key(key.clone())).await;
    let first_key = As::Key(app.create_key(&owner, json!({})).await.0);
    let paged = app
        .get(LIST_KEYS, &[("limit", "2"), ("offset", "2")], &first_key)
        .await;

    assert_eq!(by_key.column("name"), ["second"]);
    assert_eq!(by_key.total(), 1);
    assert_eq!(key_me.assert_ok()["apiKeysTotal"], 1);
    assert_eq!(by_session.total(), 4);
    assert_eq!(
        by_session.column("name"),
        ["first0", "first1", "first2", "second"]
    );
    // Four keys of the owner's in the first organization now: the member's stay out.
    assert_eq!(paged.total(), 4);
    assert_eq!(paged.column("id")[0], first_org[2]);
    assert_eq!(paged.column("name"), ["first2", "test key"]);
}

#[tokio::test]
async fn user_list_api_keys_shows_usage_not_yet_written_like_user_get() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, id) = app.create_key(&owner, json!({"remaining": 10})).await;
    for _ in 0..3 {
        app.try_key(&key).await.assert_ok();
    }

    let listed = app.get(LIST_KEYS, &[], &owner).await;

    let row = &listed.assert_ok()[0];
    assert_eq!(row["id"], id);
    assert_eq!(row["requestCount"], 3);
    assert_eq!(row["remaining"], 7);
    assert_eq!(app.key_column(&id, "request_count"), 0, "not written yet");
    assert_eq!(*row, app.keys_of(&owner).await[0]);
}

#[tokio::test]
async fn user_get_lists_only_the_callers_own_keys() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let Joined { who: member, .. } = member_seeing(
        &app,
        &owner,
        "m@example.com",
        json!({"canAccessToAPI": true}),
        &[],
        &[],
        &[],
    )
    .await;
    let (_, owners) = app.create_key(&owner, json!({"name": "owner's"})).await;
    let (_, members) = app.create_key(&member, json!({"name": "member's"})).await;

    let of_owner = app.keys_of(&owner).await;
    let of_member = app.keys_of(&member).await;

    assert_eq!(of_owner.len(), 1);
    assert_eq!(of_owner[0]["id"], owners);
    assert_eq!(of_member.len(), 1);
    assert_eq!(of_member[0]["id"], members);
}

#[tokio::test]
async fn user_get_through_a_key_lists_only_the_keys_of_its_organization() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let second = app.create_org(&owner, "Second").await;
    let (_, first_id) = app.create_key(&owner, json!({"name": "first org"})).await;
    let (key, second_id) = app
        .create_key(
            &owner,
            json!({"name": "second org", "metadata": {"organizationId": second}}),
        )
        .await;

    let via_key = app.keys_of(&As::Key(key)).await;
    let via_session = app.keys_of(&owner).await;

    let ids = |v: &[Value]| -> Vec<String> {
        let mut ids: Vec<String> = v.iter().map(|k| k["id"].as_str().unwrap().into()).collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&via_key), std::slice::from_ref(&second_id));
    let mut both = vec![first_id, second_id];
    both.sort();
    assert_eq!(ids(&via_session), both);
}

// ---------------------------------------------------------------- delete

#[tokio::test]
async fn deleting_a_key_removes_its_row_and_refuses_it_on_the_very_next_request() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, id) = app.create_key(&owner, json!({})).await;
    let (other, _) = app.create_key(&owner, json!({"name": "other"})).await;
    app.try_key(&key).await.assert_ok();

    let r = app.post(DELETE_KEY, json!({"apiKeyId": id}), &owner).await;

    assert_eq!(r.assert_ok(), &json!({"success": true}));
    assert_eq!(app.count("api_keys"), 1);
    assert_eq!(
        app.scalar("SELECT count(*) FROM api_keys WHERE id = ?1", &[&id]),
        0
    );
    let refused = app.try_key(&key).await;
    refused.assert_error(401, "invalid_api_key");
    assert_eq!(refused.code(), "UNAUTHORIZED");
    app.try_key(&other).await.assert_ok();
}

#[tokio::test]
async fn a_key_can_delete_itself() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, id) = app.create_key(&owner, json!({})).await;
    let me = As::Key(key.clone());

    app.post(DELETE_KEY, json!({"apiKeyId": id}), &me)
        .await
        .assert_ok();

    assert_eq!(app.count("api_keys"), 0);
    app.try_key(&key).await.assert_error(401, "invalid_api_key");
}

#[tokio::test]
async fn deleting_updating_or_rotating_a_missing_key_is_404() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    app.create_key(&owner, json!({})).await;

    for (path, body) in [
        (DELETE_KEY, json!({"apiKeyId": "no-such-key"})),
        (
            UPDATE_KEY,
            json!({"apiKeyId": "no-such-key", "enabled": false}),
        ),
        (ROTATE_KEY, json!({"apiKeyId": "no-such-key"})),
    ] {
        let r = app.post(path, body, &owner).await;
        r.assert_error(404, "not_found");
        assert_eq!(r.code(), "NOT_FOUND", "{path}");
    }
    assert_eq!(app.count("api_keys"), 1);
    assert_eq!(app.scalar("SELECT enabled FROM api_keys", &[]), 1);
}

#[tokio::test]
async fn the_organization_owner_may_delete_a_members_key_but_not_update_or_rotate_it() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let Joined { who: member, .. } = member_seeing(
        &app,
        &owner,
        "m@example.com",
        json!({"canAccessToAPI": true}),
        &[],
        &[],
        &[],
    )
    .await;
    let (key, id) = app.create_key(&member, json!({"name": "member's"})).await;
    let hash = stored_hash(&app, &id);

    let update = app
        .post(
            UPDATE_KEY,
            json!({"apiKeyId": id, "name": "taken", "enabled": false}),
            &owner,
        )
        .await;
    let rotate = app.post(ROTATE_KEY, json!({"apiKeyId": id}), &owner).await;

    update.assert_error(401, "permission_denied");
    rotate.assert_error(401, "permission_denied");
    assert_eq!(app.key_column(&id, "name"), "member's");
    assert_eq!(app.key_column(&id, "enabled"), 1);
    assert_eq!(stored_hash(&app, &id), hash);
    app.try_key(&key).await.assert_ok();

    let delete = app.post(DELETE_KEY, json!({"apiKeyId": id}), &owner).await;

    assert_eq!(delete.assert_ok(), &json!({"success": true}));
    assert_eq!(app.count("api_keys"), 0);
    app.try_key(&key).await.assert_error(401, "invalid_api_key");
}

#[tokio::test]
async fn an_admin_or_member_cannot_touch_another_users_key() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let Joined { who: admin, .. } = app.invite_and_join(&owner, "a@example.com", "admin").await;
    let Joined { who: member, .. } = member_seeing(
        &app,
        &owner,
        "m@example.com",
        json!({"canAccessToAPI": true}),
        &[],
        &[],
        &[],
    )
    .await;
    let (_, owners) = app.create_key(&owner, json!({"name": "owner's"})).await;
    let (_, members) = app.create_key(&member, json!({"name": "member's"})).await;

    for (who, id) in [(&admin, &members), (&admin, &owners), (&member, &owners)] {
        for (path, body) in [
            (DELETE_KEY, json!({"apiKeyId": id})),
            (UPDATE_KEY, json!({"apiKeyId": id, "enabled": false})),
            (ROTATE_KEY, json!({"apiKeyId": id})),
        ] {
            let r = app.post(path, body, who).await;
            r.assert_error(401, "permission_denied");
        }
    }
    assert_eq!(app.count("api_keys"), 2);
    assert_eq!(
        app.scalar("SELECT count(*) FROM api_keys WHERE enabled = 1", &[]),
        2
    );
}

#[tokio::test]
async fn another_users_key_in_another_organization_is_wrong_organization() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let Joined { who: member, .. } = member_seeing(
        &app,
        &owner,
        "m@example.com",
        json!({"canAccessToAPI": true}),
        &[],
        &[],
        &[],
    )
    .await;
    let own = app.create_org(&member, "Own").await;
    let (key, id) = app
        .create_key(&member, json!({"metadata": {"organizationId": own}}))
        .await;
    let hash = stored_hash(&app, &id);

    for (path, body) in [
        (DELETE_KEY, json!({"apiKeyId": id})),
        (UPDATE_KEY, json!({"apiKeyId": id, "enabled": false})),
        (ROTATE_KEY, json!({"apiKeyId": id})),
    ] {
        let r = app.post(path, body, &owner).await;
        r.assert_error(401, "wrong_organization");
        assert_eq!(r.code(), "UNAUTHORIZED");
    }
    assert_eq!(app.count("api_keys"), 1);
    assert_eq!(app.key_column(&id, "enabled"), 1);
    assert_eq!(stored_hash(&app, &id), hash);
    app.try_key(&key).await.assert_ok();
}

#[tokio::test]
async fn a_key_manages_the_keys_of_its_organization_as_its_user_would() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let Joined { who: member, .. } = member_seeing(
        &app,
        &owner,
        "m@example.com",
        json!({"canAccessToAPI": true}),
        &[],
        &[],
        &[],
    )
    .await;
    let (owner_key, owners) = app.create_key(&owner, json!({"name": "owner's"})).await;
    let (member_key, members) = app.create_key(&member, json!({"name": "member's"})).await;
    let (via_owner, via_member) = (As::Key(owner_key), As::Key(member_key.clone()));
    let touch = |id: &str| {
        [
            (DELETE_KEY, json!({"apiKeyId": id})),
            (UPDATE_KEY, json!({"apiKeyId": id, "enabled": false})),
            (ROTATE_KEY, json!({"apiKeyId": id})),
        ]
    };

    for (path, body) in touch("no-such-key") {
        app.post(path, body, &via_owner)
            .await
            .assert_error(404, "not_found");
    }
    for (path, body) in touch(&owners) {
        app.post(path, body, &via_member)
            .await
            .assert_error(401, "permission_denied");
    }
    for (path, body) in touch(&members).into_iter().skip(1) {
        app.post(path, body, &via_owner)
            .await
            .assert_error(401, "permission_denied");
    }
    assert_eq!(app.count("api_keys"), 2);
    assert_eq!(
        app.scalar("SELECT count(*) FROM api_keys WHERE enabled = 1", &[]),
        2
    );
    app.try_key(&member_key).await.assert_ok();

    let delete = app
        .post(DELETE_KEY, json!({"apiKeyId": members}), &via_owner)
        .await;

    assert_eq!(delete.assert_ok(), &json!({"success": true}));
    assert_eq!(app.count("api_keys"), 1);
    app.try_key(&member_key)
        .await
        .assert_error(401, "invalid_api_key");
}

#[tokio::test]
async fn a_key_cannot_manage_its_users_keys_of_another_organization() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let second = app.create_org(&owner, "Second").await;
    let (first_key, _) = app.create_key(&owner, json!({})).await;
    let (_, second_id) = app
        .create_key(&owner, json!({"metadata": {"organizationId": second}}))
        .await;
    let via = As::Key(first_key);

    for (path, body) in [
        (DELETE_KEY, json!({"apiKeyId": second_id})),
        (UPDATE_KEY, json!({"apiKeyId": second_id, "enabled": false})),
        (ROTATE_KEY, json!({"apiKeyId": second_id})),
    ] {
        app.post(path, body, &via)
            .await
            .assert_error(401, "wrong_organization");
    }
    let create = app
        .post(
            CREATE_KEY,
            json!({"name": "k", "metadata": {"organizationId": second}}),
            &via,
        )
        .await;
    create.assert_error(401, "wrong_organization");
    assert_eq!(app.count("api_keys"), 2);
    assert_eq!(app.key_column(&second_id, "enabled"), 1);
}

// ---------------------------------------------------------------- update

#[tokio::test]
async fn updating_a_key_renames_it() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, id) = app.create_key(&owner, json!({"name": "old"})).await;
    app.clock.advance(SECOND);

    let r = app
        .post(UPDATE_KEY, json!({"apiKeyId": id, "name": "new"}), &owner)
        .await;

    let b = r.assert_ok();
    assert_eq!(b["name"], "new");
    assert_eq!(b["enabled"], true);
    assert_eq!(b["updatedAt"], "2026-11-27T00:00:01.000Z");
    assert!(b.get("key").is_none(), "{b}");
    assert_eq!(app.key_column(&id, "name"), "new");
    assert_eq!(app.key_column(&id, "updated_at"), T0 + SECOND);
    assert_eq!(app.keys_of(&owner).await[0]["name"], "new");
    app.try_key(&key).await.assert_ok();
}

#[tokio::test]
async fn disabling_a_key_refuses_it_at_once_and_enabling_it_restores_it_at_once() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, id) = app.create_key(&owner, json!({})).await;
    app.try_key(&key).await.assert_ok();

    let r = app
        .post(
            UPDATE_KEY,
            json!({"apiKeyId": id, "enabled": false}),
            &owner,
        )
        .await;

    assert_eq!(r.assert_ok()["enabled"], false);
    assert_eq!(app.key_column(&id, "enabled"), 0);
    let refused = app.try_key(&key).await;
    refused.assert_error(401, "api_key_disabled");
    assert_eq!(refused.code(), "UNAUTHORIZED");
    // The session still manages it.
    assert_eq!(app.keys_of(&owner).await[0]["enabled"], false);

    app.post(UPDATE_KEY, json!({"apiKeyId": id, "enabled": true}), &owner)
        .await
        .assert_ok();

    assert_eq!(app.key_column(&id, "enabled"), 1);
    app.try_key(&key).await.assert_ok();
}

#[tokio::test]
async fn a_new_name_of_33_characters_is_refused_and_nothing_changes() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (_, id) = app.create_key(&owner, json!({"name": "kept"})).await;

    for bad in ["n".repeat(33), " ".into()] {
        let r = app
            .post(
                UPDATE_KEY,
                json!({"apiKeyId": id, "name": bad, "enabled": false}),
                &owner,
            )
            .await;
        assert_invalid(&r, &["name"]);
    }
    assert_eq!(app.key_column(&id, "name"), "kept");
    assert_eq!(app.key_column(&id, "enabled"), 1);
}

// ---------------------------------------------------------------- rotate

#[tokio::test]
async fn rotating_gives_the_same_key_a_new_secret_and_the_old_one_fails_at_once() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (old, id) = app.create_key(&owner, json!({"name": "rotated"})).await;
    app.try_key(&old).await.assert_ok();

    let r = app.post(ROTATE_KEY, json!({"apiKeyId": id}), &owner).await;

    let b = r.assert_ok();
    let new = b["key"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(new.starts_with("kg_") && apikey::well_formed(&new), "{new}");
    assert_eq!(b["id"], id);
    assert_eq!(b["name"], "rotated");
    assert_eq!(b["start"], new[..9]);
    assert!(b.get("previousSecretExpiresAt").is_none(), "{b}");
    assert_eq!(app.count("api_keys"), 1);
    assert_eq!(stored_hash(&app, &id), sha256(new.as_bytes()));
    assert_eq!(app.key_column(&id, "start"), new[..9]);
    assert_eq!(app.key_column(&id, "previous_key_hash"), Value::Null);
    assert_eq!(app.key_column(&id, "previous_expires_at"), Value::Null);

    let refused = app.try_key(&old).await;
    refused.assert_error(401, "invalid_api_key");
    assert_eq!(refused.code(), "UNAUTHORIZED");
    app.try_key(&new).await.assert_ok();
    assert_eq!(app.keys_of(&owner).await[0]["start"], new[..9]);
}

#[tokio::test]
async fn the_old_secret_works_for_the_grace_period_and_not_a_millisecond_longer() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (old, id) = app.create_key(&owner, json!({})).await;
    app.try_key(&old).await.assert_ok();

    let r = app
        .post(
            ROTATE_KEY,
            json!({"apiKeyId": id, "gracePeriodSeconds": 60}),
            &owner,
        )
        .await;

    let b = r.assert_ok();
    let new = b["key"].as_str().unwrap().to_owned();
    assert_eq!(b["previousSecretExpiresAt"], "2026-11-27T00:01:00.000Z");
    assert_eq!(stored_hash(&app, &id), sha256(new.as_bytes()));
    assert_eq!(
        app.column_bytes(
            "SELECT previous_key_hash FROM api_keys WHERE id = ?1",
            &[&id]
        ),
        [sha256(old.as_bytes())]
    );
    assert_eq!(app.key_column(&id, "previous_expires_at"), T0 + 60 * SECOND);

    app.try_key(&old).await.assert_ok();
    app.try_key(&new).await.assert_ok();
    app.clock.advance(60 * SECOND - 1);
    app.try_key(&old).await.assert_ok();

    app.clock.advance(1);

    app.try_key(&old).await.assert_error(401, "invalid_api_key");
    app.try_key(&new).await.assert_ok();
    let files = app.database_files();
    for secret in [&old, &new] {
        assert!(!files.windows(secret.len()).any(|w| w == secret.as_bytes()));
    }
}

#[tokio::test]
async fn disabling_or_deleting_a_key_in_its_grace_period_refuses_both_secrets_at_once() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (old, id) = app.create_key(&owner, json!({})).await;
    let r = app
        .post(
            ROTATE_KEY,
            json!({"apiKeyId": id, "gracePeriodSeconds": 3600}),
            &owner,
        )
        .await;
    let new = r.assert_ok()["key"].as_str().unwrap().to_owned();
    app.try_key(&old).await.assert_ok();
    app.try_key(&new).await.assert_ok();

    app.post(
        UPDATE_KEY,
        json!({"apiKeyId": id, "enabled": false}),
        &owner,
    )
    .await
    .assert_ok();

    for secret in [&old, &new] {
        app.try_key(secret)
            .await
            .assert_error(401, "api_key_disabled");
    }

    app.post(DELETE_KEY, json!({"apiKeyId": id}), &owner)
        .await
        .assert_ok();

    for secret in [&old, &new] {
        app.try_key(secret)
            .await
            .assert_error(401, "invalid_api_key");
    }
    assert_eq!(app.count("api_keys"), 0);
}

#[tokio::test]
async fn a_grace_period_over_seven_days_or_below_zero_is_refused() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (old, id) = app.create_key(&owner, json!({})).await;
    let hash = stored_hash(&app, &id);

    for bad in [604_801, -1] {
        let r = app
            .post(
                ROTATE_KEY,
                json!({"apiKeyId": id, "gracePeriodSeconds": bad}),
                &owner,
            )
            .await;
        assert_invalid(&r, &["gracePeriodSeconds"]);
    }
    assert_eq!(stored_hash(&app, &id), hash);
    app.try_key(&old).await.assert_ok();

    let r = app
        .post(
            ROTATE_KEY,
            json!({"apiKeyId": id, "gracePeriodSeconds": 604_800}),
            &owner,
        )
        .await;
    assert_eq!(
        r.assert_ok()["previousSecretExpiresAt"],
        "2026-12-04T00:00:00.000Z"
    );
}

#[tokio::test]
async fn a_second_rotation_without_grace_ends_the_first_secrets_grace_at_once() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (first, id) = app.create_key(&owner, json!({})).await;
    let second = app
        .post(
            ROTATE_KEY,
            json!({"apiKeyId": id, "gracePeriodSeconds": 3600}),
            &owner,
        )
        .await;
    let second = second.assert_ok()["key"].as_str().unwrap().to_owned();
    app.try_key(&first).await.assert_ok();

    let third = app.post(ROTATE_KEY, json!({"apiKeyId": id}), &owner).await;

    let third = third.assert_ok()["key"].as_str().unwrap().to_owned();
    app.try_key(&first)
        .await
        .assert_error(401, "invalid_api_key");
    app.try_key(&second)
        .await
        .assert_error(401, "invalid_api_key");
    app.try_key(&third).await.assert_ok();
    assert_eq!(app.key_column(&id, "previous_key_hash"), Value::Null);
}

#[tokio::test]
async fn a_key_can_rotate_itself() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (old, id) = app.create_key(&owner, json!({})).await;

    let r = app
        .post(ROTATE_KEY, json!({"apiKeyId": id}), &As::Key(old.clone()))
        .await;

    let new = r.assert_ok()["key"].as_str().unwrap().to_owned();
    assert_eq!(stored_hash(&app, &id), sha256(new.as_bytes()));
    app.try_key(&old).await.assert_error(401, "invalid_api_key");
    app.try_key(&new).await.assert_ok();
}

// ---------------------------------------------------------------- from the shell

#[tokio::test]
async fn a_key_created_from_the_shell_works_over_http() {
    let app = TestApp::new();
    let (owner, signed_up) = app.owner().await;
    let org = OrgId(app.first_org());

    let made = create_from_shell(&app.state, " Owner@Example.com ", &org, "from the shell")
        .expect("the key is created");

    assert!(made.secret.starts_with("kg_") && apikey::well_formed(&made.secret));
    assert_eq!(made.user.email, OWNER_EMAIL);
    let id = made.key.id.to_string();
    assert_eq!(app.count("api_keys"), 1);
    assert_eq!(stored_hash(&app, &id), sha256(made.secret.as_bytes()));
    assert_eq!(app.key_column(&id, "name"), "from the shell");
    assert_eq!(app.key_column(&id, "user_id"), signed_up["user"]["id"]);
    assert_eq!(app.key_column(&id, "organization_id"), org.to_string());
    let r = app.get(USER_GET, &[], &As::Key(made.secret.clone())).await;
    assert_eq!(r.assert_ok()["user"], signed_up["user"]);
    assert_eq!(app.keys_of(&owner).await[0]["name"], "from the shell");
}

#[tokio::test]
async fn the_shell_refuses_unknown_users_non_members_and_members_without_api_access() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let Joined {
        who: member,
        user_id: member_id,
        ..
    } = app.invite_and_join(&owner, "m@example.com", "member").await;
    let own = OrgId(app.create_org(&member, "Own").await);
    let first = OrgId(app.first_org());

    let unknown = create_from_shell(&app.state, "nobody@example.com", &first, "k");
    let outsider = create_from_shell(&app.state, OWNER_EMAIL, &own, "k");
    let no_api = create_from_shell(&app.state, "m@example.com", &first, "k");
    let bad_name = create_from_shell(&app.state, OWNER_EMAIL, &first, &"n".repeat(33));

    assert!(matches!(unknown, Err(Error::NotFound(_))));
    assert!(matches!(outsider, Err(Error::Denied(Reason::NotAMember))));
    assert!(matches!(
        no_api,
        Err(Error::Denied(Reason::PermissionDenied))
    ));
    assert!(matches!(bad_name, Err(Error::Invalid { .. })));
    assert_eq!(app.count("api_keys"), 0);

    grant(
        &app,
        &owner,
        &member_id,
        json!({"canAccessToAPI": true}),
        &[],
        &[],
        &[],
    )
    .await;
    let made = create_from_shell(&app.state, "m@example.com", &first, "k").unwrap();
    app.try_key(&made.secret).await.assert_ok();
}

/// `user.get` names its key list `apiKeys`, in camel case like every other field of the
/// API (and Dokploy), never `api_keys`.
#[tokio::test]
async fn user_get_names_its_key_list_api_keys_in_camel_case() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (_, id) = app.create_key(&owner, json!({})).await;

    let r = app.get(USER_GET, &[], &owner).await;

    let b = r.assert_ok();
    assert!(b.get("api_keys").is_none(), "{b}");
    assert_eq!(b["apiKeys"][0]["id"], id, "{b}");
}

/// `user.updateApiKey` and `user.rotateApiKey` answer the key with the usage held in
/// memory folded in, as `user.get` does: the same request count, last use and quota.
#[tokio::test]
async fn update_and_rotate_answer_the_same_usage_as_user_get() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, id) = app.create_key(&owner, json!({"remaining": 10})).await;
    for _ in 0..3 {
        app.try_key(&key).await.assert_ok();
    }

    let updated = app
        .post(
            UPDATE_KEY,
            json!({"apiKeyId": id, "name": "renamed"}),
            &owner,
        )
        .await;
    let rotated = app.post(ROTATE_KEY, json!({"apiKeyId": id}), &owner).await;

    for r in [&updated, &rotated] {
        let b = r.assert_ok();
        assert_eq!(b["requestCount"], 3, "{b}");
        assert_eq!(b["remaining"], 7, "{b}");
        assert_eq!(b["lastUsedAt"], "2026-11-27T00:00:00.000Z", "{b}");
    }
}
