//! Staff pages for documents (F2, F3, D7): clients with search, a client's
//! documents and uploads, publishing, the uploads inbox, notifications.

use minijinja::context;
use poem::http::StatusCode;
use poem::web::{Data, Multipart, Path, Query};
use poem::{Request, Response, handler};

use super::delivery::{Access, Kind, deliver};
use super::publish::{self, Publication, Received};
use super::{DocumentError, repo};
use crate::accounts::{Client, invite};
use crate::error::{AppError, AppResult};
use crate::infra::db::DbError;
use crate::infra::web::client_ip;
use crate::infra::web::csrf::{self, CsrfForm};
use crate::state::AppState;
use crate::web::{Empty, StaffSession, bad_request, form_status, see_other, staff_page};

#[derive(serde::Deserialize)]
struct Search {
    #[serde(default)]
    q: String,
}

#[derive(serde::Serialize)]
struct ClientRow {
    id: String,
    name: String,
    email: String,
    active: bool,
    invited_at: Option<i64>,
    signed_up_at: Option<i64>,
}

/// F2: the client list with search (shares `/staff/clients` with the invite form's POST).
#[handler]
pub async fn clients(
    req: &Request,
    Data(state): Data<&AppState>,
    who: StaffSession,
    Query(s): Query<Search>,
) -> AppResult<Response> {
    let all = invite::list_clients(state).await.map_err(bad_request)?;
    let q = s.q.trim().to_lowercase();
    let rows: Vec<ClientRow> = all
        .into_iter()
        .filter(|c| {
            q.is_empty()
                || c.name.to_lowercase().contains(&q)
                || c.email.to_lowercase().contains(&q)
        })
        .map(|c| ClientRow {
            id: c.public_id,
            name: c.name,
            email: c.email,
            active: c.signed_up_at.is_some(),
            invited_at: c.invited_at,
            signed_up_at: c.signed_up_at,
        })
        .collect();
    let ctx =
        context! { clients => minijinja::Value::from(minijinja::value::Serde(&rows)), q => s.q };
    staff_page(req, state, &who, "staff/clients.html", StatusCode::OK, ctx)
}

/// A client by its public id, for staff; 404 when there is none.
pub(crate) async fn client_or_404(state: &AppState, id: &str) -> AppResult<Client> {
    invite::client_by_public_id(state, id)
        .await
        .map_err(bad_request)?
        .ok_or(AppError::NotFound)
}

async fn render_client(
    req: &Request,
    state: &AppState,
    who: &StaffSession,
    client: &Client,
    error: Option<String>,
    notice: Option<&str>,
) -> AppResult<Response> {
    let id = client.id;
    let docs = state
        .db
        .read(move |conn| repo::list_for_client(conn, id).map_err(DbError::from))
        .await?;
    let (uploads, published): (Vec<_>, Vec<_>) = docs.iter().partition(|d| d.origin == "client");
    let views = |ds: Vec<&repo::Document>| ds.into_iter().map(super::view).collect::<Vec<_>>();
    let status = form_status(&error);
    let tasks = crate::tasks::rows_for_client(state, client.id).await?;
    let ctx = context! {
        tasks => minijinja::Value::from(minijinja::value::Serde(&tasks)),
        client => context! { id => client.public_id.clone(), name => client.name.clone(), email => client.email.clone(), active => client.signed_up_at.is_some() },
        uploads => minijinja::Value::from(minijinja::value::Serde(&views(uploads))),
        published => minijinja::Value::from(minijinja::value::Serde(&views(published))),
        error, notice,
        year => time::OffsetDateTime::now_utc().year() - 1,
    };
    staff_page(req, state, who, "staff/client.html", status, ctx)
}

#[derive(serde::Deserialize)]
struct NoticeOnly {
    notice: Option<String>,
}

#[handler]
pub async fn client_page(
    req: &Request,
    Data(state): Data<&AppState>,
    who: StaffSession,
    Path(id): Path<String>,
    Query(q): Query<NoticeOnly>,
) -> AppResult<Response> {
    let client = client_or_404(state, &id).await?;
    let notice = match q.notice.as_deref() {
        Some("published") => Some("The documents were published and the client was emailed."),
        Some("saved") => Some("Marked as saved to firm files."),
        _ => None,
    };
    render_client(req, state, &who, &client, None, notice).await
}

/// What reading and publishing a form came to.
enum Outcome {
    Published,
    Refused(String),
    Forbidden,
}

