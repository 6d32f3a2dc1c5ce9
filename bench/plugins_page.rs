//! The organizer page through the real server (issue #9): `portal serve` with
//! the example plugins, a client signed in, staff assigning the full organizer
//! (every "Ask about" topic on), the client answering every question it can
//! show (spouse, the dependents' slots, every income source, a file to each
//! upload question), then the client's task page and the autosave timed over
//! loopback; then again with the answers padded to the issue's 300 by answers
//! kept for questions the questionnaire does not have (it has about 140).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use portal::infra::plugins::v0_1::{Answer, Field, Kind, Review, Value};
use portal::infra::plugins::{Limits, Runtime};

#[path = "common.rs"]
mod common;
pub use common::load_average;
use common::{Server, browser, csrf_in, portal};

const REQUESTS: usize = 200;
const ANSWERS: usize = super::ANSWERS;
const STAFF_EMAIL: &str = "staff@bench.example";
const STAFF_PASSWORD: &str = "correct horse battery staple 42";

/// Measures the organizer page and its autosave, if `plugins` has the organizer.
pub fn run(plugins: &Path) {
    let organizer = plugins.join("organizer.wasm");
    println!("\n## The organizer page through the real server");
    if !organizer.is_file() {
        println!(
            "skipped: {} is missing (run plugins/build)",
            organizer.display()
        );
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(measure(plugins, &organizer));
}

/// Sets up the server, staff, the task and its answers; prints the figures.
async fn measure(plugins: &Path, organizer: &Path) {
    let work = tempfile::tempdir().unwrap();
    let (settings, fields) = organizer_fields(organizer, work.path());
    let extra = format!("[plugins]\ndir = \"{}\"\n", plugins.display());
    let server = Server::start(work.path(), &extra).await;
    let staff = staff_signed_in(&server, &work.path().join("portal.toml")).await;
    let task = assign(&server, &staff, &settings).await;
    let visible = answer_everything(&server, &task, &fields).await;
    let db = work.path().join("data/portal.db");
    println!(
        "{} questions shown of the {} the full organizer has, all answered ({} files sent)",
        visible.len(),
        fields.len(),
        fields
            .iter()
            .filter(|f| f.kind == Kind::Upload && visible.contains(&f.id))
            .count()
    );
    let field = fields
        .iter()
        .find(|f| f.kind == Kind::Text && visible.contains(&f.id))
        .expect("a visible text question");
    time_page(&server, &task, &field.id, stored_answers(&db)).await;
    // The questionnaire has fewer questions than the issue's 300-answer set:
    // the rest are answers kept for questions it no longer has (as after a
    // revision), which the plugin is handed all the same.
    pad_answers(&db, &task, &field.id, ANSWERS);
    time_page(&server, &task, &field.id, stored_answers(&db)).await;
}

/// Times the client's task page and the autosave of one answer to `field`.
async fn time_page(server: &Server, task: &str, field: &str, answers: i64) {
    println!(
        "with {answers} stored answers ({}):",
        common::load_average()
    );
    let page = server.at(&format!("/tasks/{task}"));
    let gets = timed(REQUESTS, |_| async {
        let r = server.http.get(&page).send().await.unwrap();
        assert_eq!(r.status(), 200, "the task page");
        r.bytes().await.unwrap();
    })
    .await;
    let saves = timed(REQUESTS, |i| {
        let form = vec![
            ("f".to_string(), field.to_string()),
            (format!("v:{field}"), format!("Answer number {i}")),
        ];
        save(server, task, form)
    })
    .await;
    report("  GET /tasks/:id (the page)", &gets, "p99 < 50 ms");
    report("  POST one answer (autosave)", &saves, "none set");
}

/// Adds answers to questions the organizer does not have until `task` has `total`.
fn pad_answers(db: &Path, task: &str, like: &str, total: usize) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let have = stored_answers(db) as usize;
    for n in have..total {
        conn.execute(
            "INSERT INTO task_answers (task_id, field_id, value, updated_at) \
             SELECT a.task_id, ?1, a.value, a.updated_at FROM task_answers a \
             JOIN tasks t ON t.id = a.task_id WHERE t.public_id = ?2 AND a.field_id = ?3",
            (format!("bench.kept-{n}"), task, like),
        )
        .unwrap();
    }
}

