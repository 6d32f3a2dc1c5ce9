//! SQL for tasks, their answers, events, Exchange messages, log lines and files.

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::ids::{ClientId, DocumentId, StaffId, TaskId};
use crate::infra::crypto::random_id;
use crate::infra::db::now;

/// How many log lines are kept per task (the newest).
pub const LOG_LINES_KEPT: i64 = 200;

#[derive(Debug, Clone)]
pub struct Task {
    pub id: TaskId,
    pub public_id: String,
    pub client_id: ClientId,
    pub type_id: String,
    pub kind_version: String,
    pub title: String,
    pub tax_year: i64,
    pub due_date: Option<String>,
    /// JSON list of `kinds::Answer`.
    pub settings: String,
    pub state: String,
    pub progress_done: i64,
    pub progress_total: i64,
    /// JSON `kinds::View` of the last good render.
    pub last_view: Option<String>,
    pub reopen_message: Option<String>,
    pub summary: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub opened_at: Option<i64>,
    pub submitted_at: Option<i64>,
    pub completed_at: Option<i64>,
}

const COLUMNS: &str = "id, public_id, client_id, type_id, kind_version, title, tax_year, due_date, \
    settings, state, progress_done, progress_total, last_view, reopen_message, summary, created_at, \
    updated_at, opened_at, submitted_at, completed_at";

fn row(r: &Row) -> rusqlite::Result<Task> {
    Ok(Task {
        id: r.get(0)?,
        public_id: r.get(1)?,
        client_id: r.get(2)?,
        type_id: r.get(3)?,
        kind_version: r.get(4)?,
        title: r.get(5)?,
        tax_year: r.get(6)?,
        due_date: r.get(7)?,
        settings: r.get(8)?,
        state: r.get(9)?,
        progress_done: r.get(10)?,
        progress_total: r.get(11)?,
        last_view: r.get(12)?,
        reopen_message: r.get(13)?,
        summary: r.get(14)?,
        created_at: r.get(15)?,
        updated_at: r.get(16)?,
        opened_at: r.get(17)?,
        submitted_at: r.get(18)?,
        completed_at: r.get(19)?,
    })
}

pub struct NewTask<'a> {
    pub client_id: ClientId,
    pub type_id: &'a str,
    pub kind_version: &'a str,
    pub title: &'a str,
    pub tax_year: i64,
    pub due_date: Option<&'a str>,
    pub settings: &'a str,
    pub created_by: StaffId,
}

pub fn insert(conn: &Connection, t: NewTask) -> rusqlite::Result<Task> {
    let at = now();
    conn.execute(
        "INSERT INTO tasks (public_id, client_id, type_id, kind_version, title, tax_year, due_date,
                            settings, created_by, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
        params![
            random_id(),
            t.client_id,
            t.type_id,
            t.kind_version,
            t.title,
            t.tax_year,
            t.due_date,
            t.settings,
            t.created_by,
            at
        ],
    )?;
    let id = TaskId(conn.last_insert_rowid());
    by_id(conn, id)
}

fn by_id(conn: &Connection, id: TaskId) -> rusqlite::Result<Task> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM tasks WHERE id = ?1"),
        [id],
        row,
    )
}

/// Removes a task that never reached its client.
pub fn delete(conn: &Connection, id: TaskId) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM tasks WHERE id = ?1", [id])?;
    Ok(())
}

/// A client's task by its public id; `None` for anyone else's.
pub fn for_client(
    conn: &Connection,
    client_id: ClientId,
    public_id: &str,
) -> rusqlite::Result<Option<Task>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM tasks WHERE public_id = ?1 AND client_id = ?2"),
        params![public_id, client_id],
        row,
    )
    .optional()
}

/// Any task by its public id (staff).
pub fn by_public_id(conn: &Connection, public_id: &str) -> rusqlite::Result<Option<Task>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM tasks WHERE public_id = ?1"),
        [public_id],
        row,
    )
    .optional()
}

