//! SQL for documents, uploads in progress and staff notifications.

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::ids::{ClientId, DocumentId, StaffId};
use crate::infra::crypto::random_id;
use crate::infra::db::{from_row, now};

#[derive(Debug, Clone)]
pub struct Document {
    pub id: DocumentId,
    pub public_id: String,
    pub client_id: ClientId,
    pub folder: String,
    pub name: String,
    pub mime: String,
    pub size: i64,
    pub blob: String,
    pub wrapped_key: Vec<u8>,
    pub origin: String,
    pub kind: String,
    pub tax_year: Option<i64>,
    pub message: Option<String>,
    pub signature_status: Option<String>,
    pub created_at: i64,
    pub viewed_at: Option<i64>,
    pub saved_at: Option<i64>,
}

const COLUMNS: &str = "id, public_id, client_id, folder, name, mime, size, blob, wrapped_key, origin, kind, \
    tax_year, message, signature_status, created_at, viewed_at, saved_at";

fn row(r: &Row) -> rusqlite::Result<Document> {
    Ok(from_row!(r => Document [
        id public_id client_id folder name mime size blob wrapped_key origin kind tax_year
        message signature_status created_at viewed_at saved_at
    ]))
}

pub struct NewDocument<'a> {
    pub client_id: ClientId,
    pub folder: &'a str,
    pub name: &'a str,
    pub mime: &'a str,
    pub size: i64,
    pub blob: &'a str,
    pub wrapped_key: &'a [u8],
    pub origin: &'a str,
    pub kind: &'a str,
    pub tax_year: Option<i64>,
    pub message: Option<&'a str>,
    pub staff_id: Option<StaffId>,
}

pub fn insert(conn: &Connection, d: NewDocument) -> rusqlite::Result<Document> {
    conn.execute(
        "INSERT INTO documents (public_id, client_id, folder, name, mime, size, blob, wrapped_key, origin, kind,
                                tax_year, message, staff_id, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        params![
            random_id(),
            d.client_id,
            d.folder,
            d.name,
            d.mime,
            d.size,
            d.blob,
            d.wrapped_key,
            d.origin,
            d.kind,
            d.tax_year,
            d.message,
            d.staff_id,
            now()
        ],
    )?;
    let id = conn.last_insert_rowid();
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM documents WHERE id = ?1"),
        [id],
        row,
    )
}

/// A client's document by its public id; `None` for anyone else's.
pub fn for_client(
    conn: &Connection,
    client_id: ClientId,
    public_id: &str,
) -> rusqlite::Result<Option<Document>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM documents WHERE public_id = ?1 AND client_id = ?2"),
        params![public_id, client_id],
        row,
    )
    .optional()
}

/// Any document by its public id (staff).
pub fn by_public_id(conn: &Connection, public_id: &str) -> rusqlite::Result<Option<Document>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM documents WHERE public_id = ?1"),
        [public_id],
        row,
    )
    .optional()
}

pub fn list_for_client(conn: &Connection, client_id: ClientId) -> rusqlite::Result<Vec<Document>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM documents WHERE client_id = ?1 ORDER BY created_at DESC, id DESC"
    ))?;
    stmt.query_map([client_id], row)?.collect()
}

pub fn all(conn: &Connection) -> rusqlite::Result<Vec<Document>> {
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM documents ORDER BY id"))?;
    stmt.query_map([], row)?.collect()
}

/// Client uploads the firm has not saved yet, newest first, with the client's name.
pub fn inbox(conn: &Connection) -> rusqlite::Result<Vec<(Document, String)>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {}, c.name FROM documents d JOIN clients c ON c.id = d.client_id
         WHERE d.origin = 'client' AND d.saved_at IS NULL ORDER BY d.created_at DESC",
        COLUMNS
            .split(", ")
            .map(|c| format!("d.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ")
    ))?;
    stmt.query_map([], |r| Ok((row(r)?, r.get(17)?)))?.collect()
}

