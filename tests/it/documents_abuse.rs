//! Attacks on documents and the staff area, performed for real: reads of document
//! bytes that skip the audit log, floods of uploads and notification emails,
//! names that display as something else, state changes on GET, and oversized or
//! malformed forms.

use crate::common::{Browser, PIN, STAFF_PASSWORD, TestPortal, pdf_with_text, staff_browser};
use portal::infra::text::is_invisible;

/// Audit entries of `event` about document `id` by actors starting with `actor`.
fn audited(portal: &TestPortal, event: &str, id: &str, actor: &str) -> i64 {
    portal.query_i64(&format!(
        "SELECT count(*) FROM audit_log WHERE event = '{event}' AND subject = '{id}' AND actor LIKE '{actor}%'"
    ))
}

async fn add_staff(portal: &TestPortal, email: &str, name: &str) {
    portal::firm::add_staff(&portal.state, email, name, STAFF_PASSWORD)
        .await
        .unwrap();
}

/// Posts a hand-made publish form to a client's page.
async fn post_publish(
    staff: &Browser,
    client_id: &str,
    form: reqwest::multipart::Form,
) -> crate::common::Raw {
    let url = staff.url(&format!("/staff/clients/{client_id}/publish"));
    staff.raw(staff.http().post(url).multipart(form)).await
}

async fn get_range(b: &Browser, path: &str, range: &str) -> crate::common::Raw {
    b.raw(b.http().get(b.url(path)).header("Range", range))
        .await
}

async fn publish_pdf(portal: &TestPortal, staff: &Browser, email: &str) -> (String, Vec<u8>) {
    let pdf = pdf_with_text("Wages, tips, other compensation");
    staff
        .publish(
            &portal.client_id(email),
            "2025 / Returns",
            "",
            &[("Return.pdf", pdf.clone())],
        )
        .await
        .expect("The documents were published");
    let id = portal.query_text("SELECT public_id FROM documents WHERE name = 'Return.pdf'");
    (id, pdf)
}

#[tokio::test]
async fn every_read_of_document_bytes_is_audited_and_ranges_once_per_session() {
    let (portal, jane) = TestPortal::with_jane().await;
    let staff = staff_browser(&portal).await;
    let (id, pdf) = publish_pdf(&portal, &staff, "jane@example.com").await;
    let download = format!("/documents/{id}/download");
    let content = format!("/documents/{id}/content");

    // The whole file as a range (206) is a download like any other.
    let whole = get_range(&jane, &download, "bytes=0-").await;
    assert_eq!((whole.status, &whole.body[..]), (206, &pdf[..]));
    assert_eq!(audited(&portal, "document_downloaded", &id, "client:"), 1);
    // A resumed download's many ranges make no flood of entries.
    for start in (0..pdf.len()).step_by(50).take(30) {
        let part = get_range(&jane, &download, &format!("bytes={start}-{}", start + 49)).await;
        assert_eq!(part.status, 206);
    }
    assert_eq!(audited(&portal, "document_downloaded", &id, "client:"), 1);
    // Each whole-file request is recorded.
    for _ in 0..2 {
        let full = jane.get_raw(&download, &[]).await;
        assert_eq!(full.body, pdf);
    }
    assert_eq!(audited(&portal, "document_downloaded", &id, "client:"), 3);

    // The bytes behind the preview, whole or ranged (as pdf.js asks for them).
    assert_eq!(get_range(&jane, &content, "bytes=0-99").await.status, 206);
    assert_eq!(audited(&portal, "document_previewed", &id, "client:"), 1);
    for _ in 0..20 {
        get_range(&jane, &content, "bytes=100-199").await;
    }
    assert_eq!(audited(&portal, "document_previewed", &id, "client:"), 1);
    let inline = jane.get_raw(&content, &[]).await;
    assert_eq!(inline.body, pdf);
    assert_eq!(audited(&portal, "document_previewed", &id, "client:"), 2);

    // HEAD sends no bytes and so writes nothing.
    let head = jane.raw(jane.http().head(jane.url(&download))).await;
    assert_eq!((head.status, head.body.len()), (200, 0));
    assert_eq!(audited(&portal, "document_downloaded", &id, "client:"), 3);

    // Another session of the same client is recorded on its own.
    let phone = portal.browser();
    phone.sign_in(&portal, "jane@example.com", PIN).await;
    get_range(&phone, &download, "bytes=0-9").await;
    assert_eq!(audited(&portal, "document_downloaded", &id, "client:"), 4);
    // After ten minutes, the same session's ranges are recorded again.
    portal.sql("UPDATE document_access SET audited_at = audited_at - 601");
    get_range(&jane, &download, "bytes=10-19").await;
    assert_eq!(audited(&portal, "document_downloaded", &id, "client:"), 5);

    // Staff downloads: the same rules.
    let staff_download = format!("/staff/documents/{id}/download");
    for _ in 0..10 {
        let r = get_range(&staff, &staff_download, "bytes=0-").await;
        assert_eq!((r.status, &r.body[..]), (206, &pdf[..]));
    }
    assert_eq!(audited(&portal, "document_downloaded", &id, "staff:"), 1);
    let detail = portal.query_text(&format!(
        "SELECT detail FROM audit_log WHERE event = 'document_downloaded' AND subject = '{id}' AND actor LIKE 'staff:%'"
    ));
    assert_eq!(
        detail,
        format!("bytes 0-{} of {}", pdf.len() - 1, pdf.len())
    );
    portal.stop().await;
}

