//! The host against small WAT fixtures (tests/fixtures/plugins): each
//! misbehaviour gives a clear error and the next call to a good plugin works.

use std::path::Path;

use super::v0_1::{Ctx, Finish, View};
use super::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/plugins")
        .join(format!("{name}.wat"));
    wat::parse_file(&path).unwrap()
}

fn runtime() -> Runtime {
    Runtime::new(Limits::default()).unwrap()
}

/// A plugins directory holding the named fixtures (as `<name>.wasm`).
fn dir_with(names: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in names {
        std::fs::write(dir.path().join(format!("{name}.wasm")), fixture(name)).unwrap();
    }
    dir
}

/// Loads one fixture alone, as a plugin.
fn load(runtime: &Runtime, name: &str) -> Plugin {
    let dir = dir_with(&[name]);
    let cache = dir.path().join("cache");
    runtime
        .load_file(&dir.path().join(format!("{name}.wasm")), &cache)
        .unwrap()
        .0
}

fn ctx() -> Ctx {
    Ctx {
        task_id: "t1".into(),
        tax_year: 2025,
        today: "2026-03-01".into(),
        locale: "en-US".into(),
    }
}

fn render(plugin: &Plugin) -> Called<Result<View, String>> {
    plugin.render(&ctx(), &[], &[], &[])
}

/// The good plugin still answers (the host keeps serving after a failure).
fn good_still_works(good: &Plugin) {
    let view = render(good).result.unwrap().unwrap();
    assert_eq!(view.sections[0].fields[0].id, "name");
}

/// Renders with fixture `name` beside a good plugin: the error message and the
/// log lines it kept; the good plugin still answers afterwards.
fn contained(name: &str) -> (String, Vec<LogLine>) {
    let runtime = runtime();
    let good = load(&runtime, "good");
    let plugin = load(&runtime, name);
    let called = render(&plugin);
    good_still_works(&good);
    (called.result.unwrap_err().to_string(), called.log)
}

#[test]
fn the_good_plugin_answers_every_export_and_its_log_comes_back() {
    let runtime = runtime();
    let good = load(&runtime, "good");
    assert_eq!(good.id(), "control");
    assert_eq!(good.interface(), Interface::V0_1);
    assert_eq!(good.describe().result.unwrap().name, "Control plugin");
    let form = good.settings_form().result.unwrap();
    assert_eq!(form[0].fields[0].help.as_deref(), Some("As on your return"));
    assert!(good.check_settings(&[]).result.unwrap().is_empty());
    let rendered = render(&good);
    assert_eq!(rendered.result.unwrap().unwrap().total, 1);
    assert_eq!(
        rendered.log,
        vec![LogLine {
            level: LogLevel::Info,
            message: "rendering".into()
        }]
    );
    let outcome = good.submit(&ctx(), &[], &[]).result.unwrap().unwrap();
    assert_eq!(
        (outcome.summary.as_str(), outcome.finish),
        ("Submitted", Finish::Completed)
    );
    assert!(good.instantiate_only().is_ok());
}

#[test]
fn an_infinite_loop_is_stopped_at_the_deadline() {
    let start = std::time::Instant::now();
    let (error, _) = contained("loop");
    assert_eq!(
        error,
        "plugin `control` 1.0.0: render ran past its 100 ms limit"
    );
    assert!(start.elapsed() < std::time::Duration::from_secs(2));
}

#[test]
fn a_memory_bomb_hits_the_memory_limit() {
    let (error, _) = contained("memory");
    assert_eq!(
        error,
        "plugin `control` 1.0.0: render needed more than its 16 MiB of memory"
    );
}

#[test]
fn deep_recursion_overflows_the_stack_not_the_host() {
    let (error, _) = contained("stack");
    assert_eq!(
        error,
        "plugin `control` 1.0.0: render overflowed its stack (recursion too deep)"
    );
}

#[test]
fn a_trap_is_an_error_for_that_call() {
    let (error, log) = contained("trap");
    assert!(
        error.starts_with("plugin `control` 1.0.0: render trapped: "),
        "{error}"
    );
    assert!(error.contains("unreachable"), "{error}");
    assert!(log.is_empty());
}

#[test]
fn an_oversized_result_is_refused_before_it_is_copied() {
    // 1000 sections titled with one 64 KiB string: 64 MiB if copied out.
    let (error, _) = contained("oversized");
    assert_eq!(
        error,
        "plugin `control` 1.0.0: render returned more than 1024 KiB of data"
    );
}

#[test]
fn a_log_flood_fails_the_call_and_keeps_the_first_lines() {
    let (error, log) = contained("flood");
    assert_eq!(
        error,
        "plugin `control` 1.0.0: render wrote more than 100 log lines"
    );
    assert_eq!(log.len(), 100);
}

#[test]
fn a_long_log_line_is_cut_at_8_kib() {
    let runtime = runtime();
    let plugin = load(&runtime, "long-line");
    let called = render(&plugin);
    assert!(called.result.unwrap().is_ok());
    assert_eq!(called.log.len(), 1);
    assert!(called.log[0].message.len() < 8 * 1024 + 16);
    assert!(called.log[0].message.ends_with("[…cut]"));
}

