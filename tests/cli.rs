//! End-to-end tests of the real binary: `serve` on a temporary database and a free
//! loopback port, driven through its own subcommands and a tiny HTTP/1.1 client.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct horse battery";
const STARTUP: Duration = Duration::from_secs(10);
const SHUTDOWN: Duration = Duration::from_secs(5);

/// `keygate` with a clean environment; `home` (when given) stands in for the user's home
/// so nothing can touch the real default database.
fn keygate(home: Option<&Path>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keygate"));
    // Every variable the binary reads, so the caller's environment cannot leak in.
    for var in keygate::cli::environment_variables() {
        cmd.env_remove(var);
    }
    if let Some(home) = home {
        cmd.env("HOME", home)
            .env("XDG_DATA_HOME", home.join("data"));
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// Runs `keygate args...` to completion.
fn run(args: &[&str]) -> Output {
    keygate(None).args(args).output().expect("run keygate")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A loopback port nobody listens on right now.
fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address")
}

/// Waits up to `limit` for `child` to exit.
fn wait_for_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("poll the child") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        sleep(Duration::from_millis(50));
    }
}

/// `keygate user create` on `dir/keygate.db`, password from the environment.
fn create_user(dir: &Path, email: &str, name: &str) -> Output {
    keygate(Some(dir))
        .args(["user", "create", "--email", email, "--name", name, "--db"])
        .arg(dir.join("keygate.db"))
        .env("KEYGATE_PASSWORD", PASSWORD)
        .output()
        .expect("run keygate user create")
}

/// `keygate key create` on `dir/keygate.db`.
fn create_key(dir: &Path, email: &str, org: &str) -> Output {
    keygate(Some(dir))
        .args(["key", "create", "--email", email, "--org", org])
        .args(["--name", "from the shell", "--db"])
        .arg(dir.join("keygate.db"))
        .output()
        .expect("run keygate key create")
}

/// The id of the only organization in the database at `path`.
fn only_org(path: &Path) -> String {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row("SELECT id FROM organizations", [], |r| r.get(0))
        .unwrap()
}

/// Spawns `keygate serve` on `db` and a free port, its output appended to `log`, and
/// waits until its health check passes.
fn launch(home: &Path, db: &Path, log: &Path, args: &[String]) -> (Child, SocketAddr) {
    // Another process may take the free port before the server binds it; then the server
    // exits at once, and we try again on a new port.
    for attempt in 1.. {
        let addr = free_addr();
        let out = std::fs::File::options()
            .create(true)
            .append(true)
            .open(log)
            .expect("open the log file");
        let err = out.try_clone().expect("clone the log file");
        let mut child = keygate(Some(home))
            .arg("serve")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--db")
            .arg(db)
            .args(args)
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn keygate serve");
        if wait_until_healthy(&mut child, addr, log) {
            return (child, addr);
        }
        let _ = child.kill();
        let _ = child.wait();
        let text = std::fs::read_to_string(log).unwrap_or_default();
        assert!(
            attempt < 3 && text.contains("cannot listen"),
            "the server did not become healthy within {STARTUP:?}:\n{text}"
        );
    }
    unreachable!()
}