#[tokio::test]
async fn empty_uploads_are_refused_and_notify_nobody() {
    let (portal, jane) = TestPortal::with_jane().await;
    let staff = staff_browser(&portal).await;
    let names: Vec<String> = (0..25).map(|i| format!("empty{i}.pdf")).collect();
    let attempts = names.iter().map(|n| jane.create_upload(n, "Uploaded", 0));
    for refused in futures::future::join_all(attempts).await {
        let r = refused.expect_err("an empty file is refused");
        let body = String::from_utf8_lossy(&r.body).to_string();
        assert_eq!(r.status, 422, "{body}");
        assert!(body.contains("is empty"), "{body}");
    }
    assert_eq!(portal.query_i64("SELECT count(*) FROM documents"), 0);
    assert_eq!(portal.query_i64("SELECT count(*) FROM uploads"), 0);
    assert_eq!(portal.flush_upload_notices().await, 0);
    assert_eq!(
        portal.query_i64("SELECT count(*) FROM mail_queue WHERE to_addr = 'ann@smithlee.example'"),
        0
    );

    // Staff cannot publish an empty file either; nothing is left behind.
    let page = staff
        .publish(
            &portal.client_id("jane@example.com"),
            "2025 / Letters",
            "",
            &[("blank.pdf", Vec::new())],
        )
        .await;
    page.refused("blank.pdf is empty");
    assert_eq!(portal.query_i64("SELECT count(*) FROM documents"), 0);
    portal.stop().await;
}

