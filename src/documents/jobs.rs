//! This capability's background jobs (listed in `app::jobs`). Each runs one pass
//! and logs what it did; the scheduler decides when.

use super::{content, retention, upload};
use crate::state::AppState;

/// Removes uploads abandoned for a day, and unfinished files nobody owns.
pub async fn sweep_uploads(state: AppState) {
    if let Err(e) = upload::sweep(&state).await {
        tracing::warn!(error = ?e, "removing abandoned uploads failed");
    }
    let before = crate::infra::db::now() - super::delivery::RANGE_AUDIT_WINDOW;
    let forgotten = state
        .db
        .write(move |tx| {
            super::repo::forget_audited_before(tx, before).map_err(crate::infra::db::DbError::from)
        })
        .await;
    if let Err(e) = forgotten {
        tracing::warn!(error = %e, "forgetting old document access marks failed");
    }
}

/// Document retention (D9).
pub async fn retention(state: AppState) {
    match retention::run(&state).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "portal maintenance removed documents"),
        Err(e) => tracing::error!(error = %e, "portal maintenance failed"),
    }
}

/// Rebuilds the search index at start if it does not match the database.
pub async fn repair_index(state: AppState) {
    match content::repair(&state).await {
        Ok(Some(n)) => tracing::info!(documents = n, "search index rebuilt"),
        Ok(None) => {}
        Err(e) => {
            tracing::error!(error = %e, "the search index could not be rebuilt; run `portal reindex`")
        }
    }
}
