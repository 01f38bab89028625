//! The command line: `serve`, `openapi`, `user create`, `user set-password`,
//! `key create`, `backup`, `healthcheck`, `version`.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use poem_openapi::types::ToJSON;

use crate::clock::SystemClock;
use crate::config::{self, Config};
use crate::db::{Db, OpenError, Ownership};
use crate::domain::{State, accounts, keys, recovery};
use crate::error::Error;
use crate::model::{OrgId, Role};

#[derive(Debug, Parser)]
#[command(
    name = "keygate",
    version,
    about = "API keys, sessions and organizations for a self-hosted API, on one SQLite file."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (API, Swagger UI at /swagger, dashboard at /).
    Serve(ServeArgs),
    /// Print the OpenAPI document.
    Openapi {
        /// Print YAML instead of JSON.
        #[arg(long)]
        yaml: bool,
    },
    /// Manage users from the shell, while no server runs on the database.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage API keys from the shell, while no server runs on the database.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Write a consistent copy of the database to PATH (safe while the server runs: it
    /// only reads).
    Backup {
        /// Where to write the copy; must not exist yet.
        path: PathBuf,
        #[command(flatten)]
        db: DbArg,
    },
    /// Read the audit log from the shell (safe while the server runs: it only reads).
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Ask a running server whether it is healthy; exit status 0 when it is.
    Healthcheck {
        /// The server's address.
        #[arg(long, env = "KEYGATE_LISTEN", default_value = config::DEFAULT_LISTEN)]
        listen: SocketAddr,
    },
    /// Print the version.
    Version,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Write the events from a time on as JSON Lines to standard output, oldest first:
    /// one object per line, in `audit.all`'s shape.
    Export {
        /// An RFC 3339 time (2026-12-01T00:00:00Z) or a span back from now (30d, 12h,
        /// 15m).
        #[arg(long, value_parser = parse_since)]
        since: Since,
        /// Only this organization's events (by id); all of them by default.
        #[arg(long)]
        org: Option<String>,
        #[command(flatten)]
        db: DbArg,
    },
}

/// Where an export starts.
#[derive(Debug, Clone, Copy)]
pub enum Since {
    At(i64),
    Ago(i64),
}

