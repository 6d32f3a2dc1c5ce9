//! T1–T3: tasks the firm assigns to a client. A task has a type (a
//! [`kinds::TaskKind`]: the built-in Exchange, or a plugin) that describes what
//! it asks; the engine here owns storage, state, uploads, mail and the audit.
//!
//! Rules every function keeps: a client's task is loaded with its client id (a
//! stranger gets 404); answers are saved before the kind is asked to render
//! them, so a failing kind never loses input; hidden answers are kept but never
//! submitted; every state change writes an audit entry and a timeline event in
//! the transaction that makes it.

pub mod answers;
pub mod exchange;
pub mod flow;
pub mod kinds;
pub mod notify;
pub mod reminders;
pub mod repo;
pub mod routes;
pub mod values;
pub mod views;

use std::sync::Arc;

use crate::error::{AppError, AppResult, UserFacing, read_or_404};
use crate::ids::ClientId;
use crate::infra::db::DbError;
use crate::state::AppState;
use kinds::{Answer, Called, Ctx, KindError, Review, TaskKind, Value, View};
pub use repo::Task;

/// A user's mistake in this capability; the text is shown on the page.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Internal(#[from] AppError),
}

impl From<DbError> for TaskError {
    fn from(e: DbError) -> Self {
        TaskError::Internal(e.into())
    }
}

impl From<rusqlite::Error> for TaskError {
    fn from(e: rusqlite::Error) -> Self {
        TaskError::Internal(e.into())
    }
}

impl From<crate::documents::DocumentError> for TaskError {
    fn from(e: crate::documents::DocumentError) -> Self {
        use crate::documents::DocumentError as D;
        match e {
            D::Refused(m) | D::TooMany(m) => TaskError::Refused(m),
            D::Internal(e) => TaskError::Internal(e),
        }
    }
}

impl UserFacing for TaskError {
    fn into_message(self) -> AppResult<String> {
        match self {
            TaskError::Refused(m) => Ok(m),
            TaskError::Internal(e) => Err(e),
        }
    }
}

pub type TaskResult<T> = Result<T, TaskError>;

pub fn refused<T>(message: impl Into<String>) -> TaskResult<T> {
    Err(TaskError::Refused(message.into()))
}

/// The states of a task (`tasks.state`).
pub mod state {
    pub const OPEN: &str = "open";
    pub const AWAITING_REVIEW: &str = "awaiting_review";
    pub const CHANGES_REQUESTED: &str = "changes_requested";
    pub const COMPLETED: &str = "completed";
    pub const CANCELLED: &str = "cancelled";

    /// How a state reads on the client's pages and the staff's.
    pub fn label(state: &str) -> &'static str {
        match state {
            OPEN => "Open",
            AWAITING_REVIEW => "With your firm",
            CHANGES_REQUESTED => "Changes requested",
            COMPLETED => "Completed",
            _ => "Cancelled",
        }
    }
}

/// One of the client's tasks, or 404 — the same for a missing id and for
/// another client's id.
pub async fn for_client(state: &AppState, client_id: ClientId, public_id: &str) -> AppResult<Task> {
    let id = public_id.to_string();
    read_or_404(&state.db, move |conn| {
        repo::for_client(conn, client_id, &id)
    })
    .await
}

/// Any task, for staff.
pub async fn by_public_id(state: &AppState, public_id: &str) -> AppResult<Task> {
    let id = public_id.to_string();
    read_or_404(&state.db, move |conn| repo::by_public_id(conn, &id)).await
}

pub async fn list_for_client(state: &AppState, client_id: ClientId) -> AppResult<Vec<Task>> {
    Ok(state
        .db
        .read(move |conn| repo::list_for_client(conn, client_id).map_err(DbError::from))
        .await?)
}

/// The task's kind; a task whose plugin is gone cannot be worked on until it
/// is installed again (its answers stay).
pub fn kind_of(state: &AppState, task: &Task) -> TaskResult<Arc<dyn TaskKind>> {
    kinds::find(state, &task.type_id).ok_or_else(|| {
        TaskError::Refused(format!(
            "This task's type ({}) is not installed right now. Your answers are kept; the firm has been told.",
            task.type_id
        ))
    })
}

pub fn settings_of(task: &Task) -> Vec<Answer> {
    serde_json::from_str(&task.settings).unwrap_or_default()
}

pub fn last_view(task: &Task) -> Option<View> {
    task.last_view
        .as_deref()
        .and_then(|v| serde_json::from_str(v).ok())
}

/// What a call to a kind knows of the task.
pub fn ctx_of(task: &Task) -> Ctx {
    Ctx {
        task_id: task.public_id.clone(),
        tax_year: u16::try_from(task.tax_year).unwrap_or(0),
        today: today(),
        locale: "en-US".into(),
    }
}

pub fn today() -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::OffsetDateTime::now_utc()
        .date()
        .format(format)
        .unwrap_or_default()
}

/// A stored answer with what only the engine keeps (note, return reason).
#[derive(Debug, Clone)]
pub struct Stored {
    pub field: String,
    pub value: Option<Value>,
    pub review: Review,
    pub return_reason: Option<String>,
    pub note: Option<String>,
}