/// The organizer's settings for the largest questionnaire, and every field it has.
fn organizer_fields(organizer: &Path, work: &Path) -> (Vec<Answer>, Vec<Field>) {
    let runtime = Runtime::new(Limits::default()).unwrap();
    let (plugin, _) = runtime
        .load_file(organizer, &work.join("bench-cache"))
        .unwrap();
    let form = plugin.settings_form().result.unwrap();
    let settings: Vec<Answer> = form
        .iter()
        .flat_map(|s| &s.fields)
        .filter_map(|f| {
            fullest(f).map(|value| Answer {
                field: f.id.clone(),
                value,
                review: Review::Waiting,
            })
        })
        .collect();
    let view = plugin
        .render(&super::ctx(), &settings, &[], &[])
        .result
        .unwrap()
        .unwrap_or_else(|message| panic!("render refused: {message}"));
    let fields = view.sections.into_iter().flat_map(|s| s.fields).collect();
    (settings, fields)
}

/// The answer that shows the most: the full questionnaire, every topic and
/// income source, married filing jointly, a yes to every question, and more
/// dependents than there are slots.
fn fullest(field: &Field) -> Option<Value> {
    Some(match field.kind {
        Kind::Text => Value::Text(format!("An ordinary answer to {}", field.label)),
        Kind::LongText => Value::Text("An answer\nover two lines".into()),
        Kind::Number if field.id == "dependents.count" => Value::Number(7.0),
        Kind::Number => Value::Number(2.0),
        Kind::Money => Value::Cents(123_456),
        Kind::Date => Value::Date("1980-05-01".into()),
        Kind::YesNo => Value::Flag(true),
        Kind::Choice => Value::Picked(vec![
            field
                .choices
                .iter()
                .find(|c| *c == "Married filing jointly")
                .or(field.choices.first())?
                .clone(),
        ]),
        Kind::MultiChoice => Value::Picked(field.choices.clone()),
        Kind::Ssn => Value::Text("123-45-6789".into()),
        Kind::Ein => Value::Text("12-3456789".into()),
        Kind::Upload => Value::Files(vec!["statement.pdf".into()]),
        Kind::Statement => return None,
    })
}

/// A value as the form fields a browser sends for it.
fn typed(value: &Value) -> Vec<String> {
    match value {
        Value::Text(t) | Value::Date(t) => vec![t.clone()],
        Value::Number(n) => vec![n.to_string()],
        Value::Cents(c) => vec![format!("{}.{:02}", c / 100, c % 100)],
        Value::Flag(f) => vec![if *f { "yes" } else { "no" }.into()],
        Value::Picked(p) => p.clone(),
        Value::Files(_) | Value::Na(_) => Vec::new(),
    }
}

