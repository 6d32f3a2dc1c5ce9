//! The WebAssembly plugin host. It loads components from the plugins
//! directory, compiles each once (cached on disk), and runs every call in a
//! fresh sandbox with limits on time, memory, stack, result size and log
//! lines. It knows nothing about tasks: the task side adapts [`Plugin`]'s
//! calls to its own contract.
//!
//! Calls are blocking (a plugin runs synchronously under its own deadline):
//! callers on the async runtime use `tokio::task::spawn_blocking`.

mod cache;
mod call;
mod runtime;
pub mod v0_1;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::Component;

pub use call::{Called, Failure, LogLevel, LogLine, PluginError};
pub use runtime::{Limits, Runtime, describe_items};

/// The interface versions this host serves, newest last. A later version is a
/// new module beside `v0_1` and a new variant here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interface {
    V0_1,
}

/// The export a plugin is looked up by, without its version.
pub const EXPORT: &str = "portal:task/task-type";

impl Interface {
    pub const SERVED: &[Interface] = &[Interface::V0_1];

    pub fn version(self) -> &'static str {
        match self {
            Interface::V0_1 => "0.1.0",
        }
    }

    /// The served version named by an export such as `portal:task/task-type@0.1.0`.
    fn from_version(version: &str) -> Option<Interface> {
        Self::SERVED
            .iter()
            .copied()
            .find(|i| i.version() == version)
    }

    fn served_list() -> String {
        let all: Vec<_> = Self::SERVED.iter().map(|i| i.version()).collect();
        all.join(", ")
    }
}

impl std::fmt::Display for Interface {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.version())
    }
}

/// What a plugin says about itself (its `describe`), whatever its interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct About {
    pub id: String,
    pub name: String,
    pub version: String,
    pub summary: String,
}

/// A loaded plugin: compiled, linked and described. Every call instantiates it
/// afresh, so a `Plugin` is shared freely between threads.
pub struct Plugin {
    file: PathBuf,
    about: About,
    interface: Interface,
    bindings: Bindings,
    component: Component,
    runtime: Runtime,
    sha256: String,
    size: u64,
}

enum Bindings {
    V0_1(v0_1::Pre),
}

/// A `.wasm` file in the plugins directory that is not served, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadFailure {
    pub file: PathBuf,
    pub reason: String,
}

/// How long each step of loading one file took (for `portal plugin check`).
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadTimes {
    /// Compiling, or reading the compiled copy from the cache.
    pub compile: Duration,
    pub from_cache: bool,
    /// Linking and the `describe` call.
    pub prepare: Duration,
}

impl Plugin {
    pub fn about(&self) -> &About {
        &self.about
    }
    pub fn id(&self) -> &str {
        &self.about.id
    }
    pub fn file(&self) -> &Path {
        &self.file
    }
    pub fn interface(&self) -> Interface {
        self.interface
    }
    pub fn component(&self) -> &Component {
        &self.component
    }
    pub fn engine(&self) -> &wasmtime::Engine {
        self.runtime.engine()
    }
    /// Hex SHA-256 of the `.wasm` file.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }
    /// Size of the `.wasm` file in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Instantiates the plugin in a fresh store and drops it: what every call
    /// pays before the function itself runs.
    pub fn instantiate_only(&self) -> Result<Duration, PluginError> {
        let start = Instant::now();
        let called = self.call("instantiate", |store, bindings| match bindings {
            Bindings::V0_1(pre) => pre.instantiate(store).map(|_| ()),
        });
        called.result.map(|()| start.elapsed())
    }
}

/// Every loaded plugin and every file that failed to load.
pub struct PluginHost {
    dir: PathBuf,
    plugins: Vec<Arc<Plugin>>,
    failures: Vec<LoadFailure>,
}

impl PluginHost {
    /// Loads the plugins directory and cache named by `config`.
    pub fn open(config: &crate::Config) -> anyhow::Result<PluginHost> {
        let runtime = Runtime::new(Limits::from_config(&config.plugins))?;
        let cache = config.storage.data_dir.join(cache::DIR);
        Ok(Self::load(&runtime, &config.plugins_dir(), &cache))
    }

    /// Loads every `*.wasm` in `dir` (in name order), compiling each once into
    /// `cache` (and removing from it what no file there needs any more). A file
    /// that fails is reported (one warning) and skipped; a second plugin with a
    /// type id already served is refused.
    pub fn load(runtime: &Runtime, dir: &Path, cache: &Path) -> PluginHost {
        let mut host = PluginHost {
            dir: dir.to_path_buf(),
            plugins: Vec::new(),
            failures: Vec::new(),
        };
        let mut used = Vec::new();
        for file in wasm_files(dir) {
            let loaded = runtime
                .load_noting(&file, cache, &mut used)
                .and_then(|(plugin, _)| host.refuse_duplicate(plugin));
            match loaded {
                Ok(plugin) => {
                    tracing::info!(plugin = plugin.id(), version = %plugin.about.version, interface = %plugin.interface, file = %file.display(), "plugin loaded");
                    host.plugins.push(Arc::new(plugin));
                }
                Err(reason) => {
                    tracing::warn!(file = %file.display(), "plugin not loaded: {reason}");
                    host.failures.push(LoadFailure { file, reason });
                }
            }
        }
        cache::prune(cache, &used);
        host
    }

    fn refuse_duplicate(&self, plugin: Plugin) -> Result<Plugin, String> {
        match self.find(plugin.id()) {
            Some(first) => Err(format!(
                "type id `{}` is already served by {}",
                plugin.id(),
                first.file.display()
            )),
            None => Ok(plugin),
        }
    }

    /// The directory the plugins were loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn plugins(&self) -> &[Arc<Plugin>] {
        &self.plugins
    }
    pub fn failures(&self) -> &[LoadFailure] {
        &self.failures
    }
    /// The plugin serving type id `id`.
    pub fn find(&self, id: &str) -> Option<&Arc<Plugin>> {
        self.plugins.iter().find(|p| p.id() == id)
    }
}

/// The `*.wasm` files directly in `dir`, sorted; none when it does not exist.
fn wasm_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        tracing::debug!(dir = %dir.display(), "no plugins directory");
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "wasm") && p.is_file())
        .collect();
    files.sort();
    files
}

/// A type id is lowercase letters, digits and '-', as the contract says.
fn valid_type_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests;
