//! Exchange (built in): a message thread with attachments between the client
//! and the firm. The thread itself is kept by the engine (`task_messages`);
//! as a kind, Exchange only asks staff for the first message and finishes when
//! the client marks it done.

use std::sync::LazyLock;

use super::{
    Answer, Called, Ctx, Field, FieldKind, Finish, Issue, KindInfo, Outcome, Section, TaskKind,
    Value, View,
};

pub const ID: &str = "exchange";
/// The settings field holding the firm's first message.
pub const FIRST_MESSAGE: &str = "message";

static INFO: LazyLock<KindInfo> = LazyLock::new(|| KindInfo {
    id: ID.into(),
    name: "Exchange".into(),
    version: env!("CARGO_PKG_VERSION").into(),
    summary: "A message thread with attachments between the client and the firm.".into(),
});

pub struct Exchange;

fn called<T>(value: T) -> Called<T> {
    Called {
        result: Ok(value),
        log: Vec::new(),
    }
}

/// The firm's first message, from the settings.
pub fn first_message(settings: &[Answer]) -> Option<&str> {
    settings
        .iter()
        .find_map(|a| match (&a.value, a.field.as_str()) {
            (Value::Text(t), FIRST_MESSAGE) if !t.trim().is_empty() => Some(t.as_str()),
            _ => None,
        })
}

impl TaskKind for Exchange {
    fn info(&self) -> &KindInfo {
        &INFO
    }

    fn settings_form(&self) -> Called<Vec<Section>> {
        called(vec![Section {
            id: "exchange".into(),
            title: "Message".into(),
            intro: None,
            fields: vec![Field {
                id: FIRST_MESSAGE.into(),
                label: "First message to the client".into(),
                help: Some("The client is emailed that a message is waiting; the text itself stays in the portal.".into()),
                kind: FieldKind::LongText,
                choices: Vec::new(),
                required: true,
                allow_na: false,
                visible: true,
                reviewed: false,
                accept: None,
            }],
        }])
    }

    fn check_settings(&self, settings: &[Answer]) -> Called<Vec<Issue>> {
        let issues = match first_message(settings) {
            Some(_) => Vec::new(),
            None => vec![Issue {
                field: Some(FIRST_MESSAGE.into()),
                message: "Write the first message to the client.".into(),
                blocking: true,
            }],
        };
        called(issues)
    }

    fn render(&self, _: &Ctx, _: &[Answer], _: &[Answer], _: &[Answer]) -> Called<View> {
        called(View {
            sections: Vec::new(),
            done: 0,
            total: 0,
            issues: Vec::new(),
        })
    }

    fn submit(&self, _: &Ctx, _: &[Answer], _: &[Answer]) -> Called<Result<Outcome, Vec<Issue>>> {
        called(Ok(Outcome {
            summary: "The client marked the conversation done.".into(),
            finish: Finish::Completed,
            notify_staff: false,
        }))
    }
}
