//! D1–D9 and F2/F3/F5 (documents part): publishing, the Documents page, search,
//! previews, downloads, resumable uploads, limits, isolation and retention.

use std::num::NonZero;

use crate::common::{PIN, TestPortal, pdf_with_text, staff_browser};

fn find_id(body: &str, name: &str) -> String {
    let re = regex::Regex::new(&format!(
        r#"href="/documents/([^/]+)/view"[^>]*>{}<"#,
        regex::escape(name)
    ))
    .unwrap();
    re.captures(body)
        .unwrap_or_else(|| panic!("{name} not listed:\n{body}"))[1]
        .to_string()
}

#[tokio::test]
async fn staff_publish_and_the_client_finds_views_and_downloads() {
    let (portal, jane) = TestPortal::with_jane().await;
    let staff = staff_browser(&portal).await;
    let client_id = portal.client_id("jane@example.com");
    let pdf = pdf_with_text("Depreciation schedule for the rental property");
    let page = staff
        .publish(
            &client_id,
            "2025/Returns",
            "Please sign page 2.",
            &[
                ("Form 1040.pdf", pdf.clone()),
                ("notes.txt", b"plain notes".to_vec()),
            ],
        )
        .await;
    page.expect("The documents were published");
    let mail = portal
        .smtp
        .first("jane@example.com", "New documents from")
        .await;
    assert!(mail.text().contains("Form 1040.pdf") && mail.text().contains("/documents"));

    // D1: folders; D5: the message; statuses.
    let docs = jane.get("/documents").await;
    docs.expect("2025 / Returns")
        .expect("Form 1040.pdf")
        .expect("notes.txt")
        .expect("Please sign page 2.")
        .expect("New");
    let id = find_id(&docs.body, "Form 1040.pdf");

    // D2: search finds a word inside the PDF, and by name and folder.
    let found = jane.search("depreciation").await;
    found.expect("Form 1040.pdf").expect("1 document found");
    assert!(!found.has("notes.txt"));
    jane.search("returns").await.expect("2 documents found");
    jane.search("nothingmatches")
        .await
        .expect("No documents match");

    // D3: filters and sort.
    let pdfs = jane.get("/documents?type=pdf").await;
    assert!(pdfs.has("Form 1040.pdf") && !pdfs.has("notes.txt"));
    let future = jane.get("/documents?from=2099-01-01").await;
    future.expect("No documents match");

    // D4: preview page, inline content for the viewer, download.
    let view = jane.get(&format!("/documents/{id}/view")).await;
    view.expect("pdf-viewer")
        .expect(&format!("/documents/{id}/content"));
    let inline = jane.get_raw(&format!("/documents/{id}/content"), &[]).await;
    assert_eq!(inline.status, 200);
    assert_eq!(inline.headers["content-type"], "application/pdf");
    assert!(
        inline.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("sandbox")
    );
    assert_eq!(inline.body, pdf);
    let file = format!("/documents/{id}/download");
    let download = jane.get_raw(&file, &[]).await;
    assert_eq!(download.status, 200);
    assert_eq!(download.body, pdf);
    let disposition = download.headers["content-disposition"].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment;") && disposition.contains("Form 1040.pdf"),
        "{disposition}"
    );
    assert_eq!(download.headers["x-content-type-options"], "nosniff");
    jane.get("/documents?status=viewed")
        .await
        .expect("Form 1040.pdf");

    // Range requests resume a download.
    let part = jane.get_raw(&file, &[("Range", "bytes=10-19")]).await;
    assert_eq!(part.status, 206);
    assert_eq!(part.body, &pdf[10..20]);
    assert_eq!(
        part.headers["content-range"].to_str().unwrap(),
        format!("bytes 10-19/{}", pdf.len())
    );
    // A browser resuming with If-Range gets the rest only if the file is the same.
    let etag = download.headers["etag"].to_str().unwrap().to_string();
    let resumed = jane
        .get_raw(&file, &[("Range", "bytes=10-"), ("If-Range", &etag)])
        .await;
    assert_eq!((resumed.status, &resumed.body[..]), (206, &pdf[10..]));
    let changed = jane
        .get_raw(&file, &[("Range", "bytes=10-"), ("If-Range", "\"other\"")])
        .await;
    assert_eq!((changed.status, changed.body.len()), (200, pdf.len()));
    let bad = jane.get_raw(&file, &[("Range", "bytes=999999-")]).await;
    assert_eq!(bad.status, 416);
    portal.stop().await;
}

