//! A key's usage over time: requests per hour by outcome (admitted, rate limited, over
//! quota, refused), counted in memory and written by the usage flush, read with
//! `user.apiKeyUsage`; the key's last client; keys unused for a while; the retention of
//! the hours; and refusals of disabled or expired keys in the audit log, one event per
//! key and reason per flush.

use std::net::SocketAddr;

use keygate::clock::{DAY, HOUR, MINUTE, SECOND, rfc3339};
use keygate::domain::keys::{flush_at_stop, flush_usage, prune_usage};
use poem::http::Method;
use serde_json::{Value, json};

use crate::helpers::*;

const USAGE: &str = "/api/user.apiKeyUsage";

/// `user.apiKeyUsage` of key `id` as `who`, with `query` added.
async fn usage_of(app: &TestApp, who: &As, id: &str, query: &[(&str, &str)]) -> Reply {
    let mut q = vec![("apiKeyId", id)];
    q.extend_from_slice(query);
    app.get(USAGE, &q, who).await
}

/// The usage of key `id` over the default span, which must answer.
async fn usage(app: &TestApp, who: &As, id: &str) -> Value {
    usage_of(app, who, id, &[]).await.assert_ok().clone()
}

/// One hour of a series as the API shows it: ok, rate limited, usage exceeded, refused.
fn hour(start: i64, [ok, rate_limited, usage_exceeded, refused]: [i64; 4]) -> Value {
    json!({"hour": rfc3339(start), "ok": ok, "rateLimited": rate_limited,
           "usageExceeded": usage_exceeded, "refused": refused})
}

/// The counts of a series' `totals`, in `hour`'s order.
fn totals(u: &Value) -> [i64; 4] {
    let t = &u["totals"];
    ["ok", "rateLimited", "usageExceeded", "refused"].map(|f| t[f].as_i64().unwrap())
}

