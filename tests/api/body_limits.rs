//! Request bodies cost a stranger nothing: an operation that needs a credential checks it
//! before reading the body, every body must keep arriving, and all bodies together stay
//! within a memory budget.

use std::time::{Duration, Instant};

use poem::Body;
use poem::http::Method;
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::helpers::*;

const CREATE_PROJECT: &str = "/api/project.create";

/// A body that sends `start` and then nothing more until the writer is dropped.
async fn stalled(start: &[u8]) -> (tokio::io::DuplexStream, Body) {
    let (mut writer, reader) = tokio::io::duplex(1024 * 1024);
    // The duplex buffer holds `start`, so this completes at once.
    writer.write_all(start).await.expect("buffered");
    (writer, Body::from_async_read(reader))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_a_valid_key_is_refused_before_its_body_is_read() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let (key, _) = app.create_key(&owner, json!({})).await;
    let (_writer, body) = stalled(br#"{"name": "never finished"#).await;

    let started = Instant::now();
    let r = tokio::time::timeout(
        Duration::from_secs(5),
        app.send(
            app.request(Method::POST, CREATE_PROJECT)
                .header("x-api-key", "kg_not-a-key")
                .content_type("application/json")
                .body(body),
        ),
    )
    .await
    .expect("answered while the body is still open");

    // Answered while the body is still open, and the connection is to close.
    r.assert_error(401, "invalid_api_key");
    assert_eq!(r.header("connection"), Some("close"));
    assert!(started.elapsed() < Duration::from_secs(5));
    // A huge declared body without a credential is a 401, not a 413: nothing is read.
    let huge = app
        .send(
            app.request(Method::POST, CREATE_PROJECT)
                .content_type("application/json")
                .header("content-length", "10000000000")
                .body("{}"),
        )
        .await;
    huge.assert_error(401, "missing_credentials");
    // The key itself still works.
    app.post(CREATE_PROJECT, json!({"name": "ok"}), &As::Key(key))
        .await
        .assert_ok();
    assert_eq!(app.count("projects"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stops_arriving_is_refused_after_the_body_timeout() {
    let app = TestApp::with_config(|c| c.body_timeout_ms = 300);
    let (owner, _) = app.owner().await;
    let (key, _) = app.create_key(&owner, json!({})).await;
    let (_writer, body) = stalled(br#"{"name": "#).await;

    let started = Instant::now();
    let r = app
        .send(
            app.request(Method::POST, CREATE_PROJECT)
                .header("x-api-key", key.as_str())
                .content_type("application/json")
                .body(body),
        )
        .await;

    r.assert_error(408, "body_timeout");
    assert_eq!(r.code(), "TIMEOUT");
    assert_eq!(r.header("connection"), Some("close"));
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(app.count("projects"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_held_at_once_stay_within_the_memory_budget() {
    let app = TestApp::with_config(|c| {
        c.max_body_bytes = 100 * 1024;
        c.body_memory_bytes = 128 * 1024;
    });
    let (owner, _) = app.owner().await;
    let (key, _) = app.create_key(&owner, json!({})).await;
    let mut big = br#"{"name": "held", "description": ""#.to_vec();
    big.resize(90 * 1024, b'x');
    // The first request holds 90 KiB and waits for the rest.
    let (writer, body) = stalled(&big).await;
    let first = app
        .request(Method::POST, CREATE_PROJECT)
        .header("x-api-key", key.as_str())
        .content_type("application/json")
        .body(body)
        .send();
    tokio::pin!(first);
    tokio::select! {
        _ = &mut first => panic!("the first body is not finished"),
        () = tokio::time::sleep(Duration::from_millis(200)) => {}
    }

    // A second one that would take the budget past 128 KiB is refused at once.
    let mut second = br#"{"name": "second", "description": ""#.to_vec();
    second.resize(60 * 1024, b'y');
    let r = app
        .send(
            app.request(Method::POST, CREATE_PROJECT)
                .header("x-api-key", key.as_str())
                .content_type("application/json")
                .body(second),
        )
        .await;
    r.assert_error(503, "server_busy");
    assert_eq!(r.code(), "SERVICE_UNAVAILABLE");

    // Once the first is done, its bytes are given back and a small body goes through.
    drop(writer);
    let _ = first.await;
    app.post(CREATE_PROJECT, json!({"name": "after"}), &As::Key(key))
        .await
        .assert_ok();
    assert_eq!(
        app.scalar("SELECT name FROM projects WHERE name = 'after'", &[]),
        "after"
    );
}