fn parse_since(s: &str) -> Result<Since, String> {
    if let Some(ms) = crate::clock::parse_rfc3339(s) {
        return Ok(Since::At(ms));
    }
    let s = s.trim();
    let span = [
        ('d', crate::clock::DAY),
        ('h', crate::clock::HOUR),
        ('m', crate::clock::MINUTE),
    ]
    .into_iter()
    .find_map(|(c, unit)| Some((s.strip_suffix(c)?.parse::<i64>().ok()?, unit)));
    match span {
        Some((n, unit)) if (0..=36_500 * crate::clock::DAY / unit).contains(&n) => {
            Ok(Since::Ago(n * unit))
        }
        _ => Err("an RFC 3339 time (2026-12-01T00:00:00Z) or a span such as 30d, 12h, 15m".into()),
    }
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user. The first user becomes the owner of "My Organization" and an
    /// installation administrator; later users join an organization as admin or member.
    /// The password is read from KEYGATE_PASSWORD or, if unset, asked twice without echo
    /// on a terminal, or read from the first line of standard input.
    Create {
        /// Email address.
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Role in the organization (for every user but the first).
        #[arg(long, default_value = "member", value_parser = ["admin", "member"])]
        role: String,
        /// Organization id to join (default: the first organization).
        #[arg(long)]
        org: Option<String>,
        /// Make the user an installation administrator: it may create accounts outright
        /// (user.createUserWithCredentials) in organizations it owns or administers.
        #[arg(long)]
        installation_admin: bool,
        #[command(flatten)]
        db: DbArg,
    },
    /// Set a user's password and sign it out everywhere: every session ends, and the
    /// browsers it trusted to skip the two-factor step are forgotten. The password is
    /// read as for `user create`.
    SetPassword {
        /// The user's email.
        #[arg(long)]
        email: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Turn two-factor off for a user who lost the authenticator and the backup codes,
    /// and sign out all of the user's sessions. The user signs in with the password
    /// alone, and can set two-factor up again.
    #[command(name = "reset-2fa")]
    ResetTwoFactor {
        /// The user's email.
        #[arg(long)]
        email: String,
        #[command(flatten)]
        db: DbArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create an API key for a user in one of its organizations and print it (once).
    Create {
        /// The user's email.
        #[arg(long)]
        email: String,
        /// The organization's id.
        #[arg(long)]
        org: String,
        /// The key's name (1-32 characters).
        #[arg(long)]
        name: String,
        #[command(flatten)]
        db: DbArg,
    },
}

#[derive(Debug, Clone, Args)]
pub struct DbArg {
    /// The SQLite database file [default: keygate.db in the user's data directory].
    #[arg(long, env = "KEYGATE_DB")]
    pub db: Option<PathBuf>,
}

impl DbArg {
    pub fn path(&self) -> Result<PathBuf, String> {
        match &self.db {
            Some(p) => Ok(p.clone()),
            None => default_db_path(),
        }
    }
}

/// `~/.local/share/keygate/keygate.db` on Linux, the platform's data directory elsewhere.
pub fn default_db_path() -> Result<PathBuf, String> {
    directories::ProjectDirs::from("", "", "keygate")
        .map(|d| d.data_dir().join("keygate.db"))
        .ok_or_else(|| "no home directory to put the database in; pass --db PATH".to_owned())
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "KEYGATE_LISTEN", default_value = config::DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub db: DbArg,
    /// Session lifetime in seconds.
    #[arg(long, env = "KEYGATE_SESSION_TTL", default_value_t = config::DEFAULT_SESSION_TTL_SECS)]
    pub session_ttl: i64,
    /// Seconds after the last extension at which a request extends the session.
    #[arg(long, env = "KEYGATE_SESSION_UPDATE_AGE", default_value_t = config::DEFAULT_SESSION_UPDATE_AGE_SECS)]
    pub session_update_age: i64,
    /// Public URL when served behind an HTTPS proxy (makes cookies Secure).
    #[arg(long, env = "KEYGATE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Set the session cookie for this parent domain (e.g. example.com), so that services
    /// on its sibling hosts behind forward auth receive it. Needs --public-url inside it.
    #[arg(long, env = "KEYGATE_COOKIE_DOMAIN")]
    pub cookie_domain: Option<String>,
    /// Other origins allowed to make cookie-authenticated changes (repeat or separate
    /// with commas).
    #[arg(
        long = "trusted-origin",
        env = "KEYGATE_TRUSTED_ORIGINS",
        value_delimiter = ','
    )]
    pub trusted_origins: Vec<String>,
    /// Take client addresses from X-Forwarded-For (only behind a proxy that sets it).
    #[arg(long, env = "KEYGATE_TRUST_PROXY")]
    pub trust_proxy: bool,
    /// The proxies whose X-Forwarded-For is believed, as CIDR ranges (repeat or separate
    /// with commas) [default: 127.0.0.0/8 and ::1].
    #[arg(
        long = "trusted-proxy",
        env = "KEYGATE_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_parser = parse_cidr
    )]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Seconds a connection has to deliver its request head.
    #[arg(long, env = "KEYGATE_HEADER_TIMEOUT", default_value_t = config::DEFAULT_HEADER_TIMEOUT_SECS, value_parser = parse_secs)]
    pub header_timeout: u64,
    /// Seconds a request body (or the reading of a response) may make no progress.
    #[arg(long, env = "KEYGATE_BODY_TIMEOUT", default_value_t = config::DEFAULT_BODY_TIMEOUT_SECS, value_parser = parse_secs)]
    pub body_timeout: u64,
    /// Seconds a connection may sit idle between requests.
    #[arg(long, env = "KEYGATE_IDLE_TIMEOUT", default_value_t = config::DEFAULT_IDLE_TIMEOUT_SECS, value_parser = parse_secs)]
    pub idle_timeout: u64,
    /// Connections served at once [default: what the file limit allows, at most 10000].
    #[arg(long, env = "KEYGATE_MAX_CONNECTIONS", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: Option<u32>,
    /// MiB of request bodies buffered by all requests together.
    #[arg(long, env = "KEYGATE_BODY_MEMORY", default_value_t = config::DEFAULT_BODY_MEMORY_MIB, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub body_memory: u32,
    /// Password checks that may wait for a hashing thread; more are refused with 429.
    #[arg(long, env = "KEYGATE_PASSWORD_QUEUE", default_value_t = config::DEFAULT_PASSWORD_QUEUE, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub password_queue: u32,
    /// Verified API keys and sessions kept in memory; past it the least recently used
    /// are dropped.
    #[arg(long, env = "KEYGATE_CACHE_ENTRIES", default_value_t = config::DEFAULT_CACHE_ENTRIES, value_parser = clap::value_parser!(u32).range(1..=100_000_000))]
    pub cache_entries: u32,
    /// A rate limit for API keys that set none, as MAX/SECONDS (e.g. 600/60); none by
    /// default.
    #[arg(long, env = "KEYGATE_KEY_RATE_LIMIT", value_parser = parse_rate)]
    pub key_rate_limit: Option<(u32, i64)>,
    /// The file of the key that seals TOTP secrets (64 hexadecimal digits; made, 0600,
    /// when missing) [default: keygate.key beside the database]. Back it up with the
    /// database: without it, two-factor secrets cannot be read.
    #[arg(long, env = "KEYGATE_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,
    /// The issuer authenticator apps show beside keygate's codes.
    #[arg(long, env = "KEYGATE_TOTP_ISSUER", default_value = config::DEFAULT_TOTP_ISSUER)]
    pub totp_issuer: String,
    /// Days the audit log keeps an event.
    #[arg(long, env = "KEYGATE_AUDIT_RETENTION_DAYS", default_value_t = config::DEFAULT_AUDIT_RETENTION_DAYS, value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub audit_retention_days: u32,
    /// Days a key's requests per hour are kept.
    #[arg(long, env = "KEYGATE_USAGE_RETENTION_DAYS", default_value_t = config::DEFAULT_USAGE_RETENTION_DAYS, value_parser = clap::value_parser!(u32).range(1..=3_650))]
    pub usage_retention_days: u32,
    /// Days without a request after which a key is marked unused.
    #[arg(long, env = "KEYGATE_UNUSED_KEY_DAYS", default_value_t = config::DEFAULT_UNUSED_KEY_DAYS, value_parser = clap::value_parser!(u32).range(1..=3_650))]
    pub unused_key_days: u32,
    /// Log filter: error, warn, info, debug, or a tracing directive.
    #[arg(long, env = "KEYGATE_LOG", default_value = config::DEFAULT_LOG)]
    pub log_level: String,
}

