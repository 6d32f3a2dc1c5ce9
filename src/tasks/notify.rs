//! Who hears about a task and how: the client by email (a new task, a reopened
//! one, returned items, a message from the firm), staff in the inbox and by
//! email to `mail.staff_notify` (a submission, a message from the client).
//! Emails are rendered before the transaction and queued inside it, so a task
//! change and its mail commit together.

use minijinja::context;
use rusqlite::Connection;

use super::Task;
use crate::accounts::Client;
use crate::error::AppResult;
use crate::infra::mail;
use crate::infra::render::RenderedEmail;
use crate::state::AppState;

/// The client's link to the task.
pub fn task_link(state: &AppState, task: &Task) -> String {
    format!("{}/tasks/{}", state.config.base_url(), task.public_id)
}

fn client_name(client: &Client) -> String {
    client
        .account_name
        .clone()
        .unwrap_or_else(|| client.name.clone())
}

/// A mail to the client about `task`, queued by [`queue_for_client`].
pub struct ClientMail {
    to: String,
    mail: RenderedEmail,
}

impl ClientMail {
    pub fn queue(&self, tx: &Connection) -> rusqlite::Result<()> {
        mail::queue(tx, &self.to, &self.mail)
    }
}

fn for_client(
    state: &AppState,
    client: &Client,
    template: &str,
    task: &Task,
    extra: minijinja::Value,
) -> AppResult<ClientMail> {
    let mail = state.email(
        template,
        context! {
            name => client_name(client), title => task.title.clone(),
            due => task.due_date.clone(), link => task_link(state, task), ..extra
        },
    )?;
    Ok(ClientMail {
        to: client.email.clone(),
        mail,
    })
}

/// "New task from your firm".
pub fn assigned(state: &AppState, client: &Client, task: &Task) -> AppResult<ClientMail> {
    for_client(state, client, "task_assigned", task, context! {})
}

/// The task is open again, with the firm's message.
pub fn reopened(
    state: &AppState,
    client: &Client,
    task: &Task,
    message: &str,
) -> AppResult<ClientMail> {
    for_client(state, client, "task_reopened", task, context! { message })
}

/// Items the firm returned, each with its reason.
pub fn returned(
    state: &AppState,
    client: &Client,
    task: &Task,
    items: &[(String, String)],
) -> AppResult<ClientMail> {
    let items: Vec<_> = items
        .iter()
        .map(|(label, reason)| context! { label, reason })
        .collect();
    for_client(state, client, "task_returned", task, context! { items })
}

/// A reminder of an open task's due date, `days` from today (0: today,
/// negative: past).
pub fn reminder(
    state: &AppState,
    client: &Client,
    task: &Task,
    days: i64,
) -> AppResult<ClientMail> {
    for_client(state, client, "task_reminder", task, context! { days })
}

/// A new message from the firm in an Exchange.
pub fn message_to_client(state: &AppState, client: &Client, task: &Task) -> AppResult<ClientMail> {
    for_client(state, client, "task_message", task, context! {})
}

/// What staff are told, in the inbox and by email.
pub struct StaffNotice {
    recipients: Vec<String>,
    mail: RenderedEmail,
    link: String,
}

/// `what` is `submitted` or `message`.
pub async fn staff_notice(
    state: &AppState,
    client: &Client,
    task: &Task,
    what: &str,
    summary: &str,
) -> AppResult<StaffNotice> {
    let recipients = crate::documents::notify::staff_recipients(state).await?;
    let link = format!("/staff/tasks/{}", task.public_id);
    let mail = state.email(
        "task_staff_notice",
        context! {
            client => client.name.clone(), title => task.title.clone(), what, summary,
            link => format!("{}{link}", state.config.base_url()),
        },
    )?;
    Ok(StaffNotice {
        recipients,
        mail,
        link,
    })
}

impl StaffNotice {
    pub fn queue(&self, tx: &Connection) -> rusqlite::Result<()> {
        crate::documents::notify::add_staff_notification(tx, &self.mail.subject, &self.link)?;
        for to in &self.recipients {
            mail::queue(tx, to, &self.mail)?;
        }
        Ok(())
    }
}
