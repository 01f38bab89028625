//! Quotas, rate limits and usage of API keys: 429 with back-off headers, refills and token
//! buckets on the manual clock, a server default, usage kept in memory and flushed in
//! chunks that let other writes through, quotas spent from leases committed before their
//! first use, and quota state that survives a restart or a crash.

use std::sync::Arc;

use keygate::clock::SECOND;
use keygate::domain::keys::{self, FLUSH_CHUNK, create_from_shell, flush_at_stop, flush_usage};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::helpers::*;

/// `n` requests that must all pass.
async fn spend(app: &TestApp, key: &str, n: usize) {
    for i in 0..n {
        let r = app.try_key(key).await;
        assert_eq!(r.status, 200, "request {} of {n}: {}", i + 1, r.body);
    }
}

/// Asserts a 429 with `reason` and the back-off headers; returns them as numbers
/// (Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset).
#[track_caller]
fn assert_throttled(r: &Reply, reason: &str) -> [u64; 4] {
    r.assert_error(429, reason);
    assert_eq!(r.code(), "TOO_MANY_REQUESTS");
    r.assert_json();
    [
        "retry-after",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
    ]
    .map(|h| {
        r.header(h)
            .unwrap_or_else(|| panic!("no {h} header: {:?}", r.headers))
            .parse()
            .unwrap_or_else(|_| panic!("{h} is not a number: {:?}", r.headers))
    })
}

/// The key `id` as `user.get` lists it to `who`.
async fn listed(app: &TestApp, who: &As, id: &str) -> Value {
    app.keys_of(who)
        .await
        .into_iter()
        .find(|k| k["id"] == id)
        .unwrap_or_else(|| panic!("key {id} not listed"))
}

// ---------------------------------------------------------------- quota

#[tokio::test]
async fn a_quota_of_three_allows_three_requests_then_429_usage_exceeded() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, id) = app.create_key(&owner, json!({"remaining": 3})).await;

    spend(&app, &key, 3).await;
    let r = app.try_key(&key).await;

    let [retry, _, left, reset] = assert_throttled(&r, "usage_exceeded");
    assert!(retry >= 1, "Retry-After {retry}");
    assert_eq!(left, 0);
    assert!(
        reset >= retry,
        "RateLimit-Reset {reset} < Retry-After {retry}"
    );
    assert_eq!(listed(&app, &owner, &id).await["remaining"], 0);
    // Still refused later: a quota without refill does not come back.
    app.clock.advance(400 * 86_400 * SECOND);
    assert_throttled(&app.try_key(&key).await, "usage_exceeded");
}

#[tokio::test]
async fn a_quota_of_zero_refuses_the_first_request() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, _) = app.create_key(&owner, json!({"remaining": 0})).await;

    assert_throttled(&app.try_key(&key).await, "usage_exceeded");
}

#[tokio::test]
async fn a_quota_refills_to_its_amount_after_each_interval() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, id) = app
        .create_key(
            &owner,
            json!({"remaining": 2, "refillAmount": 5, "refillInterval": 60_000}),
        )
        .await;
    spend(&app, &key, 2).await;

    let r = app.try_key(&key).await;

    assert_eq!(
        assert_throttled(&r, "usage_exceeded"),
        [60, 5, 0, 60],
        "Retry-After, Limit, Remaining, Reset"
    );
    app.clock.advance(59_999);
    assert_eq!(
        assert_throttled(&app.try_key(&key).await, "usage_exceeded")[0],
        1
    );

    app.clock.advance(1);

    spend(&app, &key, 5).await;
    assert_throttled(&app.try_key(&key).await, "usage_exceeded");
    let k = listed(&app, &owner, &id).await;
    assert_eq!(k["remaining"], 0);
    assert_eq!(k["lastRefillAt"], "2026-11-27T00:01:00.000Z");
}

#[tokio::test]
async fn refills_stay_on_the_interval_grid_and_do_not_accumulate() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, _) = app
        .create_key(
            &owner,
            json!({"remaining": 1, "refillAmount": 2, "refillInterval": 60_000}),
        )
        .await;
    spend(&app, &key, 1).await;

    // Three and a half intervals later: one refill to 2, not three refills to 6.
    app.clock.advance(210_000);

    spend(&app, &key, 2).await;
    let r = app.try_key(&key).await;
    // The next refill is at 240 s, 30 s from now.
    assert_eq!(assert_throttled(&r, "usage_exceeded")[0], 30);
    app.clock.advance(30_000);
    spend(&app, &key, 2).await;
}

