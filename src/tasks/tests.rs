//! The engine's rules with a test kind: three questions, one shown only when an
//! earlier answer asks for it, and one reviewed upload.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::flow::{self, Assignment, Decision};
use super::kinds::{
    Answer, Called, Ctx, Field, FieldKind, Finish, Issue, KindError, KindInfo, LogLevel, LogLine,
    Outcome, Section, TaskKind, Value, View,
};
use super::{Task, answers, state};
use crate::accounts::Client;
use crate::firm::Staff;
use crate::infra::audit::Actor;
use crate::infra::web::Visitor;
use crate::state::AppState;

/// Married? (yes-no) → Spouse's name (text, only when married) → W-2 (reviewed upload).
struct Quiz {
    info: KindInfo,
    fail: AtomicBool,
    submitted: Mutex<Vec<Answer>>,
    prior: Mutex<Vec<Answer>>,
}

impl Quiz {
    /// The fields of the answers the last submit handed to the kind.
    fn submitted_fields(&self) -> Vec<String> {
        let submitted = self.submitted.lock().unwrap();
        submitted.iter().map(|a| a.field.clone()).collect()
    }
}

fn called<T>(result: Result<T, KindError>) -> Called<T> {
    Called {
        result,
        log: vec![LogLine {
            level: LogLevel::Info,
            message: "quiz called".into(),
        }],
    }
}

fn question(id: &str, kind: FieldKind, visible: bool) -> Field {
    Field {
        id: id.into(),
        label: id.into(),
        help: None,
        kind,
        choices: Vec::new(),
        required: true,
        allow_na: kind == FieldKind::Upload,
        visible,
        reviewed: kind == FieldKind::Upload,
        accept: None,
    }
}

impl TaskKind for Quiz {
    fn info(&self) -> &KindInfo {
        &self.info
    }

    fn settings_form(&self) -> Called<Vec<Section>> {
        called(Ok(Vec::new()))
    }

    fn check_settings(&self, _: &[Answer]) -> Called<Vec<Issue>> {
        called(Ok(Vec::new()))
    }

    fn render(&self, _: &Ctx, _: &[Answer], answers: &[Answer], prior: &[Answer]) -> Called<View> {
        *self.prior.lock().unwrap() = prior.to_vec();
        if self.fail.load(Ordering::SeqCst) {
            return called(Err(KindError::Failed("quiz ran out of time".into())));
        }
        let married = answers
            .iter()
            .any(|a| a.field == "married" && a.value == Value::Flag(true));
        let fields = vec![
            question("married", FieldKind::YesNo, true),
            question("spouse", FieldKind::Text, married),
            question("w2", FieldKind::Upload, true),
        ];
        let shown: Vec<String> = fields
            .iter()
            .filter(|f| f.visible)
            .map(|f| f.id.clone())
            .collect();
        let done = answers.iter().filter(|a| shown.contains(&a.field)).count();
        called(Ok(View {
            sections: vec![Section {
                id: "main".into(),
                title: "Main".into(),
                intro: None,
                fields,
            }],
            done: done as u32,
            total: shown.len() as u32,
            issues: Vec::new(),
        }))
    }

    fn submit(
        &self,
        _: &Ctx,
        _: &[Answer],
        answers: &[Answer],
    ) -> Called<Result<Outcome, Vec<Issue>>> {
        *self.submitted.lock().unwrap() = answers.to_vec();
        called(Ok(Ok(Outcome {
            summary: format!("{} answers", answers.len()),
            finish: Finish::AwaitingReview,
            notify_staff: true,
        })))
    }
}

struct World {
    state: AppState,
    client: Client,
    staff: Staff,
    quiz: Arc<Quiz>,
    _dir: tempfile::TempDir,
}

async fn world(kind_id: &str) -> World {
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::Config::default();
    config.storage.data_dir = dir.path().join("data");
    config.security.argon2_memory_kib = 64;
    config.security.argon2_iterations = 1;
    let state = AppState::open(config).unwrap();
    let client = crate::accounts::invite::invite_client(
        &state,
        "Jane Doe",
        "jane@example.com",
        Actor::System,
        "",
    )
    .await
    .unwrap();
    crate::firm::add_staff(
        &state,
        "ann@example.com",
        "Ann",
        "correct horse battery staple",
    )
    .await
    .unwrap();
    let staff = crate::firm::list_staff(&state).await.unwrap().remove(0);
    let quiz = Arc::new(Quiz {
        info: KindInfo {
            id: kind_id.into(),
            name: "Quiz".into(),
            version: "1".into(),
            summary: "Three questions".into(),
        },
        fail: AtomicBool::new(false),
        submitted: Mutex::new(Vec::new()),
        prior: Mutex::new(Vec::new()),
    });
    super::kinds::TEST_KINDS.lock().unwrap().push(quiz.clone());
    World {
        state,
        client,
        staff,
        quiz,
        _dir: dir,
    }
}

