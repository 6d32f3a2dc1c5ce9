//! Samples for the task pages and emails (T1–T3), built from the same view
//! structs the task handlers serialise.

use minijinja::context;
use minijinja::value::{Serde, Value};

use super::{client_page, sample, staff_page};
use crate::tasks::kinds::{Field, FieldKind, Issue, Review, Section, Value as Answer, View};
use crate::tasks::repo::{Event, LogRow, TaskFile};
use crate::tasks::views::{self, Known, MessageView, TaskRow};
use crate::tasks::{Stored, answers::FieldError};
use crate::theme_check::Sample;

const JAN_1: i64 = 1_767_225_600;

fn row(state: &str, exchange: bool) -> TaskRow {
    TaskRow {
        id: "t1".into(),
        title: "2025 Tax Organizer".into(),
        type_name: if exchange { "Exchange" } else { "Organizer" }.into(),
        state: state.into(),
        state_label: crate::tasks::state::label(state),
        due: Some("2026-03-01".into()),
        tax_year: 2025,
        done: 3,
        total: 7,
        percent: 42,
        is_exchange: exchange,
        started: state != "open",
        created_at: JAN_1,
        reopen_message: Some("Please add your second W-2.".into()),
        summary: Some("7 answers, 2 files".into()),
    }
}

fn field(id: &str, kind: FieldKind, visible: bool) -> Field {
    Field {
        id: id.into(),
        label: format!("Question {id}"),
        help: Some("Help text".into()),
        kind,
        choices: vec!["Single".into(), "Married filing jointly".into()],
        required: true,
        allow_na: true,
        visible,
        reviewed: kind == FieldKind::Upload,
        accept: None,
    }
}

/// Every kind of field, one hidden, with answers, a returned upload, an error.
fn sections() -> Vec<views::SectionView> {
    let kinds = [
        FieldKind::Text,
        FieldKind::LongText,
        FieldKind::Number,
        FieldKind::Money,
        FieldKind::Date,
        FieldKind::YesNo,
        FieldKind::Choice,
        FieldKind::MultiChoice,
        FieldKind::Ssn,
        FieldKind::Ein,
        FieldKind::Upload,
        FieldKind::Statement,
    ];
    let mut fields: Vec<Field> = kinds
        .iter()
        .enumerate()
        .map(|(i, k)| field(&format!("q{i}"), *k, true))
        .collect();
    fields.push(field("hidden", FieldKind::Text, false));
    let view = View {
        sections: vec![Section {
            id: "main".into(),
            title: "About you".into(),
            intro: Some("Tell us about your year.".into()),
            fields,
        }],
        done: 3,
        total: 7,
        issues: vec![Issue {
            field: Some("q0".into()),
            message: "Check this".into(),
            blocking: false,
        }],
    };
    let stored = vec![
        Stored {
            field: "q3".into(),
            value: Some(Answer::Cents(125_000)),
            review: Review::Waiting,
            return_reason: None,
            note: Some("From my pay stub".into()),
        },
        Stored {
            field: "q10".into(),
            value: Some(Answer::Files(vec!["d1".into()])),
            review: Review::Returned,
            return_reason: Some("This is last year's W-2.".into()),
            note: None,
        },
        Stored {
            field: "q7".into(),
            value: Some(Answer::Picked(vec!["Single".into()])),
            review: Review::Waiting,
            return_reason: None,
            note: None,
        },
    ];
    let files = vec![TaskFile {
        document_id: "d1".into(),
        name: "W-2.pdf".into(),
        field_id: Some("q10".into()),
        message_id: None,
    }];
    let errors = vec![FieldError {
        field: "q8".into(),
        message: "Enter a Social Security number as 123-45-6789.".into(),
        typed: "12345".into(),
    }];
    let known = Known {
        stored: &stored,
        files: &files,
        errors: &errors,
        issues: &view.issues,
    };
    views::sections(&view, &known, true)
}

fn messages() -> Vec<MessageView> {
    let file = views::FileView {
        id: "d1".into(),
        name: "1099-INT.pdf".into(),
    };
    vec![
        MessageView {
            from_firm: true,
            who: "Ann Smith".into(),
            body: "Could you send your 1099-INT?".into(),
            at: JAN_1,
            files: Vec::new(),
        },
        MessageView {
            from_firm: false,
            who: "Jane Doe".into(),
            body: String::new(),
            at: JAN_1,
            files: vec![file],
        },
    ]
}

fn client_task(state: &str, exchange: bool, editable: bool, error: Option<&str>) -> Value {
    let sections = sections();
    let gap = views::first_gap(&sections);
    context! {
        task => Serde(row(state, exchange)), editable, sections => Serde(sections), gap,
        issues => vec!["Answer the dependents section."], failure => error,
        messages => Serde(messages()), error, notice => Some("Saved."),
    }
}