// ---------------------------------------------------------------- rate limit

#[tokio::test]
async fn the_fourth_request_of_a_three_per_minute_key_is_rate_limited_with_headers() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, _) = app
        .create_key(
            &owner,
            json!({"rateLimitEnabled": true, "rateLimitMax": 3, "rateLimitTimeWindow": 60_000}),
        )
        .await;
    spend(&app, &key, 3).await;

    let r = app.try_key(&key).await;

    assert_eq!(
        assert_throttled(&r, "rate_limited"),
        [20, 3, 0, 60],
        "Retry-After, Limit, Remaining, Reset"
    );
    assert_eq!(r.header("ratelimit-limit"), Some("3"));
    assert_eq!(r.header("ratelimit-remaining"), Some("0"));
}

#[tokio::test]
async fn rate_limit_capacity_returns_one_request_per_window_over_max() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, _) = app
        .create_key(
            &owner,
            json!({"rateLimitMax": 3, "rateLimitTimeWindow": 60_000}),
        )
        .await;
    spend(&app, &key, 3).await;
    assert_throttled(&app.try_key(&key).await, "rate_limited");

    app.clock.advance(19_999);
    let r = app.try_key(&key).await;
    assert_eq!(assert_throttled(&r, "rate_limited")[0], 1);

    app.clock.advance(1);
    spend(&app, &key, 1).await;
    assert_throttled(&app.try_key(&key).await, "rate_limited");

    // A whole window refills the bucket, and no further.
    app.clock.advance(600_000);
    spend(&app, &key, 3).await;
    assert_throttled(&app.try_key(&key).await, "rate_limited");
}

#[tokio::test]
async fn rate_limited_requests_spend_no_quota() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, id) = app
        .create_key(
            &owner,
            json!({"rateLimitMax": 1, "rateLimitTimeWindow": 60_000, "remaining": 2}),
        )
        .await;
    spend(&app, &key, 1).await;
    for _ in 0..3 {
        assert_throttled(&app.try_key(&key).await, "rate_limited");
    }

    app.clock.advance(60_000);

    spend(&app, &key, 1).await;
    assert_eq!(listed(&app, &owner, &id).await["remaining"], 0);
    assert_eq!(listed(&app, &owner, &id).await["requestCount"], 2);
}

#[tokio::test]
async fn an_exhausted_quota_is_reported_before_the_rate_limit() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, _) = app
        .create_key(
            &owner,
            json!({"rateLimitMax": 1, "rateLimitTimeWindow": 60_000, "remaining": 1}),
        )
        .await;
    spend(&app, &key, 1).await;

    let r = app.try_key(&key).await;

    assert_throttled(&r, "usage_exceeded");
}

#[tokio::test]
async fn the_rate_limit_and_quota_outlast_changes_to_the_key() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, id) = app
        .create_key(
            &owner,
            json!({"rateLimitMax": 2, "rateLimitTimeWindow": 60_000, "remaining": 10}),
        )
        .await;
    spend(&app, &key, 2).await;

    // Each of these drops the key's cached entry.
    app.post(
        UPDATE_KEY,
        json!({"apiKeyId": id, "name": "renamed"}),
        &owner,
    )
    .await
    .assert_ok();
    assert_throttled(&app.try_key(&key).await, "rate_limited");
    let rotated = app.post(ROTATE_KEY, json!({"apiKeyId": id}), &owner).await;
    let new = rotated.assert_ok()["key"].as_str().unwrap().to_owned();

    assert_throttled(&app.try_key(&new).await, "rate_limited");
    assert_eq!(listed(&app, &owner, &id).await["remaining"], 8);
}

#[tokio::test]
async fn a_server_default_rate_limit_applies_to_keys_created_without_one() {
    let app = TestApp::with_config(|c| c.default_key_rate_limit = Some((2, 60_000)));
    let (owner, _) = app.owner().await;
    let (plain, plain_id) = app.create_key(&owner, json!({})).await;
    let (own, _) = app
        .create_key(
            &owner,
            json!({"rateLimitMax": 4, "rateLimitTimeWindow": 60_000}),
        )
        .await;

    spend(&app, &plain, 2).await;
    let r = app.try_key(&plain).await;

    assert_eq!(assert_throttled(&r, "rate_limited"), [30, 2, 0, 60]);
    let k = listed(&app, &owner, &plain_id).await;
    assert_eq!(k["rateLimitEnabled"], true);
    assert_eq!(k["rateLimitMax"], 2);
    assert_eq!(k["rateLimitTimeWindow"], 60_000);
    assert_eq!(app.key_column(&plain_id, "rate_limit_max"), 2);
    spend(&app, &own, 4).await;
    assert_eq!(
        assert_throttled(&app.try_key(&own).await, "rate_limited")[1],
        4
    );
}

