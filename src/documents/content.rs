//! Reading stored documents: byte ranges streamed without holding the file in
//! memory, the text inside PDFs (read by a limited child process, see
//! `infra::extract`), and keeping the search index up to date.

use std::path::PathBuf;

use bytes::Bytes;
use futures_util::Stream;

use super::repo::{self, Document};
use crate::error::{AppError, AppResult};
use crate::infra::db::DbError;
use crate::infra::extract::{self, Failure, Limits};
use crate::infra::search::Entry;
use crate::infra::storage::StoreError;
use crate::state::AppState;

/// Streams plaintext bytes `start..end` of a document. Decryption runs on a
/// blocking thread a few chunks ahead of the network; an integrity failure ends
/// the stream with an error (and is logged), never with wrong bytes. Only
/// [`super::delivery::deliver`] calls it, so every access is audited.
pub(super) fn stream_range(
    state: &AppState,
    doc: &Document,
    start: u64,
    end: u64,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    let store = state.store.clone();
    let (blob, key, id, size) = (
        doc.blob.clone(),
        doc.wrapped_key.clone(),
        doc.public_id.clone(),
        doc.size as u64,
    );
    tokio::task::spawn_blocking(move || {
        // Each chunk is decrypted into its own buffer and handed over without a copy.
        let result = store.open_blob(&blob, &key).and_then(|mut reader| {
            if reader.len() != size {
                return Err(StoreError::Integrity);
            }
            let chunk = crate::infra::storage::CHUNK as u64;
            let end = end.min(reader.len());
            let mut pos = start;
            while pos < end {
                let index = pos / chunk;
                let mut buf = Vec::with_capacity(chunk as usize + 16);
                reader.read_chunk(index, &mut buf)?;
                let from = (pos - index * chunk) as usize;
                let to = ((end - index * chunk) as usize).min(buf.len());
                tx.blocking_send(Ok(Bytes::from(buf).slice(from..to)))
                    .map_err(|_| {
                        StoreError::Io(std::io::Error::new(
                            std::io::ErrorKind::BrokenPipe,
                            "client went away",
                        ))
                    })?;
                pos = index * chunk + to as u64;
            }
            Ok(())
        });
        match result {
            Ok(()) => {}
            Err(StoreError::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            Err(e) => {
                tracing::error!(document = %id, error = %e, "document could not be read");
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

/// Checks a stored document decrypts and authenticates in full (before a download
/// starts, for small files; large files are checked chunk by chunk as they stream).
pub async fn read_all(state: &AppState, doc: &Document) -> AppResult<Vec<u8>> {
    let store = state.store.clone();
    let (blob, key, size) = (doc.blob.clone(), doc.wrapped_key.clone(), doc.size as u64);
    tokio::task::spawn_blocking(move || {
        let mut reader = store.open_blob(&blob, &key)?;
        if reader.len() != size {
            return Err(StoreError::Integrity);
        }
        reader.read_all()
    })
    .await?
    .map_err(|e| AppError::Internal(e.into()))
}

fn wants_text(state: &AppState, doc: &Document) -> bool {
    state.config.documents.index_text
        && doc.mime == "application/pdf"
        && (doc.size as u64) <= state.config.documents.index_text_max_mb * 1024 * 1024
}

/// The text to index for `doc`: the text inside it if it is a PDF whose text can
/// be read within the limits, else nothing (it is then found by name, folder and
/// message). A PDF whose reading failed or was cut short by the process dying is
/// not read again.
async fn text_of(state: &AppState, doc: &Document) -> AppResult<String> {
    if !wants_text(state, doc) {
        return Ok(String::new());
    }
    // One at a time: each extraction may use `documents.extract_memory_mb`.
    let _slot = state.indexing.acquire().await.map_err(AppError::internal)?;
    let id = doc.id;
    let earlier = state
        .db
        .read(move |conn| repo::extraction(conn, id).map_err(DbError::from))
        .await?;
    if let Some((status, reason)) = earlier.filter(|(status, _)| status != "done") {
        let reason = reason.unwrap_or_else(|| "the process stopped while reading it".into());
        tracing::warn!(document = %doc.public_id, %status, %reason, "not reading this PDF's text again; it is searchable by name, folder and message only");
        return Ok(String::new());
    }
    let bytes = match read_all(state, doc).await {
        Ok(bytes) => bytes,
        // One damaged file must not stop the indexing of every other.
        Err(e) => {
            tracing::error!(document = %doc.public_id, error = %e, "the stored file could not be read; indexing it without its text");
            return Ok(String::new());
        }
    };
    state
        .db
        .write(move |tx| repo::begin_extraction(tx, id).map_err(DbError::from))
        .await?;
    let result = match extractor(state) {
        Ok(program) => extract::pdf_text(&program, bytes, extract_limits(state)).await,
        Err(e) => Err(Failure::Extractor(e)),
    };
    record_extraction(state, doc, result).await
}

/// Settles the attempt in the database; the text, or nothing if there is none.
async fn record_extraction(
    state: &AppState,
    doc: &Document,
    result: Result<String, Failure>,
) -> AppResult<String> {
    let id = doc.id;
    let (text, failure) = match result {
        Ok(text) => (text, None),
        Err(Failure::Document(reason)) => {
            tracing::warn!(document = %doc.public_id, %reason, "PDF text could not be read; the document is searchable by name, folder and message only");
            (String::new(), Some(reason))
        }
        Err(e @ Failure::Extractor(_)) => {
            tracing::error!(document = %doc.public_id, error = %e, "PDF text was not read; it is tried again by `portal reindex`");
            state
                .db
                .write(move |tx| repo::forget_extraction(tx, Some(id)).map_err(DbError::from))
                .await?;
            return Ok(String::new());
        }
    };
    state
        .db
        .write(move |tx| repo::finish_extraction(tx, id, failure.as_deref()).map_err(DbError::from))
        .await?;
    Ok(text)
}

/// The program run as `<program> extract-text`: `documents.extract_program`, or
/// this very program.
fn extractor(state: &AppState) -> std::io::Result<PathBuf> {
    match state.config.documents.extract_program.as_str() {
        "" => extract::this_program(),
        path => Ok(PathBuf::from(path)),
    }
}

fn extract_limits(state: &AppState) -> Limits {
    Limits {
        memory_mb: state.config.documents.extract_memory_mb,
        seconds: state.config.documents.extract_seconds,
    }
}

/// Adds (or refreshes) documents in the search index, with their PDF text.
pub async fn index(state: &AppState, docs: &[Document]) -> AppResult<()> {
    let mut texts = Vec::with_capacity(docs.len());
    for doc in docs {
        texts.push(text_of(state, doc).await?);
    }
    let search = state.search.clone();
    let owned: Vec<(Document, String)> = docs.iter().cloned().zip(texts).collect();
    tokio::task::spawn_blocking(move || {
        let entries: Vec<Entry> = owned
            .iter()
            .map(|(d, text)| Entry {
                id: &d.public_id,
                owner: d.client_id.0,
                name: &d.name,
                folder: &d.folder,
                message: d.message.as_deref().unwrap_or(""),
                content: text,
            })
            .collect();
        search.upsert(&entries)
    })
    .await?
    .map_err(AppError::Internal)
}

/// Indexes a client's upload in the background: reading a PDF's text takes
/// time the upload's reply should not wait for.
pub fn index_later(state: &AppState, doc: Document) {
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(e) = index(&state, std::slice::from_ref(&doc)).await {
            tracing::warn!(document = %doc.public_id, error = %e, "an upload could not be indexed; it is added at the next start or by `portal reindex`");
        }
    });
}

pub async fn unindex(state: &AppState, ids: Vec<String>) -> AppResult<()> {
    let search = state.search.clone();
    tokio::task::spawn_blocking(move || search.remove(&ids))
        .await?
        .map_err(AppError::Internal)
}

/// Rebuilds the whole index from the database and the content store
/// (`portal reindex`). Returns how many documents were indexed.
pub async fn reindex(state: &AppState) -> AppResult<usize> {
    let docs = state
        .db
        .read(|conn| repo::all(conn).map_err(DbError::from))
        .await?;
    let search = state.search.clone();
    tokio::task::spawn_blocking(move || search.clear())
        .await?
        .map_err(AppError::Internal)?;
    for batch in docs.chunks(200) {
        index(state, batch).await?;
    }
    Ok(docs.len())
}

/// Lets the next indexing read again the PDFs whose text could not be read
/// (`portal reindex --retry-failed`). Returns how many there are.
pub async fn retry_failed_extractions(state: &AppState) -> AppResult<usize> {
    Ok(state
        .db
        .write(|tx| repo::forget_extraction(tx, None).map_err(DbError::from))
        .await?)
}

/// Rebuilds the index if it does not hold exactly the documents in the database
/// (a crash between a commit and its indexing, or a lost index). Run at start.
pub async fn repair(state: &AppState) -> AppResult<Option<usize>> {
    let in_db: i64 = state
        .db
        .read(|conn| {
            conn.query_row("SELECT count(*) FROM documents", [], |r| r.get(0))
                .map_err(DbError::from)
        })
        .await?;
    if state.search.count() == in_db as u64 {
        return Ok(None);
    }
    tracing::warn!(
        documents = in_db,
        indexed = state.search.count(),
        "the search index is out of date; rebuilding it"
    );
    Ok(Some(reindex(state).await?))
}
