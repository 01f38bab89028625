//! Opening the SQLite file: one owner at a time, a check for damage, pragmas, schema and
//! migrations, a read pool, and the one writer connection; and watching that the file
//! stays the one that was opened.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, ErrorCode, OpenFlags, Transaction, TransactionBehavior};

use crate::error::{Clash, Error, Invalid, Result};

/// The schema of a new database, which is then given `PRAGMA user_version` =
/// `SCHEMA_VERSION` (the file itself states no version).
pub const SCHEMA: &str = include_str!("../schema.sql");
/// The version this build writes and understands: one past the last migration.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64 + 1;
/// `MIGRATIONS[v - 1]` moves a database from version `v` to `v + 1`.
const MIGRATIONS: &[&str] = &[
    // 1 -> 2: installation administrators are named, no longer the owner and admins of
    // whichever organization is oldest. The owner of the oldest organization keeps the
    // right it had.
    "ALTER TABLE users ADD COLUMN installation_admin INTEGER NOT NULL DEFAULT 0;
     UPDATE users SET installation_admin = 1
     WHERE id = (SELECT owner_id FROM organizations ORDER BY rowid LIMIT 1);",
    // 2 -> 3: listings are paged in insertion order; these indexes give each listing's
    // rows in that order, so a page reads only its own rows and no sort runs.
    "CREATE INDEX members_org ON members (organization_id);
     CREATE INDEX invitations_organization ON invitations (organization_id);
     CREATE INDEX api_keys_user_org ON api_keys (user_id, organization_id);",
    // 3 -> 4: a key's usage moves to a narrow table of its own, so that the usage flush
    // rewrites small rows in key order instead of the wide key rows.
    "CREATE TABLE key_usage (
         key_id        TEXT PRIMARY KEY REFERENCES api_keys(id) ON DELETE CASCADE,
         last_used_at  INTEGER,
         request_count INTEGER NOT NULL DEFAULT 0
     ) STRICT, WITHOUT ROWID;
     INSERT INTO key_usage (key_id, last_used_at, request_count)
         SELECT id, last_used_at, request_count FROM api_keys;
     ALTER TABLE api_keys DROP COLUMN last_used_at;
     ALTER TABLE api_keys DROP COLUMN request_count;",
    // 4 -> 5: domains, which forward auth maps to applications.
    "CREATE TABLE domains (
         id             TEXT PRIMARY KEY,
         application_id TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
         organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
         host           TEXT NOT NULL,
         path           TEXT NOT NULL,
         created_at     INTEGER NOT NULL,
         UNIQUE (host, path)
     ) STRICT;
     CREATE INDEX domains_application ON domains (application_id);
     CREATE INDEX domains_org ON domains (organization_id);",
    // 5 -> 6: two-factor sign-in, an organization's demand for it, and password-reset
    // links.
    "ALTER TABLE users ADD COLUMN two_factor_enabled INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE organizations ADD COLUMN require_two_factor INTEGER NOT NULL DEFAULT 0;
     CREATE TABLE two_factors (
         user_id    TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
         secret     BLOB NOT NULL,
         last_step  INTEGER,
         created_at INTEGER NOT NULL
     ) STRICT;
     CREATE TABLE backup_codes (
         user_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
         code_hash BLOB NOT NULL,
         used_at   INTEGER,
         PRIMARY KEY (user_id, code_hash)
     ) STRICT, WITHOUT ROWID;
     CREATE TABLE two_factor_challenges (
         token_hash   BLOB PRIMARY KEY,
         user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
         callback_url TEXT,
         created_at   INTEGER NOT NULL,
         expires_at   INTEGER NOT NULL
     ) STRICT;
     CREATE INDEX two_factor_challenges_user ON two_factor_challenges (user_id);
     CREATE INDEX two_factor_challenges_expiry ON two_factor_challenges (expires_at);
     CREATE TABLE trusted_devices (
         token_hash BLOB PRIMARY KEY,
         user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
         created_at INTEGER NOT NULL,
         expires_at INTEGER NOT NULL
     ) STRICT;
     CREATE INDEX trusted_devices_user ON trusted_devices (user_id);
     CREATE INDEX trusted_devices_expiry ON trusted_devices (expires_at);
     CREATE TABLE password_resets (
         token_hash BLOB PRIMARY KEY,
         user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
         created_by TEXT REFERENCES users(id) ON DELETE SET NULL,
         created_at INTEGER NOT NULL,
         expires_at INTEGER NOT NULL,
         used_at    INTEGER
     ) STRICT;
     CREATE INDEX password_resets_user ON password_resets (user_id);
     CREATE INDEX password_resets_expiry ON password_resets (expires_at);",
    // 6 -> 7: the audit log, and each key's usage per hour with its last client.
    "ALTER TABLE key_usage ADD COLUMN last_address TEXT;
     ALTER TABLE key_usage ADD COLUMN last_user_agent TEXT;
     CREATE TABLE key_usage_hours (
         key_id         TEXT NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
         hour           INTEGER NOT NULL,
         ok             INTEGER NOT NULL DEFAULT 0,
         rate_limited   INTEGER NOT NULL DEFAULT 0,
         usage_exceeded INTEGER NOT NULL DEFAULT 0,
         refused        INTEGER NOT NULL DEFAULT 0,
         PRIMARY KEY (key_id, hour)
     ) STRICT, WITHOUT ROWID;
     CREATE INDEX key_usage_hours_hour ON key_usage_hours (hour);
     CREATE TABLE audit_events (
         id              INTEGER PRIMARY KEY,
         at              INTEGER NOT NULL,
         organization_id TEXT,
         actor_type      TEXT NOT NULL,
         actor_id        TEXT,
         actor_user_id   TEXT,
         actor_label     TEXT,
         subject_user_id TEXT,
         action          TEXT NOT NULL,
         resource_type   TEXT,
         resource_id     TEXT,
         outcome         TEXT NOT NULL,
         count           INTEGER NOT NULL DEFAULT 1,
         client_address  TEXT,
         user_agent      TEXT,
         request_id      TEXT,
         details         TEXT
     ) STRICT;
     CREATE INDEX audit_events_org ON audit_events (organization_id, at);
     CREATE INDEX audit_events_subject ON audit_events (subject_user_id, at);
     CREATE INDEX audit_events_at ON audit_events (at);",
];

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How often `watch` compares the file under the database's path with the one opened.
pub const WATCH_EVERY: Duration = Duration::from_secs(2);