#[tokio::test]
async fn without_a_server_default_a_key_without_limits_is_not_limited() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, id) = app.create_key(&owner, json!({})).await;

    spend(&app, &key, 50).await;

    assert_eq!(app.key_column(&id, "rate_limit_enabled"), 0);
}

// ---------------------------------------------------------------- usage

#[tokio::test]
async fn usage_is_kept_in_memory_shown_by_user_get_and_written_by_one_flush() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, id) = app.create_key(&owner, json!({})).await;
    let (_, idle_id) = app.create_key(&owner, json!({"name": "idle"})).await;
    app.clock.advance(5 * SECOND);

    spend(&app, &key, 3).await;

    // No write per request.
    assert_eq!(app.key_column(&id, "request_count"), 0);
    assert_eq!(app.key_column(&id, "last_used_at"), Value::Null);
    let k = listed(&app, &owner, &id).await;
    assert_eq!(k["requestCount"], 3);
    assert_eq!(k["lastUsedAt"], "2026-11-27T00:00:05.000Z");
    let i = listed(&app, &owner, &idle_id).await;
    assert_eq!(i["requestCount"], 0);
    assert!(i.get("lastUsedAt").is_none(), "{i}");

    assert_eq!(flush_usage(&app.state).await.unwrap(), 1);

    assert_eq!(app.key_column(&id, "request_count"), 3);
    assert_eq!(app.key_column(&id, "last_used_at"), T0 + 5 * SECOND);
    assert_eq!(app.key_column(&idle_id, "request_count"), 0);
    // Flushed counts are not counted twice.
    assert_eq!(listed(&app, &owner, &id).await["requestCount"], 3);
    assert_eq!(flush_usage(&app.state).await.unwrap(), 0);

    app.clock.advance(SECOND);
    spend(&app, &key, 2).await;
    let k = listed(&app, &owner, &id).await;
    assert_eq!(k["requestCount"], 5);
    assert_eq!(k["lastUsedAt"], "2026-11-27T00:00:06.000Z");
    assert_eq!(app.key_column(&id, "request_count"), 3);
    flush_usage(&app.state).await.unwrap();
    assert_eq!(app.key_column(&id, "request_count"), 5);
    assert_eq!(app.key_column(&id, "last_used_at"), T0 + 6 * SECOND);
}

#[tokio::test]
async fn a_key_listing_itself_counts_its_own_request() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, id) = app.create_key(&owner, json!({})).await;
    spend(&app, &key, 2).await;

    let k = listed(&app, &As::Key(key), &id).await;

    assert_eq!(k["requestCount"], 3);
}

/// With room for one credential, every request pushes the one before out of the cache:
/// the keys are looked up again each time, and their usage, lease and rate limit carry on.
#[tokio::test]
async fn keys_pushed_out_of_a_full_cache_keep_their_usage_quota_and_rate_limit() {
    let app = TestApp::with_config(|c| c.cache_entries = 1);
    let (owner, _) = app.owner().await;
    let (quota, quota_id) = app.create_key(&owner, json!({"remaining": 100})).await;
    let (limited, limited_id) = app
        .create_key(
            &owner,
            json!({"name": "limited", "rateLimitMax": 2, "rateLimitTimeWindow": 60_000}),
        )
        .await;

    for _ in 0..2 {
        spend(&app, &quota, 1).await;
        spend(&app, &limited, 1).await;
    }
    flush_usage(&app.state).await.unwrap();
    // A flush drops only runtimes that hold nothing: these hold a lease and a spent bucket.
    flush_usage(&app.state).await.unwrap();

    assert_throttled(&app.try_key(&limited).await, "rate_limited");
    spend(&app, &quota, 1).await;
    flush_usage(&app.state).await.unwrap();
    assert_eq!(app.key_column(&quota_id, "request_count"), 3);
    assert_eq!(app.key_column(&limited_id, "request_count"), 2);
    // One lease of ten, three of it spent.
    assert_eq!(app.key_column(&quota_id, "remaining"), 90);
    assert_eq!(listed(&app, &owner, &quota_id).await["remaining"], 97);
    app.clock.advance(30_000);
    spend(&app, &limited, 1).await;
    assert_throttled(&app.try_key(&limited).await, "rate_limited");
}

