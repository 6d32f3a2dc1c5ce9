//! T1–T3 through HTTP, for what needs no plugin: assigning, the built-in
//! Exchange with attachments landing in Documents, the client's Pending and
//! Completed Tasks, staff reopen and cancel, another client's 404s, CSRF on every
//! POST, the audit log, and a restart.

use crate::common::*;

const JANE: &str = "jane@example.com";
const BOB: &str = "bob@example.com";
const ANN: &str = "ann@smithlee.example";

/// Staff assign an Exchange to the client `client_id`; returns the task's id.
async fn assign_exchange(staff: &Browser, client_id: &str, title: &str, message: &str) -> String {
    staff
        .get(&format!("/staff/clients/{client_id}/tasks?type=exchange"))
        .await
        .expect("First message to the client");
    let page = staff
        .post(
            &format!("/staff/clients/{client_id}/tasks"),
            &[
                ("type", "exchange"),
                ("title", title),
                ("due_date", "2026-03-01"),
                ("tax_year", "2025"),
                ("s:message", message),
            ],
        )
        .await;
    page.expect("The task was assigned and the client was emailed.");
    page.path().trim_start_matches("/staff/tasks/").to_string()
}

/// Posts a multipart form as this browser, with its CSRF token unless `csrf` is false.
async fn multipart(
    b: &Browser,
    path: &str,
    texts: &[(&str, &str)],
    files: &[(&str, &[u8])],
    csrf: bool,
) -> Raw {
    let mut form = reqwest::multipart::Form::new();
    if csrf {
        form = form.text("csrf", b.csrf());
    }
    for (k, v) in texts {
        form = form.text(k.to_string(), v.to_string());
    }
    for (name, bytes) in files {
        form = form.part(
            "files",
            reqwest::multipart::Part::bytes(bytes.to_vec()).file_name(name.to_string()),
        );
    }
    b.raw(b.http().post(b.url(path)).multipart(form)).await
}

/// A portal with Jane signed in, staff signed in, and an Exchange staff
/// assigned to Jane: (portal, jane, staff, the task's id).
async fn jane_with_exchange(title: &str, message: &str) -> (TestPortal, Browser, Browser, String) {
    let (portal, jane) = TestPortal::with_jane().await;
    let staff = staff_browser(&portal).await;
    let task = assign_exchange(&staff, &portal.client_id(JANE), title, message).await;
    (portal, jane, staff, task)
}

/// Files for a multipart form: (name, content).
type Files<'a> = &'a [(&'a str, &'a [u8])];

/// Posts a multipart form (with its CSRF token) that must be refused: 422,
/// with `why` on the page.
async fn refused(
    b: &Browser,
    path: &str,
    texts: &[(&str, &str)],
    files: &[(&str, &[u8])],
    why: &str,
) {
    let raw = multipart(b, path, texts, files, true).await;
    assert_eq!(raw.status, 422, "{path}");
    let page = text(&raw);
    assert!(page.contains(why), "{why:?} missing from\n{page}");
}

/// The client posts a message (and files) in a task's Exchange; it must be
/// sent. Returns the page.
async fn message_sent(b: &Browser, task: &str, body: &str, files: &[(&str, &[u8])]) -> String {
    let path = format!("/tasks/{task}/messages");
    let sent = multipart(b, &path, &[("body", body)], files, true).await;
    assert_eq!(sent.status, 200, "{}", text(&sent));
    text(&sent)
}

pub fn text(raw: &Raw) -> String {
    String::from_utf8_lossy(&raw.body).into_owned()
}

pub fn audited(portal: &TestPortal, event: &str, task: &str) -> i64 {
    portal.query_i64(&format!(
        "SELECT count(*) FROM audit_log WHERE event = '{event}' AND subject = '{task}'"
    ))
}