/// The hour rows the database holds for key `id`: (hour, ok, rate limited, usage
/// exceeded, refused), in order.
fn stored_hours(app: &TestApp, id: &str) -> Vec<[i64; 5]> {
    app.state
        .db
        .read(|c| {
            let mut st = c.prepare(
                "SELECT hour, ok, rate_limited, usage_exceeded, refused FROM key_usage_hours
                 WHERE key_id = ?1 ORDER BY hour",
            )?;
            let rows = st.query_map([id], |r| {
                Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?])
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .unwrap()
}

/// `n` requests with `key`, each answered `status`.
async fn send(app: &TestApp, key: &str, n: usize, status: u16) {
    for i in 0..n {
        let r = app.try_key(key).await;
        assert_eq!(r.status, status, "request {} of {n}: {}", i + 1, r.body);
    }
}

/// A request with `key` from `address` with `user_agent`: the middleware sees both.
async fn send_as_client(app: &TestApp, key: &str, address: &str, user_agent: &str) -> Reply {
    let remote = SocketAddr::new(address.parse().unwrap(), 40_000);
    app.send_from(
        remote,
        Method::GET,
        "/api/user.getPermissions",
        &[("x-api-key", key), ("user-agent", user_agent)],
        Value::Null,
    )
    .await
}

/// The key `id` as `user.get` lists it to `who`.
async fn listed(app: &TestApp, who: &As, id: &str) -> Value {
    app.keys_of(who)
        .await
        .into_iter()
        .find(|k| k["id"] == id)
        .unwrap_or_else(|| panic!("key {id} not listed"))
}

async fn disable(app: &TestApp, who: &As, id: &str) {
    app.post(UPDATE_KEY, json!({"apiKeyId": id, "enabled": false}), who)
        .await
        .assert_ok();
}

// ---------------------------------------------------------------- outcomes

#[tokio::test]
async fn each_outcome_of_a_request_is_counted_in_its_hour() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (plain, plain_id) = app.create_key(&owner, json!({"name": "plain"})).await;
    let (limited, limited_id) = app
        .create_key(
            &owner,
            json!({"name": "limited", "rateLimitMax": 1, "rateLimitTimeWindow": 60_000}),
        )
        .await;
    let (metered, metered_id) = app
        .create_key(&owner, json!({"name": "metered", "remaining": 1}))
        .await;
    let (disabled, disabled_id) = app.create_key(&owner, json!({"name": "disabled"})).await;
    let (read_only, read_only_id) = app
        .create_key(
            &owner,
            json!({"name": "read-only", "scope": {"readOnly": true}}),
        )
        .await;
    disable(&app, &owner, &disabled_id).await;
    app.clock.advance(10 * MINUTE);

    send(&app, &plain, 3, 200).await;
    send(&app, &limited, 1, 200).await;
    send(&app, &limited, 2, 429).await;
    send(&app, &metered, 1, 200).await;
    send(&app, &metered, 1, 429).await;
    send(&app, &disabled, 2, 401).await;
    send(&app, &read_only, 1, 200).await;
    app.post(
        "/api/project.create",
        json!({"name": "p"}),
        &As::Key(read_only),
    )
    .await
    .assert_error(401, "permission_denied");

    for (id, counts) in [
        (&plain_id, [3, 0, 0, 0]),
        (&limited_id, [1, 2, 0, 0]),
        (&metered_id, [1, 0, 1, 0]),
        (&disabled_id, [0, 0, 0, 2]),
        (&read_only_id, [1, 0, 0, 1]),
    ] {
        let u = usage(&app, &owner, id).await;
        assert_eq!(u["hours"], json!([hour(T0, counts)]), "{id}: {u}");
        assert_eq!(totals(&u), counts, "{id}");
    }
    // Nothing was written per request; the flush writes one row per key and hour.
    assert_eq!(app.count("key_usage_hours"), 0);
    assert_eq!(flush_usage(&app.state).await.unwrap(), 5);
    assert_eq!(stored_hours(&app, &limited_id), [[T0, 1, 2, 0, 0]]);
    assert_eq!(stored_hours(&app, &metered_id), [[T0, 1, 0, 1, 0]]);
    assert_eq!(stored_hours(&app, &disabled_id), [[T0, 0, 0, 0, 2]]);
    assert_eq!(stored_hours(&app, &read_only_id), [[T0, 1, 0, 0, 1]]);
    // Only admitted requests count as uses.
    assert_eq!(app.key_column(&limited_id, "request_count"), 1);
    assert_eq!(app.key_column(&disabled_id, "request_count"), 0);
    assert_eq!(app.key_column(&disabled_id, "last_used_at"), Value::Null);
}

#[tokio::test]
async fn an_expired_key_and_an_old_secret_past_its_grace_count_as_refused() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (expiring, expiring_id) = app
        .create_key(&owner, json!({"name": "expiring", "expiresIn": 86_400}))
        .await;
    let (old, rotated_id) = app.create_key(&owner, json!({"name": "rotated"})).await;
    app.post(
        ROTATE_KEY,
        json!({"apiKeyId": rotated_id, "gracePeriodSeconds": 60}),
        &owner,
    )
    .await
    .assert_ok();
    send(&app, &old, 1, 200).await;
    app.clock.advance(DAY);

    app.try_key(&expiring)
        .await
        .assert_error(401, "api_key_expired");
    app.try_key(&old).await.assert_error(401, "invalid_api_key");

    let day = T0 + DAY;
    assert_eq!(
        usage(&app, &owner, &expiring_id).await["hours"],
        json!([hour(day, [0, 0, 0, 1])])
    );
    assert_eq!(
        usage(&app, &owner, &rotated_id).await["hours"],
        json!([hour(T0, [1, 0, 0, 0]), hour(day, [0, 0, 0, 1])])
    );
}

#[tokio::test]
async fn a_key_asking_for_its_own_usage_counts_that_request() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, id) = app.create_key(&owner, json!({})).await;
    send(&app, &key, 2, 200).await;

    let u = usage(&app, &As::Key(key), &id).await;

    assert_eq!(u["hours"], json!([hour(T0, [3, 0, 0, 0])]));
}

// ---------------------------------------------------------------- the series