#[tokio::test]
async fn quota_left_survives_a_clean_restart() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, id) = app.create_key(&owner, json!({"remaining": 5})).await;
    spend(&app, &key, 2).await;
    flush_at_stop(&app.state).await.unwrap();
    assert_eq!(app.key_column(&id, "remaining"), 3);

    let app = app.reopen();

    let k = listed(&app, &owner, &id).await;
    assert_eq!(k["remaining"], 3);
    assert_eq!(k["requestCount"], 2);
    spend(&app, &key, 3).await;
    assert_throttled(&app.try_key(&key).await, "usage_exceeded");
}

#[tokio::test]
async fn a_refill_schedule_survives_a_restart() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, id) = app
        .create_key(
            &owner,
            json!({"remaining": 1, "refillAmount": 3, "refillInterval": 60_000}),
        )
        .await;
    spend(&app, &key, 1).await;
    app.clock.advance(90_000);
    spend(&app, &key, 1).await;
    flush_usage(&app.state).await.unwrap();
    assert_eq!(app.key_column(&id, "remaining"), 2);
    assert_eq!(app.key_column(&id, "last_refill_at"), T0 + 60_000);

    let app = app.reopen();

    spend(&app, &key, 2).await;
    // The next refill is at 120 s on the grid, 30 s from now.
    let r = app.try_key(&key).await;
    assert_eq!(assert_throttled(&r, "usage_exceeded")[0], 30);
    app.clock.advance(30_000);
    spend(&app, &key, 3).await;
}

// ---------------------------------------------------------------- leases

#[tokio::test]
async fn the_first_use_of_a_quota_leases_a_tenth_of_it_in_the_row_before_it_is_answered() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, id) = app.create_key(&owner, json!({"remaining": 100})).await;
    assert_eq!(app.key_column(&id, "remaining"), 100);

    spend(&app, &key, 1).await;

    // Committed by the time of the answer, with no flush.
    assert_eq!(app.key_column(&id, "remaining"), 90);
    assert_eq!(listed(&app, &owner, &id).await["remaining"], 99);
    // The rest of the lease is spent from memory, without a write per request.
    spend(&app, &key, 9).await;
    assert_eq!(app.key_column(&id, "remaining"), 90);
    assert_eq!(listed(&app, &owner, &id).await["remaining"], 90);
    // Used up: the next lease is a tenth of what is left.
    spend(&app, &key, 1).await;
    assert_eq!(app.key_column(&id, "remaining"), 81);
    assert_eq!(listed(&app, &owner, &id).await["remaining"], 89);
}

/// `n` keys of the owner made from the shell (faster than over HTTP), each used once.
async fn keys_used_once(app: &TestApp, n: usize) {
    let org = keygate::model::OrgId(app.first_org());
    for i in 0..n {
        let made = create_from_shell(&app.state, OWNER_EMAIL, &org, &format!("k{i}")).unwrap();
        keys::authenticate(&app.state, &made.secret, false)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_of_many_keys_writes_in_chunks_that_let_other_writes_through() {
    let app = TestApp::new();
    app.owner().await;
    let n = FLUSH_CHUNK + 1;
    keys_used_once(&app, n).await;
    let flushed = |app: &TestApp| {
        app.count_where(
            "SELECT count(*) FROM key_usage WHERE request_count = 1",
            &[],
        )
    };

    let flush = tokio::spawn({
        let st = app.state.clone();
        async move { flush_usage(&st).await }
    });
    // The first chunk, then a write of another caller while the flush waits to write the
    // rest.
    while flushed(&app) == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    app.state.db.write(|_| Ok(())).await.unwrap();

    assert!(
        !flush.is_finished(),
        "the other write waited for the whole flush"
    );
    assert_eq!(flushed(&app), FLUSH_CHUNK as i64);
    assert_eq!(flush.await.unwrap().unwrap(), n);
    assert_eq!(flushed(&app), n as i64);
    assert_eq!(flush_usage(&app.state).await.unwrap(), 0, "each key once");
}

#[tokio::test]
async fn a_failed_flush_keeps_the_usage_for_the_next_one() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, id) = app.create_key(&owner, json!({})).await;
    spend(&app, &key, 3).await;
    app.exec("ALTER TABLE key_usage RENAME TO key_usage_away", &[]);

    assert!(flush_usage(&app.state).await.is_err());

    app.exec("ALTER TABLE key_usage_away RENAME TO key_usage", &[]);
    assert_eq!(listed(&app, &owner, &id).await["requestCount"], 3);
    // No new use since: the failed flush put the key back on the list itself.
    assert_eq!(flush_usage(&app.state).await.unwrap(), 1);
    assert_eq!(app.key_column(&id, "request_count"), 3);
    assert_eq!(listed(&app, &owner, &id).await["requestCount"], 3);
}