/// Reads the publish form: text fields, and each file streamed straight into the
/// encrypted store. On any problem every file already stored is removed. The work
/// runs in its own task so that a dropped connection cannot leave stored files
/// without their rows.
#[handler]
pub async fn publish_files(
    req: &Request,
    Data(state): Data<&AppState>,
    who: StaffSession,
    Path(id): Path<String>,
    form: Multipart,
) -> AppResult<Response> {
    let client = client_or_404(state, &id).await?;
    let expected = csrf::token(req);
    let (st, staff, c, ip) = (
        state.clone(),
        who.staff.clone(),
        client.clone(),
        client_ip(req),
    );
    let outcome =
        tokio::spawn(async move { read_and_publish(&st, &staff, &c, form, &expected, &ip).await })
            .await
            .map_err(AppError::from)??;
    match outcome {
        Outcome::Published => Ok(see_other(&format!(
            "/staff/clients/{}?notice=published",
            client.public_id
        ))),
        Outcome::Refused(message) => {
            render_client(req, state, &who, &client, Some(message), None).await
        }
        Outcome::Forbidden => Err(csrf::CsrfRejected.into()),
    }
}

/// The publish form's text fields together may hold at most this much, like the
/// 64 KiB limit of every other form; a longer one is refused without being read
/// to its end.
const MAX_TEXT_BYTES: usize = 64 * 1024;
const MAX_TEXT_FIELDS: usize = 32;
const TEXT_TOO_LONG: &str =
    "The form's text is too long: the message can be at most 4000 characters.";
const INTERRUPTED: &str = "The upload was interrupted. Please try again.";

/// The text fields of the publish form.
struct PublishFields {
    csrf: String,
    folder: String,
    message: String,
    kind: String,
    year: String,
}

impl PublishFields {
    fn set(&mut self, name: &str, value: String) {
        match name {
            "csrf" => self.csrf = value,
            "folder" => self.folder = value,
            "message" => self.message = value,
            "kind" => self.kind = value,
            "tax_year" => self.year = value,
            _ => {}
        }
    }
}

/// Why reading the form stopped early: an outcome to show, or an internal error.
type Stopped = AppResult<Outcome>;

fn refused(message: impl Into<String>) -> Stopped {
    Ok(Outcome::Refused(message.into()))
}

async fn read_and_publish(
    state: &AppState,
    staff: &crate::firm::Staff,
    client: &Client,
    form: Multipart,
    expected_csrf: &str,
    ip: &str,
) -> AppResult<Outcome> {
    let mut files: Vec<Received> = Vec::new();
    let fields = match read_form(state, form, expected_csrf, &mut files).await {
        Ok(fields) => fields,
        Err(stopped) => {
            discard(state, &files);
            return stopped;
        }
    };
    if !csrf::matches(expected_csrf, &fields.csrf) {
        discard(state, &files);
        return Ok(Outcome::Forbidden);
    }
    let tax_year = fields
        .year
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|y| (1990..=2100).contains(y));
    let publication = Publication {
        folder: &fields.folder,
        message: &fields.message,
        kind: &fields.kind,
        tax_year,
    };
    let blobs: Vec<String> = files.iter().map(|f| f.sealed.blob.clone()).collect();
    match publish::publish(state, staff, client, publication, files, ip).await {
        Ok(_) => Ok(Outcome::Published),
        Err(e) => {
            for blob in blobs {
                let _ = state.store.remove(&blob);
            }
            match e {
                DocumentError::Refused(m) | DocumentError::TooMany(m) => Ok(Outcome::Refused(m)),
                DocumentError::Internal(e) => Err(e),
            }
        }
    }
}

/// Reads every field: text with a cap, each file sealed into the store as it
/// arrives (and added to `files`, which the caller discards on a refusal).
async fn read_form(
    state: &AppState,
    mut form: Multipart,
    expected_csrf: &str,
    files: &mut Vec<Received>,
) -> Result<PublishFields, Stopped> {
    let mut fields = PublishFields {
        csrf: String::new(),
        folder: String::new(),
        message: String::new(),
        kind: "other".into(),
        year: String::new(),
    };
    let (mut room, mut text_fields) = (MAX_TEXT_BYTES, 0);
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(fields),
            Err(_) => return Err(refused(INTERRUPTED)),
        };
        let name = field.name().unwrap_or("").to_string();
        if name == "files" {
            // The form must prove itself before any file is stored.
            if !csrf::matches(expected_csrf, &fields.csrf) {
                return Err(Ok(Outcome::Forbidden));
            }
            receive_file(state, field, files).await?;
        } else {
            text_fields += 1;
            if text_fields > MAX_TEXT_FIELDS {
                return Err(refused(TEXT_TOO_LONG));
            }
            fields.set(&name, read_text(field, &mut room).await?);
        }
    }
}

