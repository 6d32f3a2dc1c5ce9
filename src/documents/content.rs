//! Reading stored documents: byte ranges streamed without holding the file in
//! memory, the text inside PDFs, and keeping the search index up to date.

use bytes::Bytes;
use futures_util::Stream;

use super::repo::{self, Document};
use crate::error::{AppError, AppResult};
use crate::infra::db::DbError;
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

/// The text inside a PDF, or an empty string for anything else or a PDF that
/// cannot be read (PDF parsers can panic on hostile files: that is contained).
pub fn pdf_text(bytes: &[u8]) -> String {
    let result = std::panic::catch_unwind(|| pdf_extract::extract_text_from_mem(bytes));
    match result {
        Ok(Ok(text)) => text.chars().take(2_000_000).collect(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "PDF text could not be extracted; indexing the name only");
            String::new()
        }
        Err(_) => {
            tracing::warn!(
                "PDF text extraction failed on a malformed file; indexing the name only"
            );
            String::new()
        }
    }
}

fn wants_text(state: &AppState, doc: &Document) -> bool {
    state.config.documents.index_text
        && doc.mime == "application/pdf"
        && (doc.size as u64) <= state.config.documents.index_text_max_mb * 1024 * 1024
}

/// Adds (or refreshes) documents in the search index, with their PDF text.
pub async fn index(state: &AppState, docs: &[Document]) -> AppResult<()> {
    let mut texts = Vec::with_capacity(docs.len());
    for doc in docs {
        let text = if wants_text(state, doc) {
            let bytes = read_all(state, doc).await?;
            tokio::task::spawn_blocking(move || pdf_text(&bytes)).await?
        } else {
            String::new()
        };
        texts.push(text);
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

/// Indexes a client's upload in the background, one at a time: reading a PDF's
/// text takes memory and time the upload's reply should not wait for.
pub fn index_later(state: &AppState, doc: Document) {
    let state = state.clone();
    tokio::spawn(async move {
        let Ok(_slot) = state.indexing.acquire().await else {
            return;
        };
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
