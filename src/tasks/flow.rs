//! A task's life: staff assign it, the client submits it, staff review its
//! items, reopen it with a message, revise its settings and resend it, or cancel
//! it. Each change is one transaction with its audit entry, its timeline event
//! and the mail it sends.

use rusqlite::Connection;

use super::kinds::{self, Answer, Finish, Issue, Review, Section, Value, View};
use super::state::{AWAITING_REVIEW, CANCELLED, CHANGES_REQUESTED, COMPLETED, OPEN};
use super::{Task, TaskError, TaskResult, notify, refused, repo, values};
use crate::accounts::Client;
use crate::error::AppError;
use crate::firm::Staff;
use crate::infra::audit::{self, Actor};
use crate::infra::db::DbError;
use crate::state::AppState;

/// Who changed a task, as the audit log and the timeline name them.
pub struct By {
    pub actor: Actor,
    pub label: String,
    pub ip: String,
}

impl By {
    pub fn client(client: &Client, ip: &str) -> By {
        By {
            actor: client.actor(),
            label: super::client_label(client),
            ip: ip.to_string(),
        }
    }

    pub fn staff(staff: &Staff, ip: &str) -> By {
        By {
            actor: staff.actor(),
            label: super::staff_label(staff),
            ip: ip.to_string(),
        }
    }

    /// The audit entry and the timeline event of one change.
    pub fn record(
        &self,
        tx: &Connection,
        task: &Task,
        event: &str,
        detail: &str,
    ) -> rusqlite::Result<()> {
        audit::record(
            tx,
            self.actor.clone(),
            event,
            &task.public_id,
            detail,
            &self.ip,
        )?;
        repo::add_event(tx, task.id, &self.label, event, detail)
    }
}

/// Moves the task or refuses: another change got there first.
fn move_state(tx: &Connection, task: &Task, from: &[&str], to: &str) -> Result<(), TaskError> {
    if repo::set_state(tx, task.id, from, to)? {
        Ok(())
    } else {
        refused("This task changed meanwhile. Reload the page to see where it stands.")
    }
}

/// What staff fill in to assign a task; settings are the raw form values.
pub struct Assignment {
    pub type_id: String,
    pub title: String,
    pub due_date: String,
    pub tax_year: String,
    pub settings: Vec<(String, String)>,
}

fn check_basics(a: &Assignment) -> TaskResult<(String, Option<String>, i64)> {
    let title = a.title.trim();
    if title.is_empty() || title.chars().count() > 200 || title.chars().any(char::is_control) {
        return refused("Give the task a title of at most 200 characters, on one line.");
    }
    let due = a.due_date.trim();
    let due = if due.is_empty() {
        None
    } else {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        time::Date::parse(due, format)
            .map_err(|_| TaskError::Refused("Enter the due date as YYYY-MM-DD.".into()))?;
        Some(due.to_string())
    };
    let year = a
        .tax_year
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|y| (2000..=2100).contains(y))
        .ok_or_else(|| TaskError::Refused("Enter the tax year, such as 2025.".into()))?;
    Ok((title.to_string(), due, year))
}

/// Reads settings typed into a kind's settings form; every problem in one message.
pub fn parse_settings(form: &[Section], raw: &[(String, String)]) -> TaskResult<Vec<Answer>> {
    let mut settings = Vec::new();
    let mut problems = Vec::new();
    for field in form.iter().flat_map(|s| s.fields.iter()) {
        let key = format!("s:{}", field.id);
        let typed: Vec<String> = raw
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
            .collect();
        match values::parse(field, &typed) {
            Ok(Some(value)) => settings.push(Answer {
                field: field.id.clone(),
                value,
                review: Review::Waiting,
            }),
            Ok(None) if field.required && field.kind != kinds::FieldKind::Statement => {
                problems.push(format!("{}: this is required.", field.label));
            }
            Ok(None) => {}
            Err(m) => problems.push(format!("{}: {m}", field.label)),
        }
    }
    if problems.is_empty() {
        Ok(settings)
    } else {
        refused(problems.join(" "))
    }
}