/// How a process uses the database file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// `keygate serve`: holds an exclusive lock on the file for as long as the `Db`
    /// lives, so no second server and no writing shell command can work behind its
    /// caches. Creates and migrates the file as needed.
    Server,
    /// A shell command that writes (`user create`, `key create`): takes the same lock for
    /// as long as it runs, so it is refused while a server runs.
    Shell,
    /// Reads only (`backup`): takes no lock and never creates, migrates or writes the
    /// file, so it works while a server runs.
    ReadOnly,
}

/// Why a database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create the directory {dir}: {source}")]
    CreateDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("another keygate is using {path}; stop it first")]
    InUse { path: PathBuf },
    #[error(
        "the database {path} is damaged ({detail}); restore a backup, or salvage what is left with `sqlite3 {path} .recover`"
    )]
    Damaged { path: PathBuf, detail: String },
    #[error(
        "the database {path} has schema version {found}, newer than this keygate understands ({supported}); run a newer keygate or restore a backup"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("the database {path} could not be opened: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("the database pool for {path} could not be built: {source}")]
    Pool { path: PathBuf, source: r2d2::Error },
}

impl OpenError {
    /// Classifies an SQLite error met while opening `path`: a damaged file gets its own
    /// message.
    fn sqlite(path: &Path, source: rusqlite::Error) -> OpenError {
        match source.sqlite_error_code() {
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => OpenError::Damaged {
                path: path.to_owned(),
                detail: source.to_string(),
            },
            _ => OpenError::Sqlite {
                path: path.to_owned(),
                source,
            },
        }
    }
}

/// What is wrong with the file under the database's path while the server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileProblem {
    /// No file is there any more.
    Missing,
    /// Another file is there (another device or inode than the one opened).
    Replaced,
}

/// Why the database is not fit to serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unhealthy {
    /// It does not answer a query.
    NoAnswer,
    File(FileProblem),
}

impl Unhealthy {
    /// The machine-readable word for the health answer.
    pub fn as_str(self) -> &'static str {
        match self {
            Unhealthy::NoAnswer => "database_unreachable",
            Unhealthy::File(FileProblem::Missing) => "database_file_missing",
            Unhealthy::File(FileProblem::Replaced) => "database_file_replaced",
        }
    }
}

/// Which file an open handle or a path names: device and inode where the platform has
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId(u64, u64);

impl FileId {
    #[cfg(unix)]
    fn of(m: &std::fs::Metadata) -> FileId {
        use std::os::unix::fs::MetadataExt;
        FileId(m.dev(), m.ino())
    }

    /// Elsewhere only a missing file can be told apart.
    #[cfg(not(unix))]
    fn of(_: &std::fs::Metadata) -> FileId {
        FileId(0, 0)
    }
}

/// The most writes one transaction commits; more wait for the next.
const MAX_BATCH: usize = 256;

#[derive(Default)]
struct WriteQueue {
    jobs: Vec<Box<dyn Job>>,
    /// A blocking task is committing batches; it takes what is queued before it stops.
    running: bool,
}

/// A queued write, whatever it answers.
trait Job: Send {
    /// Runs the write inside a savepoint of `tx`. `Err` only when the savepoint itself
    /// failed, which breaks the whole batch.
    fn run(&mut self, tx: &Transaction) -> rusqlite::Result<()>;
    /// Answers the caller: the write's own result when it failed or the batch committed,
    /// else why the batch did not commit.
    fn finish(self: Box<Self>, batch_failed: Option<&rusqlite::Error>);
}

struct Pending<F, T> {
    f: Option<F>,
    result: Option<Result<T>>,
    answer: tokio::sync::oneshot::Sender<Result<T>>,
}