fn review_of(s: &str) -> Review {
    match s {
        "accepted" => Review::Accepted,
        "returned" => Review::Returned,
        _ => Review::Waiting,
    }
}

/// The task's answers, with each question's files as they are in Documents now
/// (a file the client deleted there drops out; no file left, no answer).
pub async fn stored_answers(state: &AppState, task: &Task) -> AppResult<Vec<Stored>> {
    let id = task.id;
    let (rows, files) = state
        .db
        .read(move |conn| Ok::<_, DbError>((repo::answers(conn, id)?, repo::files(conn, id)?)))
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let value = r
                .value
                .as_deref()
                .and_then(|v| serde_json::from_str::<Value>(v).ok())
                .and_then(|v| match v {
                    Value::Files(_) => {
                        let ids: Vec<String> = files
                            .iter()
                            .filter(|f| f.field_id.as_deref() == Some(r.field_id.as_str()))
                            .map(|f| f.document_id.clone())
                            .collect();
                        (!ids.is_empty()).then_some(Value::Files(ids))
                    }
                    other => Some(other),
                });
            Stored {
                field: r.field_id,
                value,
                review: review_of(&r.review),
                return_reason: r.return_reason,
                note: r.note,
            }
        })
        .collect())
}

/// The answers as a kind sees them (those with a value).
pub fn as_answers(stored: &[Stored]) -> Vec<Answer> {
    stored
        .iter()
        .filter_map(|s| {
            Some(Answer {
                field: s.field.clone(),
                value: s.value.clone()?,
                review: s.review,
            })
        })
        .collect()
}

/// The task's answers as its kind is called with them: an upload question's
/// answer names the files (as the WIT contract says), not their document ids.
pub async fn answers_for_kind(state: &AppState, task: &Task) -> AppResult<Vec<Answer>> {
    let mut answers = as_answers(&stored_answers(state, task).await?);
    let id = task.id;
    let files = state
        .db
        .read(move |conn| repo::files(conn, id).map_err(DbError::from))
        .await?;
    for answer in &mut answers {
        if let Value::Files(ids) = &mut answer.value {
            for file in ids.iter_mut() {
                if let Some(f) = files.iter().find(|f| f.document_id == *file) {
                    file.clone_from(&f.name);
                }
            }
        }
    }
    Ok(answers)
}

/// Runs a kind's call off the async runtime.
pub async fn call<T: Send + 'static>(
    kind: Arc<dyn TaskKind>,
    work: impl FnOnce(&dyn TaskKind) -> Called<T> + Send + 'static,
) -> AppResult<Called<T>> {
    Ok(tokio::task::spawn_blocking(move || work(kind.as_ref())).await?)
}

/// Keeps a call's log lines with the task (and in the server log).
pub async fn keep_log(
    state: &AppState,
    task: &Task,
    call: &'static str,
    log: &[kinds::LogLine],
) -> AppResult<()> {
    if log.is_empty() {
        return Ok(());
    }
    let lines: Vec<(String, String)> = log
        .iter()
        .map(|l| {
            let level = serde_json::to_value(l.level)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            tracing::info!(task = %task.public_id, kind = %task.type_id, call, level, message = %l.message.escape_debug(), "task kind log");
            (level, l.message.clone())
        })
        .collect();
    let id = task.id;
    state
        .db
        .write(move |tx| repo::add_log(tx, id, call, &lines).map_err(DbError::from))
        .await?;
    Ok(())
}

/// What rendering the task came to: the view (fresh, or the last good one when
/// the kind failed now) and the failure to show, if any.
pub struct Rendered {
    pub view: Option<View>,
    /// What the client is told when the kind failed.
    pub failure: Option<String>,
    /// Why the kind failed, in the kind's (or host's) own words, for staff.
    pub cause: Option<String>,
}

/// Asks the kind to render the task from its saved answers and keeps the
/// progress it reports.
pub async fn render(state: &AppState, task: &Task) -> AppResult<Rendered> {
    let kind = match kind_of(state, task) {
        Ok(kind) => kind,
        Err(e) => {
            let message = crate::web::message(e)?;
            return Ok(Rendered {
                view: last_view(task),
                failure: Some(message.clone()),
                cause: Some(message),
            });
        }
    };
    let answers = answers_for_kind(state, task).await?;
    let prior = prior_answers(state, task).await?;
    let (ctx, settings) = (ctx_of(task), settings_of(task));
    let called = call(kind, move |k| k.render(&ctx, &settings, &answers, &prior)).await?;
    keep_log(state, task, "render", &called.log).await?;
    match called.result {
        Ok(view) => {
            store_view(state, task, &view).await?;
            Ok(Rendered {
                view: Some(view),
                failure: None,
                cause: None,
            })
        }
        Err(e) => {
            // A plugin that failed was logged once by the host already; a
            // refusal (the plugin's own answer) was not.
            match e {
                KindError::Failed(_) => {
                    tracing::debug!(task = %task.public_id, kind = %task.type_id, error = %e, "task kind failed to render");
                }
                KindError::Refused(_) => {
                    tracing::warn!(task = %task.public_id, kind = %task.type_id, error = %e, "task kind refused to render");
                }
            }
            Ok(Rendered {
                view: last_view(task),
                failure: Some(kind_failure(&e)),
                cause: Some(e.to_string()),
            })
        }
    }
}