#[tokio::test]
async fn the_series_adds_up_across_flushes_and_hours_with_unflushed_counts_included() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, id) = app.create_key(&owner, json!({})).await;

    send(&app, &key, 2, 200).await;
    flush_usage(&app.state).await.unwrap();
    send(&app, &key, 3, 200).await;
    flush_usage(&app.state).await.unwrap();
    assert_eq!(stored_hours(&app, &id), [[T0, 5, 0, 0, 0]]);
    // Two hours end between this flush and the next: three hours pending at once.
    send(&app, &key, 1, 200).await;
    app.clock.advance(HOUR + 30 * MINUTE);
    send(&app, &key, 4, 200).await;
    app.clock.advance(HOUR);
    send(&app, &key, 2, 200).await;

    let want = json!([
        hour(T0, [6, 0, 0, 0]),
        hour(T0 + HOUR, [4, 0, 0, 0]),
        hour(T0 + 2 * HOUR, [2, 0, 0, 0]),
    ]);
    let u = usage(&app, &owner, &id).await;
    assert_eq!(u["hours"], want, "before the flush: {u}");
    assert_eq!(totals(&u), [12, 0, 0, 0]);
    assert_eq!(stored_hours(&app, &id), [[T0, 5, 0, 0, 0]]);

    assert_eq!(flush_usage(&app.state).await.unwrap(), 1);

    assert_eq!(
        stored_hours(&app, &id),
        [
            [T0, 6, 0, 0, 0],
            [T0 + HOUR, 4, 0, 0, 0],
            [T0 + 2 * HOUR, 2, 0, 0, 0]
        ]
    );
    assert_eq!(usage(&app, &owner, &id).await["hours"], want, "not twice");
    assert_eq!(app.key_column(&id, "request_count"), 12);
}

#[tokio::test]
async fn flushed_hours_survive_a_restart_and_a_clean_stop_writes_what_was_pending() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, id) = app.create_key(&owner, json!({})).await;
    let (disabled, disabled_id) = app.create_key(&owner, json!({"name": "off"})).await;
    disable(&app, &owner, &disabled_id).await;
    send(&app, &key, 2, 200).await;
    flush_usage(&app.state).await.unwrap();
    app.clock.advance(HOUR);
    send(&app, &key, 3, 200).await;
    send(&app, &disabled, 2, 401).await;

    assert_eq!(flush_at_stop(&app.state).await.unwrap(), 2);
    let app = app.reopen();

    assert_eq!(
        usage(&app, &owner, &id).await["hours"],
        json!([hour(T0, [2, 0, 0, 0]), hour(T0 + HOUR, [3, 0, 0, 0])])
    );
    assert_eq!(
        usage(&app, &owner, &disabled_id).await["hours"],
        json!([hour(T0 + HOUR, [0, 0, 0, 2])])
    );
    // After the restart the counting goes on from the rows.
    send(&app, &key, 1, 200).await;
    flush_usage(&app.state).await.unwrap();
    assert_eq!(stored_hours(&app, &id)[1], [T0 + HOUR, 4, 0, 0, 0]);
}

#[tokio::test]
async fn a_failed_flush_keeps_every_count_for_the_next_one() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, id) = app.create_key(&owner, json!({})).await;
    let (disabled, disabled_id) = app.create_key(&owner, json!({"name": "off"})).await;
    disable(&app, &owner, &disabled_id).await;
    send(&app, &key, 3, 200).await;
    send(&app, &disabled, 2, 401).await;
    send_as_client(&app, &key, "192.0.2.7", "curl/8")
        .await
        .assert_ok();
    app.exec(
        "ALTER TABLE key_usage_hours RENAME TO key_usage_hours_away",
        &[],
    );

    assert!(flush_usage(&app.state).await.is_err());

    app.exec(
        "ALTER TABLE key_usage_hours_away RENAME TO key_usage_hours",
        &[],
    );
    assert_eq!(refused_events(&app), [], "the events went with the write");
    assert_eq!(app.key_column(&id, "request_count"), 0);
    // Counted since, on top of what went back.
    send(&app, &disabled, 1, 401).await;
    assert_eq!(
        usage(&app, &owner, &id).await["hours"],
        json!([hour(T0, [4, 0, 0, 0])])
    );
    assert_eq!(flush_usage(&app.state).await.unwrap(), 2);
    assert_eq!(stored_hours(&app, &id), [[T0, 4, 0, 0, 0]]);
    assert_eq!(stored_hours(&app, &disabled_id), [[T0, 0, 0, 0, 3]]);
    assert_eq!(app.key_column(&id, "request_count"), 4);
    assert_eq!(app.key_column(&id, "last_address"), "192.0.2.7");
    let events = refused_events(&app);
    assert_eq!(
        (events.len(), events[0].2),
        (1, 3),
        "one event for the refusals of both flushes"
    );
}

