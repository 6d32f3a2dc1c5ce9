//! The mail worker's health as the admin sees it: `portal mail status` and the
//! panel on the staff home page.

use rusqlite::{Connection, OptionalExtension};

use crate::infra::db::{Db, DbError, now};

/// The mail worker's health, for `portal mail status` and the staff home page.
#[derive(Debug, Default, serde::Serialize)]
pub struct Health {
    pub pending: i64,
    /// When the oldest message still waiting was queued.
    pub oldest_pending_at: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
    pub last_sent_at: Option<i64>,
    pub failed: i64,
    pub dropped: i64,
}

/// A message dropped because what it carried expired before delivery.
#[derive(Debug, serde::Serialize)]
pub struct Dropped {
    pub id: i64,
    pub to: String,
    pub expired_at: i64,
    pub last_error: Option<String>,
}

/// Counts of the queue's states, for `portal mail status`.
#[derive(Debug, Default, serde::Serialize)]
pub struct QueueStatus {
    pub pending: i64,
    pub sent: i64,
    pub failed: Vec<(i64, String, String)>,
    pub dropped: Vec<Dropped>,
    pub health: Health,
}

pub async fn health(db: &Db) -> Result<Health, DbError> {
    db.read(|conn| read_health(conn).map_err(DbError::from))
        .await
}

fn read_health(conn: &Connection) -> rusqlite::Result<Health> {
    let (pending, oldest_pending_at) = conn.query_row(
        "SELECT count(*), min(created_at) FROM mail_queue WHERE sent_at IS NULL AND failed_at IS NULL",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let (last_error, last_error_at) = conn
        .query_row(
            "SELECT last_error, last_error_at FROM mail_queue WHERE last_error_at IS NOT NULL
             ORDER BY last_error_at DESC, id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .unwrap_or((None, None));
    let (last_sent_at, failed, dropped) = conn.query_row(
        "SELECT max(sent_at), count(failed_at) - count(dropped_at), count(dropped_at) FROM mail_queue",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    Ok(Health {
        pending,
        oldest_pending_at,
        last_error,
        last_error_at,
        last_sent_at,
        failed,
        dropped,
    })
}

pub async fn status(db: &Db) -> Result<QueueStatus, DbError> {
    db.read(|conn| {
        let health = read_health(conn)?;
        let sent = conn.query_row("SELECT count(*) FROM mail_queue WHERE sent_at IS NOT NULL", [], |r| r.get(0))?;
        let mut stmt = conn.prepare(
            "SELECT id, to_addr, coalesce(last_error, '') FROM mail_queue
             WHERE failed_at IS NOT NULL AND dropped_at IS NULL ORDER BY id",
        )?;
        let failed = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<Result<_, _>>()?;
        let mut stmt = conn.prepare(
            "SELECT id, to_addr, expires_at, last_error FROM mail_queue WHERE dropped_at IS NOT NULL ORDER BY id",
        )?;
        let dropped = stmt
            .query_map([], |r| {
                Ok(Dropped { id: r.get(0)?, to: r.get(1)?, expired_at: r.get(2)?, last_error: r.get(3)? })
            })?
            .collect::<Result<_, _>>()?;
        Ok::<_, DbError>(QueueStatus { pending: health.pending, sent, failed, dropped, health })
    })
    .await
}

/// "45 s", "12 min", "3 h 5 min", "2 days": how long ago `since` was.
pub fn age(since: i64) -> String {
    let s = (now() - since).max(0);
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} days", s / 86_400),
    }
}