/// A client's tasks, those due first first, then the newest.
pub fn list_for_client(conn: &Connection, client_id: ClientId) -> rusqlite::Result<Vec<Task>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM tasks WHERE client_id = ?1
         ORDER BY due_date IS NULL, due_date, created_at DESC, id DESC"
    ))?;
    stmt.query_map([client_id], row)?.collect()
}

/// The client's task of the same type for the year before, if any (its answers
/// are the prior-year answers a kind may prefill from): a completed one first,
/// then the newest.
pub fn prior_year(conn: &Connection, task: &Task) -> rusqlite::Result<Option<Task>> {
    conn.query_row(
        &format!(
            "SELECT {COLUMNS} FROM tasks WHERE client_id = ?1 AND type_id = ?2 AND tax_year = ?3
             AND state != 'cancelled' ORDER BY state = 'completed' DESC, id DESC LIMIT 1"
        ),
        params![task.client_id, task.type_id, task.tax_year - 1],
        row,
    )
    .optional()
}

/// Moves a task from one of `from` to `to`, stamping the matching time;
/// false if it was not in one of those states (someone else moved it first).
pub fn set_state(conn: &Connection, id: TaskId, from: &[&str], to: &str) -> rusqlite::Result<bool> {
    let from = serde_json::to_string(from).unwrap_or_default();
    let changed = conn.execute(
        "UPDATE tasks SET state = ?2, updated_at = ?3,
                submitted_at = CASE WHEN ?2 IN ('awaiting_review', 'changes_requested')
                                    OR (?2 = 'completed' AND state = 'open') THEN ?3 ELSE submitted_at END,
                completed_at = CASE WHEN ?2 = 'completed' THEN ?3 ELSE NULL END
             WHERE id = ?1 AND state IN (SELECT value FROM json_each(?4))",
        params![id, to, now(), from],
    )?;
    Ok(changed == 1)
}

pub fn set_progress(
    conn: &Connection,
    id: TaskId,
    done: i64,
    total: i64,
    view: &str,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE tasks SET progress_done = ?2, progress_total = ?3, last_view = ?4 WHERE id = ?1",
        params![id, done, total, view],
    )?;
    Ok(())
}

pub fn set_settings(conn: &Connection, id: TaskId, settings: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE tasks SET settings = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, settings, now()],
    )?;
    Ok(())
}

pub fn set_summary(conn: &Connection, id: TaskId, summary: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE tasks SET summary = ?2 WHERE id = ?1",
        params![id, summary],
    )?;
    Ok(())
}

pub fn set_reopen_message(conn: &Connection, id: TaskId, message: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE tasks SET reopen_message = ?2 WHERE id = ?1",
        params![id, message],
    )?;
    Ok(())
}

/// Records the client's first look; true the first time.
pub fn mark_opened(conn: &Connection, id: TaskId) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "UPDATE tasks SET opened_at = ?2 WHERE id = ?1 AND opened_at IS NULL",
        params![id, now()],
    )? == 1)
}

// ---- answers ----

#[derive(Debug, Clone)]
pub struct StoredAnswer {
    pub field_id: String,
    /// JSON `kinds::Value`.
    pub value: Option<String>,
    pub review: String,
    pub return_reason: Option<String>,
    pub note: Option<String>,
    pub updated_at: i64,
}

pub fn answers(conn: &Connection, task: TaskId) -> rusqlite::Result<Vec<StoredAnswer>> {
    let mut stmt = conn.prepare(
        "SELECT field_id, value, review, return_reason, note, updated_at
         FROM task_answers WHERE task_id = ?1 ORDER BY field_id",
    )?;
    stmt.query_map([task], |r| {
        Ok(StoredAnswer {
            field_id: r.get(0)?,
            value: r.get(1)?,
            review: r.get(2)?,
            return_reason: r.get(3)?,
            note: r.get(4)?,
            updated_at: r.get(5)?,
        })
    })?
    .collect()
}

/// Sets (or with `None` clears) a question's value. A changed value waits for
/// review again; the reason it was returned is kept until then.
pub fn set_value(
    conn: &Connection,
    task: TaskId,
    field: &str,
    value: Option<&str>,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO task_answers (task_id, field_id, value, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (task_id, field_id) DO UPDATE SET
             review = CASE WHEN value IS excluded.value THEN review ELSE 'waiting' END,
             value = excluded.value,
             updated_at = CASE WHEN value IS excluded.value THEN updated_at ELSE excluded.updated_at END",
        params![task, field, value, now()],
    )?;
    drop_empty(conn, task, field)
}

