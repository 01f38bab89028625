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

/// A user who joined the owner's organization, and how it authenticates.
#[derive(Clone, Debug)]
pub struct Joined {
    pub who: As,
    pub email: String,
    pub user_id: String,
    pub member_id: String,
}

/// The member flags `user.assignPermissions` takes, all false.
pub fn no_flags() -> Value {
    json!({
        "canCreateProjects": false,
        "canDeleteProjects": false,
        "canCreateEnvironments": false,
        "canDeleteEnvironments": false,
        "canCreateServices": false,
        "canDeleteServices": false,
        "canAccessToAPI": false,
    })
}

/// The `id` string of a JSON object.
#[track_caller]
pub fn id_of(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_owned()
}

impl TestApp {
    /// Signs up the first user; returns its cookie, user id and organization id.
    pub async fn owner_ids(&self) -> (As, String, String) {
        let (who, body) = self.owner().await;
        let user = body["user"]["id"].as_str().unwrap().to_owned();
        let org = body["session"]["activeOrganizationId"]
            .as_str()
            .unwrap()
            .to_owned();
        (who, user, org)
    }

    /// `organization.inviteMember` by `by`; returns the invitation (with its token).
    pub async fn invite(&self, by: &As, email: &str, role: &str) -> Value {
        let r = self
            .post(
                "/api/organization.inviteMember",
                json!({"email": email, "role": role}),
                by,
            )
            .await;
        r.assert_ok();
        r.body
    }

    /// Signs up with an invitation token.
    pub async fn sign_up_invited(&self, email: &str, token: &str) -> Reply {
        self.post(
            "/api/auth/sign-up/email",
            json!({"name": "Invitee", "email": email, "password": PASSWORD,
                   "invitationToken": token}),
            &As::Nobody,
        )
        .await
    }

    /// `by` invites `email` as `role`; the invitee signs up with the token.
    pub async fn invite_and_join(&self, by: &As, email: &str, role: &str) -> Joined {
        let inv = self.invite(by, email, role).await;
        let r = self
            .sign_up_invited(email, inv["token"].as_str().unwrap())
            .await;
        r.assert_ok();
        let user_id = r.body["user"]["id"].as_str().unwrap().to_owned();
        let org = inv["organizationId"].as_str().unwrap().to_owned();
        Joined {
            who: As::Cookie(r.session_token().expect("sign-up sets a cookie")),
            email: email.to_owned(),
            member_id: self.member_id(&org, &user_id),
            user_id,
        }
    }

    /// A member of `by`'s active organization whose flags are `flags` (missing ones false).
    pub async fn member_with(&self, by: &As, email: &str, flags: Value) -> Joined {
        let j = self.invite_and_join(by, email, "member").await;
        let mut body = no_flags();
        body["userId"] = json!(j.user_id);
        for (k, v) in flags.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.post("/api/user.assignPermissions", body, by)
            .await
            .assert_ok();
        j
    }

    /// `user.createUserWithCredentials` by `by`, then signs the new user in.
    pub async fn create_user(&self, by: &As, email: &str, role: &str) -> Joined {
        let r = self
            .post(
                "/api/user.createUserWithCredentials",
                json!({"email": email, "password": PASSWORD, "name": "Created", "role": role}),
                by,
            )
            .await;
        r.assert_ok();
        Joined {
            who: self.sign_in(email, PASSWORD).await,
            email: email.to_owned(),
            user_id: r.body["userId"].as_str().unwrap().to_owned(),
            member_id: id_of(&r.body),
        }
    }

    /// The membership id of `user` in `org` (panics when there is none).
    pub fn member_id(&self, org: &str, user: &str) -> String {
        self.scalar(
            "SELECT id FROM members WHERE organization_id = ?1 AND user_id = ?2",
            &[&org, &user],
        )
        .as_str()
        .expect("a membership")
        .to_owned()
    }

    /// `organization.active` as `who`: the organization it acts in, with its role there.
    pub async fn active_org(&self, who: &As) -> Reply {
        self.get("/api/organization.active", &[], who).await
    }

    /// The number of rows a query counts.
    pub fn count_where(&self, sql: &str, params: &[&dyn rusqlite::ToSql]) -> i64 {
        self.scalar(sql, params).as_i64().unwrap()
    }

    /// Runs a statement on the writer connection (for setup the API cannot do).
    pub fn exec(&self, sql: &str, params: &[&dyn rusqlite::ToSql]) {
        self.state
            .db
            .write_blocking(|tx| Ok(tx.execute(sql, params)?))
            .unwrap();
    }

    /// The database file and its write-ahead log, as bytes.
    pub fn database_bytes(&self) -> Vec<u8> {
        let path = self.state.db.path().to_owned();
        let mut out = std::fs::read(&path).unwrap();
        let wal = format!("{}-wal", path.display());
        if let Ok(more) = std::fs::read(wal) {
            out.extend(more);
        }
        out
    }
}

impl Reply {
    /// The `path` of every entry in an error's `issues`.
    pub fn issue_paths(&self) -> Vec<String> {
        self.body["issues"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|i| i["path"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}