#[tokio::test]
async fn a_second_client_never_reaches_the_first_clients_documents() {
    let (portal, jane) = TestPortal::with_jane().await;
    let bob = portal.client("Bob Roe", "bob@example.com", "730264").await;
    let staff = staff_browser(&portal).await;
    staff
        .publish(
            &portal.client_id("jane@example.com"),
            "2025 / Returns",
            "",
            &[("Jane return.pdf", pdf_with_text("confidential income"))],
        )
        .await
        .expect("published");
    let id = find_id(&jane.get("/documents").await.body, "Jane return.pdf");
    let upload = jane
        .create_upload("jane-w2.pdf", "Uploaded", 10)
        .await
        .unwrap();

    for path in ["download", "view", "content"] {
        let r = bob.get_raw(&format!("/documents/{id}/{path}"), &[]).await;
        assert_eq!(r.status, 404, "{path}");
    }
    assert_eq!(
        bob.post(&format!("/documents/{id}/delete"), &[])
            .await
            .status,
        404
    );
    assert_eq!(
        bob.post(&format!("/documents/{id}/rename"), &[("name", "x")])
            .await
            .status,
        404
    );
    let head = bob
        .raw(
            bob.http()
                .head(bob.url(&upload))
                .header("Tus-Resumable", "1.0.0"),
        )
        .await;
    assert_eq!(head.status, 404);
    assert_eq!(bob.patch_upload(&upload, 0, vec![0; 10]).await.status, 404);
    let search = bob.search("confidential").await;
    search.expect("No documents match");
    assert!(!bob.get("/documents").await.has("Jane return.pdf"));
    portal.stop().await;
}

