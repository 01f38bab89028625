//! Runtime configuration, built once in `main` (or by a test) and passed down.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::clock::{DAY, MINUTE, SECOND};

// The defaults of what `keygate serve` takes as flags: the command line shows these and
// `Config::new` starts from them, so the two cannot disagree.

/// Where the server listens.
pub const DEFAULT_AUDIT_RETENTION_DAYS: u32 = 365;
pub const DEFAULT_USAGE_RETENTION_DAYS: u32 = 90;
pub const DEFAULT_UNUSED_KEY_DAYS: u32 = 30;
pub const DEFAULT_LISTEN: &str = "127.0.0.1:3000";
/// Session lifetime in seconds (3 days).
pub const DEFAULT_SESSION_TTL_SECS: i64 = 3 * DAY / SECOND;
/// Seconds after the last extension at which a request extends a session (24 hours).
pub const DEFAULT_SESSION_UPDATE_AGE_SECS: i64 = DAY / SECOND;
/// Seconds a connection has to deliver its request head.
pub const DEFAULT_HEADER_TIMEOUT_SECS: u64 = 10;
/// Seconds a request body may make no progress.
pub const DEFAULT_BODY_TIMEOUT_SECS: u64 = 10;
/// Seconds a connection may sit idle between requests.
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 60;
/// MiB of request bodies buffered by all requests together.
pub const DEFAULT_BODY_MEMORY_MIB: u32 = 32;
/// Password checks that may wait for a hashing thread.
pub const DEFAULT_PASSWORD_QUEUE: u32 = 32;
/// Verified API keys and sessions kept in memory together.
pub const DEFAULT_CACHE_ENTRIES: u32 = 100_000;
/// The log filter of `keygate serve`.
pub const DEFAULT_LOG: &str = "info";
/// The proxies whose `X-Forwarded-For` is believed: loopback.
pub const DEFAULT_TRUSTED_PROXIES: [&str; 2] = ["127.0.0.0/8", "::1/128"];

/// The issuer authenticator apps show beside a TOTP code.
pub const DEFAULT_TOTP_ISSUER: &str = "keygate";
/// The name of the sealing key's file, beside the database by default.
pub const SECRET_KEY_FILE: &str = "keygate.key";

/// `keygate.key` in the database's directory.
pub fn default_secret_key_file(db_path: &std::path::Path) -> PathBuf {
    db_path.with_file_name(SECRET_KEY_FILE)
}

/// The fewest async workers the server runs, whatever the core count.
const MIN_WORKERS: usize = 4;

/// Async worker threads: one per core, and at least `MIN_WORKERS`. A cache miss reads
/// the database inline on its worker, and that read can sleep briefly on SQLite's lock of
/// the shared WAL index (taken by every read transaction of every connection) or on an
/// allocator arena held by another thread. With one worker per core, each such sleep
/// leaves a core idle; on 2 cores, 4 workers made a cold pass over 100,000 keys about 15%
/// faster, with hits and health checks unchanged.
pub fn worker_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .max(MIN_WORKERS)
}

