//! D7 staff publish documents to a client's portal; F3 the uploads inbox and
//! "saved to firm files"; D6 a client renames or deletes its own upload.

use minijinja::context;

use super::repo::{self, Document, NewDocument, Notification};
use super::{DocResult, DocumentError, content, folder};
use crate::accounts::Client;
use crate::error::AppResult;
use crate::firm::Staff;
use crate::ids::DocumentId;
use crate::infra::audit::{self, Actor};
use crate::infra::db::DbError;
use crate::infra::mail;
use crate::infra::storage::Sealed;
use crate::state::AppState;

/// What staff fill in when publishing (the files themselves are already sealed).
pub struct Publication<'a> {
    pub folder: &'a str,
    pub message: &'a str,
    /// "return" for a tax return (kept until next year's, see retention), else "other".
    pub kind: &'a str,
    pub tax_year: Option<i64>,
}

/// One received file: its name as uploaded and the sealed content.
pub struct Received {
    pub name: String,
    pub sealed: Sealed,
}

pub fn check_publication(p: &Publication) -> DocResult<String> {
    let folder = folder::clean(p.folder)
        .ok_or_else(|| DocumentError::Refused("Enter a folder such as 2025 / Returns.".into()))?;
    if p.message.chars().count() > 4000 {
        return Err(DocumentError::Refused(
            "The message can be at most 4000 characters.".into(),
        ));
    }
    if !matches!(p.kind, "return" | "other") {
        return Err(DocumentError::Refused(
            "Choose what kind of document this is.".into(),
        ));
    }
    if p.kind == "return" && p.tax_year.is_none() {
        return Err(DocumentError::Refused(
            "Enter the tax year of the return.".into(),
        ));
    }
    Ok(folder)
}

/// Lists the files in the client's portal and emails the client that documents
/// are waiting. On a refusal the caller removes the sealed files.
pub async fn publish(
    state: &AppState,
    staff: &Staff,
    client: &Client,
    p: Publication<'_>,
    files: Vec<Received>,
    ip: &str,
) -> DocResult<Vec<Document>> {
    let folder = check_publication(&p)?;
    if files.is_empty() {
        return Err(DocumentError::Refused(
            "Choose at least one file to publish.".into(),
        ));
    }
    let link = format!("{}/documents", state.config.base_url());
    let names: Vec<String> = files.iter().map(|f| folder::file_name(&f.name)).collect();
    let notice = state.email(
        "documents_published",
        context! { name => client.account_name.clone().unwrap_or_else(|| client.name.clone()), count => files.len(), names => names.clone(), folder => folder.clone(), link, has_message => !p.message.trim().is_empty() },
    )?;
    store_published(state, staff, client, p, files, ip, Some(notice)).await
}

/// Like [`publish`], without the "new documents" email: for files that reach
/// the client with a notice of their own (a reply in a task's Exchange).
pub async fn publish_quietly(
    state: &AppState,
    staff: &Staff,
    client: &Client,
    p: Publication<'_>,
    files: Vec<Received>,
    ip: &str,
) -> DocResult<Vec<Document>> {
    store_published(state, staff, client, p, files, ip, None).await
}

async fn store_published(
    state: &AppState,
    staff: &Staff,
    client: &Client,
    p: Publication<'_>,
    files: Vec<Received>,
    ip: &str,
    notice: Option<crate::infra::render::RenderedEmail>,
) -> DocResult<Vec<Document>> {
    let folder = check_publication(&p)?;
    let names: Vec<String> = files.iter().map(|f| folder::file_name(&f.name)).collect();
    let message = p.message.trim().to_string();
    let (kind, tax_year) = (p.kind.to_string(), p.tax_year);
    let (c, s, ip) = (client.clone(), staff.clone(), ip.to_string());
    let docs = state
        .write_and_mail(move |tx| {
            let mut docs = Vec::new();
            for (f, name) in files.iter().zip(&names) {
                let mime = mime_guess::from_path(name)
                    .first_or_octet_stream()
                    .essence_str()
                    .to_string();
                let doc = repo::insert(
                    tx,
                    NewDocument {
                        client_id: c.id,
                        folder: &folder,
                        name,
                        mime: &mime,
                        size: f.sealed.len as i64,
                        blob: &f.sealed.blob,
                        wrapped_key: &f.sealed.wrapped_key,
                        origin: "firm",
                        kind: &kind,
                        tax_year,
                        message: (!message.is_empty()).then_some(message.as_str()),
                        staff_id: Some(s.id),
                    },
                )?;
                let detail = format!("{name} into {folder} for {}", c.public_id);
                audit::record(
                    tx,
                    s.actor(),
                    "document_published",
                    &doc.public_id,
                    &detail,
                    &ip,
                )?;
                docs.push(doc);
            }
            if let Some(notice) = &notice {
                mail::queue(tx, &c.email, notice)?;
            }
            Ok::<_, DbError>(docs)
        })
        .await?;
    // The documents are published whatever happens to indexing; a miss is repaired
    // by the index check at start or by `portal reindex`.
    if let Err(e) = content::index(state, &docs).await {
        tracing::warn!(error = %e, "published documents could not be indexed for search");
    }
    Ok(docs)
}

/// Client uploads not yet saved by the firm, with the client's name.
pub async fn inbox(state: &AppState) -> AppResult<Vec<(Document, String)>> {
    Ok(state
        .db
        .read(|conn| repo::inbox(conn).map_err(DbError::from))
        .await?)
}