#[tokio::test]
async fn an_upload_cut_off_midway_shows_nothing_and_resumes() {
    let (portal, jane) = TestPortal::with_jane().await;
    portal::firm::add_staff(
        &portal.state,
        "ann@smithlee.example",
        "Ann Smith",
        crate::common::STAFF_PASSWORD,
    )
    .await
    .unwrap();
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let location = jane
        .create_upload("scan.bin", "Uploaded", data.len())
        .await
        .unwrap();

    // The connection drops after 300,000 bytes of a request, once the server has
    // written (encrypted) what it received so far.
    let blob = portal.query_text("SELECT blob FROM uploads");
    let incoming = portal
        .dir
        .path()
        .join("data/documents/.incoming")
        .join(blob);
    let first = bytes::Bytes::from(data[..300_000].to_vec());
    let broken = futures::stream::unfold(0, move |step| {
        let (first, incoming) = (first.clone(), incoming.clone());
        async move {
            match step {
                0 => Some((Ok(first), 1)),
                1 => {
                    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
                    while std::fs::metadata(&incoming).map_or(0, |m| m.len()) < 4 * 65_552
                        && std::time::Instant::now() < deadline
                    {
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    }
                    Some((Err(std::io::Error::other("network gone")), 2))
                }
                _ => None,
            }
        }
    });
    let cut = jane
        .http()
        .patch(jane.url(&location))
        .header("X-CSRF-Token", jane.csrf())
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Offset", "0")
        .body(reqwest::Body::wrap_stream(broken))
        .send()
        .await;
    assert!(cut.is_err(), "the request was cut off");

    // Nothing is visible; the server kept the whole chunks it received.
    assert!(!jane.get("/documents").await.has("scan.bin"));
    let offset = portal_offset_when_settled(&jane, &location).await;
    assert!(
        offset > 0 && offset <= 300_000 && offset % 65_536 == 0,
        "{offset}"
    );

    // Resume from there.
    let done = jane
        .patch_upload(&location, offset, data[offset..].to_vec())
        .await;
    assert_eq!(done.status, 204);
    let id = done.headers["upload-complete"]
        .to_str()
        .unwrap()
        .to_string();
    // The reply could have been lost: asking again says it is done, and sending the
    // last part again does not make a second document.
    let head = jane
        .raw(
            jane.http()
                .head(jane.url(&location))
                .header("Tus-Resumable", "1.0.0"),
        )
        .await;
    assert_eq!(head.headers["upload-complete"].to_str().unwrap(), id);
    let again = jane
        .patch_upload(&location, offset, data[offset..].to_vec())
        .await;
    assert_eq!(again.headers["upload-complete"].to_str().unwrap(), id);
    assert_eq!(
        portal.query_i64("SELECT count(*) FROM documents WHERE name = 'scan.bin'"),
        1
    );
    let got = jane
        .get_raw(&format!("/documents/{id}/download"), &[])
        .await;
    assert_eq!(got.body, data, "the resumed file is whole");
    jane.get("/documents")
        .await
        .expect("scan.bin")
        .expect("Sent to the firm");
    assert_eq!(portal.flush_upload_notices().await, 1);
    portal
        .smtp
        .first("ann@smithlee.example", "Jane Doe sent scan.bin")
        .await;
    assert_eq!(
        std::fs::read_dir(portal.dir.path().join("data/documents/.incoming"))
            .unwrap()
            .count(),
        0
    );

    // A wrong offset is a conflict, not damage.
    let late = jane
        .create_upload("other.bin", "Uploaded", 100)
        .await
        .unwrap();
    assert_eq!(jane.patch_upload(&late, 50, vec![1; 50]).await.status, 409);
    portal.stop().await;
}