pub fn mark_viewed(conn: &Connection, id: DocumentId) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE documents SET viewed_at = ?2 WHERE id = ?1 AND viewed_at IS NULL",
        params![id, now()],
    )?;
    Ok(())
}

pub fn mark_saved(conn: &Connection, id: DocumentId) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "UPDATE documents SET saved_at = ?2 WHERE id = ?1 AND origin = 'client' AND saved_at IS NULL",
        params![id, now()],
    )? == 1)
}

pub fn delete(conn: &Connection, id: DocumentId) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM documents WHERE id = ?1", [id])?;
    Ok(())
}

/// Removes or renames a client's own upload only while the firm has not saved it
/// (checked in the same statement, so a save that just happened wins).
pub fn delete_unsaved_upload(conn: &Connection, id: DocumentId) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "DELETE FROM documents WHERE id = ?1 AND origin = 'client' AND saved_at IS NULL",
        [id],
    )? == 1)
}

pub fn rename_unsaved_upload(
    conn: &Connection,
    id: DocumentId,
    name: &str,
) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "UPDATE documents SET name = ?2 WHERE id = ?1 AND origin = 'client' AND saved_at IS NULL",
        params![id, name],
    )? == 1)
}

/// Bytes a client has uploaded and that are still in the portal, plus uploads in progress.
pub fn client_usage(conn: &Connection, client_id: ClientId) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT (SELECT coalesce(sum(size), 0) FROM documents WHERE client_id = ?1 AND origin = 'client')
              + (SELECT coalesce(sum(length), 0) FROM uploads WHERE client_id = ?1 AND document_id IS NULL)",
        [client_id],
        |r| r.get(0),
    )
}

// ---- uploads in progress ----

#[derive(Debug, Clone)]
pub struct Upload {
    pub id: i64,
    pub public_id: String,
    pub client_id: ClientId,
    pub folder: String,
    pub name: String,
    pub mime: String,
    pub length: i64,
    pub blob: String,
    pub wrapped_key: Vec<u8>,
    pub nonce_prefix: Vec<u8>,
    pub chunks: i64,
    pub updated_at: i64,
    /// The finished document's public id.
    pub document_id: Option<String>,
}

fn upload_row(r: &Row) -> rusqlite::Result<Upload> {
    Ok(from_row!(r => Upload [
        id public_id client_id folder name mime length blob wrapped_key nonce_prefix chunks
        updated_at document_id
    ]))
}

const UPLOAD_COLUMNS: &str = "id, public_id, client_id, folder, name, mime, length, blob, wrapped_key, nonce_prefix, chunks, updated_at, document_id";

pub struct NewUpload<'a> {
    pub client_id: ClientId,
    pub folder: &'a str,
    pub name: &'a str,
    pub mime: &'a str,
    pub length: i64,
    pub blob: &'a str,
    pub wrapped_key: &'a [u8],
    pub nonce_prefix: &'a [u8],
}

pub fn insert_upload(conn: &Connection, u: NewUpload) -> rusqlite::Result<String> {
    let public_id = random_id();
    let t = now();
    conn.execute(
        "INSERT INTO uploads (public_id, client_id, folder, name, mime, length, blob, wrapped_key, nonce_prefix,
                              created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
        params![public_id, u.client_id, u.folder, u.name, u.mime, u.length, u.blob, u.wrapped_key, u.nonce_prefix, t],
    )?;
    Ok(public_id)
}

pub fn upload_for_client(
    conn: &Connection,
    client_id: ClientId,
    public_id: &str,
) -> rusqlite::Result<Option<Upload>> {
    conn.query_row(
        &format!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE public_id = ?1 AND client_id = ?2"),
        params![public_id, client_id],
        upload_row,
    )
    .optional()
}

pub fn uploads_in_progress(conn: &Connection, client_id: ClientId) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT count(*) FROM uploads WHERE client_id = ?1 AND document_id IS NULL",
        [client_id],
        |r| r.get(0),
    )
}

pub fn stale_uploads(conn: &Connection, before: i64) -> rusqlite::Result<Vec<Upload>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE updated_at < ?1"
    ))?;
    stmt.query_map([before], upload_row)?.collect()
}