/// The real server on a loopback port, for the HTTP and browser tests.
struct Served {
    base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Served {
    async fn shut_down(self) {
        let _ = self.stop.send(());
        self.server.await.unwrap().unwrap();
    }
}

impl World {
    async fn serve(&self) -> Served {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(crate::serve(self.state.clone(), listener, async move {
            let _ = stopped.await;
        }));
        Served { base, stop, server }
    }

    /// A session token for the client or staff member, as after signing in.
    async fn session(&self, subject: crate::accounts::session::Subject) -> String {
        let st = self.state.clone();
        let visitor = Visitor {
            ip: "127.0.0.1".into(),
            user_agent: "test".into(),
        };
        self.state
            .db
            .write(move |tx| {
                crate::accounts::session::open(tx, &st, subject, &visitor)
                    .map_err(crate::infra::db::DbError::from)
            })
            .await
            .unwrap()
    }

    async fn assign(&self) -> Task {
        self.assign_for("2025").await
    }

    async fn assign_for(&self, year: &str) -> Task {
        self.try_assign(year).await.unwrap()
    }

    async fn try_assign(&self, year: &str) -> Result<Task, super::TaskError> {
        let a = Assignment {
            type_id: self.quiz.info.id.clone(),
            title: "Quiz".into(),
            due_date: String::new(),
            tax_year: year.into(),
            settings: Vec::new(),
        };
        flow::assign(&self.state, &self.staff, &self.client, a, "").await
    }

    async fn task(&self, task: &Task) -> Task {
        super::by_public_id(&self.state, &task.public_id)
            .await
            .unwrap()
    }

    async fn save(&self, task: &Task, pairs: &[(&str, &str)]) -> answers::Saved {
        let form = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        answers::save(&self.state, &self.task(task).await, form)
            .await
            .unwrap()
    }

    /// Saves one answer: `field` = `value`.
    async fn answer(&self, task: &Task, field: &str, value: &str) -> answers::Saved {
        self.save(task, &[("f", field), (&format!("v:{field}"), value)])
            .await
    }

    async fn value(&self, task: &Task, field: &str) -> Option<Value> {
        super::stored_answers(&self.state, task)
            .await
            .unwrap()
            .into_iter()
            .find(|s| s.field == field)
            .and_then(|s| s.value)
    }

    async fn upload_w2(&self, task: &Task, bytes: &'static [u8]) {
        let task = self.task(task).await;
        let field = answers::upload_field(&self.state, &task, "w2")
            .await
            .unwrap();
        let body =
            futures_util::stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from_static(bytes))]);
        let visitor = Visitor {
            ip: String::new(),
            user_agent: String::new(),
        };
        answers::store_file(
            &self.state,
            &self.client,
            &task,
            Some(&field.id),
            "w2.pdf",
            body,
            &visitor,
        )
        .await
        .unwrap();
    }

    async fn submit(&self, task: &Task) -> Result<Task, String> {
        let task = self.task(task).await;
        flow::submit(&self.state, &self.client, &task, "")
            .await
            .map_err(|e| e.to_string())
    }
}

/// The save showed the kind's failure, and it mentions `why`.
#[track_caller]
fn assert_failure(saved: &answers::Saved, why: &str) {
    let failure = saved
        .rendered
        .failure
        .as_deref()
        .expect("a failure is shown");
    assert!(failure.contains(why), "{failure}");
}