/// The server finishes writing a cut-off request in the background; wait for it.
async fn portal_offset_when_settled(b: &crate::common::Browser, location: &str) -> usize {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let offset = b.upload_offset(location).await;
        if offset > 0 || std::time::Instant::now() > deadline {
            return offset;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn uploads_are_checked_and_explained() {
    let portal = TestPortal::start_with(|c| {
        c.documents.max_file_mb = NonZero::new(1).unwrap();
        c.documents.client_quota_mb = NonZero::new(2).unwrap();
        c.documents.max_files_per_upload = NonZero::new(3).unwrap();
    })
    .await;
    let jane = portal.client("Jane Doe", "jane@example.com", PIN).await;
    let too_big = jane
        .create_upload("huge.zip", "Uploaded", 2 * 1024 * 1024)
        .await
        .unwrap_err();
    assert_eq!(too_big.status, 422);
    assert!(String::from_utf8_lossy(&too_big.body).contains("too large"));

    // No CSRF header: refused.
    let forged = jane
        .raw(
            jane.http()
                .post(jane.url("/uploads"))
                .header("Upload-Length", "10"),
        )
        .await;
    assert_eq!(forged.status, 403);

    // Quota: two files of 1 MiB fit, a third does not.
    jane.upload("a.bin", &vec![1; 1024 * 1024]).await;
    jane.upload("b.bin", &vec![2; 1024 * 1024 - 10]).await;
    let over = jane
        .create_upload("c.bin", "Uploaded", 100)
        .await
        .unwrap_err();
    assert!(
        String::from_utf8_lossy(&over.body).contains("storage limit"),
        "{}",
        String::from_utf8_lossy(&over.body)
    );

    // A folder that was not offered is refused.
    let odd = jane.create_upload("d.txt", "Private", 1).await;
    assert!(odd.is_err());
    portal.stop().await;
}

#[tokio::test]
async fn names_are_stored_safely_and_active_content_is_never_inline() {
    let (portal, jane) = TestPortal::with_jane().await;
    let html = b"<html><script>alert(document.cookie)</script></html>".to_vec();
    let id = jane.upload("../../../etc/evil.html", &html).await;
    let svg_id = jane
        .upload(
            "logo.svg",
            b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
        )
        .await;
    let list = jane.get("/documents").await;
    list.expect(">evil.html<");
    assert!(!list.has("../"));
    for id in [&id, &svg_id] {
        let inline = jane.get_raw(&format!("/documents/{id}/content"), &[]).await;
        assert_eq!(inline.status, 404, "no inline rendering of active types");
        let d = jane
            .get_raw(&format!("/documents/{id}/download"), &[])
            .await;
        assert_eq!(d.headers["content-type"], "application/octet-stream");
        assert!(
            d.headers["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment")
        );
        assert_eq!(d.headers["x-content-type-options"], "nosniff");
    }
    // The stored file has a server-generated name.
    let blob = portal.query_text(&format!(
        "SELECT blob FROM documents WHERE public_id = '{id}'"
    ));
    assert!(!blob.contains("evil") && !blob.contains('/'));
    portal.stop().await;
}

#[tokio::test]
async fn stored_files_are_encrypted_and_tampering_is_refused() {
    let (portal, jane) = TestPortal::with_jane().await;
    let secret = b"SSN 123-45-6789 belongs to Jane Doe. ".repeat(10_000);
    let id = jane.upload("ssn.txt", &secret).await;
    let blob = portal.query_text(&format!(
        "SELECT blob FROM documents WHERE public_id = '{id}'"
    ));
    let path = portal
        .dir
        .path()
        .join("data/documents")
        .join(&blob[..2])
        .join(&blob);
    let raw = std::fs::read(&path).unwrap();
    assert!(raw.len() >= secret.len());
    assert!(
        !raw.windows(11).any(|w| w == b"123-45-6789"),
        "plaintext is not on disk"
    );

    let mut tampered = raw.clone();
    tampered[200_000] ^= 0x01;
    std::fs::write(&path, &tampered).unwrap();
    let got = jane
        .get_request(&format!("/documents/{id}/download"))
        .send()
        .await
        .unwrap();
    let body = got.bytes().await;
    match body {
        Err(_) => {}
        Ok(bytes) => assert_ne!(
            &bytes[..],
            &secret[..],
            "tampered content is never delivered as if intact"
        ),
    }
    portal.stop().await;
}

#[tokio::test]
async fn staff_see_uploads_in_the_inbox_and_save_them_then_clients_cannot_change_them() {
    let (portal, jane) = TestPortal::with_jane().await;
    let staff = staff_browser(&portal).await;
    let id = jane.upload("W-2 Acme.pdf", &pdf_with_text("wages")).await;
    portal.flush_upload_notices().await;
    jane.post(
        &format!("/documents/{id}/rename"),
        &[("name", "W-2 Acme 2025.pdf")],
    )
    .await
    .expect("The file was renamed");

    staff.get("/staff").await.expect("unread");
    let inbox = staff.get("/staff/inbox").await;
    inbox
        .expect("Jane Doe sent W-2 Acme.pdf")
        .expect("W-2 Acme 2025.pdf");
    let d = staff
        .get_raw(&format!("/staff/documents/{id}/download"), &[])
        .await;
    assert_eq!(d.status, 200);
    staff
        .post(&format!("/staff/documents/{id}/saved"), &[])
        .await
        .expect("Marked as saved");
    assert!(!staff.get("/staff/inbox").await.has("W-2 Acme 2025.pdf"));

    jane.get("/documents").await.expect("Received by the firm");
    let refused = jane.post(&format!("/documents/{id}/delete"), &[]).await;
    refused.refused("already saved");

    // Before the firm saves it, a client may delete its upload.
    let oops = jane.upload("wrong file.pdf", b"oops").await;
    jane.post(&format!("/documents/{oops}/delete"), &[])
        .await
        .expect("The file was deleted");
    assert!(!jane.get("/documents").await.has("wrong file.pdf"));
    // Client sessions never reach staff downloads.
    assert_eq!(
        jane.get(&format!("/staff/documents/{id}/download"))
            .await
            .path(),
        "/staff/signin"
    );
    portal.stop().await;
}

#[tokio::test]
async fn retention_removes_what_it_should_and_nothing_else() {
    let (portal, jane) = TestPortal::with_jane().await;
    let staff = staff_browser(&portal).await;
    let cid = portal.client_id("jane@example.com");
    staff
        .publish(
            &cid,
            "2024 / Letters",
            "",
            &[
                ("old letter.pdf", b"old".to_vec()),
                ("new letter.pdf", b"new".to_vec()),
            ],
        )
        .await;
    let saved = jane.upload("saved long ago.pdf", b"a").await;
    let recent = jane.upload("saved recently.pdf", b"b").await;
    let unsaved = jane.upload("not saved.pdf", b"c").await;
    for id in [&saved, &recent] {
        staff
            .post(&format!("/staff/documents/{id}/saved"), &[])
            .await;
    }
    let day = 24 * 3600;
    portal.sql(&format!("UPDATE documents SET saved_at = saved_at - 31 * {day}, created_at = created_at - 40 * {day} WHERE public_id = '{saved}'"));
    portal.sql(&format!(
        "UPDATE documents SET created_at = created_at - 400 * {day} WHERE name = 'old letter.pdf'"
    ));
    portal.sql(&format!(
        "UPDATE documents SET created_at = created_at - 400 * {day} WHERE public_id = '{unsaved}'"
    ));
    // Returns: 2023 superseded by 2024; 2024 stays however old; an amended 2022
    // return published after the 2024 one stays too.
    let client_row = portal.query_i64(&format!("SELECT id FROM clients WHERE public_id = '{cid}'"));
    for (name, year, age_days) in [
        ("2023 return.pdf", 2023, 800),
        ("2024 return.pdf", 2024, 700),
        ("2022 amended return.pdf", 2022, 10),
    ] {
        staff
            .publish(
                &cid,
                &format!("{year} / Returns"),
                "",
                &[(name, b"r".to_vec())],
            )
            .await;
        portal.sql(&format!("UPDATE documents SET kind = 'return', tax_year = {year}, created_at = created_at - {age_days} * {day} WHERE name = '{name}' AND client_id = {client_row}"));
    }

    let removed = portal::documents::retention::run(&portal.state)
        .await
        .unwrap();
    assert_eq!(removed, 3);
    let list = jane.get("/documents").await;
    for gone in ["saved long ago.pdf", "old letter.pdf", "2023 return.pdf"] {
        assert!(!list.has(gone), "{gone} should be removed");
    }
    for kept in [
        "saved recently.pdf",
        "not saved.pdf",
        "new letter.pdf",
        "2024 return.pdf",
        "2022 amended return.pdf",
    ] {
        assert!(list.has(kept), "{kept} should stay");
    }
    assert_eq!(
        portal.query_i64("SELECT count(*) FROM audit_log WHERE event = 'document_removed'"),
        3,
        "every removal is logged"
    );
    let blob_count = walk(&portal.dir.path().join("data/documents"));
    assert_eq!(
        blob_count as i64,
        portal.query_i64("SELECT count(*) FROM documents"),
        "files went with their rows"
    );
    portal.stop().await;
}

fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if e.file_type().unwrap().is_dir() {
                if name.starts_with('.') {
                    0
                } else {
                    walk(&e.path())
                }
            } else {
                1
            }
        })
        .sum()
}

