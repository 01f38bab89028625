//! A fresh app per test: its own temporary SQLite file and a manual clock. Then, one
//! vocabulary for the setup the tests share: users, members and their permissions, API
//! keys, listings, and projects, environments and applications made through the API,
//! with a dump of the database to show that a refused request changed nothing.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use keygate::clock::ManualClock;
use keygate::config::Config;
use keygate::db::{Db, Ownership};
use keygate::domain::accounts::{NewUser, create_user_blocking};
use keygate::model::{Flag, Role};
use keygate::{State, app};
use poem::endpoint::BoxEndpoint;
use poem::http::Method;
use poem::http::uri::Scheme;
use poem::test::{TestClient, TestResponse};
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Addr, Body, Endpoint, EndpointExt, Request, RequestParts, Response};
use serde_json::{Value, json};

/// 2026-11-27T00:00:00Z, a fixed start for every test clock.
pub const T0: i64 = 1_795_737_600_000;
pub const ORIGIN: &str = "http://localhost";
pub const PASSWORD: &str = "correct horse battery";
/// The email `TestApp::owner` signs up with.
pub const OWNER_EMAIL: &str = "owner@example.com";
/// The session lifetime in seconds, as the cookie's `Max-Age` shows it.
pub const THREE_DAYS_SECS: i64 = 259_200;

pub const SIGN_UP: &str = "/api/auth/sign-up/email";
pub const SIGN_IN: &str = "/api/auth/sign-in/email";
pub const SIGN_OUT: &str = "/api/auth/sign-out";
pub const GET_SESSION: &str = "/api/auth/get-session";
pub const HEALTH: &str = "/api/health";
pub const ENABLE: &str = "/api/auth/two-factor/enable";
pub const VERIFY_TOTP: &str = "/api/auth/two-factor/verify-totp";
/// A TOTP time step.
pub const STEP_MS: i64 = 30_000;

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

    /// A response header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// Asserts that the response is JSON (errors included).
    #[track_caller]
    pub fn assert_json(&self) {
        let ct = self.header("content-type").unwrap_or_default();
        assert!(
            ct.starts_with("application/json"),
            "content-type {ct:?} is not JSON (status {}, body {})",
            self.status,
            self.body
        );
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
    read_response(resp.0).await
}

pub async fn read_response(resp: Response) -> Reply {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let set_cookie = headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let bytes = resp.into_body().into_vec().await.unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
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

pub type Req<'a> = poem::test::TestRequestBuilder<'a, BoxEndpoint<'static, Response>>;

/// How a request authenticates.
#[derive(Clone, Debug)]
pub enum As {
    Nobody,
    Cookie(String),
    Key(String),
    /// A browser's whole `Cookie` header (sign-in's own cookies), with our Origin.
    Cookies(String),
    /// `Authorization: Bearer` with an API key or a session token, and no Origin: a
    /// client that is not a browser.
    Bearer(String),
}

impl As {
    /// The session token of `As::Cookie`.
    #[track_caller]
    pub fn token(&self) -> &str {
        match self {
            As::Cookie(t) => t,
            other => panic!("{other:?} carries no session token"),
        }
    }
}

/// The `Cookie` request header that carries `token`.
pub fn cookie(token: &str) -> String {
    format!("keygate.session_token={token}")
}

/// Checks a session `Set-Cookie` attribute by attribute and returns its token.
#[track_caller]
pub fn session_cookie_token(set_cookie: &str, max_age_secs: i64) -> String {
    let rest = set_cookie
        .strip_prefix("keygate.session_token=")
        .unwrap_or_else(|| panic!("not a session cookie: {set_cookie:?}"));
    let (token, attributes) = rest.split_once(';').unwrap_or((rest, ""));
    assert_eq!(token.len(), 43, "token length in {set_cookie:?}");
    assert!(
        token.bytes().all(|b| b.is_ascii_alphanumeric()),
        "token is not base62 in {set_cookie:?}"
    );
    assert_eq!(
        attributes,
        format!(" Path=/; Max-Age={max_age_secs}; HttpOnly; SameSite=Lax"),
        "attributes of {set_cookie:?}"
    );
    token.to_owned()
}

/// Asserts that `set_cookie` makes the browser forget the session cookie.
#[track_caller]
pub fn assert_clears_session_cookie(set_cookie: &[String]) {
    assert_eq!(
        set_cookie,
        ["keygate.session_token=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"],
        "expected one clearing Set-Cookie"
    );
}

/// Asserts that a user object has exactly the public fields (no password, no hash).
#[track_caller]
pub fn assert_public_user(user: &Value) {
    let mut keys: Vec<&str> = user
        .as_object()
        .unwrap_or_else(|| panic!("user is not an object: {user}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "createdAt",
            "email",
            "id",
            "name",
            "twoFactorEnabled",
            "updatedAt"
        ],
        "user fields: {user}"
    );
    let text = user.to_string();
    assert!(!text.contains("argon2"), "a hash leaked: {text}");
    assert!(!text.contains(PASSWORD), "the password leaked: {text}");
}

/// The statuses the published spec lists for each (method, path) of an operation.
fn documented_statuses() -> &'static HashMap<(String, String), Vec<u16>> {
    static DOCUMENTED: OnceLock<HashMap<(String, String), Vec<u16>>> = OnceLock::new();
    DOCUMENTED.get_or_init(|| {
        let spec = keygate::api::openapi::published();
        let mut out = HashMap::new();
        for (path, ops) in spec["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                let statuses = op["responses"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .map(|s| s.parse().unwrap())
                    .collect();
                out.insert((method.to_uppercase(), path.clone()), statuses);
            }
        }
        out
    })
}

