//! Client pages and endpoints for documents: the Documents page (D1–D5), the
//! Send Files page and its resumable upload protocol (D6), downloads with HTTP
//! Range, and previews.

use minijinja::context;
use poem::http::{HeaderValue, StatusCode, header};
use poem::web::{Data, Json, Path};
use poem::{Body, IntoResponse, Request, Response, handler};

use super::delivery::{Access, Kind, deliver};
use super::upload::{self, Appended, NewFile};
use super::{DocumentError, Filter, publish};
use crate::error::{AppError, AppResult};
use crate::infra::web::csrf::{self, CsrfForm};
use crate::infra::web::{Visitor, client_ip};
use crate::state::AppState;
use crate::web::{ClientSession, Empty, client_page, form_status, see_other, user_error};

/// Reads the filter from the query string (repeated `status` and `type` keys).
fn filter_of(req: &Request) -> Filter {
    let mut f = Filter::default();
    for (k, v) in url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "q" => f.q = v.chars().take(200).collect(),
            "from" => f.from = v.into_owned(),
            "to" => f.to = v.into_owned(),
            "status" => f.status.push(v.into_owned()),
            "type" => f.kind.push(v.into_owned()),
            "sort" => f.sort = v.into_owned(),
            _ => {}
        }
    }
    f
}

async fn documents_page(
    req: &Request,
    state: &AppState,
    who: &ClientSession,
    error: Option<String>,
) -> AppResult<Response> {
    let filter = filter_of(req);
    let status = form_status(&error);
    let folders = super::list(state, who.client.id, &filter).await?;
    let count: usize = folders.iter().map(|f| f.documents.len()).sum();
    let ctx = context! {
        folders => minijinja::Value::from(minijinja::value::Serde(&folders)),
        count,
        filter => minijinja::Value::from(minijinja::value::Serde(&FilterView::of(&filter))),
        filtered => filter.is_active(),
        error,
        notice => crate::web::notice(url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()).find(|(k, _)| k == "notice").map(|(_, v)| v.into_owned()).as_deref()),
    };
    let mut resp = client_page(req, state, who, "documents.html", ctx)?;
    resp.set_status(status);
    Ok(resp)
}

#[derive(serde::Serialize)]
struct FilterView {
    q: String,
    from: String,
    to: String,
    status: Vec<String>,
    kind: Vec<String>,
    sort: String,
}

impl FilterView {
    fn of(f: &Filter) -> Self {
        FilterView {
            q: f.q.clone(),
            from: f.from.clone(),
            to: f.to.clone(),
            status: f.status.clone(),
            kind: f.kind.clone(),
            sort: f.sort.clone(),
        }
    }
}

#[handler]
pub async fn documents(
    req: &Request,
    Data(state): Data<&AppState>,
    who: ClientSession,
) -> AppResult<Response> {
    documents_page(req, state, &who, None).await
}

#[handler]
pub async fn send_page(
    req: &Request,
    Data(state): Data<&AppState>,
    who: ClientSession,
) -> AppResult<Response> {
    let folders = super::upload_folders(state, who.client.id).await?;
    let limits = &state.config.documents;
    let ctx = context! {
        folders,
        max_file => super::human_size((limits.max_file_mb.get() * 1024 * 1024) as i64),
        max_files => limits.max_files_per_upload.get(),
    };
    client_page(req, state, &who, "send_files.html", ctx)
}

// ---- downloads and previews ----

fn reader<'a>(req: &Request, who: &'a ClientSession, kind: Kind) -> Access<'a> {
    Access {
        actor: who.client.actor(),
        session: &who.token,
        ip: client_ip(req),
        kind,
    }
}

#[handler]
pub async fn download(
    req: &Request,
    Data(state): Data<&AppState>,
    who: ClientSession,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let doc = super::for_client(state, who.client.id, &id).await?;
    deliver(req, state, &doc, reader(req, &who, Kind::Download)).await
}

/// The bytes behind the preview (safe types only).
#[handler]
pub async fn content(
    req: &Request,
    Data(state): Data<&AppState>,
    who: ClientSession,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let doc = super::for_client(state, who.client.id, &id).await?;
    if !super::previewable(&doc.mime) {
        return Err(AppError::NotFound);
    }
    deliver(req, state, &doc, reader(req, &who, Kind::Preview)).await
}

#[handler]
pub async fn preview(
    req: &Request,
    Data(state): Data<&AppState>,
    who: ClientSession,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let doc = super::for_client(state, who.client.id, &id).await?;
    publish::record_access(
        state,
        &doc,
        who.client.actor(),
        "document_viewed",
        &client_ip(req),
    )
    .await?;
    let view = super::view(&doc);
    let ctx = context! {
        doc => minijinja::Value::from(minijinja::value::Serde(&view)),
        is_pdf => doc.mime == "application/pdf",
        is_image => doc.mime.starts_with("image/") && view.previewable,
    };
    client_page(req, state, &who, "preview.html", ctx)
}

// ---- a client's own uploads ----

#[derive(serde::Deserialize)]
struct RenameForm {
    #[serde(default)]
    name: String,
}