#[tokio::test]
async fn the_periodic_usage_flush_writes_counts_and_leaves_the_quota_to_the_leases() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, id) = app.create_key(&owner, json!({"remaining": 100})).await;
    spend(&app, &key, 3).await;

    assert_eq!(flush_usage(&app.state).await.unwrap(), 1);

    assert_eq!(app.key_column(&id, "request_count"), 3);
    assert_eq!(app.key_column(&id, "remaining"), 90);
    assert_eq!(listed(&app, &owner, &id).await["remaining"], 97);
}

#[tokio::test]
async fn a_clean_stop_gives_the_unspent_lease_back_with_the_usage_flush() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, id) = app.create_key(&owner, json!({"remaining": 100})).await;
    let (_, idle_id) = app
        .create_key(&owner, json!({"name": "idle", "remaining": 100}))
        .await;
    spend(&app, &key, 3).await;
    // Counts flushed already, lease still held.
    flush_usage(&app.state).await.unwrap();

    assert_eq!(flush_at_stop(&app.state).await.unwrap(), 1);

    assert_eq!(app.key_column(&id, "remaining"), 97);
    assert_eq!(app.key_column(&id, "request_count"), 3);
    assert_eq!(app.key_column(&idle_id, "remaining"), 100);
    assert_eq!(listed(&app, &owner, &id).await["remaining"], 97);
    assert_eq!(flush_at_stop(&app.state).await.unwrap(), 0);
    let app = app.reopen();
    let k = listed(&app, &owner, &id).await;
    assert_eq!(
        (k["remaining"].clone(), k["requestCount"].clone()),
        (json!(97), json!(3))
    );
    spend(&app, &key, 1).await;
    assert_eq!(app.key_column(&id, "remaining"), 88);
    assert_eq!(listed(&app, &owner, &id).await["remaining"], 96);
}

#[tokio::test]
async fn a_crash_loses_at_most_the_unspent_lease_and_never_over_spends() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, id) = app.create_key(&owner, json!({"remaining": 20})).await;
    spend(&app, &key, 1).await;
    assert_eq!(app.key_column(&id, "remaining"), 18);

    // No flush: what memory held is gone.
    let app = app.reopen();

    assert_eq!(listed(&app, &owner, &id).await["remaining"], 18);
    spend(&app, &key, 18).await;
    assert_throttled(&app.try_key(&key).await, "usage_exceeded");
    assert_eq!(app.key_column(&id, "remaining"), 0);
}

#[tokio::test]
async fn a_large_quota_leases_a_thousand_uses_at_a_time() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, id) = app
        .create_key(&owner, json!({"remaining": 1_000_000}))
        .await;

    spend(&app, &key, 300).await;

    assert_eq!(app.key_column(&id, "remaining"), 999_000);
    assert_eq!(listed(&app, &owner, &id).await["remaining"], 999_700);
}

#[tokio::test]
async fn a_due_refill_voids_the_lease_and_starts_the_period_from_the_refill_amount() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, id) = app
        .create_key(
            &owner,
            json!({"remaining": 50, "refillAmount": 20, "refillInterval": 60_000}),
        )
        .await;
    spend(&app, &key, 1).await;
    assert_eq!(app.key_column(&id, "remaining"), 45);

    app.clock.advance(60_000);

    let k = listed(&app, &owner, &id).await;
    assert_eq!(k["remaining"], 20);
    assert_eq!(k["lastRefillAt"], "2026-11-27T00:01:00.000Z");
    assert_eq!(app.key_column(&id, "remaining"), 45);
    // The refill and the new lease land in one write.
    spend(&app, &key, 1).await;
    assert_eq!(app.key_column(&id, "remaining"), 18);
    assert_eq!(app.key_column(&id, "last_refill_at"), T0 + 60_000);
    assert_eq!(listed(&app, &owner, &id).await["remaining"], 19);
    flush_at_stop(&app.state).await.unwrap();
    assert_eq!(app.key_column(&id, "remaining"), 19);
}

