//! The `mail_queue` table: its SQL, nothing else.

use rusqlite::{Connection, OptionalExtension, params};

use crate::infra::db::{from_row, now};
use crate::infra::render::RenderedEmail;

/// Puts a rendered email in the queue, inside the caller's transaction.
pub fn queue(conn: &Connection, to: &str, email: &RenderedEmail) -> rusqlite::Result<()> {
    insert(conn, to, email, None)
}

/// Queues mail that is worthless after `expires_at` (it carries an access code):
/// it goes before other mail, is retried promptly, and is dropped once expired.
pub fn queue_expiring(
    conn: &Connection,
    to: &str,
    email: &RenderedEmail,
    expires_at: i64,
) -> rusqlite::Result<()> {
    insert(conn, to, email, Some(expires_at))
}

/// Deletes messages that were sent, failed or dropped before `before` (their
/// bodies are already erased): `portal mail status` reports on recent mail only,
/// and the table stays small.
pub fn forget_finished_before(conn: &Connection, before: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM mail_queue WHERE coalesce(sent_at, failed_at) < ?1",
        [before],
    )
}

fn insert(
    conn: &Connection,
    to: &str,
    email: &RenderedEmail,
    expires_at: Option<i64>,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO mail_queue (to_addr, subject, text_body, html_body, created_at, next_attempt_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)",
        params![to, email.subject, email.text, email.html, now(), expires_at],
    )?;
    Ok(())
}

/// A message claimed for one delivery attempt.
pub(super) struct Pending {
    pub id: i64,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub attempts: u32,
    pub expires_at: Option<i64>,
}

/// Claims the next due message (the newest one to `only_to`, if given; else
/// expiring mail first) for `lease` seconds, so that two processes never send the
/// same message at once, and one that died mid-send is retried after the lease.
pub(super) fn claim(
    conn: &Connection,
    lease: i64,
    only_to: Option<&str>,
) -> rusqlite::Result<Option<Pending>> {
    let order = if only_to.is_some() {
        "id DESC"
    } else {
        "expires_at IS NULL, id"
    };
    let sql = format!(
        "UPDATE mail_queue SET next_attempt_at = ?1 + ?2
         WHERE id = (SELECT id FROM mail_queue
                     WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= ?1
                       AND (expires_at IS NULL OR expires_at > ?1)
                       AND (?3 IS NULL OR to_addr = ?3)
                     ORDER BY {order} LIMIT 1)
         RETURNING id, to_addr, subject, text_body, html_body, attempts, expires_at"
    );
    conn.query_row(&sql, params![now(), lease, only_to], |r| {
        Ok(from_row!(r => Pending [
            id to subject text html attempts expires_at
        ]))
    })
    .optional()
}

/// Marks pending, unclaimed mail whose content expired as dropped and erases its
/// body; returns the ids.
pub(super) fn drop_expired(conn: &Connection) -> rusqlite::Result<Vec<i64>> {
    let mut stmt = conn.prepare(
        "UPDATE mail_queue SET failed_at = ?1, dropped_at = ?1, text_body = '', html_body = ''
         WHERE sent_at IS NULL AND failed_at IS NULL AND expires_at <= ?1 AND next_attempt_at <= ?1
         RETURNING id",
    )?;
    let ids = stmt.query_map([now()], |r| r.get::<_, i64>(0))?;
    ids.collect()
}

/// Makes a claimed message due again at once (its delivery was abandoned).
pub(super) fn release(conn: &Connection, id: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE mail_queue SET next_attempt_at = ?2
         WHERE id = ?1 AND sent_at IS NULL AND failed_at IS NULL",
        params![id, now()],
    )
}

/// When the next pending message is due.
pub(super) fn next_due(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    conn.query_row(
        "SELECT min(next_attempt_at) FROM mail_queue WHERE sent_at IS NULL AND failed_at IS NULL",
        [],
        |r| r.get(0),
    )
}

/// Sent: the body (which may hold a code) is erased; an earlier error is kept
/// for the health report.
pub(super) fn mark_sent(conn: &Connection, id: i64, attempts: u32) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE mail_queue SET sent_at = ?2, attempts = ?3, text_body = '', html_body = ''
         WHERE id = ?1",
        params![id, now(), attempts],
    )
}

/// A failed attempt: retried after `delay` seconds, or given up (body erased).
pub(super) fn mark_failed(
    conn: &Connection,
    id: i64,
    attempts: u32,
    error: &str,
    delay: i64,
    give_up: bool,
) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE mail_queue SET attempts = ?2, last_error = ?3, last_error_at = ?6,
         next_attempt_at = ?6 + ?4,
         failed_at = CASE WHEN ?5 THEN ?6 ELSE NULL END,
         text_body = CASE WHEN ?5 THEN '' ELSE text_body END,
         html_body = CASE WHEN ?5 THEN '' ELSE html_body END
         WHERE id = ?1",
        params![id, attempts, error, delay, give_up, now()],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_mail_finished_before_the_cut_is_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::infra::db::Db::open(&dir.path().join("portal.db")).unwrap();
        let conn = rusqlite::Connection::open(dir.path().join("portal.db")).unwrap();
        drop(db);
        let email = RenderedEmail {
            subject: "s".into(),
            text: "t".into(),
            html: "h".into(),
        };
        for _ in 0..4 {
            queue(&conn, "a@example.com", &email).unwrap();
        }
        // 1: sent long ago, 2: failed long ago, 3: sent recently, 4: pending.
        conn.execute_batch(
            "UPDATE mail_queue SET sent_at = 100 WHERE id = 1;
             UPDATE mail_queue SET failed_at = 100 WHERE id = 2;
             UPDATE mail_queue SET sent_at = 5000 WHERE id = 3;",
        )
        .unwrap();
        assert_eq!(forget_finished_before(&conn, 1000).unwrap(), 2);
        let left: Vec<i64> = conn
            .prepare("SELECT id FROM mail_queue ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(left, vec![3, 4]);
    }
}
