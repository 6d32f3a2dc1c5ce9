//! One call into a plugin: a fresh store with its limits, the plugin's log
//! lines, and every way a call can fail turned into a [`PluginError`].

use std::time::Duration;

use wasmtime::{ResourceLimiter, Store, Trap};
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxView, WasiView};

use super::runtime::{Limits, MAX_LOG_LINE, Runtime};
use super::{Bindings, Plugin};

/// The result of one call, with the lines the plugin logged while making it
/// (also when the call failed).
#[derive(Debug)]
pub struct Called<T> {
    pub result: Result<T, PluginError>,
    pub log: Vec<LogLine>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

/// A line a plugin logged during one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
}

/// A call that gave no answer: which plugin, which function, and why, in
/// words for the person looking at the task (never the data it was given).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plugin `{plugin}` {version}: {function} {failure}")]
pub struct PluginError {
    pub plugin: String,
    pub version: String,
    pub function: &'static str,
    pub failure: Failure,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error("ran past its {} ms limit", .0.as_millis())]
    TimeLimit(Duration),
    #[error("needed more than its {} MiB of memory", .0 >> 20)]
    MemoryLimit(usize),
    #[error("overflowed its stack (recursion too deep)")]
    StackOverflow,
    #[error("returned more than {} KiB of data", .0 >> 10)]
    ResultTooLarge(usize),
    #[error("wrote more than {0} log lines")]
    LogFlood(usize),
    #[error("trapped: {0}")]
    Trap(String),
    #[error("failed: {0}")]
    Failed(String),
}

/// Who is being called, for messages and log lines.
pub(super) struct Label {
    pub(super) id: String,
    pub(super) version: String,
    /// Whether a failure is logged here; while loading, the loader logs it
    /// once as the reason the file was not loaded.
    pub(super) warn: bool,
}

impl Label {
    pub(super) fn new(id: &str, version: &str) -> Label {
        Label {
            id: id.to_string(),
            version: version.to_string(),
            warn: true,
        }
    }

    /// A file being loaded, known only by its name so far.
    pub(super) fn loading(stem: &str) -> Label {
        Label {
            warn: false,
            ..Label::new(stem, "(not yet described)")
        }
    }
}

/// What one store holds: an empty WASI context, the memory budget and the log.
pub struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    budget: Budget,
    log: Vec<LogLine>,
    max_log_lines: usize,
    log_flooded: bool,
    plugin: String,
}

impl CallState {
    fn new(limits: &Limits, plugin: &str) -> CallState {
        // No preopened directories, environment, arguments, network or stdio;
        // clocks read a fixed instant.
        let wasi = WasiCtx::builder()
            .wall_clock(FixedClock)
            .monotonic_clock(FixedClock)
            .build();
        CallState {
            wasi,
            table: ResourceTable::new(),
            budget: Budget {
                limit: limits.memory_bytes,
                used: 0,
                exceeded: false,
            },
            log: Vec::new(),
            max_log_lines: limits.max_log_lines,
            log_flooded: false,
            plugin: plugin.to_string(),
        }
    }