pub fn set_note(
    conn: &Connection,
    task: TaskId,
    field: &str,
    note: Option<&str>,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO task_answers (task_id, field_id, note, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (task_id, field_id) DO UPDATE SET note = excluded.note",
        params![task, field, note, now()],
    )?;
    drop_empty(conn, task, field)
}

/// A row with neither value nor note nor review history says nothing.
fn drop_empty(conn: &Connection, task: TaskId, field: &str) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM task_answers WHERE task_id = ?1 AND field_id = ?2
           AND value IS NULL AND note IS NULL AND return_reason IS NULL",
        params![task, field],
    )?;
    Ok(())
}

pub fn set_review(
    conn: &Connection,
    task: TaskId,
    field: &str,
    review: &str,
    reason: Option<&str>,
) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "UPDATE task_answers SET review = ?3, return_reason = ?4
         WHERE task_id = ?1 AND field_id = ?2 AND value IS NOT NULL",
        params![task, field, review, reason],
    )? == 1)
}

// ---- the timeline ----

#[derive(Debug, Clone, serde::Serialize)]
pub struct Event {
    pub at: i64,
    pub actor: String,
    pub kind: String,
    pub detail: String,
}

pub fn add_event(
    conn: &Connection,
    task: TaskId,
    actor: &str,
    kind: &str,
    detail: &str,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO task_events (task_id, at, actor, kind, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![task, now(), actor, kind, detail],
    )?;
    Ok(())
}

pub fn events(conn: &Connection, task: TaskId) -> rusqlite::Result<Vec<Event>> {
    let mut stmt = conn.prepare(
        "SELECT at, actor, kind, detail FROM task_events WHERE task_id = ?1 ORDER BY id",
    )?;
    stmt.query_map([task], |r| {
        Ok(Event {
            at: r.get(0)?,
            actor: r.get(1)?,
            kind: r.get(2)?,
            detail: r.get(3)?,
        })
    })?
    .collect()
}

// ---- the Exchange thread ----

#[derive(Debug, Clone)]
pub struct Message {
    pub id: i64,
    pub author: String,
    pub staff_name: Option<String>,
    pub body: String,
    pub at: i64,
}

pub fn add_message(
    conn: &Connection,
    task: TaskId,
    staff: Option<StaffId>,
    body: &str,
) -> rusqlite::Result<i64> {
    let author = if staff.is_some() { "staff" } else { "client" };
    conn.execute(
        "INSERT INTO task_messages (task_id, author, staff_id, body, at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![task, author, staff, body, now()],
    )?;
    Ok(conn.last_insert_rowid())
}

pub fn messages(conn: &Connection, task: TaskId) -> rusqlite::Result<Vec<Message>> {
    let mut stmt = conn.prepare(
        "SELECT m.id, m.author, s.name, m.body, m.at FROM task_messages m
         LEFT JOIN staff s ON s.id = m.staff_id WHERE m.task_id = ?1 ORDER BY m.id",
    )?;
    stmt.query_map([task], |r| {
        Ok(Message {
            id: r.get(0)?,
            author: r.get(1)?,
            staff_name: r.get(2)?,
            body: r.get(3)?,
            at: r.get(4)?,
        })
    })?
    .collect()
}

// ---- the kind's log lines ----

#[derive(Debug, Clone, serde::Serialize)]
pub struct LogRow {
    pub at: i64,
    pub call: String,
    pub level: String,
    pub message: String,
}

