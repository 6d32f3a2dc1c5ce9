//! D6 "Send Files to CPA": resumable uploads. A client creates an upload with its
//! length, sends the bytes in one or more requests (each continuing at the offset
//! the server reports), and may resume after a lost connection from the last
//! whole 64 KiB chunk the server has made durable. Nothing is visible until the
//! last byte is in; an abandoned upload is removed by housekeeping.

use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::repo::{self, Document, NewDocument, NewUpload, Upload};
use super::{DocResult, DocumentError, content, folder};
use crate::accounts::Client;
use crate::error::AppError;
use crate::ids::ClientId;
use crate::infra::audit;
use crate::infra::db::{DbError, now};
use crate::infra::storage::{BlobWriter, Progress};
use crate::infra::web::Visitor;
use crate::state::AppState;

/// Uploads untouched for this long are abandoned and removed.
pub const ABANDONED_AFTER: Duration = Duration::from_secs(24 * 3600);

pub struct NewFile<'a> {
    pub name: &'a str,
    pub folder: &'a str,
    pub mime: &'a str,
    pub length: u64,
}

fn refused(message: impl Into<String>) -> DocumentError {
    DocumentError::Refused(message.into())
}

/// Starts an upload after checking the file size, the number of files in flight
/// and the client's quota. Returns the upload's id.
pub async fn create(state: &AppState, client: &Client, file: NewFile<'_>) -> DocResult<String> {
    let limits = &state.config.documents;
    let max = limits.max_file_mb.get() * 1024 * 1024;
    if file.length == 0 {
        return Err(refused(super::empty_file_message(&folder::file_name(
            file.name,
        ))));
    }
    if file.length > max {
        return Err(refused(format!(
            "{} is too large: files can be at most {}.",
            folder::file_name(file.name),
            super::human_size(max as i64)
        )));
    }
    let name = folder::file_name(file.name);
    let folder = folder::clean(file.folder).unwrap_or_else(|| limits.upload_folders[0].clone());
    let allowed = super::upload_folders(state, client.id).await?;
    if !allowed.contains(&folder) {
        return Err(refused("Choose one of the folders offered."));
    }
    let mime = mime_guess::from_path(&name)
        .first_or_octet_stream()
        .essence_str()
        .to_string();
    let writer = state
        .store
        .create(Some(file.length))
        .map_err(|e| AppError::Internal(e.into()))?;
    let progress = writer.progress().clone();
    let blob = progress.blob.clone();
    drop(writer);
    let (client_id, quota, max_files, per_hour) = (
        client.id,
        (limits.client_quota_mb.get() * 1024 * 1024) as i64,
        limits.max_files_per_upload.get(),
        limits.uploads_per_hour,
    );
    let length = file.length as i64;
    let created = state
        .db
        .write(move |tx| {
            if let Some(wait) = repo::hourly_upload_wait(tx, client_id, per_hour)? {
                return Ok(Err(too_many_uploads(per_hour, wait)));
            }
            if repo::uploads_in_progress(tx, client_id)? >= i64::from(max_files) {
                return Ok(Err(refused(format!(
                    "At most {max_files} files can be sent at once. Wait for some to finish."
                ))));
            }
            if repo::client_usage(tx, client_id)? + length > quota {
                return Ok(Err(over_quota(quota)));
            }
            repo::record_upload_start(tx, client_id)?;
            let id = repo::insert_upload(
                tx,
                NewUpload {
                    client_id,
                    folder: &folder,
                    name: &name,
                    mime: &mime,
                    length,
                    blob: &progress.blob,
                    wrapped_key: &progress.wrapped_key,
                    nonce_prefix: &progress.nonce_prefix,
                },
            )?;
            Ok::<_, DbError>(Ok(id))
        })
        .await?;
    if created.is_err() {
        // Refused: the empty file started above goes too.
        state.store.discard(&blob);
    }
    created
}

fn over_quota(quota: i64) -> DocumentError {
    refused(format!(
        "This file would take you over your storage limit of {}. Ask the firm to make room.",
        super::human_size(quota)
    ))
}

/// The hourly limit was reached; `wait` is how many seconds until a start frees up.
fn too_many_uploads(per_hour: u32, wait: i64) -> DocumentError {
    let minutes = (wait + 59) / 60;
    DocumentError::TooMany(format!(
        "You have started sending {per_hour} files in the last hour, the most the portal accepts. \
         Please wait {} and try again.",
        crate::accounts::minutes(minutes.max(1))
    ))
}