#[tokio::test]
async fn hidden_answers_are_kept_but_never_submitted() {
    let w = world("quiz-hidden").await;
    let task = w.assign().await;
    w.answer(&task, "married", "yes").await;
    w.answer(&task, "spouse", "Sam").await;
    w.answer(&task, "married", "no").await;
    // Spouse is hidden now: kept, not destroyed.
    assert_eq!(
        w.value(&task, "spouse").await,
        Some(Value::Text("Sam".into()))
    );
    // A post naming a hidden field cannot change it.
    w.answer(&task, "spouse", "").await;
    assert_eq!(
        w.value(&task, "spouse").await,
        Some(Value::Text("Sam".into()))
    );
    w.save(&task, &[("f", "w2"), ("na:w2", "No job this year")])
        .await;
    let submitted = w.submit(&task).await.unwrap();
    assert_eq!(submitted.state, state::AWAITING_REVIEW);
    let fields = w.quiz.submitted_fields();
    assert_eq!(
        fields,
        ["married", "w2"],
        "the hidden spouse answer is not submitted"
    );
    assert_eq!(submitted.summary.as_deref(), Some("2 answers"));
    // Staff were told, in the inbox and by mail.
    let inbox = crate::documents::publish::unread_notifications(&w.state)
        .await
        .unwrap();
    assert_eq!(inbox, 1);
    // Nothing to review item by item: staff mark it complete.
    flow::close(&w.state, &w.staff, &submitted, "")
        .await
        .unwrap();
    assert_eq!(w.task(&task).await.state, state::COMPLETED);
}

#[tokio::test]
async fn progress_is_the_last_render_and_required_questions_block_submit() {
    let w = world("quiz-progress").await;
    let task = w.assign().await;
    let t = w.task(&task).await;
    assert_eq!((t.progress_done, t.progress_total), (0, 2));
    assert!(
        w.submit(&task)
            .await
            .unwrap_err()
            .contains("Please answer these before you submit: married; w2")
    );
    w.answer(&task, "married", "yes").await;
    let t = w.task(&task).await;
    assert_eq!(
        (t.progress_done, t.progress_total),
        (1, 3),
        "spouse now counts"
    );
    // A bad value is refused for its field alone; the others are saved.
    let saved = w
        .save(
            &task,
            &[
                ("f", "married"),
                ("v:married", "maybe"),
                ("f", "spouse"),
                ("v:spouse", "Sam"),
            ],
        )
        .await;
    assert_eq!(saved.errors.len(), 1);
    assert_eq!(saved.errors[0].field, "married");
    assert_eq!(w.value(&task, "married").await, Some(Value::Flag(true)));
    assert_eq!(
        w.value(&task, "spouse").await,
        Some(Value::Text("Sam".into()))
    );
    let t = w.task(&task).await;
    assert_eq!((t.progress_done, t.progress_total), (2, 3));
}

#[tokio::test]
async fn a_failing_kind_never_loses_what_was_typed() {
    let w = world("quiz-fail").await;
    let task = w.assign().await;
    w.quiz.fail.store(true, Ordering::SeqCst);
    let saved = w
        .save(
            &task,
            &[
                ("f", "married"),
                ("v:married", "yes"),
                ("note:married", "Since June"),
            ],
        )
        .await;
    assert_failure(&saved, "quiz ran out of time");
    assert!(
        saved.rendered.view.is_some(),
        "the last good view is still shown"
    );
    assert_eq!(w.value(&task, "married").await, Some(Value::Flag(true)));
    assert!(
        w.submit(&task)
            .await
            .unwrap_err()
            .contains("Everything you entered is saved")
    );
    assert_eq!(w.task(&task).await.state, state::OPEN);
    w.quiz.fail.store(false, Ordering::SeqCst);
    let t = w.task(&task).await;
    let rendered = super::render(&w.state, &t).await.unwrap();
    assert!(rendered.failure.is_none());
    assert_eq!(w.task(&task).await.progress_total, 3);
    let log = w
        .state
        .db
        .read(move |c| super::repo::log(c, t.id).map_err(crate::infra::db::DbError::from))
        .await
        .unwrap();
    assert!(
        log.iter().any(|l| l.message == "quiz called"),
        "the kind's log lines are kept"
    );
}