/// The kind's own verdict on the settings; a blocking issue refuses them.
/// Refuses settings with a blocking issue; returns the kind's other remarks,
/// which go on the task's timeline for staff to read.
async fn check_settings(
    kind: std::sync::Arc<dyn kinds::TaskKind>,
    settings: Vec<Answer>,
) -> TaskResult<Vec<String>> {
    let called = super::call(kind, move |k| k.check_settings(&settings)).await?;
    let issues = called.result.map_err(|e| {
        TaskError::Refused(format!("The task type could not check these settings: {e}"))
    })?;
    blocking(&issues)?;
    Ok(issues.into_iter().map(|i| i.message).collect())
}

/// The kind's remarks on the settings staff chose, on the task's timeline.
fn note_remarks(tx: &Connection, task: &Task, by: &By, remarks: &[String]) -> rusqlite::Result<()> {
    for remark in remarks {
        repo::add_event(tx, task.id, &by.label, "settings_remark", remark)?;
    }
    Ok(())
}

fn blocking(issues: &[Issue]) -> TaskResult<()> {
    let blocking: Vec<&str> = issues
        .iter()
        .filter(|i| i.blocking)
        .map(|i| i.message.as_str())
        .collect();
    if blocking.is_empty() {
        Ok(())
    } else {
        refused(blocking.join(" "))
    }
}

/// The settings form of a kind (its sections), or why it cannot be shown.
pub async fn settings_form(kind: std::sync::Arc<dyn kinds::TaskKind>) -> TaskResult<Vec<Section>> {
    let called = super::call(kind, |k| k.settings_form()).await?;
    called.result.map_err(|e| {
        TaskError::Refused(format!("The task type's settings could not be shown: {e}"))
    })
}

/// F3, T1: staff assign a task to a client; the client is emailed.
pub async fn assign(
    state: &AppState,
    staff: &Staff,
    client: &Client,
    a: Assignment,
    ip: &str,
) -> TaskResult<Task> {
    let kind = kinds::find(state, &a.type_id)
        .ok_or_else(|| TaskError::Refused("Choose one of the task types offered.".into()))?;
    let (title, due, year) = check_basics(&a)?;
    let settings = parse_settings(&settings_form(kind.clone()).await?, &a.settings)?;
    let info = kind.info().clone();
    let remarks = check_settings(kind, settings.clone()).await?;
    let json = serde_json::to_string(&settings).map_err(AppError::internal)?;
    let (staff_id, client_id) = (staff.id, client.id);
    let task = state
        .db
        .write(move |tx| {
            let new = repo::NewTask {
                client_id,
                type_id: &info.id,
                kind_version: &info.version,
                title: &title,
                tax_year: year,
                due_date: due.as_deref(),
                settings: &json,
                created_by: staff_id,
            };
            repo::insert(tx, new).map_err(DbError::from)
        })
        .await?;
    // The first render proves the kind can serve this task before the client hears of it.
    if let Err(e) = first_render(state, &task).await {
        forget(state, &task).await?;
        return Err(e);
    }
    announce(state, staff, client, &task, &settings, &remarks, ip).await?;
    Ok(task)
}

async fn first_render(state: &AppState, task: &Task) -> TaskResult<()> {
    // Staff see the kind's own reason: nothing reached the client, so the
    // client's "everything you entered is saved" would mislead.
    match super::render(state, task).await?.cause {
        None => Ok(()),
        Some(cause) => refused(format!(
            "The task was not assigned: its type could not show it ({cause}). \
             Nothing was sent to the client."
        )),
    }
}

/// Removes a task that never reached the client (its first render failed).
async fn forget(state: &AppState, task: &Task) -> TaskResult<()> {
    let id = task.id;
    state
        .db
        .write(move |tx| repo::delete(tx, id).map_err(DbError::from))
        .await?;
    Ok(())
}

