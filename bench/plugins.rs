//! Plugin host benchmarks (issue #9). Run with:
//!
//!     plugins/build                      # builds the examples into target/plugins
//!     cargo bench --bench plugins        # or PORTAL_BENCH_PLUGINS=DIR cargo bench --bench plugins
//!
//! It prints figures; it asserts nothing. For each plugin in the directory
//! (and the WAT control plugin of the tests, as a floor): the first compile,
//! the start from the compiled cache, instantiation alone, and a render with a
//! 300-answer set (fresh store + call, p50/p99); then the cached start of all
//! plugins together and the peak RSS with 50 concurrent renders; last, the
//! organizer page through the real `portal serve` (plugins_page.rs): the
//! client's task page with the largest answer set the full organizer can show,
//! and the autosave of one answer (p50/p99 over 200 requests each).
//! Targets: fresh store + call p99 < 200 µs for the C and JavaScript examples,
//! < 2 ms for any; cached start of all plugins < 100 ms; organizer page
//! p99 < 50 ms.
// A benchmark may unwrap and panic: a failure ends the run with its reason.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::too_many_lines
)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use portal::infra::plugins::v0_1::{Answer, Ctx, Review, Value};
use portal::infra::plugins::{Limits, Plugin, PluginHost, Runtime};

#[path = "plugins_page.rs"]
mod page;

const ANSWERS: usize = 300;
const CALLS: usize = 1000;
const CONCURRENT: usize = 50;

fn main() {
    let dir = std::env::var_os("PORTAL_BENCH_PLUGINS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/plugins"),
        PathBuf::from,
    );
    let work = tempfile::tempdir().unwrap();
    let plugins = work.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let control = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plugins/good.wat");
    std::fs::write(
        plugins.join("control.wasm"),
        wat::parse_file(control).unwrap(),
    )
    .unwrap();
    let found = copy_plugins(&dir, &plugins);
    println!("# Portal plugin benchmarks");
    println!(
        "machine: {} cores, {}; plugins from {} ({found} found) plus the WAT control plugin",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        page::load_average(),
        dir.display()
    );
    if found == 0 {
        println!(
            "no example plugins built: run plugins/build first (measuring the control plugin only)"
        );
    }
    let runtime = Runtime::new(Limits::default()).unwrap();
    let cache = work.path().join("cache");
    println!(
        "\n{:<14} {:>9} {:>10} {:>12} {:>12} {:>12} {:>9}",
        "plugin", "size", "compile", "cached start", "instantiate", "render p50", "p99"
    );
    for file in wasm_files(&plugins) {
        bench_one(&runtime, &file, &cache);
    }
    let start = Instant::now();
    let host = PluginHost::load(&runtime, &plugins, &cache);
    println!(
        "\ncached start of all {} plugins: {}",
        host.plugins().len(),
        took(start.elapsed())
    );
    for failure in host.failures() {
        println!("not loaded: {}: {}", failure.file.display(), failure.reason);
    }
    for plugin in host.plugins() {
        peak_rss(plugin);
    }
    page::run(&dir);
}

fn copy_plugins(from: &Path, to: &Path) -> usize {
    let files = wasm_files(from);
    for file in &files {
        std::fs::copy(file, to.join(file.file_name().unwrap())).unwrap();
    }
    files.len()
}

fn wasm_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn bench_one(runtime: &Runtime, file: &Path, cache: &Path) {
    let name = file.file_stem().unwrap().to_string_lossy().into_owned();
    let (_, first) = match runtime.load_file(file, cache) {
        Ok(loaded) => loaded,
        Err(reason) => {
            println!("{name:<14} not loaded: {reason}");
            return;
        }
    };
    let start = Instant::now();
    let (plugin, _) = runtime.load_file(file, cache).unwrap();
    let cached = start.elapsed();
    let mut instantiate: Vec<Duration> = (0..200)
        .map(|_| plugin.instantiate_only().unwrap())
        .collect();
    instantiate.sort();
    let (settings, answers) = answer_set(&plugin);
    let mut calls: Vec<Duration> = (0..CALLS)
        .map(|_| {
            let start = Instant::now();
            let called = plugin.render(&ctx(), &settings, &answers, &[]);
            let elapsed = start.elapsed();
            called.result.unwrap().ok();
            elapsed
        })
        .collect();
    calls.sort();
    println!(
        "{name:<14} {:>7} K {:>10} {:>12} {:>12} {:>12} {:>9}",
        plugin.size() / 1024,
        took(first.compile),
        took(cached),
        took(instantiate[100]),
        took(calls[CALLS / 2]),
        took(calls[CALLS * 99 / 100])
    );
}

/// Sample settings, and a sample answer for every field the plugin shows with
/// those settings, padded to [`ANSWERS`] with answers to fields it does not have.
fn answer_set(plugin: &Plugin) -> (Vec<Answer>, Vec<Answer>) {
    let form = plugin.settings_form().result.unwrap();
    let settings = portal::plugin_cli::sample_answers(&form);
    let view = plugin
        .render(&ctx(), &settings, &[], &[])
        .result
        .unwrap()
        .unwrap_or_else(|message| panic!("render refused: {message}"));
    let mut answers = portal::plugin_cli::sample_answers(&view.sections);
    answers.truncate(ANSWERS);
    let mut n = 0;
    while answers.len() < ANSWERS {
        n += 1;
        answers.push(Answer {
            field: format!("bench.extra-{n}"),
            value: Value::Text(format!("An answer of ordinary length, number {n}")),
            review: Review::Waiting,
        });
    }
    (settings, answers)
}

/// Peak resident memory of this process while 50 renders run at once.
fn peak_rss(plugin: &Arc<Plugin>) {
    let (settings, answers) = answer_set(plugin);
    let (settings, answers) = (Arc::new(settings), Arc::new(answers));
    let before = rss_kib("VmRSS");
    // Writing 5 resets the peak (VmHWM) to the current resident size (Linux).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let barrier = Arc::new(Barrier::new(CONCURRENT));
    let start = Instant::now();
    let threads: Vec<_> = (0..CONCURRENT)
        .map(|_| {
            let (plugin, settings, answers, barrier) = (
                plugin.clone(),
                settings.clone(),
                answers.clone(),
                barrier.clone(),
            );
            std::thread::spawn(move || {
                barrier.wait();
                plugin
                    .render(&ctx(), &settings, &answers, &[])
                    .result
                    .is_ok()
            })
        })
        .collect();
    let ok = threads
        .into_iter()
        .map(|t| t.join().unwrap())
        .filter(|ok| *ok)
        .count();
    println!(
        "{}: {CONCURRENT} concurrent renders ({ok} ok) in {}; peak RSS {} MiB ({} MiB before)",
        plugin.id(),
        took(start.elapsed()),
        rss_kib("VmHWM") / 1024,
        before / 1024
    );
}

fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

fn ctx() -> Ctx {
    Ctx {
        task_id: "bench".into(),
        tax_year: 2025,
        today: "2026-02-15".into(),
        locale: "en-US".into(),
    }
}

fn took(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{} µs", d.as_micros())
    } else {
        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
    }
}
