//! `portal plugin check FILE` and `portal plugin list`: what a plugin author
//! and an admin see of the plugin host, with no data directory needed for
//! `check`.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::Config;
use crate::infra::plugins::v0_1::{Answer, Ctx, Field, Finish, Kind, Review, Section, Value};
use crate::infra::plugins::{Called, Limits, LogLine, Plugin, PluginHost, Runtime, describe_items};

/// Calls timed per function (each in a fresh store).
const TIMED_CALLS: usize = 20;

/// Loads `file` as the portal would (with the configured limits, compiled into
/// a temporary cache), prints what it is, and runs every export on sample
/// data. `Err` names the first thing that did not work.
pub fn check(file: &Path, config: &Config, out: &mut impl Write) -> anyhow::Result<()> {
    let runtime = Runtime::new(Limits::from_config(&config.plugins))?;
    let cache = tempfile::tempdir()?;
    let size = std::fs::metadata(file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?
        .len();
    writeln!(out, "{}: {}", file.display(), bytes(size))?;
    let (plugin, first) = runtime
        .load_file(file, cache.path())
        .map_err(|reason| anyhow::anyhow!("{} {reason}", file.display()))?;
    let (_, cached) = runtime
        .load_file(file, cache.path())
        .map_err(|reason| anyhow::anyhow!("{} {reason}", file.display()))?;
    print_shape(&plugin, out)?;
    writeln!(
        out,
        "compile: {}; start from the compiled cache: {}; instantiate: {}",
        took(first.compile),
        took(cached.compile + cached.prepare),
        took(plugin.instantiate_only()?)
    )?;
    let mut failures = Vec::new();
    run_exports(&plugin, out, &mut failures)?;
    match failures.first() {
        None => {
            writeln!(out, "All calls worked.")?;
            Ok(())
        }
        Some(first) => anyhow::bail!("{first}"),
    }
}

fn print_shape(plugin: &Plugin, out: &mut impl Write) -> anyhow::Result<()> {
    let about = plugin.about();
    writeln!(out, "sha256: {}", plugin.sha256())?;
    writeln!(
        out,
        "type: {} \"{}\" {} ({}); interface {}",
        about.id,
        about.name,
        about.version,
        about.summary,
        plugin.interface()
    )?;
    let ty = plugin.component().component_type();
    let engine = plugin.engine();
    for (title, items) in [
        ("imports", describe_items(engine, ty.imports(engine))),
        ("exports", describe_items(engine, ty.exports(engine))),
    ] {
        writeln!(out, "{title}:")?;
        for item in items {
            writeln!(out, "  {item}")?;
        }
    }
    Ok(())
}

/// Calls each export of the served interface on sample data, printing the
/// outcome, timings and log lines; failures are collected.
fn run_exports(
    plugin: &Plugin,
    out: &mut impl Write,
    failures: &mut Vec<String>,
) -> anyhow::Result<()> {
    report(
        out,
        failures,
        "describe",
        || plugin.describe(),
        |i| format!("{} \"{}\" {}", i.id, i.name, i.version),
    )?;
    let form = report(
        out,
        failures,
        "settings-form",
        || plugin.settings_form(),
        |s| format!("{} sections, {} fields", s.len(), count_fields(s)),
    )?;
    let settings = form.as_deref().map(sample_answers).unwrap_or_default();
    report(
        out,
        failures,
        &format!("check-settings ({} sample settings)", settings.len()),
        || plugin.check_settings(&settings),
        |issues| format!("{} issues", issues.len()),
    )?;
    let ctx = sample_ctx();
    let Some(empty) = report_render(plugin, out, failures, &ctx, &settings, &[])? else {
        return Ok(());
    };
    let answers = sample_answers(&empty);
    report_render(plugin, out, failures, &ctx, &settings, &answers)?;
    report(
        out,
        failures,
        &format!("submit ({} sample answers)", answers.len()),
        || plugin.submit(&ctx, &settings, &answers),
        |outcome| match outcome {
            Ok(o) => format!("{}: {}", finish(o.finish), o.summary),
            Err(issues) => format!("refused with {} issues", issues.len()),
        },
    )?;
    Ok(())
}

/// `render` with `answers`, timed over [`TIMED_CALLS`] calls; the visible
/// sections it returned.
fn report_render(
    plugin: &Plugin,
    out: &mut impl Write,
    failures: &mut Vec<String>,
    ctx: &Ctx,
    settings: &[Answer],
    answers: &[Answer],
) -> anyhow::Result<Option<Vec<Section>>> {
    let name = format!("render ({} sample answers)", answers.len());
    let view = report(
        out,
        failures,
        &name,
        || plugin.render(ctx, settings, answers, &[]),
        |r| match r {
            Ok(v) => format!("{} of {} done, {} issues", v.done, v.total, v.issues.len()),
            Err(message) => format!("refused: {message}"),
        },
    )?;
    if view.is_some() {
        // The plugin's log lines were shown once above; the timed calls' are not.
        let quiet = tracing::subscriber::NoSubscriber::default();
        let mut times: Vec<Duration> = tracing::subscriber::with_default(quiet, || {
            (0..TIMED_CALLS)
                .map(|_| {
                    let start = Instant::now();
                    let _ = plugin.render(ctx, settings, answers, &[]);
                    start.elapsed()
                })
                .collect()
        });
        times.sort();
        writeln!(
            out,
            "  fresh store + call over {TIMED_CALLS} calls: p50 {}, slowest {}",
            took(times[TIMED_CALLS / 2]),
            took(times[TIMED_CALLS - 1])
        )?;
    }
    Ok(view.and_then(Result::ok).map(|v| v.sections))
}

/// Runs `call` once and prints how it went, its time and its log lines.
fn report<T>(
    out: &mut impl Write,
    failures: &mut Vec<String>,
    name: &str,
    call: impl FnOnce() -> Called<T>,
    summary: impl FnOnce(&T) -> String,
) -> anyhow::Result<Option<T>> {
    let start = Instant::now();
    let called = call();
    let elapsed = start.elapsed();
    let value = match called.result {
        Ok(value) => {
            writeln!(out, "{name}: ok in {}: {}", took(elapsed), summary(&value))?;
            Some(value)
        }
        Err(e) => {
            writeln!(out, "{name}: FAILED: {e}")?;
            failures.push(e.to_string());
            None
        }
    };
    print_log(out, &called.log)?;
    Ok(value)
}

fn print_log(out: &mut impl Write, log: &[LogLine]) -> anyhow::Result<()> {
    for line in log {
        writeln!(out, "  log {:?}: {}", line.level, line.message)?;
    }
    Ok(())
}

/// `portal plugin list`: every plugin in the configured directory and every
/// file that failed, with the reason.
pub fn list(config: &Config, out: &mut impl Write) -> anyhow::Result<()> {
    let host = PluginHost::open(config)?;
    writeln!(out, "Plugins in {}:", host.dir().display())?;
    if host.plugins().is_empty() && host.failures().is_empty() {
        writeln!(out, "  none")?;
    }
    for plugin in host.plugins() {
        let about = plugin.about();
        writeln!(
            out,
            "  {} \"{}\" {} (interface {}) from {}",
            about.id,
            about.name,
            about.version,
            plugin.interface(),
            plugin.file().display()
        )?;
    }
    for failure in host.failures() {
        writeln!(
            out,
            "  NOT LOADED {}: {}",
            failure.file.display(),
            failure.reason
        )?;
    }
    Ok(())
}

fn finish(finish: Finish) -> &'static str {
    match finish {
        Finish::Completed => "completed",
        Finish::AwaitingReview => "awaiting review",
        Finish::ChangesRequested => "changes requested",
    }
}

