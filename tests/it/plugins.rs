//! The plugin host from the outside: `portal plugin check` and `list` on real
//! files, and a portal starting with good and bad plugins in its directory.

use std::path::Path;

use crate::common::{TestPortal, portal_binary as portal, succeeded};

/// A fixture from tests/fixtures/plugins as a `.wasm` file in `dir`.
fn install(dir: &Path, name: &str) -> std::path::PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/plugins")
        .join(format!("{name}.wat"));
    let file = dir.join(format!("{name}.wasm"));
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(&file, wat::parse_file(source).unwrap()).unwrap();
    file
}

fn check(dir: &Path, file: &Path) -> (bool, String, String) {
    let out = portal(dir)
        .args(["plugin", "check"])
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn plugin_check_describes_a_good_plugin_and_runs_every_export() {
    let dir = tempfile::tempdir().unwrap();
    let file = install(dir.path(), "good");
    let (ok, out, err) = check(dir.path(), &file);
    assert!(ok, "{out}\n{err}");
    for expected in [
        "type: control \"Control plugin\" 1.0.0",
        "interface 0.1.0",
        "portal:task/log@0.1.0: write",
        "portal:task/task-type@0.1.0: describe, settings-form, check-settings, render, submit",
        "compile: ",
        "start from the compiled cache: ",
        "describe: ok",
        "settings-form: ok",
        "check-settings (1 sample settings): ok",
        "render (1 sample answers): ok",
        "log Info: rendering",
        "fresh store + call over 20 calls: p50",
        "submit (1 sample answers): ok",
        "All calls worked.",
    ] {
        assert!(out.contains(expected), "{expected:?} missing from\n{out}");
    }
    // No data directory is needed or made.
    assert!(!dir.path().join("data").exists());
}

#[test]
fn plugin_check_fails_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let random = dir.path().join("random.wasm");
    std::fs::write(&random, b"\x00asm\x0d\x00\x01\x00 not really").unwrap();
    let looping = install(dir.path(), "loop");
    let newer = install(dir.path(), "newer");
    for (file, reason) in [
        (random, "random.wasm is not a valid WebAssembly component"),
        (dir.path().join("absent.wasm"), "cannot read"),
        (
            looping,
            "plugin `control` 1.0.0: render ran past its 100 ms limit",
        ),
        (newer, "needs interface 0.2.0; this portal serves 0.1.0"),
    ] {
        let (ok, out, err) = check(dir.path(), &file);
        assert!(!ok, "{out}");
        assert!(err.contains(reason), "{reason:?} not in {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn plugin_list_shows_loaded_plugins_and_failures() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("data/plugins");
    install(&plugins, "good");
    install(&plugins, "spy");
    std::fs::write(plugins.join("broken.wasm"), b"garbage").unwrap();
    let out = portal(dir.path())
        .args(["plugin", "list"])
        .output()
        .unwrap();
    let text = succeeded(&out);
    assert!(
        text.contains("control \"Control plugin\" 1.0.0 (interface 0.1.0) from "),
        "{text}"
    );
    assert!(
        text.contains(
            "NOT LOADED ./data/plugins/broken.wasm: is not a valid WebAssembly component"
        ),
        "{text}"
    );
    assert!(
        text.contains("spy.wasm: imports `acme:spy/net`, which this portal does not grant"),
        "{text}"
    );
}

#[tokio::test]
async fn the_portal_starts_and_serves_with_a_bad_plugin_beside_good_ones() {
    let plugins = tempfile::tempdir().unwrap();
    for name in ["good", "loop", "memory", "trap", "newer"] {
        install(plugins.path(), name);
    }
    std::fs::write(plugins.path().join("random.wasm"), [7u8; 300]).unwrap();
    let dir = plugins.path().to_string_lossy().into_owned();
    let portal = TestPortal::start_with(|c| c.plugins.dir = dir).await;
    let host = portal.state.plugins.clone();
    // `good` is served; `loop`, `memory` and `trap` describe themselves as the
    // same type and are refused as duplicates; the rest cannot be loaded.
    assert_eq!(host.plugins().len(), 1);
    assert_eq!(host.failures().len(), 5);
    let page = portal.browser().get("/").await;
    assert_eq!(page.status, 200);

    // A call runs off the async runtime and answers.
    let good = host.find("control").unwrap().clone();
    let called = tokio::task::spawn_blocking(move || good.settings_form())
        .await
        .unwrap();
    assert_eq!(called.result.unwrap()[0].title, "Main");

    // Every file that compiled is cached for the next start.
    let cache = portal.state.config.storage.data_dir.join("plugin-cache");
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 5);
    portal.stop().await;
}
