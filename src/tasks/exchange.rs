//! Exchange (T1, built in): the thread of messages between the client and the
//! firm, with attachments that land in the client's Documents. A new message
//! tells the other side: the client by email, staff in the inbox and by email.

use super::flow::By;
use super::kinds::exchange::ID;
use super::{Task, TaskError, TaskResult, notify, refused, repo};
use crate::accounts::Client;
use crate::documents::publish::{self, Publication, Received};
use crate::firm::Staff;
use crate::ids::DocumentId;
use crate::state::AppState;

pub const MAX_MESSAGE: usize = 10_000;
/// A client may post this many messages an hour (each one emails the firm).
pub const CLIENT_MESSAGES_PER_HOUR: u32 = 30;

/// Whether a message may be posted to `task` now.
pub fn check_open(task: &Task) -> TaskResult<()> {
    if task.type_id != ID {
        return refused("Messages belong to an Exchange task.");
    }
    if task.state != super::state::OPEN {
        return refused("This conversation is closed. Your firm can reopen it.");
    }
    Ok(())
}

pub fn check_body(body: &str) -> TaskResult<()> {
    if body.chars().count() > MAX_MESSAGE {
        return refused(format!(
            "Keep a message to at most {MAX_MESSAGE} characters."
        ));
    }
    Ok(())
}

/// Files staff attach to a reply: published into the client's Documents
/// (without the "new documents" email: the reply's own email tells the client)
/// and tagged with the task. On a refusal the caller removes the sealed files.
pub async fn staff_attach(
    state: &AppState,
    staff: &Staff,
    client: &Client,
    task: &Task,
    files: Vec<Received>,
    ip: &str,
) -> TaskResult<Vec<DocumentId>> {
    check_open(task)?;
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let folder = format!("{} / Tasks", task.tax_year);
    let publication = Publication {
        folder: &folder,
        message: "",
        kind: "other",
        tax_year: Some(task.tax_year),
    };
    let docs = publish::publish_quietly(state, staff, client, publication, files, ip).await?;
    let (id, ids): (_, Vec<DocumentId>) = (task.id, docs.iter().map(|d| d.id).collect());
    let linked = ids.clone();
    state
        .db
        .write(move |tx| {
            for d in &linked {
                repo::link_file(tx, *d, id, None, None)?;
            }
            Ok::<_, crate::infra::db::DbError>(())
        })
        .await?;
    Ok(ids)
}

/// Counts a client's message against the hourly limit (each one emails the
/// firm); called before anything of the message, its files included, is stored.
pub fn allow_client_message(state: &AppState, client: &Client) -> TaskResult<()> {
    let key = format!("task-messages:{}", client.public_id);
    let hour = std::time::Duration::from_secs(3600);
    if state.limiter.allow(&key, CLIENT_MESSAGES_PER_HOUR, hour) {
        return Ok(());
    }
    refused(format!(
        "You have sent {CLIENT_MESSAGES_PER_HOUR} messages in the last hour, the most the portal accepts. \
         Please wait a while, or call the firm."
    ))
}

/// Who posts a message.
pub enum Author<'a> {
    Client(&'a Client),
    Staff(&'a Staff),
}

/// Posts a message (with the attachments already stored) and tells the other side.
pub async fn post(
    state: &AppState,
    author: Author<'_>,
    client: &Client,
    task: &Task,
    body: &str,
    attachments: Vec<DocumentId>,
    ip: &str,
) -> TaskResult<()> {
    check_open(task)?;
    let body = body.trim().to_string();
    check_body(&body)?;
    if body.is_empty() && attachments.is_empty() {
        return refused("Write a message or attach a file.");
    }
    let (by, staff_id, to_client, to_staff) = match author {
        Author::Client(c) => (
            By::client(c, ip),
            None,
            None,
            Some(notify::staff_notice(state, client, task, "message", "").await?),
        ),
        Author::Staff(s) => (
            By::staff(s, ip),
            Some(s.id),
            Some(notify::message_to_client(state, client, task)?),
            None,
        ),
    };
    let t = task.clone();
    state
        .db
        .write(move |tx| {
            let message = repo::add_message(tx, t.id, staff_id, &body)?;
            repo::attach_to_message(tx, t.id, message, &attachments)?;
            let detail = format!(
                "{} characters, {} file(s)",
                body.chars().count(),
                attachments.len()
            );
            by.record(tx, &t, "task_message_posted", &detail)?;
            if let Some(mail) = &to_client {
                mail.queue(tx)?;
            }
            if let Some(notice) = &to_staff {
                notice.queue(tx)?;
            }
            Ok::<_, TaskError>(())
        })
        .await?;
    state.mailer.wake();
    Ok(())
}
