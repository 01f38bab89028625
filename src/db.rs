//! Opening the SQLite file: pragmas, schema and migrations, a read pool, and the one
//! writer connection.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::error::{Error, Result};

/// The schema of a new database; its `PRAGMA user_version` is `SCHEMA_VERSION` (a test
/// holds them together).
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
];

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create the directory {dir}: {source}")]
    CreateDir {
        dir: PathBuf,
        source: std::io::Error,
    },
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

/// A handle on the database, cheap to clone.
#[derive(Clone)]
pub struct Db {
    reads: Pool<SqliteConnectionManager>,
    writer: Arc<Mutex<Connection>>,
    path: Arc<PathBuf>,
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch(
        "PRAGMA foreign_keys = ON;
         PRAGMA synchronous = FULL;
         PRAGMA temp_store = MEMORY;",
    )
}

impl Db {
    /// Opens (creating if needed) the database at `path`, applies the schema or migrates
    /// it forward, and refuses a database written by a newer keygate.
    pub fn open(path: &Path, read_pool_size: u32) -> Result<Db, OpenError> {
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
        create_private(path).map_err(|e| OpenError::Sqlite {
            path: path.to_owned(),
            source: rusqlite::Error::InvalidParameterName(format!("cannot create the file: {e}")),
        })?;
        let sqlite = |source| OpenError::Sqlite {
            path: path.to_owned(),
            source,
        };
        let mut writer = Connection::open(path).map_err(sqlite)?;
        configure(&writer).map_err(sqlite)?;
        writer
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(sqlite)?;
        migrate(&mut writer, path)?;

        let manager = SqliteConnectionManager::file(path)
            .with_flags(OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .with_init(|c| configure(c));
        let reads = Pool::builder()
            .max_size(read_pool_size.max(1))
            .min_idle(Some(1))
            .build(manager)
            .map_err(|source| OpenError::Pool {
                path: path.to_owned(),
                source,
            })?;
        Ok(Db {
            reads,
            writer: Arc::new(Mutex::new(writer)),
            path: Arc::new(path.to_owned()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read_conn(&self) -> Result<PooledConnection<SqliteConnectionManager>> {
        Ok(self.reads.get()?)
    }

    /// Runs a short read on the calling thread. Point lookups take microseconds, which is
    /// cheaper than a hop to the blocking pool.
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.read_conn()?;
        f(&conn)
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction on the writer connection, on the
    /// blocking pool; commits when `f` returns Ok, rolls back otherwise.
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction) -> Result<T> + Send + 'static,
    {
        let db = self.clone();
        tokio::task::spawn_blocking(move || db.write_blocking(f))
            .await
            .map_err(|e| Error::internal(format!("write task failed: {e}")))?
    }

    /// `write` for callers already off the async workers (CLI, shutdown).
    pub fn write_blocking<T>(&self, f: impl FnOnce(&Transaction) -> Result<T>) -> Result<T> {
        let mut conn = self
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

    /// Writes a consistent copy of the live database to `dest` through SQLite's online
    /// backup API. Writers are not blocked (WAL); the copy appears under its name only
    /// once complete.
    pub fn backup_to(&self, dest: &Path) -> Result<()> {
        if dest.exists() {
            return Err(Error::invalid(
                "destination_exists",
                format!("{} already exists; choose a new path", dest.display()),
            ));
        }
        let dir = match dest.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(Error::invalid(
                "no_such_directory",
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
                "destination_exists",
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

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), OpenError> {
    let sqlite = |source| OpenError::Sqlite {
        path: path.to_owned(),
        source,
    };
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Exclusive)
        .map_err(sqlite)?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sqlite)?;
    if version < 0 {
        return Err(sqlite(rusqlite::Error::InvalidParameterName(format!(
            "the file has a negative schema version ({version}); is it a keygate database?"
        ))));
    }
    if version > SCHEMA_VERSION {
        return Err(OpenError::TooNew {
            path: path.to_owned(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
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
    } else {
        for (from, step) in MIGRATIONS.iter().enumerate().skip(version as usize - 1) {
            tx.execute_batch(step).map_err(sqlite)?;
            tx.pragma_update(None, "user_version", from as i64 + 2)
                .map_err(sqlite)?;
        }
    }
    tx.commit().map_err(sqlite)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_database_gets_the_current_schema_version() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("k.db"), 2).unwrap();
        let v: i64 = db
            .read(|c| Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        // Opening again leaves it as it is.
        drop(db);
        Db::open(&dir.path().join("k.db"), 2).unwrap();
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

        let db = Db::open(&path, 2).unwrap();

        let v: i64 = db
            .read(|c| Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        assert_eq!(installation_admins(&db), ["first"]);
        // Opening again migrates nothing twice.
        drop(db);
        assert_eq!(installation_admins(&Db::open(&path, 2).unwrap()), ["first"]);
    }

    #[test]
    fn a_version_1_database_without_organizations_migrates_without_administrators() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db");
        version_1_database(&path, &[]);

        let db = Db::open(&path, 2).unwrap();

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

        let migrated = Db::open(&old, 2).unwrap();
        let fresh = Db::open(&dir.path().join("new.db"), 2).unwrap();

        assert_eq!(shape(&migrated), shape(&fresh));
    }

    #[test]
    fn a_database_from_a_newer_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db");
        drop(Db::open(&path, 2).unwrap());
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let err = Db::open(&path, 2)
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
        let db = Db::open(&path, 2).unwrap();
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
        assert!(Db::open(&path, 2).is_err());
    }
}