/// Polls `keygate healthcheck` until it passes (true) or the server exits or the time is
/// up (false).
fn wait_until_healthy(child: &mut Child, addr: SocketAddr, log: &Path) -> bool {
    let deadline = Instant::now() + STARTUP;
    while Instant::now() < deadline {
        if child.try_wait().expect("poll the server").is_some() {
            return false;
        }
        let status = keygate(None)
            .args(["healthcheck", "--listen", &addr.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run keygate healthcheck");
        // The log line proves that this child, not some other process, holds the port.
        if status.success()
            && std::fs::read_to_string(log)
                .unwrap_or_default()
                .contains(&format!("listening on http://{addr}"))
        {
            return true;
        }
        sleep(Duration::from_millis(100));
    }
    false
}

/// A `keygate serve` child on a temporary database. Dropping it kills the process, so no
/// server outlives its test, whatever happens.
struct Server {
    child: Child,
    addr: SocketAddr,
    db: PathBuf,
    log: PathBuf,
    args: Vec<String>,
    dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts a server on a fresh database and waits until its health check passes.
    fn start() -> Server {
        Server::start_with(&[])
    }

    /// `start` with more `serve` arguments.
    fn start_with(args: &[&str]) -> Server {
        Server::start_in(tempfile::tempdir().expect("temp dir"), args)
    }

    /// Starts a server on `dir/keygate.db` (created if missing), logging to
    /// `dir/serve.log`, and waits until its health check passes.
    fn start_in(dir: tempfile::TempDir, args: &[&str]) -> Server {
        let db = dir.path().join("keygate.db");
        let log = dir.path().join("serve.log");
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let (child, addr) = launch(dir.path(), &db, &log, &args);
        Server {
            child,
            addr,
            db,
            log,
            args,
            dir,
        }
    }

    /// SIGKILL: the process ends at once, without flushing anything.
    fn kill(&mut self) {
        self.child.kill().expect("kill the server");
        self.child.wait().expect("reap the server");
    }

    /// Starts the server again on the same database, after it stopped.
    fn restart(&mut self) {
        assert!(
            self.child.try_wait().expect("poll the server").is_some(),
            "the server still runs"
        );
        (self.child, self.addr) = launch(self.dir.path(), &self.db, &self.log, &self.args);
    }

    /// Sends SIGTERM and waits for the exit, which must come within `SHUTDOWN`.
    fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        // The shell's own `kill`: /usr/bin/kill (procps) is missing from minimal images.
        let kill = Command::new("sh")
            .args(["-c", "kill -TERM \"$0\"", &pid])
            .status()
            .expect("run kill");
        assert!(kill.success());
        wait_for_exit(&mut self.child, SHUTDOWN).unwrap_or_else(|| {
            panic!(
                "the server still runs {SHUTDOWN:?} after SIGTERM:\n{}",
                self.log_text()
            )
        })
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `keygate user create` against this server's database, password from the
    /// environment.
    fn create_user(&self, email: &str, name: &str) -> Output {
        create_user(self.dir.path(), email, name)
    }

    fn post_json(&self, path: &str, body: &str) -> HttpReply {
        http(
            self.addr,
            "POST",
            path,
            &[("content-type", "application/json")],
            body,
        )
    }
}

/// What the tiny client below read back.
#[derive(Debug)]
struct HttpReply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl HttpReply {
    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request on its own connection (`Connection: close`), read to the end.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> HttpReply {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).expect("send request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    let raw = text(&raw);

    let (head, rest) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of headers in {raw:?}"));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    HttpReply {
        status,
        headers,
        body,
    }
}

/// Decodes a `Transfer-Encoding: chunked` body.
fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or_else(|_| panic!("bad chunk size in {rest:?}"));
        if size == 0 {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}

/// The users' emails in the database at `path`, sorted.
fn emails(path: &Path) -> Vec<String> {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the database");
    let mut stmt = conn
        .prepare("SELECT email FROM users ORDER BY email")
        .expect("prepare");
    stmt.query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("read rows")
}

#[test]
fn a_user_created_from_the_shell_can_sign_in_over_http_once_the_server_runs() {
    let dir = tempfile::tempdir().unwrap();
    let created = create_user(dir.path(), "owner@example.com", "Owner");
    assert!(
        created.status.success(),
        "user create failed: {}",
        text(&created.stderr)
    );
    let said = text(&created.stdout);
    assert!(
        said.contains("owner@example.com") && said.contains("as owner of \"My Organization\""),
        "the first user must become the owner: {said}"
    );
    let server = Server::start_in(dir, &[]);

    let reply = server.post_json(
        "/api/auth/sign-in/email",
        &format!(r#"{{"email":"owner@example.com","password":"{PASSWORD}"}}"#),
    );
    assert_eq!(reply.status, 200, "sign-in failed: {reply:?}");
    let cookie = reply
        .header_values("set-cookie")
        .find(|c| c.starts_with("keygate.session_token="))
        .unwrap_or_else(|| panic!("no session cookie in {reply:?}"));
    let token = cookie
        .trim_start_matches("keygate.session_token=")
        .split(';')
        .next()
        .unwrap();
    assert!(!token.is_empty(), "empty session cookie: {cookie}");

    // The cookie works on the next request.
    let session = http(
        server.addr,
        "GET",
        "/api/auth/get-session",
        &[("cookie", &format!("keygate.session_token={token}"))],
        "",
    );
    assert_eq!(session.status, 200, "{session:?}");
    let body: serde_json::Value = serde_json::from_str(&session.body).expect("JSON session");
    assert_eq!(body["user"]["email"], "owner@example.com", "{body}");
}

#[test]
fn a_backup_taken_while_the_server_runs_holds_the_same_users_as_the_live_database() {
    let server = Server::start();
    // Two users written by the server itself; its writes may still sit in the WAL.
    let signed_up = server.post_json(
        "/api/auth/sign-up/email",
        &format!(r#"{{"name":"Ada","email":"ada@example.com","password":"{PASSWORD}"}}"#),
    );
    assert_eq!(signed_up.status, 200, "sign-up failed: {signed_up:?}");
    let cookie = format!("keygate.session_token={}", session_token(&signed_up));
    let origin = format!("http://{}", server.addr);
    let created = http(
        server.addr,
        "POST",
        "/api/user.createUserWithCredentials",
        &[
            ("content-type", "application/json"),
            ("cookie", &cookie),
            ("origin", &origin),
        ],
        &format!(
            r#"{{"name":"Bob","email":"bob@example.com","password":"{PASSWORD}","role":"member"}}"#
        ),
    );
    assert_eq!(created.status, 200, "{created:?}");

    let out = server.dir.path().join("backup.db");
    let backup = keygate(Some(server.dir.path()))
        .arg("backup")
        .arg(&out)
        .arg("--db")
        .arg(&server.db)
        .output()
        .expect("run keygate backup");
    assert!(
        backup.status.success(),
        "backup failed: {}",
        text(&backup.stderr)
    );

    let live = emails(&server.db);
    assert_eq!(live, ["ada@example.com", "bob@example.com"]);
    assert_eq!(emails(&out), live);
}

#[test]
fn a_backup_refuses_to_overwrite_an_existing_file() {
    let server = Server::start();
    let out = server.dir.path().join("taken.db");
    std::fs::write(&out, b"precious").unwrap();

    let backup = keygate(Some(server.dir.path()))
        .arg("backup")
        .arg(&out)
        .arg("--db")
        .arg(&server.db)
        .output()
        .expect("run keygate backup");

    assert!(
        !backup.status.success(),
        "backup over an existing file succeeded"
    );
    let err = text(&backup.stderr);
    assert!(err.contains("already exists"), "unclear message: {err}");
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
}

#[test]
fn the_server_stops_with_exit_status_zero_on_sigterm() {
    let mut server = Server::start();

    let status = server.terminate();

    assert!(
        status.success(),
        "exit status {status:?}:\n{}",
        server.log_text()
    );
}

/// Runs `keygate serve` on `db`, which must exit at once with a failure; returns what
/// it wrote on standard error. `what` names the database in the panic message.
fn serve_refused(home: &Path, db: &Path, what: &str) -> String {
    let mut child = keygate(Some(home))
        .args(["serve", "--listen", &free_addr().to_string(), "--db"])
        .arg(db)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_for_exit(&mut child, STARTUP);
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("serve started on {what}");
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!status.success(), "serve on {what} exited with {status:?}");
    err
}

#[test]
fn user_create_makes_the_first_user_and_those_it_is_asked_to_installation_administrators() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("keygate.db");
    let create = |email: &str, extra: &[&str]| {
        let out = keygate(Some(dir.path()))
            .args(["user", "create", "--email", email, "--name", "N", "--db"])
            .arg(&db)
            .args(extra)
            .env("KEYGATE_PASSWORD", PASSWORD)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };

    let first = create("first@example.com", &[]);
    let plain = create("plain@example.com", &["--role", "admin"]);
    let named = create(
        "named@example.com",
        &["--role", "admin", "--installation-admin"],
    );

    assert!(first.contains("installation administrator"), "{first}");
    assert!(!plain.contains("installation administrator"), "{plain}");
    assert!(named.contains("installation administrator"), "{named}");
    let conn =
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut stmt = conn
        .prepare("SELECT email FROM users WHERE installation_admin = 1 ORDER BY email")
        .unwrap();
    let admins: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(admins, ["first@example.com", "named@example.com"]);
}

#[test]
fn serve_refuses_a_database_written_by_a_newer_keygate() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("keygate.db");
    let created = create_user(dir.path(), "a@example.com", "A");
    assert!(created.status.success(), "{}", text(&created.stderr));
    rusqlite::Connection::open(&db)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();

    let err = serve_refused(dir.path(), &db, "a database from a newer version");

    assert!(
        err.contains("newer than this keygate"),
        "unclear message: {err}"
    );
}

#[test]
fn a_health_check_against_a_closed_port_fails() {
    let out = run(&["healthcheck", "--listen", &free_addr().to_string()]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("cannot connect"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn version_prints_the_package_version() {
    let out = run(&["version"]);
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout).trim(),
        format!("keygate {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn every_subcommand_answers_help_with_exit_status_zero() {
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["openapi", "--help"],
        &["user", "--help"],
        &["user", "create", "--help"],
        &["backup", "--help"],
        &["healthcheck", "--help"],
        &["version", "--help"],
    ] {
        let out = run(args);
        assert!(
            out.status.success(),
            "keygate {args:?} failed: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stdout).contains("Usage:"),
            "keygate {args:?} printed no usage"
        );
    }
}

#[test]
fn openapi_prints_a_json_document_with_its_paths() {
    let out = run(&["openapi"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let spec: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the spec is JSON");
    assert!(spec["openapi"].is_string(), "no openapi version: {spec}");
    let paths = spec["paths"].as_object().expect("paths is an object");
    assert!(paths.contains_key("/api/health"), "{paths:?}");
    assert!(paths.contains_key("/api/auth/sign-in/email"), "{paths:?}");
}

/// The session token a sign-up or sign-in answer sets.
fn session_token(reply: &HttpReply) -> String {
    reply
        .header_values("set-cookie")
        .find_map(|c| c.strip_prefix("keygate.session_token="))
        .and_then(|c| c.split(';').next())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| panic!("no session cookie in {reply:?}"))
        .to_owned()
}

fn json_body(reply: &HttpReply) -> serde_json::Value {
    serde_json::from_str(&reply.body).unwrap_or_else(|_| panic!("not JSON: {reply:?}"))
}

/// `key` and the forms of its SHA-256 a log line could carry.
fn secret_forms(key: &str) -> Vec<String> {
    let hash = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    let hex: String = hash.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let body = &key[key.rfind('_').unwrap() + 1..];
    vec![
        key.to_owned(),
        body.to_owned(),
        hex.to_uppercase(),
        hex,
        format!("{:?}", hash.as_ref()),
    ]
}

#[test]
fn neither_api_keys_nor_their_hashes_reach_the_debug_log() {
    let mut server = Server::start_with(&["--log-level", "debug"]);
    let origin = format!("http://{}", server.addr);
    let signed_up = server.post_json(
        "/api/auth/sign-up/email",
        &format!(r#"{{"name":"Owner","email":"owner@example.com","password":"{PASSWORD}"}}"#),
    );
    assert_eq!(signed_up.status, 200, "{signed_up:?}");
    let cookie = format!("keygate.session_token={}", session_token(&signed_up));
    let active = http(
        server.addr,
        "GET",
        "/api/organization.active",
        &[("cookie", &cookie)],
        "",
    );
    assert_eq!(active.status, 200, "{active:?}");
    let org = json_body(&active)["id"].as_str().unwrap().to_owned();
    let as_session = [
        ("content-type", "application/json"),
        ("cookie", cookie.as_str()),
        ("origin", origin.as_str()),
    ];
    let created = http(
        server.addr,
        "POST",
        "/api/user.createApiKey",
        &as_session,
        &format!(r#"{{"name":"watched","metadata":{{"organizationId":"{org}"}}}}"#),
    );
    assert_eq!(created.status, 200, "{created:?}");
    let created = json_body(&created);
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();

    // Good and bad requests with the key, a near miss and an unknown key.
    let with_key = |key: &str, method: &str, path: &str, body: &str| {
        http(
            server.addr,
            method,
            path,
            &[("x-api-key", key), ("content-type", "application/json")],
            body,
        )
    };
    assert_eq!(with_key(&key, "GET", "/api/user.get", "").status, 200);
    let rename = format!(r#"{{"organizationId":"{org}","name":"Renamed"}}"#);
    assert_eq!(
        with_key(&key, "POST", "/api/organization.update", &rename).status,
        200
    );
    let mut near = key.clone().into_bytes();
    near[10] = if near[10] == b'a' { b'b' } else { b'a' };
    let near = String::from_utf8(near).unwrap();
    let unknown = keygate::auth::apikey::generate("kg");
    for bad in [&near, &unknown, &format!("{key}x")] {
        assert_eq!(with_key(bad, "GET", "/api/user.get", "").status, 401);
    }
    assert_eq!(
        with_key(&key, "GET", "/api/organization.one?organizationId=nope", "").status,
        401
    );
    assert_eq!(
        with_key(&key, "POST", "/api/user.createApiKey", "{not json").status,
        400
    );
    // A rotation with grace: both secrets work for a while.
    let rotated = with_key(
        &key,
        "POST",
        "/api/user.rotateApiKey",
        &format!(r#"{{"apiKeyId":"{id}","gracePeriodSeconds":60}}"#),
    );
    assert_eq!(rotated.status, 200, "{rotated:?}");
    let new = json_body(&rotated)["key"].as_str().unwrap().to_owned();
    assert_eq!(with_key(&key, "GET", "/api/user.get", "").status, 200);
    assert_eq!(with_key(&new, "GET", "/api/user.get", "").status, 200);

    let status = server.terminate();

    assert!(status.success(), "{status:?}");
    let log = server.log_text();
    assert!(
        log.contains("/api/user.rotateApiKey") && log.contains("status=401"),
        "the debug log is not what this test expects:\n{log}"
    );
    assert!(log.contains("key usage flushed"), "{log}");
    for secret in [&key, &new, &near, &unknown] {
        for form in secret_forms(secret) {
            assert!(
                !log.contains(&form),
                "{form:?} (a form of an API key) is in the log:\n{log}"
            );
        }
    }
}

#[test]
fn a_key_created_from_the_shell_works_over_http_once_the_server_runs() {
    let dir = tempfile::tempdir().unwrap();
    let created = create_user(dir.path(), "owner@example.com", "Owner");
    assert!(created.status.success(), "{}", text(&created.stderr));
    let org = only_org(&dir.path().join("keygate.db"));

    let made = create_key(dir.path(), "owner@example.com", &org);

    assert!(made.status.success(), "{}", text(&made.stderr));
    let key = text(&made.stdout).trim().to_owned();
    assert!(keygate::auth::apikey::well_formed(&key), "{key:?}");
    let said = text(&made.stderr);
    assert!(said.contains("shown once"), "{said}");
    assert!(
        !said.contains(&key),
        "the key is repeated on stderr: {said}"
    );
    let server = Server::start_in(dir, &[]);
    let me = http(
        server.addr,
        "GET",
        "/api/user.get",
        &[("x-api-key", &key)],
        "",
    );
    assert_eq!(me.status, 200, "{me:?}");
    assert_eq!(json_body(&me)["user"]["email"], "owner@example.com");
}

// ---------------------------------------------------------------- one server per file

#[test]
fn a_second_server_on_the_same_database_exits_at_once_and_the_first_keeps_serving() {
    let server = Server::start();

    let err = serve_refused(server.dir.path(), &server.db, "a database in use");

    assert!(
        err.contains(&format!(
            "another keygate is using {}; stop it first",
            server.db.display()
        )),
        "unclear message: {err}"
    );
    let health = http(server.addr, "GET", "/api/health", &[], "");
    assert_eq!(health.status, 200, "{health:?}");
    let signed_up = server.post_json(
        "/api/auth/sign-up/email",
        &format!(r#"{{"name":"Ada","email":"ada@example.com","password":"{PASSWORD}"}}"#),
    );
    assert_eq!(signed_up.status, 200, "{signed_up:?}");
}

/// The number of API keys in the database at `path`.
fn key_count(path: &Path) -> i64 {
    rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap()
        .query_row("SELECT count(*) FROM api_keys", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn user_create_and_key_create_refuse_while_a_server_runs_and_work_once_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let created = create_user(dir.path(), "owner@example.com", "Owner");
    assert!(created.status.success(), "{}", text(&created.stderr));
    let org = only_org(&dir.path().join("keygate.db"));
    let mut server = Server::start_in(dir, &[]);
    let in_use = format!(
        "a keygate server is using {}; stop it first, or make the change through its HTTP API",
        server.db.display()
    );

    let user = server.create_user("later@example.com", "Later");
    let key = create_key(server.dir.path(), "owner@example.com", &org);

    assert!(!user.status.success(), "user create ran beside the server");
    let err = text(&user.stderr);
    assert!(
        err.contains(&in_use) && err.contains("user.createUserWithCredentials"),
        "unclear message: {err}"
    );
    assert!(!key.status.success(), "key create ran beside the server");
    let err = text(&key.stderr);
    assert!(
        err.contains(&in_use) && err.contains("user.createApiKey"),
        "unclear message: {err}"
    );
    assert!(key.stdout.is_empty(), "{}", text(&key.stdout));
    assert_eq!(emails(&server.db), ["owner@example.com"]);
    assert_eq!(key_count(&server.db), 0);

    assert!(server.terminate().success(), "{}", server.log_text());

    let user = server.create_user("later@example.com", "Later");
    assert!(user.status.success(), "{}", text(&user.stderr));
    let key = create_key(server.dir.path(), "owner@example.com", &org);
    assert!(key.status.success(), "{}", text(&key.stderr));
    assert_eq!(
        emails(&server.db),
        ["later@example.com", "owner@example.com"]
    );
    assert_eq!(key_count(&server.db), 1);
}

/// `keygate user set-password` on `dir/keygate.db`, password from the environment.
fn set_password(dir: &Path, email: &str, password: &str) -> Output {
    keygate(Some(dir))
        .args(["user", "set-password", "--email", email, "--db"])
        .arg(dir.join("keygate.db"))
        .env("KEYGATE_PASSWORD", password)
        .output()
        .expect("run keygate user set-password")
}

/// The password hash of `email` and how many sessions its user has, in the database at
/// `path`.
fn password_and_sessions(path: &Path, email: &str) -> (String, i64) {
    rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap()
        .query_row(
            "SELECT password_hash, (SELECT count(*) FROM sessions s WHERE s.user_id = u.id)
             FROM users u WHERE email = ?1",
            [email],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

fn sign_in_status(server: &Server, email: &str, password: &str) -> u16 {
    server
        .post_json(
            "/api/auth/sign-in/email",
            &format!(r#"{{"email":"{email}","password":"{password}"}}"#),
        )
        .status
}

#[test]
fn user_set_password_sets_it_and_signs_the_user_out_but_not_while_a_server_runs() {
    const NEW: &str = "a brand new passphrase";
    let dir = tempfile::tempdir().unwrap();
    let created = create_user(dir.path(), "owner@example.com", "Owner");
    assert!(created.status.success(), "{}", text(&created.stderr));
    let mut server = Server::start_in(dir, &[]);
    assert_eq!(sign_in_status(&server, "owner@example.com", PASSWORD), 200);
    assert_eq!(sign_in_status(&server, "owner@example.com", PASSWORD), 200);
    let before = password_and_sessions(&server.db, "owner@example.com");
    assert_eq!(before.1, 2);

    // While the server runs: refused, naming the HTTP way, and nothing changes.
    let refused = set_password(server.dir.path(), "owner@example.com", NEW);
    assert!(
        !refused.status.success(),
        "set-password ran beside the server"
    );
    let err = text(&refused.stderr);
    assert!(
        err.contains(&format!(
            "a keygate server is using {}; stop it first, or make the change through its HTTP API",
            server.db.display()
        )) && err.contains("user.createPasswordReset")
            && err.contains("auth.resetPassword"),
        "unclear message: {err}"
    );
    assert_eq!(
        password_and_sessions(&server.db, "owner@example.com"),
        before
    );

    assert!(server.terminate().success(), "{}", server.log_text());
    let done = set_password(server.dir.path(), " Owner@Example.com ", NEW);
    assert!(done.status.success(), "{}", text(&done.stderr));
    let said = text(&done.stdout);
    assert!(
        said.contains("<owner@example.com>") && said.contains("signed out 2 session(s)"),
        "{said}"
    );
    let after = password_and_sessions(&server.db, "owner@example.com");
    assert_ne!(after.0, before.0);
    assert_eq!(after.1, 0, "every session ended");

    server.restart();
    assert_eq!(sign_in_status(&server, "owner@example.com", PASSWORD), 401);
    assert_eq!(sign_in_status(&server, "owner@example.com", NEW), 200);
}

#[test]
fn user_set_password_refuses_an_unknown_email_a_short_password_and_a_missing_database() {
    let dir = tempfile::tempdir().unwrap();
    let created = create_user(dir.path(), "owner@example.com", "Owner");
    assert!(created.status.success(), "{}", text(&created.stderr));
    let db = dir.path().join("keygate.db");
    let before = password_and_sessions(&db, "owner@example.com");

    let unknown = set_password(dir.path(), "nobody@example.com", "a brand new passphrase");
    assert!(!unknown.status.success());
    let err = text(&unknown.stderr);
    assert!(
        err.contains("no user has the email nobody@example.com"),
        "{err}"
    );
    assert!(unknown.stdout.is_empty(), "{}", text(&unknown.stdout));

    let short = set_password(dir.path(), "owner@example.com", "short");
    assert!(!short.status.success());
    let err = text(&short.stderr);
    assert!(err.contains("at least 8 characters"), "{err}");
    assert_eq!(password_and_sessions(&db, "owner@example.com"), before);

    let elsewhere = tempfile::tempdir().unwrap();
    let missing = set_password(
        elsewhere.path(),
        "owner@example.com",
        "a brand new passphrase",
    );
    assert!(!missing.status.success());
    assert!(
        text(&missing.stderr).contains("no database at"),
        "{}",
        text(&missing.stderr)
    );
    assert!(!elsewhere.path().join("keygate.db").exists());
}

/// The owner's session cookie, and the Origin its changes carry.
struct OwnerSession {
    cookie: String,
    origin: String,
}

impl OwnerSession {
    fn sign_in(server: &Server) -> OwnerSession {
        let signed_in = server.post_json(
            "/api/auth/sign-in/email",
            &format!(r#"{{"email":"owner@example.com","password":"{PASSWORD}"}}"#),
        );
        OwnerSession {
            cookie: format!("keygate.session_token={}", session_token(&signed_in)),
            origin: format!("http://{}", server.addr),
        }
    }

    fn post(&self, server: &Server, path: &str, body: &str) -> HttpReply {
        http(
            server.addr,
            "POST",
            path,
            &[
                ("content-type", "application/json"),
                ("cookie", &self.cookie),
                ("origin", &self.origin),
            ],
            body,
        )
    }
}

/// Two-factor as the database holds it: on or not, and the rows that go with it.
fn two_factor_rows(path: &Path, email: &str) -> (bool, i64, i64, i64) {
    rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap()
        .query_row(
            "SELECT two_factor_enabled,
                    (SELECT count(*) FROM two_factors t WHERE t.user_id = u.id),
                    (SELECT count(*) FROM backup_codes b WHERE b.user_id = u.id),
                    (SELECT count(*) FROM sessions s WHERE s.user_id = u.id)
             FROM users u WHERE email = ?1",
            [email],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap()
}

#[test]
fn user_reset_2fa_turns_two_factor_off_and_signs_the_user_out_but_not_while_a_server_runs() {
    let dir = tempfile::tempdir().unwrap();
    let created = create_user(dir.path(), "owner@example.com", "Owner");
    assert!(created.status.success(), "{}", text(&created.stderr));
    let mut server = Server::start_in(dir, &[]);
    let owner = OwnerSession::sign_in(&server);
    let enabled = owner.post(
        &server,
        "/api/auth/two-factor/enable",
        &format!(r#"{{"password":"{PASSWORD}"}}"#),
    );
    assert_eq!(enabled.status, 200, "{enabled:?}");
    let uri = json_body(&enabled)["totpURI"].as_str().unwrap().to_owned();
    let b32 = uri
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("secret="))
        .unwrap();
    let secret = totp_rs::Secret::try_from_base32(b32).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let code = keygate::auth::totp::code_at(secret.as_bytes(), 6, now).unwrap();
    let confirmed = owner.post(
        &server,
        "/api/auth/two-factor/verify-totp",
        &format!(r#"{{"code":"{code}"}}"#),
    );
    assert_eq!(confirmed.status, 200, "{confirmed:?}");
    let step = server.post_json(
        "/api/auth/sign-in/email",
        &format!(r#"{{"email":"owner@example.com","password":"{PASSWORD}"}}"#),
    );
    assert_eq!(
        json_body(&step),
        serde_json::json!({"twoFactorRedirect": true})
    );
    let before = two_factor_rows(&server.db, "owner@example.com");
    assert_eq!(before, (true, 1, 10, 1));

    // While the server runs: refused, naming the HTTP ways, and nothing changes.
    let reset = |dir: &Path| {
        keygate(Some(dir))
            .args(["user", "reset-2fa", "--email", "Owner@example.com", "--db"])
            .arg(dir.join("keygate.db"))
            .output()
            .expect("run keygate user reset-2fa")
    };
    let refused = reset(server.dir.path());
    assert!(!refused.status.success(), "reset-2fa ran beside the server");
    let err = text(&refused.stderr);
    assert!(
        err.contains("a keygate server is using") && err.contains("two-factor/disable"),
        "unclear message: {err}"
    );
    assert_eq!(two_factor_rows(&server.db, "owner@example.com"), before);

    assert!(server.terminate().success(), "{}", server.log_text());
    let done = reset(server.dir.path());
    assert!(done.status.success(), "{}", text(&done.stderr));
    assert!(
        text(&done.stdout).contains("two-factor is off for"),
        "{}",
        text(&done.stdout)
    );
    assert_eq!(
        two_factor_rows(&server.db, "owner@example.com"),
        (false, 0, 0, 0)
    );

    // The password alone signs in again.
    server.restart();
    let again = server.post_json(
        "/api/auth/sign-in/email",
        &format!(r#"{{"email":"owner@example.com","password":"{PASSWORD}"}}"#),
    );
    assert_eq!(again.status, 200, "{again:?}");
    assert!(json_body(&again)["session"].is_object(), "{again:?}");

    let unknown = keygate(Some(server.dir.path()))
        .args(["user", "reset-2fa", "--email", "nobody@example.com", "--db"])
        .arg(&server.db)
        .output()
        .unwrap();
    assert!(!unknown.status.success());
}

#[test]
fn serve_refuses_a_database_with_two_factor_secrets_without_their_key() {
    let dir = tempfile::tempdir().unwrap();
    let created = create_user(dir.path(), "owner@example.com", "Owner");
    assert!(created.status.success(), "{}", text(&created.stderr));
    let mut server = Server::start_in(dir, &[]);
    let enabled = OwnerSession::sign_in(&server).post(
        &server,
        "/api/auth/two-factor/enable",
        &format!(r#"{{"password":"{PASSWORD}"}}"#),
    );
    assert_eq!(enabled.status, 200, "{enabled:?}");
    assert!(server.terminate().success(), "{}", server.log_text());
    let key = server.dir.path().join("keygate.key");
    let original = std::fs::read_to_string(&key).unwrap();

    std::fs::remove_file(&key).unwrap();
    let err = serve_refused(server.dir.path(), &server.db, "a database without its key");
    assert!(
        err.contains("is missing") && err.contains("reset-2fa"),
        "{err}"
    );
    assert!(
        !key.exists(),
        "no new key is made for a database with secrets"
    );

    std::fs::write(&key, format!("{}\n", "ab".repeat(32))).unwrap();
    let err = serve_refused(server.dir.path(), &server.db, "a database with another key");
    assert!(err.contains("does not open"), "{err}");

    std::fs::write(&key, original).unwrap();
    server.restart();
}

// ---------------------------------------------------------------- quotas and crashes

#[test]
fn a_quota_of_five_answers_at_most_five_successes_across_sigkills() {
    let mut server = Server::start();
    let signed_up = server.post_json(
        "/api/auth/sign-up/email",
        &format!(r#"{{"name":"Owner","email":"owner@example.com","password":"{PASSWORD}"}}"#),
    );
    assert_eq!(signed_up.status, 200, "{signed_up:?}");
    let cookie = format!("keygate.session_token={}", session_token(&signed_up));
    let origin = format!("http://{}", server.addr);
    let org = only_org(&server.db);
    let created = http(
        server.addr,
        "POST",
        "/api/user.createApiKey",
        &[
            ("content-type", "application/json"),
            ("cookie", &cookie),
            ("origin", &origin),
        ],
        &format!(r#"{{"name":"quota","metadata":{{"organizationId":"{org}"}},"remaining":5}}"#),
    );
    assert_eq!(created.status, 200, "{created:?}");
    let key = json_body(&created)["key"].as_str().unwrap().to_owned();

    // Each round spends well within the usage flush interval, then the process dies.
    let mut successes = 0;
    for _ in 0..4 {
        for _ in 0..3 {
            let r = http(
                server.addr,
                "GET",
                "/api/user.getPermissions",
                &[("x-api-key", &key)],
                "",
            );
            match r.status {
                200 => successes += 1,
                429 => assert_eq!(json_body(&r)["reason"], "usage_exceeded", "{r:?}"),
                _ => panic!("unexpected answer {r:?}"),
            }
        }
        server.kill();
        server.restart();
    }

    assert!(
        (3..=5).contains(&successes),
        "{successes} successes for a quota of 5"
    );
}

// ---------------------------------------------------------------- damage and loss

#[test]
fn serve_refuses_a_damaged_database_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("keygate.db");
    let created = create_user(dir.path(), "owner@example.com", "Owner");
    assert!(created.status.success(), "{}", text(&created.stderr));
    // Some rows, and the fullest page that holds them.
    let (page, page_size) = {
        let conn = rusqlite::Connection::open(&db).unwrap();
        for i in 0..300 {
            conn.execute(
                "INSERT INTO users (id, name, email, password_hash, created_at, updated_at)
                 VALUES (?1, ?2, ?3, 'x', 0, 0)",
                rusqlite::params![
                    format!("u{i}"),
                    format!("User {i}"),
                    format!("u{i}@example.com")
                ],
            )
            .unwrap();
        }
        let page: i64 = conn
            .query_row(
                "SELECT pageno FROM dbstat WHERE name = 'users' AND pagetype = 'leaf'
                 ORDER BY ncell DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let size: i64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        (page as usize, size as usize)
    };
    assert!(page > 1, "the rows share the header's page");
    // Garbage in the middle of that page; the 100-byte header of page 1 stays intact.
    let mut bytes = std::fs::read(&db).unwrap();
    let at = (page - 1) * page_size + page_size / 2;
    bytes[at..at + 256].fill(0xab);
    std::fs::write(&db, bytes).unwrap();
    let check: String = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .unwrap();
    assert_ne!(check, "ok", "the damage went unnoticed by SQLite itself");

    let err = serve_refused(dir.path(), &db, "a damaged database");

    assert!(
        err.contains(&format!("the database {} is damaged", db.display()))
            && err.contains("restore a backup"),
        "unclear message: {err}"
    );
}

#[test]
fn health_turns_unhealthy_within_ten_seconds_when_the_database_file_is_deleted() {
    let server = Server::start();

    std::fs::remove_file(&server.db).unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    let reply = loop {
        let r = http(server.addr, "GET", "/api/health", &[], "");
        if r.status != 200 || Instant::now() >= deadline {
            break r;
        }
        sleep(Duration::from_millis(200));
    };
    assert_eq!(reply.status, 503, "{reply:?}");
    let body = json_body(&reply);
    assert_eq!(body["status"], "unavailable", "{body}");
    assert_eq!(body["reason"], "database_file_missing", "{body}");
    let check = run(&["healthcheck", "--listen", &server.addr.to_string()]);
    assert!(!check.status.success());
    // Later looks find the same and say nothing more.
    sleep(keygate::db::WATCH_EVERY + Duration::from_secs(1));
    let log = server.log_text();
    assert_eq!(
        log.matches("the database file was deleted").count(),
        1,
        "{log}"
    );
}

// ---------------------------------------------------------------- connections

/// A raw connection to the server, for clients that misbehave on purpose.
fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s
}

/// Reads until the server closes the connection (or `limit` passes); answers how long
/// that took and what was read.
fn until_closed(s: &mut TcpStream, started: Instant, limit: Duration) -> (Duration, String) {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return (started.elapsed(), text(&got)),
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        if started.elapsed() > limit {
            return (started.elapsed(), text(&got));
        }
    }
}

const HEALTH: &[u8] = b"GET /api/health HTTP/1.1\r\nHost: keygate\r\n\r\n";

/// Reads one response on a kept-alive connection (its head and a Content-Length body).
fn read_response(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).expect("read a response");
        assert!(n > 0, "closed before a response: {:?}", text(&got));
        got.extend_from_slice(&buf[..n]);
        let t = text(&got);
        if let Some((head, body)) = t.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= len {
                return t;
            }
        }
    }
}

#[test]
fn a_request_head_that_trickles_in_is_cut_off_at_the_header_timeout() {
    let server = Server::start_with(&["--header-timeout", "1"]);
    let started = Instant::now();
    let mut slow = connect(server.addr);
    let mut silent = connect(server.addr);
    // A byte every 200 ms: each one is progress, but the head never ends.
    slow.write_all(b"GET /api/health HTTP/1.1\r\n").unwrap();
    let mut closed_at = None;
    for i in 0..40 {
        sleep(Duration::from_millis(200));
        if slow.write_all(format!("x-{i}: y\r\n").as_bytes()).is_err() {
            closed_at = Some(started.elapsed());
            break;
        }
    }
    let (silent_closed, _) = until_closed(&mut silent, started, Duration::from_secs(10));

    let closed_at =
        closed_at.unwrap_or_else(|| until_closed(&mut slow, started, Duration::from_secs(1)).0);
    assert!(
        closed_at < Duration::from_secs(5),
        "the trickling head stayed open {closed_at:?}"
    );
    assert!(
        silent_closed >= Duration::from_millis(900),
        "closed too early: {silent_closed:?}"
    );
    assert!(
        silent_closed < Duration::from_secs(5),
        "a silent socket stayed open {silent_closed:?}"
    );
    // The server still answers others.
    assert_eq!(http(server.addr, "GET", "/api/health", &[], "").status, 200);
}

#[test]
fn an_idle_connection_closes_at_the_idle_timeout_and_not_at_the_header_timeout() {
    let server = Server::start_with(&["--header-timeout", "0.5", "--idle-timeout", "2"]);
    let mut s = connect(server.addr);
    s.write_all(HEALTH).unwrap();
    assert!(read_response(&mut s).starts_with("HTTP/1.1 200"));

    // Idle for longer than the header timeout: still open.
    sleep(Duration::from_millis(1200));
    s.write_all(HEALTH).unwrap();
    assert!(read_response(&mut s).starts_with("HTTP/1.1 200"));
    let started = Instant::now();
    let (closed, rest) = until_closed(&mut s, started, Duration::from_secs(10));

    assert!(rest.is_empty(), "{rest:?}");
    assert!(
        closed >= Duration::from_millis(1800),
        "closed too early: {closed:?}"
    );
    assert!(
        closed < Duration::from_secs(6),
        "still open after {closed:?}"
    );
}

#[test]
fn a_body_that_stops_arriving_is_answered_408_and_the_connection_closed() {
    let server = Server::start_with(&["--body-timeout", "1"]);
    let mut s = connect(server.addr);
    let started = Instant::now();
    s.write_all(
        b"POST /api/auth/sign-in/email HTTP/1.1\r\nHost: k\r\ncontent-type: application/json\r\ncontent-length: 200\r\n\r\n{\"email\"",
    )
    .unwrap();

    let (took, reply) = until_closed(&mut s, started, Duration::from_secs(10));

    assert!(reply.starts_with("HTTP/1.1 408"), "{reply:?}");
    assert!(reply.contains("body_timeout"), "{reply:?}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(6),
        "{took:?}"
    );
}

/// CPU time (user + system) the process has used, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc stat");
    let after = &stat[stat.rfind(')').expect("comm ends") + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat, counted from the state (field 3) here.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[cfg(target_os = "linux")]
#[test]
fn at_the_connection_cap_more_clients_wait_and_the_server_stays_calm() {
    let server = Server::start_with(&["--max-connections", "20", "--header-timeout", "2"]);
    let pid = server.child.id();
    // Twice the cap of idle sockets: twenty are served (and time out), the rest wait in
    // the kernel's queue.
    let started = Instant::now();
    let idle: Vec<TcpStream> = (0..40).map(|_| connect(server.addr)).collect();
    sleep(Duration::from_millis(300));
    let before = cpu_ticks(pid);
    sleep(Duration::from_secs(1));
    let spent = cpu_ticks(pid) - before;
    // A health check queues behind them and is answered once slots free up.
    let health = http(server.addr, "GET", "/api/health", &[], "");
    let waited = started.elapsed();
    drop(idle);

    assert!(
        spent <= 10,
        "the server spun while at its cap: {spent} ticks in 1 s"
    );
    assert_eq!(health.status, 200);
    assert!(
        waited >= Duration::from_millis(1500),
        "answered before a slot was free: {waited:?}"
    );
    assert!(
        server.log_text().contains("at most 20 connections"),
        "{}",
        server.log_text()
    );
}

#[test]
fn a_connection_cap_above_the_file_limit_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 256 && exec \"$0\" serve --listen 127.0.0.1:0 --db \"$1\" --max-connections 100000")
        .arg(env!("CARGO_BIN_EXE_keygate"))
        .arg(dir.path().join("k.db"))
        .env("HOME", dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("run keygate serve");

    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("does not fit the file limit"), "{err}");
}

#[test]
fn blank_lines_before_a_request_do_not_escape_the_header_timeout() {
    let server = Server::start_with(&["--header-timeout", "1"]);
    let mut s = connect(server.addr);
    let started = Instant::now();
    // hyper skips blank lines before a request line: they are no head at all.
    s.write_all(b"\r\n\r\n\n\n").unwrap();

    let (closed, rest) = until_closed(&mut s, started, Duration::from_secs(10));

    assert!(rest.is_empty(), "{rest:?}");
    assert!(
        closed < Duration::from_secs(5),
        "still open after {closed:?}"
    );
}

#[test]
fn a_body_sent_after_100_continue_and_a_slow_client_are_not_cut_by_the_header_timeout() {
    let server = Server::start_with(&["--header-timeout", "0.5", "--body-timeout", "5"]);
    let mut s = connect(server.addr);
    let body = br#"{"email": "nobody@example.com", "password": "wrong password"}"#;
    s.write_all(
        format!(
            "POST /api/auth/sign-in/email HTTP/1.1\r\nHost: k\r\ncontent-type: application/json\r\n\
             expect: 100-continue\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    // Past the header timeout, in pieces.
    for part in body.chunks(20) {
        sleep(Duration::from_millis(400));
        s.write_all(part).unwrap();
    }

    let (_, reply) = until_closed(&mut s, Instant::now(), Duration::from_secs(3));

    assert!(reply.contains("HTTP/1.1 401"), "{reply:?}");
    assert!(reply.contains("invalid_credentials"), "{reply:?}");
}

/// `keygate audit export ARGS --db dir/keygate.db`.
fn export(dir: &Path, args: &[&str]) -> Output {
    keygate(Some(dir))
        .args(["audit", "export"])
        .args(args)
        .arg("--db")
        .arg(dir.join("keygate.db"))
        .output()
        .expect("run keygate audit export")
}

#[test]
fn audit_export_writes_the_shells_changes_as_json_lines_from_a_time_on() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        create_user(dir.path(), "first@example.com", "First")
            .status
            .success()
    );
    let org = only_org(&dir.path().join("keygate.db"));
    assert!(
        create_key(dir.path(), "first@example.com", &org)
            .status
            .success()
    );

    let out = export(dir.path(), &["--since", "1h"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
        .collect();
    let actions: Vec<&str> = lines
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["user.create", "organization.create", "apikey.create"]
    );
    for e in &lines {
        assert_eq!(e["actor"]["type"], "shell", "{e}");
    }
    assert_eq!(lines[2]["organizationId"], org.as_str());
    // The key's secret never appears; its start does.
    let secret = text(&create_key(dir.path(), "first@example.com", &org).stdout);
    let all = text(&export(dir.path(), &["--since", "1h", "--org", &org]).stdout);
    assert!(!all.contains(secret.trim()), "the export holds a key");
    assert_eq!(all.lines().count(), 3, "{all}");

    let later = export(dir.path(), &["--since", "2999-01-01T00:00:00Z"]);
    assert!(later.status.success());
    assert_eq!(text(&later.stdout), "");
    // Not a time nor a span, including text that is not ASCII: a usage error (exit code
    // 2), never a panic.
    for since in ["yesterday", "é", "5µ", "d", "-1d", "99999999999d"] {
        let wrong = export(dir.path(), &[&format!("--since={since}")]);
        assert_eq!(wrong.status.code(), Some(2), "{since}");
        assert!(
            text(&wrong.stderr).contains("RFC 3339"),
            "{since}: {}",
            text(&wrong.stderr)
        );
    }
}
