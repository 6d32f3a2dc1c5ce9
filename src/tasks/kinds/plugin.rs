//! Plugin-backed task kinds: adapts each plugin the host loaded to the
//! [`TaskKind`] contract, converting between the WIT types of the plugin's
//! interface version and the engine's own.

use std::sync::Arc;

use crate::infra::plugins::v0_1 as wit;
use crate::infra::plugins::{self, Plugin};
use crate::state::AppState;

use super::{
    Answer, Called, Ctx, Field, FieldKind, Finish, Issue, KindError, KindInfo, LogLevel, LogLine,
    Outcome, Review, Section, TaskKind, Value, View,
};

/// Every task type the installed plugins offer.
pub fn available(state: &AppState) -> Vec<Arc<dyn TaskKind>> {
    state
        .plugins
        .plugins()
        .iter()
        .map(|p| Arc::new(PluginKind::new(p.clone())) as Arc<dyn TaskKind>)
        .collect()
}

/// A task kind served by one plugin.
pub struct PluginKind {
    plugin: Arc<Plugin>,
    info: KindInfo,
}

impl PluginKind {
    pub fn new(plugin: Arc<Plugin>) -> PluginKind {
        let about = plugin.about();
        let info = KindInfo {
            id: about.id.clone(),
            name: about.name.clone(),
            version: about.version.clone(),
            summary: about.summary.clone(),
        };
        PluginKind { plugin, info }
    }
}

impl TaskKind for PluginKind {
    fn info(&self) -> &KindInfo {
        &self.info
    }

    fn settings_form(&self) -> Called<Vec<Section>> {
        adapt(self.plugin.settings_form(), |s| Ok(all(s, section)))
    }

    fn check_settings(&self, settings: &[Answer]) -> Called<Vec<Issue>> {
        let settings = to_wit_answers(settings);
        adapt(self.plugin.check_settings(&settings), |i| Ok(all(i, issue)))
    }

    fn render(
        &self,
        ctx: &Ctx,
        settings: &[Answer],
        answers: &[Answer],
        prior: &[Answer],
    ) -> Called<View> {
        let called = self.plugin.render(
            &to_wit_ctx(ctx),
            &to_wit_answers(settings),
            &to_wit_answers(answers),
            &to_wit_answers(prior),
        );
        adapt(called, |rendered| match rendered {
            Ok(view) => Ok(View {
                sections: all(view.sections, section),
                done: view.done,
                total: view.total,
                issues: all(view.issues, issue),
            }),
            Err(refusal) => Err(KindError::Refused(refusal)),
        })
    }

    fn submit(
        &self,
        ctx: &Ctx,
        settings: &[Answer],
        answers: &[Answer],
    ) -> Called<Result<Outcome, Vec<Issue>>> {
        let called = self.plugin.submit(
            &to_wit_ctx(ctx),
            &to_wit_answers(settings),
            &to_wit_answers(answers),
        );
        adapt(called, |submitted| {
            Ok(submitted
                .map(|o| Outcome {
                    summary: o.summary,
                    finish: match o.finish {
                        wit::Finish::Completed => Finish::Completed,
                        wit::Finish::AwaitingReview => Finish::AwaitingReview,
                        wit::Finish::ChangesRequested => Finish::ChangesRequested,
                    },
                    notify_staff: o.notify_staff,
                })
                .map_err(|i| all(i, issue)))
        })
    }
}

/// Converts a host call's result and log into the engine's.
fn adapt<T, U>(
    called: plugins::Called<T>,
    convert: impl FnOnce(T) -> Result<U, KindError>,
) -> Called<U> {
    let log = called.log.into_iter().map(log_line).collect();
    let result = match called.result {
        Ok(value) => convert(value),
        Err(e) => Err(KindError::Failed(e.to_string())),
    };
    Called { result, log }
}

fn log_line(line: plugins::LogLine) -> LogLine {
    let level = match line.level {
        plugins::LogLevel::Debug => LogLevel::Debug,
        plugins::LogLevel::Info => LogLevel::Info,
        plugins::LogLevel::Warn => LogLevel::Warn,
        plugins::LogLevel::Error => LogLevel::Error,
    };
    LogLine {
        level,
        message: line.message,
    }
}

fn to_wit_ctx(ctx: &Ctx) -> wit::Ctx {
    wit::Ctx {
        task_id: ctx.task_id.clone(),
        tax_year: ctx.tax_year,
        today: ctx.today.clone(),
        locale: ctx.locale.clone(),
    }
}

fn to_wit_answers(answers: &[Answer]) -> Vec<wit::Answer> {
    answers
        .iter()
        .map(|a| wit::Answer {
            field: a.field.clone(),
            value: to_wit_value(&a.value),
            review: match a.review {
                Review::Waiting => wit::Review::Waiting,
                Review::Accepted => wit::Review::Accepted,
                Review::Returned => wit::Review::Returned,
            },
        })
        .collect()
}

fn to_wit_value(value: &Value) -> wit::Value {
    match value.clone() {
        Value::Text(t) => wit::Value::Text(t),
        Value::Number(n) => wit::Value::Number(n),
        Value::Cents(c) => wit::Value::Cents(c),
        Value::Date(d) => wit::Value::Date(d),
        Value::Flag(f) => wit::Value::Flag(f),
        Value::Picked(p) => wit::Value::Picked(p),
        Value::Files(f) => wit::Value::Files(f),
        Value::Na(reason) => wit::Value::Na(reason),
    }
}

/// Each of `items` converted by `f`.
fn all<A, B>(items: Vec<A>, f: fn(A) -> B) -> Vec<B> {
    items.into_iter().map(f).collect()
}

fn section(s: wit::Section) -> Section {
    Section {
        id: s.id,
        title: s.title,
        intro: s.intro,
        fields: all(s.fields, field),
    }
}

fn field(f: wit::Field) -> Field {
    Field {
        id: f.id,
        label: f.label,
        help: f.help,
        kind: kind(f.kind),
        choices: f.choices,
        required: f.required,
        allow_na: f.allow_na,
        visible: f.visible,
        reviewed: f.reviewed,
        accept: f.accept,
    }
}

fn kind(k: wit::Kind) -> FieldKind {
    match k {
        wit::Kind::Text => FieldKind::Text,
        wit::Kind::LongText => FieldKind::LongText,
        wit::Kind::Number => FieldKind::Number,
        wit::Kind::Money => FieldKind::Money,
        wit::Kind::Date => FieldKind::Date,
        wit::Kind::YesNo => FieldKind::YesNo,
        wit::Kind::Choice => FieldKind::Choice,
        wit::Kind::MultiChoice => FieldKind::MultiChoice,
        wit::Kind::Ssn => FieldKind::Ssn,
        wit::Kind::Ein => FieldKind::Ein,
        wit::Kind::Upload => FieldKind::Upload,
        wit::Kind::Statement => FieldKind::Statement,
    }
}

fn issue(i: wit::Issue) -> Issue {
    Issue {
        field: i.field,
        message: i.message,
        blocking: i.blocking,
    }
}