/// Everything the server needs to know at start.
#[derive(Clone)]
pub struct Config {
    /// Where the HTTP server listens.
    pub listen: SocketAddr,
    /// The SQLite file.
    pub db_path: PathBuf,
    /// Public base URL (`https://keygate.example.com`) when served behind a proxy; decides
    /// the cookie's `Secure` flag and `__Host-` prefix and counts as a trusted origin.
    pub public_url: Option<String>,
    /// The parent domain the session cookie is set for (`Domain`), so that the services
    /// behind forward auth on sibling hosts receive it.
    pub cookie_domain: Option<String>,
    /// Extra origins allowed to send cookie-authenticated state-changing requests.
    pub trusted_origins: Vec<String>,
    /// Take the client address from `X-Forwarded-For` (only behind a reverse proxy that
    /// sets it).
    pub trust_proxy: bool,
    /// The proxies whose `X-Forwarded-For` is believed: the client address is the
    /// right-most forwarded address outside these ranges (default: loopback).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Session lifetime in milliseconds (default 3 days).
    pub session_ttl_ms: i64,
    /// How long after the last extension a request extends the session (default 24 hours).
    pub session_update_age_ms: i64,
    /// Failed sign-ins allowed per account from one client address per window.
    pub sign_in_per_account: u32,
    /// Failed sign-ins allowed per account across all addresses per window: the ceiling
    /// that stops a guesser with many addresses, high enough that strangers cannot lock
    /// an account out for its owner.
    pub sign_in_per_account_total: u32,
    /// Failed sign-ins allowed per client address, across accounts, per window.
    pub sign_in_per_address: u32,
    /// The sign-in rate-limit window in milliseconds.
    pub sign_in_window_ms: i64,
    /// How long a refused sign-in (429) waits before it is answered, in milliseconds.
    pub sign_in_refusal_delay_ms: u64,
    /// A rate limit for API keys that set none: (max requests, window in milliseconds).
    pub default_key_rate_limit: Option<(u32, i64)>,
    /// How often in-memory key usage (last use, request counts) is written to the database.
    pub usage_flush_ms: i64,
    /// Largest accepted request body in bytes.
    pub max_body_bytes: usize,
    /// Argon2 memory cost in KiB (19 MiB by default; tests lower it to run fast).
    pub argon2_m_kib: u32,
    /// Threads that hash passwords (at a low CPU priority).
    pub hash_concurrency: usize,
    /// Password checks that may wait for a hashing thread; more get 429 at once.
    pub hash_queue: usize,
    /// A connection must deliver its request head within this many milliseconds.
    pub header_timeout_ms: u64,
    /// A request body must make progress at least this often (milliseconds), and a
    /// response must be read as often.
    pub body_timeout_ms: u64,
    /// A connection idle between requests is closed after this many milliseconds.
    pub idle_timeout_ms: u64,
    /// Connections served at once; `None` fits the cap to the file limit.
    pub max_connections: Option<usize>,
    /// Largest body of a request that needs no credential (sign-up, sign-in).
    pub max_open_body_bytes: usize,
    /// Request body bytes buffered by all requests together; past it, 503 at once.
    pub body_memory_bytes: usize,
    /// Read connections in the pool: more than the async workers, so that a read run
    /// inline on a worker never waits for a connection.
    pub read_pool_size: u32,
    /// Verified API keys and sessions kept in memory together; past it the least
    /// recently used are dropped (and cost one database lookup on their next use).
    pub cache_entries: usize,
    /// The file of the key that seals TOTP secrets (created on first use, 0600); kept
    /// out of the database so that a copy of the database alone reveals no second factor.
    pub secret_key_file: PathBuf,
    /// The issuer authenticator apps show beside a TOTP code.
    pub totp_issuer: String,
    /// Wrong two-factor codes allowed per user, from any address, per sign-in window.
    pub two_factor_per_user: u32,
    /// Days the audit log keeps an event.
    pub audit_retention_days: u32,
    /// Days a key's requests per hour are kept.
    pub usage_retention_days: u32,
    /// Days without a request after which `user.get` marks a key unused.
    pub unused_key_days: u32,
}

impl Config {
    /// The defaults for `db_path`, with every other value at its documented default.
    pub fn new(db_path: PathBuf) -> Config {
        Config {
            listen: DEFAULT_LISTEN.parse().expect("a valid address"),
            public_url: None,
            cookie_domain: None,
            trusted_origins: Vec::new(),
            trust_proxy: false,
            trusted_proxies: DEFAULT_TRUSTED_PROXIES
                .iter()
                .map(|r| r.parse().expect("a valid range"))
                .collect(),
            session_ttl_ms: DEFAULT_SESSION_TTL_SECS * SECOND,
            session_update_age_ms: DEFAULT_SESSION_UPDATE_AGE_SECS * SECOND,
            sign_in_per_account: 10,
            sign_in_per_account_total: 100,
            sign_in_per_address: 50,
            sign_in_window_ms: 15 * MINUTE,
            sign_in_refusal_delay_ms: 1_000,
            default_key_rate_limit: None,
            usage_flush_ms: 2_000,
            max_body_bytes: 1024 * 1024,
            argon2_m_kib: 19 * 1024,
            hash_concurrency: 2,
            hash_queue: DEFAULT_PASSWORD_QUEUE as usize,
            header_timeout_ms: DEFAULT_HEADER_TIMEOUT_SECS * 1000,
            body_timeout_ms: DEFAULT_BODY_TIMEOUT_SECS * 1000,
            idle_timeout_ms: DEFAULT_IDLE_TIMEOUT_SECS * 1000,
            max_connections: None,
            max_open_body_bytes: 16 * 1024,
            body_memory_bytes: DEFAULT_BODY_MEMORY_MIB as usize * 1024 * 1024,
            read_pool_size: (2 * worker_threads()).max(8) as u32,
            cache_entries: DEFAULT_CACHE_ENTRIES as usize,
            secret_key_file: default_secret_key_file(&db_path),
            totp_issuer: DEFAULT_TOTP_ISSUER.to_owned(),
            two_factor_per_user: 10,
            audit_retention_days: DEFAULT_AUDIT_RETENTION_DAYS,
            usage_retention_days: DEFAULT_USAGE_RETENTION_DAYS,
            unused_key_days: DEFAULT_UNUSED_KEY_DAYS,
            db_path,
        }
    }

