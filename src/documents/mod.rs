//! D1–D9: documents exchanged between the firm and its clients — listing with
//! folders, search, filters and sort; downloads and previews; resumable uploads;
//! publishing by staff; and retention. Contents live encrypted in the content
//! store; every query that loads a client's document filters by the client.

pub mod content;
pub mod delivery;
pub mod folder;
pub mod jobs;
pub mod notify;
pub mod publish;
pub mod repo;
pub mod retention;
pub mod routes;
pub mod staff_routes;
pub mod upload;

use serde::Serialize;

use crate::error::{AppError, AppResult, UserFacing, read_or_404};
use crate::ids::ClientId;
use crate::infra::db::DbError;
use crate::state::AppState;
pub use repo::Document;

/// A user's mistake in this capability; the text is shown on the page.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("{0}")]
    Refused(String),
    /// A limit on how often something may be done was reached (429).
    #[error("{0}")]
    TooMany(String),
    #[error(transparent)]
    Internal(#[from] AppError),
}

crate::error::internal_from!(DocumentError: DbError, rusqlite::Error);

pub type DocResult<T> = Result<T, DocumentError>;

/// Why an empty file is refused, wherever it is sent from.
pub fn empty_file_message(shown_name: &str) -> String {
    format!("{shown_name} is empty. Choose a file that has something in it.")
}

impl UserFacing for DocumentError {
    fn into_message(self) -> AppResult<String> {
        match self {
            DocumentError::Refused(m) | DocumentError::TooMany(m) => Ok(m),
            DocumentError::Internal(e) => Err(e),
        }
    }
}

/// What the Documents page asks for (D2, D3).
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct Filter {
    #[serde(default)]
    pub q: String,
    /// `YYYY-MM-DD`, inclusive.
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    /// Any of: new, viewed, awaiting, signed, uploaded.
    #[serde(default)]
    pub status: Vec<String>,
    /// Any of: pdf, image, office, other.
    #[serde(default, rename = "type")]
    pub kind: Vec<String>,
    /// `newest` or `oldest`; empty means best match first when searching, else newest.
    #[serde(default)]
    pub sort: String,
}

impl Filter {
    pub fn is_active(&self) -> bool {
        !(self.q.trim().is_empty()
            && self.from.is_empty()
            && self.to.is_empty()
            && self.status.is_empty()
            && self.kind.is_empty())
    }
}

/// A document as pages show it.
#[derive(Debug, Clone, Serialize)]
pub struct DocView {
    pub id: String,
    pub name: String,
    pub folder: String,
    pub size: String,
    pub date: i64,
    pub status: &'static str,
    pub status_label: &'static str,
    pub file_type: &'static str,
    pub message: Option<String>,
    pub previewable: bool,
    pub from_firm: bool,
    /// A client may rename or delete its own upload until the firm saved it.
    pub editable: bool,
    pub saved: bool,
}

/// A folder of the Documents page with its documents.
#[derive(Debug, Serialize)]
pub struct FolderView {
    pub name: String,
    pub documents: Vec<DocView>,
}

pub fn status(d: &Document) -> (&'static str, &'static str) {
    match (d.origin.as_str(), d.signature_status.as_deref()) {
        (_, Some("awaiting")) => ("awaiting", "Awaiting signature"),
        (_, Some("signed")) => ("signed", "Signed"),
        ("client", _) if d.saved_at.is_some() => ("uploaded", "Received by the firm"),
        ("client", _) => ("uploaded", "Sent to the firm"),
        _ if d.viewed_at.is_none() => ("new", "New"),
        _ => ("viewed", "Viewed"),
    }
}

pub fn file_type(name: &str) -> &'static str {
    match folder::extension(name).as_str() {
        "pdf" => "pdf",
        "jpg" | "jpeg" | "png" | "gif" | "webp" | "heic" | "tif" | "tiff" | "bmp" => "image",
        "doc" | "docx" | "xls" | "xlsx" | "csv" | "odt" | "ods" | "rtf" | "txt" | "ppt"
        | "pptx" => "office",
        _ => "other",
    }
}

/// Types shown inline in the preview; everything else only downloads.
pub fn previewable(mime: &str) -> bool {
    matches!(
        mime,
        "application/pdf" | "image/png" | "image/jpeg" | "image/gif" | "image/webp"
    )
}

pub fn human_size(bytes: i64) -> String {
    let b = bytes as f64;
    if b < 1024.0 {
        format!("{bytes} B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.0} KB", b / 1024.0)
    } else if b < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} MB", b / 1024.0 / 1024.0)
    } else {
        format!("{:.2} GB", b / 1024.0 / 1024.0 / 1024.0)
    }
}