#[test]
fn files_that_cannot_be_served_are_reported_and_skipped() {
    let dir = dir_with(&[
        "good",
        "newer",
        "missing-export",
        "no-export",
        "spy",
        "bad-describe",
    ]);
    std::fs::write(
        dir.path().join("random.wasm"),
        b"\x00asm\x0d\x00\x01\x00garbage",
    )
    .unwrap();
    std::fs::write(dir.path().join("text.wasm"), b"hello, world").unwrap();
    // A second plugin with the same type id as `good`.
    std::fs::write(dir.path().join("zz-again.wasm"), fixture("good")).unwrap();
    let host = PluginHost::load(&runtime(), dir.path(), &dir.path().join("cache"));
    assert_eq!(host.plugins().len(), 1);
    let reasons: Vec<(String, String)> = host
        .failures()
        .iter()
        .map(|f| {
            let name = f.file.file_name().unwrap().to_string_lossy().into_owned();
            (name, f.reason.clone())
        })
        .collect();
    let reason = |file: &str| {
        reasons
            .iter()
            .find(|(name, _)| name == file)
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| panic!("no failure for {file}: {reasons:?}"))
    };
    assert_eq!(
        reason("newer.wasm"),
        "needs interface 0.2.0; this portal serves 0.1.0"
    );
    for (file, start) in [
        (
            "missing-export.wasm",
            "does not implement the task-plugin world 0.1.0",
        ),
        (
            "spy.wasm",
            "imports `acme:spy/net`, which this portal does not grant",
        ),
        ("random.wasm", "is not a valid WebAssembly component"),
        ("text.wasm", "is not a valid WebAssembly component"),
        ("zz-again.wasm", "type id `control` is already served by "),
        (
            "no-export.wasm",
            "does not export portal:task/task-type (was it built for the task-plugin world",
        ),
        (
            "bad-describe.wasm",
            "describe gave the version \"1.0\\nERROR forged\"; expected",
        ),
    ] {
        assert!(reason(file).starts_with(start), "{file}: {reasons:?}");
    }
    assert!(
        reason("missing-export.wasm").contains("submit"),
        "{reasons:?}"
    );
    assert_eq!(reasons.len(), 8);
    good_still_works(host.find("control").unwrap());
}

#[test]
fn a_damaged_cache_file_is_compiled_again() {
    let runtime = runtime();
    let dir = dir_with(&["good"]);
    let cache = dir.path().join("cache");
    let file = dir.path().join("good.wasm");
    let (_, first) = runtime.load_file(&file, &cache).unwrap();
    assert!(!first.from_cache);
    let (_, second) = runtime.load_file(&file, &cache).unwrap();
    assert!(second.from_cache);
    let cached = cache::path_for(runtime.engine(), &fixture("good"), &cache);
    let intact = std::fs::read(&cached).unwrap();
    let damages: [fn(&mut Vec<u8>); 3] = [
        |b| {
            let middle = b.len() / 2;
            b[middle] ^= 0x40;
        },
        |b| b.truncate(b.len() / 3),
        |b| b.truncate(10),
    ];
    for damage in damages {
        let mut bytes = intact.clone();
        damage(&mut bytes);
        std::fs::write(&cached, &bytes).unwrap();
        let (plugin, times) = runtime.load_file(&file, &cache).unwrap();
        assert!(!times.from_cache);
        good_still_works(&plugin);
        assert_eq!(std::fs::read(&cached).unwrap(), intact);
    }
}

#[test]
fn each_call_starts_from_a_fresh_instance() {
    // The good plugin's bump allocator starts at the same address each call:
    // were state kept, repeated renders would drift and eventually fail.
    let runtime = runtime();
    let good = load(&runtime, "good");
    for _ in 0..50 {
        good_still_works(&good);
    }
}

#[test]
fn a_missing_plugins_directory_serves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let host = PluginHost::load(
        &runtime(),
        &dir.path().join("none"),
        &dir.path().join("cache"),
    );
    assert!(host.plugins().is_empty() && host.failures().is_empty());
}

#[test]
fn a_plugin_importing_wasi_gets_an_empty_environment_and_a_fixed_clock() {
    // The fixture traps unless environment and arguments are empty and the
    // wall clock reads the Unix epoch.
    let runtime = runtime();
    let plugin = load(&runtime, "wasi");
    assert!(render(&plugin).result.unwrap().is_ok());
}

#[test]
fn compiled_copies_no_file_needs_are_removed_at_load() {
    let dir = dir_with(&["good", "trap"]);
    let cache = dir.path().join("cache");
    let runtime = runtime();
    PluginHost::load(&runtime, dir.path(), &cache);
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 2);
    std::fs::write(cache.join(".x.cwasm.123.tmp"), b"left by a crash").unwrap();
    std::fs::remove_file(dir.path().join("trap.wasm")).unwrap();
    let host = PluginHost::load(&runtime, dir.path(), &cache);
    let left: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(
        left,
        vec![cache::path_for(runtime.engine(), &fixture("good"), &cache)]
    );
    good_still_works(host.find("control").unwrap());
}

/// Interface 0.1.0 is published: plugins are built against this exact text.
/// A change to it must be a new version beside it (`plugins/wit/v0.2/`),
/// never an edit — this test fails on any edit, whitespace included.
#[test]
fn the_published_0_1_contract_never_changes() {
    use sha2::{Digest, Sha256};
    const PUBLISHED_0_1: &str = "5fa080e223aae1180ccd250ee13b4b626011b40f98e4fd61a45d8edf73e8bb79";
    let wit = Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins/wit/v0.1/task.wit");
    let text = std::fs::read(&wit).unwrap();
    assert_eq!(
        hex::encode(Sha256::digest(&text)),
        PUBLISHED_0_1,
        "plugins/wit/v0.1/task.wit changed: publish a new version beside it instead"
    );
    assert!(
        String::from_utf8(text)
            .unwrap()
            .contains("package portal:task@0.1.0;")
    );
}