#[tokio::test]
async fn exchange_from_assignment_through_attachments_to_reopen_and_cancel() {
    let (portal, jane) = TestPortal::with_jane().await;
    let staff = staff_browser(&portal).await;
    let cid = portal.client_id(JANE);
    jane.get("/")
        .await
        .expect("Pending Tasks")
        .expect("Nothing to do right now")
        .expect("No completed tasks yet");

    // The staff client page offers Assign Task; the form checks what staff typed.
    staff
        .get(&format!("/staff/clients/{cid}"))
        .await
        .expect("Assign Task");
    staff
        .get(&format!("/staff/clients/{cid}/tasks"))
        .await
        .expect("Exchange")
        .expect("A message thread with attachments");
    let path = format!("/staff/clients/{cid}/tasks");
    let base = [
        ("type", "exchange"),
        ("title", "Questions about 2025"),
        ("tax_year", "2025"),
    ];
    staff
        .post(&path, &[&base[..], &[("s:message", "  ")]].concat())
        .await
        .refused("First message to the client: this is required.");
    staff
        .post(
            &path,
            &[&base[..], &[("s:message", "Hi"), ("due_date", "next week")]].concat(),
        )
        .await
        .refused("Enter the due date as YYYY-MM-DD.");
    let two_lines = [
        ("type", "exchange"),
        ("title", "Taxes\r\nBcc: someone@example.com"),
        ("tax_year", "2025"),
        ("s:message", "Hi"),
    ];
    staff.post(&path, &two_lines).await.refused("on one line");
    staff
        .post(
            &path,
            &[
                ("type", "no-such-type"),
                ("title", "x"),
                ("tax_year", "2025"),
            ],
        )
        .await
        .refused("Choose one of the task types offered.");
    assert_eq!(portal.query_i64("SELECT count(*) FROM tasks"), 0);

    let task = assign_exchange(
        &staff,
        &cid,
        "Questions about 2025",
        "Did you sell any stock?",
    )
    .await;
    let mail = portal.smtp.wait_nth(JANE, "New task from", 0).await;
    assert!(
        mail.text().contains(&format!("/tasks/{task}")),
        "{}",
        mail.text()
    );
    assert!(
        !mail.text().contains("sell any stock"),
        "the message stays in the portal"
    );

    // H2: Pending Tasks with Get Started, then Continue once opened.
    let home = jane.get("/").await;
    home.expect("Questions about 2025")
        .expect("Get Started")
        .expect("2026-03-01");
    jane.get(&format!("/tasks/{task}"))
        .await
        .expect("Did you sell any stock?")
        .expect("Mark as done");
    jane.get("/").await.expect("Continue");

    // The client answers with an attachment: it lands in Documents, staff hear of it.
    let reply = message_sent(
        &jane,
        &task,
        "Yes, see the statement.",
        &[("1099-B.pdf", &pdf_with_text("Proceeds 1234"))],
    )
    .await;
    assert!(reply.contains("Your message was sent"));
    assert!(reply.contains("1099-B.pdf"));
    jane.get("/documents")
        .await
        .expect("1099-B.pdf")
        .expect("2025 / Tasks");
    assert_eq!(
        portal.query_i64("SELECT count(*) FROM task_files WHERE message_id IS NOT NULL"),
        1
    );
    let notice = portal
        .smtp
        .wait_nth(ANN, "sent a message in Questions about 2025", 0)
        .await;
    assert!(notice.text().contains(&format!("/staff/tasks/{task}")));
    staff
        .get("/staff/inbox")
        .await
        .expect("Jane Doe sent a message in Questions about 2025");

    // Staff see the thread with the attachment and answer; the client is emailed.
    let page = staff.get(&format!("/staff/tasks/{task}")).await;
    page.expect("Yes, see the statement.")
        .expect("1099-B.pdf")
        .expect("task assigned");
    let reply = multipart(
        &staff,
        &format!("/staff/tasks/{task}/messages"),
        &[("message", "Thanks! Here is the engagement letter.")],
        &[("Engagement letter.pdf", &pdf_with_text("Engagement"))],
        true,
    )
    .await;
    assert!(
        text(&reply).contains("Your message was sent and the client was emailed."),
        "{}",
        text(&reply)
    );
    portal.smtp.wait_nth(JANE, "New message from", 0).await;
    jane.get(&format!("/tasks/{task}"))
        .await
        .expect("Here is the engagement letter.")
        .expect("Engagement letter.pdf");
    jane.get("/documents").await.expect("Engagement letter.pdf");
    assert_eq!(
        portal.smtp.matching(JANE, "New documents"),
        0,
        "one email for a reply with files"
    );

    // The client marks it done: Completed Tasks, read-only.
    jane.post(&format!("/tasks/{task}/submit"), &[])
        .await
        .expect("Completed");
    let home = jane.get("/").await;
    home.expect("Completed Tasks")
        .expect("View")
        .expect("Nothing to do right now");
    refused(
        &jane,
        &format!("/tasks/{task}/messages"),
        &[("body", "one more")],
        &[],
        "This conversation is closed.",
    )
    .await;
    assert_eq!(portal.query_i64("SELECT count(*) FROM task_messages"), 3);

    // Staff reopen with a message: the client is emailed it and can write again.
    staff
        .post(&format!("/staff/tasks/{task}/reopen"), &[("message", "  ")])
        .await
        .refused("Write a message for the client");
    staff
        .post(
            &format!("/staff/tasks/{task}/reopen"),
            &[("message", "One more question, please.")],
        )
        .await
        .expect("The task was reopened and the client was emailed.");
    let reopened = portal
        .smtp
        .wait_nth(JANE, "reopened Questions about 2025", 0)
        .await;
    assert!(reopened.text().contains("One more question, please."));
    jane.get("/")
        .await
        .expect("Questions about 2025")
        .expect("Continue");

    // Staff cancel: the client no longer sees it, even by its address.
    staff
        .post(&format!("/staff/tasks/{task}/cancel"), &[])
        .await
        .expect("The task was cancelled.");
    assert!(!jane.get("/").await.has("Questions about 2025"));
    assert_eq!(jane.get(&format!("/tasks/{task}")).await.status, 404);
    staff
        .post(&format!("/staff/tasks/{task}/cancel"), &[])
        .await
        .refused("Only a task that is not finished can be cancelled.");

    for event in [
        "task_assigned",
        "task_message_posted",
        "task_submitted",
        "task_reopened",
        "task_cancelled",
    ] {
        assert!(audited(&portal, event, &task) >= 1, "{event} is audited");
    }
    staff
        .get(&format!("/staff/tasks/{task}"))
        .await
        .expect("task cancelled");
    portal.stop().await;
}