impl<F, T> Job for Pending<F, T>
where
    F: FnOnce(&Transaction) -> Result<T> + Send,
    T: Send,
{
    fn run(&mut self, tx: &Transaction) -> rusqlite::Result<()> {
        let Some(f) = self.f.take() else {
            return Ok(());
        };
        tx.execute_batch("SAVEPOINT write")?;
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(tx)))
            .unwrap_or_else(|_| Err(Error::internal("a write panicked")));
        let full = matches!(result, Err(Error::StorageFull));
        let ok = result.is_ok();
        self.result = Some(result);
        let undone = if ok {
            tx.execute_batch("RELEASE write")
        } else {
            tx.execute_batch("ROLLBACK TO write; RELEASE write")
        };
        match undone {
            Ok(()) => Ok(()),
            // The batch is lost with this write: its neighbours fail for the same cause.
            Err(_) if full => Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
                None,
            )),
            Err(e) => Err(e),
        }
    }

    fn finish(self: Box<Self>, batch_failed: Option<&rusqlite::Error>) {
        let answer = match (self.result, batch_failed) {
            // A write that failed was rolled back whatever became of the batch.
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(v)), None) => Ok(v),
            (_, Some(e)) => Err(again(e)),
            (None, None) => Err(Error::internal("a write was not run")),
        };
        let _ = self.answer.send(answer);
    }
}

// What the storage engine's errors mean to the rest of keygate, kept here so that
// nothing above the store names the engine.

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        // SQLite reports a write that failed with ENOSPC as SQLITE_FULL, like a database
        // that reached its max_page_count.
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
            return Error::StorageFull;
        }
        // A constraint can only fail when another request changed the same rows between
        // a check and a write (a parent deleted meanwhile): a conflict, not a crash.
        if let rusqlite::Error::SqliteFailure(f, _) = &e
            && f.code == rusqlite::ErrorCode::ConstraintViolation
        {
            tracing::warn!(error = %e, "a constraint failed; answered as a conflict");
            return Error::conflict(
                Clash::ConcurrentChange,
                "Something this request depends on changed at the same time; try again",
            );
        }
        Error::Internal(format!("database: {e}"))
    }
}

impl From<r2d2::Error> for Error {
    fn from(e: r2d2::Error) -> Self {
        Error::Internal(format!("database pool: {e}"))
    }
}

/// The domain error for a failed commit, once per caller of the batch.
fn again(e: &rusqlite::Error) -> Error {
    match e {
        rusqlite::Error::SqliteFailure(code, msg) => {
            Error::from(rusqlite::Error::SqliteFailure(*code, msg.clone()))
        }
        other => Error::internal(format!("database: {other}")),
    }
}

/// A handle on the database, cheap to clone.
#[derive(Clone)]
pub struct Db(Arc<Inner>);

struct Inner {
    reads: Pool<SqliteConnectionManager>,
    writer: Mutex<Connection>,
    path: PathBuf,
    opened: FileId,
    /// What the last look at the file found.
    problem: Mutex<Option<FileProblem>>,
    /// Writes waiting for the writer connection, committed together (see `write`).
    queue: Mutex<WriteQueue>,
    /// The exclusive lock (`Server`, `Shell`). Declared last so that it is closed after
    /// every connection: on Unix, closing any descriptor of a file drops the process's
    /// fcntl locks on it, SQLite's own included, so this handle must outlive them.
    _lock: Option<File>,
}

/// Prepared statements kept per connection. The store has about 70 distinct statements;
/// rusqlite's default of 16 would re-parse the key path's statements after a listing or
/// two ran on the same connection.
const STATEMENT_CACHE: usize = 128;

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.execute_batch(
        "PRAGMA foreign_keys = ON;
         PRAGMA synchronous = FULL;
         PRAGMA temp_store = MEMORY;",
    )
}

/// The file the lock is taken on: the database itself where the lock is an advisory
/// `flock` (Unix, where SQLite locks with fcntl, which is independent of it), a file
/// beside it elsewhere (Windows locks are mandatory and would block SQLite's own reads).
fn lock_path(path: &Path) -> PathBuf {
    if cfg!(unix) {
        path.to_owned()
    } else {
        let mut p = path.as_os_str().to_owned();
        p.push(".lock");
        PathBuf::from(p)
    }
}

