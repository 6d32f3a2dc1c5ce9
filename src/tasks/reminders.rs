//! Due-date reminders: a client with an open task is emailed once as each
//! threshold of `tasks.reminder_days` (days before the due date) is reached.
//! Thresholds already reached when the task is assigned are covered by the
//! assignment email; several reached at once make one email; a task that is
//! submitted, completed or cancelled gets none.

use super::{Task, notify, repo};
use crate::error::AppResult;
use crate::infra::db::DbError;
use crate::state::AppState;

/// Days from today to `due` (negative once past), or `None` for a bad date.
fn days_left(due: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let due = time::Date::parse(due, format).ok()?;
    let today = time::OffsetDateTime::now_utc().date();
    Some((due - today).whole_days())
}

/// The thresholds reached now for `task` and not yet covered.
pub fn reached(state: &AppState, task: &Task, covered: &[i64]) -> Vec<i64> {
    let Some(left) = task.due_date.as_deref().and_then(days_left) else {
        return Vec::new();
    };
    state
        .config
        .tasks
        .reminder_days
        .iter()
        .map(|d| i64::from(*d))
        .filter(|d| left <= *d && !covered.contains(d))
        .collect()
}

/// Sends every reminder that is due; returns how many emails were queued.
pub async fn send_due(state: &AppState) -> AppResult<usize> {
    if state.config.tasks.reminder_days.is_empty() {
        return Ok(0);
    }
    let open = state
        .db
        .read(|conn| repo::open_with_due_date(conn).map_err(DbError::from))
        .await?;
    let mut sent = 0;
    for (task, covered) in open {
        let days = reached(state, &task, &covered);
        if days.is_empty() {
            continue;
        }
        let Some(client) = crate::accounts::session::client(state, task.client_id).await? else {
            continue;
        };
        let left = task.due_date.as_deref().and_then(days_left).unwrap_or(0);
        let mail = notify::reminder(state, &client, &task, left)?;
        let id = task.id;
        state
            .db
            .write(move |tx| {
                repo::mark_reminded(tx, id, &days)?;
                mail.queue(tx)?;
                Ok::<_, DbError>(())
            })
            .await?;
        sent += 1;
    }
    if sent > 0 {
        state.mailer.wake();
    }
    Ok(sent)
}

/// One pass of the reminder job, logging what it did.
pub async fn run(state: AppState) {
    match send_due(&state).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(reminders = n, "task due-date reminders queued"),
        Err(e) => tracing::error!(error = %e, "task reminders could not be sent; will retry"),
    }
}