#[tokio::test]
async fn an_upload_flood_is_limited_and_each_staff_member_gets_one_email() {
    let portal = TestPortal::start_with(|c| c.documents.uploads_per_hour = 10).await;
    let jane = portal.client("Jane Doe", "jane@example.com", PIN).await;
    add_staff(&portal, "ann@smithlee.example", "Ann Smith").await;
    add_staff(&portal, "ben@smithlee.example", "Ben Lee").await;

    // 25 files at once: 10 go through, the rest are told to wait.
    let sends = (0..25).map(|i| {
        let jane = &jane;
        async move {
            let name = format!("receipt{i:02}.pdf");
            let sent = match jane.create_upload(&name, "Uploaded", 5).await {
                Ok(location) => Ok(jane.patch_upload(&location, 0, b"%PDF-".to_vec()).await),
                Err(refused) => Err(refused),
            };
            (name, sent)
        }
    });
    let results = futures::future::join_all(sends).await;
    let sent: Vec<&String> = results
        .iter()
        .filter(|(_, r)| matches!(r, Ok(r) if r.status == 204))
        .map(|(name, _)| name)
        .collect();
    assert_eq!(sent.len(), 10);
    for (_, refused) in &results {
        if let Err(refused) = refused {
            let body = String::from_utf8_lossy(&refused.body).to_string();
            assert_eq!(refused.status, 429, "{body}");
            assert!(
                body.contains("Please wait") && body.contains("10 files"),
                "{body}"
            );
        }
    }
    assert_eq!(portal.query_i64("SELECT count(*) FROM documents"), 10);
    // Nothing is emailed while the batch is open.
    let announced = "SELECT count(*) FROM mail_queue WHERE subject LIKE 'Jane Doe sent%'";
    assert_eq!(portal.query_i64(announced), 0);

    // The batch waits in the database: it survives a restart, and the job of the
    // restarted portal sends it once its window has passed.
    let portal = portal
        .restart(|p| {
            p.sql("UPDATE upload_notices SET created_at = created_at - 301");
        })
        .await;
    for staff in ["ann@smithlee.example", "ben@smithlee.example"] {
        let mail = portal.smtp.first(staff, "Jane Doe sent 10 files").await;
        for name in &sent {
            assert!(mail.text().contains(name.as_str()), "{}", mail.text());
        }
    }
    assert_eq!(portal.query_i64(announced), 2, "one email per staff member");
    assert_eq!(portal.query_i64("SELECT count(*) FROM upload_notices"), 0);
    assert_eq!(
        portal.query_i64(
            "SELECT count(*) FROM staff_notifications WHERE text = 'Jane Doe sent 10 files'"
        ),
        1
    );
    // The limit also survives the restart.
    let jane = portal.browser();
    jane.sign_in(&portal, "jane@example.com", PIN).await;
    jane.get("/documents/send").await;
    let late = jane
        .create_upload("late.pdf", "Uploaded", 5)
        .await
        .unwrap_err();
    assert_eq!(late.status, 429);
    portal.stop().await;
}

/// No format characters (line breaks of a page's markup are fine).
fn assert_visible(what: &str, text: &str) {
    let hidden = |c: char| is_invisible(c) && !matches!(c, '\n' | '\r' | '\t');
    assert!(
        !text.chars().any(hidden),
        "{what} keeps invisible characters: {text:?}"
    );
}