/// Opens (creating, readable by its owner alone) the file to lock and locks it, or says
/// that another process holds it.
fn lock(path: &Path) -> Result<File, OpenError> {
    let target = lock_path(path);
    let mut o = std::fs::OpenOptions::new();
    o.read(true).write(true).create(true);
    // It holds password hashes and every organization's data; SQLite gives its -wal and
    // -shm files the same permissions.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let file = o.open(&target).map_err(|source| OpenError::File {
        path: target.clone(),
        source,
    })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(OpenError::InUse {
            path: path.to_owned(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(OpenError::File {
            path: target,
            source,
        }),
    }
}

/// Runs `PRAGMA quick_check` (every page and index, without cross-checking index
/// contents against tables: linear in the file's size) and refuses a damaged file.
fn check_integrity(conn: &Connection, path: &Path) -> Result<(), OpenError> {
    let found: Vec<String> = conn
        .prepare("PRAGMA quick_check(5)")
        .and_then(|mut st| {
            st.query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()
        })
        .map_err(|e| OpenError::sqlite(path, e))?;
    if found.len() == 1 && found[0] == "ok" {
        return Ok(());
    }
    // Its first line names the schema ("*** in database main ***"); the rest say what.
    let detail = found
        .iter()
        .flat_map(|f| f.lines())
        .filter(|l| !l.starts_with("***"))
        .collect::<Vec<_>>()
        .join("; ");
    Err(OpenError::Damaged {
        path: path.to_owned(),
        detail,
    })
}

impl Db {
    /// Opens the database at `path` as `ownership` says: for `Server` and `Shell`, takes
    /// the lock, creates the file if needed and applies the schema or migrates it forward;
    /// for `ReadOnly`, opens an existing file as it is. Every mode refuses a damaged file
    /// and one written by a newer keygate.
    pub fn open(path: &Path, read_pool_size: u32, ownership: Ownership) -> Result<Db, OpenError> {
        let sqlite = |e| OpenError::sqlite(path, e);
        let lock = match ownership {
            Ownership::ReadOnly => None,
            Ownership::Server | Ownership::Shell => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
                    && !dir.exists()
                {
                    std::fs::create_dir_all(dir)
                        .and_then(|()| private_dir(dir))
                        .map_err(|source| OpenError::CreateDir {
                            dir: dir.to_owned(),
                            source,
                        })?;
                }
                Some(lock(path)?)
            }
        };
        let opened = match (&lock, cfg!(unix)) {
            (Some(file), true) => file.metadata(),
            _ => std::fs::metadata(path),
        }
        .map(|m| FileId::of(&m))
        .map_err(|source| OpenError::File {
            path: path.to_owned(),
            source,
        })?;

        let mut writer = match ownership {
            Ownership::ReadOnly => Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            ),
            _ => Connection::open(path),
        }
        .map_err(sqlite)?;
        configure(&writer).map_err(sqlite)?;
        check_integrity(&writer, path)?;
        if ownership == Ownership::ReadOnly {
            let version = schema_version(&writer, path)?;
            if version == 0 {
                return Err(OpenError::Sqlite {
                    path: path.to_owned(),
                    source: rusqlite::Error::InvalidParameterName(
                        "the file holds no keygate schema; is it a keygate database?".into(),
                    ),
                });
            }
        } else {
            writer
                .pragma_update(None, "journal_mode", "WAL")
                .map_err(sqlite)?;
            migrate(&mut writer, path)?;
        }

        let manager = SqliteConnectionManager::file(path)
            .with_flags(OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .with_init(|c| configure(c));
        // No check on checkout: a connection to a local file does not go stale, and the
        // check (an empty statement run through `execute_batch`) cost about 5% of a cold
        // key lookup.
        let reads = Pool::builder()
            .max_size(read_pool_size.max(1))
            .min_idle(Some(1))
            .test_on_check_out(false)
            .build(manager)
            .map_err(|source| OpenError::Pool {
                path: path.to_owned(),
                source,
            })?;
        Ok(Db(Arc::new(Inner {
            reads,
            writer: Mutex::new(writer),
            queue: Mutex::new(WriteQueue::default()),
            path: path.to_owned(),
            opened,
            problem: Mutex::new(None),
            _lock: lock,
        })))
    }

    pub fn path(&self) -> &Path {
        &self.0.path
    }

    fn read_conn(&self) -> Result<PooledConnection<SqliteConnectionManager>> {
        Ok(self.0.reads.get()?)
    }

    /// Runs a short read on the calling thread. Point lookups take microseconds, which is
    /// cheaper than a hop to the blocking pool.
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.read_conn()?;
        f(&conn)
    }

    /// Runs `f` on the writer connection and answers once its changes are durable; when
    /// `f` fails, none of its changes are kept.
    ///
    /// Group commit: writes that arrive while another batch commits wait in a queue, and
    /// the next batch runs all of them in one `BEGIN IMMEDIATE` transaction, each inside
    /// a savepoint of its own, with one commit (one fsync with `synchronous=FULL`) for
    /// all. A write that fails rolls back to its savepoint and fails alone; each caller
    /// is answered only after the commit that holds its write. The write runs even when
    /// its caller goes away.
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction) -> Result<T> + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job = Box::new(Pending {
            f: Some(f),
            result: None,
            answer,
        });
        let start = {
            let mut q = self.0.queue.lock().unwrap_or_else(|p| p.into_inner());
            q.jobs.push(job);
            !std::mem::replace(&mut q.running, true)
        };
        if start {
            let db = self.clone();
            tokio::task::spawn_blocking(move || db.run_batches());
        }
        answered
            .await
            .map_err(|_| Error::internal("a write was dropped before it ran"))?
    }

    /// Commits queued writes batch after batch until the queue is empty. The handle on
    /// the database is let go before the last batch's callers are answered, so a caller
    /// that drops the database on its answer really closes it.
    fn run_batches(self) {
        let mut db = Some(self);
        while let Some(d) = db.take() {
            let mut batch = {
                let mut q = d.0.queue.lock().unwrap_or_else(|p| p.into_inner());
                let rest = q.jobs.len().saturating_sub(MAX_BATCH);
                let mut batch = std::mem::take(&mut q.jobs);
                q.jobs = batch.split_off(batch.len() - rest);
                batch
            };
            let failure = d.commit_batch(&mut batch);
            let more = {
                let mut q = d.0.queue.lock().unwrap_or_else(|p| p.into_inner());
                q.running = !q.jobs.is_empty();
                q.running
            };
            if more {
                db = Some(d);
            } else {
                drop(d);
            }
            for job in batch {
                job.finish(failure.as_ref());
            }
        }
    }

    /// Runs `batch` in one transaction; answers why it did not commit, if it did not.
    fn commit_batch(&self, batch: &mut [Box<dyn Job>]) -> Option<rusqlite::Error> {
        let Ok(mut conn) = self.0.writer.lock() else {
            return Some(rusqlite::Error::InvalidParameterName(
                "writer connection poisoned".into(),
            ));
        };
        let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(tx) => tx,
            Err(e) => return Some(e),
        };
        for job in batch.iter_mut() {
            if let Err(e) = job.run(&tx) {
                // A savepoint could not be taken or undone (SQLite may have rolled the
                // whole transaction back after a full disk): trust nothing of the batch.
                return Some(e);
            }
        }
        tx.commit().err()
    }

    /// `write` for callers already off the async workers (CLI, shutdown).
    pub fn write_blocking<T>(&self, f: impl FnOnce(&Transaction) -> Result<T>) -> Result<T> {
        let mut conn = self
            .0
            .writer
            .lock()
            .map_err(|_| Error::internal("writer connection poisoned"))?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Checks that the database answers.
    pub fn ping(&self) -> Result<()> {
        self.read(|c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))
            .map(|_| ())
    }

    /// Whether the database is fit to serve: it answers a query, and the last look at
    /// the file (`watch`) found the one that was opened.
    pub fn health(&self) -> Result<(), Unhealthy> {
        if let Some(p) = *self.0.problem.lock().unwrap_or_else(|p| p.into_inner()) {
            return Err(Unhealthy::File(p));
        }
        self.ping().map_err(|_| Unhealthy::NoAnswer)
    }

    /// Looks at the file under the database's path: gone, or not the one opened. Records
    /// the finding for `health` and logs a change of it once.
    pub fn check_file(&self) -> Option<FileProblem> {
        let path = self.path();
        let now = match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(FileProblem::Missing),
            Ok(m) if FileId::of(&m) != self.0.opened => Some(FileProblem::Replaced),
            // Unreadable for another reason (permissions): nothing can be told.
            _ => None,
        };
        let before = std::mem::replace(
            &mut *self.0.problem.lock().unwrap_or_else(|p| p.into_inner()),
            now,
        );
        if now != before {
            match now {
                Some(FileProblem::Missing) => tracing::warn!(
                    path = %path.display(),
                    "the database file was deleted while keygate runs: what is written from now \
                     on is lost when keygate stops; restore the file and restart keygate"
                ),
                Some(FileProblem::Replaced) => tracing::warn!(
                    path = %path.display(),
                    "the database file was replaced by another file while keygate runs: keygate \
                     still uses the one it opened; restart keygate to use the new one"
                ),
                None => tracing::info!(path = %path.display(), "the database file is back"),
            }
        }
        now
    }

    /// Writes a consistent copy of the live database to `dest` through SQLite's online
    /// backup API. Writers are not blocked (WAL); the copy appears under its name only
    /// once complete.
    pub fn backup_to(&self, dest: &Path) -> Result<()> {
        if dest.exists() {
            return Err(Error::invalid(
                Invalid::DestinationExists,
                format!("{} already exists; choose a new path", dest.display()),
            ));
        }
        let dir = match dest.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(Error::invalid(
                Invalid::NoSuchDirectory,
                format!("the directory {} does not exist", dir.display()),
            ));
        }
        // A name of our own in the same directory, so the final step is a link on one
        // file system and no other file is ever touched.
        let name = dest
            .file_name()
            .map_or_else(|| "backup".into(), |n| n.to_string_lossy().into_owned());
        let tmp = dir.join(format!(
            ".{name}.{}.partial",
            crate::auth::token::random_base62(8)
        ));
        let result = (|| -> rusqlite::Result<()> {
            create_private(&tmp).map_err(|e| {
                rusqlite::Error::InvalidParameterName(format!(
                    "cannot create {}: {e}",
                    tmp.display()
                ))
            })?;
            let src = self.read_conn().map_err(|e| {
                rusqlite::Error::InvalidParameterName(format!("read connection: {e}"))
            })?;
            let mut dst = Connection::open(&tmp)?;
            {
                let backup = rusqlite::backup::Backup::new(&src, &mut dst)?;
                // One step copies every page under one read transaction: a consistent
                // snapshot even while the server writes.
                loop {
                    match backup.step(-1)? {
                        rusqlite::backup::StepResult::Done => break,
                        _ => std::thread::sleep(Duration::from_millis(50)),
                    }
                }
            }
            dst.pragma_update(None, "journal_mode", "DELETE")?;
            Ok(())
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::internal(format!("backup failed: {e}")));
        }
        // A hard link never replaces an existing file, unlike a rename.
        let linked = std::fs::hard_link(&tmp, dest);
        let _ = std::fs::remove_file(&tmp);
        linked.map_err(|e| {
            Error::invalid(
                Invalid::DestinationExists,
                format!("cannot write {}: {e}", dest.display()),
            )
        })
    }
}