#[tokio::test]
async fn another_client_gets_404_for_a_task_its_posts_and_its_files() {
    let (portal, jane, _staff, task) = jane_with_exchange("Jane's thread", "Hello Jane").await;
    message_sent(&jane, &task, "private", &[("w2.pdf", b"%PDF-1.4 jane")]).await;
    let doc = portal.query_text(
        "SELECT d.public_id FROM documents d JOIN task_files f ON f.document_id = d.id",
    );

    let bob = portal.client("Bob Roe", BOB, BOB_PIN).await;
    assert!(!bob.get("/").await.has("Jane's thread"));
    assert_eq!(bob.get(&format!("/tasks/{task}")).await.status, 404);
    for path in ["save", "submit"] {
        let page = bob
            .post(
                &format!("/tasks/{task}/{path}"),
                &[("f", "x"), ("v:x", "1")],
            )
            .await;
        assert_eq!(page.status, 404, "{path}: {}", page.body);
    }
    for path in ["messages", "upload"] {
        let raw = multipart(
            &bob,
            &format!("/tasks/{task}/{path}"),
            &[("body", "hijack"), ("field", "x")],
            &[("evil.pdf", b"%PDF-1.4 bob")],
            true,
        )
        .await;
        assert_eq!(raw.status, 404, "{path}");
    }
    let download = bob
        .raw(
            bob.http()
                .get(bob.url(&format!("/documents/{doc}/download"))),
        )
        .await;
    assert_eq!(download.status, 404);
    assert_eq!(portal.query_i64("SELECT count(*) FROM task_messages"), 2);
    assert_eq!(portal.query_i64("SELECT count(*) FROM documents"), 1);
    assert_eq!(portal.query_i64("SELECT state = 'open' FROM tasks"), 1);

    // A client is no staff member: the staff task pages send it to the staff sign-in.
    let page = jane.get(&format!("/staff/tasks/{task}")).await;
    assert_eq!(page.path(), "/staff/signin");
    let page = jane.post(&format!("/staff/tasks/{task}/cancel"), &[]).await;
    assert_eq!(page.path(), "/staff/signin");
    assert_eq!(portal.query_i64("SELECT state = 'open' FROM tasks"), 1);
    portal.stop().await;
}

