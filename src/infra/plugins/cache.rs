//! Compiled plugins on disk: `<sha256 of the wasm>-<engine compatibility>.cwasm`,
//! so a plugin is compiled once per engine build. Each file ends with the
//! SHA-256 of what precedes it: a damaged file (a flipped byte the engine's
//! own checks would miss, or a truncated write) is recompiled and replaced,
//! never run.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::infra::fsutil;

/// The cache's directory name in the data directory.
pub const DIR: &str = "plugin-cache";

const CHECKSUM: usize = 32;

/// The cache file's name for a wasm file with this SHA-256.
pub(super) fn file_name(engine: &Engine, sha256: &str) -> String {
    format!("{sha256}-{}.cwasm", compatibility(engine))
}

/// The compiled component for `wasm`, from `path` when a sound copy is there;
/// otherwise compiled and stored there. `true` when it came from the cache.
pub(super) fn compiled(
    engine: &Engine,
    wasm: &[u8],
    path: &Path,
) -> Result<(Component, bool), String> {
    match load(engine, path) {
        Ok(Some(component)) => return Ok((component, true)),
        Ok(None) => {}
        Err(why) => {
            tracing::warn!(file = %path.display(), "compiled plugin cache damaged ({why}); compiling again")
        }
    }
    let component = Component::new(engine, wasm).map_err(|e| compile_error(&e))?;
    if let Err(e) = store(&component, path) {
        // Serving goes on without the cache; the next start compiles again.
        tracing::warn!(file = %path.display(), error = %e, "cannot write the compiled plugin cache");
    }
    Ok((component, false))
}

fn compile_error(e: &wasmtime::Error) -> String {
    format!(
        "is not a valid WebAssembly component: {}",
        super::call::one_line(&format!("{e:#}"))
    )
}

/// `Ok(None)` when there is no cached copy; `Err` when there is one but it is damaged.
fn load(engine: &Engine, path: &Path) -> Result<Option<Component>, String> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let Some(split) = bytes.len().checked_sub(CHECKSUM) else {
        return Err("too short".into());
    };
    let (code, sum) = bytes.split_at(split);
    if Sha256::digest(code).as_slice() != sum {
        return Err("checksum mismatch".into());
    }
    // SAFETY: `Component::deserialize` runs the machine code in `code` as is.
    // These bytes are ours: written by `store` below with this engine, into the
    // portal's owner-only data directory, under a name keyed by the engine's
    // compatibility hash, and the checksum just verified that they are exactly
    // what was written (no truncation, no flipped byte). Deserializing the
    // verified in-memory copy, not the file, leaves no window for a change.
    #[allow(unsafe_code)]
    let component = unsafe { Component::deserialize(engine, code) };
    component.map(Some).map_err(|e| e.to_string())
}

fn store(component: &Component, path: &Path) -> anyhow::Result<()> {
    let mut bytes = component
        .serialize()
        .map_err(|e| anyhow::anyhow!("cannot serialize: {e}"))?;
    let sum = Sha256::digest(&bytes);
    bytes.extend_from_slice(&sum);
    if let Some(dir) = path.parent() {
        fsutil::private_dir(dir)?;
    }
    fsutil::write_atomic(path, &bytes)?;
    Ok(())
}

/// The engine's compatibility hash as hex: compiled code from another engine
/// build or configuration gets another name.
fn compatibility(engine: &Engine) -> String {
    let mut hasher = Sha256Hasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex::encode(&hasher.0.finalize()[..8])
}

struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        // Only `write` is used (the digest is read from `self.0`).
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// Removes from `dir` the compiled copies not in `used` (plugins since
/// replaced or removed) and temporary files a crash left behind.
pub(super) fn prune(dir: &Path, used: &[PathBuf]) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for path in entries.flatten().map(|e| e.path()) {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let stale = name.ends_with(".cwasm") && !used.contains(&path);
        let leftover = name.starts_with('.') && name.ends_with(".tmp");
        if stale || leftover {
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    tracing::info!(file = %path.display(), "removed an unused compiled plugin")
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "cannot remove an unused compiled plugin")
                }
            }
        }
    }
}

/// The cache file for `wasm` in `dir` (for tests that damage it).
#[cfg(test)]
pub fn path_for(engine: &Engine, wasm: &[u8], dir: &Path) -> PathBuf {
    dir.join(file_name(engine, &hex::encode(Sha256::digest(wasm))))
}