/// Creates `path` readable by its owner alone, if it does not exist. It holds password
/// hashes and every organization's data; SQLite gives its -wal and -shm files the same
/// permissions.
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    match o.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Makes a directory keygate created accessible to its owner alone.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let _ = dir;
    Ok(())
}

/// The file's `PRAGMA user_version`, refused when negative or newer than this build.
fn schema_version(conn: &Connection, path: &Path) -> Result<i64, OpenError> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| OpenError::sqlite(path, e))?;
    if version < 0 {
        return Err(OpenError::sqlite(
            path,
            rusqlite::Error::InvalidParameterName(format!(
                "the file has a negative schema version ({version}); is it a keygate database?"
            )),
        ));
    }
    if version > SCHEMA_VERSION {
        return Err(OpenError::TooNew {
            path: path.to_owned(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(version)
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), OpenError> {
    let sqlite = |e| OpenError::sqlite(path, e);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Exclusive)
        .map_err(sqlite)?;
    let version = schema_version(&tx, path)?;
    if version == 0 {
        let tables: i64 = tx
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .map_err(sqlite)?;
        if tables != 0 {
            return Err(sqlite(rusqlite::Error::InvalidParameterName(
                "the file holds tables but no keygate schema version; is it a keygate database?"
                    .into(),
            )));
        }
        tx.execute_batch(SCHEMA).map_err(sqlite)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(sqlite)?;
    } else {
        for (from, step) in MIGRATIONS.iter().enumerate().skip(version as usize - 1) {
            tx.execute_batch(step).map_err(sqlite)?;
            tx.pragma_update(None, "user_version", from as i64 + 2)
                .map_err(sqlite)?;
        }
    }
    tx.commit().map_err(sqlite)
}

/// Looks at the database file every `WATCH_EVERY` for as long as the server runs, so
/// health turns unhealthy soon after the file is deleted or replaced under it.
pub async fn watch(db: Db) {
    let mut tick = tokio::time::interval(WATCH_EVERY);
    loop {
        tick.tick().await;
        db.check_file();
    }
}

#[cfg(test)]
mod tests {
    /// The bundled SQLite is built with the options of `.cargo/config.toml`.
    #[test]
    fn sqlite_is_built_without_global_allocation_statistics_or_a_shared_page_cache() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let options: Vec<String> = conn
            .prepare("PRAGMA compile_options")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "{options:?}"
        );
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "{options:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_that_arrive_together_share_a_commit_and_a_failing_one_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("k.db"), 2, Ownership::Server).unwrap();
        db.write_blocking(|tx| Ok(tx.execute_batch("CREATE TABLE t (x TEXT)")?))
            .unwrap();
        // The first write holds the writer until the others are queued behind it.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let first = tokio::spawn({
            let db = db.clone();
            async move {
                db.write(move |tx| {
                    held.recv().unwrap();
                    Ok(tx.execute("INSERT INTO t VALUES ('first')", [])?)
                })
                .await
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let mut rest = Vec::new();
        for i in 0..10 {
            let db2 = db.clone();
            rest.push(tokio::spawn({
                let db = db.clone();
                async move {
                    db.write(move |tx| {
                        tx.execute("INSERT INTO t VALUES (?1)", [format!("w{i}")])?;
                        if i == 5 {
                            return Err(Error::invalid(
                                Invalid::ValidationFailed,
                                "this one fails",
                            ));
                        }
                        // The writes before it in its batch: seen inside the transaction,
                        // not yet by a reader, so not committed on their own.
                        let count = |c: &Connection| -> Result<i64> {
                            Ok(
                                c.query_row("SELECT count(*) FROM t WHERE x LIKE 'w%'", [], |r| {
                                    r.get(0)
                                })?,
                            )
                        };
                        Ok((count(tx)?, db2.read(count)?))
                    })
                    .await
                }
            }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        release.send(()).unwrap();
        first.await.unwrap().unwrap();
        let mut answers = Vec::new();
        for r in rest {
            answers.push(r.await.unwrap());
        }

        assert!(matches!(
            &answers[5],
            Err(Error::Invalid {
                reason: "validation_failed",
                ..
            })
        ));
        let seen: Vec<(i64, i64)> = answers
            .iter()
            .filter_map(|a| a.as_ref().ok().copied())
            .collect();
        assert_eq!(seen.len(), 9);
        // The last of the batch saw the nine that succeeded; no reader saw any of them
        // before the batch committed.
        assert_eq!(seen.iter().map(|s| s.0).max(), Some(9), "{seen:?}");
        assert!(seen.iter().all(|s| s.1 == 0), "{seen:?}");
        let rows: i64 = db
            .read(|c| Ok(c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(
            rows, 10,
            "the first and nine of ten; the failed one left nothing"
        );
    }

    use super::*;

    #[test]
    fn a_new_database_gets_the_current_schema_version() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("k.db"), 2, Ownership::Server).unwrap();
        let v: i64 = db
            .read(|c| Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        // Opening again leaves it as it is.
        drop(db);
        Db::open(&dir.path().join("k.db"), 2, Ownership::Server).unwrap();
    }

    /// A database as version 1 left it: its schema, the users `first` and `second`, and
    /// `orgs` as (id, owner), in the order they were made.
    fn version_1_database(path: &Path, orgs: &[(&str, &str)]) {
        let c = Connection::open(path).unwrap();
        c.execute_batch(include_str!("../tests/fixtures/schema-v1.sql"))
            .unwrap();
        for user in ["first", "second"] {
            c.execute(
                "INSERT INTO users (id, name, email, password_hash, created_at, updated_at)
                 VALUES (?1, ?1, ?1 || '@example.com', 'x', 1, 1)",
                [user],
            )
            .unwrap();
        }
        for (org, owner) in orgs {
            c.execute(
                "INSERT INTO organizations (id, name, owner_id, created_at)
                 VALUES (?1, ?1, ?2, 1)",
                [org, owner],
            )
            .unwrap();
        }
    }

    fn installation_admins(db: &Db) -> Vec<String> {
        db.read(|c| {
            let mut st =
                c.prepare("SELECT id FROM users WHERE installation_admin = 1 ORDER BY id")?;
            let ids = st.query_map([], |r| r.get(0))?;
            Ok(ids.collect::<rusqlite::Result<Vec<String>>>()?)
        })
        .unwrap()
    }

    #[test]
    fn a_version_1_database_is_migrated_and_its_oldest_organizations_owner_stays_administrator() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db");
        // The second user's organization has the older id and the same time: the older
        // row decides.
        version_1_database(&path, &[("org-z", "first"), ("org-a", "second")]);

        let db = Db::open(&path, 2, Ownership::Server).unwrap();

        let v: i64 = db
            .read(|c| Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        assert_eq!(installation_admins(&db), ["first"]);
        // Opening again migrates nothing twice.
        drop(db);
        assert_eq!(
            installation_admins(&Db::open(&path, 2, Ownership::Server).unwrap()),
            ["first"]
        );
    }

    #[test]
    fn a_version_1_database_without_organizations_migrates_without_administrators() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db");
        version_1_database(&path, &[]);

        let db = Db::open(&path, 2, Ownership::Server).unwrap();

        assert!(installation_admins(&db).is_empty());
    }

    /// Every table's columns and every index, as SQLite reports them.
    fn shape(db: &Db) -> Vec<String> {
        db.read(|c| {
            let mut out = Vec::new();
            let mut st = c.prepare(
                "SELECT type, name, tbl_name FROM sqlite_schema
                 WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name",
            )?;
            let objects = st
                .query_map([], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?))
                })?
                .collect::<rusqlite::Result<Vec<(String, String, String)>>>()?;
            for (kind, name, table) in objects {
                out.push(format!("{kind} {name} on {table}"));
                if kind == "table" {
                    let mut cols = c.prepare(
                        "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?1)",
                    )?;
                    let cols = cols.query_map([&name], |r| {
                        Ok(format!(
                            "  {} {} notnull={} default={:?} pk={}",
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, Option<String>>(3)?,
                            r.get::<_, i64>(4)?
                        ))
                    })?;
                    for col in cols {
                        out.push(col?);
                    }
                }
            }
            Ok(out)
        })
        .unwrap()
    }

    #[test]
    fn a_migrated_database_has_the_schema_of_a_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old.db");
        version_1_database(&old, &[("org", "first")]);

        let migrated = Db::open(&old, 2, Ownership::Server).unwrap();
        let fresh = Db::open(&dir.path().join("new.db"), 2, Ownership::Server).unwrap();

        assert_eq!(shape(&migrated), shape(&fresh));
    }

    #[test]
    fn a_version_2_database_keeps_its_keys_usage_in_the_usage_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(include_str!("../tests/fixtures/schema-v2.sql"))
                .unwrap();
            c.execute_batch(
                "INSERT INTO users (id, name, email, password_hash, created_at, updated_at)
                     VALUES ('u', 'u', 'u@example.com', 'x', 1, 1);
                 INSERT INTO organizations (id, name, owner_id, created_at)
                     VALUES ('o', 'o', 'u', 1);
                 INSERT INTO api_keys (id, name, prefix, start, key_hash, user_id,
                         organization_id, last_used_at, request_count, created_at, updated_at)
                     VALUES ('used', 'k', 'kg', 'kg_', x'01', 'u', 'o', 1234, 56, 1, 1),
                            ('unused', 'k', 'kg', 'kg_', x'02', 'u', 'o', NULL, 0, 1, 1);",
            )
            .unwrap();
        }
        let fresh = Db::open(&dir.path().join("new.db"), 2, Ownership::Server).unwrap();

        let db = Db::open(&path, 2, Ownership::Server).unwrap();

        let usage = db
            .read(|c| {
                let mut st = c.prepare(
                    "SELECT key_id, last_used_at, request_count FROM key_usage ORDER BY key_id",
                )?;
                let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                Ok(rows.collect::<rusqlite::Result<Vec<(String, Option<i64>, i64)>>>()?)
            })
            .unwrap();
        assert_eq!(
            usage,
            [("unused".into(), None, 0), ("used".into(), Some(1234), 56)]
        );
        assert_eq!(shape(&db), shape(&fresh));
        // The usage rows go with their keys.
        db.write_blocking(|tx| Ok(tx.execute("DELETE FROM api_keys WHERE id = 'used'", [])?))
            .unwrap();
        let left: i64 = db
            .read(|c| Ok(c.query_row("SELECT count(*) FROM key_usage", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(left, 1);
    }

    #[test]
    fn a_database_from_a_newer_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db");
        drop(Db::open(&path, 2, Ownership::Server).unwrap());
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let err = Db::open(&path, 2, Ownership::Server)
            .err()
            .expect("a newer schema must be refused");
        let msg = err.to_string();
        assert!(msg.contains("newer than this keygate"), "{msg}");
        assert!(matches!(err, OpenError::TooNew { found, .. } if found == SCHEMA_VERSION + 1));
    }

    #[cfg(unix)]
    #[test]
    fn a_new_database_and_its_directory_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data").join("k.db");
        let db = Db::open(&path, 2, Ownership::Server).unwrap();
        db.write_blocking(|tx| Ok(tx.execute_batch("CREATE TABLE t (x)")?))
            .unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&path.with_extension("db-wal")), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        let copy = dir.path().join("copy.db");
        db.backup_to(&copy).unwrap();
        assert_eq!(mode(&copy), 0o600);
    }

    #[test]
    fn a_foreign_sqlite_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        assert!(Db::open(&path, 2, Ownership::Server).is_err());
    }

    #[test]
    fn one_process_at_a_time_owns_a_database_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db");
        let server = Db::open(&path, 2, Ownership::Server).unwrap();

        for second in [Ownership::Server, Ownership::Shell] {
            let err = Db::open(&path, 2, second)
                .err()
                .expect("a second owner must be refused");
            assert!(matches!(err, OpenError::InUse { .. }), "{err}");
            assert_eq!(
                err.to_string(),
                format!("another keygate is using {}; stop it first", path.display())
            );
        }
        // Reading takes no lock.
        let reader = Db::open(&path, 2, Ownership::ReadOnly).unwrap();
        reader.ping().unwrap();
        drop(reader);
        drop(server);
        Db::open(&path, 2, Ownership::Shell).unwrap();
    }

    #[test]
    fn opening_read_only_creates_migrates_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.db");
        assert!(Db::open(&missing, 1, Ownership::ReadOnly).is_err());
        assert!(!missing.exists(), "a read-only open created the file");

        // An empty file is what `Server` would fill with the schema.
        let empty = dir.path().join("empty.db");
        std::fs::write(&empty, b"").unwrap();
        assert!(Db::open(&empty, 1, Ownership::ReadOnly).is_err());
        assert_eq!(std::fs::read(&empty).unwrap(), b"");

        let path = dir.path().join("k.db");
        let db = Db::open(&path, 1, Ownership::Server).unwrap();
        db.write_blocking(|tx| {
            Ok(tx.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1)")?)
        })
        .unwrap();
        drop(db);
        let before = std::fs::read(&path).unwrap();
        let db = Db::open(&path, 1, Ownership::ReadOnly).unwrap();
        db.backup_to(&dir.path().join("copy.db")).unwrap();
        assert!(
            db.write_blocking(|tx| Ok(tx.execute_batch("INSERT INTO t VALUES (2)")?))
                .is_err()
        );
        drop(db);
        assert!(std::fs::read(&path).unwrap() == before, "the file changed");
    }

    #[test]
    fn a_damaged_database_is_refused_whatever_the_ownership() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db");
        let db = Db::open(&path, 1, Ownership::Server).unwrap();
        db.write_blocking(|tx| {
            tx.execute_batch("CREATE TABLE t (x TEXT)")?;
            for i in 0..200 {
                tx.execute("INSERT INTO t VALUES (?1)", [format!("{i:0>500}")])?;
            }
            Ok(())
        })
        .unwrap();
        drop(db);
        // The middle of a page near the end of the file, where `t`'s full leaves are.
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.len() - 3 * 4096 + 2048;
        bytes[at..at + 256].fill(0xab);
        std::fs::write(&path, bytes).unwrap();

        for ownership in [Ownership::Server, Ownership::ReadOnly] {
            let err = Db::open(&path, 1, ownership)
                .err()
                .expect("a damaged file must be refused");
            assert!(matches!(err, OpenError::Damaged { .. }), "{err}");
            assert!(err.to_string().contains("is damaged"), "{err}");
        }
    }

    #[test]
    fn a_database_file_deleted_or_replaced_under_its_path_is_unhealthy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db");
        let aside = dir.path().join("aside.db");
        let db = Db::open(&path, 1, Ownership::Server).unwrap();
        assert_eq!(db.check_file(), None);
        assert_eq!(db.health(), Ok(()));

        std::fs::rename(&path, &aside).unwrap();
        assert_eq!(
            db.health(),
            Ok(()),
            "health reports what the last look found"
        );
        assert_eq!(db.check_file(), Some(FileProblem::Missing));
        assert_eq!(db.health(), Err(Unhealthy::File(FileProblem::Missing)));

        std::fs::copy(&aside, &path).unwrap();
        assert_eq!(db.check_file(), Some(FileProblem::Replaced));
        assert_eq!(db.health(), Err(Unhealthy::File(FileProblem::Replaced)));

        std::fs::rename(&aside, &path).unwrap();
        assert_eq!(db.check_file(), None);
        assert_eq!(db.health(), Ok(()));
    }
}