/// Audits the new task, posts an Exchange's first message and emails the client.
async fn announce(
    state: &AppState,
    staff: &Staff,
    client: &Client,
    task: &Task,
    settings: &[Answer],
    remarks: &[String],
    ip: &str,
) -> TaskResult<()> {
    let mail = notify::assigned(state, client, task)?;
    let first = kinds::exchange::first_message(settings)
        .filter(|_| task.type_id == kinds::exchange::ID)
        .map(str::to_string);
    let by = By::staff(staff, ip);
    // Reminders already due are covered by this email.
    let covered = super::reminders::reached(state, task, &[]);
    let (t, staff_id, client_id) = (task.clone(), staff.id, client.public_id.clone());
    let remarks = remarks.to_vec();
    state
        .db
        .write(move |tx| {
            let detail = format!("{} ({}) for {client_id}", t.title, t.type_id);
            by.record(tx, &t, "task_assigned", &detail)?;
            note_remarks(tx, &t, &by, &remarks)?;
            repo::mark_reminded(tx, t.id, &covered)?;
            if let Some(body) = &first {
                repo::add_message(tx, t.id, Some(staff_id), body)?;
            }
            mail.queue(tx)?;
            Ok::<_, DbError>(())
        })
        .await?;
    state.mailer.wake();
    Ok(())
}

/// Required questions the view shows that have no answer yet.
fn unanswered(view: &View, answers: &[Answer]) -> Vec<String> {
    super::visible_fields(view)
        .into_iter()
        .filter(|f| f.required && f.kind != kinds::FieldKind::Statement)
        .filter(|f| !answers.iter().any(|a| a.field == f.id))
        .map(|f| f.label.clone())
        .collect()
}

/// T2: the client submits. Only answers to questions the view shows are passed;
/// the kind's outcome says where the task goes next.
pub async fn submit(state: &AppState, client: &Client, task: &Task, ip: &str) -> TaskResult<Task> {
    if task.state != OPEN {
        return refused("This task is already with your firm.");
    }
    let kind = super::kind_of(state, task)?;
    let answers = super::answers_for_kind(state, task).await?;
    let rendered = super::render(state, task).await?;
    let view = match (rendered.view, rendered.failure) {
        (Some(view), None) => view,
        (_, failure) => return refused(failure.unwrap_or_default()),
    };
    blocking(&view.issues)?;
    let missing = unanswered(&view, &answers);
    if !missing.is_empty() {
        return refused(format!(
            "Please answer these before you submit: {}.",
            missing.join("; ")
        ));
    }
    let answers = super::visible_answers(&view, answers);
    let (ctx, settings) = (super::ctx_of(task), super::settings_of(task));
    let called = super::call(kind, move |k| k.submit(&ctx, &settings, &answers)).await?;
    super::keep_log(state, task, "submit", &called.log).await?;
    let outcome = match called.result {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(issues)) => {
            let text: Vec<&str> = issues.iter().map(|i| i.message.as_str()).collect();
            return refused(text.join(" "));
        }
        Err(e) => return refused(super::kind_failure(&e)),
    };
    let to = match outcome.finish {
        Finish::Completed => COMPLETED,
        Finish::AwaitingReview => AWAITING_REVIEW,
        Finish::ChangesRequested => CHANGES_REQUESTED,
    };
    let notice = if outcome.notify_staff {
        Some(notify::staff_notice(state, client, task, "submitted", &outcome.summary).await?)
    } else {
        None
    };
    let (t, by) = (task.clone(), By::client(client, ip));
    state
        .db
        .write(move |tx| {
            move_state(tx, &t, &[OPEN], to)?;
            repo::set_summary(tx, t.id, &outcome.summary)?;
            by.record(tx, &t, "task_submitted", &format!("{} → {to}", t.title))?;
            if let Some(n) = &notice {
                n.queue(tx)?;
            }
            Ok::<_, TaskError>(())
        })
        .await?;
    state.mailer.wake();
    Ok(super::by_public_id(state, &task.public_id).await?)
}

/// What staff decided about one reviewed item.
pub enum Decision {
    Accept,
    Return(String),
}

