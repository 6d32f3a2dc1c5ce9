//! The task engine with the REAL example plugins (plugins/build builds them
//! into target/plugins): Organizer, Gather and Extension through HTTP, from
//! staff assigning to the client submitting and staff reviewing; isolation
//! between clients and between tasks; a misbehaving plugin as a task type.

use std::path::{Path, PathBuf};

use crate::common::*;
use crate::tasks::{audited, text};

pub const JANE: &str = "jane@example.com";
pub const ANN: &str = "ann@smithlee.example";

/// target/plugins, where plugins/build puts the example plugins.
pub fn example_plugins() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/plugins");
    for name in ["organizer", "gather", "extension"] {
        assert!(
            dir.join(format!("{name}.wasm")).is_file(),
            "{name}.wasm is missing from {}: run plugins/build first",
            dir.display()
        );
    }
    dir
}

/// A portal serving the example plugins, with Jane signed in and Ann (staff).
pub async fn portal_with_plugins(dir: &Path) -> (TestPortal, Browser, Browser) {
    let dir = dir.to_string_lossy().into_owned();
    let portal = TestPortal::start_with(|c| c.plugins.dir = dir).await;
    let jane = portal.client("Jane Doe", JANE, PIN).await;
    let staff = staff_browser(&portal).await;
    (portal, jane, staff)
}

/// Staff assign a task of `kind` for 2025 from the client's page; returns its id.
pub async fn assign(
    staff: &Browser,
    client_id: &str,
    kind: &str,
    title: &str,
    settings: &[(&str, &str)],
) -> String {
    assign_for(staff, client_id, kind, title, "2025", settings).await
}

pub async fn assign_for(
    staff: &Browser,
    client_id: &str,
    kind: &str,
    title: &str,
    tax_year: &str,
    settings: &[(&str, &str)],
) -> String {
    staff
        .get(&format!("/staff/clients/{client_id}"))
        .await
        .expect("Assign Task");
    let form = staff
        .get(&format!("/staff/clients/{client_id}/tasks?type={kind}"))
        .await;
    assert_eq!(form.status, 200, "{}", form.body);
    let mut fields = vec![
        ("type", kind),
        ("title", title),
        ("due_date", "2026-03-15"),
        ("tax_year", tax_year),
    ];
    fields.extend_from_slice(settings);
    let page = staff
        .post(&format!("/staff/clients/{client_id}/tasks"), &fields)
        .await;
    page.expect("The task was assigned and the client was emailed.");
    page.path().trim_start_matches("/staff/tasks/").to_string()
}

/// Staff try to assign a task of `kind` with `settings`; it is refused with `message`.
async fn assignment_refused(
    staff: &Browser,
    client_id: &str,
    kind: &str,
    settings: &[(&str, &str)],
    message: &str,
) {
    let mut fields = vec![("type", kind), ("title", "Refused"), ("tax_year", "2025")];
    fields.extend_from_slice(settings);
    staff
        .post(&format!("/staff/clients/{client_id}/tasks"), &fields)
        .await
        .refused(message);
}

/// Sends one file against the question `field` of a task.
pub async fn upload(b: &Browser, task: &str, field: &str, name: &str, bytes: &[u8]) -> Raw {
    let form = reqwest::multipart::Form::new()
        .text("csrf", b.csrf())
        .text("field", field.to_string())
        .part(
            "files",
            reqwest::multipart::Part::bytes(bytes.to_vec()).file_name(name.to_string()),
        );
    b.raw(
        b.http()
            .post(b.url(&format!("/tasks/{task}/upload")))
            .multipart(form),
    )
    .await
}

/// Sends a PDF holding `content` against `field`; it must be received.
/// Returns the page.
pub async fn upload_pdf(b: &Browser, task: &str, field: &str, name: &str, content: &str) -> String {
    let sent = upload(b, task, field, name, &pdf_with_text(content)).await;
    assert_eq!(sent.status, 200, "{}", text(&sent));
    text(&sent)
}

/// Saves one answer (`field` = `value`) on the task page at `path`.
async fn save_answer(b: &Browser, path: &str, field: &str, value: &str) {
    let value_key = format!("v:{field}");
    let fields = [("f", field), (value_key.as_str(), value)];
    b.post(&format!("{path}/save"), &fields)
        .await
        .expect("Saved.");
}

/// The stored value of one answer (JSON), or "" if none.
fn stored(portal: &TestPortal, task: &str, field: &str) -> String {
    portal.query_text(&format!(
        "SELECT coalesce((SELECT a.value FROM task_answers a JOIN tasks t ON t.id = a.task_id \
         WHERE t.public_id = '{task}' AND a.field_id = '{field}'), '')"
    ))
}