/// Every stored file name the database refers to.
pub fn all_blobs(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT blob FROM documents UNION ALL SELECT blob FROM uploads")?;
    stmt.query_map([], |r| r.get(0))?.collect()
}

pub fn set_upload_chunks(conn: &Connection, id: i64, chunks: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE uploads SET chunks = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, chunks, now()],
    )?;
    Ok(())
}

pub fn finish_upload(conn: &Connection, id: i64, document_id: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE uploads SET document_id = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, document_id, now()],
    )?;
    Ok(())
}

pub fn delete_upload(conn: &Connection, id: i64) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM uploads WHERE id = ?1", [id])?;
    Ok(())
}

// ---- staff notifications ----

#[derive(Debug, Clone, serde::Serialize)]
pub struct Notification {
    pub id: i64,
    pub text: String,
    pub link: String,
    pub created_at: i64,
    pub read: bool,
}

pub fn notify_staff(conn: &Connection, text: &str, link: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO staff_notifications (text, link, created_at) VALUES (?1, ?2, ?3)",
        params![text, link, now()],
    )?;
    Ok(())
}

pub fn recent_notifications(conn: &Connection, limit: i64) -> rusqlite::Result<Vec<Notification>> {
    let mut stmt = conn.prepare(
        "SELECT id, text, link, created_at, read_at IS NOT NULL FROM staff_notifications ORDER BY id DESC LIMIT ?1",
    )?;
    stmt.query_map([limit], |r| {
        Ok(from_row!(r => Notification [
            id text link created_at read
        ]))
    })?
    .collect()
}

/// Marks read every notification up to `up_to` (the newest one the staff member saw).
pub fn mark_notifications_read(conn: &Connection, up_to: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE staff_notifications SET read_at = ?1 WHERE read_at IS NULL AND id <= ?2",
        params![now(), up_to],
    )?;
    Ok(())
}

/// Marks one notification read; returns its link, `None` if there is no such notification.
pub fn open_notification(conn: &Connection, id: i64) -> rusqlite::Result<Option<String>> {
    conn.execute(
        "UPDATE staff_notifications SET read_at = ?1 WHERE id = ?2 AND read_at IS NULL",
        params![now(), id],
    )?;
    conn.query_row(
        "SELECT link FROM staff_notifications WHERE id = ?1",
        [id],
        |r| r.get(0),
    )
    .optional()
}

// ---- upload limits and batched staff notices ----

/// Seconds until the client may start another upload, or `None` when it is under
/// `per_hour` starts in the last hour. Forgets starts older than an hour.
pub fn hourly_upload_wait(
    conn: &Connection,
    client_id: ClientId,
    per_hour: u32,
) -> rusqlite::Result<Option<i64>> {
    let hour_ago = now() - 3600;
    conn.execute(
        "DELETE FROM upload_starts WHERE client_id = ?1 AND started_at <= ?2",
        params![client_id, hour_ago],
    )?;
    let (count, oldest): (i64, Option<i64>) = conn.query_row(
        "SELECT count(*), min(started_at) FROM upload_starts WHERE client_id = ?1",
        [client_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok((count >= i64::from(per_hour)).then(|| oldest.map_or(0, |t| t - hour_ago)))
}

pub fn record_upload_start(conn: &Connection, client_id: ClientId) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO upload_starts (client_id, started_at) VALUES (?1, ?2)",
        params![client_id, now()],
    )?;
    Ok(())
}

pub fn queue_upload_notice(
    conn: &Connection,
    client_id: ClientId,
    document_id: DocumentId,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO upload_notices (client_id, document_id, created_at) VALUES (?1, ?2, ?3)",
        params![client_id, document_id, now()],
    )?;
    Ok(())
}

/// One waiting notice: which client sent which file.
#[derive(Debug, Clone)]
pub struct UploadNotice {
    pub id: i64,
    pub client_id: ClientId,
    pub client_name: String,
    pub client_public_id: String,
    pub name: String,
    pub folder: String,
}

