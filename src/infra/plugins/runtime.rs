//! The engine every plugin shares: its configuration, the epoch ticker that
//! enforces call deadlines, the linker holding what plugins may import, and
//! loading one file into a [`Plugin`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::types::{ComponentExtern, ComponentItem};
use wasmtime::component::{Component, Linker};

use super::call::{CallState, Label};
use super::{About, Bindings, EXPORT, Interface, LoadTimes, Plugin, cache, v0_1, valid_type_id};

/// How often the epoch advances; a deadline is a whole number of ticks.
pub const TICK: Duration = Duration::from_millis(5);
/// Native stack a plugin may use; deeper recursion traps.
pub const MAX_STACK: usize = 512 << 10;
/// Data one call may return (strings and lists, as laid out in the plugin's memory).
pub const MAX_RESULT_BYTES: usize = 1 << 20;
/// Longest log line kept; longer lines are cut.
pub const MAX_LOG_LINE: usize = 8 << 10;
/// Largest `.wasm` file read from the plugins directory.
const MAX_FILE_BYTES: u64 = 256 << 20;

/// The limits of one call.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Linear memory of all the plugin's memories together.
    pub memory_bytes: usize,
    pub call_time: Duration,
    pub max_log_lines: usize,
    pub max_result_bytes: usize,
}

impl Limits {
    pub fn from_config(config: &crate::config::Plugins) -> Limits {
        Limits {
            memory_bytes: usize::try_from(config.memory_mb << 20).unwrap_or(usize::MAX),
            call_time: Duration::from_millis(config.call_ms),
            max_log_lines: config.max_log_lines as usize,
            max_result_bytes: MAX_RESULT_BYTES,
        }
    }

    /// Epoch ticks from the start of a call to its deadline: at least `call_time`.
    pub(super) fn deadline_ticks(&self) -> u64 {
        let ticks = self.call_time.as_micros().div_ceil(TICK.as_micros());
        u64::try_from(ticks).unwrap_or(u64::MAX / 2) + 1
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::from_config(&crate::config::Plugins::default())
    }
}

/// The shared engine, linker and ticker. Cheap to clone; the ticker stops
/// when the last clone (the host's or a plugin's) is dropped.
#[derive(Clone)]
pub struct Runtime(Arc<Inner>);

struct Inner {
    engine: Engine,
    linker: Linker<CallState>,
    limits: Limits,
    _ticker: Ticker,
}

impl Runtime {
    pub fn new(limits: Limits) -> anyhow::Result<Runtime> {
        let mut config = wasmtime::Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .max_wasm_stack(MAX_STACK)
            .memory_init_cow(true)
            .parallel_compilation(true);
        let engine = Engine::new(&config)
            .map_err(|e| anyhow::anyhow!("cannot start the plugin engine: {e}"))?;
        let mut linker = Linker::new(&engine);
        // Runtimes that import WASI (componentize-py, Rust wasip2) link against
        // an empty context: see `CallState::new`.
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| anyhow::anyhow!("cannot link WASI: {e}"))?;
        v0_1::add_to_linker(&mut linker).map_err(|e| anyhow::anyhow!("cannot link log: {e}"))?;
        let ticker = Ticker::start(engine.clone())?;
        Ok(Runtime(Arc::new(Inner {
            engine,
            linker,
            limits,
            _ticker: ticker,
        })))
    }

    pub fn engine(&self) -> &Engine {
        &self.0.engine
    }

    pub fn limits(&self) -> &Limits {
        &self.0.limits
    }

    /// Reads, compiles (or loads from `cache`), links and describes one file.
    /// The error is the reason in words, for the admin.
    pub fn load_file(&self, file: &Path, cache: &Path) -> Result<(Plugin, LoadTimes), String> {
        self.load_noting(file, cache, &mut Vec::new())
    }

    /// [`Runtime::load_file`], adding the cache file it used to `used`.
    pub(super) fn load_noting(
        &self,
        file: &Path,
        cache: &Path,
        used: &mut Vec<PathBuf>,
    ) -> Result<(Plugin, LoadTimes), String> {
        let bytes = read_limited(file)?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let start = Instant::now();
        let cached = cache.join(cache::file_name(self.engine(), &sha256));
        used.push(cached.clone());
        let (component, from_cache) = cache::compiled(self.engine(), &bytes, &cached)?;
        let compile = start.elapsed();
        let start = Instant::now();
        let interface = interface_of(self.engine(), &component)?;
        let bindings = self.link(&component, interface)?;
        let stem = file
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        let label = Label::loading(&stem);
        let about = super::v0_1::describe_with(self, &label, &bindings)
            .result
            .map_err(|e| e.to_string())?;
        check_about(&about)?;
        let plugin = Plugin {
            file: file.to_path_buf(),
            about,
            interface,
            bindings,
            component,
            runtime: self.clone(),
            sha256,
            size: bytes.len() as u64,
        };
        let times = LoadTimes {
            compile,
            from_cache,
            prepare: start.elapsed(),
        };
        Ok((plugin, times))
    }

    /// Pre-instantiates `component` against what the host grants.
    fn link(&self, component: &Component, interface: Interface) -> Result<Bindings, String> {
        let pre = self
            .0
            .linker
            .instantiate_pre(component)
            .map_err(|e| link_error(self.engine(), component, &e))?;
        match interface {
            Interface::V0_1 => v0_1::Pre::new(pre)
                .map(Bindings::V0_1)
                .map_err(|e| format!("does not implement the task-plugin world 0.1.0: {e}")),
        }
    }
}