pub async fn find(state: &AppState, client_id: ClientId, id: &str) -> DocResult<Upload> {
    let id = id.to_string();
    state
        .db
        .read(move |conn| repo::upload_for_client(conn, client_id, &id).map_err(DbError::from))
        .await?
        .ok_or(DocumentError::Internal(AppError::NotFound))
}

/// Where an upload stands: (bytes the server has, total length).
pub fn offset_of(upload: &Upload) -> (u64, u64) {
    if upload.document_id.is_some() {
        return (upload.length as u64, upload.length as u64);
    }
    let committed = (upload.chunks as u64) * crate::infra::storage::CHUNK as u64;
    (committed.min(upload.length as u64), upload.length as u64)
}

/// What a request of bytes achieved.
pub enum Appended {
    /// More is expected from this offset.
    Partial(u64),
    /// The file is complete and listed in the client's documents.
    Complete(Box<Document>),
    /// The file was already complete (an earlier reply was lost): its document id.
    AlreadyComplete(String),
}

/// Appends the bytes of one request at `offset`. A cut-off request keeps every
/// whole chunk it delivered; the client asks where to resume.
pub async fn append<S>(
    state: &AppState,
    client: &Client,
    id: &str,
    offset: u64,
    body: S,
    visitor: &Visitor,
) -> DocResult<Appended>
where
    S: Stream<Item = std::io::Result<Bytes>> + Send + Unpin + 'static,
{
    let upload = find(state, client.id, id).await?;
    let Some(_claim) = state.uploads_in_flight.claim(upload.id) else {
        return Err(refused(
            "offset mismatch: this file is already being sent by another request",
        ));
    };
    // Read again under the claim: a request that just finished may have moved it on.
    let upload = find(state, client.id, id).await?;
    if let Some(done) = upload.document_id {
        return Ok(Appended::AlreadyComplete(done));
    }
    if state.store.is_stored(&upload.blob) {
        // Stored completely before a crash or error kept it from being recorded:
        // record it now instead of failing every retry.
        return complete(
            state,
            client,
            &upload,
            &upload.blob,
            &upload.wrapped_key,
            visitor,
        )
        .await;
    }
    let (committed, length) = offset_of(&upload);
    if offset != committed {
        return Err(refused(format!(
            "offset mismatch: the server has {committed} bytes"
        )));
    }
    let progress = Progress {
        blob: upload.blob.clone(),
        wrapped_key: upload.wrapped_key.clone(),
        nonce_prefix: upload.nonce_prefix.clone(),
        chunks: upload.chunks as u32,
    };
    let writer = state
        .store
        .resume(progress, length)
        .map_err(|e| AppError::Internal(e.into()))?;
    let (writer, too_long) = write_body(writer, body, length - committed).await?;
    if too_long {
        // Keep what fits; the client learns the offset and stops.
        tracing::warn!(upload = %upload.public_id, "upload sent more bytes than announced");
    }
    if writer.accepted() == length {
        let sealed = tokio::task::spawn_blocking(move || writer.finish())
            .await
            .map_err(AppError::from)?
            .map_err(|e| AppError::Internal(e.into()))?;
        return complete(
            state,
            client,
            &upload,
            &sealed.blob,
            &sealed.wrapped_key,
            visitor,
        )
        .await;
    }
    let mut writer = writer;
    let chunks = tokio::task::spawn_blocking(move || writer.checkpoint().map(|p| p.chunks))
        .await
        .map_err(AppError::from)?
        .map_err(|e| AppError::Internal(e.into()))?;
    let upload_id = upload.id;
    state
        .db
        .write(move |tx| {
            repo::set_upload_chunks(tx, upload_id, i64::from(chunks)).map_err(DbError::from)
        })
        .await?;
    Ok(Appended::Partial(
        u64::from(chunks) * crate::infra::storage::CHUNK as u64,
    ))
}