/// Every waiting notice of the clients whose oldest notice was queued at or
/// before `due`, by client and in the order the files arrived.
pub fn due_upload_notices(conn: &Connection, due: i64) -> rusqlite::Result<Vec<UploadNotice>> {
    let mut stmt = conn.prepare(
        "SELECT n.id, n.client_id, c.name, c.public_id, d.name, d.folder
         FROM upload_notices n
         JOIN clients c ON c.id = n.client_id
         JOIN documents d ON d.id = n.document_id
         WHERE n.client_id IN
             (SELECT client_id FROM upload_notices GROUP BY client_id HAVING min(created_at) <= ?1)
         ORDER BY n.client_id, n.id",
    )?;
    stmt.query_map([due], |r| {
        Ok(from_row!(r => UploadNotice [
            id client_id client_name client_public_id name folder
        ]))
    })?
    .collect()
}

/// When the oldest waiting notice was queued, if any is waiting.
pub fn oldest_upload_notice(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    conn.query_row("SELECT min(created_at) FROM upload_notices", [], |r| {
        r.get(0)
    })
}

/// Removes notices once announced; returns how many were still there.
pub fn delete_upload_notices(conn: &Connection, ids: &[i64]) -> rusqlite::Result<usize> {
    let mut stmt = conn.prepare("DELETE FROM upload_notices WHERE id = ?1")?;
    let mut removed = 0;
    for id in ids {
        removed += stmt.execute([id])?;
    }
    Ok(removed)
}

// ---------- text extraction for search ----------

/// How reading a document's text went: `(state, reason)`, if it was ever tried.
pub fn extraction(
    conn: &Connection,
    document_id: DocumentId,
) -> rusqlite::Result<Option<(String, Option<String>)>> {
    conn.query_row(
        "SELECT state, reason FROM text_extraction WHERE document_id = ?1",
        [document_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}

/// Records that reading a document's text starts now (before the attempt).
pub fn begin_extraction(conn: &Connection, document_id: DocumentId) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO text_extraction (document_id, state, attempts, updated_at)
         VALUES (?1, 'pending', 1, ?2)
         ON CONFLICT (document_id) DO UPDATE
         SET state = 'pending', reason = NULL, attempts = attempts + 1, updated_at = ?2",
        params![document_id, now()],
    )?;
    Ok(())
}

/// Records how the attempt ended: `done`, or `failed` with a reason.
pub fn finish_extraction(
    conn: &Connection,
    document_id: DocumentId,
    failure: Option<&str>,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE text_extraction
         SET state = CASE WHEN ?2 IS NULL THEN 'done' ELSE 'failed' END, reason = ?2, updated_at = ?3
         WHERE document_id = ?1",
        params![document_id, failure, now()],
    )?;
    Ok(())
}

/// Forgets an attempt (the extractor could not run: the document is not to blame),
/// or with `None` every failed or interrupted one, so they are tried again.
pub fn forget_extraction(
    conn: &Connection,
    document_id: Option<DocumentId>,
) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM text_extraction WHERE document_id = ?1 OR (?1 IS NULL AND state != 'done')",
        [document_id],
    )
}

// ---------- range requests already audited ----------

/// Whether this session's `event` on the document was audited after `since`.
pub fn recently_audited(
    conn: &Connection,
    session: &str,
    document: DocumentId,
    event: &str,
    since: i64,
) -> rusqlite::Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM document_access
             WHERE session_ref = ?1 AND document_id = ?2 AND event = ?3 AND audited_at > ?4",
            params![session, document, event, since],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

pub fn mark_audited(
    conn: &Connection,
    session: &str,
    document: DocumentId,
    event: &str,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO document_access (session_ref, document_id, event, audited_at)
         VALUES (?1, ?2, ?3, ?4)",
        params![session, document, event, now()],
    )?;
    Ok(())
}

/// Drops marks of accesses audited at or before `before` (housekeeping).
pub fn forget_audited_before(conn: &Connection, before: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM document_access WHERE audited_at <= ?1",
        [before],
    )
}