/// What `describe` said is shown to staff and written to logs: it must be
/// short, plain text.
fn check_about(about: &About) -> Result<(), String> {
    if !valid_type_id(&about.id) {
        return Err(format!(
            "describe gave the type id {:?}; expected 1 to 64 lowercase letters, digits and '-'",
            about.id
        ));
    }
    let version_ok = (1..=32).contains(&about.version.len())
        && about
            .version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".+-".contains(&b));
    if !version_ok {
        return Err(format!(
            "describe gave the version {:?}; expected up to 32 letters, digits, '.', '+' and '-'",
            about.version
        ));
    }
    for (what, text, max) in [
        ("name", &about.name, 100),
        ("summary", &about.summary, 1000),
    ] {
        if text.trim().is_empty()
            || text.chars().count() > max
            || text.chars().any(char::is_control)
        {
            return Err(format!(
                "describe gave a {what} that is empty, longer than {max} characters or has control characters"
            ));
        }
    }
    Ok(())
}

fn read_limited(file: &Path) -> Result<Vec<u8>, String> {
    let size = std::fs::metadata(file)
        .map_err(|e| format!("cannot read the file: {e}"))?
        .len();
    if size > MAX_FILE_BYTES {
        return Err(format!(
            "is {} MiB; the largest plugin accepted is {} MiB",
            size >> 20,
            MAX_FILE_BYTES >> 20
        ));
    }
    std::fs::read(file).map_err(|e| format!("cannot read the file: {e}"))
}

/// The served interface the component exports, from its export name
/// (`portal:task/task-type@0.1.0`).
fn interface_of(engine: &Engine, component: &Component) -> Result<Interface, String> {
    let ty = component.component_type();
    let prefix = format!("{EXPORT}@");
    let versions: Vec<String> = ty
        .exports(engine)
        .filter_map(|(name, _)| name.strip_prefix(&prefix).map(str::to_string))
        .collect();
    if let Some(interface) = versions.iter().find_map(|v| Interface::from_version(v)) {
        return Ok(interface);
    }
    match versions.first() {
        Some(v) => Err(format!(
            "needs interface {v}; this portal serves {}",
            Interface::served_list()
        )),
        None => Err(format!(
            "does not export {EXPORT} (was it built for the task-plugin world in plugins/wit?)"
        )),
    }
}

/// Why linking failed, naming the import the host does not grant.
fn link_error(engine: &Engine, component: &Component, e: &wasmtime::Error) -> String {
    let message = format!("{e:#}");
    let ty = component.component_type();
    let ungranted = ty
        .imports(engine)
        .map(|(name, _)| name)
        .find(|name| message.contains(name) && !granted(name));
    match ungranted {
        Some(name) => format!(
            "imports `{name}`, which this portal does not grant (plugins may import only portal:task/log and WASI, which gets an empty context)"
        ),
        None => format!("cannot be linked: {message}"),
    }
}

fn granted(import: &str) -> bool {
    import.starts_with("portal:task/") || import.starts_with("wasi:")
}

/// A component's imports or exports in words, for `portal plugin check`:
/// each name, and for an interface the functions in it.
pub fn describe_items<'a>(
    engine: &Engine,
    items: impl Iterator<Item = (&'a str, ComponentExtern<'a>)>,
) -> Vec<String> {
    items
        .map(|(name, item)| match item.ty {
            ComponentItem::ComponentFunc(_) => format!("{name} (function)"),
            ComponentItem::ComponentInstance(instance) => {
                let functions: Vec<&str> = instance
                    .exports(engine)
                    .filter(|(_, e)| matches!(e.ty, ComponentItem::ComponentFunc(_)))
                    .map(|(f, _)| f)
                    .collect();
                match functions.is_empty() {
                    true => format!("{name} (types only)"),
                    false => format!("{name}: {}", functions.join(", ")),
                }
            }
            _ => name.to_string(),
        })
        .collect()
}

/// Advances the engine's epoch every [`TICK`] until dropped.
struct Ticker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ticker {
    fn start(engine: Engine) -> anyhow::Result<Ticker> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("plugin-epoch".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(TICK) {
                    engine.increment_epoch();
                }
            })?;
        Ok(Ticker {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        // Dropping the sender wakes the thread, which then ends.
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
