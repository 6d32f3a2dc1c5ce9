//! T2: the client's answers. A section (or, with JavaScript, each change) is
//! saved first and only then rendered by the kind, so a kind that fails never
//! loses what the client typed. Formats are checked here, whatever the kind.

use bytes::Bytes;
use futures_util::Stream;

use super::kinds::{Field, FieldKind, Review, Value, View};
use super::{Rendered, Task, TaskError, TaskResult, refused, repo, values};
use crate::accounts::Client;
use crate::documents::Document;
use crate::error::AppError;
use crate::infra::db::DbError;
use crate::infra::web::Visitor;
use crate::state::AppState;

/// The longest note to the preparer and reason for "not applicable".
const MAX_NOTE: usize = 2000;

/// What saving came to: the messages of answers that were not saved (by field
/// id, with what was typed so the page can show it again) and the new render.
pub struct Saved {
    pub errors: Vec<FieldError>,
    pub rendered: Rendered,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
    pub typed: String,
}

/// The fields the client may answer now: those the last render showed.
async fn open_fields(state: &AppState, task: &Task) -> TaskResult<View> {
    if task.state != super::state::OPEN {
        return refused(
            "This task is with your firm now, so it cannot be changed. Your firm can reopen it.",
        );
    }
    if let Some(view) = super::last_view(task) {
        return Ok(view);
    }
    super::render(state, task).await?.view.ok_or_else(|| {
        TaskError::Refused("This task cannot be shown right now. Please try again later.".into())
    })
}

/// One field's change, read from the form.
enum Change {
    Value(Option<Value>),
    Keep,
}

fn values_of<'a>(form: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    form.iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// What the form says about `field`: its value (or N/A with a reason) and note.
fn read_field(
    field: &Field,
    form: &[(String, String)],
) -> Result<(Change, Option<String>), String> {
    let note = values_of(form, &format!("note:{}", field.id))
        .first()
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    if note.as_ref().is_some_and(|n| n.chars().count() > MAX_NOTE) {
        return Err(format!("Keep the note to at most {MAX_NOTE} characters."));
    }
    let na = values_of(form, &format!("na:{}", field.id))
        .first()
        .map(|n| n.trim().to_string())
        .unwrap_or_default();
    if !na.is_empty() {
        if !field.allow_na {
            return Err("This question cannot be marked not applicable.".into());
        }
        if na.chars().count() > MAX_NOTE {
            return Err(format!("Keep the reason to at most {MAX_NOTE} characters."));
        }
        return Ok((Change::Value(Some(Value::Na(na))), note));
    }
    if field.kind == FieldKind::Upload {
        // Files arrive by upload; an emptied N/A reason clears a former N/A.
        return Ok((Change::Keep, note));
    }
    let typed: Vec<String> = values_of(form, &format!("v:{}", field.id))
        .into_iter()
        .map(str::to_string)
        .collect();
    let value = values::parse(field, &typed)?;
    Ok((Change::Value(value), note))
}

/// What saving does to one answer's value.
enum Pending {
    Set(Option<String>),
    Files,
    Nothing,
}

/// Saves the fields the form lists (`f` = field id, once per field shown), then
/// renders. An answer in a bad format is not saved; the others are.
pub async fn save(state: &AppState, task: &Task, form: Vec<(String, String)>) -> TaskResult<Saved> {
    let view = open_fields(state, task).await?;
    let stored = super::stored_answers(state, task).await?;
    let listed = values_of(&form, "f");
    let mut changes = Vec::new();
    let mut errors = Vec::new();
    for field in super::visible_fields(&view) {
        if !listed.contains(&field.id.as_str()) || field.kind == FieldKind::Statement {
            continue;
        }
        let before = stored.iter().find(|s| s.field == field.id);
        match read_field(field, &form) {
            Err(message) => errors.push(FieldError {
                field: field.id.clone(),
                message,
                typed: values_of(&form, &format!("v:{}", field.id)).join(", "),
            }),
            Ok((change, note)) => {
                let locked = before.is_some_and(|s| s.review == Review::Accepted);
                let was = before.and_then(|s| s.value.clone());
                let pending = match change {
                    _ if locked => Pending::Nothing,
                    Change::Value(v) if v != was => Pending::Set(
                        v.map(|v| serde_json::to_string(&v))
                            .transpose()
                            .map_err(AppError::internal)?,
                    ),
                    // An upload question cleared of its N/A goes back to its files.
                    Change::Keep if matches!(was, Some(Value::Na(_))) => Pending::Files,
                    _ => Pending::Nothing,
                };
                changes.push((field.id.clone(), pending, note));
            }
        }
    }
    let id = task.id;
    state
        .db
        .write(move |tx| {
            for (field, pending, note) in &changes {
                match pending {
                    Pending::Set(value) => repo::set_value(tx, id, field, value.as_deref())?,
                    Pending::Files => {
                        repo::set_value(tx, id, field, files_json(tx, id, field).as_deref())?
                    }
                    Pending::Nothing => {}
                }
                repo::set_note(tx, id, field, note.as_deref())?;
            }
            Ok::<_, DbError>(())
        })
        .await?;
    let task = super::by_public_id(state, &task.public_id).await?;
    let rendered = super::render(state, &task).await?;
    Ok(Saved { errors, rendered })
}

/// The answer of an upload question: the files sent against it.
fn files_json(
    conn: &rusqlite::Connection,
    task: crate::ids::TaskId,
    field: &str,
) -> Option<String> {
    let ids: Vec<String> = repo::files(conn, task)
        .ok()?
        .into_iter()
        .filter(|f| f.field_id.as_deref() == Some(field))
        .map(|f| f.document_id)
        .collect();
    if ids.is_empty() {
        return None;
    }
    serde_json::to_string(&Value::Files(ids)).ok()
}

/// Checks that `field` takes uploads now, before any byte is stored.
pub async fn upload_field(state: &AppState, task: &Task, field: &str) -> TaskResult<Field> {
    let view = open_fields(state, task).await?;
    let Some(f) = super::visible_fields(&view)
        .into_iter()
        .find(|f| f.id == field && f.kind == FieldKind::Upload)
    else {
        return refused("Choose a question that asks for a file.");
    };
    let stored = super::stored_answers(state, task).await?;
    if stored
        .iter()
        .any(|s| s.field == field && s.review == Review::Accepted)
    {
        return refused(format!(
            "{}: your firm already accepted this item.",
            f.label
        ));
    }
    Ok(f.clone())
}

/// Stores a file the client sent for `task` in its Documents, tagged with the
/// task and, for a question's upload, the question (whose answer it joins).
pub async fn store_file<S>(
    state: &AppState,
    client: &Client,
    task: &Task,
    field: Option<&str>,
    name: &str,
    body: S,
    visitor: &Visitor,
) -> TaskResult<Document>
where
    S: Stream<Item = std::io::Result<Bytes>> + Send + Unpin + 'static,
{
    let (id, field) = (task.id, field.map(str::to_string));
    let folder = format!("{} / Tasks", task.tax_year);
    let doc = crate::documents::upload::receive(
        state,
        client,
        &folder,
        name,
        body,
        visitor,
        move |tx, doc| {
            if let Some(f) = &field {
                repo::release_returned(tx, id, f)?;
            }
            repo::link_file(tx, doc.id, id, field.as_deref(), None)?;
            match &field {
                Some(f) => repo::set_value(tx, id, f, files_json(tx, id, f).as_deref()),
                None => Ok(()),
            }
        },
    )
    .await?;
    Ok(doc)
}
