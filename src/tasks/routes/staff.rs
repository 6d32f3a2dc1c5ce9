//! Staff task pages (F3, T1–T3): assign a task from the client's page, a
//! task's answers by section (hidden ones on request), per item Accept or
//! Return, Reopen, Cancel, Edit settings & resend, the Exchange thread, the
//! timeline and the kind's log lines.

use minijinja::Value as Ctx;
use minijinja::context;
use minijinja::value::Serde;
use poem::web::{Data, Path, Query};
use poem::{Request, Response, handler};

use super::{FormReader, form_value, stream_of};
use crate::accounts::Client;
use crate::documents::publish::Received;
use crate::documents::staff_routes::client_or_404;
use crate::error::{AppError, AppResult};
use crate::infra::db::DbError;
use crate::infra::web::client_ip;
use crate::infra::web::csrf::CsrfForm;
use crate::state::AppState;
use crate::tasks::flow::{self, Assignment, Decision};
use crate::tasks::views::{self, Known};
use crate::tasks::{self as tasks, Task, exchange, kinds, repo};
use crate::web::{Empty, StaffSession, form_status, see_other, staff_page, user_error};
use poem::web::Multipart;

type Pairs = Vec<(String, String)>;

async fn client_of(state: &AppState, task: &Task) -> AppResult<Client> {
    crate::accounts::session::client(state, task.client_id)
        .await?
        .ok_or(AppError::NotFound)
}

/// Any task (staff see every client's) and its client.
async fn task_and_client(state: &AppState, id: &str) -> AppResult<(Task, Client)> {
    let task = tasks::by_public_id(state, id).await?;
    let client = client_of(state, &task).await?;
    Ok((task, client))
}

fn client_ctx(c: &Client) -> Ctx {
    context! { id => c.public_id.clone(), name => c.name.clone(), email => c.email.clone() }
}

#[derive(serde::Deserialize)]
pub struct NewQuery {
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(serde::Serialize)]
struct KindChoice {
    id: String,
    name: String,
    summary: String,
}

/// The assign form: the task types, then the chosen type's settings.
async fn assign_page(
    req: &Request,
    state: &AppState,
    who: &StaffSession,
    client: &Client,
    typed: &[(String, String)],
    error: Option<String>,
) -> AppResult<Response> {
    let choices: Vec<KindChoice> = kinds::available(state)
        .iter()
        .map(|k| KindChoice {
            id: k.info().id.clone(),
            name: k.info().name.clone(),
            summary: k.info().summary.clone(),
        })
        .collect();
    let chosen = form_value(typed, "type");
    let (sections, form_error) = settings_sections(state, chosen, typed).await?;
    let error = error.or(form_error);
    let status = form_status(&error);
    let year = time::OffsetDateTime::now_utc().year() - 1;
    let ctx = context! {
        client => client_ctx(client),
        kinds => Serde(choices),
        chosen,
        chosen_name => kinds::find(state, chosen).map(|k| k.info().name.clone()),
        sections => Serde(sections),
        title => form_value(typed, "title"),
        due_date => form_value(typed, "due_date"),
        tax_year => match form_value(typed, "tax_year") { "" => year.to_string(), y => y.to_string() },
        error,
    };
    staff_page(req, state, who, "staff/task_assign.html", status, ctx)
}

/// The settings form of the kind `type_id` with what was typed, or why it cannot be shown.
async fn settings_sections(
    state: &AppState,
    type_id: &str,
    typed: &[(String, String)],
) -> AppResult<(Vec<views::SectionView>, Option<String>)> {
    let Some(kind) = kinds::find(state, type_id) else {
        return Ok((Vec::new(), None));
    };
    let form = match user_error(flow::settings_form(kind).await)? {
        Ok(form) => form,
        Err(m) => return Ok((Vec::new(), Some(m))),
    };
    Ok((typed_sections(&form, typed), None))
}