/// Staff mark a client's upload as saved to the firm's own files (retention counts from here).
pub async fn mark_saved(
    state: &AppState,
    staff: &Staff,
    doc: &Document,
    ip: &str,
) -> AppResult<()> {
    let (id, public, s, ip) = (
        doc.id,
        doc.public_id.clone(),
        staff.public_id.clone(),
        ip.to_string(),
    );
    Ok(state
        .db
        .write(move |tx| {
            if repo::mark_saved(tx, id)? {
                audit::record(tx, Actor::Staff(s), "document_saved", &public, "", &ip)?;
            }
            Ok::<_, DbError>(())
        })
        .await?)
}

pub async fn notifications(state: &AppState) -> AppResult<Vec<Notification>> {
    Ok(state
        .db
        .read(|conn| repo::recent_notifications(conn, 20).map_err(DbError::from))
        .await?)
}

pub async fn unread_notifications(state: &AppState) -> AppResult<i64> {
    Ok(state
        .db
        .read(|conn| {
            conn.query_row(
                "SELECT count(*) FROM staff_notifications WHERE read_at IS NULL",
                [],
                |r| r.get(0),
            )
            .map_err(DbError::from)
        })
        .await?)
}

/// Marks read the notifications up to `up_to`, the newest one the staff member saw
/// (so one that arrived after the page was shown stays unread).
pub async fn mark_notifications_read(state: &AppState, up_to: i64) -> AppResult<()> {
    Ok(state
        .db
        .write(move |tx| repo::mark_notifications_read(tx, up_to).map_err(DbError::from))
        .await?)
}

/// Marks one notification read and returns where it points.
pub async fn open_notification(state: &AppState, id: i64) -> AppResult<String> {
    state
        .db
        .write(move |tx| repo::open_notification(tx, id).map_err(DbError::from))
        .await?
        .ok_or(crate::error::AppError::NotFound)
}

/// Audits opening a document's preview page (its bytes are audited by
/// [`super::delivery::deliver`]), and marks it as viewed by the client.
pub async fn record_access(
    state: &AppState,
    doc: &Document,
    actor: Actor,
    event: &'static str,
    ip: &str,
) -> AppResult<()> {
    let (id, public, ip) = (doc.id, doc.public_id.clone(), ip.to_string());
    Ok(state
        .db
        .write(move |tx| {
            note_access(tx, id, &actor)?;
            audit::record(tx, actor, event, &public, "", &ip).map_err(DbError::from)
        })
        .await?)
}

/// In the caller's transaction, beside the audit entry of an access to document
/// `id`: marks a client's first access (the document is then "Viewed").
pub(super) fn note_access(
    conn: &rusqlite::Connection,
    id: DocumentId,
    actor: &Actor,
) -> rusqlite::Result<()> {
    if matches!(actor, Actor::Client(_)) {
        repo::mark_viewed(conn, id)?;
    }
    Ok(())
}

fn saved_meanwhile() -> DocumentError {
    DocumentError::Refused(
        "The firm has already saved this file, so it can no longer be changed here. Contact the firm.".into(),
    )
}

fn own_upload(doc: &Document) -> DocResult<()> {
    if doc.origin != "client" {
        return Err(DocumentError::Refused(
            "Only files you sent can be renamed or deleted.".into(),
        ));
    }
    if doc.saved_at.is_some() {
        return Err(DocumentError::Refused(
            "The firm has already saved this file, so it can no longer be changed here. Contact the firm.".into(),
        ));
    }
    Ok(())
}

/// A client deletes a file it sent by mistake (until the firm saved it).
pub async fn delete_own(
    state: &AppState,
    client: &Client,
    doc: &Document,
    ip: &str,
) -> DocResult<()> {
    own_upload(doc)?;
    let (id, public, name, c, ip) = (
        doc.id,
        doc.public_id.clone(),
        doc.name.clone(),
        client.public_id.clone(),
        ip.to_string(),
    );
    state
        .db
        .write(move |tx| {
            if !repo::delete_unsaved_upload(tx, id)? {
                return Ok(Err(saved_meanwhile()));
            }
            audit::record(
                tx,
                Actor::Client(c),
                "document_deleted",
                &public,
                &name,
                &ip,
            )?;
            Ok::<_, DbError>(Ok(()))
        })
        .await??;
    if let Err(e) = state.store.remove(&doc.blob) {
        tracing::error!(error = %e, "a deleted document's file could not be removed");
    }
    content::unindex(state, vec![doc.public_id.clone()]).await?;
    Ok(())
}

/// A client renames a file it sent (until the firm saved it).
pub async fn rename_own(
    state: &AppState,
    client: &Client,
    doc: &Document,
    new_name: &str,
    ip: &str,
) -> DocResult<()> {
    own_upload(doc)?;
    if new_name.trim().is_empty() {
        return Err(DocumentError::Refused("Enter a name.".into()));
    }
    let name = folder::file_name(new_name);
    let (id, public, c, ip, n) = (
        doc.id,
        doc.public_id.clone(),
        client.public_id.clone(),
        ip.to_string(),
        name.clone(),
    );
    state
        .db
        .write(move |tx| {
            if !repo::rename_unsaved_upload(tx, id, &n)? {
                return Ok(Err(saved_meanwhile()));
            }
            audit::record(tx, Actor::Client(c), "document_renamed", &public, &n, &ip)?;
            Ok::<_, DbError>(Ok(()))
        })
        .await??;
    let mut renamed = doc.clone();
    renamed.name = name;
    content::index(state, &[renamed])
        .await
        .map_err(DocumentError::from)?;
    Ok(())
}