#[tokio::test]
async fn a_key_deleted_before_the_flush_leaves_the_others_to_be_written() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (kept, kept_id) = app.create_key(&owner, json!({"name": "kept"})).await;
    let (gone, gone_id) = app.create_key(&owner, json!({"name": "gone"})).await;
    send(&app, &kept, 2, 200).await;
    send(&app, &gone, 2, 200).await;
    app.post(DELETE_KEY, json!({"apiKeyId": gone_id}), &owner)
        .await
        .assert_ok();

    assert_eq!(flush_usage(&app.state).await.unwrap(), 2);

    assert_eq!(stored_hours(&app, &kept_id), [[T0, 2, 0, 0, 0]]);
    assert_eq!(app.count("key_usage_hours"), 1);
}

// ---------------------------------------------------------------- range

#[tokio::test]
async fn the_span_is_the_last_seven_days_by_default_and_rounded_down_to_the_hour() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, id) = app.create_key(&owner, json!({})).await;
    send(&app, &key, 1, 200).await;
    app.clock.advance(3 * HOUR + 25 * MINUTE);
    send(&app, &key, 1, 200).await;
    flush_usage(&app.state).await.unwrap();

    let u = usage(&app, &owner, &id).await;

    assert_eq!(u["apiKeyId"], id.as_str());
    assert_eq!(u["to"], "2026-11-27T03:00:00.000Z");
    assert_eq!(u["from"], "2026-11-20T03:00:00.000Z");
    assert_eq!(
        u["hours"],
        json!([hour(T0, [1, 0, 0, 0]), hour(T0 + 3 * HOUR, [1, 0, 0, 0])])
    );
    // The last hour is included, the first too; the hours outside are not.
    let r = usage_of(
        &app,
        &owner,
        &id,
        &[
            ("from", "2026-11-27T01:59:59.999Z"),
            ("to", "2026-11-27T04:30:00+01:00"),
        ],
    )
    .await;
    let u = r.assert_ok();
    assert_eq!(u["from"], "2026-11-27T01:00:00.000Z");
    assert_eq!(u["to"], "2026-11-27T03:00:00.000Z");
    assert_eq!(u["hours"], json!([hour(T0 + 3 * HOUR, [1, 0, 0, 0])]));
    assert_eq!(totals(u), [1, 0, 0, 0]);
    let u = usage_of(&app, &owner, &id, &[("to", "2026-11-27T00:00:00Z")]).await;
    assert_eq!(u.assert_ok()["hours"], json!([hour(T0, [1, 0, 0, 0])]));
}

#[tokio::test]
async fn a_span_backwards_or_not_in_rfc_3339_is_a_400_naming_the_field() {
    let app = TestApp::with_config(|c| c.usage_retention_days = 10);
    let (owner, _) = app.owner().await;
    let (_, id) = app.create_key(&owner, json!({})).await;
    let span = |u: &Value| (u["from"].clone(), u["to"].clone());
    // Within the retention: ten days exactly.
    let u = usage_of(
        &app,
        &owner,
        &id,
        &[
            ("from", "2026-11-17T00:00:00Z"),
            ("to", "2026-11-27T00:00:00Z"),
        ],
    )
    .await;
    let ten_days = (
        json!("2026-11-17T00:00:00.000Z"),
        json!("2026-11-27T00:00:00.000Z"),
    );
    assert_eq!(span(u.assert_ok()), ten_days);
    // Further back than the retention: from the oldest hour kept, as the answer says.
    let u = usage_of(
        &app,
        &owner,
        &id,
        &[
            ("from", "2026-10-01T00:00:00Z"),
            ("to", "2026-11-27T00:30:00Z"),
        ],
    )
    .await;
    assert_eq!(span(u.assert_ok()), ten_days);
    // Inside one hour: that hour.
    let u = usage_of(
        &app,
        &owner,
        &id,
        &[
            ("from", "2026-11-27T01:10:00Z"),
            ("to", "2026-11-27T01:50:00Z"),
        ],
    )
    .await;
    let one = json!("2026-11-27T01:00:00.000Z");
    assert_eq!(span(u.assert_ok()), (one.clone(), one));

    for (query, issues) in [
        (
            [
                ("from", "2026-11-27T05:00:00Z"),
                ("to", "2026-11-27T01:00:00Z"),
            ],
            &["from"][..],
        ),
        // Backwards inside one hour.
        (
            [
                ("from", "2026-11-27T01:50:00Z"),
                ("to", "2026-11-27T01:10:00Z"),
            ],
            &["from"],
        ),
        (
            [("from", "yesterday"), ("to", "2026-11-27T00:00:00Z")],
            &["from"],
        ),
        (
            [("from", "2026-11-26T00:00:00Z"), ("to", "2026-11-27")],
            &["to"],
        ),
        ([("from", "1"), ("to", "")], &["from", "to"]),
    ] {
        let r = usage_of(&app, &owner, &id, &query).await;
        r.assert_error(400, "validation_failed");
        assert_eq!(r.issue_paths(), issues, "{query:?}: {}", r.body);
    }
    // The span of a short retention is shorter by default.
    let app = TestApp::with_config(|c| c.usage_retention_days = 2);
    let (owner, _) = app.owner().await;
    let (_, id) = app.create_key(&owner, json!({})).await;
    assert_eq!(
        usage(&app, &owner, &id).await["from"],
        "2026-11-25T00:00:00.000Z"
    );
}