/// The answers of the client's task of this type for the year before.
async fn prior_answers(state: &AppState, task: &Task) -> AppResult<Vec<Answer>> {
    let t = task.clone();
    let prior = state
        .db
        .read(move |conn| repo::prior_year(conn, &t).map_err(DbError::from))
        .await?;
    match prior {
        Some(p) => answers_for_kind(state, &p).await,
        None => Ok(Vec::new()),
    }
}

pub fn kind_failure(e: &KindError) -> String {
    format!(
        "This task could not be updated just now ({e}). Everything you entered is saved; please try again later."
    )
}

async fn store_view(state: &AppState, task: &Task, view: &View) -> AppResult<()> {
    let json = serde_json::to_string(view).map_err(AppError::internal)?;
    if task.last_view.as_deref() == Some(json.as_str()) {
        return Ok(());
    }
    let (id, done, total) = (task.id, i64::from(view.done), i64::from(view.total));
    state
        .db
        .write(move |tx| repo::set_progress(tx, id, done, total, &json).map_err(DbError::from))
        .await?;
    Ok(())
}

/// The ids of the fields a view shows.
pub fn visible_fields(view: &View) -> Vec<&kinds::Field> {
    view.sections
        .iter()
        .flat_map(|s| s.fields.iter())
        .filter(|f| f.visible)
        .collect()
}

/// The answers to submit: only those to questions the view shows.
pub fn visible_answers(view: &View, answers: Vec<Answer>) -> Vec<Answer> {
    let shown: Vec<&str> = visible_fields(view).iter().map(|f| f.id.as_str()).collect();
    answers
        .into_iter()
        .filter(|a| shown.contains(&a.field.as_str()))
        .collect()
}

/// The client opened the task: noted once, on the staff timeline.
pub async fn opened(
    state: &AppState,
    client: &crate::accounts::Client,
    task: &Task,
) -> AppResult<()> {
    if task.opened_at.is_some() {
        return Ok(());
    }
    let (id, label) = (task.id, client_label(client));
    state
        .db
        .write(move |tx| {
            if repo::mark_opened(tx, id)? {
                repo::add_event(tx, id, &label, "task_opened", "")?;
            }
            Ok::<_, DbError>(())
        })
        .await?;
    Ok(())
}

/// F3: every task of the client, for the staff's client page.
pub async fn rows_for_client(
    state: &AppState,
    client_id: ClientId,
) -> AppResult<Vec<views::TaskRow>> {
    let all = list_for_client(state, client_id).await?;
    Ok(all.iter().map(|t| views::row(state, t)).collect())
}

/// H2: the client's Pending Tasks (open or with the firm) and Completed Tasks.
pub async fn home_lists(
    state: &AppState,
    client_id: ClientId,
) -> AppResult<(Vec<views::TaskRow>, Vec<views::TaskRow>)> {
    let all = list_for_client(state, client_id).await?;
    let rows = |wanted: &[&str]| {
        all.iter()
            .filter(|t| wanted.contains(&t.state.as_str()))
            .map(|t| views::row(state, t))
            .collect::<Vec<_>>()
    };
    Ok((
        rows(&[
            state::OPEN,
            state::AWAITING_REVIEW,
            state::CHANGES_REQUESTED,
        ]),
        rows(&[state::COMPLETED]),
    ))
}

/// Staff export a task's answers as JSON (the sections as the staff page shows
/// them; hidden answers only when asked for). The export is audited.
pub async fn export(
    state: &AppState,
    staff: &crate::firm::Staff,
    task: &Task,
    client_name: &str,
    include_hidden: bool,
    ip: &str,
) -> AppResult<serde_json::Value> {
    let parts = views::assemble(state, task, &[], include_hidden, client_name).await?;
    let by = flow::By::staff(staff, ip);
    let (t, detail) = (
        task.clone(),
        if include_hidden {
            "with hidden answers"
        } else {
            "shown answers"
        },
    );
    state
        .db
        .write(move |tx| {
            by.record(tx, &t, "task_exported", detail)
                .map_err(DbError::from)
        })
        .await?;
    Ok(serde_json::json!({
        "task": views::row(state, task),
        "client": client_name,
        "sections": parts.sections,
        "messages": parts.messages,
    }))
}

/// A timeline and audit label for who did something.
pub fn client_label(client: &crate::accounts::Client) -> String {
    format!(
        "{} (client)",
        client
            .account_name
            .clone()
            .unwrap_or_else(|| client.name.clone())
    )
}

pub fn staff_label(staff: &crate::firm::Staff) -> String {
    format!("{} (staff)", staff.name)
}

#[cfg(test)]
mod tests;