#[tokio::test]
async fn the_search_index_can_be_rebuilt_from_scratch() {
    let (portal, jane) = TestPortal::with_jane().await;
    jane.upload(
        "Brokerage statement.pdf",
        &pdf_with_text("qualified dividends"),
    )
    .await;
    // Uploads are indexed in the background: wait for it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while portal.state.search.count() == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    jane.search("dividends")
        .await
        .expect("Brokerage statement.pdf");
    portal.state.search.clear().unwrap();
    jane.search("dividends").await.expect("No documents match");
    let n = portal::documents::content::reindex(&portal.state)
        .await
        .unwrap();
    assert_eq!(n, 1);
    jane.search("dividends")
        .await
        .expect("Brokerage statement.pdf");
    portal.stop().await;
}

#[tokio::test]
async fn abandoned_uploads_are_cleaned_up() {
    let (portal, jane) = TestPortal::with_jane().await;
    let location = jane
        .create_upload("half.bin", "Uploaded", 200_000)
        .await
        .unwrap();
    jane.patch_upload(&location, 0, vec![7; 131_072]).await;
    assert_eq!(jane.upload_offset(&location).await, 131_072);
    let incoming = portal.dir.path().join("data/documents/.incoming");
    assert_eq!(std::fs::read_dir(&incoming).unwrap().count(), 1);

    // A day without progress: housekeeping removes the upload and its partial file.
    portal.sql("UPDATE uploads SET updated_at = updated_at - 25 * 3600");
    portal::documents::upload::sweep(&portal.state)
        .await
        .unwrap();
    assert_eq!(std::fs::read_dir(&incoming).unwrap().count(), 0);
    assert_eq!(portal.query_i64("SELECT count(*) FROM uploads"), 0);
    assert!(!jane.get("/documents").await.has("half.bin"));
    portal.stop().await;
}