#[tokio::test]
async fn every_task_post_needs_the_csrf_token() {
    let (portal, jane) = TestPortal::with_jane().await;
    let staff = staff_browser(&portal).await;
    let cid = portal.client_id(JANE);
    let assign = staff
        .post_without_csrf(
            &format!("/staff/clients/{cid}/tasks"),
            &[
                ("type", "exchange"),
                ("title", "t"),
                ("tax_year", "2025"),
                ("s:message", "m"),
            ],
        )
        .await;
    assert_eq!(assign.status, 403);
    assert_eq!(portal.query_i64("SELECT count(*) FROM tasks"), 0);
    let task = assign_exchange(&staff, &cid, "Thread", "Hello").await;
    jane.get(&format!("/tasks/{task}")).await;

    for path in ["save", "submit"] {
        let page = jane
            .post_without_csrf(&format!("/tasks/{task}/{path}"), &[])
            .await;
        assert_eq!(page.status, 403, "{path}");
    }
    for path in ["messages", "upload"] {
        let raw = multipart(
            &jane,
            &format!("/tasks/{task}/{path}"),
            &[("body", "forged"), ("field", "x")],
            &[("forged.pdf", b"%PDF-1.4 forged")],
            false,
        )
        .await;
        assert_eq!(raw.status, 403, "{path}");
    }
    let forged = multipart(
        &staff,
        &format!("/staff/tasks/{task}/messages"),
        &[("message", "forged")],
        &[("forged.pdf", b"%PDF-1.4 forged")],
        false,
    )
    .await;
    assert_eq!(forged.status, 403);
    for (path, fields) in [
        ("reopen", vec![("message", "forged")]),
        ("review", vec![]),
        ("settings", vec![]),
        ("close", vec![]),
        ("cancel", vec![]),
    ] {
        let page = staff
            .post_without_csrf(&format!("/staff/tasks/{task}/{path}"), &fields)
            .await;
        assert_eq!(page.status, 403, "{path}");
    }
    assert_eq!(portal.query_i64("SELECT count(*) FROM documents"), 0);
    assert_eq!(portal.query_i64("SELECT count(*) FROM task_messages"), 1);
    assert_eq!(portal.query_i64("SELECT state = 'open' FROM tasks"), 1);
    portal.stop().await;
}

#[tokio::test]
async fn a_task_and_its_thread_survive_a_restart() {
    let (portal, jane, _staff, task) = jane_with_exchange("Kept", "Before the restart").await;
    jane.get(&format!("/tasks/{task}")).await;
    message_sent(&jane, &task, "Mine too", &[]).await;
    let portal = portal.restart_on_same_address().await;
    jane.get(&format!("/tasks/{task}"))
        .await
        .expect("Before the restart")
        .expect("Mine too");
    jane.get("/").await.expect("Kept").expect("Continue");
    portal.stop().await;
}