fn count_fields(sections: &[Section]) -> usize {
    sections.iter().map(|s| s.fields.len()).sum()
}

fn sample_ctx() -> Ctx {
    Ctx {
        task_id: "sample-task".into(),
        tax_year: 2025,
        today: "2026-02-15".into(),
        locale: "en-US".into(),
    }
}

/// A plausible answer for every visible field that takes one.
pub fn sample_answers(sections: &[Section]) -> Vec<Answer> {
    sections
        .iter()
        .flat_map(|s| &s.fields)
        .filter(|f| f.visible)
        .filter_map(|f| {
            sample_value(f).map(|value| Answer {
                field: f.id.clone(),
                value,
                review: Review::Waiting,
            })
        })
        .collect()
}

fn sample_value(field: &Field) -> Option<Value> {
    let first = || field.choices.first().cloned().into_iter().collect();
    Some(match field.kind {
        Kind::Text => Value::Text("Sample text".into()),
        Kind::LongText => Value::Text("Sample text\nover two lines".into()),
        Kind::Number => Value::Number(2.0),
        Kind::Money => Value::Cents(123_456),
        Kind::Date => Value::Date("2025-04-15".into()),
        Kind::YesNo => Value::Flag(true),
        Kind::Choice | Kind::MultiChoice => Value::Picked(first()),
        Kind::Ssn => Value::Text("123-45-6789".into()),
        Kind::Ein => Value::Text("12-3456789".into()),
        Kind::Upload => Value::Files(vec!["sample.pdf".into()]),
        Kind::Statement => return None,
    })
}

fn took(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{} µs", d.as_micros())
    } else {
        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
    }
}

fn bytes(n: u64) -> String {
    if n < 1 << 20 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", n as f64 / (1 << 20) as f64)
    }
}