/// A settings form's sections showing the values typed (`s:<field>`) or saved.
fn typed_sections(form: &[kinds::Section], typed: &[(String, String)]) -> Vec<views::SectionView> {
    let view = kinds::View {
        sections: form.to_vec(),
        done: 0,
        total: 0,
        issues: Vec::new(),
    };
    let errors: Vec<tasks::answers::FieldError> = form
        .iter()
        .flat_map(|s| s.fields.iter())
        .filter_map(|f| {
            let key = format!("s:{}", f.id);
            let values: Vec<&str> = typed
                .iter()
                .filter(|(k, _)| *k == key)
                .map(|(_, v)| v.as_str())
                .collect();
            (!values.is_empty()).then(|| tasks::answers::FieldError {
                field: f.id.clone(),
                message: String::new(),
                typed: values.join(", "),
            })
        })
        .collect();
    let known = Known {
        stored: &[],
        files: &[],
        errors: &errors,
        issues: &[],
    };
    let mut sections = views::sections(&view, &known, false);
    for f in sections.iter_mut().flat_map(|s| s.fields.iter_mut()) {
        f.error = None;
        let key = format!("s:{}", f.id);
        for c in &mut f.choices {
            c.checked = typed.iter().any(|(k, v)| *k == key && *v == c.value);
        }
    }
    sections
}

#[handler]
pub async fn new_task(
    req: &Request,
    Data(state): Data<&AppState>,
    who: StaffSession,
    Path(id): Path<String>,
    Query(q): Query<NewQuery>,
) -> AppResult<Response> {
    let client = client_or_404(state, &id).await?;
    let typed = vec![("type".to_string(), q.kind.unwrap_or_default())];
    assign_page(req, state, &who, &client, &typed, None).await
}

#[handler]
pub async fn assign(
    req: &Request,
    Data(state): Data<&AppState>,
    who: StaffSession,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<Pairs>,
) -> AppResult<Response> {
    let client = client_or_404(state, &id).await?;
    let a = Assignment {
        type_id: form_value(&form, "type").to_string(),
        title: form_value(&form, "title").to_string(),
        due_date: form_value(&form, "due_date").to_string(),
        tax_year: form_value(&form, "tax_year").to_string(),
        settings: form.clone(),
    };
    match user_error(flow::assign(state, &who.staff, &client, a, &client_ip(req)).await)? {
        Ok(task) => Ok(see_other(&format!(
            "/staff/tasks/{}?notice=assigned",
            task.public_id
        ))),
        Err(m) => assign_page(req, state, &who, &client, &form, Some(m)).await,
    }
}

#[derive(serde::Deserialize)]
pub struct TaskQuery {
    hidden: Option<String>,
    notice: Option<String>,
}

fn notice(key: Option<&str>) -> Option<&'static str> {
    Some(match key? {
        "assigned" => "The task was assigned and the client was emailed.",
        "reviewed" => "Your review was saved.",
        "reopened" => "The task was reopened and the client was emailed.",
        "cancelled" => "The task was cancelled.",
        "closed" => "The conversation was closed.",
        "revised" => "The settings were revised and the task sent back to the client.",
        "message-sent" => "Your message was sent and the client was emailed.",
        _ => return None,
    })
}

async fn task_page(
    req: &Request,
    state: &AppState,
    who: &StaffSession,
    task: &Task,
    show_hidden: bool,
    error: Option<String>,
    notice: Option<&str>,
) -> AppResult<Response> {
    let client = client_of(state, task).await?;
    let parts = views::assemble(state, task, &[], show_hidden, &client.name).await?;
    let id = task.id;
    let (events, log) = state
        .db
        .read(move |conn| Ok::<_, DbError>((repo::events(conn, id)?, repo::log(conn, id)?)))
        .await?;
    let task = tasks::by_public_id(state, &task.public_id).await?;
    let st = task.state.as_str();
    use tasks::state::*;
    let status = form_status(&error);
    let ctx = context! {
        client => client_ctx(&client),
        task => Serde(views::row(state, &task)),
        sections => Serde(parts.sections),
        show_hidden, has_hidden => parts.has_hidden,
        failure => parts.failure,
        events => Serde(events),
        log => Serde(log),
        messages => Serde(parts.messages),
        can_review => [OPEN, AWAITING_REVIEW].contains(&st),
        can_reopen => [AWAITING_REVIEW, CHANGES_REQUESTED, COMPLETED].contains(&st),
        can_cancel => [OPEN, AWAITING_REVIEW, CHANGES_REQUESTED].contains(&st),
        can_revise => [OPEN, CHANGES_REQUESTED].contains(&st) && task.type_id != kinds::exchange::ID,
        can_post => st == OPEN && task.type_id == kinds::exchange::ID,
        can_complete => st == AWAITING_REVIEW,
        error, notice,
    };
    staff_page(req, state, who, "staff/task.html", status, ctx)
}