#[tokio::test]
async fn an_empty_message_or_a_refused_file_is_explained() {
    let (portal, jane, _staff, task) = jane_with_exchange("Thread", "Hello").await;
    jane.get(&format!("/tasks/{task}")).await;
    let (messages, upload) = (
        format!("/tasks/{task}/messages"),
        format!("/tasks/{task}/upload"),
    );
    let long = "x".repeat(10_001);
    let pdf: Files = &[("a.pdf", b"%PDF-1.4 a")];
    let cases: [(&str, (&str, &str), Files, &str); 4] = [
        (
            &messages,
            ("body", " "),
            &[],
            "Write a message or attach a file.",
        ),
        (&messages, ("body", &long), pdf, "at most 10000 characters"),
        (
            &messages,
            ("body", "hi"),
            &[("empty.pdf", b"")],
            "empty.pdf is empty",
        ),
        // An Exchange has no questions to upload against.
        (
            &upload,
            ("field", "message"),
            pdf,
            "Choose a question that asks for a file.",
        ),
    ];
    for (path, field, files, why) in cases {
        refused(&jane, path, &[field], files, why).await;
    }
    assert_eq!(portal.query_i64("SELECT count(*) FROM documents"), 0);
    assert_eq!(portal.query_i64("SELECT count(*) FROM task_messages"), 1);
    portal.stop().await;
}

#[tokio::test]
async fn a_client_cannot_flood_the_firm_with_messages() {
    let (portal, jane, _staff, task) = jane_with_exchange("Thread", "Hello").await;
    jane.get(&format!("/tasks/{task}")).await;
    let path = format!("/tasks/{task}/messages");
    for i in 0..30 {
        let sent = multipart(
            &jane,
            &path,
            &[("body", &format!("message {i}"))],
            &[],
            true,
        )
        .await;
        assert_eq!(sent.status, 200, "{i}: {}", text(&sent));
    }
    refused(
        &jane,
        &path,
        &[("body", "one too many")],
        &[],
        "You have sent 30 messages in the last hour",
    )
    .await;
    assert_eq!(portal.query_i64("SELECT count(*) FROM task_messages"), 31);
    portal.stop().await;
}

/// `YYYY-MM-DD`, `days` from today.
fn in_days(days: i64) -> String {
    let date = time::OffsetDateTime::now_utc().date() + time::Duration::days(days);
    let format = time::macros::format_description!("[year]-[month]-[day]");
    date.format(format).unwrap()
}

#[tokio::test]
async fn due_date_reminders_go_once_per_threshold_and_stop_when_done() {
    let (portal, jane) = TestPortal::with_jane().await;
    let staff = staff_browser(&portal).await;
    let cid = portal.client_id(JANE);
    let due = in_days(7);
    let fields = [
        ("type", "exchange"),
        ("title", "Sign the engagement"),
        ("due_date", due.as_str()),
        ("tax_year", "2025"),
        ("s:message", "Please read and reply."),
    ];
    let page = staff
        .post(&format!("/staff/clients/{cid}/tasks"), &fields)
        .await;
    let task = page.path().trim_start_matches("/staff/tasks/").to_string();
    let send = || portal::tasks::reminders::send_due(&portal.state);
    // A week out: the assignment email was the reminder.
    assert_eq!(send().await.unwrap(), 0);

    let set_due = |days: i64| {
        portal.sql(&format!(
            "UPDATE tasks SET due_date = '{}' WHERE public_id = '{task}'",
            in_days(days)
        ))
    };
    set_due(1);
    assert_eq!(send().await.unwrap(), 1);
    assert_eq!(send().await.unwrap(), 0, "once per threshold");
    let mail = portal.smtp.wait_nth(JANE, "is due tomorrow", 0).await;
    assert!(mail.text().contains(&format!("/tasks/{task}")));
    set_due(0);
    assert_eq!(send().await.unwrap(), 1);
    portal.smtp.wait_nth(JANE, "is due today", 0).await;

    // Done: no more reminders, whatever the thresholds.
    jane.post(&format!("/tasks/{task}/submit"), &[])
        .await
        .expect("Completed");
    portal.sql("DELETE FROM task_reminders");
    assert_eq!(send().await.unwrap(), 0);
    portal.stop().await;
}