impl ServeArgs {
    pub fn config(&self) -> Result<Config, String> {
        let mut c = Config::new(self.db.path()?);
        c.listen = self.listen;
        c.session_ttl_ms = self.session_ttl.saturating_mul(1000);
        c.session_update_age_ms = self.session_update_age.saturating_mul(1000);
        c.public_url = self
            .public_url
            .as_ref()
            .map(|u| u.trim_end_matches('/').to_owned());
        c.cookie_domain = self
            .cookie_domain
            .as_ref()
            .map(|d| d.trim().trim_start_matches('.').to_ascii_lowercase());
        c.trusted_origins = self
            .trusted_origins
            .iter()
            .map(|o| o.trim().trim_end_matches('/').to_owned())
            .filter(|o| !o.is_empty())
            .collect();
        c.trust_proxy = self.trust_proxy;
        if !self.trusted_proxies.is_empty() {
            c.trusted_proxies = self.trusted_proxies.clone();
        }
        c.header_timeout_ms = self.header_timeout;
        c.body_timeout_ms = self.body_timeout;
        c.idle_timeout_ms = self.idle_timeout;
        c.max_connections = self.max_connections.map(|n| n as usize);
        c.body_memory_bytes = self.body_memory as usize * 1024 * 1024;
        c.hash_queue = self.password_queue as usize;
        c.cache_entries = self.cache_entries as usize;
        c.default_key_rate_limit = self.key_rate_limit;
        if let Some(f) = &self.secret_key_file {
            c.secret_key_file = f.clone();
        }
        c.totp_issuer = self.totp_issuer.trim().to_owned();
        c.audit_retention_days = self.audit_retention_days;
        c.usage_retention_days = self.usage_retention_days;
        c.unused_key_days = self.unused_key_days;
        c.validate()?;
        Ok(c)
    }
}

/// Seconds, possibly fractional, as milliseconds.
fn parse_secs(s: &str) -> Result<u64, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| "expected a number of seconds, e.g. 10 or 0.5")?;
    if !(0.1..=3600.0).contains(&secs) {
        return Err("must be between 0.1 and 3600 seconds".into());
    }
    Ok((secs * 1000.0).round() as u64)
}

/// An address range (`10.0.0.0/8`, `fd00::/8`) or a single address.
fn parse_cidr(s: &str) -> Result<ipnet::IpNet, String> {
    let s = s.trim();
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{s:?} is not an address or CIDR range, e.g. 10.0.0.0/8"))
}

fn parse_rate(s: &str) -> Result<(u32, i64), String> {
    let (max, secs) = s
        .split_once('/')
        .ok_or("expected MAX/SECONDS, e.g. 600/60")?;
    let max: u32 = max
        .trim()
        .parse()
        .map_err(|_| "MAX must be a whole number")?;
    let secs: i64 = secs
        .trim()
        .parse()
        .map_err(|_| "SECONDS must be a whole number")?;
    if max == 0 || !(1..=86_400).contains(&secs) {
        return Err("MAX must be at least 1 and SECONDS between 1 and 86400".into());
    }
    Ok((max, secs * 1000))
}

