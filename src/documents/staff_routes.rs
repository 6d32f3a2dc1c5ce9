//! Staff pages for documents (F2, F3, D7): clients with search, a client's
//! documents and uploads, publishing, the uploads inbox, notifications.

use minijinja::context;
use poem::http::StatusCode;
use poem::web::{Data, Multipart, Path, Query};
use poem::{Request, Response, Route, get, handler, post};

use super::delivery::{Access, Kind, deliver};
use super::publish::{self, Publication, Received};
use super::{DocumentError, repo};
use crate::accounts::invite;
use crate::accounts::repo::Client;
use crate::accounts::routes::{Empty, see_other};
use crate::app::AppState;
use crate::error::{AppError, AppResult};
use crate::firm::routes::{StaffSession, staff_page};
use crate::infra::audit::Actor;
use crate::infra::db::DbError;
use crate::infra::web::client_ip;
use crate::infra::web::csrf::{self, CsrfForm};

/// Routes under `/staff`.
pub fn add(route: Route) -> Route {
    route
        .at("/clients/:id", get(client_page))
        .at("/clients/:id/publish", post(publish_files))
        .at("/inbox", get(inbox))
        .at("/documents/:id/download", get(download).head(download))
        .at("/documents/:id/saved", post(mark_saved))
}

fn account_error(e: crate::accounts::AccountError) -> AppError {
    match e {
        crate::accounts::AccountError::Internal(e) => e,
        other => AppError::BadRequest(other.to_string()),
    }
}

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
    let all = invite::list_clients(state).await.map_err(account_error)?;
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

async fn client_or_404(state: &AppState, id: &str) -> AppResult<Client> {
    invite::client_by_public_id(state, id)
        .await
        .map_err(account_error)?
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
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let ctx = context! {
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
async fn client_page(
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
async fn publish_files(
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

async fn read_and_publish(
    state: &AppState,
    staff: &crate::firm::repo::Staff,
    client: &Client,
    mut form: Multipart,
    expected_csrf: &str,
    ip: &str,
) -> AppResult<Outcome> {
    let max = state.config.documents.max_file_mb * 1024 * 1024;
    let matches = |sent: &str| {
        !expected_csrf.is_empty()
            && crate::infra::crypto::constant_time_eq(sent.as_bytes(), expected_csrf.as_bytes())
    };
    let (mut folder, mut message, mut kind, mut year, mut csrf_token) = (
        String::new(),
        String::new(),
        "other".to_string(),
        String::new(),
        String::new(),
    );
    let mut files: Vec<Received> = Vec::new();
    let refuse = |files: &[Received], outcome: Outcome| {
        discard(state, files);
        Ok(outcome)
    };
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(_) => {
                return refuse(
                    &files,
                    Outcome::Refused("The upload was interrupted. Please try again.".into()),
                );
            }
        };
        let name = field.name().unwrap_or("").to_string();
        if name == "files" {
            // The form must prove itself before any file is stored.
            if !matches(&csrf_token) {
                return refuse(&files, Outcome::Forbidden);
            }
            let file_name = field.file_name().unwrap_or("").to_string();
            if file_name.is_empty() {
                continue; // the empty file input of a form sent without files
            }
            let stream = Box::pin(tokio_util::io::ReaderStream::new(field.into_async_read()));
            match super::upload::seal(state, stream, max).await {
                Ok(sealed) => files.push(Received {
                    name: file_name,
                    sealed,
                }),
                Err(DocumentError::Refused(m)) => {
                    return refuse(&files, Outcome::Refused(format!("{file_name}: {m}")));
                }
                Err(DocumentError::Internal(e)) => {
                    discard(state, &files);
                    return Err(e);
                }
            }
        } else {
            let value = field.text().await.unwrap_or_default();
            match name.as_str() {
                "csrf" => csrf_token = value,
                "folder" => folder = value,
                "message" => message = value,
                "kind" => kind = value,
                "tax_year" => year = value,
                _ => {}
            }
        }
    }
    if !matches(&csrf_token) {
        return refuse(&files, Outcome::Forbidden);
    }
    let tax_year = year
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|y| (1990..=2100).contains(y));
    let publication = Publication {
        folder: &folder,
        message: &message,
        kind: &kind,
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
                DocumentError::Refused(m) => Ok(Outcome::Refused(m)),
                DocumentError::Internal(e) => Err(e),
            }
        }
    }
}

fn discard(state: &AppState, files: &[Received]) {
    for f in files {
        let _ = state.store.remove(&f.sealed.blob);
    }
}

#[handler]
async fn inbox(
    req: &Request,
    Data(state): Data<&AppState>,
    who: StaffSession,
) -> AppResult<Response> {
    let items = publish::inbox(state).await?;
    let notifications = publish::notifications(state).await?;
    publish::mark_notifications_read(state).await?;
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
        notifications => minijinja::Value::from(minijinja::value::Serde(&notifications)),
    };
    staff_page(req, state, &who, "staff/inbox.html", StatusCode::OK, ctx)
}

#[handler]
async fn download(
    req: &Request,
    Data(state): Data<&AppState>,
    who: StaffSession,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let doc = super::by_public_id(state, &id).await?;
    let access = Access {
        actor: Actor::Staff(who.staff.public_id.clone()),
        session: &who.token,
        ip: client_ip(req),
        kind: Kind::Download,
    };
    deliver(req, state, &doc, access).await
}

#[handler]
async fn mark_saved(
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