/// Encrypts a whole stream of unknown length into the store (staff publishing).
pub async fn seal<S>(
    state: &AppState,
    body: S,
    max: u64,
) -> DocResult<crate::infra::storage::Sealed>
where
    S: Stream<Item = std::io::Result<Bytes>> + Send + Unpin + 'static,
{
    let writer = state
        .store
        .create(None)
        .map_err(|e| AppError::Internal(e.into()))?;
    let (writer, too_long) = write_body(writer, body, max.saturating_add(1)).await?;
    if too_long || writer.accepted() > max {
        writer.abort();
        return Err(refused(format!(
            "Files can be at most {}.",
            super::human_size(max as i64)
        )));
    }
    tokio::task::spawn_blocking(move || writer.finish())
        .await
        .map_err(AppError::from)?
        .map_err(|e| DocumentError::Internal(AppError::Internal(e.into())))
}

/// Feeds the body to the writer on a blocking thread, never buffering more than a
/// few network reads. Returns the writer and whether the body ran past `room`.
async fn write_body<S>(writer: BlobWriter, mut body: S, room: u64) -> DocResult<(BlobWriter, bool)>
where
    S: Stream<Item = std::io::Result<Bytes>> + Send + Unpin + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let worker = tokio::task::spawn_blocking(move || {
        let mut writer = writer;
        let mut result = Ok(());
        while let Some(bytes) = rx.blocking_recv() {
            if let Err(e) = writer.write(&bytes) {
                result = Err(e);
                break;
            }
        }
        (writer, result)
    });
    let mut left = room;
    let mut too_long = false;
    while let Some(item) = body.next().await {
        let Ok(mut bytes) = item else { break }; // connection lost: keep what arrived
        if bytes.len() as u64 > left {
            bytes.truncate(left as usize);
            too_long = true;
        }
        left -= bytes.len() as u64;
        if !bytes.is_empty() && tx.send(bytes).await.is_err() {
            break;
        }
        if too_long {
            break;
        }
    }
    drop(tx);
    let (writer, result) = worker.await.map_err(AppError::from)?;
    result.map_err(|e| AppError::Internal(e.into()))?;
    Ok((writer, too_long))
}

/// The last byte is in: the document appears, is indexed, and the firm will be
/// told (in a batch, see [`super::notify`]). Answers that the upload is complete.
async fn complete(
    state: &AppState,
    client: &Client,
    upload: &Upload,
    blob: &str,
    wrapped_key: &[u8],
    visitor: &Visitor,
) -> DocResult<Appended> {
    let (u, c, v, blob, key) = (
        upload.clone(),
        client.clone(),
        visitor.clone(),
        blob.to_string(),
        wrapped_key.to_vec(),
    );
    let doc = state
        .db
        .write(move |tx| {
            let file = ClientFile {
                folder: &u.folder,
                name: &u.name,
                mime: &u.mime,
                size: u.length,
                blob: &blob,
                wrapped_key: &key,
            };
            let doc = insert_client_file(tx, &c, file, &v)?;
            repo::finish_upload(tx, u.id, &doc.public_id)?;
            Ok::<_, DbError>(doc)
        })
        .await?;
    content::index_later(state, doc.clone());
    Ok(Appended::Complete(Box::new(doc)))
}

struct ClientFile<'a> {
    folder: &'a str,
    name: &'a str,
    mime: &'a str,
    size: i64,
    blob: &'a str,
    wrapped_key: &'a [u8],
}

/// Lists a file the client sent in its Documents, queues the staff notice and
/// audits it.
fn insert_client_file(
    tx: &rusqlite::Connection,
    client: &Client,
    f: ClientFile,
    visitor: &Visitor,
) -> rusqlite::Result<Document> {
    let doc = repo::insert(
        tx,
        NewDocument {
            client_id: client.id,
            folder: f.folder,
            name: f.name,
            mime: f.mime,
            size: f.size,
            blob: f.blob,
            wrapped_key: f.wrapped_key,
            origin: "client",
            kind: "other",
            tax_year: None,
            message: None,
            staff_id: None,
        },
    )?;
    repo::queue_upload_notice(tx, client.id, doc.id)?;
    let detail = format!("{} ({} bytes) into {}", f.name, f.size, f.folder);
    audit::record(
        tx,
        client.actor(),
        "document_uploaded",
        &doc.public_id,
        &detail,
        &visitor.ip,
    )?;
    Ok(doc)
}