/// The variable `user create` and `user set-password` read the password from (not a
/// flag, so that it never shows in the process list).
pub const PASSWORD_ENV: &str = "KEYGATE_PASSWORD";

/// Every environment variable keygate reads: those of the command line's flags, in every
/// subcommand, and `PASSWORD_ENV`.
pub fn environment_variables() -> Vec<String> {
    fn walk(cmd: &clap::Command, out: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            if let Some(env) = arg.get_env() {
                let env = env.to_string_lossy().into_owned();
                if !out.contains(&env) {
                    out.push(env);
                }
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, out);
        }
    }
    let mut out = Vec::new();
    walk(&<Cli as clap::CommandFactory>::command(), &mut out);
    out.push(PASSWORD_ENV.to_owned());
    out
}

/// The log filter a command runs with.
pub fn log_filter(cli: &Cli) -> String {
    match &cli.command {
        Command::Serve(a) => a.log_level.clone(),
        _ => "warn".to_owned(),
    }
}

pub fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve(args) => {
            let config = args.config()?;
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(crate::config::worker_threads())
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the runtime: {e}"))?
                .block_on(crate::server::serve(config))
        }
        Command::Openapi { yaml } => {
            let text = if yaml {
                crate::api::openapi::yaml()
            } else {
                crate::api::openapi::json()
            };
            let mut out = std::io::stdout().lock();
            writeln!(out, "{text}").map_err(|e| e.to_string())
        }
        Command::User {
            command:
                UserCommand::Create {
                    email,
                    name,
                    role,
                    org,
                    installation_admin,
                    db,
                },
        } => {
            let password = read_password()?;
            let new =
                accounts::NewUser::parse(&name, &email, &password).map_err(|e| e.to_string())?;
            let role = Role::parse(&role).ok_or("role must be admin or member")?;
            let state = open_state(&db, Ownership::Shell).map_err(|e| {
                while_serving(
                    e,
                    "user.createUserWithCredentials creates an account, organization.inviteMember invites one",
                )
            })?;
            let created = accounts::create_user_blocking(
                &state,
                new,
                role,
                org.map(OrgId),
                installation_admin,
            )
            .map_err(|e| e.to_string())?;
            let admin = if created.owner_of.is_some() || installation_admin {
                ", an installation administrator"
            } else {
                ""
            };
            match created.owner_of {
                Some(org) => println!(
                    "created user {} <{}> as owner of \"{}\" ({}){admin}",
                    created.user.id, created.user.email, org.name, org.id
                ),
                None => println!(
                    "created user {} <{}> as {}{admin}",
                    created.user.id,
                    created.user.email,
                    role.as_str()
                ),
            }
            Ok(())
        }
        Command::User {
            command: UserCommand::SetPassword { email, db },
        } => {
            let state = open_existing(&db, Ownership::Shell).map_err(|e| {
                while_serving(
                    e,
                    "user.createPasswordReset makes a reset link, which auth.resetPassword uses",
                )
            })?;
            let password = read_password()?;
            let done =
                recovery::set_password_blocking(&state, &email, &password).map_err(
                    |e| match e {
                        Error::NotFound(_) => format!("no user has the email {}", email.trim()),
                        other => other.to_string(),
                    },
                )?;
            let out = done.signed_out;
            println!(
                "set the password of user {} <{}>; signed out {} session(s) and forgot {} trusted device(s)",
                done.user.id, done.user.email, out.sessions, out.trusted_devices
            );
            Ok(())
        }
        Command::User {
            command: UserCommand::ResetTwoFactor { email, db },
        } => {
            let state = open_existing(&db, Ownership::Shell).map_err(|e| {
                while_serving(
                    e,
                    "the user turns it off with two-factor/disable, or signs in with a backup code",
                )
            })?;
            let user =
                crate::domain::two_factor::reset_blocking(&state, &email).map_err(|e| match e {
                    Error::NotFound(_) => format!("no user has the email {}", email.trim()),
                    other => other.to_string(),
                })?;
            println!(
                "two-factor is off for {} <{}>, and all of its sessions are signed out",
                user.id, user.email
            );
            Ok(())
        }
        Command::Key {
            command:
                KeyCommand::Create {
                    email,
                    org,
                    name,
                    db,
                },
        } => {
            let state = open_existing(&db, Ownership::Shell)
                .map_err(|e| while_serving(e, "user.createApiKey creates a key"))?;
            let made = keys::create_from_shell(&state, &email, &OrgId(org), &name)
                .map_err(|e| e.to_string())?;
            eprintln!(
                "created API key {} ({}) for {} in organization {}; it is shown once:",
                made.key.id, made.key.name, made.user.email, made.key.organization_id
            );
            println!("{}", made.secret);
            Ok(())
        }
        Command::Backup { path, db } => {
            let state = open_existing(&db, Ownership::ReadOnly).map_err(|e| e.to_string())?;
            state.db.backup_to(&path).map_err(|e| e.to_string())?;
            println!(
                "backed up {} to {}",
                state.db.path().display(),
                path.display()
            );
            Ok(())
        }
        Command::Audit {
            command: AuditCommand::Export { since, org, db },
        } => {
            let state = open_existing(&db, Ownership::ReadOnly).map_err(|e| e.to_string())?;
            let since = match since {
                Since::At(ms) => ms,
                Since::Ago(span) => state.now() - span,
            };
            let org = org.map(OrgId);
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            crate::domain::audit::export(&state, since, org.as_ref(), |e| {
                let line = crate::api::audit::AuditEventView::from(e).to_json_string();
                writeln!(out, "{line}").map_err(Error::internal)
            })
            .map_err(|e| e.to_string())?;
            out.flush().map_err(|e| e.to_string())?;
            Ok(())
        }
        Command::Healthcheck { listen } => healthcheck(listen),
        Command::Version => {
            println!("keygate {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    }
}

fn open_state(db: &DbArg, ownership: Ownership) -> Result<State, Opening> {
    let path = db.path().map_err(Opening::Other)?;
    let config = Config::new(path.clone());
    let db = Db::open(&path, 1, ownership)?;
    Ok(State::new(db, Arc::new(SystemClock), config))
}

/// Like `open_state`, for commands that must not create a database by mistake.
fn open_existing(db: &DbArg, ownership: Ownership) -> Result<State, Opening> {
    let path = db.path().map_err(Opening::Other)?;
    if !path.is_file() {
        return Err(Opening::Other(format!("no database at {}", path.display())));
    }
    open_state(db, ownership)
}

/// Why a command could not open its database.
enum Opening {
    Db(OpenError),
    Other(String),
}

impl From<OpenError> for Opening {
    fn from(e: OpenError) -> Self {
        Opening::Db(e)
    }
}

impl std::fmt::Display for Opening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Opening::Db(e) => e.fmt(f),
            Opening::Other(e) => f.write_str(e),
        }
    }
}

