//! The client's task pages (H2, T1–T2): a task's questions by section, saved a
//! section at a time with a plain POST (or each change from the script), per
//! question uploads, Submit; an Exchange's thread. Completed tasks read-only.

use minijinja::Value as Ctx;
use minijinja::context;
use minijinja::value::Serde;
use poem::http::StatusCode;
use poem::web::{Data, Json, Multipart, Path};
use poem::{IntoResponse, Request, Response, handler};

use super::{FormReader, stream_of};
use crate::error::{AppError, AppResult};
use crate::infra::web::csrf::CsrfForm;
use crate::infra::web::{Visitor, client_ip};
use crate::state::AppState;
use crate::tasks::answers::{self, FieldError};
use crate::tasks::exchange::{self, Author};
use crate::tasks::views;
use crate::tasks::{self as tasks, Task, flow};
use crate::web::{ClientSession, Empty, client_page, see_other, user_error};

fn notice(key: Option<&str>) -> Option<&'static str> {
    Some(match key? {
        "saved" => "Saved.",
        "file-sent" => "Your file was received.",
        "message-sent" => "Your message was sent to the firm.",
        _ => return None,
    })
}

fn query_notice(req: &Request) -> Option<&'static str> {
    let q = req.uri().query().unwrap_or("");
    let key = url::form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == "notice")
        .map(|(_, v)| v.into_owned());
    notice(key.as_deref())
}

/// The task page, with the answers not saved (and why) and an error if any.
async fn task_page(
    req: &Request,
    state: &AppState,
    who: &ClientSession,
    task: &Task,
    errors: &[FieldError],
    error: Option<String>,
) -> AppResult<Response> {
    let status = if error.is_some() || !errors.is_empty() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let ctx = page_context(state, who, task, errors).await?;
    let ctx = context! { error, notice => query_notice(req), ..ctx };
    let mut resp = client_page(req, state, who, "task.html", ctx)?;
    resp.set_status(status);
    Ok(resp)
}

async fn page_context(
    state: &AppState,
    who: &ClientSession,
    task: &Task,
    errors: &[FieldError],
) -> AppResult<Ctx> {
    let c = &who.client;
    let name = c.account_name.clone().unwrap_or_else(|| c.name.clone());
    let parts = views::assemble(state, task, errors, true, &name).await?;
    let gap = views::first_gap(&parts.sections);
    let task = tasks::by_public_id(state, &task.public_id).await?;
    Ok(context! {
        task => Serde(views::row(state, &task)),
        editable => task.state == tasks::state::OPEN,
        sections => Serde(parts.sections),
        gap,
        issues => parts.issues,
        failure => parts.failure,
        messages => Serde(parts.messages),
    })
}

#[handler]
pub async fn page(
    req: &Request,
    Data(state): Data<&AppState>,
    who: ClientSession,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let task = own_task(state, &who, &id).await?;
    tasks::opened(state, &who.client, &task).await?;
    task_page(req, state, &who, &task, &[], None).await
}

/// A task the client may see (a cancelled one is gone for them).
async fn own_task(state: &AppState, who: &ClientSession, id: &str) -> AppResult<Task> {
    let task = tasks::for_client(state, who.client.id, id).await?;
    if task.state == tasks::state::CANCELLED {
        return Err(AppError::NotFound);
    }
    Ok(task)
}

