//! Interface 0.1.0: bindings generated from `plugins/wit/v0.1` (frozen), the
//! `log` import, and one [`Plugin`] method per export.

use wasmtime::component::{HasSelf, Linker};

use super::call::{CallState, Label, run};
use super::runtime::Runtime;
use super::{About, Bindings, Called, LogLevel, Plugin};

// The generated module is `portal` (from the package name); `self::` keeps
// `use` paths apart from the crate itself (rustdoc links it as `portal` too).
wasmtime::component::bindgen!({
    path: "plugins/wit/v0.1",
    world: "task-plugin",
    imports: { default: trappable },
});

pub use self::portal::task::types::{
    Answer, Ctx, Field, Finish, Info, Issue, Kind, Outcome, Review, Section, Value, View,
};

/// A 0.1 plugin, linked and ready to instantiate.
pub type Pre = TaskPluginPre<CallState>;

pub(super) fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    TaskPlugin::add_to_linker::<CallState, HasSelf<CallState>>(linker, |state| state)
}

impl portal::task::types::Host for CallState {}

impl portal::task::log::Host for CallState {
    fn write(&mut self, level: portal::task::log::Level, message: String) -> wasmtime::Result<()> {
        use self::portal::task::log::Level;
        let level = match level {
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        self.write_log(level, message)
    }
}

fn pre(bindings: &Bindings) -> &Pre {
    match bindings {
        Bindings::V0_1(pre) => pre,
    }
}

/// `describe` before the plugin is known by its id (while loading).
pub(super) fn describe_with(
    runtime: &Runtime,
    label: &Label,
    bindings: &Bindings,
) -> Called<About> {
    run(runtime, label, bindings, "describe", |store, bindings| {
        let info = pre(bindings)
            .instantiate(&mut *store)?
            .portal_task_task_type()
            .call_describe(&mut *store)?;
        Ok(About {
            id: info.id,
            name: info.name,
            version: info.version,
            summary: info.summary,
        })
    })
}

impl Plugin {
    /// Who the plugin is (what it said when loaded is in [`Plugin::about`]).
    pub fn describe(&self) -> Called<Info> {
        self.call("describe", |store, bindings| {
            pre(bindings)
                .instantiate(&mut *store)?
                .portal_task_task_type()
                .call_describe(&mut *store)
        })
    }

    /// The form staff fill in when they assign the type.
    pub fn settings_form(&self) -> Called<Vec<Section>> {
        self.call("settings-form", |store, bindings| {
            pre(bindings)
                .instantiate(&mut *store)?
                .portal_task_task_type()
                .call_settings_form(&mut *store)
        })
    }

    /// Messages about the settings staff entered.
    pub fn check_settings(&self, settings: &[Answer]) -> Called<Vec<Issue>> {
        self.call("check-settings", |store, bindings| {
            pre(bindings)
                .instantiate(&mut *store)?
                .portal_task_task_type()
                .call_check_settings(&mut *store, settings)
        })
    }

    /// The client's page for the answers so far; `Err` is the plugin's own refusal.
    pub fn render(
        &self,
        ctx: &Ctx,
        settings: &[Answer],
        answers: &[Answer],
        prior: &[Answer],
    ) -> Called<Result<View, String>> {
        self.call("render", |store, bindings| {
            pre(bindings)
                .instantiate(&mut *store)?
                .portal_task_task_type()
                .call_render(&mut *store, ctx, settings, answers, prior)
        })
    }

    /// The client pressed Submit; `Err` holds the plugin's reasons to refuse.
    pub fn submit(
        &self,
        ctx: &Ctx,
        settings: &[Answer],
        answers: &[Answer],
    ) -> Called<Result<Outcome, Vec<Issue>>> {
        self.call("submit", |store, bindings| {
            pre(bindings)
                .instantiate(&mut *store)?
                .portal_task_task_type()
                .call_submit(&mut *store, ctx, settings, answers)
        })
    }
}