// ---------------------------------------------------------------- who may read it

#[tokio::test]
async fn its_user_and_the_owners_and_admins_of_its_organization_may_read_a_keys_usage() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let mut api = resource_flags();
    api["canAccessToAPI"] = json!(true);
    let member = member_seeing(
        &app,
        &owner,
        "member@example.com",
        api.clone(),
        &[],
        &[],
        &[],
    )
    .await;
    let other = member_seeing(&app, &owner, "other@example.com", api, &[], &[], &[]).await;
    let admin = app
        .invite_and_join(&owner, "admin@example.com", "admin")
        .await;
    let (member_key, member_key_id) = app.create_key(&member.who, json!({})).await;
    let (_, owner_key_id) = app.create_key(&owner, json!({"name": "owner's"})).await;
    let stranger = stranger(&app, &owner, "stranger@example.com").await;
    send(&app, &member_key, 2, 200).await;

    let want = json!([hour(T0, [2, 0, 0, 0])]);
    for who in [&member.who, &owner, &admin.who] {
        let u = usage(&app, who, &member_key_id).await;
        assert_eq!(u["hours"], want);
    }
    // Through the key itself, which counts the request.
    let u = usage(&app, &As::Key(member_key.clone()), &member_key_id).await;
    assert_eq!(u["hours"], json!([hour(T0, [3, 0, 0, 0])]));
    // Another member's key, whether by session or by key, is refused as the other key
    // operations refuse it.
    let (other_key, _) = app.create_key(&other.who, json!({})).await;
    for who in [&other.who, &As::Key(other_key)] {
        usage_of(&app, who, &member_key_id, &[])
            .await
            .assert_error(401, "permission_denied");
        app.post(DELETE_KEY, json!({"apiKeyId": member_key_id}), who)
            .await
            .assert_error(401, "permission_denied");
    }
    usage_of(&app, &member.who, &owner_key_id, &[])
        .await
        .assert_error(401, "permission_denied");
    for who in [&stranger.who, &stranger.key] {
        usage_of(&app, who, &member_key_id, &[])
            .await
            .assert_error(401, "wrong_organization");
    }
    usage_of(&app, &owner, MISSING, &[])
        .await
        .assert_error(404, "not_found");
    // An owner's key limited to a project reads its own usage, not the other keys'.
    let (project, _) = project(&app, &owner, "p").await;
    let (scoped, scoped_id) = app
        .create_key(&owner, json!({"scope": {"projectIds": [project]}}))
        .await;
    let scoped = As::Key(scoped);
    usage_of(&app, &scoped, &member_key_id, &[])
        .await
        .assert_error(401, "permission_denied");
    usage_of(&app, &scoped, &scoped_id, &[]).await.assert_ok();
    // An admin acting in another organization sees the keys of that one only.
    let elsewhere = app.create_org(&admin.who, "Elsewhere").await;
    app.post(
        "/api/organization.setActive",
        json!({"organizationId": elsewhere}),
        &admin.who,
    )
    .await
    .assert_ok();
    usage_of(&app, &admin.who, &member_key_id, &[])
        .await
        .assert_error(401, "wrong_organization");
    // A user's own key, from whichever organization the session acts in.
    let (own, own_id) = app
        .create_key(
            &admin.who,
            json!({"metadata": {"organizationId": elsewhere}}),
        )
        .await;
    send(&app, &own, 1, 200).await;
    app.post(
        "/api/organization.setActive",
        json!({"organizationId": app.first_org()}),
        &admin.who,
    )
    .await
    .assert_ok();
    assert_eq!(
        usage(&app, &admin.who, &own_id).await["hours"],
        json!([hour(T0, [1, 0, 0, 0])])
    );
}