/// T3: staff accept or return reviewed items. Returned items go back to the
/// client (emailed with the reasons); once every reviewed item the view shows
/// is accepted (or not applicable), a task awaiting review completes.
pub async fn review(
    state: &AppState,
    staff: &Staff,
    client: &Client,
    task: &Task,
    decisions: Vec<(String, Decision)>,
    ip: &str,
) -> TaskResult<Task> {
    if ![OPEN, AWAITING_REVIEW].contains(&task.state.as_str()) {
        return refused("Only an open task or one awaiting review can be reviewed.");
    }
    let view = super::render(state, task)
        .await?
        .view
        .ok_or_else(|| TaskError::Refused("This task cannot be shown right now.".into()))?;
    let stored = super::stored_answers(state, task).await?;
    let reviewed: Vec<(String, String)> = super::visible_fields(&view)
        .into_iter()
        .filter(|f| f.reviewed)
        .map(|f| (f.id.clone(), f.label.clone()))
        .collect();
    let mut returned = Vec::new();
    let mut accepted = Vec::new();
    for (field, decision) in decisions {
        let Some((_, label)) = reviewed.iter().find(|(id, _)| *id == field) else {
            return refused("That item cannot be reviewed.");
        };
        if !stored.iter().any(|s| s.field == field && s.value.is_some()) {
            return refused(format!("{label}: nothing has been sent for this item yet."));
        }
        match decision {
            Decision::Accept => accepted.push((field, label.clone())),
            Decision::Return(reason) => {
                let reason = reason.trim().to_string();
                if reason.is_empty() || reason.chars().count() > 1000 {
                    return refused(format!(
                        "{label}: say why it is returned (at most 1000 characters)."
                    ));
                }
                returned.push((field, label.clone(), reason));
            }
        }
    }
    if accepted.is_empty() && returned.is_empty() {
        return refused("Choose Accept or Return for at least one item.");
    }
    let complete = returned.is_empty()
        && task.state == AWAITING_REVIEW
        && reviewed.iter().all(|(id, _)| {
            accepted.iter().any(|(a, _)| a == id)
                || stored.iter().any(|s| {
                    s.field == *id
                        && (s.review == Review::Accepted || matches!(s.value, Some(Value::Na(_))))
                })
        });
    let verdict = Verdict {
        accepted,
        returned,
        complete,
    };
    apply_review(state, staff, client, task, verdict, ip).await
}

/// What a review decided: items accepted and returned (field, label[, reason]),
/// and whether the task is now complete.
struct Verdict {
    accepted: Vec<(String, String)>,
    returned: Vec<(String, String, String)>,
    complete: bool,
}

async fn apply_review(
    state: &AppState,
    staff: &Staff,
    client: &Client,
    task: &Task,
    verdict: Verdict,
    ip: &str,
) -> TaskResult<Task> {
    let Verdict {
        accepted,
        returned,
        complete,
    } = verdict;
    let reasons: Vec<(String, String)> = returned
        .iter()
        .map(|(_, label, reason)| (label.clone(), reason.clone()))
        .collect();
    let mail = if reasons.is_empty() {
        None
    } else {
        Some(notify::returned(state, client, task, &reasons)?)
    };
    let (t, by) = (task.clone(), By::staff(staff, ip));
    state
        .db
        .write(move |tx| {
            for (field, label) in &accepted {
                repo::set_review(tx, t.id, field, "accepted", None)?;
                by.record(tx, &t, "task_item_accepted", label)?;
            }
            for (field, label, reason) in &returned {
                repo::set_review(tx, t.id, field, "returned", Some(reason))?;
                by.record(tx, &t, "task_item_returned", &format!("{label}: {reason}"))?;
            }
            if let Some(mail) = &mail {
                if t.state == AWAITING_REVIEW {
                    move_state(tx, &t, &[AWAITING_REVIEW], OPEN)?;
                }
                mail.queue(tx)?;
            } else if complete {
                move_state(tx, &t, &[AWAITING_REVIEW], COMPLETED)?;
                by.record(tx, &t, "task_completed", "every reviewed item accepted")?;
            }
            Ok::<_, TaskError>(())
        })
        .await?;
    state.mailer.wake();
    Ok(super::by_public_id(state, &task.public_id).await?)
}