#[handler]
pub async fn page(
    req: &Request,
    Data(state): Data<&AppState>,
    who: StaffSession,
    Path(id): Path<String>,
    Query(q): Query<TaskQuery>,
) -> AppResult<Response> {
    let task = tasks::by_public_id(state, &id).await?;
    let hidden = q.hidden.as_deref() == Some("1");
    task_page(
        req,
        state,
        &who,
        &task,
        hidden,
        None,
        notice(q.notice.as_deref()),
    )
    .await
}

/// The answers as a JSON file (`?hidden=1` adds hidden ones).
#[handler]
pub async fn export(
    req: &Request,
    Data(state): Data<&AppState>,
    who: StaffSession,
    Path(id): Path<String>,
    Query(q): Query<TaskQuery>,
) -> AppResult<Response> {
    let (task, client) = task_and_client(state, &id).await?;
    let hidden = q.hidden.as_deref() == Some("1");
    let json = tasks::export(
        state,
        &who.staff,
        &task,
        &client.name,
        hidden,
        &client_ip(req),
    )
    .await?;
    let body = serde_json::to_vec_pretty(&json).map_err(AppError::internal)?;
    Ok(Response::builder()
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .header(
            "content-disposition",
            format!("attachment; filename=\"task-{}.json\"", task.public_id),
        )
        .body(body))
}

/// After a change: back to the task with a notice, or the page with the refusal.
async fn done(
    req: &Request,
    state: &AppState,
    who: &StaffSession,
    task: &Task,
    result: Result<(), String>,
    key: &str,
) -> AppResult<Response> {
    match result {
        Ok(()) => Ok(see_other(&format!(
            "/staff/tasks/{}?notice={key}",
            task.public_id
        ))),
        Err(m) => {
            let task = tasks::by_public_id(state, &task.public_id).await?;
            task_page(req, state, who, &task, false, Some(m), None).await
        }
    }
}

/// Per item `d:<field>` = accept | return, with `why:<field>` for a return.
#[handler]
pub async fn review(
    req: &Request,
    Data(state): Data<&AppState>,
    who: StaffSession,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<Pairs>,
) -> AppResult<Response> {
    let (task, client) = task_and_client(state, &id).await?;
    let decisions = form
        .iter()
        .filter_map(|(k, v)| {
            let field = k.strip_prefix("d:")?;
            match v.as_str() {
                "accept" => Some((field.to_string(), Decision::Accept)),
                "return" => Some((
                    field.to_string(),
                    Decision::Return(form_value(&form, &format!("why:{field}")).to_string()),
                )),
                _ => None,
            }
        })
        .collect();
    let result = flow::review(
        state,
        &who.staff,
        &client,
        &task,
        decisions,
        &client_ip(req),
    )
    .await;
    let result = user_error(result)?.map(|_| ());
    done(req, state, &who, &task, result, "reviewed").await
}

#[derive(serde::Deserialize)]
pub struct MessageForm {
    #[serde(default)]
    message: String,
}

#[handler]
pub async fn reopen(
    req: &Request,
    Data(state): Data<&AppState>,
    who: StaffSession,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<MessageForm>,
) -> AppResult<Response> {
    let (task, client) = task_and_client(state, &id).await?;
    let result = flow::reopen(
        state,
        &who.staff,
        &client,
        &task,
        &f.message,
        &client_ip(req),
    )
    .await;
    done(req, state, &who, &task, user_error(result)?, "reopened").await
}

/// Cancel a task, or close an Exchange (the route data says which).
#[derive(Clone, Copy)]
pub enum Finish {
    Cancel,
    Close,
}