// ---------------------------------------------------------------- last client, unused

#[tokio::test]
async fn the_last_client_of_a_key_is_shown_with_its_last_use_and_written_by_the_flush() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, id) = app.create_key(&owner, json!({})).await;
    let long_agent = format!("agent/{}", "x".repeat(300));

    send_as_client(&app, &key, "192.0.2.7", "curl/8")
        .await
        .assert_ok();
    app.clock.advance(MINUTE);
    send_as_client(&app, &key, "2001:db8::1", &long_agent)
        .await
        .assert_ok();

    // Cut to its first 256 bytes.
    let cut = &long_agent[..256];
    let k = listed(&app, &owner, &id).await;
    assert_eq!(k["lastAddress"], "2001:db8::1");
    assert_eq!(k["lastUserAgent"], cut);
    assert_eq!(k["lastUsedAt"], rfc3339(T0 + MINUTE));
    let u = usage(&app, &owner, &id).await;
    assert_eq!(
        (&u["lastUsedAt"], &u["lastAddress"], &u["lastUserAgent"]),
        (
            &json!(rfc3339(T0 + MINUTE)),
            &json!("2001:db8::1"),
            &json!(cut)
        )
    );
    assert_eq!(app.key_column(&id, "last_address"), Value::Null);

    flush_usage(&app.state).await.unwrap();

    assert_eq!(app.key_column(&id, "last_address"), "2001:db8::1");
    assert_eq!(app.key_column(&id, "last_user_agent"), cut);
    // The same client again changes nothing to write; another one does.
    send_as_client(&app, &key, "2001:db8::1", &long_agent)
        .await
        .assert_ok();
    send_as_client(&app, &key, "192.0.2.7", "curl/8")
        .await
        .assert_ok();
    flush_usage(&app.state).await.unwrap();
    assert_eq!(app.key_column(&id, "last_address"), "192.0.2.7");
    assert_eq!(app.key_column(&id, "last_user_agent"), "curl/8");
    let app = app.reopen();
    let k = listed(&app, &owner, &id).await;
    assert_eq!(
        (&k["lastAddress"], &k["lastUserAgent"]),
        (&json!("192.0.2.7"), &json!("curl/8"))
    );
    // A key never used has neither.
    let (_, idle) = app.create_key(&owner, json!({"name": "idle"})).await;
    let k = listed(&app, &owner, &idle).await;
    assert!(
        k.get("lastAddress").is_none() && k.get("lastUserAgent").is_none(),
        "{k}"
    );
    let u = usage(&app, &owner, &idle).await;
    assert_eq!(u["hours"], json!([]));
    assert!(
        u.get("lastUsedAt").is_none() && u.get("lastAddress").is_none(),
        "{u}"
    );
}

#[tokio::test]
async fn a_key_without_a_request_for_thirty_days_is_marked_unused() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (_, never_id) = app.create_key(&owner, json!({"name": "never used"})).await;
    let (old, old_id) = app
        .create_key(&owner, json!({"name": "used long ago"}))
        .await;
    let (recent, recent_id) = app.create_key(&owner, json!({"name": "used lately"})).await;
    send(&app, &old, 1, 200).await;
    app.clock.advance(29 * DAY);
    send(&app, &recent, 1, 200).await;
    let unused = |keys: &[Value]| -> Vec<(String, bool)> {
        keys.iter()
            .map(|k| (id_of(k), k["unused"].as_bool().unwrap()))
            .collect()
    };
    let all = |flags: [bool; 3]| {
        [&never_id, &old_id, &recent_id]
            .into_iter()
            .cloned()
            .zip(flags)
            .collect::<Vec<_>>()
    };
    let owner = app.sign_in(OWNER_EMAIL, PASSWORD).await;
    assert_eq!(unused(&app.keys_of(&owner).await), all([false; 3]));

    app.clock.advance(2 * DAY);

    assert_eq!(unused(&app.keys_of(&owner).await), all([true, true, false]));
    let page = app.get("/api/user.listApiKeys", &[], &owner).await;
    assert_eq!(
        unused(page.assert_ok().as_array().unwrap()),
        all([true, true, false])
    );
    // A use makes a key used again at once, before any flush.
    send(&app, &old, 1, 200).await;
    assert_eq!(
        unused(&app.keys_of(&owner).await),
        all([true, false, false])
    );
}