/// The message of a shell command that writes, refused because a server holds the
/// database: changing the file behind the server's caches would let it go on answering
/// from what it read before. `instead` names the HTTP operations that do the same.
fn while_serving(e: Opening, instead: &str) -> String {
    match e {
        Opening::Db(OpenError::InUse { path }) => format!(
            "a keygate server is using {}; stop it first, or make the change through its HTTP API ({instead})",
            path.display()
        ),
        other => other.to_string(),
    }
}

/// The password a `user` command sets: `PASSWORD_ENV`, else asked twice without echo
/// when standard input is a terminal, else the first line of standard input.
fn read_password() -> Result<String, String> {
    if let Ok(p) = std::env::var(PASSWORD_ENV) {
        return Ok(p);
    }
    if std::io::stdin().is_terminal() {
        return prompt_password();
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
    let p = line.trim_end_matches(['\r', '\n']).to_owned();
    if p.is_empty() {
        return Err("no password: set KEYGATE_PASSWORD or pipe it on standard input".into());
    }
    Ok(p)
}

/// Asks for the password on the terminal, without echo, twice; refuses a mismatch.
fn prompt_password() -> Result<String, String> {
    let ask = |prompt: &str| {
        rpassword::prompt_password(prompt)
            .map_err(|e| format!("cannot read the password from the terminal: {e}"))
    };
    let first = ask("Password: ")?;
    if first.is_empty() {
        return Err("no password given".into());
    }
    if ask("Password again: ")? != first {
        return Err("the two passwords differ; nothing was changed".into());
    }
    Ok(first)
}

/// `GET /api/health` over a plain TCP connection, so the check needs no HTTP client.
fn healthcheck(addr: SocketAddr) -> Result<(), String> {
    let timeout = Duration::from_secs(5);
    let mut s = std::net::TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET /api/health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("cannot send the request: {e}"))?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)
        .map_err(|e| format!("cannot read the answer: {e}"))?;
    let status = reply.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) == Some("200") {
        println!("healthy: {addr}");
        Ok(())
    } else {
        Err(format!("unhealthy: {addr} answered {status:?}"))
    }
}