#[handler]
pub async fn finish(
    req: &Request,
    Data(state): Data<&AppState>,
    Data(action): Data<&Finish>,
    who: StaffSession,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> AppResult<Response> {
    let task = tasks::by_public_id(state, &id).await?;
    let ip = client_ip(req);
    let (result, key) = match action {
        Finish::Cancel => (
            flow::cancel(state, &who.staff, &task, &ip).await,
            "cancelled",
        ),
        Finish::Close => (flow::close(state, &who.staff, &task, &ip).await, "closed"),
    };
    done(req, state, &who, &task, user_error(result)?, key).await
}

/// A reply in an Exchange, with attachments (multipart: csrf, message, files).
#[handler]
pub async fn post_message(
    req: &Request,
    Data(state): Data<&AppState>,
    who: StaffSession,
    Path(id): Path<String>,
    form: Multipart,
) -> AppResult<Response> {
    let (task, client) = task_and_client(state, &id).await?;
    let mut reader = FormReader::new(req, form);
    let mut files = Vec::new();
    let read: Result<(), String> = loop {
        let (name, part) = match reader.next().await? {
            Ok(Some(file)) => file,
            Ok(None) => break Ok(()),
            Err(m) => break Err(m),
        };
        let max = state.config.documents.max_file_mb.get() * 1024 * 1024;
        match user_error(crate::documents::upload::seal(state, stream_of(part), max).await)? {
            Ok(sealed) if sealed.len == 0 => {
                files.push(Received {
                    name: name.clone(),
                    sealed,
                });
                break Err(crate::documents::empty_file_message(&name));
            }
            Ok(sealed) => files.push(Received { name, sealed }),
            Err(m) => break Err(format!("{name}: {m}")),
        }
    };
    let blobs: Vec<String> = files.iter().map(|f| f.sealed.blob.clone()).collect();
    let ip = client_ip(req);
    let result = match read {
        Ok(()) => {
            reply(
                state,
                &who,
                &client,
                &task,
                reader.text("message"),
                files,
                &ip,
            )
            .await?
        }
        Err(m) => Err(m),
    };
    if result.is_err() {
        for blob in blobs {
            let _ = state.store.remove(&blob);
        }
    }
    done(req, state, &who, &task, result, "message-sent").await
}

async fn reply(
    state: &AppState,
    who: &StaffSession,
    client: &Client,
    task: &Task,
    message: &str,
    files: Vec<Received>,
    ip: &str,
) -> AppResult<Result<(), String>> {
    if let Err(m) = user_error(exchange::check_open(task).and(exchange::check_body(message)))? {
        return Ok(Err(m));
    }
    let attached =
        match user_error(exchange::staff_attach(state, &who.staff, client, task, files, ip).await)?
        {
            Ok(ids) => ids,
            Err(m) => return Ok(Err(m)),
        };
    let by = exchange::Author::Staff(&who.staff);
    user_error(exchange::post(state, by, client, task, message, attached, ip).await)
}

/// Edit settings & resend: the form with the task's settings.
async fn settings_page(
    req: &Request,
    state: &AppState,
    who: &StaffSession,
    task: &Task,
    typed: &[(String, String)],
    error: Option<String>,
) -> AppResult<Response> {
    let client = client_of(state, task).await?;
    let (sections, form_error) = settings_sections(state, &task.type_id, typed).await?;
    let error = error.or(form_error);
    let status = form_status(&error);
    let ctx = context! {
        client => client_ctx(&client),
        task => Serde(views::row(state, task)),
        sections => Serde(sections),
        error,
    };
    staff_page(req, state, who, "staff/task_settings.html", status, ctx)
}

/// The saved settings as the form's `s:<field>` values.
fn saved_settings(task: &Task) -> Pairs {
    tasks::settings_of(task)
        .into_iter()
        .flat_map(|a| {
            let key = format!("s:{}", a.field);
            match a.value {
                kinds::Value::Picked(p) => {
                    p.into_iter().map(|v| (key.clone(), v)).collect::<Vec<_>>()
                }
                v => vec![(key, tasks::values::shown(&v))],
            }
        })
        .collect()
}

#[handler]
pub async fn settings_form(
    req: &Request,
    Data(state): Data<&AppState>,
    who: StaffSession,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let task = tasks::by_public_id(state, &id).await?;
    settings_page(req, state, &who, &task, &saved_settings(&task), None).await
}

#[handler]
pub async fn revise(
    req: &Request,
    Data(state): Data<&AppState>,
    who: StaffSession,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<Pairs>,
) -> AppResult<Response> {
    let (task, client) = task_and_client(state, &id).await?;
    match user_error(flow::revise(state, &who.staff, &client, &task, &form, &client_ip(req)).await)?
    {
        Ok(()) => Ok(see_other(&format!(
            "/staff/tasks/{}?notice=revised",
            task.public_id
        ))),
        Err(m) => settings_page(req, state, &who, &task, &form, Some(m)).await,
    }
}