    /// How the session cookie is set.
    pub fn cookie_jar(&self) -> crate::auth::cookie::Jar<'_> {
        crate::auth::cookie::Jar {
            secure: self.secure_cookies(),
            domain: self.cookie_domain.as_deref(),
        }
    }

    /// Whether cookies must be `Secure` (the public URL is HTTPS).
    pub fn secure_cookies(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }

    /// Sanity limits so a typo cannot make sessions last forever or never.
    pub fn validate(&self) -> Result<(), String> {
        if !(MINUTE..=365 * DAY).contains(&self.session_ttl_ms) {
            return Err("session lifetime must be between 60 seconds and 365 days".into());
        }
        if self.session_update_age_ms < 0 || self.session_update_age_ms > self.session_ttl_ms {
            return Err("session update age must be between 0 and the session lifetime".into());
        }
        for (what, ms) in [
            ("header timeout", self.header_timeout_ms),
            ("body timeout", self.body_timeout_ms),
            ("idle timeout", self.idle_timeout_ms),
        ] {
            if !(100..=3_600_000).contains(&ms) {
                return Err(format!("the {what} must be between 0.1 and 3600 seconds"));
            }
        }
        if self.body_memory_bytes < self.max_body_bytes {
            return Err(format!(
                "the body memory limit must be at least one largest body ({} bytes)",
                self.max_body_bytes
            ));
        }
        if self.cache_entries == 0 {
            return Err("the credential cache must hold at least one entry".into());
        }
        if self.totp_issuer.is_empty() || self.totp_issuer.chars().count() > 64 {
            return Err("the TOTP issuer must be 1-64 characters".into());
        }
        if self.hash_queue == 0 {
            return Err("the password queue must hold at least one check".into());
        }
        if let Some(d) = &self.cookie_domain {
            let is_name = crate::model::DomainHost::parse(d).is_ok_and(|h| h.as_str() == d)
                && !d.starts_with('[')
                && d.parse::<std::net::Ipv4Addr>().is_err();
            if !is_name {
                return Err(format!(
                    "cookie domain {d:?} must be a lower-case host name such as example.com"
                ));
            }
            let public = self
                .public_url
                .as_deref()
                .and_then(|u| url::Url::parse(u).ok())
                .and_then(|u| u.host_str().map(str::to_owned))
                .ok_or("a cookie domain needs --public-url, whose host must be in that domain")?;
            let inside = public == *d || public.ends_with(&format!(".{d}"));
            if !inside {
                return Err(format!(
                    "the public URL's host {public:?} is not in the cookie domain {d:?}: \
                     browsers would refuse the cookie"
                ));
            }
        }
        for o in self.public_url.iter().chain(&self.trusted_origins) {
            if !(o.starts_with("http://") || o.starts_with("https://")) {
                return Err(format!("origin {o:?} must start with http:// or https://"));
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("db_path", &self.db_path)
            .field("public_url", &self.public_url)
            .field("trusted_origins", &self.trusted_origins)
            .field("session_ttl_ms", &self.session_ttl_ms)
            .field("session_update_age_ms", &self.session_update_age_ms)
            .finish_non_exhaustive()
    }
}