/// Staff reopen a submitted or completed task with a message; the client is emailed.
pub async fn reopen(
    state: &AppState,
    staff: &Staff,
    client: &Client,
    task: &Task,
    message: &str,
    ip: &str,
) -> TaskResult<()> {
    let message = message.trim().to_string();
    if message.is_empty() || message.chars().count() > 2000 {
        return refused(
            "Write a message for the client (at most 2000 characters) saying what to change.",
        );
    }
    let from = [AWAITING_REVIEW, CHANGES_REQUESTED, COMPLETED];
    if !from.contains(&task.state.as_str()) {
        return refused("Only a submitted or completed task can be reopened.");
    }
    let mail = notify::reopened(state, client, task, &message)?;
    let (t, by) = (task.clone(), By::staff(staff, ip));
    state
        .db
        .write(move |tx| {
            move_state(tx, &t, &from, OPEN)?;
            repo::set_reopen_message(tx, t.id, &message)?;
            by.record(tx, &t, "task_reopened", &message)?;
            mail.queue(tx)?;
            Ok::<_, TaskError>(())
        })
        .await?;
    state.mailer.wake();
    Ok(())
}

/// Staff cancel a task that is not finished; the client no longer sees it.
pub async fn cancel(state: &AppState, staff: &Staff, task: &Task, ip: &str) -> TaskResult<()> {
    let from = [OPEN, AWAITING_REVIEW, CHANGES_REQUESTED];
    if !from.contains(&task.state.as_str()) {
        return refused("Only a task that is not finished can be cancelled.");
    }
    let (t, by) = (task.clone(), By::staff(staff, ip));
    state
        .db
        .write(move |tx| {
            move_state(tx, &t, &from, CANCELLED)?;
            by.record(tx, &t, "task_cancelled", &t.title)?;
            Ok::<_, TaskError>(())
        })
        .await?;
    Ok(())
}

/// Staff close an open Exchange, or mark complete a task the client submitted
/// for review (when there is nothing, or nothing more, to review item by item).
pub async fn close(state: &AppState, staff: &Staff, task: &Task, ip: &str) -> TaskResult<()> {
    let exchange = task.type_id == kinds::exchange::ID;
    let from = match task.state.as_str() {
        OPEN if exchange => OPEN,
        AWAITING_REVIEW => AWAITING_REVIEW,
        _ => return refused("Only an open conversation or a task awaiting review can be closed."),
    };
    let (t, by) = (task.clone(), By::staff(staff, ip));
    state
        .db
        .write(move |tx| {
            move_state(tx, &t, &[from], COMPLETED)?;
            by.record(tx, &t, "task_completed", "closed by the firm")?;
            Ok::<_, TaskError>(())
        })
        .await?;
    Ok(())
}

/// T3 (Extension): staff revise the settings of a task whose client asked for
/// changes, and send it back; the client is emailed.
pub async fn revise(
    state: &AppState,
    staff: &Staff,
    client: &Client,
    task: &Task,
    raw: &[(String, String)],
    ip: &str,
) -> TaskResult<()> {
    if ![OPEN, CHANGES_REQUESTED].contains(&task.state.as_str()) {
        return refused("Only an open task or one with changes requested can be revised.");
    }
    let kind = super::kind_of(state, task)?;
    let settings = parse_settings(&settings_form(kind.clone()).await?, raw)?;
    let remarks = check_settings(kind, settings.clone()).await?;
    let json = serde_json::to_string(&settings).map_err(AppError::internal)?;
    let message = "Your firm revised this task and sent it back to you.";
    let mail = notify::reopened(state, client, task, message)?;
    let (t, by) = (task.clone(), By::staff(staff, ip));
    state
        .db
        .write(move |tx| {
            repo::set_settings(tx, t.id, &json)?;
            if t.state == CHANGES_REQUESTED {
                move_state(tx, &t, &[CHANGES_REQUESTED], OPEN)?;
            }
            by.record(tx, &t, "task_settings_revised", &t.title)?;
            note_remarks(tx, &t, &by, &remarks)?;
            mail.queue(tx)?;
            Ok::<_, TaskError>(())
        })
        .await?;
    state.mailer.wake();
    let task = super::by_public_id(state, &task.public_id).await?;
    super::render(state, &task).await?;
    Ok(())
}