/// A whole file a client sends in one request (against a task's question, or
/// with an Exchange message). The Send Files limits apply: file size, starts per
/// hour and the client's quota. The document lands in `folder`, is indexed and
/// announced to staff with the next batch; `also` runs in the same transaction
/// (to tag the document with what it was sent for).
pub async fn receive<S, F>(
    state: &AppState,
    client: &Client,
    folder: &str,
    name: &str,
    body: S,
    visitor: &Visitor,
    also: F,
) -> DocResult<Document>
where
    S: Stream<Item = std::io::Result<Bytes>> + Send + Unpin + 'static,
    F: FnOnce(&rusqlite::Connection, &Document) -> rusqlite::Result<()> + Send + 'static,
{
    let shown = folder::file_name(name);
    let folder = folder::clean(folder).ok_or_else(|| refused("That folder cannot be used."))?;
    let limits = &state.config.documents;
    let sealed = match seal(state, body, limits.max_file_mb.get() * 1024 * 1024).await {
        Ok(sealed) => sealed,
        Err(DocumentError::Refused(m)) => return Err(refused(format!("{shown}: {m}"))),
        Err(e) => return Err(e),
    };
    if sealed.len == 0 {
        let _ = state.store.remove(&sealed.blob);
        return Err(refused(super::empty_file_message(&shown)));
    }
    let mime = mime_guess::from_path(&shown)
        .first_or_octet_stream()
        .essence_str()
        .to_string();
    let quota = (limits.client_quota_mb.get() * 1024 * 1024) as i64;
    let per_hour = limits.uploads_per_hour;
    let (c, v, blob) = (client.clone(), visitor.clone(), sealed.blob.clone());
    let stored = state
        .db
        .write(move |tx| {
            if let Some(wait) = repo::hourly_upload_wait(tx, c.id, per_hour)? {
                return Ok(Err(too_many_uploads(per_hour, wait)));
            }
            let size = sealed.len as i64;
            if repo::client_usage(tx, c.id)? + size > quota {
                return Ok(Err(over_quota(quota)));
            }
            repo::record_upload_start(tx, c.id)?;
            let file = ClientFile {
                folder: &folder,
                name: &shown,
                mime: &mime,
                size,
                blob: &sealed.blob,
                wrapped_key: &sealed.wrapped_key,
            };
            let doc = insert_client_file(tx, &c, file, &v)?;
            also(tx, &doc)?;
            Ok::<_, DbError>(Ok(doc))
        })
        .await;
    match stored {
        Ok(Ok(doc)) => {
            content::index_later(state, doc.clone());
            Ok(doc)
        }
        Ok(Err(refusal)) => {
            let _ = state.store.remove(&blob);
            Err(refusal)
        }
        Err(e) => {
            let _ = state.store.remove(&blob);
            Err(e.into())
        }
    }
}

/// Cancels an upload and removes what was sent.
pub async fn cancel(state: &AppState, client_id: ClientId, id: &str) -> DocResult<()> {
    let upload = find(state, client_id, id).await?;
    let Some(_claim) = state.uploads_in_flight.claim(upload.id) else {
        return Err(refused(
            "offset mismatch: this file is being sent right now; try again in a moment",
        ));
    };
    remove(state, &upload).await
}

/// Deletes an upload's row and, unless it became a document, the file it sent.
async fn remove(state: &AppState, upload: &Upload) -> DocResult<()> {
    let row = upload.id;
    state
        .db
        .write(move |tx| repo::delete_upload(tx, row).map_err(DbError::from))
        .await?;
    // A finished file stays in Documents; only an unfinished one is removed.
    if upload.document_id.is_none() {
        state.store.discard(&upload.blob);
    }
    Ok(())
}

/// Removes uploads abandoned for a day, and unfinished files nobody owns.
pub async fn sweep(state: &AppState) -> DocResult<usize> {
    let before = now() - ABANDONED_AFTER.as_secs() as i64;
    let stale = state
        .db
        .read(move |conn| repo::stale_uploads(conn, before).map_err(DbError::from))
        .await?;
    for u in &stale {
        remove(state, u).await?;
    }
    // Files of no upload and no document: abandoned temp files after an hour,
    // stored files after a day (left by a crash between storing and recording).
    let known = state
        .db
        .read(|conn| repo::all_blobs(conn).map_err(DbError::from))
        .await?;
    let known: std::collections::HashSet<String> = known.into_iter().collect();
    let store = state.store.clone();
    let orphans = tokio::task::spawn_blocking(move || {
        store.sweep_incoming(&|name| known.contains(name), Duration::from_secs(3600))
            + store.sweep_stored(&|name| known.contains(name), ABANDONED_AFTER)
    })
    .await
    .map_err(AppError::from)?;
    Ok(stale.len() + orphans)
}