/// `n` requests with `key` at once; their statuses.
async fn at_once(app: &Arc<TestApp>, key: &str, n: usize) -> Vec<u16> {
    let mut set = JoinSet::new();
    for _ in 0..n {
        let (app, key) = (Arc::clone(app), key.to_owned());
        set.spawn(async move { app.try_key(&key).await.status });
    }
    let mut statuses = Vec::new();
    while let Some(s) = set.join_next().await {
        statuses.push(s.unwrap());
    }
    statuses.sort_unstable();
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_at_once_share_one_lease_and_never_spend_more_than_the_quota() {
    let app = Arc::new(TestApp::new());
    let (owner, _) = app.owner().await;
    let (big, big_id) = app.create_key(&owner, json!({"remaining": 100})).await;
    let (small, small_id) = app
        .create_key(&owner, json!({"name": "small", "remaining": 5}))
        .await;

    let big_statuses = at_once(&app, &big, 10).await;
    let small_statuses = at_once(&app, &small, 20).await;

    assert_eq!(big_statuses, [200; 10]);
    assert_eq!(
        app.key_column(&big_id, "remaining"),
        90,
        "one lease, not ten"
    );
    let mut expected = vec![200; 5];
    expected.extend([429; 15]);
    assert_eq!(small_statuses, expected);
    assert_eq!(app.key_column(&small_id, "remaining"), 0);
    assert_eq!(listed(&app, &owner, &small_id).await["remaining"], 0);
}

#[tokio::test]
async fn a_key_with_a_limit_cannot_make_a_key_without_it() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    for limit in [
        json!({"expiresIn": 86400}),
        json!({"remaining": 5}),
        json!({"rateLimitMax": 5, "rateLimitTimeWindow": 60000}),
    ] {
        let (key, _) = app.create_key(&owner, limit.clone()).await;
        let via = As::Key(key);

        let r = app
            .post(
                "/api/user.createApiKey",
                json!({"name": "wider", "metadata": {"organizationId": app.first_org()}}),
                &via,
            )
            .await;

        r.assert_error(401, "permission_denied");
        app.get("/api/user.listSessions", &[], &via)
            .await
            .assert_error(401, "permission_denied");
    }
    assert_eq!(app.count("api_keys"), 3);
}

#[tokio::test]
async fn a_key_without_limits_still_manages_keys() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, _) = app.create_key(&owner, json!({})).await;

    let r = app
        .post(
            "/api/user.createApiKey",
            json!({"name": "another", "metadata": {"organizationId": app.first_org()}}),
            &As::Key(key),
        )
        .await;

    r.assert_ok();
    assert_eq!(app.count("api_keys"), 2);
}

#[tokio::test]
async fn a_refill_interval_beyond_a_year_is_refused() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;

    let r = app
        .post(
            "/api/user.createApiKey",
            json!({
                "name": "k", "metadata": {"organizationId": app.first_org()},
                "remaining": 0, "refillAmount": 1, "refillInterval": i64::MAX
            }),
            &owner,
        )
        .await;

    r.assert_error(400, "validation_failed");
    assert_eq!(r.body["issues"][0]["path"], "refillInterval");
    assert_eq!(app.count("api_keys"), 0);
}

/// Once the refill interval has passed, `user.get` shows the refilled quota, the one the
/// next request is admitted with, although no request has applied the refill yet.
#[tokio::test]
async fn user_get_shows_the_quota_refilled_once_the_interval_has_passed() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, id) = app
        .create_key(
            &owner,
            json!({"remaining": 1, "refillAmount": 5, "refillInterval": 60_000}),
        )
        .await;
    app.try_key(&key).await.assert_ok();
    app.clock.advance(60_000);

    let r = app.get(USER_GET, &[], &owner).await;

    let listed = key_list(r.assert_ok());
    let k = listed.iter().find(|k| k["id"] == id.as_str()).unwrap();
    assert_eq!(k["remaining"], 5, "{k}");
}
