//! Staff hear about client uploads in batches. A finished upload queues a notice
//! (in the same transaction as the document); `mail.staff_notify_batch_minutes`
//! after a client's first waiting notice, one email per staff member lists every
//! file that client sent meanwhile, and one notification appears in the inbox.
//! Notices live in the database, so a restart delays them but loses none.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use minijinja::context;

use super::repo::{self, UploadNotice};
use crate::error::{AppError, AppResult};
use crate::ids::ClientId;
use crate::infra::db::{DbError, now};
use crate::infra::mail;
use crate::state::AppState;

/// The longest the job sleeps between looks at the waiting notices.
const MAX_PAUSE: Duration = Duration::from_secs(60);
/// At most this many file names are listed in one email (then "and N more").
const LISTED: usize = 50;

/// Sends every batch that is due; returns how many batches (clients) were announced.
pub async fn flush_due(state: &AppState) -> AppResult<usize> {
    let due = now() - window(state);
    // Most passes find nothing due: a read says so without the staff list or the writer.
    let waiting = state
        .db
        .read(move |conn| repo::due_upload_notices(conn, due).map_err(DbError::from))
        .await?;
    if waiting.is_empty() {
        return Ok(0);
    }
    let recipients = staff_recipients(state).await?;
    let st = state.clone();
    let sent = state
        .db
        .write(move |tx| {
            let batches = batches(repo::due_upload_notices(tx, due)?);
            for batch in &batches {
                let mail = st.email("upload_received", batch.email_context())?;
                repo::delete_upload_notices(tx, &batch.ids)?;
                repo::notify_staff(
                    tx,
                    &mail.subject,
                    &format!("/staff/clients/{}", batch.client_public_id),
                )?;
                for to in &recipients {
                    mail::queue(tx, to, &mail)?;
                }
            }
            Ok::<_, AppError>(batches.len())
        })
        .await?;
    if sent > 0 {
        state.mailer.wake();
    }
    Ok(sent)
}

/// Runs until `shutdown`, sending batches as they fall due (within a minute).
pub async fn run(state: AppState, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        let pause = match flush_due(&state).await {
            Ok(_) => next_pause(&state).await,
            Err(e) => {
                tracing::error!(error = %e, "staff upload notices could not be sent; will retry");
                MAX_PAUSE
            }
        };
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

fn window(state: &AppState) -> i64 {
    i64::from(state.config.mail.staff_notify_batch_minutes) * 60
}

/// Until the oldest waiting notice falls due, between one second and a minute.
async fn next_pause(state: &AppState) -> Duration {
    let oldest = state
        .db
        .read(|conn| repo::oldest_upload_notice(conn).map_err(DbError::from))
        .await;
    match oldest {
        Ok(Some(t)) => {
            let wait = (t + window(state) - now()).clamp(1, MAX_PAUSE.as_secs() as i64);
            Duration::from_secs(wait as u64)
        }
        _ => MAX_PAUSE,
    }
}

/// Who is emailed about client uploads (and tasks): `mail.staff_notify`, else
/// every active staff member.
pub async fn staff_recipients(state: &AppState) -> AppResult<Vec<String>> {
    if !state.config.mail.staff_notify.is_empty() {
        return Ok(state.config.mail.staff_notify.clone());
    }
    let staff = crate::firm::list_staff(state)
        .await
        .map_err(|e| AppError::internal(anyhow::anyhow!("{e}")))?;
    Ok(staff
        .into_iter()
        .filter(|s| s.disabled_at.is_none())
        .map(|s| s.email)
        .collect())
}

/// Adds a notification to the staff inbox inside the caller's transaction (for
/// other capabilities' news, such as a submitted task).
pub fn add_staff_notification(
    tx: &rusqlite::Connection,
    text: &str,
    link: &str,
) -> rusqlite::Result<()> {
    repo::notify_staff(tx, text, link)
}

/// One client's waiting notices.
struct Batch {
    client_name: String,
    client_public_id: String,
    ids: Vec<i64>,
    files: Vec<(String, String)>,
}

impl Batch {
    fn email_context(&self) -> minijinja::Value {
        let files: Vec<_> = self
            .files
            .iter()
            .take(LISTED)
            .map(|(name, folder)| context! { name, folder })
            .collect();
        context! {
            client => self.client_name.clone(),
            count => self.files.len(),
            files,
            more => self.files.len().saturating_sub(LISTED),
        }
    }
}

fn batches(notices: Vec<UploadNotice>) -> Vec<Batch> {
    let mut by_client: BTreeMap<ClientId, Batch> = BTreeMap::new();
    for n in notices {
        let batch = by_client.entry(n.client_id).or_insert_with(|| Batch {
            client_name: n.client_name.clone(),
            client_public_id: n.client_public_id.clone(),
            ids: Vec::new(),
            files: Vec::new(),
        });
        batch.ids.push(n.id);
        batch.files.push((n.name, n.folder));
    }
    by_client.into_values().collect()
}