#[tokio::test]
async fn names_lose_bidi_overrides_and_other_format_characters() {
    let portal = TestPortal::start().await;
    portal.invite("Jane Doe", "jane@example.com").await;
    let jane = portal.browser();
    // Sign-up name with a right-to-left override and a zero-width space.
    jane.sign_up(&portal, "Jane\u{202E} Doe\u{200B}", "jane@example.com", PIN)
        .await;
    jane.sign_in(&portal, "jane@example.com", PIN).await;
    assert_eq!(
        portal.query_text("SELECT account_name FROM clients"),
        "Jane Doe"
    );

    // Upload: "invoice<RLO>fdp.exe" would show as "invoiceexe.pdf".
    let id = jane.upload("invoice\u{202E}fdp.exe", b"MZ not a pdf").await;
    let page = jane.get("/documents").await;
    page.expect("invoicefdp.exe");
    assert_visible("the documents page", &page.body);
    // Rename.
    jane.post(
        &format!("/documents/{id}/rename"),
        &[("name", "bill\u{2067}\u{202E}fdp.exe\u{FEFF}")],
    )
    .await
    .expect("The file was renamed");
    let renamed = portal.query_text(&format!(
        "SELECT name FROM documents WHERE public_id = '{id}'"
    ));
    assert_eq!(renamed, "billfdp.exe");

    // Staff publish: file name and folder; staff and client names.
    let staff = staff_browser(&portal).await;
    add_staff(&portal, "ben@smithlee.example", "Ben\u{202E}eeL").await;
    staff
        .add_client("Bob\u{202D}\u{200D} Roe", "bob@example.com")
        .await
        .expect("The client was invited");
    staff
        .publish(
            &portal.client_id("jane@example.com"),
            "2025\u{2066}/\u{202E}Letters",
            "",
            &[("letter\u{202E}fdp.exe", b"letter".to_vec())],
        )
        .await
        .expect("The documents were published");
    portal
        .browser()
        .post(
            "/request-portal",
            &[
                ("name", "Eve\u{202E} Poe"),
                ("email", "eve@example.com"),
                ("phone", "555\u{2066}0199"),
                ("message", "Please open a portal for me."),
            ],
        )
        .await;
    let names = |sql: &str| {
        let conn = rusqlite::Connection::open(portal.dir.path().join("data/portal.db")).unwrap();
        let mut stmt = conn.prepare(sql).unwrap();
        stmt.query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .map(Result::unwrap)
            .collect::<Vec<String>>()
    };
    for sql in [
        "SELECT name FROM documents",
        "SELECT folder FROM documents",
        "SELECT name FROM clients",
        "SELECT name FROM staff",
        "SELECT name || phone FROM portal_requests",
    ] {
        for name in names(sql) {
            assert_visible(sql, &name);
        }
    }
    assert!(names("SELECT name FROM documents").contains(&"letterfdp.exe".to_string()));
    assert!(names("SELECT folder FROM documents").contains(&"2025 / Letters".to_string()));
    assert!(names("SELECT name FROM staff").contains(&"BeneeL".to_string()));
    assert!(names("SELECT name FROM clients").contains(&"Bob Roe".to_string()));
    assert_eq!(
        names("SELECT name || ' ' || phone FROM portal_requests"),
        ["Eve Poe 5550199"]
    );

    // What staff see: the inbox, and the notification email's subject.
    jane.upload("w2\u{202E}fdp.exe", b"wages").await;
    portal.flush_upload_notices().await;
    let inbox = staff.get("/staff/inbox").await;
    inbox.expect("w2fdp.exe");
    assert_visible("the staff inbox", &inbox.body);
    let mail = portal.smtp.first("ann@smithlee.example", "sent").await;
    assert_eq!(mail.subject(), "Jane Doe sent 2 files");
    assert!(mail.text().contains("w2fdp.exe") && mail.text().contains("billfdp.exe"));
    assert!(!mail.data.contains("=E2=80=AE") && !mail.data.contains('\u{202E}'));
    portal.stop().await;
}

fn unread(portal: &TestPortal) -> i64 {
    portal.query_i64("SELECT count(*) FROM staff_notifications WHERE read_at IS NULL")
}