/// Fails when an operation answers a status its spec does not list: every request the
/// tests make checks the spec's promise to clients.
#[track_caller]
fn assert_documented(method: &str, path: &str, r: &Reply) {
    let path = path.split('?').next().unwrap_or(path);
    if let Some(statuses) = documented_statuses().get(&(method.to_owned(), path.to_owned())) {
        assert!(
            statuses.contains(&r.status),
            "{method} {path} answered {} ({}), which its spec does not list: {statuses:?}",
            r.status,
            r.body
        );
    }
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
        // Refused sign-ins answer at once in tests; one test checks the delay itself.
        config.sign_in_refusal_delay_ms = 0;
        tweak(&mut config);
        Self::serve(dir, config, T0)
    }

    /// A server on `config.db_path` (inside `dir`), its clock at `now`.
    fn serve(dir: tempfile::TempDir, config: Config, now: i64) -> TestApp {
        let db = Db::open(&config.db_path, 4, Ownership::Server).unwrap();
        let clock = Arc::new(ManualClock::new(now));
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
            As::Cookies(c) => req.header("cookie", c.as_str()).header("origin", ORIGIN),
            As::Bearer(t) => req.header("authorization", format!("Bearer {t}")),
        }
    }

    /// A request built by hand (no credentials, no Origin).
    pub fn request(&self, method: Method, path: &str) -> Req<'_> {
        self.client.request(method, path)
    }

    /// Sends a request built with `request`.
    pub async fn send(&self, req: Req<'_>) -> Reply {
        read(req.send().await).await
    }

    /// Sends a request as if it came from `remote` over TCP, which `TestClient` cannot do.
    pub async fn send_from(
        &self,
        remote: SocketAddr,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Value,
    ) -> Reply {
        let mut builder = poem::http::Request::builder().method(method).uri(path);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let (parts, ()) = builder
            .header("content-type", "application/json")
            .body(())
            .unwrap()
            .into_parts();
        let parts = RequestParts::from((
            parts,
            LocalAddr(Addr::SocketAddr(SocketAddr::from(([127, 0, 0, 1], 3000)))),
            RemoteAddr(Addr::SocketAddr(remote)),
            Scheme::HTTP,
        ));
        let req = Request::from_parts(parts, Body::from_json(body).unwrap());
        // A second endpoint over the same state: same database, clock and limiters.
        let resp = app(self.state.clone()).get_response(req).await;
        read_response(resp).await
    }

    /// `POST` a sign-up with no credentials and no Origin.
    pub async fn sign_up(&self, body: Value) -> Reply {
        self.post(SIGN_UP, body, &As::Nobody).await
    }

    /// `POST` a sign-in with no credentials and no Origin, whatever the outcome.
    pub async fn try_sign_in(&self, email: &str, password: &str) -> Reply {
        self.post(
            SIGN_IN,
            json!({"email": email, "password": password}),
            &As::Nobody,
        )
        .await
    }

    /// Creates a user the way `keygate user create` does (the first becomes the owner).
    pub fn create_user(&self, email: &str, role: Role) -> keygate::model::User {
        let new = NewUser::parse("Created", email, PASSWORD).unwrap();
        create_user_blocking(&self.state, new, role, None, false)
            .unwrap()
            .user
    }

    /// Creates a user the way `keygate user create --installation-admin` does.
    pub fn create_installation_admin(&self, email: &str, role: Role) -> keygate::model::User {
        let new = NewUser::parse("Created", email, PASSWORD).unwrap();
        create_user_blocking(&self.state, new, role, None, true)
            .unwrap()
            .user
    }

    /// `GET path?query` as `who`.
    pub async fn get(&self, path: &str, query: &[(&str, &str)], who: &As) -> Reply {
        let mut req = self.client.get(path);
        for (k, v) in query {
            req = req.query(*k, v);
        }
        let r = read(self.auth(req, who).send().await).await;
        assert_documented("GET", path, &r);
        r
    }

    /// `GET path?query` as `who` on a second server opened read-only on the same database
    /// file with nothing in memory: the answer computed afresh. (A request that would
    /// write, such as a session extension, fails there.)
    pub async fn get_afresh(&self, path: &str, query: &[(&str, &str)], who: &As) -> Reply {
        let config = self.state.config.clone();
        let db = Db::open(&config.db_path, 2, Ownership::ReadOnly).unwrap();
        let now = keygate::clock::Clock::now_ms(&*self.clock);
        let state = State::new(db, Arc::new(ManualClock::new(now)), config);
        let client = TestClient::new(app(state).boxed());
        let mut req = client.get(path);
        for (k, v) in query {
            req = req.query(*k, v);
        }
        read(self.auth(req, who).send().await).await
    }

    /// `POST path` with a JSON body as `who`.
    pub async fn post(&self, path: &str, body: Value, who: &As) -> Reply {
        let req = self.client.post(path).body_json(&body);
        let r = read(self.auth(req, who).send().await).await;
        assert_documented("POST", path, &r);
        r
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

    /// Runs a query and returns every value of the first column of every row as bytes
    /// (text as UTF-8, integers in decimal).
    pub fn column_bytes(&self, sql: &str, params: &[&dyn rusqlite::ToSql]) -> Vec<Vec<u8>> {
        self.state
            .db
            .read(|c| {
                let mut st = c.prepare(sql)?;
                let rows = st.query_map(params, |r| {
                    Ok(match r.get_ref(0)? {
                        rusqlite::types::ValueRef::Null => Vec::new(),
                        rusqlite::types::ValueRef::Integer(i) => i.to_string().into_bytes(),
                        rusqlite::types::ValueRef::Real(f) => f.to_string().into_bytes(),
                        rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                            t.to_vec()
                        }
                    })
                })?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .unwrap()
    }

    /// The database file and its write-ahead log, as raw bytes.
    pub fn database_files(&self) -> Vec<u8> {
        let path = self.state.db.path();
        let mut out = std::fs::read(path).unwrap();
        let wal = path.with_extension("db-wal");
        if let Ok(bytes) = std::fs::read(wal) {
            out.extend(bytes);
        }
        out
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

/// The API's names of the member permission flags, in the model's order.
pub fn flag_names() -> [&'static str; Flag::COUNT] {
    Flag::ALL.map(Flag::name)
}

/// The flags of `flags`, each set to `value`, as `user.assignPermissions` takes them.
fn flags_set_to(flags: impl IntoIterator<Item = Flag>, value: bool) -> Value {
    Value::Object(
        flags
            .into_iter()
            .map(|f| (f.name().to_owned(), json!(value)))
            .collect(),
    )
}

/// The member flags `user.assignPermissions` takes, all false.
pub fn no_flags() -> Value {
    flags_set_to(Flag::ALL, false)
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

    /// `user.createUserWithCredentials` by `by`, then signs the new user in.
    pub async fn create_user_via_api(&self, by: &As, email: &str, role: &str) -> Joined {
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

    /// Makes the database as full as a full disk would (`true`): the writer may grow it by
    /// no page more, so the next write that needs a page fails with SQLITE_FULL. `false`
    /// lifts the cap.
    pub fn set_storage_full(&self, full: bool) {
        self.state
            .db
            .write_blocking(move |tx| {
                let pages: i64 = tx.query_row("PRAGMA page_count", [], |r| r.get(0))?;
                let cap = if full { pages } else { 0xffff_fffe };
                Ok(
                    tx.query_row(&format!("PRAGMA max_page_count = {cap}"), [], |r| {
                        r.get::<_, i64>(0)
                    })?,
                )
            })
            .unwrap();
    }
}

// ------------------------------------------------------ organizations, members, API keys

pub const CREATE_KEY: &str = "/api/user.createApiKey";
pub const DELETE_KEY: &str = "/api/user.deleteApiKey";
pub const UPDATE_KEY: &str = "/api/user.updateApiKey";
pub const ROTATE_KEY: &str = "/api/user.rotateApiKey";
pub const USER_GET: &str = "/api/user.get";

/// SHA-256 of `data`, as keys and tokens are stored.
pub fn sha256(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

/// The key list (`apiKeys`) of a `user.get` answer.
#[track_caller]
pub fn key_list(user_get: &Value) -> Vec<Value> {
    user_get
        .get("apiKeys")
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("no key list in {user_get}"))
        .clone()
}

/// `key` with the character at `i` replaced by another base62 character.
pub fn with_char_changed(key: &str, i: usize) -> String {
    let mut bytes = key.as_bytes().to_vec();
    bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
    String::from_utf8(bytes).unwrap()
}

impl Reply {
    /// The `path` of every issue of a 400, in order.
    #[track_caller]
    pub fn issue_paths(&self) -> Vec<String> {
        self.body["issues"]
            .as_array()
            .unwrap_or_else(|| panic!("no issues in {}", self.body))
            .iter()
            .map(|i| i["path"].as_str().unwrap().to_owned())
            .collect()
    }
}

impl TestApp {
    /// A request with `key` that needs nothing but authentication
    /// (`user.getPermissions` answers from the verified credential alone).
    pub async fn try_key(&self, key: &str) -> Reply {
        self.get("/api/user.getPermissions", &[], &As::Key(key.to_owned()))
            .await
    }

    /// `who` creates an organization (and becomes its owner); returns its id.
    pub async fn create_org(&self, who: &As, name: &str) -> String {
        let r = self
            .post("/api/organization.create", json!({"name": name}), who)
            .await;
        r.assert_ok()["id"].as_str().unwrap().to_owned()
    }

    /// The keys `user.get` lists for `who`.
    pub async fn keys_of(&self, who: &As) -> Vec<Value> {
        key_list(self.get(USER_GET, &[], who).await.assert_ok())
    }

    /// One column of the key `id`'s row, its usage row included.
    pub fn key_column(&self, id: &str, column: &str) -> Value {
        self.scalar(
            &format!(
                "SELECT {column} FROM api_keys LEFT JOIN key_usage ON key_id = id WHERE id = ?1"
            ),
            &[&id],
        )
    }

    /// The first organization created ("My Organization" of the owner).
    pub fn first_org(&self) -> String {
        self.scalar("SELECT id FROM organizations ORDER BY rowid LIMIT 1", &[])
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Creates a key as `who`. `body` is laid over
    /// `{"name": "test key", "metadata": {"organizationId": <first organization>}}`.
    /// Returns the key and its id.
    pub async fn create_key(&self, who: &As, body: Value) -> (String, String) {
        let mut full = json!({
            "name": "test key",
            "metadata": {"organizationId": self.first_org()},
        });
        for (k, v) in body.as_object().expect("the body is an object") {
            full[k] = v.clone();
        }
        let r = self.post(CREATE_KEY, full, who).await;
        let b = r.assert_ok();
        (
            b["key"].as_str().unwrap().to_owned(),
            b["id"].as_str().unwrap().to_owned(),
        )
    }

    /// The app after a restart: the same database file opened afresh (new pool, new
    /// cache, nothing kept in memory), the clock where it was.
    pub fn reopen(self) -> TestApp {
        let config = self.state.config.clone();
        let now = keygate::clock::Clock::now_ms(&*self.clock);
        let dir = self._dir;
        drop(self.client);
        drop(self.state);
        Self::serve(dir, config, now)
    }

    /// A second server, with nothing in memory, on a copy of this one's database made by
    /// its own online backup (`Db::backup_to`), while this one keeps running: the file
    /// itself is locked by this server. Same configuration; its clock where this one's is.
    pub fn fresh_copy(&self) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let mut config = self.state.config.clone();
        config.db_path = dir.path().join("keygate.db");
        self.state.db.backup_to(&config.db_path).unwrap();
        let now = keygate::clock::Clock::now_ms(&*self.clock);
        Self::serve(dir, config, now)
    }
}

// ---------------------------------------------------------------- listings

/// The response header with the number of rows of a whole listing.
pub const TOTAL_COUNT: &str = "x-total-count";

impl Reply {
    /// A listing's `X-Total-Count`.
    #[track_caller]
    pub fn total(&self) -> u64 {
        self.header(TOTAL_COUNT)
            .unwrap_or_else(|| panic!("no X-Total-Count ({}): {}", self.status, self.body))
            .parse()
            .expect("X-Total-Count is a number")
    }

    /// The `field` of every row of a listing (a JSON array), as text.
    #[track_caller]
    pub fn column(&self, field: &str) -> Vec<String> {
        column(self.assert_ok(), field)
    }
}

/// The `field` (a `/`-separated path) of every row of the array `rows`, as text.
#[track_caller]
pub fn column(rows: &Value, field: &str) -> Vec<String> {
    rows.as_array()
        .unwrap_or_else(|| panic!("not a list: {rows}"))
        .iter()
        .map(|row| {
            let v = field.split('/').fold(row, |v, f| &v[f]);
            v.as_str()
                .unwrap_or_else(|| panic!("no {field} in {row}"))
                .to_owned()
        })
        .collect()
}

/// A query, and the `reason` and issue paths of the 400 it must get.
pub type BadPage = (
    &'static [(&'static str, &'static str)],
    &'static str,
    &'static [&'static str],
);

/// Pages every listing refuses.
pub const BAD_PAGES: &[BadPage] = &[
    (&[("limit", "0")], "validation_failed", &["limit"]),
    (&[("limit", "101")], "validation_failed", &["limit"]),
    (&[("limit", "-1")], "validation_failed", &["limit"]),
    (&[("offset", "-1")], "validation_failed", &["offset"]),
    (
        &[("limit", "0"), ("offset", "-5")],
        "validation_failed",
        &["limit", "offset"],
    ),
    (&[("limit", "ten")], "bad_request", &[]),
    (&[("limit", "")], "bad_request", &[]),
    (&[("offset", "abc")], "bad_request", &[]),
    (&[("offset", "1.5")], "bad_request", &[]),
    (&[("offset", "99999999999999999999")], "bad_request", &[]),
];

impl TestApp {
    /// Asserts that `path` answers each of `BAD_PAGES`, as `who`, with a 400 in the
    /// error shape that names what is wrong.
    pub async fn assert_refuses_bad_pages(&self, path: &str, who: &As) {
        for (query, reason, issues) in BAD_PAGES {
            let r = self.get(path, query, who).await;

            r.assert_json();
            assert_eq!(
                (r.status, r.reason(), r.code()),
                (400, *reason, "BAD_REQUEST"),
                "{path} {query:?}: {}",
                r.body
            );
            assert!(
                r.body["message"].is_string(),
                "{path} {query:?}: {}",
                r.body
            );
            assert_eq!(r.issue_paths(), *issues, "{path} {query:?}");
        }
    }

    /// Reads `path` as `who` `limit` rows at a time until a page comes back short, and
    /// answers the `field` of every row, in order, and the `X-Total-Count` of each page.
    pub async fn every_page(
        &self,
        path: &str,
        who: &As,
        limit: usize,
        field: &str,
    ) -> (Vec<String>, Vec<u64>) {
        let (mut rows, mut totals) = (Vec::new(), Vec::new());
        loop {
            let (limit_text, offset) = (limit.to_string(), rows.len().to_string());
            let r = self
                .get(path, &[("limit", &limit_text), ("offset", &offset)], who)
                .await;
            let page = r.column(field);
            totals.push(r.total());
            let last = page.len() < limit;
            rows.extend(page);
            if last {
                return (rows, totals);
            }
        }
    }
}

// --------------------------------------------- projects, environments, applications

/// An id that no table holds.
pub const MISSING: &str = "nosuchresource000000";

/// Every resource flag a member can hold (all but `canAccessToAPI`).
pub fn resource_flags() -> Value {
    flags_set_to(
        Flag::ALL.into_iter().filter(|f| *f != Flag::AccessToApi),
        true,
    )
}

/// A project made by `who`: (project id, id of its default environment).
pub async fn project(app: &TestApp, who: &As, name: &str) -> (String, String) {
    let r = app
        .post("/api/project.create", json!({"name": name}), who)
        .await;
    let body = r.assert_ok();
    let p = body["project"]["projectId"].as_str().unwrap().to_owned();
    let e = body["environment"]["environmentId"]
        .as_str()
        .unwrap()
        .to_owned();
    // Later resources are strictly newer.
    app.clock.advance(1);
    (p, e)
}

/// An environment made by `who` in `project`; its id.
pub async fn environment(app: &TestApp, who: &As, project: &str, name: &str) -> String {
    let r = app
        .post(
            "/api/environment.create",
            json!({"projectId": project, "name": name}),
            who,
        )
        .await;
    let id = r.assert_ok()["environmentId"].as_str().unwrap().to_owned();
    app.clock.advance(1);
    id
}

/// An application made by `who` in `environment`; the answer.
pub async fn application(app: &TestApp, who: &As, environment: &str, name: &str) -> Value {
    let r = app
        .post(
            "/api/application.create",
            json!({"name": name, "environmentId": environment}),
            who,
        )
        .await;
    let body = r.assert_ok().clone();
    app.clock.advance(1);
    body
}

/// The `applicationId` of an application answer.
#[track_caller]
pub fn app_id(a: &Value) -> String {
    a["applicationId"]
        .as_str()
        .unwrap_or_else(|| panic!("no applicationId in {a}"))
        .to_owned()
}

/// `user.assignPermissions` by `by` for `user`: `flags` (missing ones false) and lists.
pub async fn grant(
    app: &TestApp,
    by: &As,
    user: &str,
    flags: Value,
    projects: &[&str],
    environments: &[&str],
    applications: &[&str],
) {
    let mut body = no_flags();
    for (k, v) in flags.as_object().unwrap() {
        body[k] = v.clone();
    }
    body["userId"] = json!(user);
    body["accessedProjects"] = json!(projects);
    body["accessedEnvironments"] = json!(environments);
    body["accessedServices"] = json!(applications);
    app.post("/api/user.assignPermissions", body, by)
        .await
        .assert_ok();
}

/// A member of `by`'s organization holding `flags` and the given access lists.
pub async fn member_seeing(
    app: &TestApp,
    by: &As,
    email: &str,
    flags: Value,
    projects: &[&str],
    environments: &[&str],
    applications: &[&str],
) -> Joined {
    let j = app.invite_and_join(by, email, "member").await;
    grant(
        app,
        by,
        &j.user_id,
        flags,
        projects,
        environments,
        applications,
    )
    .await;
    j
}

/// A member of `owner`'s organization with API access and these access lists, and both
/// ways it can sign a request: its session and an API key of its own.
pub async fn member_by_session_and_key(
    app: &TestApp,
    owner: &As,
    projects: &[&str],
    environments: &[&str],
    applications: &[&str],
) -> [As; 2] {
    let m = member_seeing(
        app,
        owner,
        "lists@example.com",
        json!({"canAccessToAPI": true}),
        projects,
        environments,
        applications,
    )
    .await;
    let key = app
        .create_key(
            &m.who,
            json!({"metadata": {"organizationId": app.first_org()}}),
        )
        .await
        .0;
    [m.who, As::Key(key)]
}

/// The access lists `user.getPermissions` answers `who`, sorted: projects, environments,
/// applications.
pub async fn lists_seen(app: &TestApp, who: &As) -> [Vec<String>; 3] {
    let r = app.get("/api/user.getPermissions", &[], who).await;
    let body = r.assert_ok();
    [
        "accessedProjects",
        "accessedEnvironments",
        "accessedServices",
    ]
    .map(|f| {
        let mut ids: Vec<String> = body[f]
            .as_array()
            .unwrap_or_else(|| panic!("no {f} in {body}"))
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    })
}

/// `ids`, sorted.
pub fn sorted(ids: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

/// The owner of another organization, who belongs to no other.
pub struct Stranger {
    /// Its session, acting in its own organization.
    pub who: As,
    /// An API key for its organization.
    pub key: As,
    pub org: String,
    pub user_id: String,
}

/// `email` joins `owner`'s organization, creates one of its own, moves there, and is
/// removed from `owner`'s: a stranger with an organization of its own (sign-up needs an
/// invitation after the first user, so this is the only way in).
pub async fn stranger(app: &TestApp, owner: &As, email: &str) -> Stranger {
    let j = app.invite_and_join(owner, email, "member").await;
    let r = app
        .post(
            "/api/organization.create",
            json!({"name": "Their Organization"}),
            &j.who,
        )
        .await;
    let org = id_of(r.assert_ok());
    app.post(
        "/api/organization.setActive",
        json!({"organizationId": org}),
        &j.who,
    )
    .await
    .assert_ok();
    app.post("/api/user.remove", json!({"userId": j.user_id}), owner)
        .await
        .assert_ok();
    let key = app
        .create_key(&j.who, json!({"metadata": {"organizationId": org}}))
        .await
        .0;
    Stranger {
        who: j.who,
        key: As::Key(key),
        org,
        user_id: j.user_id,
    }
}

/// `project.all` as `who`, which must answer.
pub async fn all_projects(app: &TestApp, who: &As) -> Vec<Value> {
    let r = app.get("/api/project.all", &[], who).await;
    r.assert_ok().as_array().expect("a list").clone()
}

/// A listing reduced to names: `project/environment/application` for every application
/// and `project/environment` for every environment, in order.
pub fn outline(list: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    for p in list {
        let pn = p["name"].as_str().unwrap();
        out.push(pn.to_owned());
        for e in p["environments"].as_array().unwrap() {
            let en = e["name"].as_str().unwrap();
            out.push(format!("{pn}/{en}"));
            for a in e["applications"].as_array().unwrap() {
                out.push(format!("{pn}/{en}/{}", a["name"].as_str().unwrap()));
            }
        }
    }
    out
}

/// The names in the `items` of a search answer, in order.
pub fn item_names(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {page}"))
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

/// How many rows of `table` have `column = value`.
pub fn rows(app: &TestApp, table: &str, column: &str, value: &str) -> i64 {
    app.count_where(
        &format!("SELECT count(*) FROM {table} WHERE {column} = ?1"),
        &[&value],
    )
}

/// Every row of every table, as text, sorted: equal dumps mean nothing was written.
pub fn dump(app: &TestApp) -> Vec<String> {
    app.state
        .db
        .read(|c| {
            let tables: Vec<String> = c
                .prepare(
                    "SELECT name FROM sqlite_master WHERE type = 'table'
                     AND name NOT LIKE 'sqlite_%' ORDER BY name",
                )?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut out = Vec::new();
            for t in tables {
                let mut st = c.prepare(&format!("SELECT * FROM {t}"))?;
                let n = st.column_count();
                let mut q = st.query([])?;
                while let Some(row) = q.next()? {
                    let mut line = format!("{t}:");
                    for i in 0..n {
                        line.push_str(&format!(" {:?}", row.get_ref(i)?));
                    }
                    out.push(line);
                }
            }
            out.sort();
            Ok(out)
        })
        .unwrap()
}

// ---- two-factor

/// The secret of an `otpauth://` URI.
pub fn secret_of(uri: &str) -> Vec<u8> {
    let b32 = uri
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("secret="))
        .unwrap_or_else(|| panic!("no secret in {uri}"));
    totp_rs::Secret::try_from_base32(b32)
        .unwrap()
        .as_bytes()
        .to_vec()
}

/// The code of `secret` at the app's clock, `steps` steps away.
pub fn code(app: &TestApp, secret: &[u8], steps: i64) -> String {
    let now = keygate::clock::Clock::now_ms(&*app.clock) + steps * STEP_MS;
    keygate::auth::totp::code_at(secret, 6, (now / 1000) as u64).unwrap()
}

/// Sets two-factor up for the signed-in `who` and confirms it with a first code; answers
/// the secret and the backup codes. The clock moves on one step, so that the next code
/// is a new one.
pub async fn turn_on(app: &TestApp, who: &As) -> (Vec<u8>, Vec<String>) {
    let r = app.post(ENABLE, json!({"password": PASSWORD}), who).await;
    let body = r.assert_ok().clone();
    let secret = secret_of(body["totpURI"].as_str().unwrap());
    let r = app
        .post(VERIFY_TOTP, json!({"code": code(app, &secret, 0)}), who)
        .await;
    assert_eq!(r.assert_ok()["user"]["twoFactorEnabled"], true);
    app.clock.advance(STEP_MS);
    let codes = body["backupCodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    (secret, codes)
}

/// The `Cookie` value of the password step's cookie a sign-in answer set.
pub fn challenge_of(r: &Reply) -> String {
    r.set_cookie
        .iter()
        .find_map(|c| c.strip_prefix("keygate.two_factor="))
        .map(|v| v.split(';').next().unwrap().to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| panic!("no password-step cookie in {:?}", r.set_cookie))
}
