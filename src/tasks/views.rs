//! Tasks as the pages show them: rows for lists, and a kind's view merged with
//! the saved answers, files, review states and messages for the task pages.

use serde::Serialize;

use super::answers::FieldError;
use super::kinds::{Field, FieldKind, Issue, Review, Value, View};
use super::repo::{Message, TaskFile};
use super::{Stored, Task, kinds, state, values};
use crate::error::AppResult;
use crate::infra::db::DbError;
use crate::state::AppState;

#[derive(Debug, Clone, Serialize)]
pub struct TaskRow {
    pub id: String,
    pub title: String,
    pub type_name: String,
    pub state: String,
    pub state_label: &'static str,
    pub due: Option<String>,
    pub tax_year: i64,
    pub done: i64,
    pub total: i64,
    pub percent: i64,
    pub is_exchange: bool,
    /// The client has opened it.
    pub started: bool,
    pub created_at: i64,
    pub reopen_message: Option<String>,
    pub summary: Option<String>,
}

pub fn row(state: &AppState, task: &Task) -> TaskRow {
    let type_name = kinds::find(state, &task.type_id)
        .map(|k| k.info().name.clone())
        .unwrap_or_else(|| task.type_id.clone());
    let percent = (task.progress_done * 100)
        .checked_div(task.progress_total)
        .unwrap_or(0)
        .clamp(0, 100);
    TaskRow {
        id: task.public_id.clone(),
        title: task.title.clone(),
        type_name,
        state: task.state.clone(),
        state_label: state::label(&task.state),
        due: task.due_date.clone(),
        tax_year: task.tax_year,
        done: task.progress_done,
        total: task.progress_total,
        percent,
        is_exchange: task.type_id == kinds::exchange::ID,
        started: task.opened_at.is_some(),
        created_at: task.created_at,
        reopen_message: task.reopen_message.clone(),
        summary: task.summary.clone(),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ChoiceView {
    pub value: String,
    pub checked: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileView {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct FieldView {
    pub id: String,
    pub label: String,
    pub help: Option<String>,
    /// The kind's name (`money`, `upload`, ...).
    pub kind: String,
    /// The `<input type>` for one-line kinds.
    pub input_type: &'static str,
    pub inputmode: &'static str,
    pub placeholder: &'static str,
    pub choices: Vec<ChoiceView>,
    pub value: String,
    /// As staff read it.
    pub readable: String,
    pub answered: bool,
    pub required: bool,
    pub allow_na: bool,
    pub na_reason: String,
    pub note: String,
    pub reviewed: bool,
    pub review: &'static str,
    pub return_reason: Option<String>,
    pub accept: String,
    pub files: Vec<FileView>,
    pub issues: Vec<String>,
    /// The kind says this answer must change before the task can be submitted.
    pub blocked: bool,
    pub error: Option<String>,
    pub hidden: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct SectionView {
    pub id: String,
    pub title: String,
    pub intro: Option<String>,
    pub fields: Vec<FieldView>,
    /// Every field of the section is hidden.
    pub hidden: bool,
}

fn kind_name(kind: FieldKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// (input type, inputmode, placeholder) for one-line kinds.
fn input_of(kind: FieldKind) -> (&'static str, &'static str, &'static str) {
    match kind {
        FieldKind::Number => ("text", "decimal", ""),
        FieldKind::Money => ("text", "decimal", "0.00"),
        FieldKind::Date => ("date", "", "YYYY-MM-DD"),
        FieldKind::Ssn => ("text", "numeric", "123-45-6789"),
        FieldKind::Ein => ("text", "numeric", "12-3456789"),
        _ => ("text", "", ""),
    }
}

fn review_name(review: Review) -> &'static str {
    match review {
        Review::Waiting => "waiting",
        Review::Accepted => "accepted",
        Review::Returned => "returned",
    }
}

/// What the page needs besides the view.
pub struct Known<'a> {
    pub stored: &'a [Stored],
    pub files: &'a [TaskFile],
    pub errors: &'a [FieldError],
    pub issues: &'a [Issue],
}

fn field_view(f: &Field, k: &Known) -> FieldView {
    let stored = k.stored.iter().find(|s| s.field == f.id);
    let value = stored.and_then(|s| s.value.clone());
    let error = k.errors.iter().find(|e| e.field == f.id);
    let picked = match &value {
        Some(Value::Picked(p)) => p.clone(),
        _ => Vec::new(),
    };
    let (input_type, inputmode, placeholder) = input_of(f.kind);
    FieldView {
        id: f.id.clone(),
        label: f.label.clone(),
        help: f.help.clone(),
        kind: kind_name(f.kind),
        input_type,
        inputmode,
        placeholder,
        choices: f
            .choices
            .iter()
            .map(|c| ChoiceView {
                value: c.clone(),
                checked: picked.contains(c),
            })
            .collect(),
        value: match (error, &value) {
            (Some(e), _) => e.typed.clone(),
            (None, Some(v)) => values::shown(v),
            (None, None) => String::new(),
        },
        readable: value.as_ref().map(values::readable).unwrap_or_default(),
        answered: value.is_some(),
        required: f.required,
        allow_na: f.allow_na,
        na_reason: match &value {
            Some(Value::Na(r)) => r.clone(),
            _ => String::new(),
        },
        note: stored.and_then(|s| s.note.clone()).unwrap_or_default(),
        reviewed: f.reviewed,
        review: stored.map_or("waiting", |s| review_name(s.review)),
        return_reason: stored
            .filter(|s| s.review == Review::Returned)
            .and_then(|s| s.return_reason.clone()),
        accept: f.accept.clone().unwrap_or_default(),
        files: k
            .files
            .iter()
            .filter(|file| file.field_id.as_deref() == Some(f.id.as_str()))
            .map(|file| FileView {
                id: file.document_id.clone(),
                name: file.name.clone(),
            })
            .collect(),
        issues: k
            .issues
            .iter()
            .filter(|i| i.field.as_deref() == Some(f.id.as_str()))
            .map(|i| i.message.clone())
            .collect(),
        blocked: k
            .issues
            .iter()
            .any(|i| i.blocking && i.field.as_deref() == Some(f.id.as_str())),
        error: error.map(|e| e.message.clone()),
        hidden: !f.visible,
    }
}

/// The view's sections with the answers; hidden fields only when asked for.
pub fn sections(view: &View, known: &Known, include_hidden: bool) -> Vec<SectionView> {
    view.sections
        .iter()
        .map(|s| {
            let fields: Vec<FieldView> = s
                .fields
                .iter()
                .filter(|f| include_hidden || f.visible)
                .map(|f| field_view(f, known))
                .collect();
            SectionView {
                id: s.id.clone(),
                title: s.title.clone(),
                intro: s.intro.clone(),
                hidden: fields.iter().all(|f| f.hidden),
                fields,
            }
        })
        .collect()
}

/// The first shown question still waiting for the client: where the page resumes.
pub fn first_gap(sections: &[SectionView]) -> Option<String> {
    sections
        .iter()
        .flat_map(|s| s.fields.iter())
        .filter(|f| !f.hidden && f.kind != "statement")
        .find(|f| {
            (f.required && !f.answered) || f.review == "returned" || f.error.is_some() || f.blocked
        })
        .map(|f| f.id.clone())
}

/// Issues not tied to a field, for the top of the page.
pub fn general_issues(issues: &[Issue]) -> Vec<String> {
    issues
        .iter()
        .filter(|i| i.field.is_none())
        .map(|i| i.message.clone())
        .collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct MessageView {
    pub from_firm: bool,
    pub who: String,
    pub body: String,
    pub at: i64,
    pub files: Vec<FileView>,
}

pub fn messages(thread: Vec<(Message, Vec<TaskFile>)>, client_name: &str) -> Vec<MessageView> {
    thread
        .into_iter()
        .map(|(m, files)| MessageView {
            from_firm: m.author == "staff",
            who: if m.author == "staff" {
                m.staff_name.unwrap_or_else(|| "Your firm".into())
            } else {
                client_name.to_string()
            },
            body: m.body,
            at: m.at,
            files: files
                .into_iter()
                .map(|f| FileView {
                    id: f.document_id,
                    name: f.name,
                })
                .collect(),
        })
        .collect()
}

/// A task page's questions: rendered now (or the last good view), merged with
/// the answers, files and the answers not saved.
pub struct Assembled {
    pub sections: Vec<SectionView>,
    pub issues: Vec<String>,
    pub failure: Option<String>,
    /// Some question is hidden now (its answer is kept).
    pub has_hidden: bool,
    pub messages: Vec<MessageView>,
}

pub async fn assemble(
    state: &AppState,
    task: &Task,
    errors: &[FieldError],
    include_hidden: bool,
    client_name: &str,
) -> AppResult<Assembled> {
    let rendered = super::render(state, task).await?;
    let stored = super::stored_answers(state, task).await?;
    let id = task.id;
    let (files, thread) = state
        .db
        .read(move |conn| {
            Ok::<_, DbError>((
                super::repo::files(conn, id)?,
                super::repo::messages(conn, id)?,
            ))
        })
        .await?;
    let view = rendered.view.unwrap_or(View {
        sections: Vec::new(),
        done: 0,
        total: 0,
        issues: Vec::new(),
    });
    let known = Known {
        stored: &stored,
        files: &files,
        errors,
        issues: &view.issues,
    };
    let thread = thread
        .into_iter()
        .map(|m| {
            let mine = files
                .iter()
                .filter(|f| f.message_id == Some(m.id))
                .cloned()
                .collect();
            (m, mine)
        })
        .collect();
    Ok(Assembled {
        sections: sections(&view, &known, include_hidden),
        issues: general_issues(&view.issues),
        failure: rendered.failure,
        has_hidden: view
            .sections
            .iter()
            .flat_map(|s| &s.fields)
            .any(|f| !f.visible),
        messages: messages(thread, client_name),
    })
}