#[handler]
pub async fn delete(
    req: &Request,
    Data(state): Data<&AppState>,
    who: ClientSession,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> AppResult<Response> {
    let doc = super::for_client(state, who.client.id, &id).await?;
    match user_error(publish::delete_own(state, &who.client, &doc, &client_ip(req)).await)? {
        Ok(()) => Ok(see_other("/documents?notice=file-deleted")),
        Err(m) => documents_page(req, state, &who, Some(m)).await,
    }
}

#[handler]
pub async fn rename(
    req: &Request,
    Data(state): Data<&AppState>,
    who: ClientSession,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<RenameForm>,
) -> AppResult<Response> {
    let doc = super::for_client(state, who.client.id, &id).await?;
    match user_error(publish::rename_own(state, &who.client, &doc, &f.name, &client_ip(req)).await)?
    {
        Ok(()) => Ok(see_other("/documents?notice=file-renamed")),
        Err(m) => documents_page(req, state, &who, Some(m)).await,
    }
}

// ---- the resumable upload protocol (tus 1.0 core headers) ----

fn tus(resp: poem::ResponseBuilder) -> poem::ResponseBuilder {
    resp.header("tus-resumable", "1.0.0")
        .header(header::CACHE_CONTROL, "no-store")
}

fn json_error(status: StatusCode, message: &str) -> Response {
    let mut r = Json(serde_json::json!({ "error": message })).into_response();
    r.set_status(status);
    r.headers_mut()
        .insert("tus-resumable", HeaderValue::from_static("1.0.0"));
    r
}

fn doc_error(e: DocumentError) -> AppResult<Response> {
    match e {
        DocumentError::Refused(m) if m.starts_with("offset mismatch") => {
            Ok(json_error(StatusCode::CONFLICT, &m))
        }
        DocumentError::Refused(m) => Ok(json_error(StatusCode::UNPROCESSABLE_ENTITY, &m)),
        DocumentError::TooMany(m) => Ok(json_error(StatusCode::TOO_MANY_REQUESTS, &m)),
        DocumentError::Internal(e) => Err(e),
    }
}

/// `Upload-Metadata: filename <b64>,folder <b64>,type <b64>`.
fn metadata(req: &Request, key: &str) -> String {
    use base64::Engine;
    let raw = req
        .headers()
        .get("upload-metadata")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    raw.split(',')
        .filter_map(|pair| pair.trim().split_once(' ').or(Some((pair.trim(), ""))))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| {
            base64::engine::general_purpose::STANDARD
                .decode(v.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default()
}

fn header_u64(req: &Request, name: &str) -> Option<u64> {
    req.headers().get(name)?.to_str().ok()?.trim().parse().ok()
}

#[handler]
pub async fn upload_create(
    req: &Request,
    Data(state): Data<&AppState>,
    who: ClientSession,
) -> AppResult<Response> {
    csrf::check_header(req)?;
    let Some(length) = header_u64(req, "upload-length") else {
        return Ok(json_error(
            StatusCode::BAD_REQUEST,
            "The file size is missing. Reload the page and try again.",
        ));
    };
    let (name, folder, mime) = (
        metadata(req, "filename"),
        metadata(req, "folder"),
        metadata(req, "type"),
    );
    let file = NewFile {
        name: &name,
        folder: &folder,
        mime: &mime,
        length,
    };
    match upload::create(state, &who.client, file).await {
        Ok(id) => Ok(tus(Response::builder()
            .status(StatusCode::CREATED)
            .header(header::LOCATION, format!("/uploads/{id}")))
        .finish()),
        Err(e) => doc_error(e),
    }
}

#[handler]
pub async fn upload_head(
    Data(state): Data<&AppState>,
    who: ClientSession,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let upload = match upload::find(state, who.client.id, &id).await {
        Ok(u) => u,
        Err(e) => return doc_error(e),
    };
    let (offset, length) = upload::offset_of(&upload);
    let mut resp = tus(Response::builder())
        .header("upload-offset", offset)
        .header("upload-length", length);
    if let Some(done) = &upload.document_id {
        resp = resp.header("upload-complete", done.as_str());
    }
    Ok(resp.finish())
}

#[handler]
pub async fn upload_patch(
    req: &Request,
    body: Body,
    Data(state): Data<&AppState>,
    who: ClientSession,
    Path(id): Path<String>,
) -> AppResult<Response> {
    csrf::check_header(req)?;
    let Some(offset) = header_u64(req, "upload-offset") else {
        return Ok(json_error(
            StatusCode::BAD_REQUEST,
            "Upload-Offset is missing.",
        ));
    };
    let stream = Box::pin(body.into_bytes_stream());
    // Run to the end even if the client's connection drops (hyper then drops this
    // handler): the whole chunks received must be checkpointed so it can resume.
    let (st, client, visitor) = (state.clone(), who.client.clone(), Visitor::of(req));
    let appended =
        tokio::spawn(
            async move { upload::append(&st, &client, &id, offset, stream, &visitor).await },
        )
        .await
        .map_err(AppError::from)?;
    match appended {
        Ok(Appended::Partial(offset)) => {
            Ok(tus(Response::builder().status(StatusCode::NO_CONTENT))
                .header("upload-offset", offset)
                .finish())
        }
        Ok(Appended::Complete(doc)) => Ok(tus(Response::builder().status(StatusCode::NO_CONTENT))
            .header("upload-offset", doc.size)
            .header("upload-complete", doc.public_id)
            .finish()),
        Ok(Appended::AlreadyComplete(done)) => {
            Ok(tus(Response::builder().status(StatusCode::NO_CONTENT))
                .header("upload-offset", offset)
                .header("upload-complete", done)
                .finish())
        }
        Err(e) => doc_error(e),
    }
}

#[handler]
pub async fn upload_delete(
    req: &Request,
    Data(state): Data<&AppState>,
    who: ClientSession,
    Path(id): Path<String>,
) -> AppResult<Response> {
    csrf::check_header(req)?;
    match upload::cancel(state, who.client.id, &id).await {
        Ok(()) => Ok(tus(Response::builder().status(StatusCode::NO_CONTENT)).finish()),
        Err(e) => doc_error(e),
    }
}
