//! D9 portal maintenance: removes client uploads some days after the firm saved
//! them, unpublishes old firm documents, and keeps tax returns until the next
//! year's return is published. Each removal is one transaction (the row and its
//! audit entry) before the file is deleted, so a client never sees half a
//! document; every removal is logged.

use super::content;
use super::repo::{self, Document};
use crate::error::AppResult;
use crate::infra::audit::{self, Actor};
use crate::infra::db::{DbError, now};
use crate::state::AppState;

/// Why a document is due for removal, if it is.
pub fn due(state: &AppState, doc: &Document, all: &[Document], at: i64) -> Option<String> {
    let r = &state.config.retention;
    let days = |n: u32| i64::from(n) * 24 * 3600;
    if doc.signature_status.as_deref() == Some("awaiting") {
        return None; // never take away a document the client still has to sign
    }
    match doc.origin.as_str() {
        "client" => {
            let saved = doc.saved_at?;
            (r.remove_saved_uploads_after_days > 0
                && saved + days(r.remove_saved_uploads_after_days) <= at)
                .then(|| {
                    format!(
                        "upload saved by the firm more than {} days ago",
                        r.remove_saved_uploads_after_days
                    )
                })
        }
        _ if doc.kind == "return" && r.keep_returns_until_next_year => {
            let year = doc.tax_year?;
            // Superseded by a later year's return published after it (an amended
            // or late return of an earlier year published later stays).
            let newer = all.iter().any(|d| {
                d.client_id == doc.client_id
                    && d.origin == "firm"
                    && d.kind == "return"
                    && d.tax_year.is_some_and(|y| y > year)
                    && d.created_at >= doc.created_at
            });
            newer.then(|| {
                format!(
                    "the {} return was superseded by a later year's return",
                    year
                )
            })
        }
        _ => (r.unpublish_after_days > 0 && doc.created_at + days(r.unpublish_after_days) <= at)
            .then(|| format!("published more than {} days ago", r.unpublish_after_days)),
    }
}

/// One maintenance pass; returns how many documents were removed.
pub async fn run(state: &AppState) -> AppResult<usize> {
    let all = state
        .db
        .read(|conn| repo::all(conn).map_err(DbError::from))
        .await?;
    let at = now();
    let due: Vec<(Document, String)> = all
        .iter()
        .filter_map(|d| due(state, d, &all, at).map(|why| (d.clone(), why)))
        .collect();
    for (doc, why) in &due {
        let (id, public, detail) = (
            doc.id,
            doc.public_id.clone(),
            format!("{}: {}", doc.name, why),
        );
        state
            .db
            .write(move |tx| {
                repo::delete(tx, id)?;
                audit::record(tx, Actor::System, "document_removed", &public, &detail, "")?;
                Ok::<_, DbError>(())
            })
            .await?;
        tracing::info!(document = %doc.public_id, reason = %why, "retention removed a document");
        if let Err(e) = state.store.remove(&doc.blob) {
            tracing::error!(document = %doc.public_id, error = %e, "retention could not delete the file");
        }
    }
    if !due.is_empty() {
        content::unindex(
            state,
            due.iter().map(|(d, _)| d.public_id.clone()).collect(),
        )
        .await?;
    }
    Ok(due.len())
}