#[tokio::test]
async fn organizer_from_assignment_through_restart_hidden_answers_and_reopen() {
    let plugins = example_plugins();
    let (portal, jane, staff) = portal_with_plugins(&plugins).await;
    let cid = portal.client_id(JANE);

    // The assign form offers the plugin types and shows the organizer's settings.
    staff
        .get(&format!("/staff/clients/{cid}/tasks"))
        .await
        .expect("Tax organizer")
        .expect("Document request")
        .expect("Extension review");
    staff
        .get(&format!("/staff/clients/{cid}/tasks?type=organizer"))
        .await
        .expect("Questionnaire")
        .expect("Also ask about");
    // The plugin's remark on settings that work but may not be what staff
    // meant is shown on the task's timeline; a blocking one refuses.
    assignment_refused(
        &staff,
        &cid,
        "organizer",
        &[("s:questionnaire", "Nonsense")],
        "Choose one of the options offered.",
    )
    .await;
    let quick = assign(
        &staff,
        &cid,
        "organizer",
        "Quick organizer",
        &[
            (
                "s:questionnaire",
                "Short organizer: income and changes only",
            ),
            ("s:ask-about", "Energy credits"),
        ],
    )
    .await;
    staff.get(&format!("/staff/tasks/{quick}")).await.expect(
        "settings remark: The short organizer has no questions about Energy credits; \
         choose the full organizer to ask about it.",
    );
    staff
        .post(&format!("/staff/tasks/{quick}/cancel"), &[])
        .await
        .expect("The task was cancelled.");
    let task = assign(
        &staff,
        &cid,
        "organizer",
        "2025 organizer",
        &[
            ("s:questionnaire", "Full 1040 organizer"),
            ("s:note", "Thanks for getting this to us early."),
        ],
    )
    .await;
    let mail = portal
        .smtp
        .wait_nth(JANE, "New task from Smith & Lee CPAs: 2025 organizer", 0)
        .await;
    assert!(
        mail.text().contains(&format!("/tasks/{task}")),
        "{}",
        mail.text()
    );

    let pending = assert_listed(&jane, "Pending Tasks", "2025 organizer").await;
    assert!(pending.contains("Get Started"), "{pending}");
    let path = format!("/tasks/{task}");
    let page = jane.get(&path).await;
    page.expect("About you and your filing status")
        .expect("Thanks for getting this to us early.")
        .expect("Save section");
    let total_before = progress(&page.body);

    // Plain POSTs, a section at a time: a bad SSN is refused by the field with
    // the reason, the other answers are saved.
    let about = [
        ("f", "about.first-name"),
        ("f", "about.last-name"),
        ("f", "about.ssn"),
        ("v:about.first-name", "Jane"),
        ("v:about.last-name", "Doe"),
        ("v:about.ssn", "12-34"),
    ];
    let page = jane.post(&format!("{path}/save"), &about).await;
    assert_eq!(page.status, 422, "{}", page.body);
    page.expect("Enter a Social Security number");
    assert!(stored(&portal, &task, "about.first-name").contains("Jane"));
    assert_eq!(stored(&portal, &task, "about.ssn"), "");
    let page = jane
        .post(
            &format!("{path}/save"),
            &[("f", "about.ssn"), ("v:about.ssn", "123-45-6789")],
        )
        .await;
    page.expect("Saved.");
    let after = progress(&page.body);
    assert!(after.0 > total_before.0, "{after:?} after {total_before:?}");

    // A plugin's own validation message shows next to its field.
    let page = jane
        .post(
            &format!("{path}/save"),
            &[
                ("f", "about.birth-date"),
                ("v:about.birth-date", "2030-01-01"),
            ],
        )
        .await;
    let issue = plugin_issue(&page.body, "about.birth-date");
    assert!(
        issue.contains("This birth date is in the future."),
        "no message by the birth date in {}",
        page.body
    );
    let after = progress(&page.body);

    // Restart: the answers are there and the page resumes at the first gap.
    let portal = portal.restart_on_same_address().await;
    let page = jane.get(&path).await;
    assert!(page.has("value=\"Jane\""), "{}", page.body);
    assert!(page.has("value=\"123-45-6789\""), "{}", page.body);
    assert_eq!(progress(&page.body), after, "progress after the restart");
    // The page resumes at the first question still to fix or answer: the
    // birth date the plugin refuses comes before the unanswered ones.
    page.expect(r##"<a href="#f-about.birth-date">Continue where you left off</a>"##);

    // A conditional section: married filing jointly shows the spouse's questions.
    let page = jane
        .post(
            &format!("{path}/save"),
            &[
                ("f", "about.filing-status"),
                ("v:about.filing-status", "Married filing jointly"),
            ],
        )
        .await;
    page.expect("Spouse&#x27;s first name");
    let page = jane
        .post(
            &format!("{path}/save"),
            &[
                ("f", "spouse.first-name"),
                ("v:spouse.first-name", "Samuel"),
            ],
        )
        .await;
    page.expect("value=\"Samuel\"");
    jane.post(
        &format!("{path}/save"),
        &[
            ("f", "about.filing-status"),
            ("v:about.filing-status", "Single"),
        ],
    )
    .await;
    assert!(
        stored(&portal, &task, "spouse.first-name").contains("Samuel"),
        "kept"
    );

    let page = jane.get(&path).await;
    assert!(
        page.has(r#"id="f-spouse.first-name" data-field="spouse.first-name" hidden disabled"#),
        "hidden again (kept for when it shows): {}",
        page.body
    );

    // A note to the preparer on a question, and the staff's list of the
    // client's tasks with type, progress and state.
    jane.post(
        &format!("{path}/save"),
        &[
            ("f", "about.occupation"),
            ("v:about.occupation", "Nurse"),
            ("note:about.occupation", "Two part-time jobs."),
        ],
    )
    .await
    .expect("Saved.");
    let (done, total) = progress(&jane.get(&path).await.body);
    staff
        .get(&format!("/staff/clients/{cid}"))
        .await
        .expect("2025 organizer")
        .expect(&format!(
            "Tax organizer · 2025 · due 2026-03-15 · {done} of {total}"
        ))
        .expect("Open");

    // Submitting is refused while the plugin's blocking message stands; the
    // rest is filled in from the first gap on (the birth date first).
    jane.post(&format!("{path}/submit"), &[])
        .await
        .refused("This birth date is in the future.");
    fill_required(&jane, &path).await;
    assert!(stored(&portal, &task, "about.birth-date").contains("1980-05-01"));
    let page = jane.post(&format!("{path}/submit"), &[]).await;
    page.expect("Completed: Organizer: Single; 0 dependents; income: interest.");
    assert!(!page.has("Save section"), "read-only once submitted");
    assert_listed(&jane, "Completed Tasks", "2025 organizer").await;
    let notice = portal.smtp.wait_nth(ANN, "2025 organizer", 0).await;
    assert!(
        notice.text().contains(&format!("/staff/tasks/{task}")),
        "{}",
        notice.text()
    );
    staff.get("/staff/inbox").await.expect("2025 organizer");

    // Staff see the answers without the hidden one, unless they ask.
    let staff_path = format!("/staff/tasks/{task}");
    let page = staff.get(&staff_path).await;
    page.expect("Jane")
        .expect("Show hidden answers")
        .expect("Note from the client: Two part-time jobs.")
        .expect("income.1099-int.pdf");
    jane.get("/documents").await.expect("income.1099-int.pdf");
    assert!(!page.has("Samuel"), "{}", page.body);
    staff
        .get(&format!("{staff_path}?hidden=1"))
        .await
        .expect("Samuel");
    let export = staff.get(&format!("{staff_path}/export")).await;
    assert!(
        export.has("123-45-6789") && !export.has("Samuel"),
        "{}",
        export.body
    );
    assert!(stored(&portal, &task, "spouse.first-name").contains("Samuel"));

    // Reopen with a message: the client is emailed, the task is pending again
    // with the answers kept.
    staff
        .post(
            &format!("{staff_path}/reopen"),
            &[("message", "Please add your spouse's details after all.")],
        )
        .await
        .expect("Open");
    let mail = portal
        .smtp
        .wait_nth(JANE, "reopened 2025 organizer", 0)
        .await;
    assert!(
        mail.text()
            .contains("Please add your spouse's details after all."),
        "{}",
        mail.text()
    );
    assert_listed(&jane, "Pending Tasks", "2025 organizer").await;
    for event in [
        "task_assigned",
        "task_submitted",
        "task_exported",
        "task_reopened",
    ] {
        assert_eq!(audited(&portal, event, &task), 1, "{event}");
    }
    let page = jane.get(&path).await;
    page.expect("Save section")
        .expect("Please add your spouse&#x27;s details after all.");
    assert!(page.has("value=\"Jane\""), "{}", page.body);
    portal.stop().await;
}

/// Answers every visible required question still open on the task page with
/// a plausible value, a plain POST per field (the organizer's own rules apply).
pub async fn fill_required(b: &Browser, path: &str) {
    let mut last = String::new();
    let gap = regex::Regex::new(r##"href="#f-([^"]+)""##).unwrap();
    for _ in 0..40 {
        let page = b.get(path).await;
        let (done, total) = progress(&page.body);
        if done == total {
            return;
        }
        let field = gap
            .captures(&page.body)
            .map(|c| c[1].to_string())
            .unwrap_or_else(|| panic!("no gap link at {done} of {total} in {}", page.body));
        assert_ne!(field, last, "stuck at {}", plugin_issue(&page.body, &field));
        last.clone_from(&field);
        if plugin_issue(&page.body, &field).contains(r#"type="file""#) {
            let task = path.trim_start_matches("/tasks/");
            let name = format!("{field}.pdf");
            upload_pdf(b, task, &field, &name, &field).await;
            continue;
        }
        let value = plausible(&field, &plugin_issue(&page.body, &field));
        let value = value.as_str();
        let page = b
            .post(
                &format!("{path}/save"),
                &[("f", field.as_str()), (&format!("v:{field}"), value)],
            )
            .await;
        assert_eq!(page.status, 200, "{field}={value}: {}", page.body);
    }
    panic!("the organizer never reached its end");
}

/// The part of the client's home under `heading` (up to the next heading),
/// which must list `title`.
pub async fn assert_listed(b: &Browser, heading: &str, title: &str) -> String {
    let home = b.get("/").await;
    let start = home
        .body
        .find(&format!(">{heading}<"))
        .unwrap_or_else(|| panic!("no {heading} on {}", home.body));
    let rest = &home.body[start + heading.len() + 2..];
    let part = &rest[..rest.find("<h2").unwrap_or(rest.len())];
    assert!(part.contains(title), "{title} not under {heading}: {part}");
    part.to_string()
}

/// A value the organizer accepts for a question, from how its input looks.
fn plausible(field: &str, markup: &str) -> String {
    let choice = regex::Regex::new(&format!(
        r#"name="v:{}" value="([^"]+)""#,
        regex::escape(field)
    ))
    .unwrap();
    let option = regex::Regex::new(r#"<option value="([^"]+)""#).unwrap();
    if markup.contains(r#"value="no""#) {
        "no".into()
    } else if markup.contains(r#"type="date""#) {
        "1980-05-01".into()
    } else if field == "income.sources" {
        "Interest".into()
    } else if let Some(c) = option.captures(markup).or_else(|| choice.captures(markup)) {
        c[1].to_string()
    } else if field.ends_with("ssn") {
        // A different number for each person.
        let n: u32 = field.bytes().map(u32::from).sum();
        format!("234-56-{:04}", n % 10_000)
    } else {
        "1".into()
    }
}

/// The "done of total" progress a task page shows.
fn progress(page: &str) -> (u32, u32) {
    let re = regex::Regex::new(r"(\d+) of (\d+) done").unwrap();
    let c = re
        .captures(page)
        .unwrap_or_else(|| panic!("no progress in {page}"));
    (c[1].parse().unwrap(), c[2].parse().unwrap())
}

/// The message shown by the field `id`, from the plugin's issues.
fn plugin_issue(page: &str, id: &str) -> String {
    let start = page.find(&format!("id=\"f-{id}\"")).unwrap_or(0);
    let rest = &page[start..];
    let end = rest
        .find("</fieldset>")
        .or_else(|| rest.find("</div>"))
        .unwrap_or(rest.len());
    rest[..end].to_string()
}

#[tokio::test]
async fn gather_uploads_na_return_replace_and_accept_to_completed() {
    let plugins = example_plugins();
    let (portal, jane, staff) = portal_with_plugins(&plugins).await;
    let cid = portal.client_id(JANE);
    staff
        .get(&format!("/staff/clients/{cid}/tasks?type=gather"))
        .await
        .expect("W-2 (wages)")
        .expect("Other documents, one per line");
    // The plugin checks the settings: nothing requested is refused with its message.
    assignment_refused(
        &staff,
        &cid,
        "gather",
        &[],
        "Choose at least one document, or add one under Other documents.",
    )
    .await;
    let task = assign(
        &staff,
        &cid,
        "gather",
        "Documents for 2025",
        &[
            ("s:documents", "W-2 (wages)"),
            ("s:documents", "1099-INT (interest)"),
            ("s:custom", "Closing statement for the condo"),
        ],
    )
    .await;
    portal.smtp.wait_nth(JANE, "New task from", 0).await;
    let path = format!("/tasks/{task}");
    let page = jane.get(&path).await;
    page.expect("Documents we need")
        .expect("W-2 (wages)")
        .expect("1099-INT (interest)")
        .expect("Closing statement for the condo")
        .expect(r#"capture="environment""#)
        .expect("0 of 3 done");

    // A file against an item lands in Documents; another item is N/A with a reason.
    let page = upload_pdf(&jane, &task, "doc.w2", "W-2 Acme.pdf", "W-2").await;
    assert!(page.contains("Your file was received."));
    jane.get("/documents")
        .await
        .expect("W-2 Acme.pdf")
        .expect("2025 &#x2f; Tasks");
    assert_eq!(
        portal.query_i64("SELECT count(*) FROM task_files WHERE field_id = 'doc.w2'"),
        1
    );
    let page = jane
        .post(
            &format!("{path}/save"),
            &[("f", "doc.1099-int"), ("na:doc.1099-int", "")],
        )
        .await;
    assert_eq!(page.status, 200, "an empty reason is no N/A: {}", page.body);
    let page = jane
        .post(
            &format!("{path}/save"),
            &[
                ("f", "doc.1099-int"),
                ("na:doc.1099-int", "No bank paid me interest in 2025"),
            ],
        )
        .await;
    page.expect("Saved.").expect("1 of 3 done");
    upload_pdf(
        &jane,
        &task,
        "custom.closing-statement-for-the-condo",
        "closing.pdf",
        "Closing",
    )
    .await;
    jane.post(&format!("{path}/submit"), &[])
        .await
        .expect("You sent this to your firm");
    portal.smtp.wait_nth(ANN, "Documents for 2025", 0).await;

    // Staff return the W-2 with a reason; the client sees it and replaces the file.
    let staff_path = format!("/staff/tasks/{task}");
    staff
        .get(&staff_path)
        .await
        .expect("W-2 Acme.pdf")
        .expect("No bank paid me interest in 2025")
        // The plugin's own log lines, from its calls for this task.
        .expect("rendered 3 item(s): 0 accepted, 1 not applicable, 2 to review")
        .expect("Task type log");
    staff
        .post(
            &format!("{staff_path}/review"),
            &[
                ("d:doc.w2", "return"),
                ("why:doc.w2", "This is the 2024 form; we need 2025."),
                ("d:custom.closing-statement-for-the-condo", "accept"),
            ],
        )
        .await
        .expect("Your review was saved.");
    let page = jane.get(&path).await;
    page.expect("Returned by your firm: This is the 2024 form; we need 2025.")
        .expect("Save section");
    upload_pdf(&jane, &task, "doc.w2", "W-2 Acme 2025.pdf", "W-2 2025").await;
    // An accepted item is locked.
    let sent = upload(
        &jane,
        &task,
        "custom.closing-statement-for-the-condo",
        "other.pdf",
        &pdf_with_text("x"),
    )
    .await;
    assert_eq!(sent.status, 422, "{}", text(&sent));
    jane.post(&format!("{path}/submit"), &[]).await;

    let page = staff
        .post(
            &format!("{staff_path}/review"),
            &[("d:doc.w2", "accept"), ("d:doc.1099-int", "accept")],
        )
        .await;
    page.expect("Completed");
    assert_eq!(
        portal.query_text(&format!(
            "SELECT state FROM tasks WHERE public_id = '{task}'"
        )),
        "completed"
    );
    assert_listed(&jane, "Completed Tasks", "Documents for 2025").await;
    assert_eq!(audited(&portal, "task_item_returned", &task), 1);
    assert_eq!(audited(&portal, "task_item_accepted", &task), 3);
    assert_eq!(audited(&portal, "task_completed", &task), 1);
    let page = jane.get(&path).await;
    page.expect("W-2 Acme 2025.pdf").expect("3 of 3 done");
    assert!(!page.has("W-2 Acme.pdf"), "the returned file was replaced");
    jane.get("/documents").await.expect("W-2 Acme.pdf");
    assert!(!page.has("Save section"), "read-only once completed");
    portal.stop().await;
}

#[tokio::test]
async fn extension_request_changes_then_revised_and_approved() {
    let plugins = example_plugins();
    let (portal, jane, staff) = portal_with_plugins(&plugins).await;
    let cid = portal.client_id(JANE);
    let figures = |pay: &'static str| {
        vec![
            ("s:form", "Form 4868 (individual)"),
            ("s:liability", "12,500.00"),
            ("s:payments", "9,000"),
            ("s:pay", pay),
            ("s:due", "2026-10-15"),
            ("s:note", "Your K-1 has not arrived yet."),
        ]
    };
    let task = assign(
        &staff,
        &cid,
        "extension",
        "2025 extension",
        &figures("3,500"),
    )
    .await;
    portal.smtp.wait_nth(JANE, "New task from", 0).await;

    let path = format!("/tasks/{task}");
    let page = jane.get(&path).await;
    page.expect("Form 4868 (individual)")
        .expect("12,500.00")
        .expect("9,000.00")
        .expect(r#"id="h-figure.pay">$3,500.00</p>"#)
        .expect("Your K-1 has not arrived yet.")
        .expect("Do you approve this extension?");
    // Asking for changes without saying which is refused by the plugin.
    let page = jane
        .post(
            &format!("{path}/save"),
            &[("f", "decision"), ("v:decision", "Request changes")],
        )
        .await;
    page.expect("What should we change?");
    jane.post(&format!("{path}/submit"), &[])
        .await
        .refused("What should we change?");
    jane.post(
        &format!("{path}/save"),
        &[
            ("f", "decision"),
            ("v:decision", "Request changes"),
            ("f", "comment"),
            (
                "v:comment",
                "I already paid 1,000 in January; please pay 2,500 instead.",
            ),
        ],
    )
    .await
    .expect("Saved.");
    jane.post(&format!("{path}/submit"), &[]).await;
    assert_eq!(
        portal.query_text(&format!(
            "SELECT state FROM tasks WHERE public_id = '{task}'"
        )),
        "changes_requested"
    );
    portal.smtp.wait_nth(ANN, "2025 extension", 0).await;

    // Staff see the comment, revise the figures and resend; the client is emailed.
    let staff_path = format!("/staff/tasks/{task}");
    staff
        .get(&staff_path)
        .await
        .expect("I already paid 1,000 in January; please pay 2,500 instead.");
    staff
        .get(&format!("{staff_path}/settings"))
        .await
        .expect("value=\"3500.00\"");
    let page = staff
        .post(&format!("{staff_path}/settings"), &figures("2,500"))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    portal
        .smtp
        .wait_nth(JANE, "reopened 2025 extension", 0)
        .await;
    let page = jane.get(&path).await;
    page.expect(r#"id="h-figure.pay">$2,500.00"#)
        .expect("Save section");
    save_answer(&jane, &path, "decision", "Approve").await;
    jane.post(&format!("{path}/submit"), &[])
        .await
        .expect("Completed");
    assert_eq!(
        portal.query_text(&format!(
            "SELECT state FROM tasks WHERE public_id = '{task}'"
        )),
        "completed"
    );
    assert_listed(&jane, "Completed Tasks", "2025 extension").await;
    portal.stop().await;
}

#[tokio::test]
async fn another_client_gets_404_and_tasks_do_not_see_each_other() {
    let plugins = example_plugins();
    let (portal, jane, staff) = portal_with_plugins(&plugins).await;
    let cid = portal.client_id(JANE);
    let organizer = [("s:questionnaire", "Full 1040 organizer")];
    let first = assign(&staff, &cid, "organizer", "Organizer A", &organizer).await;
    let second = assign(&staff, &cid, "organizer", "Organizer B", &organizer).await;
    let gather = assign(
        &staff,
        &cid,
        "gather",
        "Docs",
        &[("s:documents", "W-2 (wages)")],
    )
    .await;
    jane.get(&format!("/tasks/{first}")).await;
    save_answer(
        &jane,
        &format!("/tasks/{first}"),
        "about.first-name",
        "Janet",
    )
    .await;
    upload_pdf(&jane, &gather, "doc.w2", "jane-w2.pdf", "W-2").await;
    let doc = portal.query_text(
        "SELECT d.public_id FROM task_files f JOIN documents d ON d.id = f.document_id",
    );

    // The plugin is called with one task's answers only: B starts empty.
    let page = jane.get(&format!("/tasks/{second}")).await;
    page.expect("0 of");
    assert!(!page.has("Janet"), "{}", page.body);
    assert!(stored(&portal, &second, "about.first-name").is_empty());

    // Last year's answers come from the same client's task only.
    let bob = portal.client("Bob Roe", "bob@example.com", PIN).await;
    let bob_id = portal.client_id("bob@example.com");
    for (b, client, job) in [(&jane, &cid, "Plumber"), (&bob, &bob_id, "Astronaut")] {
        let last = assign_for(&staff, client, "organizer", "2024", "2024", &organizer).await;
        b.get(&format!("/tasks/{last}")).await;
        save_answer(b, &format!("/tasks/{last}"), "about.occupation", job).await;
    }
    let this_year = assign(&staff, &cid, "organizer", "2025 again", &organizer).await;
    let page = jane.get(&format!("/tasks/{this_year}")).await;
    page.expect("Plumber");
    assert!(!page.has("Astronaut"), "{}", page.body);

    // Bob: 404 for every URL of Jane's tasks, and nothing is stored.
    let home = bob.get("/").await;
    assert!(
        !home.has("Organizer A") && !home.has("Docs"),
        "{}",
        home.body
    );
    let docs_before = portal.query_i64("SELECT count(*) FROM documents");
    for task in [&first, &gather] {
        assert_eq!(bob.get(&format!("/tasks/{task}")).await.status, 404);
        let save = bob
            .post(
                &format!("/tasks/{task}/save"),
                &[("f", "about.first-name"), ("v:about.first-name", "Bob")],
            )
            .await;
        assert_eq!(save.status, 404, "{}", save.body);
        assert_eq!(
            bob.post(&format!("/tasks/{task}/submit"), &[]).await.status,
            404
        );
        let sent = upload(&bob, task, "doc.w2", "bob.pdf", &pdf_with_text("Bob")).await;
        assert_eq!(sent.status, 404, "{}", text(&sent));
    }
    assert_eq!(
        portal.query_i64("SELECT count(*) FROM documents"),
        docs_before
    );
    assert!(stored(&portal, &first, "about.first-name").contains("Janet"));
    assert_eq!(
        portal.query_text(&format!(
            "SELECT state FROM tasks WHERE public_id = '{gather}'"
        )),
        "open"
    );
    let download = bob.get(&format!("/documents/{doc}/download")).await;
    assert_eq!(download.status, 404);
    assert!(!download.body.contains("W-2"));
    // The task's files are Jane's alone.
    assert!(!bob.get("/documents").await.has("jane-w2.pdf"));
    portal.stop().await;
}

/// Warnings and errors logged by this test process (a global subscriber, as
/// the plugin host logs from blocking threads).
static LOG: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

struct Capture;

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// How many warning lines so far mention `text` (capturing from the first call).
fn warnings_about(text: &str) -> usize {
    static START: std::sync::Once = std::sync::Once::new();
    START.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(|| Capture)
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
    String::from_utf8_lossy(&LOG.lock().unwrap())
        .lines()
        .filter(|l| l.contains(text))
        .count()
}

/// A fixture from tests/fixtures/plugins compiled to `dir/<as_name>.wasm`.
fn install_fixture(dir: &Path, name: &str, as_name: &str) {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/plugins")
        .join(format!("{name}.wat"));
    std::fs::write(
        dir.join(format!("{as_name}.wasm")),
        wat::parse_file(source).unwrap(),
    )
    .unwrap();
}

#[tokio::test]
async fn a_plugin_that_traps_in_render_keeps_answers_and_the_rest_of_the_portal() {
    let examples = example_plugins();
    let plugins = tempfile::tempdir().unwrap();
    for name in ["organizer", "gather"] {
        let file = format!("{name}.wasm");
        std::fs::copy(examples.join(&file), plugins.path().join(&file)).unwrap();
    }
    install_fixture(plugins.path(), "good", "control");
    let (portal, jane, staff) = portal_with_plugins(plugins.path()).await;
    let cid = portal.client_id(JANE);
    let control = assign(&staff, &cid, "control", "Checklist", &[("s:name", "Smith")]).await;
    let organizer = assign(
        &staff,
        &cid,
        "organizer",
        "Organizer",
        &[("s:questionnaire", "Full 1040 organizer")],
    )
    .await;
    jane.get(&format!("/tasks/{control}"))
        .await
        .expect("Your name");

    // The same type, now a plugin that traps whenever it renders.
    let halted = portal.halt().await;
    install_fixture(plugins.path(), "trap", "control");
    let portal = halted.start().await;
    let path = format!("/tasks/{control}");
    let logged = warnings_about("render trapped");
    let page = jane.get(&path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        warnings_about("render trapped") - logged,
        1,
        "one log line for one failed call:\n{}",
        String::from_utf8_lossy(&LOG.lock().unwrap())
    );
    page.expect("This task could not be updated just now")
        .expect("plugin `control` 1.0.0")
        .expect("Everything you entered is saved");
    let page = jane
        .post(
            &format!("{path}/save"),
            &[("f", "name"), ("v:name", "Jane Q")],
        )
        .await;
    page.expect("plugin `control` 1.0.0");
    assert!(page.status < 500, "{}", page.body);
    assert!(stored(&portal, &control, "name").contains("Jane Q"));
    jane.post(&format!("{path}/submit"), &[])
        .await
        .refused("This task could not be updated just now");
    // Staff see the failure on the task; a new task of that type still assigns.
    staff
        .get(&format!("/staff/tasks/{control}"))
        .await
        .expect("plugin `control` 1.0.0");
    let before = portal.query_i64("SELECT count(*) FROM tasks");
    assignment_refused(
        &staff,
        &cid,
        "control",
        &[("s:name", "x")],
        "The task was not assigned: its type could not show it \
         (plugin `control` 1.0.0: render trapped",
    )
    .await;
    assert_eq!(portal.query_i64("SELECT count(*) FROM tasks"), before);

    // Everything else keeps working: another task, Documents, home.
    save_answer(
        &jane,
        &format!("/tasks/{organizer}"),
        "about.first-name",
        "Jane",
    )
    .await;
    upload_pdf(&jane, &organizer, "about.id", "id.pdf", "ID").await;
    jane.get("/documents").await.expect("id.pdf");
    assert_listed(&jane, "Pending Tasks", "Checklist").await;

    // One that loops: stopped at its time limit, with the same care.
    let halted = portal.halt().await;
    install_fixture(plugins.path(), "loop", "control");
    let portal = halted.start().await;
    let page = jane
        .post(
            &format!("{path}/save"),
            &[("f", "name"), ("v:name", "Jane R")],
        )
        .await;
    page.expect("ran past its 100 ms limit");
    assert!(stored(&portal, &control, "name").contains("Jane R"));
    jane.get(&format!("/tasks/{organizer}"))
        .await
        .expect("value=\"Jane\"");

    // Put the good plugin back: the answer given meanwhile is there.
    let halted = portal.halt().await;
    install_fixture(plugins.path(), "good", "control");
    let portal = halted.start().await;
    let page = jane.get(&path).await;
    assert!(!page.has("could not be updated"), "{}", page.body);
    page.expect("value=\"Jane R\"");

    // A plugin removed from the directory: its tasks say so and keep answers.
    let halted = portal.halt().await;
    std::fs::remove_file(plugins.path().join("control.wasm")).unwrap();
    let portal = halted.start().await;
    let page = jane
        .post(
            &format!("{path}/save"),
            &[("f", "name"), ("v:name", "Jane S")],
        )
        .await;
    assert!(page.status < 500, "{}", page.body);
    page.expect("This task&#x27;s type (control) is not installed right now.");
    assert!(stored(&portal, &control, "name").contains("Jane S"));
    staff
        .get(&format!("/staff/tasks/{control}"))
        .await
        .expect("is not installed right now");
    portal.stop().await;
}

#[test]
fn plugin_check_and_list_on_the_example_plugins() {
    let examples = example_plugins();
    let dir = tempfile::tempdir().unwrap();
    let installed = dir.path().join("data/plugins");
    std::fs::create_dir_all(&installed).unwrap();
    for (name, exports_ok) in [
        ("organizer", "Tax organizer"),
        ("gather", "Document request"),
        ("extension", "Extension review"),
    ] {
        let file = examples.join(format!("{name}.wasm"));
        std::fs::copy(&file, installed.join(format!("{name}.wasm"))).unwrap();
        let out = portal_binary(dir.path())
            .args(["plugin", "check"])
            .arg(&file)
            .output()
            .unwrap();
        let text = succeeded(&out);
        for expected in [
            &format!("type: {name} \"{exports_ok}\" 1.0.0") as &str,
            "interface 0.1.0",
            "imports:",
            "portal:task/log@0.1.0: write",
            "exports:",
            "log Info: ",
            "portal:task/task-type@0.1.0: describe, settings-form, check-settings, render, submit",
            "compile: ",
            "start from the compiled cache: ",
            "render (",
            "fresh store + call over 20 calls: p50",
            "All calls worked.",
        ] {
            assert!(
                text.contains(expected),
                "{expected:?} missing from {name}:\n{text}"
            );
        }
    }
    // A broken file: exit 1 with the reason.
    let broken = dir.path().join("broken.wasm");
    std::fs::write(&broken, b"\0asm garbage").unwrap();
    let out = portal_binary(dir.path())
        .args(["plugin", "check"])
        .arg(&broken)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("broken.wasm is not a valid WebAssembly component"),
        "{err}"
    );

    let out = portal_binary(dir.path())
        .args(["plugin", "list"])
        .output()
        .unwrap();
    let text = succeeded(&out);
    for line in [
        "organizer \"Tax organizer\" 1.0.0 (interface 0.1.0)",
        "gather \"Document request\" 1.0.0 (interface 0.1.0)",
        "extension \"Extension review\" 1.0.0 (interface 0.1.0)",
    ] {
        assert!(text.contains(line), "{line:?} missing from\n{text}");
    }
    assert!(!text.contains("NOT LOADED"), "{text}");
}