pub fn view(d: &Document) -> DocView {
    let (status, status_label) = status(d);
    DocView {
        id: d.public_id.clone(),
        name: d.name.clone(),
        folder: d.folder.clone(),
        size: human_size(d.size),
        date: d.created_at,
        status,
        status_label,
        file_type: file_type(&d.name),
        message: d.message.clone().filter(|m| !m.trim().is_empty()),
        previewable: previewable(&d.mime),
        from_firm: d.origin == "firm",
        editable: d.origin == "client" && d.saved_at.is_none(),
        saved: d.saved_at.is_some(),
    }
}

fn day_start(date: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(date.trim(), format)
        .ok()
        .map(|d| d.midnight().assume_utc().unix_timestamp())
}

/// The client's documents after search, filters and sort, grouped by folder.
pub async fn list(
    state: &AppState,
    client_id: ClientId,
    filter: &Filter,
) -> AppResult<Vec<FolderView>> {
    let docs = state
        .db
        .read(move |conn| repo::list_for_client(conn, client_id).map_err(DbError::from))
        .await?;
    let ranked: Option<Vec<String>> = if filter.q.trim().is_empty() {
        None
    } else {
        let (search, q) = (state.search.clone(), filter.q.clone());
        Some(
            tokio::task::spawn_blocking(move || search.search(client_id.0, &q, 1000))
                .await?
                .map_err(AppError::Internal)?,
        )
    };
    let from = day_start(&filter.from);
    let to = day_start(&filter.to).map(|t| t + 24 * 3600);
    let mut kept: Vec<(usize, Document)> = docs
        .into_iter()
        .filter_map(|d| {
            let rank = match &ranked {
                Some(ids) => ids.iter().position(|id| *id == d.public_id)?,
                None => 0,
            };
            Some((rank, d))
        })
        .filter(|(_, d)| {
            from.is_none_or(|f| d.created_at >= f) && to.is_none_or(|t| d.created_at < t)
        })
        .filter(|(_, d)| filter.status.is_empty() || filter.status.iter().any(|s| s == status(d).0))
        .filter(|(_, d)| {
            filter.kind.is_empty() || filter.kind.iter().any(|k| k == file_type(&d.name))
        })
        .collect();
    match (filter.sort.as_str(), ranked.is_some()) {
        ("oldest", _) => kept.sort_by_key(|(_, d)| (d.created_at, d.id)),
        ("newest", _) | (_, false) => {
            kept.sort_by_key(|(_, d)| std::cmp::Reverse((d.created_at, d.id)))
        }
        (_, true) => kept.sort_by_key(|(rank, _)| *rank),
    }
    let mut folders: Vec<FolderView> = Vec::new();
    for (_, d) in kept {
        match folders.iter_mut().find(|f| f.name == d.folder) {
            Some(f) => f.documents.push(view(&d)),
            None => folders.push(FolderView {
                name: d.folder.clone(),
                documents: vec![view(&d)],
            }),
        }
    }
    folders.sort_by(|a, b| folder_order(&a.name, &b.name));
    Ok(folders)
}

/// Year folders first, newest year first ("2025 / Returns" before "2024 / Returns"),
/// then the others ("Uploaded") alphabetically.
fn folder_order(a: &str, b: &str) -> std::cmp::Ordering {
    let year = |s: &str| s.split(" / ").next().and_then(|y| y.parse::<u32>().ok());
    match (year(a), year(b)) {
        (Some(x), Some(y)) => y.cmp(&x).then_with(|| a.cmp(b)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.to_lowercase().cmp(&b.to_lowercase()),
    }
}

/// One of the client's documents, or 404 — the same for a missing id and for
/// another client's id.
pub async fn for_client(
    state: &AppState,
    client_id: ClientId,
    public_id: &str,
) -> AppResult<Document> {
    let id = public_id.to_string();
    read_or_404(&state.db, move |conn| {
        repo::for_client(conn, client_id, &id)
    })
    .await
}

/// Any document, for staff.
pub async fn by_public_id(state: &AppState, public_id: &str) -> AppResult<Document> {
    let id = public_id.to_string();
    read_or_404(&state.db, move |conn| repo::by_public_id(conn, &id)).await
}

/// Folders a client can send files to: the configured ones, then its own.
pub async fn upload_folders(state: &AppState, client_id: ClientId) -> AppResult<Vec<String>> {
    let docs = state
        .db
        .read(move |conn| repo::list_for_client(conn, client_id).map_err(DbError::from))
        .await?;
    let mut folders = state.config.documents.upload_folders.clone();
    for d in docs {
        if !folders.contains(&d.folder) {
            folders.push(d.folder);
        }
    }
    Ok(folders)
}

#[cfg(test)]
mod tests {
    #[test]
    fn year_folders_come_first_newest_first() {
        let mut f = vec![
            "Uploaded",
            "2024 / Returns",
            "Organizers",
            "2025 / Returns",
            "2025 / K-1s",
        ];
        f.sort_by(|a, b| super::folder_order(a, b));
        assert_eq!(
            f,
            [
                "2025 / K-1s",
                "2025 / Returns",
                "2024 / Returns",
                "Organizers",
                "Uploaded"
            ]
        );
    }
}