fn wants_json(req: &Request) -> bool {
    req.headers()
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// Saves a section (or, from the script, the fields that changed).
#[handler]
pub async fn save(
    req: &Request,
    Data(state): Data<&AppState>,
    who: ClientSession,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<Vec<(String, String)>>,
) -> AppResult<Response> {
    let task = own_task(state, &who, &id).await?;
    let saved = match user_error(answers::save(state, &task, form).await)? {
        Ok(saved) => saved,
        Err(m) if wants_json(req) => return Ok(json_refusal(&m)),
        Err(m) => return task_page(req, state, &who, &task, &[], Some(m)).await,
    };
    if wants_json(req) {
        return Ok(saved_json(&saved));
    }
    if !saved.errors.is_empty() || saved.rendered.failure.is_some() {
        let task = tasks::by_public_id(state, &task.public_id).await?;
        return task_page(
            req,
            state,
            &who,
            &task,
            &saved.errors,
            saved.rendered.failure,
        )
        .await;
    }
    let task = tasks::by_public_id(state, &task.public_id).await?;
    let anchor = resume_anchor(state, &who, &task).await?;
    Ok(see_other(&format!(
        "/tasks/{}?notice=saved{anchor}",
        task.public_id
    )))
}

/// `#f-<field>`, for a field id that is safe in a URL (a kind names its fields).
fn anchor(field: &str) -> String {
    let safe = !field.is_empty()
        && field
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if safe {
        format!("#f-{field}")
    } else {
        String::new()
    }
}

/// `#f-<field>` of the first gap, if any.
async fn resume_anchor(state: &AppState, who: &ClientSession, task: &Task) -> AppResult<String> {
    let ctx = page_context(state, who, task, &[]).await?;
    Ok(ctx
        .get_attr("gap")
        .ok()
        .and_then(|g| g.as_str().map(anchor))
        .unwrap_or_default())
}

fn json_refusal(message: &str) -> Response {
    let mut r = Json(serde_json::json!({ "saved": false, "error": message })).into_response();
    r.set_status(StatusCode::UNPROCESSABLE_ENTITY);
    r
}

/// What the script needs after a save: what failed, and the new visibility and progress.
fn saved_json(saved: &answers::Saved) -> Response {
    let view = saved.rendered.view.as_ref();
    let fields = || {
        view.into_iter()
            .flat_map(|v| v.sections.iter().flat_map(|s| s.fields.iter()))
    };
    let visible: Vec<&str> = fields()
        .filter(|f| f.visible)
        .map(|f| f.id.as_str())
        .collect();
    let hidden: Vec<&str> = fields()
        .filter(|f| !f.visible)
        .map(|f| f.id.as_str())
        .collect();
    let issues: Vec<_> = view.map(|v| v.issues.clone()).unwrap_or_default();
    Json(serde_json::json!({
        "saved": saved.errors.is_empty(),
        "errors": saved.errors.iter().map(|e| serde_json::json!({"field": e.field, "message": e.message})).collect::<Vec<_>>(),
        "visible": visible,
        "hidden": hidden,
        "done": view.map_or(0, |v| v.done),
        "total": view.map_or(0, |v| v.total),
        "issues": issues,
        "failure": saved.rendered.failure,
    }))
    .into_response()
}

/// Stores one file the client sent for the task: against the question `field`,
/// or (`None`) for a message; a refusal is the message to show.
async fn store(
    state: &AppState,
    who: &ClientSession,
    task: &Task,
    field: Option<&str>,
    (name, part): (String, poem::web::Field),
    visitor: &Visitor,
) -> AppResult<Result<crate::documents::Document, String>> {
    let body = stream_of(part);
    user_error(answers::store_file(state, &who.client, task, field, &name, body, visitor).await)
}

/// Files sent against one question (multipart: csrf, field, files).
#[handler]
pub async fn upload(
    req: &Request,
    Data(state): Data<&AppState>,
    who: ClientSession,
    Path(id): Path<String>,
    form: Multipart,
) -> AppResult<Response> {
    let task = own_task(state, &who, &id).await?;
    let mut reader = FormReader::new(req, form);
    let visitor = Visitor::of(req);
    let mut field = None;
    let outcome: Result<(), String> = loop {
        let (name, part) = match reader.next().await? {
            Ok(Some(file)) => file,
            Ok(None) => break Ok(()),
            Err(m) => break Err(m),
        };
        if field.is_none() {
            let wanted = reader.text("field").to_string();
            match user_error(answers::upload_field(state, &task, &wanted).await)? {
                Ok(f) => field = Some(f),
                Err(m) => break Err(m),
            }
        }
        let Some(f) = &field else { break Ok(()) };
        let sent = store(state, &who, &task, Some(&f.id), (name, part), &visitor).await?;
        if let Err(m) = sent {
            break Err(m);
        }
    };
    match (outcome, field) {
        (Ok(()), Some(f)) => {
            tasks::render(state, &tasks::by_public_id(state, &task.public_id).await?).await?;
            Ok(see_other(&format!(
                "/tasks/{}?notice=file-sent{}",
                task.public_id,
                anchor(&f.id)
            )))
        }
        (Ok(()), None) => {
            task_page(
                req,
                state,
                &who,
                &task,
                &[],
                Some("Choose a file to send.".into()),
            )
            .await
        }
        (Err(m), _) => {
            let task = tasks::by_public_id(state, &task.public_id).await?;
            task_page(req, state, &who, &task, &[], Some(m)).await
        }
    }
}

#[handler]
pub async fn submit(
    req: &Request,
    Data(state): Data<&AppState>,
    who: ClientSession,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> AppResult<Response> {
    let task = own_task(state, &who, &id).await?;
    match user_error(flow::submit(state, &who.client, &task, &client_ip(req)).await)? {
        Ok(task) => Ok(see_other(&format!("/tasks/{}", task.public_id))),
        Err(m) => task_page(req, state, &who, &task, &[], Some(m)).await,
    }
}

/// A message in an Exchange, with attachments (multipart: csrf, body, files).
#[handler]
pub async fn post_message(
    req: &Request,
    Data(state): Data<&AppState>,
    who: ClientSession,
    Path(id): Path<String>,
    form: Multipart,
) -> AppResult<Response> {
    let task = own_task(state, &who, &id).await?;
    let mut reader = FormReader::new(req, form);
    let visitor = Visitor::of(req);
    let mut attached = Vec::new();
    if let Err(m) = user_error(exchange::allow_client_message(state, &who.client))? {
        return task_page(req, state, &who, &task, &[], Some(m)).await;
    }
    let outcome: Result<(), String> = loop {
        let (name, part) = match reader.next().await? {
            Ok(Some(file)) => file,
            Ok(None) => break Ok(()),
            Err(m) => break Err(m),
        };
        // The message is checked before its files are stored.
        if let Err(m) =
            user_error(exchange::check_open(&task).and(exchange::check_body(reader.text("body"))))?
        {
            break Err(m);
        }
        match store(state, &who, &task, None, (name, part), &visitor).await? {
            Ok(doc) => attached.push(doc.id),
            Err(m) => break Err(m),
        }
    };
    let posted = match outcome {
        Ok(()) => {
            let body = reader.text("body").to_string();
            let by = Author::Client(&who.client);
            user_error(
                exchange::post(
                    state,
                    by,
                    &who.client,
                    &task,
                    &body,
                    attached,
                    &client_ip(req),
                )
                .await,
            )?
        }
        Err(m) => Err(m),
    };
    match posted {
        Ok(()) => Ok(see_other(&format!(
            "/tasks/{}?notice=message-sent#thread-end",
            task.public_id
        ))),
        Err(m) => task_page(req, state, &who, &task, &[], Some(m)).await,
    }
}