#[tokio::test]
async fn a_returned_item_goes_back_and_accepting_every_item_completes() {
    let w = world("quiz-review").await;
    let task = w.assign().await;
    w.answer(&task, "married", "no").await;
    w.upload_w2(&task, b"%PDF-1.4 last year").await;
    assert!(matches!(w.value(&task, "w2").await, Some(Value::Files(f)) if f.len() == 1));
    w.submit(&task).await.unwrap();
    let t = w.task(&task).await;
    let back = vec![(
        "w2".to_string(),
        Decision::Return("This is last year's W-2.".into()),
    )];
    let t = flow::review(&w.state, &w.staff, &w.client, &t, back, "")
        .await
        .unwrap();
    assert_eq!(t.state, state::OPEN, "returned items go back to the client");
    let stored = super::stored_answers(&w.state, &t).await.unwrap();
    let w2 = stored.iter().find(|s| s.field == "w2").unwrap();
    assert_eq!(
        w2.return_reason.as_deref(),
        Some("This is last year's W-2.")
    );
    // The client sends the right file: waiting again, submitted, accepted: done.
    w.upload_w2(&task, b"%PDF-1.4 this year").await;
    w.submit(&task).await.unwrap();
    let t = w.task(&task).await;
    let accept = vec![("w2".to_string(), Decision::Accept)];
    let t = flow::review(&w.state, &w.staff, &w.client, &t, accept, "")
        .await
        .unwrap();
    assert_eq!(t.state, state::COMPLETED);
    // An accepted item is locked for the client.
    assert!(answers::upload_field(&w.state, &t, "w2").await.is_err());
    let events = w
        .state
        .db
        .read(move |c| super::repo::events(c, t.id).map_err(crate::infra::db::DbError::from))
        .await
        .unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    for kind in [
        "task_assigned",
        "task_submitted",
        "task_item_returned",
        "task_item_accepted",
        "task_completed",
    ] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
}

#[tokio::test]
async fn last_years_answers_reach_the_kind_as_prior_answers() {
    let w = world("quiz-prior").await;
    let last_year = w.assign_for("2024").await;
    w.answer(&last_year, "married", "yes").await;
    let task = w.assign().await;
    super::render(&w.state, &w.task(&task).await).await.unwrap();
    let prior = w.quiz.prior.lock().unwrap().clone();
    assert_eq!(prior.len(), 1);
    assert_eq!(prior[0].value, Value::Flag(true));
}

#[tokio::test]
async fn a_kind_that_cannot_render_is_not_assigned() {
    let w = world("quiz-broken").await;
    w.quiz.fail.store(true, Ordering::SeqCst);
    let refused = w.try_assign("2025").await.unwrap_err();
    assert!(
        refused.to_string().contains("quiz ran out of time"),
        "{refused}"
    );
    let tasks = super::list_for_client(&w.state, w.client.id).await.unwrap();
    assert!(tasks.is_empty(), "nothing reached the client");
}

#[tokio::test]
async fn a_task_whose_type_is_gone_keeps_its_answers_and_says_so() {
    let w = world("quiz-gone").await;
    let task = w.assign().await;
    w.answer(&task, "married", "yes").await;
    super::kinds::TEST_KINDS
        .lock()
        .unwrap()
        .retain(|k| k.info().id != "quiz-gone");
    let saved = w
        .save(&task, &[("f", "married"), ("v:married", "no")])
        .await;
    assert_failure(&saved, "is not installed right now");
    assert_eq!(
        w.value(&task, "married").await,
        Some(Value::Flag(false)),
        "still saved"
    );
    assert!(w.submit(&task).await.unwrap_err().contains("not installed"));
    assert_eq!(w.task(&task).await.state, state::OPEN);
}

#[tokio::test]
async fn answers_survive_a_restart() {
    let w = world("quiz-restart").await;
    let task = w.assign().await;
    w.save(
        &task,
        &[
            ("f", "married"),
            ("v:married", "yes"),
            ("note:married", "Since June"),
        ],
    )
    .await;
    w.answer(&task, "spouse", "Sam").await;
    let config = (*w.state.config).clone();
    let World { state, _dir, .. } = w;
    drop(state);
    let state = AppState::open(config).unwrap();
    let task = super::by_public_id(&state, &task.public_id).await.unwrap();
    let stored = super::stored_answers(&state, &task).await.unwrap();
    let married = stored.iter().find(|s| s.field == "married").unwrap();
    assert_eq!(married.value, Some(Value::Flag(true)));
    assert_eq!(married.note.as_deref(), Some("Since June"));
    assert!(
        stored
            .iter()
            .any(|s| s.value == Some(Value::Text("Sam".into())))
    );
    assert_eq!((task.progress_done, task.progress_total), (2, 3));
}

mod browser;
mod http;