/// Adds staff with the CLI and signs them in, enrolling the authenticator.
async fn staff_signed_in(server: &Server, config: &Path) -> reqwest::Client {
    let mut add = portal(config)
        .args([
            "staff",
            "add",
            "--email",
            STAFF_EMAIL,
            "--name",
            "Bench Staff",
        ])
        .arg("--password-stdin")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    add.stdin
        .take()
        .unwrap()
        .write_all(STAFF_PASSWORD.as_bytes())
        .unwrap();
    assert!(add.wait().unwrap().success(), "portal staff add");
    let http = browser();
    let body = text(http.get(server.at("/staff/signin"))).await;
    let form = [
        ("email", STAFF_EMAIL.to_string()),
        ("password", STAFF_PASSWORD.into()),
        ("csrf", csrf_in(&body)),
    ];
    let body = text(http.post(server.at("/staff/signin")).form(&form)).await;
    let secret = regex::Regex::new(r#"<code class="secret">([A-Z2-7]+)</code>"#)
        .unwrap()
        .captures(&body)
        .unwrap_or_else(|| panic!("no enrolment in {body}"))[1]
        .to_string();
    let code = portal::firm::totp::current_code(&secret).unwrap();
    let form = [("code", code), ("csrf", csrf_in(&body))];
    let home = http
        .post(server.at("/staff/totp"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(home.url().path(), "/staff", "staff signed in");
    http
}

async fn text(request: reqwest::RequestBuilder) -> String {
    request.send().await.unwrap().text().await.unwrap()
}

/// Staff assign the organizer with `settings` from the client's page; returns the task id.
async fn assign(server: &Server, staff: &reqwest::Client, settings: &[Answer]) -> String {
    let clients = text(staff.get(server.at("/staff/clients"))).await;
    let client = regex::Regex::new(r#"href="/staff/clients/([A-Za-z0-9_-]+)""#)
        .unwrap()
        .captures(&clients)
        .unwrap_or_else(|| panic!("no client listed in {clients}"))[1]
        .to_string();
    let path = format!("/staff/clients/{client}/tasks");
    let page = text(staff.get(server.at(&format!("{path}?type=organizer")))).await;
    let mut form: Vec<(String, String)> = [
        ("csrf", csrf_in(&page)),
        ("type", "organizer".into()),
        ("title", "2025 organizer".into()),
        ("due_date", "2026-03-15".into()),
        ("tax_year", "2025".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for answer in settings {
        for v in typed(&answer.value) {
            form.push((format!("s:{}", answer.field), v));
        }
    }
    let done = staff
        .post(server.at(&path))
        .form(&form)
        .send()
        .await
        .unwrap();
    match done.url().path().strip_prefix("/staff/tasks/") {
        Some(task) => task.to_string(),
        None => panic!("not assigned: {}", done.text().await.unwrap()),
    }
}

/// Saves the fullest answer to every question until no more questions show,
/// then sends a file to each upload question shown; returns the ids shown.
async fn answer_everything(server: &Server, task: &str, fields: &[Field]) -> BTreeSet<String> {
    let mut form = Vec::new();
    for field in fields.iter().filter(|f| f.kind != Kind::Upload) {
        let Some(value) = fullest(field) else {
            continue;
        };
        form.push(("f".to_string(), field.id.clone()));
        for v in typed(&value) {
            form.push((format!("v:{}", field.id), v));
        }
    }
    let mut visible = BTreeSet::new();
    for _ in 0..20 {
        let reply: serde_json::Value = save(server, task, form.clone()).await;
        let now: BTreeSet<String> = reply["visible"]
            .as_array()
            .unwrap_or_else(|| panic!("not saved: {reply}"))
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        if now == visible {
            break;
        }
        visible = now;
    }
    for field in fields
        .iter()
        .filter(|f| f.kind == Kind::Upload && visible.contains(&f.id))
    {
        upload(server, task, &field.id).await;
    }
    visible
}

/// The autosave: the fields of `form`, answered with JSON.
async fn save(server: &Server, task: &str, mut form: Vec<(String, String)>) -> serde_json::Value {
    form.push(("csrf".into(), server.csrf.clone()));
    let r = server
        .http
        .post(server.at(&format!("/tasks/{task}/save")))
        .header("Accept", "application/json")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "saved");
    serde_json::from_slice(&r.bytes().await.unwrap()).unwrap()
}

async fn upload(server: &Server, task: &str, field: &str) {
    // A 1×1 PNG: a photo of a form, as a phone sends it.
    let png = [
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
        0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f,
        0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8,
        0xcf, 0xc0, 0xf0, 0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00,
        0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
    ];
    let form = reqwest::multipart::Form::new()
        .text("csrf", server.csrf.clone())
        .text("field", field.to_string())
        .part(
            "files",
            reqwest::multipart::Part::bytes(png.to_vec()).file_name(format!("{field}.png")),
        );
    let r = server
        .http
        .post(server.at(&format!("/tasks/{task}/upload")))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert!(
        r.url()
            .query()
            .is_some_and(|q| q.contains("notice=file-sent")),
        "upload to {field}: {}",
        r.text().await.unwrap()
    );
}

/// The answers stored (values, not cleared ones; the bench has one task).
fn stored_answers(db: &Path) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(
        "SELECT count(*) FROM task_answers WHERE value IS NOT NULL",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

/// Runs `request` `n` times one after another, after `n / 10` untimed to warm
/// up (connections, caches); the sorted durations.
async fn timed<F, Fut, T>(n: usize, request: F) -> Vec<Duration>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    for i in 0..n / 10 {
        request(n + i).await;
    }
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let start = Instant::now();
        request(i).await;
        times.push(start.elapsed());
    }
    times.sort();
    times
}

fn report(what: &str, times: &[Duration], target: &str) {
    println!(
        "{what:<28} p50 {:>8}  p99 {:>8}  max {:>8}  ({} requests; target: {target})",
        super::took(times[times.len() / 2]),
        super::took(times[times.len() * 99 / 100]),
        super::took(times[times.len() - 1]),
        times.len()
    );
}