/// Seals one file of the form into the store.
async fn receive_file(
    state: &AppState,
    field: poem::web::Field,
    files: &mut Vec<Received>,
) -> Result<(), Stopped> {
    let raw_name = field.file_name().unwrap_or("").to_string();
    if raw_name.is_empty() {
        return Ok(()); // the empty file input of a form sent without files
    }
    let shown = super::folder::file_name(&raw_name);
    let max = state.config.documents.max_file_mb.get() * 1024 * 1024;
    let stream = Box::pin(tokio_util::io::ReaderStream::new(field.into_async_read()));
    match super::upload::seal(state, stream, max).await {
        Ok(sealed) => {
            let empty = sealed.len == 0;
            files.push(Received {
                name: raw_name,
                sealed,
            });
            if empty {
                return Err(refused(super::empty_file_message(&shown)));
            }
            Ok(())
        }
        Err(DocumentError::Refused(m) | DocumentError::TooMany(m)) => {
            Err(refused(format!("{shown}: {m}")))
        }
        Err(DocumentError::Internal(e)) => Err(Err(e)),
    }
}

/// A text field, read only while it fits in `room` (what is left of the cap).
async fn read_text(field: poem::web::Field, room: &mut usize) -> Result<String, Stopped> {
    use tokio::io::AsyncReadExt;
    let mut reader = field.into_async_read();
    let mut value = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = reader
            .read(&mut chunk)
            .await
            .map_err(|_| refused(INTERRUPTED))?;
        if n == 0 {
            break;
        }
        if n > *room {
            return Err(refused(TEXT_TOO_LONG));
        }
        *room -= n;
        value.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8(value)
        .map_err(|_| refused("The form could not be read. Reload the page and try again."))
}

fn discard(state: &AppState, files: &[Received]) {
    for f in files {
        let _ = state.store.remove(&f.sealed.blob);
    }
}

#[handler]
pub async fn inbox(
    req: &Request,
    Data(state): Data<&AppState>,
    who: StaffSession,
) -> AppResult<Response> {
    let items = publish::inbox(state).await?;
    let notifications = publish::notifications(state).await?;
    #[derive(serde::Serialize)]
    struct Item {
        doc: super::DocView,
        client: String,
    }
    let items: Vec<Item> = items
        .iter()
        .map(|(d, c)| Item {
            doc: super::view(d),
            client: c.clone(),
        })
        .collect();
    let ctx = context! {
        items => minijinja::Value::from(minijinja::value::Serde(&items)),
        newest => notifications.iter().map(|n| n.id).max(),
        unread_shown => notifications.iter().any(|n| !n.read),
        notifications => minijinja::Value::from(minijinja::value::Serde(&notifications)),
    };
    staff_page(req, state, &who, "staff/inbox.html", StatusCode::OK, ctx)
}

#[derive(serde::Deserialize)]
struct MarkRead {
    #[serde(default)]
    up_to: i64,
}

/// "Mark all read": the notifications the page showed (up to the newest of them).
#[handler]
pub async fn mark_all_read(
    Data(state): Data<&AppState>,
    _who: StaffSession,
    CsrfForm(f): CsrfForm<MarkRead>,
) -> AppResult<Response> {
    publish::mark_notifications_read(state, f.up_to).await?;
    Ok(see_other("/staff/inbox"))
}

/// Opening a notification marks it read, then goes where it points.
#[handler]
pub async fn open_notification(
    Data(state): Data<&AppState>,
    _who: StaffSession,
    Path(id): Path<i64>,
    CsrfForm(_): CsrfForm<Empty>,
) -> AppResult<Response> {
    let link = publish::open_notification(state, id).await?;
    Ok(see_other(&crate::infra::web::local_path(Some(&link))))
}

#[handler]
pub async fn download(
    req: &Request,
    Data(state): Data<&AppState>,
    who: StaffSession,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let doc = super::by_public_id(state, &id).await?;
    let access = Access {
        actor: who.staff.actor(),
        session: &who.token,
        ip: client_ip(req),
        kind: Kind::Download,
    };
    deliver(req, state, &doc, access).await
}

#[handler]
pub async fn mark_saved(
    req: &Request,
    Data(state): Data<&AppState>,
    who: StaffSession,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> AppResult<Response> {
    let doc = super::by_public_id(state, &id).await?;
    publish::mark_saved(state, &who.staff, &doc, &client_ip(req)).await?;
    let client = crate::accounts::session::client(state, doc.client_id)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(see_other(&format!(
        "/staff/clients/{}?notice=saved",
        client.public_id
    )))
}