pub fn pages() -> Vec<Sample> {
    let home = |pending: Vec<TaskRow>, completed: Vec<TaskRow>| {
        client_page(
            "/",
            context! { pending => Serde(pending), completed => Serde(completed) },
        )
    };
    vec![
        sample(
            "home.html",
            "with tasks",
            home(
                vec![row("open", false), row("awaiting_review", true)],
                vec![row("completed", false)],
            ),
        ),
        sample("home.html", "no tasks", home(Vec::new(), Vec::new())),
        sample(
            "task.html",
            "open, with an error",
            client_page(
                "/tasks/t1",
                client_task("open", false, true, Some("Not saved")),
            ),
        ),
        sample(
            "task.html",
            "completed",
            client_page("/tasks/t1", client_task("completed", false, false, None)),
        ),
        sample(
            "task.html",
            "exchange",
            client_page("/tasks/t1", client_task("open", true, true, None)),
        ),
        sample(
            "task.html",
            "with the firm",
            client_page(
                "/tasks/t1",
                client_task("awaiting_review", true, false, None),
            ),
        ),
        staff_task("open", false, true),
        staff_task("completed", true, false),
        assign(None),
        assign(Some("organizer")),
        sample(
            "staff/task_settings.html",
            "",
            staff_page(
                "/staff/tasks/t1/settings",
                context! {
                    client => client(), task => Serde(row("changes_requested", false)),
                    sections => Serde(sections()), error => Some("Enter the amount."),
                },
            ),
        ),
    ]
}

fn client() -> Value {
    context! { id => "c1", name => "Jane Doe", email => "jane@example.com" }
}

fn staff_task(state: &'static str, exchange: bool, all: bool) -> Sample {
    let events = vec![Event {
        at: JAN_1,
        actor: "Ann Smith (staff)".into(),
        kind: "task_assigned".into(),
        detail: "2025 Tax Organizer".into(),
    }];
    let log = vec![LogRow {
        at: JAN_1,
        call: "render".into(),
        level: "info".into(),
        message: "rendered 40 questions".into(),
    }];
    let ctx = context! {
        client => client(), task => Serde(row(state, exchange)), sections => Serde(sections()),
        show_hidden => all, has_hidden => true, failure => all.then_some("The plugin failed."),
        events => Serde(if all { events } else { Vec::new() }),
        log => Serde(if all { log } else { Vec::new() }),
        messages => Serde(messages()), can_review => all, can_reopen => !all, can_cancel => all,
        can_revise => all, can_post => exchange, can_complete => !all, error => all.then_some("Say why."),
        notice => all.then_some("Saved."),
    };
    sample("staff/task.html", state, staff_page("/staff/tasks/t1", ctx))
}

fn assign(chosen: Option<&'static str>) -> Sample {
    let kinds = vec![context! { id => "exchange", name => "Exchange", summary => "A thread" }];
    let ctx = context! {
        client => client(), kinds, chosen => chosen.unwrap_or(""),
        chosen_name => chosen.map(|_| "Organizer"),
        sections => Serde(if chosen.is_some() { sections() } else { Vec::new() }),
        title => "2025 Organizer", due_date => "2026-03-01", tax_year => "2025",
        error => chosen.map(|_| "Title: this is required."),
    };
    let label = if chosen.is_some() {
        "settings"
    } else {
        "types"
    };
    sample(
        "staff/task_assign.html",
        label,
        staff_page("/staff/clients/c1/tasks", ctx),
    )
}

pub fn emails() -> Vec<Sample> {
    let base = |extra: Value| {
        context! {
            name => "Jane", title => "2025 Tax Organizer", due => Some("2026-03-01"),
            link => "https://portal.smithlee.example/tasks/t1", ..extra
        }
    };
    let items = vec![context! { label => "W-2 from Acme", reason => "This is last year's." }];
    let staff = |what: &str, summary: &str| {
        context! {
            client => "Jane Doe", title => "2025 Tax Organizer", what, summary,
            link => "https://portal.smithlee.example/staff/tasks/t1",
        }
    };
    vec![
        sample("email/task_assigned", "", base(context! {})),
        sample(
            "email/task_reopened",
            "",
            base(context! { message => "Please add your second W-2." }),
        ),
        sample("email/task_returned", "", base(context! { items })),
        sample("email/task_message", "", base(context! {})),
        sample(
            "email/task_reminder",
            "in a week",
            base(context! { days => 7 }),
        ),
        sample(
            "email/task_reminder",
            "tomorrow",
            base(context! { days => 1 }),
        ),
        sample("email/task_reminder", "today", base(context! { days => 0 })),
        sample(
            "email/task_staff_notice",
            "submitted",
            staff("submitted", "40 answers"),
        ),
        sample("email/task_staff_notice", "message", staff("message", "")),
    ]
}