/// Appends lines and keeps only the newest [`LOG_LINES_KEPT`].
pub fn add_log(
    conn: &Connection,
    task: TaskId,
    call: &str,
    lines: &[(String, String)],
) -> rusqlite::Result<()> {
    if lines.is_empty() {
        return Ok(());
    }
    let mut stmt = conn.prepare(
        "INSERT INTO task_log (task_id, at, call, level, message) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (level, message) in lines {
        stmt.execute(params![task, now(), call, level, message])?;
    }
    conn.execute(
        "DELETE FROM task_log WHERE task_id = ?1 AND id NOT IN
           (SELECT id FROM task_log WHERE task_id = ?1 ORDER BY id DESC LIMIT ?2)",
        params![task, LOG_LINES_KEPT],
    )?;
    Ok(())
}

pub fn log(conn: &Connection, task: TaskId) -> rusqlite::Result<Vec<LogRow>> {
    let mut stmt = conn
        .prepare("SELECT at, call, level, message FROM task_log WHERE task_id = ?1 ORDER BY id")?;
    stmt.query_map([task], |r| {
        Ok(LogRow {
            at: r.get(0)?,
            call: r.get(1)?,
            level: r.get(2)?,
            message: r.get(3)?,
        })
    })?
    .collect()
}

// ---- files sent against a task ----

#[derive(Debug, Clone)]
pub struct TaskFile {
    pub document_id: String,
    pub name: String,
    pub field_id: Option<String>,
    pub message_id: Option<i64>,
}

pub fn link_file(
    conn: &Connection,
    document: DocumentId,
    task: TaskId,
    field: Option<&str>,
    message: Option<i64>,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO task_files (document_id, task_id, field_id, message_id) VALUES (?1, ?2, ?3, ?4)",
        params![document, task, field, message],
    )?;
    Ok(())
}

/// A file sent against a returned answer replaces the files that were
/// returned: they leave the answer (staying in Documents and with the task).
pub fn release_returned(conn: &Connection, task: TaskId, field: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE task_files SET field_id = NULL WHERE task_id = ?1 AND field_id = ?2
           AND EXISTS (SELECT 1 FROM task_answers
                       WHERE task_id = ?1 AND field_id = ?2 AND review = 'returned')",
        params![task, field],
    )?;
    Ok(())
}

/// Ties attachments stored for `task` to the message they were sent with.
pub fn attach_to_message(
    conn: &Connection,
    task: TaskId,
    message: i64,
    documents: &[DocumentId],
) -> rusqlite::Result<()> {
    for d in documents {
        conn.execute(
            "UPDATE task_files SET message_id = ?3 WHERE task_id = ?1 AND document_id = ?2",
            params![task, d, message],
        )?;
    }
    Ok(())
}

/// The task's files that are still in Documents (a deleted document drops out).
pub fn files(conn: &Connection, task: TaskId) -> rusqlite::Result<Vec<TaskFile>> {
    let mut stmt = conn.prepare(
        "SELECT d.public_id, d.name, f.field_id, f.message_id FROM task_files f
         JOIN documents d ON d.id = f.document_id WHERE f.task_id = ?1 ORDER BY d.id",
    )?;
    stmt.query_map([task], |r| {
        Ok(TaskFile {
            document_id: r.get(0)?,
            name: r.get(1)?,
            field_id: r.get(2)?,
            message_id: r.get(3)?,
        })
    })?
    .collect()
}

// ---- due-date reminders ----

/// Open tasks with a due date, with the reminder thresholds already covered.
pub fn open_with_due_date(conn: &Connection) -> rusqlite::Result<Vec<(Task, Vec<i64>)>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM tasks WHERE state = 'open' AND due_date IS NOT NULL ORDER BY id"
    ))?;
    let tasks: Vec<Task> = stmt.query_map([], row)?.collect::<rusqlite::Result<_>>()?;
    let mut covered = conn.prepare("SELECT days FROM task_reminders WHERE task_id = ?1")?;
    tasks
        .into_iter()
        .map(|t| {
            let days = covered
                .query_map([t.id], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<i64>>>()?;
            Ok((t, days))
        })
        .collect()
}

pub fn mark_reminded(conn: &Connection, task: TaskId, days: &[i64]) -> rusqlite::Result<()> {
    for d in days {
        conn.execute(
            "INSERT OR IGNORE INTO task_reminders (task_id, days, sent_at) VALUES (?1, ?2, ?3)",
            params![task, d, now()],
        )?;
    }
    Ok(())
}