#[tokio::test]
async fn the_unused_days_are_configurable() {
    let app = TestApp::with_config(|c| c.unused_key_days = 3);
    let (owner, _) = app.owner().await;
    let (_, id) = app.create_key(&owner, json!({})).await;
    app.clock.advance(3 * DAY - 1);
    let owner = app.sign_in(OWNER_EMAIL, PASSWORD).await;
    // `user.get` gives the setting, which the dashboard's badge names.
    let me = app.get("/api/user.get", &[], &owner).await;
    assert_eq!(me.assert_ok()["unusedKeyDays"], 3);
    assert_eq!(listed(&app, &owner, &id).await["unused"], false);
    app.clock.advance(1);
    assert_eq!(listed(&app, &owner, &id).await["unused"], true);
}

// ---------------------------------------------------------------- retention

#[tokio::test]
async fn the_retention_prunes_old_hours_in_chunks_and_keeps_recent_ones() {
    let app = TestApp::with_config(|c| c.usage_retention_days = 30);
    let (owner, _) = app.owner().await;
    let (key, id) = app.create_key(&owner, json!({})).await;
    let (_, other_id) = app.create_key(&owner, json!({"name": "other"})).await;
    // 12,000 hours before the retention (more than two chunks of the pruning), and one
    // just inside it.
    let oldest = T0 - 30 * DAY - 12_000 * HOUR;
    app.exec(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 11999)
         INSERT INTO key_usage_hours (key_id, hour, ok) SELECT ?1, ?2 + i * 3600000, 1 FROM n",
        &[&other_id, &oldest],
    );
    app.exec(
        "INSERT INTO key_usage_hours (key_id, hour, ok) VALUES (?1, ?2, 5)",
        &[&other_id, &(T0 - 30 * DAY)],
    );
    send(&app, &key, 2, 200).await;
    flush_usage(&app.state).await.unwrap();
    assert_eq!(app.count("key_usage_hours"), 12_002);

    assert_eq!(prune_usage(&app.state).await.unwrap(), 12_000);

    assert_eq!(stored_hours(&app, &other_id), [[T0 - 30 * DAY, 5, 0, 0, 0]]);
    assert_eq!(stored_hours(&app, &id), [[T0, 2, 0, 0, 0]]);
    assert_eq!(prune_usage(&app.state).await.unwrap(), 0);
    // An hour later the one at the edge goes too.
    app.clock.advance(HOUR);
    assert_eq!(prune_usage(&app.state).await.unwrap(), 1);
    assert_eq!(app.count("key_usage_hours"), 1);
}

// ---------------------------------------------------------------- the audit log