#[tokio::test]
async fn two_requests_for_one_upload_cannot_interleave() {
    let (portal, jane) = TestPortal::with_jane().await;
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    let location = jane
        .create_upload("twice.bin", "Uploaded", data.len())
        .await
        .unwrap();
    let (a, b) = tokio::join!(
        jane.patch_upload(&location, 0, data.clone()),
        jane.patch_upload(&location, 0, data.clone())
    );
    let statuses = [a.status, b.status];
    assert!(statuses.contains(&204), "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 204 || *s == 409),
        "{statuses:?}"
    );
    assert_eq!(
        portal.query_i64("SELECT count(*) FROM documents WHERE name = 'twice.bin'"),
        1
    );
    let id = portal.query_text("SELECT public_id FROM documents WHERE name = 'twice.bin'");
    let got = jane
        .get_raw(&format!("/documents/{id}/download"), &[])
        .await;
    assert_eq!(got.body, data);
    portal.stop().await;
}

#[tokio::test]
async fn search_results_come_best_match_first_unless_a_sort_is_chosen() {
    let (portal, jane) = TestPortal::with_jane().await;
    let staff = staff_browser(&portal).await;
    let cid = portal.client_id("jane@example.com");
    // The better match (the word in its name) is published first, so it is older.
    staff
        .publish(
            &cid,
            "2025 / Returns",
            "",
            &[(
                "Depreciation schedule.pdf",
                pdf_with_text("depreciation depreciation"),
            )],
        )
        .await;
    staff
        .publish(
            &cid,
            "2025 / Returns",
            "",
            &[("Letter.pdf", pdf_with_text("see the depreciation note"))],
        )
        .await;
    portal.sql("UPDATE documents SET created_at = created_at - 3600 WHERE name = 'Depreciation schedule.pdf'");
    let order = |body: &str| -> Vec<String> {
        regex::Regex::new(r#"class="doc-name"[^>]*>([^<]+)<"#)
            .unwrap()
            .captures_iter(body)
            .map(|c| c[1].to_string())
            .collect()
    };
    let best = jane.get("/documents?q=depreciation&sort=").await;
    assert_eq!(
        order(&best.body),
        ["Depreciation schedule.pdf", "Letter.pdf"]
    );
    let newest = jane.get("/documents?q=depreciation&sort=newest").await;
    assert_eq!(
        order(&newest.body),
        ["Letter.pdf", "Depreciation schedule.pdf"]
    );
    portal.stop().await;
}
