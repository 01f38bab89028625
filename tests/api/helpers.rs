//! A fresh app per test: its own temporary SQLite file and a manual clock.

#![allow(dead_code)]

use std::sync::Arc;

use keygate::clock::ManualClock;
use keygate::config::Config;
use keygate::db::Db;
use keygate::{State, app};
use poem::endpoint::BoxEndpoint;
use poem::test::{TestClient, TestResponse};
use poem::{EndpointExt, Response};
use serde_json::{Value, json};

/// 2026-11-27T00:00:00Z, a fixed start for every test clock.
pub const T0: i64 = 1_795_737_600_000;
pub const ORIGIN: &str = "http://localhost";
pub const PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    pub client: TestClient<BoxEndpoint<'static, Response>>,
    pub state: State,
    pub clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

/// A response read to the end: status, headers we care about, JSON body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub set_cookie: Vec<String>,
    pub headers: poem::http::HeaderMap,
}

impl Reply {
    /// The `reason` of an error body.
    pub fn reason(&self) -> &str {
        self.body["reason"].as_str().unwrap_or_default()
    }

    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }

    /// Asserts status and reason together, with the body in the message.
    #[track_caller]
    pub fn assert_error(&self, status: u16, reason: &str) {
        assert_eq!(
            (self.status, self.reason()),
            (status, reason),
            "unexpected answer: {}",
            self.body
        );
        assert!(
            self.body["message"].is_string(),
            "error without message: {}",
            self.body
        );
        assert!(
            self.body["code"].is_string(),
            "error without code: {}",
            self.body
        );
    }

    #[track_caller]
    pub fn assert_ok(&self) -> &Value {
        assert_eq!(
            self.status, 200,
            "expected 200, got {}: {}",
            self.status, self.body
        );
        &self.body
    }

    /// The session token from a `Set-Cookie`, if one was set (not cleared).
    pub fn session_token(&self) -> Option<String> {
        self.set_cookie.iter().find_map(|c| {
            let v = c.strip_prefix("keygate.session_token=")?;
            let token = v.split(';').next()?;
            (!token.is_empty()).then(|| token.to_owned())
        })
    }
}

pub async fn read(resp: TestResponse) -> Reply {
    let status = resp.0.status().as_u16();
    let headers = resp.0.headers().clone();
    let set_cookie = headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let text = resp.0.into_body().into_string().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Reply {
        status,
        body,
        set_cookie,
        headers,
    }
}

type Req<'a> = poem::test::TestRequestBuilder<'a, BoxEndpoint<'static, Response>>;

/// How a request authenticates.
#[derive(Clone, Debug)]
pub enum As {
    Nobody,
    Cookie(String),
    Key(String),
}

impl TestApp {
    pub fn new() -> TestApp {
        Self::with_config(|_| {})
    }

    pub fn with_config(tweak: impl FnOnce(&mut Config)) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::new(dir.path().join("keygate.db"));
        config.argon2_m_kib = 64; // fast hashing in tests; production uses 19 MiB
        config.trusted_origins = vec![ORIGIN.to_owned()];
        tweak(&mut config);
        let db = Db::open(&config.db_path, 4).unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        let state = State::new(db, clock.clone(), config);
        let client = TestClient::new(app(state.clone()).boxed());
        TestApp {
            client,
            state,
            clock,
            _dir: dir,
        }
    }

    fn auth<'a>(&self, req: Req<'a>, who: &As) -> Req<'a> {
        match who {
            As::Nobody => req,
            As::Cookie(t) => req
                .header("cookie", format!("keygate.session_token={t}"))
                .header("origin", ORIGIN),
            As::Key(k) => req.header("x-api-key", k.as_str()),
        }
    }

    /// `GET path?query` as `who`.
    pub async fn get(&self, path: &str, query: &[(&str, &str)], who: &As) -> Reply {
        let mut req = self.client.get(path);
        for (k, v) in query {
            req = req.query(*k, v);
        }
        read(self.auth(req, who).send().await).await
    }

    /// `POST path` with a JSON body as `who`.
    pub async fn post(&self, path: &str, body: Value, who: &As) -> Reply {
        let req = self.client.post(path).body_json(&body);
        read(self.auth(req, who).send().await).await
    }

    /// Signs up the first user (the owner of "My Organization"); returns its cookie.
    pub async fn owner(&self) -> (As, Value) {
        let r = self
            .post(
                "/api/auth/sign-up/email",
                json!({"name": "Owner", "email": "owner@example.com", "password": PASSWORD}),
                &As::Nobody,
            )
            .await;
        r.assert_ok();
        (
            As::Cookie(r.session_token().expect("sign-up sets a cookie")),
            r.body,
        )
    }

    /// Signs in; returns the session cookie.
    pub async fn sign_in(&self, email: &str, password: &str) -> As {
        let r = self
            .post(
                "/api/auth/sign-in/email",
                json!({"email": email, "password": password}),
                &As::Nobody,
            )
            .await;
        r.assert_ok();
        As::Cookie(r.session_token().expect("sign-in sets a cookie"))
    }

    /// Runs a query against the database and returns the first column of the first row.
    pub fn scalar(&self, sql: &str, params: &[&dyn rusqlite::ToSql]) -> Value {
        self.state
            .db
            .read(|c| {
                Ok(c.query_row(sql, params, |r| {
                    Ok(match r.get_ref(0)? {
                        rusqlite::types::ValueRef::Null => Value::Null,
                        rusqlite::types::ValueRef::Integer(i) => json!(i),
                        rusqlite::types::ValueRef::Real(f) => json!(f),
                        rusqlite::types::ValueRef::Text(t) => {
                            json!(String::from_utf8_lossy(t))
                        }
                        rusqlite::types::ValueRef::Blob(b) => json!(b.len()),
                    })
                })?)
            })
            .unwrap()
    }

    pub fn count(&self, table: &str) -> i64 {
        self.scalar(&format!("SELECT count(*) FROM {table}"), &[])
            .as_i64()
            .unwrap()
    }
}