/// The `apikey.refused` events, oldest first: (key, reason, count, at, address, user agent).
fn refused_events(app: &TestApp) -> Vec<(String, String, i64, i64, String, String)> {
    app.state
        .db
        .read(|c| {
            let mut st = c.prepare(
                "SELECT resource_id, details, count, at, coalesce(client_address, ''),
                        coalesce(user_agent, '')
                 FROM audit_events WHERE action = 'apikey.refused' ORDER BY at, id",
            )?;
            let rows = st.query_map([], |r| {
                let details: String = r.get(1)?;
                let details: Value = serde_json::from_str(&details).unwrap();
                Ok((
                    r.get(0)?,
                    details["reason"].as_str().unwrap().to_owned(),
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .unwrap()
}

#[tokio::test]
async fn refusals_of_a_disabled_or_expired_key_are_one_audit_event_per_key_and_reason_per_flush() {
    let app = TestApp::new();
    let (owner, user_id, org) = app.owner_ids().await;
    let (disabled, disabled_id) = app.create_key(&owner, json!({"name": "off"})).await;
    let (expiring, expiring_id) = app
        .create_key(&owner, json!({"name": "expiring", "expiresIn": 86_400}))
        .await;
    let (read_only, _) = app
        .create_key(&owner, json!({"name": "ro", "scope": {"readOnly": true}}))
        .await;
    disable(&app, &owner, &disabled_id).await;
    app.clock.advance(DAY);
    let first = T0 + DAY;

    for i in 0..5 {
        app.clock.advance(SECOND);
        let r = send_as_client(&app, &disabled, "192.0.2.7", &format!("bot/{i}")).await;
        r.assert_error(401, "api_key_disabled");
    }
    send_as_client(&app, &expiring, "192.0.2.8", "cron/1")
        .await
        .assert_error(401, "api_key_expired");
    app.post(
        "/api/project.create",
        json!({"name": "p"}),
        &As::Key(read_only),
    )
    .await
    .assert_error(401, "permission_denied");
    // No event before the flush.
    assert_eq!(refused_events(&app), []);

    flush_usage(&app.state).await.unwrap();

    assert_eq!(
        refused_events(&app),
        [
            (
                disabled_id.clone(),
                "api_key_disabled".to_owned(),
                5,
                first + SECOND,
                "192.0.2.7".to_owned(),
                "bot/4".to_owned()
            ),
            (
                expiring_id.clone(),
                "api_key_expired".to_owned(),
                1,
                first + 5 * SECOND,
                "192.0.2.8".to_owned(),
                "cron/1".to_owned()
            ),
        ]
    );
    let e = |column: &str| {
        app.scalar(
            &format!(
                "SELECT {column} FROM audit_events
                 WHERE action = 'apikey.refused' AND resource_id = ?1"
            ),
            &[&disabled_id],
        )
    };
    assert_eq!(e("organization_id"), org.as_str());
    assert_eq!(e("actor_type"), "api_key");
    assert_eq!(e("actor_id"), disabled_id.as_str());
    assert_eq!(e("actor_user_id"), user_id.as_str());
    assert_eq!(e("subject_user_id"), user_id.as_str());
    assert_eq!(e("resource_type"), "apikey");
    assert_eq!(e("outcome"), "refused");
    assert_eq!(e("request_id"), Value::Null);
    let details: Value = serde_json::from_str(e("details").as_str().unwrap()).unwrap();
    assert_eq!(
        details,
        json!({"reason": "api_key_disabled", "lastAt": rfc3339(first + 5 * SECOND)})
    );
    let label = e("actor_label");
    assert!(disabled.starts_with(label.as_str().unwrap()), "{label}");

    // Nothing new: no new event. More refusals: one more event, for them only.
    flush_usage(&app.state).await.unwrap();
    assert_eq!(refused_events(&app).len(), 2);
    send(&app, &disabled, 3, 401).await;
    flush_usage(&app.state).await.unwrap();
    let events = refused_events(&app);
    assert_eq!(events.len(), 3);
    assert_eq!(
        (&events[2].0, events[2].2, events[2].4.as_str()),
        (&disabled_id, 3, "")
    );
}

#[tokio::test]
async fn refusals_of_a_key_deleted_before_the_flush_are_still_recorded() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, id) = app.create_key(&owner, json!({})).await;
    disable(&app, &owner, &id).await;
    send(&app, &key, 2, 401).await;
    app.post(DELETE_KEY, json!({"apiKeyId": id}), &owner)
        .await
        .assert_ok();

    flush_usage(&app.state).await.unwrap();

    let events = refused_events(&app);
    assert_eq!(events.len(), 1);
    assert_eq!((&events[0].0, events[0].2), (&id, 2));
    assert_eq!(app.count("key_usage_hours"), 0);
}

#[tokio::test]
async fn a_clean_stop_writes_the_pending_refusals_to_the_audit_log() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, id) = app.create_key(&owner, json!({})).await;
    disable(&app, &owner, &id).await;
    send(&app, &key, 4, 401).await;

    flush_at_stop(&app.state).await.unwrap();
    let app = app.reopen();

    let events = refused_events(&app);
    assert_eq!(events.len(), 1);
    assert_eq!((&events[0].1[..], events[0].2), ("api_key_disabled", 4));
}
