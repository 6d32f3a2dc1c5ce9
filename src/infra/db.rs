//! SQLite access: one writer connection and a small pool of readers, every call on
//! a blocking thread. Migrations in `migrations/` are embedded and applied at open.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};
use rust_embed::RustEmbed;
use tokio::sync::Semaphore;

#[derive(RustEmbed)]
#[folder = "migrations/"]
#[include = "*.sql"]
struct Migrations;

const READERS: usize = 4;

/// Builds the struct `$T` from a query's row, its fields read from the row's
/// columns in the order they are listed, which is the order of the `SELECT`:
/// `from_row!(r => Notification [id text link created_at read])`.
macro_rules! from_row {
    ($row:expr => $T:ident [$($field:ident)+]) => {{
        let row: &rusqlite::Row<'_> = $row;
        let mut columns = 0usize..;
        $T {
            // `columns` never ends; usize::MAX would be refused as a column index.
            $($field: row.get(columns.next().unwrap_or(usize::MAX))?,)+
        }
    }};
}
pub(crate) use from_row;

#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    path: std::path::PathBuf,
    reader_slots: Semaphore,
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("database task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("database lock poisoned")]
    Poisoned,
}

impl Db {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut writer = Connection::open(path)?;
        configure(&writer)?;
        migrate(&mut writer)?;
        let mut readers = Vec::new();
        for _ in 0..READERS {
            readers.push(open_reader(path)?);
        }
        Ok(Db {
            inner: Arc::new(Inner {
                writer: Mutex::new(writer),
                readers: Mutex::new(readers),
                path: path.to_path_buf(),
                reader_slots: Semaphore::new(READERS),
            }),
        })
    }

    /// Runs `f` in a write transaction; it commits when `f` returns `Ok`.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&rusqlite::Transaction) -> Result<T, E> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            // A panic in an earlier write rolled its transaction back when it
            // unwound, so the connection is still good: carry on with it.
            let mut conn = inner.writer.lock().unwrap_or_else(|e| e.into_inner());
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(DbError::from)?;
            let value = f(&tx)?;
            tx.commit().map_err(DbError::from)?;
            Ok(value)
        })
        .await
        .map_err(DbError::from)?
    }

    /// Runs `f` on a read-only connection (a consistent snapshot for its duration).
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        let permit = self
            .inner
            .reader_slots
            .acquire()
            .await
            .map_err(|_| DbError::Poisoned)?;
        let inner = self.inner.clone();
        let result = tokio::task::spawn_blocking(move || {
            let conn = inner.readers.lock().map_err(|_| DbError::Poisoned)?.pop();
            // A reader lost to a panic is replaced rather than leaving the pool short.
            let mut conn = match conn {
                Some(conn) => conn,
                None => open_reader(&inner.path).map_err(DbError::from)?,
            };
            let value = match conn.transaction() {
                Ok(tx) => f(&tx),
                Err(e) => Err(E::from(DbError::from(e))),
            };
            inner
                .readers
                .lock()
                .map_err(|_| DbError::Poisoned)?
                .push(conn);
            value
        })
        .await
        .map_err(DbError::from)?;
        drop(permit);
        result
    }

    /// Whether the database answers a query (for the health endpoint).
    pub async fn ping(&self) -> bool {
        self.read(|conn| {
            conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                .map_err(DbError::from)
        })
        .await
        .is_ok()
    }

    /// Runs `PRAGMA integrity_check` and foreign key checks; `Ok` when both are clean.
    pub async fn check_integrity(&self) -> Result<(), String> {
        self.read(|conn| {
            let integrity: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
            let fk_violations: i64 =
                conn.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                    r.get(0)
                })?;
            Ok::<_, DbError>((integrity, fk_violations))
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|(integrity, fk)| {
            if integrity != "ok" {
                Err(format!("integrity_check: {integrity}"))
            } else if fk != 0 {
                Err(format!("{fk} foreign key violations"))
            } else {
                Ok(())
            }
        })
    }
}

fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: the audit log and signatures must survive a power cut.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    let mut files: Vec<String> = Migrations::iter().map(|f| f.to_string()).collect();
    files.sort();
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (index, name) in files.iter().enumerate() {
        let version = index as i64 + 1;
        if version <= current {
            continue;
        }
        let file =
            Migrations::get(name).ok_or_else(|| anyhow::anyhow!("migration {name} missing"))?;
        let sql = std::str::from_utf8(&file.data)?;
        let tx = conn.transaction()?;
        tx.execute_batch(sql)
            .map_err(|e| anyhow::anyhow!("migration {name}: {e}"))?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
        tracing::info!(migration = %name, "applied database migration");
    }
    if current > files.len() as i64 {
        anyhow::bail!(
            "the database schema (version {current}) is newer than this program knows ({}); use a newer portal",
            files.len()
        );
    }
    Ok(())
}

/// Seconds since the Unix epoch; every timestamp in the database uses it.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    struct Pair {
        number: i64,
        text: String,
    }

    #[test]
    fn from_row_reads_the_columns_in_the_order_listed() {
        let conn = Connection::open_in_memory().unwrap();
        let read = |r: &rusqlite::Row| Ok(from_row!(r => Pair [number text]));
        let pair = conn.query_row("SELECT 7, 'seven'", [], read).unwrap();
        assert_eq!((pair.number, pair.text.as_str()), (7, "seven"));
        let short = conn.query_row("SELECT 7", [], read);
        assert!(short.is_err(), "a missing column is an error, not a panic");
    }
}