    /// Keeps one line (cut to [`MAX_LOG_LINE`] bytes) and passes it to
    /// `tracing`; past the line limit the call fails.
    pub(super) fn write_log(
        &mut self,
        level: LogLevel,
        mut message: String,
    ) -> wasmtime::Result<()> {
        if self.log.len() >= self.max_log_lines {
            self.log_flooded = true;
            return Err(wasmtime::format_err!("log line limit reached"));
        }
        if message.len() > MAX_LOG_LINE {
            let mut end = MAX_LOG_LINE;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push_str(" […cut]");
        }
        // Escaped: a plugin cannot forge server log lines with a newline.
        let (plugin, text) = (self.plugin.as_str(), message.escape_debug());
        match level {
            LogLevel::Debug => tracing::debug!(target: "plugin", plugin, "{text}"),
            LogLevel::Info => tracing::info!(target: "plugin", plugin, "{text}"),
            LogLevel::Warn => tracing::warn!(target: "plugin", plugin, "{text}"),
            LogLevel::Error => tracing::error!(target: "plugin", plugin, "{text}"),
        }
        self.log.push(LogLine { level, message });
        Ok(())
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A clock that always reads the same instant (the Unix epoch), so that a
/// plugin's output depends only on what it is given.
struct FixedClock;

impl wasmtime_wasi::HostWallClock for FixedClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl wasmtime_wasi::HostMonotonicClock for FixedClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// Memory for all of a store's linear memories together (a component has
/// several core instances, each of which may have its own memory).
struct Budget {
    limit: usize,
    used: usize,
    exceeded: bool,
}

/// Most core instances, tables and memories in one store: far above what a
/// compiled language's component needs, far below the engine's defaults.
const MAX_INSTANCES: usize = 64;
const MAX_TABLES: usize = 64;
const MAX_MEMORIES: usize = 16;
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl ResourceLimiter for Budget {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let used = self.used - current.min(self.used) + desired;
        if used > self.limit {
            // An error (not `Ok(false)`) traps the plugin, rather than letting
            // it carry on with a failed allocation.
            self.exceeded = true;
            return Err(wasmtime::format_err!("memory limit reached"));
        }
        self.used = used;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            self.exceeded = true;
            return Err(wasmtime::format_err!("table limit reached"));
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }
    fn tables(&self) -> usize {
        MAX_TABLES
    }
    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

/// Runs `f` in a fresh store: instantiating and calling happen under the
/// deadline and the limits; any failure becomes a [`PluginError`] and one
/// warning.
pub(super) fn run<T>(
    runtime: &Runtime,
    label: &Label,
    bindings: &Bindings,
    function: &'static str,
    f: impl FnOnce(&mut Store<CallState>, &Bindings) -> wasmtime::Result<T>,
) -> Called<T> {
    let limits = *runtime.limits();
    let mut store = Store::new(runtime.engine(), CallState::new(&limits, &label.id));
    store.limiter(|state| &mut state.budget);
    store.set_epoch_deadline(limits.deadline_ticks());
    store.set_hostcall_fuel(limits.max_result_bytes);
    let outcome = f(&mut store, bindings);
    let state = store.into_data();
    let result = outcome.map_err(|e| {
        let error = PluginError {
            plugin: label.id.clone(),
            version: label.version.clone(),
            function,
            failure: classify(&e, &state, &limits),
        };
        if label.warn {
            tracing::warn!(plugin = %label.id, "{error}");
        }
        error
    });
    Called {
        result,
        log: state.log,
    }
}

fn classify(e: &wasmtime::Error, state: &CallState, limits: &Limits) -> Failure {
    // Limits the host enforces itself are told by the store, not by the error:
    // a refused memory growth is not a `Trap`.
    if state.budget.exceeded {
        return Failure::MemoryLimit(limits.memory_bytes);
    }
    if state.log_flooded {
        return Failure::LogFlood(limits.max_log_lines);
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => return Failure::TimeLimit(limits.call_time),
        Some(Trap::StackOverflow) => return Failure::StackOverflow,
        Some(trap) => return Failure::Trap(trap.to_string()),
        None => {}
    }
    let message = format!("{e:#}");
    if message.contains("fuel allocated for hostcalls") {
        return Failure::ResultTooLarge(limits.max_result_bytes);
    }
    Failure::Failed(one_line(&message))
}

/// An engine message on one line, cut to a readable length.
pub(super) fn one_line(message: &str) -> String {
    let joined = message.split_whitespace().collect::<Vec<_>>().join(" ");
    match joined.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &joined[..cut]),
        None => joined,
    }
}

impl Plugin {
    pub(super) fn call<T>(
        &self,
        function: &'static str,
        f: impl FnOnce(&mut Store<CallState>, &Bindings) -> wasmtime::Result<T>,
    ) -> Called<T> {
        let label = Label::new(&self.about.id, &self.about.version);
        run(&self.runtime, &label, &self.bindings, function, f)
    }
}
