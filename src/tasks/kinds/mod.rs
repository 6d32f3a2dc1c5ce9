//! Task kinds: what a task of a given type asks of the client. Plugin-backed
//! kinds (`plugin.rs`) adapt the WASM host to this contract; it mirrors the
//! `portal:task@0.1.0` WIT package in `plugins/wit/` so that the engine, the
//! pages and the storage never see a plugin's own types.
//!
//! Every call is blocking (a plugin runs synchronously under its own time
//! limit): call these from `spawn_blocking`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::state::AppState;

pub mod exchange;
pub mod plugin;

/// Every task type staff can assign: the built-in Exchange, then each loaded plugin.
pub fn available(state: &AppState) -> Vec<Arc<dyn TaskKind>> {
    let mut kinds: Vec<Arc<dyn TaskKind>> = vec![Arc::new(exchange::Exchange)];
    kinds.extend(plugin::available(state));
    #[cfg(test)]
    kinds.extend(
        TEST_KINDS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .cloned(),
    );
    kinds
}

/// Kinds the engine's unit tests add (each test its own id).
#[cfg(test)]
pub static TEST_KINDS: std::sync::Mutex<Vec<Arc<dyn TaskKind>>> = std::sync::Mutex::new(Vec::new());

/// The task type with this id, if it is available now.
pub fn find(state: &AppState, type_id: &str) -> Option<Arc<dyn TaskKind>> {
    available(state)
        .into_iter()
        .find(|k| k.info().id == type_id)
}

/// Who a task type is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindInfo {
    /// Stable type id, e.g. `organizer`; stored with each task.
    pub id: String,
    pub name: String,
    /// The plugin's own version.
    pub version: String,
    pub summary: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FieldKind {
    Text,
    LongText,
    Number,
    Money,
    Date,
    YesNo,
    Choice,
    MultiChoice,
    Ssn,
    Ein,
    Upload,
    Statement,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Field {
    pub id: String,
    pub label: String,
    pub help: Option<String>,
    pub kind: FieldKind,
    pub choices: Vec<String>,
    pub required: bool,
    pub allow_na: bool,
    pub visible: bool,
    pub reviewed: bool,
    pub accept: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Section {
    pub id: String,
    pub title: String,
    pub intro: Option<String>,
    pub fields: Vec<Field>,
}

/// An answer's value; stored as JSON in `task_answers.value`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "type", content = "value")]
pub enum Value {
    Text(String),
    Number(f64),
    Cents(i64),
    Date(String),
    Flag(bool),
    Picked(Vec<String>),
    Files(Vec<String>),
    /// Not applicable, with the client's reason.
    Na(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Review {
    Waiting,
    Accepted,
    Returned,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub field: String,
    pub value: Value,
    pub review: Review,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    pub field: Option<String>,
    pub message: String,
    pub blocking: bool,
}

/// What a call knows about the task it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ctx {
    /// The task's public id (opaque to the plugin).
    pub task_id: String,
    pub tax_year: u16,
    /// Today at the firm, YYYY-MM-DD.
    pub today: String,
    pub locale: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct View {
    pub sections: Vec<Section>,
    pub done: u32,
    pub total: u32,
    pub issues: Vec<Issue>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Finish {
    Completed,
    AwaitingReview,
    ChangesRequested,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub summary: String,
    pub finish: Finish,
    pub notify_staff: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

/// A line a plugin logged during one call; kept with the task for staff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
}

/// The result of one call, with the lines the plugin logged while making it
/// (also when the call failed).
#[derive(Debug)]
pub struct Called<T> {
    pub result: Result<T, KindError>,
    pub log: Vec<LogLine>,
}

/// Why a call to a task kind gave no answer. The message is written for the
/// person looking at the task (it names the plugin and what went wrong, never
/// a client's data); answers already saved are never affected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KindError {
    /// The plugin ran but refused (its own `err` from `render`).
    #[error("{0}")]
    Refused(String),
    /// The plugin broke a limit, trapped or could not be run.
    #[error("{0}")]
    Failed(String),
}

/// A task type the engine can assign. Implementations must be cheap to call
/// concurrently: every call stands alone.
pub trait TaskKind: Send + Sync {
    fn info(&self) -> &KindInfo;
    fn settings_form(&self) -> Called<Vec<Section>>;
    fn check_settings(&self, settings: &[Answer]) -> Called<Vec<Issue>>;
    fn render(
        &self,
        ctx: &Ctx,
        settings: &[Answer],
        answers: &[Answer],
        prior: &[Answer],
    ) -> Called<View>;
    /// `Ok(Err(issues))` is the plugin refusing the submission.
    fn submit(
        &self,
        ctx: &Ctx,
        settings: &[Answer],
        answers: &[Answer],
    ) -> Called<Result<Outcome, Vec<Issue>>>;
}