#[tokio::test]
async fn opening_the_inbox_changes_nothing_and_marking_read_is_a_post() {
    let (portal, jane) = TestPortal::with_jane().await;
    let staff = staff_browser(&portal).await;
    jane.upload("W-2.pdf", b"wages").await;
    portal.flush_upload_notices().await;
    assert_eq!(unread(&portal), 1);
    for _ in 0..2 {
        staff.get("/staff/inbox").await.expect("Mark all read");
    }
    assert_eq!(unread(&portal), 1, "a GET marks nothing read");

    // Without the form's token: refused.
    let forged = staff
        .post_without_csrf("/staff/inbox/read", &[("up_to", "1000")])
        .await;
    assert_eq!(forged.status, 403);
    assert_eq!(unread(&portal), 1);

    // Opening one notification marks it read and goes where it points.
    let first = portal.query_i64("SELECT max(id) FROM staff_notifications");
    let opened = staff
        .post(&format!("/staff/notifications/{first}/open"), &[])
        .await;
    assert!(
        opened.path().starts_with("/staff/clients/"),
        "{}",
        opened.url
    );
    assert_eq!(unread(&portal), 0);

    // "Mark all read" covers what the page showed, not what arrived since.
    jane.upload("1099.pdf", b"interest").await;
    portal.flush_upload_notices().await;
    jane.upload("1098.pdf", b"mortgage").await;
    portal.flush_upload_notices().await;
    let shown = portal.query_i64("SELECT max(id) FROM staff_notifications") - 1;
    staff
        .post("/staff/inbox/read", &[("up_to", &shown.to_string())])
        .await
        .expect("Inbox");
    assert_eq!(unread(&portal), 1);
    let page = staff.get("/staff/inbox").await;
    let newest = regex::Regex::new(r#"name="up_to" value="(\d+)""#)
        .unwrap()
        .captures(&page.body)
        .expect("Mark all read form")[1]
        .to_string();
    staff.post("/staff/inbox/read", &[("up_to", &newest)]).await;
    assert_eq!(unread(&portal), 0);
    portal.stop().await;
}

#[tokio::test]
async fn oversized_or_malformed_forms_are_refused_plainly() {
    let portal = TestPortal::start().await;
    portal.client("Jane Doe", "jane@example.com", PIN).await;
    let staff = staff_browser(&portal).await;
    let client_id = portal.client_id("jane@example.com");

    // A 5 MB message (the limit is 4000 characters) after a real file.
    let huge = "x".repeat(5 * 1024 * 1024);
    let page = staff
        .publish(&client_id, "2025 / Letters", &huge, &[])
        .await;
    page.refused("The form's text is too long");
    let form = reqwest::multipart::Form::new()
        .text("csrf", staff.csrf())
        .text("folder", "2025 / Letters")
        .part(
            "files",
            reqwest::multipart::Part::bytes(b"letter".to_vec()).file_name("letter.pdf"),
        )
        .text("message", huge);
    let r = post_publish(&staff, &client_id, form).await;
    assert_eq!(r.status, 422);
    assert!(String::from_utf8_lossy(&r.body).contains("text is too long"));
    // A field the form does not even have counts just the same.
    let form = reqwest::multipart::Form::new()
        .text("csrf", staff.csrf())
        .text("folder", "2025 / Letters")
        .text("padding", "y".repeat(5 * 1024 * 1024))
        .part(
            "files",
            reqwest::multipart::Part::bytes(b"letter".to_vec()).file_name("letter.pdf"),
        );
    let r = post_publish(&staff, &client_id, form).await;
    assert_eq!(r.status, 422);
    assert_eq!(portal.query_i64("SELECT count(*) FROM documents"), 0);
    let stored = std::fs::read_dir(portal.dir.path().join("data/documents"))
        .unwrap()
        .filter(|e| {
            !e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with('.')
        })
        .flat_map(|e| std::fs::read_dir(e.unwrap().path()).unwrap())
        .count();
    assert_eq!(stored, 0, "the file sent before the refusal is removed");

    // Not multipart at all, or a path that is not a number: a plain message, not
    // the parser's.
    let publish = format!("/staff/clients/{client_id}/publish");
    let wrong_type = staff
        .raw(
            staff
                .http()
                .post(staff.url(&publish))
                .header("content-type", "text/plain")
                .body("hello"),
        )
        .await;
    let bad_path = staff
        .raw(
            staff
                .http()
                .post(staff.url("/staff/notifications/abc/open")),
        )
        .await;
    for r in [wrong_type, bad_path] {
        let body = String::from_utf8_lossy(&r.body).to_string();
        assert!((400..500).contains(&r.status), "{}", r.status);
        assert!(body.contains("The form could not be read"), "{body}");
        for internal in ["multipart", "content type", "parse", "expect"] {
            assert!(!body.contains(internal), "{internal} in {body}");
        }
    }
    portal.stop().await;
}
